//! Every sentence natter shows a person, in one place.
//!
//! The core emits codes and typed fields; this turns them into words for
//! the line mode and the terminal, and gives `--json` the `message` field
//! of each `error` event. Text from the network (names, messages) reaches
//! here already sanitized by the core, so nothing printed can carry an
//! escape sequence.

use natter_core::event::{ChatEntry, ChatState, QuotaScope};
use natter_core::{EndCause, ErrorDetail, Event, Request};
use std::collections::BTreeSet;

/// [`human`] for a stream of events, as a screen shows them: while more
/// than one chat is on, the lines that would not say which chat they
/// belong to (your messages and their receipts) name the partner.
/// `/chats` marks the chat plain lines go to.
#[derive(Debug, Default)]
pub struct Lines {
    /// The partners of the chats going on.
    chats: BTreeSet<String>,
    /// The chat plain lines go to (a new chat takes the focus).
    focus: Option<String>,
}

impl Lines {
    pub fn human(&mut self, event: &Event) -> String {
        match event {
            Event::ChatStarted { peer, .. } => {
                self.chats.insert(peer.clone());
                self.focus = Some(peer.clone());
            }
            Event::Focused { peer } => self.focus = Some(peer.clone()),
            Event::ChatEnded { peer, .. } => {
                self.chats.remove(peer);
                if self.focus.as_ref() == Some(peer) {
                    self.focus = None;
                }
            }
            _ => {}
        }
        match event {
            Event::Chats { chats } => chats_text(chats, self.focus.as_deref()),
            Event::Sent { peer, n, text } if self.chats.len() > 1 => {
                format!("[you to {peer} #{n}] {text}")
            }
            Event::Delivered { peer, n } if self.chats.len() > 1 => {
                format!("✓ delivered #{n} to {peer}")
            }
            _ => human(event),
        }
    }
}

