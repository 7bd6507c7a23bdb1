//! Which of several chats a command means, and whether there is room for
//! another.
//!
//! A peer has up to [`PeerConfig::max_chats`](super::PeerConfig) chats
//! open at once: conversations, and calls ringing either way. A command
//! names its chat (`/msg bob …`, `/accept bob`), or else means:
//! - a plain line, `/leave`, `/verify`: the *focused* conversation, the
//!   one most recently started or switched to (`/switch`). When it ends,
//!   or is being left, the focus moves to the most recently started of
//!   the other conversations (event `focused`), or to none;
//! - `/accept`, `/reject`: the oldest request (the first to ring);
//! - `/cancel`: the call placed last.

use super::chat::{Chat, Stage};
use super::Peer;
use crate::event::{ChatEntry, ChatState, ErrorDetail, Event};
use crate::link::LinkId;
use crate::protocol::ErrorCode;
use crate::text::same_name;

impl Peer {
    /// Chats open: everything but connections that have not yet become a
    /// request anybody sees.
    pub(super) fn open_chats(&self) -> usize {
        let open = |c: &&Chat| c.stage() != Stage::Opening;
        self.chats.values().filter(open).count()
    }

    /// Whether another chat would be one too many.
    pub(super) fn is_full(&self) -> bool {
        self.open_chats() >= self.config.max_chats.max(1)
    }

    /// The chat with `name` at one of `stages`, if any.
    pub(super) fn named(&self, name: &str, stages: &[Stage]) -> Option<LinkId> {
        self.chats
            .iter()
            .find(|(_, c)| stages.contains(&c.stage()) && same_name(&c.partner(), name))
            .map(|(&link, _)| link)
    }

    /// The chat at `stage` that rang or started last (`newest`) or first.
    fn by_turn(&self, stage: Stage, newest: bool) -> Option<LinkId> {
        let turns = self
            .turns
            .iter()
            .filter(|(link, _)| self.chats.get(link).is_some_and(|c| c.stage() == stage));
        let pick = |(&link, &turn): (&LinkId, &u64)| (turn, link);
        let found = if newest {
            turns.map(pick).max()
        } else {
            turns.map(pick).min()
        };
        found.map(|(_, link)| link)
    }

    /// The request that has waited longest for an answer.
    pub(super) fn oldest_request(&self) -> Option<LinkId> {
        self.by_turn(Stage::Ringing, false)
    }

    /// Our call placed last (link ids count up as calls are placed).
    pub(super) fn last_call(&self) -> Option<LinkId> {
        self.chats
            .iter()
            .rev()
            .find(|(_, c)| c.stage() == Stage::Calling)
            .map(|(&link, _)| link)
    }

    /// Notes that the chat on `link` rang or started just now.
    pub(super) fn take_turn(&mut self, link: LinkId) {
        self.turns.insert(link, self.next_turn);
        self.next_turn += 1;
    }

    /// A conversation started: it takes the focus (`chat_started` says
    /// so, no `focused` event).
    pub(super) fn started(&mut self, link: LinkId) {
        self.take_turn(link);
        self.focus = Some(link);
        self.update_status();
    }

    /// After a chat ended or is being left: if it had the focus, the most
    /// recently started other conversation takes it, and the user is told
    /// (not while quitting: every chat is being left then).
    pub(super) fn refocus(&mut self) {
        let focused = |link: &LinkId| {
            self.chats
                .get(link)
                .is_some_and(|c| c.stage() == Stage::Talking)
        };
        if self.focus.as_ref().is_some_and(focused) {
            return;
        }
        self.focus = self.by_turn(Stage::Talking, true);
        if let (Some(peer), false) = (self.focused(), self.quitting) {
            self.event(Event::Focused { peer });
        }
    }

    /// `/switch NAME`.
    pub(super) fn switch(&mut self, name: String) {
        let Some(link) = self.named(&name, &[Stage::Talking]) else {
            return self.not_chatting_with(name, false);
        };
        self.focus = Some(link);
        let peer = self.chats[&link].partner();
        self.event(Event::Focused { peer });
    }

    /// `/chats`: every chat a user can see, by name.
    pub(super) fn list_chats(&mut self) {
        let mut chats: Vec<ChatEntry> = self
            .chats
            .values()
            .filter_map(|chat| {
                let state = match chat.stage() {
                    Stage::Opening => return None,
                    Stage::Calling => ChatState::Calling,
                    Stage::Ringing => ChatState::Incoming,
                    Stage::Talking => ChatState::Talking,
                    Stage::Leaving => ChatState::Leaving,
                };
                let peer = chat.partner();
                Some(ChatEntry { peer, state })
            })
            .collect();
        chats.sort_by_key(|c| (c.peer.to_ascii_lowercase(), c.state));
        self.event(Event::Chats { chats });
    }

    /// A command for a chat with `name`, with none going on: why not, as
    /// closely as the chats say (a chat being left; for a `message`, a
    /// call still ringing).
    pub(super) fn not_chatting_with(&mut self, name: String, message: bool) {
        let calling = self.named(&name, &[Stage::Calling]).filter(|_| message);
        let detail = if let Some(link) = self.named(&name, &[Stage::Leaving]) {
            let peer = self.chats[&link].partner();
            ErrorDetail::AlreadyLeaving { peer }
        } else if let Some(link) = calling {
            let peer = self.chats[&link].partner();
            ErrorDetail::StillRinging { peer }
        } else {
            ErrorDetail::NotChattingWith { peer: name }
        };
        self.error(ErrorCode::NotInChat, detail);
    }
}
