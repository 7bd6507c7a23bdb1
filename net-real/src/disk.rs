//! The file system a peer keeps its files on, as a trait: the real one
//! ([`StdDisk`]) in production, turmoil's simulated disk in
//! `natter-net-sim`, where unsynced writes are lost when a host crashes.
//! What is written and when it must be durable is decided once, in
//! [`crate::Transcripts`]; a disk only carries the calls out.
//!
//! Calls are synchronous on purpose: `tokio::fs` hands each call to a
//! blocking thread pool, which would bring real threads and real
//! scheduling into a driver that must run deterministically under turmoil.
//! A transcript line is a small append, and the driver must not send a
//! receipt before the line is durable anyway.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// A file system.
pub trait Disk: Send + 'static {
    /// A file open for appending.
    type File: Write + Send + 'static;

    /// Creates `dir` and any missing parent.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    fn is_dir(&self, path: &Path) -> bool;
    /// Opens `path` for appending, creating it if needed.
    fn open_append(&self, path: &Path) -> io::Result<Self::File>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes what was written to `file` durable (`fdatasync`).
    fn sync_data(&self, file: &Self::File) -> io::Result<()>;
    /// Makes the entries of `dir` (files created in it) durable: a new
    /// file whose data is synced is still lost in a crash until then.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Cuts the last `bytes` bytes off `file`: the start of a line whose
    /// write failed half-way, so the next line does not continue it. A
    /// disk that cannot says so (the file is then written no more).
    fn cut_tail(&self, _file: &Self::File, _bytes: u64) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this disk cannot cut a file short",
        ))
    }
}

/// The machine's own file system (`std::fs`).
#[derive(Clone, Copy, Debug, Default)]
pub struct StdDisk;

impl Disk for StdDisk {
    type File = File;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn open_append(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new().create(true).append(true).open(path)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_data(&self, file: &File) -> io::Result<()> {
        file.sync_data()
    }

    fn cut_tail(&self, file: &File, bytes: u64) -> io::Result<()> {
        let len = file.metadata()?.len();
        file.set_len(len.saturating_sub(bytes))
    }

    #[cfg(unix)]
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    /// Windows cannot open a directory as a file; NTFS journals the
    /// entry with the file's metadata.
    #[cfg(not(unix))]
    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
}
