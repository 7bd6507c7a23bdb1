//! The transcript: one append-only UTF-8 file per conversation, one event
//! per line, each line starting with an RFC 3339 UTC timestamp.
//!
//! The core formats lines; drivers only append them. Text from the network
//! is already sanitized before it gets here, so a line never carries a raw
//! control character and never spans two lines.

use crate::event::{ChatEndReason, EndCause};
use crate::time::Now;
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
pub fn line(now: &Now, entry: &Entry<'_>) -> String {
    let stamp = now.rfc3339();
    match entry {
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
            format!("{stamp} chat started: {me} {how} {peer} at {addr} (key {fingerprint})")
        }
        Entry::Sent { n, text } => format!("{stamp} sent #{n}: {text}"),
        Entry::Received { n, text, at } => format!("{stamp} received #{n} (sent {at}): {text}"),
        Entry::Delivered { n } => format!("{stamp} delivered #{n}"),
        Entry::Undelivered { n, text } => format!("{stamp} undelivered #{n}: {text}"),
        Entry::Ended { cause } => match cause.reason() {
            // "peer_lost" alone would hide whether the partner's process
            // died (closed) or its network went quiet (silent).
            reason @ ChatEndReason::PeerLost => format!("{stamp} chat ended: {reason} ({cause})"),
            reason => format!("{stamp} chat ended: {reason}"),
        },
    }
}

/// The file name of a conversation's transcript: start time, own name and
/// partner's name, with no character that a common file system refuses.
pub fn file_name(started: &Now, me: &str, peer: &str) -> String {
    let stamp = started.rfc3339().replace(':', "-");
    format!("{stamp}_{me}_{peer}.log")
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
            file_name(&now, "alice", "zuzu"),
            "2025-11-25T11-08-54.005Z_alice_zuzu.log"
        );
    }
}
