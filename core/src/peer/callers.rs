//! Who may connect to this peer, and how much of it one host may hold.
//!
//! Every incoming connection costs a Noise handshake and a place among the
//! connections waiting for their `hello`; before this, 16 silent sockets
//! from one host filled those places and every honest call was closed at
//! once. Incoming connections are counted by *source*, as the server
//! counts its clients (an IPv4 address or an IPv6 /64,
//! [`SourceKey`]): one source may hold only
//! [`PeerConfig::max_calls_per_source`] connections that are not yet a
//! conversation (waiting for their hello, being verified, or ringing) and
//! open new ones at [`PeerConfig::calls_per_source`]. Loopback callers
//! (users of this host) are exempt unless
//! [`PeerConfig::limit_loopback`] is set.
//!
//! A source may also have only [`ringing_share`] calls ringing at once
//! (half of [`PeerConfig::max_chats`], at least one): before, the per-source
//! cap (4) equalled the chats allowed (4), so one host registering four
//! names kept the user `busy` for everyone, ring time after ring time.
//! A caller past its source's share is answered `busy`, as when full.
//!
//! When all [`PeerConfig::max_pending_incoming`] places are taken, the
//! newest caller is not simply turned away (which let a few hosts lock
//! everyone out): the oldest connection of the source holding the most
//! places is cut for it, unless the newcomer's own source is the one
//! holding the most.

use super::chat::{Chat, Stage};
use super::PeerConfig;
use crate::link::LinkId;
use crate::rate::TokenBucket;
use crate::registry::sources::SourceKey;
use crate::time::Instant;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// How often sources whose budget has refilled are forgotten: the table
/// holds only hosts seen in the last few seconds.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// Calls from one source that may ring at once: half the chats, at
/// least one, so that one host never takes every place.
pub(super) fn ringing_share(config: &PeerConfig) -> usize {
    (config.max_chats / 2).max(1)
}

/// Whether the caller on `link` may not ring, its source having
/// [`ringing_share`] calls ringing already (loopback is exempt unless
/// [`PeerConfig::limit_loopback`]).
pub(super) fn rings_past_its_share(
    link: LinkId,
    config: &PeerConfig,
    chats: &BTreeMap<LinkId, Chat>,
) -> bool {
    let Some(addr) = chats.get(&link).map(|c| c.addr) else {
        return false;
    };
    if !config.limit_loopback && addr.ip().to_canonical().is_loopback() {
        return false;
    }
    let source = SourceKey::of(addr.ip());
    let ringing = chats
        .iter()
        .filter(|(&l, c)| l != link && c.stage() == Stage::Ringing)
        .filter(|(_, c)| SourceKey::of(c.addr.ip()) == source)
        .count();
    ringing >= ringing_share(config)
}

/// What becomes of a new incoming connection.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Admission {
    /// It may say hello.
    Admit,
    /// It is closed at once, unanswered (telling would cost the
    /// handshake it is refused to save).
    Refuse,
    /// It may say hello once this older connection is cut.
    AdmitCutting(LinkId),
}

/// The new-connection budgets of the sources seen lately.
#[derive(Debug, Default)]
pub(super) struct Callers {
    budgets: BTreeMap<SourceKey, TokenBucket>,
    pruned_at: Option<Instant>,
}

impl Callers {
    /// Decides about a connection from `addr`, given the chats open now.
    pub(super) fn admit(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        config: &PeerConfig,
        chats: &BTreeMap<LinkId, Chat>,
    ) -> Admission {
        self.prune(now);
        let source = SourceKey::of(addr.ip());
        let exempt = !config.limit_loopback && addr.ip().to_canonical().is_loopback();
        let unanswered = |chat: &&Chat| matches!(chat.stage(), Stage::Opening | Stage::Ringing);
        let own = chats
            .values()
            .filter(unanswered)
            .filter(|c| SourceKey::of(c.addr.ip()) == source)
            .count();
        if !exempt {
            if own >= config.max_calls_per_source.max(1) {
                return Admission::Refuse;
            }
            let budget = self
                .budgets
                .entry(source)
                .or_insert_with(|| TokenBucket::new(config.calls_per_source, now));
            if !budget.take(now) {
                return Admission::Refuse;
            }
        }
        let waiting: Vec<(&LinkId, &Chat)> = chats
            .iter()
            .filter(|(_, c)| c.stage() == Stage::Opening)
            .collect();
        if waiting.len() < config.max_pending_incoming.max(1) {
            return Admission::Admit;
        }
        let mut held: BTreeMap<SourceKey, (usize, LinkId)> = BTreeMap::new();
        for (&link, chat) in &waiting {
            let entry = held
                .entry(SourceKey::of(chat.addr.ip()))
                .or_insert((0, link));
            entry.0 += 1;
            entry.1 = entry.1.min(link);
        }
        // The heaviest source; among equals, the one whose oldest
        // connection is oldest (link ids count up).
        let Some((_, &(most, oldest))) = held
            .iter()
            .max_by_key(|(_, (count, oldest))| (*count, std::cmp::Reverse(*oldest)))
        else {
            return Admission::Refuse;
        };
        // The newcomer's own source holds the most (alone or tied): cutting
        // another would let it grow; it is the one turned away.
        let own = held.get(&source).map_or(0, |(count, _)| *count);
        if own > 0 && own == most {
            return Admission::Refuse;
        }
        Admission::AdmitCutting(oldest)
    }

    fn prune(&mut self, now: Instant) {
        if self
            .pruned_at
            .is_some_and(|at| now.saturating_since(at) < PRUNE_EVERY)
        {
            return;
        }
        self.pruned_at = Some(now);
        self.budgets.retain(|_, budget| !budget.is_full(now));
    }
}
