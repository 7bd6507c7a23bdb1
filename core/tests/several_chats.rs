//! Several chats at once (SPEC "Several chats at once"), proven in the
//! in-memory world: room for `max_chats` chats, requests that wait side by
//! side, commands that pick a chat by name or by focus, and chats that do
//! not hold each other up.

mod world;

use natter_core::event::{ChatEntry, ChatState, Event};
use natter_core::peer::PeerConfig;
use natter_core::Command;
use std::time::Duration;
use world::{World, LISTEN_PORT, SERVER};

/// Each event as a short line, for comparing sequences at a glance.
fn seen(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            Event::Calling { peer } => format!("calling {peer}"),
            Event::Incoming { peer, .. } => format!("incoming {peer}"),
            Event::ChatStarted { peer, .. } => format!("chat_started {peer}"),
            Event::ChatEnded { peer, reason, .. } => format!("chat_ended {peer} {reason}"),
            Event::Sent { peer, n, text } => format!("sent {peer} #{n} {text}"),
            Event::Message { peer, n, text, .. } => format!("message {peer} #{n} {text}"),
            Event::Delivered { peer, n } => format!("delivered {peer} #{n}"),
            Event::Busy { peer } => format!("busy {peer}"),
            Event::Missed { peer } => format!("missed {peer}"),
            Event::Declined { peer } => format!("declined {peer}"),
            Event::Cancelled { peer } => format!("cancelled {peer}"),
            Event::Focused { peer } => format!("focused {peer}"),
            Event::Error { code, detail } => {
                let detail = serde_json::to_value(detail).expect("serializes");
                format!("error {code} {}", detail["detail"].as_str().unwrap_or(""))
            }
            other => format!("{other:?}"),
        })
        .collect()
}

/// A world with peers `names`; `alice` has room for `max_chats` chats.
fn world_with(names: &[&str], max_chats: usize) -> World {
    let mut world = World::new();
    for name in names {
        let mut config = PeerConfig::new(*name, SERVER, LISTEN_PORT);
        if *name == "alice" {
            config.max_chats = max_chats;
        }
        world.add_peer_with(config);
    }
    for name in names {
        world.take_events(name);
    }
    world.take_logs();
    world
}

/// `caller` calls `callee`, who accepts the request by name; everything
/// seen so far taken.
fn chat(world: &mut World, caller: &str, callee: &str) {
    world.type_line(caller, &format!("/connect {callee}"));
    world.type_line(callee, &format!("/accept {caller}"));
    world.take_events(caller);
    world.take_events(callee);
}

/// The lines of `me`'s transcript of its chat with `peer`, without their
/// timestamps.
fn transcript(world: &World, me: &str, peer: &str) -> Vec<String> {
    let files: Vec<&Vec<String>> = world
        .transcripts
        .iter()
        .filter(|(file, _)| file.ends_with(&format!("_{me}_{peer}.log")))
        .map(|(_, lines)| lines)
        .collect();
    let [lines] = files[..] else {
        panic!("{me} has {} transcripts with {peer}", files.len());
    };
    lines
        .iter()
        .map(|l| l.split_once(' ').expect("a timestamp").1.to_string())
        .collect()
}

