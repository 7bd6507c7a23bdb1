//! Several directory servers sharing one registry on NATS JetStream
//! (issue 14), for real: a `nats-server -js` and three `natter server
//! --store nats://…` processes on loopback, with `natter peer --json`
//! processes registered on different servers.
//!
//! Skipped, with a `skipped:` line on standard error, where no nats-server
//! 2.11 or newer is installed (`.ci/run` installs one from PyPI).

mod support;

use natter_net_real::nats_server::NatsServer;
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};
use support::{peer, Proc, Server};

/// A NATS server and three natter servers sharing it.
struct Cluster {
    servers: Vec<Server>,
    /// Dropped last: the natter servers first, so they do not log being
    /// cut off on the way out.
    nats: NatsServer,
}

impl Cluster {
    /// Or `None`, having said why the test is skipped (on standard error,
    /// around libtest's capture, so that it shows in every run).
    fn start(test: &str) -> Option<Cluster> {
        let nats = match NatsServer::start() {
            Ok(nats) => nats,
            Err(why) => {
                let _ = writeln!(std::io::stderr(), "skipped: {test}: {why}");
                return None;
            }
        };
        let url = nats.url();
        let servers = (0..3)
            .map(|_| {
                let mut server = Server::start_with(&["--store", &url]);
                // Registrations are refused (store_unavailable) until the
                // server has opened the buckets and its watch.
                server.proc.expect("the store reachable", |v| {
                    v["change"] == "store" && v["reachable"] == true
                });
                server
            })
            .collect();
        Some(Cluster { servers, nats })
    }
}

/// Waits for the event of `name` online, ignoring other presence.
fn online(p: &mut Proc, name: &str) -> Value {
    p.expect(&format!("peer_online {name}"), |v| {
        v["event"] == "peer_online" && v["name"] == name
    })
}

/// Who `p` knows to be online once `expected` all are: a `/list`, then
/// the `peer_online` events after it (the directory's contract: a list
/// plus the presence after it is who is online), until none is missing.
fn who_is_online(p: &mut Proc, expected: &[&str]) -> Vec<String> {
    p.send("/list");
    let mut known = listed(&p.expect_event("peers"));
    while let Some(missing) = expected.iter().find(|n| !known.iter().any(|k| k == *n)) {
        known.push(online(p, missing)["name"].as_str().unwrap().to_string());
        known.sort();
    }
    known
}

/// The real clock: these are real processes (the determinism rule is for
/// code that runs under simulation).
#[allow(clippy::disallowed_methods)]
fn wall_now() -> Instant {
    Instant::now()
}

fn listed(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_string())
        .collect();
    names.sort();
    names
}

/// `natter peer --json NAME` on `server` with a data directory (so a key)
/// of its own.
fn peer_with_key(name: &str, server: &Server, data: &Path, transcripts: &Path) -> Proc {
    let data = data.to_str().expect("utf-8 temp path");
    peer(name, server.addr, transcripts, &["--data-dir", data])
}

#[test]
fn peers_on_different_servers_list_and_call_each_other() {
    let Some(cluster) = Cluster::start("peers_on_different_servers_list_and_call_each_other")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let [s1, s2, s3] = &cluster.servers[..] else {
        unreachable!()
    };
    let mut alice = peer("alice", s1.addr, dir.path(), &[]);
    alice.expect_event("registered");
    let mut bob = peer("bob", s2.addr, dir.path(), &[]);
    let bob_registered = bob.expect_event("registered");
    let mut carol = peer("carol", s3.addr, dir.path(), &[]);
    carol.expect_event("registered");

    // Presence crosses servers: alice (on s1) hears of bob (s2) and carol
    // (s3), with the key each proved to its own server.
    let bob_online = online(&mut alice, "bob");
    assert_eq!(bob_online["fingerprint"], bob_registered["fingerprint"]);
    assert_eq!(bob_online["addr"], bob_registered["addr"]);
    online(&mut alice, "carol");
    alice.send("/list");
    assert_eq!(listed(&alice.expect_event("peers")), ["bob", "carol"]);
    // And every server lists everyone: carol, on s3, registered last and
    // knows alice and bob from a list and the presence after it.
    assert_eq!(
        who_is_online(&mut carol, &["alice", "bob"]),
        ["alice", "bob"]
    );

    // A call across servers: the lookup of bob's key is answered by s1
    // from what s2 announced; the chat itself is peer to peer.
    alice.send("/connect bob");
    assert_eq!(bob.expect_event("incoming")["peer"], "alice");
    bob.send("/accept");
    assert_eq!(bob.expect_event("chat_started")["peer"], "alice");
    assert_eq!(alice.expect_event("chat_started")["peer"], "bob");
    alice.send("hello from s1");
    assert_eq!(bob.expect_event("message")["text"], "hello from s1");
    assert_eq!(alice.expect_event("delivered")["n"], 1);
    // Statuses cross servers too.
    carol.expect("bob chatting", |v| {
        v["event"] == "peer_status" && v["name"] == "bob" && v["status"] == "chatting"
    });
}

