//! Every message on natter's two kinds of link.
//!
//! The wire format is newline-delimited JSON with a `"type"` tag, so that
//! `nc` can talk to a server and any language can implement a client.
//! `docs/PROTOCOL.md` documents each message; keep the two in step.

use crate::identity::PublicKey;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;

/// The highest protocol version this build speaks, sent as `version` in
/// every `hello`.
pub const PROTOCOL_VERSION: u32 = 2;

/// The lowest protocol version this build speaks, sent as `min_version`.
/// Version 1 had no way to grow (an unknown frame closed the link), so it
/// is not spoken any more.
pub const MIN_PROTOCOL_VERSION: u32 = 2;

/// Features this build names in its `hello`. A feature is used on a link
/// only when both sides named it; version 2 defines none yet.
pub const FEATURES: &[&str] = &[];

/// Longest line (in bytes, newline excluded) either side accepts. A list
/// chunk of [`LIST_CHUNK`] peers with the longest names, IPv6 addresses
/// and keys stays under it (about 54 KB; a test checks).
pub const MAX_FRAME: usize = 64 * 1024;

/// Peers per `peers` frame: a 10,000-peer list goes out as 40 frames.
pub const LIST_CHUNK: usize = 256;

/// The versions and features one side of a link speaks: the part of
/// `hello` both links share, and what [`negotiate`] reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versions {
    /// The highest version the sender speaks.
    pub version: u32,
    /// The lowest version the sender speaks; absent means `version` (a
    /// version-1 hello has only `version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<u32>,
    /// Features the sender supports; names this build does not know are
    /// ignored.
    #[serde(default)]
    pub features: Vec<String>,
}

impl Versions {
    /// What this build speaks.
    pub fn ours() -> Self {
        Self {
            version: PROTOCOL_VERSION,
            min_version: Some(MIN_PROTOCOL_VERSION),
            features: FEATURES.iter().map(|f| f.to_string()).collect(),
        }
    }

    /// The versions spoken, lowest to highest (empty if a sender claims a
    /// minimum above its maximum).
    pub fn range(&self) -> VersionRange {
        VersionRange {
            min: self.min_version.unwrap_or(self.version),
            max: self.version,
        }
    }

    /// The version both sides use: the lower of the two highest versions,
    /// if both sides speak it.
    pub fn agree(&self, theirs: &Versions) -> Result<u32, VersionMismatch> {
        let (ours, theirs) = (self.range(), theirs.range());
        let version = ours.max.min(theirs.max);
        if version >= ours.min && version >= theirs.min {
            Ok(version)
        } else {
            Err(VersionMismatch { ours, theirs })
        }
    }
}

/// The version this build and the sender of `theirs` use on a link, or why
/// they have none in common (then the receiver sends `version_mismatch`
/// and closes). Both machines call it on the other side's `hello`.
pub fn negotiate(theirs: &Versions) -> Result<u32, VersionMismatch> {
    Versions::ours().agree(theirs)
}

/// The protocol versions one side speaks, `min..=max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionRange {
    pub min: u32,
    pub max: u32,
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min == self.max {
            write!(f, "version {}", self.max)
        } else {
            write!(f, "versions {} to {}", self.min, self.max)
        }
    }
}

/// Two sides without a protocol version in common.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("this side speaks protocol {ours}, the other side {theirs}; upgrade the older side")]
pub struct VersionMismatch {
    pub ours: VersionRange,
    pub theirs: VersionRange,
}

/// What a registered peer says about taking a chat request. A peer has
/// room for `--max-chats` chats; a call ringing there, either way, takes
/// one of them as a conversation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerStatus {
    /// No chat and no call ringing.
    Available,
    /// Some chats or calls, still taking calls.
    Chatting,
    /// No room for another chat: a call gets `busy`.
    Busy,
    /// A status this build does not know (sent by a newer peer or server).
    #[serde(other)]
    Unknown,
}

