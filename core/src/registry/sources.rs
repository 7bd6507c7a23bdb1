//! Fair shares by source: what one host may hold of the server.
//!
//! A source is an IPv4 address or an IPv6 /64 (one subscriber's prefix:
//! a host can pick any address in its /64, so counting addresses would
//! give it 2^64 shares). Each source has a share of the connections, of
//! the new connections per second (handshakes are the server's costliest
//! work), of the registrations and of the requests. The request and
//! handshake budgets live here, not on a connection, so reconnecting does
//! not reset them; a source is forgotten once it has nothing open and its
//! budgets have refilled, so the table stays as small as the set of hosts
//! recently seen.
//!
//! The table also knows which source holds the most connections and the
//! most registrations: when the whole server is at a cap, the heaviest
//! source is cut first, and a host with nothing yet still gets in.

use crate::link::LinkId;
use crate::rate::{RateLimit, TokenBucket};
use crate::time::Instant;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

/// One host, as far as shares go: an IPv4 address or an IPv6 /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SourceKey {
    V4([u8; 4]),
    /// The first 64 bits of the address.
    V6([u8; 8]),
}

impl SourceKey {
    /// The source of a client address (IPv4-mapped IPv6 counts as IPv4).
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => SourceKey::V4(v4.octets()),
            IpAddr::V6(v6) => {
                let mut prefix = [0; 8];
                prefix.copy_from_slice(&v6.octets()[..8]);
                SourceKey::V6(prefix)
            }
        }
    }
}

impl fmt::Display for SourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceKey::V4(octets) => std::net::Ipv4Addr::from(*octets).fmt(f),
            SourceKey::V6(prefix) => {
                let mut octets = [0; 16];
                octets[..8].copy_from_slice(prefix);
                write!(f, "{}/64", std::net::Ipv6Addr::from(octets))
            }
        }
    }
}

/// What one source holds and may still do.
#[derive(Debug)]
pub(super) struct Share {
    /// Its open connections, registered or not, oldest first.
    pub(super) links: BTreeSet<LinkId>,
    /// Its registrations, confirmed or waiting for their probe.
    pub(super) registrations: usize,
    /// New connections (each a handshake) it may open.
    pub(super) handshakes: TokenBucket,
    /// Requests it may make, over all its connections.
    pub(super) requests: TokenBucket,
}

/// The budgets a new source starts with.
#[derive(Clone, Copy, Debug)]
pub(super) struct ShareLimits {
    pub(super) handshakes: RateLimit,
    pub(super) requests: RateLimit,
}

/// Every source seen recently, and which hold the most.
#[derive(Debug, Default)]
pub(super) struct Sources {
    shares: BTreeMap<SourceKey, Share>,
    /// `(connections, source)`: the heaviest last.
    by_connections: BTreeSet<(usize, SourceKey)>,
    /// `(registrations, source)`, sources with at least one: the heaviest
    /// last.
    by_registrations: BTreeSet<(usize, SourceKey)>,
}

impl Sources {
    /// The share of `source`, made (with full budgets) if it is new.
    pub(super) fn share(
        &mut self,
        source: SourceKey,
        limits: ShareLimits,
        now: Instant,
    ) -> &mut Share {
        self.shares.entry(source).or_insert_with(|| Share {
            links: BTreeSet::new(),
            registrations: 0,
            handshakes: TokenBucket::new(limits.handshakes, now),
            requests: TokenBucket::new(limits.requests, now),
        })
    }

    pub(super) fn get(&self, source: &SourceKey) -> Option<&Share> {
        self.shares.get(source)
    }

    pub(super) fn get_mut(&mut self, source: &SourceKey) -> Option<&mut Share> {
        self.shares.get_mut(source)
    }

    /// Connections open from `source`.
    pub(super) fn connections(&self, source: &SourceKey) -> usize {
        self.shares.get(source).map_or(0, |s| s.links.len())
    }

    /// Registrations held by `source`.
    pub(super) fn registrations(&self, source: &SourceKey) -> usize {
        self.shares.get(source).map_or(0, |s| s.registrations)
    }