#[test]
fn three_chats_at_once_keep_their_messages_and_transcripts_apart() {
    let mut world = world_with(&["alice", "bob", "carol", "dave"], 4);
    chat(&mut world, "alice", "bob");
    chat(&mut world, "carol", "alice");
    chat(&mut world, "alice", "dave");
    world.type_line("alice", "/msg bob hi bob");
    world.type_line("carol", "hi alice, carol here");
    world.type_line("alice", "/msg carol hi carol");
    world.type_line("bob", "bob here");
    world.type_line("alice", "hi dave");
    world.type_line("alice", "/msg bob again bob");
    world.type_line("dave", "dave here");
    assert_eq!(
        seen(&world.take_events("alice")),
        [
            "sent bob #1 hi bob",
            "delivered bob #1",
            "message carol #1 hi alice, carol here",
            "sent carol #1 hi carol",
            "delivered carol #1",
            "message bob #1 bob here",
            "sent dave #1 hi dave",
            "delivered dave #1",
            "sent bob #2 again bob",
            "delivered bob #2",
            "message dave #1 dave here",
        ],
        "each chat numbers its own messages from 1"
    );
    assert_eq!(
        seen(&world.take_events("bob")),
        [
            "message alice #1 hi bob",
            "sent alice #1 bob here",
            "delivered alice #1",
            "message alice #2 again bob",
        ]
    );
    let carol = seen(&world.take_events("carol"));
    assert_eq!(
        carol,
        [
            "sent alice #1 hi alice, carol here",
            "delivered alice #1",
            "message alice #1 hi carol",
        ]
    );
    let bob = transcript(&world, "alice", "bob");
    assert_eq!(
        bob[1..],
        [
            "sent #1: hi bob",
            "delivered #1",
            "received #1 (sent 2025-11-25T11:08:54.000Z): bob here",
            "sent #2: again bob",
            "delivered #2",
        ]
    );
    assert!(
        bob[0].starts_with("chat started: alice called bob"),
        "{bob:?}"
    );
    let carol = transcript(&world, "alice", "carol");
    assert!(carol[0].starts_with("chat started: alice was called by carol"));
    assert_eq!(
        carol[1..],
        [
            "received #1 (sent 2025-11-25T11:08:54.000Z): hi alice, carol here",
            "sent #1: hi carol",
            "delivered #1",
        ]
    );
    let dave = transcript(&world, "alice", "dave");
    assert_eq!(
        dave[1..],
        [
            "sent #1: hi dave",
            "delivered #1",
            "received #1 (sent 2025-11-25T11:08:54.000Z): dave here",
        ]
    );
}

#[test]
fn plain_lines_go_to_the_chat_most_recently_started_or_switched_to() {
    let mut world = world_with(&["alice", "bob", "carol", "dave"], 4);
    chat(&mut world, "alice", "bob");
    chat(&mut world, "alice", "carol");
    world.type_line("alice", "to carol");
    assert_eq!(world.peer("alice").focused().as_deref(), Some("carol"));
    world.type_line("alice", "/switch bob");
    world.type_line("alice", "to bob");
    assert_eq!(
        seen(&world.take_events("alice")),
        [
            "sent carol #1 to carol",
            "delivered carol #1",
            "focused bob",
            "sent bob #1 to bob",
            "delivered bob #1",
        ]
    );
    // A new chat takes the focus, whoever called.
    chat(&mut world, "dave", "alice");
    world.type_line("alice", "to dave");
    assert_eq!(
        seen(&world.take_events("alice")),
        ["sent dave #1 to dave", "delivered dave #1"]
    );
    // The focused chat ends: the most recently started other chat takes
    // the focus (dave's, not bob's that was switched to earlier).
    world.type_line("alice", "/switch carol");
    world.type_line("carol", "/leave");
    world.type_line("alice", "who now?");
    assert_eq!(
        seen(&world.take_events("alice")),
        [
            "focused carol",
            "chat_ended carol peer_left",
            "focused dave",
            "sent dave #2 who now?",
            "delivered dave #2",
        ]
    );
    // Leaving the focused chat moves the focus at once.
    world.type_line("alice", "/leave");
    world.type_line("alice", "last");
    assert_eq!(
        seen(&world.take_events("alice")),
        [
            "chat_ended dave left",
            "focused bob",
            "sent bob #2 last",
            "delivered bob #2",
        ]
    );
    world.type_line("alice", "/leave");
    world.type_line("alice", "anyone?");
    assert_eq!(
        seen(&world.take_events("alice")),
        ["chat_ended bob left", "error not_in_chat not_in_chat"],
        "no chat left: no focus"
    );
}

#[test]
fn msg_sends_to_a_chat_that_is_not_focused_and_names_a_missing_one() {
    let mut world = world_with(&["alice", "bob", "carol"], 4);
    chat(&mut world, "alice", "bob");
    chat(&mut world, "alice", "carol");
    world.type_line("alice", "/msg BOB  spaced   out");
    world.type_line("alice", "/msg dave hi");
    world.type_line("alice", "/switch dave");
    world.type_line("alice", "/leave dave");
    assert_eq!(
        seen(&world.take_events("alice")),
        [
            "sent bob #1 spaced   out",
            "delivered bob #1",
            "error not_in_chat not_chatting_with",
            "error not_in_chat not_chatting_with",
            "error not_in_chat not_chatting_with",
        ]
    );
    assert_eq!(
        world.peer("alice").focused().as_deref(),
        Some("carol"),
        "/msg leaves the focus where it was"
    );
    assert_eq!(seen(&world.take_events("carol")), Vec::<String>::new());
}

