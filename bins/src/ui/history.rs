//! The lines typed, kept across runs: `DATA/peers/NAME/history`, one line
//! each, oldest first, readable by its owner only (messages are in it).
//!
//! Each line is appended as it is entered, so a crash loses none. The file
//! is bounded: past twice [`KEEP`] lines it is rewritten with the newest
//! [`KEEP`] when natter starts.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

/// Lines the file keeps after a rewrite.
const KEEP: usize = 1000;

#[derive(Debug)]
pub struct History {
    path: PathBuf,
}

impl History {
    /// Opens (or starts) the file and returns the lines typed in earlier
    /// runs, oldest first.
    pub fn open(path: PathBuf) -> io::Result<(History, Vec<String>)> {
        let mut lines = match File::open(&path) {
            Ok(file) => io::BufReader::new(file)
                .lines()
                .collect::<io::Result<Vec<String>>>()
                .unwrap_or_default(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        if lines.len() > 2 * KEEP {
            lines.drain(..lines.len() - KEEP);
            rewrite(&path, &lines)?;
        }
        Ok((History { path }, lines))
    }

    /// Appends one entered line; a line break in it (it cannot have one:
    /// the draft splits pastes) would be dropped rather than split it.
    pub fn remember(&self, line: &str) -> io::Result<()> {
        let mut file = open_private(&self.path, false)?;
        let line: String = line.chars().filter(|c| *c != '\n' && *c != '\r').collect();
        writeln!(file, "{line}")
    }
}

fn rewrite(path: &Path, lines: &[String]) -> io::Result<()> {
    let mut file = open_private(path, true)?;
    for line in lines {
        writeln!(file, "{line}")?;
    }
    Ok(())
}

fn open_private(path: &Path, truncate: bool) -> io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = OpenOptions::new();
    options.create(true);
    if truncate {
        options.write(true).truncate(true);
    } else {
        options.append(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_entered_in_one_run_come_back_in_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peers/alice/history");
        let (history, earlier) = History::open(path.clone()).unwrap();
        assert!(earlier.is_empty());
        history.remember("/connect bob").unwrap();
        history.remember("hello").unwrap();
        let (_, earlier) = History::open(path).unwrap();
        assert_eq!(earlier, ["/connect bob", "hello"]);
    }

    #[test]
    fn the_file_is_cut_to_its_newest_lines_once_it_doubles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history");
        let (history, _) = History::open(path.clone()).unwrap();
        for i in 0..=2 * KEEP {
            history.remember(&format!("line {i}")).unwrap();
        }
        let (_, earlier) = History::open(path.clone()).unwrap();
        assert_eq!(earlier.len(), KEEP);
        assert_eq!(earlier.last().unwrap(), &format!("line {}", 2 * KEEP));
        let on_disk = std::fs::read_to_string(&path).unwrap();
        assert_eq!(on_disk.lines().count(), KEEP);
    }

    #[cfg(unix)]
    #[test]
    fn only_its_owner_can_read_the_history() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history");
        let (history, _) = History::open(path.clone()).unwrap();
        history.remember("secret").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
