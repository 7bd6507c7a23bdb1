//! The transcript: one append-only UTF-8 file per conversation, one event
//! per line, each line starting with an RFC 3339 UTC timestamp.
//!
//! The core formats lines; drivers only append them. Text from the network
//! is already sanitized before it gets here, so a line never carries a raw
//! control character and never spans two lines.

use crate::event::{ChatEndReason, EndCause};
use crate::time::{Now, RFC3339_MILLIS_LEN};
use std::fmt::Write as _;
use std::net::SocketAddr;

/// Which side opened the chat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Outgoing,
    Incoming,
}

/// One line's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry<'a> {
    Started {
        me: &'a str,
        peer: &'a str,
        addr: SocketAddr,
        direction: Direction,
        /// Of the key the partner's handshake proved.
        fingerprint: &'a str,
    },
    Sent {
        n: u64,
        text: &'a str,
    },
    Received {
        n: u64,
        text: &'a str,
        at: &'a str,
    },
    Delivered {
        n: u64,
    },
    Undelivered {
        n: u64,
        text: &'a str,
    },
    Ended {
        cause: EndCause,
    },
}

/// Formats one transcript line (without the trailing newline).
///
/// Put together with `push_str` in a string of the right size: the lines
/// of every message (sent, received, delivered) took a few thousand
/// instructions each through `format!`, two or three times per message
/// (`natter bench --only throughput`, under callgrind).
pub fn line(now: &Now, entry: &Entry<'_>) -> String {
    let text_len = match entry {
        Entry::Sent { text, .. } | Entry::Undelivered { text, .. } => text.len(),
        Entry::Received { text, at, .. } => text.len() + at.len(),
        _ => 0,
    };
    let mut out = String::with_capacity(RFC3339_MILLIS_LEN + 40 + text_len);
    now.push_rfc3339(&mut out);
    // Writing to a String cannot fail.
    let _ = match entry {
        Entry::Started {
            me,
            peer,
            addr,
            direction,
            fingerprint,
        } => {
            let how = match direction {
                Direction::Outgoing => "called",
                Direction::Incoming => "was called by",
            };
            write!(
                out,
                " chat started: {me} {how} {peer} at {addr} (key {fingerprint})"
            )
        }
        Entry::Sent { n, text } => {
            push_numbered(&mut out, " sent #", *n);
            out.push_str(": ");
            out.push_str(text);
            Ok(())
        }
        Entry::Received { n, text, at } => {
            push_numbered(&mut out, " received #", *n);
            out.push_str(" (sent ");
            out.push_str(at);
            out.push_str("): ");
            out.push_str(text);
            Ok(())
        }
        Entry::Delivered { n } => {
            push_numbered(&mut out, " delivered #", *n);
            Ok(())
        }
        Entry::Undelivered { n, text } => {
            push_numbered(&mut out, " undelivered #", *n);
            out.push_str(": ");
            out.push_str(text);
            Ok(())
        }
        Entry::Ended { cause } => match cause.reason() {
            // "peer_lost" alone would hide whether the partner's process
            // died (closed) or its network went quiet (silent).
            reason @ ChatEndReason::PeerLost => write!(out, " chat ended: {reason} ({cause})"),
            reason => write!(out, " chat ended: {reason}"),
        },
    };
    out
}

/// The file name of a conversation's transcript: start time, own name and
/// partner's name, with no character that a common file system refuses.
pub fn file_name(started: &Now, me: &str, peer: &str) -> String {
    let stamp = started.rfc3339().replace(':', "-");
    format!("{stamp}_{me}_{peer}.log")
}

/// Appends `label` and `n` in decimal.
fn push_numbered(out: &mut String, label: &str, n: u64) {
    // Writing to a String cannot fail.
    let _ = write!(out, "{label}{n}");
}

/// What a transcript's file name ([`file_name`]) says of whose chat it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileNameSays {
    /// Not that chat.
    No,
    /// That chat, and no other could have this name.
    Yes,
    /// That chat, or one of other names that make the same file name:
    /// names may hold `_`, so `work` with `bob_carol` and `work_bob` with
    /// `carol` both write `START_work_bob_carol.log`. The first line says
    /// ([`started_names`]).
    Maybe,
}

/// Whether the file named `file` can be the transcript of `me`'s chat
/// with `peer` (with anyone, for `None`). Names are compared regardless of
/// case, as the directory compares them. START holds no `_` (an RFC 3339
/// time with `-` for `:`), so what follows its `_` is `ME_PEER`; with one
/// `_` in it the name is `me`'s alone, with more it could be another
/// split of the same text.
pub fn file_name_says(file: &str, me: &str, peer: Option<&str>) -> FileNameSays {
    let Some((_start, names)) = file
        .strip_suffix(".log")
        .and_then(|stem| stem.split_once('_'))
    else {
        return FileNameSays::No;
    };
    let Some(rest) = names
        .get(..me.len())
        .filter(|head| head.eq_ignore_ascii_case(me))
        .and_then(|_| names[me.len()..].strip_prefix('_'))
    else {
        return FileNameSays::No;
    };
    let fits = match peer {
        Some(peer) => rest.eq_ignore_ascii_case(peer),
        None => !rest.is_empty(),
    };
    match (fits, names.matches('_').count()) {
        (false, _) => FileNameSays::No,
        (true, 1) => FileNameSays::Yes,
        (true, _) => FileNameSays::Maybe,
    }
}

