//! Properties that must hold after any scenario, whatever the seed.

use natter_core::{ChatEndReason, Event};
use std::collections::BTreeMap;
use std::time::Duration;

/// Every message a peer sent ends exactly once: delivered, or listed as
/// undelivered when its chat ended. Message numbers count from 1 without
/// gaps in each chat. Returns a description of the first violation.
pub fn every_message_accounted_for(events: &[(Duration, Event)]) -> Result<(), String> {
    // Chat number → message number → how it ended (None: not yet).
    let mut chats: Vec<BTreeMap<u64, Vec<&'static str>>> = Vec::new();
    let mut open = false;
    for (at, event) in events {
        match event {
            Event::ChatStarted { .. } => {
                chats.push(BTreeMap::new());
                open = true;
            }
            Event::Sent { n, .. } => {
                let chat = chats
                    .last_mut()
                    .ok_or(format!("sent #{n} outside a chat at {at:?}"))?;
                if *n != chat.len() as u64 + 1 {
                    return Err(format!("sent #{n} after {} messages at {at:?}", chat.len()));
                }
                chat.insert(*n, Vec::new());
            }
            Event::Delivered { n, .. } => {
                let fate = chats.last_mut().and_then(|c| c.get_mut(n));
                fate.ok_or(format!("delivered #{n} never sent ({at:?})"))?
                    .push("delivered");
            }
            Event::ChatEnded { undelivered, .. } => {
                let chat = chats.last_mut().ok_or("chat_ended without chat")?;
                for n in undelivered {
                    chat.get_mut(n)
                        .ok_or(format!("undelivered #{n} never sent"))?
                        .push("undelivered");
                }
                open = false;
            }
            _ => {}
        }
    }
    if open {
        return Err("a chat never ended".to_string());
    }
    for (i, chat) in chats.iter().enumerate() {
        for (n, fates) in chat {
            if fates.len() != 1 {
                return Err(format!("chat {i} message #{n} ended as {fates:?}"));
            }
        }
    }
    Ok(())
}

/// The partner an event is about, for the events of a chat.
fn partner(event: &Event) -> Option<&str> {
    match event {
        Event::ChatStarted { peer, .. }
        | Event::Sent { peer, .. }
        | Event::Delivered { peer, .. }
        | Event::Message { peer, .. }
        | Event::ChatEnded { peer, .. } => Some(peer),
        _ => None,
    }
}

/// [`every_message_accounted_for`] for the chats with one partner, when a
/// peer has several chats at once.
pub fn every_message_to_accounted_for(
    events: &[(Duration, Event)],
    peer: &str,
) -> Result<(), String> {
    let theirs: Vec<(Duration, Event)> = events
        .iter()
        .filter(|(_, e)| partner(e) == Some(peer))
        .cloned()
        .collect();
    every_message_accounted_for(&theirs)
}

/// [`every_message_to_accounted_for`] for every partner `events` mention.
pub fn every_message_of_every_chat_accounted_for(
    events: &[(Duration, Event)],
) -> Result<(), String> {
    let partners: std::collections::BTreeSet<&str> =
        events.iter().filter_map(|(_, e)| partner(e)).collect();
    for peer in partners {
        every_message_to_accounted_for(events, peer).map_err(|e| format!("with {peer}: {e}"))?;
    }
    Ok(())
}

/// What the server's log says when it refuses or cuts a client for a
/// budget or share (docs/LIMITS.md).
const SERVER_BUDGET_WORDS: [&str; 6] = [
    "rate_limited",
    "too_many_connections",
    "server_full",
    "frame_too_long",
    "memory budget",
    "not reading",
];

/// Error codes a peer is told when it hits a budget, its own or the
/// server's.
const BUDGET_CODES: [&str; 5] = [
    "rate_limited",
    "too_many_connections",
    "server_full",
    "frame_too_long",
    "transcript_quota",
];

