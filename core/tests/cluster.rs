//! A registry sharing its directory with other servers (the registry's
//! cluster mode), driven by raw frames from in-process clients, with the
//! test playing the store by hand: it reads the store operations and
//! feeds back claim results, reachability and remote changes.

use natter_core::identity::Identity;
use natter_core::protocol::{ErrorCode, PeerInfo, PeerStatus, ServerMsg};
use natter_core::registry::client::InProcessClient;
use natter_core::registry::{
    ClaimResult, ClusterConfig, RegistryConfig, RegistryLog, RemoteChange, StoreInput, StoreOp,
};
use natter_core::{FrameDecoder, LinkId, Now, Registry, RegistryInput, RegistryOutput};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

const ALICE: [u8; 32] = [0xa1; 32];
const BOB: [u8; 32] = [0xb0; 32];

/// One registry in cluster mode, its outputs sorted out.
struct Server {
    registry: Registry,
    now: Now,
    next_link: u64,
    clients: BTreeMap<LinkId, InProcessClient>,
    frames: BTreeMap<LinkId, Vec<ServerMsg>>,
    logs: Vec<RegistryLog>,
    ops: Vec<StoreOp>,
}

impl Server {
    /// A server `server1` whose store has answered (reachable).
    fn start() -> Self {
        let mut server = Self::cut_off();
        server.store(StoreInput::Reachable);
        server.logs.clear();
        server
    }

    /// A server `server1` whose store has not answered yet.
    fn cut_off() -> Self {
        let config = RegistryConfig {
            cluster: Some(ClusterConfig::new("server1")),
            ..RegistryConfig::default()
        };
        let now = Now::at_unix(1_764_068_934);
        Self {
            registry: Registry::new(config, now),
            now,
            next_link: 0,
            clients: BTreeMap::new(),
            frames: BTreeMap::new(),
            logs: Vec::new(),
            ops: Vec::new(),
        }
    }

    fn connect(&mut self, key_seed: [u8; 32]) -> LinkId {
        self.next_link += 1;
        let link = LinkId(self.next_link);
        let addr = SocketAddr::from(([10, 0, 0, self.next_link as u8], 40_000));
        let identity = Identity::from_seed(&key_seed);
        let seed = [self.next_link as u8; 32];
        let (client, others) =
            InProcessClient::connect(&mut self.registry, self.now, link, addr, &identity, seed);
        self.clients.insert(link, client);
        self.outputs(others);
        self.send(link, "{\"type\":\"hello\",\"version\":2}");
        self.take(link);
        link
    }

    fn register(&mut self, link: LinkId, name: &str) -> Vec<ServerMsg> {
        let frame = format!("{{\"type\":\"register\",\"name\":\"{name}\",\"port\":4000}}");
        self.send(link, &frame);
        self.take(link)
    }

    fn send(&mut self, link: LinkId, frame: &str) {
        let client = self.clients.get_mut(&link).expect("connected");
        client.send(format!("{frame}\n").as_bytes()).unwrap();
        let bytes = client.outgoing().unwrap();
        self.input(RegistryInput::Bytes { link, bytes });
    }

    fn store(&mut self, input: StoreInput) {
        self.input(RegistryInput::Store(input));
    }

    fn input(&mut self, input: RegistryInput) {
        self.registry.handle_input(self.now, input);
        self.pump();
    }

    fn advance(&mut self, by: Duration) {
        self.now = self.now.advanced(by);
        self.registry.handle_timeout(self.now);
        self.pump();
    }

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
                RegistryOutput::Close { .. } => {}
                RegistryOutput::Probe { link, .. } => {
                    let probed = RegistryInput::Probed {
                        link,
                        reachable: true,
                    };
                    self.registry.handle_input(self.now, probed);
                    self.pump();
                }
                RegistryOutput::Log(log) => self.logs.push(log),
                RegistryOutput::Store(op) => self.ops.push(op),
            }
        }
    }

    fn take(&mut self, link: LinkId) -> Vec<ServerMsg> {
        self.frames.remove(&link).unwrap_or_default()
    }

    fn take_ops(&mut self) -> Vec<StoreOp> {
        std::mem::take(&mut self.ops)
    }

    /// Registers `name` for `link` and answers its claim with `result`.
    fn register_claimed(
        &mut self,
        link: LinkId,
        name: &str,
        result: ClaimResult,
    ) -> Vec<ServerMsg> {
        assert_eq!(
            self.register(link, name),
            vec![],
            "the registration waits for its claim"
        );
        let ops = self.take_ops();
        assert!(
            matches!(&ops[..], [StoreOp::Claim { link: Some(l), name: n, .. }] if *l == link && n == &name.to_ascii_lowercase()),
            "{ops:?}"
        );
        let name = name.to_ascii_lowercase();
        self.store(StoreInput::Claimed { link, name, result });
        self.take(link)
    }
}

