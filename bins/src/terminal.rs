//! The interactive terminal: a one-row line editor at the bottom, the
//! peer's events printed above it.
//!
//! Why an editor of our own on crossterm rather than rustyline: rustyline's
//! `ExternalPrinter` (events printed from another thread above the prompt)
//! erased a received message and left copies of the draft when the
//! terminal was resized, left a dead editor after Ctrl-Z and `fg`, and took
//! a bracketed paste of several lines as one line (refused for its line
//! breaks). Each fix needed its internals, while what natter needs is small
//! (one row, history, no completion), and crossterm is what the next
//! issue's full-screen UI (ratatui) is built on.
//!
//! How it holds together:
//! - The prompt row never wraps (see [`Draft::view`]), so redrawing it is
//!   "carriage return, draw, clear to the end of the row": nothing above it
//!   is ever touched, except on a resize that made the terminal re-wrap the
//!   prompt row itself ([`rows_above`]).
//! - Two threads draw, under one lock on [`Screen`]: the key reader
//!   (crossterm's blocking `read`) and the event printer. A third watches
//!   signals on unix.
//! - Raw mode starts once the peer is registered (a start-up error exits
//!   with the terminal untouched) and ends when input ends or the peer is
//!   done, on Ctrl-Z (SIGTSTP, then back on `fg`), on SIGTERM, SIGHUP or
//!   SIGINT, and in a panic. Raw mode turns Ctrl-C and Ctrl-Z into keys, so
//!   those are handled here, not by the terminal.

use crate::draft::{self, Draft};
use crate::input;
use crate::render;
use crossterm::cursor::{MoveToColumn, MoveUp};
use crossterm::event::{
    self, DisableBracketedPaste, EnableBracketedPaste, KeyCode, KeyEvent, KeyEventKind,
    KeyModifiers,
};
use crossterm::style::Print;
use crossterm::terminal::{self, Clear, ClearType};
use crossterm::{execute, queue};
use natter_core::Event;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::mpsc;

/// Whether the editor can run here: the terminal takes raw mode and tells
/// its size. When it cannot, natter uses the plain line mode instead.
pub fn probe() -> Result<(), String> {
    terminal::size().map_err(|e| e.to_string())?;
    terminal::enable_raw_mode().map_err(|e| e.to_string())?;
    terminal::disable_raw_mode().map_err(|e| e.to_string())
}

/// Starts the editor and the event printer. The returned thread ends once
/// the last event is shown (the driver has dropped its sender), with the
/// terminal given back.
pub fn start(
    name: &str,
    lines: mpsc::Sender<crate::input::Typed>,
    events: mpsc::Receiver<Event>,
) -> Result<JoinHandle<()>, String> {
    let screen = Arc::new(Shared {
        screen: Mutex::new(Screen::new(format!("{name}> "))),
        resized: Condvar::new(),
    });
    let input = Arc::new(Input(Mutex::new(Some(lines))));
    #[cfg(unix)]
    watch_signals(Arc::clone(&screen), Arc::clone(&input)).map_err(|e| e.to_string())?;
    give_back_on_panic();
    let runtime = tokio::runtime::Handle::current();
    let keys = Arc::clone(&screen);
    let (registered, wait_registered) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if wait_registered.recv().is_ok() {
            read_keys(&keys, &input, &runtime);
        }
    });
    Ok(std::thread::spawn(move || {
        print_events(&screen, events, registered)
    }))
}

/// The line channel, shared by the key reader and the signal watcher:
/// whichever ends the input first drops it (the peer then quits).
struct Input(Mutex<Option<mpsc::Sender<crate::input::Typed>>>);

impl Input {
    fn sender(&self) -> Option<mpsc::Sender<crate::input::Typed>> {
        lock(&self.0).clone()
    }

