//! One peer's brain: its link to the directory server, its calls and its
//! chats.
//!
//! The driver reports typed commands, connections and bytes; the peer
//! answers with connections to open, bytes to send, events for the user,
//! transcript lines to append and, at the end, an exit code.
//!
//! The peer is built from sub-machines that own their data: each chat is a
//! [`chat::Chat`] (its phase enum carries what only that phase has), the
//! server link a [`server_link::ServerLink`]. `Peer` routes inputs to them,
//! decides what needs the whole picture (room for a caller, the status the
//! directory shows), and ends every chat through one path
//! ([`Peer::finish`]). Chats are kept by link id, up to
//! [`PeerConfig::max_chats`] at once (calls ringing either way count);
//! which of them a command means is [`focus`]'s business.

mod callers;
mod chat;
mod commands;
mod focus;
pub mod missed;
mod quota;
pub mod server_errors;
mod server_link;
mod servers;

use crate::command::Command;
use crate::event::{ErrorDetail, Event, Problem};
use crate::heartbeat::HeartbeatConfig;
use crate::identity::{derive_seed, Identity, PublicKey, KEY_LEN};
use crate::link::LinkId;
use crate::protocol::{ErrorCode, PeerMsg, PeerStatus, Versions, MAX_FRAME};
use crate::rate::RateLimit;
use crate::secure::LinkSeeds;
use crate::time::{Instant, Now};
use callers::{Admission, Callers};
use chat::{Chat, Directory, End, Partner, Signal, Stage};
use missed::MissedCalls;
use quota::DayQuota;
use server_link::ServerLink;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

pub use chat::ChatTimer;

/// A peer's settings.
#[derive(Clone, Debug)]
pub struct PeerConfig {
    pub name: String,
    /// The directory servers' addresses, in the order to try them: the
    /// peer registers with the first that answers and moves on to the
    /// next when one fails or is lost (see `servers.rs`). At least one;
    /// an address given twice counts once.
    pub servers: Vec<SocketAddr>,
    /// The port this peer's listener is bound to (already bound by the
    /// driver, so never 0).
    pub listen_port: u16,
    /// Longest message the user may send, and the partner may send us, in
    /// characters.
    pub max_message: usize,
    /// How long a call rings: our own call before `no_answer`, and a
    /// caller's request on our screen before `missed`.
    pub ring_timeout: Duration,
    /// How long `/leave` waits for outstanding receipts.
    pub leave_grace: Duration,
    /// Time an incoming connection has to send its `hello`.
    pub handshake_timeout: Duration,
    pub heartbeat: HeartbeatConfig,
    /// Shortest and longest wait before reconnecting to a lost server
    /// (doubling in between, with jitter).
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// Messages in flight without receipt per chat; more typed messages
    /// wait for receipts.
    pub window: usize,
    /// Typed messages waiting for the window, per chat, before the peer
    /// stops taking lines for that chat (backpressure on whoever writes
    /// them). Per chat, so that a partner who stops acknowledging holds
    /// up only the lines meant for it; over all chats this bounds what
    /// waits to `max_chats × max_waiting` messages.
    pub max_waiting: usize,
    /// Chats at once: conversations and calls ringing either way. A
    /// caller beyond it gets `busy`, a `/connect` `chats_full`. 0 counts
    /// as 1.
    pub max_chats: usize,
    /// Longest frame accepted on any link.
    pub max_frame: usize,
    /// Most peers kept from one list answer.
    pub max_list: usize,
    /// Incoming connections that have not said hello yet (or are being
    /// verified), at most. At the cap, the oldest of the source holding
    /// the most is cut for a newcomer (see [`callers`]).
    pub max_pending_incoming: usize,
    /// Incoming connections from one source (an IPv4 address or an IPv6
    /// /64) that are not yet a conversation (waiting for their hello,
    /// being verified, ringing), at most; more are closed at once.
    pub max_calls_per_source: usize,
    /// New incoming connections per source: a burst, then so many a
    /// second; more are closed at once.
    pub calls_per_source: RateLimit,
    /// Count loopback callers (users of this host) per source too; by
    /// default they are exempt from the per-source limits.
    pub limit_loopback: bool,
    /// Bytes one chat's transcript may take; past it the chat ends
    /// (`quota`).
    pub transcript_quota_chat: u64,
    /// Bytes all transcripts may take in one UTC day; past it every chat
    /// that records a message ends (`quota`).
    pub transcript_quota_day: u64,
    /// Bytes written to transcripts earlier today, before this process
    /// started (the driver counts them), towards `transcript_quota_day`.
    pub transcript_used_today: u64,
    /// Subscribe to live presence (`peer_online`, `peer_offline`,
    /// `peer_status`) after each registration. Off in [`PeerConfig::new`]
    /// (tests and simulations that are not about presence see only the
    /// events they wait for); `natter peer` turns it on.
    pub presence: bool,
    /// This peer's long-term key: its chat links are Noise XX handshakes
    /// proving it, and partners see its fingerprint.
    pub identity: Identity,
    /// Keys pinned at earlier chats, by name in lower case (trust on first
    /// use, like SSH's known_hosts): a partner presenting another key for
    /// a pinned name is refused (`key_changed`).
    pub known_peers: BTreeMap<String, PublicKey>,
    /// The keys pinned for server addresses at earlier runs
    /// (known_servers): a server proving another key than the one pinned
    /// for its address is refused (`server_key_changed`). An address
    /// without one gets the key its server proves now pinned. Each
    /// address has its own: servers sharing a directory may have
    /// different keys.
    pub server_keys: BTreeMap<SocketAddr, PublicKey>,
    /// Every random choice of the peer comes from here: the ephemeral
    /// keys of its links and the jitter of reconnection delays. A real
    /// peer takes it from the operating system; a simulation passes a
    /// fixed one, and stays reproducible, ciphertext included.
    pub seed: [u8; KEY_LEN],
}

