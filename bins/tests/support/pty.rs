//! A pseudo-terminal for the terminal tests: natter (or a shell) runs on
//! its slave side exactly as in a terminal window, and everything it
//! writes goes through a terminal emulator (`vt100`), so a test reads the
//! screen a person would see, not a byte stream.
//!
//! Two things a real terminal does that the emulator does not, done here:
//! answering "where is the cursor?" (`ESC [ 6 n`), and re-wrapping the
//! lines when the window narrows or widens (tmux, VTE, kitty, iTerm2 do;
//! xterm cuts lines instead: [`Term::resize`] can do either).
//!
//! Waits poll nothing: the reader thread signals each chunk it took in, and
//! every wait has a generous deadline that only guards against a hang.

use std::fs::File;
use std::io::{Read, Write};
use std::num::NonZeroU16;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Hang guard for anything awaited on screen.
pub const SCREEN_TIMEOUT: Duration = Duration::from_secs(20);

const NATTER: &str = env!("CARGO_BIN_EXE_natter");

/// What the terminal shows, and whether the other side has closed.
struct Shown {
    parser: vt100::Parser,
    /// Every byte received, for failure messages.
    bytes: Vec<u8>,
    closed: bool,
}

pub struct Term {
    master: Arc<File>,
    child: Child,
    shown: Arc<(Mutex<Shown>, Condvar)>,
}

/// How the terminal treats its lines when its width changes.
#[derive(Clone, Copy)]
pub enum Width {
    /// Re-wrap each line to the new width (most terminals).
    Rewrap,
    /// Cut or extend each row (xterm).
    Cut,
}

fn size(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).expect("a size above zero")
}

impl Term {
    /// `natter` with these arguments, `TERM=xterm-256color` unless `env`
    /// says otherwise.
    pub fn natter(args: &[&str], env: &[(&str, &str)], columns: u16, rows: u16) -> Term {
        let mut command = Command::new(NATTER);
        command
            .args(args)
            .env("TERM", "xterm-256color")
            .env("XDG_DATA_HOME", super::support::data_home());
        command.envs(env.iter().copied());
        Term::spawn(command, columns, rows)
    }

    /// An interactive bash with job control and the prompt `$ `.
    pub fn shell(columns: u16, rows: u16) -> Term {
        let mut command = Command::new("bash");
        command
            .args(["--norc", "--noprofile", "-i"])
            .env("PS1", "$ ")
            .env("TERM", "xterm-256color")
            .env("XDG_DATA_HOME", super::support::data_home());
        Term::spawn(command, columns, rows)
    }

    fn spawn(mut command: Command, columns: u16, rows: u16) -> Term {
        let (mut master, mut slave) = (-1, -1);
        let window = libc::winsize {
            ws_row: rows,
            ws_col: columns,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two descriptors it opened into the ints.
        let opened = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &window,
            )
        };
        assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors are open and owned by nobody else.
        let (master, slave) = unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let stdio = || Stdio::from(slave.try_clone().expect("dup the pty slave"));
        command
            .stdin(stdio())
            .stdout(stdio())
            .stderr(stdio())
            .env_remove("RUST_LOG");
        // SAFETY: only async-signal-safe calls between fork and exec: a new
        // session whose controlling terminal is the pty (standard input).
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() == -1 || libc::ioctl(0, libc::TIOCSCTTY, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("start the program in the pty");
        drop(slave);
        let master = Arc::new(master);
        let shown = Arc::new((
            Mutex::new(Shown {
                parser: vt100::Parser::new(size(rows), size(columns), 0),
                bytes: Vec::new(),
                closed: false,
            }),
            Condvar::new(),
        ));
        let reader = (Arc::clone(&master), Arc::clone(&shown));
        std::thread::spawn(move || read_screen(&reader.0, &reader.1));
        Term {
            master,
            child,
            shown,
        }
    }

    /// Typed keys, or any bytes a terminal would send (`\x03` is Ctrl-C,
    /// `\r` Enter, `\x1b[200~…\x1b[201~` a bracketed paste).
    pub fn send(&self, bytes: &str) {
        (&*self.master)
            .write_all(bytes.as_bytes())
            .expect("write to the pty");
    }

    /// Everything the program wrote so far, escape sequences included.
    pub fn received(&self) -> String {
        String::from_utf8_lossy(&lock(&self.shown.0).bytes).into_owned()
    }

