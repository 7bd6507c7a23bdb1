//! One pane: the natter pane (answers, errors, the server) or a chat with
//! one partner, with its lines, receipts, unread count and scroll.

use natter_core::Fingerprint;

/// Lines a pane keeps at most: past it the oldest [`TRIM_LINES`] go at
/// once (the transcript keeps them). Without it a chat partner or a
/// hostile server adds lines for as long as natter runs.
pub const MAX_LINES: usize = 10_000;

/// Lines dropped at once when a pane is full, so that a pane at its cap
/// does not move all its lines for each new one.
pub const TRIM_LINES: usize = 1_000;

/// Where a chat pane's conversation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Our call rings at the partner.
    Calling,
    /// The partner's request waits for our answer.
    Ringing,
    Talking,
    /// Ended, refused, missed: the pane stays to read, until closed.
    Over,
}

/// The receipt mark of one of our messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Receipt {
    /// Taken, no receipt yet.
    Sent,
    /// Recorded in the partner's transcript.
    Delivered,
    /// The chat ended without its receipt: it may not have arrived.
    Undelivered,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// Ours, with its number and receipt.
    Said {
        n: u64,
        text: String,
        receipt: Receipt,
    },
    /// The partner's.
    Heard { n: u64, text: String },
    /// What natter says (one of render.rs's sentences).
    Note(String),
    /// An error, as a sentence.
    Error(String),
    /// Where an earlier chat from the transcript starts (its day).
    Earlier(String),
    /// The local day changed since the pane's last line (`YYYY-MM-DD`):
    /// `HH:MM` alone would read as earlier today.
    Day(String),
}

/// One line with the local time (`HH:MM`) it happened at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamped {
    pub at: String,
    pub line: Line,
}

#[derive(Debug)]
pub struct Pane {
    /// The partner; `None` for the natter pane.
    pub peer: Option<String>,
    pub phase: Phase,
    pub lines: Vec<Stamped>,
    /// The partner's messages that came while the pane was not shown.
    pub unread: usize,
    /// Where the first of them is in `lines`.
    first_unread: Option<usize>,
    /// Where the "new messages" divider goes while the pane is shown: the
    /// first unread line of when it was opened.
    pub divider: Option<usize>,
    /// Rows scrolled up from the newest line.
    pub scroll: usize,
    /// Of the key the partner proved, once the chat started.
    pub fingerprint: Option<Fingerprint>,
    /// Messages waiting for the partner's window (`window_full`).
    pub waiting: Option<usize>,
    /// The local day (`YYYY-MM-DD`) new lines happen on, as the driver
    /// last set it ([`Pane::set_today`]); empty when nobody set it.
    today: String,
    /// The day of the pane's last line, to tell when a [`Line::Day`]
    /// separator is due.
    last_day: Option<String>,
    /// The day of its first live line, to tell whether one is due after
    /// the earlier chats loaded later ([`Pane::prepend`]).
    first_day: Option<String>,
}

impl Pane {
    pub fn natter() -> Pane {
        Pane::new(None, Phase::Over)
    }

    pub fn chat(peer: &str, phase: Phase) -> Pane {
        Pane::new(Some(peer.to_string()), phase)
    }

    fn new(peer: Option<String>, phase: Phase) -> Pane {
        Pane {
            peer,
            phase,
            lines: Vec::new(),
            unread: 0,
            first_unread: None,
            divider: None,
            scroll: 0,
            fingerprint: None,
            waiting: None,
            today: String::new(),
            last_day: None,
            first_day: None,
        }
    }

