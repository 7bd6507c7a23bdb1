//! docs/EVENTS.md is the user's copy of every `--json` event, field, error
//! code and error detail. These tests fail when that page and the code
//! drift apart: a name the code can print that the page does not explain,
//! or a name the page explains that the code no longer has.
//!
//! Error codes come from `ErrorCode::ALL`. The other enums are sampled
//! once per variant here, and each sample goes through a `match` without
//! a wildcard arm: a new variant does not compile until it has an arm
//! here, which is the moment to give it a sample and a line in the page.

use natter_core::command::HELP;
use natter_core::event::{
    ChatEndReason, ChatEntry, ChatState, EndCause, ErrorDetail, Event, ListedPeer, Request,
};
use natter_core::protocol::{ErrorCode, PeerInfo, PeerStatus};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::SocketAddr;

const DOC: &str = include_str!("../../docs/EVENTS.md");

// ---- the page ----

/// The text under `## {title}`, up to the next `## ` heading.
fn section(title: &str) -> &'static str {
    let start = DOC
        .find(&format!("\n## {title}\n"))
        .unwrap_or_else(|| panic!("docs/EVENTS.md has no section `## {title}`"));
    let body = &DOC[start + 1..];
    let end = body[3..].find("\n## ").map_or(body.len(), |i| i + 3);
    &body[..end]
}

/// The text under ``### `{name}` `` in `text`, up to the next heading.
fn subsection<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let start = text.find(&format!("\n### `{name}`\n"))?;
    let body = &text[start + 1..];
    let end = body[4..].find("\n#").map_or(body.len(), |i| i + 4);
    Some(&body[..end])
}

/// The names of the ``### `name` `` headings in `text`.
fn headings(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("### `")?.strip_suffix('`'))
        .map(str::to_string)
        .collect()
}

/// The body rows of the tables in `text` whose first cell is
/// `` `name` ``, by that name (a header row, above its `|---` line, is
/// not one).
fn rows(text: &str) -> Vec<(String, &str)> {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            !lines
                .get(i + 1)
                .is_some_and(|next| next.starts_with("|---"))
        })
        .filter_map(|(_, l)| {
            let name = l.strip_prefix("| `")?.split('`').next()?;
            Some((name.to_string(), *l))
        })
        .collect()
}

fn row<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    rows(text)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, l)| l)
}

fn serialized<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("serializes")
}

/// The name serde gives a unit variant.
fn name_of<T: Serialize>(value: &T) -> String {
    match serialized(value) {
        Value::String(name) => name,
        other => panic!("not a unit variant: {other}"),
    }
}

// ---- one sample of each variant ----

fn addr() -> SocketAddr {
    "127.0.0.1:4000".parse().unwrap()
}

fn listed_peer() -> ListedPeer {
    PeerInfo {
        name: "zuzu".into(),
        addr: addr(),
        status: PeerStatus::Available,
        reachable: true,
        key: Some(natter_core::Identity::from_seed(&[7; 32]).public()),
    }
    .into()
}

