//! The link to the directory server: registration, lists, lookups,
//! heartbeat, and reconnecting with backoff when it is lost.

use super::{Peer, PeerOutput, ServerPhase};
use crate::codec::encode;
use crate::event::Event;
use crate::heartbeat::Beat;
use crate::protocol::{negotiate, ClientMsg, ErrorCode, PeerStatus, ServerMsg};
use crate::text::sanitize;
use crate::time::{Instant, Now};

/// Longest server error message shown, in characters.
const MAX_SERVER_MESSAGE: usize = 512;

impl Peer {
    pub(super) fn connect_server(&mut self, _now: Instant) {
        let link = self.allocate_link();
        self.server.link = Some(link);
        self.server.phase = ServerPhase::Connecting;
        self.outputs.push_back(PeerOutput::Connect {
            link,
            addr: self.config.server,
        });
    }

    pub(super) fn server_frame(&mut self, now: Now, frame: ServerMsg) {
        match frame {
            ServerMsg::Hello { versions } => {
                if let Err(mismatch) = negotiate(&versions) {
                    let message = format!("the server: {mismatch}");
                    self.server_refused(now, ErrorCode::VersionMismatch, message);
                }
            }
            ServerMsg::Registered { addr, .. } => {
                self.server.phase = ServerPhase::Registered;
                self.server.backoff = self.config.reconnect_min;
                if self.server.ever_registered {
                    self.event(Event::Reregistered);
                } else {
                    self.server.ever_registered = true;
                    // Our own name, not the server's echo of it: a server
                    // cannot put text of its choosing on our screen here.
                    let name = self.config.name.clone();
                    let server = self.config.server;
                    self.event(Event::Registered { name, addr, server });
                }
                if self.chat_partner().is_some() {
                    self.send_server(&ClientMsg::Status {
                        status: PeerStatus::Chatting,
                    });
                }
            }
            ServerMsg::Peers { peers, more, .. } => {
                let room = self.config.max_list.saturating_sub(self.list_chunks.len());
                self.list_chunks.extend(peers.into_iter().take(room));
                if !more {
                    let mut peers = std::mem::take(&mut self.list_chunks);
                    for p in &mut peers {
                        p.name = sanitize(&p.name, crate::text::MAX_NAME);
                    }
                    self.last_list = peers.iter().map(|p| (p.name.clone(), p.clone())).collect();
                    self.event(Event::Peers { peers });
                }
            }
            ServerMsg::Found { name, peer, .. } => {
                let Some(pos) = self.lookups.iter().position(|n| *n == name) else {
                    return;
                };
                self.lookups.remove(pos);
                match peer {
                    Some(info) => {
                        self.last_list.insert(name.clone(), info.clone());
                        match self.dial_refusal() {
                            None => self.dial(now, info.addr, Some(name)),
                            Some(code) => {
                                self.error(code, "another chat or request started meanwhile")
                            }
                        }
                    }
                    None => self.error(
                        ErrorCode::UnknownPeer,
                        format!("nobody named {name} is online; /list shows who is"),
                    ),
                }
            }
            ServerMsg::Error { code, message, .. } => {
                let message = sanitize(&message, MAX_SERVER_MESSAGE);
                if self.server.phase == ServerPhase::Registering {
                    self.server_refused(now, code, message);
                } else {
                    self.error(code, format!("server: {message}"));
                }
            }
            ServerMsg::Ping => {
                self.send_server(&ClientMsg::Pong);
            }
            ServerMsg::Pong => {}
        }
    }

    /// The server refused us while registering: fatal the first time
    /// (wrong name, full server: the user must act), retried after a
    /// reconnect (our old entry may simply not have timed out yet).
    pub(super) fn server_refused(&mut self, now: Now, code: ErrorCode, message: String) {
        if self.server.ever_registered {
            let link = self.server.link.take();
            if let Some(link) = link {
                self.outputs.push_back(PeerOutput::Close { link });
            }
            self.schedule_reconnect(now.mono);
        } else {
            self.fatal(code, message);
        }
    }

    pub(super) fn server_down(&mut self, now: Now, reason: &str) {
        let was_registered = self.server.phase == ServerPhase::Registered;
        if let Some(link) = self.server.link.take() {
            self.outputs.push_back(PeerOutput::Close { link });
        }
        self.list_chunks.clear();
        self.lookups.clear();
        if self.quitting {
            self.server.phase = ServerPhase::Gone;
            return self.exit_if_done();
        }
        if !self.server.ever_registered {
            let message = format!(
                "cannot register with the server at {} ({reason}); is `natter server` running there?",
                self.config.server
            );
            return self.fatal(ErrorCode::ServerUnreachable, message);
        }
        if was_registered {
            self.event(Event::ServerLost);
        }
        self.schedule_reconnect(now.mono);
    }

    pub(super) fn schedule_reconnect(&mut self, now: Instant) {
        let wait = self.server.backoff;
        self.server.backoff = (wait * 2).min(self.config.reconnect_max);
        self.server.phase = ServerPhase::Down {
            retry_at: now + wait,
        };
    }

    pub(super) fn server_timeout(&mut self, now: Now) {
        match self.server.phase {
            ServerPhase::Down { retry_at } if now.mono >= retry_at => self.connect_server(now.mono),
            ServerPhase::Registering | ServerPhase::Registered => {
                match self.server.heartbeat.check(now.mono) {
                    Beat::Lost => self.server_down(now, "no heartbeat from the server"),
                    Beat::Ping => {
                        self.send_server(&ClientMsg::Ping);
                    }
                    Beat::Idle => {}
                }
            }
            _ => {}
        }
    }

    /// Sends to the server if connected; false if not.
    pub(super) fn send_server(&mut self, frame: &ClientMsg) -> bool {
        let usable = match self.server.phase {
            ServerPhase::Registered => true,
            ServerPhase::Registering => matches!(
                frame,
                ClientMsg::Hello { .. }
                    | ClientMsg::Register { .. }
                    | ClientMsg::Pong
                    | ClientMsg::Ping
            ),
            _ => false,
        };
        match self.server.link {
            Some(link) if usable => {
                self.server.heartbeat.sent(self.clock);
                self.outputs.push_back(PeerOutput::Send {
                    link,
                    bytes: encode(frame),
                });
                true
            }
            _ => false,
        }
    }

    pub(super) fn update_status(&mut self) {
        let status = if self.chat_partner().is_some() {
            PeerStatus::Chatting
        } else {
            PeerStatus::Available
        };
        self.send_server(&ClientMsg::Status { status });
    }
}
