//! natter's [`Disk`] on turmoil's simulated disk (`unstable-fs`): each
//! host has its own, and `sim.crash` loses whatever was not synced (data
//! not `sync_data`ed, files whose directory was not synced), as switching
//! a machine off would. A test can therefore prove that a receipt means
//! the line survives a crash, not only a killed process.

use natter_net_real::Disk;
use std::io;
use std::path::{Path, PathBuf};
use turmoil::fs::shim::std::fs as sim_fs;
use turmoil::fs::FsHandle;

/// The simulated disk of the host the code runs on.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimDisk;

impl Disk for SimDisk {
    type File = sim_fs::File;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        sim_fs::create_dir_all(dir)
    }

    fn is_dir(&self, path: &Path) -> bool {
        sim_fs::metadata(path).is_ok_and(|m| m.is_dir())
    }

    fn open_append(&self, path: &Path) -> io::Result<sim_fs::File> {
        sim_fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        sim_fs::remove_file(path)
    }

    fn sync_data(&self, file: &sim_fs::File) -> io::Result<()> {
        file.sync_data()
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        sim_fs::sync_dir(dir)
    }
}

/// A host's disk, kept by the test to read it from outside the simulation
/// (after a crash: what the disk kept).
pub struct HostDisk(FsHandle);

impl HostDisk {
    /// The disk of the host the calling code runs on.
    pub fn current() -> Self {
        Self(FsHandle::current())
    }

    /// Every file in `dir` with its text, by file name. Call it between
    /// simulation steps, never from inside a host.
    pub fn files(&self, dir: &Path) -> Vec<(String, String)> {
        let _on_this_disk = self.0.enter();
        let mut paths: Vec<PathBuf> = sim_fs::read_dir(dir)
            .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        paths.sort();
        paths
            .iter()
            .map(|path| {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                let text = sim_fs::read_to_string(path).expect("transcripts are UTF-8");
                (name.into_owned(), text)
            })
            .collect()
    }
}
