//! Names belong to keys: the registry's rules for the keys its clients'
//! handshakes prove, driven by raw frames from in-process clients, with
//! the durable store modelled as a map the store operations are applied to
//! (no SQLite here).

use natter_core::identity::Identity;
use natter_core::protocol::{ErrorCode, ServerMsg};
use natter_core::registry::client::InProcessClient;
use natter_core::registry::{Binding, RegistryConfig, StoreOp};
use natter_core::{FrameDecoder, LinkId, Now, Registry, RegistryInput, RegistryOutput};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

/// The seeds of alice's and mallory's keys.
const ALICE: [u8; 32] = [0xa1; 32];
const MALLORY: [u8; 32] = [0x66; 32];

/// The public key of the identity made from `seed`, as the store keeps it.
fn public(seed: [u8; 32]) -> [u8; 32] {
    *Identity::from_seed(&seed).public().as_bytes()
}
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// One registry and what it did, with its store as a map.
struct Server {
    registry: Registry,
    config: RegistryConfig,
    now: Now,
    next_link: u64,
    clients: BTreeMap<LinkId, InProcessClient>,
    frames: BTreeMap<LinkId, Vec<ServerMsg>>,
    closed: BTreeSet<LinkId>,
    logs: Vec<String>,
    /// Every store operation, in order.
    ops: Vec<StoreOp>,
    /// The store after those operations: name -> (key, last used).
    store: BTreeMap<String, ([u8; 32], u64)>,
}

impl Server {
    fn start(config: RegistryConfig) -> Self {
        let now = Now::at_unix(1_764_068_934);
        Self {
            registry: Registry::new(config.clone(), now),
            config,
            now,
            next_link: 0,
            clients: BTreeMap::new(),
            frames: BTreeMap::new(),
            closed: BTreeSet::new(),
            logs: Vec::new(),
            ops: Vec::new(),
            store: BTreeMap::new(),
        }
    }

    /// The server process restarts: connections and memory are gone, the
    /// store is loaded again.
    fn restart(&mut self) {
        let loaded = self.store.iter().map(|(name, &(key, last_used))| Binding {
            name: name.clone(),
            key,
            last_used,
        });
        self.registry = Registry::with_bindings(self.config.clone(), self.now, loaded);
    }

    /// A client connects from `ip` (port 40000), completes its handshake
    /// with the key made from `key_seed`, and says hello.
    fn connect(&mut self, ip: [u8; 4], key_seed: [u8; 32]) -> LinkId {
        self.next_link += 1;
        let link = LinkId(self.next_link);
        let addr = SocketAddr::from((ip, 40_000));
        let identity = Identity::from_seed(&key_seed);
        let seed = [self.next_link as u8; 32];
        let (client, others) =
            InProcessClient::connect(&mut self.registry, self.now, link, addr, &identity, seed);
        assert!(client.is_established(), "the handshake completes");
        self.clients.insert(link, client);
        self.outputs(others);
        self.send(link, "{\"type\":\"hello\",\"version\":2}");
        self.take(link);
        link
    }

    /// Registers `name` at `port` and returns the answer.
    fn register(&mut self, link: LinkId, name: &str, port: u16) -> ServerMsg {
        self.send(
            link,
            &format!("{{\"type\":\"register\",\"name\":\"{name}\",\"port\":{port}}}"),
        );
        let mut answer = self.take(link);
        assert_eq!(answer.len(), 1, "one answer: {answer:?}");
        answer.remove(0)
    }

    fn send(&mut self, link: LinkId, frame: &str) {
        let client = self.clients.get_mut(&link).expect("connected");
        client.send(format!("{frame}\n").as_bytes()).unwrap();
        let bytes = client.outgoing().unwrap();
        self.input(RegistryInput::Bytes { link, bytes });
    }

    fn input(&mut self, input: RegistryInput) {
        self.registry.handle_input(self.now, input);
        self.pump();
    }

    /// Time passes; clients say nothing.
    fn advance(&mut self, by: Duration) {
        self.now = self.now.advanced(by);
        self.registry.handle_timeout(self.now);
        self.pump();
    }

    /// Carries out the outputs; every address is reachable.
    fn pump(&mut self) {
        let outputs: Vec<_> = std::iter::from_fn(|| self.registry.poll_output()).collect();
        self.outputs(outputs);
    }

