//! Peers, a registry and the links between them, all in memory: every
//! behaviour of SPEC.md that does not need a real socket.

mod noise_wire;
mod world;

use natter_core::registry::RegistryConfig;

use natter_core::event::{ChatEndReason, EndCause, ErrorDetail, Event, ListedPeer};
use natter_core::peer::PeerConfig;
use natter_core::protocol::{ErrorCode, PeerStatus};
use std::time::Duration;
use world::{chatting, chatting_with, ringing_with, World, LISTEN_PORT, SERVER};

fn error_code(event: &Event) -> Option<ErrorCode> {
    match event {
        Event::Error { code, .. } => Some(*code),
        _ => None,
    }
}

/// `reregistered` as `name` sees it, back with the server it had (whose
/// key it pinned at its first registration, not now).
fn reregistered(name: &str, world: &World) -> Event {
    Event::Reregistered {
        addr: world.addr_of(name),
        server: SERVER,
        reachable: true,
        server_fingerprint: RegistryConfig::default().identity.public().fingerprint(),
        new_server: false,
    }
}

/// The fingerprint of the key a test peer named `name` has.
fn key_of(name: &str) -> natter_core::Fingerprint {
    PeerConfig::new(name, SERVER, LISTEN_PORT)
        .identity
        .public()
        .fingerprint()
}

#[test]
fn registration_reports_the_address_the_server_sees() {
    let mut world = World::new();
    world.add_peer("alice");
    assert_eq!(
        world.take_events("alice"),
        vec![Event::Registered {
            name: "alice".into(),
            addr: world.addr_of("alice"),
            server: SERVER,
            reachable: true,
            fingerprint: PeerConfig::new("alice", SERVER, LISTEN_PORT)
                .identity
                .public()
                .fingerprint(),
            server_fingerprint: RegistryConfig::default().identity.public().fingerprint(),
            new_server: true,
        }]
    );
    assert!(world.peer("alice").is_registered());
}

#[test]
fn duplicate_name_is_refused_and_the_peer_exits_non_zero() {
    let mut world = World::new();
    world.add_peer("alice");
    // Someone else, with a key of their own, picks the same name.
    let mut second = PeerConfig::new("alice", SERVER, LISTEN_PORT);
    second.identity = natter_core::Identity::from_seed(&[9; 32]);
    world.add_peer_at(second, "10.0.0.9".parse().unwrap());
    let events = world.take_events("alice");
    assert_eq!(
        error_code(events.last().unwrap()),
        Some(ErrorCode::NameTaken)
    );
    assert_eq!(world.exits.get("alice"), Some(&1));
}

#[test]
fn duplicate_address_is_refused_with_its_own_code() {
    let mut world = World::new();
    world.add_peer("alice");
    let ip = world.addr_of("alice").ip();
    world.add_peer_at(PeerConfig::new("mallory", SERVER, LISTEN_PORT), ip);
    let events = world.take_events("mallory");
    assert_eq!(error_code(&events[0]), Some(ErrorCode::AddrTaken));
    assert_eq!(world.exits.get("mallory"), Some(&1));
}

#[test]
fn unreachable_server_is_a_clear_fatal_error() {
    let mut world = World::new();
    world.crash_server();
    world.add_peer("alice");
    let events = world.take_events("alice");
    assert_eq!(error_code(&events[0]), Some(ErrorCode::ServerUnreachable));
    assert_eq!(world.exits.get("alice"), Some(&1));
}

#[test]
fn list_shows_every_other_peer_with_its_status() {
    let mut world = chatting();
    world.add_peer("carol");
    world.take_events("carol");
    world.type_line("carol", "/list");
    assert_eq!(
        world.take_events("carol"),
        vec![Event::Peers {
            peers: vec![
                ListedPeer {
                    name: "alice".into(),
                    addr: world.addr_of("alice"),
                    status: PeerStatus::Chatting,
                    reachable: true,
                    fingerprint: Some(world.key_of("alice").fingerprint()),
                },
                ListedPeer {
                    name: "bob".into(),
                    addr: world.addr_of("bob"),
                    status: PeerStatus::Chatting,
                    reachable: true,
                    fingerprint: Some(world.key_of("bob").fingerprint()),
                },
            ]
        }]
    );
}

