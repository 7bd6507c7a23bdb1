//! A peer given several server addresses (SPEC "Several servers"; issue
//! 14, item 2): it registers with the first that answers, moves to
//! another at once when one is lost, waits (the usual backoff) only once
//! every address has failed in a row, and pins each server's key under
//! its own address. The two servers here are independent: each has its
//! own registry, as two `natter server`s without a shared store.

mod world;

use natter_core::event::{ErrorDetail, Event, Request, ServerFailure};
use natter_core::identity::Identity;
use natter_core::peer::PeerConfig;
use natter_core::protocol::{ErrorCode, PeerStatus};
use natter_core::registry::RegistryConfig;
use natter_core::Fingerprint;
use std::net::SocketAddr;
use std::time::Duration;
use world::{errors, World, LISTEN_PORT, SERVER, SERVER2};

/// The first server's key (the registry's default).
fn first_key() -> Identity {
    RegistryConfig::default().identity
}

/// The second server's own key.
fn second_key() -> Identity {
    Identity::from_seed(&[0x22; 32])
}

fn fingerprint(identity: &Identity) -> Fingerprint {
    identity.public().fingerprint()
}

/// A peer given both addresses, the first server's first.
fn both(name: &str) -> PeerConfig {
    let mut config = PeerConfig::new(name, SERVER, LISTEN_PORT);
    config.servers = vec![SERVER, SERVER2];
    config
}

/// A world with both servers up.
fn two_servers() -> World {
    let mut world = World::new();
    world.add_server(SERVER2, second_key());
    world
}

/// Where and when `name` dialled, in order, timed from the first dial
/// the world recorded.
fn dials_of(world: &World, name: &str) -> Vec<(Duration, SocketAddr)> {
    let start = world.dials.first().map(|(at, ..)| *at);
    world
        .dials
        .iter()
        .filter(|(_, who, _)| who == name)
        .map(|(at, _, addr)| (at.saturating_since(start.unwrap()), *addr))
        .collect()
}

fn reregistered_with(world: &World, name: &str, server: SocketAddr, new_server: bool) -> Event {
    let key = if server == SERVER {
        first_key()
    } else {
        second_key()
    };
    Event::Reregistered {
        addr: world.addr_of(name),
        server,
        reachable: true,
        server_fingerprint: fingerprint(&key),
        new_server,
    }
}

#[test]
fn the_first_server_down_at_start_registers_with_the_second_at_once() {
    let mut world = two_servers();
    world.crash_server();
    let start = world.now.mono;
    world.add_peer_with(both("alice"));
    assert_eq!(
        world.take_events("alice"),
        vec![Event::Registered {
            name: "alice".into(),
            addr: world.addr_of("alice"),
            server: SERVER2,
            reachable: true,
            fingerprint: fingerprint(&both("alice").identity),
            server_fingerprint: fingerprint(&second_key()),
            new_server: true,
        }]
    );
    // The refused first address cost no wait at all.
    assert_eq!(world.now.mono, start);
    assert_eq!(
        dials_of(&world, "alice"),
        [(Duration::ZERO, SERVER), (Duration::ZERO, SERVER2)]
    );
    assert_eq!(
        world.server_pins["alice"],
        [(SERVER2, second_key().public())]
    );
}

