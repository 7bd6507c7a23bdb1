//! What a new user hit in wave 1 (issue "Groundwork for wave 2", section
//! 3), each proven in the in-memory world: every test here failed before
//! its fix. The item number of the issue is in each test's comment.

mod world;

use natter_core::event::{ChatEndReason, EndCause, ErrorDetail, Event};
use natter_core::peer::{ChatTimer, PeerConfig, Timer};
use natter_core::protocol::ErrorCode;
use natter_core::registry::RegistryConfig;
use std::time::Duration;
use world::{chatting, errors, ringing, World, LISTEN_PORT, SERVER};

/// Item 5: a partner that never acknowledges froze the client after 64
/// messages: `/leave`, `/quit` and end of input were ignored.
#[test]
fn commands_are_taken_while_messages_wait_for_the_window() {
    let mut world = chatting();
    world.partition("alice", Some("bob"));
    for n in 1..=70 {
        world.type_line("alice", &format!("m{n}"));
    }
    let events = world.take_events("alice");
    let full: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::WindowFull { .. }))
        .collect();
    assert_eq!(
        full,
        vec![&Event::WindowFull {
            peer: "bob".into(),
            in_flight: 64,
            waiting: 1
        }],
        "the user is told once, when the first message has to wait"
    );
    assert!(world.peer("alice").accepts_lines());
    assert_eq!(world.peer("alice").waiting(), 6);
    world.type_line("alice", "/leave");
    world.advance(Duration::from_secs(2));
    let events = world.take_events("alice");
    assert_eq!(
        events.last(),
        Some(&Event::ChatEnded {
            peer: "bob".into(),
            reason: ChatEndReason::Left,
            cause: EndCause::Left,
            undelivered: (1..=70).collect(),
        }),
        "the waiting messages are reported too: nothing is lost silently"
    );
}

/// Item 5: waiting messages go out, in order, as receipts come.
#[test]
fn waiting_messages_go_out_in_order_as_receipts_come() {
    let mut world = chatting();
    // Nothing reaches bob for a while: no receipt comes back.
    world.hold("bob");
    for n in 1..=66 {
        world.type_line("alice", &format!("m{n}"));
    }
    assert_eq!(world.peer("alice").waiting(), 2, "64 in flight, 2 wait");
    world.release("bob");
    assert_eq!(world.peer("alice").waiting(), 0);
    let received: Vec<u64> = world
        .take_events("bob")
        .iter()
        .filter_map(|e| match e {
            Event::Message { n, .. } => Some(*n),
            _ => None,
        })
        .collect();
    assert_eq!(received, (1..=66).collect::<Vec<u64>>());
    let delivered = world
        .take_events("alice")
        .iter()
        .filter(|e| matches!(e, Event::Delivered { .. }))
        .count();
    assert_eq!(delivered, 66);
}

/// Item 9: `/leave` did not cancel your own ringing call; the callee could
/// still accept it.
#[test]
fn leave_cancels_your_own_ringing_call_and_the_callee_can_no_longer_accept() {
    let mut world = ringing();
    world.type_line("alice", "/leave");
    assert_eq!(
        world.take_events("alice"),
        vec![Event::Cancelled { peer: "bob".into() }]
    );
    assert_eq!(
        world.take_events("bob"),
        vec![Event::Missed {
            peer: "alice".into()
        }]
    );
    world.type_line("bob", "/accept");
    assert_eq!(
        errors(&world.take_events("bob")),
        vec![(ErrorCode::NoRequest, ErrorDetail::NoRequest)]
    );
    assert_eq!(world.peer("bob").chat_partner(), None);
}

/// Item 9: `/cancel` and end of input cancel the call the same way.
#[test]
fn cancel_and_quit_cancel_your_own_ringing_call() {
    for how in ["/cancel", "end of input"] {
        let mut world = ringing();
        if how == "/cancel" {
            world.type_line("alice", "/cancel");
        } else {
            world.end_input("alice");
        }
        assert_eq!(
            world.take_events("alice"),
            vec![Event::Cancelled { peer: "bob".into() }],
            "{how}"
        );
        assert_eq!(
            world.take_events("bob"),
            vec![Event::Missed {
                peer: "alice".into()
            }],
            "{how}"
        );
    }
}

/// Item 11: `/connect` to your own address answered "missed a request
/// from bob … bob is busy".
#[test]
fn calling_yourself_says_it_is_you() {
    let mut world = World::new();
    world.add_peer("alice");
    world.take_events("alice");
    let own = world.addr_of("alice");
    for line in [
        format!("/connect {own}"),
        format!("/connect 127.0.0.1:{LISTEN_PORT}"),
        "/connect alice".to_string(),
        "/connect ALICE".to_string(),
    ] {
        world.type_line("alice", &line);
        assert_eq!(
            errors(&world.take_events("alice")),
            vec![(ErrorCode::BadInput, ErrorDetail::CallingYourself)],
            "{line}"
        );
    }
}