#[test]
fn a_killed_servers_peers_vanish_from_the_other_servers_within_the_bound_or_move() {
    let Some(mut cluster) =
        Cluster::start("a_killed_servers_peers_vanish_from_the_other_servers_within_the_bound")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut alice = peer("alice", cluster.servers[0].addr, dir.path(), &[]);
    alice.expect_event("registered");
    let mut dave = peer("dave", cluster.servers[2].addr, dir.path(), &[]);
    dave.expect_event("registered");
    online(&mut alice, "dave");
    // carol also knows s1: she moves there when s3 dies.
    let s1 = cluster.servers[0].addr.to_string();
    let mut carol = peer(
        "carol",
        cluster.servers[2].addr,
        dir.path(),
        &["--server", &s1],
    );
    carol.expect_event("registered");
    online(&mut alice, "carol");

    // s3 dies without a word (SIGKILL): nobody withdraws dave's entry; it
    // expires (15 s without a refresh, refreshed every 5 s), and s1 tells
    // alice.
    let killed = wall_now();
    cluster.servers[2].proc.kill();
    dave.expect_event("server_lost");
    let moved = carol.expect_event("reregistered");
    assert_eq!(moved["server"], s1.as_str(), "{moved}");
    let bound = Duration::from_secs(15 + 5 + 10);
    let offline = alice.expect_within(bound, "peer_offline dave", |v| {
        v["event"] == "peer_offline" && v["name"] == "dave"
    });
    let took = killed.elapsed();
    eprintln!("dave unlisted on s1 {took:?} after s3 was killed");
    assert!(
        took < bound,
        "dave unlisted {took:?} after s3 died: {offline}"
    );
    // carol, registered again through s1, is still listed; dave is not.
    alice.send("/list");
    assert_eq!(listed(&alice.expect_event("peers")), ["carol"]);
}

#[test]
fn a_server_cut_off_from_nats_says_so_refuses_registrations_and_recovers() {
    let Some(mut cluster) =
        Cluster::start("a_server_cut_off_from_nats_says_so_refuses_registrations_and_recovers")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut alice = peer("alice", cluster.servers[0].addr, dir.path(), &[]);
    alice.expect_event("registered");
    let mut bob = peer("bob", cluster.servers[1].addr, dir.path(), &[]);
    bob.expect_event("registered");
    online(&mut alice, "bob");

    cluster.nats.kill();
    let cut_off = |v: &Value| v["change"] == "store" && v["reachable"] == false;
    for server in &mut cluster.servers {
        server.proc.expect("the store unreachable", cut_off);
    }
    // A new registration gets the clear error, and the peer retries.
    let mut carol = peer("carol", cluster.servers[0].addr, dir.path(), &[]);
    let refused = carol.expect_error("store_unavailable");
    assert_eq!(refused["detail"], "retrying", "{refused}");
    // Registered peers stay; their chats are peer to peer and go on.
    alice.send("/connect bob");
    assert_eq!(bob.expect_event("incoming")["peer"], "alice");
    bob.send("/accept");
    assert_eq!(alice.expect_event("chat_started")["peer"], "bob");

    // NATS is back (same port, same disk): the servers say so, carol's
    // retry goes through, and the other servers list her.
    cluster.nats.restart().expect("nats-server restarts");
    let back = |v: &Value| v["change"] == "store" && v["reachable"] == true;
    for server in &mut cluster.servers {
        server
            .proc
            .expect_within(Duration::from_secs(20), "the store back", back);
    }
    // Refusals until then are retried.
    loop {
        let next = carol.expect_within(Duration::from_secs(20), "registered", |v| {
            v["event"] == "registered"
                || (v["event"] == "error" && v["code"] == "store_unavailable")
        });
        if next["event"] == "registered" {
            break;
        }
    }
    assert_eq!(
        who_is_online(&mut bob, &["alice", "carol"]),
        ["alice", "carol"]
    );
}

#[test]
fn a_name_claimed_on_two_servers_at_once_goes_to_exactly_one_key() {
    let Some(cluster) =
        Cluster::start("a_name_claimed_on_two_servers_at_once_goes_to_exactly_one_key")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (key_a, key_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut watcher = peer("watcher", cluster.servers[2].addr, dir.path(), &[]);
    watcher.expect_event("registered");
    for round in 0..3 {
        let name = format!("eve{round}");
        // Two keys, two servers, started together.
        let mut on_s1 = peer_with_key(&name, &cluster.servers[0], key_a.path(), dir.path());
        let mut on_s2 = peer_with_key(&name, &cluster.servers[1], key_b.path(), dir.path());
        let outcome = |p: &mut Proc| {
            p.expect("registered or name_taken", |v| {
                v["event"] == "registered" || (v["event"] == "error" && v["code"] == "name_taken")
            })
        };
        let (a, b) = (outcome(&mut on_s1), outcome(&mut on_s2));
        let winner = match (a["event"].as_str(), b["event"].as_str()) {
            (Some("registered"), Some("error")) => a,
            (Some("error"), Some("registered")) => b,
            other => panic!("round {round}: exactly one registers, got {other:?}: {a} {b}"),
        };
        // The third server lists the winner's key.
        let listed = online(&mut watcher, &name);
        assert_eq!(
            listed["fingerprint"], winner["fingerprint"],
            "round {round}"
        );
    }
}