impl PeerConfig {
    /// The defaults of SPEC.md for a peer named `name`, with an identity
    /// and a seed derived from the name: reproducible, for tests and
    /// simulations only. A real peer sets `identity` (from its key file)
    /// and `seed` (from the operating system).
    pub fn new(name: impl Into<String>, server: SocketAddr, listen_port: u16) -> Self {
        let name = name.into();
        let mut base = [0u8; KEY_LEN];
        let bytes = name.as_bytes();
        base[..bytes.len().min(KEY_LEN)].copy_from_slice(&bytes[..bytes.len().min(KEY_LEN)]);
        let identity = Identity::from_seed(&derive_seed(&base, b"test identity", 0));
        let seed = derive_seed(&base, b"test seed", 0);
        Self {
            identity,
            known_peers: BTreeMap::new(),
            server_keys: BTreeMap::new(),
            seed,
            name,
            servers: vec![server],
            listen_port,
            max_message: 256,
            ring_timeout: Duration::from_secs(30),
            leave_grace: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(5),
            heartbeat: HeartbeatConfig::default(),
            reconnect_min: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(4),
            window: 64,
            max_waiting: 64,
            max_chats: 4,
            max_frame: MAX_FRAME,
            max_list: 100_000,
            max_pending_incoming: 32,
            max_calls_per_source: 4,
            calls_per_source: RateLimit {
                burst: 8,
                per_second: 1,
            },
            limit_loopback: false,
            transcript_quota_chat: 16 << 20,
            transcript_quota_day: 128 << 20,
            transcript_used_today: 0,
            presence: false,
        }
    }
}

/// What the driver reports to the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerInput {
    /// A command the user typed (parsed by the user interface).
    Command(Command),
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
    /// The driver cut the connection because the other side stopped
    /// reading (its outgoing queue overflowed).
    Stalled { link: LinkId },
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
    /// Pin `key` for `name` (lower case): it was met for the first time,
    /// or the user trusted it (`/trust`), replacing an older pin. The
    /// driver keeps it (the known_peers file, where the last line for a
    /// name wins) for later runs.
    Pin {
        name: String,
        key: PublicKey,
    },
    /// Pin `key` for the server at `addr`: its first handshake proved it.
    /// The driver keeps it (the known_servers file) for later runs.
    PinServer {
        addr: SocketAddr,
        key: PublicKey,
    },
    /// The peer is done; exit the process with this code.
    Exit {
        code: i32,
    },
}

