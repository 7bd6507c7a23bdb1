//! A store shared by several servers, over any [`Kv`] (NATS JetStream in
//! production, the simulation's model in tests): the one place that turns
//! the registry's operations into key-value calls and the watch into the
//! registry's inputs, so that every [`Kv`] gets the same cluster logic.
//!
//! A task of its own does the calls, one at a time in the registry's
//! order, and forwards the watch of [`Bucket::Peers`]; the driver never
//! waits on the store.
//!
//! - A claim reads the name's binding: absent, it is created (atomic: of
//!   two servers claiming at once, one creates, the other's create
//!   conflicts, it reads again and finds the winner's key); the same key,
//!   it is updated by compare-and-set on the revision read (a use, which
//!   also restarts its age); another key, the claim is lost.
//! - An announcement is a put of the peer's [`PeerRecord`]; a withdrawal
//!   deletes the record, by compare-and-set, only while it is still this
//!   server's.
//! - A call that fails with [`KvError::Unavailable`] (or outlasts
//!   [`CALL_TIMEOUT`]), or a watch that ends, means the store is cut off:
//!   the registry is told once, claims are answered `Unavailable` at once
//!   until a new watch starts (tried every [`RETRY`]), and announcements
//!   meanwhile are dropped (the registry makes them again when told the
//!   store is back).

use super::{Bucket, Kv, KvError, KvEvent, Store, CALL_TIMEOUT, RETRY};
use natter_core::registry::{
    Binding, ClaimResult, ClusterConfig, RemoteChange, StoreInput, StoreOp,
};
use natter_core::PeerInfo;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::time::Duration;
use tokio::sync::mpsc;

/// A name binding as stored in [`Bucket::Names`] (JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingRecord {
    /// The owner's static public key, 64 lower-case hex digits.
    pub key: String,
    /// Unix seconds of its last recorded use.
    pub last_used: u64,
}

/// A registered peer as stored in [`Bucket::Peers`] (JSON): the directory
/// entry and the id of the server it is registered on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRecord {
    #[serde(flatten)]
    pub peer: PeerInfo,
    pub server: String,
}

/// A store shared with other servers through `K`.
pub struct Shared<K: Kv> {
    kv: K,
    cluster: ClusterConfig,
    /// To the task, once started.
    ops: Option<mpsc::UnboundedSender<StoreOp>>,
    inputs: mpsc::UnboundedReceiver<StoreInput>,
    /// Handed to the task at start.
    inputs_tx: Option<mpsc::UnboundedSender<StoreInput>>,
}

impl<K: Kv> Shared<K> {
    /// A store on `kv` for the server described by `cluster` (its id and
    /// timings, which the registry runs with).
    pub fn new(kv: K, cluster: ClusterConfig) -> Self {
        let (inputs_tx, inputs) = mpsc::unbounded_channel();
        Self {
            kv,
            cluster,
            ops: None,
            inputs,
            inputs_tx: Some(inputs_tx),
        }
    }
}

impl<K: Kv> Store for Shared<K> {
    type Error = KvError;

    fn cluster(&self) -> Option<ClusterConfig> {
        Some(self.cluster.clone())
    }

    async fn start(&mut self, _now_unix: u64, name_ttl: Duration) -> Result<Vec<Binding>, KvError> {
        let (ops_tx, ops) = mpsc::unbounded_channel();
        let worker = Worker {
            kv: self.kv.clone(),
            server: self.cluster.server.clone(),
            ages: [
                (Bucket::Names, name_ttl),
                (Bucket::Peers, self.cluster.entry_ttl),
            ],
            ops,
            inputs: self.inputs_tx.take().expect("started once"),
            told: None,
        };
        self.ops = Some(ops_tx);
        tokio::spawn(worker.run());
        Ok(Vec::new())
    }