    /// Ends the input; false if it had already ended.
    fn end(&self) -> bool {
        lock(&self.0).take().is_some()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while drawing leaves a screen that is still usable.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The screen, drawn on by the key reader and the event printer.
struct Shared {
    screen: Mutex<Screen>,
    /// Notified when the key reader has handled a terminal event, a
    /// resize among them.
    resized: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Screen> {
        lock(&self.screen)
    }

    /// The screen once the editor has taken the terminal's width into
    /// account. Between a resize and its handling by the key reader (a few
    /// milliseconds), the prompt row may have been re-wrapped: printing
    /// then would leave its first rows behind, so the printer waits. If the
    /// key reader is held up (the peer not taking lines), the printer
    /// redraws for the new width itself after a second, without asking the
    /// terminal where the cursor is (only the key reader may read it).
    fn settled(&self) -> MutexGuard<'_, Screen> {
        let width =
            |screen: &Screen| terminal::size().map_or(screen.columns, |(columns, _)| columns);
        let mut screen = self.lock();
        for _ in 0..20 {
            if !screen.raw || width(&screen) == screen.columns {
                return screen;
            }
            screen = self
                .resized
                .wait_timeout(screen, Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if screen.raw {
            let columns = width(&screen);
            screen.resize(columns, None);
        }
        screen
    }
}

/// Prints every event; the editor starts once `registered` is shown: a
/// start-up error (which ends the process) then leaves the terminal as it
/// was.
fn print_events(
    screen: &Shared,
    mut events: mpsc::Receiver<Event>,
    registered: std::sync::mpsc::Sender<()>,
) {
    let mut registered = Some(registered);
    let mut lines = render::Lines::default();
    while let Some(event) = events.blocking_recv() {
        let text = lines.human(&event);
        screen.settled().print(&text);
        if matches!(event, Event::Registered { .. }) {
            if let Some(start) = registered.take() {
                let _ = start.send(());
            }
        }
    }
    screen.lock().finish();
}

fn read_keys(screen: &Shared, input: &Input, runtime: &tokio::runtime::Handle) {
    if input.sender().is_none() {
        return;
    }
    if let Err(e) = screen.lock().enter() {
        eprintln!("natter: cannot use the terminal ({e}); leaving");
        input.end();
        return;
    }
    'read: loop {
        let step = match event::read() {
            Ok(event) => {
                let step = screen.lock().handle(event);
                screen.resized.notify_all();
                step
            }
            Err(e) => {
                screen
                    .lock()
                    .print(&format!("natter: cannot read the terminal: {e}"));
                break;
            }
        };
        for line in step.lines {
            let Some(lines) = input.sender() else { return };
            if !runtime.block_on(input::hand_over(&lines, line)) {
                break 'read;
            }
        }
        match step.then {
            Then::Read => {}
            Then::Quit => break,
            Then::Suspend => suspend(screen),
        }
    }
    if input.end() {
        screen.lock().finish();
    }
}

/// Ctrl-Z, or a SIGTSTP sent by someone else: the terminal back to the
/// shell, stop until `fg`, then raw mode and the prompt again. The lock is
/// held throughout, so no event is printed in between. A process group
/// without job control (nobody to say `fg`) is not stopped at all, as with
/// any program, and the editor simply goes on.
fn suspend(screen: &Shared) {
    let mut screen = screen.lock();
    let was_raw = screen.raw;
    screen.leave();
    #[cfg(unix)]
    stop_as_by_default();
    if was_raw {
        if let Err(e) = screen.enter() {
            screen.print(&format!("natter: cannot take the terminal back: {e}"));
        }
    }
}

/// Stops the process as SIGTSTP's default action does, although SIGTSTP is
/// handled (so that a SIGTSTP from outside gets the terminal back first):
/// the default action for the time of one raise, then the handler again.
#[cfg(unix)]
fn stop_as_by_default() {
    // SAFETY: sigaction reads and writes plain sigaction structs; the
    // handler taken out is put back unchanged; raise signals this thread.
    unsafe {
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        let mut handler: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGTSTP, &default, &mut handler) != 0 {
            return;
        }
        libc::raise(libc::SIGTSTP);
        libc::sigaction(libc::SIGTSTP, &handler, std::ptr::null_mut());
    }
}

/// Signals that would otherwise leave the terminal raw or the editor dead:
/// SIGTSTP from outside (as Ctrl-Z), SIGCONT (back from a stop not of our
/// making: raw mode and the prompt are restored), and SIGTERM, SIGHUP and
/// SIGINT: the first ends the input, so the peer says goodbye; the next
/// gives the terminal back and exits.
#[cfg(unix)]
fn watch_signals(screen: Arc<Shared>, input: Arc<Input>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGCONT, SIGHUP, SIGINT, SIGTERM, SIGTSTP};
    let watched = [SIGTSTP, SIGCONT, SIGINT, SIGTERM, SIGHUP];
    let mut signals = signal_hook::iterator::Signals::new(watched)?;
    std::thread::spawn(move || {
        for signal in signals.forever() {
            match signal {
                SIGTSTP => suspend(&screen),
                SIGCONT => screen.lock().resume(),
                _ if input.end() => screen.lock().finish(),
                _ => {
                    screen.lock().finish();
                    std::process::exit(128 + signal);
                }
            }
        }
    });
    Ok(())
}