/// A deadline of the peer, by name: what [`Peer::next_timer`] says the
/// next wake-up is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// Reconnect to the server.
    ServerRetry,
    /// Ping the server, or give it up as silent.
    ServerHeartbeat,
    /// A deadline of the chat on this link.
    Chat(LinkId, ChatTimer),
    /// Tell the user about the calls missed in the last interval.
    MissedCalls,
}

/// What a sub-machine needs from the peer while it handles an input: the
/// time, the settings, and where its outputs go.
pub(crate) struct Ctx<'a> {
    pub(crate) now: Now,
    pub(crate) config: &'a PeerConfig,
    pub(crate) out: &'a mut VecDeque<PeerOutput>,
    /// Keys pinned for names: those from earlier runs and those met now.
    pub(crate) pins: &'a mut BTreeMap<String, PublicKey>,
    /// Notices of calls the user never answered, bounded.
    pub(super) missed: &'a mut MissedCalls,
    /// Transcript bytes written today.
    pub(super) day_quota: &'a mut DayQuota,
}

/// One chat peer's state machine.
#[derive(Debug)]
pub struct Peer {
    config: PeerConfig,
    next_link: u64,
    outputs: VecDeque<PeerOutput>,
    server: ServerLink,
    chats: BTreeMap<LinkId, Chat>,
    /// Where plain lines go: a conversation (see [`focus`]).
    focus: Option<LinkId>,
    /// When each chat last rang or started, counted in rings and starts:
    /// the oldest request is the one `/accept` takes, the most recently
    /// started conversation the one that takes the focus when the focused
    /// one ends.
    turns: BTreeMap<LinkId, u64>,
    next_turn: u64,
    /// The status the server was last told, so it is told only changes.
    status_sent: Option<PeerStatus>,
    /// The seeds of the links' ephemeral keys, one per link.
    seeds: LinkSeeds,
    /// Keys pinned for names (see [`PeerConfig::known_peers`]).
    pins: BTreeMap<String, PublicKey>,
    /// New-connection budgets of the sources that called lately.
    callers: Callers,
    missed: MissedCalls,
    day_quota: DayQuota,
    quitting: bool,
    exited: bool,
    /// The monotonic time of the `handle_*` call in progress.
    clock: Now,
}

impl Peer {
    /// A peer that starts by connecting to its server.
    pub fn new(config: PeerConfig, now: Now) -> Self {
        let seeds = LinkSeeds::new(derive_seed(&config.seed, b"links", 0));
        let pins = config.known_peers.clone();
        let mut peer = Self {
            server: ServerLink::new(&config),
            day_quota: DayQuota::new(&config, now),
            config,
            next_link: 0,
            outputs: VecDeque::new(),
            chats: BTreeMap::new(),
            focus: None,
            turns: BTreeMap::new(),
            next_turn: 0,
            status_sent: None,
            pins,
            seeds,
            callers: Callers::default(),
            missed: MissedCalls::default(),
            quitting: false,
            exited: false,
            clock: now,
        };
        let longest = max_message_for_frame(peer.config.max_frame);
        if !(1..=longest).contains(&peer.config.max_message) {
            let detail = ErrorDetail::MessageLimitOutOfRange {
                max_message: peer.config.max_message,
                longest,
            };
            peer.fatal(Problem::new(ErrorCode::BadInput, detail));
        } else if peer.config.servers.is_empty() {
            let detail = ErrorDetail::ServerAddress {
                server: String::new(),
                reason: "no server address given".to_string(),
            };
            peer.fatal(Problem::new(ErrorCode::ServerUnreachable, detail));
        } else if crate::text::is_valid_name(&peer.config.name) {
            peer.connect_server();
        } else {
            let detail = ErrorDetail::OwnNameInvalid {
                name: crate::text::sanitize(&peer.config.name, 64),
            };
            peer.fatal(Problem::new(ErrorCode::InvalidName, detail));
        }
        peer
    }

    // ---- getters ----

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Whether the server has confirmed our registration.
    pub fn is_registered(&self) -> bool {
        self.server.is_registered()
    }

