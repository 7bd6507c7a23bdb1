//! A transcript that cannot be written (a full disk, a broken directory):
//! the receiver's user is told at once, and no receipt goes back for a
//! message that was not recorded, so the sender lists it as undelivered.
//!
//! The production drivers run in-process over real loopback sockets. The
//! tests run as root, so file permissions stop nothing: the receiver's
//! clock is pinned instead, which fixes its transcript's file name, and
//! that name is made unwritable beforehand — a symlink to `/dev/full`
//! (every write fails with ENOSPC) or a directory (the open fails).

#![cfg(unix)]

use natter_core::time::Instant;
use natter_core::transcript::file_name;
use natter_core::{ErrorCode, Event, Now, PeerConfig, RegistryConfig};
use natter_net_real::{run_peer, run_server, Listener, Net, TokioNet};
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot};

/// Only reached when something is broken.
const HANG_GUARD: Duration = Duration::from_secs(20);

/// Real sockets, a wall clock stopped at one instant.
#[derive(Clone, Copy)]
struct PinnedWallNet(SystemTime);

impl Net for PinnedWallNet {
    type Stream = <TokioNet as Net>::Stream;
    type Listener = <TokioNet as Net>::Listener;
    async fn bind(&self, addr: SocketAddr) -> io::Result<Self::Listener> {
        TokioNet.bind(addr).await
    }
    async fn connect(&self, addr: SocketAddr) -> io::Result<Self::Stream> {
        TokioNet.connect(addr).await
    }
    fn wall_clock(&self) -> SystemTime {
        self.0
    }
}

const PINNED_UNIX: u64 = 1_764_068_934;

/// One in-process peer: its lines in, its events out.
struct TestPeer {
    name: &'static str,
    lines: Option<mpsc::Sender<natter_core::Command>>,
    events: mpsc::UnboundedReceiver<Event>,
    seen: Vec<Event>,
    task: tokio::task::JoinHandle<i32>,
}

