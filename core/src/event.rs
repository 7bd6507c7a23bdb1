//! What a peer tells its user: the `--json` events of docs/EVENTS.md.
//!
//! Events carry codes and typed fields only, never sentences: the words a
//! person reads are written in one place, the `natter` binary's renderer,
//! shared by the line mode, the terminal UI and the `message` field that
//! `--json` adds to every `error` event.

use crate::identity::Fingerprint;
use crate::protocol::{ErrorCode, PeerInfo, PeerStatus};
use serde::Serialize;
use std::fmt;
use std::net::SocketAddr;

/// Why a chat ended, as SPEC.md names it in `chat_ended.reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatEndReason {
    /// This user left (`/leave`, `exit()`, `/quit`, end of input).
    Left,
    /// The partner said goodbye (`bye`).
    PeerLeft,
    /// The connection closed without a goodbye, went silent, or the
    /// partner broke the protocol.
    PeerLost,
    /// The partner stopped reading and was cut off.
    Cut,
    /// A transcript quota (per chat or per day) was reached: ours, or the
    /// partner's (it said so).
    Quota,
}

impl fmt::Display for ChatEndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChatEndReason::Left => "left",
            ChatEndReason::PeerLeft => "peer_left",
            ChatEndReason::PeerLost => "peer_lost",
            ChatEndReason::Cut => "cut",
            ChatEndReason::Quota => "quota",
        })
    }
}

/// What exactly ended a chat: finer than [`ChatEndReason`], so that a
/// killed partner is never reported as one who said goodbye.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndCause {
    /// This user left.
    Left,
    /// The partner sent `bye`.
    Bye,
    /// The connection closed without `bye` (the partner's process was
    /// killed or crashed, or its machine reset the connection).
    Closed,
    /// Nothing heard from the partner for the heartbeat timeout.
    Silent,
    /// The partner sent something that breaks the protocol.
    BadFrame,
    /// The partner stopped reading what we sent.
    Cut,
    /// Our transcript quota was reached.
    Quota,
    /// The partner's transcript quota was reached (its `error` said so).
    PeerQuota,
}

impl EndCause {
    /// The coarser reason SPEC.md names.
    pub fn reason(self) -> ChatEndReason {
        match self {
            EndCause::Left => ChatEndReason::Left,
            EndCause::Bye => ChatEndReason::PeerLeft,
            EndCause::Closed | EndCause::Silent | EndCause::BadFrame => ChatEndReason::PeerLost,
            EndCause::Cut => ChatEndReason::Cut,
            EndCause::Quota | EndCause::PeerQuota => ChatEndReason::Quota,
        }
    }
}

impl fmt::Display for EndCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EndCause::Left => "left",
            EndCause::Bye => "bye",
            EndCause::Closed => "closed",
            EndCause::Silent => "silent",
            EndCause::BadFrame => "bad_frame",
            EndCause::Cut => "cut",
            EndCause::Quota => "quota",
            EndCause::PeerQuota => "peer_quota",
        })
    }
}