    fn outputs(&mut self, outputs: Vec<RegistryOutput>) {
        for out in outputs {
            match out {
                RegistryOutput::Send { link, .. } => {
                    let client = self.clients.get_mut(&link).expect("a client");
                    client.take(&out);
                    let mut decoder = FrameDecoder::new(usize::MAX);
                    decoder.push(client.received().as_bytes());
                    let frames = self.frames.entry(link).or_default();
                    frames.extend(std::iter::from_fn(|| decoder.next_frame()).map(Result::unwrap));
                }
                RegistryOutput::Close { link } => {
                    self.closed.insert(link);
                }
                RegistryOutput::Probe { link, .. } => {
                    let probed = RegistryInput::Probed {
                        link,
                        reachable: true,
                    };
                    self.registry.handle_input(self.now, probed);
                    self.pump();
                }
                RegistryOutput::Log(log) => self.logs.push(log.to_string()),
                RegistryOutput::Store(op) => {
                    match &op {
                        StoreOp::Bind { name, key, at } => {
                            self.store.insert(name.clone(), (*key, *at));
                        }
                        StoreOp::Touch { name, at } => {
                            self.store.get_mut(name).expect("touch a binding").1 = *at;
                        }
                        StoreOp::Expire { name } => {
                            self.store.remove(name).expect("expire a binding");
                        }
                        other => panic!("an embedded registry asked a shared store: {other:?}"),
                    }
                    self.ops.push(op);
                }
            }
        }
    }

    fn take(&mut self, link: LinkId) -> Vec<ServerMsg> {
        self.frames.remove(&link).unwrap_or_default()
    }

    fn take_logs(&mut self) -> Vec<String> {
        std::mem::take(&mut self.logs)
    }

    fn bye(&mut self, link: LinkId) {
        self.send(link, "{\"type\":\"bye\"}");
    }

    fn listed(&self) -> Vec<(String, SocketAddr)> {
        let peers = self.registry.peers().into_iter();
        peers.map(|p| (p.name, p.addr)).collect()
    }
}