/// Whether the terminal is out of raw mode now: editing lines, echoing,
/// or turning Ctrl-C into a signal (as a shell's own line editor leaves it).
#[cfg(unix)]
fn line_mode() -> bool {
    // SAFETY: tcgetattr fills the termios it is given, or fails.
    let mut modes: libc::termios = unsafe { std::mem::zeroed() };
    let read = unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut modes) };
    read == 0 && modes.c_lflag & (libc::ICANON | libc::ISIG | libc::ECHO) != 0
}

/// A panic (a bug) must not leave the user's terminal raw.
fn give_back_on_panic() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = execute!(std::io::stdout(), DisableBracketedPaste, Print("\r\n"));
        let _ = terminal::disable_raw_mode();
        previous(info);
    }));
}

/// What a key asks of the reader after the screen has dealt with it.
struct Step {
    /// Lines completed (Enter, or a paste), to hand over in order.
    lines: Vec<String>,
    then: Then,
}

enum Then {
    Read,
    /// End of input: Ctrl-D on an empty line, or Ctrl-C twice.
    Quit,
    Suspend,
}

impl Step {
    fn then(then: Then) -> Step {
        Step {
            lines: Vec::new(),
            then,
        }
    }
}

/// The terminal as the editor left it.
struct Screen {
    prompt: String,
    draft: Draft,
    /// In raw mode, the prompt row drawn and the cursor on it.
    raw: bool,
    /// Input ended or the peer is done: raw mode does not come back.
    finished: bool,
    columns: u16,
    /// Column of the cursor on the prompt row, as last drawn.
    cursor: u16,
    /// The last key was Ctrl-C: another one on an empty line quits.
    interrupted: bool,
}

impl Screen {
    fn new(prompt: String) -> Screen {
        Screen {
            prompt,
            draft: Draft::default(),
            raw: false,
            finished: false,
            columns: 80,
            cursor: 0,
            interrupted: false,
        }
    }

    /// Raw mode, bracketed paste, the prompt row.
    fn enter(&mut self) -> std::io::Result<()> {
        if self.finished {
            return Ok(());
        }
        terminal::enable_raw_mode()?;
        self.raw = true;
        self.columns = terminal::size().map_or(self.columns, |(columns, _)| columns);
        let mut out = std::io::stdout().lock();
        queue!(out, EnableBracketedPaste)?;
        self.draw(&mut out)
    }

    /// The terminal as it was: prompt row cleared, cursor at its start.
    fn leave(&mut self) {
        if !self.raw {
            return;
        }
        self.raw = false;
        let mut out = std::io::stdout().lock();
        let _ = queue!(
            out,
            Print('\r'),
            Clear(ClearType::CurrentLine),
            DisableBracketedPaste
        );
        let _ = out.flush();
        let _ = terminal::disable_raw_mode();
    }