/// One event for the user. With `--json` each is printed as one line,
/// `{"event": "<snake_case name>", …fields}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Registered with the server; `addr` is how the server sees us and
    /// `reachable` whether the server could connect back to it.
    Registered {
        name: String,
        addr: SocketAddr,
        server: SocketAddr,
        reachable: bool,
        /// Of this peer's own key: what partners see.
        fingerprint: Fingerprint,
        /// Of the server's key, which its first log line shows too.
        server_fingerprint: Fingerprint,
        /// True when the server's key was pinned just now, at our first
        /// registration with that address (trust on first use): the
        /// moment to compare `server_fingerprint` with the server's.
        new_server: bool,
    },
    /// Answer to `/list`: every other peer, however many chunks it took.
    Peers { peers: Vec<ListedPeer> },
    /// Live presence: a peer registered (or registered again, with a new
    /// address or key: its entry replaces the old one).
    PeerOnline {
        #[serde(flatten)]
        peer: ListedPeer,
    },
    /// Live presence: a peer left the directory.
    PeerOffline { name: String },
    /// Live presence: a listed peer's status changed.
    PeerStatus { name: String, status: PeerStatus },
    /// Our call to `peer` is ringing there (`/cancel` or `/leave` stops it).
    Calling { peer: String },
    /// Someone asks to chat: `/accept` or `/reject`. `fingerprint`: of
    /// the key the caller's handshake proved.
    Incoming {
        peer: String,
        addr: SocketAddr,
        fingerprint: Fingerprint,
    },
    /// The chat is on; `fingerprint` of the key the partner's handshake
    /// proved (compare it out of band to be sure who it is).
    ChatStarted {
        peer: String,
        fingerprint: Fingerprint,
        /// True when the partner's key was pinned just now, on first
        /// contact; from then on another key for that name is refused.
        new_contact: bool,
    },
    /// Our request was rejected.
    Rejected { peer: String },
    /// The peer we called has no room for another chat.
    Busy { peer: String },
    /// The peer we called did not answer within the ring timeout.
    NoAnswer { peer: String },
    /// We cancelled our own ringing call.
    Cancelled { peer: String },
    /// A caller gave up, went away or rang too long before we answered,
    /// or called while we had no room.
    Missed { peer: String },
    /// More calls ended unanswered (or callers were refused) in the last
    /// `interval_ms` than are shown one by one: how many, how many of
    /// them were refused, and the first names (sorted). At most one per
    /// interval, after its first `missed` notices (see `peer::missed`).
    MissedCalls {
        count: usize,
        refused: usize,
        peers: Vec<String>,
        interval_ms: u64,
    },
    /// We rejected a request (the answer to `/reject`).
    Declined { peer: String },
    /// Our message `n` is taken: on its way, or waiting for the window
    /// (see `window_full`).
    Sent { peer: String, n: u64, text: String },
    /// `peer` has `in_flight` of our messages without receipt, the most
    /// the window allows: `waiting` more wait to be sent. Commands still
    /// work; typed messages wait (up to a bound, then input pauses).
    WindowFull {
        peer: String,
        in_flight: usize,
        waiting: usize,
    },
    /// Message `n` from `peer`; `at` is the sender's clock (RFC 3339).
    Message {
        peer: String,
        n: u64,
        text: String,
        at: String,
    },
    /// Our message `n` is recorded in the partner's transcript.
    Delivered { peer: String, n: u64 },
    /// The chat is over; `undelivered` lists our messages without
    /// receipt (they may or may not have reached the partner).
    ChatEnded {
        peer: String,
        reason: ChatEndReason,
        cause: EndCause,
        undelivered: Vec<u64>,
    },
    /// The answer to `/verify`: the same `number` shows on both sides of
    /// an honest chat; a different one means someone sits in between.
    SafetyNumber { peer: String, number: String },
    /// The answer to `/trust NAME`: the key the directory lists for
    /// `peer` now is pinned (replacing any older pin); chats with that
    /// key are accepted from now on.
    Trusted {
        peer: String,
        fingerprint: Fingerprint,
    },
    /// The link to the directory server broke; chats go on, natter
    /// reconnects by itself.
    ServerLost,
    /// Registered again after `server_lost`: with the same server, or,
    /// when several addresses were given, perhaps another one. The
    /// fields are those of [`Event::Registered`] that may differ from
    /// one server to the next.
    Reregistered {
        addr: SocketAddr,
        server: SocketAddr,
        reachable: bool,
        server_fingerprint: Fingerprint,
        /// True when this server's key was pinned just now: the first
        /// registration with its address (compare `server_fingerprint`).
        new_server: bool,
    },
    /// The answer to `/help`: the commands, as typed.
    Help { commands: Vec<String> },
    /// Plain lines go to the chat with `peer` from now on: after
    /// `/switch`, or because the focused chat ended (or is being left)
    /// and `peer`'s is the most recently started of the others. A chat
    /// that starts takes the focus too, which `chat_started` says.
    Focused { peer: String },
    /// The answer to `/chats`: every chat and call, by name.
    Chats { chats: Vec<ChatEntry> },
    Error {
        code: ErrorCode,
        #[serde(flatten)]
        detail: ErrorDetail,
    },
}

