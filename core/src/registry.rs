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
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub mod bindings;
pub mod client;
pub mod presence;

use bindings::Bindings;
pub use bindings::{Binding, StoreOp};
use presence::{Presence, PresenceConfig};

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
    /// Open connections from one IP address, registered or not. Bounds
    /// what one machine can hold open (a slowloris, a script in a loop).
    pub max_connections_per_ip: usize,
    /// Request budget of each connection (pings excluded).
    pub requests: RateLimit,
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
            max_probes: 256,
            probe_timeout: Duration::from_secs(3),
            identity: Identity::from_seed(&derive_seed(&[0; KEY_LEN], b"test server identity", 0)),
            seed: derive_seed(&[0; KEY_LEN], b"test server seed", 0),
            name_ttl: Duration::from_secs(30 * 24 * 3600),
            presence: PresenceConfig::default(),
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
    /// Open connections per client IP.
    per_ip: BTreeMap<IpAddr, usize>,
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
}

#[derive(Debug)]
struct Conn {
    client: SocketAddr,
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
}

impl Conn {
    fn deadline(&self) -> Instant {
        let beat = self.heartbeat.deadline();
        self.register_by.map_or(beat, |by| by.min(beat))
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
        Self {
            seeds: LinkSeeds::new(derive_seed(&config.seed, b"links", 0)),
            unix_now: now.wall.as_secs(),
            bindings: Bindings::new(config.name_ttl, bindings),
            presence: Presence::new(config.presence),
            config,
            conns: BTreeMap::new(),
            names: BTreeMap::new(),
            claims: BTreeMap::new(),
            addrs: BTreeMap::new(),
            probe_queue: BTreeSet::new(),
            probing: BTreeSet::new(),
            per_ip: BTreeMap::new(),
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
        self.names
            .values()
            .filter_map(|link| self.conns[link].entry.as_ref())
            .map(Entry::info)
            .collect()
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

    /// Connections told of changes (`subscribe`).
    pub fn subscribers(&self) -> usize {
        self.presence.subscribers()
    }

    // ---- handle_* ----

    pub fn handle_input(&mut self, now: Now, input: RegistryInput) {
        self.unix_now = now.wall.as_secs();
        match input {
            RegistryInput::Opened { link, addr } => self.open(now.mono, link, addr),
            RegistryInput::Bytes { link, bytes } => self.receive(now.mono, link, &bytes),
            RegistryInput::Closed { link } => self.drop_conn(link, LeaveReason::Closed),
            RegistryInput::Stalled { link } => self.drop_conn(link, LeaveReason::NotReading),
            RegistryInput::Probed { link, reachable } => self.probed(now.mono, link, reachable),
        }
        self.presence.arm(now.mono);
    }

    pub fn handle_timeout(&mut self, now: Now) {
        self.unix_now = now.wall.as_secs();
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
        conns.into_iter().chain(self.presence.deadline()).min()
    }

    // ---- internals ----

    fn open(&mut self, now: Instant, link: LinkId, client: SocketAddr) {
        let from_ip = self.per_ip.entry(client.ip()).or_default();
        // Counted while it lives, refused or not: a refused connection
        // lasts one handshake (or the register timeout, if it stalls).
        let refusal = (*from_ip >= self.config.max_connections_per_ip).then(|| {
            let message = format!(
                "{} connections from {} already; close some first",
                self.config.max_connections_per_ip,
                client.ip()
            );
            (ErrorCode::TooManyConnections, message)
        });
        *from_ip += 1;
        let secure = SecureLink::responder(
            &self.config.identity,
            LinkKind::Server,
            self.seeds.next_seed(),
        );
        let conn = Conn {
            client,
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
            let detail = format!("the encrypted link failed: {e}");
            self.log(RegistryLog::Refused {
                client,
                code,
                detail,
            });
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
                if self.require_registered(now, link, id) {
                    let peer = self
                        .names
                        .get(&name_key(&name))
                        .filter(|&&other| other != link)
                        .and_then(|other| self.conns[other].entry.as_ref())
                        .map(Entry::info);
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
                            let name = entry.name.clone();
                            self.presence.status(&name, status);
                            self.log(RegistryLog::StatusChanged { name, status });
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
        let (client, key) = (conn.client, conn.key);
        let addr = SocketAddr::new(client.ip(), port);
        self.expire_bindings();
        let replaced = match self.registration_refusal(key, &name, addr) {
            Ok(replaced) => replaced,
            Err(Refusal { code, message }) => {
                self.log(RegistryLog::Refused {
                    client,
                    code,
                    detail: message.clone(),
                });
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
        if let Some(old) = replaced {
            let message =
                format!("a newer session with the same key registered {name}; this one is closed");
            self.refuse_and_close(old, None, ErrorCode::Replaced, message);
        }
        if let Some(key) = key {
            self.use_name(&name, key);
        }
        let conn = self.conns.get_mut(&link).expect("exists");
        conn.register_by = None;
        conn.entry = Some(Entry {
            name: name.clone(),
            addr,
            status: PeerStatus::Available,
            reachable: None,
            key,
        });
        self.claims.insert(name_key(&name), link);
        self.addrs.insert(addr, link);
        self.probe_queue.insert(link);
        self.start_probes();
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
        if self
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

    /// `key` registered `name` or left under it: either is a use.
    fn use_name(&mut self, name: &str, key: [u8; 32]) {
        if let Some(op) = self.bindings.used(&name_key(name), key, self.unix_now) {
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
            self.log(RegistryLog::Registered {
                name,
                addr,
                reachable,
                status,
            });
        }
        self.start_probes();
    }

    /// Answers `list` in chunks, built one at a time from the directory so
    /// that a list never holds a second copy of every entry.
    fn send_list(&mut self, now: Instant, link: LinkId, id: Option<u64>) {
        let chunk = self.config.list_chunk.max(1);
        let mut others = self
            .names
            .values()
            .filter(|&&other| other != link)
            .filter_map(|other| self.conns[other].entry.as_ref())
            .peekable();
        let mut frames = Vec::new();
        loop {
            let peers: Vec<PeerInfo> = others.by_ref().take(chunk).map(Entry::info).collect();
            let more = others.peek().is_some();
            frames.push(encode(&ServerMsg::Peers { id, peers, more }));
            if !more {
                break;
            }
        }
        for bytes in frames {
            self.send_bytes(now, link, bytes);
        }
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
        self.log(RegistryLog::Refused {
            client: conn.client,
            code,
            detail: message.clone(),
        });
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
        if let Some(count) = self.per_ip.get_mut(&conn.client.ip()) {
            *count -= 1;
            if *count == 0 {
                self.per_ip.remove(&conn.client.ip());
            }
        }
        if let Some(entry) = conn.entry {
            if let Some(key) = conn.key {
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
            self.presence.offline(&entry.name);
            self.log(RegistryLog::Deregistered {
                name: entry.name,
                reason,
            });
        }
    }

    fn log(&mut self, log: RegistryLog) {
        self.outputs.push_back(RegistryOutput::Log(log));
    }
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