/// One event as one or more lines of text (no trailing newline).
pub fn human(event: &Event) -> String {
    match event {
        Event::Registered {
            name,
            addr,
            server,
            reachable,
            fingerprint,
            server_fingerprint,
            new_server,
        } => {
            let mut out = format!(
                "registered as {name} at {addr} with the server at {server}; your key is {fingerprint}; /list shows who is online, /help the commands"
            );
            if *new_server {
                out.push_str(&format!(
                    "\nfirst time with this server: its key {server_fingerprint} is pinned now (its first log line shows its key; from now on natter refuses another key at {server})"
                ));
            }
            if !*reachable {
                out.push_str(&format!(
                    "\nnote: the server could not connect to {addr}, so others cannot call you (a NAT or firewall?); you can still call them"
                ));
            }
            out
        }
        Event::Peers { peers } if peers.is_empty() => "nobody else is online".to_string(),
        Event::Peers { peers } => {
            let width = peers.iter().map(|p| p.name.len()).max().unwrap_or(0);
            let mut out = format!("online ({}):", peers.len());
            for p in peers {
                out.push_str(&format!("\n  {:width$}  {:<9}  {}", p.name, p.status, p.addr));
                match &p.fingerprint {
                    Some(fingerprint) => out.push_str(&format!("  key {fingerprint}")),
                    None => out.push_str("  (no key listed: an older server? cannot be verified)"),
                }
                if !p.reachable {
                    out.push_str("  (cannot be called; it can call you)");
                }
            }
            out
        }
        Event::PeerOnline { peer } => {
            let mut out = format!("{} is online ({}) at {}", peer.name, peer.status, peer.addr);
            match &peer.fingerprint {
                Some(fingerprint) => out.push_str(&format!(", key {fingerprint}")),
                None => out.push_str(" (no key listed: an older server? cannot be verified)"),
            }
            if !peer.reachable {
                out.push_str(" (cannot be called; it can call you)");
            }
            out
        }
        Event::PeerOffline { name } => format!("{name} went offline"),
        Event::PeerStatus { name, status } => format!("{name} is {status} now"),
        Event::Calling { peer } => {
            format!("calling {peer}… (/cancel to stop)")
        }
        Event::Incoming {
            peer,
            addr,
            fingerprint,
        } => {
            format!(
                "{peer} ({addr}, key {fingerprint}) wants to chat — /accept {peer} or /reject {peer}"
            )
        }
        Event::ChatStarted {
            peer,
            fingerprint,
            new_contact,
        } => {
            let first = if *new_contact {
                "; a first chat: the key is pinned now, /verify compares it"
            } else {
                ", the one pinned at your first chat"
            };
            format!("chatting with {peer} (key {fingerprint}{first}) — type to send, /leave to end")
        }
        Event::SafetyNumber { peer, number } => format!(
            "safety number with {peer}: {number}\n(the same on {peer}'s screen means nobody sits between you; compare by voice or in person)"
        ),
        Event::Trusted { peer, fingerprint } => format!(
            "{peer}'s key is now {fingerprint}: pinned, replacing any older one; chats with {peer} with this key are taken from now on"
        ),
        Event::Rejected { peer } => format!("{peer} rejected your request"),
        Event::Busy { peer } => format!("{peer} is busy; try again later"),
        Event::NoAnswer { peer } => format!("{peer} did not answer"),
        Event::Cancelled { peer } => format!("you cancelled your call to {peer}"),
        Event::Missed { peer } => format!("missed a request from {peer}"),
        Event::MissedCalls {
            count,
            refused,
            peers,
            interval_ms,
        } => {
            let secs = interval_ms / 1000;
            let refused = match refused {
                0 => String::new(),
                n => format!(" ({n} of them refused: their key could not be verified)"),
            };
            let more = if *count > peers.len() { ", …" } else { "" };
            format!(
                "missed {count} more requests in the last {secs} s{refused}, from {}{more}",
                peers.join(", ")
            )
        }
        Event::Declined { peer } => format!("you rejected {peer}'s request"),
        Event::Sent { n, text, .. } => format!("[you #{n}] {text}"),
        Event::WindowFull {
            peer,
            in_flight,
            waiting,
        } => format!(
            "{peer} has not confirmed your last {in_flight} messages; {waiting} more wait and go out as receipts come (commands still work)"
        ),
        Event::Message { peer, n, text, .. } => format!("[{peer} #{n}] {text}"),
        Event::Delivered { n, .. } => format!("✓ delivered #{n}"),
        Event::ChatEnded {
            peer,
            cause,
            undelivered,
            ..
        } => {
            // The cause says more than the reason (SPEC's coarser word).
            let why = match cause {
                EndCause::Left => "you left".to_string(),
                EndCause::Bye => format!("{peer} left"),
                EndCause::Closed => {
                    format!("{peer}'s connection closed without a goodbye (crashed or killed?)")
                }
                EndCause::Silent => format!("{peer} stopped answering"),
                EndCause::BadFrame => format!("{peer} broke the protocol"),
                EndCause::Cut => format!("{peer} stopped reading and was cut off"),
                EndCause::Quota => "your transcript quota is reached".to_string(),
                EndCause::PeerQuota => format!("{peer}'s transcript quota is reached"),
            };
            let mut out = format!("chat with {peer} ended: {why}");
            if !undelivered.is_empty() {
                let list: Vec<String> = undelivered.iter().map(|n| format!("#{n}")).collect();
                out.push_str(&format!(
                    " (no receipt for {}: they may not have arrived)",
                    list.join(", ")
                ));
            }
            out
        }
        Event::ServerLost => {
            "lost the connection to the server; reconnecting (chats go on)".to_string()
        }
        Event::Reregistered {
            addr,
            server,
            reachable,
            server_fingerprint,
            new_server,
        } => {
            let mut out = format!("registered again, at {addr} with the server at {server}");
            if *new_server {
                out.push_str(&format!(
                    "\nfirst time with this server: its key {server_fingerprint} is pinned now (its first log line shows its key; from now on natter refuses another key at {server})"
                ));
            }
            if !*reachable {
                out.push_str(&format!(
                    "\nnote: this server could not connect to {addr}, so others cannot call you (a NAT or firewall?); you can still call them"
                ));
            }
            out
        }
        Event::Help { commands } => help(commands),
        Event::Focused { peer } => {
            format!("typing to {peer} now (/switch NAME to type to another chat)")
        }
        Event::Chats { chats } => chats_text(chats, None),
        Event::Error { detail, .. } => format!("error: {}", error_sentence(detail)),
    }
}

/// The `--json` line of an event (without its newline): its fields, plus
/// `message` (the sentence of [`error_sentence`]) on an `error`.
pub fn json(event: &Event) -> String {
    let mut line = Vec::new();
    write_json(&mut line, event);
    line.pop();
    String::from_utf8(line).expect("serde_json writes UTF-8")
}

