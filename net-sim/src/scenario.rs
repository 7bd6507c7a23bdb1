//! A scripted world for simulation tests: one `natter server` host, any
//! number of peer hosts, all started with natter-net-real's harness over
//! [`SimNet`] (so the production driver runs), each peer writing its
//! transcripts on its host's simulated disk ([`SimDisk`]), and a script
//! that types lines, waits for events on simulated time and reads the
//! transcripts and the server log back.
//!
//! Every knob that could make two runs differ is fixed here: the seed, the
//! epoch of the wall clock, the tick and the link latencies.

use crate::disk::{HostDisk, SimDisk};
use crate::kv::{serve_kv, SimKv, KV_PORT};
use crate::SimNet;
use natter_core::identity::derive_seed;
use natter_core::registry::ClusterConfig;
use natter_core::time::rfc3339_millis;
use natter_core::{Event, PeerConfig, RegistryConfig};
use natter_net_real::harness::PeerTask;
use natter_net_real::{NameBindings, PeerBuilder, PeerHandle, ServerBuilder, Shared};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

/// Where every scenario's wall clock starts: 2026-11-25T09:00:00Z.
pub const EPOCH_UNIX_SECS: u64 = 1_795_597_200;
/// The server's port, as in production.
pub const SERVER_PORT: u16 = 4201;
/// The port every peer listens on (each peer is its own host).
pub const PEER_PORT: u16 = 4000;
/// The simulation's tick: the resolution of every time in a scenario.
pub const TICK: Duration = Duration::from_millis(1);
/// One-way latency of every link unless a scenario changes it.
pub const LATENCY: Duration = Duration::from_millis(5);
/// Where each peer keeps its transcripts, on its own host's disk.
pub const TRANSCRIPTS: &str = "/natter/transcripts";
/// Lines a script may type ahead of a peer.
const LINE_BUFFER: usize = 1024;

/// A turmoil builder with everything fixed: seed, epoch, tick, latency.
pub fn builder(seed: u64) -> turmoil::Builder {
    let mut builder = turmoil::Builder::new();
    builder
        .rng_seed(seed)
        .epoch(UNIX_EPOCH + Duration::from_secs(EPOCH_UNIX_SECS))
        .tick_duration(TICK)
        .min_message_latency(LATENCY)
        .max_message_latency(LATENCY)
        .simulation_duration(Duration::from_secs(3_600))
        .tcp_capacity(1 << 16);
    builder
}

/// The simulated wall clock, as a transcript would print it.
fn stamp() -> String {
    rfc3339_millis(turmoil::since_epoch().unwrap_or_default())
}

struct SimPeer {
    handle: PeerHandle,
    /// The peer its host runs at its next boot: set at start and by
    /// [`Scenario::restart_peer`], taken by the boot.
    next: Arc<Mutex<Option<PeerTask<SimNet, SimDisk>>>>,
    /// Whether the script reads the peer's events as they come; while it
    /// does not, they wait in the peer (a stalled terminal).
    reading: bool,
    /// Every event read so far, with the simulated time it was read at.
    seen: Vec<(Duration, Event)>,
    /// How many of `seen` the script has consumed.
    read: usize,
    /// The host's disk, once the host has started.
    disk: Arc<Mutex<Option<HostDisk>>>,
}

impl SimPeer {
    /// Takes the events the peer gave, as seen at `at`, unless its user
    /// is not reading.
    fn collect(&mut self, at: Duration) {
        if !self.reading {
            return;
        }
        while let Some(event) = self.handle.try_event() {
            self.seen.push((at, event));
        }
    }
}

/// A running simulation and the script's view of it.
pub struct Scenario<'a> {
    pub sim: turmoil::Sim<'a>,
    server_log: Arc<Mutex<Vec<String>>>,
    /// The logs of the servers [`Scenario::start_server`] started, by host.
    other_server_logs: BTreeMap<String, Arc<Mutex<Vec<String>>>>,
    peers: BTreeMap<String, SimPeer>,
    /// The host a new peer registers with ([`Scenario::serve_peers_from`]).
    server_host: String,
}

impl<'a> Scenario<'a> {
    /// A world with a server host named `server` on port 4201.
    pub fn new(seed: u64) -> Self {
        Self::with_builder(&builder(seed), RegistryConfig::default())
    }

    pub fn with_builder(builder: &turmoil::Builder, registry: RegistryConfig) -> Self {
        Self::with_server(builder, registry, None)
    }

