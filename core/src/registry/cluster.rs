//! The registry of one server among several sharing a store
//! ([`super::store`]): claims that wait for the store, this server's
//! peers announced and refreshed, the other servers' peers kept in a
//! local cache (so that lists, lookups and presence stay local), and
//! what changes while the store is cut off.
//!
//! Rules, all decided here and nowhere else:
//!
//! - A registration claims its name in the store and waits (at most
//!   [`ClusterConfig::claim_timeout`]) before its reachability probe;
//!   `Taken` gives `name_taken`, `Unavailable` or no answer gives
//!   `store_unavailable`. The connection stays open, as for any refused
//!   registration.
//! - While the store is cut off, new registrations get
//!   `store_unavailable` at once; the log says once that the server is
//!   cut off and once that it is back. Registered peers stay registered.
//! - The store's watch is applied in revision order: an older revision of
//!   an entry than the one held is ignored. A new watch (after a cut) is a
//!   snapshot: entries not in it are gone.
//! - A name registered here wins over another server's entry of it in
//!   this server's answers (lists, lookups). When another server announces
//!   a name registered here by the same key, the peer has moved: the
//!   session here is replaced (`replaced`), as when the same key
//!   registers twice on one server.

use super::store::{ClaimResult, ClusterConfig, RemoteChange, StoreInput, StoreOp};
use super::{name_key, Registry, RegistryLog, RegistryOutput};
use crate::link::LinkId;
use crate::protocol::{ErrorCode, PeerInfo, ServerMsg};
use crate::time::Instant;
use std::collections::{BTreeMap, BTreeSet};

/// A shared registry's own state.
#[derive(Debug)]
pub(super) struct Cluster {
    pub(super) config: ClusterConfig,
    /// What the store last said: `None` before it said anything.
    reachable: Option<bool>,
    /// The other servers' peers, by [`name_key`].
    pub(super) remote: BTreeMap<String, Remote>,
    /// While a new watch's snapshot comes in: the names it has not
    /// repeated yet.
    stale: Option<BTreeSet<String>>,
    /// Registrations waiting for their claim, and until when.
    waiting: BTreeMap<LinkId, Instant>,
    waiting_by: BTreeSet<(Instant, LinkId)>,
    /// When every local peer is announced again; none while cut off.
    refresh_at: Option<Instant>,
}

/// Another server's peer.
#[derive(Debug)]
pub(super) struct Remote {
    pub(super) info: PeerInfo,
    revision: u64,
    /// The entry as a list shows it (JSON), made once per change.
    pub(super) listed: String,
}

impl Cluster {
    pub(super) fn new(config: ClusterConfig) -> Self {
        Self {
            config,
            reachable: None,
            remote: BTreeMap::new(),
            stale: None,
            waiting: BTreeMap::new(),
            waiting_by: BTreeSet::new(),
            refresh_at: None,
        }
    }

    /// Whether the store is known to be cut off. Before its first word
    /// a claim is made and waits: the store's task sends it once it
    /// connects (a server starting beside its store is not refused).
    pub(super) fn cut_off(&self) -> bool {
        self.reachable == Some(false)
    }

    /// `link` waits for its claim until `by`.
    pub(super) fn wait(&mut self, link: LinkId, by: Instant) {
        self.waiting.insert(link, by);
        self.waiting_by.insert((by, link));
    }

    /// `link` waits no more; true if it was waiting.
    pub(super) fn done_waiting(&mut self, link: LinkId) -> bool {
        match self.waiting.remove(&link) {
            Some(by) => self.waiting_by.remove(&(by, link)),
            None => false,
        }
    }

    pub(super) fn deadline(&self) -> Option<Instant> {
        let claim = self.waiting_by.first().map(|&(at, _)| at);
        claim.into_iter().chain(self.refresh_at).min()
    }
}

impl Registry {
    /// What a shared store answered or watched.
    pub(super) fn store_input(&mut self, now: Instant, input: StoreInput) {
        if self.cluster.is_none() {
            return;
        }
        match input {
            StoreInput::Claimed { link, result, .. } => self.claimed(now, link, result),
            StoreInput::Reachable => {
                let cluster = self.cluster.as_mut().expect("checked");
                if cluster.reachable == Some(true) {
                    return;
                }
                cluster.reachable = Some(true);
                cluster.refresh_at = Some(now + cluster.config.refresh);
                self.log(RegistryLog::StoreReachable);
                // Entries may have expired while the store was cut off.
                self.announce_all();
            }
            StoreInput::Unreachable => {
                let cluster = self.cluster.as_mut().expect("checked");
                if cluster.reachable == Some(false) {
                    return;
                }
                cluster.reachable = Some(false);
                cluster.refresh_at = None;
                self.log(RegistryLog::StoreUnreachable);
            }
            StoreInput::Remote(change) => self.remote_change(change),
        }
    }

