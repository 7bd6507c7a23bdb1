//! The terminal UI's state: peer events, keys and pastes in; the state
//! changed and [`Action`]s out. No terminal, no clock, no file: the view
//! (`view.rs`) is a function of this state alone, and the driver
//! (`terminal.rs`) performs the actions, so every rule here is a unit test.
//!
//! Panes: the natter pane (index 0: answers, errors, the server) and one
//! per partner, opened by a call either way and kept after the chat ends
//! until closed. A plain line typed in a chat pane goes to that partner
//! (`/msg`), whatever the peer's focus; a command without a name typed
//! there (`/leave`, `/accept`, `/verify`…) means that partner.
//!
//! The roster comes from a `/list` at (re)registration, then from live
//! presence (`peer_online`, `peer_offline`, `peer_status`; see
//! `roster.rs`), without a line in any pane: on a busy server they come
//! by the hundred.

use super::complete;
use super::pane::{Line, Pane, Phase, Receipt, Stamped};
use super::roster::Roster;
use crate::draft::Draft;
use crate::render;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use natter_core::command::{self, Command};
use natter_core::{ErrorDetail, Event, Request};

/// What the driver does for the state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Hand a command to the peer.
    Send(Command),
    /// Ring the terminal bell (a call came in).
    Bell,
    /// Read the earlier chats with this partner from the transcripts and
    /// give them to [`UiState::on_scrollback`].
    LoadScrollback(String),
    /// Append an entered line to the history file.
    Remember(String),
    /// Give the terminal back to the shell until `fg` (Ctrl-Z).
    Suspend,
    /// End the input: the peer leaves its chats and exits (as `/quit`).
    Quit,
}

#[derive(Debug)]
pub struct UiState {
    pub me: String,
    /// The server's address once registered, and whether it is connected.
    pub server: Option<String>,
    pub connected: bool,
    pub panes: Vec<Pane>,
    /// The pane shown.
    pub view: usize,
    pub roster: Roster,
    /// Fingerprints shown in the roster and pane titles (Alt-K).
    pub show_keys: bool,
    /// Alt-O: below `view::ROSTER_FROM` columns, where the roster has no
    /// column of its own, it takes the place of the pane's lines.
    pub show_online: bool,
    pub draft: Draft,
    /// The last key was Ctrl-C: another on an empty line quits.
    pub interrupted: bool,
    /// Choices of the last Tab, shown until the next key.
    pub choices: Vec<String>,
    /// `/list` answers still due to the UI's own asking: they fill the
    /// roster without a line in the natter pane.
    quiet_lists: usize,
    bell: bool,
    /// See [`UiState::set_today`]; new panes start on it.
    today: String,
}

impl UiState {
    pub fn new(me: &str, history: Vec<String>, bell: bool) -> UiState {
        UiState {
            me: me.to_string(),
            server: None,
            connected: false,
            panes: vec![Pane::natter()],
            view: 0,
            roster: Roster::default(),
            show_keys: false,
            show_online: false,
            draft: Draft::with_history(history),
            interrupted: false,
            choices: Vec::new(),
            quiet_lists: 0,
            bell,
            today: String::new(),
        }
    }

    /// The local day (`YYYY-MM-DD`) of what happens from now on; the
    /// driver sets it before each input (the state reads no clock).
    pub fn set_today(&mut self, day: &str) {
        self.today = day.to_string();
        for pane in &mut self.panes {
            pane.set_today(day);
        }
    }

    /// The pane shown.
    pub fn shown(&self) -> &Pane {
        &self.panes[self.view]
    }

