//! The directory server's brain: who is online, where they listen, whether
//! they are free.
//!
//! One [`Registry`] serves every connection of a `natter server`. The
//! driver reports connections opening and closing and the bytes they carry;
//! the registry answers with bytes to send, links to close and a log line
//! for every change of the directory (the old server printed "is now
//! chatting", "has disconnected", …).
//!
//! Registration checks reachability: a peer behind a NAT registers an
//! address nobody can dial. The registry claims the name and address at
//! once, asks the driver to connect back to that address
//! ([`RegistryOutput::Probe`]), and only when the answer comes
//! ([`RegistryInput::Probed`]) confirms the registration and lists the
//! peer, with `reachable` saying what the probe found.
//!
//! Every connection is a Noise XX session ([`crate::secure`], the server
//! link's prologue) that the registry answers itself, as the responder:
//! the driver moves ciphertext only. Nothing is read before the handshake
//! has proved the client's static key, and nothing leaves unencrypted.
//!
//! Names belong to keys. The name a connection registers is bound to the
//! key its handshake proved for [`RegistryConfig::name_ttl`] after last
//! use (see [`bindings`]): another key gets `name_taken` for it, online
//! owner or not; the same key registering while its old session is still
//! listed replaces that session at once (the old one gets `replaced` and is
//! closed). The bindings are loaded at start ([`Registry::with_bindings`])
//! and every change goes out as [`RegistryOutput::Store`].

use crate::codec::{encode, DecodeError, FrameDecoder};
use crate::heartbeat::{Beat, Heartbeat, HeartbeatConfig};
use crate::identity::{derive_seed, Fingerprint, Identity, PublicKey, KEY_LEN};
use crate::link::LinkId;
use crate::protocol::{
    negotiate, ClientMsg, ErrorCode, PeerInfo, PeerStatus, ServerMsg, Versions, LIST_CHUNK,
    MAX_FRAME,
};
use crate::rate::{RateLimit, TokenBucket};
use crate::secure::{LinkKind, LinkSeeds, SecureLink};
use crate::text::is_valid_name;
use crate::time::{Instant, Now};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

pub mod bindings;
pub mod client;
mod cluster;
pub mod presence;
pub mod refusals;
pub mod sources;
pub mod store;

pub use bindings::Binding;
use bindings::Bindings;
use cluster::Cluster;
use presence::{Presence, PresenceConfig};
use refusals::{thousands, RefusalLog};
pub use sources::SourceKey;
use sources::{ShareLimits, Sources};
pub use store::{ClaimResult, ClusterConfig, RemoteChange, StoreInput, StoreOp};

/// Limits and timings of a registry.
#[derive(Clone, Debug)]
pub struct RegistryConfig {
    /// Registered peers at most; one more gets `server_full`.
    pub max_peers: usize,
    /// Time a new connection has to send `hello` and `register`.
    pub register_timeout: Duration,
    pub heartbeat: HeartbeatConfig,
    /// Longest frame accepted from a client.
    pub max_frame: usize,
    /// Peers per `peers` frame.
    pub list_chunk: usize,
    /// Open connections from one source (an IPv4 address, an IPv6 /64),
    /// registered or not. Bounds what one machine can hold open (a
    /// slowloris, a script in a loop).
    pub max_connections_per_ip: usize,
    /// Request budget of each connection (pings excluded).
    pub requests: RateLimit,
    /// Open connections at most, from everyone: below the process's
    /// open-file limit (the driver reads it). At the cap, a connection
    /// from a source holding fewer than the heaviest source cuts one of
    /// the heaviest's; otherwise it is closed unanswered.
    pub max_connections: usize,
    /// Registrations one source may hold (names claimed or listed).
    pub max_registrations_per_source: usize,
    /// New connections (each costs a handshake) one source may open: a
    /// burst, then so many per second. Past it, closed unanswered.
    pub handshakes_per_source: RateLimit,
    /// New connections from everyone: bounds the CPU that unauthenticated
    /// handshakes can take (~300 µs each). A host with no connection open
    /// may also draw on a reserve of a quarter of it, so that a flood
    /// from a few hosts does not keep every other host out.
    pub handshakes_total: RateLimit,
    /// Request budget of each source over all its connections, kept
    /// across reconnects (pings excluded). A list costs a token per chunk
    /// of [`RegistryConfig::list_chunk`] peers in the directory.
    pub source_requests: RateLimit,
    /// Longest line accepted from a registered client: what the largest
    /// request needs (a lookup of a 32-character name is ~80 bytes), far
    /// below [`RegistryConfig::max_frame`], which only `hello` and
    /// `register` may use.
    pub max_request: usize,
    /// Longest time a line may stay unfinished: bytes that trickle in do
    /// not keep a connection alive, whole lines do.
    pub line_timeout: Duration,
    /// Whether loopback clients (users of the same host) get the
    /// per-source shares too; by default they are exempt.
    pub limit_loopback: bool,
    /// How often refusals beyond the first of each source and reason are
    /// summed up in one log line (loopback, when exempt, is logged in
    /// full).
    pub refusal_log_interval: Duration,
    /// The process's open-file limit, if the driver knows it: logged with
    /// [`RegistryConfig::max_connections`], which must fit under it.
    pub open_file_limit: Option<u64>,
    /// Bytes of queued output (counted by the driver) plus partial input
    /// (counted here) the whole server may hold; past it, the heaviest
    /// connection is cut.
    pub memory_budget: usize,
    /// Bytes of output queued for one connection before it counts as not
    /// reading and is cut (the driver enforces it): room for a whole
    /// 10,000-peer list.
    pub max_queue: usize,
    /// Reachability probes in flight at most; further registrations wait
    /// their turn, so a burst of registrations cannot make the server open
    /// thousands of connections at once.
    pub max_probes: usize,
    /// How long the driver waits for a probe's connection before calling
    /// the address unreachable.
    pub probe_timeout: Duration,
    /// The server's long-term key: every client's handshake proves it,
    /// and peers pin it per server address.
    pub identity: Identity,
    /// Every random choice of the registry (the ephemeral keys of its
    /// handshakes) comes from here: from the operating system in a real
    /// server, fixed in a simulation, which then replays byte for byte.
    pub seed: [u8; KEY_LEN],
    /// How long a name stays bound to its key after its last use.
    pub name_ttl: Duration,
    /// How often, and how much, subscribers are told who comes and goes.
    pub presence: PresenceConfig,
    /// Set when the directory is shared with other servers through a
    /// store ([`store`]); `None` (the default) for the embedded store.
    pub cluster: Option<ClusterConfig>,
}

