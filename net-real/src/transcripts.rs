//! Appending transcript lines to files and making them durable, for the
//! peer driver, on any [`Disk`].
//!
//! The core formats every line and names every file; this puts the bytes
//! on disk. Each line goes out as `line + "\n"`; the lines the driver has
//! for one file at once (those of one drain of the peer: a burst of
//! messages) go in one write on a file opened in append mode, so a line
//! is never interleaved with another writer's and a burst costs one
//! system call. A line's newline is its last byte written: a line is
//! whole only once it has it. A process killed in the middle of a write
//! (the kernel stops a write between pages for SIGKILL) leaves the start
//! of a line as the file's last line, *without* a newline; readers take
//! such a final line for incomplete (docs/LIMITS.md), and no later line
//! is ever appended to it, since a new process writes new files. Within a
//! process, a write that fails half-way (disk full) keeps the lines it
//! wrote whole, and has the start of the next one cut off again before
//! more goes to that file; a disk that cannot cut it gets no more lines
//! in that file.
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
    /// Files that end with the start of a line that could not be cut off:
    /// nothing more is appended to them (it would continue that line).
    torn: BTreeSet<String>,
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
            torn: BTreeSet::new(),
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
        self.append_all(file, &[line]).map_err(|(_, e)| e)
    }

    /// Appends `lines`, in order, a newline added to each, to `file` in
    /// the directory, in one write. On failure, also says how many of the
    /// lines, from the first, are in the file whole; none of the others
    /// is, not even its start.
    pub fn append_all(&mut self, file: &str, lines: &[&str]) -> Result<(), (usize, io::Error)> {
        // A file already open passed this check when it was opened.
        if !self.open.contains_key(file) && !is_plain_file_name(file) {
            let e = io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{file:?} is not a plain file name"),
            );
            return Err((0, e));
        }
        self.write(file, lines)
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

    fn write(&mut self, file: &str, lines: &[&str]) -> Result<(), (usize, io::Error)> {
        if self.torn.contains(file) {
            let e = io::Error::other(format!(
                "{} ends with an incomplete line that could not be removed; later lines of this chat are not written to it",
                self.dir.join(file).display()
            ));
            return Err((0, e));
        }
        self.uses += 1;
        let uses = self.uses;
        if !self.open.contains_key(file) {
            if self.open.len() >= OPEN_FILES {
                self.close_oldest();
            }
            let f = self
                .disk
                .open_append(&self.dir.join(file))
                .map_err(|e| (0, e))?;
            self.new_entries = true;
            self.open.insert(file.to_string(), (uses, f));
        }
        let (used, f) = self.open.get_mut(file).expect("inserted above");
        *used = uses;
        let size = lines.iter().map(|line| line.len() + 1).sum();
        let mut bytes = Vec::with_capacity(size);
        for line in lines {
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
        }
        if !self.unsynced.contains(file) {
            self.unsynced.insert(file.to_string());
        }
        let (written, result) = write_counted(f, &bytes);
        let Err(e) = result else {
            return Ok(());
        };
        // The lines written whole stay; the start of the next one must not
        // become the start of a later line: cut it off, or write no more
        // to this file.
        let (whole, whole_bytes) = whole_lines(lines, written);
        let part = written - whole_bytes;
        if part > 0 && self.disk.cut_tail(f, part as u64).is_err() {
            self.torn.insert(file.to_string());
        }
        // Reopen next time rather than keep a handle in a bad state.
        self.close(file);
        Err((whole, e))
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

/// Bytes that `name`'s transcripts in `dir` started on the UTC day of
/// `now` hold: what this peer wrote earlier today, counted towards its
/// daily quota (core's `PeerConfig::transcript_used_today`) so that a
/// restart does not start the day afresh. A chat started yesterday and
/// still going is not counted. An unreadable directory counts as nothing
/// (it is reported when the peer prepares it). Which files are this
/// name's: see [`is_chat_of`].
pub fn written_today(dir: &Path, name: &str, now: std::time::SystemTime) -> u64 {
    let since_epoch = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let today = natter_core::time::rfc3339_millis(since_epoch);
    let day = &today[..10];
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| {
            let file = entry.file_name();
            let file = file.to_string_lossy();
            file.starts_with(day) && is_chat_of(&entry.path(), name, None)
        })
        .filter_map(|entry| entry.metadata().ok())
        .map(|meta| meta.len())
        .sum()
}