    fn apply(&mut self, ops: &[StoreOp]) {
        if let Some(tx) = &self.ops {
            for op in ops {
                // The task ends only when this store is dropped.
                let _ = tx.send(op.clone());
            }
        }
    }

    async fn next(&mut self) -> StoreInput {
        match self.inputs.recv().await {
            Some(input) => input,
            None => std::future::pending().await,
        }
    }
}

/// The task that talks to the store.
struct Worker<K: Kv> {
    kv: K,
    server: String,
    ages: [(Bucket, Duration); 2],
    ops: mpsc::UnboundedReceiver<StoreOp>,
    inputs: mpsc::UnboundedSender<StoreInput>,
    /// Whether the registry was last told the store is reachable.
    told: Option<bool>,
}

impl<K: Kv> Worker<K> {
    async fn run(mut self) {
        let mut opened = false;
        loop {
            let kv = self.kv.clone();
            let ages = self.ages;
            let connect = async move {
                if !opened {
                    for (bucket, age) in ages {
                        bounded(kv.open(bucket, age)).await?;
                    }
                }
                bounded(kv.watch(Bucket::Peers)).await
            };
            match connect.await {
                Ok(watch) => {
                    opened = true;
                    self.tell_reachable(true);
                    if !self.connected(watch).await {
                        return;
                    }
                    tracing::debug!("lost the shared store");
                }
                Err(e) => tracing::debug!(error = %e, "cannot reach the shared store"),
            }
            self.tell_reachable(false);
            if !self.cut_off().await {
                return;
            }
        }
    }

    /// Tells the registry when reachability changes.
    fn tell_reachable(&mut self, reachable: bool) {
        if self.told != Some(reachable) {
            self.told = Some(reachable);
            let input = if reachable {
                StoreInput::Reachable
            } else {
                StoreInput::Unreachable
            };
            let _ = self.inputs.send(input);
        }
    }

    fn tell(&self, change: RemoteChange) {
        let _ = self.inputs.send(StoreInput::Remote(change));
    }

    /// Serves ops and forwards the watch until the store is lost (false:
    /// the server stopped).
    async fn connected(&mut self, mut watch: mpsc::Receiver<KvEvent>) -> bool {
        self.tell(RemoteChange::Snapshot);
        loop {
            tokio::select! {
                biased;
                event = watch.recv() => match event {
                    Some(event) => self.watched(event),
                    None => return true,
                },
                op = self.ops.recv() => match op {
                    Some(op) => {
                        if let Err(e) = self.carry_out(op).await {
                            tracing::debug!(error = %e, "a call to the shared store failed");
                            return true;
                        }
                    }
                    None => return false,
                },
            }
        }
    }

    /// Waits [`RETRY`], answering claims at once meanwhile (false: the
    /// server stopped).
    async fn cut_off(&mut self) -> bool {
        let retry = tokio::time::sleep(RETRY);
        tokio::pin!(retry);
        loop {
            tokio::select! {
                biased;
                () = &mut retry => return true,
                op = self.ops.recv() => match op {
                    Some(StoreOp::Claim { link: Some(link), name, .. }) => {
                        let result = ClaimResult::Unavailable;
                        let _ = self.inputs.send(StoreInput::Claimed { link, name, result });
                    }
                    Some(_) => {}
                    None => return false,
                },
            }
        }
    }

    fn watched(&self, event: KvEvent) {
        let change = match event {
            KvEvent::Put(entry) => match serde_json::from_slice::<PeerRecord>(&entry.value) {
                Ok(record) => RemoteChange::Put {
                    name: entry.key,
                    peer: record.peer,
                    server: record.server,
                    revision: entry.revision,
                },
                Err(e) => {
                    tracing::warn!(key = %entry.key, error = %e, "skipped an unreadable directory entry in the shared store");
                    return;
                }
            },
            KvEvent::Deleted { key, revision } => RemoteChange::Gone {
                name: key,
                revision,
                expired: false,
            },
            KvEvent::Expired { key, revision } => RemoteChange::Gone {
                name: key,
                revision,
                expired: true,
            },
            KvEvent::Current => RemoteChange::Current,
        };
        self.tell(change);
    }

