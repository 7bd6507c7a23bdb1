//! A tiny in-memory network for driving one `Registry` and several `Peer`s
//! without any runtime: bytes are handed from one machine to the other,
//! and time only moves when a test says so.
//!
//! Each peer lives at `10.0.0.N`, listens on port 4000 and reaches the
//! server at `10.0.0.1:4201`. A wire can be cut silently (a partition: bytes
//! vanish, nobody is told) or a machine can crash (its partners see EOF).

#![allow(dead_code)]

mod lying;

use natter_core::drive::{Drive, Effects, Sent, Unwritten};
use natter_core::identity::{derive_seed, Identity};
use natter_core::peer::{PeerConfig, PeerInput};
use natter_core::registry::client::InProcessClient;
use natter_core::registry::{RegistryConfig, RegistryInput, RegistryLog, RegistryOutput};
use natter_core::{Event, LinkId, Now, Peer, PublicKey, Registry};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

pub const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 4201);
/// Where [`World::add_server`] puts a second server (an independent one,
/// with its own registry).
pub const SERVER2: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1)), 4201);
pub const LISTEN_PORT: u16 = 4000;

/// One end of a connection: which machine, which of its links.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum End {
    Server(LinkId),
    /// A link of one of the servers [`World::add_server`] started.
    OtherServer(SocketAddr, LinkId),
    Peer(String, LinkId),
}

#[derive(Debug)]
enum Job {
    Bytes(End, Vec<u8>),
    Closed(End),
    /// Peer `caller` asked to connect `link` to `addr`.
    Dial {
        caller: String,
        link: LinkId,
        addr: SocketAddr,
    },
}

pub struct World {
    pub now: Now,
    pub registry: Option<Registry>,
    registry_config: RegistryConfig,
    /// More servers, each with its own registry, by address (see
    /// [`World::add_server`]); `registry` is the one at [`SERVER`].
    pub others: BTreeMap<SocketAddr, Registry>,
    /// Every connection a peer opened or tried, in order: when, who, to
    /// where.
    pub dials: Vec<(natter_core::time::Instant, String, SocketAddr)>,
    next_server_link: u64,
    pub peers: BTreeMap<String, Peer>,
    /// Each peer's drain loop, the same as the real driver's.
    drives: BTreeMap<String, Drive>,
    ips: BTreeMap<String, IpAddr>,
    /// Each peer's identity.
    identities: BTreeMap<String, Identity>,
    /// What the directory says about names instead of the truth (see
    /// [`World::directory_lists`]).
    lies: lying::Lies,
    /// Server links carried by the lying directory, by the server's link.
    relays: BTreeMap<LinkId, lying::Relay>,
    pub events: BTreeMap<String, Vec<Event>>,
    pub exits: BTreeMap<String, i32>,
    pub logs: Vec<RegistryLog>,
    /// File name → lines.
    pub transcripts: BTreeMap<String, Vec<String>>,
    /// How many times each peer made its transcript lines durable.
    pub syncs: BTreeMap<String, u64>,
    /// Appends to transcripts per peer (each of one or more lines).
    pub appends: BTreeMap<String, u64>,
    /// What each peer's known_peers file would hold: the last key pinned
    /// for each name.
    pub pins: BTreeMap<String, BTreeMap<String, PublicKey>>,
    /// Both directions of every open connection.
    wires: BTreeMap<End, End>,
    /// Wires whose bytes vanish (one entry per direction).
    cut: Vec<(End, End)>,
    jobs: VecDeque<Job>,
    /// Peers whose incoming bytes are held back (see [`World::hold`]).
    held: BTreeSet<String>,
    /// Bytes held back, per receiving end.
    held_bytes: BTreeMap<End, Vec<u8>>,
    /// When set, transcript writes for this peer fail.
    pub failing_disk: Option<String>,
    /// When set, this peer's lines are written but never made durable.
    pub failing_sync: Option<String>,
    /// The server keys each peer pinned, in order (known_servers).
    pub server_pins: BTreeMap<String, Vec<(SocketAddr, natter_core::PublicKey)>>,
    /// Raw clients' sessions, by server-side link.
    raw: BTreeMap<LinkId, InProcessClient>,
    /// Peers whose user does not read their events: the drain loop then
    /// withholds receipts (call [`World::settle`] after removing one).
    pub backed_up: BTreeSet<String>,
}