    /// Waits until `want` holds for the rows on screen.
    pub fn wait_for(&self, what: &str, want: impl Fn(&[String]) -> bool) {
        let deadline = now() + SCREEN_TIMEOUT;
        let (state, changed) = &*self.shown;
        let mut shown = lock(state);
        loop {
            let screen = shown.parser.screen();
            let columns = screen.size().1.get();
            let rows: Vec<String> = screen
                .rows(0, columns)
                .map(|row| row.trim_end().to_string())
                .collect();
            if want(&rows) {
                return;
            }
            let left = deadline.saturating_duration_since(now());
            if left.is_zero() || shown.closed {
                panic!(
                    "{} waiting for {what}; the screen:\n{}\nbytes received: {:?}",
                    if shown.closed {
                        "terminal closed"
                    } else {
                        "timed out"
                    },
                    rows.join("\n"),
                    String::from_utf8_lossy(&shown.bytes)
                );
            }
            shown = changed
                .wait_timeout(shown, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits until some row on screen contains `text`.
    pub fn wait_text(&self, text: &str) {
        self.wait_for(&format!("{text:?}"), |rows| {
            rows.iter().any(|row| row.contains(text))
        });
    }

    /// Changes the window size, as a person dragging its corner: the
    /// terminal re-wraps or cuts its lines, then the program gets SIGWINCH.
    pub fn resize(&self, columns: u16, rows: u16, width: Width) {
        let mut shown = lock(&self.shown.0);
        match width {
            Width::Cut => shown.parser.set_size(size(rows), size(columns)),
            Width::Rewrap => shown.parser = rewrapped(shown.parser.screen(), columns, rows),
        }
        let window = libc::winsize {
            ws_row: rows,
            ws_col: columns,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from the pointer.
        let set = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &window) };
        assert_eq!(set, 0, "TIOCSWINSZ: {}", std::io::Error::last_os_error());
    }

    /// Whether the terminal is in raw mode (no line editing by the
    /// terminal itself), as the program on it set it.
    pub fn is_raw(&self) -> bool {
        // SAFETY: tcgetattr fills the termios it is given.
        let mut modes: libc::termios = unsafe { std::mem::zeroed() };
        let got = unsafe { libc::tcgetattr(self.master.as_raw_fd(), &mut modes) };
        assert_eq!(got, 0, "tcgetattr: {}", std::io::Error::last_os_error());
        modes.c_lflag & libc::ICANON == 0
    }

    /// Waits for the program to exit: first for the terminal to close
    /// (the hang guard applies), then for its status.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let (state, changed) = &*self.shown;
        let deadline = now() + SCREEN_TIMEOUT;
        let mut shown = lock(state);
        while !shown.closed {
            let left = deadline.saturating_duration_since(now());
            assert!(
                !left.is_zero(),
                "the program did not exit; the screen:\n{}",
                shown.parser.screen().contents()
            );
            shown = changed
                .wait_timeout(shown, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(shown);
        self.child.wait().expect("wait for the program")
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        // A failed test must not leave processes behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The hang guard's clock: wall time, in a test process that never runs
/// under simulation.
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Feeds the emulator until the slave side is closed by everyone, and
/// answers cursor position requests as a terminal does.
fn read_screen(master: &File, shown: &(Mutex<Shown>, Condvar)) {
    const ASK_POSITION: &[u8] = b"\x1b[6n";
    let mut buf = [0u8; 4096];
    loop {
        let n = match (&*master).read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut state = lock(&shown.0);
        let mut chunk = &buf[..n];
        state.bytes.extend_from_slice(chunk);
        while let Some(at) = chunk
            .windows(ASK_POSITION.len())
            .position(|w| w == ASK_POSITION)
        {
            state.parser.process(&chunk[..at]);
            let (row, column) = state.parser.screen().cursor_position();
            let answer = format!("\x1b[{};{}R", row + 1, column + 1);
            let _ = (&*master).write_all(answer.as_bytes());
            chunk = &chunk[at + ASK_POSITION.len()..];
        }
        state.parser.process(chunk);
        shown.1.notify_all();
    }
    lock(&shown.0).closed = true;
    shown.1.notify_all();
}

/// The screen as a re-wrapping terminal shows it at a new width: each
/// logical line (rows joined where they wrapped) laid out again, the
/// cursor kept at its place in its line. Only for screens whose content
/// fits in the new height (the tests keep their terminals tall).
fn rewrapped(old: &vt100::Screen, columns: u16, rows: u16) -> vt100::Parser {
    let old_columns = old.size().1.get();
    let (cursor_row, cursor_column) = old.cursor_position();
    let texts: Vec<String> = old.rows(0, old_columns).collect();
    let last = texts
        .iter()
        .rposition(|t| !t.trim_end().is_empty())
        .unwrap_or(0)
        .max(usize::from(cursor_row));
    // (text, cursor offset in it)
    let mut lines: Vec<(String, Option<usize>)> = Vec::new();
    let mut line = String::new();
    let mut cursor = None;
    for (i, text) in texts.iter().enumerate().take(last + 1) {
        let text = if old.row_wrapped(i as u16) {
            text.clone()
        } else {
            text.trim_end().to_string()
        };
        if i == usize::from(cursor_row) {
            let offset = line.chars().count() + usize::from(cursor_column);
            cursor = Some(offset);
        }
        line.push_str(&text);
        if !old.row_wrapped(i as u16) || i == last {
            lines.push((std::mem::take(&mut line), cursor.take()));
        }
    }
    let mut parser = vt100::Parser::new(size(rows), size(columns), 0);
    let mut at = None;
    for (i, (text, cursor)) in lines.iter().enumerate() {
        if i > 0 {
            parser.process(b"\r\n");
        }
        match cursor {
            Some(offset) => {
                let mut chars: Vec<char> = text.chars().collect();
                chars.resize(chars.len().max(*offset), ' ');
                let before: String = chars[..*offset].iter().collect();
                let after: String = chars[*offset..].iter().collect();
                parser.process(before.as_bytes());
                at = Some(parser.screen().cursor_position());
                parser.process(after.trim_end().as_bytes());
            }
            None => parser.process(text.as_bytes()),
        }
    }
    let (row, column) = at.expect("the cursor was on screen");
    parser.process(format!("\x1b[{};{}H", row + 1, column + 1).as_bytes());
    parser
}
