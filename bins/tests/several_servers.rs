//! `natter peer` given two real `natter server`s (independent: each its
//! own registry) on loopback: it registers with the first; when that one
//! is killed, it registers with the second at once, and its chat goes on.
//! One peer names the servers with `--server` twice, the other with
//! `NATTER_SERVER` holding both, separated by a comma.

mod support;

use std::time::{Duration, Instant};
use support::{Proc, Server};

#[test]
// The wall clock: real processes, and a figure to report (a generous bound).
#[allow(clippy::disallowed_methods)]
fn a_killed_server_hands_its_peers_to_the_second_and_their_chat_goes_on() {
    let dirs = tempfile::tempdir().unwrap();
    let mut first = Server::start();
    // Its own key: each address is pinned with its own.
    let second = Server::start_at("127.0.0.1:0", &dirs.path().join("second-key"), &[]);
    let (one, two) = (first.addr.to_string(), second.addr.to_string());
    // Own data directories: the tests' shared one may hold another key for
    // a port the system gave another test's server.
    let start = |name: &str, servers: &[&str], env: &[(&str, &str)]| {
        let data = dirs.path().join(name).join("data");
        let transcripts = dirs.path().join(name).join("transcripts");
        let mut args = vec!["peer", "--json", "--name", name];
        for server in servers {
            args.extend_from_slice(&["--server", server]);
        }
        args.extend_from_slice(&["--data-dir", data.to_str().unwrap()]);
        args.extend_from_slice(&["--transcripts", transcripts.to_str().unwrap()]);
        Proc::spawn_with(name, &args, env)
    };
    let mut alice = start("alice", &[&one, &two], &[]);
    let both = format!("{one},{two}");
    let mut bob = start("bob", &[], &[("NATTER_SERVER", &both)]);
    for peer in [&mut alice, &mut bob] {
        let registered = peer.expect_event("registered");
        assert_eq!(registered["server"], one.as_str(), "the first that answers");
        assert_eq!(registered["server_fingerprint"], first.fingerprint.as_str());
    }
    alice.send("/connect bob");
    bob.expect_event("incoming");
    bob.send("/accept");
    alice.expect_event("chat_started");
    bob.expect_event("chat_started");

    first.proc.kill();
    let killed = Instant::now();
    for peer in [&mut alice, &mut bob] {
        peer.expect_event("server_lost");
        let again = peer.expect_event("reregistered");
        let took = killed.elapsed();
        assert_eq!(again["server"], two.as_str(), "{again}");
        assert_eq!(again["server_fingerprint"], second.fingerprint.as_str());
        assert_eq!(again["new_server"], true, "{again}");
        // Loopback answers at once: no backoff stands between a lost
        // server and the next (a generous wall-clock bound, the machine
        // may be busy).
        assert!(took < Duration::from_secs(5), "{took:?}");
        eprintln!(
            "{}: registered with the second server {took:?} after the kill",
            peer.label
        );
    }

    alice.send("the first server is gone");
    assert_eq!(
        bob.expect_event("message")["text"],
        "the first server is gone"
    );
    alice.expect_event("delivered");
    bob.send("/list");
    let list = bob.expect_event("peers");
    assert_eq!(list["peers"][0]["name"], "alice");
    assert_eq!(list["peers"][0]["status"], "chatting", "{list}");

    let pins =
        std::fs::read_to_string(dirs.path().join("alice/data/peers/alice/known_servers")).unwrap();
    assert_eq!(pins.lines().count(), 2, "one pin per address: {pins}");

    alice.close_stdin();
    bob.close_stdin();
    assert!(alice.wait_exit().success(), "alice: {:#?}", alice.seen);
    assert!(bob.wait_exit().success(), "bob: {:#?}", bob.seen);
}