/// Honest peers hit no budget, whatever the network does to them: the
/// server refused or cut none of them (its log), none was told of a limit,
/// and no chat ended for one (`cut`: a partner stopped reading; `quota`).
pub fn no_budget_hit(
    server_log: &str,
    peers: &[(&str, &[(Duration, Event)])],
) -> Result<(), String> {
    if let Some(line) = server_log
        .lines()
        .find(|line| SERVER_BUDGET_WORDS.iter().any(|word| line.contains(word)))
    {
        return Err(format!("the server hit a budget: {line}"));
    }
    for (name, events) in peers {
        for (at, event) in *events {
            match event {
                Event::Error { code, .. } if BUDGET_CODES.contains(&code.to_string().as_str()) => {
                    return Err(format!("{name} was told {code} at {at:?}"));
                }
                Event::ChatEnded {
                    peer,
                    reason: reason @ (ChatEndReason::Cut | ChatEndReason::Quota),
                    ..
                } => {
                    return Err(format!(
                        "{name}'s chat with {peer} ended {reason} at {at:?}"
                    ));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The reason the last chat of a peer ended, if it ended.
pub fn last_end(events: &[(Duration, Event)]) -> Option<ChatEndReason> {
    events.iter().rev().find_map(|(_, e)| match e {
        Event::ChatEnded { reason, .. } => Some(*reason),
        _ => None,
    })
}

/// What the server's log last said about `name`: `"available"`,
/// `"chatting"`, or `None` when it is not registered.
pub fn registry_status<'a>(server_log: &'a str, name: &str) -> Option<&'a str> {
    let mut status = None;
    for line in server_log.lines() {
        let Some((_, text)) = line.split_once(' ') else {
            continue;
        };
        let Some(rest) = text.strip_prefix(name).and_then(|r| r.strip_prefix(' ')) else {
            continue;
        };
        if rest.starts_with("registered at") {
            status = Some("available");
        } else if let Some(now) = rest.strip_prefix("is now ") {
            status = Some(now);
        } else if rest.starts_with("has disconnected") {
            status = None;
        }
    }
    status
}

/// No peer is listed as chatting when its last chat has ended.
pub fn nobody_chatting_without_a_chat(
    server_log: &str,
    peers: &[(&str, &[(Duration, Event)])],
) -> Result<(), String> {
    for (name, events) in peers {
        let in_chat = events.iter().rev().find_map(|(_, e)| match e {
            Event::ChatStarted { .. } => Some(true),
            Event::ChatEnded { .. } => Some(false),
            _ => None,
        });
        if in_chat != Some(true) && registry_status(server_log, name) == Some("chatting") {
            return Err(format!("{name} is listed as chatting without a chat"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_status_follows_the_log() {
        let log = "t alice registered at 1.2.3.4:4000 and is available\n\
                   t bob registered at 1.2.3.5:4000 and is available\n\
                   t alice is now chatting\n\
                   t bob has disconnected (left)\n";
        assert_eq!(registry_status(log, "alice"), Some("chatting"));
        assert_eq!(registry_status(log, "bob"), None);
        assert_eq!(registry_status(log, "al"), None);
        let ended = [
            (
                Duration::ZERO,
                Event::ChatStarted {
                    peer: "bob".into(),
                    fingerprint: natter_core::Identity::from_seed(&[1; 32])
                        .public()
                        .fingerprint(),
                    new_contact: true,
                },
            ),
            (
                Duration::ZERO,
                Event::ChatEnded {
                    peer: "bob".into(),
                    reason: ChatEndReason::PeerLeft,
                    cause: natter_core::EndCause::Bye,
                    undelivered: vec![],
                },
            ),
        ];
        assert!(nobody_chatting_without_a_chat(log, &[("alice", &ended)]).is_err());
        assert!(nobody_chatting_without_a_chat(log, &[("alice", &ended[..1])]).is_ok());
    }
}
