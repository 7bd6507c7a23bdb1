//! What crosses the network on either link: the real `natter` binary,
//! peers talking through recording TCP proxies. Issue "Identity and
//! end-to-end encryption", item 6: no message text, no name, no port
//! appears in the bytes on the wire, between the peers or between a peer
//! and the server; the proxy, which only relays, is no man in the middle,
//! so both sides compute the same safety number.

#![cfg(unix)]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{mpsc, Arc, Mutex};
use support::{registered_peer, Server, EVENT_TIMEOUT};

/// Every byte one relayed connection carried, both ways.
struct Recording(mpsc::Receiver<Vec<u8>>);

impl Recording {
    /// The bytes, once both sides have closed the connection.
    fn wait(self) -> Vec<u8> {
        self.0
            .recv_timeout(EVENT_TIMEOUT)
            .expect("the relayed connection ends")
    }
}

/// Relays one connection to `to`, keeping a copy of every byte both ways.
fn recording_proxy(to: SocketAddr) -> (SocketAddr, Recording) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (done, recording) = mpsc::channel();
    std::thread::spawn(move || {
        let (caller, _) = listener.accept().unwrap();
        let callee = TcpStream::connect(to).unwrap();
        let record = Arc::new(Mutex::new(Vec::new()));
        let pipe = |mut from: TcpStream, mut into: TcpStream, record: Arc<Mutex<Vec<u8>>>| {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = from.read(&mut buf) {
                    if n == 0 || into.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    record.lock().unwrap().extend_from_slice(&buf[..n]);
                }
                let _ = into.shutdown(std::net::Shutdown::Write);
            })
        };
        let ab = pipe(
            caller.try_clone().unwrap(),
            callee.try_clone().unwrap(),
            Arc::clone(&record),
        );
        let ba = pipe(callee, caller, Arc::clone(&record));
        let _ = ab.join();
        let _ = ba.join();
        let _ = done.send(record.lock().unwrap().clone());
    });
    (addr, Recording(recording))
}

/// Fails if any of `clear` appears in `wire`, which must hold a real
/// conversation's worth of bytes.
fn assert_nothing_in_clear(wire: &[u8], clear: &[&str]) {
    assert!(
        wire.len() > 500,
        "the proxy saw the link: {} bytes",
        wire.len()
    );
    let text = String::from_utf8_lossy(wire);
    for clear in clear {
        assert!(!text.contains(clear), "{clear:?} crossed the wire in clear");
    }
}

/// The port of a `registered` event's address, as digits.
fn port_of(registered: &serde_json::Value) -> String {
    let addr: SocketAddr = registered["addr"].as_str().unwrap().parse().unwrap();
    addr.port().to_string()
}

#[test]
fn a_chat_link_carries_no_message_text_and_no_name_in_clear() {
    let dirs = tempfile::tempdir().unwrap();
    let server = Server::start();
    let (mut alice, _) = registered_peer("alice", server.addr, &dirs.path().join("a"));
    let (mut bob, bob_reg) = registered_peer("bob", server.addr, &dirs.path().join("b"));
    let bob_addr: SocketAddr = bob_reg["addr"].as_str().unwrap().parse().unwrap();
    let (proxy, recording) = recording_proxy(bob_addr);

    alice.send(&format!("/connect {proxy}"));
    let incoming = bob.expect_event("incoming");
    assert_eq!(incoming["peer"], "alice");
    bob.send("/accept");
    let started = alice.expect_event("chat_started");
    assert_eq!(started["peer"], "bob");
    bob.expect_event("chat_started");
    let secret = "wire 10 EUR to account 4711";
    alice.send(secret);
    assert_eq!(bob.expect_event("message")["text"], secret);
    alice.expect_event("delivered");
    bob.send("noted, 10 EUR");
    alice.expect_event("message");

    // An honest relay: both sides see the same safety number.
    alice.send("/verify");
    bob.send("/verify alice");
    let a = alice.expect_event("safety_number");
    let b = bob.expect_event("safety_number");
    assert_eq!(a["number"], b["number"]);

    alice.send("/leave");
    bob.expect_event("chat_ended");
    assert_nothing_in_clear(
        &recording.wait(),
        &[
            "wire 10 EUR",
            "4711",
            "noted",
            "alice",
            "bob",
            "hello",
            "\"type\"",
        ],
    );
}

#[test]
fn a_server_link_carries_no_name_no_port_and_no_text_in_clear() {
    let dirs = tempfile::tempdir().unwrap();
    let server = Server::start();
    let (proxy, recording) = recording_proxy(server.addr);
    let (mut bob, bob_reg) = registered_peer("bob", server.addr, &dirs.path().join("b"));
    // alice's whole session with the server goes through the proxy:
    // registration, list, status changes, goodbye.
    let (mut alice, alice_reg) = registered_peer("alice", proxy, &dirs.path().join("a"));
    alice.send("/list");
    let list = alice.expect_event("peers");
    assert_eq!(list["peers"][0]["name"], "bob");
    alice.send("/connect bob");
    bob.expect_event("incoming");
    bob.send("/accept");
    alice.expect_event("chat_started");
    bob.expect_event("chat_started");
    let secret = "wire 10 EUR to account 4711";
    alice.send(secret);
    assert_eq!(bob.expect_event("message")["text"], secret);
    alice.send("/leave");
    bob.expect_event("chat_ended");
    alice.close_stdin();
    assert!(alice.wait_exit().success(), "alice: {:#?}", alice.seen);

    assert_nothing_in_clear(
        &recording.wait(),
        &[
            "alice",
            "bob",
            &port_of(&alice_reg),
            &port_of(&bob_reg),
            "127.0.0.1",
            "wire 10 EUR",
            "4711",
            "hello",
            "register",
            "chatting",
            "\"type\"",
        ],
    );
    bob.close_stdin();
    assert!(bob.wait_exit().success());
}
