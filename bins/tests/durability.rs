//! Transcripts survive a crash: a receiving `natter peer` is SIGKILLed in
//! the middle of a burst of messages, and every line of its transcript is
//! still complete and parseable — each line goes to the file with one
//! `write_all` of `line + "\n"` on an O_APPEND file, so a kill can only
//! land between lines (net-real/src/transcripts.rs).
//!
//! The sender, meanwhile, accounts for every message it sent: each one is
//! either delivered (recorded on the other side before the kill) or listed
//! undelivered when the chat ends.

#![cfg(unix)]

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use support::{registered_peer, transcript, Server};

/// Messages in the burst; the receiver is killed after `KILL_AFTER`.
const BURST: u64 = 400;
const KILL_AFTER: u64 = 100;

#[test]
fn a_receiver_killed_mid_burst_leaves_only_complete_transcript_lines() {
    let dirs = tempfile::tempdir().unwrap();
    let (alice_dir, bob_dir) = (dirs.path().join("alice"), dirs.path().join("bob"));
    let server = Server::start();
    let (mut alice, _) = registered_peer("alice", server.addr, &alice_dir);
    let (mut bob, _) = registered_peer("bob", server.addr, &bob_dir);
    alice.send("/connect bob");
    bob.expect_event("incoming");
    bob.send("/accept");
    bob.expect_event("chat_started");
    alice.expect_event("chat_started");

    // The burst goes in from a thread (alice takes lines only while fewer
    // than 64 await receipts, so the pipe fills and writes block).
    let mut stdin = alice.take_stdin();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        for n in 1..=BURST {
            let line = format!("message {n} {}\n", "x".repeat(1 + (n % 50) as usize));
            if stdin.write_all(line.as_bytes()).is_err() {
                break;
            }
        }
        // Kept open: the end of input would be a /quit.
        stdin
    });

    bob.expect("message #KILL_AFTER", |v| {
        v["event"] == "message" && v["n"] == KILL_AFTER
    });
    bob.kill();

    // alice: the chat ends as peer_lost (killed: the connection closed
    // without a goodbye); every message she sent is delivered or
    // undelivered, exactly once.
    let ended = alice.expect_event("chat_ended");
    assert_eq!(ended["reason"], "peer_lost", "{ended}");
    assert_eq!(ended["cause"], "closed", "{ended}");
    let sent: BTreeSet<u64> = numbers(&alice.seen, "sent");
    let delivered: BTreeSet<u64> = numbers(&alice.seen, "delivered");
    let undelivered: BTreeSet<u64> = ended["undelivered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect();
    assert!(delivered.is_disjoint(&undelivered));
    assert_eq!(
        delivered
            .union(&undelivered)
            .copied()
            .collect::<BTreeSet<_>>(),
        sent,
        "every sent message ends delivered or undelivered"
    );
    assert!(delivered.len() as u64 >= KILL_AFTER - 64, "{delivered:?}");

    // bob's transcript: ends with a newline, and every line is a whole,
    // timestamped entry (support::transcript checks each timestamp).
    let file = std::fs::read_dir(&bob_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("_bob_alice.log"))
        .expect("bob's transcript");
    let raw = std::fs::read(&file).unwrap();
    assert_eq!(raw.last(), Some(&b'\n'), "the last line is complete");
    assert!(std::str::from_utf8(&raw).is_ok(), "valid UTF-8");
    let lines = transcript(&bob_dir, "_bob_alice.log");
    assert!(
        lines[0].starts_with("chat started: bob was called by alice at "),
        "{}",
        lines[0]
    );
    let mut next = 1;
    for line in &lines[1..] {
        let prefix = format!("received #{next} (sent ");
        assert!(
            line.starts_with(&prefix) && line.contains(&format!("): message {next}")),
            "line {next}: {line:?}"
        );
        next += 1;
    }
    let recorded = next - 1;
    assert!(recorded >= KILL_AFTER, "{recorded} lines");
    // Every receipt alice got is backed by a line in bob's file.
    assert!(
        delivered.iter().all(|&n| n <= recorded),
        "a receipt for an unrecorded message: recorded {recorded}, delivered {delivered:?}"
    );

    alice.close_stdin();
    drop(writer);
}

fn numbers(events: &[Value], event: &str) -> BTreeSet<u64> {
    events
        .iter()
        .filter(|v| v["event"] == event)
        .map(|v| v["n"].as_u64().unwrap())
        .collect()
}
