//! One peer's brain: its link to the directory server, its chat requests
//! and its chats.
//!
//! The driver reports typed lines, connections and bytes; the peer answers
//! with connections to open, bytes to send, events for the user, transcript
//! lines to append and, at the end, an exit code. Chats are kept by link id
//! in a map: one chat at a time is the product rule today (a second request
//! gets `busy`), but nothing here assumes there is only one.

use crate::codec::{encode, DecodeError, FrameDecoder};
use crate::command::{self, Command, Target, HELP};
use crate::event::{ChatEndReason, Event};
use crate::heartbeat::{Beat, Heartbeat, HeartbeatConfig};
use crate::link::LinkId;
use crate::protocol::{
    ClientMsg, ErrorCode, PeerInfo, PeerMsg, PeerStatus, ServerMsg, MAX_FRAME, PROTOCOL_VERSION,
};
use crate::text::{check_message, is_valid_name, sanitize, MessageProblem};
use crate::time::{Instant, Now};
use crate::transcript::{self, Direction, Entry};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

/// A peer's settings.
#[derive(Clone, Debug)]
pub struct PeerConfig {
    pub name: String,
    /// The directory server.
    pub server: SocketAddr,
    /// The port this peer's listener is bound to (already bound by the
    /// driver, so never 0).
    pub listen_port: u16,
    /// Longest message the user may send, in characters.
    pub max_message: usize,
    /// How long an outgoing request rings before `no_answer`.
    pub ring_timeout: Duration,
    /// How long `/leave` waits for outstanding receipts.
    pub leave_grace: Duration,
    /// Time an incoming connection has to send its `hello`.
    pub handshake_timeout: Duration,
    pub heartbeat: HeartbeatConfig,
    /// First and longest wait before reconnecting to a lost server.
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// Messages in flight without receipt before the peer stops taking
    /// lines (backpressure on the user instead of an unbounded queue).
    pub window: usize,
    /// Longest frame accepted on any link.
    pub max_frame: usize,
    /// Most peers kept from one list answer.
    pub max_list: usize,
    /// Incoming connections that have not said hello yet, at most; more
    /// are closed at once (a flood of half-open calls).
    pub max_pending_incoming: usize,
}

impl PeerConfig {
    /// The defaults of SPEC.md for a peer named `name`.
    pub fn new(name: impl Into<String>, server: SocketAddr, listen_port: u16) -> Self {
        Self {
            name: name.into(),
            server,
            listen_port,
            max_message: 256,
            ring_timeout: Duration::from_secs(30),
            leave_grace: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(10),
            heartbeat: HeartbeatConfig::default(),
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(30),
            window: 64,
            max_frame: MAX_FRAME,
            max_list: 100_000,
            max_pending_incoming: 16,
        }
    }
}

/// What the driver reports to the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerInput {
    /// A line the user typed.
    Line(String),
    /// Standard input closed: the same as `/quit`.
    EndOfInput,
    /// A [`PeerOutput::Connect`] succeeded.
    Connected { link: LinkId },
    /// A [`PeerOutput::Connect`] failed.
    ConnectFailed { link: LinkId, reason: String },
    /// The listener accepted a connection; `link` comes from
    /// [`Peer::allocate_link`].
    Accepted { link: LinkId, addr: SocketAddr },
    /// Bytes arrived, split anywhere.
    Bytes { link: LinkId, bytes: Vec<u8> },
    /// The connection ended (EOF, reset, error).
    Closed { link: LinkId },
    /// The outcome of a [`TranscriptWrite`] that asked for it.
    Recorded {
        link: LinkId,
        n: u64,
        result: Result<(), String>,
    },
}

/// A line to append to a transcript file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TranscriptWrite {
    /// File name inside the transcripts directory.
    pub file: String,
    /// The line, without its newline.
    pub line: String,
    /// For a received message: the driver must write the line to the file
    /// and then report [`PeerInput::Recorded`] for this link and number.
    /// Only then is the receipt sent, so a receipt means "recorded".
    pub receipt: Option<(LinkId, u64)>,
}

/// What the peer asks the driver to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerOutput {
    /// Open a TCP connection; report `Connected` or `ConnectFailed`.
    Connect {
        link: LinkId,
        addr: SocketAddr,
    },
    Send {
        link: LinkId,
        bytes: Vec<u8>,
    },
    /// Close the connection after sending what was queued before.
    Close {
        link: LinkId,
    },
    Event(Event),
    Transcript(TranscriptWrite),
    /// The peer is done; exit the process with this code.
    Exit {
        code: i32,
    },
}