    /// Claim deadlines and the refresh of announcements, at `now`.
    pub(super) fn cluster_timeout(&mut self, now: Instant) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        let mut late = Vec::new();
        while let Some(&(by, link)) = cluster.waiting_by.first() {
            if by > now {
                break;
            }
            late.push(link);
            cluster.waiting_by.pop_first();
            cluster.waiting.remove(&link);
        }
        let refresh = cluster.refresh_at.filter(|&at| at <= now).is_some();
        if refresh {
            cluster.refresh_at = Some(now + cluster.config.refresh);
        }
        let secs = cluster.config.claim_timeout.as_secs_f32();
        for link in late {
            let message = format!(
                "the directory store shared by this server's cluster gave no answer within {secs} s; try again later, or another server"
            );
            self.claim_failed(now, link, ErrorCode::StoreUnavailable, message);
        }
        if refresh {
            self.announce_all();
        }
    }

    /// A registration may go on (`Won`) or is refused.
    fn claimed(&mut self, now: Instant, link: LinkId, result: ClaimResult) {
        let cluster = self.cluster.as_mut().expect("checked");
        if !cluster.done_waiting(link) {
            return; // closed, or timed out, meanwhile
        }
        match result {
            ClaimResult::Won => {
                let conn = &self.conns[&link];
                let (entry, key) = (conn.entry.as_ref().expect("claiming"), conn.key);
                if let Some(key) = key {
                    // The claim wrote the binding: only the local table
                    // learns of it.
                    let _ = self
                        .bindings
                        .used(&name_key(&entry.name), key, self.unix_now);
                }
                self.probe_queue.insert(link);
                self.start_probes();
            }
            ClaimResult::Taken => {
                let name = self.conns[&link]
                    .entry
                    .as_ref()
                    .expect("claiming")
                    .name
                    .clone();
                let message = format!(
                    "the name {name} is owned by another key (names are unique regardless of case); pick another with --name"
                );
                self.claim_failed(now, link, ErrorCode::NameTaken, message);
            }
            ClaimResult::Unavailable => {
                let message = "this server is cut off from the directory store it shares with other servers; try again later, or another server".to_string();
                self.claim_failed(now, link, ErrorCode::StoreUnavailable, message);
            }
        }
    }

    /// Undoes a claim that failed and tells the client; the connection
    /// stays open for another try.
    fn claim_failed(&mut self, now: Instant, link: LinkId, code: ErrorCode, message: String) {
        let Some(conn) = self.conns.get_mut(&link) else {
            return;
        };
        let Some(entry) = conn.entry.take() else {
            return;
        };
        // Registering again has the usual time.
        let by = now + self.config.register_timeout;
        conn.register_by = Some(by);
        if by < conn.timer {
            self.timers.remove(&(conn.timer, link));
            conn.timer = by;
            self.timers.insert((by, link));
        }
        let (client, source) = (conn.client, conn.source);
        self.sources.registered(source, -1);
        self.claims.remove(&name_key(&entry.name));
        self.addrs.remove(&entry.addr);
        self.refused(client, code, message.clone());
        let error = ServerMsg::Error {
            id: None,
            code,
            message,
            close: false,
        };
        self.send(now, link, &error);
    }

    /// Asks for `name`'s claim by `link`'s key; the registration waits.
    pub(super) fn claim(&mut self, now: Instant, link: LinkId, name: &str, key: [u8; 32]) {
        let cluster = self.cluster.as_mut().expect("cluster mode");
        cluster.wait(link, now + cluster.config.claim_timeout);
        self.outputs
            .push_back(RegistryOutput::Store(StoreOp::Claim {
                link: Some(link),
                name: name_key(name),
                key,
                at: self.unix_now,
            }));
    }

    /// A use of a name (embedded: [`StoreOp::Bind`] or
    /// [`StoreOp::Touch`]) as a shared store takes it: a claim nobody
    /// waits for. An expiry is the store's own business (max age).
    pub(super) fn shared_use(&mut self, op: StoreOp) {
        let claim = match op {
            StoreOp::Bind { name, key, at } => Some((name, key, at)),
            StoreOp::Touch { name, at } => self.bindings.owner(&name).map(|key| (name, key, at)),
            _ => None,
        };
        if let Some((name, key, at)) = claim {
            self.outputs
                .push_back(RegistryOutput::Store(StoreOp::Claim {
                    link: None,
                    name,
                    key,
                    at,
                }));
        }
    }

    /// Announces the registered peer of `link` (registered, or its
    /// entry changed).
    pub(super) fn announce(&mut self, link: LinkId) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        if cluster.reachable != Some(true) {
            return; // announced again when the store is back
        }
        let Some(entry) = self.conns.get(&link).and_then(|c| c.entry.as_ref()) else {
            return;
        };
        let op = StoreOp::Announce {
            name: name_key(&entry.name),
            peer: entry.info(),
            server: cluster.config.server.clone(),
        };
        self.outputs.push_back(RegistryOutput::Store(op));
    }

    fn announce_all(&mut self) {
        let links: Vec<LinkId> = self.names.values().copied().collect();
        for link in links {
            self.announce(link);
        }
    }

    /// The registered peer `name` left this server.
    pub(super) fn withdraw(&mut self, name: &str) {
        if self.cluster.is_some() {
            let name = name_key(name);
            self.outputs
                .push_back(RegistryOutput::Store(StoreOp::Withdraw { name }));
        }
    }

    fn remote_change(&mut self, change: RemoteChange) {
        let cluster = self.cluster.as_mut().expect("checked");
        match change {
            RemoteChange::Snapshot => {
                cluster.stale = Some(cluster.remote.keys().cloned().collect());
            }
            RemoteChange::Current => {
                let gone = cluster.stale.take().unwrap_or_default();
                for name in gone {
                    self.remote_gone(&name);
                }
            }
            RemoteChange::Put {
                name,
                peer,
                server,
                revision,
            } => {
                if let Some(stale) = &mut cluster.stale {
                    stale.remove(&name);
                }
                if server == cluster.config.server {
                    // Ours: one we hold, or one an earlier life of this
                    // server left behind.
                    if !self.names.contains_key(&name) && !self.claims.contains_key(&name) {
                        self.outputs
                            .push_back(RegistryOutput::Store(StoreOp::Withdraw { name }));
                    }
                    return;
                }
                if let Some(old) = cluster.remote.get(&name) {
                    if old.revision >= revision {
                        return;
                    }
                }
                let listed = serde_json::to_string(&peer).expect("a PeerInfo always serialises");
                let known = cluster.remote.insert(
                    name.clone(),
                    Remote {
                        info: peer.clone(),
                        revision,
                        listed,
                    },
                );
                if let Some(&link) = self.names.get(&name) {
                    // Registered here too: by the same key, the peer has
                    // moved to another server since.
                    let ours = self.conns[&link].key;
                    if ours.is_some()
                        && ours.map(crate::identity::PublicKey::from_bytes) == peer.key
                    {
                        let message = format!(
                            "a newer session with the same key registered {} on another server; this one is closed",
                            peer.name
                        );
                        self.refuse_and_close(link, None, ErrorCode::Replaced, message);
                    }
                    return;
                }
                match known {
                    Some(old)
                        if old.info.name == peer.name
                            && old.info.addr == peer.addr
                            && old.info.key == peer.key
                            && old.info.reachable == peer.reachable =>
                    {
                        if old.info.status != peer.status {
                            self.presence.status(&peer.name, peer.status);
                        }
                    }
                    _ => self.presence.online(peer),
                }
            }
            RemoteChange::Gone { name, revision, .. } => {
                if cluster
                    .remote
                    .get(&name)
                    .is_some_and(|old| old.revision < revision)
                {
                    self.remote_gone(&name);
                }
                if let Some(&link) = self.names.get(&name) {
                    // Ours was deleted (a moved peer's old server tidying
                    // up): put it back at once.
                    self.announce(link);
                }
            }
        }
    }

    /// Another server's peer is gone.
    fn remote_gone(&mut self, name: &str) {
        let cluster = self.cluster.as_mut().expect("checked");
        let Some(remote) = cluster.remote.remove(name) else {
            return;
        };
        if !self.names.contains_key(name) {
            self.presence.offline(&remote.info.name);
        }
    }
}