/// Whether the transcript file at `path` is one of `me`'s chats (with
/// `peer`, or with anyone for `None`), names compared regardless of case.
/// The file name (`START_ME_PEER.log`) says so when it can; names may
/// hold `_`, and when the name could also be another pair's (`work` with
/// `bob_carol`, `work_bob` with `carol`), the file's first line, `START
/// chat started: ME …`, says whose it is (read at most its first 512
/// bytes: the line is shorter).
pub fn is_chat_of(path: &Path, me: &str, peer: Option<&str>) -> bool {
    use natter_core::transcript::{file_name_says, started_names, FileNameSays};
    use std::io::Read;
    let Some(file) = path.file_name().and_then(|file| file.to_str()) else {
        return false;
    };
    match file_name_says(file, me, peer) {
        FileNameSays::No => false,
        FileNameSays::Yes => true,
        FileNameSays::Maybe => {
            let mut head = [0u8; 512];
            let Ok(read) = std::fs::File::open(path).and_then(|mut f| f.read(&mut head)) else {
                return false;
            };
            let head = String::from_utf8_lossy(&head[..read]);
            let first = head.lines().next().unwrap_or_default();
            started_names(first).is_some_and(|(m, p)| {
                m.eq_ignore_ascii_case(me) && peer.is_none_or(|peer| p.eq_ignore_ascii_case(peer))
            })
        }
    }
}

/// Writes all of `bytes` (in one `write` as a rule: a regular file takes
/// it whole unless the disk fills or the process is killed); returns how
/// many were written, with the error that stopped it.
fn write_counted(f: &mut impl Write, bytes: &[u8]) -> (usize, io::Result<()>) {
    let mut written = 0;
    while written < bytes.len() {
        match f.write(&bytes[written..]) {
            Ok(0) => return (written, Err(io::ErrorKind::WriteZero.into())),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (written, Err(e)),
        }
    }
    (written, Ok(()))
}

