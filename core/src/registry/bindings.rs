//! Names owned by keys: which static key registered each name, and when
//! the name was last used.
//!
//! The table lives in memory; the driver keeps a durable copy. It loads
//! the live bindings at start ([`Binding`]) and writes every change the
//! table makes ([`StoreOp`]), so a restart of the server loses no binding
//! and the registry itself never touches a disk.
//!
//! A binding lasts `name_ttl` after its last use. Registering the name and
//! leaving the directory (any deregistration) are uses; so is being
//! registered when the binding would expire (a session online for longer
//! than the TTL keeps its name). To keep the write volume low, a use is
//! written only when the recorded one is older than [`TOUCH_EVERY`] (or a
//! tenth of the TTL, if shorter): a name may thus come free that much
//! before `name_ttl` after its true last use.

use super::store::StoreOp;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The longest a use of a name goes unrecorded.
const TOUCH_EVERY: u64 = 3600;

/// A stored binding, as the driver loads it at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The name in lower case: names are unique regardless of case.
    pub name: String,
    /// The static public key that registered it.
    pub key: [u8; 32],
    /// Unix seconds of its last recorded use.
    pub last_used: u64,
}

/// The live bindings, with an index by last use so that expired ones are
/// found without scanning the table.
#[derive(Debug)]
pub(super) struct Bindings {
    ttl: u64,
    touch_every: u64,
    /// Key and last recorded use, by lower-case name.
    by_name: BTreeMap<String, ([u8; 32], u64)>,
    /// `(last recorded use, name)`: the oldest first.
    by_use: BTreeSet<(u64, String)>,
}

impl Bindings {
    /// The table at start, from what the driver loaded; a name the store
    /// holds in another case is folded to lower case.
    pub(super) fn new(ttl: Duration, loaded: impl IntoIterator<Item = Binding>) -> Self {
        let ttl = ttl.as_secs().max(1);
        let mut bindings = Self {
            ttl,
            touch_every: TOUCH_EVERY.min(ttl / 10).max(1),
            by_name: BTreeMap::new(),
            by_use: BTreeSet::new(),
        };
        for binding in loaded {
            bindings.set(
                binding.name.to_ascii_lowercase(),
                binding.key,
                binding.last_used,
            );
        }
        bindings
    }

    /// The key `name` (lower case) is bound to, if any. Call
    /// [`Bindings::expire`] first so that an expired binding is gone.
    pub(super) fn owner(&self, name: &str) -> Option<[u8; 32]> {
        self.by_name.get(name).map(|&(key, _)| key)
    }

    /// `key` used `name` (lower case) at `now` (unix seconds): binds the
    /// name if it was free, and records the use if the recorded one is old
    /// enough. Returns what to store, if anything.
    pub(super) fn used(&mut self, name: &str, key: [u8; 32], now: u64) -> Option<StoreOp> {
        match self.by_name.get(name) {
            Some(&(bound, last)) if bound == key => {
                if now.saturating_sub(last) < self.touch_every {
                    return None;
                }
                self.set(name.to_string(), key, now);
                Some(StoreOp::Touch {
                    name: name.to_string(),
                    at: now,
                })
            }
            _ => {
                self.set(name.to_string(), key, now);
                Some(StoreOp::Bind {
                    name: name.to_string(),
                    key,
                    at: now,
                })
            }
        }
    }

    /// Ends every binding unused for the TTL at `now` (unix seconds),
    /// oldest first, except those whose owner is online under the name
    /// (`online(name, key)`): being registered is a use, recorded now.
    /// Each expired binding costs one step here, so calling this before
    /// every registration keeps the table at the names used within the TTL.
    pub(super) fn expire(
        &mut self,
        now: u64,
        online: impl Fn(&str, &[u8; 32]) -> bool,
        mut store: impl FnMut(StoreOp),
    ) {
        while let Some((last, _)) = self.by_use.first() {
            if now.saturating_sub(*last) < self.ttl {
                return;
            }
            let (_, name) = self.by_use.pop_first().expect("just seen");
            let (key, _) = self.by_name.remove(&name).expect("indexed");
            if online(&name, &key) {
                self.set(name.clone(), key, now);
                store(StoreOp::Touch { name, at: now });
            } else {
                store(StoreOp::Expire { name });
            }
        }
    }

    fn set(&mut self, name: String, key: [u8; 32], last_used: u64) {
        if let Some((_, old)) = self.by_name.insert(name.clone(), (key, last_used)) {
            self.by_use.remove(&(old, name.clone()));
        }
        self.by_use.insert((last_used, name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;
    const ALICE: [u8; 32] = [1; 32];
    const MALLORY: [u8; 32] = [2; 32];

    fn table() -> Bindings {
        Bindings::new(Duration::from_secs(30 * DAY), [])
    }

    #[test]
    fn a_use_within_the_hour_is_not_written_again() {
        let mut bindings = table();
        assert!(matches!(
            bindings.used("alice", ALICE, 1_000),
            Some(StoreOp::Bind { .. })
        ));
        assert_eq!(bindings.used("alice", ALICE, 1_000 + 3_599), None);
        assert_eq!(
            bindings.used("alice", ALICE, 1_000 + 3_600),
            Some(StoreOp::Touch {
                name: "alice".into(),
                at: 4_600
            })
        );
    }

    #[test]
    fn expiry_frees_the_name_unless_its_owner_is_online() {
        let mut bindings = table();
        bindings.used("alice", ALICE, 0);
        bindings.used("bob", MALLORY, 0);
        let mut ops = Vec::new();
        bindings.expire(30 * DAY - 1, |_, _| false, |op| ops.push(op));
        assert!(ops.is_empty(), "not yet");
        bindings.expire(30 * DAY, |name, _| name == "alice", |op| ops.push(op));
        assert_eq!(
            ops,
            vec![
                StoreOp::Touch {
                    name: "alice".into(),
                    at: 30 * DAY
                },
                StoreOp::Expire { name: "bob".into() },
            ]
        );
        assert_eq!(bindings.owner("alice"), Some(ALICE));
        assert_eq!(bindings.owner("bob"), None);
    }
}
