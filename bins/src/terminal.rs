//! The real terminal under the full-screen UI (`ui/`): raw mode, the
//! alternate screen, bracketed paste, the threads that feed the UI state,
//! and giving the terminal back whatever happens.
//!
//! Threads, all talking to one UI thread over one channel ([`Input`]):
//! - the UI thread owns the state and the ratatui terminal; it applies
//!   each input, performs the actions and draws a frame once the channel
//!   is drained (a burst of events is one frame);
//! - the event forwarder (peer events), the key reader (crossterm's
//!   blocking `read`), a ticker (the roster's refresh) and, on unix, a
//!   signal watcher;
//! - the command sender hands commands to the peer. It is a thread of its
//!   own so that a peer that stops taking lines (a full window) never
//!   stops the screen: what the user enters waits, in order, in its queue.
//!
//! The screen starts once the peer is registered (a start-up error then
//! leaves the terminal untouched, its sentence printed as a line) and ends
//! when the peer is done. The terminal is given back on exit, on Ctrl-Z
//! (SIGTSTP, then taken again on `fg`), on SIGTERM, SIGHUP or SIGINT (the
//! first ends the input so the peer says goodbye, the next exits), and in
//! a panic.

use crate::render;
use crate::ui::history::History;
use crate::ui::state::{Action, UiState};
use crate::ui::theme::Theme;
use crate::ui::{clock, roster, scrollback, view};
use crossterm::event::{self, DisableBracketedPaste, EnableBracketedPaste};
use crossterm::execute;
use crossterm::terminal::{self, Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen};
use natter_core::command::Command;
use natter_core::Event;
use ratatui::backend::CrosstermBackend;
use std::collections::VecDeque;
use std::io::{Stdout, Write};
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use tokio::sync::mpsc;

/// Whether the screen can run here: the terminal takes raw mode and tells
/// its size. When it cannot, natter uses the plain line mode instead.
pub fn probe() -> Result<(), String> {
    terminal::size().map_err(|e| e.to_string())?;
    terminal::enable_raw_mode().map_err(|e| e.to_string())?;
    terminal::disable_raw_mode().map_err(|e| e.to_string())
}

/// What the UI needs beyond the peer's channels.
pub struct Options {
    /// Ring the bell when a call comes in (`--no-bell` turns it off).
    pub bell: bool,
    /// The history file (`DATA/peers/NAME/history`), if there is a data dir.
    pub history: Option<PathBuf>,
    /// Where transcripts are read back from, for scrollback.
    pub transcripts: PathBuf,
}

/// Lines of the last events printed after the screen closes, so that
/// what ended natter (a goodbye, an error) stays readable in the shell.
const FAREWELL: usize = 4;

/// Starts the UI; the returned thread ends once the peer is done, with
/// the terminal given back.
pub fn start(
    name: &str,
    lines: mpsc::Sender<crate::input::Typed>,
    mut events: mpsc::Receiver<Event>,
    options: Options,
) -> Result<JoinHandle<()>, String> {
    let (tx, rx) = std_mpsc::channel();
    #[cfg(unix)]
    watch_signals(tx.clone()).map_err(|e| e.to_string())?;
    give_back_on_panic();
    let forward = tx.clone();
    std::thread::spawn(move || {
        while let Some(event) = events.blocking_recv() {
            if forward.send(Input::Peer(event)).is_err() {
                return;
            }
        }
        let _ = forward.send(Input::PeerDone);
    });
    let (commands, queued) = std_mpsc::channel::<Command>();
    std::thread::spawn(move || {
        // Ends when the UI drops its sender (the user quit): dropping
        // `lines` then is the end of input, which the peer takes as /quit.
        while let Ok(command) = queued.recv() {
            if lines.blocking_send(Ok(command)).is_err() {
                return;
            }
        }
    });
    let (history, earlier) = match options.history.clone().map(History::open) {
        Some(Ok((history, earlier))) => (Some(history), earlier),
        _ => (None, Vec::new()),
    };
    let ui = Ui {
        state: UiState::new(name, earlier, options.bell),
        theme: Theme::from_env(),
        screen: None,
        on: false,
        commands: Some(commands),
        history,
        transcripts: options.transcripts,
        tx,
        farewell: VecDeque::new(),
        signalled: false,
    };
    Ok(std::thread::spawn(move || ui.run(rx)))
}

