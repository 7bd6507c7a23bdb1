//! Live presence: the registry tells subscribed connections who comes,
//! goes and changes status, without being asked.
//!
//! The cost that matters is the fan-out: every change goes to every
//! subscriber. So a change is recorded once, in one shared log, not once
//! per subscriber. At most every [`PresenceConfig::interval`] the log is
//! flushed: its changes are coalesced and encoded once, and the frame is
//! sent to every subscriber. Each subscriber thus gets at most one frame
//! per interval, whatever the churn; the log holds one interval's changes
//! only; and a flush costs one pass over the log plus one encryption per
//! subscriber.
//!
//! A subscriber's view is a `list` answer plus the changes after it. Two
//! kinds of subscriber, so two coalescings at most per flush:
//!
//! - *settled*: its view dates from before the interval's first change.
//!   Coalesced fully: a join and a leave of the same name cancel out,
//!   several statuses keep the last.
//! - *fresh*: it subscribed or listed during the interval, so its view
//!   may show any point of it (a join before its list, a leave after).
//!   It gets each touched name's final state instead (online, offline or
//!   status; a join and a leave give an offline): applied to a view taken
//!   anywhere in the interval, that gives the right directory. Changes
//!   before its view are thus sent again, which is harmless (an online
//!   replaces, an offline removes).
//!
//! Giving each subscriber the changes past its own cursor, coalesced,
//! would cost one pass per distinct cursor: O(n²) when n peers reconnect
//! and subscribe within one interval (a server restart).
//!
//! Bound: a subscriber's coalesced changes longer than
//! [`PresenceConfig::max_bytes`] once encoded (a mass reconnection after a
//! server restart) are replaced by one `presence_resync` frame, which
//! tells it to `list` again: the frame stays under the frame limit, and a
//! burst costs every subscriber one small frame and one list.

use super::name_key;
use crate::codec::encode;
use crate::link::LinkId;
use crate::protocol::{PeerInfo, PeerStatus, PresenceChange, ServerMsg};
use crate::time::Instant;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// How often and how much a subscriber is told.
#[derive(Clone, Copy, Debug)]
pub struct PresenceConfig {
    /// Changes wait at most this long, and a subscriber gets at most one
    /// `presence` frame per interval.
    pub interval: Duration,
    /// Longest `presence` frame, in bytes; past it, `presence_resync`.
    /// Under the frame limit (`MAX_FRAME`), which a client enforces.
    pub max_bytes: usize,
}

impl Default for PresenceConfig {
    /// Four frames a second at most; about 250 joins per frame.
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(250),
            max_bytes: 48 * 1024,
        }
    }
}

/// The subscribers and the changes they have not been sent yet.
#[derive(Debug)]
pub(super) struct Presence {
    config: PresenceConfig,
    /// Changes not flushed yet, oldest first: entry `i` has sequence
    /// number `base + i`.
    log: Vec<Logged>,
    base: u64,
    subscribers: BTreeMap<LinkId, Subscriber>,
    /// When the log is flushed next; none while it holds nothing.
    flush_at: Option<Instant>,
}

#[derive(Debug)]
struct Logged {
    /// [`name_key`] of the peer the change is about.
    key: String,
    change: Change,
}

#[derive(Debug)]
enum Change {
    Online(PeerInfo),
    Offline(String),
    Status(String, PeerStatus),
}

#[derive(Debug)]
struct Subscriber {
    /// [`name_key`] of its own name: its own changes are not sent to it.
    key: String,
    /// The first change it has not been told (nor shown by a list): the
    /// start of the log if it is settled, further in if fresh.
    cursor: u64,
}

/// What the changes past one cursor come to, for one name.
#[derive(Debug)]
enum Net {
    /// Online now. `known` when the subscriber may know an earlier entry
    /// of the name (it went offline and came back, or the subscriber is
    /// fresh): a later offline must still be sent.
    Online {
        info: PeerInfo,
        known: bool,
    },
    Offline(String),
    Status(String, PeerStatus),
}

impl Presence {
    pub(super) fn new(config: PresenceConfig) -> Self {
        Self {
            config,
            log: Vec::new(),
            base: 0,
            subscribers: BTreeMap::new(),
            flush_at: None,
        }
    }

    /// Connections subscribed.
    pub(super) fn subscribers(&self) -> usize {
        self.subscribers.len()
    }

    /// The end of the log: the sequence number of the next change.
    fn head(&self) -> u64 {
        self.base + self.log.len() as u64
    }

    // ---- hooks: the registry's changes ----

    /// `link`, registered as `name`, is told every change from now on.
    pub(super) fn subscribe(&mut self, link: LinkId, name: &str) {
        let cursor = self.head();
        let key = name_key(name);
        self.subscribers.insert(link, Subscriber { key, cursor });
    }

    /// The connection is gone.
    pub(super) fn unsubscribe(&mut self, link: LinkId) {
        self.subscribers.remove(&link);
    }

    /// `link` was just sent the whole directory: what came before is in it.
    pub(super) fn listed(&mut self, link: LinkId) {
        let head = self.head();
        if let Some(subscriber) = self.subscribers.get_mut(&link) {
            subscriber.cursor = head;
        }
    }

    pub(super) fn online(&mut self, info: PeerInfo) {
        self.record(&info.name.clone(), Change::Online(info));
    }

    pub(super) fn offline(&mut self, name: &str) {
        self.record(name, Change::Offline(name.to_string()));
    }

    pub(super) fn status(&mut self, name: &str, status: PeerStatus) {
        self.record(name, Change::Status(name.to_string(), status));
    }

