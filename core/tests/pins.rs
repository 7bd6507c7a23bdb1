//! Trust on first use: the key a partner's handshake proves is pinned for
//! its name at the first chat; a later chat with another key for that
//! name is refused (`key_changed`), both ways, with both fingerprints,
//! even when the directory lists the new key. Issue "Identity and
//! end-to-end encryption", item 4 (the `known_peers` half; the directory
//! half is in verification.rs).

mod world;

use natter_core::event::{ErrorDetail, Event};
use natter_core::protocol::ErrorCode;
use world::{bob_with_a_new_key, World};

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
    let mut world = bob_with_a_new_key();
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
    let mut world = bob_with_a_new_key();
    world.type_line("bob", "/connect alice");
    let alice = world.take_events("alice");
    assert!(key_changed(&alice), "{alice:?}");
    assert!(
        !alice.iter().any(|e| matches!(e, Event::Incoming { .. })),
        "{alice:?}"
    );
}