    /// A world whose server keeps its name bindings in an SQLite file at
    /// `bindings`, on the real disk (turmoil's simulated disk is not one
    /// SQLite can use), opened at each boot of the server host: a crash
    /// and a bounce of `server` is a restart of `natter server`.
    pub fn with_bindings(
        builder: &turmoil::Builder,
        registry: RegistryConfig,
        bindings: &Path,
    ) -> Self {
        Self::with_server(builder, registry, Some(bindings.to_path_buf()))
    }

    fn with_server(
        builder: &turmoil::Builder,
        registry: RegistryConfig,
        bindings: Option<PathBuf>,
    ) -> Self {
        let mut scenario = Self {
            sim: builder.build(),
            server_log: Arc::default(),
            other_server_logs: BTreeMap::new(),
            peers: BTreeMap::new(),
            server_host: "server".to_string(),
        };
        let log = scenario.server_log.clone();
        scenario.start_server_logging("server", registry, bindings, log);
        scenario
    }

    /// Starts another `natter server` on a host named `host`, port 4201,
    /// independent of the first: its own registry (in memory), its own
    /// log ([`Scenario::server_log_of`]). Peers reach it only if their
    /// configuration names it (see [`Scenario::server_addr`]).
    pub fn start_server(&mut self, host: &str, registry: RegistryConfig) {
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        self.other_server_logs.insert(host.to_string(), log.clone());
        self.start_server_logging(host, registry, None, log);
    }

    /// The address of the server on host `host` ("server", or one that
    /// [`Scenario::start_server`] started).
    pub fn server_addr(&self, host: &str) -> SocketAddr {
        SocketAddr::new(self.sim.lookup(host), SERVER_PORT)
    }

    fn start_server_logging(
        &mut self,
        host: &str,
        registry: RegistryConfig,
        bindings: Option<PathBuf>,
        log: Arc<Mutex<Vec<String>>>,
    ) {
        self.sim.host(host, move || {
            let log = log.clone();
            let mut server = ServerBuilder::new(SimNet)
                .config(registry.clone())
                .listen_on(any_addr(SERVER_PORT))
                .logs();
            let store = bindings.as_deref().map(NameBindings::open);
            async move {
                if let Some(store) = store {
                    server = server.store(store?);
                }
                let (server, mut handle) = server.build();
                tokio::spawn(async move {
                    while let Some(line) = handle.next_log().await {
                        log.lock().unwrap().push(format!("{} {line}", stamp()));
                    }
                });
                server.run().await?;
                Ok(())
            }
        });
    }

    /// A world of several servers sharing one directory: a host `store`
    /// runs the key-value store model ([`crate::kv`]) and each of
    /// `servers` a `natter server` on port 4201 with a shared store on it
    /// (server id: the host's name; its own seed). The server log
    /// interleaves all of theirs, each line headed by the server's name.
    /// Peers register with the first server until
    /// [`Scenario::serve_peers_from`] says otherwise.
    pub fn cluster(
        builder: &turmoil::Builder,
        registry: RegistryConfig,
        cluster: ClusterConfig,
        servers: &[&str],
    ) -> Self {
        let mut scenario = Self {
            sim: builder.build(),
            server_log: Arc::default(),
            peers: BTreeMap::new(),
            server_host: servers[0].to_string(),
            other_server_logs: BTreeMap::new(),
        };
        scenario.sim.host("store", || async {
            serve_kv().await?;
            Ok(())
        });
        for &name in servers {
            let log = scenario.server_log.clone();
            let mut registry = registry.clone();
            registry.seed = derive_seed(&registry.seed, name.as_bytes(), 0);
            let cluster = ClusterConfig {
                server: name.to_string(),
                ..cluster.clone()
            };
            let server_name = name.to_string();
            scenario.sim.host(name, move || {
                let log = log.clone();
                let store = SimKv {
                    addr: SocketAddr::new(turmoil::lookup("store"), KV_PORT),
                };
                let server = ServerBuilder::new(SimNet)
                    .config(registry.clone())
                    .listen_on(any_addr(SERVER_PORT))
                    .logs()
                    .with_store(Shared::new(store, cluster.clone()));
                let name = server_name.clone();
                async move {
                    let (server, mut handle) = server.build();
                    tokio::spawn(async move {
                        while let Some(line) = handle.next_log().await {
                            log.lock()
                                .unwrap()
                                .push(format!("{} {name}: {line}", stamp()));
                        }
                    });
                    server.run().await?;
                    Ok(())
                }
            });
        }
        scenario
    }

    /// New peers register with the server on host `server` from now on.
    pub fn serve_peers_from(&mut self, server: &str) {
        self.server_host = server.to_string();
    }

