//! Every message on natter's two kinds of link.
//!
//! The wire format is newline-delimited JSON with a `"type"` tag, so that
//! `nc` can talk to a server and any language can implement a client.
//! `docs/PROTOCOL.md` documents each message; keep the two in step.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;

/// Version carried by every `hello`. A peer or server speaking another
/// version is refused with [`ErrorCode::VersionMismatch`].
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest line (in bytes, newline excluded) either side accepts. A list
/// chunk of [`LIST_CHUNK`] peers with the longest names and IPv6 addresses
/// stays well under it.
pub const MAX_FRAME: usize = 64 * 1024;

/// Peers per `peers` frame: a 10,000-peer list goes out as 40 frames.
pub const LIST_CHUNK: usize = 256;

/// Whether a registered peer can take a chat request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerStatus {
    Available,
    Chatting,
}

impl fmt::Display for PeerStatus {
    /// Pads like a string, so tables can align statuses with `{:<9}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            PeerStatus::Available => "available",
            PeerStatus::Chatting => "chatting",
        })
    }
}

/// One entry of the directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub name: String,
    /// Where the peer listens: the IP the server observed on its
    /// connection, with the port the peer said it listens on.
    pub addr: SocketAddr,
    pub status: PeerStatus,
}

/// Machine-readable error codes, shared by the wire `error` message and the
/// `error` event of `natter peer --json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    NameTaken,
    AddrTaken,
    ServerFull,
    BindFailed,
    ServerUnreachable,
    UnknownPeer,
    PeerUnreachable,
    MessageTooLong,
    NotInChat,
    NoRequest,
    UnknownCommand,
    BadInput,
    VersionMismatch,
    AlreadyInChat,
    /// A call is already ringing; wait for it or `/leave` to cancel it.
    RequestPending,
    /// A name that is not 1–32 of `A-Z a-z 0-9 _ -`.
    InvalidName,
    /// A line that is not a valid frame (bad JSON, unknown type, …).
    BadFrame,
    /// A line longer than the frame limit.
    FrameTooLong,
    /// A request that needs registration came before `register`.
    NotRegistered,
    /// `hello` or `register` did not arrive in time.
    Timeout,
    /// The peer hello named someone else than the peer we dialled.
    WrongPeer,
    /// The transcript could not be written; the message was not
    /// acknowledged.
    TranscriptFailed,
    /// Too many requests in too short a time; the connection is closed.
    RateLimited,
    /// Too many connections from one IP address.
    TooManyConnections,
    /// Any code this build does not know (sent by a newer peer).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The snake_case name used on the wire and in events.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NameTaken => "name_taken",
            ErrorCode::AddrTaken => "addr_taken",
            ErrorCode::ServerFull => "server_full",
            ErrorCode::BindFailed => "bind_failed",
            ErrorCode::ServerUnreachable => "server_unreachable",
            ErrorCode::UnknownPeer => "unknown_peer",
            ErrorCode::PeerUnreachable => "peer_unreachable",
            ErrorCode::MessageTooLong => "message_too_long",
            ErrorCode::NotInChat => "not_in_chat",
            ErrorCode::NoRequest => "no_request",
            ErrorCode::UnknownCommand => "unknown_command",
            ErrorCode::BadInput => "bad_input",
            ErrorCode::VersionMismatch => "version_mismatch",
            ErrorCode::AlreadyInChat => "already_in_chat",
            ErrorCode::RequestPending => "request_pending",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::FrameTooLong => "frame_too_long",
            ErrorCode::NotRegistered => "not_registered",
            ErrorCode::Timeout => "timeout",
            ErrorCode::WrongPeer => "wrong_peer",
            ErrorCode::TranscriptFailed => "transcript_failed",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Peer → server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// First frame on the connection.
    Hello {
        version: u32,
    },
    /// Claim `name`; the server pairs it with the IP it observes and `port`,
    /// the port this peer listens on for chats.
    Register {
        name: String,
        port: u16,
    },
    /// Ask for every other peer; answered by one or more `peers` frames.
    List,
    /// Ask for one peer by name; answered by `found`.
    Lookup {
        name: String,
    },
    /// Tell the server whether this peer is free.
    Status {
        status: PeerStatus,
    },
    Ping,
    Pong,
    /// Deregister and close.
    Bye,
}

/// Server → peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// First frame on the connection, sent in answer to the client's hello.
    Hello {
        version: u32,
    },
    /// Registration succeeded; `addr` is the address others will dial.
    Registered {
        name: String,
        addr: SocketAddr,
    },
    /// One chunk of a list answer; `more` is false on the last chunk.
    Peers {
        peers: Vec<PeerInfo>,
        more: bool,
    },
    /// Answer to `lookup`: `peer` is absent when nobody has that name.
    Found {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<PeerInfo>,
    },
    /// A refused request. Codes that end the connection are followed by the
    /// server closing it.
    Error {
        code: ErrorCode,
        message: String,
    },
    Ping,
    Pong,
}

/// Peer ↔ peer, on the direct chat link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PeerMsg {
    /// First frame each way. The caller's hello is the chat request.
    Hello {
        version: u32,
        name: String,
    },
    /// The callee accepted: the chat is on.
    Accept,
    /// The callee declined; it closes the link.
    Reject,
    /// The callee is in another chat or has another request pending; it
    /// closes the link.
    Busy,
    /// Message `n` (from 1, per direction), stamped with the sender's clock.
    Msg {
        n: u64,
        text: String,
        at: String,
    },
    /// Receipt: message `n` is recorded in the receiver's transcript.
    Ack {
        n: u64,
    },
    /// The sender leaves the chat; it closes the link.
    Bye,
    Ping,
    Pong,
    /// A refused frame or handshake; the sender closes the link.
    Error {
        code: ErrorCode,
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_the_documented_json_shape() {
        let register = ClientMsg::Register {
            name: "alice".into(),
            port: 5000,
        };
        assert_eq!(
            serde_json::to_string(&register).unwrap(),
            r#"{"type":"register","name":"alice","port":5000}"#
        );
        let found = ServerMsg::Found {
            name: "bob".into(),
            peer: None,
        };
        assert_eq!(
            serde_json::to_string(&found).unwrap(),
            r#"{"type":"found","name":"bob"}"#
        );
        let msg = PeerMsg::Msg {
            n: 1,
            text: "hi".into(),
            at: "2026-11-25T11:08:54.123Z".into(),
        };
        assert_eq!(
            serde_json::to_string(&msg).unwrap(),
            r#"{"type":"msg","n":1,"text":"hi","at":"2026-11-25T11:08:54.123Z"}"#
        );
    }

    #[test]
    fn unknown_error_codes_from_newer_peers_still_parse() {
        let parsed: ServerMsg =
            serde_json::from_str(r#"{"type":"error","code":"shiny_new","message":"x"}"#).unwrap();
        assert_eq!(
            parsed,
            ServerMsg::Error {
                code: ErrorCode::Unknown,
                message: "x".into()
            }
        );
    }

    #[test]
    fn error_code_names_match_serde() {
        for code in [
            ErrorCode::NameTaken,
            ErrorCode::RequestPending,
            ErrorCode::BadFrame,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