/// Appends the `--json` line of `event`, newline included, to `out`.
///
/// The event is serialised straight into `out`, its fields in the order
/// they are declared (`event` first), `message` last on an `error`: no
/// intermediate `serde_json::Value` (a map built, sorted and formatted
/// again), which was most of the receiving peer's printing cost in a burst
/// of messages (`natter bench --only throughput`). docs/EVENTS.md promises
/// no order of fields.
pub fn write_json(out: &mut Vec<u8>, event: &Event) {
    let start = out.len();
    if serde_json::to_writer(&mut *out, event).is_err() {
        // Not reached for these types (no map with non-string keys);
        // what the old `Value` path printed then.
        out.truncate(start);
        out.extend_from_slice(b"null\n");
        return;
    }
    if let Event::Error { detail, .. } = event {
        // An event is a JSON object with at least its `event` field: its
        // closing brace gives way to one more field.
        debug_assert_eq!(out.last(), Some(&b'}'));
        out.pop();
        out.extend_from_slice(b",\"message\":");
        let sentence = serde_json::to_writer(&mut *out, &error_sentence(detail));
        debug_assert!(sentence.is_ok(), "a string always serialises");
        out.push(b'}');
    }
    out.push(b'\n');
}

/// The answer to `/chats`; the chat named `focus` is marked as the one
/// plain lines go to.
fn chats_text(chats: &[ChatEntry], focus: Option<&str>) -> String {
    if chats.is_empty() {
        return "no chats; /connect NAME starts one".to_string();
    }
    let width = chats.iter().map(|c| c.peer.len()).max().unwrap_or(0);
    let mut out = format!("chats ({}):", chats.len());
    for c in chats {
        let peer = &c.peer;
        let state = match c.state {
            ChatState::Calling => format!("your call rings (/cancel {peer} stops it)"),
            ChatState::Incoming => format!("wants to chat: /accept {peer} or /reject {peer}"),
            ChatState::Talking if focus == Some(peer.as_str()) => {
                "chatting; your lines go here".to_string()
            }
            ChatState::Talking => format!("chatting (/switch {peer}, or /msg {peer} TEXT)"),
            ChatState::Leaving => "leaving: waiting for the last receipts".to_string(),
        };
        out.push_str(&format!("\n  {peer:width$}  {state}"));
    }
    out
}

fn help(commands: &[String]) -> String {
    let mut out = "commands:".to_string();
    for c in commands {
        let what = match c.as_str() {
            "/list" => "show who is online",
            "/connect NAME|IP:PORT" => "ask a peer to chat",
            "/accept [NAME]" => "accept NAME's request (no NAME: the oldest)",
            "/reject [NAME]" => "reject NAME's request (no NAME: the oldest)",
            "/cancel [NAME]" => "stop your own ringing call (no NAME: the last)",
            "/leave [NAME]" => "end the chat with NAME (no NAME: the one you type to)",
            "exit()" => "the same as /leave",
            "/msg NAME TEXT" => "send TEXT to NAME's chat",
            "/switch NAME" => "type to NAME's chat from now on",
            "/chats" => "show your chats and calls",
            "/quit" => "leave, deregister and exit (Ctrl-D too)",
            "/verify [NAME]" => {
                "the safety number of your chat with NAME (no NAME: the one you type to), to compare with your partner"
            }
            "/trust NAME" => {
                "accept the key the directory lists for NAME now (after a key change you checked)"
            }
            "/help" => "this list",
            "//text" => "send a message that starts with /",
            _ => "",
        };
        out.push_str(&format!("\n  {c:<22} {what}"));
    }
    out
}