/// alice and bob registered and alice's call ringing at bob; everything
/// seen so far taken.
pub fn ringing() -> World {
    ringing_with(|_| {})
}

/// [`ringing`] with both peers' settings changed by `tune`.
pub fn ringing_with(tune: impl Fn(&mut PeerConfig)) -> World {
    let mut world = World::new();
    for name in ["alice", "bob"] {
        let mut config = PeerConfig::new(name, SERVER, LISTEN_PORT);
        tune(&mut config);
        world.add_peer_with(config);
    }
    world.type_line("alice", "/connect bob");
    world.take_events("alice");
    world.take_events("bob");
    world.take_logs();
    world
}

/// alice and bob chatting (alice called, bob accepted); everything seen
/// so far taken.
pub fn chatting() -> World {
    chatting_with(|_| {})
}

/// [`chatting`] with both peers' settings changed by `tune`.
pub fn chatting_with(tune: impl Fn(&mut PeerConfig)) -> World {
    let mut world = ringing_with(tune);
    world.type_line("bob", "/accept");
    world.take_events("alice");
    world.take_events("bob");
    world.take_logs();
    world
}

/// How long the server keeps a name bound to its key in
/// [`bob_with_a_new_key`]: a minute, so a name changes hands within a test.
pub const SHORT_NAME_TTL: Duration = Duration::from_secs(60);

/// The key of bob's second identity in [`bob_with_a_new_key`].
pub fn bobs_new_identity() -> Identity {
    Identity::from_seed(&[66; 32])
}

/// alice and bob chatted once (each pinned the other's key), then left;
/// bob's name now comes back with another key (bob reinstalled, or
/// someone else took the name once its binding expired), and the
/// directory lists that key. Everything seen so far taken.
pub fn bob_with_a_new_key() -> World {
    let mut world = World::with_registry(RegistryConfig {
        name_ttl: SHORT_NAME_TTL,
        ..RegistryConfig::default()
    });
    world.add_peer("alice");
    world.add_peer("bob");
    world.type_line("alice", "/connect bob");
    world.type_line("bob", "/accept");
    world.type_line("alice", "/leave");
    world.crash_peer("bob");
    world.advance(SHORT_NAME_TTL * 2);
    let mut new_bob = PeerConfig::new("bob", SERVER, LISTEN_PORT);
    new_bob.identity = bobs_new_identity();
    world.add_peer_at(new_bob, "10.0.0.66".parse().unwrap());
    world.take_events("alice");
    world.take_events("bob");
    world.take_logs();
    world
}

impl World {
    pub fn new() -> Self {
        Self::with_registry(RegistryConfig::default())
    }

    pub fn with_registry(config: RegistryConfig) -> Self {
        let now = Now::at_unix(1_764_068_934);
        Self {
            now,
            registry: Some(Registry::new(config.clone(), now)),
            registry_config: config,
            others: BTreeMap::new(),
            dials: Vec::new(),
            next_server_link: 0,
            peers: BTreeMap::new(),
            drives: BTreeMap::new(),
            ips: BTreeMap::new(),
            identities: BTreeMap::new(),
            lies: lying::Lies::new(),
            relays: BTreeMap::new(),
            events: BTreeMap::new(),
            exits: BTreeMap::new(),
            logs: Vec::new(),
            transcripts: BTreeMap::new(),
            syncs: BTreeMap::new(),
            appends: BTreeMap::new(),
            pins: BTreeMap::new(),
            wires: BTreeMap::new(),
            cut: Vec::new(),
            jobs: VecDeque::new(),
            held: BTreeSet::new(),
            held_bytes: BTreeMap::new(),
            failing_disk: None,
            failing_sync: None,
            backed_up: BTreeSet::new(),
            raw: BTreeMap::new(),
            server_pins: BTreeMap::new(),
        }
    }

