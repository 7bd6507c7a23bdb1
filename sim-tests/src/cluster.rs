//! Several servers sharing one directory through a store (issue 14), in
//! turmoil: a `store` host runs the model of the NATS key-value store
//! (natter-net-sim's `kv`), each server host a `natter server` with the
//! production shared store on it. Each scenario asserts what users and
//! operators observe and returns it as text for a snapshot.

use crate::{chat, is_error, observed, registered, say, LIMIT};
use natter_core::registry::ClusterConfig;
use natter_core::{ErrorCode, Event, Identity, RegistryConfig};
use natter_net_real::store::{CALL_TIMEOUT, RETRY};
use natter_net_sim::scenario::{builder, Scenario, LATENCY};
use std::time::Duration;

/// The cluster's timings in every scenario: the defaults (entries live
/// 15 s, refreshed every 5 s; a claim waits 5 s at most).
fn cluster_config() -> ClusterConfig {
    ClusterConfig::new("unused: each server is named after its host")
}

fn world(seed: u64, servers: &[&str]) -> Scenario<'static> {
    Scenario::cluster(
        &builder(seed),
        RegistryConfig::default(),
        cluster_config(),
        servers,
    )
}

/// Starts `name` on a host of its own, registering with `server`, told of
/// presence changes.
fn start_on(s: &mut Scenario<'_>, server: &str, name: &str) {
    s.serve_peers_from(server);
    s.start_peer_with(name, |c| c.presence = true);
}

/// Runs until `watcher` is told `name` came online.
fn sees_online(s: &mut Scenario<'_>, watcher: &str, name: &str) -> Duration {
    let (at, _) = s.wait_for(
        watcher,
        LIMIT,
        |e| matches!(e, Event::PeerOnline { peer } if peer.name == name),
    );
    at
}

/// Runs until `watcher` is told `name` went offline.
fn sees_offline(s: &mut Scenario<'_>, watcher: &str, name: &str) -> Duration {
    let (at, _) = s.wait_for(
        watcher,
        LIMIT,
        |e| matches!(e, Event::PeerOffline { name: gone } if gone == name),
    );
    at
}

/// `peer`'s `/list`: the names it shows.
fn list(s: &mut Scenario<'_>, peer: &str) -> Vec<String> {
    s.type_line(peer, "/list");
    let (_, peers) = s.wait_for(peer, LIMIT, |e| matches!(e, Event::Peers { .. }));
    let Event::Peers { peers } = peers else {
        unreachable!()
    };
    peers.into_iter().map(|p| p.name).collect()
}

/// c01: alice registers on server1, then bob and carol on server2. alice
/// is told they come online, and each lists the others, whichever server
/// they are on;
/// alice calls bob across servers (the chat itself is peer to peer) and
/// messages go both ways with receipts.
pub fn peers_on_two_servers_list_and_call_each_other(seed: u64) -> String {
    let mut s = world(seed, &["server1", "server2"]);
    start_on(&mut s, "server1", "alice");
    registered(&mut s, &["alice"]);
    start_on(&mut s, "server2", "bob");
    start_on(&mut s, "server2", "carol");
    registered(&mut s, &["bob", "carol"]);
    sees_online(&mut s, "alice", "bob");
    sees_online(&mut s, "alice", "carol");
    assert_eq!(list(&mut s, "alice"), ["bob", "carol"]);
    assert_eq!(list(&mut s, "bob"), ["alice", "carol"]);
    chat(&mut s, "alice", "bob");
    say(&mut s, "alice", "hello from server1");
    say(&mut s, "bob", "hello from server2");
    s.type_line("alice", "/leave");
    s.wait_for("bob", LIMIT, |e| matches!(e, Event::ChatEnded { .. }));
    s.end_input("carol");
    assert_eq!(s.wait_exit("carol", LIMIT), 0);
    let (_, _) = s.wait_for(
        "alice",
        LIMIT,
        |e| matches!(e, Event::PeerOffline { name } if name == "carol"),
    );
    assert_eq!(list(&mut s, "alice"), ["bob"]);
    observed(&s, &["alice", "bob", "carol"])
}

