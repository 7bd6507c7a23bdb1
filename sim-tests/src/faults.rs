//! The fault sweep's faults (issue 11, item 7): each one a world where
//! something goes wrong — a crash, a partition, a bounce, a pause, a flood
//! into a dead link, a race — run over many seeds with random link latency
//! by sim-tests/tests/fault_sweep.rs, which then checks the invariants
//! every run must keep (src/invariants.rs).
//!
//! Each fault asserts what its users must see (who is told what, within
//! which bound of simulated time) and returns the peers whose events the
//! invariants are checked on. Bounds are in simulated time, with room for
//! the sweep's largest link latency ([`MAX_LATENCY`]).

use crate::scenarios::{crash_mid_burst_in, partition_in, peer_crash_in, server_bounce_in};
use crate::several_chats::three_chats_one_partner_crashes_in;
use crate::sweep::MAX_LATENCY;
use crate::{chat, is_error, registered, say, LIMIT};
use natter_core::{ChatEndReason, ErrorCode, Event};
use natter_net_sim::scenario::Scenario;
use std::time::Duration;

/// Nothing heard from a partner for this long ends the chat (`peer_lost`).
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(15);

/// One fault of the sweep.
pub struct Fault {
    pub name: &'static str,
    /// Runs the fault; returns the peers whose events the invariants
    /// are checked on (a crashed peer's events stop mid-chat).
    pub run: fn(&mut Scenario<'_>) -> Vec<&'static str>,
}

/// Every fault of the sweep.
pub const FAULTS: &[Fault] = &[
    Fault {
        name: "peer_crash",
        run: |s| {
            peer_crash_in(s, MAX_LATENCY);
            vec!["alice"]
        },
    },
    Fault {
        name: "partition",
        run: |s| {
            partition_in(s);
            vec!["alice", "bob"]
        },
    },
    Fault {
        name: "server_bounce",
        run: |s| {
            server_bounce_in(s);
            leave(s, "bob", "alice");
            vec!["alice", "bob"]
        },
    },
    Fault {
        name: "hold_and_release",
        run: hold_and_release,
    },
    Fault {
        name: "stalled_past_the_heartbeat",
        run: stalled_past_the_heartbeat,
    },
    Fault {
        name: "flood_during_a_partition",
        run: flood_during_a_partition,
    },
    Fault {
        name: "several_chats_one_partner_lost",
        run: |s| {
            three_chats_one_partner_crashes_in(s);
            vec!["alice", "bob", "dave"]
        },
    },
    Fault {
        name: "crash_mid_burst",
        run: |s| {
            let burst = crash_mid_burst_in(s, 5);
            for n in &burst.delivered {
                assert!(
                    burst.on_disk.contains_key(n),
                    "#{n} was acknowledged but bob's disk lost it"
                );
            }
            vec!["alice"]
        },
    },
    Fault {
        name: "caller_crashes_while_ringing",
        run: caller_crashes_while_ringing,
    },
    Fault {
        name: "server_crash_during_a_lookup",
        run: server_crash_during_a_lookup,
    },
    Fault {
        name: "leave_with_messages_in_flight",
        run: leave_with_messages_in_flight,
    },
];

fn chat_ended(e: &Event) -> bool {
    matches!(e, Event::ChatEnded { .. })
}

/// `who` leaves its chat with `partner`; returns once both have seen it end.
fn leave(s: &mut Scenario<'_>, who: &str, partner: &str) {
    s.type_line(who, "/leave");
    s.wait_for(who, LIMIT, chat_ended);
    s.wait_for(partner, LIMIT, chat_ended);
}

fn delivered(n: u64) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::Delivered { n: m, .. } if *m == n)
}