#[test]
fn connect_and_accept_start_a_chat_on_both_sides() {
    let mut world = World::new();
    world.add_peer("alice");
    world.add_peer("bob");
    world.take_events("alice");
    world.take_events("bob");
    world.take_logs();
    world.type_line("alice", "/connect bob");
    let bob_events = world.take_events("bob");
    assert!(
        matches!(&bob_events[..], [Event::Incoming { peer, .. }] if peer == "alice"),
        "{bob_events:?}"
    );
    world.type_line("bob", "/accept");
    assert_eq!(
        world.take_events("bob"),
        vec![Event::ChatStarted {
            peer: "alice".into(),
            fingerprint: key_of("alice"),
            new_contact: true,
        }]
    );
    assert_eq!(
        world.take_events("alice"),
        vec![
            Event::Calling { peer: "bob".into() },
            Event::ChatStarted {
                peer: "bob".into(),
                fingerprint: key_of("bob"),
                new_contact: true,
            }
        ]
    );
    assert_eq!(world.peer("alice").chat_partner(), Some("bob".to_string()));
    // Item 14: while a call rings, both sides are listed as they answer a
    // third caller: the call takes a place, there is room for more.
    assert_eq!(
        world.take_logs(),
        vec!["alice is now chatting", "bob is now chatting"]
    );
}

#[test]
fn messages_both_ways_are_numbered_per_direction_with_receipts() {
    let mut world = chatting();
    world.type_line("alice", "hi zuzu");
    world.type_line("alice", "how are you");
    world.type_line("bob", "i am fine");
    let alice = world.take_events("alice");
    let bob = world.take_events("bob");
    let at = world.now.rfc3339();
    assert_eq!(
        alice,
        vec![
            Event::Sent {
                peer: "bob".into(),
                n: 1,
                text: "hi zuzu".into()
            },
            Event::Delivered {
                peer: "bob".into(),
                n: 1
            },
            Event::Sent {
                peer: "bob".into(),
                n: 2,
                text: "how are you".into()
            },
            Event::Delivered {
                peer: "bob".into(),
                n: 2
            },
            Event::Message {
                peer: "bob".into(),
                n: 1,
                text: "i am fine".into(),
                at: at.clone()
            },
        ]
    );
    assert_eq!(
        bob,
        vec![
            Event::Message {
                peer: "alice".into(),
                n: 1,
                text: "hi zuzu".into(),
                at: at.clone()
            },
            Event::Message {
                peer: "alice".into(),
                n: 2,
                text: "how are you".into(),
                at: at.clone()
            },
            Event::Sent {
                peer: "alice".into(),
                n: 1,
                text: "i am fine".into()
            },
            Event::Delivered {
                peer: "alice".into(),
                n: 1
            },
        ]
    );
}

#[test]
fn the_receiver_records_a_message_before_the_receipt_goes_back() {
    let mut world = chatting();
    world.failing_disk = Some("bob".into());
    world.type_line("alice", "hi");
    let alice = world.take_events("alice");
    assert_eq!(
        alice,
        vec![Event::Sent {
            peer: "bob".into(),
            n: 1,
            text: "hi".into()
        }],
        "no receipt"
    );
    let bob = world.take_events("bob");
    assert_eq!(
        error_code(bob.last().unwrap()),
        Some(ErrorCode::TranscriptFailed)
    );
    world.type_line("alice", "/leave");
    world.advance(Duration::from_secs(2));
    let alice = world.take_events("alice");
    assert_eq!(
        alice.last(),
        Some(&Event::ChatEnded {
            peer: "bob".into(),
            reason: ChatEndReason::Left,
            cause: EndCause::Left,
            undelivered: vec![1]
        })
    );
}