    /// Back from a stop (SIGCONT): the prompt redrawn where the shell left
    /// the cursor, and raw mode again if the shell put the terminal back in
    /// line mode meanwhile. After our own Ctrl-Z, [`suspend`] has done it
    /// all already and this only draws the same row again.
    #[cfg(unix)]
    fn resume(&mut self) {
        if !self.raw {
            return;
        }
        if line_mode() {
            // crossterm believes raw mode is still on: off, then on again.
            let _ = terminal::disable_raw_mode();
            self.raw = false;
            let _ = self.enter();
        } else {
            let mut out = std::io::stdout().lock();
            let _ = self.draw(&mut out);
        }
    }

    /// Input is over (the peer is quitting) or the peer is done: no more
    /// prompt, and the terminal is given back for good.
    fn finish(&mut self) {
        self.leave();
        self.finished = true;
    }

    /// Lines above the prompt row.
    fn print(&mut self, text: &str) {
        let mut out = std::io::stdout().lock();
        if !self.raw {
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
            return;
        }
        let _ = queue!(out, Print('\r'), Clear(ClearType::CurrentLine));
        for line in text.split('\n') {
            let _ = queue!(out, Print(line), Print("\r\n"));
        }
        let _ = self.draw(&mut out);
    }

    fn draw(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        if !self.raw {
            return Ok(());
        }
        let view = self.draft.view(&self.prompt, self.columns);
        self.cursor = view.cursor;
        queue!(
            out,
            Print('\r'),
            Print(&view.text),
            Clear(ClearType::UntilNewLine),
            MoveToColumn(view.cursor)
        )?;
        out.flush()
    }

    /// The terminal changed size. If it re-wrapped the prompt row (most
    /// do when narrowed), the row now starts higher up: go there, clear it
    /// and below, and draw it anew for the new width. `cursor_now` is the
    /// cursor's column as the terminal reports it, if asked.
    fn resize(&mut self, columns: u16, cursor_now: Option<u16>) {
        let up = rows_above(self.cursor, columns, cursor_now);
        self.columns = columns;
        let mut out = std::io::stdout().lock();
        if up > 0 {
            let _ = queue!(out, MoveUp(up));
        }
        let _ = queue!(out, Print('\r'), Clear(ClearType::FromCursorDown));
        let _ = self.draw(&mut out);
    }

    fn handle(&mut self, event: event::Event) -> Step {
        if self.finished {
            return Step::then(Then::Quit);
        }
        match event {
            event::Event::Key(key) if key.kind != KeyEventKind::Release => self.key(key),
            event::Event::Paste(text) => {
                self.interrupted = false;
                let lines = self.draft.paste(&text);
                self.echo(&lines);
                Step {
                    lines,
                    then: Then::Read,
                }
            }
            event::Event::Resize(columns, _) if self.raw => {
                // The width now, past any resize still queued behind this one.
                let columns = terminal::size().map_or(columns, |(columns, _)| columns);
                // Where the cursor went matters only if it no longer fits.
                let cursor_now = (self.cursor >= columns)
                    .then(|| crossterm::cursor::position().ok().map(|(column, _)| column))
                    .flatten();
                self.resize(columns, cursor_now);
                Step::then(Then::Read)
            }
            _ => Step::then(Then::Read),
        }
    }

