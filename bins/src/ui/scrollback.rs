//! Earlier chats with a partner, read back from the transcripts
//! (core/src/transcript.rs writes them; one file per chat, named
//! `START_ME_PEER.log`) when a pane for that partner opens.
//!
//! Only the end of the newest files is read ([`MAX_LINES`] messages at
//! most, [`TAIL`] bytes of each file at most), so a long history costs
//! neither time nor memory at start.

use super::clock;
use super::pane::{Line, Receipt, Stamped};
use jiff::tz::TimeZone;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Lines of earlier chats shown at most.
pub const MAX_LINES: usize = 200;

/// Bytes read from the end of one transcript at most.
const TAIL: u64 = 256 * 1024;

/// The earlier chats of `me` with `peer` in `dir`, oldest first, each
/// preceded by the day it started; empty if there are none (or the
/// directory cannot be read: scrollback is a convenience).
pub fn load(dir: &Path, me: &str, peer: &str, zone: &TimeZone) -> Vec<Stamped> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| natter_net_real::transcripts::is_chat_of(p, me, Some(peer)))
        .collect();
    // Named after their start time: the name's order is the time's.
    files.sort();
    let mut chats: Vec<Vec<Stamped>> = Vec::new();
    let mut count = 0;
    for file in files.iter().rev() {
        if count >= MAX_LINES {
            break;
        }
        let chat = parse(&tail(file), zone);
        count += chat.len();
        chats.push(chat);
    }
    let mut lines: Vec<Stamped> = chats.into_iter().rev().flatten().collect();
    let extra = lines.len().saturating_sub(MAX_LINES);
    lines.drain(..extra);
    lines
}

/// The last [`TAIL`] bytes of a file, from its first whole line to its
/// last: a final line without its newline is the start of a line whose
/// writer was killed (net-real/src/transcripts.rs), not a whole one, and
/// is left out.
fn tail(path: &Path) -> String {
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let start = len.saturating_sub(TAIL);
    if file.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut bytes = Vec::new();
    let _ = file.take(TAIL).read_to_end(&mut bytes);
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    bytes.truncate(whole);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    match (start, text.find('\n')) {
        (0, _) => text,
        (_, Some(i)) => text[i + 1..].to_string(),
        (_, None) => String::new(),
    }
}

