//! The user's lines on their way to the peer: the one step that hands a
//! typed line over, and the reader of standard input (a pipe, or a
//! terminal in `--plain` mode; the raw-mode editor is `terminal.rs`).

use natter_core::command::{self, Command};
use natter_core::Problem;
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

/// A typed line, parsed once: a command for the peer, or why it is none.
pub type Typed = Result<Command, Problem>;

/// Longest line taken from standard input; the rest of a longer line is
/// dropped (the message is then refused as too long anyway).
const MAX_INPUT_LINE: usize = 64 * 1024;

/// Hands one typed line to the peer: every input mode goes through here.
/// Returns whether to read on: not once the peer is gone, nor after
/// `/quit` (whatever follows would only be refused).
pub async fn hand_over(lines: &mpsc::Sender<Typed>, line: String) -> bool {
    let typed = command::parse(&line);
    let quit = matches!(typed, Ok(Command::Quit));
    lines.send(typed).await.is_ok() && !quit
}

/// What Ctrl-C (SIGINT) does while lines come from standard input.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// A script's Ctrl-C: quit, as the end of input does (its user expects
    /// a goodbye, not a vanished peer).
    Quit,
    /// The plain line mode's, as in the editor: the terminal has already
    /// discarded the line being typed; a second Ctrl-C in a row quits.
    DiscardThenQuit,
}

/// Feeds standard input to the peer line by line. Lines are bounded and need not be UTF-8 (invalid bytes become U+FFFD);
/// several lines arriving in one read are each taken, in order. The end of
/// input closes the channel, which the peer takes as `/quit`; so does
/// Ctrl-C (see [`Interrupt`]), and a Ctrl-C after that exits at once.
/// `typed` is told of every line read.
pub async fn read_stdin(lines: mpsc::Sender<Typed>, interrupt: Interrupt, typed: impl Fn()) {
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let mut line = Vec::new();
    let mut interrupted = false;
    loop {
        let complete = tokio::select! {
            biased;
            _ = tokio::signal::ctrl_c() => {
                if interrupt == Interrupt::DiscardThenQuit && !interrupted {
                    interrupted = true;
                    eprintln!("\nnatter: line discarded; Ctrl-C again (or /quit) quits");
                    continue;
                }
                return leave_on_interrupt();
            }
            complete = read_line(&mut stdin, &mut line) => complete,
        };
        interrupted = false;
        if !complete && line.is_empty() {
            return;
        }
        typed();
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']).to_string();
        if !hand_over(&lines, text).await || !complete {
            return;
        }
    }
}

/// Returning drops the line sender: the peer quits. One more Ctrl-C exits
/// at once.
fn leave_on_interrupt() {
    eprintln!("natter: interrupted; leaving (Ctrl-C again to exit at once)");
    tokio::spawn(async {
        let _ = tokio::signal::ctrl_c().await;
        std::process::exit(130);
    });
}

/// Reads one line into `line` (cleared first), keeping at most
/// [`MAX_INPUT_LINE`] bytes of it. False when input ended (or failed)
/// before a newline.
async fn read_line(stdin: &mut tokio::io::BufReader<tokio::io::Stdin>, line: &mut Vec<u8>) -> bool {
    line.clear();
    loop {
        let buf = match stdin.fill_buf().await {
            Ok(buf) => buf,
            Err(_) => return false,
        };
        if buf.is_empty() {
            return false;
        }
        let (chunk, found) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let room = MAX_INPUT_LINE.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = chunk.len();
        stdin.consume(used);
        if found {
            return true;
        }
    }
}
