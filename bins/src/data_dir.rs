//! Where natter keeps what must outlive a process: identities now, pins and
//! the server's name bindings next.
//!
//! Layout of the data directory (`--data-dir DIR`, default the platform
//! data directory, e.g. `~/.local/share/natter` on Linux):
//!
//! ```text
//! DIR/peers/NAME/identity        a peer's key file (one identity per name)
//! DIR/peers/NAME/known_peers     its pins of other peers' keys (to come)
//! DIR/peers/NAME/known_servers   its pins of servers' keys (to come)
//! DIR/server/identity            the server's key file
//! DIR/server/names.sqlite        the server's name bindings
//! DIR/transcripts/               the peers' transcripts (unless --transcripts)
//! ```
//!
//! NAME is the peer's name in lower case: names are unique regardless of
//! case (`Alice` is `alice`), so both spellings are one identity, as the
//! server sees them, and two names never share a directory even on a
//! case-insensitive file system. A name is checked before it becomes a
//! path (`A-Z a-z 0-9 _ -` only), so it cannot leave `DIR/peers`.
//! `--identity FILE` replaces the key file, not the directory.

use crate::cli::IdentityArgs;
use std::path::{Path, PathBuf};

/// File name of a key file inside its directory.
const IDENTITY: &str = "identity";

/// A data directory.
#[derive(Debug, Clone)]
pub struct DataDir(PathBuf);

/// Neither `--data-dir` nor a platform data directory (HOME unset?).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoDataDir;

impl DataDir {
    /// `--data-dir`, or the platform's data directory for natter.
    pub fn from_flag(flag: Option<&Path>) -> Result<DataDir, NoDataDir> {
        match flag {
            Some(dir) => Ok(DataDir(dir.to_owned())),
            None => directories::ProjectDirs::from("", "", "natter")
                .map(|dirs| DataDir(dirs.data_dir().to_owned()))
                .ok_or(NoDataDir),
        }
    }

    /// The directory of the peer called `name`, which must be a valid name
    /// (`natter_core::text::is_valid_name`).
    pub fn peer(&self, name: &str) -> PathBuf {
        assert!(
            natter_core::text::is_valid_name(name),
            "a peer name is checked before it becomes a path: {name:?}"
        );
        self.0.join("peers").join(name.to_ascii_lowercase())
    }

    /// The peers' transcripts, unless `--transcripts` puts them elsewhere.
    pub fn transcripts(&self) -> PathBuf {
        self.0.join("transcripts")
    }

    /// The server's directory.
    pub fn server(&self) -> PathBuf {
        self.0.join("server")
    }
}

/// Whose key file to find.
#[derive(Debug, Clone, Copy)]
pub enum Owner<'a> {
    /// The peer with this (valid) name.
    Peer(&'a str),
    /// The directory server.
    Server,
}

/// The key file the flags designate for `owner`: `--identity FILE`, or its
/// `identity` file in the data directory.
pub fn identity_path(args: &IdentityArgs, owner: Owner<'_>) -> Result<PathBuf, NoDataDir> {
    if let Some(file) = &args.identity {
        return Ok(file.clone());
    }
    let dir = DataDir::from_flag(args.data_dir.as_deref())?;
    Ok(match owner {
        Owner::Peer(name) => dir.peer(name),
        Owner::Server => dir.server(),
    }
    .join(IDENTITY))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(data_dir: Option<&str>, identity: Option<&str>) -> IdentityArgs {
        IdentityArgs {
            data_dir: data_dir.map(PathBuf::from),
            identity: identity.map(PathBuf::from),
        }
    }

    #[test]
    fn a_peer_key_is_under_its_lowercase_name_and_the_server_key_apart() {
        let flags = args(Some("/d"), None);
        assert_eq!(
            identity_path(&flags, Owner::Peer("Alice")),
            Ok(PathBuf::from("/d/peers/alice/identity"))
        );
        assert_eq!(
            identity_path(&flags, Owner::Server),
            Ok(PathBuf::from("/d/server/identity"))
        );
    }

    #[test]
    fn identity_flag_replaces_the_key_file() {
        let flags = args(Some("/d"), Some("/keys/mine"));
        assert_eq!(
            identity_path(&flags, Owner::Peer("alice")),
            Ok(PathBuf::from("/keys/mine"))
        );
    }

    #[test]
    #[should_panic(expected = "checked before it becomes a path")]
    fn a_name_that_would_leave_the_directory_never_becomes_a_path() {
        DataDir::from_flag(Some(Path::new("/d")))
            .unwrap()
            .peer("../x");
    }
}