#[test]
fn a_caller_while_full_gets_busy_and_the_full_peer_sees_missed() {
    let mut world = world_with(&["alice", "bob", "carol", "dave"], 2);
    chat(&mut world, "alice", "bob");
    // A ringing call takes a place too: carol's request fills alice up.
    world.type_line("carol", "/connect alice");
    world.type_line("dave", "/connect alice");
    assert_eq!(
        seen(&world.take_events("dave")),
        ["calling alice", "busy alice"]
    );
    assert_eq!(
        seen(&world.take_events("alice")),
        ["incoming carol", "missed dave"]
    );
    world.type_line("alice", "/connect dave");
    assert_eq!(
        seen(&world.take_events("alice")),
        ["error chats_full chats_full"]
    );
    // One place frees up: the next caller rings.
    world.type_line("alice", "/reject carol");
    world.type_line("dave", "/connect alice");
    assert_eq!(
        seen(&world.take_events("alice")),
        ["declined carol", "incoming dave"]
    );
}

#[test]
fn two_requests_wait_and_accept_by_name_picks_that_one() {
    let mut world = world_with(&["alice", "bob", "carol"], 4);
    world.type_line("carol", "/connect alice");
    world.type_line("bob", "/connect alice");
    world.type_line("alice", "/accept bob");
    assert_eq!(
        seen(&world.take_events("alice")),
        ["incoming carol", "incoming bob", "chat_started bob"]
    );
    assert_eq!(
        seen(&world.take_events("carol")),
        ["calling alice"],
        "carol's request still rings"
    );
    // Without a name: the oldest request, carol's.
    world.type_line("alice", "/accept");
    world.type_line("alice", "/accept");
    assert_eq!(
        seen(&world.take_events("alice")),
        ["chat_started carol", "error no_request no_request"]
    );
    world.type_line("alice", "/reject bob");
    assert_eq!(
        seen(&world.take_events("alice")),
        ["error no_request no_request_from"]
    );
}

#[test]
fn waiting_requests_each_ring_for_their_own_ring_time() {
    let mut world = world_with(&["alice", "bob", "carol"], 4);
    world.type_line("carol", "/connect alice");
    world.advance(Duration::from_secs(10));
    world.type_line("bob", "/connect alice");
    world.take_events("alice");
    world.advance(Duration::from_secs(20));
    assert_eq!(seen(&world.take_events("alice")), ["missed carol"]);
    world.advance(Duration::from_secs(9));
    assert_eq!(seen(&world.take_events("alice")), Vec::<String>::new());
    world.type_line("alice", "/accept");
    assert_eq!(seen(&world.take_events("alice")), ["chat_started bob"]);
}

#[test]
fn connect_to_someone_already_chatted_with_or_called_is_refused() {
    let mut world = world_with(&["alice", "bob", "carol", "dave"], 4);
    chat(&mut world, "alice", "bob");
    world.type_line("alice", "/connect bob");
    world.type_line("alice", "/connect carol");
    world.type_line("alice", "/connect carol");
    world.type_line("dave", "/connect alice");
    world.type_line("alice", "/connect dave");
    assert_eq!(
        seen(&world.take_events("alice")),
        [
            "error already_in_chat already_in_chat",
            "calling carol",
            "error already_in_chat call_ringing",
            "incoming dave",
            "error request_pending request_waiting",
        ]
    );
}

#[test]
fn connect_by_address_to_someone_already_chatted_with_ends_before_it_rings() {
    let mut world = world_with(&["alice", "bob", "carol"], 4);
    chat(&mut world, "alice", "bob");
    world.take_events("bob");
    let bob = world.addr_of("bob");
    world.type_line("alice", &format!("/connect {bob}"));
    world.type_line("carol", "/connect alice");
    let carol = world.addr_of("carol");
    world.type_line("alice", &format!("/connect {carol}"));
    assert_eq!(
        seen(&world.take_events("alice")),
        [
            format!("calling {bob}"),
            "error already_in_chat already_in_chat".to_string(),
            "incoming carol".to_string(),
            format!("calling {carol}"),
            "error request_pending request_waiting".to_string(),
        ]
    );
    // Bob's screen shows nothing of the second call (no request, no
    // missed call), and the one chat goes on.
    assert_eq!(seen(&world.take_events("bob")), Vec::<String>::new());
    world.type_line("alice", "/msg bob still here");
    assert_eq!(
        seen(&world.take_events("bob")),
        ["message alice #1 still here"]
    );
}

