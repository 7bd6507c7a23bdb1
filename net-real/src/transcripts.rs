//! Appending transcript lines to files and making them durable, for the
//! peer driver, on any [`Disk`].
//!
//! The core formats every line and names every file; this puts the bytes
//! on disk. Each line goes out with one `write_all` of `line + "\n"` on a
//! file opened in append mode, so a line is never interleaved with another
//! writer's and a crash leaves at worst one truncated last line.
//!
//! [`Transcripts::sync`] makes every line appended so far durable: the
//! data of each file written since the last sync, and the directory entry
//! of each file created since. The driver syncs once per drain of the
//! peer's outputs, before any receipt for those lines goes out (see
//! `natter_core::drive`), so a receipt means the line survives a crash of
//! the machine, at the cost of one disk flush per burst, not per message.

use crate::disk::{Disk, StdDisk};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Open files kept at most. One chat at a time is the product rule, so a
/// few cover every conversation still going on; the least recently used
/// is closed beyond that (and reopened, in append mode, if needed again).
const OPEN_FILES: usize = 8;

/// A transcripts directory that cannot be used.
#[derive(Debug, Error)]
pub enum TranscriptsError {
    #[error("cannot create the transcripts directory {dir}: {source}; choose another with --transcripts DIR")]
    CreateDir { dir: PathBuf, source: io::Error },
    #[error("cannot write in the transcripts directory {dir}: {source}; choose another with --transcripts DIR")]
    NotWritable { dir: PathBuf, source: io::Error },
}

/// The transcripts directory of one peer, on a disk, and its open files.
pub struct Transcripts<D: Disk = StdDisk> {
    disk: D,
    dir: PathBuf,
    /// File name → (last use, file).
    open: BTreeMap<String, (u64, D::File)>,
    uses: u64,
    /// Files written since the last sync.
    unsynced: BTreeSet<String>,
    /// Whether a file was opened (maybe created) since the last sync, so
    /// the directory's entries must be synced too.
    new_entries: bool,
    /// A file closed with lines it could not make durable: the next sync
    /// fails with this, so no receipt claims those lines.
    lost: Option<io::Error>,
}

impl Transcripts<StdDisk> {
    /// Transcripts in `dir` on the machine's own disk. Nothing is touched
    /// before [`Transcripts::prepare`].
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self::on(StdDisk, dir)
    }
}

impl<D: Disk> Transcripts<D> {
    /// Transcripts in `dir` on `disk`. Nothing is touched before
    /// [`Transcripts::prepare`].
    pub fn on(disk: D, dir: impl Into<PathBuf>) -> Self {
        Self {
            disk,
            dir: dir.into(),
            open: BTreeMap::new(),
            uses: 0,
            unsynced: BTreeSet::new(),
            new_entries: false,
            lost: None,
        }
    }

    /// Creates the directory if needed (durably) and checks that files
    /// can be created in it, so that a bad directory is a clear error at
    /// start-up rather than a message silently not recorded in the middle
    /// of a chat.
    pub fn prepare(&mut self) -> Result<(), TranscriptsError> {
        let dir = self.dir.clone();
        let create_dir = |source| TranscriptsError::CreateDir {
            dir: dir.clone(),
            source,
        };
        // The directories about to be created, and the existing one that
        // will hold the first of them: all their entries must be synced.
        let mut to_sync: Vec<&Path> = Vec::new();
        for ancestor in dir.ancestors().filter(|a| !a.as_os_str().is_empty()) {
            to_sync.push(ancestor);
            if self.disk.is_dir(ancestor) {
                break;
            }
        }
        self.disk.create_dir_all(&dir).map_err(create_dir)?;
        if to_sync.len() > 1 {
            for created in to_sync {
                self.disk.sync_dir(created).map_err(create_dir)?;
            }
        }
        let probe = dir.join(".natter-write-test");
        let written = self
            .disk
            .open_append(&probe)
            .and_then(|mut f| f.write_all(b"ok\n"));
        let _ = self.disk.remove_file(&probe);
        written.map_err(|source| TranscriptsError::NotWritable {
            dir: dir.clone(),
            source,
        })
    }