#[test]
fn a_lost_server_passes_both_chatting_peers_to_the_next_at_once_and_the_chat_goes_on() {
    let mut world = two_servers();
    world.add_peer_with(both("alice"));
    world.add_peer_with(both("bob"));
    world.type_line("alice", "/connect bob");
    world.type_line("bob", "/accept");
    world.take_events("alice");
    world.take_events("bob");
    world.dials.clear();

    world.crash_server();

    for name in ["alice", "bob"] {
        assert_eq!(
            world.take_events(name),
            vec![
                Event::ServerLost,
                reregistered_with(&world, name, SERVER2, true)
            ],
            "{name}"
        );
        // At the instant the first server was lost: no backoff.
        assert_eq!(dials_of(&world, name), [(Duration::ZERO, SERVER2)]);
    }
    let listed = world.others[&SERVER2].peers();
    assert_eq!(listed.len(), 2);
    assert!(
        listed.iter().all(|p| p.status == PeerStatus::Chatting),
        "the new server is told each one's status: {listed:?}"
    );
    world.type_line("alice", "still here");
    let bob = world.take_events("bob");
    assert!(
        matches!(&bob[..], [Event::Message { n: 1, text, .. }] if text == "still here"),
        "{bob:?}"
    );
    assert!(matches!(
        world.take_events("alice")[..],
        [Event::Sent { .. }, Event::Delivered { n: 1, .. }]
    ));
    // Each address keeps its own key.
    assert_eq!(
        world.server_pins["alice"],
        [
            (SERVER, first_key().public()),
            (SERVER2, second_key().public())
        ]
    );
}

#[test]
fn back_to_the_first_server_when_the_second_is_lost_its_key_already_pinned() {
    let mut world = two_servers();
    world.add_peer_with(both("alice"));
    world.crash_server();
    world.take_events("alice");
    world.restart_server();
    world.crash_server_at(SERVER2);
    assert_eq!(
        world.take_events("alice"),
        vec![
            Event::ServerLost,
            reregistered_with(&world, "alice", SERVER, false)
        ]
    );
    assert_eq!(world.server_pins["alice"].len(), 2, "nothing pinned again");
}

/// Every address down: one wait per round of all addresses (the backoff
/// of a single server: 0.5 s doubling up to 4 s, each ±50 %), not one
/// per address; the first server back is taken within the longest wait.
#[test]
fn every_server_down_retries_in_rounds_with_one_backoff_per_round() {
    let mut world = two_servers();
    world.add_peer_with(both("alice"));
    world.take_events("alice");
    world.dials.clear();
    world.crash_server_at(SERVER2);
    world.crash_server();
    assert_eq!(world.take_events("alice"), vec![Event::ServerLost]);

    world.advance(Duration::from_secs(12));
    let dials = dials_of(&world, "alice");
    // The lost server counts as tried: the other one at once, then rounds
    // of both, the first address first, at one instant each.
    assert_eq!(dials[0], (Duration::ZERO, SERVER2));
    let rounds: Vec<&[(Duration, SocketAddr)]> = dials[1..].chunks(2).collect();
    assert!(rounds.len() >= 4, "{dials:?}");
    let mut previous = Duration::ZERO;
    let mut base = Duration::from_millis(500);
    for round in &rounds {
        assert_eq!(round.len(), 2, "{dials:?}");
        assert_eq!(round[0].0, round[1].0, "one instant per round: {dials:?}");
        assert_eq!([round[0].1, round[1].1], [SERVER, SERVER2], "{dials:?}");
        let wait = round[0].0 - previous;
        let longest = (base * 3 / 2).min(Duration::from_secs(4));
        assert!(
            wait >= base / 2 && wait <= longest,
            "a wait of {wait:?} for a backoff of {base:?}: {dials:?}"
        );
        previous = round[0].0;
        base = (base * 2).min(Duration::from_secs(4));
    }
    assert!(world.take_events("alice").is_empty(), "no noise while down");

    world.add_server(SERVER2, second_key());
    world.advance(Duration::from_secs(4));
    assert_eq!(
        world.take_events("alice"),
        vec![reregistered_with(&world, "alice", SERVER2, true)]
    );
}

#[test]
fn every_server_down_at_start_ends_natter_with_each_reason() {
    let mut world = World::new();
    world.crash_server();
    world.add_peer_with(both("alice"));
    let refused = || "connection refused".to_string();
    assert_eq!(
        errors(&world.take_events("alice")),
        vec![(
            ErrorCode::ServerUnreachable,
            ErrorDetail::ServersDown {
                servers: vec![
                    ServerFailure {
                        server: SERVER,
                        reason: refused()
                    },
                    ServerFailure {
                        server: SERVER2,
                        reason: refused()
                    },
                ]
            }
        )]
    );
    assert_eq!(world.exits.get("alice"), Some(&1));
}

