//! The server's store: where the registry's state outlives the process,
//! and, when several servers share one, how they agree on it.
//!
//! Two traits, one above the other:
//!
//! - [`Store`] is what the server driver ([`crate::run_server`]) uses: it
//!   carries out the registry's [`StoreOp`]s and feeds back
//!   [`StoreInput`]s (natter-core's `registry::store` explains both).
//!   Two implementations: [`Embedded`] (the default: memory plus the
//!   SQLite bindings, one server, nothing to set up; the registry decides
//!   every claim itself, so nothing comes back) and [`Shared`] (several
//!   servers; the store decides claims and carries the directory).
//! - [`Kv`] is the key-value store a [`Shared`] store runs on: the NATS
//!   JetStream key-value store in production, a model of it over
//!   turmoil in the simulation (natter-net-sim's `kv`). Everything the
//!   servers agree on is decided by [`Shared`] from these few primitives,
//!   so the simulation runs the production logic and only the wire to the
//!   store differs.
//!
//! # The semantics a [`Kv`] must have (those of NATS JetStream KV)
//!
//! - Two buckets ([`Bucket`]), each a map from key to value. Every write
//!   to a bucket gets the next **revision** of that bucket (a sequence
//!   number that only grows, shared by all keys of the bucket).
//! - [`Kv::create`] writes a key only if it has no value (never written,
//!   deleted or expired): **atomic** across every client, so of two
//!   servers creating the same key at the same instant exactly one gets
//!   `Ok`, the other [`KvError::Conflict`].
//! - [`Kv::update`] is **compare-and-set**: it writes only if the key's
//!   latest revision is the one given, otherwise [`KvError::Conflict`].
//! - [`Kv::put`] writes unconditionally. [`Kv::delete`] removes a key,
//!   only if its latest revision is the one given (when one is given).
//! - **Expiry**: a bucket has a maximum age ([`Kv::open`]); an entry not
//!   written for that long is removed by the store and its watchers are
//!   told ([`KvEvent::Expired`]). Any write (put, update) starts its age
//!   again: that is how a server keeps its peers' entries alive, and why
//!   a dead server's entries go away by themselves.
//! - **Watch** ([`Kv::watch`]): first the current value of every key (in
//!   revision order), then [`KvEvent::Current`], then every later change
//!   as it happens, in revision order, each exactly once.
//! - **Disconnect**: a call that cannot reach the store, or gets no
//!   answer within a few seconds, fails with [`KvError::Unavailable`]
//!   (never hangs). A watch whose connection is lost ends: its receiver
//!   closes. [`Shared`] then tells the registry the store is unreachable
//!   and opens a new watch every [`RETRY`] until one starts; the new
//!   watch's snapshot replaces what the registry knew (changes missed
//!   meanwhile are thus caught up). Calls made while the store is cut
//!   off are not queued for later: claims fail (`store_unavailable`),
//!   announcements are made again when the store is back.

pub mod embedded;
pub mod shared;

pub use embedded::Embedded;
pub use shared::{BindingRecord, PeerRecord, Shared};

use natter_core::registry::{Binding, ClusterConfig, StoreInput, StoreOp};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long [`Shared`] waits before opening a new watch after losing one
/// (or failing to open it).
pub const RETRY: Duration = Duration::from_secs(1);

/// How long [`Shared`] lets one [`Kv`] call take before counting the
/// store as cut off.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// The store the server driver uses.
///
/// The driver calls [`Store::start`] once, then, after every drain of the
/// registry's outputs, [`Store::apply`] with that drain's operations, and
/// waits on [`Store::next`] beside the network and the timers.
pub trait Store: Send + 'static {
    /// Why the store cannot start.
    type Error: std::error::Error + Send + Sync + 'static;

    /// `Some` for a store shared with other servers: the registry then
    /// runs in cluster mode with this configuration.
    fn cluster(&self) -> Option<ClusterConfig>;

    /// At start: the bindings the registry begins with (`now_unix`, unix
    /// seconds; bindings unused for `name_ttl` are left out). A shared
    /// store returns none (it answers each claim) and must not fail
    /// because the store is unreachable: the server starts cut off, and
    /// says so.
    fn start(
        &mut self,
        now_unix: u64,
        name_ttl: Duration,
    ) -> impl Future<Output = Result<Vec<Binding>, Self::Error>> + Send;

    /// Carries out `ops`, in order, without waiting on the network: a
    /// shared store hands them to its own task. A failure is logged here;
    /// the registry learns of it through [`Store::next`] if it must.
    fn apply(&mut self, ops: &[StoreOp]);

    /// The next thing the store tells the registry. Cancel-safe (the
    /// driver waits on it in a `select!`); pending forever for a store
    /// that never tells anything ([`Embedded`]).
    fn next(&mut self) -> impl Future<Output = StoreInput> + Send;
}

