//! The line being typed at the terminal prompt: editing, history, pasting,
//! and how it is shown on the one row the prompt owns.
//!
//! Pure state, no terminal: the terminal UI (`ui/state.rs`) feeds it keys
//! and draws what [`Draft::view`] says, so every rule here is unit-tested.

use unicode_width::UnicodeWidthChar;

/// Lines kept for Up/Down.
pub const HISTORY: usize = 100;

#[derive(Debug, Default)]
pub struct Draft {
    chars: Vec<char>,
    /// Insertion point, an index into `chars`.
    cursor: usize,
    history: Vec<String>,
    /// While Up/Down browse the history: the entry shown, and the line
    /// that was being typed before (Down past the newest brings it back).
    browsing: Option<(usize, Vec<char>)>,
}

/// What the prompt row shows.
#[derive(Debug, PartialEq, Eq)]
pub struct View {
    /// Prompt and the visible part of the draft, narrower than the row.
    pub text: String,
    /// Column of the cursor.
    pub cursor: u16,
}

impl Draft {
    /// An empty draft whose Up/Down start from `history` (oldest first),
    /// the lines typed in earlier runs; only the newest [`HISTORY`] count.
    pub fn with_history(mut history: Vec<String>) -> Draft {
        let extra = history.len().saturating_sub(HISTORY);
        history.drain(..extra);
        Draft {
            history,
            ..Draft::default()
        }
    }

    /// What is typed before the cursor: the word Tab completes ends there.
    pub fn before_cursor(&self) -> String {
        self.chars[..self.cursor].iter().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    pub fn insert(&mut self, c: char) {
        self.chars.insert(self.cursor, c);
        self.cursor += 1;
    }

    /// Pasted text, taken as if typed: each line break is Enter. Returns
    /// the lines completed, in order; text after the last break stays in
    /// the draft. `\r\n`, `\r` and `\n` all break a line (terminals send
    /// either).
    pub fn paste(&mut self, text: &str) -> Vec<String> {
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        let mut pieces = text.split('\n');
        let mut lines = Vec::new();
        if let Some(first) = pieces.next() {
            first.chars().for_each(|c| self.insert(c));
        }
        for piece in pieces {
            lines.push(self.submit());
            piece.chars().for_each(|c| self.insert(c));
        }
        lines
    }

    pub fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            self.chars.remove(self.cursor);
        }
    }

    pub fn delete(&mut self) {
        if self.cursor < self.chars.len() {
            self.chars.remove(self.cursor);
        }
    }

    pub fn left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
    }

    pub fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.chars.len());
    }

    pub fn home(&mut self) {
        self.cursor = 0;
    }

    pub fn end(&mut self) {
        self.cursor = self.chars.len();
    }

    /// Ctrl-U: everything before the cursor.
    pub fn kill_before(&mut self) {
        self.chars.drain(..self.cursor);
        self.cursor = 0;
    }

    /// Ctrl-K: everything from the cursor on.
    pub fn kill_after(&mut self) {
        self.chars.truncate(self.cursor);
    }

    /// Ctrl-W: the word before the cursor (and the spaces after it).
    pub fn kill_word(&mut self) {
        let mut start = self.cursor;
        while start > 0 && self.chars[start - 1].is_whitespace() {
            start -= 1;
        }
        while start > 0 && !self.chars[start - 1].is_whitespace() {
            start -= 1;
        }
        self.chars.drain(start..self.cursor);
        self.cursor = start;
    }

    pub fn clear(&mut self) {
        self.chars.clear();
        self.cursor = 0;
        self.browsing = None;
    }

    /// Enter: the draft as a line, remembered for Up; the draft is empty
    /// after.
    pub fn submit(&mut self) -> String {
        let line: String = self.chars.iter().collect();
        self.clear();
        if !line.trim().is_empty() && self.history.last() != Some(&line) {
            if self.history.len() == HISTORY {
                self.history.remove(0);
            }
            self.history.push(line.clone());
        }
        line
    }

    /// Up: the previous history entry.
    pub fn older(&mut self) {
        let index = match &self.browsing {
            Some((0, _)) => return,
            Some((i, _)) => i - 1,
            None if self.history.is_empty() => return,
            None => {
                let typed = std::mem::take(&mut self.chars);
                self.browsing = Some((self.history.len(), typed));
                self.history.len() - 1
            }
        };
        self.show_entry(index);
    }

    /// Down: the next history entry, then the line typed before Up.
    pub fn newer(&mut self) {
        let Some((i, _)) = &self.browsing else { return };
        if i + 1 < self.history.len() {
            self.show_entry(i + 1);
        } else if let Some((_, typed)) = self.browsing.take() {
            self.chars = typed;
            self.cursor = self.chars.len();
        }
    }

    fn show_entry(&mut self, index: usize) {
        self.chars = self.history[index].chars().collect();
        self.cursor = self.chars.len();
        if let Some((shown, _)) = &mut self.browsing {
            *shown = index;
        }
    }

    /// The prompt row for a terminal `columns` wide. It never reaches the
    /// last column, so it never wraps (a wrapped prompt is what leaves stale
    /// copies of the draft behind when the width changes): a draft longer
    /// than the row scrolls sideways to keep the cursor in view.
    pub fn view(&self, prompt: &str, columns: u16) -> View {
        let room = usize::from(columns.saturating_sub(1));
        let prompt_width: usize = prompt.chars().map(|c| shown(c).1).sum();
        // On a very narrow terminal the draft matters more than the prompt.
        let prompt = if prompt_width + 4 <= room { prompt } else { "" };
        let room = room - if prompt.is_empty() { 0 } else { prompt_width };
        // Show from the start if the cursor fits, else end the view at the
        // cursor, which keeps a cell of its own (for the character under
        // it, or to type into).
        let mut start = self.cursor;
        let mut before = 0;
        while start > 0 {
            let width = shown(self.chars[start - 1]).1;
            if before + width >= room {
                break;
            }
            before += width;
            start -= 1;
        }
        let mut text = prompt.to_string();
        let mut used = 0;
        for &c in &self.chars[start..] {
            let (c, width) = shown(c);
            if used + width > room {
                break;
            }
            used += width;
            text.push(c);
        }
        let cursor = prompt.chars().map(|c| shown(c).1).sum::<usize>() + before;
        View {
            text,
            cursor: u16::try_from(cursor).unwrap_or(u16::MAX),
        }
    }
}