impl TestPeer {
    async fn start<N: Net>(net: N, name: &'static str, server: SocketAddr, dir: &Path) -> Self {
        let listener = net.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let config = PeerConfig::new(name, server, port);
        let (line_tx, line_rx) = mpsc::channel(16);
        let (event_tx, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(run_peer(
            net,
            listener,
            config,
            dir.to_path_buf(),
            line_rx,
            event_tx,
        ));
        Self {
            name,
            lines: Some(line_tx),
            events,
            seen: Vec::new(),
            task,
        }
    }

    async fn send(&self, line: &str) {
        self.lines
            .as_ref()
            .unwrap()
            .send(natter_core::command::parse(line).expect("a valid command"))
            .await
            .unwrap();
    }

    /// The next event `want` accepts; others are kept in `seen`.
    async fn expect(&mut self, what: &str, want: impl Fn(&Event) -> bool) -> Event {
        let wait = async {
            loop {
                let event = self.events.recv().await.expect("peer running");
                self.seen.push(event.clone());
                if want(&event) {
                    return event;
                }
            }
        };
        match tokio::time::timeout(HANG_GUARD, wait).await {
            Ok(event) => event,
            Err(_) => panic!("{}: no {what}; seen {:#?}", self.name, self.seen),
        }
    }

    /// Ends input (`/quit`) and waits for the exit code.
    async fn quit(mut self) -> (i32, Vec<Event>) {
        self.lines = None;
        let code = tokio::time::timeout(HANG_GUARD, self.task)
            .await
            .expect("peer exits")
            .unwrap();
        while let Ok(event) = self.events.try_recv() {
            self.seen.push(event);
        }
        (code, self.seen)
    }
}

fn is_error(event: &Event, code: ErrorCode) -> bool {
    matches!(event, Event::Error { code: c, .. } if *c == code)
}

/// alice sends bob one message while bob's transcript file, made
/// unwritable by `sabotage`, fails; returns bob's error about it.
async fn receiver_cannot_record(sabotage: impl FnOnce(&Path)) -> String {
    let dirs = tempfile::tempdir().unwrap();
    let (alice_dir, bob_dir) = (dirs.path().join("alice"), dirs.path().join("bob"));
    std::fs::create_dir_all(&bob_dir).unwrap();
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(PINNED_UNIX);
    let bobs_file = bob_dir.join(file_name(
        &Now::new(Instant::default(), wall),
        "bob",
        "alice",
    ));
    sabotage(&bobs_file);

    let listener = TokioNet.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let server_addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(run_server(
        TokioNet,
        listener,
        RegistryConfig::default(),
        None,
        async {
            let _ = stopped.await;
        },
    ));
    let mut alice = TestPeer::start(TokioNet, "alice", server_addr, &alice_dir).await;
    let mut bob = TestPeer::start(PinnedWallNet(wall), "bob", server_addr, &bob_dir).await;
    alice
        .expect("registered", |e| matches!(e, Event::Registered { .. }))
        .await;
    bob.expect("registered", |e| matches!(e, Event::Registered { .. }))
        .await;

    alice.send("/connect bob").await;
    bob.expect("incoming", |e| matches!(e, Event::Incoming { .. }))
        .await;
    bob.send("/accept").await;
    bob.expect("chat_started", |e| matches!(e, Event::ChatStarted { .. }))
        .await;
    // The chat's first line could not be written: said at once, with the
    // start of the chat.
    assert!(
        bob.seen
            .iter()
            .any(|e| is_error(e, ErrorCode::TranscriptFailed)),
        "{:#?}",
        bob.seen
    );
    alice
        .expect("chat_started", |e| matches!(e, Event::ChatStarted { .. }))
        .await;

    alice.send("are you writing this down?").await;
    alice
        .expect("sent", |e| matches!(e, Event::Sent { n: 1, .. }))
        .await;
    let shown = bob
        .expect("message", |e| matches!(e, Event::Message { .. }))
        .await;
    assert!(matches!(shown, Event::Message { n: 1, .. }), "{shown:?}");
    let failed = bob
        .expect("transcript_failed for #1", |e| {
            is_error(e, ErrorCode::TranscriptFailed)
        })
        .await;
    let Event::Error {
        detail: natter_core::ErrorDetail::NotRecorded { peer, n, reason },
        ..
    } = failed
    else {
        panic!("{failed:?}")
    };
    assert_eq!((peer.as_str(), n), ("alice", 1));

    // No receipt came back: leaving waits its grace, then lists #1.
    alice.send("/leave").await;
    let ended = alice
        .expect("chat_ended", |e| matches!(e, Event::ChatEnded { .. }))
        .await;
    assert!(
        matches!(&ended, Event::ChatEnded { undelivered, .. } if undelivered == &[1]),
        "{ended:?}"
    );
    let (alice_code, alice_events) = alice.quit().await;
    let (bob_code, _) = bob.quit().await;
    assert_eq!((alice_code, bob_code), (0, 0));
    assert!(
        !alice_events
            .iter()
            .any(|e| matches!(e, Event::Delivered { .. })),
        "a receipt for a message that was not recorded: {alice_events:#?}"
    );
    let _ = stop.send(());
    tokio::time::timeout(HANG_GUARD, server)
        .await
        .expect("server stops")
        .unwrap();
    reason
}

#[tokio::test]
async fn a_full_disk_is_reported_at_once_and_no_receipt_is_sent() {
    let reason = receiver_cannot_record(|file| {
        std::os::unix::fs::symlink("/dev/full", file).unwrap();
    })
    .await;
    assert!(reason.contains("No space left"), "{reason}");
}

#[tokio::test]
async fn an_unopenable_transcript_is_reported_at_once_and_no_receipt_is_sent() {
    let reason = receiver_cannot_record(|file| std::fs::create_dir(file).unwrap()).await;
    assert!(reason.contains("directory"), "{reason}");
}