impl fmt::Display for PeerStatus {
    /// Pads like a string, so tables can align statuses with `{:<9}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            PeerStatus::Available => "available",
            PeerStatus::Chatting => "chatting",
            PeerStatus::Busy => "busy",
            PeerStatus::Unknown => "unknown",
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
    /// Whether the server could open a connection to `addr` when the peer
    /// registered. False for a peer behind a NAT or firewall: callers
    /// cannot reach it, but it can call them.
    pub reachable: bool,
    /// The key the peer proved on its server link (64 hex digits): the
    /// one its chat handshakes must prove too, compared in full (never
    /// by fingerprint). Absent from a server too old to list keys: such a
    /// peer cannot be verified, and natter refuses chats with it
    /// (`identity_mismatch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PublicKey>,
}

/// Declares [`ErrorCode`] from one list, so the enum, its wire names and
/// [`ErrorCode::ALL`] cannot drift apart.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// Machine-readable error codes, shared by the wire `error` message
        /// and the `error` event of `natter peer --json`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum ErrorCode {
            $($(#[$doc])* #[serde(rename = $name)] $variant,)*
            /// Any code this build does not know (sent by a newer peer).
            #[serde(other, rename = "unknown")]
            Unknown,
        }

        impl ErrorCode {
            /// Every code, `unknown` last: what `docs/PROTOCOL.md` lists.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)* ErrorCode::Unknown];

            /// The snake_case name used on the wire and in events.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)*
                    ErrorCode::Unknown => "unknown",
                }
            }
        }
    };
}

error_codes! {
    NameTaken = "name_taken",
    AddrTaken = "addr_taken",
    ServerFull = "server_full",
    BindFailed = "bind_failed",
    ServerUnreachable = "server_unreachable",
    UnknownPeer = "unknown_peer",
    PeerUnreachable = "peer_unreachable",
    MessageTooLong = "message_too_long",
    NotInChat = "not_in_chat",
    NoRequest = "no_request",
    UnknownCommand = "unknown_command",
    BadInput = "bad_input",
    VersionMismatch = "version_mismatch",
    AlreadyInChat = "already_in_chat",
    /// A call is already ringing; wait for it or `/leave` to cancel it.
    RequestPending = "request_pending",
    /// `/connect` with `--max-chats` chats open (calls ringing either way
    /// count): leave one first.
    ChatsFull = "chats_full",
    /// A name that is not 1–32 of `A-Z a-z 0-9 _ -`.
    InvalidName = "invalid_name",
    /// A line that is not a valid frame (bad JSON, bad fields, …).
    BadFrame = "bad_frame",
    /// A line longer than the frame limit.
    FrameTooLong = "frame_too_long",
    /// A request that needs registration came before `registered`.
    NotRegistered = "not_registered",
    /// `hello` or `register` did not arrive in time.
    Timeout = "timeout",
    /// The peer hello named someone else than the peer we dialled.
    WrongPeer = "wrong_peer",
    /// The transcript could not be written; the message was not
    /// acknowledged.
    TranscriptFailed = "transcript_failed",
    /// Too many requests in too short a time; the connection is closed.
    RateLimited = "rate_limited",
    /// Too many connections from one IP address.
    TooManyConnections = "too_many_connections",
    /// A newer session with the same key registered the name; this one
    /// is closed.
    Replaced = "replaced",
    /// The other side's key is not the one pinned for its name (trust on
    /// first use): the chat is refused.
    KeyChanged = "key_changed",
    /// The server's key is not the one pinned for its address: the peer
    /// does not talk to it.
    ServerKeyChanged = "server_key_changed",
    /// The other side's key is not the one the directory lists for its
    /// name (or the directory lists no key, or nobody, under that name):
    /// the chat is refused.
    IdentityMismatch = "identity_mismatch",
    /// A caller whose key is not pinned, and no directory to check it
    /// against (not connected, or no answer in time): the call is refused.
    CannotVerify = "cannot_verify",
    /// A transcript quota (per chat or per day) is reached: the chat is
    /// ended (`chat_ended.reason` `quota` on both sides).
    TranscriptQuota = "transcript_quota",
    /// The server is cut off from the store it shares with other servers
    /// (or the store did not answer in time): it takes no registration
    /// now. Passes by itself; a peer retries.
    StoreUnavailable = "store_unavailable",
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
        #[serde(flatten)]
        versions: Versions,
    },
    /// Claim `name`; the server pairs it with the IP it observes and `port`,
    /// the port this peer listens on for chats.
    Register {
        name: String,
        port: u16,
    },
    /// Ask for every other peer; answered by one or more `peers` frames
    /// that repeat `id`.
    List {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    /// Ask for one peer by name (any case); answered by `found`, which
    /// repeats `id`.
    Lookup {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        name: String,
    },
    /// Tell the server whether this peer is free.
    Status {
        status: PeerStatus,
    },
    /// Ask to be told who comes, goes and changes status (`presence`
    /// frames) from now on, for as long as the connection lasts. No
    /// answer: a server too old to know it skips it, and sends none.
    Subscribe,
    Ping,
    Pong,
    /// Deregister and close.
    Bye,
}

