//! A model of the NATS JetStream key-value store, served by a turmoil
//! host over TCP, and a client ([`SimKv`]) that implements natter-net-real's
//! [`Kv`] trait: the simulation runs the production cluster logic
//! (`natter_net_real::Shared`) against a store with the same semantics
//! (atomic create, compare-and-set by revision, per-bucket maximum age,
//! a watch in revision order with a snapshot first), on turmoil's clock,
//! so partitions and crashes between servers and the store replay exactly.
//!
//! The wire is one JSON line per request and one per answer, on a new
//! connection per call; a watch keeps its connection and gets a line per
//! change, and a ping every [`PING`] so that a client notices a partition
//! (turmoil's partitioned streams hang) within [`WATCH_SILENCE`].
//!
//! Expiry is exact: an entry not written for its bucket's maximum age is
//! removed at that instant (NATS checks at intervals; the servers'
//! behaviour does not depend on the difference, and exact times make
//! snapshots stable).

use natter_net_real::{Bucket, Kv, KvEntry, KvError, KvEvent};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

/// The store's port.
pub const KV_PORT: u16 = 4222;
/// How often a watch connection hears from the store when nothing changes.
pub const PING: Duration = Duration::from_secs(1);
/// How long a watch waits in silence before it counts as lost.
pub const WATCH_SILENCE: Duration = Duration::from_secs(3);

// ---- the model ----

/// One bucket: entries, their revisions, who watches.
#[derive(Debug, Default)]
struct BucketState {
    max_age: Duration,
    revision: u64,
    /// Key → (entry, when written).
    entries: BTreeMap<String, (KvEntry, Instant)>,
    watchers: Vec<mpsc::UnboundedSender<KvEvent>>,
}

impl BucketState {
    fn write(&mut self, key: &str, value: Vec<u8>, now: Instant) -> u64 {
        self.revision += 1;
        let entry = KvEntry {
            key: key.to_string(),
            value,
            revision: self.revision,
        };
        self.entries.insert(key.to_string(), (entry.clone(), now));
        self.tell(KvEvent::Put(entry));
        self.revision
    }

    fn remove(&mut self, key: &str, expired: bool) {
        if self.entries.remove(key).is_none() {
            return;
        }
        self.revision += 1;
        let (key, revision) = (key.to_string(), self.revision);
        self.tell(if expired {
            KvEvent::Expired { key, revision }
        } else {
            KvEvent::Deleted { key, revision }
        });
    }

    fn tell(&mut self, event: KvEvent) {
        self.watchers.retain(|w| w.send(event.clone()).is_ok());
    }

    fn latest(&self, key: &str) -> Option<&KvEntry> {
        self.entries.get(key).map(|(entry, _)| entry)
    }
}

/// The whole store: what the `store` host holds.
#[derive(Debug, Default)]
struct Model {
    buckets: BTreeMap<Bucket, BucketState>,
}

impl Model {
    fn bucket(&mut self, bucket: Bucket) -> &mut BucketState {
        self.buckets.entry(bucket).or_default()
    }

    fn handle(&mut self, request: Request, now: Instant) -> Answer {
        match request {
            Request::Open { bucket, max_age_ms } => {
                let state = self.bucket(bucket);
                if state.max_age.is_zero() {
                    state.max_age = Duration::from_millis(max_age_ms);
                }
                Answer::Done
            }
            Request::Get { bucket, key } => {
                Answer::Entry(self.bucket(bucket).latest(&key).cloned())
            }
            Request::Create { bucket, key, value } => {
                let state = self.bucket(bucket);
                if state.latest(&key).is_some() {
                    return Answer::Conflict;
                }
                Answer::Revision(state.write(&key, value, now))
            }
            Request::Update {
                bucket,
                key,
                value,
                revision,
            } => {
                let state = self.bucket(bucket);
                if state.latest(&key).map(|e| e.revision) != Some(revision) {
                    return Answer::Conflict;
                }
                Answer::Revision(state.write(&key, value, now))
            }
            Request::Put { bucket, key, value } => {
                Answer::Revision(self.bucket(bucket).write(&key, value, now))
            }
            Request::Delete {
                bucket,
                key,
                revision,
            } => {
                let state = self.bucket(bucket);
                let latest = state.latest(&key).map(|e| e.revision);
                if revision.is_some() && latest.is_some() && latest != revision {
                    return Answer::Conflict;
                }
                state.remove(&key, false);
                Answer::Done
            }
            Request::Watch { .. } => unreachable!("served by watch()"),
        }
    }

