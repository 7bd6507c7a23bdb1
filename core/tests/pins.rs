//! Trust on first use: the key a partner's handshake proves is pinned for
//! its name at the first chat; a later chat with another key for that
//! name is refused (`key_changed`), both ways, with both fingerprints.
//! Issue "Identity and end-to-end encryption", item 4 (the `known_peers`
//! half; checks against the directory come with keys in the directory).

mod world;

use natter_core::event::{ErrorDetail, Event};
use natter_core::peer::PeerConfig;
use natter_core::protocol::ErrorCode;
use natter_core::registry::RegistryConfig;
use natter_core::Identity;
use std::time::Duration;
use world::{World, LISTEN_PORT, SERVER};

fn started(events: &[Event]) -> Option<bool> {
    events.iter().find_map(|e| match e {
        Event::ChatStarted { new_contact, .. } => Some(*new_contact),
        _ => None,
    })
}

fn key_changed(events: &[Event]) -> bool {
    events.iter().any(|e| {
        matches!(
            e,
            Event::Error {
                code: ErrorCode::KeyChanged,
                detail: ErrorDetail::KeyChanged { .. },
            }
        )
    })
}

/// How long the server keeps a name bound to its key here: a minute, so
/// a name can change hands within a test.
const NAME_TTL: Duration = Duration::from_secs(60);

/// alice and bob chatted once, then left; bob's name now comes back with
/// another key (someone else, or bob reinstalled), which the directory
/// lists: the old binding expired.
fn met_then_impostor() -> World {
    let mut world = World::with_registry(RegistryConfig {
        name_ttl: NAME_TTL,
        ..RegistryConfig::default()
    });
    world.add_peer("alice");
    world.add_peer("bob");
    world.type_line("alice", "/connect bob");
    world.type_line("bob", "/accept");
    world.type_line("alice", "/leave");
    world.take_events("alice");
    world.take_events("bob");
    world.crash_peer("bob");
    world.advance(NAME_TTL * 2);
    let mut impostor = PeerConfig::new("bob", SERVER, LISTEN_PORT);
    impostor.identity = Identity::from_seed(&[66; 32]);
    world.add_peer_at(impostor, "10.0.0.66".parse().unwrap());
    world.take_events("bob");
    world
}

#[test]
fn the_first_chat_pins_the_key_and_the_second_finds_it_pinned() {
    let mut world = World::new();
    world.add_peer("alice");
    world.add_peer("bob");
    world.type_line("alice", "/connect bob");
    world.type_line("bob", "/accept");
    assert_eq!(started(&world.take_events("alice")), Some(true));
    assert_eq!(started(&world.take_events("bob")), Some(true));
    world.type_line("alice", "/leave");
    world.type_line("alice", "/connect bob");
    world.type_line("bob", "/accept");
    assert_eq!(started(&world.take_events("alice")), Some(false));
    assert_eq!(started(&world.take_events("bob")), Some(false));
}

#[test]
fn calling_a_name_that_presents_another_key_is_refused() {
    let mut world = met_then_impostor();
    world.type_line("alice", "/connect bob");
    let alice = world.take_events("alice");
    assert!(key_changed(&alice), "{alice:?}");
    assert_eq!(started(&alice), None);
    let bob = world.take_events("bob");
    assert!(
        !bob.iter().any(|e| matches!(e, Event::ChatStarted { .. })),
        "{bob:?}"
    );
}

#[test]
fn a_call_from_a_name_with_another_key_is_refused_before_it_rings() {
    let mut world = met_then_impostor();
    world.type_line("bob", "/connect alice");
    let alice = world.take_events("alice");
    assert!(key_changed(&alice), "{alice:?}");
    assert!(
        !alice.iter().any(|e| matches!(e, Event::Incoming { .. })),
        "{alice:?}"
    );
}
