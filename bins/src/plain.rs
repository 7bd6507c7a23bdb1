//! `--plain`: the line mode for a terminal that cannot take the editor
//! (`TERM=dumb`, an Emacs shell buffer, an editor that failed to start), or
//! for whoever prefers it. The terminal stays as it is (no raw mode, no
//! escape sequences): it edits the line itself and hands it over on Enter,
//! and events are printed as lines, each burst followed by a prompt.
//!
//! An event arriving while a line is half typed is printed below it; what
//! was typed is not lost (the terminal still holds it), only split on
//! screen. That is the price of not taking the terminal over.

use crate::input::{self, Interrupt};
use crate::render;
use natter_core::Event;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::mpsc;

/// Starts reading lines and printing events; the returned thread ends once
/// the last event is printed.
pub fn start(
    name: &str,
    lines: mpsc::Sender<crate::input::Typed>,
    events: mpsc::Receiver<Event>,
) -> JoinHandle<()> {
    let prompt = Arc::new(Prompt {
        text: format!("{name}> "),
        pending: AtomicBool::new(false),
        input_ended: AtomicBool::new(false),
    });
    let reader = Arc::clone(&prompt);
    tokio::spawn(async move {
        let typed = || reader.pending.store(false, Ordering::Relaxed);
        input::read_stdin(lines, Interrupt::DiscardThenQuit, typed).await;
        reader.input_ended.store(true, Ordering::Relaxed);
    });
    std::thread::spawn(move || print_events(events, &prompt))
}

struct Prompt {
    text: String,
    /// Printed and not yet followed by a line break: the next event starts
    /// on a line of its own. Enter clears it (the terminal echoed the break).
    pending: AtomicBool,
    /// No more lines are read (the peer is quitting): no more prompts.
    input_ended: AtomicBool,
}

/// Prompts start once the peer is registered: before, the lines printed
/// are the start-up report, and a start-up error ends it.
fn print_events(mut events: mpsc::Receiver<Event>, prompt: &Prompt) {
    let mut out = std::io::stdout();
    let mut registered = false;
    let mut lines = render::Lines::default();
    while let Some(event) = events.blocking_recv() {
        // Presence keeps the full-screen UI's roster (and --json) up to
        // date; printed as lines it would flood the screen on a busy
        // server. Here /list shows who is online.
        if matches!(
            event,
            Event::PeerOnline { .. } | Event::PeerOffline { .. } | Event::PeerStatus { .. }
        ) {
            continue;
        }
        let mut text = String::new();
        if prompt.pending.swap(false, Ordering::Relaxed) {
            text.push('\n');
        }
        text.push_str(&lines.human(&event));
        text.push('\n');
        registered |= matches!(event, Event::Registered { .. });
        let reading = registered && !prompt.input_ended.load(Ordering::Relaxed);
        if reading && events.is_empty() {
            text.push_str(&prompt.text);
            prompt.pending.store(true, Ordering::Relaxed);
        }
        // A closed output is not a reason to stop: the peer goes on.
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
    if prompt.pending.load(Ordering::Relaxed) {
        let _ = writeln!(out);
    }
}
