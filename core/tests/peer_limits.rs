//! The peer's own limits (issue 11, item 5): what one host may hold of a
//! peer's incoming calls, how long a stranger has to say hello, how many
//! notices of missed calls reach the screen, what a partner may make it
//! record, and what it takes from its server without asking.
//!
//! Each test names the attack it stands for; bins/tests/peer_attacks.rs
//! runs the same attacks against a real `natter peer` and measures it.

mod noise_wire;
mod world;

use natter_core::event::QuotaScope;
use natter_core::peer::missed::{MISSED_INTERVAL, MISSED_NAMES, MISSED_SHOWN};
use natter_core::peer::{PeerConfig, PeerInput, PeerOutput};
use natter_core::{
    ChatEndReason, EndCause, ErrorCode, ErrorDetail, Event, Identity, LinkId, Now, Peer,
};
use noise_wire::{feed, feed_input, sent_bytes, Wire};
use std::net::SocketAddr;
use std::time::Duration;
use world::{errors, World, LISTEN_PORT, SERVER};

// ---------------------------------------------------------------------------
// incoming calls by source
// ---------------------------------------------------------------------------

fn bob_with(tune: impl FnOnce(&mut PeerConfig)) -> Peer {
    let mut config = PeerConfig::new("bob", SERVER, LISTEN_PORT);
    tune(&mut config);
    let mut bob = Peer::new(config, Now::at_unix(0));
    while bob.poll_output().is_some() {}
    bob
}

/// A connection from `addr` reaches bob as `link`: whether bob closed it
/// at once, and which other links it closed to make room.
fn connect(bob: &mut Peer, now: Now, link: u64, addr: &str) -> (bool, Vec<LinkId>) {
    let link = LinkId(link);
    let addr: SocketAddr = addr.parse().unwrap();
    let outputs = feed_input(bob, now, PeerInput::Accepted { link, addr });
    let closed: Vec<LinkId> = outputs
        .iter()
        .filter_map(|o| match o {
            PeerOutput::Close { link } => Some(*link),
            _ => None,
        })
        .collect();
    let refused = closed.contains(&link);
    let others = closed.into_iter().filter(|l| *l != link).collect();
    (refused, others)
}

#[test]
fn a_host_holds_only_its_share_of_unanswered_calls() {
    // Before: 16 silent sockets from one host took every place, and every
    // other caller was closed at once.
    let mut bob = bob_with(|_| {});
    let now = Now::at_unix(0);
    for i in 0..4 {
        assert_eq!(
            connect(&mut bob, now, 100 + i, &format!("10.0.0.66:{}", 5000 + i)),
            (false, vec![])
        );
    }
    assert!(
        connect(&mut bob, now, 200, "10.0.0.66:6000").0,
        "a fifth silent connection from one host is closed"
    );
    assert_eq!(
        connect(&mut bob, now, 201, "10.0.0.67:6000"),
        (false, vec![]),
        "another host still calls"
    );
    // An IPv6 host is its /64: any address in it counts for it.
    for i in 0..4 {
        let addr = format!("[2001:db8:1:2::{:x}]:5000", i + 1);
        assert!(!connect(&mut bob, now, 300 + i, &addr).0);
    }
    assert!(connect(&mut bob, now, 310, "[2001:db8:1:2:ffff::9]:5000").0);
    assert!(!connect(&mut bob, now, 311, "[2001:db8:1:3::1]:5000").0);
}

#[test]
fn a_host_past_its_rate_of_new_connections_is_closed_though_it_hangs_up_each() {
    let mut bob = bob_with(|_| {});
    let now = Now::at_unix(0);
    // Eight connections, each hung up at once: the burst.
    for i in 0..8 {
        assert!(!connect(&mut bob, now, 100 + i, "10.0.0.66:5000").0);
        feed_input(
            &mut bob,
            now,
            PeerInput::Closed {
                link: LinkId(100 + i),
            },
        );
    }
    assert!(
        connect(&mut bob, now, 200, "10.0.0.66:5000").0,
        "the ninth at once is refused"
    );
    let later = now.advanced(Duration::from_secs(1));
    assert!(
        !connect(&mut bob, later, 201, "10.0.0.66:5000").0,
        "one more a second"
    );
}

