//! The two clocks a state machine is given, never reads.

use std::ops::{Add, Sub};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point on the driver's monotonic clock, counted from an origin the
/// driver chose (usually its own start).
///
/// natter-core has its own instant type instead of `std::time::Instant`
/// because the standard one can only be made by reading the real clock;
/// this one is plain data, so tests and simulations make any instant they
/// need and the core cannot read a clock by accident.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(Duration);

impl Instant {
    /// The instant `since_origin` after the clock's origin.
    pub const fn from_origin(since_origin: Duration) -> Self {
        Self(since_origin)
    }

    /// Time since the clock's origin.
    pub const fn since_origin(self) -> Duration {
        self.0
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0 + rhs)
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_since(rhs)
    }
}

/// "Now", as the driver saw it when it called into a state machine.
///
/// `mono` drives deadlines (heartbeats, ring and leave timeouts); `wall` is
/// only used for the timestamps people read (transcripts, `at` on messages).
/// Keeping them apart lets a simulation run deadlines on virtual time and
/// still print reproducible wall-clock stamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time for deadlines.
    pub mono: Instant,
    /// Wall-clock time since the Unix epoch, for timestamps.
    pub wall: Duration,
}

impl Now {
    /// Builds a `Now` from a monotonic instant and a wall-clock time.
    pub fn new(mono: Instant, wall: SystemTime) -> Self {
        Self {
            mono,
            wall: wall.duration_since(UNIX_EPOCH).unwrap_or_default(),
        }
    }

    /// A fixed starting point for tests: monotonic zero, wall clock at
    /// `unix_secs`.
    pub fn at_unix(unix_secs: u64) -> Self {
        Self {
            mono: Instant::default(),
            wall: Duration::from_secs(unix_secs),
        }
    }

    /// The same moment moved forward by `by` on both clocks (tests and
    /// simulations advance time this way).
    pub fn advanced(self, by: Duration) -> Self {
        Self {
            mono: self.mono + by,
            wall: self.wall + by,
        }
    }

    /// RFC 3339 UTC timestamp with milliseconds, e.g.
    /// `2026-11-25T11:08:54.123Z`.
    pub fn rfc3339(&self) -> String {
        rfc3339_millis(self.wall)
    }
}

/// Formats a duration since the Unix epoch as RFC 3339 UTC with milliseconds.
pub fn rfc3339_millis(since_epoch: Duration) -> String {
    // Truncate to whole milliseconds so the output always has exactly three
    // fraction digits.
    let millis = Duration::from_millis(since_epoch.as_millis() as u64);
    humantime::format_rfc3339_millis(UNIX_EPOCH + millis).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        let at = Duration::from_millis(1_764_068_934_123);
        assert_eq!(rfc3339_millis(at), "2025-11-25T11:08:54.123Z");
        assert_eq!(
            rfc3339_millis(Duration::from_secs(0)),
            "1970-01-01T00:00:00.000Z"
        );
    }
}
