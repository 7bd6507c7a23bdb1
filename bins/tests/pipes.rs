//! `natter` with its standard streams on pipes, as scripts use it: several
//! lines in one read, input already at end, and a reader that goes away.
//!
//! Unix only: SIGPIPE.

#![cfg(unix)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use support::{peer, registered_peer, Server, EVENT_TIMEOUT};

const NATTER: &str = env!("CARGO_BIN_EXE_natter");

#[test]
fn several_lines_arriving_in_one_read_are_each_sent_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    let (mut alice, _) = registered_peer("alice", server.addr, &dir.path().join("alice"));
    let (mut bob, _) = registered_peer("bob", server.addr, &dir.path().join("bob"));
    alice.send("/connect bob");
    bob.expect_event("incoming");
    bob.send("/accept");
    alice.expect_event("chat_started");

    let mut stdin = alice.take_stdin();
    stdin
        .write_all(b"one\ntwo\nthree\nfour\n")
        .expect("one write of four lines");
    stdin.flush().unwrap();
    for (n, text) in [(1, "one"), (2, "two"), (3, "three"), (4, "four")] {
        let message = bob.expect_event("message");
        assert_eq!(
            (message["n"].as_u64(), message["text"].as_str()),
            (Some(n), Some(text))
        );
    }
}

#[test]
fn a_peer_started_with_input_at_end_registers_reports_and_quits() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start();
    // The race was between registering and reading the end of input:
    // several starts, each must report.
    for round in 0..5 {
        let name = format!("early{round}");
        let mut p = peer(&name, server.addr, dir.path(), &[]);
        p.close_stdin();
        assert_eq!(p.expect_event("registered")["name"], name.as_str());
        assert_eq!(p.wait_exit().code(), Some(0));
        server.expect_log(&[("change", "deregistered"), ("name", &name)]);
    }
}

/// Runs `natter ARGS` with its output read by a reader that stops after
/// the first line, like `natter … | head -1`; returns the exit status once
/// it has ended, and its standard error. `after_first_line` (given that
/// line) makes the program write more.
fn piped_into_head(args: &[&str], after_first_line: impl FnOnce(&str)) -> (ExitStatus, String) {
    let mut child = Command::new(NATTER)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("RUST_LOG")
        .env("XDG_DATA_HOME", support::data_home())
        .spawn()
        .expect("start natter");
    let mut first = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut first).expect("a first line");
    assert!(!first.is_empty(), "no first line");
    drop(out);
    after_first_line(&first);
    let mut err = child.stderr.take().unwrap();
    let status = wait(child);
    let mut stderr = String::new();
    err.read_to_string(&mut stderr).unwrap();
    (status, stderr)
}

/// The exit status, within the hang guard (killed and failed past it).
fn wait(mut child: Child) -> ExitStatus {
    let pid = child.id();
    let (done, status) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait().expect("wait for natter"));
    });
    status.recv_timeout(EVENT_TIMEOUT * 2).unwrap_or_else(|_| {
        // SAFETY: kill only sends a signal to the process we started.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        panic!("natter went on writing into a closed pipe instead of exiting")
    })
}

fn assert_quiet(status: ExitStatus, stderr: &str) {
    assert!(!stderr.contains("panicked"), "a panic: {stderr}");
    assert!(!stderr.contains("Broken pipe"), "an error: {stderr}");
    assert_ne!(status.code(), Some(101), "{stderr}");
    assert!(
        status.success() || status.signal() == Some(libc::SIGPIPE),
        "{status:?}: {stderr}"
    );
}

#[test]
fn the_demo_piped_into_a_reader_that_stops_early_exits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let transcripts = dir.path().to_str().unwrap();
    let (status, stderr) = piped_into_head(&["demo", "--transcripts", transcripts], |_| {});
    assert_quiet(status, &stderr);
}

#[test]
fn the_server_piped_into_a_reader_that_stops_early_exits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let data_dir = data_dir.to_str().unwrap();
    let args = ["server", "--listen", "127.0.0.1:0", "--data-dir", data_dir];
    let (status, stderr) = piped_into_head(&args, |first| {
        // "… listening on 127.0.0.1:PORT, key fingerprint FINGERPRINT"
        let addr = first
            .split_once("listening on ")
            .and_then(|(_, rest)| rest.split(',').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {first:?}"));
        // A peer coming makes the server log a line into the closed pipe
        // (and die of it before answering, with the fix).
        let mut p = peer("alice", addr, dir.path(), &[]);
        p.expect("an answer", |_| true);
    });
    assert_quiet(status, &stderr);
}

/// SPEC: with `--json` every error is an event on standard output, a
/// wrong command line included.
#[test]
fn a_wrong_command_line_with_json_is_an_error_event_then_exit_2() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(["peer", "--json", "--no-such-flag"])
        .output()
        .expect("natter runs");
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let event: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(event["event"], "error");
    assert_eq!(event["code"], "bad_input");
    assert_eq!(event["detail"], "bad_arguments");
    assert!(
        event["problem"]
            .as_str()
            .unwrap()
            .contains("--no-such-flag"),
        "{event}"
    );
}
