//! The registry's seam to its store: the operations it asks the driver to
//! carry out ([`StoreOp`]) and what the driver feeds back ([`StoreInput`]).
//!
//! Two kinds of store stand behind it (net-real's `store` module):
//!
//! - **Embedded** (the default, one server): the registry is the authority.
//!   It decides every name claim itself from its table of bindings
//!   ([`super::bindings`]) and only asks the driver to make the table
//!   durable ([`StoreOp::Bind`], [`StoreOp::Touch`], [`StoreOp::Expire`]).
//!   No input ever comes back.
//! - **Shared** (several servers, [`ClusterConfig`] set): a key-value store
//!   that every server uses (NATS JetStream) is the authority. A
//!   registration waits for the result of its [`StoreOp::Claim`]; every
//!   registered peer is announced ([`StoreOp::Announce`], refreshed while
//!   it is online, since the store expires entries nobody refreshes) and
//!   withdrawn when it leaves ([`StoreOp::Withdraw`]); the other servers'
//!   peers come in through a watch ([`RemoteChange`]) into the registry's
//!   own cache, so that a list stays a local, cheap operation.
//!
//! Effects out, results in: the registry never waits on I/O, and a test
//! can play the store by hand.

use crate::link::LinkId;
use crate::protocol::PeerInfo;
use std::time::Duration;

/// What the registry asks of its store, in order. The driver may batch
/// them (one transaction per drain of outputs) but must apply them in
/// order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreOp {
    /// Embedded: `name` (lower case) is now bound to `key`, last used `at`
    /// (unix seconds); replaces any older binding of the name.
    Bind {
        name: String,
        key: [u8; 32],
        at: u64,
    },
    /// Embedded: `name` was used at `at` (unix seconds).
    Touch { name: String, at: u64 },
    /// Embedded: `name`'s binding has expired: forget it.
    Expire { name: String },
    /// Shared: bind `name` (lower case) to `key`, last used `at` (unix
    /// seconds), unless another key holds it. Atomic across servers: an
    /// absent name is created, the key's own binding is updated by
    /// compare-and-set on its revision, another key's is left alone.
    /// With `link`, the result comes back as [`StoreInput::Claimed`]
    /// (a registration waits for it); without, it is a use of a name the
    /// key holds already and nothing comes back.
    Claim {
        link: Option<LinkId>,
        name: String,
        key: [u8; 32],
        at: u64,
    },
    /// Shared: `peer` is registered on this server (`server`), under
    /// `name` (lower case). Put again while the peer is online, every
    /// [`ClusterConfig::refresh`]: an entry not put for
    /// [`ClusterConfig::entry_ttl`] expires (its server died).
    Announce {
        name: String,
        peer: PeerInfo,
        server: String,
    },
    /// Shared: the peer registered under `name` (lower case) on this
    /// server left. Deletes the entry only if it is still this server's
    /// (the peer may have moved to another server since).
    Withdraw { name: String },
}

/// The outcome of a [`StoreOp::Claim`] with a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimResult {
    /// The name is bound to the key now: the registration goes on.
    Won,
    /// Another key holds the name: `name_taken`.
    Taken,
    /// The store did not answer (unreachable, or no answer in time):
    /// `store_unavailable`.
    Unavailable,
}

/// What a shared store tells the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreInput {
    /// The result of the claim `link` made for `name` (lower case). Every
    /// claim with a link gets one, also when the link has closed
    /// meanwhile.
    Claimed {
        link: LinkId,
        name: String,
        result: ClaimResult,
    },
    /// The store answers again (or for the first time): registrations are
    /// taken again, and every local peer is announced again at once (its
    /// entry may have expired meanwhile). A [`RemoteChange::Snapshot`]
    /// follows.
    Reachable,
    /// The store is cut off: new registrations get `store_unavailable`
    /// until [`StoreInput::Reachable`]; registered peers stay, chats are
    /// peer to peer and go on.
    Unreachable,
    /// A change of the shared directory, in the store's revision order.
    Remote(RemoteChange),
}

/// One change of the shared directory, from the store's watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteChange {
    /// A new watch starts: the whole directory follows as `Put`s, then
    /// [`RemoteChange::Current`]. Entries not put again before it are gone
    /// (they were deleted or expired while the watch was down).
    Snapshot,
    /// `peer` is registered on `server` under `name` (lower case). An
    /// entry of this server's own that it does not hold (left over from
    /// before a restart) is withdrawn.
    Put {
        name: String,
        peer: PeerInfo,
        server: String,
        revision: u64,
    },
    /// The entry of `name` was deleted (its peer left) or expired (its
    /// server stopped refreshing it).
    Gone {
        name: String,
        revision: u64,
        expired: bool,
    },
    /// The snapshot since the last [`RemoteChange::Snapshot`] is complete.
    Current,
}

/// A registry that shares its directory with other servers through a
/// store. Absent: the embedded store, one server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// This server's id in the store: unique among the servers sharing
    /// it, and the same across restarts (so that a restarted server
    /// withdraws the entries its earlier life left).
    pub server: String,
    /// How long an announced entry lives without a refresh: the store's
    /// maximum age for directory entries. A server that dies loses its
    /// peers' presence within this (plus one refresh).
    pub entry_ttl: Duration,
    /// How often every local peer is announced again: well under
    /// `entry_ttl`, so that a lost refresh or two does not expire a peer.
    pub refresh: Duration,
    /// How long a registration waits for its claim's result before it is
    /// refused with `store_unavailable`.
    pub claim_timeout: Duration,
}

impl ClusterConfig {
    /// A server with id `server` and the default timings: entries live
    /// 15 s, are refreshed every 5 s, and a claim waits 5 s at most.
    pub fn new(server: impl Into<String>) -> Self {
        Self {
            server: server.into(),
            entry_ttl: Duration::from_secs(15),
            refresh: Duration::from_secs(5),
            claim_timeout: Duration::from_secs(5),
        }
    }
}