/// One chat peer's state machine.
#[derive(Debug)]
pub struct Peer {
    config: PeerConfig,
    next_link: u64,
    outputs: VecDeque<PeerOutput>,
    server: ServerLink,
    chats: BTreeMap<LinkId, Chat>,
    /// The last complete list, by name: `/connect NAME` dials from it.
    last_list: BTreeMap<String, PeerInfo>,
    /// Chunks of the list answer being received.
    list_chunks: Vec<PeerInfo>,
    /// Names asked with `lookup`, in order, to dial when found.
    lookups: VecDeque<String>,
    quitting: bool,
    exited: bool,
    /// The monotonic time of the `handle_*` call in progress, for the
    /// bookkeeping (heartbeat send times) of code paths that do not need
    /// time otherwise.
    clock: Instant,
}

#[derive(Debug)]
struct ServerLink {
    link: Option<LinkId>,
    phase: ServerPhase,
    decoder: FrameDecoder<ServerMsg>,
    heartbeat: Heartbeat,
    ever_registered: bool,
    backoff: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ServerPhase {
    Connecting,
    Registering,
    Registered,
    Down { retry_at: Instant },
    Gone,
}

#[derive(Debug)]
struct Chat {
    /// The partner's name once known (dialled by name, or from its hello).
    peer: Option<String>,
    addr: SocketAddr,
    direction: Direction,
    phase: ChatPhase,
    /// The name we dialled; the partner's hello must match it.
    expected: Option<String>,
    /// Whether the partner's hello has arrived: no answer is taken
    /// before it.
    greeted: bool,
    decoder: FrameDecoder<PeerMsg>,
    heartbeat: Heartbeat,
    next_out: u64,
    next_in: u64,
    unacked: BTreeMap<u64, String>,
    transcript: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChatPhase {
    /// We asked the driver to connect.
    Dialing {
        ring_until: Instant,
    },
    /// Our hello is sent; waiting for accept, reject or busy.
    Calling {
        ring_until: Instant,
    },
    /// Someone connected to us; waiting for its hello.
    Greeting {
        until: Instant,
    },
    /// The request is shown to the user; waiting for `/accept`.
    Ringing,
    Active,
    /// `/leave` was typed; waiting (bounded) for outstanding receipts.
    Leaving {
        until: Instant,
    },
}

impl Peer {
    /// A peer that starts by connecting to its server.
    pub fn new(config: PeerConfig, now: Now) -> Self {
        let mut peer = Self {
            server: ServerLink {
                link: None,
                phase: ServerPhase::Gone,
                decoder: FrameDecoder::new(config.max_frame),
                heartbeat: Heartbeat::new(config.heartbeat, now.mono),
                ever_registered: false,
                backoff: config.reconnect_min,
            },
            config,
            next_link: 0,
            outputs: VecDeque::new(),
            chats: BTreeMap::new(),
            last_list: BTreeMap::new(),
            list_chunks: Vec::new(),
            lookups: VecDeque::new(),
            quitting: false,
            exited: false,
            clock: now.mono,
        };
        let longest = max_message_for_frame(peer.config.max_frame);
        if !(1..=longest).contains(&peer.config.max_message) {
            let message = format!(
                "the message limit must be between 1 and {longest} characters (what fits a frame), not {}",
                peer.config.max_message
            );
            peer.fatal(ErrorCode::BadInput, message);
        } else if is_valid_name(&peer.config.name) {
            peer.connect_server(now.mono);
        } else {
            let message = format!(
                "{:?} is not a valid name: use 1-32 characters of A-Z a-z 0-9 _ -",
                peer.config.name
            );
            peer.fatal(ErrorCode::InvalidName, message);
        }
        peer
    }

    // ---- getters ----

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Whether the server has confirmed our registration.
    pub fn is_registered(&self) -> bool {
        self.server.phase == ServerPhase::Registered
    }

    /// The partner of the chat in progress, if any.
    pub fn chat_partner(&self) -> Option<&str> {
        self.chats
            .values()
            .find(|c| matches!(c.phase, ChatPhase::Active | ChatPhase::Leaving { .. }))
            .and_then(|c| c.peer.as_deref())
    }

    /// Whether the peer takes another typed line now. False while a chat
    /// has `window` messages without receipt: the driver then stops
    /// reading input, which pushes back on whoever writes it.
    pub fn accepts_lines(&self) -> bool {
        !self.exited
            && self
                .chats
                .values()
                .all(|c| c.unacked.len() < self.config.window)
    }

