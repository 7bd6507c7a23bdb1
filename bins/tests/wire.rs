//! What crosses the network on a chat link: the real `natter` binary,
//! two peers talking through a recording TCP proxy. Issue "Identity and
//! end-to-end encryption", item 6: no message text, no name appears in the
//! bytes on the wire; the proxy, which only relays, is no man in the
//! middle, so both sides compute the same safety number.

#![cfg(unix)]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use support::{registered_peer, Server};

/// Relays one connection to `to`, keeping a copy of every byte both ways.
fn recording_proxy(to: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    std::thread::spawn(move || {
        let (caller, _) = listener.accept().unwrap();
        let callee = TcpStream::connect(to).unwrap();
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
        let ba = pipe(callee, caller, record);
        let _ = ab.join();
        let _ = ba.join();
    });
    (addr, seen)
}

#[test]
fn a_chat_link_carries_no_message_text_and_no_name_in_clear() {
    let dirs = tempfile::tempdir().unwrap();
    let server = Server::start();
    let (mut alice, _) = registered_peer("alice", server.addr, &dirs.path().join("a"));
    let (mut bob, bob_reg) = registered_peer("bob", server.addr, &dirs.path().join("b"));
    let bob_addr: SocketAddr = bob_reg["addr"].as_str().unwrap().parse().unwrap();
    let (proxy, seen) = recording_proxy(bob_addr);

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
    let wire = seen.lock().unwrap().clone();
    assert!(
        wire.len() > 200,
        "the proxy saw the chat: {} bytes",
        wire.len()
    );
    let text = String::from_utf8_lossy(&wire);
    for clear in [
        "wire 10 EUR",
        "4711",
        "noted",
        "alice",
        "bob",
        "hello",
        "\"type\"",
    ] {
        assert!(!text.contains(clear), "{clear:?} crossed the wire in clear");
    }
}
