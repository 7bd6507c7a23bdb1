//! The directory server's name bindings on disk: which key owns which
//! name, in an SQLite database (`DIR/server/names.sqlite`).
//!
//! The registry keeps the bindings in memory and decides every change;
//! this file only loads them at start ([`NameBindings::load_live`]) and
//! writes the registry's [`StoreOp`]s ([`NameBindings::apply`]), a batch
//! per transaction.
//!
//! Durability: the database runs in WAL mode with `synchronous=NORMAL`. A
//! commit appends to the write-ahead log without waiting for the disk, so
//! a batch costs no `fsync`; the log is synced at each checkpoint. A crash
//! of the server process loses nothing committed (the operating system
//! holds the writes); a power cut or a kernel crash may lose the batches
//! committed since the last checkpoint (at most about 1,000 pages of log),
//! never the database's consistency.
//!
//! The file is created readable by its owner only (the bindings say who
//! uses natter under which name) and held with an exclusive lock: a second
//! server on the same data directory would keep another view of the
//! bindings in memory and overwrite this one's, so it is refused at start.

use natter_core::registry::{Binding, StoreOp};
use rusqlite::{params, Connection};

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The version of the schema below, in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE bindings (
    -- the name in lower case: names are unique regardless of case
    name TEXT PRIMARY KEY NOT NULL,
    -- the static public key that registered it
    key BLOB NOT NULL CHECK (length(key) = 32),
    -- unix seconds of its last recorded use
    last_used INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Why the bindings cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum BindingsError {
    #[error("cannot create {}: {source}", path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("{}: {source}{}", path.display(), hint(source))]
    Database {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{} was written by a newer natter (schema {found}, this one knows {SCHEMA_VERSION}); upgrade natter", path.display())]
    NewerSchema { path: PathBuf, found: i64 },
}

/// A busy database is held by another process: say which.
fn hint(error: &rusqlite::Error) -> &'static str {
    match error.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            " (is another natter server using this data directory?)"
        }
        _ => "",
    }
}

/// The open database of name bindings.
#[derive(Debug)]
pub struct NameBindings {
    db: Connection,
    path: PathBuf,
}

impl NameBindings {
    /// Opens the database at `path`, creating it (mode 0600, its directory
    /// 0700) and its schema if needed, and takes its lock.
    pub fn open(path: &Path) -> Result<Self, BindingsError> {
        let create = |source| BindingsError::Create {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            crate::private::dir().create(dir).map_err(create)?;
        }
        crate::private::file()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(create)?;
        let db = Connection::open(path).map_err(|source| BindingsError::Database {
            path: path.to_path_buf(),
            source,
        })?;
        let mut bindings = Self {
            db,
            path: path.to_path_buf(),
        };
        bindings.prepare()?;
        Ok(bindings)
    }

    /// Locks the database, sets the journal up and creates the schema.
    fn prepare(&mut self) -> Result<(), BindingsError> {
        let db = &self.db;
        let set_up = || -> rusqlite::Result<i64> {
            // The lock is held for good: waiting for it is pointless.
            db.busy_timeout(Duration::ZERO)?;
            // Before the first access, so that the lock is taken and kept
            // from the start (and WAL needs no shared-memory file).
            db.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
            db.pragma_update(None, "journal_mode", "WAL")?;
            db.pragma_update(None, "synchronous", "NORMAL")?;
            db.execute_batch("BEGIN IMMEDIATE")?;
            let version: i64 = db.pragma_query_value(None, "user_version", |row| row.get(0))?;
            if version == 0 {
                db.execute_batch(SCHEMA)?;
                db.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            }
            db.execute_batch("COMMIT")?;
            Ok(version)
        };
        match set_up().map_err(|source| self.error(source))? {
            0 | SCHEMA_VERSION => Ok(()),
            found => Err(BindingsError::NewerSchema {
                path: self.path.clone(),
                found,
            }),
        }
    }

    /// Deletes the bindings unused for `ttl` at `now_unix` (unix seconds)
    /// and returns the others, to start the registry with.
    pub fn load_live(
        &mut self,
        now_unix: u64,
        ttl: Duration,
    ) -> Result<Vec<Binding>, BindingsError> {
        let cutoff = now_unix.saturating_sub(ttl.as_secs());
        let load = || -> rusqlite::Result<Vec<Binding>> {
            self.db
                .execute("DELETE FROM bindings WHERE last_used <= ?1", [cutoff])?;
            let mut rows = self
                .db
                .prepare("SELECT name, key, last_used FROM bindings ORDER BY name")?;
            let bindings = rows.query_map([], |row| {
                Ok(Binding {
                    name: row.get(0)?,
                    key: row.get(1)?,
                    last_used: row.get(2)?,
                })
            })?;
            bindings.collect()
        };
        load().map_err(|source| self.error(source))
    }