#[test]
fn cancel_by_name_stops_only_that_call() {
    let mut world = world_with(&["alice", "bob", "carol"], 4);
    world.type_line("alice", "/connect bob");
    world.type_line("alice", "/connect carol");
    world.type_line("alice", "/cancel bob");
    world.type_line("alice", "/cancel bob");
    assert_eq!(
        seen(&world.take_events("alice")),
        [
            "calling bob",
            "calling carol",
            "cancelled bob",
            "error no_request no_call_to",
        ]
    );
    assert_eq!(
        seen(&world.take_events("bob")),
        ["incoming alice", "missed alice"]
    );
    world.type_line("carol", "/accept");
    assert_eq!(seen(&world.take_events("alice")), ["chat_started carol"]);
}

#[test]
fn chats_lists_every_chat_and_call_by_name() {
    let mut world = world_with(&["alice", "bob", "carol", "dave"], 4);
    chat(&mut world, "alice", "dave");
    world.type_line("alice", "/connect bob");
    world.type_line("carol", "/connect alice");
    world.take_events("alice");
    world.type_line("alice", "/chats");
    let entry = |peer: &str, state| ChatEntry {
        peer: peer.into(),
        state,
    };
    assert_eq!(
        world.take_events("alice"),
        [Event::Chats {
            chats: vec![
                entry("bob", ChatState::Calling),
                entry("carol", ChatState::Incoming),
                entry("dave", ChatState::Talking),
            ]
        }]
    );
}

#[test]
fn one_partner_crashing_leaves_the_other_chats_going() {
    let mut world = world_with(&["alice", "bob", "carol", "dave"], 4);
    chat(&mut world, "alice", "bob");
    chat(&mut world, "alice", "carol");
    chat(&mut world, "alice", "dave");
    world.crash_peer("carol");
    world.type_line("alice", "/msg bob still here?");
    world.type_line("alice", "/msg dave and you?");
    world.type_line("bob", "yes");
    assert_eq!(
        seen(&world.take_events("alice")),
        [
            "chat_ended carol peer_lost",
            "sent bob #1 still here?",
            "delivered bob #1",
            "sent dave #1 and you?",
            "delivered dave #1",
            "message bob #1 yes",
        ]
    );
    assert_eq!(world.peer("alice").focused().as_deref(), Some("dave"));
}

/// bob stops reading (his receipts never come): 64 of alice's messages
/// fill his window and 64 more wait, and the driver would hold the next
/// line for bob. carol's chat is not held up: lines for it are taken, go
/// out and are delivered.
#[test]
fn a_partner_who_stops_reading_holds_up_neither_typing_nor_delivery_to_another() {
    let mut world = world_with(&["alice", "bob", "carol"], 4);
    chat(&mut world, "alice", "carol");
    chat(&mut world, "alice", "bob");
    world.hold("bob");
    for n in 1..=128 {
        world.type_line("alice", &format!("m{n}"));
    }
    let to = |peer: &str| Command::Msg {
        to: peer.into(),
        text: "hi".into(),
    };
    let alice = world.peer("alice");
    assert_eq!(alice.waiting(), 64);
    assert!(!alice.accepts(&to("bob")), "bob's lines wait");
    assert!(!alice.accepts_lines(), "plain lines go to bob");
    assert!(alice.accepts(&to("carol")), "carol's are taken");
    world.take_events("alice");
    world.type_line("alice", "/switch carol");
    assert!(world.peer("alice").accepts_lines());
    world.type_line("alice", "carol, bob is stuck");
    assert_eq!(
        seen(&world.take_events("alice")),
        [
            "focused carol",
            "sent carol #1 carol, bob is stuck",
            "delivered carol #1",
        ]
    );
    assert_eq!(
        seen(&world.take_events("carol")),
        ["message alice #1 carol, bob is stuck"]
    );
}

#[test]
fn statuses_seen_by_the_server_follow_the_room_left() {
    let mut world = world_with(&["alice", "bob", "carol"], 2);
    chat(&mut world, "alice", "bob");
    world.type_line("carol", "/connect alice");
    world.type_line("alice", "/accept carol");
    world.type_line("carol", "/leave");
    world.type_line("alice", "/leave bob");
    let alice: Vec<String> = world
        .take_logs()
        .into_iter()
        .filter(|l| l.starts_with("alice "))
        .collect();
    assert_eq!(
        alice,
        [
            "alice is now chatting",
            "alice is now busy",
            "alice is now chatting",
            "alice is now available",
        ]
    );
}
