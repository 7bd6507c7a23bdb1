//! How many of the server's `error` frames that answer no request (no
//! `id`) are shown.
//!
//! An honest server sends such an error rarely, just before it closes the
//! link (`rate_limited`, `timeout`, `frame_too_long`…): that one the user
//! wants to read. A hostile one can send them without end, one line each
//! on the user's screen. So in each [`UNASKED_INTERVAL`] the first
//! [`UNASKED_SHOWN`] are shown and the rest of that interval are dropped:
//! an honest server never comes near it, and a link that goes bad shows as
//! `server_lost` anyway.

use crate::time::Instant;
use std::time::Duration;

/// The interval over which unasked server errors are counted.
pub const UNASKED_INTERVAL: Duration = Duration::from_secs(10);

/// Unasked server errors shown per interval; the rest are dropped.
pub const UNASKED_SHOWN: usize = 3;

/// The interval in progress: when it started, and how many were shown.
#[derive(Debug, Default)]
pub(super) struct UnaskedErrors {
    interval: Option<(Instant, usize)>,
}

impl UnaskedErrors {
    /// Whether an unasked error that came `now` is shown.
    pub(super) fn show(&mut self, now: Instant) -> bool {
        let (start, shown) = self.interval.get_or_insert((now, 0));
        if now.saturating_since(*start) >= UNASKED_INTERVAL {
            (*start, *shown) = (now, 0);
        }
        *shown += 1;
        *shown <= UNASKED_SHOWN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_unasked_errors_per_interval_are_shown_the_rest_dropped() {
        let t0 = Instant::default();
        let mut unasked = UnaskedErrors::default();
        let shown = (0..1000).filter(|_| unasked.show(t0)).count();
        assert_eq!(shown, UNASKED_SHOWN);
        let later = t0 + Duration::from_secs(9);
        assert!(!unasked.show(later), "still the same interval");
        let next = t0 + UNASKED_INTERVAL;
        let shown = (0..1000).filter(|_| unasked.show(next)).count();
        assert_eq!(shown, UNASKED_SHOWN, "the next interval shows a few again");
    }
}