    /// The directory transcripts are written in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one line (a newline is added) to `file` in the directory.
    pub fn append(&mut self, file: &str, line: &str) -> io::Result<()> {
        if !is_plain_file_name(file) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{file:?} is not a plain file name"),
            ));
        }
        self.write(file, line)
    }

    /// Makes every line appended since the last sync durable. An error
    /// names the file's path (a sync covers several).
    pub fn sync(&mut self) -> io::Result<()> {
        if let Some(lost) = self.lost.take() {
            return Err(lost);
        }
        for file in std::mem::take(&mut self.unsynced) {
            if let Some((_, f)) = self.open.get(&file) {
                let synced = self.disk.sync_data(f);
                synced.map_err(|e| with_path(&self.dir.join(&file), e))?;
            }
        }
        if std::mem::take(&mut self.new_entries) {
            self.disk
                .sync_dir(&self.dir)
                .map_err(|e| with_path(&self.dir, e))?;
        }
        Ok(())
    }

    fn write(&mut self, file: &str, line: &str) -> io::Result<()> {
        self.uses += 1;
        let uses = self.uses;
        if !self.open.contains_key(file) {
            if self.open.len() >= OPEN_FILES {
                self.close_oldest();
            }
            let f = self.disk.open_append(&self.dir.join(file))?;
            self.new_entries = true;
            self.open.insert(file.to_string(), (uses, f));
        }
        let (used, f) = self.open.get_mut(file).expect("inserted above");
        *used = uses;
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.unsynced.insert(file.to_string());
        let result = f.write_all(&bytes);
        if result.is_err() {
            // Reopen next time rather than keep a handle in a bad state.
            self.close(file);
        }
        result
    }

    /// Closes the least recently used file.
    fn close_oldest(&mut self) {
        let oldest = self
            .open
            .iter()
            .min_by_key(|(_, (used, _))| *used)
            .map(|(name, _)| name.clone());
        if let Some(oldest) = oldest {
            self.close(&oldest);
        }
    }

    /// Closes a file, syncing it first if it has lines not yet durable (a
    /// closed file cannot be synced later).
    fn close(&mut self, file: &str) {
        let Some((_, f)) = self.open.remove(file) else {
            return;
        };
        if self.unsynced.remove(file) {
            if let Err(e) = self.disk.sync_data(&f) {
                self.lost = Some(with_path(&self.dir.join(file), e));
            }
        }
    }
}