    /// Starts a watch: the snapshot and `Current` are queued at once.
    fn watch(&mut self, bucket: Bucket) -> mpsc::UnboundedReceiver<KvEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        let state = self.bucket(bucket);
        let mut snapshot: Vec<&KvEntry> = state.entries.values().map(|(e, _)| e).collect();
        snapshot.sort_by_key(|e| e.revision);
        for entry in snapshot {
            let _ = tx.send(KvEvent::Put(entry.clone()));
        }
        let _ = tx.send(KvEvent::Current);
        state.watchers.push(tx);
        rx
    }

    /// Removes the entries past their bucket's age at `now`, oldest first.
    fn expire(&mut self, now: Instant) {
        for state in self.buckets.values_mut() {
            if state.max_age.is_zero() {
                continue;
            }
            let mut old: Vec<(Instant, u64, String)> = state
                .entries
                .values()
                .filter(|(_, at)| *at + state.max_age <= now)
                .map(|(e, at)| (*at, e.revision, e.key.clone()))
                .collect();
            old.sort();
            for (_, _, key) in old {
                state.remove(&key, true);
            }
        }
    }

    /// When the next entry expires.
    fn next_expiry(&self) -> Option<Instant> {
        self.buckets
            .values()
            .filter(|state| !state.max_age.is_zero())
            .flat_map(|state| state.entries.values().map(|(_, at)| *at + state.max_age))
            .min()
    }
}

// ---- the wire ----

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Request {
    Open {
        bucket: Bucket,
        max_age_ms: u64,
    },
    Get {
        bucket: Bucket,
        key: String,
    },
    Create {
        bucket: Bucket,
        key: String,
        value: Vec<u8>,
    },
    Update {
        bucket: Bucket,
        key: String,
        value: Vec<u8>,
        revision: u64,
    },
    Put {
        bucket: Bucket,
        key: String,
        value: Vec<u8>,
    },
    Delete {
        bucket: Bucket,
        key: String,
        revision: Option<u64>,
    },
    Watch {
        bucket: Bucket,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "answer", content = "value", rename_all = "snake_case")]
enum Answer {
    Done,
    Entry(Option<KvEntry>),
    Revision(u64),
    Conflict,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "line", content = "event", rename_all = "snake_case")]
enum WatchLine {
    Event(KvEvent),
    Ping,
}

// ---- the server ----

/// Serves the store on [`KV_PORT`] until the host stops: run it as a
/// turmoil host's software.
pub async fn serve_kv() -> std::io::Result<()> {
    let listener =
        turmoil::net::TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], KV_PORT))).await?;
    let model = Arc::new(Mutex::new(Model::default()));
    let written = Arc::new(Notify::new());
    tokio::spawn(expire(model.clone(), written.clone()));
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(serve(stream, model.clone(), written.clone()));
    }
}

/// Removes entries as they reach their age; woken by every write (which
/// may bring the next expiry forward).
async fn expire(model: Arc<Mutex<Model>>, written: Arc<Notify>) {
    loop {
        let next = model.lock().unwrap().next_expiry();
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = sleep => model.lock().unwrap().expire(Instant::now()),
            () = written.notified() => {}
        }
    }
}