fn events() -> Vec<Event> {
    let peer = || "zuzu".to_string();
    let fingerprint = || {
        natter_core::Identity::from_seed(&[7; 32])
            .public()
            .fingerprint()
    };
    vec![
        Event::Registered {
            name: "alice".into(),
            addr: addr(),
            server: addr(),
            reachable: true,
            fingerprint: fingerprint(),
            server_fingerprint: fingerprint(),
            new_server: true,
        },
        Event::Peers {
            peers: vec![listed_peer()],
        },
        Event::PeerOnline {
            peer: listed_peer(),
        },
        Event::PeerOffline { name: peer() },
        Event::PeerStatus {
            name: peer(),
            status: PeerStatus::Busy,
        },
        Event::Calling { peer: peer() },
        Event::Incoming {
            peer: peer(),
            addr: addr(),
            fingerprint: fingerprint(),
        },
        Event::ChatStarted {
            peer: peer(),
            fingerprint: fingerprint(),
            new_contact: true,
        },
        Event::Rejected { peer: peer() },
        Event::Busy { peer: peer() },
        Event::NoAnswer { peer: peer() },
        Event::Cancelled { peer: peer() },
        Event::Missed { peer: peer() },
        Event::MissedCalls {
            count: 12,
            refused: 3,
            peers: vec![peer()],
            interval_ms: 10_000,
        },
        Event::Declined { peer: peer() },
        Event::Sent {
            peer: peer(),
            n: 1,
            text: "hi".into(),
        },
        Event::WindowFull {
            peer: peer(),
            in_flight: 64,
            waiting: 1,
        },
        Event::Message {
            peer: peer(),
            n: 1,
            text: "hi".into(),
            at: "2026-11-25T11:08:54.123Z".into(),
        },
        Event::Delivered { peer: peer(), n: 1 },
        Event::ChatEnded {
            peer: peer(),
            reason: ChatEndReason::PeerLost,
            cause: EndCause::Closed,
            undelivered: vec![2],
        },
        Event::SafetyNumber {
            peer: peer(),
            number: "12345 67890".into(),
        },
        Event::Trusted {
            peer: peer(),
            fingerprint: fingerprint(),
        },
        Event::ServerLost,
        Event::Reregistered {
            addr: addr(),
            server: addr(),
            reachable: true,
            server_fingerprint: fingerprint(),
            new_server: true,
        },
        Event::Help {
            commands: vec!["/list".into()],
        },
        Event::Focused { peer: peer() },
        Event::Chats {
            chats: vec![ChatEntry {
                peer: peer(),
                state: ChatState::Talking,
            }],
        },
        Event::error(ErrorCode::NotInChat, ErrorDetail::NotInChat),
    ]
}

/// The name docs/EVENTS.md gives each event.
fn event_name(event: &Event) -> &'static str {
    match event {
        Event::Registered { .. } => "registered",
        Event::Peers { .. } => "peers",
        Event::PeerOnline { .. } => "peer_online",
        Event::PeerOffline { .. } => "peer_offline",
        Event::PeerStatus { .. } => "peer_status",
        Event::Calling { .. } => "calling",
        Event::Incoming { .. } => "incoming",
        Event::ChatStarted { .. } => "chat_started",
        Event::Rejected { .. } => "rejected",
        Event::Busy { .. } => "busy",
        Event::NoAnswer { .. } => "no_answer",
        Event::Cancelled { .. } => "cancelled",
        Event::Missed { .. } => "missed",
        Event::MissedCalls { .. } => "missed_calls",
        Event::Declined { .. } => "declined",
        Event::Sent { .. } => "sent",
        Event::WindowFull { .. } => "window_full",
        Event::Message { .. } => "message",
        Event::Delivered { .. } => "delivered",
        Event::ChatEnded { .. } => "chat_ended",
        Event::SafetyNumber { .. } => "safety_number",
        Event::Trusted { .. } => "trusted",
        Event::ServerLost => "server_lost",
        Event::Reregistered { .. } => "reregistered",
        Event::Help { .. } => "help",
        Event::Focused { .. } => "focused",
        Event::Chats { .. } => "chats",
        Event::Error { .. } => "error",
    }
}