/// Says which file a sync error is about, for the user's message.
fn with_path(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// The core names files from validated names and timestamps; refusing
/// anything that could leave the directory is defence in depth.
fn is_plain_file_name(file: &str) -> bool {
    !file.is_empty()
        && file != "."
        && file != ".."
        && !file.contains(['/', '\\', '\0'])
        && Path::new(file).components().count() == 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// The machine's disk, noting every sync (`data NAME`, `dir NAME`).
    #[derive(Clone, Default)]
    struct Recording(Arc<Mutex<Vec<String>>>);

    struct RecordedFile(std::fs::File, String);

    impl Write for RecordedFile {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.0.flush()
        }
    }

    fn name(path: &Path) -> String {
        path.file_name().unwrap().to_string_lossy().into_owned()
    }

    impl Disk for Recording {
        type File = RecordedFile;
        fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
            StdDisk.create_dir_all(dir)
        }
        fn is_dir(&self, path: &Path) -> bool {
            StdDisk.is_dir(path)
        }
        fn open_append(&self, path: &Path) -> io::Result<RecordedFile> {
            Ok(RecordedFile(StdDisk.open_append(path)?, name(path)))
        }
        fn remove_file(&self, path: &Path) -> io::Result<()> {
            StdDisk.remove_file(path)
        }
        fn sync_data(&self, file: &RecordedFile) -> io::Result<()> {
            self.0.lock().unwrap().push(format!("data {}", file.1));
            StdDisk.sync_data(&file.0)
        }
        fn sync_dir(&self, dir: &Path) -> io::Result<()> {
            self.0.lock().unwrap().push(format!("dir {}", name(dir)));
            StdDisk.sync_dir(dir)
        }
    }

    impl Recording {
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut self.0.lock().unwrap())
        }
    }

    #[test]
    fn a_new_directory_is_made_durable_up_to_the_one_that_existed() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Recording::default();
        let mut t = Transcripts::on(disk.clone(), dir.path().join("new/transcripts"));
        t.prepare().unwrap();
        let top = name(dir.path());
        assert_eq!(
            disk.take(),
            ["dir transcripts", "dir new", &format!("dir {top}")]
        );
        // Prepared again, it exists: nothing to make durable.
        t.prepare().unwrap();
        assert_eq!(disk.take(), Vec::<String>::new());
    }

    #[test]
    fn sync_makes_every_file_written_durable_and_new_entries_too() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Recording::default();
        let mut t = Transcripts::on(disk.clone(), dir.path());
        t.prepare().unwrap();
        disk.take();
        t.append("a.log", "one").unwrap();
        t.append("a.log", "two").unwrap();
        t.append("b.log", "other").unwrap();
        assert_eq!(disk.take(), Vec::<String>::new(), "nothing synced yet");
        t.sync().unwrap();
        let top = name(dir.path());
        assert_eq!(
            disk.take(),
            ["data a.log", "data b.log", &format!("dir {top}")]
        );
        t.append("a.log", "three").unwrap();
        t.sync().unwrap();
        assert_eq!(disk.take(), ["data a.log"], "no new entry");
        t.sync().unwrap();
        assert_eq!(disk.take(), Vec::<String>::new(), "nothing new");
    }

    #[test]
    fn a_file_closed_to_make_room_is_made_durable_first() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Recording::default();
        let mut t = Transcripts::on(disk.clone(), dir.path());
        t.prepare().unwrap();
        for i in 0..=OPEN_FILES {
            t.append(&format!("{i}.log"), "line").unwrap();
        }
        assert_eq!(disk.take(), ["data 0.log"]);
    }

    fn prepared(dir: &Path) -> Transcripts {
        let mut t = Transcripts::new(dir);
        t.prepare().unwrap();
        t
    }

    #[test]
    fn lines_are_appended_one_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = prepared(&dir.path().join("sub/dir"));
        t.append("a.log", "one").unwrap();
        t.append("b.log", "other").unwrap();
        t.append("a.log", "two").unwrap();
        let a = std::fs::read_to_string(dir.path().join("sub/dir/a.log")).unwrap();
        assert_eq!(a, "one\ntwo\n");
    }

    #[test]
    fn more_files_than_the_cache_holds_still_append() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = prepared(dir.path());
        for round in 0..2 {
            for i in 0..(OPEN_FILES + 3) {
                t.append(&format!("{i}.log"), &format!("r{round}")).unwrap();
            }
        }
        let first = std::fs::read_to_string(dir.path().join("0.log")).unwrap();
        assert_eq!(first, "r0\nr1\n");
    }

    #[test]
    fn names_that_leave_the_directory_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = prepared(dir.path());
        assert!(t.append("../x.log", "no").is_err());
        assert!(t.append("a/b.log", "no").is_err());
        assert!(t.append("..", "no").is_err());
    }

    #[test]
    fn a_directory_that_cannot_be_created_is_an_error_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let err = Transcripts::new(file.join("transcripts"))
            .prepare()
            .unwrap_err();
        assert!(matches!(err, TranscriptsError::CreateDir { .. }), "{err}");
        assert!(err.to_string().contains("--transcripts"));
    }
}