async fn serve(stream: turmoil::net::TcpStream, model: Arc<Mutex<Model>>, written: Arc<Notify>) {
    let (read, mut write) = tokio::io::split(stream);
    let mut lines = BufReader::new(read).lines();
    let Ok(Some(line)) = lines.next_line().await else {
        return;
    };
    let Ok(request) = serde_json::from_str::<Request>(&line) else {
        return;
    };
    if let Request::Watch { bucket } = request {
        let mut events = model.lock().unwrap().watch(bucket);
        loop {
            let line = tokio::select! {
                biased;
                event = events.recv() => match event {
                    Some(event) => WatchLine::Event(event),
                    None => return,
                },
                () = tokio::time::sleep(PING) => WatchLine::Ping,
            };
            if send_line(&mut write, &line).await.is_err() {
                return; // the watcher is gone; its sender goes at the next change
            }
        }
    }
    let answer = model.lock().unwrap().handle(request, Instant::now());
    written.notify_one();
    let _ = send_line(&mut write, &answer).await;
}

async fn send_line(
    write: &mut (impl AsyncWriteExt + Unpin),
    line: &impl Serialize,
) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(line).expect("wire types serialise");
    bytes.push(b'\n');
    write.write_all(&bytes).await
}

// ---- the client ----

/// The store at `addr`, as a server host sees it.
#[derive(Clone, Copy, Debug)]
pub struct SimKv {
    pub addr: SocketAddr,
}

impl SimKv {
    async fn call(&self, request: Request) -> Result<Answer, KvError> {
        let lost = |e: std::io::Error| KvError::Unavailable(e.to_string());
        let stream = turmoil::net::TcpStream::connect(self.addr)
            .await
            .map_err(lost)?;
        let (read, mut write) = tokio::io::split(stream);
        send_line(&mut write, &request).await.map_err(lost)?;
        let line = BufReader::new(read)
            .lines()
            .next_line()
            .await
            .map_err(lost)?;
        let line =
            line.ok_or_else(|| KvError::Unavailable("the store closed the connection".into()))?;
        serde_json::from_str(&line).map_err(|e| KvError::Unavailable(e.to_string()))
    }

    async fn revision(&self, request: Request) -> Result<u64, KvError> {
        match self.call(request).await? {
            Answer::Revision(revision) => Ok(revision),
            Answer::Conflict => Err(KvError::Conflict),
            other => Err(unexpected(other)),
        }
    }

    async fn done(&self, request: Request) -> Result<(), KvError> {
        match self.call(request).await? {
            Answer::Done => Ok(()),
            Answer::Conflict => Err(KvError::Conflict),
            other => Err(unexpected(other)),
        }
    }
}

fn unexpected(answer: Answer) -> KvError {
    KvError::Unavailable(format!("unexpected answer {answer:?}"))
}

