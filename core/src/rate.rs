//! A token bucket: how many requests a connection (or a source, or the
//! whole server) may make, and how fast.
//!
//! A client may burst up to `burst` requests, then one more every
//! `1 / per_second`. A list of 10,000 peers costs the server ~700 KB of
//! output; without this, one client repeating `list` could keep it busy
//! and fill its memory with replies.

use crate::time::Instant;
use std::time::Duration;

/// Request budget of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed at once after a quiet period.
    pub burst: u32,
    /// Requests regained per second.
    pub per_second: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            burst: 20,
            per_second: 5,
        }
    }
}

/// The state of one connection's budget.
#[derive(Clone, Copy, Debug)]
pub struct TokenBucket {
    limit: RateLimit,
    /// Tokens in thousandths, so refill needs no floating point.
    millis: u64,
    updated: Instant,
}

impl TokenBucket {
    pub fn new(limit: RateLimit, now: Instant) -> Self {
        Self {
            limit,
            millis: u64::from(limit.burst) * 1000,
            updated: now,
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        self.take_n(now, 1)
    }

    /// Takes `n` tokens (a costlier request) if there are as many.
    pub fn take_n(&mut self, now: Instant, n: u32) -> bool {
        let elapsed = now.saturating_since(self.updated);
        self.updated = self.updated.max(now);
        let regained =
            (elapsed.as_millis() as u64).saturating_mul(u64::from(self.limit.per_second));
        self.millis = self
            .millis
            .saturating_add(regained)
            .min(u64::from(self.limit.burst) * 1000);
        let cost = u64::from(n) * 1000;
        if self.millis >= cost {
            self.millis -= cost;
            true
        } else {
            false
        }
    }

    /// Whether the bucket would be full at `now`: a budget nobody has
    /// drawn on for a while, which can be forgotten (and made anew, full,
    /// when needed).
    pub fn is_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_since(self.updated);
        let regained =
            (elapsed.as_millis() as u64).saturating_mul(u64::from(self.limit.per_second));
        self.millis.saturating_add(regained) >= u64::from(self.limit.burst) * 1000
    }

    /// How long until a token is available again (for error messages).
    pub fn wait(&self) -> Duration {
        let missing = 1000u64.saturating_sub(self.millis);
        let per_second = u64::from(self.limit.per_second.max(1));
        Duration::from_millis(missing.div_ceil(per_second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_one_request_per_refill_interval() {
        let t0 = Instant::default();
        let mut bucket = TokenBucket::new(
            RateLimit {
                burst: 3,
                per_second: 2,
            },
            t0,
        );
        assert!(bucket.take(t0) && bucket.take(t0) && bucket.take(t0));
        assert!(!bucket.take(t0));
        assert_eq!(bucket.wait(), Duration::from_millis(500));
        assert!(!bucket.take(t0 + Duration::from_millis(499)));
        assert!(bucket.take(t0 + Duration::from_millis(500)));
        assert!(bucket.take(t0 + Duration::from_secs(60)));
        assert!(bucket.take(t0 + Duration::from_secs(60)));
        assert!(bucket.take(t0 + Duration::from_secs(60)));
        assert!(
            !bucket.take(t0 + Duration::from_secs(60)),
            "never more than the burst"
        );
    }

    #[test]
    fn a_bucket_is_full_again_once_the_burst_has_refilled() {
        let t0 = Instant::default();
        let limit = RateLimit {
            burst: 4,
            per_second: 2,
        };
        let mut bucket = TokenBucket::new(limit, t0);
        assert!(bucket.is_full(t0));
        assert!(bucket.take(t0) && bucket.take(t0));
        assert!(!bucket.is_full(t0 + Duration::from_millis(999)));
        assert!(bucket.is_full(t0 + Duration::from_secs(1)));
    }
}