impl Default for RegistryConfig {
    /// SPEC's limits, with a fixed identity and seed: reproducible, for
    /// tests and simulations only. A real server sets both.
    fn default() -> Self {
        Self {
            max_peers: 10_000,
            register_timeout: Duration::from_secs(10),
            heartbeat: HeartbeatConfig::default(),
            max_frame: MAX_FRAME,
            list_chunk: LIST_CHUNK,
            max_connections_per_ip: 64,
            requests: RateLimit::default(),
            max_connections: 12_000,
            max_registrations_per_source: 32,
            handshakes_per_source: RateLimit {
                burst: 128,
                per_second: 16,
            },
            handshakes_total: RateLimit {
                burst: 1_000,
                per_second: 500,
            },
            source_requests: RateLimit {
                burst: 256,
                per_second: 32,
            },
            max_request: 4 * 1024,
            line_timeout: Duration::from_secs(15),
            limit_loopback: false,
            refusal_log_interval: Duration::from_secs(10),
            open_file_limit: None,
            memory_budget: 32 << 20,
            max_queue: 2 << 20,
            max_probes: 256,
            probe_timeout: Duration::from_secs(3),
            identity: Identity::from_seed(&derive_seed(&[0; KEY_LEN], b"test server identity", 0)),
            seed: derive_seed(&[0; KEY_LEN], b"test server seed", 0),
            name_ttl: Duration::from_secs(30 * 24 * 3600),
            presence: PresenceConfig::default(),
            cluster: None,
        }
    }
}

/// What the driver reports to the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistryInput {
    /// A client connected from `addr` (the address the socket shows).
    Opened { link: LinkId, addr: SocketAddr },
    /// Bytes arrived (ciphertext, as read), split anywhere.
    Bytes { link: LinkId, bytes: Vec<u8> },
    /// The connection ended (EOF, reset or error).
    Closed { link: LinkId },
    /// The driver cut the connection because the client stopped reading
    /// (its outgoing queue filled up).
    Stalled { link: LinkId },
    /// The answer to [`RegistryOutput::Probe`]: whether a connection to
    /// the address could be opened. Every probe gets exactly one answer,
    /// also when `link` has closed meanwhile.
    Probed { link: LinkId, reachable: bool },
    /// The server is over its memory budget and this connection holds
    /// the most partial input ([`Registry::heaviest_input`]): cut it.
    OverBudget { link: LinkId },
    /// What a shared store answered or watched ([`store`]); never sent
    /// by the embedded store.
    Store(StoreInput),
}

/// What the registry asks the driver to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistryOutput {
    /// Bytes for the connection, already sealed (handshake messages and
    /// encrypted frames).
    Send { link: LinkId, bytes: Vec<u8> },
    /// Close the connection after sending what was queued before.
    Close { link: LinkId },
    /// Open a connection to `addr` (the address `link` registered), close
    /// it at once, and answer with [`RegistryInput::Probed`]; give up after
    /// [`RegistryConfig::probe_timeout`].
    Probe { link: LinkId, addr: SocketAddr },
    /// A change of the directory, for the server log.
    Log(RegistryLog),
    /// A change of the name bindings, to make durable.
    Store(StoreOp),
}

/// Why a registered peer left the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaveReason {
    /// It said `bye`.
    Left,
    /// Its connection closed without `bye`.
    Closed,
    /// Nothing heard for the heartbeat timeout.
    Lost,
    /// It sent something the server refused and was disconnected.
    Refused(ErrorCode),
    /// It stopped reading what the server sent and was cut off.
    NotReading,
}

/// One change of the directory, or a refused client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistryLog {
    Registered {
        name: String,
        addr: SocketAddr,
        /// Whether the server could connect to `addr`.
        reachable: bool,
        status: PeerStatus,
    },
    StatusChanged {
        name: String,
        status: PeerStatus,
    },
    Deregistered {
        name: String,
        reason: LeaveReason,
    },
    /// A connection was refused something: `client` is its socket address.
    Refused {
        client: SocketAddr,
        code: ErrorCode,
        detail: String,
    },
    /// The shared store cannot be reached: new registrations are refused
    /// (`store_unavailable`) until it is back. Logged once per cut.
    StoreUnreachable,
    /// The shared store answers (again): registrations are taken.
    StoreReachable,
    /// Refusals not logged one by one (see [`refusals`]): `count` of them
    /// from `from` (a source, or "N other sources") in the last `secs`.
    RefusedSummary {
        from: String,
        /// `None` when several reasons are summed up together.
        code: Option<ErrorCode>,
        count: u64,
        secs: u64,
    },
}

