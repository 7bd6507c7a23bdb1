//! Fair turns at a server's intake: each source (an IPv4 address or an
//! IPv6 /64, as for the registry's shares) has at most
//! [`TURNS_PER_SOURCE`] events of its connections waiting for the driver
//! or in its hands at once.
//!
//! Why: the driver takes the links' events from one queue, in the order
//! they came. A few hosts that open a thousand connections at once (each
//! a handshake, ~250 µs of the server's CPU) or ask for lists together
//! put a burst of work in that queue, and an honest client's handshake
//! waited behind all of it: 0.2–0.9 s in a release build during
//! `unfinished_lines_held_open` and `lists_that_are_never_read`
//! (bins/tests/attacks.rs; figures in docs/LIMITS.md). With a turn
//! per source, the queue holds at most one event per active source, so an
//! honest event waits for one event of each other source, not for every
//! event they could send. The other connections of a busy source wait in
//! their reader task, before the driver's queue, holding one small read
//! each ([`crate::link::READ_BEFORE_TURN`] bytes at most) and pushing back
//! on their senders through TCP.
//!
//! A source's turns cost one `Semaphore` shared by its links, kept while
//! one of them is open. Links opened without a source (a peer's, and a
//! server's loopback clients unless loopback is limited) read freely.

use natter_core::registry::SourceKey;
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Events of one source held by the driver's queue or by the driver at
/// once. One: an honest event then waits for at most one event of each
/// other active source.
pub const TURNS_PER_SOURCE: usize = 1;

/// The turns of every source with a link open.
#[derive(Debug)]
pub struct Intake {
    turns: BTreeMap<SourceKey, Weak<Semaphore>>,
    /// The table's size at which the sources whose links are all gone
    /// are next forgotten: twice what was left the last time, so that
    /// the cleaning costs O(1) per opening and the table stays within
    /// twice the sources with a link open.
    clean_at: usize,
}

impl Default for Intake {
    fn default() -> Self {
        Intake {
            turns: BTreeMap::new(),
            clean_at: MIN_CLEAN,
        }
    }
}

/// Below this many sources remembered, none is forgotten.
const MIN_CLEAN: usize = 64;

impl Intake {
    /// The turns of `source`, shared with its other open links.
    pub fn turns_of(&mut self, source: SourceKey) -> Arc<Semaphore> {
        if let Some(turns) = self.turns.get(&source).and_then(Weak::upgrade) {
            return turns;
        }
        if self.turns.len() >= self.clean_at {
            self.turns.retain(|_, turns| turns.strong_count() > 0);
            self.clean_at = (self.turns.len() * 2).max(MIN_CLEAN);
        }
        let turns = Arc::new(Semaphore::new(TURNS_PER_SOURCE));
        self.turns.insert(source, Arc::downgrade(&turns));
        turns
    }

    /// Sources remembered (those with a link open, and some whose links
    /// all closed since the table was last cleaned).
    pub fn sources(&self) -> usize {
        self.turns.len()
    }
}

/// One event's turn: given back when dropped, that is once the driver has
/// handled the event it came with.
#[derive(Debug)]
pub struct Turn(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

impl Turn {
    /// Waits for a turn of `turns`, if the link has a source.
    pub async fn take(turns: Option<&Arc<Semaphore>>) -> Self {
        match turns {
            // The semaphore is never closed.
            Some(turns) => Turn(Arc::clone(turns).acquire_owned().await.ok()),
            None => Turn(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn source(last: u8) -> SourceKey {
        SourceKey::of(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)))
    }

    #[tokio::test]
    async fn a_source_has_one_turn_shared_by_its_links_until_the_driver_is_done() {
        let mut intake = Intake::default();
        let first_link = intake.turns_of(source(1));
        let second_link = intake.turns_of(source(1));
        let other_source = intake.turns_of(source(2));
        let turn = Turn::take(Some(&first_link)).await;
        // The same source waits; another source does not.
        assert_eq!(second_link.available_permits(), 0);
        assert_eq!(other_source.available_permits(), TURNS_PER_SOURCE);
        drop(turn);
        assert_eq!(second_link.available_permits(), TURNS_PER_SOURCE);
    }

    #[tokio::test]
    async fn sources_whose_links_are_gone_are_forgotten() {
        let mut intake = Intake::default();
        for i in 0..200u8 {
            drop(intake.turns_of(source(i)));
        }
        let kept = intake.turns_of(source(250));
        assert!(intake.sources() <= 64, "{} remembered", intake.sources());
        assert_eq!(intake.turns_of(source(250)).available_permits(), 1);
        drop(kept);
    }
}
