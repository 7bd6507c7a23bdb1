//! Liveness of one link: ping when idle, declare it lost when silent.
//!
//! A TCP connection whose path silently drops packets (cable pulled, NAT
//! timeout, partition) never reports an error by itself; only silence can
//! tell. Both ends send `ping` after `ping_after` without sending anything,
//! so a live link is never silent for longer than that, and an end that has
//! heard nothing for `lost_after` gives the link up.

use crate::time::Instant;
use std::time::Duration;

/// Heartbeat timing, the same on server and peer links.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeartbeatConfig {
    /// Send a ping after this long without sending anything.
    pub ping_after: Duration,
    /// Give the link up after this long without receiving anything.
    pub lost_after: Duration,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        Self {
            ping_after: Duration::from_secs(5),
            lost_after: Duration::from_secs(15),
        }
    }
}

/// What a link's heartbeat asks for at a given moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Beat {
    /// Nothing to do yet.
    Idle,
    /// Send a ping now.
    Ping,
    /// Nothing heard for `lost_after`: the link is gone.
    Lost,
}

/// The send and receive times of one link.
#[derive(Clone, Copy, Debug)]
pub struct Heartbeat {
    config: HeartbeatConfig,
    last_sent: Instant,
    last_received: Instant,
}

impl Heartbeat {
    pub fn new(config: HeartbeatConfig, now: Instant) -> Self {
        Self {
            config,
            last_sent: now,
            last_received: now,
        }
    }

    pub fn sent(&mut self, now: Instant) {
        self.last_sent = self.last_sent.max(now);
    }

    pub fn received(&mut self, now: Instant) {
        self.last_received = self.last_received.max(now);
    }

    /// The next moment [`Heartbeat::check`] may ask for something. Activity
    /// only ever moves it later, which lets the registry schedule lazily.
    pub fn deadline(&self) -> Instant {
        (self.last_sent + self.config.ping_after).min(self.last_received + self.config.lost_after)
    }

    /// How long nothing has been heard.
    pub fn silent_for(&self, now: Instant) -> Duration {
        now.saturating_since(self.last_received)
    }

    /// When the link counts as lost unless something is heard before.
    pub fn lost_at(&self) -> Instant {
        self.last_received + self.config.lost_after
    }

    pub fn check(&self, now: Instant) -> Beat {
        if now >= self.lost_at() {
            Beat::Lost
        } else if now >= self.last_sent + self.config.ping_after {
            Beat::Ping
        } else {
            Beat::Idle
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_link_pings_after_5s_and_is_lost_after_15s_of_silence() {
        let t0 = Instant::default();
        let mut hb = Heartbeat::new(HeartbeatConfig::default(), t0);
        assert_eq!(hb.check(t0 + Duration::from_secs(4)), Beat::Idle);
        assert_eq!(hb.deadline(), t0 + Duration::from_secs(5));
        assert_eq!(hb.check(t0 + Duration::from_secs(5)), Beat::Ping);
        hb.sent(t0 + Duration::from_secs(5));
        hb.sent(t0 + Duration::from_secs(10));
        assert_eq!(hb.deadline(), t0 + Duration::from_secs(15));
        assert_eq!(hb.check(t0 + Duration::from_secs(15)), Beat::Lost);
        hb.received(t0 + Duration::from_secs(14));
        assert_eq!(hb.check(t0 + Duration::from_secs(15)), Beat::Ping);
    }
}