impl ClientMsg {
    /// The id of a request that gets an answer, which the answer (or an
    /// error refusing it) repeats.
    pub fn request_id(&self) -> Option<u64> {
        match self {
            ClientMsg::List { id } | ClientMsg::Lookup { id, .. } => *id,
            _ => None,
        }
    }
}

/// Server → peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// First frame on the connection, sent in answer to the client's hello.
    Hello {
        #[serde(flatten)]
        versions: Versions,
    },
    /// Registration succeeded; `addr` is the address others will dial, and
    /// `reachable` whether the server could connect to it.
    Registered {
        name: String,
        addr: SocketAddr,
        reachable: bool,
    },
    /// One chunk of a list answer; `more` is false on the last chunk.
    Peers {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        peers: Vec<PeerInfo>,
        more: bool,
    },
    /// Answer to `lookup`: `peer` is absent when nobody has that name.
    Found {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<PeerInfo>,
    },
    /// A refused request.
    Error {
        /// The id of the request refused, if it had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        code: ErrorCode,
        message: String,
        /// Whether the server closes the connection right after this frame.
        #[serde(default)]
        close: bool,
    },
    /// Changes of the directory since the last `presence` frame (to a
    /// subscriber only), coalesced and in the order they happened; the
    /// subscriber's own changes left out.
    Presence {
        changes: Vec<PresenceChange>,
    },
    /// More changes piled up for this subscriber than one frame holds:
    /// they were dropped; `list` again to know who is online. Changes
    /// after this frame come in `presence` frames as before.
    PresenceResync,
    Ping,
    Pong,
}

/// One entry of a `presence` frame: `"change"` says which.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum PresenceChange {
    /// A peer registered (or registered again, with a new address or key:
    /// its entry replaces the old one); the entry as `list` shows it.
    Online(PeerInfo),
    /// A peer left the directory.
    Offline { name: String },
    /// A listed peer's status changed.
    Status { name: String, status: PeerStatus },
    /// A change this build does not know (sent by a newer server).
    #[serde(other)]
    Unknown,
}

impl PresenceChange {
    /// The name of the peer the change is about (none for an unknown one).
    pub fn name(&self) -> Option<&str> {
        match self {
            PresenceChange::Online(info) => Some(&info.name),
            PresenceChange::Offline { name } | PresenceChange::Status { name, .. } => Some(name),
            PresenceChange::Unknown => None,
        }
    }
}