/// c02: two users with different keys register `alice` at the same instant,
/// one on each server: exactly one key gets the name cluster-wide, the
/// other gets `name_taken` (at start: fatal, exit 1), and both servers list
/// the winner.
pub fn same_name_on_two_servers_at_once_goes_to_one_key(seed: u64) -> String {
    let mut s = world(seed, &["server1", "server2"]);
    start_on(&mut s, "server2", "watcher");
    registered(&mut s, &["watcher"]);
    s.serve_peers_from("server1");
    s.start_peer_with("alice1", |c| {
        c.name = "alice".into();
        c.identity = Identity::from_seed(&[0xa1; 32]);
    });
    s.serve_peers_from("server2");
    s.start_peer_with("alice2", |c| {
        c.name = "alice".into();
        c.identity = Identity::from_seed(&[0xa2; 32]);
    });
    let outcome = |s: &mut Scenario<'_>, host: &str| {
        let (_, e) = s.wait_for(host, LIMIT, |e| {
            matches!(e, Event::Registered { .. } | Event::Error { .. })
        });
        e
    };
    let first = outcome(&mut s, "alice1");
    let second = outcome(&mut s, "alice2");
    let won: Vec<&str> = [("alice1", &first), ("alice2", &second)]
        .iter()
        .filter(|(_, e)| matches!(e, Event::Registered { .. }))
        .map(|(host, _)| *host)
        .collect();
    assert_eq!(won.len(), 1, "exactly one key wins: {first:?} / {second:?}");
    let lost = if won[0] == "alice1" {
        "alice2"
    } else {
        "alice1"
    };
    let lost_event = if lost == "alice1" { &first } else { &second };
    assert!(
        is_error(ErrorCode::NameTaken)(lost_event),
        "the other gets name_taken: {lost_event:?}"
    );
    assert_eq!(s.wait_exit(lost, LIMIT), 1);
    sees_online(&mut s, "watcher", "alice");
    let winner_seed = if won[0] == "alice1" { 0xa1 } else { 0xa2 };
    let winner_key = Identity::from_seed(&[winner_seed; 32]).public();
    s.type_line("watcher", "/list");
    let (_, peers) = s.wait_for("watcher", LIMIT, |e| matches!(e, Event::Peers { .. }));
    let Event::Peers { peers } = peers else {
        unreachable!()
    };
    let listed: Vec<_> = peers
        .iter()
        .map(|p| (p.name.as_str(), p.fingerprint.clone()))
        .collect();
    assert_eq!(
        listed,
        [("alice", Some(winner_key.fingerprint()))],
        "the winner is listed, with its key"
    );
    observed(&s, &["alice1", "alice2", "watcher"])
}

/// c03: server1 is cut off from the store while alice (on server1) and bob
/// (on server2) chat. server1 says once in its log that it is cut off;
/// carol, registering on server1 meanwhile, gets `store_unavailable` (and
/// retries); the chat goes on, peer to peer. After the partition heals,
/// server1 says it is back, carol's retry registers her, and bob sees her.
pub fn server_cut_off_from_the_store_refuses_registrations_and_recovers(seed: u64) -> String {
    let mut s = world(seed, &["server1", "server2"]);
    start_on(&mut s, "server1", "alice");
    start_on(&mut s, "server2", "bob");
    registered(&mut s, &["alice", "bob"]);
    sees_online(&mut s, "alice", "bob");
    chat(&mut s, "alice", "bob");
    say(&mut s, "alice", "before the cut");

    s.sim.partition("server1", "store");
    let cut_at = s.elapsed();
    // The watch hears nothing for 3 s: server1 knows it is cut off.
    s.run_for(Duration::from_secs(4));
    assert!(
        s.server_log()
            .contains("server1: cut off from the shared directory store"),
        "{}",
        s.server_log()
    );
    start_on(&mut s, "server1", "carol");
    let (refused_at, _) = s.wait_for("carol", LIMIT, is_error(ErrorCode::StoreUnavailable));
    assert!(refused_at - cut_at < Duration::from_secs(6));
    say(&mut s, "alice", "during the cut");
    say(&mut s, "bob", "still here");

    s.sim.repair("server1", "store");
    let healed_at = s.elapsed();
    let (registered_at, _) = s.wait_for("carol", LIMIT, |e| matches!(e, Event::Registered { .. }));
    let bob_sees = sees_online(&mut s, "bob", "carol");
    assert!(
        registered_at - healed_at < Duration::from_secs(10),
        "back within a retry or two: {:?}",
        registered_at - healed_at
    );
    assert!(bob_sees >= registered_at);
    say(&mut s, "alice", "after the cut");
    let log = s.server_log();
    assert_eq!(
        log.matches("server1: cut off from").count(),
        1,
        "said once:\n{log}"
    );
    assert_eq!(
        log.matches("server1: the shared directory store is reachable")
            .count(),
        2,
        "at start and after the heal:\n{log}"
    );
    observed(&s, &["alice", "bob", "carol"])
}

