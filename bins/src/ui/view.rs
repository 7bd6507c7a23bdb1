//! The screen as a function of the UI state: [`draw`] paints one frame.
//!
//! ```text
//!  natter · alice        │ bob · chatting
//!  1 natter              │10:02 you: hello ✓
//!  2 bob ●               │10:03 bob: hi
//!  3 carol ☎         (2) │
//!                        │
//!  online (2)            │
//!  ● bob     chatting    │
//!  ● carol   available   │
//! ● server 127.0.0.1:4201 · ☎ carol calls: Alt-A accept, Alt-R reject
//! bob> draft
//! ```
//!
//! Below [`ROSTER_FROM`] columns the roster gives way to a row of tabs;
//! Alt-O then shows it in place of the pane's lines.
//! Lines are wrapped here, by display width, so the newest row is always
//! the last one and scrolling counts rows.

use super::pane::{Line as PaneLine, Pane, Phase, Receipt, Stamped};
use super::state::UiState;
use super::theme::Theme;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;
use unicode_width::UnicodeWidthStr;

/// Narrowest terminal that still gets the roster column.
pub const ROSTER_FROM: u16 = 60;
const ROSTER_WIDTH: u16 = 24;
/// `HH:MM ` before each line.
const STAMP: usize = 6;

pub fn draw(frame: &mut Frame, state: &UiState, theme: Theme) {
    let [body, status, input] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    if body.width >= ROSTER_FROM {
        let [roster, pane] =
            Layout::horizontal([Constraint::Length(ROSTER_WIDTH), Constraint::Fill(1)]).areas(body);
        draw_roster(frame, roster, state, theme);
        let [title, lines] =
            Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(pane);
        frame.render_widget(
            Paragraph::new(pane_title(state.shown(), state.show_keys)).style(theme.bar()),
            title,
        );
        draw_lines(frame, lines, state.shown(), theme);
    } else {
        let [tabs, lines] =
            Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(body);
        frame.render_widget(Paragraph::new(tab_row(state, theme)), tabs);
        if state.show_online {
            draw_roster(frame, lines, state, theme);
        } else {
            draw_lines(frame, lines, state.shown(), theme);
        }
    }
    frame.render_widget(
        Paragraph::new(status_line(state, theme)).style(theme.bar()),
        status,
    );
    let prompt = match &state.shown().peer {
        Some(peer) => format!("{peer}> "),
        None => "> ".to_string(),
    };
    let view = state.draft.view(&prompt, input.width);
    frame.render_widget(Paragraph::new(view.text), input);
    frame.set_cursor_position(Position::new(input.x + view.cursor, input.y));
}

fn draw_roster(frame: &mut Frame, area: Rect, state: &UiState, theme: Theme) {
    let block = Block::new()
        .borders(Borders::RIGHT)
        .border_style(theme.dim());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut rows = vec![Line::styled(format!(" natter · {}", state.me), theme.bar())];
    for (i, pane) in state.panes.iter().enumerate() {
        let name = pane.peer.as_deref().unwrap_or("natter");
        let mut spans = vec![Span::raw(format!(" {} {name}", i + 1))];
        if pane.peer.is_some() {
            let (mark, style) = phase_mark(pane.phase, theme);
            spans.push(Span::styled(format!(" {mark}"), style));
        }
        if pane.unread > 0 {
            spans.push(Span::styled(format!(" ({})", pane.unread), theme.alert()));
        }
        let line = Line::from(spans);
        rows.push(if i == state.view {
            line.style(theme.selected())
        } else {
            line
        });
    }
    rows.push(Line::raw(""));
    rows.push(Line::styled(
        format!(" online ({})", state.roster.len()),
        theme.rule(),
    ));
    let width = state.roster.names().map(str::len).max().unwrap_or(0);
    for peer in state.roster.peers() {
        rows.push(Line::from(vec![
            Span::styled(" ● ", theme.status(peer.status)),
            Span::raw(format!("{:width$} ", peer.name)),
            Span::styled(peer.status.to_string(), theme.status(peer.status)),
        ]));
        if state.show_keys {
            let key = peer
                .fingerprint
                .as_ref()
                .map_or("no key listed".to_string(), |f| f.to_string());
            rows.push(Line::styled(format!("   {key}"), theme.dim()));
        }
    }
    frame.render_widget(Paragraph::new(rows), inner);
}