fn details() -> Vec<ErrorDetail> {
    use ErrorDetail as D;
    let peer = || "zuzu".to_string();
    let text = || "why".to_string();
    let fingerprint = |seed: u8| {
        natter_core::Identity::from_seed(&[seed; 32])
            .public()
            .fingerprint()
    };
    vec![
        D::OwnNameInvalid { name: text() },
        D::MessageLimitOutOfRange {
            max_message: 0,
            longest: 16_320,
        },
        D::ServerDown {
            server: addr(),
            reason: text(),
        },
        D::ServersDown {
            servers: vec![natter_core::ServerFailure {
                server: addr(),
                reason: text(),
            }],
        },
        D::TranscriptsUnusable { reason: text() },
        D::NoDataDir,
        D::ServerAddress {
            server: text(),
            reason: text(),
        },
        D::BindFailed {
            port: 4000,
            reason: text(),
        },
        D::Terminal { reason: text() },
        D::UnknownCommand { command: text() },
        D::TakesNoArguments { command: text() },
        D::Usage { usage: text() },
        D::BadArguments { problem: text() },
        D::IdentityUnusable { reason: text() },
        D::KeyChanged {
            peer: peer(),
            expected: fingerprint(1),
            presented: fingerprint(2),
        },
        D::IdentityMismatch {
            peer: peer(),
            expected: fingerprint(1),
            presented: fingerprint(2),
        },
        D::NotListed {
            peer: peer(),
            presented: fingerprint(2),
        },
        D::ListedWithoutKey {
            peer: peer(),
            presented: fingerprint(2),
        },
        D::CannotVerify {
            peer: peer(),
            presented: fingerprint(2),
        },
        D::NoKeyToTrust { peer: peer() },
        D::ServerKeyChanged {
            server: addr(),
            expected: fingerprint(1),
            presented: fingerprint(2),
        },
        D::Replaced { name: peer() },
        D::BadTarget { word: text() },
        D::Quitting,
        D::CallingYourself,
        D::AlreadyInChat { peer: peer() },
        D::CallRinging { peer: peer() },
        D::ChatsFull { max: 4 },
        D::RequestWaiting { peer: peer() },
        D::NoSuchPeer { name: peer() },
        D::NotCallable { peer: peer() },
        D::ConnectFailed {
            peer: peer(),
            addr: addr(),
            reason: text(),
        },
        D::ClosedBeforeAnswer { peer: peer() },
        D::StoppedAnswering { peer: peer() },
        D::WrongPeer {
            addr: addr(),
            expected: peer(),
            answered: text(),
        },
        D::PeerNameInvalid { addr: addr() },
        D::PeerVersion {
            peer: peer(),
            version: 3,
            min_version: 3,
        },
        D::NoRequest,
        D::NoRequestFrom { peer: peer() },
        D::NoCallTo { peer: peer() },
        D::NotInChat,
        D::NotChattingWith { peer: peer() },
        D::StillRinging { peer: peer() },
        D::AlreadyLeaving { peer: peer() },
        D::MessageTooLong {
            chars: 300,
            max: 256,
        },
        D::MessageTooLongForPeer {
            peer: peer(),
            chars: 300,
            max: 256,
        },
        D::ControlCharacters,
        D::PeerBadFrame {
            peer: peer(),
            problem: text(),
        },
        D::PeerSaid {
            peer: peer(),
            text: text(),
        },
        D::ServerNotConnected {
            request: Request::List,
        },
        D::ServerStopped {
            request: Request::List,
        },
        D::RequestLost {
            request: Request::Lookup,
        },
        D::ServerSaid { text: text() },
        D::ServerVersion {
            version: 3,
            min_version: 3,
        },
        D::Retrying {
            server_message: text(),
            retry_in_ms: 500,
        },
        D::TranscriptWrite {
            file: text(),
            reason: text(),
        },
        D::NotRecorded {
            peer: peer(),
            n: 1,
            reason: text(),
        },
        D::QuotaReached {
            peer: peer(),
            scope: natter_core::event::QuotaScope::Chat,
            limit: 16 << 20,
        },
        D::PartnerMessageTooLong {
            peer: peer(),
            n: 3,
            chars: 65_000,
            max: 256,
        },
    ]
}