impl fmt::Display for RegistryLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryLog::Registered {
                name,
                addr,
                reachable: true,
                status,
            } => write!(f, "{name} registered at {addr} and is {status}"),
            RegistryLog::Registered {
                name,
                addr,
                reachable: false,
                status,
            } => write!(
                f,
                "{name} registered at {addr}, which the server cannot reach, and is {status}"
            ),
            RegistryLog::StatusChanged { name, status } => write!(f, "{name} is now {status}"),
            RegistryLog::Deregistered { name, reason } => match reason {
                LeaveReason::Left => write!(f, "{name} has disconnected (left)"),
                LeaveReason::Closed => write!(f, "{name} has disconnected (connection closed)"),
                LeaveReason::Lost => write!(f, "{name} has disconnected (lost: no heartbeat)"),
                LeaveReason::Refused(code) => {
                    write!(f, "{name} has disconnected (refused: {code})")
                }
                LeaveReason::NotReading => {
                    write!(f, "{name} has disconnected (dropped: not reading)")
                }
            },
            RegistryLog::Refused {
                client,
                code,
                detail,
            } => write!(f, "refused {client}: {code}: {detail}"),
            RegistryLog::StoreUnreachable => write!(
                f,
                "cut off from the shared directory store: new registrations are refused (store_unavailable) until it is back; registered peers and their chats go on"
            ),
            RegistryLog::StoreReachable => write!(
                f,
                "the shared directory store is reachable: registrations are taken"
            ),
            RegistryLog::RefusedSummary {
                from,
                code,
                count,
                secs,
            } => {
                let count = thousands(*count);
                write!(
                    f,
                    "refused {count} more connections from {from} in the last {secs} s"
                )?;
                match code {
                    Some(code) => write!(f, ": {code}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// The directory server's state machine.
#[derive(Debug)]
pub struct Registry {
    config: RegistryConfig,
    conns: BTreeMap<LinkId, Conn>,
    /// Registered peers by [`name_key`]: lists come out in name order,
    /// regardless of case.
    names: BTreeMap<String, LinkId>,
    /// Names claimed by a registration whose probe has not answered yet,
    /// by [`name_key`]: nobody else can take them, but they are not listed.
    claims: BTreeMap<String, LinkId>,
    /// Listening addresses, registered or claimed.
    addrs: BTreeMap<SocketAddr, LinkId>,
    /// Claims waiting for a probe slot, in link order (the order the
    /// connections opened).
    probe_queue: BTreeSet<LinkId>,
    /// Probes asked of the driver and not answered yet, including those
    /// whose connection has closed meanwhile: the driver is still dialling.
    probing: BTreeSet<LinkId>,
    /// What each source holds, and its budgets.
    sources: Sources,
    /// New connections from everyone ([`RegistryConfig::handshakes_total`]).
    handshakes: TokenBucket,
    /// A quarter more, only for hosts with no connection open: a flood
    /// from a few hosts that empties `handshakes` does not keep everyone
    /// else out.
    reserve: TokenBucket,
    /// Refusals past the first of each source and reason, summed up.
    refusals: RefusalLog,
    /// `(bytes, link)` of every connection holding partial input.
    partial: BTreeSet<(usize, LinkId)>,
    /// Their sum.
    partial_total: usize,
    /// The monotonic time of the current call.
    now: Instant,
    /// Wake-ups, earliest first. An entry may be earlier than its
    /// connection's real deadline (activity moves deadlines later, never
    /// earlier); it is then simply re-scheduled when it fires.
    timers: BTreeSet<(Instant, LinkId)>,
    outputs: VecDeque<RegistryOutput>,
    /// Frames of an unknown type skipped, on every connection so far.
    ignored_frames: u64,
    /// Which key owns which name.
    bindings: Bindings,
    /// Wall-clock unix seconds of the current call: when a name is used.
    unix_now: u64,
    /// The seeds of the handshakes' ephemeral keys, one per connection.
    seeds: LinkSeeds,
    /// Who is told of changes, and what they have not been told yet.
    presence: Presence,
    /// Set when the directory is shared with other servers.
    cluster: Option<Cluster>,
}

#[derive(Debug)]
struct Conn {
    client: SocketAddr,
    source: SourceKey,
    /// Loopback, and loopback is not limited: no per-source share applies.
    exempt: bool,
    /// Partial input counted for it in [`Registry::partial`].
    partial: usize,
    /// While it holds an unfinished line: when that line must be done.
    line_by: Option<Instant>,
    /// The connection's Noise session: every byte in and out goes
    /// through it.
    secure: SecureLink,
    /// Set when the connection was refused as it opened (too many from
    /// its address): the refusal is sent, encrypted, once the handshake
    /// completes, and the connection is closed.
    refusal: Option<(ErrorCode, String)>,
    decoder: FrameDecoder<ClientMsg>,
    heartbeat: Heartbeat,
    requests: TokenBucket,
    greeted: bool,
    /// The static key the handshake proved, once it has.
    key: Option<[u8; 32]>,
    /// Until registered: when the connection is dropped for not registering.
    register_by: Option<Instant>,
    entry: Option<Entry>,
    timer: Instant,
}

#[derive(Debug)]
struct Entry {
    name: String,
    addr: SocketAddr,
    status: PeerStatus,
    /// What the probe found; `None` while it has not answered (the name
    /// and address are claimed, but the peer is not registered yet).
    reachable: Option<bool>,
    /// The key the connection proved when it registered: listed, so that
    /// callers can check whom they reach.
    key: Option<[u8; 32]>,
    /// The entry as a list shows it (JSON), once registered: made once
    /// per change of the entry, and copied into every list.
    listed: String,
}

impl Conn {
    fn deadline(&self) -> Instant {
        let beat = self.heartbeat.deadline();
        let by = self.register_by.map_or(beat, |by| by.min(beat));
        self.line_by.map_or(by, |line| line.min(by))
    }
}

impl Registry {
    /// A registry that knows no binding yet.
    pub fn new(config: RegistryConfig, now: Now) -> Self {
        Self::with_bindings(config, now, [])
    }

    /// A registry started with the bindings the driver loaded from its
    /// store (any past the TTL go at the first registration or timer).
    pub fn with_bindings(
        config: RegistryConfig,
        now: Now,
        bindings: impl IntoIterator<Item = Binding>,
    ) -> Self {
        let total = config.handshakes_total;
        let reserve = RateLimit {
            burst: total.burst.div_ceil(4),
            per_second: total.per_second.div_ceil(4),
        };
        Self {
            handshakes: TokenBucket::new(total, now.mono),
            reserve: TokenBucket::new(reserve, now.mono),
            refusals: RefusalLog::new(config.refusal_log_interval),
            seeds: LinkSeeds::new(derive_seed(&config.seed, b"links", 0)),
            unix_now: now.wall.as_secs(),
            bindings: Bindings::new(config.name_ttl, bindings),
            presence: Presence::new(config.presence),
            cluster: config.cluster.clone().map(Cluster::new),
            config,
            conns: BTreeMap::new(),
            names: BTreeMap::new(),
            claims: BTreeMap::new(),
            addrs: BTreeMap::new(),
            probe_queue: BTreeSet::new(),
            probing: BTreeSet::new(),
            sources: Sources::default(),
            partial: BTreeSet::new(),
            partial_total: 0,
            now: now.mono,
            timers: BTreeSet::new(),
            outputs: VecDeque::new(),
            ignored_frames: 0,
        }
    }

    // ---- getters ----

    /// The server's public key, as clients see it in the handshake.
    pub fn public_key(&self) -> PublicKey {
        self.config.identity.public()
    }

    /// The fingerprint peers pin and users compare.
    pub fn fingerprint(&self) -> Fingerprint {
        self.public_key().fingerprint()
    }

    /// The directory as a list would show it to an outsider, in name order
    /// regardless of case.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let local = self
            .names
            .iter()
            .filter_map(|(key, link)| Some((key, self.conns[link].entry.as_ref()?.info())));
        let remote = self.cluster.iter().flat_map(|c| &c.remote);
        let remote = remote
            .filter(|(key, _)| !self.names.contains_key(*key))
            .map(|(key, remote)| (key, remote.info.clone()));
        let mut peers: Vec<_> = local.chain(remote).collect();
        peers.sort_by(|a, b| a.0.cmp(b.0));
        peers.into_iter().map(|(_, info)| info).collect()
    }

    /// Registered peers (those whose probe has answered).
    pub fn registered(&self) -> usize {
        self.names.len()
    }

    /// Registrations waiting for their probe, in flight or queued.
    pub fn probing(&self) -> usize {
        self.claims.len()
    }

    /// Frames of an unknown type skipped so far (sent by newer clients).
    pub fn ignored_frames(&self) -> u64 {
        self.ignored_frames
    }

    /// Open connections, registered or not.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Bytes of partial input held for every connection (unfinished Noise
    /// frames and lines): the registry's part of the memory budget.
    pub fn partial_input(&self) -> usize {
        self.partial_total
    }

    /// The connection holding the most partial input, and how much: the
    /// one to cut ([`RegistryInput::OverBudget`]) if the budget is short
    /// and it outweighs every output queue.
    pub fn heaviest_input(&self) -> Option<(LinkId, usize)> {
        self.partial.last().map(|&(bytes, link)| (link, bytes))
    }

    /// Sources (hosts) the registry remembers: those with connections or
    /// budgets not yet refilled.
    pub fn sources(&self) -> usize {
        self.sources.len()
    }

    /// Connections told of changes (`subscribe`).
    pub fn subscribers(&self) -> usize {
        self.presence.subscribers()
    }

    // ---- handle_* ----

    pub fn handle_input(&mut self, now: Now, input: RegistryInput) {
        self.unix_now = now.wall.as_secs();
        self.now = self.now.max(now.mono);
        match input {
            RegistryInput::Opened { link, addr } => self.open(now.mono, link, addr),
            RegistryInput::Bytes { link, bytes } => self.receive(now.mono, link, &bytes),
            RegistryInput::Closed { link } => self.drop_conn(link, LeaveReason::Closed),
            RegistryInput::Stalled { link } => self.drop_conn(link, LeaveReason::NotReading),
            RegistryInput::Probed { link, reachable } => self.probed(now.mono, link, reachable),
            RegistryInput::OverBudget { link } => {
                let held = self.conns.get(&link).map_or(0, |conn| conn.partial);
                let message = format!(
                    "the server is short of memory and this connection holds the most unfinished input ({held} bytes); send whole lines"
                );
                self.refuse_and_close(link, None, ErrorCode::FrameTooLong, message);
            }
            RegistryInput::Store(input) => self.store_input(now.mono, input),
        }
        self.presence.arm(now.mono);
    }

    pub fn handle_timeout(&mut self, now: Now) {
        self.unix_now = now.wall.as_secs();
        self.now = self.now.max(now.mono);
        for line in self.refusals.flush(now.mono) {
            self.log(line);
        }
        self.sources.expire(now.mono);
        // Connected clients' timers fire every few seconds: often enough
        // to record that an online owner still uses its name.
        self.expire_bindings();
        while let Some(&(at, link)) = self.timers.first() {
            if at > now.mono {
                break;
            }
            self.timers.pop_first();
            self.check_deadlines(now.mono, link);
        }
        self.cluster_timeout(now.mono);
        for (link, frame) in self.presence.flush(now.mono) {
            self.send_bytes(now.mono, link, frame);
        }
        self.presence.arm(now.mono);
    }

    // ---- poll_* ----

    pub fn poll_output(&mut self) -> Option<RegistryOutput> {
        self.outputs.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let conns = self.timers.first().map(|&(at, _)| at);
        conns
            .into_iter()
            .chain(self.presence.deadline())
            .chain(self.refusals.deadline())
            .chain(self.cluster.as_ref().and_then(Cluster::deadline))
            .min()
    }

    // ---- internals ----

    /// Whether `client` is on the server's own host and loopback is not
    /// limited: no per-source share applies to it.
    fn is_exempt(&self, client: SocketAddr) -> bool {
        !self.config.limit_loopback && client.ip().to_canonical().is_loopback()
    }

    fn open(&mut self, now: Instant, link: LinkId, client: SocketAddr) {
        let source = SourceKey::of(client.ip());
        let exempt = self.is_exempt(client);
        let limits = ShareLimits {
            handshakes: self.config.handshakes_per_source,
            requests: self.config.source_requests,
        };
        // Before any handshake work: a source (then everyone) past its
        // rate of new connections is closed unanswered, which costs the
        // server next to nothing. Telling it would cost a handshake.
        let share = self.sources.share(source, limits, now);
        if !exempt && !share.handshakes.take(now) {
            let rate = self.config.handshakes_per_source;
            let message = format!(
                "more than {} new connections at once or {} per second from {source}; closed unanswered",
                rate.burst, rate.per_second
            );
            return self.refuse_unanswered(link, client, message);
        }
        let fresh = share.links.is_empty();
        let admitted = self.handshakes.take(now) || (fresh && self.reserve.take(now));
        if !admitted {
            let rate = self.config.handshakes_total;
            let message = format!(
                "the server takes {} new connections per second; closed unanswered",
                rate.per_second
            );
            return self.refuse_unanswered(link, client, message);
        }
        if self.conns.len() >= self.config.max_connections && !self.make_room_for(source) {
            let message = format!(
                "the server holds its maximum of {} connections; closed unanswered",
                self.config.max_connections
            );
            return self.refuse_unanswered(link, client, message);
        }
        // Counted while it lives, refused or not: a refused connection
        // lasts one handshake (or the register timeout, if it stalls).
        let from_source = self.sources.connections(&source);
        let refusal = (!exempt && from_source >= self.config.max_connections_per_ip).then(|| {
            let message = format!(
                "{} connections from {source} already; close some first",
                self.config.max_connections_per_ip,
            );
            (ErrorCode::TooManyConnections, message)
        });
        self.sources.opened(source, link);
        let secure = SecureLink::responder(
            &self.config.identity,
            LinkKind::Server,
            self.seeds.next_seed(),
        );
        let conn = Conn {
            client,
            source,
            exempt,
            partial: 0,
            line_by: None,
            secure,
            refusal,
            decoder: FrameDecoder::new(self.config.max_frame),
            heartbeat: Heartbeat::new(self.config.heartbeat, now),
            requests: TokenBucket::new(self.config.requests, now),
            greeted: false,
            key: None,
            register_by: Some(now + self.config.register_timeout),
            entry: None,
            timer: now,
        };
        let at = conn.deadline();
        self.conns.insert(link, Conn { timer: at, ..conn });
        self.timers.insert((at, link));
    }

    /// Closes a new connection before its handshake; the log says why
    /// (at a bounded rate).
    fn refuse_unanswered(&mut self, link: LinkId, client: SocketAddr, detail: String) {
        self.refused(client, ErrorCode::TooManyConnections, detail);
        self.outputs.push_back(RegistryOutput::Close { link });
    }

    /// The server holds its maximum of connections and one comes from
    /// `source`: if another source holds more than one more than
    /// `source` does, its newest connection (one not registered, if it
    /// has any) is cut to make room. False if `source` is among the
    /// heaviest itself.
    fn make_room_for(&mut self, source: SourceKey) -> bool {
        let ours = self.sources.connections(&source);
        let Some((heaviest, held)) = self.sources.most_connections() else {
            return false;
        };
        if held <= ours + 1 {
            return false;
        }
        let links = &self.sources.get(&heaviest).expect("listed").links;
        let victim = links
            .iter()
            .rev()
            .find(|link| self.conns.get(link).is_some_and(|c| c.entry.is_none()))
            .or_else(|| links.last())
            .copied();
        let Some(victim) = victim else {
            return false;
        };
        let message = format!(
            "the server holds its maximum of {} connections and {heaviest} holds the most ({held}); this one is closed to make room for another host",
            self.config.max_connections
        );
        self.refuse_and_close(victim, None, ErrorCode::TooManyConnections, message);
        true
    }

    /// Ciphertext from a client: through its Noise session (answering the
    /// handshake), then the plaintext frames one at a time.
    fn receive(&mut self, now: Instant, link: LinkId, bytes: &[u8]) {
        let Some(conn) = self.conns.get_mut(&link) else {
            return;
        };
        conn.heartbeat.received(now);
        let was_established = conn.secure.is_established();
        if let Err(e) = conn.secure.push(bytes) {
            // Nothing can be said to a client whose session failed: the
            // log says why, the connection closes.
            let client = conn.client;
            let code = ErrorCode::BadFrame;
            self.refused(client, code, format!("the encrypted link failed: {e}"));
            self.outputs.push_back(RegistryOutput::Close { link });
            return self.drop_conn(link, LeaveReason::Refused(code));
        }
        self.transmit(link);
        let conn = self.conns.get_mut(&link).expect("still open");
        if !was_established && conn.secure.is_established() {
            conn.key = conn.secure.remote_key().map(|key| *key.as_bytes());
            if let Some((code, message)) = conn.refusal.take() {
                return self.refuse_and_close(link, None, code, message);
            }
        }
        while let Some(plaintext) = conn.secure.poll_plaintext() {
            conn.decoder.push(&plaintext);
        }
        while let Some(conn) = self.conns.get_mut(&link) {
            let ignored = conn.decoder.ignored();
            let next = conn.decoder.next_frame();
            self.ignored_frames += conn.decoder.ignored() - ignored;
            match next {
                None => break,
                Some(Ok(frame)) => self.handle_frame(now, link, frame),
                Some(Err(e)) => self.refuse_frame(link, e),
            }
        }
        self.count_partial(now, link);
    }

    /// Recounts what `link` holds of unfinished input (a Noise frame, a
    /// line) after its bytes were taken: for the memory budget, and for
    /// the line deadline, which starts when a line does and is not moved
    /// by the bytes that trickle in after.
    fn count_partial(&mut self, now: Instant, link: LinkId) {
        let Some(conn) = self.conns.get_mut(&link) else {
            return;
        };
        // The budget counts the memory the buffers hold; the deadline,
        // whether a frame or a line is unfinished.
        let held = conn.secure.held_memory() + conn.decoder.held_memory();
        let unfinished = conn.secure.buffered() + conn.decoder.buffered();
        let over_request =
            conn.entry.is_some() && conn.decoder.buffered() > self.config.max_request;
        self.partial.remove(&(conn.partial, link));
        self.partial_total -= conn.partial;
        conn.partial = held;
        if held > 0 {
            self.partial.insert((held, link));
            self.partial_total += held;
        }
        match (unfinished, conn.line_by) {
            (0, _) => conn.line_by = None,
            (_, Some(_)) => {}
            (_, None) => {
                let by = now + self.config.line_timeout;
                conn.line_by = Some(by);
                if by < conn.timer {
                    self.timers.remove(&(conn.timer, link));
                    conn.timer = by;
                    self.timers.insert((by, link));
                }
            }
        }
        if over_request {
            let message = format!(
                "line longer than {} bytes once registered; closing the connection",
                self.config.max_request
            );
            self.refuse_and_close(link, None, ErrorCode::FrameTooLong, message);
        }
    }

    fn handle_frame(&mut self, now: Instant, link: LinkId, frame: ClientMsg) {
        let conn = self.conns.get_mut(&link).expect("caller checked");
        let is_heartbeat = matches!(frame, ClientMsg::Ping | ClientMsg::Pong);
        if !is_heartbeat && !conn.requests.take(now) {
            let message = format!(
                "more than {} requests in a burst or {} per second; slow down and reconnect",
                self.config.requests.burst, self.config.requests.per_second
            );
            let id = frame.request_id();
            return self.refuse_and_close(link, id, ErrorCode::RateLimited, message);
        }
        if !is_heartbeat && !conn.exempt {
            let source = conn.source;
            // A list costs its host a token per chunk: its cost to the
            // server grows with the directory.
            let cost = match frame {
                ClientMsg::List { .. } => {
                    let chunk = self.config.list_chunk.max(1);
                    let listed = self.names.len() + self.remote_len();
                    u32::try_from(listed.div_ceil(chunk).max(1)).unwrap_or(u32::MAX)
                }
                _ => 1,
            };
            let share = self
                .sources
                .get_mut(&source)
                .expect("open connections have a share");
            if !share.requests.take_n(now, cost) {
                let limit = self.config.source_requests;
                let message = format!(
                    "more than {} requests in a burst or {} per second from {source}, over all its connections; slow down",
                    limit.burst, limit.per_second
                );
                let id = frame.request_id();
                return self.refuse_and_close(link, id, ErrorCode::RateLimited, message);
            }
        }
        let conn = self.conns.get_mut(&link).expect("caller checked");
        if !conn.greeted {
            match frame {
                ClientMsg::Hello { versions } => match negotiate(&versions) {
                    Ok(_) => {
                        conn.greeted = true;
                        let versions = Versions::ours();
                        self.send(now, link, &ServerMsg::Hello { versions });
                    }
                    Err(mismatch) => self.refuse_and_close(
                        link,
                        None,
                        ErrorCode::VersionMismatch,
                        format!(
                            "this server speaks protocol {}, the client {}; upgrade the older side",
                            mismatch.ours, mismatch.theirs
                        ),
                    ),
                },
                _ => self.refuse_and_close(
                    link,
                    frame.request_id(),
                    ErrorCode::BadFrame,
                    "the first frame must be {\"type\":\"hello\",\"version\":2,\"min_version\":2,\"features\":[]}".to_string(),
                ),
            }
            return;
        }
        match frame {
            ClientMsg::Hello { .. } => self.reply_error(
                now,
                link,
                None,
                ErrorCode::BadFrame,
                "hello was already received",
            ),
            ClientMsg::Register { name, port } => self.register(now, link, name, port),
            ClientMsg::List { id } => {
                if self.require_registered(now, link, id) {
                    self.send_list(now, link, id);
                    self.presence.listed(link);
                }
            }
            ClientMsg::Lookup { id, name } => {
                if !is_valid_name(&name) {
                    // Not echoed: the name may be 60 KB long.
                    let message =
                        "a name is 1-32 characters of A-Z a-z 0-9 _ -; nobody has this one";
                    return self.reply_error(now, link, id, ErrorCode::InvalidName, message);
                }
                if self.require_registered(now, link, id) {
                    let key = name_key(&name);
                    let peer = match self.names.get(&key) {
                        Some(&other) => (other != link)
                            .then(|| self.conns[&other].entry.as_ref().map(Entry::info))
                            .flatten(),
                        None => self
                            .cluster
                            .as_ref()
                            .and_then(|c| c.remote.get(&key))
                            .map(|remote| remote.info.clone()),
                    };
                    self.send(now, link, &ServerMsg::Found { id, name, peer });
                }
            }
            ClientMsg::Status {
                status: PeerStatus::Unknown,
            } => {
                let message = "unknown status; send available, chatting or busy";
                self.reply_error(now, link, None, ErrorCode::BadInput, message);
            }
            ClientMsg::Status { status } => {
                if self.require_registered(now, link, None) {
                    let entry = self.conns.get_mut(&link).and_then(|c| c.entry.as_mut());
                    let entry = entry.expect("registered");
                    if entry.status != status {
                        entry.status = status;
                        // Before its probe answers, the peer is not in the
                        // log yet: `Registered` will carry the status.
                        if entry.reachable.is_some() {
                            entry.list();
                            let name = entry.name.clone();
                            self.presence.status(&name, status);
                            self.log(RegistryLog::StatusChanged { name, status });
                            self.announce(link);
                        }
                    }
                }
            }
            ClientMsg::Subscribe => {
                if self.require_registered(now, link, None) {
                    let entry = self.conns[&link].entry.as_ref().expect("registered");
                    self.presence.subscribe(link, &entry.name.clone());
                }
            }
            ClientMsg::Ping => self.send(now, link, &ServerMsg::Pong),
            ClientMsg::Pong => {}
            ClientMsg::Bye => {
                self.outputs.push_back(RegistryOutput::Close { link });
                self.drop_conn(link, LeaveReason::Left);
            }
        }
    }

    fn register(&mut self, now: Instant, link: LinkId, name: String, port: u16) {
        let conn = &self.conns[&link];
        if let Some(entry) = &conn.entry {
            let message = format!("already registered as {}", entry.name);
            return self.reply_error(now, link, None, ErrorCode::BadInput, &message);
        }
        // Frames are read only once the handshake has proved the key.
        let (client, key, source, exempt) = (conn.client, conn.key, conn.source, conn.exempt);
        let addr = SocketAddr::new(client.ip(), port);
        self.expire_bindings();
        let mut refusal = self.registration_refusal(key, &name, addr);
        if matches!(&refusal, Err(r) if r.code == ErrorCode::ServerFull)
            && self.make_room_in_directory(source)
        {
            refusal = self.registration_refusal(key, &name, addr);
        }
        if let Ok(replaced) = refusal {
            // A session of the same key from the same source leaves room.
            let same_source = replaced
                .is_some_and(|old| self.conns.get(&old).is_some_and(|c| c.source == source));
            let held = self.sources.registrations(&source) - usize::from(same_source);
            if !exempt && held >= self.config.max_registrations_per_source {
                let message = format!(
                    "{held} names registered from {source} already; leave with one of them first"
                );
                return self.refuse_and_close(link, None, ErrorCode::TooManyConnections, message);
            }
        }
        let replaced = match refusal {
            Ok(replaced) => replaced,
            Err(Refusal { code, message }) => {
                self.refused(client, code, message.clone());
                if code == ErrorCode::ServerFull {
                    self.error_and_close(link, None, code, message);
                    return self.drop_conn(link, LeaveReason::Refused(code));
                }
                let error = ServerMsg::Error {
                    id: None,
                    code,
                    message,
                    close: false,
                };
                return self.send(now, link, &error);
            }
        };
        if self.cluster.as_ref().is_some_and(Cluster::cut_off) {
            let code = ErrorCode::StoreUnavailable;
            let message = "this server is cut off from the directory store it shares with other servers; try again later, or another server".to_string();
            self.refused(client, code, message.clone());
            let error = ServerMsg::Error {
                id: None,
                code,
                message,
                close: false,
            };
            return self.send(now, link, &error);
        }
        if let Some(old) = replaced {
            let message =
                format!("a newer session with the same key registered {name}; this one is closed");
            self.refuse_and_close(old, None, ErrorCode::Replaced, message);
        }
        let shared = self.cluster.is_some();
        if let (false, Some(key)) = (shared, key) {
            self.use_name(&name, key);
        }
        self.sources.registered(source, 1);
        let conn = self.conns.get_mut(&link).expect("exists");
        conn.register_by = None;
        // No later request needs a long line.
        conn.decoder
            .set_max_line(self.config.max_request.min(self.config.max_frame));
        conn.entry = Some(Entry {
            name: name.clone(),
            addr,
            status: PeerStatus::Available,
            reachable: None,
            key,
            listed: String::new(),
        });
        self.claims.insert(name_key(&name), link);
        self.addrs.insert(addr, link);
        match (shared, key) {
            // The store decides; the probe waits for its answer.
            (true, Some(key)) => self.claim(now, link, &name, key),
            _ => {
                self.probe_queue.insert(link);
                self.start_probes();
            }
        }
    }

    /// The directory is full and `source` registers: if another source
    /// holds more than one more name than `source` does, its newest
    /// registration is cut to make room (a few hosts cannot keep everyone
    /// else out). False if `source` is among the heaviest itself.
    fn make_room_in_directory(&mut self, source: SourceKey) -> bool {
        let ours = self.sources.registrations(&source);
        let Some((heaviest, held)) = self.sources.most_registrations() else {
            return false;
        };
        if held <= ours + 1 {
            return false;
        }
        let links = &self.sources.get(&heaviest).expect("listed").links;
        let Some(&victim) = links
            .iter()
            .rev()
            .find(|link| self.conns.get(link).is_some_and(|c| c.entry.is_some()))
        else {
            return false;
        };
        let message = format!(
            "the server holds its maximum of {} peers and {heaviest} holds the most ({held}); this registration is cut to make room for another host",
            self.config.max_peers
        );
        self.refuse_and_close(victim, None, ErrorCode::ServerFull, message);
        true
    }

    /// Why `name` at `addr` cannot be registered with `key`; if it can,
    /// the session it replaces: one of the same key, still listed under
    /// that name.
    fn registration_refusal(
        &self,
        key: Option<[u8; 32]>,
        name: &str,
        addr: SocketAddr,
    ) -> Result<Option<LinkId>, Refusal> {
        let refuse = |code, message: String| Err(Refusal { code, message });
        if !is_valid_name(name) {
            return refuse(
                ErrorCode::InvalidName,
                "a name is 1-32 characters of A-Z a-z 0-9 _ -; pick another".to_string(),
            );
        }
        let name_key = name_key(name);
        let holder = self
            .names
            .get(&name_key)
            .or_else(|| self.claims.get(&name_key));
        // Shared: the store decides, when the claim is made.
        if self.cluster.is_none()
            && self
                .bindings
                .owner(&name_key)
                .is_some_and(|owner| Some(owner) != key)
        {
            // As its owner registered it, if online.
            let owned = holder
                .and_then(|holder| self.conns[holder].entry.as_ref())
                .map_or(name, |entry| entry.name.as_str());
            return refuse(
                ErrorCode::NameTaken,
                format!(
                    "the name {owned} is owned by another key (names are unique regardless of case); pick another with --name"
                ),
            );
        }
        // The same key: its own older session (a crash, a lost link, a
        // restart), replaced at once. Any other holder's key owns the
        // name, which the binding check has refused already.
        let replaced = holder.filter(|&holder| key.is_some() && self.conns[holder].key == key);
        if let (Some(_), None) = (holder, replaced) {
            return refuse(
                ErrorCode::NameTaken,
                format!("the name {name} is already registered; pick another with --name"),
            );
        }
        if self.addrs.get(&addr).is_some_and(|at| Some(at) != replaced) {
            return refuse(
                ErrorCode::AddrTaken,
                format!("{addr} is already registered by another peer; pick another --port"),
            );
        }
        if addr.port() == 0 {
            return refuse(
                ErrorCode::BadInput,
                "port 0 cannot be dialled; register the port you listen on".to_string(),
            );
        }
        let listed = self.names.len() + self.claims.len() - usize::from(replaced.is_some());
        if listed >= self.config.max_peers {
            return refuse(
                ErrorCode::ServerFull,
                format!(
                    "the server holds its maximum of {} peers; try again later",
                    self.config.max_peers
                ),
            );
        }
        Ok(replaced.copied())
    }

    /// Ends the bindings past their TTL (before a registration looks the
    /// name up, and on timers); those of online owners are renewed.
    fn expire_bindings(&mut self) {
        if self.cluster.is_some() {
            return self.expire_shared_bindings();
        }
        let Self {
            bindings,
            names,
            claims,
            conns,
            outputs,
            ..
        } = self;
        let online = |name: &str, key: &[u8; 32]| {
            let holder = names.get(name).or_else(|| claims.get(name));
            holder.is_some_and(|holder| conns[holder].key.as_ref() == Some(key))
        };
        let store = |op| outputs.push_back(RegistryOutput::Store(op));
        bindings.expire(self.unix_now, online, store);
    }

    /// [`Registry::expire_bindings`] for a shared store: the uses it
    /// records go out as claims.
    fn expire_shared_bindings(&mut self) {
        let Self {
            bindings,
            names,
            conns,
            ..
        } = self;
        let online = |name: &str, key: &[u8; 32]| {
            let holder = names.get(name);
            holder.is_some_and(|holder| conns[holder].key.as_ref() == Some(key))
        };
        let mut ops = Vec::new();
        bindings.expire(self.unix_now, online, |op| ops.push(op));
        for op in ops {
            self.shared_use(op);
        }
    }

    /// `key` registered `name` or left under it: either is a use.
    fn use_name(&mut self, name: &str, key: [u8; 32]) {
        if let Some(op) = self.bindings.used(&name_key(name), key, self.unix_now) {
            if self.cluster.is_some() {
                return self.shared_use(op);
            }
            self.outputs.push_back(RegistryOutput::Store(op));
        }
    }

    /// Starts queued probes while there is room in flight. A claim whose
    /// connection has closed meanwhile has left the queue already.
    fn start_probes(&mut self) {
        while self.probing.len() < self.config.max_probes.max(1) {
            let Some(link) = self.probe_queue.pop_first() else {
                return;
            };
            let addr = self.conns[&link].entry.as_ref().expect("claimed").addr;
            self.probing.insert(link);
            self.outputs.push_back(RegistryOutput::Probe { link, addr });
        }
    }

    /// A probe answered: its slot is free, and its claim, if the
    /// connection is still open, becomes a registration.
    fn probed(&mut self, now: Instant, link: LinkId, reachable: bool) {
        if !self.probing.remove(&link) {
            return;
        }
        if let Some(entry) = self.conns.get_mut(&link).and_then(|c| c.entry.as_mut()) {
            entry.reachable = Some(reachable);
            entry.list();
            let (name, addr, status) = (entry.name.clone(), entry.addr, entry.status);
            let key = name_key(&name);
            self.claims.remove(&key);
            self.names.insert(key, link);
            let registered = ServerMsg::Registered {
                name: name.clone(),
                addr,
                reachable,
            };
            self.send(now, link, &registered);
            let info = self.conns[&link].entry.as_ref().expect("registered").info();
            self.presence.online(info);
            self.announce(link);
            self.log(RegistryLog::Registered {
                name,
                addr,
                reachable,
                status,
            });
        }
        self.start_probes();
    }

    /// Answers `list` in chunks of entries serialised beforehand (each
    /// entry once per change of it, see [`Entry::list`]): a list is
    /// copied together, not encoded, so asking for it again and again
    /// costs the server a copy and the encryption only.
    ///
    /// A shared registry lists the other servers' peers from its cache
    /// too, merged in name order (a name registered here wins).
    fn send_list(&mut self, now: Instant, link: LinkId, id: Option<u64>) {
        let local = self
            .names
            .values()
            .filter(|&&other| other != link)
            .filter_map(|other| self.conns[other].entry.as_ref())
            .map(|entry| entry.listed.as_str());
        let remote = self.cluster.as_ref().map(|c| &c.remote);
        let frames = match remote.filter(|remote| !remote.is_empty()) {
            None => self.list_frames(id, local),
            Some(remote) => {
                let own = self.conns[&link].entry.as_ref().map(|e| name_key(&e.name));
                let local = self
                    .names
                    .iter()
                    .filter(|&(_, &other)| other != link)
                    .filter_map(|(key, other)| {
                        let entry = self.conns[other].entry.as_ref()?;
                        Some((key.as_str(), entry.listed.as_str()))
                    });
                let remote = remote
                    .iter()
                    .filter(|&(key, _)| !self.names.contains_key(key) && Some(key) != own.as_ref())
                    .map(|(key, remote)| (key.as_str(), remote.listed.as_str()));
                let mut merged: Vec<(&str, &str)> = local.chain(remote).collect();
                merged.sort_unstable_by_key(|&(key, _)| key);
                self.list_frames(id, merged.into_iter().map(|(_, listed)| listed))
            }
        };
        for bytes in frames {
            self.send_bytes(now, link, bytes);
        }
    }

    /// The `peers` frames of a list, [`RegistryConfig::list_chunk`]
    /// entries each.
    fn list_frames<'a>(
        &self,
        id: Option<u64>,
        others: impl Iterator<Item = &'a str>,
    ) -> Vec<Vec<u8>> {
        let chunk = self.config.list_chunk.max(1);
        let mut others = others.peekable();
        let mut frames = Vec::new();
        loop {
            let peers: Vec<&str> = others.by_ref().take(chunk).collect();
            let more = others.peek().is_some();
            frames.push(peers_frame(id, &peers, more));
            if !more {
                break;
            }
        }
        frames
    }

    /// Peers registered on other servers (shared store only).
    fn remote_len(&self) -> usize {
        self.cluster.as_ref().map_or(0, |c| c.remote.len())
    }

    /// True if `link` has registered; refuses the request `id` if not. A
    /// registration waiting for its probe counts: a client may send
    /// `register` and its first requests in one write.
    fn require_registered(&mut self, now: Instant, link: LinkId, id: Option<u64>) -> bool {
        if self.conns[&link].entry.is_some() {
            return true;
        }
        self.reply_error(now, link, id, ErrorCode::NotRegistered, "register first");
        false
    }

    fn check_deadlines(&mut self, now: Instant, link: LinkId) {
        let Some(conn) = self.conns.get_mut(&link) else {
            return;
        };
        if conn.line_by.is_some_and(|by| now >= by) {
            let message = format!(
                "a line unfinished for {} s; send whole lines at once",
                self.config.line_timeout.as_secs_f32()
            );
            return self.refuse_and_close(link, None, ErrorCode::Timeout, message);
        }
        if conn.register_by.is_some_and(|by| now >= by) {
            let what = if conn.greeted {
                "register"
            } else if conn.secure.is_established() {
                "hello"
            } else {
                "encrypted handshake"
            };
            let message = format!(
                "no {what} within {} s; connect and register at once",
                self.config.register_timeout.as_secs()
            );
            return self.refuse_and_close(link, None, ErrorCode::Timeout, message);
        }
        match conn.heartbeat.check(now) {
            Beat::Lost => {
                self.outputs.push_back(RegistryOutput::Close { link });
                self.drop_conn(link, LeaveReason::Lost);
                return;
            }
            Beat::Ping => self.send(now, link, &ServerMsg::Ping),
            Beat::Idle => {}
        }
        if let Some(conn) = self.conns.get_mut(&link) {
            conn.timer = conn.deadline();
            self.timers.insert((conn.timer, link));
        }
    }

    fn refuse_frame(&mut self, link: LinkId, error: DecodeError) {
        let code = match error {
            DecodeError::TooLong { .. } => ErrorCode::FrameTooLong,
            _ => ErrorCode::BadFrame,
        };
        self.refuse_and_close(link, None, code, format!("{error}; closing the connection"));
    }

    /// Logs the refusal, sends the error, closes the link and forgets the
    /// connection.
    fn refuse_and_close(
        &mut self,
        link: LinkId,
        id: Option<u64>,
        code: ErrorCode,
        message: String,
    ) {
        let Some(conn) = self.conns.get(&link) else {
            return;
        };
        self.refused(conn.client, code, message.clone());
        self.error_and_close(link, id, code, message);
        self.drop_conn(link, LeaveReason::Refused(code));
    }

    /// Queues an error frame saying the connection closes, and then the
    /// close of the link.
    fn error_and_close(&mut self, link: LinkId, id: Option<u64>, code: ErrorCode, message: String) {
        let error = ServerMsg::Error {
            id,
            code,
            message,
            close: true,
        };
        if let Some(conn) = self.conns.get_mut(&link) {
            // Not sent if the handshake is not done: it waits in the
            // session, and the close comes first.
            let _ = conn.secure.send(&encode(&error));
            self.transmit(link);
        }
        self.outputs.push_back(RegistryOutput::Close { link });
    }

    /// Refuses one request; the connection stays open.
    fn reply_error(
        &mut self,
        now: Instant,
        link: LinkId,
        id: Option<u64>,
        code: ErrorCode,
        message: &str,
    ) {
        let frame = ServerMsg::Error {
            id,
            code,
            message: message.to_string(),
            close: false,
        };
        self.send(now, link, &frame);
    }

    fn send(&mut self, now: Instant, link: LinkId, frame: &ServerMsg) {
        self.send_bytes(now, link, encode(frame));
    }

    /// Seals `bytes` (frames) for `link` and queues them.
    fn send_bytes(&mut self, now: Instant, link: LinkId, bytes: Vec<u8>) {
        let Some(conn) = self.conns.get_mut(&link) else {
            return;
        };
        conn.heartbeat.sent(now);
        // Fails only past a failed session or more than the session's
        // bound before the handshake completes: frames are not answered
        // before it does.
        let _ = conn.secure.send(&bytes);
        self.transmit(link);
    }

    /// Queues what `link`'s Noise session has ready to go out.
    fn transmit(&mut self, link: LinkId) {
        let Some(conn) = self.conns.get_mut(&link) else {
            return;
        };
        while let Some(bytes) = conn.secure.poll_transmit() {
            self.outputs.push_back(RegistryOutput::Send { link, bytes });
        }
    }

    /// Forgets a connection and, if it was registered, its entry.
    fn drop_conn(&mut self, link: LinkId, reason: LeaveReason) {
        let Some(conn) = self.conns.remove(&link) else {
            return;
        };
        self.timers.remove(&(conn.timer, link));
        self.presence.unsubscribe(link);
        self.sources.closed(conn.source, link);
        if self.partial.remove(&(conn.partial, link)) {
            self.partial_total -= conn.partial;
        }
        // A claim not answered yet is no use of the name (it may be lost).
        let claiming = self
            .cluster
            .as_mut()
            .is_some_and(|cluster| cluster.done_waiting(link));
        if let Some(entry) = conn.entry {
            self.sources.registered(conn.source, -1);
            if let (Some(key), false) = (conn.key, claiming) {
                self.use_name(&entry.name, key);
            }
            self.addrs.remove(&entry.addr);
            let key = name_key(&entry.name);
            if entry.reachable.is_none() {
                // Never registered: nobody was told it came, nor goes.
                self.claims.remove(&key);
                self.probe_queue.remove(&link);
                return;
            }
            self.names.remove(&key);
            self.withdraw(&entry.name);
            match self.cluster.as_ref().and_then(|c| c.remote.get(&key)) {
                // Another server lists the name too (the peer moved there).
                Some(remote) => self.presence.online(remote.info.clone()),
                None => self.presence.offline(&entry.name),
            }
            self.log(RegistryLog::Deregistered {
                name: entry.name,
                reason,
            });
        }
    }

    fn log(&mut self, log: RegistryLog) {
        self.outputs.push_back(RegistryOutput::Log(log));
    }

    /// Logs a refusal, unless its source was refused the same way in this
    /// interval already: then it is counted for the summary.
    fn refused(&mut self, client: SocketAddr, code: ErrorCode, detail: String) {
        // The server's own host is trusted with every line, as it is with
        // every share (unless loopback is limited).
        if self.is_exempt(client) {
            return self.log(RegistryLog::Refused {
                client,
                code,
                detail,
            });
        }
        let source = SourceKey::of(client.ip());
        for line in self.refusals.flush(self.now) {
            self.log(line);
        }
        if self.refusals.admit(self.now, source, code) {
            self.log(RegistryLog::Refused {
                client,
                code,
                detail,
            });
        }
    }
}

/// One `peers` frame from entries serialised beforehand: the same bytes as
/// encoding [`ServerMsg::Peers`] with those entries.
fn peers_frame(id: Option<u64>, peers: &[&str], more: bool) -> Vec<u8> {
    let size = peers.iter().map(|p| p.len() + 1).sum::<usize>() + 64;
    let mut frame = Vec::with_capacity(size);
    frame.extend_from_slice(b"{\"type\":\"peers\",");
    if let Some(id) = id {
        frame.extend_from_slice(format!("\"id\":{id},").as_bytes());
    }
    frame.extend_from_slice(b"\"peers\":[");
    for (i, peer) in peers.iter().enumerate() {
        if i > 0 {
            frame.push(b',');
        }
        frame.extend_from_slice(peer.as_bytes());
    }
    frame.extend_from_slice(if more {
        b"],\"more\":true}\n"
    } else {
        b"],\"more\":false}\n"
    });
    frame
}

/// A refused registration: what the client is told.
struct Refusal {
    code: ErrorCode,
    message: String,
}

/// The key a name is unique under: names differ only if they differ
/// regardless of case (valid names are ASCII).
fn name_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

impl Entry {
    /// Serialises the entry for lists, after it changed.
    fn list(&mut self) {
        self.listed = serde_json::to_string(&self.info()).expect("a PeerInfo always serialises");
    }

    /// The entry as listed; only called for registered entries.
    fn info(&self) -> PeerInfo {
        PeerInfo {
            name: self.name.clone(),
            addr: self.addr,
            status: self.status,
            reachable: self.reachable.unwrap_or(false),
            key: self.key.map(crate::identity::PublicKey::from_bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_chunk_copied_together_is_the_frame_encoding_would_give() {
        let peer = |name: &str, key: Option<[u8; 32]>| PeerInfo {
            name: name.to_string(),
            addr: "[2001:db8::7]:4000".parse().unwrap(),
            status: PeerStatus::Busy,
            reachable: true,
            key: key.map(PublicKey::from_bytes),
        };
        let peers = vec![peer("ann", Some([7; 32])), peer("bob", None)];
        let listed: Vec<String> = peers
            .iter()
            .map(|p| serde_json::to_string(p).unwrap())
            .collect();
        let listed: Vec<&str> = listed.iter().map(String::as_str).collect();
        for (id, more) in [(None, false), (Some(42), true), (Some(u64::MAX), false)] {
            let encoded = encode(&ServerMsg::Peers {
                id,
                peers: peers.clone(),
                more,
            });
            assert_eq!(peers_frame(id, &listed, more), encoded);
        }
        let empty = encode(&ServerMsg::Peers {
            id: None,
            peers: vec![],
            more: false,
        });
        assert_eq!(peers_frame(None, &[], false), empty);
    }
}