/// Everything the UI thread hears.
enum Input {
    Peer(Event),
    /// The peer is done: its event channel closed.
    PeerDone,
    Term(event::Event),
    /// Time to refresh the roster.
    Tick,
    #[cfg(unix)]
    Signal(i32),
}

type Screen = ratatui::Terminal<CrosstermBackend<Stdout>>;

struct Ui {
    state: UiState,
    theme: Theme,
    /// The ratatui terminal, made once (making it reads the cursor's
    /// position, which the key reader would race for later).
    screen: Option<Screen>,
    /// Raw mode and the alternate screen are on.
    on: bool,
    /// To the command sender; `None` once input ended.
    commands: Option<std_mpsc::Sender<Command>>,
    history: Option<History>,
    transcripts: PathBuf,
    /// For the threads started once registered (keys, ticker).
    tx: std_mpsc::Sender<Input>,
    farewell: VecDeque<String>,
    /// A terminating signal came already: the next exits at once.
    signalled: bool,
}

impl Ui {
    fn run(mut self, rx: std_mpsc::Receiver<Input>) {
        while let Ok(input) = rx.recv() {
            let mut done = self.apply(input);
            while !done {
                match rx.try_recv() {
                    Ok(input) => done = self.apply(input),
                    Err(_) => break,
                }
            }
            if done {
                break;
            }
            self.draw();
        }
        self.leave();
        let mut out = std::io::stdout().lock();
        for line in &self.farewell {
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
    }

    /// Applies one input; true when the peer is done.
    fn apply(&mut self, input: Input) -> bool {
        let at = clock::now();
        self.state.set_today(&clock::today());
        let actions = match input {
            Input::PeerDone => return true,
            Input::Peer(event) => {
                if self.farewell.len() == FAREWELL {
                    self.farewell.pop_front();
                }
                self.farewell.push_back(render::human(&event));
                if self.screen.is_none() && self.commands.is_some() {
                    if matches!(event, Event::Registered { .. }) {
                        self.enter_first();
                    } else {
                        // Before registration: the start-up report, as lines.
                        println!("{}", render::human(&event));
                        return false;
                    }
                }
                self.state.on_event(event, &at)
            }
            Input::Term(event::Event::Key(key)) => self.state.on_key(key, &at),
            Input::Term(event::Event::Paste(text)) => self.state.on_paste(&text, &at),
            Input::Term(_) => Vec::new(),
            Input::Tick => self.state.on_tick(),
            #[cfg(unix)]
            Input::Signal(signal) => {
                self.signal(signal);
                Vec::new()
            }
        };
        for action in actions {
            self.perform(action);
        }
        false
    }

    fn perform(&mut self, action: Action) {
        match action {
            Action::Send(command) => {
                if let Some(commands) = &self.commands {
                    let _ = commands.send(command);
                }
            }
            Action::Bell => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(b"\x07");
                let _ = out.flush();
            }
            Action::LoadScrollback(peer) => {
                let zone = jiff::tz::TimeZone::system();
                let earlier = scrollback::load(&self.transcripts, &self.state.me, &peer, &zone);
                self.state.on_scrollback(&peer, earlier);
            }
            Action::Remember(line) => {
                if let Some(history) = &self.history {
                    let _ = history.remember(&line);
                }
            }
            Action::Suspend => self.suspend(),
            Action::Quit => self.commands = None,
        }
    }

