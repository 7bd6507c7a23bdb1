//! Driver-level limits: what the production server loop does with a client
//! that never reads its replies.
//!
//! The sockets are in-memory pipes with a 64-byte buffer (`tokio::io::
//! duplex`), handed to the server (`ServerBuilder::spawn_on`) through a listener fed by the test: a
//! client that stops reading then blocks the server's writes after a few
//! bytes, as a real TCP peer does once the kernel buffers are full, without
//! sending megabytes first. The clients speak the server link's Noise
//! session (`support::register`). Nothing sleeps; every wait has a hang
//! guard.

mod support;

use natter_core::RegistryConfig;
use natter_net_real::link::WRITE_QUEUE;
use natter_net_real::secure_stream::SecureReader;
use natter_net_real::{Listener, Net, ServerBuilder, ServerHandle};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use support::{identity, register, HANG_GUARD};
use tokio::io::{AsyncRead, DuplexStream};
use tokio::sync::{mpsc, Mutex};

/// A network whose connections the test makes by hand.
#[derive(Clone)]
struct PipeNet;

struct PipeListener {
    incoming: Arc<Mutex<mpsc::Receiver<(DuplexStream, SocketAddr)>>>,
}

impl Listener for PipeListener {
    type Stream = DuplexStream;
    async fn accept(&self) -> io::Result<(DuplexStream, SocketAddr)> {
        match self.incoming.lock().await.recv().await {
            Some(pair) => Ok(pair),
            None => std::future::pending().await,
        }
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::from(([10, 0, 0, 1], 4201)))
    }
}

impl Net for PipeNet {
    type Stream = DuplexStream;
    type Listener = PipeListener;
    async fn bind(&self, _: SocketAddr) -> io::Result<PipeListener> {
        Err(io::ErrorKind::Unsupported.into())
    }
    async fn connect(&self, _: SocketAddr) -> io::Result<DuplexStream> {
        Err(io::ErrorKind::ConnectionRefused.into())
    }
    fn wall_clock(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_068_934)
    }
}

/// A running in-process server and the means to connect to it.
struct TestServer {
    connect: mpsc::Sender<(DuplexStream, SocketAddr)>,
    server: ServerHandle,
}

impl TestServer {
    fn start(config: RegistryConfig) -> Self {
        let (connect, incoming) = mpsc::channel(8);
        let listener = PipeListener {
            incoming: Arc::new(Mutex::new(incoming)),
        };
        let server = ServerBuilder::new(PipeNet)
            .config(config)
            .logs()
            .spawn_on(listener);
        Self { connect, server }
    }

    /// A client at `from`; returns our end of the pipe.
    async fn client(&self, from: &str) -> DuplexStream {
        let (ours, theirs) = tokio::io::duplex(64);
        self.connect
            .send((theirs, from.parse().unwrap()))
            .await
            .expect("server running");
        ours
    }

    /// Waits for a log line starting with `prefix`; returns it.
    async fn expect_log(&mut self, prefix: &str) -> String {
        self.server
            .wait_for_log(HANG_GUARD, |line| line.starts_with(prefix))
            .await
            .unwrap()
    }

    async fn stop(self) {
        self.server.stop(HANG_GUARD).await.unwrap();
    }
}

/// Reads lines until one contains `needle`; returns it.
async fn read_until<R: AsyncRead + Unpin>(reader: &mut SecureReader<R>, needle: &str) -> String {
    let wait = async {
        loop {
            let line = reader.recv_line().await.expect("read");
            let line = line.unwrap_or_else(|| panic!("closed while waiting for {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    };
    tokio::time::timeout(HANG_GUARD, wait)
        .await
        .unwrap_or_else(|_| panic!("no {needle:?} within {HANG_GUARD:?}"))
}

/// One ping frame: never rate limited, always answered.
const PING: &[u8] = b"{\"type\":\"ping\"}\n";

#[tokio::test]
async fn a_client_that_never_reads_is_dropped_with_a_logged_reason_and_others_go_on() {
    let mut server = TestServer::start(RegistryConfig::default());

    // A well-behaved client, registered first.
    let calm = server.client("10.0.0.10:5000").await;
    let (answer, calm) = register(calm, &identity("calm"), "calm", 4000).await;
    assert_eq!(answer["type"], "registered", "{answer}");
    let (mut calm_read, mut calm_write) = calm.into_split();
    server.expect_log("calm registered").await;

    // The hog registers, then sends pings and never reads a single pong:
    // every pong it does not read stays queued.
    let hog = server.client("10.0.0.9:5000").await;
    let (answer, hog) = register(hog, &identity("hog"), "hog", 4000).await;
    assert_eq!(answer["type"], "registered", "{answer}");
    let (_hog_unread, mut hog_write) = hog.into_split();
    server.expect_log("hog registered").await;
    let flood = tokio::spawn(async move {
        let mut pings = 0u64;
        // Ends when the server cuts the link (the write fails).
        while hog_write.send(PING).await.is_ok() {
            pings += 1;
        }
        pings
    });

    let dropped = server.expect_log("dropped ").await;
    assert_eq!(
        dropped,
        format!("dropped 10.0.0.9:5000: not reading (write queue of {WRITE_QUEUE} frames full)")
    );
    server
        .expect_log("hog has disconnected (dropped: not reading)")
        .await;
    let pings = tokio::time::timeout(HANG_GUARD, flood)
        .await
        .expect("the hog's writes fail once it is cut off")
        .unwrap();
    assert!(
        pings >= WRITE_QUEUE as u64,
        "cut only once its queue was full ({pings} pings)"
    );

    // The other client never noticed: it is still served, and the hog is
    // gone from the directory.
    calm_write.send(b"{\"type\":\"list\"}\n").await.unwrap();
    let list = read_until(&mut calm_read, "\"peers\"").await;
    assert_eq!(list, "{\"type\":\"peers\",\"peers\":[],\"more\":false}");
    server.stop().await;
}

#[tokio::test]
async fn a_slow_client_that_reads_in_the_end_is_not_dropped() {
    // The guard must not cut a client that is merely behind: the same
    // pings, well under the queue, then read.
    let mut server = TestServer::start(RegistryConfig::default());
    let slow = server.client("10.0.0.9:5000").await;
    let (answer, slow) = register(slow, &identity("slow"), "slow", 4000).await;
    assert_eq!(answer["type"], "registered", "{answer}");
    server.expect_log("slow registered").await;
    let burst = WRITE_QUEUE / 2;
    let (mut read, mut write) = slow.into_split();
    // Everything is sent (and read by the server) before we read a byte.
    tokio::time::timeout(HANG_GUARD, write.send(&PING.repeat(burst)))
        .await
        .expect("the server reads while we do not")
        .unwrap();
    let mut pongs = 0;
    let wait = async {
        while pongs < burst {
            let line = read.recv_line().await.unwrap().expect("closed");
            if line == "{\"type\":\"pong\"}" {
                pongs += 1;
            }
        }
    };
    tokio::time::timeout(HANG_GUARD, wait)
        .await
        .expect("every pong arrives");
    assert_eq!(server.server.try_log(), None, "nothing logged: not dropped");
    server.stop().await;
}
