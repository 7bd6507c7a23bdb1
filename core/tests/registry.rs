//! The directory server's state machine, driven by raw bytes.

mod world;

use natter_core::identity::{derive_seed, Identity};
use natter_core::protocol::{ErrorCode, PeerStatus, ServerMsg, LIST_CHUNK};
use natter_core::registry::client::InProcessClient;
use natter_core::registry::RegistryConfig;
use natter_core::{LinkId, Now, Registry, RegistryInput, RegistryOutput};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use world::World;

const HELLO: &str = "{\"type\":\"hello\",\"version\":2,\"min_version\":2,\"features\":[]}\n";

fn client(i: u32) -> SocketAddr {
    let [a, b, c, d] = (0x0a00_0000u32 + i).to_be_bytes();
    SocketAddr::from(([a, b, c, d], 40_000))
}

#[test]
fn a_client_can_register_and_list_frame_by_frame() {
    let mut world = World::new();
    let link = world.raw_client(client(7));
    let (reply, closed) = world.raw_send(
        link,
        b"{\"type\":\"hello\",\"version\":2}\n{\"type\":\"register\",\"name\":\"carol\",\"port\":4000}\n",
    );
    assert!(!closed);
    // Nobody listens at 10.0.0.7:4000: the probe finds it unreachable.
    assert_eq!(
        reply,
        format!("{HELLO}{{\"type\":\"registered\",\"name\":\"carol\",\"addr\":\"10.0.0.7:4000\",\"reachable\":false}}\n")
    );
    assert_eq!(
        world.take_logs(),
        vec!["carol registered at 10.0.0.7:4000, which the server cannot reach, and is available"]
    );
    let (reply, _) = world.raw_send(link, b"{\"type\":\"list\"}\n");
    assert_eq!(reply, "{\"type\":\"peers\",\"peers\":[],\"more\":false}\n");
}

#[test]
fn garbage_gets_an_error_reply_and_only_that_connection_closes() {
    let mut world = World::new();
    world.add_peer("alice");
    let link = world.raw_client(client(9));
    let (reply, closed) = world.raw_send(link, b"GET / HTTP/1.1\r\n");
    assert!(closed, "the connection is closed");
    assert!(
        reply.starts_with("{\"type\":\"error\",\"code\":\"bad_frame\""),
        "{reply}"
    );
    assert_eq!(world.registry().registered(), 1, "alice is unaffected");
    assert_eq!(world.registry().connections(), 1);
}

#[test]
fn an_endless_line_is_refused_without_buffering_it() {
    let mut world = World::with_registry(RegistryConfig {
        max_frame: 1024,
        ..RegistryConfig::default()
    });
    let link = world.raw_client(client(9));
    let (reply, closed) = world.raw_send(link, &[b'x'; 1000]);
    assert_eq!(
        (reply.as_str(), closed),
        ("", false),
        "still under the limit"
    );
    let (reply, closed) = world.raw_send(link, &[b'x'; 1000]);
    assert!(closed);
    assert!(reply.contains("\"code\":\"frame_too_long\""), "{reply}");
}

#[test]
fn first_frame_must_be_hello_with_our_version() {
    let mut world = World::new();
    let link = world.raw_client(client(9));
    let (reply, closed) = world.raw_send(link, b"{\"type\":\"list\"}\n");
    assert!(closed && reply.contains("\"bad_frame\""), "{reply}");
    let link = world.raw_client(client(10));
    let (reply, closed) = world.raw_send(
        link,
        b"{\"type\":\"hello\",\"version\":99,\"min_version\":3}\n",
    );
    assert!(closed && reply.contains("\"version_mismatch\""), "{reply}");
}

