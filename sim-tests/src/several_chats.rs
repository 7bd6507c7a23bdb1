//! The scenarios of several chats at once (SPEC "Several chats at once"):
//! a peer in three chats whose partners come and go, and a caller that
//! finds it full. Each drives the production driver over turmoil, asserts
//! what the users must observe, and returns everything observable as text
//! for a snapshot.

use crate::invariants::every_message_to_accounted_for;
use crate::{busy_answered_at_once, chat, observed, registered, LIMIT};
use natter_core::{ChatEndReason, EndCause, ErrorCode, Event, PeerStatus};
use natter_net_sim::scenario::Scenario;

/// Every message `me` sent to `peer` ends exactly once, numbered from 1.
fn accounted_for(s: &Scenario<'_>, me: &str, peer: &str) {
    if let Err(e) = every_message_to_accounted_for(s.events(me), peer) {
        panic!("{me}'s chat with {peer}: {e}");
    }
}

/// `from` sends `text` (a plain line or a `/msg`) and the script waits
/// until `to` has it.
fn say_to(s: &mut Scenario<'_>, from: &str, line: &str, to: &str) {
    s.type_line(from, line);
    let text = line
        .strip_prefix(&format!("/msg {to} "))
        .unwrap_or(line)
        .to_string();
    s.wait_for(
        to,
        LIMIT,
        |e| matches!(e, Event::Message { peer, text: t, .. } if peer == from && *t == text),
    );
}

/// alice is in three chats at once (two she placed, one she took), the
/// messages of all three interleaved; carol crashes while a message to
/// her is on the wire. alice's chat with carol ends `peer_lost` with that
/// message undelivered; the chats with bob and dave go on both ways, each
/// numbered from 1 in its own transcript.
pub fn three_chats_one_partner_crashes(seed: u64) -> String {
    three_chats_one_partner_crashes_in(&mut Scenario::new(seed))
}

/// [`three_chats_one_partner_crashes`] in a given world.
pub fn three_chats_one_partner_crashes_in(s: &mut Scenario<'_>) -> String {
    for name in ["alice", "bob", "carol", "dave"] {
        s.start_peer(name);
    }
    registered(s, &["alice", "bob", "carol", "dave"]);
    chat(s, "alice", "bob");
    chat(s, "carol", "alice");
    chat(s, "alice", "dave");
    // Plain lines go to the chat started last: dave's.
    say_to(s, "alice", "hi dave", "dave");
    say_to(s, "alice", "/msg bob hi bob", "bob");
    say_to(s, "bob", "hi alice", "alice");
    say_to(s, "alice", "/msg carol hi carol", "carol");
    say_to(s, "carol", "carol here", "alice");
    say_to(s, "dave", "dave here", "alice");
    // carol dies while alice's next message to her is on the wire.
    s.type_line("alice", "/msg carol still there?");
    s.wait_for(
        "alice",
        LIMIT,
        |e| matches!(e, Event::Sent { peer, n: 2, .. } if peer == "carol"),
    );
    s.sim.crash("carol");
    let (_, ended) = s.wait_for("alice", LIMIT, |e| matches!(e, Event::ChatEnded { .. }));
    assert_eq!(
        ended,
        Event::ChatEnded {
            peer: "carol".into(),
            reason: ChatEndReason::PeerLost,
            cause: EndCause::Closed,
            undelivered: vec![2]
        }
    );
    // The others go on, both ways.
    say_to(s, "alice", "/msg bob carol is gone", "bob");
    say_to(s, "alice", "dave, carol is gone", "dave");
    say_to(s, "bob", "too bad", "alice");
    say_to(s, "dave", "indeed", "alice");
    s.type_line("alice", "/chats");
    let (_, chats) = s.wait_for("alice", LIMIT, |e| matches!(e, Event::Chats { .. }));
    let Event::Chats { chats } = chats else {
        unreachable!()
    };
    let names: Vec<&str> = chats.iter().map(|c| c.peer.as_str()).collect();
    assert_eq!(names, ["bob", "dave"]);
    s.end_input("alice");
    s.wait_for("bob", LIMIT, |e| matches!(e, Event::ChatEnded { .. }));
    s.wait_for("dave", LIMIT, |e| matches!(e, Event::ChatEnded { .. }));
    assert_eq!(s.wait_exit("alice", LIMIT), 0);
    for peer in ["bob", "carol", "dave"] {
        accounted_for(s, "alice", peer);
    }
    for peer in ["bob", "dave"] {
        accounted_for(s, peer, "alice");
    }
    observed(s, &["alice", "bob", "dave"])
}

/// alice has room for two chats: one with bob, and carol's call ringing.
/// The directory lists her `busy`; dave, calling anyway, gets `busy` at
/// once (one round trip, not the ring time), and alice sees the call she
/// missed; alice cannot call out either (`chats_full`). Once carol's call
/// is answered and that chat ends, dave's next call rings.
pub fn caller_while_full_gets_busy(seed: u64) -> String {
    let mut s = Scenario::new(seed);
    s.start_peer_with("alice", |c| c.max_chats = 2);
    for name in ["bob", "carol", "dave"] {
        s.start_peer(name);
    }
    registered(&mut s, &["alice", "bob", "carol", "dave"]);
    chat(&mut s, "bob", "alice");
    s.type_line("carol", "/connect alice");
    s.wait_for("alice", LIMIT, |e| matches!(e, Event::Incoming { .. }));
    s.type_line("dave", "/list");
    let (_, peers) = s.wait_for("dave", LIMIT, |e| matches!(e, Event::Peers { .. }));
    let Event::Peers { peers } = peers else {
        unreachable!()
    };
    let alice = peers.iter().find(|p| p.name == "alice").expect("listed");
    assert_eq!(alice.status, PeerStatus::Busy, "the directory says so");
    busy_answered_at_once(&mut s, "dave", "alice");
    s.wait_for(
        "alice",
        LIMIT,
        |e| matches!(e, Event::Missed { peer } if peer == "dave"),
    );
    s.type_line("alice", "/connect dave");
    s.wait_for("alice", LIMIT, |e| {
        matches!(
            e,
            Event::Error {
                code: ErrorCode::ChatsFull,
                ..
            }
        )
    });
    s.type_line("alice", "/accept carol");
    s.wait_for("carol", LIMIT, |e| matches!(e, Event::ChatStarted { .. }));
    say_to(&mut s, "alice", "hi carol", "carol");
    say_to(&mut s, "alice", "/msg bob still here", "bob");
    s.type_line("carol", "/leave");
    s.wait_for("alice", LIMIT, |e| matches!(e, Event::ChatEnded { .. }));
    chat(&mut s, "dave", "alice");
    say_to(&mut s, "dave", "third time lucky", "alice");
    s.end_input("alice");
    s.wait_for("dave", LIMIT, |e| matches!(e, Event::ChatEnded { .. }));
    assert_eq!(s.wait_exit("alice", LIMIT), 0);
    for peer in ["bob", "carol", "dave"] {
        accounted_for(&s, "alice", peer);
    }
    observed(&s, &["alice", "dave"])
}