    /// The partner of a conversation in progress, if any: the focused
    /// one first.
    pub fn chat_partner(&self) -> Option<String> {
        let talking = |c: &&Chat| matches!(c.stage(), Stage::Talking | Stage::Leaving);
        let focused = self.focus.and_then(|link| self.chats.get(&link));
        focused
            .into_iter()
            .chain(self.chats.values())
            .find(talking)
            .map(Chat::partner)
    }

    /// The partner of the focused chat, where plain lines go.
    pub fn focused(&self) -> Option<String> {
        self.focus.map(|link| self.chats[&link].partner())
    }

    /// Whether the peer takes a plain line now (see [`Peer::accepts`]).
    pub fn accepts_lines(&self) -> bool {
        self.accepts(&Command::Say(String::new()))
    }

    /// Whether the peer takes `command` now. Commands are always taken;
    /// a message only while the chat it goes to has fewer than
    /// `max_waiting` messages waiting for its window. Until then the
    /// driver holds it and reads no further input, which pushes back on
    /// whoever writes it, and the other chats are not held up: a message
    /// for them, or a command, is taken meanwhile.
    pub fn accepts(&self, command: &Command) -> bool {
        if self.exited {
            return false;
        }
        let chat = match command {
            Command::Say(_) => self.focus,
            Command::Msg { to, .. } => self.named(to, &[Stage::Talking]),
            _ => None,
        };
        chat.is_none_or(|link| self.chats[&link].waiting() < self.config.max_waiting)
    }

    /// Typed messages waiting for room in their chat's window.
    pub fn waiting(&self) -> usize {
        self.chats.values().map(Chat::waiting).sum()
    }

    /// Whether the peer has exited.
    pub fn has_exited(&self) -> bool {
        self.exited
    }

    /// The next deadline and what it is for.
    pub fn next_timer(&self) -> Option<(Instant, Timer)> {
        if self.exited {
            return None;
        }
        let chats = self.chats.iter().filter_map(|(&link, chat)| {
            chat.deadline()
                .map(|(at, timer)| (at, Timer::Chat(link, timer)))
        });
        let missed = self.missed.deadline().map(|at| (at, Timer::MissedCalls));
        self.server
            .deadline()
            .into_iter()
            .chain(chats)
            .chain(missed)
            .min()
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
        self.tick(now);
        match input {
            PeerInput::Command(command) => self.command(command),
            PeerInput::EndOfInput => self.quit(),
            PeerInput::Connected { link } => self.connected(link),
            PeerInput::ConnectFailed { link, reason } => self.connect_failed(link, reason),
            PeerInput::Accepted { link, addr } => self.accepted(link, addr),
            PeerInput::Bytes { link, bytes } => self.receive(link, &bytes),
            PeerInput::Closed { link } => self.closed(link, End::Closed),
            PeerInput::Stalled { link } => self.closed(link, End::Cut),
            PeerInput::Recorded { link, n, result } => {
                let (mut ctx, chats) = self.split();
                if let Some(chat) = chats.get_mut(&link) {
                    chat.recorded(&mut ctx, n, result);
                }
            }
        }
    }

    pub fn handle_timeout(&mut self, now: Now) {
        if self.exited {
            return;
        }
        self.tick(now);
        self.server_timeout();
        if let Some(summary) = self.missed.summary(now.mono, false) {
            self.event(summary);
        }
        let due: Vec<LinkId> = self
            .chats
            .iter()
            .filter(|(_, c)| c.deadline().is_some_and(|(at, _)| at <= now.mono))
            .map(|(&link, _)| link)
            .collect();
        for link in due {
            let (mut ctx, chats) = self.split();
            let Some(chat) = chats.get_mut(&link) else {
                continue;
            };
            if let Some(end) = chat.on_timeout(&mut ctx) {
                self.finish(link, end);
            }
        }
    }

    // ---- poll_* ----

    pub fn poll_output(&mut self) -> Option<PeerOutput> {
        self.outputs.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_timer().map(|(at, _)| at)
    }
}

// ---- routing ----

impl Peer {
    fn tick(&mut self, now: Now) {
        let mono = self.clock.mono.max(now.mono);
        self.clock = Now { mono, ..now };
    }