/// How many of `lines` (each written with its newline) the first
/// `written` bytes hold whole, and how many bytes those are.
fn whole_lines(lines: &[&str], written: usize) -> (usize, usize) {
    let mut end = 0;
    for (i, line) in lines.iter().enumerate() {
        if end + line.len() + 1 > written {
            return (i, end);
        }
        end += line.len() + 1;
    }
    (lines.len(), end)
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

    /// The machine's disk, full after `room` more bytes: a write stops
    /// half-way there, as when the disk fills (or a kill stops it).
    #[derive(Clone)]
    struct Filling {
        room: Arc<Mutex<usize>>,
        cuttable: bool,
    }

    struct FillingFile(std::fs::File, Arc<Mutex<usize>>);

    impl Write for FillingFile {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut room = self.1.lock().unwrap();
            if *room == 0 {
                return Err(io::Error::other("no space left on device"));
            }
            let n = buf.len().min(*room);
            *room -= n;
            self.0.write(&buf[..n])
        }
        fn flush(&mut self) -> io::Result<()> {
            self.0.flush()
        }
    }

    impl Disk for Filling {
        type File = FillingFile;
        fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
            StdDisk.create_dir_all(dir)
        }
        fn is_dir(&self, path: &Path) -> bool {
            StdDisk.is_dir(path)
        }
        fn open_append(&self, path: &Path) -> io::Result<FillingFile> {
            Ok(FillingFile(
                StdDisk.open_append(path)?,
                Arc::clone(&self.room),
            ))
        }
        fn remove_file(&self, path: &Path) -> io::Result<()> {
            StdDisk.remove_file(path)
        }
        fn sync_data(&self, file: &FillingFile) -> io::Result<()> {
            StdDisk.sync_data(&file.0)
        }
        fn sync_dir(&self, dir: &Path) -> io::Result<()> {
            StdDisk.sync_dir(dir)
        }
        fn cut_tail(&self, file: &FillingFile, bytes: u64) -> io::Result<()> {
            if !self.cuttable {
                return Err(io::ErrorKind::Unsupported.into());
            }
            StdDisk.cut_tail(&file.0, bytes)
        }
    }

    /// Transcripts prepared in a new directory on a [`Filling`] disk with
    /// room to spare until the test sets the room left.
    fn on_filling_disk(
        cuttable: bool,
    ) -> (tempfile::TempDir, Arc<Mutex<usize>>, Transcripts<Filling>) {
        let dir = tempfile::tempdir().unwrap();
        let room = Arc::new(Mutex::new(usize::MAX));
        let disk = Filling {
            room: Arc::clone(&room),
            cuttable,
        };
        let mut t = Transcripts::on(disk, dir.path());
        t.prepare().unwrap();
        (dir, room, t)
    }

    #[test]
    fn a_line_cut_short_by_a_full_disk_never_becomes_the_start_of_the_next() {
        for cuttable in [true, false] {
            let (dir, room, mut t) = on_filling_disk(cuttable);
            t.append("a.log", "one").unwrap();
            *room.lock().unwrap() = 10;
            assert!(t.append("a.log", &"x".repeat(100)).is_err());
            *room.lock().unwrap() = usize::MAX;
            let next = t.append("a.log", "two");
            let text = std::fs::read_to_string(dir.path().join("a.log")).unwrap();
            if cuttable {
                next.unwrap();
                assert_eq!(text, "one\ntwo\n", "the start of the failed line is gone");
            } else {
                let err = next.unwrap_err();
                assert!(err.to_string().contains("incomplete line"), "{err}");
                assert_eq!(text, format!("one\n{}", "x".repeat(10)), "nothing glued on");
            }
        }
    }

    #[test]
    fn a_full_disk_keeps_the_lines_written_whole_and_cuts_the_start_of_the_next() {
        for cuttable in [true, false] {
            let (dir, room, mut t) = on_filling_disk(cuttable);
            t.append("a.log", "zero").unwrap();
            // Room for "one\ntwo\nth": two lines whole, then the start of
            // the third.
            *room.lock().unwrap() = 10;
            let (written, _) = t
                .append_all("a.log", &["one", "two", "three", "four"])
                .unwrap_err();
            assert_eq!(written, 2);
            *room.lock().unwrap() = usize::MAX;
            let next = t.append("a.log", "five");
            let text = std::fs::read_to_string(dir.path().join("a.log")).unwrap();
            if cuttable {
                next.unwrap();
                assert_eq!(text, "zero\none\ntwo\nfive\n");
            } else {
                assert!(next.is_err());
                assert_eq!(text, "zero\none\ntwo\nth", "nothing glued on");
            }
        }
    }

    #[test]
    fn whole_lines_are_counted_up_to_the_first_cut_short() {
        let lines = ["ab", "c", ""];
        assert_eq!(whole_lines(&lines, 0), (0, 0));
        assert_eq!(whole_lines(&lines, 2), (0, 0));
        assert_eq!(whole_lines(&lines, 3), (1, 3));
        assert_eq!(whole_lines(&lines, 4), (1, 3));
        assert_eq!(whole_lines(&lines, 5), (2, 5));
        assert_eq!(whole_lines(&lines, 6), (3, 6));
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

    #[test]
    fn the_day_quota_counts_only_this_names_files_whatever_their_case() {
        // Before: for `bob`, `bob_work`'s files counted too (`…_bob_work_
        // carol.log` starts with `bob_`), and `Bob`'s files did not.
        let dir = tempfile::tempdir().unwrap();
        let write = |file: &str, first: &str, len: usize| {
            let mut text = format!("2026-12-06T08:00:00.000Z chat started: {first}\n");
            text.push_str(&"x".repeat(len - text.len()));
            std::fs::write(dir.path().join(file), text).unwrap();
        };
        let stamp = "2026-12-06T08-00-00.000Z";
        write(
            &format!("{stamp}_bob_carol.log"),
            "bob called carol at 10.0.0.9:4000 (key k)",
            1000,
        );
        write(
            &format!("{stamp}_Bob_dave.log"),
            "Bob called dave at 10.0.0.9:4000 (key k)",
            200,
        );
        // bob talking to `work_carol`: his.
        write(
            &format!("{stamp}_bob_work_carol.log"),
            "bob called work_carol at 10.0.0.9:4000 (key k)",
            130,
        );
        // `bob_work` talking to `carol`: not his.
        write(
            &format!("{stamp}_bob_work_carol2.log"),
            "bob_work called carol2 at 10.0.0.9:4000 (key k)",
            4000,
        );
        write(
            &format!("{stamp}_bob_work_x.log"),
            "bob_work called x at 10.0.0.9:4000 (key k)",
            5000,
        );
        write(
            &format!("{stamp}_bobby_carol.log"),
            "bobby called carol at 10.0.0.9:4000 (key k)",
            7000,
        );
        // Yesterday's, and not a transcript.
        write(
            "2026-12-05T23-59-00.000Z_bob_carol.log",
            "bob called carol at 10.0.0.9:4000 (key k)",
            9000,
        );
        write(
            &format!("{stamp}_bob_carol.txt"),
            "bob called carol at 10.0.0.9:4000 (key k)",
            9000,
        );
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_544_000 + 12 * 3600);
        assert_eq!(written_today(dir.path(), "bob", now), 1330);
        assert_eq!(written_today(dir.path(), "BOB", now), 1330);
        assert_eq!(written_today(dir.path(), "bob_work", now), 4000 + 5000);
    }
}