    /// One operation; an error means the store is cut off.
    async fn carry_out(&mut self, op: StoreOp) -> Result<(), KvError> {
        match op {
            StoreOp::Claim {
                link,
                name,
                key,
                at,
            } => {
                let result = claim(&self.kv, &name, key, at).await;
                if let Some(link) = link {
                    let result = match &result {
                        Ok(won_or_taken) => *won_or_taken,
                        Err(_) => ClaimResult::Unavailable,
                    };
                    let _ = self.inputs.send(StoreInput::Claimed { link, name, result });
                }
                result.map(|_| ())
            }
            StoreOp::Announce { name, peer, server } => {
                let value = serde_json::to_vec(&PeerRecord { peer, server })
                    .expect("a record always serialises");
                bounded(self.kv.put(Bucket::Peers, &name, value))
                    .await
                    .map(|_| ())
            }
            StoreOp::Withdraw { name } => {
                let Some(entry) = bounded(self.kv.get(Bucket::Peers, &name)).await? else {
                    return Ok(());
                };
                let ours = serde_json::from_slice::<PeerRecord>(&entry.value)
                    .is_ok_and(|record| record.server == self.server);
                if !ours {
                    return Ok(());
                }
                match bounded(self.kv.delete(Bucket::Peers, &name, Some(entry.revision))).await {
                    // Written again meanwhile (by another server, or our
                    // own refresh already queued before this): left alone.
                    Ok(()) | Err(KvError::Conflict) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            // The embedded store's: a shared registry never emits them.
            StoreOp::Bind { .. } | StoreOp::Touch { .. } | StoreOp::Expire { .. } => Ok(()),
        }
    }
}

/// Binds `name` to `key` unless another key holds it (see the module
/// documentation). Conflicts mean someone wrote the name between our read
/// and our write: read again, a few times.
async fn claim<K: Kv>(kv: &K, name: &str, key: [u8; 32], at: u64) -> Result<ClaimResult, KvError> {
    let hex = data_encoding::HEXLOWER.encode(&key);
    let record = BindingRecord {
        key: hex.clone(),
        last_used: at,
    };
    let value = serde_json::to_vec(&record).expect("a record always serialises");
    for _ in 0..4 {
        let written = match bounded(kv.get(Bucket::Names, name)).await? {
            None => bounded(kv.create(Bucket::Names, name, value.clone())).await,
            Some(entry) => match serde_json::from_slice::<BindingRecord>(&entry.value) {
                Ok(bound) if bound.key == hex => {
                    bounded(kv.update(Bucket::Names, name, value.clone(), entry.revision)).await
                }
                Ok(_) => return Ok(ClaimResult::Taken),
                Err(e) => {
                    // Not ours to overwrite: someone else wrote it.
                    tracing::warn!(name, error = %e, "an unreadable name binding in the shared store; the name stays taken");
                    return Ok(ClaimResult::Taken);
                }
            },
        };
        match written {
            Ok(_) => return Ok(ClaimResult::Won),
            Err(KvError::Conflict) => continue,
            Err(e) => return Err(e),
        }
    }
    // Changed under us every time: others are fighting over it.
    Ok(ClaimResult::Taken)
}

/// A call bounded by [`CALL_TIMEOUT`].
async fn bounded<T>(call: impl Future<Output = Result<T, KvError>>) -> Result<T, KvError> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(result) => result,
        Err(_) => Err(KvError::Unavailable(format!(
            "no answer within {} s",
            CALL_TIMEOUT.as_secs()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KvEntry;
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    /// An in-memory [`Kv`] whose every call yields first, so that two
    /// claims run together interleave their reads and writes.
    #[derive(Clone, Default)]
    struct Interleaving {
        names: Arc<Mutex<BTreeMap<String, KvEntry>>>,
        revision: Arc<Mutex<u64>>,
        conflicts: Arc<Mutex<u32>>,
    }

    impl Interleaving {
        fn write(&self, key: &str, value: Vec<u8>) -> u64 {
            let mut revision = self.revision.lock().unwrap();
            *revision += 1;
            let entry = KvEntry {
                key: key.to_string(),
                value,
                revision: *revision,
            };
            self.names.lock().unwrap().insert(key.to_string(), entry);
            *revision
        }

        fn conflict<T>(&self) -> Result<T, KvError> {
            *self.conflicts.lock().unwrap() += 1;
            Err(KvError::Conflict)
        }
    }

    impl Kv for Interleaving {
        async fn open(&self, _: Bucket, _: Duration) -> Result<(), KvError> {
            Ok(())
        }
        async fn get(&self, _: Bucket, key: &str) -> Result<Option<KvEntry>, KvError> {
            tokio::task::yield_now().await;
            Ok(self.names.lock().unwrap().get(key).cloned())
        }
        async fn create(&self, _: Bucket, key: &str, value: Vec<u8>) -> Result<u64, KvError> {
            tokio::task::yield_now().await;
            if self.names.lock().unwrap().contains_key(key) {
                return self.conflict();
            }
            Ok(self.write(key, value))
        }
        async fn update(
            &self,
            _: Bucket,
            key: &str,
            value: Vec<u8>,
            revision: u64,
        ) -> Result<u64, KvError> {
            tokio::task::yield_now().await;
            let latest = self.names.lock().unwrap().get(key).map(|e| e.revision);
            if latest != Some(revision) {
                return self.conflict();
            }
            Ok(self.write(key, value))
        }
        async fn put(&self, _: Bucket, key: &str, value: Vec<u8>) -> Result<u64, KvError> {
            Ok(self.write(key, value))
        }
        async fn delete(&self, _: Bucket, key: &str, _: Option<u64>) -> Result<(), KvError> {
            self.names.lock().unwrap().remove(key);
            Ok(())
        }
        async fn watch(&self, _: Bucket) -> Result<mpsc::Receiver<KvEvent>, KvError> {
            Err(KvError::Unavailable("not modelled".into()))
        }
    }

    #[tokio::test]
    async fn of_two_keys_claiming_a_free_name_at_once_exactly_one_wins() {
        let kv = Interleaving::default();
        let (first, second) = tokio::join!(
            claim(&kv, "alice", [1; 32], 100),
            claim(&kv, "alice", [2; 32], 100)
        );
        assert_eq!(
            (first, second),
            (Ok(ClaimResult::Won), Ok(ClaimResult::Taken))
        );
        assert_eq!(
            *kv.conflicts.lock().unwrap(),
            1,
            "both read it free; the second create conflicted"
        );
        let bound = kv.names.lock().unwrap()["alice"].value.clone();
        let bound: BindingRecord = serde_json::from_slice(&bound).unwrap();
        assert_eq!(bound.key, "01".repeat(32));
    }

    #[tokio::test]
    async fn the_same_key_claiming_again_updates_its_binding_by_revision() {
        let kv = Interleaving::default();
        assert_eq!(
            claim(&kv, "alice", [1; 32], 100).await,
            Ok(ClaimResult::Won)
        );
        assert_eq!(
            claim(&kv, "alice", [1; 32], 200).await,
            Ok(ClaimResult::Won)
        );
        let entry = kv.names.lock().unwrap()["alice"].clone();
        assert_eq!(entry.revision, 2);
        let bound: BindingRecord = serde_json::from_slice(&entry.value).unwrap();
        assert_eq!(bound.last_used, 200);
        assert_eq!(
            claim(&kv, "alice", [2; 32], 300).await,
            Ok(ClaimResult::Taken)
        );
    }
}