    /// The context for a sub-machine, beside the chats it may borrow.
    fn split(&mut self) -> (Ctx<'_>, &mut BTreeMap<LinkId, Chat>) {
        let ctx = Ctx {
            now: self.clock,
            config: &self.config,
            out: &mut self.outputs,
            pins: &mut self.pins,
            missed: &mut self.missed,
            day_quota: &mut self.day_quota,
        };
        (ctx, &mut self.chats)
    }

    fn connected(&mut self, link: LinkId) {
        if self.server.owns(link) {
            return self.server_connected();
        }
        let (mut ctx, chats) = self.split();
        if let Some(chat) = chats.get_mut(&link) {
            chat.connected(&mut ctx);
            self.update_status();
        }
    }

    fn connect_failed(&mut self, link: LinkId, reason: String) {
        if self.server.owns(link) {
            return self.server_down(&reason);
        }
        if self.chats.contains_key(&link) {
            self.finish(link, End::Unreachable { reason });
            // Whatever the user dialled from is stale: show a fresh list.
            if self.server.is_registered() {
                self.request_list();
            }
        }
    }

    /// A connection to us: let it say hello if its source has room (see
    /// [`callers`]), cutting an older one of the heaviest source if the
    /// places are all taken.
    fn accepted(&mut self, link: LinkId, addr: SocketAddr) {
        if self.quitting {
            return self.outputs.push_back(PeerOutput::Close { link });
        }
        let now = self.clock.mono;
        match self.callers.admit(now, addr, &self.config, &self.chats) {
            Admission::Admit => {}
            Admission::Refuse => return self.outputs.push_back(PeerOutput::Close { link }),
            Admission::AdmitCutting(oldest) => self.finish(oldest, End::Quiet),
        }
        let seed = self.seeds.next_seed();
        let (ctx, chats) = self.split();
        chats.insert(link, Chat::accepted(&ctx, link, addr, seed));
    }

    fn receive(&mut self, link: LinkId, bytes: &[u8]) {
        if self.server.owns(link) {
            return self.server_bytes(bytes);
        }
        let (mut ctx, chats) = self.split();
        let Some(chat) = chats.get_mut(&link) else {
            return;
        };
        if let Err(problem) = chat.push_bytes(&mut ctx, bytes) {
            // The link's cryptography failed (tampered, truncated, not
            // Noise at all): nothing more can be said on it.
            return self.finish(link, End::Insecure { problem });
        }
        loop {
            let (mut ctx, chats) = self.split();
            let Some(chat) = chats.get_mut(&link) else {
                return;
            };
            let Some(signal) = chat.next_frame(&mut ctx) else {
                return;
            };
            if let Some(signal) = signal {
                self.signal(link, signal);
            }
        }
    }

    /// Acts on what a chat reported.
    fn signal(&mut self, link: LinkId, signal: Signal) {
        match signal {
            Signal::Greeted { caller } => self.greeted(link, caller),
            Signal::Verify { name } => self.verify_caller(link, name),
            Signal::Answered => self.answered(link),
            Signal::Started => self.started(link),
            Signal::Ended(end) => self.finish(link, end),
        }
    }

    /// The directory's answer about the caller on `link`.
    fn caller_listed(&mut self, link: LinkId, directory: Directory) {
        let (mut ctx, chats) = self.split();
        let Some(chat) = chats.get_mut(&link) else {
            return; // the caller went away meanwhile
        };
        if let Some(signal) = chat.listed(&mut ctx, directory) {
            self.signal(link, signal);
        }
    }

    /// A caller said hello: ring if there is room, else answer `busy`.
    /// A caller we already have a chat or a call with gets `busy` too: a
    /// name is one chat (two calls crossing each other both get `busy`,
    /// as with one chat at a time). That second call is no call the user
    /// missed: it ends without a notice. A caller whose host has its
    /// share of calls ringing already ([`callers::ringing_share`]) gets
    /// `busy` too.
    fn greeted(&mut self, link: LinkId, caller: Partner) {
        let second = self.named(&caller.name, &Stage::OPEN).is_some();
        let busy = second
            || self.is_full()
            || callers::rings_past_its_share(link, &self.config, &self.chats);
        let (mut ctx, chats) = self.split();
        let Some(chat) = chats.get_mut(&link) else {
            return;
        };
        if busy {
            chat.answer_busy(&mut ctx);
            let end = if second {
                End::Quiet
            } else {
                End::NoRoom {
                    caller: caller.name,
                }
            };
            return self.finish(link, end);
        }
        chat.ring(&mut ctx, caller);
        self.take_turn(link);
        self.update_status();
    }