    /// Nobody to tell, nothing kept.
    fn record(&mut self, name: &str, change: Change) {
        if !self.subscribers.is_empty() {
            let key = name_key(name);
            self.log.push(Logged { key, change });
        }
    }

    // ---- timer ----

    /// Schedules the flush of changes recorded since the last one: the
    /// first change of an interval waits for it to end.
    pub(super) fn arm(&mut self, now: Instant) {
        if self.flush_at.is_none() && !self.log.is_empty() {
            self.flush_at = Some(now + self.config.interval);
        }
    }

    pub(super) fn deadline(&self) -> Option<Instant> {
        self.flush_at
    }

    /// At the deadline: the frame for each subscriber with something to
    /// be told, and the log emptied.
    pub(super) fn flush(&mut self, now: Instant) -> Vec<(LinkId, Vec<u8>)> {
        if self.flush_at.is_none_or(|at| at > now) {
            return Vec::new();
        }
        self.flush_at = None;
        let head = self.head();
        let (mut settled, mut fresh) = (None, None);
        let mut frames = Vec::new();
        for (&link, subscriber) in &mut self.subscribers {
            let cursor = std::mem::replace(&mut subscriber.cursor, head);
            if cursor == head {
                continue; // nothing since it subscribed or listed
            }
            let is_fresh = cursor > self.base;
            let batch = if is_fresh { &mut fresh } else { &mut settled };
            let batch = batch.get_or_insert_with(|| {
                Batch::new(coalesce(&self.log, is_fresh), self.config.max_bytes)
            });
            if let Some(frame) = batch.frame_for(&subscriber.key) {
                frames.push((link, frame));
            }
        }
        self.log.clear();
        self.base = head;
        frames
    }
}

/// The net changes of `log`, in the order of each name's last change. For
/// a settled subscriber names whose changes cancel out are left out; for
/// a `fresh` one (its view may already show a join) a join and a leave
/// give an offline.
fn coalesce(log: &[Logged], fresh: bool) -> Vec<(String, PresenceChange)> {
    let mut nets: BTreeMap<&str, (usize, Net)> = BTreeMap::new();
    for (at, logged) in log.iter().enumerate() {
        let before = nets.remove(logged.key.as_str()).map(|(_, net)| net);
        let after = match (before, &logged.change) {
            // Someone the subscriber never saw came and went.
            (Some(Net::Online { known: false, .. }), Change::Offline(_)) => None,
            (Some(Net::Online { info, known }), Change::Status(_, status)) => {
                let info = PeerInfo {
                    status: *status,
                    ..info
                };
                Some(Net::Online { info, known })
            }
            (before, Change::Online(info)) => {
                // Back after leaving: the subscriber knew the name before.
                let known = match before {
                    None => fresh,
                    Some(Net::Online { known, .. }) => known,
                    Some(Net::Offline(_) | Net::Status(..)) => true,
                };
                let info = info.clone();
                Some(Net::Online { info, known })
            }
            (_, Change::Offline(name)) => Some(Net::Offline(name.clone())),
            (_, Change::Status(name, status)) => Some(Net::Status(name.clone(), *status)),
        };
        if let Some(net) = after {
            nets.insert(&logged.key, (at, net));
        }
    }
    let mut ordered: Vec<(usize, String, PresenceChange)> = nets
        .into_iter()
        .map(|(key, (at, net))| (at, key.to_string(), net.into_change()))
        .collect();
    ordered.sort_unstable_by_key(|(at, _, _)| *at);
    ordered
        .into_iter()
        .map(|(_, key, change)| (key, change))
        .collect()
}

impl Net {
    fn into_change(self) -> PresenceChange {
        match self {
            Net::Online { info, .. } => PresenceChange::Online(info),
            Net::Offline(name) => PresenceChange::Offline { name },
            Net::Status(name, status) => PresenceChange::Status { name, status },
        }
    }
}

/// The frame for the subscribers of one cursor, encoded once; a
/// subscriber whose own name is in it gets a copy without that change.
struct Batch {
    changes: Vec<(String, PresenceChange)>,
    names: BTreeSet<String>,
    /// The frame for everyone else; none if there is nothing to tell.
    shared: Option<Vec<u8>>,
    /// Past [`PresenceConfig::max_bytes`]: everyone gets a resync.
    resync: bool,
}

impl Batch {
    fn new(changes: Vec<(String, PresenceChange)>, max_bytes: usize) -> Self {
        let names = changes.iter().map(|(key, _)| key.clone()).collect();
        let shared = (!changes.is_empty()).then(|| encode_changes(&changes, None));
        let resync = shared.as_ref().is_some_and(|frame| frame.len() > max_bytes);
        let shared = if resync {
            Some(encode(&ServerMsg::PresenceResync))
        } else {
            shared
        };
        Self {
            changes,
            names,
            shared,
            resync,
        }
    }

    fn frame_for(&self, own: &str) -> Option<Vec<u8>> {
        if self.resync || !self.names.contains(own) {
            return self.shared.clone();
        }
        let others = self.changes.iter().filter(|(key, _)| key != own).count();
        (others > 0).then(|| encode_changes(&self.changes, Some(own)))
    }
}

fn encode_changes(changes: &[(String, PresenceChange)], except: Option<&str>) -> Vec<u8> {
    let changes = changes
        .iter()
        .filter(|(key, _)| Some(key.as_str()) != except)
        .map(|(_, change)| change.clone())
        .collect();
    encode(&ServerMsg::Presence { changes })
}