/// Item 12: a killed partner was reported as "left".
#[test]
fn a_killed_partner_is_lost_not_left() {
    let mut world = chatting();
    world.crash_peer("bob");
    assert_eq!(
        world.take_events("alice"),
        vec![Event::ChatEnded {
            peer: "bob".into(),
            reason: ChatEndReason::PeerLost,
            cause: EndCause::Closed,
            undelivered: vec![],
        }]
    );
}

/// Item 13: a callee held in "ringing" by a caller that only pings rang
/// forever, and everyone else got `busy`.
#[test]
fn a_request_rings_on_the_callees_screen_for_the_ring_time_only() {
    let mut world = World::new();
    let mut alice = PeerConfig::new("alice", SERVER, LISTEN_PORT);
    alice.ring_timeout = Duration::from_secs(600);
    world.add_peer_with(alice);
    world.add_peer("bob");
    world.add_peer("carol");
    world.type_line("alice", "/connect bob");
    world.take_events("bob");
    world.advance(Duration::from_millis(29_999));
    assert_eq!(world.take_events("bob"), vec![]);
    world.advance(Duration::from_millis(1));
    assert_eq!(
        world.take_events("bob"),
        vec![Event::Missed {
            peer: "alice".into()
        }]
    );
    world.take_events("carol");
    world.type_line("carol", "/connect bob");
    let carol = world.take_events("carol");
    assert!(
        !carol.iter().any(|e| matches!(e, Event::Busy { .. })),
        "bob is free again: {carol:?}"
    );
}

/// Item 14: a message typed while your call rings said "you are not in a
/// chat"; and the directory showed you `available` while callers got
/// `busy`. A ringing call takes one of the `max_chats` places: both show
/// `chatting` (still taking calls).
#[test]
fn a_message_typed_while_your_call_rings_says_the_call_still_rings() {
    let mut world = ringing();
    world.type_line("alice", "hello?");
    assert_eq!(
        errors(&world.take_events("alice")),
        vec![(
            ErrorCode::NotInChat,
            ErrorDetail::StillRinging { peer: "bob".into() }
        )]
    );
    world.add_peer("carol");
    world.type_line("carol", "/list");
    let carol = world.take_events("carol");
    let Some(Event::Peers { peers }) = carol.last() else {
        panic!("{carol:?}")
    };
    let statuses: Vec<String> = peers
        .iter()
        .map(|p| format!("{} {}", p.name, p.status))
        .collect();
    assert_eq!(statuses, vec!["alice chatting", "bob chatting"]);
}

/// Item 15: the peer took messages of 65,000 characters from a partner
/// whose limit it did not check. The sender checks the limit the
/// receiver's hello announced.
#[test]
fn a_message_longer_than_the_partner_takes_is_refused_before_it_is_sent() {
    let mut world = World::new();
    world.add_peer("alice");
    let mut bob = PeerConfig::new("bob", SERVER, LISTEN_PORT);
    bob.max_message = 10;
    world.add_peer_with(bob);
    world.type_line("alice", "/connect bob");
    world.type_line("bob", "/accept");
    world.take_events("alice");
    world.take_events("bob");
    world.type_line("alice", "twelve chars");
    assert_eq!(
        errors(&world.take_events("alice")),
        vec![(
            ErrorCode::MessageTooLong,
            ErrorDetail::MessageTooLongForPeer {
                peer: "bob".into(),
                chars: 12,
                max: 10
            }
        )]
    );
    assert_eq!(world.take_events("bob"), vec![]);
    world.type_line("alice", "ten chars!");
    assert!(matches!(
        world.take_events("bob").as_slice(),
        [Event::Message { n: 1, .. }]
    ));
}

/// Item 16: whitespace-only messages were sent; tabs were dropped.
#[test]
fn blank_messages_are_not_sent_and_tabs_are_kept_as_spaces() {
    let mut world = chatting();
    world.type_line("alice", "   ");
    world.type_line("alice", "\t");
    assert_eq!(world.take_events("alice"), vec![]);
    world.type_line("alice", "a\tb");
    let bob = world.take_events("bob");
    assert!(
        matches!(bob.as_slice(), [Event::Message { n: 1, text, .. }] if text == "a    b"),
        "{bob:?}"
    );
}

/// Item 17: a `/list` typed during a silent server outage was never
/// answered.
#[test]
fn a_list_pending_when_the_server_goes_silent_gets_an_error() {
    let mut world = World::new();
    world.add_peer("alice");
    world.take_events("alice");
    world.partition("alice", None);
    world.type_line("alice", "/list");
    assert_eq!(world.take_events("alice"), vec![]);
    world.advance(Duration::from_secs(15));
    let events = world.take_events("alice");
    assert_eq!(
        errors(&events),
        vec![(
            ErrorCode::ServerUnreachable,
            ErrorDetail::RequestLost {
                request: natter_core::Request::List
            }
        )],
        "{events:?}"
    );
}

