//! The directory server's state machine, driven by raw bytes.

mod world;

use natter_core::protocol::{ServerMsg, LIST_CHUNK};
use natter_core::registry::RegistryConfig;
use natter_core::{LinkId, Now, Registry, RegistryInput, RegistryOutput};
use std::net::SocketAddr;
use std::time::Duration;
use world::World;

fn client(i: u32) -> SocketAddr {
    let [a, b, c, d] = (0x0a00_0000u32 + i).to_be_bytes();
    SocketAddr::from(([a, b, c, d], 40_000))
}

#[test]
fn nc_user_can_register_and_list_by_hand() {
    let mut world = World::new();
    let link = world.raw_client(client(7));
    let (reply, closed) = world.raw_send(link, b"{\"type\":\"hello\",\"version\":1}\n{\"type\":\"register\",\"name\":\"carol\",\"port\":4000}\n");
    assert!(!closed);
    assert_eq!(
        reply,
        "{\"type\":\"hello\",\"version\":1}\n{\"type\":\"registered\",\"name\":\"carol\",\"addr\":\"10.0.0.7:4000\"}\n"
    );
    assert_eq!(
        world.take_logs(),
        vec!["carol registered at 10.0.0.7:4000 and is available"]
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
    let (reply, closed) = world.raw_send(link, b"{\"type\":\"hello\",\"version\":99}\n");
    assert!(closed && reply.contains("\"version_mismatch\""), "{reply}");
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
        b"{\"type\":\"hello\",\"version\":1}\n{\"type\":\"list\"}\n",
    );
    assert!(!closed);
    assert!(
        reply.ends_with(
            "{\"type\":\"error\",\"code\":\"not_registered\",\"message\":\"register first\"}\n"
        ),
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
    let (reply, closed) = world.raw_send(link, b"{\"type\":\"hello\",\"version\":1}\n{\"type\":\"register\",\"name\":\"bob\",\"port\":4000}\n");
    assert!(closed);
    assert!(reply.contains("\"server_full\""), "{reply}");
}

#[test]
fn a_list_of_10000_peers_goes_out_in_chunks() {
    let t0 = Now::at_unix(0);
    let config = RegistryConfig {
        max_peers: 10_001,
        ..RegistryConfig::default()
    };
    let mut registry = Registry::new(config, t0);
    for i in 0..10_001u32 {
        let link = LinkId(u64::from(i));
        registry.handle_input(
            t0,
            RegistryInput::Opened {
                link,
                addr: client(i),
            },
        );
        let bytes = format!(
            "{{\"type\":\"hello\",\"version\":1}}\n{{\"type\":\"register\",\"name\":\"p{i:05}\",\"port\":4000}}\n"
        );
        registry.handle_input(
            t0,
            RegistryInput::Bytes {
                link,
                bytes: bytes.into_bytes(),
            },
        );
        while registry.poll_output().is_some() {}
    }
    assert_eq!(registry.registered(), 10_001);
    registry.handle_input(
        t0,
        RegistryInput::Bytes {
            link: LinkId(0),
            bytes: b"{\"type\":\"list\"}\n".to_vec(),
        },
    );
    let mut peers = Vec::new();
    let mut chunks = 0;
    let mut last_more = true;
    while let Some(out) = registry.poll_output() {
        let RegistryOutput::Send { bytes, .. } = out else {
            continue;
        };
        assert!(
            bytes.len() < natter_core::protocol::MAX_FRAME,
            "each chunk fits a frame"
        );
        for frame in world::server_frames(std::str::from_utf8(&bytes).unwrap()) {
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
    world.raw_send(link, b"{\"type\":\"hello\",\"version\":1}\n{\"type\":\"register\",\"name\":\"spam\",\"port\":4000}\n");
    // hello does not count; register and 18 lists use up the burst of 20.
    for _ in 0..18 {
        let (_, closed) = world.raw_send(link, b"{\"type\":\"list\"}\n");
        assert!(!closed);
    }
    let (reply, closed) = world.raw_send(link, b"{\"type\":\"list\"}\n{\"type\":\"list\"}\n");
    assert!(closed, "the spammer is disconnected");
    assert!(reply.ends_with("\"code\":\"rate_limited\",\"message\":\"more than 20 requests in a burst or 5 per second; slow down and reconnect\"}\n"), "{reply}");
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
    world.raw_send(link, b"{\"type\":\"hello\",\"version\":1}\n{\"type\":\"register\",\"name\":\"calm\",\"port\":4000}\n");
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
    world.raw_send(link, b"{\"type\":\"hello\",\"version\":1}\n{\"type\":\"register\",\"name\":\"deaf\",\"port\":4000}\n");
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