    /// Registered: the screen comes on, and the threads that only make
    /// sense with it (keys, roster refresh) start.
    fn enter_first(&mut self) {
        if let Err(e) = self.enter() {
            eprintln!("natter: cannot use the terminal ({e}); leaving");
            self.commands = None;
            return;
        }
        let keys = self.tx.clone();
        std::thread::spawn(move || loop {
            match event::read() {
                Ok(event) => {
                    if keys.send(Input::Term(event)).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        });
        let tick = self.tx.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(roster::REFRESH);
            if tick.send(Input::Tick).is_err() {
                return;
            }
        });
    }

    fn enter(&mut self) -> std::io::Result<()> {
        terminal::enable_raw_mode()?;
        self.on = true;
        execute!(
            std::io::stdout(),
            EnterAlternateScreen,
            EnableBracketedPaste
        )?;
        let screen = match &mut self.screen {
            Some(screen) => screen,
            None => self
                .screen
                .insert(ratatui::Terminal::new(CrosstermBackend::new(
                    std::io::stdout(),
                ))?),
        };
        // Everything is drawn anew on a cleared screen: ratatui's own
        // `clear` would ask the cursor's position, an answer the key
        // reader may swallow.
        execute!(std::io::stdout(), Clear(ClearType::All))?;
        screen.current_buffer_mut().reset();
        screen.swap_buffers();
        Ok(())
    }

    fn leave(&mut self) {
        if std::mem::take(&mut self.on) {
            give_back();
        }
    }

    fn draw(&mut self) {
        let (state, theme) = (&self.state, self.theme);
        if let (Some(screen), true) = (&mut self.screen, self.on) {
            let _ = screen.draw(|frame| view::draw(frame, state, theme));
        }
    }

    /// Ctrl-Z, or SIGTSTP from outside: the terminal back to the shell,
    /// stopped until `fg`, then the screen again. A process group without
    /// job control is not stopped at all, and the screen simply goes on.
    fn suspend(&mut self) {
        let was_on = self.on;
        self.leave();
        #[cfg(unix)]
        stop_as_by_default();
        if was_on {
            if let Err(e) = self.enter() {
                eprintln!("natter: cannot take the terminal back ({e}); leaving");
                self.commands = None;
            }
        }
    }

    #[cfg(unix)]
    fn signal(&mut self, signal: i32) {
        use signal_hook::consts::{SIGCONT, SIGTSTP};
        match signal {
            SIGTSTP => self.suspend(),
            // Back from a stop not of our making: the shell may have put
            // the terminal back in line mode and drawn over the screen;
            // take it again and repaint.
            SIGCONT if self.on => {
                self.leave();
                let _ = self.enter();
            }
            SIGCONT => {}
            _ if !self.signalled => {
                self.signalled = true;
                self.commands = None;
            }
            _ => {
                self.leave();
                std::process::exit(128 + signal);
            }
        }
    }
}

/// Raw mode off, the main screen back, pastes as keys again, the cursor
/// shown: the terminal as the shell left it.
fn give_back() {
    let _ = execute!(
        std::io::stdout(),
        DisableBracketedPaste,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let _ = terminal::disable_raw_mode();
}

/// A panic (a bug) must not leave the user's terminal raw.
fn give_back_on_panic() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        give_back();
        previous(info);
    }));
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

/// SIGTSTP, SIGCONT, SIGTERM, SIGHUP and SIGINT go to the UI thread,
/// which owns the terminal (see [`Ui::signal`]).
#[cfg(unix)]
fn watch_signals(tx: std_mpsc::Sender<Input>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGCONT, SIGHUP, SIGINT, SIGTERM, SIGTSTP};
    let watched = [SIGTSTP, SIGCONT, SIGINT, SIGTERM, SIGHUP];
    let mut signals = signal_hook::iterator::Signals::new(watched)?;
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if tx.send(Input::Signal(signal)).is_err() {
                return;
            }
        }
    });
    Ok(())
}
