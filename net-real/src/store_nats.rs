//! The shared store on NATS JetStream key-value: what
//! `natter server --store nats://HOST:PORT` runs on. A [`Kv`] of
//! [`crate::store`]: the cluster logic itself ([`crate::store::Shared`])
//! is the same over this and over the simulation's model; this file only
//! maps the few primitives onto JetStream.
//!
//! - A [`Bucket`] is a JetStream KV bucket (a stream `KV_<bucket>`) with
//!   one value per key, a maximum age, and **limit markers**: when the
//!   last value of a key reaches the maximum age, the server removes it and
//!   leaves a marker (`Nats-Marker-Reason: MaxAge`) that watchers receive.
//!   That is how every server learns that a dead server's peers are gone.
//!   Markers need nats-server 2.11 or newer.
//! - `create` is JetStream's "expected last subject sequence 0" (atomic
//!   in the stream's leader), `update` and `delete` with a revision its
//!   compare-and-set on the subject's last sequence.
//! - A watch is an ordered push consumer delivering the last message of
//!   each key, then every new one: the snapshot ends where the consumer
//!   has nothing pending (or has passed the stream's last sequence at the
//!   start), which gives [`KvEvent::Current`], also for an empty bucket.
//!
//! Cut off: the client reconnects by itself, forever, every second at
//! most. While it is not connected, every call fails at once with
//! [`KvError::Unavailable`] instead of waiting for a reconnection, and every
//! open watch ends (async-nats would resume it silently, but what was missed
//! meanwhile, expiries included, is only caught up by a new watch's
//! snapshot). The loss and the return of the connection are logged here,
//! with the store's address.
//!
//! Buckets are created with three replicas when the NATS server is part of
//! a cluster (one node may then fail), with one otherwise; a bucket that
//! exists already is used as it is (an operator may have made it).
//!
//! This is the one part of net-real that opens sockets of its own (the
//! NATS client's, on tokio): it never runs under turmoil, where the
//! simulation's model of the store stands in.

use crate::store::{Bucket, Kv, KvEntry, KvError, KvEvent};
use async_nats::jetstream::{self, consumer, kv};
use async_nats::{ConnectOptions, Event, HeaderMap};
use futures_util::StreamExt;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Events a watch may hold for the store's task before the watch waits
/// (JetStream's flow control then holds the rest on the NATS server).
const WATCH_QUEUE: usize = 1024;

/// How long a JetStream request (a write's acknowledgement, a bucket's
/// creation) may take before the call fails: under the shared store's own
/// bound on each call.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// How often the client checks that NATS still answers: a store cut off
/// silently (no reset, a pulled cable) is noticed within about two of
/// these.
const PING_INTERVAL: Duration = Duration::from_secs(5);

/// Why `--store` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NatsStoreError {
    #[error("--store {0}: not a NATS address; give nats://HOST:PORT (several, comma-separated, for a NATS cluster)")]
    BadUrl(String),
    #[error("--store {url}: {reason}")]
    Connect { url: String, reason: String },
}

/// A connection to a NATS JetStream server (or cluster), as a [`Kv`].
#[derive(Clone)]
pub struct NatsKv {
    inner: Arc<Inner>,
}

struct Inner {
    /// What `--store` said, for log lines and errors.
    url: String,
    client: async_nats::Client,
    js: jetstream::Context,
    /// The buckets opened so far.
    buckets: Mutex<BTreeMap<Bucket, kv::Store>>,
    /// Counts the connection's losses: a watch ends when it changes.
    losses: watch::Receiver<u64>,
    /// Whether a bucket could not be opened once already (said once).
    open_failed: AtomicBool,
}

