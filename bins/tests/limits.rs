//! The limit flags of `natter server` and `natter peer` reach the state
//! machines: each limit, set low on the command line, is hit by a client
//! written by hand over loopback, which gets the documented error while
//! the server logs the refusal (docs/LIMITS.md).

mod support;

use natter_net_real::secure_stream::SecureStream;
use std::net::SocketAddr;
use support::{Server, EVENT_TIMEOUT};
use tokio::net::TcpStream;

/// A client written by hand, as one in another language would be: the
/// Noise handshake of the server link, then JSON lines inside the
/// session. Blocking, on a runtime of its own, so the tests read top to
/// bottom; every read is hang-guarded.
struct Client {
    runtime: tokio::runtime::Runtime,
    session: SecureStream<TcpStream>,
}

impl Client {
    /// Connects and completes the handshake: the server has opened (and
    /// counted) the connection when this returns.
    fn connect(addr: SocketAddr) -> Client {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let session = runtime.block_on(async {
            let stream = TcpStream::connect(addr).await.expect("connect");
            let identity = support::new_identity();
            support::secure_client(stream, &identity)
                .await
                .expect("the handshake")
        });
        Client { runtime, session }
    }

    /// Sends `text` in the session; a server that already closed makes
    /// this fail, which the reads that follow show.
    fn send(&mut self, text: &str) {
        let _ = self.runtime.block_on(self.session.send(text.as_bytes()));
    }

    /// Lines until the server closes the session.
    fn read_to_close(&mut self) -> Vec<String> {
        let read = support::lines_until_close(&mut self.session);
        self.runtime
            .block_on(async { tokio::time::timeout(EVENT_TIMEOUT, read).await })
            .unwrap_or_else(|_| panic!("no close within {EVENT_TIMEOUT:?}"))
    }

    fn read_line(&mut self) -> String {
        let read = self.session.recv_line();
        let line = self
            .runtime
            .block_on(async { tokio::time::timeout(EVENT_TIMEOUT, read).await });
        line.expect("a reply in time")
            .expect("a line")
            .expect("the session still open")
    }
}

/// Our hello, and the server's answer to it: the same line.
const HELLO: &str = "{\"type\":\"hello\",\"version\":2,\"min_version\":2,\"features\":[]}";

fn line(frame: &str) -> String {
    format!("{frame}\n")
}

#[test]
fn max_per_ip_flag_limits_connections_from_one_address() {
    let mut server = Server::start_with(&["--max-per-ip", "2"]);
    let _a = Client::connect(server.addr);
    let _b = Client::connect(server.addr);
    // The third gets its handshake, then the refusal as its first and
    // only frame, before it said anything.
    let mut third = Client::connect(server.addr);
    let lines = third.read_to_close();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("{\"type\":\"error\",\"code\":\"too_many_connections\",\"message\":\"2 connections from 127.0.0.1 already"),
        "{lines:?}"
    );
    server.expect_log(&[("change", "refused"), ("code", "too_many_connections")]);
}

#[test]
fn register_timeout_flag_drops_a_client_that_never_registers() {
    let mut server = Server::start_with(&["--register-timeout", "300ms"]);
    let mut silent = Client::connect(server.addr);
    silent.send(&line(HELLO));
    let lines = silent.read_to_close();
    assert_eq!(lines[0], HELLO);
    assert!(
        lines[1].starts_with("{\"type\":\"error\",\"code\":\"timeout\""),
        "{lines:?}"
    );
    server.expect_log(&[("change", "refused"), ("code", "timeout")]);
}

#[test]
fn request_burst_and_rate_flags_limit_list_spam() {
    let mut server = Server::start_with(&["--request-burst", "3", "--request-rate", "1"]);
    let mut spam = Client::connect(server.addr);
    spam.send(&line(HELLO));
    spam.send("{\"type\":\"register\",\"name\":\"spam\",\"port\":4000}\n");
    spam.send("{\"type\":\"list\"}\n{\"type\":\"list\"}\n{\"type\":\"list\"}\n");
    let lines = spam.read_to_close();
    let last = lines.last().expect("an error");
    assert!(
        last.contains("\"code\":\"rate_limited\",\"message\":\"more than 3 requests in a burst or 1 per second"),
        "{lines:?}"
    );
    // Refused before or after its reachability check answered: the
    // refusal is logged either way.
    server.expect_log(&[("change", "refused"), ("code", "rate_limited")]);
}

#[test]
fn max_frame_flag_bounds_the_line_a_client_may_send() {
    let mut server = Server::start_with(&["--max-frame", "256"]);
    let mut long = Client::connect(server.addr);
    long.send(&"x".repeat(300));
    let lines = long.read_to_close();
    assert!(
        lines[0].starts_with("{\"type\":\"error\",\"code\":\"frame_too_long\""),
        "{lines:?}"
    );
    server.expect_log(&[("change", "refused"), ("code", "frame_too_long")]);
    // A frame under the limit is still fine.
    let mut ok = Client::connect(server.addr);
    ok.send(&line(HELLO));
    assert_eq!(ok.read_line(), HELLO);
}

#[test]
fn zero_or_nonsense_limits_are_refused_at_start() {
    for args in [
        &["--register-timeout", "0s"][..],
        &["--idle-timeout", "5s"][..],
        &["--max-per-ip", "0"][..],
        &["--max-frame", "10"][..],
        &["--request-rate", "fast"][..],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_natter"))
            .arg("server")
            .args(args)
            .output()
            .expect("run natter");
        assert!(!out.status.success(), "{args:?} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(args[0]), "{args:?}: {stderr}");
    }
}

#[test]
fn ring_timeout_flag_ends_an_unanswered_call() {
    let dirs = tempfile::tempdir().unwrap();
    let server = Server::start();
    let mut alice = support::peer(
        "alice",
        server.addr,
        &dirs.path().join("alice"),
        &["--ring-timeout", "300ms"],
    );
    alice.expect_event("registered");
    let (mut bob, _) = support::registered_peer("bob", server.addr, &dirs.path().join("bob"));
    alice.send("/connect bob");
    bob.expect_event("incoming");
    let no_answer = alice.expect_event("no_answer");
    assert_eq!(no_answer["peer"], "bob");
}
