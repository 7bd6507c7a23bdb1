//! The full-screen UI driven as a person would, in tmux: the real binary
//! in a tmux window, keys sent with `send-keys`, pastes with
//! `paste-buffer -p` (bracketed), the screen read with `capture-pane`.
//! Skipped, with a note, where tmux is not installed.

#![cfg(unix)]

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{registered_peer, Server};

/// A tmux server of the test's own (its own socket), killed at the end.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// `None` (and a note) when tmux is not installed.
    fn start() -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            eprintln!("note: tmux is not installed; skipping the tmux end-to-end test");
            return None;
        }
        Some(Tmux {
            socket: format!("natter-test-{}", std::process::id()),
        })
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `natter peer` for `name` in a window of its own, 100×24, with the
    /// keys every test's `name` has (the shared data home), so that the
    /// pins the partners keep stay right for the other tests.
    fn peer(&self, name: &str, server: &Server, dir: &Path) {
        let command = format!(
            "{} peer --name {name} --server {} --transcripts {}; sleep 60",
            env!("CARGO_BIN_EXE_natter"),
            server.addr,
            dir.join("transcripts").display(),
        );
        let data_home = format!("XDG_DATA_HOME={}", support::data_home().display());
        let size = ["-x", "100", "-y", "24"];
        let mut args = vec!["new-session", "-d", "-s", name];
        args.extend_from_slice(&size);
        args.extend_from_slice(&["-e", "TERM=xterm-256color", "-e", &data_home, &command]);
        self.run(&args);
    }

    fn keys(&self, name: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", name];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    fn screen(&self, name: &str) -> String {
        self.run(&["capture-pane", "-p", "-t", name])
    }

    /// Waits (10 s at most) until the screen of `name` shows `text`.
    fn wait(&self, name: &str, text: &str) -> String {
        self.wait_for(name, text, |screen| screen.contains(text))
    }

    fn wait_for(&self, name: &str, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = now() + Duration::from_secs(10);
        loop {
            let screen = self.screen(name);
            if want(&screen) {
                return screen;
            }
            assert!(
                now() < deadline,
                "{name}'s screen never showed {what:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

/// A real clock: these tests wait on a real process (clippy.toml forbids
/// it elsewhere, for the simulation's sake).
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

/// The last row: the input row, `PROMPT> DRAFT`.
fn input_row(screen: &str) -> String {
    screen.lines().last().unwrap_or("").trim_end().to_string()
}

#[test]
fn a_call_accepted_with_a_key_two_chats_a_paste_and_a_resize() {
    let Some(tmux) = Tmux::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    tmux.peer("alice", &server, &dir.path().join("alice"));
    tmux.peer("bob", &server, &dir.path().join("bob"));
    tmux.wait("alice", "natter · alice");
    tmux.wait("bob", "natter · bob");

    // Start: bob calls alice, who accepts with Alt-A.
    tmux.keys("bob", &["/connect alice", "Enter"]);
    tmux.wait("alice", "☎ bob calls: Alt-A accept, Alt-R reject");
    tmux.keys("alice", &["M-a"]);
    tmux.wait("alice", "bob · chatting");
    tmux.wait("bob", "alice · chatting");
    tmux.keys("bob", &["hello alice", "Enter"]);
    tmux.wait("alice", "bob: hello alice");
    tmux.wait("bob", "you: hello alice ✓");

    // A second chat: carol (a --json peer) calls too; accepted as well.
    let (mut carol, _) = registered_peer("carol", server.addr, &dir.path().join("carol"));
    carol.send("/connect alice");
    tmux.wait("alice", "☎ carol calls");
    tmux.keys("alice", &["M-a"]);
    carol.expect_event("chat_started");
    tmux.wait("alice", "carol · chatting");
    carol.send("are you there?");
    tmux.wait("alice", "carol: are you there?");

    // Switch chats: Alt-2 shows bob's pane, where typing goes to bob.
    tmux.keys("alice", &["M-2"]);
    tmux.wait("alice", "bob · chatting");
    tmux.keys("alice", &["just bob", "Enter"]);
    tmux.wait("bob", "alice: just bob");

    // Paste three lines into carol's pane: three messages, in order.
    tmux.keys("alice", &["M-3"]);
    tmux.wait("alice", "carol · chatting");
    tmux.run(&["set-buffer", "one\ntwo\nthree\n"]);
    tmux.run(&["paste-buffer", "-p", "-t", "alice"]);
    for (n, text) in [(1, "one"), (2, "two"), (3, "three")] {
        let message = carol.expect_event("message");
        assert_eq!(
            (message["n"].as_u64(), message["text"].as_str()),
            (Some(n), Some(text))
        );
    }
    tmux.wait("alice", "you: three ✓");

    // Resize with a draft: narrow gives tabs, wide the roster; the draft
    // is kept throughout and goes out whole.
    tmux.keys("alice", &["a draft kept across resizes"]);
    tmux.wait_for("alice", "the draft", |s| {
        input_row(s) == "carol> a draft kept across resizes"
    });
    tmux.run(&["resize-window", "-t", "alice", "-x", "40", "-y", "20"]);
    let narrow = tmux.wait("alice", "1 natter│2 bob ●│3 carol ●");
    assert!(input_row(&narrow).starts_with("carol> "), "{narrow}");
    tmux.run(&["resize-window", "-t", "alice", "-x", "100", "-y", "24"]);
    tmux.wait_for("alice", "the roster and the whole draft back", |s| {
        s.contains("natter · alice") && input_row(s) == "carol> a draft kept across resizes"
    });
    tmux.keys("alice", &["Enter"]);
    assert_eq!(
        carol.expect_event("message")["text"],
        "a draft kept across resizes"
    );
    println!("alice's screen:\n{}", tmux.screen("alice"));
}