#[test]
fn transcripts_hold_start_messages_receipts_and_end_on_both_sides() {
    let mut world = chatting();
    world.type_line("alice", "hi zuzu");
    world.advance(Duration::from_millis(1500));
    world.type_line("bob", "how are you");
    world.type_line("alice", "/leave");
    let files: Vec<_> = world.transcripts.keys().cloned().collect();
    assert_eq!(
        files,
        vec![
            "2025-11-25T11-08-54.000Z_alice_bob.log",
            "2025-11-25T11-08-54.000Z_bob_alice.log"
        ]
    );
    assert_eq!(
        world.transcripts[&files[0]],
        vec![
            &format!(
                "2025-11-25T11:08:54.000Z chat started: alice called bob at 10.0.0.3:4000 (key {})",
                key_of("bob").as_str()
            ),
            "2025-11-25T11:08:54.000Z sent #1: hi zuzu",
            "2025-11-25T11:08:54.000Z delivered #1",
            "2025-11-25T11:08:55.500Z received #1 (sent 2025-11-25T11:08:55.500Z): how are you",
            "2025-11-25T11:08:55.500Z chat ended: left",
        ]
    );
    assert_eq!(
        world.transcripts[&files[1]],
        vec![
            &format!(
                "2025-11-25T11:08:54.000Z chat started: bob was called by alice at 10.0.0.2:50002 (key {})",
                key_of("alice").as_str()
            ),
            "2025-11-25T11:08:54.000Z received #1 (sent 2025-11-25T11:08:54.000Z): hi zuzu",
            "2025-11-25T11:08:55.500Z sent #1: how are you",
            "2025-11-25T11:08:55.500Z delivered #1",
            "2025-11-25T11:08:55.500Z chat ended: peer_left",
        ]
    );
}

#[test]
fn reject_tells_the_caller_and_both_stay_available() {
    let mut world = World::new();
    world.add_peer("alice");
    world.add_peer("bob");
    world.take_events("alice");
    world.type_line("alice", "/connect bob");
    world.take_events("bob");
    world.type_line("bob", "/reject");
    assert_eq!(
        world.take_events("bob"),
        vec![Event::Declined {
            peer: "alice".into()
        }]
    );
    assert_eq!(
        world.take_events("alice"),
        vec![
            Event::Calling { peer: "bob".into() },
            Event::Rejected { peer: "bob".into() }
        ]
    );
    world.type_line("bob", "/accept");
    assert_eq!(
        error_code(&world.take_events("bob")[0]),
        Some(ErrorCode::NoRequest)
    );
}

#[test]
fn calling_a_chatting_peer_answers_busy_at_once() {
    // Room for one chat: alice's is taken.
    let mut world = chatting_with(|c| c.max_chats = 1);
    world.add_peer("carol");
    world.take_events("carol");
    let before = world.now;
    world.type_line("carol", "/connect alice");
    assert_eq!(world.now, before, "no time passed");
    assert_eq!(
        world.take_events("carol"),
        vec![
            Event::Calling {
                peer: "alice".into()
            },
            Event::Busy {
                peer: "alice".into()
            }
        ]
    );
    assert_eq!(
        world.take_events("alice"),
        vec![Event::Missed {
            peer: "carol".into()
        }]
    );
    assert_eq!(
        world.peer("alice").chat_partner(),
        Some("bob".to_string()),
        "the chat goes on"
    );
}

#[test]
fn calling_a_peer_with_a_request_pending_answers_busy_at_once() {
    // Room for one chat each: a ringing call takes it.
    let mut world = ringing_with(|c| c.max_chats = 1);
    world.add_peer("carol");
    world.take_events("carol");
    world.type_line("carol", "/connect bob");
    assert_eq!(
        world.take_events("carol"),
        vec![
            Event::Calling { peer: "bob".into() },
            Event::Busy { peer: "bob".into() }
        ]
    );
    world.type_line("carol", "/connect alice");
    assert_eq!(
        world.take_events("carol"),
        vec![
            Event::Calling {
                peer: "alice".into()
            },
            Event::Busy {
                peer: "alice".into()
            }
        ],
        "a caller is busy too"
    );
}

