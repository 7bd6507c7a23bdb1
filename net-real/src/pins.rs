//! The known_peers file: the keys a peer pinned for the names it chatted
//! with (trust on first use, like SSH's known_hosts), kept across runs.
//!
//! One line per name: `NAME KEY`, the name in lower case and the key as 64
//! hex digits; `#` starts a comment. A pin is appended (and synced) when a
//! name is met for the first time; to forget a pin, delete its line.

use natter_core::PublicKey;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A known_peers file.
#[derive(Clone, Debug)]
pub struct PinFile {
    path: PathBuf,
}

impl PinFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pins in the file; none if it does not exist yet. A line that
    /// is not `NAME KEY` is an error naming the line, never skipped: a
    /// pin silently lost would let another key in unnoticed.
    pub fn load(&self) -> Result<BTreeMap<String, PublicKey>, String> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(format!("{}: {e}", self.path.display())),
        };
        let mut pins = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parsed = line.split_once(' ').and_then(|(name, key)| {
                let key: PublicKey = key.trim().parse().ok()?;
                natter_core::text::is_valid_name(name).then(|| (name.to_ascii_lowercase(), key))
            });
            let Some((name, key)) = parsed else {
                return Err(format!(
                    "{} line {}: not `NAME KEY`",
                    self.path.display(),
                    i + 1
                ));
            };
            pins.insert(name, key);
        }
        Ok(pins)
    }

    /// Appends a pin and makes it durable (file mode 0600 when created).
    pub fn append(&self, name: &str, key: PublicKey) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            crate::private::dir().create(dir)?;
        }
        let mut file = crate::private::file()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(format!("{name} {key}\n").as_bytes())?;
        file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_core::Identity;

    #[test]
    fn pins_appended_are_loaded_again_and_a_bad_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = PinFile::new(dir.path().join("alice/known_peers"));
        assert!(file.load().unwrap().is_empty(), "no file yet: no pins");
        let bob = Identity::from_seed(&[2; 32]).public();
        file.append("bob", bob).unwrap();
        assert_eq!(file.load().unwrap().get("bob"), Some(&bob));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(file.path()), 0o600);
            assert_eq!(mode(file.path().parent().unwrap()), 0o700);
        }
        std::fs::write(file.path(), "bob not-a-key\n").unwrap();
        assert!(file.load().unwrap_err().contains("line 1"));
    }
}