/// What an error means and, where the user can act, what to do.
pub fn error_sentence(detail: &ErrorDetail) -> String {
    use ErrorDetail as D;
    match detail {
        D::OwnNameInvalid { name } => format!(
            "{name:?} is not a valid name: use 1-32 characters of A-Z a-z 0-9 _ -"
        ),
        D::MessageLimitOutOfRange { max_message, longest } => format!(
            "the message limit must be between 1 and {longest} characters (what fits a frame), not {max_message}"
        ),
        D::ServerDown { server, reason } => format!(
            "cannot register with the server at {server} ({reason}); is `natter server` running there?"
        ),
        D::ServersDown { servers } => {
            let each: Vec<String> = servers
                .iter()
                .map(|failure| format!("{} ({})", failure.server, failure.reason))
                .collect();
            format!(
                "cannot register with any of the servers: {}; is `natter server` running there?",
                each.join(", ")
            )
        }
        D::TranscriptsUnusable { reason } => reason.clone(),
        D::NoDataDir => {
            "cannot find the platform data directory (is HOME set?); give --transcripts DIR"
                .to_string()
        }
        D::ServerAddress { server, reason } => {
            format!("cannot use the server address {server} ({reason}); check --server HOST:PORT")
        }
        D::BindFailed { port, reason } => format!("cannot listen on port {port}: {reason}"),
        D::BadArguments { problem } => {
            format!("{problem}; `natter peer --help` lists the flags")
        }
        D::IdentityUnusable { reason } => format!(
            "cannot use this name's key: {reason}; give another --identity FILE or --data-dir DIR"
        ),
        D::Terminal { reason } => format!("cannot use the terminal: {reason}; try --plain"),
        D::UnknownCommand { command } => format!(
            "unknown command {command}; /help lists the commands, // sends a message starting with /"
        ),
        D::TakesNoArguments { command } => format!("{command} takes no arguments"),
        D::Usage { usage } => format!("usage: {usage}"),
        D::BadTarget { word } => {
            format!("{word:?} is neither a name (1-32 of A-Z a-z 0-9 _ -) nor an IP:PORT")
        }
        D::Quitting => "quitting; no more commands are taken".to_string(),
        D::CallingYourself => "that is you; call someone else (/list shows who is online)".to_string(),
        D::AlreadyInChat { peer } => {
            format!("you are already chatting with {peer}; /switch {peer} to type there")
        }
        D::CallRinging { peer } => format!(
            "your call to {peer} is still ringing; wait for the answer or /cancel {peer}"
        ),
        D::ChatsFull { max } => format!(
            "you have {max} chats and calls open, as many as --max-chats allows; /leave one first"
        ),
        D::RequestWaiting { peer } => {
            format!("{peer} is calling you: /accept {peer} or /reject {peer}")
        }
        D::NoSuchPeer { name } => format!("nobody named {name} is online; /list shows who is"),
        D::NotCallable { peer } => format!(
            "{peer} cannot be called directly (the server could not reach it either: a NAT or firewall); ask {peer} to call you"
        ),
        D::ConnectFailed { peer, addr, reason } if *peer == addr.to_string() => {
            format!("nobody answers at {addr} ({reason})")
        }
        D::ConnectFailed { peer, addr, reason } => {
            format!("{peer} is no longer reachable at {addr} ({reason})")
        }
        D::ClosedBeforeAnswer { peer } => {
            format!("{peer} closed the connection before answering")
        }
        D::StoppedAnswering { peer } => format!("{peer} stopped answering"),
        D::WrongPeer {
            addr,
            expected,
            answered,
        } => format!(
            "{addr} answered as {answered}, not {expected}; not chatting with someone else than the one you called"
        ),
        D::PeerNameInvalid { addr } => format!("the peer at {addr} sent an invalid name"),
        D::PeerVersion {
            peer,
            version,
            min_version,
        } => format!(
            "{peer} speaks protocol versions {min_version} to {version}, which this natter does not; upgrade the older side"
        ),
        D::NoRequest => "nobody is asking to chat, and no call of yours is ringing".to_string(),
        D::NoRequestFrom { peer } => {
            format!("{peer} is not asking to chat; /chats shows who is")
        }
        D::NoCallTo { peer } => format!("no call of yours to {peer} is ringing"),
        D::NotChattingWith { peer } => {
            format!("you have no chat with {peer}; /chats shows yours")
        }
        D::NotInChat => {
            "you are not in a chat: /connect NAME first (a line starting with / is a command)"
                .to_string()
        }
        D::StillRinging { peer } => format!(
            "not sent: your call to {peer} is still ringing; messages go once {peer} accepts"
        ),
        D::AlreadyLeaving { peer } => format!(
            "you are leaving the chat with {peer}; waiting for the last receipts"
        ),
        D::MessageTooLong { chars, max } => {
            format!("message not sent: {chars} characters, the limit is {max}")
        }
        D::MessageTooLongForPeer { peer, chars, max } => format!(
            "message not sent: {chars} characters, {peer} takes at most {max}"
        ),
        D::KeyChanged {
            peer,
            expected,
            presented,
        } => format!(
            "refused: {peer} presented the key {presented}, but the key pinned at your first chat with {peer} is {expected}; someone else may have the name now, or {peer} has a new key: ask {peer} another way, and if so type /trust {peer}"
        ),
        D::IdentityMismatch {
            peer,
            expected,
            presented,
        } => format!(
            "refused: the directory lists the key {expected} for {peer}, but the other side proved {presented}; someone else is using the name {peer}, or the directory lies; no message went to it"
        ),
        D::NotListed { peer, presented } => format!(
            "refused a call from someone claiming to be {peer} (key {presented}): the directory has nobody of that name"
        ),
        D::ListedWithoutKey { peer, presented } => format!(
            "refused: the directory lists {peer} without a key (an older server?), so the key {presented} cannot be checked"
        ),
        D::CannotVerify { peer, presented } => format!(
            "refused a call from {peer} (key {presented}): {peer} is not a known contact here and the directory cannot be asked now; {peer} can call again once natter is connected to the server"
        ),
        D::NoKeyToTrust { peer } => format!(
            "nothing to trust: the directory lists {peer} without a key (an older server?)"
        ),
        D::ServerKeyChanged {
            server,
            expected,
            presented,
        } => format!(
            "refused: the server at {server} proved the key {presented}, but the key pinned for that address at your first run is {expected}; another machine may be answering there. natter told it nothing. If the server's operator gave it a new key (its first log line shows it), delete the line for {server} in your known_servers file (beside your key)"
        ),
        D::Replaced { name } => format!(
            "another natter with your key registered {name} at the server; that one is listed now, and this one stops using the server (your chats go on)"
        ),
        D::ControlCharacters => "message not sent: it contains control characters".to_string(),
        D::PeerBadFrame { peer, problem } => {
            format!("{peer} sent something natter does not understand ({problem})")
        }
        D::PeerSaid { peer, text } => format!("{peer} says: {text}"),
        D::ServerStopped { request } => format!(
            "{} needs the server, which this natter no longer uses (see the error above); start natter again to use it",
            request_name(*request)
        ),
        D::ServerNotConnected { request } => format!(
            "{} needs the server, and natter is reconnecting to it; try again in a few seconds",
            request_name(*request)
        ),
        D::RequestLost { request } => format!(
            "the connection to the server broke before it answered {}; natter is reconnecting, try again in a few seconds",
            request_name(*request)
        ),
        D::ServerSaid { text } => format!("the server says: {text}"),
        D::ServerVersion {
            version,
            min_version,
        } => format!(
            "the server speaks protocol versions {min_version} to {version}, which this natter does not; upgrade the older side"
        ),
        D::Retrying {
            server_message,
            retry_in_ms: 0,
        } => format!(
            "the server turned this connection away for now ({server_message}); trying the next server now"
        ),
        D::Retrying {
            server_message,
            retry_in_ms,
        } => format!(
            "the server turned this connection away for now ({server_message}); trying again in {:.1} s",
            *retry_in_ms as f64 / 1000.0
        ),
        D::TranscriptWrite { file, reason } => {
            format!("could not write to the transcript {file}: {reason}")
        }
        D::QuotaReached { peer, scope, limit } => {
            let per = match scope {
                QuotaScope::Chat => "for one chat (--transcript-quota-chat)",
                QuotaScope::Day => "for one day (--transcript-quota-day)",
            };
            format!(
                "the transcripts reached their quota of {} {per}; the chat with {peer} is ended and what it did not record was not acknowledged",
                bytes(*limit)
            )
        }
        D::PartnerMessageTooLong { peer, n, chars, max } => format!(
            "{peer} sent message #{n} of {chars} characters, longer than your limit of {max} (--max-message); it was refused, not shown or recorded, and the chat is ended"
        ),
        D::NotRecorded { peer, n, reason } => format!(
            "message #{n} from {peer} could not be written to the transcript ({reason}); no receipt was sent"
        ),
    }
}

