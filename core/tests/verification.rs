//! Names belong to keys on every chat: the caller checks that the callee
//! proves the key the directory listed for the name it dialled; the
//! callee checks a caller it has not pinned against the key the directory
//! lists for the name it claims, before the call rings. A mismatch refuses
//! the chat on both sides (`identity_mismatch`); a caller nobody can
//! vouch for while the directory is out of reach is refused
//! (`cannot_verify`); a pinned contact needs no directory; `/trust NAME`
//! pins the key the directory lists now. Issue "Identity and end-to-end
//! encryption", item 4.
//!
//! A lying directory is played by the world (see `world/lying.rs`): a
//! relay holding the server's key that lists another key (or none) for a
//! name than the one its owner proved.

mod world;

use natter_core::event::{ErrorDetail, Event, ListedPeer, Request};
use natter_core::protocol::{ErrorCode, PeerStatus};
use natter_core::{Identity, PublicKey};
use std::time::Duration;
use world::{bob_with_a_new_key, bobs_new_identity, chatting, World};

/// A key nobody in the world holds: what a lying directory lists.
fn forged_key() -> PublicKey {
    Identity::from_seed(&[0x6d; 32]).public()
}

/// The detail of the first error with `code` among `events`.
fn error(events: &[Event], code: ErrorCode) -> Option<&ErrorDetail> {
    events.iter().find_map(|e| match e {
        Event::Error { code: c, detail } if *c == code => Some(detail),
        _ => None,
    })
}

fn started(events: &[Event]) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::ChatStarted { .. }))
}

fn rang(events: &[Event]) -> bool {
    events.iter().any(|e| matches!(e, Event::Incoming { .. }))
}

/// Whether `events` hold the other side's `error` frame with `code`, as
/// `peer` sent it.
fn told(events: &[Event], code: ErrorCode, from: &str) -> bool {
    matches!(error(events, code), Some(ErrorDetail::PeerSaid { peer, .. }) if peer == from)
}

/// alice and bob registered, everything seen so far taken; `before` runs
/// before they register (to make the directory lie about one of them).
fn registered(before: impl FnOnce(&mut World)) -> World {
    let mut world = World::new();
    before(&mut world);
    world.add_peer("alice");
    world.add_peer("bob");
    world.take_events("alice");
    world.take_events("bob");
    world
}

#[test]
fn a_directory_lying_about_the_callees_key_gets_the_call_refused_and_both_told() {
    let mut world = registered(|w| w.directory_lists("bob", Some(forged_key())));
    world.type_line("alice", "/connect bob");
    let alice = world.take_events("alice");
    assert_eq!(
        error(&alice, ErrorCode::IdentityMismatch),
        Some(&ErrorDetail::IdentityMismatch {
            peer: "bob".into(),
            expected: forged_key().fingerprint(),
            presented: world.key_of("bob").fingerprint(),
        }),
        "{alice:?}"
    );
    assert!(!started(&alice), "{alice:?}");
    let bob = world.take_events("bob");
    assert!(told(&bob, ErrorCode::IdentityMismatch, "alice"), "{bob:?}");
    assert!(!started(&bob), "{bob:?}");
    assert!(
        !world
            .pins
            .get("alice")
            .is_some_and(|p| p.contains_key("bob")),
        "no key pinned for bob"
    );
}

#[test]
fn a_caller_whose_key_is_not_the_one_listed_for_its_name_is_refused_before_it_rings() {
    let mut world = registered(|w| w.directory_lists("alice", Some(forged_key())));
    world.type_line("alice", "/connect bob");
    let bob = world.take_events("bob");
    assert_eq!(
        error(&bob, ErrorCode::IdentityMismatch),
        Some(&ErrorDetail::IdentityMismatch {
            peer: "alice".into(),
            expected: forged_key().fingerprint(),
            presented: world.key_of("alice").fingerprint(),
        }),
        "{bob:?}"
    );
    assert!(!rang(&bob), "{bob:?}");
    let alice = world.take_events("alice");
    assert!(
        told(&alice, ErrorCode::IdentityMismatch, "bob"),
        "{alice:?}"
    );
    assert!(!started(&alice), "{alice:?}");
}