    /// Whether the peer has exited.
    pub fn has_exited(&self) -> bool {
        self.exited
    }

    // ---- mutators ----

    /// A fresh link id, for a connection the driver's listener accepted.
    pub fn allocate_link(&mut self) -> LinkId {
        self.next_link += 1;
        LinkId(self.next_link)
    }

    // ---- handle_* ----

    pub fn handle_input(&mut self, now: Now, input: PeerInput) {
        if self.exited {
            return;
        }
        self.clock = self.clock.max(now.mono);
        match input {
            PeerInput::Line(line) => self.handle_line(now, &line),
            PeerInput::EndOfInput => self.quit(now),
            PeerInput::Connected { link } => self.connected(now, link),
            PeerInput::ConnectFailed { link, reason } => self.connect_failed(now, link, &reason),
            PeerInput::Accepted { link, addr } => self.accepted(now, link, addr),
            PeerInput::Bytes { link, bytes } => self.receive(now, link, &bytes),
            PeerInput::Closed { link } => self.closed(now, link),
            PeerInput::Recorded { link, n, result } => self.recorded(now, link, n, result),
        }
    }

    pub fn handle_timeout(&mut self, now: Now) {
        if self.exited {
            return;
        }
        self.clock = self.clock.max(now.mono);
        self.server_timeout(now);
        let links: Vec<LinkId> = self.chats.keys().copied().collect();
        for link in links {
            self.chat_timeout(now, link);
        }
    }

    // ---- poll_* ----