fn remote(name: &str, port: u16) -> PeerInfo {
    PeerInfo {
        name: name.into(),
        addr: SocketAddr::from(([10, 9, 9, 9], port)),
        status: PeerStatus::Available,
        reachable: true,
        key: Some(Identity::from_seed(&[port as u8; 32]).public()),
    }
}

fn put(name: &str, port: u16, revision: u64) -> StoreInput {
    StoreInput::Remote(RemoteChange::Put {
        name: name.to_ascii_lowercase(),
        peer: remote(name, port),
        server: "server2".into(),
        revision,
    })
}

fn error_code(frames: &[ServerMsg]) -> Option<ErrorCode> {
    frames.iter().find_map(|f| match f {
        ServerMsg::Error {
            code, close: false, ..
        } => Some(*code),
        _ => None,
    })
}

#[test]
fn a_won_claim_registers_and_announces_the_peer_under_this_server() {
    let mut s = Server::start();
    let alice = s.connect(ALICE);
    let answer = s.register_claimed(alice, "Alice", ClaimResult::Won);
    assert!(matches!(&answer[..], [ServerMsg::Registered { name, .. }] if name == "Alice"));
    let ops = s.take_ops();
    assert!(
        matches!(&ops[..], [StoreOp::Announce { name, peer, server }] if name == "alice" && peer.name == "Alice" && server == "server1"),
        "{ops:?}"
    );
}

#[test]
fn a_claim_taken_by_another_key_gives_name_taken_and_the_connection_may_try_again() {
    let mut s = Server::start();
    let bob = s.connect(BOB);
    let answer = s.register_claimed(bob, "alice", ClaimResult::Taken);
    assert_eq!(
        error_code(&answer),
        Some(ErrorCode::NameTaken),
        "{answer:?}"
    );
    assert_eq!(
        s.registry.registered() + s.registry.probing(),
        0,
        "nothing held"
    );
    let answer = s.register_claimed(bob, "bob", ClaimResult::Won);
    assert!(
        matches!(&answer[..], [ServerMsg::Registered { .. }]),
        "{answer:?}"
    );
}

#[test]
fn an_unanswered_claim_gives_store_unavailable_after_the_claim_timeout() {
    let mut s = Server::start();
    let alice = s.connect(ALICE);
    assert_eq!(s.register(alice, "alice"), vec![]);
    s.take_ops();
    s.advance(Duration::from_millis(4_999));
    assert_eq!(s.take(alice), vec![], "still waiting");
    s.advance(Duration::from_millis(1));
    assert_eq!(
        error_code(&s.take(alice)),
        Some(ErrorCode::StoreUnavailable)
    );
    // A late answer changes nothing.
    s.store(StoreInput::Claimed {
        link: alice,
        name: "alice".into(),
        result: ClaimResult::Won,
    });
    assert_eq!(s.take(alice), vec![]);
    assert_eq!(s.registry.registered(), 0);
}

#[test]
fn while_cut_off_registrations_are_refused_at_once_and_the_log_says_so_once() {
    let mut s = Server::start();
    s.store(StoreInput::Unreachable);
    s.store(StoreInput::Unreachable);
    assert_eq!(s.logs, vec![RegistryLog::StoreUnreachable]);
    let alice = s.connect(ALICE);
    let answer = s.register(alice, "alice");
    assert_eq!(error_code(&answer), Some(ErrorCode::StoreUnavailable));
    assert!(s.take_ops().is_empty(), "no claim is even tried");
    s.store(StoreInput::Reachable);
    assert_eq!(s.logs.last(), Some(&RegistryLog::StoreReachable));
    let answer = s.register_claimed(alice, "alice", ClaimResult::Won);
    assert!(matches!(&answer[..], [ServerMsg::Registered { .. }]));
}

#[test]
fn registered_peers_stay_while_cut_off_and_are_announced_again_when_back() {
    let mut s = Server::start();
    let alice = s.connect(ALICE);
    s.register_claimed(alice, "alice", ClaimResult::Won);
    s.take_ops();
    s.store(StoreInput::Unreachable);
    for _ in 0..5 {
        s.advance(Duration::from_secs(4));
        s.send(alice, "{\"type\":\"pong\"}");
    }
    assert_eq!(s.registry.registered(), 1);
    assert!(s.take_ops().is_empty(), "no refresh while cut off");
    s.store(StoreInput::Reachable);
    let ops = s.take_ops();
    assert!(
        matches!(&ops[..], [StoreOp::Announce { name, .. }] if name == "alice"),
        "{ops:?}"
    );
}