/// One entry of `chats`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChatEntry {
    pub peer: String,
    pub state: ChatState,
}

/// Where a chat is, as `/chats` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatState {
    /// Our call rings there.
    Calling,
    /// Its request waits for our answer.
    Incoming,
    /// A conversation.
    Talking,
    /// `/leave` was typed; the last receipts are awaited.
    Leaving,
}

/// One entry of `peers`: the directory's entry, with the fingerprint of
/// the key it lists instead of the key itself (people compare
/// fingerprints; natter compares the whole key when it calls).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ListedPeer {
    pub name: String,
    pub addr: SocketAddr,
    pub status: PeerStatus,
    pub reachable: bool,
    /// Of the key the directory lists; absent when it lists none (a
    /// server too old to list keys): such a peer cannot be verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
}

impl From<PeerInfo> for ListedPeer {
    fn from(info: PeerInfo) -> Self {
        Self {
            fingerprint: info.key.map(|key| key.fingerprint()),
            name: info.name,
            addr: info.addr,
            status: info.status,
            reachable: info.reachable,
        }
    }
}

/// The typed facts of an `error` event: which situation it is (`detail`)
/// and the values a sentence about it needs. Several details may share a
/// code (`peer_unreachable` has four), a code is what programs match on,
/// the detail what the renderer words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "detail", rename_all = "snake_case")]
pub enum ErrorDetail {
    // ---- start-up ----
    /// `--name` is not 1–32 of `A-Z a-z 0-9 _ -`.
    OwnNameInvalid {
        name: String,
    },
    /// `--max-message` is outside what a frame can carry.
    MessageLimitOutOfRange {
        max_message: usize,
        longest: usize,
    },
    /// The server could not be reached to register at all.
    ServerDown {
        server: SocketAddr,
        reason: String,
    },
    /// None of several server addresses could be reached to register at
    /// all: each one tried, in order, and why it failed.
    ServersDown {
        servers: Vec<ServerFailure>,
    },
    /// The transcripts storage cannot be used.
    TranscriptsUnusable {
        reason: String,
    },
    /// No platform data directory (HOME unset?) and no `--transcripts`.
    NoDataDir,
    /// `--server` names no address that can be used.
    ServerAddress {
        server: String,
        reason: String,
    },
    /// The chat port cannot be listened on.
    BindFailed {
        port: u16,
        reason: String,
    },
    /// The command line itself is wrong (an unknown flag, a missing
    /// `--name`): `problem` is what the argument parser said.
    BadArguments {
        problem: String,
    },
    /// This peer's key file cannot be read or created.
    IdentityUnusable {
        reason: String,
    },
    /// The terminal cannot be used for the line editor.
    Terminal {
        reason: String,
    },

    // ---- typed lines ----
    UnknownCommand {
        command: String,
    },
    TakesNoArguments {
        command: String,
    },
    /// A command with wrong arguments; `usage` is how to type it.
    Usage {
        usage: String,
    },
    /// `/connect WORD` where WORD is neither a name nor an address.
    BadTarget {
        word: String,
    },
    /// A command typed after `/quit`.
    Quitting,

