//! How a peer's transcript lines reach the disk: lines the peer has at
//! once go out in one write (issue 13: a burst of messages cost one
//! system call per line, on both sides).
//!
//! The production drivers run in-process over real loopback sockets, on
//! one thread: lines typed without an `.await` in between are all waiting
//! when the peer next runs.

use natter_core::Event;
use natter_net_real::{Disk, PeerBuilder, ServerBuilder, StdDisk, TokioNet, Transcripts};
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Only reached when something is broken.
const HANG_GUARD: Duration = Duration::from_secs(20);

/// The machine's disk, keeping a copy of every write.
#[derive(Clone, Default)]
struct Writes(Arc<Mutex<Vec<String>>>);

struct WritesFile(std::fs::File, Arc<Mutex<Vec<String>>>);

impl Write for WritesFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.0.write(buf)?;
        let text = String::from_utf8_lossy(&buf[..written]).into_owned();
        self.1.lock().unwrap().push(text);
        Ok(written)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl Disk for Writes {
    type File = WritesFile;
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        StdDisk.create_dir_all(dir)
    }
    fn is_dir(&self, path: &Path) -> bool {
        StdDisk.is_dir(path)
    }
    fn open_append(&self, path: &Path) -> io::Result<WritesFile> {
        Ok(WritesFile(StdDisk.open_append(path)?, Arc::clone(&self.0)))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        StdDisk.remove_file(path)
    }
    fn sync_data(&self, file: &WritesFile) -> io::Result<()> {
        StdDisk.sync_data(&file.0)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        StdDisk.sync_dir(dir)
    }
}

#[test]
fn lines_appended_together_go_out_in_one_write_each_with_its_newline() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Writes::default();
    let mut t = Transcripts::on(disk.clone(), dir.path());
    t.prepare().unwrap();
    disk.0.lock().unwrap().clear();
    t.append_all("a.log", &["one", "two", "three"]).unwrap();
    t.append("a.log", "four").unwrap();
    assert_eq!(
        *disk.0.lock().unwrap(),
        ["one\ntwo\nthree\n", "four\n"],
        "one write per call"
    );
    let a = std::fs::read_to_string(dir.path().join("a.log")).unwrap();
    assert_eq!(a, "one\ntwo\nthree\nfour\n");
}

#[tokio::test]
async fn messages_typed_together_are_written_to_the_transcript_in_one_write() {
    let dirs = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new(TokioNet).spawn().await.unwrap();
    let disk = Writes::default();
    let mut alice = PeerBuilder::on_disk(
        TokioNet,
        "alice",
        server.addr(),
        disk.clone(),
        dirs.path().join("alice"),
    )
    .line_buffer(64)
    .spawn()
    .await
    .unwrap();
    let mut bob = PeerBuilder::new(TokioNet, "bob", server.addr(), dirs.path().join("bob"))
        .spawn()
        .await
        .unwrap();
    for peer in [&mut alice, &mut bob] {
        let registered = |e: &Event| matches!(e, Event::Registered { .. });
        peer.wait_for(HANG_GUARD, registered).await.unwrap();
    }
    alice.send("/connect bob").await.unwrap();
    let incoming = |e: &Event| matches!(e, Event::Incoming { .. });
    bob.wait_for(HANG_GUARD, incoming).await.unwrap();
    bob.send("/accept").await.unwrap();
    let started = |e: &Event| matches!(e, Event::ChatStarted { .. });
    alice.wait_for(HANG_GUARD, started).await.unwrap();

    // Ten messages typed at once (a paste, a script): all ten wait when
    // alice's peer next runs.
    for n in 1..=10 {
        alice.try_send(&format!("message {n}")).unwrap();
    }
    let tenth = |e: &Event| matches!(e, Event::Delivered { n: 10, .. });
    alice.wait_for(HANG_GUARD, tenth).await.unwrap();

    let writes = disk.0.lock().unwrap().clone();
    let first = writes
        .iter()
        .find(|w| w.contains(" sent #1: "))
        .expect("the first message's line");
    for n in 1..=10 {
        assert!(
            first.contains(&format!(" sent #{n}: message {n}\n")),
            "sent #{n} is not in the write of sent #1: {writes:#?}"
        );
    }
    server.stop(HANG_GUARD).await.unwrap();
}
