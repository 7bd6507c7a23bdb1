//! What the user asks for: the typed commands of a user interface.

use super::chat::{Chat, Dialled, End, Stage};
use super::{Peer, PeerOutput};
use crate::command::{Command, Target, HELP};
use crate::event::{ErrorDetail, Event, Problem};
use crate::link::LinkId;
use crate::protocol::{ErrorCode, PeerInfo};
use crate::text::{prepare_message, same_name, sanitize, MAX_NAME};
use std::net::SocketAddr;

impl Peer {
    pub(super) fn command(&mut self, command: Command) {
        if self.quitting {
            return self.error(ErrorCode::BadInput, ErrorDetail::Quitting);
        }
        match command {
            Command::List => self.request_list(),
            Command::Connect(target) => self.connect(target),
            Command::Accept(name) => self.accept(name),
            Command::Reject(name) => self.reject(name),
            Command::Cancel(name) => self.cancel(name),
            Command::Leave(name) => self.leave(name),
            Command::Msg { to, text } => self.msg(to, &text),
            Command::Switch(name) => self.switch(name),
            Command::Chats => self.list_chats(),
            Command::Quit => self.quit(),
            Command::Help => self.event(Event::Help {
                commands: HELP.iter().map(|s| s.to_string()).collect(),
            }),
            Command::Verify(name) => self.verify(name),
            Command::Trust(name) => self.lookup_to_trust(name),
            Command::Say(text) => self.say(&text),
        }
    }

    /// The first chat at `stage`, oldest first.
    fn find(&self, stage: Stage) -> Option<LinkId> {
        self.chats
            .iter()
            .find(|(_, c)| c.stage() == stage)
            .map(|(&link, _)| link)
    }

    fn partner_at(&self, stage: Stage) -> Option<String> {
        self.find(stage).map(|link| self.chats[&link].partner())
    }

    fn connect(&mut self, target: Target) {
        let name = match &target {
            Target::Name(name) => Some(name.as_str()),
            Target::Addr(_) => None,
        };
        if let Some((code, detail)) = self.dial_refusal(name) {
            return self.error(code, detail);
        }
        match target {
            Target::Addr(addr) if self.is_own_addr(addr) => {
                self.error(ErrorCode::BadInput, ErrorDetail::CallingYourself)
            }
            Target::Addr(addr) => self.dial(addr, None),
            Target::Name(name) if same_name(&name, &self.config.name) => {
                self.error(ErrorCode::BadInput, ErrorDetail::CallingYourself)
            }
            // Always asked afresh: an address from an older list may
            // belong to a peer that has since restarted elsewhere.
            Target::Name(name) => self.lookup(name),
        }
    }

    /// Why a new call (to `name`, if we know whom) cannot be placed now,
    /// if it cannot: a chat or call with `name` already, or no room.
    pub(super) fn dial_refusal(&self, name: Option<&str>) -> Option<(ErrorCode, ErrorDetail)> {
        if let Some(refusal) = name.and_then(|name| self.one_chat_per_name(None, name)) {
            return Some(refusal);
        }
        if self.is_full() {
            let max = self.config.max_chats.max(1);
            return Some((ErrorCode::ChatsFull, ErrorDetail::ChatsFull { max }));
        }
        None
    }

    /// A name is one chat: why a call with `name` (other than the one on
    /// `except`) cannot go on, if there is a chat or call with it already.
    /// Checked when a call is placed and again when a call placed by
    /// address learns whom it reached.
    pub(super) fn one_chat_per_name(
        &self,
        except: Option<LinkId>,
        name: &str,
    ) -> Option<(ErrorCode, ErrorDetail)> {
        let (_, chat) = self.chats.iter().find(|(&link, chat)| {
            Some(link) != except
                && Stage::OPEN.contains(&chat.stage())
                && same_name(&chat.partner(), name)
        })?;
        let peer = chat.partner();
        Some(match chat.stage() {
            Stage::Calling => (ErrorCode::AlreadyInChat, ErrorDetail::CallRinging { peer }),
            Stage::Ringing => (
                ErrorCode::RequestPending,
                ErrorDetail::RequestWaiting { peer },
            ),
            _ => (
                ErrorCode::AlreadyInChat,
                ErrorDetail::AlreadyInChat { peer },
            ),
        })
    }

    /// Whether `addr` is where this very peer listens.
    pub(super) fn is_own_addr(&self, addr: SocketAddr) -> bool {
        if addr.port() != self.config.listen_port {
            return false;
        }
        let ip = addr.ip();
        ip.is_loopback()
            || ip.is_unspecified()
            || self.server.own_addr().is_some_and(|own| own.ip() == ip)
    }

    /// Calls `addr`: a name the directory gave it for (`dialled`), or an
    /// address typed as is.
    pub(super) fn dial(&mut self, addr: SocketAddr, dialled: Option<Dialled>) {
        let link = self.allocate_link();
        let seed = self.seeds.next_seed();
        let (mut ctx, chats) = self.split();
        chats.insert(link, Chat::dial(&mut ctx, link, addr, dialled, seed));
        self.update_status();
    }

    /// The request `/accept` or `/reject` means: NAME's, or the oldest.
    fn request(&mut self, name: Option<String>) -> Option<LinkId> {
        let found = match &name {
            Some(name) => self.named(name, &[Stage::Ringing]),
            None => self.oldest_request(),
        };
        if found.is_none() {
            let detail = match name {
                Some(peer) => ErrorDetail::NoRequestFrom { peer },
                None => ErrorDetail::NoRequest,
            };
            self.error(ErrorCode::NoRequest, detail);
        }
        found
    }