#[test]
fn an_unanswered_request_times_out_after_the_ring_time() {
    let mut world = World::new();
    world.add_peer("alice");
    world.add_peer("bob");
    world.take_events("alice");
    world.take_events("bob");
    world.type_line("alice", "/connect bob");
    world.take_events("bob");
    assert_eq!(
        world.take_events("alice"),
        vec![Event::Calling { peer: "bob".into() }]
    );
    world.advance(Duration::from_millis(29_999));
    assert_eq!(world.take_events("alice"), vec![]);
    world.advance(Duration::from_millis(1));
    assert_eq!(
        world.take_events("alice"),
        vec![Event::NoAnswer { peer: "bob".into() }]
    );
    assert_eq!(
        world.take_events("bob"),
        vec![Event::Missed {
            peer: "alice".into()
        }]
    );
}

#[test]
fn chat_mode_ends_by_itself_when_the_partner_leaves() {
    let mut world = chatting();
    world.type_line("bob", "exit()");
    assert_eq!(
        world.take_events("alice"),
        vec![Event::ChatEnded {
            peer: "bob".into(),
            reason: ChatEndReason::PeerLeft,
            cause: EndCause::Bye,
            undelivered: vec![]
        }]
    );
    assert_eq!(world.peer("alice").chat_partner(), None);
    world.type_line("alice", "hello?");
    assert_eq!(
        error_code(&world.take_events("alice")[0]),
        Some(ErrorCode::NotInChat)
    );
    assert_eq!(
        world.take_logs(),
        vec!["bob is now available", "alice is now available"]
    );
}

#[test]
fn a_crashed_partner_ends_the_chat_at_once_with_undelivered_reported() {
    let mut world = chatting();
    world.partition("alice", Some("bob"));
    world.type_line("alice", "are you there");
    world.crash_peer("bob");
    // The crash closes bob's side; alice's queued bytes were lost with it.
    let events = world.take_events("alice");
    assert_eq!(
        events.last(),
        Some(&Event::ChatEnded {
            peer: "bob".into(),
            reason: ChatEndReason::PeerLost,
            cause: EndCause::Closed,
            undelivered: vec![1]
        })
    );
}

#[test]
fn a_silent_partner_is_lost_after_the_heartbeat_timeout() {
    let mut world = chatting();
    world.partition("alice", Some("bob"));
    world.advance(Duration::from_millis(14_999));
    assert_eq!(world.take_events("alice"), vec![]);
    world.advance(Duration::from_millis(1));
    assert_eq!(
        world.take_events("alice"),
        vec![Event::ChatEnded {
            peer: "bob".into(),
            reason: ChatEndReason::PeerLost,
            cause: EndCause::Silent,
            undelivered: vec![]
        }]
    );
    assert_eq!(
        world.take_events("bob"),
        vec![Event::ChatEnded {
            peer: "alice".into(),
            reason: ChatEndReason::PeerLost,
            cause: EndCause::Silent,
            undelivered: vec![]
        }]
    );
}

#[test]
fn an_idle_chat_stays_up_thanks_to_pings() {
    let mut world = chatting();
    world.advance(Duration::from_secs(120));
    assert_eq!(world.take_events("alice"), vec![]);
    assert_eq!(world.peer("alice").chat_partner(), Some("bob".to_string()));
    assert!(world.peer("alice").is_registered());
}

#[test]
fn leave_waits_for_outstanding_receipts_then_reports_undelivered() {
    let mut world = chatting();
    world.partition("alice", Some("bob"));
    world.type_line("alice", "one");
    world.type_line("alice", "two");
    world.type_line("alice", "/leave");
    world.take_events("alice");
    world.advance(Duration::from_millis(1_999));
    assert_eq!(world.take_events("alice"), vec![]);
    world.advance(Duration::from_millis(1));
    assert_eq!(
        world.take_events("alice"),
        vec![Event::ChatEnded {
            peer: "bob".into(),
            reason: ChatEndReason::Left,
            cause: EndCause::Left,
            undelivered: vec![1, 2]
        }]
    );
}

