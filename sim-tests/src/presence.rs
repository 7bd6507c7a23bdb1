//! The scenario of live presence (SPEC "Live presence"): peers come, chat
//! and go, and every peer that is online is told each of those changes,
//! in the order they happened, without asking. It drives the production
//! driver and server over turmoil, asserts what each user must observe,
//! and returns everything observable as text for a snapshot.

use crate::{chat, observed, registered, LIMIT};
use natter_core::{Event, PeerStatus};
use natter_net_sim::scenario::Scenario;
use std::time::Duration;

const PEERS: [&str; 4] = ["alice", "bob", "carol", "dave"];

fn start(s: &mut Scenario<'_>, name: &str) {
    s.start_peer_with(name, |config| config.presence = true);
    registered(s, &[name]);
}

/// Runs until each of `watchers` has been told `change` ("online bob",
/// "offline bob").
fn told(s: &mut Scenario<'_>, watchers: &[&str], change: &str) {
    for watcher in watchers {
        s.wait_for(watcher, LIMIT, |e| words(e).as_deref() == Some(change));
    }
}

/// A presence event in words; `None` for the other events.
fn words(event: &Event) -> Option<String> {
    match event {
        Event::PeerOnline { peer } => Some(format!("online {}", peer.name)),
        Event::PeerOffline { name } => Some(format!("offline {name}")),
        Event::PeerStatus { name, status } => Some(format!("status {name} {status}")),
        _ => None,
    }
}

/// The joins and leaves `peer` was told, in order.
fn comings_and_goings(s: &Scenario<'_>, peer: &str) -> Vec<String> {
    s.events(peer)
        .iter()
        .filter_map(|(_, e)| words(e))
        .filter(|w| !w.starts_with("status"))
        .collect()
}

/// The last status `watcher` was told of `name`.
fn last_status(s: &Scenario<'_>, watcher: &str, name: &str) -> Option<PeerStatus> {
    s.events(watcher).iter().rev().find_map(|(_, e)| match e {
        Event::PeerStatus { name: n, status } if n == name => Some(*status),
        Event::PeerOnline { peer } if peer.name == name => Some(peer.status),
        _ => None,
    })
}

/// alice, bob, carol and dave come one after the other; bob and carol
/// chat; bob leaves, then carol. Each peer is told every join and leave
/// after its own arrival, in order, and the statuses the chat changes.
pub fn joins_and_leaves_seen_by_every_peer_in_order(seed: u64) -> String {
    let mut s = Scenario::new(seed);
    start(&mut s, "alice");
    start(&mut s, "bob");
    told(&mut s, &["alice"], "online bob");
    start(&mut s, "carol");
    told(&mut s, &["alice", "bob"], "online carol");
    chat(&mut s, "bob", "carol");
    s.run_for(Duration::from_secs(1));
    assert_eq!(last_status(&s, "alice", "bob"), Some(PeerStatus::Chatting));
    assert_eq!(
        last_status(&s, "alice", "carol"),
        Some(PeerStatus::Chatting)
    );
    start(&mut s, "dave");
    told(&mut s, &["alice", "bob", "carol"], "online dave");
    assert_eq!(
        last_status(&s, "dave", "bob"),
        None,
        "dave lists to see bob"
    );
    s.end_input("bob");
    told(&mut s, &["alice", "carol", "dave"], "offline bob");
    s.run_for(Duration::from_secs(1));
    // carol's chat ended with bob's leaving: she takes calls again.
    assert_eq!(
        last_status(&s, "alice", "carol"),
        Some(PeerStatus::Available)
    );
    s.end_input("carol");
    told(&mut s, &["alice", "dave"], "offline carol");

    assert_eq!(
        comings_and_goings(&s, "alice"),
        [
            "online bob",
            "online carol",
            "online dave",
            "offline bob",
            "offline carol"
        ]
    );
    assert_eq!(
        comings_and_goings(&s, "bob"),
        ["online carol", "online dave"]
    );
    assert_eq!(
        comings_and_goings(&s, "carol"),
        ["online dave", "offline bob"]
    );
    assert_eq!(
        comings_and_goings(&s, "dave"),
        ["offline bob", "offline carol"]
    );
    observed(&s, &PEERS)
}