/// Item 17: after a server restart peers came back only after 13–21 s.
#[test]
fn peers_are_back_within_a_few_seconds_of_a_server_restart() {
    let mut world = World::new();
    world.add_peer("alice");
    world.take_events("alice");
    world.crash_server();
    world.advance(Duration::from_secs(10));
    world.restart_server();
    world.take_events("alice");
    world.advance(Duration::from_secs(4));
    let events = world.take_events("alice");
    assert!(
        matches!(&events[..], [Event::Reregistered { server: SERVER, .. }]),
        "{events:?}"
    );
}

/// Item 18: `too_many_connections` made natter exit with "close some
/// first", which a user behind a NAT cannot act on.
#[test]
fn too_many_connections_is_retried_with_the_reason_not_fatal() {
    let mut world = World::with_registry(RegistryConfig {
        max_connections_per_ip: 1,
        ..RegistryConfig::default()
    });
    world.add_peer("alice");
    let ip = world.addr_of("alice").ip();
    world.add_peer_at(PeerConfig::new("bob", SERVER, 4001), ip);
    let bob = world.take_events("bob");
    assert!(
        matches!(
            errors(&bob).as_slice(),
            [(ErrorCode::TooManyConnections, ErrorDetail::Retrying { .. })]
        ),
        "{bob:?}"
    );
    assert_eq!(world.exits.get("bob"), None, "bob keeps trying");
    world.end_input("alice");
    world.advance(Duration::from_secs(8));
    let bob = world.take_events("bob");
    assert!(
        bob.iter().any(|e| matches!(e, Event::Registered { .. })),
        "{bob:?}"
    );
}

/// Named timers: the peer says what its next wake-up is for.
#[test]
fn the_next_timer_is_named() {
    let mut world = chatting();
    world.partition("alice", Some("bob"));
    world.type_line("alice", "one");
    world.type_line("alice", "/leave");
    let now = world.now.mono;
    let (at, timer) = world.peer("alice").next_timer().unwrap();
    assert!(
        matches!(timer, Timer::Chat(_, ChatTimer::Leave)),
        "{timer:?}"
    );
    assert_eq!(at, now + Duration::from_secs(2));
}

/// Item 8: started with standard input already at end, a peer sometimes
/// exited 0 printing nothing. It registers, reports, then quits.
#[test]
fn input_at_end_before_registering_still_registers_reports_and_quits() {
    let mut world = World::new();
    world.add_peer_unsettled("alice");
    world.end_input("alice");
    let events = world.take_events("alice");
    assert!(
        matches!(events.as_slice(), [Event::Registered { .. }]),
        "{events:?}"
    );
    assert_eq!(world.exits.get("alice"), Some(&0));
    assert_eq!(
        world.take_logs(),
        vec![
            "alice registered at 10.0.0.2:4000 and is available",
            "alice has disconnected (left)"
        ]
    );
}

/// Item 20: a peer behind NAT was listed at an address nobody could
/// reach, and callers got "no longer reachable". The directory says
/// whether it could connect back; calling such a peer says so and points
/// to the other direction.
#[test]
fn a_peer_the_server_cannot_reach_is_listed_so_and_not_dialled() {
    let mut world = World::new();
    world.add_peer("alice");
    // carol listens on a port nobody can reach (the world's probe finds
    // no listener there, as behind a NAT).
    world.add_peer_with(PeerConfig::new("carol", SERVER, 4001));
    let carol = world.take_events("carol");
    assert!(
        matches!(
            carol.as_slice(),
            [Event::Registered {
                reachable: false,
                ..
            }]
        ),
        "{carol:?}"
    );
    world.type_line("alice", "/list");
    let alice = world.take_events("alice");
    let Some(Event::Peers { peers }) = alice.last() else {
        panic!("{alice:?}")
    };
    assert!(!peers[0].reachable, "{peers:?}");
    world.type_line("alice", "/connect carol");
    assert_eq!(
        errors(&world.take_events("alice")),
        vec![(
            ErrorCode::PeerUnreachable,
            ErrorDetail::NotCallable {
                peer: "carol".into()
            }
        )]
    );
    assert_eq!(world.take_events("carol"), vec![]);
    // The other direction works.
    world.type_line("carol", "/connect alice");
    assert!(world
        .take_events("alice")
        .iter()
        .any(|e| matches!(e, Event::Incoming { peer, .. } if peer == "carol")));
}

/// Item 8, the other outcome: input at end, then the server cannot be
/// reached. The user learns why and the exit code says it failed.
#[test]
fn input_at_end_and_no_server_is_still_a_clear_failure() {
    let mut world = World::new();
    world.crash_server();
    world.add_peer_unsettled("alice");
    world.end_input("alice");
    let events = world.take_events("alice");
    assert!(
        matches!(
            errors(&events).as_slice(),
            [(ErrorCode::ServerUnreachable, ErrorDetail::ServerDown { .. })]
        ),
        "{events:?}"
    );
    assert_eq!(world.exits.get("alice"), Some(&1));
}
