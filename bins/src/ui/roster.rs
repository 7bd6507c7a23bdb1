//! Who is online: the roster beside the chats.
//!
//! Filled from `/list` answers (`peers` events: the UI asks at start and
//! after a reconnection), then kept up to date by live presence
//! (`peer_online`, `peer_offline`, `peer_status`): one method each,
//! called from `UiState::on_event`. A rare [`REFRESH`] remains for a
//! server too old to send presence.

use natter_core::protocol::PeerStatus;
use natter_core::ListedPeer;
use std::collections::BTreeMap;
use std::time::Duration;

/// How often the UI asks the server who is online anyway: live presence
/// keeps the roster current; this only catches up with a server too old
/// to send it.
pub const REFRESH: Duration = Duration::from_secs(300);

/// Names the roster holds at most: as many as the peer keeps of a list
/// (`PeerConfig::max_list`). Live presence adds a name per `peer_online`,
/// and a hostile server can send those without end; past the cap a new
/// name waits for the next list (which replaces the roster).
pub const MAX_ROSTER: usize = 100_000;

#[derive(Debug, Default)]
pub struct Roster {
    /// By name in lower case (names are unique regardless of case), so the
    /// roster is sorted as people read it.
    peers: BTreeMap<String, ListedPeer>,
}

impl Roster {
    /// A whole `/list` answer: replaces what was known.
    pub fn replace(&mut self, peers: &[ListedPeer]) {
        self.peers = peers
            .iter()
            .take(MAX_ROSTER)
            .map(|p| (p.name.to_lowercase(), p.clone()))
            .collect();
    }

    /// `peer_online`: a new entry, or one replacing the old of that name;
    /// a new one only below [`MAX_ROSTER`].
    pub fn upsert(&mut self, peer: &ListedPeer) {
        let key = peer.name.to_lowercase();
        if self.peers.len() < MAX_ROSTER || self.peers.contains_key(&key) {
            self.peers.insert(key, peer.clone());
        }
    }

    /// `peer_offline`.
    pub fn remove(&mut self, name: &str) {
        self.peers.remove(&name.to_lowercase());
    }

    /// `peer_status`: for a peer not in the roster (a list still on its
    /// way), nothing.
    pub fn set_status(&mut self, name: &str, status: PeerStatus) {
        if let Some(peer) = self.peers.get_mut(&name.to_lowercase()) {
            peer.status = status;
        }
    }

    pub fn peers(&self) -> impl Iterator<Item = &ListedPeer> {
        self.peers.values()
    }

    pub fn len(&self) -> usize {
        self.peers.len()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.peers.values().map(|p| p.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(name: &str) -> ListedPeer {
        ListedPeer {
            name: name.to_string(),
            addr: "192.0.2.2:4000".parse().unwrap(),
            status: PeerStatus::Available,
            reachable: true,
            fingerprint: None,
        }
    }

    #[test]
    fn endless_peer_online_events_stop_adding_names_at_the_cap() {
        // Before: each `peer_online` of a hostile server added a name.
        let mut roster = Roster::default();
        for i in 0..MAX_ROSTER + 50 {
            roster.upsert(&peer(&format!("p{i}")));
        }
        assert_eq!(roster.len(), MAX_ROSTER);
        // A name already listed is still updated at the cap.
        let mut busy = peer("p0");
        busy.status = PeerStatus::Busy;
        roster.upsert(&busy);
        assert_eq!(roster.len(), MAX_ROSTER);
        assert_eq!(
            roster.peers().find(|p| p.name == "p0").unwrap().status,
            PeerStatus::Busy
        );
    }
}