/// The link between two chatting peers holds every packet for 5 s (less
/// than the heartbeat timeout) while alice types three messages, then
/// lets them through: the chat survives, all three arrive, in order.
fn hold_and_release(s: &mut Scenario<'_>) -> Vec<&'static str> {
    s.start_peer("alice");
    s.start_peer("bob");
    registered(s, &["alice", "bob"]);
    chat(s, "alice", "bob");
    say(s, "alice", "before");
    s.sim.hold("alice", "bob");
    for text in ["one", "two", "three"] {
        s.type_line("alice", text);
    }
    s.run_for(Duration::from_secs(5));
    assert!(
        !s.events("alice").iter().any(|(_, e)| chat_ended(e)),
        "a 5 s hold ended the chat"
    );
    s.sim.release("alice", "bob");
    s.wait_for("alice", Duration::from_secs(2), delivered(4));
    let heard: Vec<String> = s
        .events("bob")
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Message { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(heard, ["before", "one", "two", "three"]);
    leave(s, "bob", "alice");
    vec!["alice", "bob"]
}

/// alice's network stalls (every packet to and from her held, none
/// lost) for longer than the heartbeat timeout while she types: both
/// sides of the chat end `peer_lost` within the timeout, the server drops
/// her, and once her packets flow again she registers again and can chat
/// anew. This stands for a peer paused past the heartbeat as well (a
/// suspended laptop): turmoil cannot pause a host's process, and to its
/// partner and the server both look the same, a silence.
fn stalled_past_the_heartbeat(s: &mut Scenario<'_>) -> Vec<&'static str> {
    s.start_peer("alice");
    s.start_peer("bob");
    registered(s, &["alice", "bob"]);
    chat(s, "alice", "bob");
    say(s, "alice", "going quiet");
    s.sim.hold("alice", "bob");
    s.sim.hold("alice", "server");
    let paused_at = s.elapsed();
    s.type_line("alice", "are you there?");
    let (bob_at, _) = s.wait_for("bob", LIMIT, chat_ended);
    let (alice_at, _) = s.wait_for("alice", LIMIT, chat_ended);
    let bound = HEARTBEAT_TIMEOUT + 4 * MAX_LATENCY;
    assert!(
        bob_at - paused_at <= bound,
        "bob told after {:?}",
        bob_at - paused_at
    );
    assert!(
        alice_at - paused_at <= bound,
        "alice told after {:?}",
        alice_at - paused_at
    );
    for peer in ["alice", "bob"] {
        let reason = crate::invariants::last_end(s.events(peer));
        assert_eq!(reason, Some(ChatEndReason::PeerLost), "{peer}");
    }
    s.run_for(Duration::from_secs(5));
    s.sim.release("alice", "bob");
    s.sim.release("alice", "server");
    s.wait_for("alice", LIMIT, |e| matches!(e, Event::Reregistered { .. }));
    chat(s, "bob", "alice");
    say(s, "bob", "welcome back");
    leave(s, "alice", "bob");
    vec!["alice", "bob"]
}

/// alice types a hundred messages into a chat whose partner is cut off
/// (packets dropped, no FIN): more than the partner's window, so most
/// wait; the chat ends `peer_lost` within the heartbeat timeout with
/// every message either delivered or listed undelivered, and after the
/// repair they chat again.
fn flood_during_a_partition(s: &mut Scenario<'_>) -> Vec<&'static str> {
    s.start_peer("alice");
    s.start_peer("bob");
    registered(s, &["alice", "bob"]);
    chat(s, "alice", "bob");
    s.sim.partition("alice", "bob");
    let cut_at = s.elapsed();
    for i in 0..100 {
        s.type_line("alice", &format!("flood {i}"));
    }
    let (at, ended) = s.wait_for("alice", LIMIT, chat_ended);
    assert!(at - cut_at <= HEARTBEAT_TIMEOUT + 4 * MAX_LATENCY);
    let Event::ChatEnded { undelivered, .. } = ended else {
        unreachable!()
    };
    assert!(!undelivered.is_empty(), "nothing crossed a cut link");
    s.wait_for("bob", LIMIT, chat_ended);
    s.sim.repair("alice", "bob");
    chat(s, "alice", "bob");
    say(s, "alice", "after the flood");
    leave(s, "bob", "alice");
    vec!["alice", "bob"]
}

/// alice's machine dies while her call rings at bob: bob's request goes
/// away by itself (`missed`), his status is free again, and carol's call
/// to him is answered.
fn caller_crashes_while_ringing(s: &mut Scenario<'_>) -> Vec<&'static str> {
    for peer in ["alice", "bob", "carol"] {
        s.start_peer(peer);
    }
    registered(s, &["alice", "bob", "carol"]);
    s.type_line("alice", "/connect bob");
    s.wait_for("bob", LIMIT, |e| matches!(e, Event::Incoming { .. }));
    s.sim.crash("alice");
    let crashed_at = s.elapsed();
    let (at, _) = s.wait_for(
        "bob",
        LIMIT,
        |e| matches!(e, Event::Missed { peer } if peer == "alice"),
    );
    assert!(
        at - crashed_at <= 4 * MAX_LATENCY,
        "bob told after {:?}",
        at - crashed_at
    );
    chat(s, "carol", "bob");
    say(s, "carol", "you were free");
    leave(s, "bob", "carol");
    vec!["bob", "carol"]
}

/// The server dies just as alice asks it where bob is: the call is not
/// left hanging (alice is told the lookup was lost with the server), and
/// once the server is back the same call goes through.
fn server_crash_during_a_lookup(s: &mut Scenario<'_>) -> Vec<&'static str> {
    s.start_peer("alice");
    s.start_peer("bob");
    registered(s, &["alice", "bob"]);
    s.type_line("alice", "/connect bob");
    s.sim.crash("server");
    let crashed_at = s.elapsed();
    let (at, _) = s.wait_for("alice", LIMIT, is_error(ErrorCode::ServerUnreachable));
    assert!(
        at - crashed_at <= 4 * MAX_LATENCY,
        "told after {:?}",
        at - crashed_at
    );
    s.run_for(Duration::from_secs(1));
    s.sim.bounce("server");
    s.wait_for("alice", LIMIT, |e| matches!(e, Event::Reregistered { .. }));
    s.wait_for("bob", LIMIT, |e| matches!(e, Event::Reregistered { .. }));
    assert!(
        !s.events("bob")
            .iter()
            .any(|(_, e)| matches!(e, Event::Incoming { .. })),
        "the lost lookup rang at bob"
    );
    chat(s, "alice", "bob");
    say(s, "alice", "found you");
    leave(s, "bob", "alice");
    vec!["alice", "bob"]
}

/// bob leaves while five of alice's messages are on the wire: each of
/// them ends once for alice, delivered or listed undelivered (the sweep's
/// invariant), and alice holds no receipt for a message bob did not get.
fn leave_with_messages_in_flight(s: &mut Scenario<'_>) -> Vec<&'static str> {
    s.start_peer("alice");
    s.start_peer("bob");
    registered(s, &["alice", "bob"]);
    chat(s, "alice", "bob");
    for i in 1..=5 {
        s.type_line("alice", &format!("in flight {i}"));
    }
    s.type_line("bob", "/leave");
    s.wait_for("alice", LIMIT, chat_ended);
    s.wait_for("bob", LIMIT, chat_ended);
    let delivered = s
        .events("alice")
        .iter()
        .filter(|(_, e)| matches!(e, Event::Delivered { .. }))
        .count();
    let heard = s
        .events("bob")
        .iter()
        .filter(|(_, e)| matches!(e, Event::Message { .. }))
        .count();
    assert!(
        delivered <= heard,
        "alice has {delivered} receipts for {heard} messages bob saw"
    );
    vec!["alice", "bob"]
}