    /// Starts a peer with default settings and lets it register.
    pub fn add_peer(&mut self, name: &str) {
        let config = PeerConfig::new(name, SERVER, LISTEN_PORT);
        self.add_peer_with(config);
    }

    pub fn add_peer_with(&mut self, config: PeerConfig) {
        let name = config.name.clone();
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2 + self.ips.len() as u8));
        self.ips.entry(name.clone()).or_insert(ip);
        self.add_peer_at(config, ip);
    }

    /// Starts a peer on a given IP (two peers may share one).
    pub fn add_peer_at(&mut self, config: PeerConfig, ip: IpAddr) {
        let name = config.name.clone();
        self.ips.insert(name.clone(), ip);
        self.identities
            .insert(name.clone(), config.identity.clone());
        let peer = Peer::new(config, self.now);
        self.peers.insert(name.clone(), peer);
        self.drives.insert(name.clone(), Drive::new());
        self.events.entry(name.clone()).or_default();
        self.settle();
    }

    /// Starts a peer without letting anything happen yet: its first
    /// outputs (connect to the server) wait for the next `settle`.
    pub fn add_peer_unsettled(&mut self, name: &str) {
        let config = PeerConfig::new(name, SERVER, LISTEN_PORT);
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2 + self.ips.len() as u8));
        self.ips.insert(name.to_string(), ip);
        self.identities
            .insert(name.to_string(), config.identity.clone());
        self.peers
            .insert(name.to_string(), Peer::new(config, self.now));
        self.drives.insert(name.to_string(), Drive::new());
        self.events.entry(name.to_string()).or_default();
    }

    pub fn addr_of(&self, name: &str) -> SocketAddr {
        SocketAddr::new(self.ips[name], LISTEN_PORT)
    }

    /// The key peer `name`'s identity holds (what its handshakes prove).
    pub fn key_of(&self, name: &str) -> PublicKey {
        self.identities[name].public()
    }

    /// The directory lies about `name` from now on: to every peer whose
    /// server link opens after this, it lists `key` for that name (`None`:
    /// no key, as for a client that made no handshake), whatever key the
    /// peer of that name proved. See [`lying`].
    pub fn directory_lists(&mut self, name: &str, key: Option<PublicKey>) {
        self.lies.insert(name.to_ascii_lowercase(), key);
    }

    /// The user `name` types `line`.
    pub fn type_line(&mut self, name: &str, line: &str) {
        let now = self.now;
        // As a user interface does: a line that is no valid command is
        // refused before it reaches the peer.
        match natter_core::command::parse(line) {
            Ok(command) => self
                .peer(name)
                .handle_input(now, PeerInput::Command(command)),
            Err(problem) => self
                .events
                .get_mut(name)
                .expect("known peer")
                .push(problem.into()),
        }
        self.settle();
    }

    pub fn end_input(&mut self, name: &str) {
        let now = self.now;
        self.peer(name).handle_input(now, PeerInput::EndOfInput);
        self.settle();
    }

    pub fn peer(&mut self, name: &str) -> &mut Peer {
        self.peers
            .get_mut(name)
            .unwrap_or_else(|| panic!("no peer {name}"))
    }

    /// Events `name` got since the last call.
    pub fn take_events(&mut self, name: &str) -> Vec<Event> {
        std::mem::take(self.events.get_mut(name).expect("known peer"))
    }

    pub fn take_logs(&mut self) -> Vec<String> {
        std::mem::take(&mut self.logs)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Moves time forward by `by`, firing every deadline on the way at
    /// its exact moment.
    pub fn advance(&mut self, by: Duration) {
        let target = self.now.mono + by;
        loop {
            let next = self
                .peers
                .values()
                .filter_map(Peer::poll_timeout)
                .chain(self.registry.as_ref().and_then(Registry::poll_timeout))
                .chain(self.others.values().filter_map(Registry::poll_timeout))
                .filter(|&at| at <= target)
                .min();
            let Some(at) = next else { break };
            let step = at.saturating_since(self.now.mono);
            self.now = self.now.advanced(step);
            let now = self.now;
            for peer in self.peers.values_mut() {
                if peer.poll_timeout().is_some_and(|t| t <= now.mono) {
                    peer.handle_timeout(now);
                }
            }
            if let Some(registry) = &mut self.registry {
                if registry.poll_timeout().is_some_and(|t| t <= now.mono) {
                    registry.handle_timeout(now);
                }
            }
            for registry in self.others.values_mut() {
                if registry.poll_timeout().is_some_and(|t| t <= now.mono) {
                    registry.handle_timeout(now);
                }
            }
            self.settle();
        }
        let rest = target.saturating_since(self.now.mono);
        self.now = self.now.advanced(rest);
    }

    /// Silently drops every byte between peer `name` and the server
    /// (`None`) or another peer, both ways, from now on.
    pub fn partition(&mut self, name: &str, other: Option<&str>) {
        let pairs: Vec<(End, End)> = self
            .wires
            .iter()
            .filter(|(a, b)| Self::owner(a) == Some(name) && Self::owner(b) == other)
            .map(|(a, b)| (a.clone(), b.clone()))
            .collect();
        for (a, b) in pairs {
            self.cut.push((a.clone(), b.clone()));
            self.cut.push((b, a));
        }
    }

    /// Holds back every byte sent to peer `name` until [`World::release`],
    /// as a slow network would: what was held then arrives in one read per
    /// connection.
    pub fn hold(&mut self, name: &str) {
        self.held.insert(name.to_string());
    }

    /// Delivers what [`World::hold`] held back, one chunk per connection.
    pub fn release(&mut self, name: &str) {
        self.held.remove(name);
        let ends: Vec<End> = self
            .held_bytes
            .keys()
            .filter(|end| Self::owner(end) == Some(name))
            .cloned()
            .collect();
        for end in ends {
            let bytes = self.held_bytes.remove(&end).expect("listed above");
            self.jobs.push_back(Job::Bytes(end, bytes));
        }
        self.settle();
    }

    /// The peer's process dies: every partner sees its connections close.
    pub fn crash_peer(&mut self, name: &str) {
        self.peers.remove(name);
        self.drives.remove(name);
        self.hang_up_all(|e| Self::owner(e) == Some(name));
    }

    /// The server process dies (partners see EOF); `restart` starts a
    /// fresh, empty one on the same address.
    pub fn crash_server(&mut self) {
        self.registry = None;
        self.relays.clear();
        self.hang_up_all(|e| matches!(e, End::Server(_)));
    }

    /// A machine died: every connection of the ends `dead` picks closes,
    /// and the other side sees EOF.
    fn hang_up_all(&mut self, dead: impl Fn(&End) -> bool) {
        let ends: Vec<End> = self.wires.keys().filter(|e| dead(e)).cloned().collect();
        for end in ends {
            if let Some(other) = self.wires.remove(&end) {
                self.wires.remove(&other);
                self.jobs.push_back(Job::Closed(other));
            }
        }
        self.settle();
    }

    /// Starts another server at `addr`, independent of the first (its
    /// own registry, the default settings, the key `identity`): peers
    /// given both addresses can move between them.
    pub fn add_server(&mut self, addr: SocketAddr, identity: Identity) {
        let config = RegistryConfig {
            identity,
            ..RegistryConfig::default()
        };
        self.others.insert(addr, Registry::new(config, self.now));
    }

    /// The server at `addr` (one [`World::add_server`] started) dies:
    /// its partners see EOF, and connecting there is refused.
    pub fn crash_server_at(&mut self, addr: SocketAddr) {
        self.others.remove(&addr);
        self.hang_up_all(|e| matches!(e, End::OtherServer(at, _) if *at == addr));
    }

    pub fn restart_server(&mut self) {
        self.registry = Some(Registry::new(self.registry_config.clone(), self.now));
    }

    /// A fresh server on the same address with another configuration
    /// (e.g. another key) from now on.
    pub fn restart_server_with(&mut self, config: RegistryConfig) {
        self.registry_config = config;
        self.restart_server();
    }

    /// A raw client connects to the server from `client` and completes
    /// the encrypted handshake, with a key of its own (for hostile input
    /// tests); returns the server-side link. What the server answers at
    /// once stays queued for [`World::drain_raw`].
    pub fn raw_client(&mut self, client: SocketAddr) -> LinkId {
        let identity =
            Identity::from_seed(&derive_seed(&[7; 32], b"raw client", self.next_server_link));
        self.raw_client_with(client, &identity)
    }

    /// [`World::raw_client`] holding `identity`.
    pub fn raw_client_with(&mut self, client: SocketAddr, identity: &Identity) -> LinkId {
        self.next_server_link += 1;
        let link = LinkId(1_000_000 + self.next_server_link);
        let now = self.now;
        let seed = derive_seed(&[8; 32], b"raw client seed", self.next_server_link);
        let registry = self.registry.as_mut().expect("server running");
        let (raw, others) = InProcessClient::connect(registry, now, link, client, identity, seed);
        self.raw.insert(link, raw);
        for out in others {
            self.registry_output(out);
        }
        link
    }

    /// Frames (plaintext) from a raw client to the server, sealed in its
    /// session; returns what the server answered on that link and whether
    /// it closed it.
    pub fn raw_send(&mut self, link: LinkId, bytes: &[u8]) -> (String, bool) {
        let raw = self.raw.get_mut(&link).expect("a raw client");
        raw.send(bytes).expect("the session is open");
        let bytes = raw.outgoing().unwrap_or_default();
        self.raw_send_unsealed(link, &bytes)
    }

    /// Bytes from a raw client to the server as they are, not through its
    /// session (garbage on the wire).
    pub fn raw_send_unsealed(&mut self, link: LinkId, bytes: &[u8]) -> (String, bool) {
        let now = self.now;
        let bytes = bytes.to_vec();
        self.registry()
            .handle_input(now, RegistryInput::Bytes { link, bytes });
        self.drain_raw(link)
    }

    /// What the server said to raw client `link` so far (decrypted) and
    /// whether it closed the link; everything else the server did is
    /// carried out.
    pub fn drain_raw(&mut self, link: LinkId) -> (String, bool) {
        while let Some(out) = self.registry().poll_output() {
            self.registry_output(out);
        }
        self.settle();
        let raw = self.raw.get_mut(&link).expect("a raw client");
        (raw.received(), raw.is_closed())
    }

    pub fn registry(&mut self) -> &mut Registry {
        self.registry.as_mut().expect("server running")
    }

    fn owner(end: &End) -> Option<&str> {
        match end {
            End::Server(_) | End::OtherServer(..) => None,
            End::Peer(name, _) => Some(name),
        }
    }

    /// Carries out every output of every machine until all are quiet.
    pub fn settle(&mut self) {
        loop {
            let mut progressed = false;
            let names: Vec<String> = self.peers.keys().cloned().collect();
            for name in names {
                progressed |= self.drain_peer(&name);
            }
            while let Some(out) = self.registry.as_mut().and_then(Registry::poll_output) {
                progressed = true;
                self.registry_output(out);
            }
            let others: Vec<SocketAddr> = self.others.keys().copied().collect();
            for addr in others {
                while let Some(out) = self.others.get_mut(&addr).and_then(Registry::poll_output) {
                    progressed = true;
                    self.other_output(addr, out);
                }
            }
            while let Some(job) = self.jobs.pop_front() {
                progressed = true;
                self.run_job(job);
            }
            if !progressed {
                break;
            }
        }
    }

    /// Runs the peer's drain loop (the driver's own, from natter-core)
    /// with this world as its effects. The peer is taken out of the world
    /// meanwhile; what concerns it (a connect) is queued as a job.
    /// Returns whether it had anything to do.
    fn drain_peer(&mut self, name: &str) -> bool {
        let (Some(mut peer), Some(mut drive)) = (self.peers.remove(name), self.drives.remove(name))
        else {
            return false;
        };
        let now = self.now;
        let mut effects = PeerEffects {
            world: self,
            name,
            done: 0,
        };
        drive.drain(&mut peer, now, &mut effects);
        let done = effects.done;
        self.peers.insert(name.to_string(), peer);
        self.drives.insert(name.to_string(), drive);
        done > 0
    }

    /// Connects a peer's `link` to `addr`: the server, another peer (or
    /// itself) listening there, or nobody.
    fn dial(&mut self, name: &str, link: LinkId, addr: SocketAddr) {
        let now = self.now;
        if !self.peers.contains_key(name) {
            return;
        }
        self.dials.push((now.mono, name.to_string(), addr));
        let from = End::Peer(name.to_string(), link);
        let client = SocketAddr::new(self.ips[name], 50_000 + link.0 as u16);
        if let Some(registry) = self.others.get_mut(&addr) {
            self.next_server_link += 1;
            let server_link = LinkId(self.next_server_link);
            let to = End::OtherServer(addr, server_link);
            registry.handle_input(
                now,
                RegistryInput::Opened {
                    link: server_link,
                    addr: client,
                },
            );
            self.wires.insert(from.clone(), to.clone());
            self.wires.insert(to, from);
            self.peer(name)
                .handle_input(now, PeerInput::Connected { link });
            return;
        }
        if addr == SERVER && self.registry.is_some() {
            self.next_server_link += 1;
            let server_link = LinkId(self.next_server_link);
            let to = End::Server(server_link);
            self.wires.insert(from.clone(), to.clone());
            self.wires.insert(to, from);
            if self.lies.is_empty() {
                self.registry().handle_input(
                    now,
                    RegistryInput::Opened {
                        link: server_link,
                        addr: client,
                    },
                );
            } else {
                let peer = self.identities[name].clone();
                let server = self.registry_config.identity.clone();
                let seed = derive_seed(&[9; 32], b"lying relay", server_link.0);
                let registry = self.registry.as_mut().expect("server running");
                let (relay, others) =
                    lying::Relay::connect(registry, now, server_link, client, &peer, &server, seed);
                self.relays.insert(server_link, relay);
                for out in others {
                    self.registry_output(out);
                }
            }
            self.peer(name)
                .handle_input(now, PeerInput::Connected { link });
            return;
        }
        let callee = self
            .peers
            .keys()
            .find(|other| SocketAddr::new(self.ips[*other], LISTEN_PORT) == addr)
            .cloned();
        match callee {
            Some(callee) => {
                let their_link = self.peer(&callee).allocate_link();
                let to = End::Peer(callee.clone(), their_link);
                self.wires.insert(from.clone(), to.clone());
                self.wires.insert(to, from);
                self.peer(&callee).handle_input(
                    now,
                    PeerInput::Accepted {
                        link: their_link,
                        addr: client,
                    },
                );
                self.peer(name)
                    .handle_input(now, PeerInput::Connected { link });
            }
            None => self.peer(name).handle_input(
                now,
                PeerInput::ConnectFailed {
                    link,
                    reason: "connection refused".into(),
                },
            ),
        }
    }

    fn registry_output(&mut self, out: RegistryOutput) {
        if let RegistryOutput::Send { link, .. } | RegistryOutput::Close { link } = &out {
            if let Some(raw) = self.raw.get_mut(link) {
                raw.take(&out);
                return;
            }
        }
        if let RegistryOutput::Send { link, .. } = &out {
            if let Some(relay) = self.relays.get_mut(link) {
                let to_peer = relay.carry_down(&out, &self.lies).unwrap_or_default();
                for bytes in to_peer {
                    self.transmit(End::Server(*link), bytes);
                }
                return;
            }
        }
        match out {
            RegistryOutput::Send { link, bytes } => self.transmit(End::Server(link), bytes),
            RegistryOutput::Close { link } => self.hang_up(End::Server(link)),
            RegistryOutput::Probe { link, addr } => self.answer_probe(link, addr),
            RegistryOutput::Log(log) => self.logs.push(log),
            RegistryOutput::Store(_) => {}
        }
    }

    /// The server's reachability probe: reachable when a peer listens at
    /// `addr` (the probe's connection itself is not shown to the peer).
    fn answer_probe(&mut self, link: LinkId, addr: SocketAddr) {
        let reachable = self.listens_at(addr);
        let now = self.now;
        self.registry()
            .handle_input(now, RegistryInput::Probed { link, reachable });
    }

    fn listens_at(&self, addr: SocketAddr) -> bool {
        self.peers
            .keys()
            .any(|name| SocketAddr::new(self.ips[name], LISTEN_PORT) == addr)
    }

    /// What the server at `server` (one of [`World::others`]) does.
    fn other_output(&mut self, server: SocketAddr, out: RegistryOutput) {
        match out {
            RegistryOutput::Send { link, bytes } => {
                self.transmit(End::OtherServer(server, link), bytes)
            }
            RegistryOutput::Close { link } => self.hang_up(End::OtherServer(server, link)),
            RegistryOutput::Probe { link, addr } => {
                let reachable = self.listens_at(addr);
                let now = self.now;
                if let Some(registry) = self.others.get_mut(&server) {
                    registry.handle_input(now, RegistryInput::Probed { link, reachable });
                }
            }
            RegistryOutput::Log(log) => self.logs.push(log),
            RegistryOutput::Store(_) => {}
        }
    }

    fn transmit(&mut self, from: End, bytes: Vec<u8>) {
        let Some(to) = self.wires.get(&from).cloned() else {
            return;
        };
        if self.cut.contains(&(from, to.clone())) {
            return;
        }
        if Self::owner(&to).is_some_and(|name| self.held.contains(name)) {
            return self.held_bytes.entry(to).or_default().extend(bytes);
        }
        self.jobs.push_back(Job::Bytes(to, bytes));
    }

    fn hang_up(&mut self, from: End) {
        let Some(to) = self.wires.remove(&from) else {
            return;
        };
        self.wires.remove(&to);
        if !self.cut.contains(&(from, to.clone())) {
            self.jobs.push_back(Job::Closed(to));
        }
    }

    /// Bytes a peer sent on a server link the lying directory carries.
    fn relay_from_peer(&mut self, link: LinkId, bytes: &[u8]) {
        let now = self.now;
        let relay = self.relays.get_mut(&link).expect("a relayed link");
        let Some(onward) = relay.carry_up(bytes) else {
            return self.hang_up(End::Server(link));
        };
        for bytes in onward.to_peer {
            self.transmit(End::Server(link), bytes);
        }
        if let Some(registry) = &mut self.registry {
            for bytes in onward.to_registry {
                registry.handle_input(now, RegistryInput::Bytes { link, bytes });
            }
        }
    }

    fn run_job(&mut self, job: Job) {
        let now = self.now;
        match job {
            Job::Bytes(End::Server(link), bytes) if self.relays.contains_key(&link) => {
                self.relay_from_peer(link, &bytes)
            }
            Job::Bytes(End::Server(link), bytes) => {
                if let Some(r) = &mut self.registry {
                    r.handle_input(now, RegistryInput::Bytes { link, bytes })
                }
            }
            Job::Bytes(End::OtherServer(addr, link), bytes) => {
                if let Some(r) = self.others.get_mut(&addr) {
                    r.handle_input(now, RegistryInput::Bytes { link, bytes })
                }
            }
            Job::Closed(End::OtherServer(addr, link)) => {
                if let Some(r) = self.others.get_mut(&addr) {
                    r.handle_input(now, RegistryInput::Closed { link })
                }
            }
            Job::Bytes(End::Peer(name, link), bytes) => {
                if let Some(p) = self.peers.get_mut(&name) {
                    p.handle_input(now, PeerInput::Bytes { link, bytes })
                }
            }
            Job::Closed(End::Server(link)) => {
                if let Some(r) = &mut self.registry {
                    r.handle_input(now, RegistryInput::Closed { link })
                }
            }
            Job::Closed(End::Peer(name, link)) => {
                if let Some(p) = self.peers.get_mut(&name) {
                    p.handle_input(now, PeerInput::Closed { link })
                }
            }
            Job::Dial { caller, link, addr } => self.dial(&caller, link, addr),
        }
    }
}