#[test]
fn loopback_callers_are_exempt_from_the_shares_unless_limited() {
    let now = Now::at_unix(0);
    let mut bob = bob_with(|_| {});
    for i in 0..12 {
        assert!(!connect(&mut bob, now, 100 + i, "127.0.0.1:5000").0);
    }
    let mut bob = bob_with(|c| c.limit_loopback = true);
    for i in 0..4 {
        assert!(!connect(&mut bob, now, 100 + i, "127.0.0.1:5000").0);
    }
    assert!(connect(&mut bob, now, 200, "127.0.0.1:5000").0);
}

#[test]
fn at_the_cap_the_oldest_call_of_the_heaviest_host_is_cut_for_a_newcomer() {
    let mut bob = bob_with(|c| c.max_pending_incoming = 4);
    let now = Now::at_unix(0);
    for i in 0..3 {
        assert!(!connect(&mut bob, now, 100 + i, "10.0.0.66:5000").0);
    }
    assert!(!connect(&mut bob, now, 103, "10.0.0.67:5000").0);
    // All four places are taken: a new host gets the oldest place of the
    // host holding the most.
    assert_eq!(
        connect(&mut bob, now, 104, "10.0.0.68:5000"),
        (false, vec![LinkId(100)])
    );
    // That host, still the heaviest, cannot take a place from another.
    assert_eq!(
        connect(&mut bob, now, 105, "10.0.0.66:5000"),
        (true, vec![])
    );
    // Loopback, exempt from the shares, is still a host at the cap: it
    // takes the heaviest host's oldest place too.
    assert_eq!(
        connect(&mut bob, now, 106, "127.0.0.1:5000"),
        (false, vec![LinkId(101)])
    );
}

#[test]
fn at_the_cap_a_host_tied_for_the_most_places_is_the_one_turned_away() {
    // Before: a newcomer whose host held as many places as the heaviest
    // (but was not the one picked among equals) cut another host's call.
    let mut bob = bob_with(|c| c.max_pending_incoming = 4);
    let now = Now::at_unix(0);
    for (link, host) in [(100, "10.0.0.66"), (101, "10.0.0.66")] {
        assert!(!connect(&mut bob, now, link, &format!("{host}:5000")).0);
    }
    for (link, host) in [(102, "10.0.0.67"), (103, "10.0.0.67")] {
        assert!(!connect(&mut bob, now, link, &format!("{host}:5000")).0);
    }
    // Both hosts hold two: the one picked among equals is .66 (its oldest
    // call is older), yet a newcomer from .67 must not cut .66's call.
    assert_eq!(
        connect(&mut bob, now, 104, "10.0.0.67:5001"),
        (true, vec![])
    );
    assert_eq!(
        connect(&mut bob, now, 105, "10.0.0.66:5001"),
        (true, vec![])
    );
    // Every host holding one place: a newcomer from one of them is
    // turned away too, a new host is let in.
    let mut bob = bob_with(|c| c.max_pending_incoming = 2);
    assert!(!connect(&mut bob, now, 200, "10.0.0.70:5000").0);
    assert!(!connect(&mut bob, now, 201, "10.0.0.71:5000").0);
    assert_eq!(
        connect(&mut bob, now, 202, "10.0.0.71:5001"),
        (true, vec![])
    );
    assert_eq!(
        connect(&mut bob, now, 203, "10.0.0.72:5000"),
        (false, vec![LinkId(200)])
    );
}

#[test]
fn a_silent_caller_is_cut_after_the_short_pre_hello_deadline() {
    let mut bob = bob_with(|_| {});
    let now = Now::at_unix(0);
    assert!(!connect(&mut bob, now, 100, "10.0.0.66:5000").0);
    let almost = now.advanced(Duration::from_millis(4_999));
    bob.handle_timeout(almost);
    assert_eq!(bob.poll_output(), None);
    let due = now.advanced(Duration::from_secs(5));
    assert!(bob.poll_timeout().is_some_and(|at| at <= due.mono));
    bob.handle_timeout(due);
    let outputs: Vec<PeerOutput> = std::iter::from_fn(|| bob.poll_output()).collect();
    assert_eq!(
        outputs,
        vec![PeerOutput::Close { link: LinkId(100) }],
        "cut, and nothing shown"
    );
}

