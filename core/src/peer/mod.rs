//! One peer's brain: its link to the directory server, its chat requests
//! and its chats.
//!
//! The driver reports typed lines, connections and bytes; the peer answers
//! with connections to open, bytes to send, events for the user, transcript
//! lines to append and, at the end, an exit code. Chats are kept by link id
//! in a map: one chat at a time is the product rule today (a second request
//! gets `busy`), but nothing here assumes there is only one.

mod chat;
mod lines;
mod links;
mod server_link;

use crate::codec::FrameDecoder;
use crate::event::Event;
use crate::heartbeat::{Heartbeat, HeartbeatConfig};
use crate::link::LinkId;
use crate::protocol::{ClientMsg, ErrorCode, PeerInfo, PeerMsg, ServerMsg, MAX_FRAME};
use crate::text::is_valid_name;
use crate::time::{Instant, Now};
use crate::transcript::Direction;
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

/// The longest message (in characters) whose `msg` frame surely fits in
/// `max_frame` bytes: a character is at most 4 bytes of UTF-8 (control
/// characters, which JSON would escape to 6, are refused), plus room for
/// the frame's other fields.
pub fn max_message_for_frame(max_frame: usize) -> usize {
    max_frame.saturating_sub(256) / 4
}
