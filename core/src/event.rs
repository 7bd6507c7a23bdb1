//! What a peer tells its user: the `--json` events of SPEC.md.

use crate::protocol::{ErrorCode, PeerInfo};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;

/// Why a chat ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatEndReason {
    /// This user left (`/leave`, `exit()`, `/quit`, end of input).
    Left,
    /// The partner left, closed the link or its process ended.
    PeerLeft,
    /// Nothing heard from the partner for the heartbeat timeout.
    PeerLost,
}

impl fmt::Display for ChatEndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChatEndReason::Left => "left",
            ChatEndReason::PeerLeft => "peer_left",
            ChatEndReason::PeerLost => "peer_lost",
        })
    }
}

/// One event for the user. With `--json` each is printed as one line,
/// `{"event": "<snake_case name>", …fields}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Registered with the server; `addr` is how the server sees us.
    Registered {
        name: String,
        addr: SocketAddr,
        server: SocketAddr,
    },
    /// Answer to `/list`: every other peer, however many chunks it took.
    Peers {
        peers: Vec<PeerInfo>,
    },
    /// Someone asks to chat: `/accept` or `/reject`.
    Incoming {
        peer: String,
        addr: SocketAddr,
    },
    ChatStarted {
        peer: String,
    },
    /// Our request was rejected.
    Rejected {
        peer: String,
    },
    /// The peer we called is in another chat.
    Busy {
        peer: String,
    },
    /// The peer we called did not answer within the ring timeout.
    NoAnswer {
        peer: String,
    },
    /// A caller gave up (or went away) before we answered.
    Missed {
        peer: String,
    },
    /// We rejected a request (the answer to `/reject`).
    Declined {
        peer: String,
    },
    /// Our message `n` is on its way.
    Sent {
        peer: String,
        n: u64,
        text: String,
    },
    /// Message `n` from `peer`; `at` is the sender's clock (RFC 3339).
    Message {
        peer: String,
        n: u64,
        text: String,
        at: String,
    },
    /// Our message `n` is recorded in the partner's transcript.
    Delivered {
        peer: String,
        n: u64,
    },
    /// The chat is over; `undelivered` lists our messages without receipt.
    ChatEnded {
        peer: String,
        reason: ChatEndReason,
        undelivered: Vec<u64>,
    },
    /// The link to the directory server broke; chats go on, natter
    /// reconnects by itself.
    ServerLost,
    /// Registered again after `server_lost`.
    Reregistered,
    /// The answer to `/help`.
    Help {
        commands: Vec<String>,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
}

impl Event {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Event::Error {
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_with_the_spec_names() {
        let ended = Event::ChatEnded {
            peer: "bob".into(),
            reason: ChatEndReason::PeerLost,
            undelivered: vec![3, 4],
        };
        assert_eq!(
            serde_json::to_string(&ended).unwrap(),
            r#"{"event":"chat_ended","peer":"bob","reason":"peer_lost","undelivered":[3,4]}"#
        );
        assert_eq!(
            serde_json::to_string(&Event::ServerLost).unwrap(),
            r#"{"event":"server_lost"}"#
        );
        let err = Event::error(ErrorCode::NotInChat, "x");
        assert_eq!(
            serde_json::to_string(&err).unwrap(),
            r#"{"event":"error","code":"not_in_chat","message":"x"}"#
        );
    }
}