/// The two names of a transcript's first line, `START chat started: ME
/// called PEER at …` or `… ME was called by PEER at …`: `(ME, PEER)`.
/// Names hold no space.
pub fn started_names(line: &str) -> Option<(&str, &str)> {
    let (_, after) = line.split_once(" chat started: ")?;
    let mut words = after.split(' ');
    let me = words.next()?;
    let peer = match words.next()? {
        "called" => words.next()?,
        "was" => {
            (words.next()? == "called" && words.next()? == "by").then_some(())?;
            words.next()?
        }
        _ => return None,
    };
    Some((me, peer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn lines_start_with_a_millisecond_utc_timestamp() {
        let now = Now::at_unix(1_764_068_934).advanced(Duration::from_millis(5));
        let started = Entry::Started {
            me: "alice",
            peer: "zuzu",
            addr: "10.0.0.2:4000".parse().unwrap(),
            direction: Direction::Outgoing,
            fingerprint: "abcd-efgh-ijkl-mnop",
        };
        assert_eq!(
            line(&now, &started),
            "2025-11-25T11:08:54.005Z chat started: alice called zuzu at 10.0.0.2:4000 (key abcd-efgh-ijkl-mnop)"
        );
        assert_eq!(
            line(
                &now,
                &Entry::Received {
                    n: 2,
                    text: "how are you",
                    at: "2025-11-25T11:08:54.001Z"
                }
            ),
            "2025-11-25T11:08:54.005Z received #2 (sent 2025-11-25T11:08:54.001Z): how are you"
        );
        assert_eq!(
            line(&now, &Entry::Sent { n: 1, text: "hi" }),
            "2025-11-25T11:08:54.005Z sent #1: hi"
        );
        assert_eq!(
            line(&now, &Entry::Delivered { n: 10_000_000 }),
            "2025-11-25T11:08:54.005Z delivered #10000000"
        );
        assert_eq!(
            line(&now, &Entry::Undelivered { n: 0, text: "é" }),
            "2025-11-25T11:08:54.005Z undelivered #0: é"
        );
        assert_eq!(
            line(
                &now,
                &Entry::Ended {
                    cause: EndCause::Left
                }
            ),
            "2025-11-25T11:08:54.005Z chat ended: left"
        );
        assert_eq!(
            file_name(&now, "alice", "zuzu"),
            "2025-11-25T11-08-54.005Z_alice_zuzu.log"
        );
    }

    #[test]
    fn a_file_name_with_one_underscore_between_the_names_is_that_chat_alone() {
        let file = "2025-11-25T11-08-54.005Z_alice_zuzu.log";
        assert_eq!(
            file_name_says(file, "alice", Some("zuzu")),
            FileNameSays::Yes
        );
        assert_eq!(
            file_name_says(file, "Alice", Some("ZUZU")),
            FileNameSays::Yes
        );
        assert_eq!(file_name_says(file, "alice", None), FileNameSays::Yes);
        assert_eq!(file_name_says(file, "zuzu", None), FileNameSays::No);
        assert_eq!(file_name_says(file, "alice", Some("zu")), FileNameSays::No);
        assert_eq!(file_name_says(file, "ali", None), FileNameSays::No);
        assert_eq!(file_name_says(file, "lice", Some("zuzu")), FileNameSays::No);
        assert_eq!(
            file_name_says("alice_zuzu.txt", "alice", None),
            FileNameSays::No
        );
    }

    #[test]
    fn names_that_split_the_same_file_name_two_ways_leave_it_to_the_first_line() {
        let file = "2025-11-25T11-08-54.005Z_work_bob_carol.log";
        assert_eq!(
            file_name_says(file, "work", Some("bob_carol")),
            FileNameSays::Maybe
        );
        assert_eq!(
            file_name_says(file, "work_bob", Some("carol")),
            FileNameSays::Maybe
        );
        assert_eq!(
            file_name_says(file, "work", Some("carol")),
            FileNameSays::No
        );
        assert_eq!(file_name_says(file, "bob", None), FileNameSays::No);
        let now = Now::at_unix(1_764_068_934);
        for (me, peer, direction) in [
            ("work", "bob_carol", Direction::Outgoing),
            ("work_bob", "carol", Direction::Incoming),
        ] {
            let first = line(
                &now,
                &Entry::Started {
                    me,
                    peer,
                    addr: "10.0.0.2:4000".parse().unwrap(),
                    direction,
                    fingerprint: "abcd",
                },
            );
            assert_eq!(started_names(&first), Some((me, peer)), "{first}");
        }
        assert_eq!(started_names("2025-11-25T11:08:54.005Z sent #1: hi"), None);
    }
}
