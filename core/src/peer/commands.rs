//! What the user asks for: the typed commands of a user interface.

use super::chat::{Chat, Dialled, End, Stage};
use super::{Peer, PeerOutput};
use crate::command::{Command, Target, HELP};
use crate::event::{ErrorDetail, Event};
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
            Command::Accept => self.accept(),
            Command::Reject => self.reject(),
            Command::Cancel => self.cancel(),
            Command::Leave => self.leave(),
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
        if let Some((code, detail)) = self.dial_refusal() {
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

    /// Why a new call cannot be placed now, if it cannot.
    pub(super) fn dial_refusal(&self) -> Option<(ErrorCode, ErrorDetail)> {
        if let Some(peer) = self
            .partner_at(Stage::Talking)
            .or_else(|| self.partner_at(Stage::Leaving))
        {
            return Some((
                ErrorCode::AlreadyInChat,
                ErrorDetail::AlreadyInChat { peer },
            ));
        }
        if let Some(peer) = self.partner_at(Stage::Calling) {
            return Some((ErrorCode::RequestPending, ErrorDetail::CallRinging { peer }));
        }
        if let Some(peer) = self.partner_at(Stage::Ringing) {
            return Some((
                ErrorCode::RequestPending,
                ErrorDetail::RequestWaiting { peer },
            ));
        }
        None
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

    fn accept(&mut self) {
        let Some(link) = self.find(Stage::Ringing) else {
            return self.error(ErrorCode::NoRequest, ErrorDetail::NoRequest);
        };
        let (mut ctx, chats) = self.split();
        chats.get_mut(&link).expect("found").accept(&mut ctx);
        self.update_status();
    }

    fn reject(&mut self) {
        let Some(link) = self.find(Stage::Ringing) else {
            return self.error(ErrorCode::NoRequest, ErrorDetail::NoRequest);
        };
        self.finish(link, End::Rejected);
    }

    /// `/cancel`: stop our own ringing call.
    fn cancel(&mut self) {
        let Some(link) = self.find(Stage::Calling) else {
            return self.error(ErrorCode::NoRequest, ErrorDetail::NoRequest);
        };
        self.finish(link, End::Left);
    }

    /// `/leave`: end the conversation, or else cancel our ringing call.
    fn leave(&mut self) {
        if let Some(link) = self.find(Stage::Talking) {
            return self.leave_chat(link);
        }
        if let Some(link) = self.find(Stage::Calling) {
            return self.finish(link, End::Left);
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
        if let Some(end) = chat.leave(&mut ctx) {
            self.finish(link, end);
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

    /// `/verify [NAME]`: the safety number of a conversation.
    fn verify(&mut self, name: Option<String>) {
        let own = self.config.identity.public();
        let found = self.chats.values().find_map(|chat| {
            let (peer, key) = chat.talking_with()?;
            let wanted = name.as_deref().is_none_or(|n| same_name(n, &peer));
            wanted.then_some((peer, key))
        });
        match found {
            Some((peer, key)) => {
                let number = crate::identity::safety_number(&own, &key);
                self.event(Event::SafetyNumber { peer, number });
            }
            None => self.error(ErrorCode::NotInChat, ErrorDetail::NotInChat),
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

    fn say(&mut self, text: &str) {
        let Some(text) = prepare_message(text) else {
            return;
        };
        let Some(link) = self.find(Stage::Talking) else {
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
        let (mut ctx, chats) = self.split();
        if let Err(problem) = chats.get_mut(&link).expect("found").say(&mut ctx, &text) {
            self.event(problem.into());
        }
    }
}
