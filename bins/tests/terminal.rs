//! `natter peer` on a terminal, as a person uses it: the real binary in a
//! pseudo-terminal, its screen (the full-screen UI) read through a
//! terminal emulator, and a partner (`--json`, on pipes) on the other end
//! of the chat. The frames themselves are snapshot-tested in src/ui/.
//!
//! Unix only: pseudo-terminals, job control and signals.

#![cfg(unix)]

#[path = "support/pty.rs"]
mod pty;
mod support;

use pty::{Term, Width};
use std::net::SocketAddr;
use std::path::Path;
use support::{registered_peer, Proc, Server};

/// `natter peer --name NAME` in a terminal `columns` wide, 30 rows tall.
fn peer_in_terminal(
    name: &str,
    server: SocketAddr,
    dir: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
    columns: u16,
) -> Term {
    let server = server.to_string();
    let dir = dir.to_str().expect("utf-8 temp path");
    let mut args = vec![
        "peer",
        "--name",
        name,
        "--server",
        &server,
        "--transcripts",
        dir,
    ];
    args.extend_from_slice(extra);
    Term::natter(&args, env, columns, 30)
}

/// The input row (the last), once the screen is on: `PROMPT> DRAFT`,
/// trailing blanks aside.
fn wait_input(term: &Term, input: &str) {
    term.wait_for(&format!("the input row {input:?}"), |rows| {
        rows.last().map(|r| r.trim_end()) == Some(input)
    });
}

/// The screen is on once registered: the roster's title names us.
fn wait_screen(term: &Term, name: &str) {
    term.wait_text(&format!("natter · {name}"));
    wait_input(term, ">");
}

/// alice in an 80-column terminal, at her prompt, then chatting with
/// bob (who runs with `--json`).
fn chatting_in_terminal(server: &Server, dir: &Path, bob: &mut Proc) -> Term {
    let alice = peer_in_terminal("alice", server.addr, &dir.join("alice"), &[], &[], 80);
    wait_screen(&alice, "alice");
    chat(&alice, bob);
    alice
}

/// alice (in the terminal) calls bob, who accepts.
fn chat(alice: &Term, bob: &mut Proc) {
    alice.send("/connect bob\r");
    assert_eq!(bob.expect_event("incoming")["peer"], "alice");
    bob.send("/accept");
    bob.expect_event("chat_started");
    alice.wait_text("chatting with bob");
}

#[test]
fn a_bracketed_paste_of_three_lines_sends_three_messages_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    let (mut bob, _) = registered_peer("bob", server.addr, &dir.path().join("bob"));
    let alice = chatting_in_terminal(&server, dir.path(), &mut bob);

    alice.send("\x1b[200~one\ntwo\r\nthree\n\x1b[201~");
    for (n, text) in [(1, "one"), (2, "two"), (3, "three")] {
        let message = bob.expect_event("message");
        assert_eq!(
            (message["n"].as_u64(), message["text"].as_str()),
            (Some(n), Some(text))
        );
    }
    alice.wait_text("you: three ✓");
    for text in ["you: one ✓", "you: two ✓"] {
        alice.wait_text(text);
    }
    assert!(alice.is_raw(), "still editing after the paste");
}

/// Narrowing the window re-wraps (or cuts) the rows; the screen is drawn
/// anew for the new size, every message once and the draft kept.
fn resizing_keeps_messages_and_one_draft(width: Width) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    let (mut bob, _) = registered_peer("bob", server.addr, &dir.path().join("bob"));
    let alice = chatting_in_terminal(&server, dir.path(), &mut bob);
    bob.send("first message");
    alice.wait_text("bob: first message");

    let draft = format!("draft:{}", "z".repeat(60));
    alice.send(&draft);
    alice.wait_text(&draft);
    alice.resize(40, 30, width);
    bob.send("second message");
    alice.wait_text("bob: second message");
    alice.resize(100, 30, width);
    bob.send("third message");
    let input_row = format!("bob> {draft}");
    alice.wait_for(
        "every message once, the draft once, on the input row",
        |rows| {
            let once = |text: &str| rows.iter().filter(|r| r.contains(text)).count() == 1;
            once("bob: first message")
                && once("bob: second message")
                && once("bob: third message")
                && once("zzzz")
                && rows.last().map(|r| r.trim_end()) == Some(input_row.as_str())
        },
    );
    // And the draft is still the draft.
    alice.send("\r");
    assert_eq!(bob.expect_event("message")["text"], draft);
}