    /// One peer event, `at` the local time (`HH:MM`) it arrived.
    pub fn on_event(&mut self, event: Event, at: &str) -> Vec<Action> {
        let mut actions = Vec::new();
        let note = |event: &Event| Line::Note(render::human(event));
        match &event {
            Event::Registered { server, .. } => {
                self.server = Some(server.to_string());
                self.connected = true;
                self.panes[0].push(at, note(&event));
                actions.push(self.quiet_list());
            }
            Event::Reregistered { server, .. } => {
                self.server = Some(server.to_string());
                self.connected = true;
                self.panes[0].push(at, note(&event));
                actions.push(self.quiet_list());
            }
            Event::ServerLost => {
                self.connected = false;
                self.panes[0].push(at, note(&event));
            }
            Event::Peers { peers } => {
                self.roster.replace(peers);
                if self.quiet_lists > 0 {
                    self.quiet_lists -= 1;
                } else {
                    self.push_shown(at, note(&event));
                }
            }
            Event::PeerOnline { peer } => self.roster.upsert(peer),
            Event::PeerOffline { name } => self.roster.remove(name),
            Event::PeerStatus { name, status } => self.roster.set_status(name, *status),
            Event::Error {
                detail:
                    ErrorDetail::ServerNotConnected {
                        request: Request::List,
                    }
                    | ErrorDetail::RequestLost {
                        request: Request::List,
                    }
                    | ErrorDetail::ServerStopped {
                        request: Request::List,
                    },
                ..
            } if self.quiet_lists > 0 => self.quiet_lists -= 1,
            Event::Error { .. } => {
                self.push_shown(at, Line::Error(render::human(&event)));
            }
            Event::Calling { peer } => {
                let (pane, new) = self.pane_for(peer, Phase::Calling);
                self.panes[pane].push(at, note(&event));
                self.show(pane);
                actions.extend(new.then(|| Action::LoadScrollback(peer.clone())));
            }
            Event::Incoming { peer, .. } => {
                let (pane, new) = self.pane_for(peer, Phase::Ringing);
                self.panes[pane].push(at, note(&event));
                actions.extend(new.then(|| Action::LoadScrollback(peer.clone())));
                actions.extend(self.bell.then_some(Action::Bell));
            }
            Event::ChatStarted {
                peer, fingerprint, ..
            } => {
                let (pane, new) = self.pane_for(peer, Phase::Talking);
                self.panes[pane].fingerprint = Some(fingerprint.clone());
                self.panes[pane].push(at, note(&event));
                if self.view == 0 {
                    self.show(pane);
                }
                actions.extend(new.then(|| Action::LoadScrollback(peer.clone())));
            }
            Event::Rejected { peer }
            | Event::Busy { peer }
            | Event::NoAnswer { peer }
            | Event::Cancelled { peer }
            | Event::Missed { peer }
            | Event::Declined { peer } => {
                let (pane, _) = self.pane_for(peer, Phase::Over);
                self.panes[pane].push(at, note(&event));
            }
            Event::Sent { peer, n, text } => {
                let (pane, _) = self.pane_for(peer, Phase::Talking);
                self.panes[pane].push(
                    at,
                    Line::Said {
                        n: *n,
                        text: text.clone(),
                        receipt: Receipt::Sent,
                    },
                );
                // A plain line typed in the natter pane went to the
                // peer's focused chat: show where.
                if self.view == 0 {
                    self.show(pane);
                }
            }
            Event::Message { peer, n, text, .. } => {
                let (pane, _) = self.pane_for(peer, Phase::Talking);
                let line = Line::Heard {
                    n: *n,
                    text: text.clone(),
                };
                if pane == self.view {
                    self.panes[pane].push(at, line);
                } else {
                    self.panes[pane].push_unread(at, line);
                }
            }
            Event::Delivered { peer, n } => {
                if let Some(pane) = self.find(peer) {
                    self.panes[pane].mark(*n, Receipt::Delivered);
                    self.panes[pane].waiting = None;
                }
            }
            Event::WindowFull { peer, waiting, .. } => {
                if let Some(pane) = self.find(peer) {
                    self.panes[pane].waiting = Some(*waiting);
                }
            }
            Event::ChatEnded {
                peer, undelivered, ..
            } => {
                let (pane, _) = self.pane_for(peer, Phase::Over);
                for n in undelivered {
                    self.panes[pane].mark(*n, Receipt::Undelivered);
                }
                self.panes[pane].waiting = None;
                self.panes[pane].push(at, note(&event));
            }
            Event::SafetyNumber { peer, .. } => match self.find(peer) {
                Some(pane) => self.panes[pane].push(at, note(&event)),
                None => self.push_shown(at, note(&event)),
            },
            // A `/switch` typed here has shown its pane already; when the
            // peer moves its focus by itself (a chat ended), the pane shown
            // stays: plain lines go to the pane shown anyway.
            Event::Focused { .. } => {}
            Event::Trusted { .. }
            | Event::Help { .. }
            | Event::Chats { .. }
            | Event::MissedCalls { .. } => {
                self.push_shown(at, note(&event));
            }
        }
        actions
    }