/// c04: server1 crashes with alice registered on it. Nobody withdraws her
/// entry, so it expires: bob, on server2, is told she went offline once
/// her entry has gone unrefreshed for the entry TTL (15 s), at most one
/// refresh interval (5 s) after the crash plus the presence interval, and
/// his list no longer shows her.
pub fn crashed_servers_peers_expire_from_the_others_listing(seed: u64) -> String {
    let mut s = world(seed, &["server1", "server2"]);
    start_on(&mut s, "server1", "alice");
    start_on(&mut s, "server2", "bob");
    registered(&mut s, &["alice", "bob"]);
    sees_online(&mut s, "bob", "alice");
    s.run_for(Duration::from_secs(7));

    s.sim.crash("server1");
    let crashed_at = s.elapsed();
    let offline_at = sees_offline(&mut s, "bob", "alice");
    let config = cluster_config();
    let presence = RegistryConfig::default().presence.interval;
    let waited = offline_at - crashed_at;
    assert!(
        waited > config.entry_ttl - config.refresh
            && waited <= config.entry_ttl + presence + 2 * LATENCY,
        "alice's entry expired {waited:?} after the crash"
    );
    // Exactly: server1's last refresh of alice's entry left at 5.035 s
    // (reachable at 0.035 s, every 5 s; the crash at 7.342 s came before
    // the next) and reached the store 20 ms later (a connection and a
    // request); the entry expired 15 s after that, at 20.055 s; server2
    // heard of it 5 ms later, told bob at its next presence flush, and
    // bob got it 5 ms after that.
    assert_eq!(crashed_at, Duration::from_millis(7_342));
    assert_eq!(offline_at, Duration::from_millis(20_306));
    assert_eq!(list(&mut s, "bob"), Vec::<String>::new());
    observed(&s, &["bob"])
}

/// c05: alice, on server1, quits while server1 is cut off from the store:
/// her withdrawal cannot reach it then, and is dropped. When server1
/// reaches the store again, its new watch lists her entry as server1's,
/// which server1 no longer holds, so it withdraws it then: bob, on
/// server2, is told she went offline within a store call and a retry of
/// the repair (an attempt to reach the store may be under way when it is
/// repaired), not when her entry expires (15 s after its last refresh,
/// about 10 s later).
pub fn peer_that_quits_while_its_server_is_cut_off_is_withdrawn_when_the_store_returns(
    seed: u64,
) -> String {
    let mut s = world(seed, &["server1", "server2"]);
    start_on(&mut s, "server1", "alice");
    start_on(&mut s, "server2", "bob");
    registered(&mut s, &["alice", "bob"]);
    sees_online(&mut s, "bob", "alice");

    s.sim.partition("server1", "store");
    // The watch hears nothing for 3 s: server1 knows it is cut off, and
    // waits a retry interval before it tries the store again. alice
    // leaves in that interval.
    while !s.server_log().contains("server1: cut off") {
        s.run_for(Duration::from_millis(10));
    }
    s.end_input("alice");
    assert_eq!(s.wait_exit("alice", LIMIT), 0);
    s.run_for(Duration::from_secs(1));
    s.sim.repair("server1", "store");
    let healed_at = s.elapsed();
    let offline_at = sees_offline(&mut s, "bob", "alice");
    let config = cluster_config();
    let presence = RegistryConfig::default().presence.interval;
    let waited = offline_at - healed_at;
    assert!(
        waited <= CALL_TIMEOUT + RETRY + presence + 4 * LATENCY,
        "bob heard alice left {waited:?} after the repair, her entry's expiry rather than her withdrawal (TTL {:?})",
        config.entry_ttl
    );
    assert_eq!(list(&mut s, "bob"), Vec::<String>::new());
    observed(&s, &["bob"])
}