    // ---- calling ----
    /// `/connect` to one's own name or address.
    CallingYourself,
    /// `/connect` to someone we chat with.
    AlreadyInChat {
        peer: String,
    },
    /// `/connect` to someone our call already rings at.
    CallRinging {
        peer: String,
    },
    /// `/connect` with `max` chats open (calls ringing either way count).
    ChatsFull {
        max: usize,
    },
    /// `/connect` to someone whose request waits for our answer.
    RequestWaiting {
        peer: String,
    },
    /// Nobody of that name is registered.
    NoSuchPeer {
        name: String,
    },
    /// The directory says the server could not connect to that peer
    /// (behind a NAT or a firewall): it must call us instead.
    NotCallable {
        peer: String,
    },
    /// The connection to the peer could not be opened.
    ConnectFailed {
        peer: String,
        addr: SocketAddr,
        reason: String,
    },
    /// The peer closed the connection before answering our call.
    ClosedBeforeAnswer {
        peer: String,
    },
    /// The peer went silent before answering our call.
    StoppedAnswering {
        peer: String,
    },
    /// The peer that answered at an address is not the one we dialled.
    WrongPeer {
        addr: SocketAddr,
        expected: String,
        answered: String,
    },
    /// The peer that answered sent a name that is not a valid name.
    PeerNameInvalid {
        addr: SocketAddr,
    },
    /// The peer speaks no protocol version we speak.
    PeerVersion {
        peer: String,
        version: u32,
        min_version: u32,
    },

    // ---- chatting ----
    /// `/accept` or `/reject` with nobody asking.
    NoRequest,
    /// `/accept NAME` or `/reject NAME` with no request from `peer`.
    NoRequestFrom {
        peer: String,
    },
    /// `/cancel NAME` with no call of ours ringing at `peer`.
    NoCallTo {
        peer: String,
    },
    /// A command that needs a chat, with none on.
    NotInChat,
    /// `/msg`, `/switch`, `/leave` or `/verify` with a name we do not
    /// chat with.
    NotChattingWith {
        peer: String,
    },
    /// A message typed while our own call still rings.
    StillRinging {
        peer: String,
    },
    /// `/leave` typed twice.
    AlreadyLeaving {
        peer: String,
    },
    /// A message longer than our `--max-message`.
    MessageTooLong {
        chars: usize,
        max: usize,
    },
    /// A message longer than the partner takes.
    MessageTooLongForPeer {
        peer: String,
        chars: usize,
        max: usize,
    },
    /// The other side's key differs from the one pinned for its name at
    /// an earlier chat: someone else may be using the name, or the
    /// partner has a new key (reinstalled); the chat is refused.
    KeyChanged {
        peer: String,
        expected: Fingerprint,
        presented: Fingerprint,
    },
    /// The other side proved another key than the one the directory
    /// lists for its name: someone else answers (or calls) under that
    /// name, or the directory lies; the chat is refused.
    IdentityMismatch {
        peer: String,
        /// Of the key the directory lists.
        expected: Fingerprint,
        /// Of the key the other side proved.
        presented: Fingerprint,
    },
    /// A caller claims a name the directory does not have: it cannot be
    /// who it says; the call is refused.
    NotListed {
        peer: String,
        presented: Fingerprint,
    },
    /// The directory lists the name without a key (a server too old to
    /// list keys): nothing to check the other side against; the chat is
    /// refused.
    ListedWithoutKey {
        peer: String,
        presented: Fingerprint,
    },
    /// A caller whose key is not pinned, while the directory cannot be
    /// asked (not connected, or no answer in time): the call is refused.
    CannotVerify {
        peer: String,
        presented: Fingerprint,
    },
    /// `/trust NAME` for a name the directory lists without a key.
    NoKeyToTrust {
        peer: String,
    },
    /// The server at `server` proved another key than the one pinned for
    /// that address at an earlier run: another machine may be answering
    /// there (or the operator gave the server a new key).
    ServerKeyChanged {
        server: SocketAddr,
        expected: Fingerprint,
        presented: Fingerprint,
    },
    /// Another session with our key (the same identity started elsewhere)
    /// registered our name: the server dropped this one, which stops
    /// registering so the two do not take turns.
    Replaced {
        name: String,
    },
    /// A typed message with control characters in it.
    ControlCharacters,
    /// The partner sent a frame that breaks the protocol.
    PeerBadFrame {
        peer: String,
        problem: String,
    },
    /// The partner sent an `error` frame; `text` is its own words, made
    /// safe to show (not `message`: `--json` adds that field itself).
    PeerSaid {
        peer: String,
        text: String,
    },