/// One transcript's lines as pane lines: messages both ways with their
/// receipts resolved, and the day the chat started. Lines it does not
/// know are skipped.
pub fn parse(text: &str, zone: &TimeZone) -> Vec<Stamped> {
    let mut out: Vec<Stamped> = Vec::new();
    for line in text.lines() {
        let Some((stamp, rest)) = line.split_once(' ') else {
            continue;
        };
        let Some((day, at)) = clock::local(stamp, zone) else {
            continue;
        };
        if out.is_empty() {
            out.push(Stamped {
                at: at.clone(),
                line: Line::Earlier(day),
            });
        }
        let numbered = |rest: &str| -> Option<(u64, String)> {
            let rest = rest.strip_prefix('#')?;
            let (n, text) = rest.split_once(": ").unwrap_or((rest, ""));
            let n = n.split_whitespace().next()?.parse().ok()?;
            Some((n, text.to_string()))
        };
        let mark = |out: &mut Vec<Stamped>, n: u64, mark: Receipt| {
            for s in out.iter_mut().rev() {
                if let Line::Said { n: m, receipt, .. } = &mut s.line {
                    if *m == n {
                        *receipt = mark;
                        break;
                    }
                }
            }
        };
        let line = if let Some(rest) = rest.strip_prefix("sent ") {
            numbered(rest).map(|(n, text)| Line::Said {
                n,
                text,
                receipt: Receipt::Sent,
            })
        } else if let Some(rest) = rest.strip_prefix("received ") {
            // `#N (sent AT): TEXT`
            numbered(rest).map(|(n, text)| Line::Heard { n, text })
        } else if let Some(rest) = rest.strip_prefix("delivered ") {
            if let Some((n, _)) = numbered(rest) {
                mark(&mut out, n, Receipt::Delivered);
            }
            None
        } else if let Some(rest) = rest.strip_prefix("undelivered ") {
            if let Some((n, _)) = numbered(rest) {
                mark(&mut out, n, Receipt::Undelivered);
            }
            None
        } else {
            None
        };
        if let Some(line) = line {
            out.push(Stamped { at, line });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAT: &str = "\
2026-01-05T10:00:00.000Z chat started: alice called bob at 10.0.0.2:4000 (key abcd)
2026-01-05T10:00:05.000Z sent #1: hello bob
2026-01-05T10:00:05.100Z delivered #1
2026-01-05T10:01:00.000Z received #1 (sent 2026-01-05T10:00:59.900Z): hi: alice
2026-01-05T10:02:00.000Z sent #2: see you
2026-01-05T10:02:02.000Z undelivered #2: see you
2026-01-05T10:02:02.000Z chat ended: left
";

    #[test]
    fn a_transcript_reads_back_as_messages_with_their_receipts() {
        let lines: Vec<(String, Line)> = parse(CHAT, &TimeZone::UTC)
            .into_iter()
            .map(|s| (s.at, s.line))
            .collect();
        assert_eq!(
            lines,
            [
                ("10:00".into(), Line::Earlier("2026-01-05".into())),
                (
                    "10:00".into(),
                    Line::Said {
                        n: 1,
                        text: "hello bob".into(),
                        receipt: Receipt::Delivered
                    }
                ),
                (
                    "10:01".into(),
                    Line::Heard {
                        n: 1,
                        text: "hi: alice".into()
                    }
                ),
                (
                    "10:02".into(),
                    Line::Said {
                        n: 2,
                        text: "see you".into(),
                        receipt: Receipt::Undelivered
                    }
                ),
            ]
        );
    }

    #[test]
    fn only_the_chats_of_that_partner_load_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write("2026-01-05T10-00-00.000Z_alice_bob.log", CHAT);
        write(
            "2026-01-06T09-00-00.000Z_alice_Bob.log",
            "2026-01-06T09:00:00.000Z chat started: alice was called by Bob at 10.0.0.2:4000 (key abcd)\n2026-01-06T09:00:01.000Z received #1 (sent 2026-01-06T09:00:01.000Z): again\n",
        );
        write(
            "2026-01-05T11-00-00.000Z_alice_carol.log",
            "2026-01-05T11:00:01.000Z sent #1: not for bob\n",
        );
        let lines = load(dir.path(), "alice", "bob", &TimeZone::UTC);
        let days: Vec<&Line> = lines
            .iter()
            .map(|s| &s.line)
            .filter(|l| matches!(l, Line::Earlier(_)))
            .collect();
        assert_eq!(
            days,
            [
                &Line::Earlier("2026-01-05".into()),
                &Line::Earlier("2026-01-06".into())
            ]
        );
        assert_eq!(
            lines.last().unwrap().line,
            Line::Heard {
                n: 1,
                text: "again".into()
            }
        );
        assert!(!lines
            .iter()
            .any(|s| matches!(&s.line, Line::Said { text, .. } if text == "not for bob")));
    }

    /// The texts of the messages `me` sees in the pane for `peer`.
    fn texts(dir: &Path, me: &str, peer: &str) -> Vec<String> {
        load(dir, me, peer, &TimeZone::UTC)
            .into_iter()
            .filter_map(|s| match s.line {
                Line::Said { text, .. } | Line::Heard { text, .. } => Some(text),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_chat_of_other_names_whose_file_name_reads_the_same_is_not_loaded() {
        // Names may hold `_`, so `work` with `bob_carol` and `work_bob`
        // with `carol` both write `…_work_bob_carol.log`, and `x_work`
        // with `bob_carol` a name that ends the same.
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write(
            "2026-01-05T10-00-00.000Z_work_bob_carol.log",
            "2026-01-05T10:00:00.000Z chat started: work_bob called carol at 10.0.0.2:4000 (key abcd)\n\
             2026-01-05T10:00:01.000Z sent #1: from work_bob to carol\n",
        );
        write(
            "2026-01-06T10-00-00.000Z_Work_Bob_Carol.log",
            "2026-01-06T10:00:00.000Z chat started: Work was called by Bob_Carol at 10.0.0.3:4000 (key efgh)\n\
             2026-01-06T10:00:01.000Z received #1 (sent 2026-01-06T10:00:01.000Z): from bob_carol to work\n",
        );
        write(
            "2026-01-07T10-00-00.000Z_x_work_bob_carol.log",
            "2026-01-07T10:00:00.000Z chat started: x_work called bob_carol at 10.0.0.3:4000 (key efgh)\n\
             2026-01-07T10:00:01.000Z sent #1: from x_work to bob_carol\n",
        );
        assert_eq!(
            texts(dir.path(), "work", "bob_carol"),
            ["from bob_carol to work"]
        );
        assert_eq!(
            texts(dir.path(), "work_bob", "carol"),
            ["from work_bob to carol"]
        );
        assert_eq!(
            texts(dir.path(), "x_work", "bob_carol"),
            ["from x_work to bob_carol"]
        );
    }

    #[test]
    fn a_final_line_without_its_newline_is_not_read_as_a_message() {
        // A peer killed while writing a long line leaves its start.
        let dir = tempfile::tempdir().unwrap();
        let torn = format!(
            "{CHAT}2026-01-05T10:03:00.000Z received #2 (sent 2026-01-05T10:03:00.000Z): the sta"
        );
        std::fs::write(
            dir.path().join("2026-01-05T10-00-00.000Z_alice_bob.log"),
            torn,
        )
        .unwrap();
        let lines = load(dir.path(), "alice", "bob", &TimeZone::UTC);
        assert!(
            !lines
                .iter()
                .any(|s| matches!(&s.line, Line::Heard { n: 2, .. })),
            "{lines:?}"
        );
        assert!(lines
            .iter()
            .any(|s| matches!(&s.line, Line::Heard { n: 1, .. })));
    }
}
