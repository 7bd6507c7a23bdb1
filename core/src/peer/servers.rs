//! Which directory server to try next, when several addresses are given
//! (`--server` more than once, or a host name with several addresses).
//!
//! The addresses are tried in turn, starting with the first. An address
//! that fails (no connection, closed, silent, refused for now) passes on
//! at once to the next, after the last the first: a dead server costs one
//! failed attempt, never a wait. Only when every address has failed in a
//! row (a *round*) does the peer wait, with the backoff of its server link
//! (one backoff per round, not per address). A registration ends the
//! round; losing that server starts the next one, which counts the lost
//! server as tried: the others come first, and a single server is retried
//! only after the wait, as before.
//!
//! An address whose server proved another key than the one pinned for it
//! is shunned for the rest of the run: trying it again would only hand
//! our name to an impostor's address once more.

use std::collections::BTreeSet;
use std::net::SocketAddr;

/// The server addresses and where the peer is among them.
#[derive(Debug)]
pub(super) struct Servers {
    /// In the order given; never empty.
    addrs: Vec<SocketAddr>,
    /// The address in use, or being tried.
    at: usize,
    /// The addresses that failed in this round, in order, and why.
    failed: Vec<Failure>,
    /// Addresses given up for the rest of the run.
    shunned: BTreeSet<usize>,
}

/// An address that failed in this round.
#[derive(Debug)]
struct Failure {
    at: usize,
    reason: String,
    /// Its server turned us away for now (too many connections from our
    /// address): it is there, and will take us later.
    for_now: bool,
}

/// What to do after the address in use failed.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Next {
    /// Try this address now.
    Try(SocketAddr),
    /// Every usable address failed in this round: wait, then
    /// [`Servers::new_round`].
    Wait,
    /// No usable address is left (all shunned).
    NoneLeft,
}

impl Servers {
    /// `addrs` in the order given; an address given twice is tried once.
    /// `None` if there is no address at all.
    pub(super) fn new(addrs: &[SocketAddr]) -> Option<Self> {
        let mut unique = Vec::with_capacity(addrs.len());
        for addr in addrs {
            if !unique.contains(addr) {
                unique.push(*addr);
            }
        }
        if unique.is_empty() {
            return None;
        }
        Some(Self {
            addrs: unique,
            at: 0,
            failed: Vec::new(),
            shunned: BTreeSet::new(),
        })
    }

    /// The address in use, or to be tried now.
    pub(super) fn current(&self) -> SocketAddr {
        self.addrs[self.at]
    }

    /// The current address failed (or its server was lost) for `reason`.
    pub(super) fn failed(&mut self, reason: &str) -> Next {
        self.fail(reason, false)
    }

    /// The current address's server turned us away for now.
    pub(super) fn refused_for_now(&mut self, reason: &str) -> Next {
        self.fail(reason, true)
    }

    fn fail(&mut self, reason: &str, for_now: bool) -> Next {
        let at = self.at;
        self.failed.retain(|f| f.at != at);
        self.failed.push(Failure {
            at,
            reason: reason.to_string(),
            for_now,
        });
        self.advance()
    }

    /// The current address is given up for the rest of the run.
    pub(super) fn shun(&mut self) -> Next {
        let at = self.at;
        self.shunned.insert(at);
        self.failed.retain(|f| f.at != at);
        self.advance()
    }

    /// Whether a server of this round turned us away only for now: then
    /// it is worth another round even before any registration.
    pub(super) fn any_for_now(&self) -> bool {
        self.failed.iter().any(|f| f.for_now)
    }

    /// The current address registered us: the round is over.
    pub(super) fn registered(&mut self) {
        self.failed.clear();
    }

    /// After the wait that ends a round: the next round starts (at the
    /// address after the last one tried).
    pub(super) fn new_round(&mut self) {
        self.failed.clear();
    }

    /// The failures of the round so far, in order: (address, reason).
    pub(super) fn failures(&self) -> Vec<(SocketAddr, String)> {
        self.failed
            .iter()
            .map(|f| (self.addrs[f.at], f.reason.clone()))
            .collect()
    }

