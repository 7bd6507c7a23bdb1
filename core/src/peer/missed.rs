//! The notices of calls the user never answered, bounded.
//!
//! A call that ends before the user answers it tells them so: `missed`
//! (the caller hung up, fell silent, rang too long, or found no room), or
//! an `error` when the caller could not be verified. Each is one line on
//! the screen, and callers cost nothing to make: 5,000 hellos once put
//! 4,729 `missed` lines on a peer's screen. So in each
//! [`MISSED_INTERVAL`] the first [`MISSED_SHOWN`] notices show as they
//! come, and the rest are counted and told at the end of the interval in
//! one `missed_calls` event (how many, and the first few names).

use crate::event::Event;
use crate::time::Instant;
use std::collections::BTreeSet;
use std::time::Duration;

/// The interval over which call notices are counted.
pub const MISSED_INTERVAL: Duration = Duration::from_secs(10);

/// Notices shown one by one per interval; the rest are summed up.
pub const MISSED_SHOWN: usize = 4;

/// Names listed in a summary at most (sorted, first ones).
pub const MISSED_NAMES: usize = 8;

/// The interval in progress.
#[derive(Debug, Default)]
pub(crate) struct MissedCalls {
    interval: Option<Interval>,
}

#[derive(Debug)]
struct Interval {
    until: Instant,
    shown: usize,
    /// Notices held back: missed calls, and refused callers among them.
    held: usize,
    refused: usize,
    peers: BTreeSet<String>,
}

impl MissedCalls {
    /// Whether the notice of a call from `peer` shows now; if not, it is
    /// counted for the summary. `refused`: the caller failed its
    /// verification before it rang (an `error`), rather than a `missed`
    /// call.
    pub(super) fn show(&mut self, now: Instant, peer: &str, refused: bool) -> bool {
        if self.interval.as_ref().is_some_and(|i| now >= i.until) {
            // An interval with nothing held ended unnoticed: start anew.
            if self.interval.as_ref().is_some_and(|i| i.held == 0) {
                self.interval = None;
            }
        }
        let interval = self.interval.get_or_insert_with(|| Interval {
            until: now + MISSED_INTERVAL,
            shown: 0,
            held: 0,
            refused: 0,
            peers: BTreeSet::new(),
        });
        if interval.shown < MISSED_SHOWN {
            interval.shown += 1;
            return true;
        }
        interval.held += 1;
        interval.refused += usize::from(refused);
        if interval.peers.len() < MISSED_NAMES || interval.peers.contains(peer) {
            interval.peers.insert(peer.to_string());
        }
        false
    }

    /// When the summary of the interval is due, if anything is held.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.interval
            .as_ref()
            .filter(|i| i.held > 0)
            .map(|i| i.until)
    }

    /// The summary of the interval, if it is over (or `now` is the end of
    /// the peer) and held notices back; the next interval starts afresh.
    pub(super) fn summary(&mut self, now: Instant, ending: bool) -> Option<Event> {
        let interval = self.interval.as_ref()?;
        if !ending && now < interval.until {
            return None;
        }
        let interval = self.interval.take()?;
        (interval.held > 0).then(|| Event::MissedCalls {
            count: interval.held,
            refused: interval.refused,
            peers: interval.peers.into_iter().collect(),
            interval_ms: MISSED_INTERVAL.as_millis() as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_notices_show_then_one_summary_per_interval() {
        let t0 = Instant::default();
        let mut missed = MissedCalls::default();
        let shown = (0..100)
            .filter(|i| missed.show(t0, &format!("caller{:03}", i % 20), i % 2 == 0))
            .count();
        assert_eq!(shown, MISSED_SHOWN);
        assert_eq!(missed.deadline(), Some(t0 + MISSED_INTERVAL));
        assert_eq!(missed.summary(t0 + Duration::from_secs(9), false), None);
        let Some(Event::MissedCalls {
            count,
            refused,
            peers,
            ..
        }) = missed.summary(t0 + MISSED_INTERVAL, false)
        else {
            panic!("a summary at the end of the interval");
        };
        assert_eq!((count, refused), (96, 48));
        assert_eq!(peers.len(), MISSED_NAMES);
        assert_eq!(peers[0], "caller004", "the first names held back");
        assert_eq!(missed.deadline(), None);
        // The next interval shows its first notices again.
        assert!(missed.show(t0 + MISSED_INTERVAL, "late", false));
    }

    #[test]
    fn a_quiet_interval_gives_no_summary() {
        let t0 = Instant::default();
        let mut missed = MissedCalls::default();
        assert!(missed.show(t0, "alice", false));
        assert_eq!(missed.deadline(), None);
        assert_eq!(missed.summary(t0 + MISSED_INTERVAL, true), None);
    }
}
