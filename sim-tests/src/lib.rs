//! The scenarios that prove the old program's bugs are gone, each a
//! function of the simulation seed that returns everything a user (and the
//! server's operator) could observe, as text: the peers' events with their
//! simulated times, every transcript and the server's directory log.
//!
//! The tests in `tests/` snapshot that text, run each scenario twice to
//! prove determinism, and sweep seeds asserting the invariants below.

pub mod cluster;
pub mod faults;
pub mod identity;
pub mod invariants;
pub mod presence;
pub mod raw_client;
pub mod scenarios;
pub mod several_chats;
pub mod several_servers;
pub mod sweep;

use natter_core::Event;
use natter_net_sim::scenario::Scenario;
use std::time::Duration;

/// Generous bound on any single wait in a scenario, in simulated time: a
/// wait that hits it is a failure (a hang), never a way to pass.
pub const LIMIT: Duration = Duration::from_secs(60);

/// Everything observable at the end of a scenario, for snapshots.
pub fn observed(s: &Scenario<'_>, peers: &[&str]) -> String {
    let mut out = String::new();
    for peer in peers {
        out.push_str(&format!("### events of {peer}\n{}\n", s.event_log(peer)));
    }
    for peer in peers {
        out.push_str(&format!(
            "### transcripts of {peer}\n{}\n",
            s.transcripts(peer)
        ));
    }
    out.push_str(&format!("### server log\n{}", s.server_log()));
    out
}

/// Matches an `error` event with `code`, for [`Scenario::wait_for`].
pub fn is_error(code: natter_core::ErrorCode) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::Error { code: c, .. } if *c == code)
}

/// `caller` calls `callee`, who has no room: `busy` comes back at once.
/// At once means: connect (SYN, SYN-ACK), the Noise handshake (three
/// messages, the hello riding with the third), the callee's lookup of the
/// caller's key at the directory, then `busy`: four round trips of
/// `LATENCY` each way, plus a tick per hop.
pub fn busy_answered_at_once(s: &mut Scenario<'_>, caller: &str, callee: &str) {
    s.type_line(caller, &format!("/connect {callee}"));
    let asked_at = s.elapsed();
    let (at, answer) = s.wait_for(caller, LIMIT, |e| {
        matches!(e, Event::Busy { .. } | Event::ChatStarted { .. })
    });
    assert_eq!(
        answer,
        Event::Busy {
            peer: callee.into()
        }
    );
    let waited = at - asked_at;
    assert!(
        waited <= 8 * natter_net_sim::scenario::LATENCY + Duration::from_millis(10),
        "busy took {waited:?}"
    );
}

/// Runs until both named peers are registered.
pub fn registered(s: &mut Scenario<'_>, peers: &[&str]) {
    for peer in peers {
        s.wait_for(peer, LIMIT, |e| matches!(e, Event::Registered { .. }));
    }
}

/// `caller` calls `callee`, who accepts; returns when both are chatting.
pub fn chat(s: &mut Scenario<'_>, caller: &str, callee: &str) {
    s.type_line(caller, &format!("/connect {callee}"));
    s.wait_for(callee, LIMIT, |e| matches!(e, Event::Incoming { .. }));
    s.type_line(callee, "/accept");
    s.wait_for(caller, LIMIT, |e| matches!(e, Event::ChatStarted { .. }));
    s.wait_for(callee, LIMIT, |e| matches!(e, Event::ChatStarted { .. }));
}

/// `from` says `text` and the script waits until it is delivered.
pub fn say(s: &mut Scenario<'_>, from: &str, text: &str) {
    s.type_line(from, text);
    s.wait_for(from, LIMIT, |e| matches!(e, Event::Delivered { .. }));
}
