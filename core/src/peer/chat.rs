//! Chat links: the handshake (hello, accept, reject, busy), numbered
//! messages and receipts, leaving, and the partner going away.

use super::{Chat, ChatPhase, Peer, PeerConfig, PeerOutput, TranscriptWrite};
use crate::codec::{encode, DecodeError, FrameDecoder};
use crate::event::{ChatEndReason, Event};
use crate::heartbeat::{Beat, Heartbeat};
use crate::link::LinkId;
use crate::protocol::{negotiate, ErrorCode, PeerMsg, Versions};
use crate::text::{is_valid_name, sanitize};
use crate::time::{Instant, Now};
use crate::transcript::{self, Direction, Entry};
use std::collections::BTreeMap;
use std::net::SocketAddr;

impl Peer {
    pub(super) fn peer_frame(&mut self, now: Now, link: LinkId, frame: PeerMsg) {
        let chat = self.chats.get_mut(&link).expect("caller checked");
        match (chat.phase, frame) {
            (_, PeerMsg::Ping) => self.send_peer(now.mono, link, &PeerMsg::Pong),
            (_, PeerMsg::Pong) => {}
            (ChatPhase::Greeting { .. }, PeerMsg::Hello { versions, name }) => {
                self.greeted(now, link, &versions, name)
            }
            (ChatPhase::Calling { .. }, PeerMsg::Hello { versions, name }) => {
                if let Err(mismatch) = negotiate(&versions) {
                    let message = format!("{name}: {mismatch}");
                    return self.abort_call(link, ErrorCode::VersionMismatch, message, true);
                }
                match &chat.expected {
                    Some(expected) if *expected != name => {
                        let message = format!(
                            "{} answered as {:?}, not {expected}; not chatting with an impostor",
                            chat.addr,
                            sanitize(&name, crate::text::MAX_NAME)
                        );
                        self.abort_call(link, ErrorCode::WrongPeer, message, true)
                    }
                    _ if !is_valid_name(&name) => {
                        let message = "the peer sent an invalid name".to_string();
                        self.abort_call(link, ErrorCode::InvalidName, message, true)
                    }
                    _ => {
                        chat.peer = Some(name);
                        chat.greeted = true;
                    }
                }
            }
            (ChatPhase::Calling { .. }, PeerMsg::Accept | PeerMsg::Reject | PeerMsg::Busy)
                if !chat.greeted =>
            {
                let message = "the answer came before the hello".to_string();
                self.peer_protocol_error_msg(now, link, message);
            }
            (ChatPhase::Calling { .. }, PeerMsg::Accept) => self.start_chat(now, link),
            (ChatPhase::Calling { .. }, PeerMsg::Reject) => {
                let peer = self.drop_chat(link);
                self.event(Event::Rejected { peer });
            }
            (ChatPhase::Calling { .. }, PeerMsg::Busy) => {
                let peer = self.drop_chat(link);
                self.event(Event::Busy { peer });
            }
            (
                ChatPhase::Calling { .. } | ChatPhase::Greeting { .. } | ChatPhase::Ringing,
                PeerMsg::Error { code, message, .. },
            ) => {
                let peer = self.drop_chat(link);
                self.error(code, format!("{peer}: {}", sanitize(&message, 256)));
            }
            (ChatPhase::Active | ChatPhase::Leaving { .. }, PeerMsg::Msg { n, text, at }) => {
                if n != chat.next_in {
                    let message = format!("expected message #{}, got #{n}", chat.next_in);
                    return self.peer_protocol_error_msg(now, link, message);
                }
                chat.next_in += 1;
                let peer = chat.display();
                let text = sanitize(&text, self.config.max_frame);
                let at = sanitize(&at, 64);
                self.record(
                    now,
                    link,
                    &Entry::Received {
                        n,
                        text: &text,
                        at: &at,
                    },
                    Some(n),
                );
                self.event(Event::Message { peer, n, text, at });
            }
            (ChatPhase::Active | ChatPhase::Leaving { .. }, PeerMsg::Ack { n }) => {
                if chat.unacked.remove(&n).is_some() {
                    let peer = chat.display();
                    let leaving_done =
                        matches!(chat.phase, ChatPhase::Leaving { .. }) && chat.unacked.is_empty();
                    self.record(now, link, &Entry::Delivered { n }, None);
                    self.event(Event::Delivered { peer, n });
                    if leaving_done {
                        self.end_chat(now, link, ChatEndReason::Left);
                    }
                }
            }
            (ChatPhase::Active | ChatPhase::Leaving { .. }, PeerMsg::Bye) => {
                self.end_chat(now, link, ChatEndReason::PeerLeft)
            }
            (
                ChatPhase::Active | ChatPhase::Leaving { .. },
                PeerMsg::Error { code, message, .. },
            ) => {
                let peer = chat.display();
                self.error(code, format!("{peer}: {}", sanitize(&message, 256)));
                self.end_chat(now, link, ChatEndReason::PeerLeft);
            }
            (_, frame) => {
                let message = format!(
                    "unexpected {frame_type} frame",
                    frame_type = frame_type(&frame)
                );
                self.peer_protocol_error_msg(now, link, message);
            }
        }
    }

