//! Appending transcript lines to files, for the peer driver.
//!
//! The core formats every line and names every file; this only puts the
//! bytes on disk. Each line goes out with one `write_all` of `line + "\n"`
//! on a file opened in append mode, so a line is never interleaved with
//! another writer's and a crash leaves at worst one truncated last line.
//!
//! Writes are synchronous `std::fs` calls on purpose: `tokio::fs` hands
//! each call to a blocking thread pool, which would bring real threads and
//! real scheduling into a driver that must run deterministically under
//! turmoil. A transcript line is a small append, and the driver must not
//! send a receipt before the line is written anyway. The write reaches the
//! operating system (not a buffer in this process) before a receipt goes
//! out; it is not `fsync`ed, which would cost a disk flush per message.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
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

/// The transcripts directory of one peer and its open files.
#[derive(Debug)]
pub struct Transcripts {
    dir: PathBuf,
    /// File name → (last use, file).
    open: BTreeMap<String, (u64, File)>,
    uses: u64,
}

impl Transcripts {
    /// Creates `dir` if needed and checks that files can be created in it,
    /// so that a bad directory is a clear error at start-up rather than a
    /// message silently not recorded in the middle of a chat.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, TranscriptsError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| TranscriptsError::CreateDir {
            dir: dir.clone(),
            source,
        })?;
        let probe = dir.join(".natter-write-test");
        let written = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&probe)
            .and_then(|mut f| f.write_all(b"ok\n"));
        let _ = std::fs::remove_file(&probe);
        written.map_err(|source| TranscriptsError::NotWritable {
            dir: dir.clone(),
            source,
        })?;
        Ok(Self {
            dir,
            open: BTreeMap::new(),
            uses: 0,
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
        self.uses += 1;
        let uses = self.uses;
        if !self.open.contains_key(file) {
            if self.open.len() >= OPEN_FILES {
                let oldest = self
                    .open
                    .iter()
                    .min_by_key(|(_, (used, _))| *used)
                    .map(|(name, _)| name.clone());
                if let Some(oldest) = oldest {
                    self.open.remove(&oldest);
                }
            }
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join(file))?;
            self.open.insert(file.to_string(), (uses, f));
        }
        let (used, f) = self.open.get_mut(file).expect("inserted above");
        *used = uses;
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        let result = f.write_all(&bytes);
        if result.is_err() {
            // Reopen next time rather than keep a handle in a bad state.
            self.open.remove(file);
        }
        result
    }
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

    #[test]
    fn lines_are_appended_one_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Transcripts::open(dir.path().join("sub/dir")).unwrap();
        t.append("a.log", "one").unwrap();
        t.append("b.log", "other").unwrap();
        t.append("a.log", "two").unwrap();
        let a = std::fs::read_to_string(dir.path().join("sub/dir/a.log")).unwrap();
        assert_eq!(a, "one\ntwo\n");
    }

    #[test]
    fn more_files_than_the_cache_holds_still_append() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Transcripts::open(dir.path()).unwrap();
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
        let mut t = Transcripts::open(dir.path()).unwrap();
        assert!(t.append("../x.log", "no").is_err());
        assert!(t.append("a/b.log", "no").is_err());
        assert!(t.append("..", "no").is_err());
    }

    #[test]
    fn a_directory_that_cannot_be_created_is_an_error_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let err = Transcripts::open(file.join("transcripts")).unwrap_err();
        assert!(matches!(err, TranscriptsError::CreateDir { .. }), "{err}");
        assert!(err.to_string().contains("--transcripts"));
    }
}