fn phase_mark(phase: Phase, theme: Theme) -> (&'static str, ratatui::style::Style) {
    match phase {
        Phase::Calling => ("…", theme.note()),
        Phase::Ringing => ("☎", theme.alert()),
        Phase::Talking => ("●", theme.receipt(true)),
        Phase::Over => ("·", theme.dim()),
    }
}

fn phase_word(phase: Phase) -> &'static str {
    match phase {
        Phase::Calling => "calling",
        Phase::Ringing => "wants to chat",
        Phase::Talking => "chatting",
        Phase::Over => "ended",
    }
}

fn pane_title(pane: &Pane, show_keys: bool) -> String {
    let Some(peer) = &pane.peer else {
        return " natter: answers, errors, the server (Alt-→ to the chats)".to_string();
    };
    let mut title = format!(" {peer} · {}", phase_word(pane.phase));
    match (&pane.fingerprint, show_keys) {
        (Some(key), true) => title.push_str(&format!(" · key {key}")),
        (Some(_), false) => title.push_str(" · Alt-K shows keys"),
        (None, _) => {}
    }
    title
}

/// Narrow terminals: the panes as tabs, the shown one reversed.
fn tab_row(state: &UiState, theme: Theme) -> Line<'static> {
    let mut spans = Vec::new();
    for (i, pane) in state.panes.iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled("│", theme.dim()));
        }
        let name = pane.peer.as_deref().unwrap_or("natter");
        let mut text = format!("{} {name}", i + 1);
        if pane.peer.is_some() {
            text.push(' ');
            text.push_str(phase_mark(pane.phase, theme).0);
        }
        let style = if i == state.view {
            theme.selected()
        } else if pane.unread > 0 || pane.phase == Phase::Ringing {
            theme.alert()
        } else {
            ratatui::style::Style::new()
        };
        spans.push(Span::styled(text, style));
        if pane.unread > 0 {
            spans.push(Span::styled(format!("({})", pane.unread), theme.alert()));
        }
    }
    Line::from(spans)
}

fn status_line(state: &UiState, theme: Theme) -> Line<'static> {
    let mut spans = Vec::new();
    let server = state.server.as_deref().unwrap_or("?");
    spans.push(if state.connected {
        Span::raw(format!(" ● server {server}"))
    } else {
        Span::styled(
            format!(" ○ server {server} lost, reconnecting"),
            theme.alert(),
        )
    });
    let mut part = |text: String, style| {
        spans.push(Span::raw(" · "));
        spans.push(Span::styled(text, style));
    };
    for peer in state.ringing() {
        part(
            format!("☎ {peer} calls: Alt-A accept, Alt-R reject"),
            theme.alert(),
        );
    }
    for pane in &state.panes {
        if let (Some(peer), Some(waiting)) = (&pane.peer, pane.waiting) {
            part(
                format!("{peer}: window full, {waiting} waiting"),
                theme.alert(),
            );
        }
        if let (Some(peer), Phase::Calling) = (&pane.peer, pane.phase) {
            part(format!("calling {peer}…"), theme.note());
        }
    }
    if state.interrupted {
        part("Ctrl-C again quits".to_string(), theme.alert());
    } else if !state.choices.is_empty() {
        part(state.choices.join(" "), theme.note());
    } else if state.ringing().next().is_none() {
        part(
            "Alt-←/→ panes · Alt-K keys · PgUp scroll · /help".to_string(),
            theme.note(),
        );
    }
    Line::from(spans)
}

fn draw_lines(frame: &mut Frame, area: Rect, pane: &Pane, theme: Theme) {
    let width = usize::from(area.width);
    let mut rows: Vec<Line<'static>> = Vec::new();
    for (i, stamped) in pane.lines.iter().enumerate() {
        if pane.divider == Some(i) {
            rows.push(rule("new messages", width, theme));
        }
        if let PaneLine::Day(day) = &stamped.line {
            rows.push(rule(day, width, theme));
            continue;
        }
        let peer = pane.peer.as_deref().unwrap_or("");
        rows.extend(wrap(line_spans(stamped, peer, theme), width));
    }
    let height = usize::from(area.height);
    let end = rows
        .len()
        .saturating_sub(pane.scroll.min(rows.len().saturating_sub(height)));
    let start = end.saturating_sub(height);
    let shown: Vec<Line> = rows.drain(start..end).collect();
    // The newest line at the bottom, as in every chat.
    let blank = u16::try_from(height - shown.len()).unwrap_or(0);
    let area = Rect {
        y: area.y + blank,
        height: area.height - blank,
        ..area
    };
    frame.render_widget(Paragraph::new(shown), area);
}

