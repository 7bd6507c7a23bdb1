//! Who is online: the roster beside the chats.
//!
//! Today it is filled from `/list` answers (`peers` events): the UI asks
//! at start, after a reconnection and every [`REFRESH`] (see `state.rs`).
//! Live presence (`peer_online`, `peer_offline`, `peer_status`, to come)
//! is a small addition here: one method each, upserting, removing or
//! restatusing one entry, called from `UiState::on_event`.

use natter_core::ListedPeer;
use std::collections::BTreeMap;
use std::time::Duration;

/// How often the UI asks the server who is online, without live presence.
pub const REFRESH: Duration = Duration::from_secs(30);

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