    // ---- the server ----
    /// A request that needs the server while natter is reconnecting.
    ServerNotConnected {
        request: Request,
    },
    /// A request that needs the server after natter stopped using it
    /// (`replaced`, `server_key_changed`): only a restart brings it back.
    ServerStopped {
        request: Request,
    },
    /// The server link broke before the request was answered.
    RequestLost {
        request: Request,
    },
    /// The server sent an `error` frame; `text` is its own words, made
    /// safe to show.
    ServerSaid {
        text: String,
    },
    /// The server speaks no protocol version we speak.
    ServerVersion {
        version: u32,
        min_version: u32,
    },
    /// The server refused the connection for now (too many from this
    /// address); natter retries.
    Retrying {
        server_message: String,
        retry_in_ms: u64,
    },

    // ---- transcripts ----
    /// A transcript line could not be written.
    TranscriptWrite {
        file: String,
        reason: String,
    },
    /// A received message could not be recorded, so no receipt was sent.
    NotRecorded {
        peer: String,
        n: u64,
        reason: String,
    },
    /// The transcript quota (`scope`: of this chat, or of the day) is
    /// reached: the chat with `peer` is ended.
    QuotaReached {
        peer: String,
        scope: QuotaScope,
        limit: u64,
    },
    /// The partner sent a message longer than our `--max-message` (which
    /// our hello announced): refused, the chat is ended.
    PartnerMessageTooLong {
        peer: String,
        n: u64,
        chars: usize,
        max: usize,
    },
}

/// Which transcript quota was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaScope {
    /// `--transcript-quota-chat`: bytes in one chat's transcript.
    Chat,
    /// `--transcript-quota-day`: bytes in all transcripts in one UTC day.
    Day,
}

impl fmt::Display for QuotaScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QuotaScope::Chat => "chat",
            QuotaScope::Day => "day",
        })
    }
}

/// One server address that could not be reached, in `servers_down`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServerFailure {
    pub server: SocketAddr,
    pub reason: String,
}

/// A request to the server, named in errors about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    List,
    Lookup,
    /// The lookup of `/trust NAME`.
    Trust,
}

/// A refused command or a failure: the code and its typed detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub code: ErrorCode,
    pub detail: ErrorDetail,
}

impl Problem {
    pub fn new(code: ErrorCode, detail: ErrorDetail) -> Self {
        Self { code, detail }
    }
}

impl From<Problem> for Event {
    fn from(problem: Problem) -> Self {
        Event::Error {
            code: problem.code,
            detail: problem.detail,
        }
    }
}

impl Event {
    pub fn error(code: ErrorCode, detail: ErrorDetail) -> Self {
        Event::Error { code, detail }
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
            cause: EndCause::Closed,
            undelivered: vec![3, 4],
        };
        assert_eq!(
            serde_json::to_string(&ended).unwrap(),
            r#"{"event":"chat_ended","peer":"bob","reason":"peer_lost","cause":"closed","undelivered":[3,4]}"#
        );
        assert_eq!(
            serde_json::to_string(&Event::ServerLost).unwrap(),
            r#"{"event":"server_lost"}"#
        );
        let err = Event::error(ErrorCode::NotInChat, ErrorDetail::NotInChat);
        assert_eq!(
            serde_json::to_string(&err).unwrap(),
            r#"{"event":"error","code":"not_in_chat","detail":"not_in_chat"}"#
        );
        let err = Event::error(
            ErrorCode::MessageTooLong,
            ErrorDetail::MessageTooLong {
                chars: 300,
                max: 256,
            },
        );
        assert_eq!(
            serde_json::to_string(&err).unwrap(),
            r#"{"event":"error","code":"message_too_long","detail":"message_too_long","chars":300,"max":256}"#
        );
    }

    #[test]
    fn every_lost_cause_is_reported_as_peer_lost() {
        for cause in [EndCause::Closed, EndCause::Silent, EndCause::BadFrame] {
            assert_eq!(cause.reason(), ChatEndReason::PeerLost);
        }
        assert_eq!(EndCause::Bye.reason(), ChatEndReason::PeerLeft);
    }
}