fn rule(text: &str, width: usize, theme: Theme) -> Line<'static> {
    let text = format!(" {text} ");
    let side = width.saturating_sub(text.width()) / 2;
    let line = format!("{}{text}{}", "─".repeat(side), "─".repeat(side));
    Line::styled(line, theme.rule())
}

/// One pane line as spans, before wrapping.
fn line_spans(stamped: &Stamped, peer: &str, theme: Theme) -> Vec<Span<'static>> {
    let mut spans = vec![Span::styled(format!("{:<5} ", stamped.at), theme.time())];
    match &stamped.line {
        PaneLine::Said { text, receipt, .. } => {
            spans.push(Span::styled("you: ", theme.author(true)));
            spans.push(Span::raw(text.clone()));
            spans.push(match receipt {
                Receipt::Sent => Span::styled(" …", theme.dim()),
                Receipt::Delivered => Span::styled(" ✓", theme.receipt(true)),
                Receipt::Undelivered => Span::styled(" ✗ undelivered", theme.receipt(false)),
            });
        }
        PaneLine::Heard { text, .. } => {
            spans.push(Span::styled(format!("{peer}: "), theme.author(false)));
            spans.push(Span::raw(text.clone()));
        }
        PaneLine::Note(text) => spans.push(Span::styled(text.clone(), theme.note())),
        PaneLine::Error(text) => spans.push(Span::styled(text.clone(), theme.error())),
        PaneLine::Earlier(day) => {
            spans.push(Span::styled(
                format!("── earlier chat, {day} ──"),
                theme.rule(),
            ));
        }
        // Drawn as a rule across the pane by `draw_lines`.
        PaneLine::Day(day) => spans.push(Span::styled(day.clone(), theme.rule())),
    }
    spans
}

/// Spans cut into rows `width` wide (by display width), at a space where
/// the row has one, continuation rows indented under the text; a line
/// break in a sentence starts a row.
fn wrap(spans: Vec<Span<'static>>, width: usize) -> Vec<Line<'static>> {
    let chars: Vec<(char, ratatui::style::Style)> = spans
        .iter()
        .flat_map(|s| s.content.chars().map(move |c| (c, s.style)))
        .collect();
    let mut rows: Vec<Vec<(char, ratatui::style::Style)>> = vec![Vec::new()];
    let mut used = 0;
    for (c, style) in chars {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if c == '\n' || (used + w > width && used > STAMP) {
            let row = rows.last_mut().expect("one row at least");
            // Carry the word begun on this row over, if the row has a space.
            let space = row
                .iter()
                .rposition(|(c, _)| *c == ' ')
                .filter(|&i| i > STAMP);
            let carried = match space {
                Some(i) if c != '\n' => row.split_off(i + 1),
                _ => Vec::new(),
            };
            let indent = std::iter::repeat_n((' ', ratatui::style::Style::new()), STAMP);
            // A space at the cut is dropped, unless a carried word needs it.
            let drop = c == '\n' || (c == ' ' && carried.is_empty());
            let mut next: Vec<_> = indent.collect();
            next.extend(carried);
            used = next
                .iter()
                .map(|(c, _)| unicode_width::UnicodeWidthChar::width(*c).unwrap_or(0))
                .sum();
            rows.push(next);
            if drop {
                continue;
            }
        }
        rows.last_mut().expect("one row at least").push((c, style));
        used += w;
    }
    rows.into_iter()
        .map(|row| {
            let mut spans: Vec<Span<'static>> = Vec::new();
            for (c, style) in row {
                match spans.last_mut() {
                    Some(span) if span.style == style => span.content.to_mut().push(c),
                    _ => spans.push(Span::styled(c.to_string(), style)),
                }
            }
            Line::from(spans)
        })
        .collect()
}