    pub(super) fn greeted(&mut self, now: Now, link: LinkId, versions: &Versions, name: String) {
        if let Err(mismatch) = negotiate(versions) {
            return self.refuse_link(link, ErrorCode::VersionMismatch, mismatch.to_string());
        }
        if !is_valid_name(&name) {
            let message = "a name is 1-32 characters of A-Z a-z 0-9 _ -".to_string();
            return self.refuse_link(link, ErrorCode::InvalidName, message);
        }
        let hello = PeerMsg::Hello {
            versions: Versions::ours(),
            name: self.config.name.clone(),
        };
        self.send_peer(now.mono, link, &hello);
        let busy = self.chats.iter().any(|(&other, chat)| {
            other != link && !matches!(chat.phase, ChatPhase::Greeting { .. })
        });
        if busy {
            self.push_send(link, &PeerMsg::Busy);
            self.chats.remove(&link);
            self.outputs.push_back(PeerOutput::Close { link });
            return self.event(Event::Missed { peer: name });
        }
        let chat = self.chats.get_mut(&link).expect("caller checked");
        chat.peer = Some(name.clone());
        chat.phase = ChatPhase::Ringing;
        let addr = chat.addr;
        self.event(Event::Incoming { peer: name, addr });
    }

    pub(super) fn start_chat(&mut self, now: Now, link: LinkId) {
        let me = self.config.name.clone();
        let chat = self.chats.get_mut(&link).expect("caller checked");
        chat.phase = ChatPhase::Active;
        let peer = chat.display();
        let file = transcript::file_name(&now, &me, &peer);
        chat.transcript = Some(file);
        let entry = Entry::Started {
            me: &me,
            peer: &peer,
            addr: chat.addr,
            direction: chat.direction,
        };
        self.record(now, link, &entry, None);
        self.event(Event::ChatStarted { peer });
        self.update_status();
    }

    /// Ends an active or leaving chat: reports what was not delivered,
    /// closes the link, tells the server we are free again.
    pub(super) fn end_chat(&mut self, now: Now, link: LinkId, reason: ChatEndReason) {
        let Some(chat) = self.chats.get(&link) else {
            return;
        };
        let peer = chat.display();
        let undelivered: Vec<(u64, String)> =
            chat.unacked.iter().map(|(n, t)| (*n, t.clone())).collect();
        for (n, text) in &undelivered {
            self.record(now, link, &Entry::Undelivered { n: *n, text }, None);
        }
        self.record(now, link, &Entry::Ended { reason }, None);
        if reason == ChatEndReason::Left {
            self.push_send(link, &PeerMsg::Bye);
        }
        self.drop_chat(link);
        self.event(Event::ChatEnded {
            peer,
            reason,
            undelivered: undelivered.into_iter().map(|(n, _)| n).collect(),
        });
        self.update_status();
        self.exit_if_done();
    }

    pub(super) fn chat_timeout(&mut self, now: Now, link: LinkId) {
        let Some(chat) = self.chats.get(&link) else {
            return;
        };
        match chat.phase {
            ChatPhase::Dialing { ring_until } | ChatPhase::Calling { ring_until }
                if now.mono >= ring_until =>
            {
                let peer = self.drop_chat(link);
                return self.event(Event::NoAnswer { peer });
            }
            ChatPhase::Greeting { until } if now.mono >= until => {
                self.drop_chat(link);
                return;
            }
            ChatPhase::Leaving { until } if now.mono >= until => {
                return self.end_chat(now, link, ChatEndReason::Left);
            }
            ChatPhase::Dialing { .. } => return,
            _ => {}
        }
        match chat.heartbeat.check(now.mono) {
            Beat::Lost => match chat.phase {
                ChatPhase::Active | ChatPhase::Leaving { .. } => {
                    self.end_chat(now, link, ChatEndReason::PeerLost)
                }
                ChatPhase::Ringing => {
                    let peer = self.drop_chat(link);
                    self.event(Event::Missed { peer });
                }
                _ => {
                    let peer = self.drop_chat(link);
                    self.error(
                        ErrorCode::PeerUnreachable,
                        format!("{peer} stopped answering"),
                    );
                }
            },
            Beat::Ping => self.send_peer(now.mono, link, &PeerMsg::Ping),
            Beat::Idle => {}
        }
    }