/// The world as one peer's driver sees it.
struct PeerEffects<'w> {
    world: &'w mut World,
    name: &'w str,
    /// Outputs carried out, so `settle` knows when all is quiet.
    done: usize,
}

impl Effects for PeerEffects<'_> {
    fn connect(&mut self, link: LinkId, addr: SocketAddr) {
        self.done += 1;
        self.world.jobs.push_back(Job::Dial {
            caller: self.name.to_string(),
            link,
            addr,
        });
    }

    fn send(&mut self, link: LinkId, bytes: Vec<u8>) -> Sent {
        self.done += 1;
        self.world
            .transmit(End::Peer(self.name.to_string(), link), bytes);
        Sent::Queued
    }

    fn close(&mut self, link: LinkId) {
        self.done += 1;
        self.world.hang_up(End::Peer(self.name.to_string(), link));
    }

    fn event(&mut self, event: Event) {
        self.done += 1;
        self.world
            .events
            .entry(self.name.to_string())
            .or_default()
            .push(event);
    }

    fn append(&mut self, file: &str, lines: &[&str]) -> Result<(), Unwritten> {
        self.done += 1;
        *self.world.appends.entry(self.name.to_string()).or_default() += 1;
        if self.disk_fails() {
            return Err(Unwritten {
                written: 0,
                reason: "disk full".to_string(),
            });
        }
        let transcript = self.world.transcripts.entry(file.to_string()).or_default();
        transcript.extend(lines.iter().map(|line| line.to_string()));
        Ok(())
    }

    fn sync(&mut self) -> Result<(), String> {
        *self.world.syncs.entry(self.name.to_string()).or_default() += 1;
        if self.disk_fails() {
            return Err("disk full".to_string());
        }
        if self.world.failing_sync.as_deref() == Some(self.name) {
            return Err("fsync failed".to_string());
        }
        Ok(())
    }

    fn pin(&mut self, name: &str, key: PublicKey) {
        self.done += 1;
        self.world
            .pins
            .entry(self.name.to_string())
            .or_default()
            .insert(name.to_string(), key);
    }

    fn exit(&mut self, code: i32) {
        self.done += 1;
        self.world.exits.insert(self.name.to_string(), code);
    }

    fn pin_server(&mut self, addr: SocketAddr, key: natter_core::PublicKey) {
        let pins = self.world.server_pins.entry(self.name.to_string());
        pins.or_default().push((addr, key));
    }

    fn events_backed_up(&self) -> bool {
        self.world.backed_up.contains(self.name)
    }
}

impl PeerEffects<'_> {
    fn disk_fails(&self) -> bool {
        self.world.failing_disk.as_deref() == Some(self.name)
    }
}

/// The `error` events among `events`, as (code, detail), in order.
pub fn errors(events: &[Event]) -> Vec<(natter_core::ErrorCode, natter_core::ErrorDetail)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Error { code, detail } => Some((*code, detail.clone())),
            _ => None,
        })
        .collect()
}

/// Every frame in `text`, as a server sent it (for raw-client tests).
pub fn server_frames(text: &str) -> Vec<natter_core::protocol::ServerMsg> {
    let mut decoder = natter_core::FrameDecoder::new(usize::MAX);
    decoder.push(text.as_bytes());
    std::iter::from_fn(|| decoder.next_frame())
        .map(Result::unwrap)
        .collect()
}