/// Peer ↔ peer, on the direct chat link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PeerMsg {
    /// First frame each way. The caller's hello is the chat request.
    Hello {
        #[serde(flatten)]
        versions: Versions,
        name: String,
        /// The longest message (in characters) the sender takes; a longer
        /// `msg` is refused with `message_too_long` and ends the chat.
        /// Absent: the default of 256.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_message: Option<usize>,
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
    /// A refused frame or handshake.
    Error {
        code: ErrorCode,
        message: String,
        /// Whether the sender closes the link right after this frame.
        #[serde(default)]
        close: bool,
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
            id: None,
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
    fn hello_carries_the_version_range_and_features_on_both_links() {
        let hello = ClientMsg::Hello {
            versions: Versions::ours(),
        };
        assert_eq!(
            serde_json::to_string(&hello).unwrap(),
            r#"{"type":"hello","version":2,"min_version":2,"features":[]}"#
        );
        let hello = PeerMsg::Hello {
            versions: Versions::ours(),
            name: "alice".into(),
            max_message: None,
        };
        assert_eq!(
            serde_json::to_string(&hello).unwrap(),
            r#"{"type":"hello","version":2,"min_version":2,"features":[],"name":"alice"}"#
        );
    }

    #[test]
    fn both_sides_use_the_highest_common_version() {
        let speaks = |min, max| Versions {
            version: max,
            min_version: Some(min),
            features: vec!["future".into()],
        };
        assert_eq!(speaks(2, 2).agree(&speaks(2, 5)), Ok(2));
        assert_eq!(speaks(2, 5).agree(&speaks(2, 2)), Ok(2));
        assert_eq!(speaks(2, 4).agree(&speaks(3, 6)), Ok(4));
        assert!(speaks(2, 2).agree(&speaks(3, 4)).is_err());
        assert!(speaks(3, 4).agree(&speaks(2, 2)).is_err());
        assert!(speaks(2, 2).agree(&speaks(5, 2)).is_err(), "min above max");
    }

    #[test]
    fn a_version_1_hello_is_refused_naming_both_ranges() {
        let parsed: ClientMsg = serde_json::from_str(r#"{"type":"hello","version":1}"#).unwrap();
        let ClientMsg::Hello { versions } = parsed else {
            panic!("not a hello");
        };
        let mismatch = negotiate(&versions).unwrap_err();
        assert_eq!(
            mismatch.to_string(),
            "this side speaks protocol version 2, the other side version 1; upgrade the older side"
        );
        let newer = Versions {
            version: 4,
            min_version: Some(3),
            features: vec![],
        };
        assert_eq!(
            negotiate(&newer).unwrap_err().theirs.to_string(),
            "versions 3 to 4"
        );
    }

    #[test]
    fn answers_repeat_the_request_id() {
        let list: ClientMsg = serde_json::from_str(r#"{"type":"list","id":7}"#).unwrap();
        assert_eq!(list, ClientMsg::List { id: Some(7) });
        assert_eq!(list.request_id(), Some(7));
        let lookup: ClientMsg =
            serde_json::from_str(r#"{"type":"lookup","id":8,"name":"bob"}"#).unwrap();
        assert_eq!(lookup.request_id(), Some(8));
        let plain: ClientMsg = serde_json::from_str(r#"{"type":"list"}"#).unwrap();
        assert_eq!(plain.request_id(), None);
        assert_eq!(serde_json::to_string(&plain).unwrap(), r#"{"type":"list"}"#);
        let found = ServerMsg::Found {
            id: Some(8),
            name: "bob".into(),
            peer: None,
        };
        assert_eq!(
            serde_json::to_string(&found).unwrap(),
            r#"{"type":"found","id":8,"name":"bob"}"#
        );
    }

    #[test]
    fn an_error_says_whether_the_connection_closes_and_parses_without_it() {
        let error = ServerMsg::Error {
            id: None,
            code: ErrorCode::NameTaken,
            message: "m".into(),
            close: false,
        };
        assert_eq!(
            serde_json::to_string(&error).unwrap(),
            r#"{"type":"error","code":"name_taken","message":"m","close":false}"#
        );
        let parsed: PeerMsg =
            serde_json::from_str(r#"{"type":"error","code":"bad_frame","message":"m"}"#).unwrap();
        assert!(matches!(parsed, PeerMsg::Error { close: false, .. }));
    }

    #[test]
    fn a_listed_peer_carries_its_whole_key_and_parses_without_one() {
        let key: PublicKey = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
            .parse()
            .unwrap();
        let info = PeerInfo {
            name: "bob".into(),
            addr: "10.0.0.3:4000".parse().unwrap(),
            status: PeerStatus::Available,
            reachable: true,
            key: Some(key),
        };
        let json = serde_json::to_string(&info).unwrap();
        assert_eq!(
            json,
            r#"{"name":"bob","addr":"10.0.0.3:4000","status":"available","reachable":true,"key":"8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"}"#
        );
        assert_eq!(serde_json::from_str::<PeerInfo>(&json).unwrap(), info);
        // An older server lists no key: the entry parses, without one.
        let older: PeerInfo = serde_json::from_str(
            r#"{"name":"bob","addr":"10.0.0.3:4000","status":"available","reachable":true}"#,
        )
        .unwrap();
        assert_eq!(older.key, None);
    }

    #[test]
    fn a_list_chunk_of_the_longest_entries_with_keys_fits_a_frame() {
        let longest = PeerInfo {
            name: "x".repeat(crate::text::MAX_NAME),
            addr: "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"
                .parse()
                .unwrap(),
            status: PeerStatus::Available,
            reachable: false,
            key: Some(PublicKey::from_bytes([0xff; 32])),
        };
        let chunk = ServerMsg::Peers {
            id: Some(u64::MAX),
            peers: vec![longest; LIST_CHUNK],
            more: true,
        };
        let line = serde_json::to_string(&chunk).unwrap();
        assert!(line.len() < MAX_FRAME, "{} bytes", line.len());
    }

    #[test]
    fn presence_frames_have_the_documented_shape_and_unknown_changes_parse() {
        assert_eq!(
            serde_json::to_string(&ClientMsg::Subscribe).unwrap(),
            r#"{"type":"subscribe"}"#
        );
        let presence = ServerMsg::Presence {
            changes: vec![
                PresenceChange::Offline { name: "bob".into() },
                PresenceChange::Status {
                    name: "carol".into(),
                    status: PeerStatus::Busy,
                },
            ],
        };
        assert_eq!(
            serde_json::to_string(&presence).unwrap(),
            r#"{"type":"presence","changes":[{"change":"offline","name":"bob"},{"change":"status","name":"carol","status":"busy"}]}"#
        );
        assert_eq!(
            serde_json::to_string(&ServerMsg::PresenceResync).unwrap(),
            r#"{"type":"presence_resync"}"#
        );
        let newer: ServerMsg = serde_json::from_str(
            r#"{"type":"presence","changes":[{"change":"away","name":"bob","until":3}]}"#,
        )
        .unwrap();
        assert_eq!(
            newer,
            ServerMsg::Presence {
                changes: vec![PresenceChange::Unknown]
            }
        );
    }

    #[test]
    fn unknown_statuses_from_newer_peers_parse_as_unknown() {
        let parsed: ClientMsg =
            serde_json::from_str(r#"{"type":"status","status":"away"}"#).unwrap();
        assert_eq!(
            parsed,
            ClientMsg::Status {
                status: PeerStatus::Unknown
            }
        );
        let busy: ClientMsg = serde_json::from_str(r#"{"type":"status","status":"busy"}"#).unwrap();
        assert_eq!(
            busy,
            ClientMsg::Status {
                status: PeerStatus::Busy
            }
        );
    }

    #[test]
    fn unknown_error_codes_from_newer_peers_still_parse() {
        let parsed: ServerMsg =
            serde_json::from_str(r#"{"type":"error","code":"shiny_new","message":"x"}"#).unwrap();
        assert_eq!(
            parsed,
            ServerMsg::Error {
                id: None,
                code: ErrorCode::Unknown,
                message: "x".into(),
                close: false,
            }
        );
    }

    /// The first cell of each row of the error-code table in
    /// docs/PROTOCOL.md.
    fn documented_codes() -> Vec<&'static str> {
        let doc = include_str!("../../docs/PROTOCOL.md");
        let table = doc
            .split("\n## Error codes\n")
            .nth(1)
            .expect("docs/PROTOCOL.md has an Error codes section");
        let table = table.split("\n## ").next().unwrap_or(table);
        table
            .lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|rest| rest.split_once('`').map(|(code, _)| code))
            .collect()
    }

    #[test]
    fn the_documented_error_codes_are_exactly_the_codes_of_the_code() {
        let documented = documented_codes();
        let known: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        for code in &known {
            assert!(
                documented.contains(code),
                "{code} is not documented in docs/PROTOCOL.md"
            );
        }
        for code in &documented {
            assert!(
                known.contains(code),
                "docs/PROTOCOL.md documents {code}, which the code does not have"
            );
        }
        assert_eq!(documented.len(), known.len(), "each code documented once");
    }

    #[test]
    fn error_code_names_match_serde() {
        for &code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
        }
    }
}