#[test]
fn a_version_1_client_is_refused_naming_both_version_ranges() {
    let mut world = World::new();
    let link = world.raw_client(client(9));
    let (reply, closed) = world.raw_send(link, b"{\"type\":\"hello\",\"version\":1}\n");
    assert!(closed);
    assert_eq!(
        reply,
        "{\"type\":\"error\",\"code\":\"version_mismatch\",\"message\":\"this server speaks protocol version 2, the client version 1; upgrade the older side\",\"close\":true}\n"
    );
}

#[test]
fn a_newer_client_is_answered_in_the_highest_common_version() {
    let mut world = World::new();
    let link = world.raw_client(client(9));
    let (reply, closed) = world.raw_send(
        link,
        b"{\"type\":\"hello\",\"version\":5,\"min_version\":2,\"features\":[\"teleport\"],\"colour\":\"blue\"}\n",
    );
    assert!(!closed);
    assert_eq!(
        reply, HELLO,
        "the server says what it speaks: 2, no features"
    );
}

#[test]
fn an_unknown_frame_type_and_an_unknown_status_keep_the_connection_open() {
    let mut world = World::new();
    world.add_peer("alice");
    let link = world.raw_client(client(9));
    world.raw_send(link, b"{\"type\":\"hello\",\"version\":2}\n{\"type\":\"register\",\"name\":\"newer\",\"port\":4000}\n");
    let (reply, closed) = world.raw_send(
        link,
        b"{\"type\":\"presence\",\"subscribe\":true}\n{\"type\":\"status\",\"status\":\"away\"}\n{\"type\":\"list\",\"id\":3}\n",
    );
    assert!(!closed, "{reply}");
    assert_eq!(
        world.registry().ignored_frames(),
        1,
        "the unknown frame is counted"
    );
    let frames = world::server_frames(&reply);
    assert!(
        matches!(
            &frames[0],
            ServerMsg::Error {
                code: ErrorCode::BadInput,
                close: false,
                ..
            }
        ),
        "an unknown status is refused, the connection stays: {reply}"
    );
    assert!(
        matches!(&frames[1], ServerMsg::Peers { id: Some(3), peers, .. } if peers[0].name == "alice" && peers[0].status == PeerStatus::Available),
        "{reply}"
    );
    assert_eq!(world.registry().registered(), 2);
}

#[test]
fn a_connection_that_never_registers_is_dropped_after_the_register_timeout() {
    let mut world = World::new();
    let link = world.raw_client(client(9));
    world.advance(Duration::from_millis(9_999));
    assert_eq!(world.registry().connections(), 1);
    world.advance(Duration::from_millis(1));
    let (reply, _) = world.drain_raw(link);
    assert_eq!(world.registry().connections(), 0);
    let _ = reply;
    assert!(world.take_logs()[0].contains("timeout"));
}

#[test]
fn requests_before_registration_are_refused_politely() {
    let mut world = World::new();
    let link = world.raw_client(client(9));
    let (reply, closed) = world.raw_send(
        link,
        b"{\"type\":\"hello\",\"version\":2}\n{\"type\":\"list\"}\n",
    );
    assert!(!closed);
    assert!(
        reply.ends_with(
            "{\"type\":\"error\",\"code\":\"not_registered\",\"message\":\"register first\",\"close\":false}\n"
        ),
        "{reply}"
    );
}