    /// The peer we called on `link` said who it is: a call placed by
    /// address to someone we have a chat or call with already ends there
    /// (a name is one chat), before it rings.
    fn answered(&mut self, link: LinkId) {
        let Some(name) = self.chats.get(&link).map(Chat::partner) else {
            return;
        };
        let Some((code, detail)) = self.one_chat_per_name(Some(link), &name) else {
            return;
        };
        let (mut ctx, chats) = self.split();
        let Some(chat) = chats.get_mut(&link) else {
            return;
        };
        let end = chat.refuse_second_chat(&mut ctx, code, detail);
        self.finish(link, end);
    }

    fn closed(&mut self, link: LinkId, end: End) {
        if self.server.owns(link) {
            let reason = match end {
                End::Cut => "the server stopped reading",
                _ => "the server closed the connection",
            };
            return self.server_down(reason);
        }
        self.finish(link, end);
    }

    /// The one way a chat ends: the chat reports it, then the peer tells
    /// the server its new status and exits if it was quitting.
    fn finish(&mut self, link: LinkId, end: End) {
        let Some(chat) = self.chats.remove(&link) else {
            return;
        };
        self.turns.remove(&link);
        let (mut ctx, _) = self.split();
        chat.finish(&mut ctx, end);
        self.refocus();
        self.update_status();
        self.exit_if_done();
    }

    /// What the directory should show: `available` with no chat open,
    /// `busy` with no room for another (a caller would get `busy`), else
    /// `chatting`.
    fn status(&self) -> PeerStatus {
        match self.open_chats() {
            0 => PeerStatus::Available,
            _ if self.is_full() => PeerStatus::Busy,
            _ => PeerStatus::Chatting,
        }
    }

    fn update_status(&mut self) {
        let status = self.status();
        if self.status_sent != Some(status) && self.server.is_registered() {
            self.status_sent = Some(status);
            self.send_server(&crate::protocol::ClientMsg::Status { status });
        }
    }
}

// ---- lifecycle ----

impl Peer {
    fn exit_if_done(&mut self) {
        if !self.quitting || self.exited || !self.chats.is_empty() {
            return;
        }
        if self.server.first_registration_pending() {
            // Input ended before the server answered (`</dev/null`): the
            // user still learns whether registering worked, then natter
            // leaves.
            return;
        }
        self.server_goodbye();
        self.tell_missed();
        self.exited = true;
        self.outputs.push_back(PeerOutput::Exit { code: 0 });
    }

    fn fatal(&mut self, problem: Problem) {
        self.event(problem.into());
        self.server_close();
        // Chats end as if the user left (a `/connect IP:PORT` works
        // before registering): reported, recorded, partner told. Marked
        // exited first, so ending them does not exit a second time.
        self.exited = true;
        for link in self.chats.keys().copied().collect::<Vec<_>>() {
            self.finish(link, End::Left);
        }
        self.outputs.push_back(PeerOutput::Exit { code: 1 });
    }

    /// The calls missed since the last summary, before the peer exits.
    fn tell_missed(&mut self) {
        if let Some(summary) = self.missed.summary(self.clock.mono, true) {
            self.event(summary);
        }
    }

    fn event(&mut self, event: Event) {
        self.outputs.push_back(PeerOutput::Event(event));
    }

    fn error(&mut self, code: ErrorCode, detail: ErrorDetail) {
        self.event(Event::error(code, detail));
    }
}

/// Our `hello` on a chat link.
fn peer_hello(config: &PeerConfig) -> PeerMsg {
    PeerMsg::Hello {
        versions: Versions::ours(),
        name: config.name.clone(),
        max_message: Some(config.max_message),
    }
}

/// The longest message (in characters) whose `msg` frame surely fits in
/// `max_frame` bytes: a character is at most 4 bytes of UTF-8 (control
/// characters, which JSON would escape to 6, are refused), plus room for
/// the frame's other fields.
pub fn max_message_for_frame(max_frame: usize) -> usize {
    max_frame.saturating_sub(256) / 4
}