/// The two buckets of a shared directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    /// Names bound to keys ([`BindingRecord`] values, keyed by the name in
    /// lower case). Maximum age: the server's `--name-ttl`.
    Names,
    /// Peers registered on some server ([`PeerRecord`] values, keyed by
    /// the name in lower case). Maximum age: the cluster's entry TTL
    /// (15 s by default), refreshed by the server every few seconds.
    Peers,
}

impl Bucket {
    /// The bucket's name in the store.
    pub fn name(self) -> &'static str {
        match self {
            Bucket::Names => "natter_names",
            Bucket::Peers => "natter_peers",
        }
    }
}

/// One key's latest value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvEntry {
    pub key: String,
    pub value: Vec<u8>,
    /// The bucket revision that wrote it.
    pub revision: u64,
}

/// Why a [`Kv`] call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// `create` of a key that has a value, `update` or `delete` with a
    /// revision that is not the key's latest.
    #[error("the key was changed by someone else")]
    Conflict,
    /// The store cannot be reached, or did not answer in time.
    #[error("the store is unreachable: {0}")]
    Unavailable(String),
}

/// A change seen by a watch, in revision order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvEvent {
    /// The key has a (new) value: from the snapshot or a later write.
    Put(KvEntry),
    /// The key was deleted, by the write of `revision`.
    Deleted { key: String, revision: u64 },
    /// The key reached the bucket's maximum age and was removed; `revision`
    /// orders the removal among the bucket's writes.
    Expired { key: String, revision: u64 },
    /// Every key that had a value when the watch started has been
    /// delivered (sent once, also for an empty bucket).
    Current,
}

/// A key-value store with the semantics in this module's documentation:
/// NATS JetStream KV in production, the simulation's model in tests.
///
/// Every call must end within a bounded time ([`KvError::Unavailable`]
/// when the store does not answer); [`Shared`] also bounds each by
/// [`CALL_TIMEOUT`].
pub trait Kv: Clone + Send + Sync + 'static {
    /// Makes sure `bucket` exists with entries expiring after `max_age`
    /// without a write (creates it if missing; an existing bucket's age
    /// is left as configured). Called before any other call on it.
    fn open(
        &self,
        bucket: Bucket,
        max_age: Duration,
    ) -> impl Future<Output = Result<(), KvError>> + Send;

    /// The key's latest value; `None` if it has none (never written,
    /// deleted or expired).
    fn get(
        &self,
        bucket: Bucket,
        key: &str,
    ) -> impl Future<Output = Result<Option<KvEntry>, KvError>> + Send;

    /// Writes `value` only if the key has none; returns its revision.
    fn create(
        &self,
        bucket: Bucket,
        key: &str,
        value: Vec<u8>,
    ) -> impl Future<Output = Result<u64, KvError>> + Send;

    /// Writes `value` only if the key's latest revision is `revision`;
    /// returns the new revision.
    fn update(
        &self,
        bucket: Bucket,
        key: &str,
        value: Vec<u8>,
        revision: u64,
    ) -> impl Future<Output = Result<u64, KvError>> + Send;

    /// Writes `value` whatever the key holds; returns its revision.
    fn put(
        &self,
        bucket: Bucket,
        key: &str,
        value: Vec<u8>,
    ) -> impl Future<Output = Result<u64, KvError>> + Send;

    /// Removes the key, only if its latest revision is `revision` when one
    /// is given. Removing a key that has no value is not an error.
    fn delete(
        &self,
        bucket: Bucket,
        key: &str,
        revision: Option<u64>,
    ) -> impl Future<Output = Result<(), KvError>> + Send;

    /// Watches every key of `bucket`: the snapshot, [`KvEvent::Current`],
    /// then each change. The receiver closes when the watch is lost.
    fn watch(
        &self,
        bucket: Bucket,
    ) -> impl Future<Output = Result<mpsc::Receiver<KvEvent>, KvError>> + Send;
}
