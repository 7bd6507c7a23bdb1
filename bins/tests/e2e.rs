//! End to end: the real `natter` binary, a server and three peers as
//! separate processes on loopback, driven through `--json`.
//!
//! Unix only: it sends SIGINT and SIGKILL as a terminal and a crash would.

#![cfg(unix)]

mod support;

use serde_json::Value;
use support::{peer, registered_peer, transcript, Server};

fn names(peers: &Value) -> Vec<(String, String)> {
    let mut list: Vec<(String, String)> = peers["peers"]
        .as_array()
        .expect("peers list")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    list.sort();
    list
}

fn pair(name: &str, status: &str) -> (String, String) {
    (name.to_string(), status.to_string())
}

#[test]
fn three_peers_chat_over_real_sockets() {
    let dirs = tempfile::tempdir().unwrap();
    let (alice_dir, bob_dir, carol_dir) = (
        dirs.path().join("alice"),
        dirs.path().join("bob"),
        dirs.path().join("carol"),
    );
    let mut server = Server::start();

    // Register: the server reports the address it sees.
    let (mut alice, reg) = registered_peer("alice", server.addr, &alice_dir);
    assert!(reg["addr"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(reg["server"], server.addr.to_string());
    // bob has room for one chat: a second caller gets busy.
    let mut bob = peer("bob", server.addr, &bob_dir, &["--max-chats", "1"]);
    bob.expect_event("registered");
    let (mut carol, _) = registered_peer("carol", server.addr, &carol_dir);

    // List: everyone else, available.
    alice.send("/list");
    let list = alice.expect_event("peers");
    assert_eq!(
        names(&list),
        vec![pair("bob", "available"), pair("carol", "available")]
    );
    let bob_addr = list["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "bob")
        .map(|p| p["addr"].as_str().unwrap().to_string())
        .unwrap();

    // Reject: carol calls alice, alice says no.
    carol.send("/connect alice");
    let incoming = alice.expect_event("incoming");
    assert_eq!(incoming["peer"], "carol");
    alice.send("/reject");
    alice.expect_event("declined");
    assert_eq!(carol.expect_event("rejected")["peer"], "alice");

    // Connect and accept.
    alice.send("/connect bob");
    assert_eq!(bob.expect_event("incoming")["peer"], "alice");
    bob.send("/accept");
    assert_eq!(bob.expect_event("chat_started")["peer"], "alice");
    assert_eq!(alice.expect_event("chat_started")["peer"], "bob");

    // Messages both ways, each with its receipt.
    alice.send("hello bob");
    let sent = alice.expect_event("sent");
    assert_eq!(
        (sent["n"].as_u64(), sent["text"].as_str()),
        (Some(1), Some("hello bob"))
    );
    let got = bob.expect_event("message");
    assert_eq!(got["peer"], "alice");
    assert_eq!(got["n"], 1);
    assert_eq!(got["text"], "hello bob");
    assert!(got["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(alice.expect_event("delivered")["n"], 1);

    bob.send("hi alice, how are you");
    let got = alice.expect_event("message");
    assert_eq!(got["text"], "hi alice, how are you");
    let bob_at = got["at"].as_str().unwrap().to_string();
    assert_eq!(bob.expect_event("delivered")["n"], 1);

    // An oversized message is refused, not sent.
    alice.send(&"x".repeat(257));
    alice.expect_error("message_too_long");
    alice.send("//slash is fine");
    assert_eq!(bob.expect_event("message")["text"], "/slash is fine");
    assert_eq!(alice.expect_event("delivered")["n"], 2);

    // Busy: carol calls bob, whose one chat is taken, and hears so at once.
    carol.send("/connect bob");
    assert_eq!(carol.expect_event("busy")["peer"], "bob");

    // The directory shows alice chatting (room for more) and bob busy
    // (full), once they said so.
    server.expect_logs(&[
        &[
            ("change", "status"),
            ("name", "alice"),
            ("status", "chatting"),
        ],
        &[("change", "status"), ("name", "bob"), ("status", "busy")],
    ]);
    carol.send("/list");
    let list = carol.expect_event("peers");
    assert_eq!(
        names(&list),
        vec![pair("alice", "chatting"), pair("bob", "busy")]
    );

    // Leave: both sides are told, nothing left undelivered.
    alice.send("/leave");
    let ended = alice.expect_event("chat_ended");
    assert_eq!(ended["reason"], "left");
    assert_eq!(ended["undelivered"], serde_json::json!([]));
    let ended = bob.expect_event("chat_ended");
    assert_eq!(ended["reason"], "peer_left");

    // Killed mid-chat: carol and bob chat, carol is SIGKILLed.
    carol.send("/connect bob");
    bob.expect_event("incoming");
    bob.send("/accept");
    carol.expect_event("chat_started");
    bob.expect_event("chat_started");
    carol.send("are you there");
    bob.expect_event("message");
    carol.expect_event("delivered");
    carol.kill();
    let ended = bob.expect_event("chat_ended");
    assert_eq!(ended["peer"], "carol");
    // Killed, not gone with a goodbye (issue 9, item 12).
    assert_eq!(ended["reason"], "peer_lost");
    assert_eq!(ended["cause"], "closed");
    // The server forgets it (the kernel closed its connection).
    server.expect_log(&[("change", "deregistered"), ("name", "carol")]);
    bob.send("/list");
    let list = bob.expect_event("peers");
    assert_eq!(names(&list), vec![pair("alice", "available")]);

    // End of input is /quit: deregister, exit 0.
    alice.close_stdin();
    bob.close_stdin();
    assert!(alice.wait_exit().success(), "alice: {:#?}", alice.seen);
    assert!(bob.wait_exit().success(), "bob: {:#?}", bob.seen);
    server.expect_logs(&[
        &[
            ("change", "deregistered"),
            ("name", "alice"),
            ("reason", "left"),
        ],
        &[
            ("change", "deregistered"),
            ("name", "bob"),
            ("reason", "left"),
        ],
    ]);

    // Transcripts on disk, both directions, receipts, start and end.
    let alice_side = transcript(&alice_dir, "_alice_bob.log");
    // The first line names the key bob's handshake proved.
    assert!(
        alice_side[0].starts_with(&format!(
            "chat started: alice called bob at {bob_addr} (key "
        )),
        "{alice_side:?}"
    );
    assert_eq!(
        alice_side[1..],
        vec![
            "sent #1: hello bob".to_string(),
            "delivered #1".to_string(),
            format!("received #1 (sent {bob_at}): hi alice, how are you"),
            "sent #2: /slash is fine".to_string(),
            "delivered #2".to_string(),
            "chat ended: left".to_string(),
        ]
    );
    let bob_side = transcript(&bob_dir, "_bob_alice.log");
    assert!(bob_side[0].starts_with("chat started: bob was called by alice at 127.0.0.1:"));
    assert_eq!(bob_side.last().unwrap(), "chat ended: peer_left");
    assert!(bob_side
        .iter()
        .any(|l| l.starts_with("received #1 (sent ") && l.ends_with("): hello bob")));
    assert!(bob_side.contains(&"sent #1: hi alice, how are you".to_string()));
    assert!(bob_side.contains(&"delivered #1".to_string()));
    let bob_carol = transcript(&bob_dir, "_bob_carol.log");
    assert!(bob_carol.iter().any(|l| l.ends_with("): are you there")));
    assert_eq!(bob_carol.last().unwrap(), "chat ended: peer_lost (closed)");
    let carol_bob = transcript(&carol_dir, "_carol_bob.log");
    assert_eq!(carol_bob[1..], ["sent #1: are you there", "delivered #1"]);

    // Ctrl-C stops the server cleanly.
    interrupt(server.proc.pid());
    assert!(server.proc.wait_exit().success());
}

/// Ctrl-C, as a terminal sends it.
fn interrupt(pid: u32) {
    let pid = libc::pid_t::try_from(pid).expect("a pid");
    // SAFETY: kill(2) with a pid of our own child and a valid signal
    // number has no memory-safety preconditions.
    let sent = unsafe { libc::kill(pid, libc::SIGINT) };
    assert_eq!(sent, 0, "kill -INT {pid}");
}

#[test]
fn a_taken_name_or_port_is_a_clear_error_and_a_failed_exit() {
    let dirs = tempfile::tempdir().unwrap();
    let mut server = Server::start();
    let (mut alice, reg) = registered_peer("alice", server.addr, dirs.path());

    // Someone else (another key: another data directory) asks for the
    // name: told at once, and natter exits.
    let elsewhere = dirs.path().join("someone-else");
    let elsewhere = ["--data-dir", elsewhere.to_str().unwrap()];
    let mut again = peer("alice", server.addr, dirs.path(), &elsewhere);
    let error = again.expect_error("name_taken");
    assert_eq!(error["detail"], "server_said", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("owned by another key"), "{message}");
    assert!(message.contains("--name"), "{message}");
    assert!(!again.wait_exit().success());

    let port = reg["addr"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let mut clash = peer("carol", server.addr, dirs.path(), &["--port", &port]);
    let error = clash.expect_error("bind_failed");
    assert!(error["message"].as_str().unwrap().contains(&port));
    assert!(!clash.wait_exit().success());

    // A transcripts "directory" that is a file cannot be used.
    let file = dirs.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let mut nowhere = peer("dave", server.addr, &file.join("transcripts"), &[]);
    nowhere.expect_error("transcript_failed");
    assert!(!nowhere.wait_exit().success());

    alice.close_stdin();
    assert!(alice.wait_exit().success());
    server.expect_log(&[("change", "deregistered"), ("name", "alice")]);
}

#[test]
fn an_unreachable_server_is_a_clear_error_and_a_failed_exit() {
    let dirs = tempfile::tempdir().unwrap();
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut lonely = peer("erin", port, dirs.path(), &[]);
    lonely.expect_error("server_unreachable");
    assert!(!lonely.wait_exit().success());
}

#[test]
fn the_same_identity_started_again_replaces_the_old_session() {
    let dirs = tempfile::tempdir().unwrap();
    // One data directory for both alices: one key. (bob's pins are kept
    // there too: the shared one of the tests knows another alice.)
    let data = dirs.path().join("data");
    let data = ["--data-dir", data.to_str().unwrap()];
    let mut server = Server::start();
    let mut alice = peer("alice", server.addr, &dirs.path().join("alice"), &data);
    let first = alice.expect_event("registered");
    let mut bob = peer("bob", server.addr, &dirs.path().join("bob"), &data);
    bob.expect_event("registered");
    alice.send("/connect bob");
    bob.expect_event("incoming");
    bob.send("/accept");
    alice.expect_event("chat_started");
    bob.expect_event("chat_started");

    // alice starts natter again while the first still runs: the name is
    // hers (the same key), so she is registered at once, not refused.
    let mut again = peer("alice", server.addr, &dirs.path().join("again"), &data);
    let second = again.expect_event("registered");
    assert_eq!(second["fingerprint"], first["fingerprint"]);
    assert_ne!(second["addr"], first["addr"]);
    let replaced = alice.expect_error("replaced");
    assert_eq!(replaced["detail"], "replaced", "{replaced}");
    server.expect_log(&[("change", "refused"), ("code", "replaced")]);

    // The first natter stopped using the server, not chatting.
    alice.send("still here");
    assert_eq!(bob.expect_event("message")["text"], "still here");
    alice.expect_event("delivered");
    bob.send("/list");
    let list = bob.expect_event("peers");
    assert_eq!(list["peers"][0]["name"], "alice");
    assert_eq!(list["peers"][0]["addr"], second["addr"]);
    alice.send("/leave");
    bob.expect_event("chat_ended");
    alice.close_stdin();
    assert!(alice.wait_exit().success(), "alice: {:#?}", alice.seen);
    // Its exit takes nothing from the new session.
    bob.send("/list");
    let list = bob.expect_event("peers");
    assert_eq!(list["peers"][0]["addr"], second["addr"]);

    again.close_stdin();
    bob.close_stdin();
    assert!(again.wait_exit().success(), "again: {:#?}", again.seen);
    assert!(bob.wait_exit().success());
}

#[test]
fn a_server_with_another_key_at_a_pinned_address_is_refused_before_registering() {
    let dirs = tempfile::tempdir().unwrap();
    let data = dirs.path().join("data");
    let data = ["--data-dir", data.to_str().unwrap()];
    // A port nobody listens on: bound, then released, for two servers.
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();

    // dora meets the server with key A there, and pins it.
    let mut a = Server::start_at(&listen, &dirs.path().join("key-a"), &[]);
    let mut dora = peer("dora", a.addr, &dirs.path().join("dora"), &data);
    dora.expect_event("registered");
    dora.close_stdin();
    assert!(dora.wait_exit().success(), "dora: {:#?}", dora.seen);
    interrupt(a.proc.pid());
    assert!(a.proc.wait_exit().success());

    // Another server, with key B, answers at the same address.
    let mut b = Server::start_at(&listen, &dirs.path().join("key-b"), &[]);
    assert_ne!(a.fingerprint, b.fingerprint);
    let mut again = peer("dora", b.addr, &dirs.path().join("dora"), &data);
    let error = again.expect_error("server_key_changed");
    assert_eq!(error["expected"], a.fingerprint, "{error}");
    assert_eq!(error["presented"], b.fingerprint, "{error}");
    assert_eq!(again.wait_exit().code(), Some(1), "{:#?}", again.seen);

    // dora said nothing to B, not even her name.
    interrupt(b.proc.pid());
    assert!(b.proc.wait_exit().success());
    for line in &b.proc.seen {
        assert_ne!(line["change"], "registered", "{line}");
        assert!(!line.to_string().contains("dora"), "{line}");
    }
}