    /// Starts a peer named `name` on a host of the same name.
    pub fn start_peer(&mut self, name: &str) {
        self.start_peer_with(name, |_| {});
    }

    /// Starts a peer after `tune` has adjusted its configuration.
    pub fn start_peer_with(&mut self, name: &str, tune: impl FnOnce(&mut PeerConfig)) {
        self.start_peer_beside(name, tune, || async {});
    }

    /// Starts a peer and, on the same host (so with the same IP), a
    /// companion task: a raw client that tries to register the peer's own
    /// address, for instance.
    pub fn start_peer_beside<F, Fut>(
        &mut self,
        name: &str,
        tune: impl FnOnce(&mut PeerConfig),
        companion: F,
    ) where
        F: Fn() -> Fut + 'a,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let peer = self.peer_builder(name).config(tune);
        self.start_built(name, peer, companion);
    }

    /// A peer named `name` as the scenario starts it: registering with the
    /// server, listening on [`PEER_PORT`], transcripts in [`TRANSCRIPTS`]
    /// on its host's disk. Adjust it, then start it with
    /// [`Scenario::start_built`].
    pub fn peer_builder(&self, name: &str) -> PeerBuilder<SimNet, SimDisk> {
        let server = SocketAddr::new(self.sim.lookup(self.server_host.as_str()), SERVER_PORT);
        PeerBuilder::on_disk(SimNet, name, server, SimDisk, TRANSCRIPTS)
            .listen_on(any_addr(PEER_PORT))
            .line_buffer(LINE_BUFFER)
    }

    /// Starts `peer` on a host named `host`, with a companion task.
    pub fn start_built<F, Fut>(
        &mut self,
        host: &str,
        peer: PeerBuilder<SimNet, SimDisk>,
        companion: F,
    ) where
        F: Fn() -> Fut + 'a,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let (task, handle) = peer.build();
        let next = Arc::new(Mutex::new(Some(task)));
        let boot = next.clone();
        let disk = Arc::new(Mutex::new(None));
        let host_disk = disk.clone();
        self.sim.host(host, move || {
            let task = boot
                .lock()
                .unwrap()
                .take()
                .expect("a peer host boots only to run a new peer (see restart_peer)");
            let companion = companion();
            let disk = host_disk.clone();
            async move {
                tokio::spawn(companion);
                *disk.lock().unwrap() = Some(HostDisk::current());
                task.run().await?;
                // The process ended but the machine stays up, so a call to
                // it is refused at once, as on a real network. (A turmoil
                // host whose software returned stops answering entirely,
                // like a machine switched off: use `sim.crash` for that.)
                std::future::pending::<()>().await;
                Ok(())
            }
        });
        self.peers.insert(
            host.to_string(),
            SimPeer {
                handle,
                next,
                reading: true,
                seen: Vec::new(),
                read: 0,
                disk,
            },
        );
    }

    /// Starts a new `natter peer` on `host`, whose peer has exited or
    /// whose machine crashed (`sim.crash`): the host boots again (with its
    /// disk, its address and its companion) and runs a peer named after
    /// the host, adjusted by `tune`. Left as it is, that is the same user
    /// with the same key: the peer's identity derives from its name. Its
    /// events follow the old process's in [`Scenario::events`].
    pub fn restart_peer(&mut self, host: &str, tune: impl FnOnce(&mut PeerConfig)) {
        let (task, handle) = self.peer_builder(host).config(tune).build();
        let at = self.elapsed();
        let peer = self.peer(host);
        // The old process's last words, if it had any left unread.
        peer.collect(at);
        peer.handle = handle;
        *peer.next.lock().unwrap() = Some(task);
        self.sim.bounce(host);
    }

    /// The user of `peer` types `line`. A line the user interface cannot
    /// parse is refused there, as an `error` event seen at once, without
    /// reaching the peer.
    pub fn type_line(&mut self, peer: &str, line: &str) {
        let at = self.elapsed();
        let state = self.peer(peer);
        state
            .handle
            .try_send(line)
            .expect("the peer's input buffer has room");
        state.collect(at);
    }

    /// The user of `peer` closes standard input (`/quit`).
    pub fn end_input(&mut self, peer: &str) {
        self.peer(peer).handle.end_input();
    }

    /// The user of `peer` stops reading its events (a stalled terminal,
    /// a paused pipe) until [`Scenario::resume_reading`].
    pub fn stop_reading(&mut self, peer: &str) {
        self.peer(peer).reading = false;
    }

    pub fn resume_reading(&mut self, peer: &str) {
        self.peer(peer).reading = true;
    }

    /// The most events `peer` ever held because they were not read.
    pub fn max_held(&self, peer: &str) -> usize {
        self.peers[peer].handle.max_held()
    }

    /// Simulated time since the start.
    pub fn elapsed(&self) -> Duration {
        self.sim.elapsed()
    }

    /// Runs the simulation for `span` of simulated time.
    pub fn run_for(&mut self, span: Duration) {
        let until = self.elapsed() + span;
        while self.elapsed() < until {
            self.step();
        }
    }

    /// Runs until `peer` sees an event matching `wanted` (skipping the
    /// events before it), and returns it with the simulated time it came
    /// at. Panics after `limit` of simulated time.
    pub fn wait_for(
        &mut self,
        peer: &str,
        limit: Duration,
        wanted: impl Fn(&Event) -> bool,
    ) -> (Duration, Event) {
        let give_up = self.elapsed() + limit;
        loop {
            let state = self.peer(peer);
            if let Some(offset) = state.seen[state.read..].iter().position(|(_, e)| wanted(e)) {
                state.read += offset + 1;
                return state.seen[state.read - 1].clone();
            }
            assert!(
                self.elapsed() < give_up,
                "{peer} saw no such event within {limit:?}; it saw {:#?}",
                &self.peer(peer).seen
            );
            self.step();
        }
    }

    /// Runs until `peer` has exited, and returns its exit code.
    pub fn wait_exit(&mut self, peer: &str, limit: Duration) -> i32 {
        let give_up = self.elapsed() + limit;
        loop {
            if let Some(code) = self.peer(peer).handle.exit_code() {
                return code;
            }
            assert!(
                self.elapsed() < give_up,
                "{peer} did not exit within {limit:?}"
            );
            self.step();
        }
    }

    /// Every event `peer` saw, with its simulated time.
    pub fn events(&self, peer: &str) -> &[(Duration, Event)] {
        &self.peers[peer].seen
    }

    /// Every event `peer` saw, one JSON line each, prefixed with the
    /// simulated time (for snapshots).
    pub fn event_log(&self, peer: &str) -> String {
        self.events(peer)
            .iter()
            .map(|(at, e)| {
                format!(
                    "{:>9.3}s {}\n",
                    at.as_secs_f64(),
                    serde_json::to_string(e).unwrap()
                )
            })
            .collect()
    }

    /// The server's directory log so far, one stamped line each.
    pub fn server_log(&self) -> String {
        joined(&self.server_log)
    }

    /// The directory log of the server on `host`, one that
    /// [`Scenario::start_server`] started.
    pub fn server_log_of(&self, host: &str) -> String {
        joined(&self.other_server_logs[host])
    }

    /// All of `peer`'s transcripts, in file-name order, each headed by its
    /// file name: what its host's disk holds now (after `sim.crash`, only
    /// what was made durable).
    pub fn transcripts(&self, peer: &str) -> String {
        let disk = self.peers[peer].disk.lock().unwrap();
        let files = disk
            .as_ref()
            .map(|disk| disk.files(Path::new(TRANSCRIPTS)))
            .unwrap_or_default();
        files
            .iter()
            .map(|(name, text)| format!("== {name}\n{text}"))
            .collect()
    }

    /// Starts a host that runs `client` (raw sockets, no natter code): for
    /// hostile or hand-written clients.
    pub fn start_raw_host<F, Fut>(&mut self, name: &str, client: F)
    where
        F: Fn() -> Fut + 'a,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        self.sim.host(name, move || {
            let run = client();
            async move {
                run.await;
                Ok(())
            }
        });
    }

    /// The address peer `name` is registered at.
    pub fn addr_of(&self, name: &str) -> SocketAddr {
        SocketAddr::new(self.sim.lookup(name), PEER_PORT)
    }

    fn peer(&mut self, name: &str) -> &mut SimPeer {
        self.peers
            .get_mut(name)
            .unwrap_or_else(|| panic!("no peer {name}"))
    }

    /// One tick of the simulation, then collect what the peers reported.
    pub fn step(&mut self) {
        self.sim.step().expect("no host failed");
        let at = self.sim.elapsed();
        for peer in self.peers.values_mut() {
            peer.collect(at);
        }
    }
}

/// Log lines, each ended by a newline.
fn joined(log: &Mutex<Vec<String>>) -> String {
    log.lock()
        .unwrap()
        .iter()
        .map(|l| format!("{l}\n"))
        .collect()
}

fn any_addr(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)
}
