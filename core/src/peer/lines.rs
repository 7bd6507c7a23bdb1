//! What the user types: commands and messages.

use super::{Chat, ChatPhase, Peer, PeerOutput};
use crate::command::{self, Command, Target, HELP};
use crate::event::{ChatEndReason, Event};
use crate::link::LinkId;
use crate::protocol::{ClientMsg, ErrorCode, PeerMsg};
use crate::text::{check_message, MessageProblem};
use crate::time::Now;
use crate::transcript::{Direction, Entry};
use std::net::SocketAddr;

impl Peer {
    pub(super) fn handle_line(&mut self, now: Now, line: &str) {
        let command = match command::parse(line) {
            Ok(command) => command,
            Err((code, message)) => return self.error(code, message),
        };
        if self.quitting {
            return self.error(ErrorCode::BadInput, "quitting; no more commands are taken");
        }
        match command {
            Command::List => self.request_list(),
            Command::Connect(target) => self.connect_command(now, target),
            Command::Accept => self.accept(now),
            Command::Reject => self.reject(),
            Command::Leave => self.leave(now),
            Command::Quit => self.quit(now),
            Command::Help => self.event(Event::Help {
                commands: HELP.iter().map(|s| s.to_string()).collect(),
            }),
            Command::Say(text) => self.say(now, text),
        }
    }

    pub(super) fn request_list(&mut self) {
        if !self.send_server(&ClientMsg::List { id: None }) {
            self.error(
                ErrorCode::ServerUnreachable,
                "not connected to the server right now; natter is reconnecting, try again shortly",
            );
        }
    }

    pub(super) fn connect_command(&mut self, now: Now, target: Target) {
        if let Some(code) = self.dial_refusal() {
            let message = match code {
                ErrorCode::AlreadyInChat => "you are already in a chat; /leave it first",
                _ => "a request is pending: /accept or /reject the one you got, or wait for the answer to yours",
            };
            return self.error(code, message);
        }
        match target {
            Target::Addr(addr) => self.dial(now, addr, None),
            Target::Name(name) if name == self.config.name => {
                self.error(ErrorCode::BadInput, "that is your own name")
            }
            Target::Name(name) => match self.last_list.get(&name) {
                Some(info) => {
                    let addr = info.addr;
                    self.dial(now, addr, Some(name))
                }
                None => {
                    if self.send_server(&ClientMsg::Lookup {
                        id: None,
                        name: name.clone(),
                    }) {
                        self.lookups.push_back(name);
                    } else {
                        self.error(
                            ErrorCode::ServerUnreachable,
                            format!("{name} is not in your last list and the server is not reachable right now"),
                        );
                    }
                }
            },
        }
    }

    /// Why a new call cannot be placed now, if it cannot.
    pub(super) fn dial_refusal(&self) -> Option<ErrorCode> {
        self.chats.values().find_map(|chat| match chat.phase {
            ChatPhase::Active | ChatPhase::Leaving { .. } => Some(ErrorCode::AlreadyInChat),
            ChatPhase::Dialing { .. } | ChatPhase::Calling { .. } | ChatPhase::Ringing => {
                Some(ErrorCode::RequestPending)
            }
            ChatPhase::Greeting { .. } => None,
        })
    }

    pub(super) fn dial(&mut self, now: Now, addr: SocketAddr, name: Option<String>) {
        let link = self.allocate_link();
        let phase = ChatPhase::Dialing {
            ring_until: now.mono + self.config.ring_timeout,
        };
        let chat = Chat::new(
            &self.config,
            now.mono,
            addr,
            Direction::Outgoing,
            phase,
            name,
        );
        self.chats.insert(link, chat);
        self.outputs.push_back(PeerOutput::Connect { link, addr });
    }

    pub(super) fn accept(&mut self, now: Now) {
        let Some(link) = self.find_chat(|p| p == ChatPhase::Ringing) else {
            return self.error(ErrorCode::NoRequest, "nobody is asking to chat");
        };
        self.send_peer(now.mono, link, &PeerMsg::Accept);
        self.start_chat(now, link);
    }

    pub(super) fn reject(&mut self) {
        let Some(link) = self.find_chat(|p| p == ChatPhase::Ringing) else {
            return self.error(ErrorCode::NoRequest, "nobody is asking to chat");
        };
        let chat = self.chats.remove(&link).expect("found");
        self.push_send(link, &PeerMsg::Reject);
        self.outputs.push_back(PeerOutput::Close { link });
        self.event(Event::Declined {
            peer: chat.display(),
        });
    }

    pub(super) fn leave(&mut self, now: Now) {
        let Some(link) = self.find_chat(|p| p == ChatPhase::Active) else {
            let leaving = self
                .find_chat(|p| matches!(p, ChatPhase::Leaving { .. }))
                .is_some();
            let message = if leaving {
                "already leaving; waiting for the last receipts"
            } else {
                "you are not in a chat"
            };
            return self.error(ErrorCode::NotInChat, message);
        };
        self.begin_leave(now, link);
    }

    pub(super) fn begin_leave(&mut self, now: Now, link: LinkId) {
        let chat = self.chats.get_mut(&link).expect("caller found it");
        if chat.unacked.is_empty() {
            self.end_chat(now, link, ChatEndReason::Left);
        } else {
            chat.phase = ChatPhase::Leaving {
                until: now.mono + self.config.leave_grace,
            };
        }
    }

    pub(super) fn quit(&mut self, now: Now) {
        self.quitting = true;
        let links: Vec<LinkId> = self.chats.keys().copied().collect();
        for link in links {
            match self.chats[&link].phase {
                ChatPhase::Active => self.begin_leave(now, link),
                ChatPhase::Leaving { .. } => {}
                ChatPhase::Ringing => {
                    self.push_send(link, &PeerMsg::Reject);
                    self.drop_chat(link);
                }
                ChatPhase::Dialing { .. }
                | ChatPhase::Calling { .. }
                | ChatPhase::Greeting { .. } => {
                    self.drop_chat(link);
                }
            }
        }
        self.exit_if_done();
    }

    pub(super) fn say(&mut self, now: Now, text: String) {
        let Some(link) = self.find_chat(|p| p == ChatPhase::Active) else {
            if text.is_empty() {
                return;
            }
            return self.error(
                ErrorCode::NotInChat,
                "you are not in a chat: /connect NAME first (a line starting with / is a command)",
            );
        };
        match check_message(&text, self.config.max_message) {
            Ok(()) => {}
            Err(MessageProblem::Empty) => return,
            Err(MessageProblem::TooLong { chars, max }) => {
                return self.error(
                    ErrorCode::MessageTooLong,
                    format!("message not sent: {chars} characters, the limit is {max}"),
                )
            }
            Err(MessageProblem::ControlCharacter) => {
                return self.error(
                    ErrorCode::BadInput,
                    "message not sent: it contains control characters",
                )
            }
        }
        let chat = self.chats.get_mut(&link).expect("found");
        let n = chat.next_out;
        chat.next_out += 1;
        chat.unacked.insert(n, text.clone());
        let peer = chat.display();
        let at = now.rfc3339();
        self.send_peer(
            now.mono,
            link,
            &PeerMsg::Msg {
                n,
                text: text.clone(),
                at,
            },
        );
        self.record(now, link, &Entry::Sent { n, text: &text }, None);
        self.event(Event::Sent { peer, n, text });
    }
}
