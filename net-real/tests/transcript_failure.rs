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
use natter_core::{ErrorCode, ErrorDetail, Event, Now};
use natter_net_real::{Net, PeerBuilder, PeerHandle, ServerBuilder, TokioNet};
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

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

/// Starts a peer; registered on return.
async fn start<N: Net>(net: N, name: &str, server: SocketAddr, dir: &Path) -> PeerHandle {
    let mut peer = PeerBuilder::new(net, name, server, dir)
        .spawn()
        .await
        .unwrap();
    expect(&mut peer, |e| matches!(e, Event::Registered { .. })).await;
    peer
}

/// The next event `want` accepts; others are kept in `seen`.
async fn expect(peer: &mut PeerHandle, want: impl Fn(&Event) -> bool) -> Event {
    peer.wait_for(HANG_GUARD, want).await.unwrap()
}

/// Ends input (`/quit`) and waits for the exit code; returns it with
/// every event the peer gave.
async fn quit(mut peer: PeerHandle) -> (i32, Vec<Event>) {
    peer.end_input();
    let code = peer.exited(HANG_GUARD).await.unwrap();
    let mut seen = peer.seen().to_vec();
    while let Some(event) = peer.next_event().await {
        seen.push(event);
    }
    (code, seen)
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

    let server = ServerBuilder::new(TokioNet).spawn().await.unwrap();
    let mut alice = start(TokioNet, "alice", server.addr(), &alice_dir).await;
    let mut bob = start(PinnedWallNet(wall), "bob", server.addr(), &bob_dir).await;

    alice.send("/connect bob").await.unwrap();
    expect(&mut bob, |e| matches!(e, Event::Incoming { .. })).await;
    bob.send("/accept").await.unwrap();
    expect(&mut bob, |e| matches!(e, Event::ChatStarted { .. })).await;
    // The chat's first line could not be written: said at once, with the
    // start of the chat.
    assert!(
        bob.seen()
            .iter()
            .any(|e| is_error(e, ErrorCode::TranscriptFailed)),
        "{:#?}",
        bob.seen()
    );
    expect(&mut alice, |e| matches!(e, Event::ChatStarted { .. })).await;

    alice.send("are you writing this down?").await.unwrap();
    expect(&mut alice, |e| matches!(e, Event::Sent { n: 1, .. })).await;
    let shown = expect(&mut bob, |e| matches!(e, Event::Message { .. })).await;
    assert!(matches!(shown, Event::Message { n: 1, .. }), "{shown:?}");
    let failed = expect(&mut bob, |e| is_error(e, ErrorCode::TranscriptFailed)).await;
    let Event::Error {
        detail: ErrorDetail::NotRecorded { peer, n, reason },
        ..
    } = failed
    else {
        panic!("{failed:?}")
    };
    assert_eq!((peer.as_str(), n), ("alice", 1));

    // No receipt came back: leaving waits its grace, then lists #1.
    alice.send("/leave").await.unwrap();
    let ended = expect(&mut alice, |e| matches!(e, Event::ChatEnded { .. })).await;
    assert!(
        matches!(&ended, Event::ChatEnded { undelivered, .. } if undelivered == &[1]),
        "{ended:?}"
    );
    let (alice_code, alice_events) = quit(alice).await;
    let (bob_code, _) = quit(bob).await;
    assert_eq!((alice_code, bob_code), (0, 0));
    assert!(
        !alice_events
            .iter()
            .any(|e| matches!(e, Event::Delivered { .. })),
        "a receipt for a message that was not recorded: {alice_events:#?}"
    );
    server.stop(HANG_GUARD).await.unwrap();
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