    pub(super) fn peer_protocol_error(&mut self, now: Now, link: LinkId, error: DecodeError) {
        self.peer_protocol_error_msg(now, link, error.to_string())
    }

    /// The partner broke the protocol: tell it why, close, and end
    /// whatever was going on with it.
    pub(super) fn peer_protocol_error_msg(&mut self, now: Now, link: LinkId, message: String) {
        let Some(chat) = self.chats.get(&link) else {
            return;
        };
        let phase = chat.phase;
        let peer = chat.display();
        self.push_send(
            link,
            &PeerMsg::Error {
                code: ErrorCode::BadFrame,
                message: message.clone(),
                close: true,
            },
        );
        match phase {
            ChatPhase::Active | ChatPhase::Leaving { .. } => {
                self.error(
                    ErrorCode::BadFrame,
                    format!("{peer} sent a bad frame ({message}); chat closed"),
                );
                self.end_chat(now, link, ChatEndReason::PeerLeft);
            }
            ChatPhase::Greeting { .. } => {
                self.drop_chat(link);
            }
            _ => {
                self.drop_chat(link);
                self.error(
                    ErrorCode::BadFrame,
                    format!("{peer} sent a bad frame ({message})"),
                );
            }
        }
    }

    pub(super) fn abort_call(
        &mut self,
        link: LinkId,
        code: ErrorCode,
        message: String,
        tell_peer: bool,
    ) {
        if tell_peer {
            self.push_send(
                link,
                &PeerMsg::Error {
                    code,
                    message: message.clone(),
                    close: true,
                },
            );
        }
        self.drop_chat(link);
        self.error(code, message);
    }

    pub(super) fn refuse_link(&mut self, link: LinkId, code: ErrorCode, message: String) {
        let error = PeerMsg::Error {
            code,
            message,
            close: true,
        };
        self.push_send(link, &error);
        self.drop_chat(link);
    }

    /// Forgets a chat and closes its link; returns the partner's name.
    pub(super) fn drop_chat(&mut self, link: LinkId) -> String {
        let chat = self.chats.remove(&link);
        self.outputs.push_back(PeerOutput::Close { link });
        chat.map_or_else(String::new, |c| c.display())
    }

    pub(super) fn find_chat(&self, phase: impl Fn(ChatPhase) -> bool) -> Option<LinkId> {
        self.chats
            .iter()
            .find(|(_, c)| phase(c.phase))
            .map(|(&link, _)| link)
    }

    pub(super) fn send_peer(&mut self, now: Instant, link: LinkId, frame: &PeerMsg) {
        if let Some(chat) = self.chats.get_mut(&link) {
            chat.heartbeat.sent(now);
        }
        self.push_send(link, frame);
    }

    pub(super) fn push_send(&mut self, link: LinkId, frame: &PeerMsg) {
        self.outputs.push_back(PeerOutput::Send {
            link,
            bytes: encode(frame),
        });
    }

    pub(super) fn record(
        &mut self,
        now: Now,
        link: LinkId,
        entry: &Entry<'_>,
        receipt_for: Option<u64>,
    ) {
        let Some(file) = self.chats.get(&link).and_then(|c| c.transcript.clone()) else {
            return;
        };
        self.outputs
            .push_back(PeerOutput::Transcript(TranscriptWrite {
                file,
                line: transcript::line(&now, entry),
                receipt: receipt_for.map(|n| (link, n)),
            }));
    }
}

impl Chat {
    /// A chat just opened: `expected` is the name dialled, if any.
    pub(super) fn new(
        config: &PeerConfig,
        now: Instant,
        addr: SocketAddr,
        direction: Direction,
        phase: ChatPhase,
        expected: Option<String>,
    ) -> Self {
        Self {
            peer: expected.clone(),
            addr,
            direction,
            phase,
            expected,
            greeted: false,
            decoder: FrameDecoder::new(config.max_frame),
            heartbeat: Heartbeat::new(config.heartbeat, now),
            next_out: 1,
            next_in: 1,
            unacked: BTreeMap::new(),
            transcript: None,
        }
    }

    /// How events name the partner: its name, or its address until the
    /// name is known.
    pub(super) fn display(&self) -> String {
        self.peer.clone().unwrap_or_else(|| self.addr.to_string())
    }
}

fn frame_type(frame: &PeerMsg) -> &'static str {
    match frame {
        PeerMsg::Hello { .. } => "hello",
        PeerMsg::Accept => "accept",
        PeerMsg::Reject => "reject",
        PeerMsg::Busy => "busy",
        PeerMsg::Msg { .. } => "msg",
        PeerMsg::Ack { .. } => "ack",
        PeerMsg::Bye => "bye",
        PeerMsg::Ping => "ping",
        PeerMsg::Pong => "pong",
        PeerMsg::Error { .. } => "error",
    }
}