    fn key(&mut self, key: KeyEvent) -> Step {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        let interrupted = std::mem::take(&mut self.interrupted);
        let draft = &mut self.draft;
        match key.code {
            KeyCode::Char('c') if ctrl => {
                if draft.is_empty() && interrupted {
                    return Step::then(Then::Quit);
                }
                draft.clear();
                self.interrupted = true;
                self.print("(Ctrl-C again to quit, or /quit)");
                return Step::then(Then::Read);
            }
            KeyCode::Char('d') if ctrl && draft.is_empty() => return Step::then(Then::Quit),
            KeyCode::Char('z') if ctrl => return Step::then(Then::Suspend),
            KeyCode::Enter | KeyCode::Char('j') if key.code == KeyCode::Enter || ctrl => {
                let lines = vec![draft.submit()];
                self.echo(&lines);
                return Step {
                    lines,
                    then: Then::Read,
                };
            }
            KeyCode::Char('d') if ctrl => draft.delete(),
            KeyCode::Char('a') if ctrl => draft.home(),
            KeyCode::Char('e') if ctrl => draft.end(),
            KeyCode::Char('b') if ctrl => draft.left(),
            KeyCode::Char('f') if ctrl => draft.right(),
            KeyCode::Char('u') if ctrl => draft.kill_before(),
            KeyCode::Char('k') if ctrl => draft.kill_after(),
            KeyCode::Char('w') if ctrl => draft.kill_word(),
            KeyCode::Char('p') if ctrl => draft.older(),
            KeyCode::Char('n') if ctrl => draft.newer(),
            KeyCode::Char(c) if !ctrl && !alt => draft.insert(c),
            KeyCode::Tab => draft.insert('\t'),
            KeyCode::Backspace => draft.backspace(),
            KeyCode::Delete => draft.delete(),
            KeyCode::Left => draft.left(),
            KeyCode::Right => draft.right(),
            KeyCode::Home => draft.home(),
            KeyCode::End => draft.end(),
            KeyCode::Up => draft.older(),
            KeyCode::Down => draft.newer(),
            _ => {}
        }
        let mut out = std::io::stdout().lock();
        let _ = self.draw(&mut out);
        Step::then(Then::Read)
    }

    /// What was entered stays on screen above the prompt, as typed.
    fn echo(&mut self, lines: &[String]) {
        for line in lines {
            let text = format!("{}{}", self.prompt, draft::printable(line));
            self.print(&text);
        }
        if lines.is_empty() {
            let mut out = std::io::stdout().lock();
            let _ = self.draw(&mut out);
        }
    }
}

/// After a change of width, how many rows above the cursor the prompt row
/// now starts. `before` is the cursor's column before, `now` where the
/// terminal says it is (asked only when `before` no longer fits).
///
/// Terminals that re-wrap (tmux, VTE, kitty…) move a cursor that no longer
/// fits to the row below, at `before % columns`; those that cut the row
/// (xterm) keep it on the row, at the last column. When the two cannot be
/// told apart, or the terminal did not answer, the answer is 0: at worst a
/// stale piece of the draft stays above, while guessing high would erase a
/// message the user has not read.
fn rows_above(before: u16, columns: u16, now: Option<u16>) -> u16 {
    if before < columns || columns == 0 {
        return 0;
    }
    match now {
        Some(column) if column == before % columns && column != columns - 1 => before / columns,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::rows_above;

    #[test]
    fn a_cursor_that_still_fits_stays_on_the_prompt_row() {
        assert_eq!(rows_above(30, 40, None), 0);
    }

    #[test]
    fn a_rewrapped_prompt_row_starts_as_many_rows_up_as_it_wrapped() {
        // Cursor at column 70 of an 80-column row, narrowed to 30: re-wrapped
        // into three rows, the cursor on the third at column 10.
        assert_eq!(rows_above(70, 30, Some(10)), 2);
        assert_eq!(rows_above(45, 40, Some(5)), 1);
    }

    #[test]
    fn a_cut_prompt_row_or_no_answer_moves_nothing() {
        // xterm: the cursor stays on its row, at the last column.
        assert_eq!(rows_above(70, 30, Some(29)), 0);
        assert_eq!(rows_above(70, 30, None), 0);
        // Ambiguous (re-wrapped to the last column too): never guess high.
        assert_eq!(rows_above(59, 30, Some(29)), 0);
    }
}