// ---------------------------------------------------------------------------
// missed calls, summed up
// ---------------------------------------------------------------------------

#[test]
fn a_flood_of_callers_shows_a_few_missed_notices_then_one_summary() {
    // Before: one `missed` line per caller, 4,729 for 5,000 hellos.
    let mut world = World::new();
    let mut alice = PeerConfig::new("alice", SERVER, LISTEN_PORT);
    alice.max_chats = 1;
    world.add_peer_with(alice);
    world.add_peer("bob");
    world.type_line("bob", "/connect alice");
    world.type_line("alice", "/accept");
    world.take_events("alice");
    let callers: Vec<String> = (0..20).map(|i| format!("caller{i:02}")).collect();
    for caller in &callers {
        world.add_peer(caller);
        world.type_line(caller, "/connect alice");
    }
    let shown = world.take_events("alice");
    assert_eq!(shown.len(), MISSED_SHOWN, "{shown:?}");
    world.advance(MISSED_INTERVAL);
    let summary = world.take_events("alice");
    let [Event::MissedCalls {
        count,
        peers,
        interval_ms,
        ..
    }] = summary.as_slice()
    else {
        panic!("one summary: {summary:?}");
    };
    assert_eq!(*count, callers.len() - MISSED_SHOWN);
    assert_eq!(peers.len(), MISSED_NAMES);
    assert!(peers.windows(2).all(|w| w[0] < w[1]), "sorted: {peers:?}");
    assert_eq!(*interval_ms, 10_000);
    // Quiet again: nothing more, and the next caller is shown at once.
    world.advance(MISSED_INTERVAL);
    assert_eq!(world.take_events("alice"), vec![]);
    world.add_peer("late");
    world.type_line("late", "/connect alice");
    assert_eq!(world.take_events("alice").len(), 1);
}

// ---------------------------------------------------------------------------
// --max-message on receive
// ---------------------------------------------------------------------------

/// bob, who pinned mallory before, with mallory's call accepted: the
/// test plays mallory.
fn bob_talking_to_mallory() -> (Peer, LinkId, Wire, Now) {
    let now = Now::at_unix(0);
    let mut config = PeerConfig::new("bob", SERVER, LISTEN_PORT);
    config
        .known_peers
        .insert("mallory".into(), Wire::identity().public());
    let mut bob = Peer::new(config, now);
    while bob.poll_output().is_some() {}
    let link = LinkId(100);
    let addr = "10.0.0.66:5000".parse().unwrap();
    feed_input(&mut bob, now, PeerInput::Accepted { link, addr });
    let (mut wire, _) = Wire::call(&mut bob, now, link);
    let hello = wire.seal("{\"type\":\"hello\",\"version\":2,\"name\":\"mallory\"}\n");
    let outputs = feed(&mut bob, now, link, &hello);
    wire.open(&outputs, link);
    let command = natter_core::command::parse("/accept").unwrap();
    let outputs = feed_input(&mut bob, now, PeerInput::Command(command));
    assert!(wire.open(&outputs, link).contains("accept"));
    (bob, link, wire, now)
}