impl NatsKv {
    /// Starts connecting to `url` (`nats://HOST:PORT`, several separated
    /// by commas for a cluster) and returns at once: a server may start
    /// while NATS is down, cut off until it comes (calls fail with
    /// [`KvError::Unavailable`] meanwhile). Fails only on an address that
    /// cannot be one.
    pub async fn connect(url: &str) -> Result<NatsKv, NatsStoreError> {
        let servers = parse_url(url)?;
        let (losses_tx, losses) = watch::channel(0u64);
        let logged_url = url.to_string();
        let cut_off = Arc::new(AtomicBool::new(false));
        let options = ConnectOptions::new()
            .name("natter server")
            .retry_on_initial_connect()
            .max_reconnects(None)
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis(100 * attempts.min(10) as u64)
            })
            .ping_interval(PING_INTERVAL)
            .request_timeout(Some(REQUEST_TIMEOUT))
            .event_callback(move |event| {
                let url = logged_url.clone();
                let losses = losses_tx.clone();
                let cut_off = Arc::clone(&cut_off);
                async move { connection_event(&url, &losses, &cut_off, event) }
            });
        let client = options
            .connect(servers)
            .await
            .map_err(|e| NatsStoreError::Connect {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(REQUEST_TIMEOUT);
        Ok(NatsKv {
            inner: Arc::new(Inner {
                url: url.to_string(),
                client,
                js,
                buckets: Mutex::new(BTreeMap::new()),
                losses,
                open_failed: AtomicBool::new(false),
            }),
        })
    }

    /// Fails at once when the client is not connected: a call would only
    /// wait for the reconnection (or its timeout).
    fn connected(&self) -> Result<(), KvError> {
        match self.inner.client.connection_state() {
            async_nats::connection::State::Connected => Ok(()),
            _ => Err(KvError::Unavailable(format!(
                "not connected to NATS at {}",
                self.inner.url
            ))),
        }
    }

    fn bucket(&self, bucket: Bucket) -> Result<kv::Store, KvError> {
        self.connected()?;
        let buckets = self.inner.buckets.lock().expect("no panic holds it");
        buckets
            .get(&bucket)
            .cloned()
            .ok_or_else(|| KvError::Unavailable(format!("bucket {} not opened", bucket.name())))
    }
}

/// `nats://a:4222,nats://b:4222` → the addresses async-nats takes.
fn parse_url(url: &str) -> Result<Vec<async_nats::ServerAddr>, NatsStoreError> {
    let bad = || NatsStoreError::BadUrl(url.to_string());
    let mut servers = Vec::new();
    for part in url.split(',') {
        let part = part.trim();
        if !part.starts_with("nats://") && !part.starts_with("tls://") {
            return Err(bad());
        }
        servers.push(part.parse().map_err(|_| bad())?);
    }
    if servers.is_empty() {
        return Err(bad());
    }
    Ok(servers)
}

/// Logs the connection's changes, once each way (not every attempt to
/// reconnect); counts its losses for the watches.
fn connection_event(url: &str, losses: &watch::Sender<u64>, cut_off: &AtomicBool, event: Event) {
    match event {
        Event::Connected => {
            cut_off.store(false, Ordering::Relaxed);
            tracing::info!(store = %url, "connected to NATS at {url}");
        }
        Event::Disconnected => {
            losses.send_modify(|n| *n += 1);
            cut_off.store(true, Ordering::Relaxed);
            tracing::warn!(store = %url, "lost the connection to NATS at {url}; reconnecting");
        }
        // Not connected yet, or reconnecting: each failed attempt says
        // so; the first is enough.
        Event::ClientError(e) if !cut_off.swap(true, Ordering::Relaxed) => {
            tracing::warn!(
                store = %url, error = %e,
                "cannot reach NATS at {url} ({e}); trying again every second"
            );
        }
        Event::ClientError(e) => tracing::debug!(store = %url, error = %e, "NATS client: {e}"),
        Event::LameDuckMode => {
            tracing::info!(store = %url, "the NATS server at {url} is shutting down (lame duck mode)");
        }
        Event::SlowConsumer(sid) => {
            tracing::warn!(store = %url, sid, "NATS says this server reads too slowly");
        }
        Event::ServerError(e) => tracing::warn!(store = %url, error = %e, "NATS: {e}"),
        Event::Draining | Event::Closed => {}
    }
}

fn unavailable(e: impl std::fmt::Display) -> KvError {
    KvError::Unavailable(e.to_string())
}

/// A value as a [`KvEntry`], `None` for a delete or an expiry marker.
fn entry(key: String, value: &[u8], revision: u64, op: Op) -> Option<KvEntry> {
    (op == Op::Put).then(|| KvEntry {
        key,
        value: value.to_vec(),
        revision,
    })
}

/// What a message of a bucket's stream says of its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Put,
    Deleted,
    /// Removed by the bucket's maximum age (a limit marker), or purged
    /// (natter never purges).
    Expired,
}