#[test]
fn local_peers_are_announced_again_every_refresh_interval() {
    let mut s = Server::start();
    let alice = s.connect(ALICE);
    s.register_claimed(alice, "alice", ClaimResult::Won);
    s.take_ops();
    // Keep the client alive: it answers pings.
    for _ in 0..2 {
        s.advance(Duration::from_secs(5));
        s.send(alice, "{\"type\":\"pong\"}");
        s.take(alice);
        let announced = s
            .take_ops()
            .into_iter()
            .filter(|op| matches!(op, StoreOp::Announce { .. }))
            .count();
        assert_eq!(announced, 1);
    }
}

#[test]
fn other_servers_peers_are_listed_looked_up_and_gone_when_deleted() {
    let mut s = Server::start();
    let alice = s.connect(ALICE);
    s.register_claimed(alice, "alice", ClaimResult::Won);
    s.store(put("Bob", 5000, 3));
    s.store(put("carol", 5001, 4));
    let names: Vec<String> = s.registry.peers().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["alice", "Bob", "carol"], "merged in name order");
    s.send(alice, "{\"type\":\"list\",\"id\":1}");
    let listed = s.take(alice);
    assert!(
        matches!(&listed[..], [ServerMsg::Peers { peers, .. }] if peers == &[remote("Bob", 5000), remote("carol", 5001)]),
        "{listed:?}"
    );
    s.send(alice, "{\"type\":\"lookup\",\"id\":2,\"name\":\"bob\"}");
    let found = s.take(alice);
    assert!(
        matches!(&found[..], [ServerMsg::Found { peer: Some(p), .. }] if *p == remote("Bob", 5000)),
        "{found:?}"
    );
    // An older revision is ignored; a deletion removes.
    s.store(put("Bob", 6000, 2));
    assert_eq!(s.registry.peers()[1].addr.port(), 5000);
    s.store(StoreInput::Remote(RemoteChange::Gone {
        name: "bob".into(),
        revision: 5,
        expired: true,
    }));
    let names: Vec<String> = s.registry.peers().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["alice", "carol"]);
}

#[test]
fn a_new_watch_snapshot_drops_the_entries_it_does_not_repeat() {
    let mut s = Server::start();
    s.store(put("bob", 5000, 1));
    s.store(put("carol", 5001, 2));
    s.store(StoreInput::Remote(RemoteChange::Snapshot));
    s.store(put("carol", 5001, 2));
    assert_eq!(
        s.registry.peers().len(),
        2,
        "not before the snapshot is complete"
    );
    s.store(StoreInput::Remote(RemoteChange::Current));
    let names: Vec<String> = s.registry.peers().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["carol"]);
}

#[test]
fn an_entry_an_earlier_life_of_this_server_left_is_withdrawn() {
    let mut s = Server::start();
    s.store(StoreInput::Remote(RemoteChange::Put {
        name: "ghost".into(),
        peer: remote("ghost", 5000),
        server: "server1".into(),
        revision: 1,
    }));
    assert_eq!(
        s.take_ops(),
        vec![StoreOp::Withdraw {
            name: "ghost".into()
        }]
    );
    assert!(s.registry.peers().is_empty());
}

#[test]
fn a_peer_leaving_is_withdrawn_and_its_name_use_is_a_claim_nobody_waits_for() {
    let mut s = Server::start();
    let alice = s.connect(ALICE);
    s.register_claimed(alice, "alice", ClaimResult::Won);
    s.take_ops();
    s.now = s.now.advanced(Duration::from_secs(7200));
    s.send(alice, "{\"type\":\"bye\"}");
    let ops = s.take_ops();
    assert!(
        matches!(&ops[..], [StoreOp::Claim { link: None, name, .. }, StoreOp::Withdraw { name: w }] if name == "alice" && w == "alice"),
        "{ops:?}"
    );
}

#[test]
fn a_peer_that_moved_to_another_server_is_replaced_here() {
    let mut s = Server::start();
    let alice = s.connect(ALICE);
    s.register_claimed(alice, "alice", ClaimResult::Won);
    let moved = PeerInfo {
        key: Some(Identity::from_seed(&ALICE).public()),
        ..remote("alice", 5000)
    };
    s.store(StoreInput::Remote(RemoteChange::Put {
        name: "alice".into(),
        peer: moved.clone(),
        server: "server2".into(),
        revision: 9,
    }));
    let told = s.take(alice);
    assert!(
        told.iter().any(|f| matches!(
            f,
            ServerMsg::Error {
                code: ErrorCode::Replaced,
                close: true,
                ..
            }
        )),
        "{told:?}"
    );
    assert_eq!(s.registry.peers(), vec![moved], "listed where it is now");
}