#[test]
fn answers_and_refusals_repeat_the_request_id() {
    let config = RegistryConfig {
        list_chunk: 2,
        ..RegistryConfig::default()
    };
    let mut world = World::with_registry(config);
    for name in ["alice", "bob", "carol"] {
        world.add_peer(name);
    }
    let link = world.raw_client(client(9));
    let (reply, _) = world.raw_send(
        link,
        b"{\"type\":\"hello\",\"version\":2}\n{\"type\":\"list\",\"id\":6}\n",
    );
    assert!(
        reply.ends_with("{\"type\":\"error\",\"id\":6,\"code\":\"not_registered\",\"message\":\"register first\",\"close\":false}\n"),
        "{reply}"
    );
    world.raw_send(
        link,
        b"{\"type\":\"register\",\"name\":\"dave\",\"port\":4000}\n",
    );
    let (reply, _) = world.raw_send(
        link,
        b"{\"type\":\"list\",\"id\":7}\n{\"type\":\"lookup\",\"id\":8,\"name\":\"bob\"}\n{\"type\":\"list\"}\n",
    );
    let ids: Vec<(&str, Option<u64>)> = world::server_frames(&reply)
        .iter()
        .map(|frame| match frame {
            ServerMsg::Peers { id, .. } => ("peers", *id),
            ServerMsg::Found { id, peer, .. } => {
                assert_eq!(peer.as_ref().map(|p| p.name.as_str()), Some("bob"));
                ("found", *id)
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        ids,
        vec![
            ("peers", Some(7)),
            ("peers", Some(7)),
            ("found", Some(8)),
            ("peers", None),
            ("peers", None),
        ],
        "every chunk repeats its list's id; no id asked, none given"
    );
}

#[test]
fn every_error_says_truthfully_whether_the_connection_closes() {
    let cases: [(&str, &[u8], ErrorCode); 8] = [
        ("garbage", b"GET / HTTP/1.1\r\n", ErrorCode::BadFrame),
        ("no hello", b"{\"type\":\"list\",\"id\":1}\n", ErrorCode::BadFrame),
        ("old version", b"{\"type\":\"hello\",\"version\":1}\n", ErrorCode::VersionMismatch),
        ("second hello", b"{\"type\":\"hello\",\"version\":2}\n{\"type\":\"hello\",\"version\":2}\n", ErrorCode::BadFrame),
        ("list first", b"{\"type\":\"hello\",\"version\":2}\n{\"type\":\"list\"}\n", ErrorCode::NotRegistered),
        ("bad name", b"{\"type\":\"hello\",\"version\":2}\n{\"type\":\"register\",\"name\":\"a b\",\"port\":4000}\n", ErrorCode::InvalidName),
        ("port 0", b"{\"type\":\"hello\",\"version\":2}\n{\"type\":\"register\",\"name\":\"z\",\"port\":0}\n", ErrorCode::BadInput),
        ("bad fields", b"{\"type\":\"hello\",\"version\":2}\n{\"type\":\"register\",\"name\":7}\n", ErrorCode::BadFrame),
    ];
    for (what, bytes, expected) in cases {
        let mut world = World::new();
        let link = world.raw_client(client(9));
        let (reply, closed) = world.raw_send(link, bytes);
        let errors: Vec<(ErrorCode, bool)> = world::server_frames(&reply)
            .into_iter()
            .filter_map(|frame| match frame {
                ServerMsg::Error { code, close, .. } => Some((code, close)),
                _ => None,
            })
            .collect();
        assert_eq!(errors.len(), 1, "{what}: {reply}");
        assert_eq!(errors[0].0, expected, "{what}: {reply}");
        assert_eq!(
            errors[0].1, closed,
            "{what}: close flag vs what happened: {reply}"
        );
        assert_eq!(
            world.registry().connections(),
            usize::from(!closed),
            "{what}"
        );
    }
    // Refusals on open and by the timer say so too.
    let mut world = World::with_registry(RegistryConfig {
        max_connections_per_ip: 1,
        ..RegistryConfig::default()
    });
    world.raw_client(client(9));
    let crowded = world.raw_client(client(9));
    let (reply, closed) = world.drain_raw(crowded);
    assert!(
        closed
            && reply.contains("\"too_many_connections\"")
            && reply.ends_with("\"close\":true}\n"),
        "{reply}"
    );
    let slow = world.raw_client(client(10));
    world.now = world.now.advanced(Duration::from_secs(10));
    let now = world.now;
    world.registry().handle_timeout(now);
    let (reply, closed) = world.drain_raw(slow);
    assert!(
        closed && reply.contains("\"timeout\"") && reply.ends_with("\"close\":true}\n"),
        "{reply}"
    );
}

#[test]
fn server_full_past_max_peers() {
    let mut world = World::with_registry(RegistryConfig {
        max_peers: 1,
        ..RegistryConfig::default()
    });
    world.add_peer("alice");
    let link = world.raw_client(client(9));
    let (reply, closed) = world.raw_send(link, b"{\"type\":\"hello\",\"version\":2}\n{\"type\":\"register\",\"name\":\"bob\",\"port\":4000}\n");
    assert!(closed);
    assert!(
        reply.contains("\"server_full\"") && reply.ends_with("\"close\":true}\n"),
        "{reply}"
    );
}

#[test]
fn a_list_of_10000_peers_goes_out_in_chunks() {
    let config = RegistryConfig {
        max_peers: 10_001,
        ..RegistryConfig::default()
    };
    let mut direct = Direct::new(config);
    for i in 0..10_001u32 {
        let outputs = direct.register(i, &format!("p{i:05}"));
        for link in probes(&outputs) {
            direct.input(RegistryInput::Probed {
                link,
                reachable: true,
            });
        }
    }
    assert_eq!(direct.registry.registered(), 10_001);
    direct.frames(LinkId(0));
    let outputs = direct.send(LinkId(0), b"{\"type\":\"list\"}\n");
    let sealed = outputs
        .iter()
        .filter(|out| matches!(out, RegistryOutput::Send { .. }))
        .count();
    assert_eq!(
        sealed,
        10_000usize.div_ceil(LIST_CHUNK),
        "one write per chunk"
    );
    let text = direct.received(LinkId(0));
    assert!(
        text.lines()
            .all(|line| line.len() < natter_core::protocol::MAX_FRAME),
        "each chunk fits a frame"
    );
    let mut peers = Vec::new();
    let mut chunks = 0;
    let mut last_more = true;
    for frame in world::server_frames(&text) {
        let ServerMsg::Peers {
            peers: part, more, ..
        } = frame
        else {
            panic!("not a list")
        };
        assert!(last_more, "nothing after the last chunk");
        chunks += 1;
        last_more = more;
        peers.extend(part);
    }
    assert!(!last_more);
    assert_eq!(chunks, 10_000usize.div_ceil(LIST_CHUNK));
    assert_eq!(peers.len(), 10_000, "everyone but the asker");
    assert!(peers.iter().all(|p| p.name != "p00000"));
    assert!(
        peers.windows(2).all(|w| w[0].name < w[1].name),
        "sorted by name"
    );
}

#[test]
fn list_spam_is_rate_limited_and_only_that_connection_closes() {
    let mut world = World::new();
    world.add_peer("alice");
    let link = world.raw_client(client(9));
    world.raw_send(link, b"{\"type\":\"hello\",\"version\":2}\n{\"type\":\"register\",\"name\":\"spam\",\"port\":4000}\n");
    // hello does not count; register and 18 lists use up the burst of 20.
    for _ in 0..18 {
        let (_, closed) = world.raw_send(link, b"{\"type\":\"list\"}\n");
        assert!(!closed);
    }
    let (reply, closed) = world.raw_send(link, b"{\"type\":\"list\"}\n{\"type\":\"list\"}\n");
    assert!(closed, "the spammer is disconnected");
    assert!(reply.ends_with("\"code\":\"rate_limited\",\"message\":\"more than 20 requests in a burst or 5 per second; slow down and reconnect\",\"close\":true}\n"), "{reply}");
    assert_eq!(world.registry().registered(), 1, "alice is unaffected");
    assert!(world
        .take_logs()
        .iter()
        .any(|l| l == "spam has disconnected (refused: rate_limited)"));
}

#[test]
fn steady_requests_within_the_rate_are_served() {
    let mut world = World::new();
    let link = world.raw_client(client(9));
    world.raw_send(link, b"{\"type\":\"hello\",\"version\":2}\n{\"type\":\"register\",\"name\":\"calm\",\"port\":4000}\n");
    for _ in 0..100 {
        world.advance(std::time::Duration::from_millis(200));
        let (reply, closed) = world.raw_send(link, b"{\"type\":\"list\"}\n");
        assert!(!closed && reply.contains("\"peers\""), "{reply}");
    }
}

#[test]
fn too_many_connections_from_one_ip_are_refused() {
    let mut world = World::with_registry(RegistryConfig {
        max_connections_per_ip: 2,
        ..RegistryConfig::default()
    });
    let ip = |port| SocketAddr::from(([10, 9, 9, 9], port));
    world.raw_client(ip(1));
    world.raw_client(ip(2));
    let link = world.raw_client(ip(3));
    let (reply, closed) = world.drain_raw(link);
    assert!(closed, "refused on open");
    assert!(
        reply.contains("\"code\":\"too_many_connections\""),
        "{reply}"
    );
    assert_eq!(world.registry().connections(), 2);
    assert!(world.take_logs()[0].contains("too_many_connections"));
    world.raw_client(SocketAddr::from(([10, 9, 9, 8], 1)));
    assert_eq!(
        world.registry().connections(),
        3,
        "other IPs are unaffected"
    );
}

#[test]
fn a_client_cut_off_for_not_reading_is_deregistered_with_that_reason() {
    let mut world = World::new();
    let link = world.raw_client(client(9));
    world.raw_send(link, b"{\"type\":\"hello\",\"version\":2}\n{\"type\":\"register\",\"name\":\"deaf\",\"port\":4000}\n");
    world.take_logs();
    let now = world.now;
    world
        .registry()
        .handle_input(now, RegistryInput::Stalled { link });
    world.settle();
    assert_eq!(
        world.take_logs(),
        vec!["deaf has disconnected (dropped: not reading)"]
    );
    assert_eq!(world.registry().registered(), 0);
}

// ---------------------------------------------------------------------------
// names regardless of case, and a user's own stale session
// ---------------------------------------------------------------------------

fn register(world: &mut World, from: SocketAddr, name: &str) -> (LinkId, ServerMsg) {
    let link = world.raw_client(from);
    let bytes = format!(
        "{{\"type\":\"hello\",\"version\":2}}\n{{\"type\":\"register\",\"name\":\"{name}\",\"port\":{}}}\n",
        4000 + from.port() % 1000
    );
    let (reply, _) = world.raw_send(link, bytes.as_bytes());
    let frames = world::server_frames(&reply);
    (link, frames.last().expect("an answer").clone())
}

#[test]
fn names_are_unique_regardless_of_case_and_listed_in_case_insensitive_order() {
    let mut world = World::new();
    for (i, name) in ["carol", "Dave", "Alice", "bob"].iter().enumerate() {
        let (_, answer) = register(&mut world, client(10 + i as u32), name);
        assert!(matches!(answer, ServerMsg::Registered { .. }), "{answer:?}");
    }
    let (_, answer) = register(&mut world, client(20), "alice");
    assert!(
        matches!(&answer, ServerMsg::Error { code: ErrorCode::NameTaken, close: false, message, .. } if message.contains("Alice")),
        "another machine cannot take Alice as alice: {answer:?}"
    );
    let names: Vec<String> = world
        .registry()
        .peers()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(
        names,
        ["Alice", "bob", "carol", "Dave"],
        "shown as registered"
    );
    let (asker, _) = register(&mut world, client(21), "eve");
    let (reply, _) = world.raw_send(asker, b"{\"type\":\"lookup\",\"name\":\"ALICE\"}\n");
    assert!(
        matches!(&world::server_frames(&reply)[0], ServerMsg::Found { name, peer: Some(p), .. } if name == "ALICE" && p.name == "Alice"),
        "{reply}"
    );
}

// ---------------------------------------------------------------------------
// reachability: the server connects back before it lists a peer
// ---------------------------------------------------------------------------

/// A registry driven by hand, so a test decides when each probe answers;
/// its clients speak through in-process Noise sessions.
struct Direct {
    registry: Registry,
    now: Now,
    clients: BTreeMap<LinkId, InProcessClient>,
}

impl Direct {
    fn new(config: RegistryConfig) -> Self {
        let now = Now::at_unix(0);
        Self {
            registry: Registry::new(config, now),
            now,
            clients: BTreeMap::new(),
        }
    }

    /// Everything the registry output after `input`; what it sent to a
    /// client is read by that client (see [`Direct::frames`]).
    fn input(&mut self, input: RegistryInput) -> Vec<RegistryOutput> {
        self.registry.handle_input(self.now, input);
        let outputs: Vec<_> = std::iter::from_fn(|| self.registry.poll_output()).collect();
        self.deliver(&outputs);
        outputs
    }

    fn deliver(&mut self, outputs: &[RegistryOutput]) {
        for out in outputs {
            for client in self.clients.values_mut() {
                if client.take(out) {
                    break;
                }
            }
        }
    }

    /// Frames (plaintext) from client `link`, sealed in its session.
    fn send(&mut self, link: LinkId, frames: &[u8]) -> Vec<RegistryOutput> {
        let client = self.clients.get_mut(&link).expect("connected");
        client.send(frames).unwrap();
        let bytes = client.outgoing().unwrap();
        self.input(RegistryInput::Bytes { link, bytes })
    }

    /// Opens link `n` from client `n`, completes the handshake (a key of
    /// its own) and registers `name` on port 4000.
    fn register(&mut self, n: u32, name: &str) -> Vec<RegistryOutput> {
        let link = LinkId(u64::from(n));
        let seed = derive_seed(&[3; 32], b"direct client", u64::from(n));
        let identity = Identity::from_seed(&seed);
        let (client, others) = InProcessClient::connect(
            &mut self.registry,
            self.now,
            link,
            client(n),
            &identity,
            seed,
        );
        self.clients.insert(link, client);
        self.deliver(&others);
        let bytes = format!(
            "{{\"type\":\"hello\",\"version\":2}}\n{{\"type\":\"register\",\"name\":\"{name}\",\"port\":4000}}\n"
        );
        self.send(link, bytes.as_bytes())
    }

    /// What client `link` received since the last call, as text.
    fn received(&mut self, link: LinkId) -> String {
        self.clients.get_mut(&link).expect("connected").received()
    }

    /// The frames client `link` received since the last call.
    fn frames(&mut self, link: LinkId) -> Vec<ServerMsg> {
        let text = self.received(link);
        world::server_frames(&text)
    }
}

fn probes(outputs: &[RegistryOutput]) -> Vec<LinkId> {
    outputs
        .iter()
        .filter_map(|out| match out {
            RegistryOutput::Probe { link, .. } => Some(*link),
            _ => None,
        })
        .collect()
}

#[test]
fn a_peer_is_registered_and_listed_only_once_the_probe_answers() {
    let mut direct = Direct::new(RegistryConfig::default());
    let outputs = direct.register(1, "carol");
    assert!(
        outputs.contains(&RegistryOutput::Probe {
            link: LinkId(1),
            addr: SocketAddr::from(([10, 0, 0, 1], 4000)),
        }),
        "the server dials the observed IP at the registered port: {outputs:?}"
    );
    assert!(
        !outputs.iter().any(|o| matches!(o, RegistryOutput::Log(_))),
        "no Registered line yet: {outputs:?}"
    );
    assert_eq!(direct.frames(LinkId(1)).len(), 1, "only the hello");
    assert_eq!(direct.registry.peers(), vec![], "not listed meanwhile");
    // The name is claimed at once: nobody takes it during the probe.
    let outputs = direct.register(2, "Carol");
    assert!(
        matches!(
            &direct.frames(LinkId(2))[1],
            ServerMsg::Error {
                code: ErrorCode::NameTaken,
                ..
            }
        ),
        "{outputs:?}"
    );
    // The probe finds nobody listening (a NAT): listed, as unreachable.
    let outputs = direct.input(RegistryInput::Probed {
        link: LinkId(1),
        reachable: false,
    });
    assert!(
        matches!(
            &direct.frames(LinkId(1))[..],
            [ServerMsg::Registered {
                reachable: false,
                ..
            }]
        ),
        "{outputs:?}"
    );
    let listed = direct.registry.peers();
    assert_eq!(
        (listed[0].name.as_str(), listed[0].reachable),
        ("carol", false)
    );
    // A second answer for the same probe changes nothing.
    let outputs = direct.input(RegistryInput::Probed {
        link: LinkId(1),
        reachable: true,
    });
    assert_eq!(outputs, vec![]);
    assert!(!direct.registry.peers()[0].reachable);
}

#[test]
fn probes_in_flight_are_bounded_and_a_closed_connections_probe_is_dropped() {
    let mut direct = Direct::new(RegistryConfig {
        max_probes: 2,
        ..RegistryConfig::default()
    });
    let mut started = Vec::new();
    for (n, name) in [(1, "a"), (2, "b"), (3, "c"), (4, "d")] {
        started.extend(probes(&direct.register(n, name)));
    }
    assert_eq!(started, vec![LinkId(1), LinkId(2)], "two at a time");
    assert_eq!(direct.registry.probing(), 4);
    // c gives up while queued, a while its probe is out.
    direct.input(RegistryInput::Closed { link: LinkId(3) });
    let outputs = direct.input(RegistryInput::Closed { link: LinkId(1) });
    assert_eq!(
        probes(&outputs),
        vec![],
        "a's probe is still out: no slot free"
    );
    let outputs = direct.input(RegistryInput::Probed {
        link: LinkId(1),
        reachable: true,
    });
    assert_eq!(
        probes(&outputs),
        vec![LinkId(4)],
        "a's answer frees its slot; c is skipped"
    );
    assert!(
        !outputs
            .iter()
            .any(|o| matches!(o, RegistryOutput::Send { .. } | RegistryOutput::Log(_))),
        "a's answer is dropped: {outputs:?}"
    );
    direct.input(RegistryInput::Probed {
        link: LinkId(2),
        reachable: true,
    });
    direct.input(RegistryInput::Probed {
        link: LinkId(4),
        reachable: true,
    });
    let names: Vec<String> = direct
        .registry
        .peers()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["b", "d"]);
    assert_eq!(direct.registry.probing(), 0);
}

#[test]
fn a_client_may_send_requests_right_after_register_while_the_probe_runs() {
    let mut direct = Direct::new(RegistryConfig::default());
    direct.register(1, "alice");
    direct.input(RegistryInput::Probed {
        link: LinkId(1),
        reachable: true,
    });
    direct.register(2, "bob");
    direct.frames(LinkId(2));
    let outputs = direct.send(
        LinkId(2),
        b"{\"type\":\"status\",\"status\":\"busy\"}\n{\"type\":\"list\",\"id\":1}\n",
    );
    assert!(
        matches!(&direct.frames(LinkId(2))[..], [ServerMsg::Peers { id: Some(1), peers, .. }] if peers.len() == 1),
        "{outputs:?}"
    );
    let outputs = direct.input(RegistryInput::Probed {
        link: LinkId(2),
        reachable: true,
    });
    let logs: Vec<String> = outputs
        .iter()
        .filter_map(|o| match o {
            RegistryOutput::Log(log) => Some(log.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(logs, ["bob registered at 10.0.0.2:4000 and is busy"]);
    assert_eq!(direct.registry.peers()[1].status, PeerStatus::Busy);
}