fn refused(answer: ServerMsg) -> (ErrorCode, String) {
    match answer {
        ServerMsg::Error {
            code,
            message,
            close: false,
            ..
        } => (code, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn is_registered(answer: &ServerMsg, name: &str) -> bool {
    matches!(answer, ServerMsg::Registered { name: n, .. } if n == name)
}

#[test]
fn another_key_gets_name_taken_whether_or_not_the_owner_is_online() {
    let mut server = Server::start(RegistryConfig::default());
    let alice = server.connect([10, 0, 0, 2], ALICE);
    assert!(is_registered(
        &server.register(alice, "alice", 4000),
        "alice"
    ));

    let mallory = server.connect([10, 0, 0, 66], MALLORY);
    let (code, message) = refused(server.register(mallory, "alice", 4000));
    assert_eq!(code, ErrorCode::NameTaken);
    assert!(message.contains("owned by another key"), "{message}");

    server.bye(alice);
    assert!(server.listed().is_empty(), "alice is offline");
    // From alice's own address too: the key decides, not the address.
    let mallory = server.connect([10, 0, 0, 2], MALLORY);
    let (code, message) = refused(server.register(mallory, "alice", 4000));
    assert_eq!(code, ErrorCode::NameTaken);
    assert!(message.contains("owned by another key"), "{message}");
    assert!(server.listed().is_empty(), "nobody took the name");
}

#[test]
fn the_owners_new_session_replaces_the_old_one_at_once() {
    let mut server = Server::start(RegistryConfig::default());
    let old = server.connect([10, 0, 0, 2], ALICE);
    server.register(old, "alice", 4000);
    server.take_logs();
    // alice's process crashed; the server has not noticed. She restarts
    // on the same port and registers a second later.
    server.advance(Duration::from_secs(1));
    let new = server.connect([10, 0, 0, 2], ALICE);
    let answer = server.register(new, "alice", 4000);
    assert!(is_registered(&answer, "alice"), "{answer:?}");

    let told = server.take(old);
    assert!(
        matches!(
            told.as_slice(),
            [ServerMsg::Error {
                code: ErrorCode::Replaced,
                close: true,
                ..
            }]
        ),
        "{told:?}"
    );
    assert!(server.closed.contains(&old) && !server.closed.contains(&new));
    assert_eq!(
        server.take_logs(),
        vec![
            "refused 10.0.0.2:40000: replaced: a newer session with the same key registered alice; this one is closed",
            "alice has disconnected (refused: replaced)",
            "alice registered at 10.0.0.2:4000 and is available",
        ]
    );
    assert_eq!(
        server.listed(),
        vec![("alice".to_string(), "10.0.0.2:4000".parse().unwrap())]
    );
    assert_eq!(server.registry.connections(), 1);
}

#[test]
fn the_owner_moving_to_another_address_replaces_its_old_session() {
    let mut server = Server::start(RegistryConfig::default());
    let old = server.connect([10, 0, 0, 2], ALICE);
    server.register(old, "alice", 4000);
    let new = server.connect([192, 168, 1, 9], ALICE);
    assert!(is_registered(&server.register(new, "Alice", 4100), "Alice"));
    assert!(server.closed.contains(&old));
    assert_eq!(
        server.listed(),
        vec![("Alice".to_string(), "192.168.1.9:4100".parse().unwrap())]
    );
}

#[test]
fn after_the_name_ttl_the_name_is_free() {
    let mut server = Server::start(RegistryConfig::default());
    let alice = server.connect([10, 0, 0, 2], ALICE);
    server.register(alice, "alice", 4000);
    server.bye(alice);

    server.advance(30 * DAY - Duration::from_secs(1));
    let mallory = server.connect([10, 0, 0, 66], MALLORY);
    let (code, _) = refused(server.register(mallory, "alice", 4000));
    assert_eq!(code, ErrorCode::NameTaken, "a second before the TTL");

    server.advance(Duration::from_secs(1));
    let mallory = server.connect([10, 0, 0, 66], MALLORY);
    assert!(is_registered(
        &server.register(mallory, "alice", 4000),
        "alice"
    ));
    assert_eq!(
        server.store["alice"].0,
        public(MALLORY),
        "the name is mallory's now"
    );
    assert!(
        server.ops.contains(&StoreOp::Expire {
            name: "alice".into()
        }),
        "{:?}",
        server.ops
    );
}

#[test]
fn an_owner_online_for_longer_than_the_ttl_keeps_the_name_across_a_restart() {
    let config = RegistryConfig {
        name_ttl: HOUR,
        ..RegistryConfig::default()
    };
    let mut server = Server::start(config);
    let alice = server.connect([10, 0, 0, 2], ALICE);
    server.register(alice, "alice", 4000);
    for _ in 0..2 * 3600 / 5 {
        server.advance(Duration::from_secs(5));
        server.send(alice, "{\"type\":\"ping\"}");
    }
    server.restart();
    let mallory = server.connect([10, 0, 0, 66], MALLORY);
    let (code, message) = refused(server.register(mallory, "alice", 4000));
    assert_eq!(code, ErrorCode::NameTaken);
    assert!(message.contains("owned by another key"), "{message}");
}

#[test]
fn names_are_bound_regardless_of_case() {
    let mut server = Server::start(RegistryConfig::default());
    let alice = server.connect([10, 0, 0, 2], ALICE);
    server.register(alice, "Alice", 4000);
    server.bye(alice);
    let mallory = server.connect([10, 0, 0, 66], MALLORY);
    let (code, message) = refused(server.register(mallory, "ALICE", 4000));
    assert_eq!(code, ErrorCode::NameTaken);
    assert!(message.contains("regardless of case"), "{message}");
    let alice = server.connect([10, 0, 0, 2], ALICE);
    assert!(is_registered(
        &server.register(alice, "alice", 4000),
        "alice"
    ));
    assert_eq!(server.store.keys().collect::<Vec<_>>(), vec!["alice"]);
}

#[test]
fn a_server_restart_loses_no_binding() {
    let mut server = Server::start(RegistryConfig::default());
    let alice = server.connect([10, 0, 0, 2], ALICE);
    server.register(alice, "alice", 4000);
    server.restart();
    // The squatter is first through the door after the restart.
    let mallory = server.connect([10, 0, 0, 66], MALLORY);
    let (code, _) = refused(server.register(mallory, "alice", 4000));
    assert_eq!(code, ErrorCode::NameTaken);
    let alice = server.connect([10, 0, 0, 2], ALICE);
    assert!(is_registered(
        &server.register(alice, "alice", 4000),
        "alice"
    ));
}

#[test]
fn a_name_used_again_within_the_hour_is_not_written_again() {
    let mut server = Server::start(RegistryConfig::default());
    for i in 0..10 {
        let alice = server.connect([10, 0, 0, 2], ALICE);
        server.register(alice, "alice", 4000);
        server.bye(alice);
        server.advance(Duration::from_secs(60 * i));
    }
    assert_eq!(server.ops.len(), 1, "one bind: {:?}", server.ops);
    server.advance(HOUR);
    let alice = server.connect([10, 0, 0, 2], ALICE);
    server.register(alice, "alice", 4000);
    assert!(
        matches!(
            server.ops.as_slice(),
            [StoreOp::Bind { .. }, StoreOp::Touch { .. }]
        ),
        "{:?}",
        server.ops
    );
}

#[test]
fn a_client_that_skips_the_handshake_is_closed_and_registers_nothing() {
    let mut server = Server::start(RegistryConfig::default());
    let link = LinkId(99);
    let addr = SocketAddr::from(([10, 0, 0, 2], 40_000));
    server.input(RegistryInput::Opened { link, addr });
    let plain = "{\"type\":\"hello\",\"version\":2}\n{\"type\":\"register\",\"name\":\"bob\",\"port\":4000}\n";
    server.input(RegistryInput::Bytes {
        link,
        bytes: plain.as_bytes().to_vec(),
    });
    assert!(server.closed.contains(&link), "closed at once");
    assert!(!server.frames.contains_key(&link), "nothing said in clear");
    assert!(server.listed().is_empty());
    assert!(server.ops.is_empty(), "no binding");
    let logs = server.take_logs();
    assert!(
        logs.iter()
            .any(|l| l.contains("refused 10.0.0.2:40000: bad_frame: the encrypted link failed")),
        "{logs:?}"
    );
}
