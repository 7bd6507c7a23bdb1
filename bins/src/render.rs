//! Events as a person reads them in a terminal.
//!
//! Text from the network (names, messages) reaches here already sanitized
//! by the core, so nothing printed can carry an escape sequence.

use natter_core::{ChatEndReason, Event};

/// One event as one or more lines of text (no trailing newline).
pub fn human(event: &Event) -> String {
    match event {
        Event::Registered { name, addr, server } => format!(
            "registered as {name} at {addr} with the server at {server}; /list shows who is online, /help the commands"
        ),
        Event::Peers { peers } if peers.is_empty() => "nobody else is online".to_string(),
        Event::Peers { peers } => {
            let width = peers.iter().map(|p| p.name.len()).max().unwrap_or(0);
            let mut out = format!("online ({}):", peers.len());
            for p in peers {
                out.push_str(&format!("\n  {:width$}  {:<9}  {}", p.name, p.status, p.addr));
            }
            out
        }
        Event::Incoming { peer, addr } => {
            format!("{peer} ({addr}) wants to chat — /accept or /reject")
        }
        Event::ChatStarted { peer } => {
            format!("chatting with {peer} — type to send, /leave to end")
        }
        Event::Rejected { peer } => format!("{peer} rejected your request"),
        Event::Busy { peer } => format!("{peer} is busy in another chat; try again later"),
        Event::NoAnswer { peer } => format!("{peer} did not answer"),
        Event::Missed { peer } => format!("missed a request from {peer}"),
        Event::Declined { peer } => format!("you rejected {peer}'s request"),
        Event::Sent { n, text, .. } => format!("[you #{n}] {text}"),
        Event::Message { peer, n, text, .. } => format!("[{peer} #{n}] {text}"),
        Event::Delivered { n, .. } => format!("✓ delivered #{n}"),
        Event::ChatEnded {
            peer,
            reason,
            undelivered,
        } => {
            let why = match reason {
                ChatEndReason::Left => "you left".to_string(),
                ChatEndReason::PeerLeft => format!("{peer} left"),
                ChatEndReason::PeerLost => format!("{peer} stopped answering"),
            };
            let mut out = format!("chat with {peer} ended: {why}");
            if !undelivered.is_empty() {
                let list: Vec<String> = undelivered.iter().map(|n| format!("#{n}")).collect();
                out.push_str(&format!(" (not delivered: {})", list.join(", ")));
            }
            out
        }
        Event::ServerLost => {
            "lost the connection to the server; reconnecting (chats go on)".to_string()
        }
        Event::Reregistered => "connected to the server again".to_string(),
        Event::Help { commands } => {
            let mut out = "commands:".to_string();
            for c in commands {
                out.push_str("\n  ");
                out.push_str(c);
            }
            out
        }
        Event::Error { code, message } => format!("error ({code}): {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_chat_ended_lists_what_was_not_delivered() {
        let ended = Event::ChatEnded {
            peer: "zuzu".into(),
            reason: ChatEndReason::PeerLeft,
            undelivered: vec![3, 4],
        };
        assert_eq!(
            human(&ended),
            "chat with zuzu ended: zuzu left (not delivered: #3, #4)"
        );
    }
}