    pub fn poll_output(&mut self) -> Option<PeerOutput> {
        self.outputs.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.exited {
            return None;
        }
        let server = match self.server.phase {
            ServerPhase::Down { retry_at } => Some(retry_at),
            ServerPhase::Registering | ServerPhase::Registered => {
                Some(self.server.heartbeat.deadline())
            }
            ServerPhase::Connecting | ServerPhase::Gone => None,
        };
        let chats = self.chats.values().filter_map(|chat| {
            let phase = match chat.phase {
                ChatPhase::Dialing { ring_until } | ChatPhase::Calling { ring_until } => {
                    Some(ring_until)
                }
                ChatPhase::Greeting { until } | ChatPhase::Leaving { until } => Some(until),
                ChatPhase::Ringing | ChatPhase::Active => None,
            };
            let beat = (!matches!(chat.phase, ChatPhase::Dialing { .. }))
                .then(|| chat.heartbeat.deadline());
            match (phase, beat) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        });
        server.into_iter().chain(chats).min()
    }
}

// ---- user lines ----

impl Peer {
    fn handle_line(&mut self, now: Now, line: &str) {
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

    fn request_list(&mut self) {
        if !self.send_server(&ClientMsg::List) {
            self.error(
                ErrorCode::ServerUnreachable,
                "not connected to the server right now; natter is reconnecting, try again shortly",
            );
        }
    }

    fn connect_command(&mut self, now: Now, target: Target) {
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
                    if self.send_server(&ClientMsg::Lookup { name: name.clone() }) {
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
    fn dial_refusal(&self) -> Option<ErrorCode> {
        self.chats.values().find_map(|chat| match chat.phase {
            ChatPhase::Active | ChatPhase::Leaving { .. } => Some(ErrorCode::AlreadyInChat),
            ChatPhase::Dialing { .. } | ChatPhase::Calling { .. } | ChatPhase::Ringing => {
                Some(ErrorCode::RequestPending)
            }
            ChatPhase::Greeting { .. } => None,
        })
    }

    fn dial(&mut self, now: Now, addr: SocketAddr, name: Option<String>) {
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

    fn accept(&mut self, now: Now) {
        let Some(link) = self.find_chat(|p| p == ChatPhase::Ringing) else {
            return self.error(ErrorCode::NoRequest, "nobody is asking to chat");
        };
        self.send_peer(now.mono, link, &PeerMsg::Accept);
        self.start_chat(now, link);
    }

    fn reject(&mut self) {
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

    fn leave(&mut self, now: Now) {
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

    fn begin_leave(&mut self, now: Now, link: LinkId) {
        let chat = self.chats.get_mut(&link).expect("caller found it");
        if chat.unacked.is_empty() {
            self.end_chat(now, link, ChatEndReason::Left);
        } else {
            chat.phase = ChatPhase::Leaving {
                until: now.mono + self.config.leave_grace,
            };
        }
    }

    fn quit(&mut self, now: Now) {
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

    fn say(&mut self, now: Now, text: String) {
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

// ---- links ----

impl Peer {
    fn connected(&mut self, now: Now, link: LinkId) {
        if self.server.link == Some(link) {
            self.server.phase = ServerPhase::Registering;
            self.server.heartbeat = Heartbeat::new(self.config.heartbeat, now.mono);
            self.server.decoder = FrameDecoder::new(self.config.max_frame);
            self.send_server(&ClientMsg::Hello {
                version: PROTOCOL_VERSION,
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
            version: PROTOCOL_VERSION,
            name: self.config.name.clone(),
        };
        self.send_peer(now.mono, link, &hello);
    }

    fn connect_failed(&mut self, now: Now, link: LinkId, reason: &str) {
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

    fn accepted(&mut self, now: Now, link: LinkId, addr: SocketAddr) {
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

    fn receive(&mut self, now: Now, link: LinkId, bytes: &[u8]) {
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

    fn closed(&mut self, now: Now, link: LinkId) {
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

    fn recorded(&mut self, now: Now, link: LinkId, n: u64, result: Result<(), String>) {
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

// ---- the server link ----

impl Peer {
    fn connect_server(&mut self, _now: Instant) {
        let link = self.allocate_link();
        self.server.link = Some(link);
        self.server.phase = ServerPhase::Connecting;
        self.outputs.push_back(PeerOutput::Connect {
            link,
            addr: self.config.server,
        });
    }

    fn server_frame(&mut self, now: Now, frame: ServerMsg) {
        match frame {
            ServerMsg::Hello { version } if version != PROTOCOL_VERSION => {
                let message = format!(
                    "the server speaks protocol {version}, this natter speaks {PROTOCOL_VERSION}; upgrade the older side"
                );
                self.server_refused(now, ErrorCode::VersionMismatch, message);
            }
            ServerMsg::Hello { .. } => {}
            ServerMsg::Registered { name, addr } => {
                self.server.phase = ServerPhase::Registered;
                self.server.backoff = self.config.reconnect_min;
                if self.server.ever_registered {
                    self.event(Event::Reregistered);
                } else {
                    self.server.ever_registered = true;
                    let server = self.config.server;
                    self.event(Event::Registered { name, addr, server });
                }
                if self.chat_partner().is_some() {
                    self.send_server(&ClientMsg::Status {
                        status: PeerStatus::Chatting,
                    });
                }
            }
            ServerMsg::Peers { peers, more } => {
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
            ServerMsg::Found { name, peer } => {
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
            ServerMsg::Error { code, message } => {
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
    fn server_refused(&mut self, now: Now, code: ErrorCode, message: String) {
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

    fn server_down(&mut self, now: Now, reason: &str) {
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

    fn schedule_reconnect(&mut self, now: Instant) {
        let wait = self.server.backoff;
        self.server.backoff = (wait * 2).min(self.config.reconnect_max);
        self.server.phase = ServerPhase::Down {
            retry_at: now + wait,
        };
    }

    fn server_timeout(&mut self, now: Now) {
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
    fn send_server(&mut self, frame: &ClientMsg) -> bool {
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

    fn update_status(&mut self) {
        let status = if self.chat_partner().is_some() {
            PeerStatus::Chatting
        } else {
            PeerStatus::Available
        };
        self.send_server(&ClientMsg::Status { status });
    }
}

// ---- chat links ----

impl Peer {
    fn peer_frame(&mut self, now: Now, link: LinkId, frame: PeerMsg) {
        let chat = self.chats.get_mut(&link).expect("caller checked");
        match (chat.phase, frame) {
            (_, PeerMsg::Ping) => self.send_peer(now.mono, link, &PeerMsg::Pong),
            (_, PeerMsg::Pong) => {}
            (ChatPhase::Greeting { .. }, PeerMsg::Hello { version, name }) => {
                self.greeted(now, link, version, name)
            }
            (ChatPhase::Calling { .. }, PeerMsg::Hello { version, name }) => {
                if version != PROTOCOL_VERSION {
                    let message = format!(
                        "{name} speaks protocol {version}, this natter speaks {PROTOCOL_VERSION}"
                    );
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
                PeerMsg::Error { code, message },
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
            (ChatPhase::Active | ChatPhase::Leaving { .. }, PeerMsg::Error { code, message }) => {
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

    fn greeted(&mut self, now: Now, link: LinkId, version: u32, name: String) {
        if version != PROTOCOL_VERSION {
            let message = format!("this peer speaks protocol {PROTOCOL_VERSION}, not {version}");
            return self.refuse_link(link, ErrorCode::VersionMismatch, message);
        }
        if !is_valid_name(&name) {
            let message = "a name is 1-32 characters of A-Z a-z 0-9 _ -".to_string();
            return self.refuse_link(link, ErrorCode::InvalidName, message);
        }
        let hello = PeerMsg::Hello {
            version: PROTOCOL_VERSION,
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

    fn start_chat(&mut self, now: Now, link: LinkId) {
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
    fn end_chat(&mut self, now: Now, link: LinkId, reason: ChatEndReason) {
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

    fn chat_timeout(&mut self, now: Now, link: LinkId) {
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

    fn peer_protocol_error(&mut self, now: Now, link: LinkId, error: DecodeError) {
        self.peer_protocol_error_msg(now, link, error.to_string())
    }

    /// The partner broke the protocol: tell it why, close, and end
    /// whatever was going on with it.
    fn peer_protocol_error_msg(&mut self, now: Now, link: LinkId, message: String) {
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

    fn abort_call(&mut self, link: LinkId, code: ErrorCode, message: String, tell_peer: bool) {
        if tell_peer {
            self.push_send(
                link,
                &PeerMsg::Error {
                    code,
                    message: message.clone(),
                },
            );
        }
        self.drop_chat(link);
        self.error(code, message);
    }

    fn refuse_link(&mut self, link: LinkId, code: ErrorCode, message: String) {
        self.push_send(link, &PeerMsg::Error { code, message });
        self.drop_chat(link);
    }

    /// Forgets a chat and closes its link; returns the partner's name.
    fn drop_chat(&mut self, link: LinkId) -> String {
        let chat = self.chats.remove(&link);
        self.outputs.push_back(PeerOutput::Close { link });
        chat.map_or_else(String::new, |c| c.display())
    }

    fn find_chat(&self, phase: impl Fn(ChatPhase) -> bool) -> Option<LinkId> {
        self.chats
            .iter()
            .find(|(_, c)| phase(c.phase))
            .map(|(&link, _)| link)
    }

    fn send_peer(&mut self, now: Instant, link: LinkId, frame: &PeerMsg) {
        if let Some(chat) = self.chats.get_mut(&link) {
            chat.heartbeat.sent(now);
        }
        self.push_send(link, frame);
    }

    fn push_send(&mut self, link: LinkId, frame: &PeerMsg) {
        self.outputs.push_back(PeerOutput::Send {
            link,
            bytes: encode(frame),
        });
    }

    fn record(&mut self, now: Now, link: LinkId, entry: &Entry<'_>, receipt_for: Option<u64>) {
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

// ---- lifecycle ----

impl Peer {
    fn exit_if_done(&mut self) {
        if !self.quitting || self.exited || !self.chats.is_empty() {
            return;
        }
        if self.server.phase == ServerPhase::Registered {
            self.send_server(&ClientMsg::Bye);
        }
        if let Some(link) = self.server.link.take() {
            self.outputs.push_back(PeerOutput::Close { link });
        }
        self.server.phase = ServerPhase::Gone;
        self.exited = true;
        self.outputs.push_back(PeerOutput::Exit { code: 0 });
    }

    fn fatal(&mut self, code: ErrorCode, message: String) {
        self.error(code, message);
        if let Some(link) = self.server.link.take() {
            self.outputs.push_back(PeerOutput::Close { link });
        }
        for link in self.chats.keys().copied().collect::<Vec<_>>() {
            self.drop_chat(link);
        }
        self.server.phase = ServerPhase::Gone;
        self.exited = true;
        self.outputs.push_back(PeerOutput::Exit { code: 1 });
    }

    fn event(&mut self, event: Event) {
        self.outputs.push_back(PeerOutput::Event(event));
    }

    fn error(&mut self, code: ErrorCode, message: impl Into<String>) {
        self.event(Event::error(code, message));
    }
}

impl Chat {
    /// A chat just opened: `expected` is the name dialled, if any.
    fn new(
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
    fn display(&self) -> String {
        self.peer.clone().unwrap_or_else(|| self.addr.to_string())
    }
}

/// The longest message (in characters) whose `msg` frame surely fits in
/// `max_frame` bytes: a character is at most 4 bytes of UTF-8 (control
/// characters, which JSON would escape to 6, are refused), plus room for
/// the frame's other fields.
pub fn max_message_for_frame(max_frame: usize) -> usize {
    max_frame.saturating_sub(256) / 4
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
