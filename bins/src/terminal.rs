//! The interactive terminal: a line editor whose prompt stays intact while
//! events arrive.
//!
//! rustyline's `ExternalPrinter` clears the prompt line, prints the event
//! above it and redraws what the user was typing, so an incoming message
//! never garbles the line being typed. The editor blocks, so it runs on its
//! own thread (this is the binary; the driver in `natter-net-real` stays
//! free of threads), and so does the printer, whose `print` may block.

use crate::render;
use natter_core::command::{self, Command};
use natter_core::Event;
use rustyline::error::ReadlineError;
use rustyline::{DefaultEditor, ExternalPrinter};
use std::thread::JoinHandle;
use tokio::sync::mpsc;

/// Starts the line editor and the event printer. The returned thread ends
/// once the last event is shown (the driver has dropped its sender).
///
/// The editor only starts once the peer is registered. Before that, the
/// only way out is a start-up error, after which the process exits at
/// once; a line editor in raw mode at that moment would leave the terminal
/// raw. After registration the peer only exits when the user quits, and
/// the editor stops reading as soon as the user asks for that.
pub fn start(
    name: &str,
    lines: mpsc::Sender<String>,
    events: mpsc::Receiver<Event>,
) -> Result<JoinHandle<()>, String> {
    let mut editor = DefaultEditor::new().map_err(|e| e.to_string())?;
    let printer = editor
        .create_external_printer()
        .map_err(|e| e.to_string())?;
    let (registered, wait_registered) = std::sync::mpsc::channel::<()>();
    let printer = std::thread::spawn(move || print_events(printer, events, registered));
    let prompt = format!("{name}> ");
    std::thread::spawn(move || {
        if wait_registered.recv().is_err() {
            return;
        }
        read_lines(editor, &prompt, lines)
    });
    Ok(printer)
}

fn print_events(
    mut printer: impl ExternalPrinter,
    mut events: mpsc::Receiver<Event>,
    registered: std::sync::mpsc::Sender<()>,
) {
    let mut registered = Some(registered);
    while let Some(event) = events.blocking_recv() {
        let text = format!("{}\n", render::human(&event));
        if printer.print(text.clone()).is_err() {
            print!("{text}");
        }
        if matches!(event, Event::Registered { .. }) {
            if let Some(start) = registered.take() {
                let _ = start.send(());
            }
        }
    }
}

fn read_lines(mut editor: DefaultEditor, prompt: &str, lines: mpsc::Sender<String>) {
    loop {
        match editor.readline(prompt) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                let quit = matches!(command::parse(&line), Ok(Command::Quit));
                if lines.blocking_send(line).is_err() || quit {
                    return;
                }
            }
            // Ctrl-D, Ctrl-C or a broken terminal: the end of input, which
            // natter treats as /quit (dropping `lines` says so).
            Err(ReadlineError::Eof | ReadlineError::Interrupted) => return,
            Err(e) => {
                eprintln!("natter: cannot read the terminal: {e}");
                return;
            }
        }
    }
}