    /// Writes `ops`, in order, in one transaction: all or none.
    pub fn apply(&mut self, ops: &[StoreOp]) -> Result<(), BindingsError> {
        let write = |db: &mut Connection| -> rusqlite::Result<()> {
            let tx = db.transaction()?;
            for op in ops {
                match op {
                    StoreOp::Bind { name, key, at } => tx
                        .prepare_cached(
                            "INSERT INTO bindings (name, key, last_used) VALUES (?1, ?2, ?3)
                             ON CONFLICT (name) DO UPDATE SET key = ?2, last_used = ?3",
                        )?
                        .execute(params![name, key, at])?,
                    StoreOp::Touch { name, at } => tx
                        .prepare_cached("UPDATE bindings SET last_used = ?2 WHERE name = ?1")?
                        .execute(params![name, at])?,
                    StoreOp::Expire { name } => tx
                        .prepare_cached("DELETE FROM bindings WHERE name = ?1")?
                        .execute([name])?,
                    // A shared store's: never sent to the embedded one.
                    StoreOp::Claim { .. } | StoreOp::Announce { .. } | StoreOp::Withdraw { .. } => {
                        0
                    }
                };
            }
            tx.commit()
        };
        write(&mut self.db).map_err(|source| self.error(source))
    }

    fn error(&self, source: rusqlite::Error) -> BindingsError {
        BindingsError::Database {
            path: self.path.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;
    const ALICE: [u8; 32] = [0xa1; 32];
    const MALLORY: [u8; 32] = [0x66; 32];
    const TTL: Duration = Duration::from_secs(30 * DAY);

    fn bind(name: &str, key: [u8; 32], at: u64) -> StoreOp {
        StoreOp::Bind {
            name: name.into(),
            key,
            at,
        }
    }

    fn binding(name: &str, key: [u8; 32], last_used: u64) -> Binding {
        Binding {
            name: name.into(),
            key,
            last_used,
        }
    }

    #[test]
    fn a_binding_survives_reopening_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server/names.sqlite");
        let mut store = NameBindings::open(&path).unwrap();
        store
            .apply(&[bind("alice", ALICE, 1_000), bind("bob", MALLORY, 1_000)])
            .unwrap();
        store
            .apply(&[
                StoreOp::Touch {
                    name: "alice".into(),
                    at: 5_000,
                },
                StoreOp::Expire { name: "bob".into() },
                bind("carol", MALLORY, 6_000),
            ])
            .unwrap();
        drop(store);
        let mut store = NameBindings::open(&path).unwrap();
        assert_eq!(
            store.load_live(7_000, TTL).unwrap(),
            vec![
                binding("alice", ALICE, 5_000),
                binding("carol", MALLORY, 6_000)
            ]
        );
    }

    #[test]
    fn bindings_past_the_ttl_are_deleted_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("names.sqlite");
        let mut store = NameBindings::open(&path).unwrap();
        store
            .apply(&[bind("old", ALICE, 0), bind("recent", ALICE, 1)])
            .unwrap();
        let now = 30 * DAY;
        assert_eq!(
            store.load_live(now, TTL).unwrap(),
            vec![binding("recent", ALICE, 1)]
        );
        drop(store);
        let mut store = NameBindings::open(&path).unwrap();
        assert_eq!(
            store.load_live(0, TTL).unwrap(),
            vec![binding("recent", ALICE, 1)],
            "the expired one is gone from the file"
        );
    }

    #[test]
    fn a_rebind_replaces_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = NameBindings::open(&dir.path().join("names.sqlite")).unwrap();
        store.apply(&[bind("alice", ALICE, 1)]).unwrap();
        store.apply(&[bind("alice", MALLORY, 2)]).unwrap();
        assert_eq!(
            store.load_live(2, TTL).unwrap(),
            vec![binding("alice", MALLORY, 2)]
        );
    }

    #[test]
    fn a_second_server_on_the_same_data_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("names.sqlite");
        let _first = NameBindings::open(&path).unwrap();
        let error = NameBindings::open(&path).unwrap_err().to_string();
        assert!(error.contains("another natter server"), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn only_the_owner_may_read_the_bindings() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server/names.sqlite");
        let mut store = NameBindings::open(&path).unwrap();
        store.apply(&[bind("alice", ALICE, 1)]).unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&path.with_extension("sqlite-wal")), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
    }

    /// `natter bench` registers 10,000 names in a burst; the driver writes
    /// what one drain of the registry produced in one transaction.
    #[test]
    #[allow(clippy::disallowed_methods)] // a measurement of real time
    fn ten_thousand_binds_are_written_in_well_under_a_second_each_way() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = NameBindings::open(&dir.path().join("names.sqlite")).unwrap();
        let binds = |prefix: &str| -> Vec<StoreOp> {
            (0..10_000u32)
                .map(|i| {
                    let mut key = [0; 32];
                    key[..4].copy_from_slice(&i.to_be_bytes());
                    bind(&format!("{prefix}{i:05}"), key, 1_000)
                })
                .collect()
        };
        let started = std::time::Instant::now();
        store.apply(&binds("a")).unwrap();
        let batched = started.elapsed();
        let started = std::time::Instant::now();
        for op in &binds("b") {
            store.apply(std::slice::from_ref(op)).unwrap();
        }
        let one_by_one = started.elapsed();
        eprintln!(
            "10,000 binds: {batched:?} in one transaction, {one_by_one:?} one per transaction"
        );
        assert!(batched < Duration::from_secs(1), "{batched:?}");
        assert!(one_by_one < Duration::from_secs(10), "{one_by_one:?}");
        assert_eq!(store.load_live(1_000, TTL).unwrap().len(), 20_000);
    }
}