/// Another key answers at the first address: that address is told
/// nothing and not tried again in this run; the second registers the
/// peer, and natter goes on.
#[test]
fn a_server_with_another_key_at_one_address_is_passed_over_for_the_next() {
    let mut world = two_servers();
    let mut config = both("alice");
    let pinned = Identity::from_seed(&[0x11; 32]).public();
    config.server_keys.insert(SERVER, pinned);
    world.add_peer_with(config);
    let events = world.take_events("alice");
    assert_eq!(
        errors(&events),
        vec![(
            ErrorCode::ServerKeyChanged,
            ErrorDetail::ServerKeyChanged {
                server: SERVER,
                expected: pinned.fingerprint(),
                presented: fingerprint(&first_key()),
            }
        )]
    );
    assert!(
        matches!(
            events.last(),
            Some(Event::Registered {
                server: SERVER2,
                ..
            })
        ),
        "{events:?}"
    );
    assert!(!world.exits.contains_key("alice"));
    assert_eq!(world.registry().registered(), 0, "nothing registered there");

    world.dials.clear();
    world.crash_server_at(SERVER2);
    world.advance(Duration::from_secs(2));
    world.add_server(SERVER2, second_key());
    world.advance(Duration::from_secs(4));
    assert!(
        dials_of(&world, "alice")
            .iter()
            .all(|(_, addr)| *addr == SERVER2),
        "the first address is not tried again: {:?}",
        world.dials
    );
    let events = world.take_events("alice");
    assert!(
        matches!(
            events[..],
            [
                Event::ServerLost,
                Event::Reregistered {
                    server: SERVER2,
                    ..
                }
            ]
        ),
        "{events:?}"
    );
}

/// The first address refuses, the second proves another key than the
/// one pinned for it: no address is left to try, and natter ends as when
/// no server answers (having said why about each).
#[test]
fn one_address_down_and_the_other_with_another_key_at_start_ends_natter() {
    let mut world = two_servers();
    world.crash_server();
    let mut config = both("alice");
    config
        .server_keys
        .insert(SERVER2, Identity::from_seed(&[0x11; 32]).public());
    world.add_peer_with(config);
    let codes: Vec<ErrorCode> = errors(&world.take_events("alice"))
        .into_iter()
        .map(|(code, _)| code)
        .collect();
    assert_eq!(
        codes,
        [ErrorCode::ServerKeyChanged, ErrorCode::ServerUnreachable]
    );
    assert_eq!(world.exits.get("alice"), Some(&1));
    assert_eq!(dials_of(&world, "alice").len(), 2, "each address once");
}

/// The same key registered the name elsewhere: this natter stops using
/// every server (it does not move to the next, where the two would take
/// turns), and its requests say so.
#[test]
fn replaced_stops_every_server_not_only_the_one_that_said_it() {
    let mut world = two_servers();
    world.add_peer_with(both("alice"));
    world.take_events("alice");
    let mut again = PeerConfig::new("Alice", SERVER, LISTEN_PORT);
    again.identity = both("alice").identity;
    world.add_peer_with(again);
    let old = world.take_events("alice");
    assert_eq!(errors(&old)[0].0, ErrorCode::Replaced);
    world.dials.clear();
    world.advance(Duration::from_secs(30));
    assert!(world.dials.is_empty(), "{:?}", world.dials);
    world.type_line("alice", "/list");
    assert_eq!(
        errors(&world.take_events("alice")),
        vec![(
            ErrorCode::ServerUnreachable,
            ErrorDetail::ServerStopped {
                request: Request::List
            }
        )]
    );
}
