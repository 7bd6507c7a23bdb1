//! The server's reachability probe over real sockets on loopback: a peer
//! that registers a port nobody listens on is listed as unreachable, one
//! with a listener as reachable, and a probe that never connects gives up
//! after the probe timeout. The clients speak the server link's Noise
//! session (`support::register`). Every wait has a hang guard; nothing
//! sleeps.

mod support;

use natter_core::protocol::ServerMsg;
use natter_core::RegistryConfig;
use natter_net_real::{Net, SecureStream, ServerBuilder, ServerHandle, TokioNet};
use serde_json::Value;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};
use support::{identity, HANG_GUARD};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// A server on a loopback port, running until dropped.
async fn start<N: Net>(net: N, config: RegistryConfig) -> ServerHandle {
    ServerBuilder::new(net)
        .config(config)
        .logs()
        .spawn()
        .await
        .unwrap()
}

/// The next line of the server's log.
async fn next_log(server: &mut ServerHandle) -> String {
    server.wait_for_log(HANG_GUARD, |_| true).await.unwrap()
}

/// Registers `name` (with a key of its own) with listening port `port`;
/// returns the `registered` answer and the connection (kept open so the
/// entry stays).
async fn register(server: SocketAddr, name: &str, port: u16) -> (Value, SecureStream<TcpStream>) {
    let stream = TcpStream::connect(server).await.unwrap();
    support::register(stream, &identity(name), name, port).await
}

/// A port on loopback that nobody listens on (bound, then released).
async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_peer_without_a_listener_is_unreachable_and_one_with_a_listener_is_reachable() {
    let mut server = start(TokioNet, RegistryConfig::default()).await;
    let (answer, _carol) = register(server.addr(), "carol", free_port().await).await;
    assert_eq!(answer["type"], "registered", "{answer}");
    assert_eq!(answer["reachable"], false, "{answer}");

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (answer, _alice) = register(server.addr(), "alice", port).await;
    assert_eq!(answer["type"], "registered", "{answer}");
    assert_eq!(answer["reachable"], true, "{answer}");
    // The probe connected, said nothing and hung up.
    let (mut probe, _) = tokio::time::timeout(HANG_GUARD, listener.accept())
        .await
        .expect("the probe's connection")
        .unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(HANG_GUARD, probe.read_to_end(&mut rest))
        .await
        .expect("the probe closes")
        .unwrap();
    assert!(rest.is_empty(), "the probe sends nothing");

    let carol = next_log(&mut server).await;
    assert!(
        carol.starts_with("carol registered at 127.0.0.1:")
            && carol.ends_with(", which the server cannot reach, and is available"),
        "{carol}"
    );
    assert_eq!(
        next_log(&mut server).await,
        format!("alice registered at 127.0.0.1:{port} and is available")
    );

    // A list shows both, each with what its probe found.
    let (_, mut bob) = register(server.addr(), "bob", free_port().await).await;
    bob.send(b"{\"type\":\"list\",\"id\":1}\n").await.unwrap();
    let line = tokio::time::timeout(HANG_GUARD, bob.recv_line())
        .await
        .expect("a list")
        .unwrap()
        .expect("not closed");
    let ServerMsg::Peers { id, peers, .. } = serde_json::from_str(&line).unwrap() else {
        panic!("{line}")
    };
    assert_eq!(id, Some(1));
    let reach: Vec<(&str, bool)> = peers
        .iter()
        .map(|p| (p.name.as_str(), p.reachable))
        .collect();
    assert_eq!(reach, [("alice", true), ("carol", false)]);
}

/// Loopback sockets, except that every outgoing connection hangs, as a
/// SYN into a NAT that drops it does.
#[derive(Clone)]
struct BlackholeNet;

impl Net for BlackholeNet {
    type Stream = TcpStream;
    type Listener = TcpListener;
    async fn bind(&self, addr: SocketAddr) -> io::Result<TcpListener> {
        TokioNet.bind(addr).await
    }
    async fn connect(&self, _: SocketAddr) -> io::Result<TcpStream> {
        std::future::pending().await
    }
    fn wall_clock(&self) -> SystemTime {
        TokioNet.wall_clock()
    }
}

#[tokio::test]
async fn a_probe_that_never_connects_gives_up_after_the_probe_timeout() {
    let timeout = Duration::from_millis(300);
    let server = start(
        BlackholeNet,
        RegistryConfig {
            probe_timeout: timeout,
            ..RegistryConfig::default()
        },
    )
    .await;
    let started = tokio::time::Instant::now();
    let (answer, _carol) = register(server.addr(), "carol", 4000).await;
    let took = started.elapsed();
    assert_eq!(answer["type"], "registered", "{answer}");
    assert_eq!(answer["reachable"], false, "{answer}");
    assert!(
        took >= timeout && took < timeout + Duration::from_secs(5),
        "answered after {took:?}"
    );
}