/// Reads the KV operation headers: `KV-Operation` (written by clients
/// on delete and purge) or `Nats-Marker-Reason` (written by the server).
fn op_of(headers: Option<&HeaderMap>) -> Op {
    let Some(headers) = headers else {
        return Op::Put;
    };
    if let Some(op) = headers.get("KV-Operation") {
        return match op.as_str() {
            "DEL" => Op::Deleted,
            "PURGE" => Op::Expired,
            _ => Op::Put,
        };
    }
    match headers.get("Nats-Marker-Reason").map(|r| r.as_str()) {
        Some("Remove") => Op::Deleted,
        Some(_) => Op::Expired,
        None => Op::Put,
    }
}

impl Kv for NatsKv {
    async fn open(&self, bucket: Bucket, max_age: Duration) -> Result<(), KvError> {
        self.connected()?;
        let js = &self.inner.js;
        let clustered = self.inner.client.server_info().cluster.is_some();
        let config = kv::Config {
            bucket: bucket.name().to_string(),
            description: "natter's shared directory".to_string(),
            history: 1,
            max_age,
            // A marker outlives a refresh or two, so that a watch that
            // starts just after an expiry does not miss it by much.
            limit_markers: Some(max_age.clamp(Duration::from_secs(1), Duration::from_secs(60))),
            num_replicas: if clustered { 3 } else { 1 },
            ..Default::default()
        };
        let replicas = config.num_replicas;
        let store = match js.create_key_value(config).await {
            Ok(store) => {
                tracing::debug!(bucket = bucket.name(), replicas, "bucket ready");
                store
            }
            // Made before, with other settings (by an operator, or an
            // older natter): used as it is.
            Err(created) => match js.get_key_value(bucket.name()).await {
                Ok(store) => store,
                Err(_) => {
                    // Connected, yet no bucket: NATS without JetStream, or
                    // too old for limit markers. Said once; the shared
                    // store tries again every second.
                    if !self.inner.open_failed.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            store = %self.inner.url, bucket = bucket.name(), error = %created,
                            "cannot open the bucket {} on NATS at {}: {created} (natter needs JetStream, nats-server -js, version 2.11 or newer)",
                            bucket.name(), self.inner.url
                        );
                    }
                    return Err(unavailable(format!("bucket {}: {created}", bucket.name())));
                }
            },
        };
        self.inner
            .buckets
            .lock()
            .expect("no panic holds it")
            .insert(bucket, store);
        Ok(())
    }

    async fn get(&self, bucket: Bucket, key: &str) -> Result<Option<KvEntry>, KvError> {
        let store = self.bucket(bucket)?;
        let found = store.entry(key).await.map_err(unavailable)?;
        Ok(found.and_then(|e| {
            let op = match e.operation {
                kv::Operation::Put => Op::Put,
                kv::Operation::Delete => Op::Deleted,
                kv::Operation::Purge => Op::Expired,
            };
            entry(e.key, &e.value, e.revision, op)
        }))
    }

    async fn create(&self, bucket: Bucket, key: &str, value: Vec<u8>) -> Result<u64, KvError> {
        let store = self.bucket(bucket)?;
        match store.create(key, value.into()).await {
            Ok(revision) => Ok(revision),
            // Also when the key was deleted or expired and another server
            // won the compare-and-set on its marker.
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Err(KvError::Conflict),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn update(
        &self,
        bucket: Bucket,
        key: &str,
        value: Vec<u8>,
        revision: u64,
    ) -> Result<u64, KvError> {
        let store = self.bucket(bucket)?;
        match store.update(key, value.into(), revision).await {
            Ok(revision) => Ok(revision),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Err(KvError::Conflict),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn put(&self, bucket: Bucket, key: &str, value: Vec<u8>) -> Result<u64, KvError> {
        let store = self.bucket(bucket)?;
        store.put(key, value.into()).await.map_err(unavailable)
    }

    async fn delete(
        &self,
        bucket: Bucket,
        key: &str,
        revision: Option<u64>,
    ) -> Result<(), KvError> {
        let store = self.bucket(bucket)?;
        match store.delete_expect_revision(key, revision).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == kv::DeleteErrorKind::WrongLastRevision => Err(KvError::Conflict),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn watch(&self, bucket: Bucket) -> Result<mpsc::Receiver<KvEvent>, KvError> {
        // From here on, a loss of the connection ends the watch.
        let mut losses = self.inner.losses.clone();
        losses.mark_unchanged();
        let store = self.bucket(bucket)?;
        // Taken before the consumer starts: the snapshot has been
        // delivered once a message at or past it has come.
        let mut stream = store.stream.clone();
        let last = stream
            .info()
            .await
            .map_err(unavailable)?
            .state
            .last_sequence;
        let consumer = stream
            .create_consumer(consumer::push::OrderedConfig {
                deliver_subject: self.inner.client.new_inbox(),
                description: Some("natter directory watch".to_string()),
                filter_subject: format!("{}>", store.prefix),
                replay_policy: consumer::ReplayPolicy::Instant,
                deliver_policy: consumer::DeliverPolicy::LastPerSubject,
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        let empty = consumer.cached_info().num_pending == 0;
        let mut messages = consumer.messages().await.map_err(unavailable)?;
        let (tx, rx) = mpsc::channel(WATCH_QUEUE);
        let prefix = store.prefix.clone();
        let url = self.inner.url.clone();
        tokio::spawn(async move {
            let mut current = empty;
            // Keys that have a value: a delete marker ageing out leaves a
            // marker of its own, which is no news for a key already gone.
            let mut present = BTreeSet::new();
            if current && tx.send(KvEvent::Current).await.is_err() {
                return;
            }
            loop {
                let message = tokio::select! {
                    biased;
                    // The connection was lost: end, so that a new watch
                    // (and its snapshot) catches up on what was missed.
                    _ = losses.changed() => return,
                    message = messages.next() => message,
                };
                let message = match message {
                    Some(Ok(message)) => message,
                    Some(Err(e)) => {
                        tracing::debug!(store = %url, error = %e, "the directory watch failed");
                        return;
                    }
                    None => return,
                };
                let Ok(info) = message.info() else { continue };
                let (revision, pending) = (info.stream_sequence, info.pending);
                let Some(key) = message.subject.strip_prefix(prefix.as_str()) else {
                    continue;
                };
                let key = key.to_string();
                let op = op_of(message.headers.as_ref());
                // The snapshot holds keys that have a value; a delete or
                // expiry before the watch started is no news.
                let event = match op {
                    Op::Put => {
                        present.insert(key.clone());
                        entry(key, &message.payload, revision, op).map(KvEvent::Put)
                    }
                    Op::Deleted if present.remove(&key) => Some(KvEvent::Deleted { key, revision }),
                    Op::Expired if present.remove(&key) => Some(KvEvent::Expired { key, revision }),
                    Op::Deleted | Op::Expired => None,
                };
                if let Some(event) = event {
                    if tx.send(event).await.is_err() {
                        return;
                    }
                }
                if !current && (pending == 0 || revision >= last) {
                    current = true;
                    if tx.send(KvEvent::Current).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_addresses_must_be_nats_urls() {
        assert!(parse_url("nats://127.0.0.1:4222").is_ok());
        assert_eq!(parse_url("nats://a:4222, nats://b:4222").unwrap().len(), 2);
        for bad in ["", "127.0.0.1:4222", "http://a:4222", "nats://a:4222,"] {
            let e = parse_url(bad).unwrap_err();
            assert!(
                e.to_string().contains("give nats://HOST:PORT"),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn operation_headers_tell_puts_deletes_and_expiries_apart() {
        let with = |name: &str, value: &str| {
            let mut h = HeaderMap::new();
            h.insert(name, value);
            h
        };
        assert_eq!(op_of(None), Op::Put);
        assert_eq!(op_of(Some(&with("KV-Operation", "DEL"))), Op::Deleted);
        assert_eq!(op_of(Some(&with("KV-Operation", "PURGE"))), Op::Expired);
        assert_eq!(
            op_of(Some(&with("Nats-Marker-Reason", "MaxAge"))),
            Op::Expired
        );
        assert_eq!(
            op_of(Some(&with("Nats-Marker-Reason", "Remove"))),
            Op::Deleted
        );
        assert_eq!(op_of(Some(&with("Other", "x"))), Op::Put);
    }
}