/// The name docs/EVENTS.md gives each detail.
fn detail_name(detail: &ErrorDetail) -> &'static str {
    use ErrorDetail as D;
    match detail {
        D::OwnNameInvalid { .. } => "own_name_invalid",
        D::MessageLimitOutOfRange { .. } => "message_limit_out_of_range",
        D::ServerDown { .. } => "server_down",
        D::ServersDown { .. } => "servers_down",
        D::TranscriptsUnusable { .. } => "transcripts_unusable",
        D::NoDataDir => "no_data_dir",
        D::ServerAddress { .. } => "server_address",
        D::BindFailed { .. } => "bind_failed",
        D::Terminal { .. } => "terminal",
        D::UnknownCommand { .. } => "unknown_command",
        D::TakesNoArguments { .. } => "takes_no_arguments",
        D::Usage { .. } => "usage",
        D::BadArguments { .. } => "bad_arguments",
        D::IdentityUnusable { .. } => "identity_unusable",
        D::KeyChanged { .. } => "key_changed",
        D::IdentityMismatch { .. } => "identity_mismatch",
        D::NotListed { .. } => "not_listed",
        D::ListedWithoutKey { .. } => "listed_without_key",
        D::CannotVerify { .. } => "cannot_verify",
        D::NoKeyToTrust { .. } => "no_key_to_trust",
        D::ServerKeyChanged { .. } => "server_key_changed",
        D::Replaced { .. } => "replaced",
        D::BadTarget { .. } => "bad_target",
        D::Quitting => "quitting",
        D::CallingYourself => "calling_yourself",
        D::AlreadyInChat { .. } => "already_in_chat",
        D::CallRinging { .. } => "call_ringing",
        D::ChatsFull { .. } => "chats_full",
        D::RequestWaiting { .. } => "request_waiting",
        D::NoSuchPeer { .. } => "no_such_peer",
        D::NotCallable { .. } => "not_callable",
        D::ConnectFailed { .. } => "connect_failed",
        D::ClosedBeforeAnswer { .. } => "closed_before_answer",
        D::StoppedAnswering { .. } => "stopped_answering",
        D::WrongPeer { .. } => "wrong_peer",
        D::PeerNameInvalid { .. } => "peer_name_invalid",
        D::PeerVersion { .. } => "peer_version",
        D::NoRequest => "no_request",
        D::NoRequestFrom { .. } => "no_request_from",
        D::NoCallTo { .. } => "no_call_to",
        D::NotInChat => "not_in_chat",
        D::NotChattingWith { .. } => "not_chatting_with",
        D::StillRinging { .. } => "still_ringing",
        D::AlreadyLeaving { .. } => "already_leaving",
        D::MessageTooLong { .. } => "message_too_long",
        D::MessageTooLongForPeer { .. } => "message_too_long_for_peer",
        D::ControlCharacters => "control_characters",
        D::PeerBadFrame { .. } => "peer_bad_frame",
        D::PeerSaid { .. } => "peer_said",
        D::ServerNotConnected { .. } => "server_not_connected",
        D::ServerStopped { .. } => "server_stopped",
        D::RequestLost { .. } => "request_lost",
        D::ServerSaid { .. } => "server_said",
        D::ServerVersion { .. } => "server_version",
        D::Retrying { .. } => "retrying",
        D::TranscriptWrite { .. } => "transcript_write",
        D::NotRecorded { .. } => "not_recorded",
        D::QuotaReached { .. } => "quota_reached",
        D::PartnerMessageTooLong { .. } => "partner_message_too_long",
    }
}

fn causes() -> Vec<EndCause> {
    use EndCause as E;
    let all = vec![
        E::Left,
        E::Bye,
        E::Closed,
        E::Silent,
        E::BadFrame,
        E::Cut,
        E::Quota,
        E::PeerQuota,
    ];
    for cause in &all {
        match cause {
            E::Left
            | E::Bye
            | E::Closed
            | E::Silent
            | E::BadFrame
            | E::Cut
            | E::Quota
            | E::PeerQuota => {}
        }
    }
    all
}

fn reasons() -> Vec<ChatEndReason> {
    use ChatEndReason as R;
    let all = vec![R::Left, R::PeerLeft, R::PeerLost, R::Cut, R::Quota];
    for reason in &all {
        match reason {
            R::Left | R::PeerLeft | R::PeerLost | R::Cut | R::Quota => {}
        }
    }
    all
}

fn statuses() -> Vec<PeerStatus> {
    use PeerStatus as S;
    let all = vec![S::Available, S::Chatting, S::Busy, S::Unknown];
    for status in &all {
        match status {
            S::Available | S::Chatting | S::Busy | S::Unknown => {}
        }
    }
    all
}

fn chat_states() -> Vec<ChatState> {
    use ChatState as S;
    let all = vec![S::Calling, S::Incoming, S::Talking, S::Leaving];
    for state in &all {
        match state {
            S::Calling | S::Incoming | S::Talking | S::Leaving => {}
        }
    }
    all
}

fn requests() -> Vec<Request> {
    let all = vec![Request::List, Request::Lookup, Request::Trust];
    for request in &all {
        match request {
            Request::List | Request::Lookup | Request::Trust => {}
        }
    }
    all
}

// ---- the tests ----

