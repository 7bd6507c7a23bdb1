//! Refusals logged at a bounded rate.
//!
//! A host that keeps connecting past its share is refused thousands of
//! times a second; one log line each would fill the operator's disk and
//! drown every other line. So within an interval (10 s by default) the
//! first [`PER_SOURCE_LINES`] refusals of each source and reason get a
//! line of their own, with their detail, up to [`FULL_LINES`] lines in
//! all; the others are counted, and when
//! the interval ends one summary line per source and reason says how many
//! there were ("refused 2,935 more connections from 10.0.0.7 in the last
//! 10 s: too_many_connections"), the [`SUMMARY_LINES`] largest of them,
//! and one line for the rest. At most `FULL_LINES + SUMMARY_LINES + 1`
//! lines per interval, whatever the attack.

use super::sources::SourceKey;
use super::RegistryLog;
use crate::protocol::ErrorCode;
use crate::time::Instant;
use std::collections::BTreeMap;
use std::time::Duration;

/// Refusals logged in full per interval, over all sources.
pub const FULL_LINES: usize = 20;
/// Refusals logged in full per interval for one source and reason: an
/// odd few (a client that is simply wrong) all show.
pub const PER_SOURCE_LINES: u64 = 3;
/// Summary lines per interval, the largest counts first.
pub const SUMMARY_LINES: usize = 20;

#[derive(Debug)]
pub(super) struct RefusalLog {
    interval: Duration,
    /// When the current interval started: at its first refusal.
    since: Option<Instant>,
    /// Lines written in full this interval.
    written: usize,
    /// Refusals this interval per source and reason: `(logged in full,
    /// only counted)`.
    counts: BTreeMap<(SourceKey, ErrorCode), (u64, u64)>,
    /// Their sum: a summary is due only if it is not 0.
    pending: u64,
}

impl RefusalLog {
    pub(super) fn new(interval: Duration) -> Self {
        Self {
            interval,
            since: None,
            written: 0,
            counts: BTreeMap::new(),
            pending: 0,
        }
    }

    /// A refusal of `source` for `code`: true if it gets a line of its
    /// own, false if it is only counted. The caller [`Self::flush`]es
    /// first, so that a refusal after the interval starts a new one.
    pub(super) fn admit(&mut self, now: Instant, source: SourceKey, code: ErrorCode) -> bool {
        self.since.get_or_insert(now);
        let (logged, counted) = self.counts.entry((source, code)).or_default();
        if *logged < PER_SOURCE_LINES && self.written < FULL_LINES {
            *logged += 1;
            self.written += 1;
            true
        } else {
            *counted += 1;
            self.pending += 1;
            false
        }
    }

    /// When the summary of the current interval is due: only if there is
    /// something to sum up (a lone refusal needs no timer).
    pub(super) fn deadline(&self) -> Option<Instant> {
        let since = self.since.filter(|_| self.pending > 0)?;
        Some(since + self.interval)
    }

    /// The summary lines, if the interval is over (none if nothing was
    /// counted); the next refusal starts a new interval.
    pub(super) fn flush(&mut self, now: Instant) -> Vec<RegistryLog> {
        if self.since.is_none_or(|since| now < since + self.interval) {
            return Vec::new();
        }
        self.pending = 0;
        let secs = self.interval.as_secs().max(1);
        let mut counted: Vec<((SourceKey, ErrorCode), u64)> = std::mem::take(&mut self.counts)
            .into_iter()
            .map(|(key, (_, counted))| (key, counted))
            .filter(|&(_, n)| n > 0)
            .collect();
        // Largest first; equal counts in source order (deterministic).
        counted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let rest = counted.split_off(counted.len().min(SUMMARY_LINES));
        let mut lines: Vec<RegistryLog> = counted
            .into_iter()
            .map(|((source, code), count)| RegistryLog::RefusedSummary {
                from: source.to_string(),
                code: Some(code),
                count,
                secs,
            })
            .collect();
        if !rest.is_empty() {
            let count = rest.iter().map(|&(_, n)| n).sum();
            let sources = rest
                .iter()
                .map(|&((s, _), _)| s)
                .collect::<std::collections::BTreeSet<_>>()
                .len();
            lines.push(RegistryLog::RefusedSummary {
                from: format!("{sources} other sources"),
                code: None,
                count,
                secs,
            });
        }
        self.since = None;
        self.written = 0;
        lines
    }
}

/// `2936` as `2,936`: counts people read.
pub(super) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_refusals_is_one_line_then_one_summary() {
        let t0 = Instant::default();
        let mut log = RefusalLog::new(Duration::from_secs(10));
        let flood = SourceKey::V4([10, 0, 0, 7]);
        assert!(log.admit(t0, flood, ErrorCode::Timeout));
        assert_eq!(log.deadline(), None, "one line, nothing to sum up");
        let admitted = (0..2_936)
            .filter(|_| log.admit(t0, flood, ErrorCode::TooManyConnections))
            .count();
        assert_eq!(admitted as u64, PER_SOURCE_LINES);
        assert_eq!(log.deadline(), Some(t0 + Duration::from_secs(10)));
        assert!(log.flush(t0 + Duration::from_secs(9)).is_empty());
        let lines = log.flush(t0 + Duration::from_secs(10));
        let lines: Vec<String> = lines.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            ["refused 2,933 more connections from 10.0.0.7 in the last 10 s: too_many_connections"]
        );
        assert_eq!(log.deadline(), None, "quiet until the next refusal");
        let later = t0 + Duration::from_secs(11);
        assert!(log.flush(later).is_empty());
        assert!(log.admit(later, flood, ErrorCode::TooManyConnections));
    }

    #[test]
    fn many_sources_give_a_bounded_number_of_lines() {
        let t0 = Instant::default();
        let mut log = RefusalLog::new(Duration::from_secs(10));
        let mut full = 0;
        for i in 0..1_000u32 {
            let source = SourceKey::V4((0x0a00_0000 + i).to_be_bytes());
            for _ in 0..5 {
                full += usize::from(log.admit(t0, source, ErrorCode::Timeout));
            }
        }
        assert_eq!(full, FULL_LINES);
        let lines = log.flush(t0 + Duration::from_secs(10));
        assert_eq!(lines.len(), SUMMARY_LINES + 1);
        assert_eq!(
            lines.last().unwrap().to_string(),
            format!(
                "refused {} more connections from {} other sources in the last 10 s",
                thousands(5_000 - 5 * SUMMARY_LINES as u64 - FULL_LINES as u64),
                1_000 - SUMMARY_LINES
            )
        );
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(7), "7");
        assert_eq!(thousands(2_936), "2,936");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