    /// Moves to the next usable address not yet failed in this round.
    fn advance(&mut self) -> Next {
        let n = self.addrs.len();
        let usable = |i: &usize| !self.shunned.contains(i);
        if !(0..n).any(|i| usable(&i)) {
            return Next::NoneLeft;
        }
        for step in 1..=n {
            let i = (self.at + step) % n;
            if usable(&i) && !self.failed.iter().any(|f| f.at == i) {
                self.at = i;
                return Next::Try(self.addrs[i]);
            }
        }
        // Every usable address failed: the next round starts after the
        // last one tried.
        self.at = (self.at + 1..=self.at + n)
            .map(|i| i % n)
            .find(|i| usable(i))
            .expect("a usable address exists");
        Next::Wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(n: u16) -> Vec<SocketAddr> {
        (1..=n)
            .map(|i| SocketAddr::from(([10, 0, 0, 1], 4200 + i)))
            .collect()
    }

    #[test]
    fn a_failed_address_passes_on_at_once_and_a_full_round_waits() {
        let a = addrs(3);
        let mut servers = Servers::new(&a).unwrap();
        assert_eq!(servers.current(), a[0]);
        assert_eq!(servers.failed("refused"), Next::Try(a[1]));
        assert_eq!(servers.failed("refused"), Next::Try(a[2]));
        assert_eq!(servers.failed("refused"), Next::Wait);
        // The next round starts where the last left off: with the first.
        servers.new_round();
        assert_eq!(servers.current(), a[0]);
        assert_eq!(servers.failed("refused"), Next::Try(a[1]));
    }

    #[test]
    fn a_lost_server_counts_as_tried_so_the_others_come_first() {
        let a = addrs(3);
        let mut servers = Servers::new(&a).unwrap();
        assert_eq!(servers.failed("refused"), Next::Try(a[1]));
        servers.registered();
        // Registered with the second; it is lost.
        assert_eq!(servers.failed("closed"), Next::Try(a[2]));
        assert_eq!(servers.failed("refused"), Next::Try(a[0]));
        assert_eq!(servers.failed("refused"), Next::Wait);
        assert_eq!(
            servers.failures(),
            vec![
                (a[1], "closed".to_string()),
                (a[2], "refused".to_string()),
                (a[0], "refused".to_string())
            ]
        );
        servers.new_round();
        assert_eq!(
            servers.current(),
            a[1],
            "the round after starts after the last tried"
        );
    }

    #[test]
    fn one_address_waits_after_each_failure_as_a_single_server_always_did() {
        let a = addrs(1);
        let mut servers = Servers::new(&a).unwrap();
        assert_eq!(servers.failed("closed"), Next::Wait);
        servers.new_round();
        assert_eq!(servers.current(), a[0]);
        assert_eq!(servers.failed("refused"), Next::Wait);
    }

    #[test]
    fn a_round_remembers_a_server_that_turned_us_away_for_now() {
        let a = addrs(2);
        let mut servers = Servers::new(&a).unwrap();
        assert_eq!(servers.refused_for_now("too many"), Next::Try(a[1]));
        assert_eq!(servers.failed("refused"), Next::Wait);
        assert!(servers.any_for_now());
        servers.new_round();
        assert!(!servers.any_for_now());
    }

    #[test]
    fn a_shunned_address_is_never_tried_again() {
        let a = addrs(3);
        let mut servers = Servers::new(&a).unwrap();
        assert_eq!(servers.shun(), Next::Try(a[1]));
        assert_eq!(servers.failed("refused"), Next::Try(a[2]));
        assert_eq!(servers.failed("refused"), Next::Wait);
        servers.new_round();
        assert_eq!(servers.current(), a[1]);
        assert_eq!(servers.shun(), Next::Try(a[2]));
        assert_eq!(servers.shun(), Next::NoneLeft);
    }

    #[test]
    fn an_address_given_twice_is_one_address_and_none_is_no_list() {
        let a = addrs(2);
        let mut servers = Servers::new(&[a[0], a[1], a[0]]).unwrap();
        assert_eq!(servers.failed("refused"), Next::Try(a[1]));
        assert_eq!(servers.failed("refused"), Next::Wait);
        assert!(Servers::new(&[]).is_none());
    }
}