#[test]
fn a_peer_listed_without_a_key_can_neither_be_called_nor_call() {
    let mut world = registered(|w| w.directory_lists("bob", None));
    world.type_line("alice", "/list");
    let Some(Event::Peers { peers }) = world.take_events("alice").pop() else {
        panic!("no list");
    };
    assert_eq!(
        peers,
        vec![ListedPeer {
            name: "bob".into(),
            addr: world.addr_of("bob"),
            status: PeerStatus::Available,
            reachable: true,
            fingerprint: None,
        }]
    );
    let presented = world.key_of("bob").fingerprint();
    let refused = ErrorDetail::ListedWithoutKey {
        peer: "bob".into(),
        presented,
    };

    world.type_line("alice", "/connect bob");
    let alice = world.take_events("alice");
    assert_eq!(
        error(&alice, ErrorCode::IdentityMismatch),
        Some(&refused),
        "{alice:?}"
    );
    let bob = world.take_events("bob");
    assert!(told(&bob, ErrorCode::IdentityMismatch, "alice"), "{bob:?}");

    world.type_line("bob", "/connect alice");
    let alice = world.take_events("alice");
    assert_eq!(
        error(&alice, ErrorCode::IdentityMismatch),
        Some(&refused),
        "{alice:?}"
    );
    assert!(!rang(&alice), "{alice:?}");
    let bob = world.take_events("bob");
    assert!(told(&bob, ErrorCode::IdentityMismatch, "alice"), "{bob:?}");
}

#[test]
fn an_unknown_caller_is_refused_cannot_verify_while_the_callees_server_is_down() {
    let mut world = registered(|_| {});
    world.crash_server();
    world.take_events("alice");
    world.take_events("bob");
    let bob_addr = world.addr_of("bob");
    world.type_line("alice", &format!("/connect {bob_addr}"));
    let bob = world.take_events("bob");
    assert_eq!(
        error(&bob, ErrorCode::CannotVerify),
        Some(&ErrorDetail::CannotVerify {
            peer: "alice".into(),
            presented: world.key_of("alice").fingerprint(),
        }),
        "{bob:?}"
    );
    assert!(!rang(&bob), "{bob:?}");
    let alice = world.take_events("alice");
    // Dialled by address: named by it, as bob's hello never came.
    let from = bob_addr.to_string();
    assert!(told(&alice, ErrorCode::CannotVerify, &from), "{alice:?}");
}

#[test]
fn a_directory_that_does_not_answer_gets_an_unknown_caller_refused_after_the_greeting_time() {
    let mut world = registered(|_| {});
    // bob's server link goes silent: bob still thinks it is connected,
    // and asks a directory that never answers.
    world.partition("bob", None);
    world.type_line("alice", "/connect bob");
    world.advance(Duration::from_millis(4_900));
    let bob = world.take_events("bob");
    assert!(bob.is_empty(), "nothing shows while bob waits: {bob:?}");
    world.advance(Duration::from_millis(100));
    let bob = world.take_events("bob");
    assert!(
        matches!(
            error(&bob, ErrorCode::CannotVerify),
            Some(ErrorDetail::CannotVerify { peer, .. }) if peer == "alice"
        ),
        "refused once the 5 s to greet are over: {bob:?}"
    );
    assert!(!rang(&bob), "{bob:?}");
    let alice = world.take_events("alice");
    assert!(told(&alice, ErrorCode::CannotVerify, "bob"), "{alice:?}");
}

