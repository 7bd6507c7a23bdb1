//! The known_peers and known_servers files: the keys a peer pinned for the
//! names it chatted with and for the server addresses it registered at
//! (trust on first use, like SSH's known_hosts), kept across runs.
//!
//! One line per pin: `NAME KEY` (the name in lower case) or `ADDR KEY`
//! (`IP:PORT`), the key as 64 hex digits; `#` starts a comment. A pin is
//! appended (and synced) when a name or a server is met for the first
//! time; to forget a pin, delete its line.

use natter_core::PublicKey;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Both pin files of one peer identity.
#[derive(Clone, Debug)]
pub struct Pins {
    /// Keys by peer name (`known_peers`).
    pub peers: PinFile,
    /// Keys by server address (`known_servers`).
    pub servers: PinFile,
}

impl Pins {
    /// The pin files in `dir` (the name's directory, beside its key).
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            peers: PinFile::new(dir.join("known_peers")),
            servers: PinFile::new(dir.join("known_servers")),
        }
    }
}

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

    /// The pins of names in the file; none if it does not exist yet. A
    /// line that is not `NAME KEY` is an error naming the line, never
    /// skipped: a pin silently lost would let another key in unnoticed.
    pub fn load(&self) -> Result<BTreeMap<String, PublicKey>, String> {
        self.load_with("NAME KEY", |name| {
            natter_core::text::is_valid_name(name).then(|| name.to_ascii_lowercase())
        })
    }

    /// The pins of server addresses in the file, as [`PinFile::load`].
    pub fn load_servers(&self) -> Result<BTreeMap<SocketAddr, PublicKey>, String> {
        self.load_with("IP:PORT KEY", |addr| addr.parse().ok())
    }

    /// Every `LABEL KEY` line, the label read by `label`.
    fn load_with<L: Ord>(
        &self,
        form: &str,
        label: impl Fn(&str) -> Option<L>,
    ) -> Result<BTreeMap<L, PublicKey>, String> {
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
                Some((label(name)?, key))
            });
            let Some((name, key)) = parsed else {
                return Err(format!(
                    "{} line {}: not `{form}`",
                    self.path.display(),
                    i + 1
                ));
            };
            pins.insert(name, key);
        }
        Ok(pins)
    }

    /// Appends a pin for `label` (a name or a server address) and makes
    /// it durable (file mode 0600 when created).
    pub fn append(&self, label: &str, key: PublicKey) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            crate::private::dir().create(dir)?;
        }
        let mut file = crate::private::file()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(format!("{label} {key}\n").as_bytes())?;
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
