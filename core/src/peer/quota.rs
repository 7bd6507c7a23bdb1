//! How much a peer writes to its transcripts: a quota per chat and per
//! day, in bytes.
//!
//! A partner decides what we record: before the quotas, one sending
//! messages as fast as receipts came filled the disk at 38 MB/s
//! (138 GB an hour). Every line counts (its bytes and its newline); a
//! message that would take a chat past [`PeerConfig::transcript_quota_chat`]
//! or the day past [`PeerConfig::transcript_quota_day`] is not recorded
//! and the chat ends with `chat_ended.reason` `quota` (see
//! [`super::chat`]). The lines that close a chat (receipts still due,
//! undelivered messages, its end) are written past the quota, so that a
//! transcript always says how its chat ended; they are bounded by the
//! window.
//!
//! The day is the UTC day of the wall clock. What was written earlier
//! today, before this process started, comes from the driver
//! ([`PeerConfig::transcript_used_today`]).

use super::PeerConfig;
use crate::event::QuotaScope;
use crate::time::Now;

const DAY_SECS: u64 = 86_400;

/// Bytes written to transcripts on the current UTC day.
#[derive(Debug)]
pub(crate) struct DayQuota {
    day: u64,
    used: u64,
}

impl DayQuota {
    pub(super) fn new(config: &PeerConfig, now: Now) -> Self {
        Self {
            day: day_of(now),
            used: config.transcript_used_today,
        }
    }

    /// Counts a line written now.
    pub(super) fn spend(&mut self, now: Now, bytes: u64) {
        self.roll(now);
        self.used = self.used.saturating_add(bytes);
    }

    /// Bytes written so far today.
    fn used(&mut self, now: Now) -> u64 {
        self.roll(now);
        self.used
    }

    fn roll(&mut self, now: Now) {
        let today = day_of(now);
        if today != self.day {
            self.day = today;
            self.used = 0;
        }
    }
}

/// Which quota a line of `bytes` would take past, if any, for a chat that
/// has written `chat_used` bytes.
pub(super) fn exceeded(
    config: &PeerConfig,
    day: &mut DayQuota,
    now: Now,
    chat_used: u64,
    bytes: u64,
) -> Option<QuotaScope> {
    if chat_used.saturating_add(bytes) > config.transcript_quota_chat {
        return Some(QuotaScope::Chat);
    }
    if day.used(now).saturating_add(bytes) > config.transcript_quota_day {
        return Some(QuotaScope::Day);
    }
    None
}

/// The quota's size, for the user's message.
pub(super) fn limit(config: &PeerConfig, scope: QuotaScope) -> u64 {
    match scope {
        QuotaScope::Chat => config.transcript_quota_chat,
        QuotaScope::Day => config.transcript_quota_day,
    }
}

fn day_of(now: Now) -> u64 {
    now.wall.as_secs() / DAY_SECS
}
