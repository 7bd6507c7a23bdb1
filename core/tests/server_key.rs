//! The server link is authenticated both ways: the peer pins the server's
//! key per address at first contact (known_servers) and refuses a server
//! proving another key before telling it anything; the server replaces a
//! session when the same key registers the name again, and the replaced
//! natter stops registering. Issue "Identity and end-to-end encryption",
//! items 2-4.

mod noise_wire;
mod world;

use natter_core::event::{ErrorDetail, Event};
use natter_core::identity::Identity;
use natter_core::peer::{PeerConfig, PeerInput, PeerOutput};
use natter_core::protocol::ErrorCode;
use natter_core::registry::RegistryConfig;
use natter_core::{Now, Peer};
use noise_wire::{feed, feed_input, sent_bytes, Wire};
use std::time::Duration;
use world::{errors, World, LISTEN_PORT, SERVER};

fn server_identity() -> Identity {
    RegistryConfig::default().identity
}

#[test]
fn the_first_registration_pins_the_servers_key_for_its_address() {
    let mut world = World::new();
    world.add_peer("alice");
    assert!(world.peer("alice").is_registered());
    assert_eq!(
        world.server_pins["alice"],
        vec![(SERVER, server_identity().public())]
    );
    let events = world.take_events("alice");
    assert!(
        matches!(
            &events[0],
            Event::Registered {
                new_server: true,
                ..
            }
        ),
        "the user is told: {events:?}"
    );
}

#[test]
fn a_server_proving_the_pinned_key_is_not_pinned_again() {
    let mut world = World::new();
    let mut config = PeerConfig::new("alice", SERVER, LISTEN_PORT);
    config
        .server_keys
        .insert(SERVER, server_identity().public());
    world.add_peer_with(config);
    assert!(world.peer("alice").is_registered());
    assert!(!world.server_pins.contains_key("alice"));
    let events = world.take_events("alice");
    assert!(
        matches!(&events[0], Event::Registered { new_server: false, server_fingerprint, .. }
            if *server_fingerprint == server_identity().public().fingerprint()),
        "{events:?}"
    );
}

/// Another machine answers at the server's address (or the operator gave
/// the server a new key): natter closes the link having sent nothing but
/// its first handshake message, not its name, not even its own key; the
/// user is told both fingerprints, and with nothing registered yet natter
/// exits.
#[test]
fn a_server_with_another_key_than_the_pinned_one_is_told_nothing() {
    let now = Now::at_unix(0);
    let pinned = Identity::from_seed(&[0x11; 32]).public();
    let mut config = PeerConfig::new("alice", SERVER, LISTEN_PORT);
    config.server_keys.insert(SERVER, pinned);
    let mut alice = Peer::new(config, now);
    let link = std::iter::from_fn(|| alice.poll_output())
        .find_map(|o| match o {
            PeerOutput::Connect { link, .. } => Some(link),
            _ => None,
        })
        .expect("connects to the server");
    let first = feed_input(&mut alice, now, PeerInput::Connected { link });
    let impostor = Identity::from_seed(&[0x66; 32]);
    let mut wire = Wire::server(&impostor);
    wire.take(&first, link);
    let outputs = feed(&mut alice, now, link, &wire.transmit());
    assert_eq!(sent_bytes(&outputs, link), b"", "no message 3, no frame");
    assert!(outputs.contains(&PeerOutput::Close { link }));
    let events: Vec<Event> = outputs
        .iter()
        .filter_map(|o| match o {
            PeerOutput::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        errors(&events),
        vec![(
            ErrorCode::ServerKeyChanged,
            ErrorDetail::ServerKeyChanged {
                server: SERVER,
                expected: pinned.fingerprint(),
                presented: impostor.public().fingerprint(),
            }
        )]
    );
    assert!(outputs.contains(&PeerOutput::Exit { code: 1 }));
    assert!(!outputs
        .iter()
        .any(|o| matches!(o, PeerOutput::PinServer { .. })));
}

/// The server comes back with another key while alice chats: she is told,
/// stops using that server (no reconnection attempts), and her chat goes on.
#[test]
fn a_server_key_change_after_registering_stops_the_server_link_and_keeps_the_chat() {
    let mut world = world::chatting();
    world.crash_server();
    world.restart_server_with(RegistryConfig {
        identity: Identity::from_seed(&[0x77; 32]),
        ..RegistryConfig::default()
    });
    world.advance(Duration::from_secs(10));
    let alice = world.take_events("alice");
    assert!(
        errors(&alice)
            .iter()
            .any(|(code, _)| *code == ErrorCode::ServerKeyChanged),
        "{alice:?}"
    );
    assert_eq!(world.registry().registered(), 0, "nobody registered");
    world.advance(Duration::from_secs(30));
    assert!(
        !world
            .take_events("alice")
            .iter()
            .any(|e| matches!(e, Event::Reregistered { .. } | Event::Error { .. })),
        "no retry"
    );
    world.type_line("alice", "still here");
    let bob = world.take_events("bob");
    assert!(
        bob.iter()
            .any(|e| matches!(e, Event::Message { text, .. } if text == "still here")),
        "{bob:?}"
    );
    assert!(!world.exits.contains_key("alice"));
}

/// alice's natter is started a second time with the same key (another
/// terminal, another machine): the new session takes the name at once;
/// the old one is told `replaced` and does not take it back.
#[test]
fn the_same_key_registering_again_replaces_the_old_session_which_stops() {
    let mut world = World::new();
    world.add_peer("alice");
    world.take_events("alice");
    // The test world tells peers apart by name: the second natter asks
    // for the same name in another case (names are one regardless of
    // case), with alice's key.
    let mut again = PeerConfig::new("Alice", SERVER, LISTEN_PORT);
    again.identity = PeerConfig::new("alice", SERVER, LISTEN_PORT).identity;
    world.add_peer_with(again);
    assert!(world.peer("Alice").is_registered(), "taken over at once");
    let old = world.take_events("alice");
    assert_eq!(
        errors(&old),
        vec![(
            ErrorCode::Replaced,
            ErrorDetail::Replaced {
                name: "alice".into()
            }
        )]
    );
    world.advance(Duration::from_secs(60));
    assert!(
        world.take_events("alice").is_empty(),
        "the old session does not come back"
    );
    world.type_line("alice", "/list");
    assert_eq!(
        errors(&world.take_events("alice")),
        vec![(
            ErrorCode::ServerUnreachable,
            ErrorDetail::ServerStopped {
                request: natter_core::event::Request::List
            }
        )],
        "not 'reconnecting': it never will"
    );
    let listed: Vec<String> = world
        .registry()
        .peers()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(listed, ["Alice"]);
    assert!(!world.exits.contains_key("alice"), "it keeps running");
}
