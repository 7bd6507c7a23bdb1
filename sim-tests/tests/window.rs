//! Issue 9, item 5: a partner that never acknowledged froze the client:
//! after 64 unacknowledged messages `/leave`, `/quit` and end of input
//! were ignored. Through the production driver: however many messages
//! wait for the window, a command typed after them is taken at once.

use natter_core::{ChatEndReason, Event};
use natter_net_sim::scenario::Scenario;
use sim_tests::{chat, registered, LIMIT};
use std::time::Duration;

/// Far beyond the window (64) and the messages the peer itself lets wait
/// (64), so only the driver's read-ahead keeps `/leave` reachable.
const TYPED: u64 = 300;

#[test]
fn leave_is_taken_behind_300_messages_a_silent_partner_never_acknowledged() {
    let mut s = Scenario::new(5);
    s.start_peer("alice");
    s.start_peer("bob");
    registered(&mut s, &["alice", "bob"]);
    chat(&mut s, "alice", "bob");
    // bob's receipts (and everything else) stop reaching alice.
    s.sim.partition("alice", "bob");
    for n in 1..=TYPED {
        s.type_line("alice", &format!("m{n}"));
        s.step();
    }
    let typed_at = s.elapsed();
    s.type_line("alice", "/leave");
    let (at, ended) = s.wait_for("alice", LIMIT, |e| matches!(e, Event::ChatEnded { .. }));
    let Event::ChatEnded {
        reason,
        undelivered,
        ..
    } = ended
    else {
        unreachable!()
    };
    assert_eq!(reason, ChatEndReason::Left);
    assert_eq!(
        undelivered,
        (1..=TYPED).collect::<Vec<u64>>(),
        "every message typed is accounted for"
    );
    // /leave waited its grace of 2 s for receipts, not for the window.
    assert!(
        at - typed_at <= Duration::from_secs(2) + Duration::from_millis(50),
        "the chat ended {:?} after /leave",
        at - typed_at
    );
    let full = s
        .events("alice")
        .iter()
        .filter(|(_, e)| matches!(e, Event::WindowFull { .. }))
        .count();
    assert_eq!(full, 1, "told once that messages wait for receipts");
}