#[test]
fn a_pinned_caller_is_taken_without_the_directory_and_the_chat_works() {
    let mut world = chatting();
    world.type_line("alice", "/leave");
    world.crash_server();
    world.take_events("alice");
    world.take_events("bob");
    let bob_addr = world.addr_of("bob");
    world.type_line("alice", &format!("/connect {bob_addr}"));
    let bob = world.take_events("bob");
    assert!(rang(&bob), "{bob:?}");
    world.type_line("bob", "/accept");
    let alice = world.take_events("alice");
    assert!(
        alice.contains(&Event::ChatStarted {
            peer: "bob".into(),
            fingerprint: world.key_of("bob").fingerprint(),
            new_contact: false,
        }),
        "{alice:?}"
    );
    world.type_line("alice", "still here");
    assert!(world.take_events("bob").contains(&Event::Message {
        peer: "alice".into(),
        n: 1,
        text: "still here".into(),
        at: world.now.rfc3339(),
    }));
    assert!(world.take_events("alice").contains(&Event::Delivered {
        peer: "bob".into(),
        n: 1,
    }));
}

#[test]
fn after_a_key_change_trust_pins_the_listed_key_and_the_next_call_goes_through() {
    let mut world = bob_with_a_new_key();
    world.type_line("alice", "/connect bob");
    let alice = world.take_events("alice");
    assert!(error(&alice, ErrorCode::KeyChanged).is_some(), "{alice:?}");
    world.take_events("bob");

    world.type_line("alice", "/trust bob");
    let new_key = bobs_new_identity().public();
    assert_eq!(
        world.take_events("alice"),
        vec![Event::Trusted {
            peer: "bob".into(),
            fingerprint: new_key.fingerprint(),
        }]
    );
    assert_eq!(
        world.pins["alice"].get("bob"),
        Some(&new_key),
        "kept for later runs"
    );

    world.type_line("alice", "/connect bob");
    assert!(rang(&world.take_events("bob")));
    world.type_line("bob", "/accept");
    let alice = world.take_events("alice");
    assert!(
        alice.contains(&Event::ChatStarted {
            peer: "bob".into(),
            fingerprint: new_key.fingerprint(),
            new_contact: false,
        }),
        "{alice:?}"
    );
}

#[test]
fn trust_says_why_when_there_is_nothing_to_trust() {
    let mut world = registered(|w| w.directory_lists("bob", None));
    world.type_line("alice", "/trust carol");
    assert_eq!(
        error(&world.take_events("alice"), ErrorCode::UnknownPeer),
        Some(&ErrorDetail::NoSuchPeer {
            name: "carol".into()
        })
    );
    world.type_line("alice", "/trust bob");
    assert_eq!(
        error(&world.take_events("alice"), ErrorCode::CannotVerify),
        Some(&ErrorDetail::NoKeyToTrust { peer: "bob".into() })
    );
    world.crash_server();
    world.take_events("alice");
    world.type_line("alice", "/trust bob");
    assert_eq!(
        error(&world.take_events("alice"), ErrorCode::ServerUnreachable),
        Some(&ErrorDetail::ServerNotConnected {
            request: Request::Trust
        })
    );
    assert!(!world.pins.contains_key("alice"), "nothing pinned");
}

#[test]
fn a_flood_of_unknown_callers_cannot_get_the_callees_server_link_closed() {
    let mut world = World::new();
    world.add_peer("bob");
    // More callers than the server's request budget (a burst of 20): each
    // one bob does not know costs it a lookup.
    let callers: Vec<String> = (0..25).map(|i| format!("caller{i}")).collect();
    for caller in &callers {
        world.add_peer(caller);
    }
    world.take_events("bob");
    for caller in &callers {
        world.type_line(caller, "/connect bob");
    }
    let bob = world.take_events("bob");
    assert!(
        !bob.iter().any(|e| matches!(e, Event::ServerLost)),
        "bob keeps its server link: {bob:?}"
    );
    assert!(world.peer("bob").is_registered());
    let refused = callers
        .iter()
        .filter(|caller| told(&world.take_events(caller), ErrorCode::CannotVerify, "bob"))
        .count();
    assert_eq!(refused, 15, "callers past bob's 10 lookups are refused");
}