    /// Earlier chats read back for a pane just opened.
    pub fn on_scrollback(&mut self, peer: &str, earlier: Vec<Stamped>) {
        if let Some(pane) = self.find(peer) {
            self.panes[pane].prepend(earlier);
        }
    }

    /// Time to ask who is online again (see `roster::REFRESH`).
    pub fn on_tick(&mut self) -> Vec<Action> {
        if self.connected {
            vec![self.quiet_list()]
        } else {
            Vec::new()
        }
    }

    /// Text pasted (bracketed paste): each line break is Enter, so each
    /// line goes out on its own, in order.
    pub fn on_paste(&mut self, text: &str, at: &str) -> Vec<Action> {
        self.interrupted = false;
        self.choices.clear();
        let lines = self.draft.paste(text);
        lines.into_iter().flat_map(|l| self.enter(l, at)).collect()
    }

    /// One key, `at` the local time (for the error a line may get).
    pub fn on_key(&mut self, key: KeyEvent, at: &str) -> Vec<Action> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        let interrupted = std::mem::take(&mut self.interrupted);
        self.choices.clear();
        let draft = &mut self.draft;
        match key.code {
            KeyCode::Char('c') if ctrl => {
                if draft.is_empty() && interrupted {
                    return vec![Action::Quit];
                }
                draft.clear();
                self.interrupted = true;
            }
            KeyCode::Char('d') if ctrl && draft.is_empty() => return vec![Action::Quit],
            KeyCode::Char('z') if ctrl => return vec![Action::Suspend],
            KeyCode::Enter => {
                let line = draft.submit();
                return self.enter(line, at);
            }
            KeyCode::Char('j') if ctrl => {
                let line = draft.submit();
                return self.enter(line, at);
            }
            KeyCode::Char('a') | KeyCode::Char('A') if alt => return self.answer(true),
            KeyCode::Char('r') | KeyCode::Char('R') if alt => return self.answer(false),
            KeyCode::Char('k') | KeyCode::Char('K') if alt => self.show_keys = !self.show_keys,
            KeyCode::Char('o') | KeyCode::Char('O') if alt => {
                self.show_online = !self.show_online;
            }
            KeyCode::Char('w') | KeyCode::Char('W') if alt => self.close(),
            KeyCode::Char(d @ '1'..='9') if alt => {
                let index = d as usize - '1' as usize;
                if index < self.panes.len() {
                    self.show(index);
                }
            }
            KeyCode::Left if alt => {
                self.show((self.view + self.panes.len() - 1) % self.panes.len())
            }
            KeyCode::Right if alt => self.show((self.view + 1) % self.panes.len()),
            KeyCode::PageUp => self.panes[self.view].scroll += 10,
            KeyCode::PageDown => {
                let pane = &mut self.panes[self.view];
                pane.scroll = pane.scroll.saturating_sub(10);
            }
            KeyCode::Tab => {
                let mut names: Vec<String> = self.roster.names().map(str::to_string).collect();
                names.extend(self.panes.iter().filter_map(|p| p.peer.clone()));
                names.sort();
                names.dedup();
                let completion = complete::complete(&draft.before_cursor(), &names);
                completion.insert.chars().for_each(|c| draft.insert(c));
                self.choices = completion.choices;
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
        Vec::new()
    }

    /// A line entered: parsed once, as in every input mode, then aimed at
    /// the pane shown where it names no partner.
    fn enter(&mut self, line: String, at: &str) -> Vec<Action> {
        if line.trim().is_empty() {
            return Vec::new();
        }
        let mut actions = vec![Action::Remember(line.clone())];
        let command = match command::parse(&line) {
            Ok(command) => command,
            Err(problem) => {
                self.push_shown(at, Line::Error(render::human(&problem.into())));
                return actions;
            }
        };
        let here = self.panes[self.view].peer.clone();
        let command = match (command, here) {
            (Command::Quit, _) => {
                actions.push(Action::Quit);
                return actions;
            }
            (Command::Say(text), Some(to)) => Command::Msg { to, text },
            (Command::Leave(None), Some(peer)) => Command::Leave(Some(peer)),
            (Command::Verify(None), Some(peer)) => Command::Verify(Some(peer)),
            (Command::Cancel(None), Some(peer))
                if self.panes[self.view].phase == Phase::Calling =>
            {
                Command::Cancel(Some(peer))
            }
            (Command::Accept(None), _) | (Command::Reject(None), _)
                if self.panes[self.view].phase == Phase::Ringing =>
            {
                // Through `answer`, which also shows the accepted chat.
                let accept = line.trim_start().starts_with("/accept");
                actions.extend(self.answer(accept));
                return actions;
            }
            (Command::Accept(Some(peer)), _) => {
                if let Some(pane) = self.find(&peer) {
                    self.show(pane);
                }
                Command::Accept(Some(peer))
            }
            (Command::Switch(peer), _) => {
                if let Some(pane) = self.find(&peer) {
                    self.show(pane);
                }
                Command::Switch(peer)
            }
            (command, _) => command,
        };
        actions.push(Action::Send(command));
        actions
    }

    /// Alt-A / Alt-R: the call of the pane shown if it rings, else the
    /// oldest call ringing. Accepting shows its pane.
    fn answer(&mut self, accept: bool) -> Vec<Action> {
        let ringing = |p: &Pane| p.phase == Phase::Ringing;
        let pane = if ringing(self.shown()) {
            Some(self.view)
        } else {
            self.panes.iter().position(ringing)
        };
        let Some(pane) = pane else {
            // Nothing rings: the peer says so, in its words.
            let command = if accept {
                Command::Accept(None)
            } else {
                Command::Reject(None)
            };
            return vec![Action::Send(command)];
        };
        let peer = self.panes[pane].peer.clone();
        if accept {
            self.show(pane);
            vec![Action::Send(Command::Accept(peer))]
        } else {
            vec![Action::Send(Command::Reject(peer))]
        }
    }

    /// Alt-W: closes the pane shown if its chat is over.
    fn close(&mut self) {
        if self.view != 0 && self.shown().phase == Phase::Over {
            self.panes.remove(self.view);
            let view = self.view - 1;
            self.view = 0;
            self.show(view);
        }
    }

    fn show(&mut self, pane: usize) {
        if pane != self.view {
            self.panes[self.view].hidden();
        }
        self.view = pane;
        self.panes[pane].shown();
    }

    fn quiet_list(&mut self) -> Action {
        self.quiet_lists += 1;
        Action::Send(Command::List)
    }

    fn push_shown(&mut self, at: &str, line: Line) {
        self.panes[self.view].push(at, line);
    }

    fn find(&self, peer: &str) -> Option<usize> {
        self.panes.iter().position(|p| p.is_chat_with(peer))
    }

    /// The pane of `peer`, opened if there is none, now in `phase`; and
    /// whether it was opened just now.
    fn pane_for(&mut self, peer: &str, phase: Phase) -> (usize, bool) {
        let (pane, new) = match self.find(peer) {
            Some(pane) => (pane, false),
            None => {
                let mut chat = Pane::chat(peer, phase);
                chat.set_today(&self.today);
                self.panes.push(chat);
                (self.panes.len() - 1, true)
            }
        };
        self.panes[pane].phase = phase;
        (pane, new)
    }

    /// The calls ringing here, oldest pane first.
    pub fn ringing(&self) -> impl Iterator<Item = &str> {
        self.panes
            .iter()
            .filter(|p| p.phase == Phase::Ringing)
            .filter_map(|p| p.peer.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use natter_core::protocol::PeerStatus;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::from(code)
    }

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    fn alt(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::ALT)
    }

    fn typed(state: &mut UiState, text: &str) -> Vec<Action> {
        text.chars()
            .for_each(|c| assert!(state.on_key(key(KeyCode::Char(c)), "10:00").is_empty()));
        state.on_key(key(KeyCode::Enter), "10:00")
    }

    fn sends(actions: &[Action]) -> Vec<&Command> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send(c) => Some(c),
                _ => None,
            })
            .collect()
    }

    fn chatting_with(peers: &[&str]) -> UiState {
        let mut state = UiState::new("alice", Vec::new(), true);
        state.on_event(registered("alice"), "10:00");
        for peer in peers {
            state.on_event(started(peer), "10:00");
        }
        state
    }

    #[test]
    fn a_plain_line_goes_to_the_partner_of_the_pane_shown() {
        let mut state = chatting_with(&["bob", "carol"]);
        state.on_key(alt('2'), "10:00");
        let actions = typed(&mut state, "hi bob");
        assert_eq!(
            sends(&actions),
            [&Command::Msg {
                to: "bob".into(),
                text: "hi bob".into()
            }]
        );
        assert!(actions.contains(&Action::Remember("hi bob".into())));
        assert_eq!(
            sends(&typed(&mut state, "/leave")),
            [&Command::Leave(Some("bob".into()))]
        );
    }

    #[test]
    fn alt_a_accepts_the_ringing_call_and_shows_its_pane() {
        let mut state = chatting_with(&["bob"]);
        let actions = state.on_event(incoming("carol"), "10:01");
        assert!(actions.contains(&Action::Bell));
        assert_eq!(
            state.shown().peer.as_deref(),
            Some("bob"),
            "a call does not take the screen"
        );
        assert_eq!(state.ringing().collect::<Vec<_>>(), ["carol"]);
        let actions = state.on_key(alt('a'), "10:01");
        assert_eq!(sends(&actions), [&Command::Accept(Some("carol".into()))]);
        assert_eq!(state.shown().peer.as_deref(), Some("carol"));
    }

    #[test]
    fn no_bell_rings_no_bell() {
        let mut state = UiState::new("alice", Vec::new(), false);
        assert!(!state
            .on_event(incoming("carol"), "10:01")
            .contains(&Action::Bell));
    }

    #[test]
    fn a_paste_of_three_lines_sends_three_messages_in_order() {
        let mut state = chatting_with(&["bob"]);
        let actions = state.on_paste("one\ntwo\r\nthree\n", "10:02");
        let texts: Vec<&str> = sends(&actions)
            .into_iter()
            .map(|c| match c {
                Command::Msg { text, .. } => text.as_str(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(texts, ["one", "two", "three"]);
        assert!(state.draft.is_empty());
    }

    #[test]
    fn ctrl_c_clears_the_draft_and_a_second_on_an_empty_line_quits() {
        let mut state = chatting_with(&["bob"]);
        "half".chars().for_each(|c| {
            state.on_key(key(KeyCode::Char(c)), "10:03");
        });
        assert!(state.on_key(ctrl('c'), "10:03").is_empty());
        assert!(state.draft.is_empty());
        assert!(state.interrupted);
        assert_eq!(state.on_key(ctrl('c'), "10:03"), [Action::Quit]);
    }

    #[test]
    fn slash_quit_ends_the_input() {
        let mut state = chatting_with(&["bob"]);
        assert!(typed(&mut state, "/quit").contains(&Action::Quit));
    }

    #[test]
    fn the_uis_own_list_fills_the_roster_quietly_and_a_typed_one_answers() {
        let mut state = UiState::new("alice", Vec::new(), true);
        let actions = state.on_event(registered("alice"), "10:00");
        assert_eq!(sends(&actions), [&Command::List]);
        let lines = state.panes[0].lines.len();
        state.on_event(peers(&[("bob", PeerStatus::Available)]), "10:00");
        assert_eq!(state.roster.len(), 1);
        assert_eq!(
            state.panes[0].lines.len(),
            lines,
            "no line for the UI's own /list"
        );
        assert_eq!(sends(&typed(&mut state, "/list")), [&Command::List]);
        state.on_event(peers(&[]), "10:01");
        assert_eq!(
            state.panes[0].lines.len(),
            lines + 1,
            "the typed /list is answered"
        );
        assert_eq!(state.roster.len(), 0);
    }

    #[test]
    fn presence_events_keep_the_roster_current_without_a_line_or_a_list() {
        let mut state = UiState::new("alice", Vec::new(), true);
        state.on_event(registered("alice"), "10:00");
        state.on_event(peers(&[("bob", PeerStatus::Available)]), "10:00");
        let lines = state.panes[0].lines.len();
        let Event::Peers { peers: carol } = peers(&[("carol", PeerStatus::Available)]) else {
            unreachable!()
        };
        let online = Event::PeerOnline {
            peer: carol[0].clone(),
        };
        assert!(state.on_event(online, "10:01").is_empty());
        let busy = Event::PeerStatus {
            name: "Bob".into(),
            status: PeerStatus::Busy,
        };
        assert!(state.on_event(busy, "10:02").is_empty());
        let listed: Vec<(&str, PeerStatus)> = state
            .roster
            .peers()
            .map(|p| (p.name.as_str(), p.status))
            .collect();
        assert_eq!(
            listed,
            [("bob", PeerStatus::Busy), ("carol", PeerStatus::Available)]
        );
        let gone = Event::PeerOffline { name: "bob".into() };
        assert!(state.on_event(gone, "10:03").is_empty());
        assert_eq!(state.roster.names().collect::<Vec<_>>(), ["carol"]);
        assert_eq!(state.panes[0].lines.len(), lines, "no line for presence");
    }

    #[test]
    fn a_chat_starting_or_ending_asks_for_no_list() {
        let mut state = chatting_with(&[]);
        assert!(sends(&state.on_event(started("bob"), "10:00")).is_empty());
        let ended = Event::ChatEnded {
            peer: "bob".into(),
            reason: natter_core::ChatEndReason::PeerLeft,
            cause: natter_core::EndCause::Bye,
            undelivered: vec![],
        };
        assert!(sends(&state.on_event(ended, "10:01")).is_empty());
    }

    #[test]
    fn a_chat_ended_with_undelivered_messages_marks_them() {
        let mut state = chatting_with(&["bob"]);
        state.on_event(sent("bob", 1, "one"), "10:00");
        state.on_event(sent("bob", 2, "two"), "10:00");
        state.on_event(delivered("bob", 1), "10:00");
        state.on_event(
            Event::ChatEnded {
                peer: "bob".into(),
                reason: natter_core::ChatEndReason::PeerLost,
                cause: natter_core::EndCause::Closed,
                undelivered: vec![2],
            },
            "10:01",
        );
        let receipts: Vec<Receipt> = state
            .shown()
            .lines
            .iter()
            .filter_map(|s| match s.line {
                Line::Said { receipt, .. } => Some(receipt),
                _ => None,
            })
            .collect();
        assert_eq!(receipts, [Receipt::Delivered, Receipt::Undelivered]);
        assert_eq!(state.shown().phase, Phase::Over);
    }

    #[test]
    fn tab_completes_commands_and_names_from_the_roster() {
        let mut state = chatting_with(&[]);
        state.on_event(peers(&[("bob", PeerStatus::Available)]), "10:00");
        "/con".chars().for_each(|c| {
            state.on_key(key(KeyCode::Char(c)), "10:00");
        });
        state.on_key(key(KeyCode::Tab), "10:00");
        state.on_key(key(KeyCode::Char('b')), "10:00");
        state.on_key(key(KeyCode::Tab), "10:00");
        assert_eq!(state.draft.before_cursor(), "/connect bob ");
    }

    #[test]
    fn the_server_lost_shows_until_registered_again_with_the_server_now_in_use() {
        let mut state = chatting_with(&[]);
        state.on_event(Event::ServerLost, "10:00");
        assert!(!state.connected);
        assert!(state.on_tick().is_empty(), "no /list while reconnecting");
        let fingerprint = natter_core::Identity::from_seed(&[2; 32])
            .public()
            .fingerprint();
        let again = Event::Reregistered {
            addr: "10.0.0.2:4000".parse().unwrap(),
            server: "10.0.1.1:4201".parse().unwrap(),
            reachable: true,
            server_fingerprint: fingerprint,
            new_server: true,
        };
        let actions = state.on_event(again, "10:01");
        assert!(state.connected);
        assert_eq!(state.server.as_deref(), Some("10.0.1.1:4201"));
        assert_eq!(sends(&actions), [&Command::List]);
    }
}