impl Kv for SimKv {
    async fn open(&self, bucket: Bucket, max_age: Duration) -> Result<(), KvError> {
        let max_age_ms = u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX);
        self.done(Request::Open { bucket, max_age_ms }).await
    }

    async fn get(&self, bucket: Bucket, key: &str) -> Result<Option<KvEntry>, KvError> {
        let key = key.to_string();
        match self.call(Request::Get { bucket, key }).await? {
            Answer::Entry(entry) => Ok(entry),
            other => Err(unexpected(other)),
        }
    }

    async fn create(&self, bucket: Bucket, key: &str, value: Vec<u8>) -> Result<u64, KvError> {
        let key = key.to_string();
        self.revision(Request::Create { bucket, key, value }).await
    }

    async fn update(
        &self,
        bucket: Bucket,
        key: &str,
        value: Vec<u8>,
        revision: u64,
    ) -> Result<u64, KvError> {
        let key = key.to_string();
        self.revision(Request::Update {
            bucket,
            key,
            value,
            revision,
        })
        .await
    }

    async fn put(&self, bucket: Bucket, key: &str, value: Vec<u8>) -> Result<u64, KvError> {
        let key = key.to_string();
        self.revision(Request::Put { bucket, key, value }).await
    }

    async fn delete(
        &self,
        bucket: Bucket,
        key: &str,
        revision: Option<u64>,
    ) -> Result<(), KvError> {
        let key = key.to_string();
        self.done(Request::Delete {
            bucket,
            key,
            revision,
        })
        .await
    }

    async fn watch(&self, bucket: Bucket) -> Result<mpsc::Receiver<KvEvent>, KvError> {
        let lost = |e: std::io::Error| KvError::Unavailable(e.to_string());
        let stream = turmoil::net::TcpStream::connect(self.addr)
            .await
            .map_err(lost)?;
        let (read, mut write) = tokio::io::split(stream);
        send_line(&mut write, &Request::Watch { bucket })
            .await
            .map_err(lost)?;
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(async move {
            // Kept open while watching: the store may read EOF otherwise.
            let _write = write;
            let mut lines = BufReader::new(read).lines();
            loop {
                let line = match tokio::time::timeout(WATCH_SILENCE, lines.next_line()).await {
                    Ok(Ok(Some(line))) => line,
                    // Silence (a partition), EOF or an error: the watch is lost.
                    _ => return,
                };
                match serde_json::from_str::<WatchLine>(&line) {
                    Ok(WatchLine::Event(event)) => {
                        if tx.send(event).await.is_err() {
                            return;
                        }
                    }
                    Ok(WatchLine::Ping) => {}
                    Err(_) => return,
                }
            }
        });
        Ok(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(model: &mut Model, key: &str) -> Option<u64> {
        model.bucket(Bucket::Names).latest(key).map(|e| e.revision)
    }

    #[test]
    fn create_is_refused_once_written_and_update_needs_the_latest_revision() {
        let mut model = Model::default();
        let now = Instant::now();
        let create = |key: &str| Request::Create {
            bucket: Bucket::Names,
            key: key.into(),
            value: b"a".to_vec(),
        };
        assert!(matches!(
            model.handle(create("x"), now),
            Answer::Revision(1)
        ));
        assert!(matches!(model.handle(create("x"), now), Answer::Conflict));
        let update = |revision| Request::Update {
            bucket: Bucket::Names,
            key: "x".into(),
            value: b"b".to_vec(),
            revision,
        };
        assert!(matches!(model.handle(update(7), now), Answer::Conflict));
        assert!(matches!(model.handle(update(1), now), Answer::Revision(2)));
        assert_eq!(entry(&mut model, "x"), Some(2));
    }

    #[test]
    fn an_entry_expires_its_max_age_after_its_last_write_and_watchers_are_told() {
        let mut model = Model::default();
        let start = Instant::now();
        let open = Request::Open {
            bucket: Bucket::Names,
            max_age_ms: 10_000,
        };
        model.handle(open, start);
        let put = |v: &[u8]| Request::Put {
            bucket: Bucket::Names,
            key: "x".into(),
            value: v.to_vec(),
        };
        model.handle(put(b"1"), start);
        let mut watch = model.watch(Bucket::Names);
        model.handle(put(b"2"), start + Duration::from_secs(4));
        assert_eq!(model.next_expiry(), Some(start + Duration::from_secs(14)));
        model.expire(start + Duration::from_secs(13));
        assert_eq!(
            entry(&mut model, "x"),
            Some(2),
            "refreshed by the second put"
        );
        model.expire(start + Duration::from_secs(14));
        assert_eq!(entry(&mut model, "x"), None);
        let mut seen = Vec::new();
        while let Ok(event) = watch.try_recv() {
            seen.push(event);
        }
        let put = |v: &[u8], revision| {
            KvEvent::Put(KvEntry {
                key: "x".into(),
                value: v.to_vec(),
                revision,
            })
        };
        assert_eq!(
            seen,
            vec![
                put(b"1", 1),
                KvEvent::Current,
                put(b"2", 2),
                KvEvent::Expired {
                    key: "x".into(),
                    revision: 3
                }
            ]
        );
    }
}