#[test]
fn commands_out_of_their_state_get_errors_not_silence() {
    let mut world = chatting();
    world.type_line("alice", "/connect bob");
    world.type_line("bob", "/accept");
    world.type_line("bob", "/dance");
    world.type_line("bob", &"x".repeat(257));
    let alice = world.take_events("alice");
    let bob = world.take_events("bob");
    assert_eq!(error_code(&alice[0]), Some(ErrorCode::AlreadyInChat));
    let codes: Vec<_> = bob.iter().filter_map(error_code).collect();
    assert_eq!(
        codes,
        vec![
            ErrorCode::NoRequest,
            ErrorCode::UnknownCommand,
            ErrorCode::MessageTooLong
        ]
    );
    let mut lone = World::new();
    lone.add_peer("solo");
    lone.take_events("solo");
    lone.type_line("solo", "/leave");
    lone.type_line("solo", "hello");
    lone.type_line("solo", "/connect nobody");
    let codes: Vec<_> = lone
        .take_events("solo")
        .iter()
        .filter_map(error_code)
        .collect();
    assert_eq!(
        codes,
        vec![
            ErrorCode::NotInChat,
            ErrorCode::NotInChat,
            ErrorCode::UnknownPeer
        ]
    );
}

#[test]
fn a_stale_list_entry_gives_peer_unreachable_and_a_fresh_list() {
    let mut world = World::new();
    world.add_peer("alice");
    world.add_peer("bob");
    world.type_line("alice", "/list");
    world.crash_peer("bob");
    world.take_events("alice");
    let bob = world.addr_of("bob");
    world.type_line("alice", &format!("/connect {bob}"));
    let events = world.take_events("alice");
    assert_eq!(error_code(&events[0]), Some(ErrorCode::PeerUnreachable));
    assert!(
        matches!(&events[0], Event::Error { detail: ErrorDetail::ConnectFailed { addr, .. }, .. } if *addr == bob),
        "{events:?}"
    );
    assert_eq!(events[1], Event::Peers { peers: vec![] });
}

#[test]
fn server_lost_mid_chat_keeps_the_chat_and_reregisters() {
    let mut world = chatting();
    world.crash_server();
    assert_eq!(world.take_events("alice"), vec![Event::ServerLost]);
    world.type_line("alice", "still here");
    assert!(matches!(
        world.take_events("bob")[..],
        [Event::ServerLost, Event::Message { .. }]
    ));
    world.restart_server();
    world.advance(Duration::from_secs(1));
    assert_eq!(
        world.take_events("alice"),
        vec![
            Event::Sent {
                peer: "bob".into(),
                n: 1,
                text: "still here".into()
            },
            Event::Delivered {
                peer: "bob".into(),
                n: 1
            },
            reregistered("alice", &world)
        ]
    );
    assert_eq!(world.take_events("bob"), vec![reregistered("bob", &world)]);
    let peers = world.registry().peers();
    assert_eq!(peers.len(), 2);
    assert!(
        peers.iter().all(|p| p.status == PeerStatus::Chatting),
        "{peers:?}"
    );
}

#[test]
fn silent_server_is_lost_after_the_heartbeat_timeout_then_reconnected() {
    let mut world = World::new();
    world.add_peer("alice");
    world.take_events("alice");
    world.partition("alice", None);
    world.advance(Duration::from_secs(15));
    assert_eq!(world.take_events("alice"), vec![Event::ServerLost]);
    // The server dropped alice too; the retry (1 s later) reaches it.
    world.advance(Duration::from_secs(1));
    assert_eq!(
        world.take_events("alice"),
        vec![reregistered("alice", &world)]
    );
    assert_eq!(world.registry().registered(), 1);
}

#[test]
fn quit_leaves_the_chat_deregisters_and_exits_zero() {
    let mut world = chatting();
    world.end_input("alice");
    assert_eq!(world.exits.get("alice"), Some(&0));
    assert_eq!(
        world.take_events("bob"),
        vec![Event::ChatEnded {
            peer: "alice".into(),
            reason: ChatEndReason::PeerLeft,
            cause: EndCause::Bye,
            undelivered: vec![]
        }]
    );
    assert_eq!(
        world.take_logs(),
        vec![
            "alice is now available",
            "alice has disconnected (left)",
            "bob is now available"
        ]
    );
}

