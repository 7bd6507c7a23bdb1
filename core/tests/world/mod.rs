//! A tiny in-memory network for driving one `Registry` and several `Peer`s
//! without any runtime: bytes are handed from one machine to the other,
//! and time only moves when a test says so.
//!
//! Each peer lives at `10.0.0.N`, listens on port 4000 and reaches the
//! server at `10.0.0.1:4201`. A wire can be cut silently (a partition: bytes
//! vanish, nobody is told) or a machine can crash (its partners see EOF).

#![allow(dead_code)]

use natter_core::peer::{PeerConfig, PeerInput, PeerOutput};
use natter_core::registry::{RegistryConfig, RegistryInput, RegistryLog, RegistryOutput};
use natter_core::{Event, LinkId, Now, Peer, Registry};
use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

pub const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 4201);
pub const LISTEN_PORT: u16 = 4000;

/// One end of a connection: which machine, which of its links.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum End {
    Server(LinkId),
    Peer(String, LinkId),
}

#[derive(Debug)]
enum Job {
    Bytes(End, Vec<u8>),
    Closed(End),
}

pub struct World {
    pub now: Now,
    pub registry: Option<Registry>,
    registry_config: RegistryConfig,
    next_server_link: u64,
    pub peers: BTreeMap<String, Peer>,
    ips: BTreeMap<String, IpAddr>,
    pub events: BTreeMap<String, Vec<Event>>,
    pub exits: BTreeMap<String, i32>,
    pub logs: Vec<RegistryLog>,
    /// File name → lines.
    pub transcripts: BTreeMap<String, Vec<String>>,
    /// Both directions of every open connection.
    wires: BTreeMap<End, End>,
    /// Wires whose bytes vanish (one entry per direction).
    cut: Vec<(End, End)>,
    jobs: VecDeque<Job>,
    /// When set, transcript writes for this peer fail.
    pub failing_disk: Option<String>,
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
            next_server_link: 0,
            peers: BTreeMap::new(),
            ips: BTreeMap::new(),
            events: BTreeMap::new(),
            exits: BTreeMap::new(),
            logs: Vec::new(),
            transcripts: BTreeMap::new(),
            wires: BTreeMap::new(),
            cut: Vec::new(),
            jobs: VecDeque::new(),
            failing_disk: None,
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
        let peer = Peer::new(config, self.now);
        self.peers.insert(name.clone(), peer);
        self.events.entry(name.clone()).or_default();
        self.settle();
    }

    /// Starts a peer without letting anything happen yet: its first
    /// outputs (connect to the server) wait for the next `settle`.
    pub fn add_peer_unsettled(&mut self, name: &str) {
        let config = PeerConfig::new(name, SERVER, LISTEN_PORT);
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2 + self.ips.len() as u8));
        self.ips.insert(name.to_string(), ip);
        self.peers
            .insert(name.to_string(), Peer::new(config, self.now));
        self.events.entry(name.to_string()).or_default();
    }

    pub fn addr_of(&self, name: &str) -> SocketAddr {
        SocketAddr::new(self.ips[name], LISTEN_PORT)
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

    /// The peer's process dies: every partner sees its connections close.
    pub fn crash_peer(&mut self, name: &str) {
        self.peers.remove(name);
        self.hang_up_all(|e| Self::owner(e) == Some(name));
    }

    /// The server process dies (partners see EOF); `restart` starts a
    /// fresh, empty one on the same address.
    pub fn crash_server(&mut self) {
        self.registry = None;
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

    pub fn restart_server(&mut self) {
        self.registry = Some(Registry::new(self.registry_config.clone(), self.now));
    }

    /// A raw client connects to the server from `client` (for hostile
    /// input tests); returns the server-side link. What the server answers
    /// at once stays queued for [`World::drain_raw`].
    pub fn raw_client(&mut self, client: SocketAddr) -> LinkId {
        self.next_server_link += 1;
        let link = LinkId(1_000_000 + self.next_server_link);
        let now = self.now;
        self.registry()
            .handle_input(now, RegistryInput::Opened { link, addr: client });
        link
    }

    /// Bytes from a raw client to the server; returns what the server
    /// answered on that link and whether it closed it.
    pub fn raw_send(&mut self, link: LinkId, bytes: &[u8]) -> (String, bool) {
        let now = self.now;
        self.registry().handle_input(
            now,
            RegistryInput::Bytes {
                link,
                bytes: bytes.to_vec(),
            },
        );
        self.drain_raw(link)
    }

    pub fn drain_raw(&mut self, link: LinkId) -> (String, bool) {
        let mut text = String::new();
        let mut closed = false;
        let mut rest = VecDeque::new();
        while let Some(out) = self.registry().poll_output() {
            match out {
                RegistryOutput::Send { link: l, bytes } if l == link => {
                    text.push_str(&String::from_utf8_lossy(&bytes))
                }
                RegistryOutput::Close { link: l } if l == link => closed = true,
                RegistryOutput::Probe { link, addr } => self.answer_probe(link, addr),
                other => rest.push_back(other),
            }
        }
        for out in rest {
            self.registry_output(out);
        }
        self.settle();
        (text, closed)
    }

    pub fn registry(&mut self) -> &mut Registry {
        self.registry.as_mut().expect("server running")
    }

    fn owner(end: &End) -> Option<&str> {
        match end {
            End::Server(_) => None,
            End::Peer(name, _) => Some(name),
        }
    }

    /// Carries out every output of every machine until all are quiet.
    pub fn settle(&mut self) {
        loop {
            let mut progressed = false;
            let names: Vec<String> = self.peers.keys().cloned().collect();
            for name in names {
                while let Some(out) = self.peers.get_mut(&name).and_then(Peer::poll_output) {
                    progressed = true;
                    self.peer_output(&name, out);
                }
            }
            while let Some(out) = self.registry.as_mut().and_then(Registry::poll_output) {
                progressed = true;
                self.registry_output(out);
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

    fn peer_output(&mut self, name: &str, out: PeerOutput) {
        let now = self.now;
        match out {
            PeerOutput::Connect { link, addr } => {
                let from = End::Peer(name.to_string(), link);
                let client = SocketAddr::new(self.ips[name], 50_000 + link.0 as u16);
                if addr == SERVER && self.registry.is_some() {
                    self.next_server_link += 1;
                    let server_link = LinkId(self.next_server_link);
                    let to = End::Server(server_link);
                    self.wires.insert(from.clone(), to.clone());
                    self.wires.insert(to, from);
                    self.registry().handle_input(
                        now,
                        RegistryInput::Opened {
                            link: server_link,
                            addr: client,
                        },
                    );
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
            PeerOutput::Send { link, bytes } => {
                self.transmit(End::Peer(name.to_string(), link), bytes)
            }
            PeerOutput::Close { link } => self.hang_up(End::Peer(name.to_string(), link)),
            PeerOutput::Event(event) => {
                self.events.entry(name.to_string()).or_default().push(event)
            }
            PeerOutput::Transcript(write) => {
                let failed = self.failing_disk.as_deref() == Some(name);
                if !failed {
                    self.transcripts
                        .entry(write.file)
                        .or_default()
                        .push(write.line);
                }
                if let Some((link, n)) = write.receipt {
                    let result = if failed {
                        Err("disk full".to_string())
                    } else {
                        Ok(())
                    };
                    self.peer(name)
                        .handle_input(now, PeerInput::Recorded { link, n, result });
                }
            }
            PeerOutput::Exit { code } => {
                self.exits.insert(name.to_string(), code);
            }
        }
    }

    fn registry_output(&mut self, out: RegistryOutput) {
        match out {
            RegistryOutput::Send { link, bytes } => self.transmit(End::Server(link), bytes),
            RegistryOutput::Close { link } => self.hang_up(End::Server(link)),
            RegistryOutput::Probe { link, addr } => self.answer_probe(link, addr),
            RegistryOutput::Log(log) => self.logs.push(log),
        }
    }

    /// The server's reachability probe: reachable when a peer listens at
    /// `addr` (the probe's connection itself is not shown to the peer).
    fn answer_probe(&mut self, link: LinkId, addr: SocketAddr) {
        let reachable = self
            .peers
            .keys()
            .any(|name| SocketAddr::new(self.ips[name], LISTEN_PORT) == addr);
        let now = self.now;
        self.registry()
            .handle_input(now, RegistryInput::Probed { link, reachable });
    }

    fn transmit(&mut self, from: End, bytes: Vec<u8>) {
        let Some(to) = self.wires.get(&from).cloned() else {
            return;
        };
        if self.cut.contains(&(from, to.clone())) {
            return;
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

    fn run_job(&mut self, job: Job) {
        let now = self.now;
        match job {
            Job::Bytes(End::Server(link), bytes) => {
                if let Some(r) = &mut self.registry {
                    r.handle_input(now, RegistryInput::Bytes { link, bytes })
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
        }
    }
}

/// Every frame in `text`, as a server sent it (for raw-client tests).
pub fn server_frames(text: &str) -> Vec<natter_core::protocol::ServerMsg> {
    let mut decoder = natter_core::FrameDecoder::new(usize::MAX);
    decoder.push(text.as_bytes());
    std::iter::from_fn(|| decoder.next_frame())
        .map(Result::unwrap)
        .collect()
}
