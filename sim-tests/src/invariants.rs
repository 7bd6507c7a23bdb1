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

/// The reason the last chat of a peer ended, if it ended.
pub fn last_end(events: &[(Duration, Event)]) -> Option<ChatEndReason> {
    events.iter().rev().find_map(|(_, e)| match e {
        Event::ChatEnded { reason, .. } => Some(*reason),
        _ => None,
    })
}
