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

    /// Appends [`Now::rfc3339`] to `out`.
    pub fn push_rfc3339(&self, out: &mut String) {
        push_rfc3339_millis(out, self.wall);
    }
}

/// Bytes of an RFC 3339 timestamp with milliseconds
/// (`2026-11-25T11:08:54.123Z`).
pub const RFC3339_MILLIS_LEN: usize = 24;

/// The last instant a four-digit year holds, 9999-12-31T23:59:59.999Z.
const LAST_MILLI: u64 = 253_402_300_800_000 - 1;

/// Formats a duration since the Unix epoch as RFC 3339 UTC with milliseconds.
pub fn rfc3339_millis(since_epoch: Duration) -> String {
    let mut out = String::with_capacity(RFC3339_MILLIS_LEN);
    push_rfc3339_millis(&mut out, since_epoch);
    out
}

/// Appends [`rfc3339_millis`] to `out`.
///
/// Written out by hand (civil date from days, digits into a fixed
/// buffer) where it went through `humantime` and `fmt`, a `SystemTime`
/// and a `String` each time: a transcript line and a message each carry
/// one, so it ran two or three times per message (`natter bench --only
/// throughput`, under callgrind). Truncated to whole milliseconds, so
/// there are always three fraction digits; a time past year 9999 (a clock
/// gone wrong) is written as the last millisecond of that year, where the
/// old formatter failed.
pub fn push_rfc3339_millis(out: &mut String, since_epoch: Duration) {
    let millis = u64::try_from(since_epoch.as_millis()).map_or(LAST_MILLI, |m| m.min(LAST_MILLI));
    let (secs, milli) = (millis / 1000, millis % 1000);
    let (days, secs_of_day) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_date(days);
    let mut buf = *b"0000-00-00T00:00:00.000Z";
    let mut digits = |at: usize, value: u64, width: usize| {
        let mut value = value;
        for i in (at..at + width).rev() {
            buf[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    digits(0, year, 4);
    digits(5, month, 2);
    digits(8, day, 2);
    digits(11, secs_of_day / 3600, 2);
    digits(14, secs_of_day / 60 % 60, 2);
    digits(17, secs_of_day % 60, 2);
    digits(20, milli, 3);
    out.push_str(std::str::from_utf8(&buf).expect("ASCII digits"));
}

/// The proleptic Gregorian (year, month, day) of the day `days` after
/// 1970-01-01 (Howard Hinnant's `civil_from_days`, for days ≥ 0).
fn civil_date(days: u64) -> (u64, u64, u64) {
    // Counted from 0000-03-01, so that a leap day ends its year.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let march_based_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * march_based_month + 2) / 5 + 1;
    let month = if march_based_month < 10 {
        march_based_month + 3
    } else {
        march_based_month - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
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
        assert_eq!(
            rfc3339_millis(Duration::from_secs(u64::MAX)),
            "9999-12-31T23:59:59.999Z"
        );
    }

    /// What the formatter replaced, for every kind of day: leap days, the
    /// centuries that are not leap years, the ends of months and years.
    fn humantime(millis: u64) -> String {
        humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(millis)).to_string()
    }

    #[test]
    fn timestamps_are_written_as_humantime_wrote_them() {
        let day = 86_400_000;
        // Every day from 1970 to 2500 (leap years, 2100, 2400), at a time
        // that changes with the day.
        for d in 0..(530 * 366) {
            let millis = d * day + (d * 7_919_993) % day;
            let at = Duration::from_millis(millis);
            assert_eq!(rfc3339_millis(at), humantime(millis), "day {d}");
        }
        // Spread over the whole range, and its ends.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let millis = x % (LAST_MILLI + 1);
            let at = Duration::from_millis(millis);
            assert_eq!(rfc3339_millis(at), humantime(millis), "{millis} ms");
        }
        for millis in [0, 999, 1000, LAST_MILLI] {
            let at = Duration::from_millis(millis);
            assert_eq!(rfc3339_millis(at), humantime(millis), "{millis} ms");
        }
        // Sub-millisecond parts are cut, not rounded.
        let at = Duration::from_nanos(1_764_068_934_123_999_999);
        assert_eq!(rfc3339_millis(at), "2025-11-25T11:08:54.123Z");
    }
}
