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
            .map(|p| (p.name.to_lowercase(), p.clone()))
            .collect();
    }

    /// `peer_online`: a new entry, or one replacing the old of that name.
    pub fn upsert(&mut self, peer: &ListedPeer) {
        self.peers.insert(peer.name.to_lowercase(), peer.clone());
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
