//! Frames of the UI at fixed sizes on ratatui's `TestBackend`, checked
//! with insta: the screen a user sees for a given state.

use super::fixtures::*;
use super::state::UiState;
use super::theme::Theme;
use super::view;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use natter_core::protocol::PeerStatus;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn frame(state: &UiState, columns: u16, rows: u16, theme: Theme) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(columns, rows)).unwrap();
    terminal
        .draw(|frame| view::draw(frame, state, theme))
        .unwrap();
    terminal
}

fn screen(state: &UiState, columns: u16, rows: u16) -> String {
    frame(state, columns, rows, Theme::new(true))
        .backend()
        .to_string()
}

fn alt(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::ALT)
}

/// alice, registered, three others online.
fn online() -> UiState {
    let mut state = UiState::new("alice", Vec::new(), true);
    state.on_event(registered("alice"), "09:58");
    state.on_event(
        peers(&[
            ("bob", PeerStatus::Chatting),
            ("carol", PeerStatus::Available),
            ("dave", PeerStatus::Busy),
        ]),
        "09:58",
    );
    state
}

/// alice chats with bob (shown) and carol.
fn two_chats() -> UiState {
    let mut state = online();
    state.on_event(started("bob"), "10:00");
    state.on_event(message("bob", 1, "hi alice, lunch today?"), "10:01");
    state.on_event(sent("bob", 1, "yes! 12:30 at the usual place"), "10:01");
    state.on_event(delivered("bob", 1), "10:01");
    state.on_event(sent("bob", 2, "bring the slides"), "10:02");
    state.on_event(incoming("carol"), "10:03");
    state.on_key(alt('a'), "10:03");
    state.on_event(started("carol"), "10:03");
    state.on_event(
        message("carol", 1, "quick question about the release"),
        "10:04",
    );
    state.on_key(alt('2'), "10:04");
    state
}

#[test]
fn the_roster_lists_who_is_online_with_their_status() {
    insta::assert_snapshot!(screen(&online(), 80, 14));
}

#[test]
fn fingerprints_show_on_demand() {
    let mut state = two_chats();
    state.on_key(alt('k'), "10:05");
    insta::assert_snapshot!(screen(&state, 80, 16));
}

#[test]
fn two_chats_one_pane_each_with_receipt_marks() {
    insta::assert_snapshot!(screen(&two_chats(), 80, 16));
}

#[test]
fn unread_counts_then_a_new_messages_divider() {
    let mut state = two_chats();
    state.on_event(message("carol", 2, "is it tagged yet?"), "10:06");
    state.on_event(message("carol", 3, "ping"), "10:07");
    let unread = screen(&state, 80, 16);
    state.on_key(alt('3'), "10:08");
    let divider = screen(&state, 80, 16);
    insta::assert_snapshot!(format!("{unread}\n{divider}"));
}

#[test]
fn an_incoming_request_rings_with_its_keys_on_the_status_line() {
    let mut state = two_chats();
    state.on_event(incoming("dave"), "10:09");
    insta::assert_snapshot!(screen(&state, 80, 16));
}

#[test]
fn a_narrow_terminal_gives_tabs_instead_of_the_roster() {
    let mut state = two_chats();
    state.on_event(message("carol", 2, "is it tagged yet?"), "10:06");
    "a draft that is longer than the narrow row"
        .chars()
        .for_each(|c| {
            state.on_key(KeyEvent::from(KeyCode::Char(c)), "10:06");
        });
    insta::assert_snapshot!(screen(&state, 40, 12));
}

#[test]
fn alt_o_shows_who_is_online_on_a_narrow_terminal() {
    let mut state = two_chats();
    state.on_key(alt('o'), "10:05");
    insta::assert_snapshot!(screen(&state, 40, 12));
}

#[test]
fn a_chat_going_on_past_midnight_shows_the_new_day() {
    let mut state = online();
    state.set_today("2026-12-05");
    state.on_event(started("bob"), "23:58");
    state.on_event(message("bob", 1, "still up?"), "23:59");
    state.set_today("2026-12-06");
    state.on_event(sent("bob", 1, "yes, release night"), "00:01");
    state.on_event(message("bob", 2, "good luck"), "00:02");
    insta::assert_snapshot!(screen(&state, 60, 10));
}

#[test]
fn no_color_paints_no_colour_and_keeps_the_same_text() {
    let state = two_chats();
    let coloured = frame(&state, 80, 16, Theme::new(true));
    let plain = frame(&state, 80, 16, Theme::new(false));
    let colours = |t: &Terminal<TestBackend>| {
        t.backend()
            .buffer()
            .content()
            .iter()
            .filter(|cell| {
                cell.fg != ratatui::style::Color::Reset || cell.bg != ratatui::style::Color::Reset
            })
            .count()
    };
    assert!(colours(&coloured) > 0, "colours by default");
    assert_eq!(colours(&plain), 0, "NO_COLOR: not one coloured cell");
    assert_eq!(coloured.backend().to_string(), plain.backend().to_string());
    insta::assert_snapshot!(format!("{:?}", plain.backend().buffer()));
}