#[test]
fn a_partner_sending_past_max_message_is_refused_and_nothing_of_it_is_kept() {
    let (mut bob, link, mut wire, now) = bob_talking_to_mallory();
    let ok = wire.seal("{\"type\":\"msg\",\"n\":1,\"text\":\"hi\",\"at\":\"x\"}\n");
    feed(&mut bob, now, link, &ok);
    let long = "x".repeat(65_000);
    let frame = format!("{{\"type\":\"msg\",\"n\":2,\"text\":\"{long}\",\"at\":\"x\"}}\n");
    let outputs = feed(&mut bob, now, link, &wire.seal(frame));
    let told = wire.open(&outputs, link);
    assert!(
        told.contains("\"code\":\"message_too_long\"") && told.contains("65000 characters"),
        "mallory is told why: {told}"
    );
    assert!(outputs.contains(&PeerOutput::Close { link }));
    let shown: Vec<&Event> = outputs
        .iter()
        .filter_map(|o| match o {
            PeerOutput::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(
        shown,
        [
            &Event::error(
                ErrorCode::MessageTooLong,
                ErrorDetail::PartnerMessageTooLong {
                    peer: "mallory".into(),
                    n: 2,
                    chars: 65_000,
                    max: 256
                }
            ),
            &Event::ChatEnded {
                peer: "mallory".into(),
                reason: ChatEndReason::PeerLost,
                cause: EndCause::BadFrame,
                undelivered: vec![],
            }
        ]
    );
    let recorded: Vec<&str> = outputs
        .iter()
        .filter_map(|o| match o {
            PeerOutput::Transcript(w) => Some(w.line.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        recorded.iter().all(|l| !l.contains("received #2")),
        "{recorded:?}"
    );
}

// ---------------------------------------------------------------------------
// transcript quotas
// ---------------------------------------------------------------------------

/// alice and bob chatting (alice called), each with its own settings.
fn chat(alice: impl FnOnce(&mut PeerConfig), bob: impl FnOnce(&mut PeerConfig)) -> World {
    let mut world = World::new();
    for (name, tune) in [
        ("alice", Box::new(alice) as Box<dyn FnOnce(&mut PeerConfig)>),
        ("bob", Box::new(bob)),
    ] {
        let mut config = PeerConfig::new(name, SERVER, LISTEN_PORT);
        tune(&mut config);
        world.add_peer_with(config);
    }
    world.type_line("alice", "/connect bob");
    world.type_line("bob", "/accept");
    world.take_events("alice");
    world.take_events("bob");
    world
}

/// Bytes in `name`'s transcripts (`_name_` in the file name).
fn transcript_bytes(world: &World, name: &str) -> u64 {
    world
        .transcripts
        .iter()
        .filter(|(file, _)| file.contains(&format!("_{name}_")))
        .flat_map(|(_, lines)| lines)
        .map(|l| l.len() as u64 + 1)
        .sum()
}

fn ended(events: &[Event]) -> Option<&Event> {
    events.iter().find(|e| matches!(e, Event::ChatEnded { .. }))
}

#[test]
fn a_partner_that_fills_the_transcript_ends_the_chat_at_the_quota_on_both_sides() {
    // Before: a partner filled the disk at 38 MB/s.
    let mut world = chat(|_| {}, |bob| bob.transcript_quota_chat = 8192);
    let text = "y".repeat(200);
    let mut sent = 0;
    while ended(&world.events["bob"]).is_none() {
        sent += 1;
        assert!(sent < 100, "the quota never ended the chat");
        world.type_line("alice", &text);
    }
    let bob = world.take_events("bob");
    assert_eq!(
        errors(&bob),
        [(
            ErrorCode::TranscriptQuota,
            ErrorDetail::QuotaReached {
                peer: "alice".into(),
                scope: QuotaScope::Chat,
                limit: 8192
            }
        )]
    );
    assert_eq!(
        ended(&bob),
        Some(&Event::ChatEnded {
            peer: "alice".into(),
            reason: ChatEndReason::Quota,
            cause: EndCause::Quota,
            undelivered: vec![],
        })
    );
    assert!(
        !bob.iter()
            .any(|e| matches!(e, Event::Message { n, .. } if *n == sent)),
        "the message past the quota is not shown"
    );
    // alice is told why, and her last message is not claimed delivered.
    let alice = world.take_events("alice");
    assert!(
        matches!(
            errors(&alice).as_slice(),
            [(ErrorCode::TranscriptQuota, ErrorDetail::PeerSaid { .. })]
        ),
        "{alice:?}"
    );
    assert_eq!(
        ended(&alice),
        Some(&Event::ChatEnded {
            peer: "bob".into(),
            reason: ChatEndReason::Quota,
            cause: EndCause::PeerQuota,
            undelivered: vec![sent],
        })
    );
    // What bob wrote: within the quota but for the lines that end it.
    let written = transcript_bytes(&world, "bob");
    assert!(written <= 8192 + 200, "bob wrote {written} bytes");
    let lines: Vec<&String> = world
        .transcripts
        .iter()
        .filter(|(f, _)| f.contains("_bob_"))
        .flat_map(|(_, l)| l)
        .collect();
    assert!(
        lines.last().unwrap().ends_with("chat ended: quota"),
        "{lines:?}"
    );
}

#[test]
fn a_message_you_type_past_your_quota_is_not_sent_and_ends_the_chat() {
    let mut world = chat(|alice| alice.transcript_quota_chat = 4096, |_| {});
    let text = "z".repeat(200);
    let mut typed = 0;
    while ended(&world.events["alice"]).is_none() {
        typed += 1;
        assert!(typed < 100, "the quota never ended the chat");
        world.type_line("alice", &text);
    }
    let alice = world.take_events("alice");
    assert!(
        !alice
            .iter()
            .any(|e| matches!(e, Event::Sent { n, .. } if *n == typed)),
        "the last line typed is not sent: {alice:?}"
    );
    assert!(matches!(
        errors(&alice).as_slice(),
        [(
            ErrorCode::TranscriptQuota,
            ErrorDetail::QuotaReached {
                scope: QuotaScope::Chat,
                ..
            }
        )]
    ));
    assert!(matches!(
        ended(&alice),
        Some(Event::ChatEnded { reason: ChatEndReason::Quota, cause: EndCause::Quota, undelivered, .. }) if undelivered.is_empty()
    ));
    let bob = world.take_events("bob");
    assert!(matches!(
        ended(&bob),
        Some(Event::ChatEnded {
            reason: ChatEndReason::Quota,
            cause: EndCause::PeerQuota,
            ..
        })
    ));
    assert!(!bob
        .iter()
        .any(|e| matches!(e, Event::Message { n, .. } if *n == typed)));
}

#[test]
fn the_daily_quota_counts_what_was_written_earlier_today() {
    // 500 bytes left today: the chat's first lines fit, a message does not.
    let mut world = chat(
        |alice| {
            alice.transcript_quota_day = 1 << 20;
            alice.transcript_used_today = (1 << 20) - 500;
        },
        |_| {},
    );
    world.type_line("alice", &"d".repeat(250));
    world.type_line("alice", &"e".repeat(250));
    let alice = world.take_events("alice");
    assert!(
        matches!(
            errors(&alice).as_slice(),
            [(ErrorCode::TranscriptQuota, ErrorDetail::QuotaReached { scope: QuotaScope::Day, limit, .. })] if *limit == 1 << 20
        ),
        "{alice:?}"
    );
}

// ---------------------------------------------------------------------------
// what a server sends unasked
// ---------------------------------------------------------------------------

/// alice registered at a server the test plays; returns the link and the
/// server's end of the session.
fn alice_at_a_hostile_server(tune: impl FnOnce(&mut PeerConfig)) -> (Peer, LinkId, Now, Wire) {
    let now = Now::at_unix(0);
    let mut config = PeerConfig::new("alice", SERVER, LISTEN_PORT);
    tune(&mut config);
    let mut alice = Peer::new(config, now);
    let link = std::iter::from_fn(|| alice.poll_output())
        .find_map(|o| match o {
            PeerOutput::Connect { link, .. } => Some(link),
            _ => None,
        })
        .expect("connects to the server");
    let sent = feed_input(&mut alice, now, PeerInput::Connected { link });
    let server = Wire::server(&Identity::from_seed(&[0x5e; 32]));
    let (mut wire, _, _) = server.respond(&mut alice, now, link, &sent);
    let outputs = feed(
        &mut alice,
        now,
        link,
        &wire.seal(b"{\"type\":\"hello\",\"version\":2}\n{\"type\":\"registered\",\"name\":\"alice\",\"addr\":\"10.0.0.2:4000\",\"reachable\":true}\n"),
    );
    wire.open(&outputs, link);
    (alice, link, now, wire)
}

fn shown(outputs: &[PeerOutput]) -> Vec<&Event> {
    outputs
        .iter()
        .filter_map(|o| match o {
            PeerOutput::Event(e) => Some(e),
            _ => None,
        })
        .collect()
}

fn chunk(id: Option<u64>, names: &[String], more: bool) -> Vec<u8> {
    let peers: Vec<String> = names
        .iter()
        .map(|n| format!("{{\"name\":\"{n}\",\"addr\":\"10.0.0.9:4000\",\"status\":\"available\",\"reachable\":true}}"))
        .collect();
    let id = id.map_or("null".to_string(), |id| id.to_string());
    format!(
        "{{\"type\":\"peers\",\"id\":{id},\"peers\":[{}],\"more\":{more}}}\n",
        peers.join(",")
    )
    .into_bytes()
}

#[test]
fn list_chunks_nobody_asked_for_are_dropped_and_a_list_keeps_only_valid_names_up_to_its_cap() {
    // Before: a server's unsolicited chunks took 707 MiB of a peer.
    let (mut alice, link, now, mut server) = alice_at_a_hostile_server(|c| c.max_list = 10);
    let names: Vec<String> = (0..50).map(|i| format!("p{i}")).collect();
    for id in [None, Some(1), Some(77)] {
        let outputs = feed(
            &mut alice,
            now,
            link,
            &server.seal(chunk(id, &names, false)),
        );
        assert_eq!(shown(&outputs), Vec::<&Event>::new(), "nobody asked");
    }
    let list = natter_core::command::parse("/list").unwrap();
    let outputs = feed_input(&mut alice, now, PeerInput::Command(list));
    let asked = server.open(&outputs, link);
    let id: u64 = asked
        .split("\"id\":")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .expect("the list request's id");
    let huge = vec!["h".repeat(60_000)];
    feed(
        &mut alice,
        now,
        link,
        &server.seal(chunk(Some(id), &huge, true)),
    );
    for _ in 0..3 {
        feed(
            &mut alice,
            now,
            link,
            &server.seal(chunk(Some(id), &names, true)),
        );
    }
    let outputs = feed(
        &mut alice,
        now,
        link,
        &server.seal(chunk(Some(id), &[], false)),
    );
    let events = shown(&outputs);
    let [Event::Peers { peers }] = events.as_slice() else {
        panic!("one list: {events:?}");
    };
    assert_eq!(peers.len(), 10, "the cap");
    assert!(peers.iter().all(|p| p.name.len() <= 32));
}

#[test]
fn presence_for_no_subscription_is_ignored_and_asks_for_no_list() {
    let (mut alice, link, now, mut server) = alice_at_a_hostile_server(|c| c.presence = false);
    let frames = "{\"type\":\"presence\",\"changes\":[{\"change\":\"offline\",\"name\":\"bob\"}]}\n{\"type\":\"presence_resync\"}\n".repeat(50);
    let outputs = feed(&mut alice, now, link, &server.seal(frames));
    assert_eq!(shown(&outputs), Vec::<&Event>::new());
    assert!(sent_bytes(&outputs, link).is_empty(), "no list asked for");
}

#[test]
fn a_subscriber_asks_for_one_list_however_often_the_server_says_resync() {
    let (mut alice, link, now, mut server) = alice_at_a_hostile_server(|c| c.presence = true);
    let outputs = feed(
        &mut alice,
        now,
        link,
        &server.seal("{\"type\":\"presence_resync\"}\n".repeat(100)),
    );
    let asked = server.open(&outputs, link);
    assert_eq!(asked.matches("\"list\"").count(), 1, "{asked}");
}

#[test]
fn an_error_answering_a_request_never_made_is_not_shown() {
    let (mut alice, link, now, mut server) = alice_at_a_hostile_server(|_| {});
    let frames = "{\"type\":\"error\",\"id\":77,\"code\":\"bad_input\",\"message\":\"spam\",\"close\":false}\n{\"type\":\"found\",\"id\":78,\"name\":\"x\",\"peer\":null}\n".repeat(100);
    let outputs = feed(&mut alice, now, link, &server.seal(frames));
    assert_eq!(shown(&outputs), Vec::<&Event>::new());
}

#[test]
fn a_flood_of_errors_answering_nothing_shows_only_a_few_per_interval() {
    // Before: every `error` without an `id` was one more line on the
    // user's screen, as many as a hostile server cared to send.
    use natter_core::peer::server_errors::{UNASKED_INTERVAL, UNASKED_SHOWN};
    let (mut alice, link, now, mut server) = alice_at_a_hostile_server(|_| {});
    let frames =
        "{\"type\":\"error\",\"code\":\"bad_input\",\"message\":\"spam\",\"close\":false}\n"
            .repeat(1000);
    let outputs = feed(&mut alice, now, link, &server.seal(frames.clone()));
    assert_eq!(shown(&outputs).len(), UNASKED_SHOWN);
    let later = now.advanced(UNASKED_INTERVAL);
    let outputs = feed(&mut alice, later, link, &server.seal(frames));
    assert_eq!(shown(&outputs).len(), UNASKED_SHOWN, "a few again later");
}

#[test]
fn one_host_rings_only_half_the_places_and_others_still_get_through() {
    // Before: one host registering four names filled all four places
    // with ringing calls, and everyone else got `busy` for the ring time,
    // round after round.
    let mut world = World::new();
    world.add_peer("alice");
    let host: std::net::IpAddr = "10.0.0.66".parse().unwrap();
    for i in 0..4 {
        // Four names of one host, each on its own port.
        let config = PeerConfig::new(format!("mal{i}"), SERVER, LISTEN_PORT + 1 + i);
        world.add_peer_at(config, host);
        world.type_line(&format!("mal{i}"), "/connect alice");
    }
    let rung: Vec<Event> = world.take_events("alice");
    let ringing = rung
        .iter()
        .filter(|e| matches!(e, Event::Incoming { .. }))
        .count();
    assert_eq!(ringing, 2, "half of --max-chats 4: {rung:?}");
    assert_eq!(
        (2..4)
            .filter(|i| world
                .take_events(&format!("mal{i}"))
                .contains(&Event::Busy {
                    peer: "alice".into()
                }))
            .count(),
        2,
        "the rest of that host's calls get busy"
    );
    world.add_peer("bob");
    world.type_line("bob", "/connect alice");
    let events = world.take_events("alice");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Incoming { peer, .. } if peer == "bob")),
        "another host still rings: {events:?}"
    );
}

#[test]
fn callers_that_ring_then_refuse_us_are_not_counted_as_unverified() {
    // Before: a call that rang and was then refused by its caller counted
    // in `missed_calls.refused`, whose sentence says their key could not
    // be verified; we had verified it.
    let now = Now::at_unix(0);
    let mut config = PeerConfig::new("bob", SERVER, LISTEN_PORT);
    config
        .known_peers
        .insert("mallory".into(), Wire::identity().public());
    let mut bob = Peer::new(config, now);
    while bob.poll_output().is_some() {}
    let mut events = Vec::new();
    for i in 0..(MISSED_SHOWN as u64 + 3) {
        let link = LinkId(100 + i);
        let addr = format!("10.0.1.{i}:5000").parse().unwrap();
        feed_input(&mut bob, now, PeerInput::Accepted { link, addr });
        let (mut wire, _) = Wire::call(&mut bob, now, link);
        let hello = wire.seal("{\"type\":\"hello\",\"version\":2,\"name\":\"mallory\"}\n");
        let outputs = feed(&mut bob, now, link, &hello);
        assert!(
            shown(&outputs)
                .iter()
                .any(|e| matches!(e, Event::Incoming { .. })),
            "rings: {outputs:?}"
        );
        let refusal = wire
            .seal("{\"type\":\"error\",\"code\":\"identity_mismatch\",\"message\":\"not you\"}\n");
        let outputs = feed(&mut bob, now, link, &refusal);
        events.extend(shown(&outputs).into_iter().cloned());
    }
    bob.handle_timeout(now.advanced(MISSED_INTERVAL));
    let outputs: Vec<PeerOutput> = std::iter::from_fn(|| bob.poll_output()).collect();
    events.extend(shown(&outputs).into_iter().cloned());
    let summary = events
        .iter()
        .find_map(|e| match e {
            Event::MissedCalls { count, refused, .. } => Some((*count, *refused)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("a summary: {events:?}"));
    assert_eq!(summary, (3, 0), "{events:?}");
}