#[test]
fn escape_sequences_from_the_network_are_shown_escaped() {
    use natter_core::peer::{PeerInput, PeerOutput};
    use natter_core::{LinkId, Now, Peer};
    let now = Now::at_unix(0);
    // bob met mallory before: her call rings without asking a directory
    // (this bob has none).
    let mut config = PeerConfig::new("bob", SERVER, LISTEN_PORT);
    config
        .known_peers
        .insert("mallory".into(), noise_wire::Wire::identity().public());
    let mut bob = Peer::new(config, now);
    let link = LinkId(100);
    bob.handle_input(
        now,
        PeerInput::Accepted {
            link,
            addr: "10.0.0.66:5000".parse().unwrap(),
        },
    );
    // mallory calls as a real peer would: the Noise handshake, then frames
    // sealed in it.
    let (mut wire, _) = noise_wire::Wire::call(&mut bob, now, link);
    let hello = "{\"type\":\"hello\",\"version\":2,\"name\":\"mallory\"}\n";
    let outputs = noise_wire::feed(&mut bob, now, link, &wire.seal(hello));
    wire.open(&outputs, link);
    bob.handle_input(now, PeerInput::Command(natter_core::Command::Accept(None)));
    let hostile =
        "{\"type\":\"msg\",\"n\":1,\"text\":\"hi\\u001b[2J\\u202eevil\",\"at\":\"x\\u0007\"}\n";
    bob.handle_input(
        now,
        PeerInput::Bytes {
            link,
            bytes: wire.seal(hostile),
        },
    );
    let outputs: Vec<PeerOutput> = std::iter::from_fn(|| bob.poll_output()).collect();
    let shown = outputs.iter().find_map(|o| match o {
        PeerOutput::Event(Event::Message { text, at, .. }) => Some((text.clone(), at.clone())),
        _ => None,
    });
    assert_eq!(
        shown,
        Some((
            "hi\\u{1b}[2J\\u{202e}evil".to_string(),
            "x\\u{7}".to_string()
        ))
    );
    let recorded = outputs.iter().find_map(|o| match o {
        PeerOutput::Transcript(w) if w.receipt.is_some() => Some(w.line.clone()),
        _ => None,
    });
    assert!(recorded.unwrap().ends_with("): hi\\u{1b}[2J\\u{202e}evil"));
}

#[test]
fn a_typed_message_with_control_characters_is_refused() {
    let mut world = chatting();
    world.type_line("alice", "red\u{1b}[31m");
    assert_eq!(
        error_code(&world.take_events("alice")[0]),
        Some(ErrorCode::BadInput)
    );
    assert_eq!(world.take_events("bob"), vec![]);
}

/// Item 10 of the groundwork issue: `/connect NAME` dialled an address
/// cached from an old `/list` after that peer restarted elsewhere.
#[test]
fn connect_by_name_dials_where_the_peer_is_now_not_where_an_old_list_said() {
    let mut world = World::new();
    world.add_peer("alice");
    world.add_peer("bob");
    world.type_line("alice", "/list");
    world.crash_peer("bob");
    // bob comes back from another machine; mallory takes his old address.
    let old_ip = world.addr_of("bob").ip();
    world.add_peer_at(
        PeerConfig::new("bob", SERVER, LISTEN_PORT),
        "10.0.0.9".parse().unwrap(),
    );
    world.add_peer_at(PeerConfig::new("mallory", SERVER, LISTEN_PORT), old_ip);
    world.take_events("alice");
    world.take_events("mallory");
    world.type_line("alice", "/connect bob");
    assert_eq!(world.take_events("mallory"), vec![]);
    let bob = world.take_events("bob");
    assert!(
        matches!(bob.last(), Some(Event::Incoming { peer, .. }) if peer == "alice"),
        "{bob:?}"
    );
}

#[test]
fn a_message_limit_larger_than_a_frame_is_refused_at_start_up() {
    let mut world = World::new();
    let mut config = PeerConfig::new("alice", SERVER, LISTEN_PORT);
    config.max_message = 1_000_000;
    world.add_peer_with(config);
    let events = world.take_events("alice");
    assert_eq!(error_code(&events[0]), Some(ErrorCode::BadInput));
    assert_eq!(world.exits.get("alice"), Some(&1));
}