    pub fn is_chat_with(&self, peer: &str) -> bool {
        self.peer
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case(peer))
    }

    /// The day new lines now happen on (local, `YYYY-MM-DD`).
    pub fn set_today(&mut self, day: &str) {
        if self.today != day {
            self.today = day.to_string();
        }
    }

    pub fn push(&mut self, at: &str, line: Line) {
        if !self.today.is_empty() {
            if self.last_day.as_ref().is_some_and(|day| *day != self.today) {
                self.lines.push(Stamped {
                    at: at.to_string(),
                    line: Line::Day(self.today.clone()),
                });
            }
            self.first_day.get_or_insert_with(|| self.today.clone());
            self.last_day = Some(self.today.clone());
        }
        self.lines.push(Stamped {
            at: at.to_string(),
            line,
        });
        self.trim();
    }

    /// Drops the oldest lines past [`MAX_LINES`]; the unread mark and
    /// divider keep pointing at the same lines (at the first line left,
    /// if theirs was dropped). Scroll counts rows from the newest line, so
    /// it stays.
    fn trim(&mut self) {
        if self.lines.len() <= MAX_LINES {
            return;
        }
        let cut = (self.lines.len() - MAX_LINES).max(TRIM_LINES);
        self.lines.drain(..cut);
        for index in [&mut self.first_unread, &mut self.divider]
            .into_iter()
            .flatten()
        {
            *index = index.saturating_sub(cut);
        }
    }

    /// A message from the partner while the pane is not shown.
    pub fn push_unread(&mut self, at: &str, line: Line) {
        self.first_unread.get_or_insert(self.lines.len());
        self.unread += 1;
        self.push(at, line);
    }

    /// The pane is shown: the divider goes before what was unread.
    pub fn shown(&mut self) {
        self.divider = self.first_unread.take();
        self.unread = 0;
    }

    /// The pane is no longer shown: read up to here.
    pub fn hidden(&mut self) {
        self.divider = None;
        self.scroll = 0;
    }

    /// Earlier chats from the transcript go before everything else. They
    /// come once the pane has its first line: if that line is of another
    /// day than the last earlier chat, its day goes between them.
    pub fn prepend(&mut self, mut earlier: Vec<Stamped>) {
        let earlier_day = earlier.iter().rev().find_map(|s| match &s.line {
            Line::Earlier(day) => Some(day.clone()),
            _ => None,
        });
        match (earlier_day, &self.first_day) {
            (Some(before), Some(first)) if before != *first => earlier.push(Stamped {
                at: self.lines.first().map(|s| s.at.clone()).unwrap_or_default(),
                line: Line::Day(first.clone()),
            }),
            (Some(before), None) => self.last_day = Some(before),
            _ => {}
        }
        let shift = earlier.len();
        self.lines.splice(0..0, earlier);
        for index in [&mut self.first_unread, &mut self.divider]
            .into_iter()
            .flatten()
        {
            *index += shift;
        }
        self.trim();
    }

    /// Marks our message `n` of the current chat (the latest of that
    /// number: numbers start again at each chat).
    pub fn mark(&mut self, n: u64, mark: Receipt) {
        let said = self.lines.iter_mut().rev().find_map(|s| match &mut s.line {
            Line::Said { n: m, receipt, .. } if *m == n => Some(receipt),
            _ => None,
        });
        if let Some(receipt) = said {
            *receipt = mark;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_marks_the_message_of_the_current_chat_not_an_earlier_one() {
        let mut pane = Pane::chat("bob", Phase::Talking);
        let said = |n| Line::Said {
            n,
            text: "x".into(),
            receipt: Receipt::Sent,
        };
        pane.push("10:00", said(1));
        pane.push("10:05", Line::Note("chat started".into()));
        pane.push("10:06", said(1));
        pane.mark(1, Receipt::Delivered);
        assert_eq!(
            pane.lines
                .iter()
                .map(|s| s.line.clone())
                .collect::<Vec<_>>()[2],
            Line::Said {
                n: 1,
                text: "x".into(),
                receipt: Receipt::Delivered
            }
        );
        assert!(matches!(
            pane.lines[0].line,
            Line::Said {
                receipt: Receipt::Sent,
                ..
            }
        ));
    }

    #[test]
    fn a_new_day_separates_lines_only_when_the_day_changes() {
        let mut pane = Pane::chat("bob", Phase::Talking);
        let day_lines = |pane: &Pane| {
            pane.lines
                .iter()
                .filter_map(|s| match &s.line {
                    Line::Day(day) => Some(day.clone()),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        pane.set_today("2026-12-05");
        pane.push("23:59", Line::Note("chat started".into()));
        pane.push(
            "23:59",
            Line::Heard {
                n: 1,
                text: "a".into(),
            },
        );
        assert!(
            day_lines(&pane).is_empty(),
            "the first day needs no separator"
        );
        pane.set_today("2026-12-06");
        pane.push(
            "00:01",
            Line::Heard {
                n: 2,
                text: "b".into(),
            },
        );
        pane.push(
            "00:02",
            Line::Heard {
                n: 3,
                text: "c".into(),
            },
        );
        assert_eq!(day_lines(&pane), ["2026-12-06"]);
        assert_eq!(pane.lines[2].line, Line::Day("2026-12-06".into()));
    }

    #[test]
    fn earlier_chats_loaded_after_the_first_line_are_followed_by_todays_date() {
        // As in use: the event that opens the pane adds its line, then the
        // earlier chats are read back from the transcripts.
        let mut pane = Pane::chat("bob", Phase::Ringing);
        pane.set_today("2026-01-02");
        pane.push("09:00", Line::Note("bob wants to chat".into()));
        pane.prepend(vec![
            Stamped {
                at: "10:00".into(),
                line: Line::Earlier("2026-01-01".into()),
            },
            Stamped {
                at: "10:01".into(),
                line: Line::Heard {
                    n: 1,
                    text: "old".into(),
                },
            },
        ]);
        let lines: Vec<&Line> = pane.lines.iter().map(|s| &s.line).collect();
        assert_eq!(lines[2], &Line::Day("2026-01-02".into()));
        assert_eq!(lines[3], &Line::Note("bob wants to chat".into()));
        pane.push(
            "09:01",
            Line::Heard {
                n: 1,
                text: "new".into(),
            },
        );
        assert_eq!(pane.lines.len(), 5, "no second rule on the same day");
    }

    #[test]
    fn a_live_line_on_another_day_than_the_earlier_chat_is_preceded_by_its_day() {
        let mut pane = Pane::chat("bob", Phase::Talking);
        pane.set_today("2026-01-02");
        pane.prepend(vec![Stamped {
            at: "10:00".into(),
            line: Line::Earlier("2026-01-01".into()),
        }]);
        pane.push("09:00", Line::Note("chat started".into()));
        assert_eq!(pane.lines[1].line, Line::Day("2026-01-02".into()));
    }

    #[test]
    fn the_divider_stays_before_the_first_unread_line_when_earlier_chats_load() {
        let mut pane = Pane::chat("bob", Phase::Talking);
        pane.push("10:00", Line::Note("chat started".into()));
        pane.push_unread(
            "10:01",
            Line::Heard {
                n: 1,
                text: "hi".into(),
            },
        );
        pane.prepend(vec![Stamped {
            at: "09:00".into(),
            line: Line::Earlier("2026-01-01".into()),
        }]);
        pane.shown();
        assert_eq!(pane.divider, Some(2));
        assert_eq!(pane.unread, 0);
    }

    #[test]
    fn a_pane_keeps_its_newest_lines_and_its_unread_mark_through_a_flood() {
        // Before: every line stayed, however many a partner sent.
        let heard = |n| Line::Heard {
            n,
            text: "x".into(),
        };
        let mut pane = Pane::chat("bob", Phase::Talking);
        pane.push("10:00", Line::Note("chat started".into()));
        for n in 1..=(MAX_LINES as u64 - 10) {
            pane.push("10:00", heard(n));
        }
        // 20 come while another pane is shown: the last 20 of 30,000.
        for n in 0..30_000 {
            let n = MAX_LINES as u64 + n;
            if n >= MAX_LINES as u64 + 29_980 {
                pane.push_unread("10:01", heard(n));
            } else {
                pane.push("10:01", heard(n));
            }
        }
        assert!(pane.lines.len() <= MAX_LINES);
        assert!(pane.lines.len() > MAX_LINES - TRIM_LINES);
        assert_eq!(
            pane.lines.last().unwrap().line,
            heard(MAX_LINES as u64 + 29_999)
        );
        pane.shown();
        let divider = pane.divider.expect("a divider");
        assert_eq!(pane.lines[divider].line, heard(MAX_LINES as u64 + 29_980));
        assert_eq!(pane.lines.len() - divider, 20);
    }

    #[test]
    fn earlier_chats_loaded_into_a_full_pane_keep_it_at_its_cap() {
        let mut pane = Pane::chat("bob", Phase::Talking);
        pane.push("10:00", Line::Note("chat started".into()));
        pane.push_unread(
            "10:01",
            Line::Heard {
                n: 1,
                text: "hi".into(),
            },
        );
        let earlier = (0..MAX_LINES)
            .map(|_| Stamped {
                at: "09:00".into(),
                line: Line::Note("old".into()),
            })
            .collect();
        pane.prepend(earlier);
        assert!(pane.lines.len() <= MAX_LINES);
        pane.shown();
        let divider = pane.divider.expect("a divider");
        assert_eq!(
            pane.lines[divider].line,
            Line::Heard {
                n: 1,
                text: "hi".into()
            }
        );
    }
}