    /// The source with the most connections, and how many.
    pub(super) fn most_connections(&self) -> Option<(SourceKey, usize)> {
        self.by_connections.last().map(|&(n, source)| (source, n))
    }

    /// The source with the most registrations, and how many.
    pub(super) fn most_registrations(&self) -> Option<(SourceKey, usize)> {
        self.by_registrations.last().map(|&(n, source)| (source, n))
    }

    /// `link` opened from `source` (whose share exists).
    pub(super) fn opened(&mut self, source: SourceKey, link: LinkId) {
        let share = self.shares.get_mut(&source).expect("share made first");
        let before = share.links.len();
        share.links.insert(link);
        Self::reorder(&mut self.by_connections, source, before, before + 1);
    }

    /// `link` from `source` closed.
    pub(super) fn closed(&mut self, source: SourceKey, link: LinkId) {
        let Some(share) = self.shares.get_mut(&source) else {
            return;
        };
        let before = share.links.len();
        if share.links.remove(&link) {
            Self::reorder(&mut self.by_connections, source, before, before - 1);
        }
    }

    /// `source` claimed a name (`+1`) or gave one up (`-1`).
    pub(super) fn registered(&mut self, source: SourceKey, delta: isize) {
        let Some(share) = self.shares.get_mut(&source) else {
            return;
        };
        let before = share.registrations;
        share.registrations = before.saturating_add_signed(delta);
        Self::reorder(
            &mut self.by_registrations,
            source,
            before,
            share.registrations,
        );
    }

    /// Forgets the sources that hold nothing and whose budgets are full
    /// again: a host seen once costs nothing a few seconds later.
    pub(super) fn expire(&mut self, now: Instant) {
        self.shares.retain(|_, share| {
            !(share.links.is_empty()
                && share.registrations == 0
                && share.handshakes.is_full(now)
                && share.requests.is_full(now))
        });
    }

    /// Sources remembered (for tests and the log).
    pub(super) fn len(&self) -> usize {
        self.shares.len()
    }

    fn reorder(set: &mut BTreeSet<(usize, SourceKey)>, source: SourceKey, from: usize, to: usize) {
        set.remove(&(from, source));
        if to > 0 {
            set.insert((to, source));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_counts_per_address_and_ipv6_per_64() {
        let v4 = |s: &str| SourceKey::of(s.parse().unwrap());
        assert_ne!(v4("10.0.0.7"), v4("10.0.0.8"));
        assert_eq!(v4("2001:db8:1:2::1"), v4("2001:db8:1:2:ffff::9"));
        assert_ne!(v4("2001:db8:1:2::1"), v4("2001:db8:1:3::1"));
        assert_eq!(v4("::ffff:10.0.0.7"), v4("10.0.0.7"));
        assert_eq!(v4("2001:db8:1:2::1").to_string(), "2001:db8:1:2::/64");
        assert_eq!(v4("10.0.0.7").to_string(), "10.0.0.7");
    }

    #[test]
    fn the_heaviest_source_is_known_and_idle_sources_are_forgotten() {
        let limits = ShareLimits {
            handshakes: RateLimit {
                burst: 2,
                per_second: 1,
            },
            requests: RateLimit {
                burst: 2,
                per_second: 1,
            },
        };
        let t0 = Instant::default();
        let (a, b) = (SourceKey::V4([10, 0, 0, 1]), SourceKey::V4([10, 0, 0, 2]));
        let mut sources = Sources::default();
        for (source, link) in [(a, 1), (b, 2), (b, 3)] {
            assert!(sources.share(source, limits, t0).handshakes.take(t0));
            sources.opened(source, LinkId(link));
        }
        assert_eq!(sources.most_connections(), Some((b, 2)));
        sources.closed(b, LinkId(2));
        sources.closed(b, LinkId(3));
        assert_eq!(sources.most_connections(), Some((a, 1)));
        sources.expire(t0);
        assert_eq!(sources.len(), 2, "b's handshake budget has not refilled");
        sources.expire(t0 + std::time::Duration::from_secs(2));
        assert_eq!(sources.len(), 1, "b forgotten; a still has a connection");
    }
}