/// A character as drawn and its width in columns: a tab as one space and
/// any other control character as U+FFFD, so that nothing typed or pasted
/// can move the cursor behind the editor's back.
fn shown(c: char) -> (char, usize) {
    match c {
        '\t' => (' ', 1),
        c if c.is_control() => ('\u{FFFD}', 1),
        c => (c, c.width().unwrap_or(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(text: &str) -> Draft {
        let mut draft = Draft::default();
        text.chars().for_each(|c| draft.insert(c));
        draft
    }

    fn line(draft: &Draft) -> String {
        draft.chars.iter().collect()
    }

    #[test]
    fn a_paste_of_three_lines_gives_three_lines_in_order() {
        let mut draft = Draft::default();
        assert_eq!(draft.paste("one\ntwo\r\nthree\r"), ["one", "two", "three"]);
        assert!(draft.is_empty());
    }

    #[test]
    fn a_paste_is_taken_as_if_typed_after_the_draft() {
        let mut draft = typed("say: ");
        assert_eq!(draft.paste("one\ntwo"), ["say: one"]);
        assert_eq!(line(&draft), "two", "the unfinished line waits for Enter");
    }

    #[test]
    fn editing_keys_change_the_draft_at_the_cursor() {
        let mut draft = typed("hello world");
        draft.kill_word();
        assert_eq!(line(&draft), "hello ");
        draft.home();
        draft.delete();
        draft.insert('j');
        draft.end();
        draft.backspace();
        assert_eq!(line(&draft), "jello");
        draft.left();
        draft.left();
        draft.kill_after();
        assert_eq!(line(&draft), "jel");
        draft.right();
        draft.kill_before();
        assert!(draft.is_empty());
    }

    #[test]
    fn up_and_down_browse_history_and_come_back_to_the_typed_line() {
        let mut draft = typed("/list");
        draft.submit();
        draft.paste("hi\n");
        "unsent".chars().for_each(|c| draft.insert(c));
        draft.older();
        assert_eq!(line(&draft), "hi");
        draft.older();
        assert_eq!(line(&draft), "/list");
        draft.older();
        assert_eq!(line(&draft), "/list");
        draft.newer();
        draft.newer();
        assert_eq!(line(&draft), "unsent");
    }

    #[test]
    fn the_view_fits_the_row_and_follows_the_cursor() {
        let draft = typed("abcdefghij");
        // 20 columns: room for the prompt and the whole draft.
        assert_eq!(
            draft.view("me> ", 20),
            View {
                text: "me> abcdefghij".into(),
                cursor: 14
            }
        );
        // 12 columns: 11 usable, 7 after the prompt; the cursor (at the end)
        // takes the last of them.
        let view = draft.view("me> ", 12);
        assert_eq!(view.text, "me> efghij");
        assert_eq!(view.cursor, 10);
        assert!(view.cursor < 12);
    }

    #[test]
    fn the_view_starts_at_the_beginning_when_the_cursor_is_there() {
        let mut draft = typed("abcdefghijklmnop");
        draft.home();
        let view = draft.view("me> ", 12);
        assert_eq!((view.text.as_str(), view.cursor), ("me> abcdefg", 4));
    }

    #[test]
    fn wide_and_control_characters_take_their_real_width() {
        let draft = typed("日本\u{1b}\t");
        let view = draft.view("", 20);
        assert_eq!(view.text, "日本\u{FFFD} ");
        assert_eq!(view.cursor, 6);
    }

    #[test]
    fn history_from_an_earlier_run_is_browsed_newest_first_and_bounded() {
        let earlier: Vec<String> = (0..HISTORY + 5).map(|i| format!("line {i}")).collect();
        let mut draft = Draft::with_history(earlier);
        draft.older();
        assert_eq!(line(&draft), format!("line {}", HISTORY + 4));
        for _ in 0..HISTORY + 10 {
            draft.older();
        }
        assert_eq!(line(&draft), "line 5", "only the newest HISTORY lines");
    }

    #[test]
    fn a_narrow_terminal_drops_the_prompt_before_the_draft() {
        let draft = typed("hello");
        assert_eq!(draft.view("alice> ", 8).text, "hello");
    }
}