#[test]
fn resizing_a_rewrapping_terminal_keeps_every_message_and_one_draft() {
    resizing_keeps_messages_and_one_draft(Width::Rewrap);
}

#[test]
fn resizing_a_cutting_terminal_keeps_every_message_and_one_draft() {
    resizing_keeps_messages_and_one_draft(Width::Cut);
}

#[test]
fn ctrl_z_then_fg_gives_the_screen_and_the_draft_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    let shell = Term::shell(80, 30);
    shell.wait_text("$");
    shell.send(&format!(
        "{} peer --name alice --server {} --transcripts {}\r",
        env!("CARGO_BIN_EXE_natter"),
        server.addr,
        dir.path().display()
    ));
    wait_screen(&shell, "alice");
    shell.send("/he");
    wait_input(&shell, "> /he");

    shell.send("\x1a");
    shell.wait_text("Stopped");
    shell.wait_for("the shell's prompt", |rows| {
        rows.iter()
            .rev()
            .find(|r| !r.is_empty())
            .map(String::as_str)
            == Some("$")
    });
    shell.send("fg\r");
    wait_input(&shell, "> /he");
    assert!(shell.is_raw(), "raw mode again after fg");
    shell.send("lp\r");
    shell.wait_text("commands:");
    shell.send("/quit\r");
    shell.wait_for("the shell's prompt after quitting", |rows| {
        rows.iter()
            .rev()
            .find(|r| !r.is_empty())
            .map(String::as_str)
            == Some("$")
    });
}

#[test]
fn ctrl_c_clears_the_draft_and_a_second_ctrl_c_quits() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start();
    let (mut bob, _) = registered_peer("bob", server.addr, &dir.path().join("bob"));
    let mut alice = chatting_in_terminal(&server, dir.path(), &mut bob);

    alice.send("half typed");
    wait_input(&alice, "bob> half typed");
    alice.send("\x03");
    wait_input(&alice, "bob>");
    // Still in the chat, and the draft is gone: only what follows is sent.
    alice.send("sent\r");
    assert_eq!(bob.expect_event("message")["text"], "sent");

    alice.send("\x03");
    alice.send("\x03");
    assert_eq!(bob.expect_event("chat_ended")["reason"], "peer_left");
    server.expect_log(&[("change", "deregistered"), ("name", "alice")]);
    assert_eq!(alice.wait_exit().code(), Some(0));
}

#[test]
fn term_dumb_falls_back_to_a_plain_line_mode() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    let (mut bob, _) = registered_peer("bob", server.addr, &dir.path().join("bob"));
    let alice = peer_in_terminal(
        "alice",
        server.addr,
        &dir.path().join("alice"),
        &[],
        &[("TERM", "dumb")],
        80,
    );
    alice.wait_text("registered as alice");
    alice.wait_text("alice>");
    assert!(!alice.is_raw(), "the terminal edits the line itself");
    plain_chat(&alice, &mut bob);
}

#[test]
fn plain_keeps_a_line_mode_on_any_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    let (mut bob, _) = registered_peer("bob", server.addr, &dir.path().join("bob"));
    let alice = peer_in_terminal(
        "alice",
        server.addr,
        &dir.path().join("alice"),
        &["--plain"],
        &[],
        80,
    );
    alice.wait_text("alice>");
    assert!(!alice.is_raw(), "the terminal edits the line itself");
    plain_chat(&alice, &mut bob);
}

/// A chat in the plain line mode: lines in, events as lines, no escape
/// sequences at all.
fn plain_chat(alice: &Term, bob: &mut Proc) {
    chat(alice, bob);
    alice.send("hello from a plain terminal\r");
    assert_eq!(
        bob.expect_event("message")["text"],
        "hello from a plain terminal"
    );
    bob.send("hi");
    alice.wait_text("[bob #1] hi");
    alice.send("/quit\r");
    bob.expect_event("chat_ended");
    let received = alice.received();
    assert!(
        !received.contains('\x1b'),
        "no escape sequence in plain mode: {received:?}"
    );
}