    fn accept(&mut self, name: Option<String>) {
        let Some(link) = self.request(name) else {
            return;
        };
        let (mut ctx, chats) = self.split();
        chats.get_mut(&link).expect("found").accept(&mut ctx);
        self.started(link);
    }

    fn reject(&mut self, name: Option<String>) {
        if let Some(link) = self.request(name) {
            self.finish(link, End::Rejected);
        }
    }

    /// `/cancel [NAME]`: stop our own ringing call to NAME, or the one
    /// placed last.
    fn cancel(&mut self, name: Option<String>) {
        let found = match &name {
            Some(name) => self.named(name, &[Stage::Calling]),
            None => self.last_call(),
        };
        match (found, name) {
            (Some(link), _) => self.finish(link, End::Left),
            (None, Some(peer)) => self.error(ErrorCode::NoRequest, ErrorDetail::NoCallTo { peer }),
            (None, None) => self.error(ErrorCode::NoRequest, ErrorDetail::NoRequest),
        }
    }

    /// `/leave [NAME]`: end the conversation with NAME (or cancel our
    /// call to NAME); without NAME, the focused conversation, or else our
    /// call placed last.
    fn leave(&mut self, name: Option<String>) {
        if let Some(name) = name {
            return match self.named(&name, &[Stage::Talking, Stage::Calling]) {
                Some(link) => self.leave_chat(link),
                None => self.not_chatting_with(name, false),
            };
        }
        if let Some(link) = self.focus.or_else(|| self.last_call()) {
            return self.leave_chat(link);
        }
        match self.partner_at(Stage::Leaving) {
            Some(peer) => self.error(ErrorCode::NotInChat, ErrorDetail::AlreadyLeaving { peer }),
            None => self.error(ErrorCode::NotInChat, ErrorDetail::NotInChat),
        }
    }

    fn leave_chat(&mut self, link: LinkId) {
        let (mut ctx, chats) = self.split();
        let Some(chat) = chats.get_mut(&link) else {
            return;
        };
        match chat.leave(&mut ctx) {
            Some(end) => self.finish(link, end),
            // Waiting for the last receipts: typing goes elsewhere.
            None => self.refocus(),
        }
    }

    /// `/quit` or the end of input: leave every chat (waiting, bounded,
    /// for receipts), cancel our call, turn callers away, then exit.
    pub(super) fn quit(&mut self) {
        self.quitting = true;
        let links: Vec<LinkId> = self.chats.keys().copied().collect();
        for link in links {
            self.leave_chat(link);
        }
        self.exit_if_done();
    }

    /// `/verify [NAME]`: the safety number of the conversation with
    /// NAME, or of the focused one.
    fn verify(&mut self, name: Option<String>) {
        let own = self.config.identity.public();
        let link = match &name {
            Some(name) => self.named(name, &[Stage::Talking, Stage::Leaving]),
            None => self.focus,
        };
        match (link.and_then(|link| self.chats[&link].talking_with()), name) {
            (Some((peer, key)), _) => {
                let number = crate::identity::safety_number(&own, &key);
                self.event(Event::SafetyNumber { peer, number });
            }
            (None, Some(name)) => self.not_chatting_with(name, false),
            (None, None) => self.error(ErrorCode::NotInChat, ErrorDetail::NotInChat),
        }
    }

    /// The directory's answer to `/trust NAME`: its key is pinned for
    /// the name, replacing any older pin, so the next chat with that key
    /// is taken (and one with the old key refused).
    pub(super) fn trust_answered(&mut self, asked: String, entry: Option<PeerInfo>) {
        let Some(info) = entry else {
            return self.error(
                ErrorCode::UnknownPeer,
                ErrorDetail::NoSuchPeer { name: asked },
            );
        };
        let peer = sanitize(&info.name, MAX_NAME);
        let Some(key) = info.key else {
            return self.error(ErrorCode::CannotVerify, ErrorDetail::NoKeyToTrust { peer });
        };
        let name = asked.to_ascii_lowercase();
        if self.pins.insert(name.clone(), key) != Some(key) {
            self.outputs.push_back(PeerOutput::Pin { name, key });
        }
        let fingerprint = key.fingerprint();
        self.event(Event::Trusted { peer, fingerprint });
    }

    /// A plain line: a message to the focused conversation.
    fn say(&mut self, text: &str) {
        let Some(text) = prepare_message(text) else {
            return;
        };
        let Some(link) = self.focus else {
            let detail = match (
                self.partner_at(Stage::Leaving),
                self.partner_at(Stage::Calling),
            ) {
                (Some(peer), _) => ErrorDetail::AlreadyLeaving { peer },
                (None, Some(peer)) => ErrorDetail::StillRinging { peer },
                (None, None) => ErrorDetail::NotInChat,
            };
            return self.error(ErrorCode::NotInChat, detail);
        };
        self.say_to(link, &text);
    }

    /// `/msg NAME TEXT`: a message to NAME's conversation, focused or not.
    fn msg(&mut self, to: String, text: &str) {
        let Some(text) = prepare_message(text) else {
            return;
        };
        match self.named(&to, &[Stage::Talking]) {
            Some(link) => self.say_to(link, &text),
            None => self.not_chatting_with(to, true),
        }
    }

    fn say_to(&mut self, link: LinkId, text: &str) {
        let (mut ctx, chats) = self.split();
        match chats.get_mut(&link).expect("found").say(&mut ctx, text) {
            Ok(()) => {}
            // The message would take the transcript past its quota: it
            // is not sent, and the chat ends saying why.
            Err(Problem {
                detail: ErrorDetail::QuotaReached { scope, .. },
                ..
            }) => self.finish(link, End::Quota(scope)),
            Err(problem) => self.event(problem.into()),
        }
    }
}