fn request_name(request: Request) -> &'static str {
    match request {
        Request::List => "/list",
        Request::Lookup => "/connect NAME",
        Request::Trust => "/trust NAME",
    }
}

/// A byte count as people read it: `16 MiB`, `512 KiB`, `300 bytes`.
fn bytes(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::protocol::ErrorCode;
    use natter_core::ChatEndReason;

    #[test]
    fn messages_show_the_sender_number_and_receipt() {
        let message = Event::Message {
            peer: "zuzu".into(),
            n: 1,
            text: "hi alice".into(),
            at: "2026-01-01T00:00:00.000Z".into(),
        };
        assert_eq!(human(&message), "[zuzu #1] hi alice");
        let sent = Event::Sent {
            peer: "zuzu".into(),
            n: 2,
            text: "hi zuzu".into(),
        };
        assert_eq!(human(&sent), "[you #2] hi zuzu");
        let delivered = Event::Delivered {
            peer: "zuzu".into(),
            n: 2,
        };
        assert_eq!(human(&delivered), "✓ delivered #2");
    }

    #[test]
    fn with_several_chats_your_messages_and_receipts_name_the_partner() {
        let started = |peer: &str| Event::ChatStarted {
            peer: peer.into(),
            fingerprint: natter_core::Identity::from_seed(&[1; 32])
                .public()
                .fingerprint(),
            new_contact: false,
        };
        let sent = Event::Sent {
            peer: "bob".into(),
            n: 2,
            text: "hi".into(),
        };
        let delivered = Event::Delivered {
            peer: "bob".into(),
            n: 2,
        };
        let mut lines = Lines::default();
        lines.human(&started("bob"));
        assert_eq!(lines.human(&sent), "[you #2] hi", "one chat: no name");
        lines.human(&started("carol"));
        assert_eq!(lines.human(&sent), "[you to bob #2] hi");
        assert_eq!(lines.human(&delivered), "✓ delivered #2 to bob");
        lines.human(&Event::ChatEnded {
            peer: "carol".into(),
            reason: ChatEndReason::PeerLeft,
            cause: EndCause::Bye,
            undelivered: vec![],
        });
        assert_eq!(lines.human(&delivered), "✓ delivered #2");
    }

    #[test]
    fn a_killed_partner_is_not_reported_as_having_left() {
        let ended = Event::ChatEnded {
            peer: "zuzu".into(),
            reason: ChatEndReason::PeerLost,
            cause: EndCause::Closed,
            undelivered: vec![3, 4],
        };
        assert_eq!(
            human(&ended),
            "chat with zuzu ended: zuzu's connection closed without a goodbye (crashed or killed?) (no receipt for #3, #4: they may not have arrived)"
        );
        let left = Event::ChatEnded {
            peer: "zuzu".into(),
            reason: ChatEndReason::PeerLeft,
            cause: EndCause::Bye,
            undelivered: vec![],
        };
        assert_eq!(human(&left), "chat with zuzu ended: zuzu left");
    }

    #[test]
    fn every_command_of_help_has_its_words() {
        let commands: Vec<String> = natter_core::command::HELP
            .iter()
            .map(|c| c.to_string())
            .collect();
        for line in help(&commands).lines().skip(1) {
            let words = line
                .trim()
                .split_once(char::is_whitespace)
                .map(|(_, w)| w.trim());
            assert!(words.is_some_and(|w| !w.is_empty()), "{line:?}");
        }
    }

    #[test]
    fn an_identity_mismatch_names_both_fingerprints() {
        let fingerprint = |seed| {
            natter_core::Identity::from_seed(&[seed; 32])
                .public()
                .fingerprint()
        };
        let (listed, proved) = (fingerprint(1), fingerprint(2));
        let error = Event::error(
            ErrorCode::IdentityMismatch,
            ErrorDetail::IdentityMismatch {
                peer: "zuzu".into(),
                expected: listed.clone(),
                presented: proved.clone(),
            },
        );
        let text = human(&error);
        assert!(text.contains(listed.as_str()), "{text}");
        assert!(text.contains(proved.as_str()), "{text}");
    }

    #[test]
    fn errors_read_as_sentences_without_internal_codes() {
        let error = Event::error(ErrorCode::NoRequest, ErrorDetail::NoRequest);
        let text = human(&error);
        assert!(!text.contains("no_request"), "{text}");
        assert!(text.starts_with("error: nobody is asking"), "{text}");
    }

    #[test]
    fn json_errors_carry_code_detail_fields_and_message() {
        let error = Event::error(
            ErrorCode::MessageTooLong,
            ErrorDetail::MessageTooLong {
                chars: 300,
                max: 256,
            },
        );
        let line = json(&error);
        assert_eq!(line.matches("\"message\":").count(), 1, "{line}");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["event"], "error");
        assert_eq!(value["code"], "message_too_long");
        assert_eq!(value["chars"], 300);
        assert_eq!(
            value["message"],
            "message not sent: 300 characters, the limit is 256"
        );
    }

    #[test]
    fn json_lines_are_one_object_with_the_event_name_first_and_end_with_a_newline() {
        let event = Event::Delivered {
            peer: "zuzu".into(),
            n: 7,
        };
        let mut out = b"earlier\n".to_vec();
        write_json(&mut out, &event);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "earlier\n{\"event\":\"delivered\",\"peer\":\"zuzu\",\"n\":7}\n"
        );
        assert_eq!(
            json(&event),
            "{\"event\":\"delivered\",\"peer\":\"zuzu\",\"n\":7}"
        );
    }
}
