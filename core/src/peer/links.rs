//! Connections opening, closing and carrying bytes, whichever link they are.

use super::{Chat, ChatPhase, Peer, PeerOutput, ServerPhase};
use crate::codec::FrameDecoder;
use crate::event::{ChatEndReason, Event};
use crate::heartbeat::Heartbeat;
use crate::link::LinkId;
use crate::protocol::{ClientMsg, ErrorCode, PeerMsg, Versions};
use crate::time::Now;
use crate::transcript::Direction;
use std::net::SocketAddr;

impl Peer {
    pub(super) fn connected(&mut self, now: Now, link: LinkId) {
        if self.server.link == Some(link) {
            self.server.phase = ServerPhase::Registering;
            self.server.heartbeat = Heartbeat::new(self.config.heartbeat, now.mono);
            self.server.decoder = FrameDecoder::new(self.config.max_frame);
            self.send_server(&ClientMsg::Hello {
                versions: Versions::ours(),
            });
            let register = ClientMsg::Register {
                name: self.config.name.clone(),
                port: self.config.listen_port,
            };
            self.send_server(&register);
            return;
        }
        let Some(chat) = self.chats.get_mut(&link) else {
            return;
        };
        let ChatPhase::Dialing { ring_until } = chat.phase else {
            return;
        };
        chat.phase = ChatPhase::Calling { ring_until };
        chat.heartbeat = Heartbeat::new(self.config.heartbeat, now.mono);
        let hello = PeerMsg::Hello {
            versions: Versions::ours(),
            name: self.config.name.clone(),
        };
        self.send_peer(now.mono, link, &hello);
    }

    pub(super) fn connect_failed(&mut self, now: Now, link: LinkId, reason: &str) {
        if self.server.link == Some(link) {
            return self.server_down(now, reason);
        }
        let Some(chat) = self.chats.remove(&link) else {
            return;
        };
        let who = chat.display();
        self.error(
            ErrorCode::PeerUnreachable,
            format!("{who} is no longer reachable at {} ({reason})", chat.addr),
        );
        if chat.expected.is_some() {
            // The list we dialled from is stale: show the user a fresh one.
            self.last_list.remove(&who);
            self.request_list();
        }
    }

    pub(super) fn accepted(&mut self, now: Now, link: LinkId, addr: SocketAddr) {
        let pending = self
            .chats
            .values()
            .filter(|c| matches!(c.phase, ChatPhase::Greeting { .. }))
            .count();
        if self.quitting || pending >= self.config.max_pending_incoming {
            return self.outputs.push_back(PeerOutput::Close { link });
        }
        let phase = ChatPhase::Greeting {
            until: now.mono + self.config.handshake_timeout,
        };
        let chat = Chat::new(
            &self.config,
            now.mono,
            addr,
            Direction::Incoming,
            phase,
            None,
        );
        self.chats.insert(link, chat);
    }

    pub(super) fn receive(&mut self, now: Now, link: LinkId, bytes: &[u8]) {
        if self.server.link == Some(link) {
            self.server.heartbeat.received(now.mono);
            self.server.decoder.push(bytes);
            while self.server.link == Some(link) {
                match self.server.decoder.next_frame() {
                    None => break,
                    Some(Ok(frame)) => self.server_frame(now, frame),
                    Some(Err(e)) => {
                        self.server_down(now, &format!("the server sent a bad frame: {e}"))
                    }
                }
            }
            return;
        }
        let Some(chat) = self.chats.get_mut(&link) else {
            return;
        };
        chat.heartbeat.received(now.mono);
        chat.decoder.push(bytes);
        while let Some(chat) = self.chats.get_mut(&link) {
            match chat.decoder.next_frame() {
                None => break,
                Some(Ok(frame)) => self.peer_frame(now, link, frame),
                Some(Err(e)) => self.peer_protocol_error(now, link, e),
            }
        }
    }

    pub(super) fn closed(&mut self, now: Now, link: LinkId) {
        if self.server.link == Some(link) {
            return self.server_down(now, "the server closed the connection");
        }
        let Some(chat) = self.chats.get(&link) else {
            return;
        };
        match chat.phase {
            ChatPhase::Active | ChatPhase::Leaving { .. } => {
                self.end_chat(now, link, ChatEndReason::PeerLeft)
            }
            ChatPhase::Dialing { .. } | ChatPhase::Calling { .. } => {
                let message = format!("{} closed the connection before answering", chat.display());
                self.chats.remove(&link);
                self.error(ErrorCode::PeerUnreachable, message);
            }
            ChatPhase::Ringing => {
                let peer = chat.display();
                self.chats.remove(&link);
                self.event(Event::Missed { peer });
            }
            ChatPhase::Greeting { .. } => {
                self.chats.remove(&link);
            }
        }
    }

    pub(super) fn recorded(&mut self, now: Now, link: LinkId, n: u64, result: Result<(), String>) {
        match result {
            Ok(()) => {
                if self.chats.contains_key(&link) {
                    self.send_peer(now.mono, link, &PeerMsg::Ack { n });
                }
            }
            Err(reason) => {
                let peer = self
                    .chats
                    .get(&link)
                    .map_or_else(|| "?".to_string(), Chat::display);
                self.error(
                    ErrorCode::TranscriptFailed,
                    format!("message #{n} from {peer} could not be written to the transcript ({reason}); no receipt was sent"),
                );
            }
        }
    }
}