#[test]
fn every_event_is_documented_with_each_of_its_fields() {
    let events_section = section("Events");
    let mut names = BTreeSet::new();
    for event in events() {
        let json = serialized(&event);
        let name = json["event"].as_str().expect("an event tag").to_string();
        assert_eq!(name, event_name(&event), "serde and the page disagree");
        assert!(names.insert(name.clone()), "{name} sampled twice");
        let text = subsection(events_section, &name)
            .unwrap_or_else(|| panic!("docs/EVENTS.md, Events: no `### `{name}`` section"));
        let mut fields: Vec<String> = json
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "event")
            .cloned()
            .collect();
        match &event {
            // The detail's own fields are in the detail table; the error
            // section names the three fields every error has.
            Event::Error { .. } => {
                fields = vec!["code".into(), "detail".into(), "message".into()];
            }
            Event::Peers { .. } => {
                let entry = serialized(&listed_peer());
                fields.extend(entry.as_object().unwrap().keys().cloned());
            }
            Event::Chats { chats } => {
                let entry = serialized(&chats[0]);
                fields.extend(entry.as_object().unwrap().keys().cloned());
                fields.extend(chat_states().iter().map(name_of));
            }
            _ => {}
        }
        for field in fields {
            assert!(
                text.contains(&format!("`{field}`")),
                "docs/EVENTS.md, event `{name}`: field `{field}` is not documented"
            );
        }
    }
    let documented = headings(events_section);
    assert_eq!(
        documented, names,
        "docs/EVENTS.md documents events the code does not have, or misses some"
    );
}

#[test]
fn every_error_code_is_in_the_code_table_and_only_those() {
    let table = section("Error codes");
    let mut names = BTreeSet::new();
    // `ErrorCode::ALL` is declared with the enum, from the same list.
    for &code in ErrorCode::ALL {
        let name = name_of(&code);
        assert_eq!(name, code.as_str(), "serde and as_str disagree");
        assert!(
            row(table, &name).is_some(),
            "docs/EVENTS.md, Error codes: no row for `{name}`"
        );
        assert!(names.insert(name.clone()), "{name} sampled twice");
    }
    let documented: BTreeSet<String> = rows(table).into_iter().map(|(n, _)| n).collect();
    assert_eq!(documented, names, "the code table lists codes natter lacks");
}

#[test]
fn every_error_detail_is_in_the_detail_table_with_its_fields() {
    let table = section("Error details");
    let mut names = BTreeSet::new();
    for detail in details() {
        let json = serialized(&Event::error(ErrorCode::BadInput, detail.clone()));
        let name = json["detail"].as_str().expect("a detail tag").to_string();
        assert_eq!(name, detail_name(&detail), "serde and the page disagree");
        assert!(names.insert(name.clone()), "{name} sampled twice");
        let line = row(table, &name)
            .unwrap_or_else(|| panic!("docs/EVENTS.md, Error details: no row for `{name}`"));
        for field in json.as_object().unwrap().keys() {
            if ["event", "code", "detail"].contains(&field.as_str()) {
                continue;
            }
            assert!(
                line.contains(&format!("`{field}`")),
                "docs/EVENTS.md, detail `{name}`: field `{field}` is not documented"
            );
        }
    }
    let documented: BTreeSet<String> = rows(table).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        documented, names,
        "the detail table lists details natter lacks"
    );
    for request in requests() {
        let request = name_of(&request);
        let line = row(table, "server_not_connected").unwrap();
        assert!(
            line.contains(&format!("`{request}`")),
            "docs/EVENTS.md: request `{request}` is not documented"
        );
    }
}

#[test]
fn every_end_reason_cause_and_status_is_documented() {
    let ends = section("Why a chat ended");
    for cause in causes() {
        let reason = name_of(&cause.reason());
        let cause = name_of(&cause);
        assert!(
            ends.contains(&format!("| `{reason}` | `{cause}` |")),
            "docs/EVENTS.md, Why a chat ended: no row for reason `{reason}`, cause `{cause}`"
        );
    }
    let documented: BTreeSet<String> = rows(ends).into_iter().map(|(n, _)| n).collect();
    let reasons: BTreeSet<String> = reasons().iter().map(name_of).collect();
    assert_eq!(documented, reasons, "chat_ended reasons");

    let table = section("Statuses");
    let documented: BTreeSet<String> = rows(table).into_iter().map(|(n, _)| n).collect();
    let statuses: BTreeSet<String> = statuses().iter().map(name_of).collect();
    assert_eq!(documented, statuses, "statuses");
}

#[test]
fn every_command_of_help_is_documented() {
    let first_cells: Vec<&str> = section("Commands")
        .lines()
        .filter_map(|l| l.strip_prefix("| ")?.split(" |").next())
        .collect();
    for command in HELP {
        let word = command.split_whitespace().next().unwrap();
        assert!(
            first_cells.iter().any(|c| c.contains(&format!("`{word}"))),
            "docs/EVENTS.md, Commands: no row for `{word}`"
        );
    }
}
