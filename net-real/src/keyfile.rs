//! The key file of a peer or a server: its long-term identity, created on
//! first use.
//!
//! Format (text, so a person can tell what the file is and copy it between
//! machines as SSH and WireGuard users do with theirs): comment lines
//! starting with `#`, blank lines, and exactly one line of 64 hex digits,
//! the X25519 secret. natter writes
//!
//! ```text
//! # natter identity key: an X25519 secret, in hex. Keep it private:
//! # whoever has this file can be you. natter id prints its fingerprint.
//! 3f0c…(64 hex digits)
//! ```
//!
//! A new key is 32 bytes from the operating system's random source: this
//! code runs in real processes only (a simulation derives its users' keys
//! from its seed with `Identity::from_seed`). On unix the file is created
//! with mode 0600 in one step (never widened then narrowed), its missing
//! parent directories with 0700. An existing file is never overwritten:
//! if it is not a valid key, loading fails and says so, and the user
//! decides what to do with it.

use natter_core::identity::{Identity, KEY_LEN};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The comment natter puts above a key it creates.
const HEADER: &str = "# natter identity key: an X25519 secret, in hex. Keep it private:\n\
                      # whoever has this file can be you. natter id prints its fingerprint.\n";

/// A key file is a few lines; anything longer is something else.
const MAX_FILE_LEN: u64 = 4096;

/// A key file that cannot be used.
#[derive(Debug, Error)]
pub enum KeyFileError {
    #[error("cannot read the key file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is not a natter key file: {problem}; natter will not overwrite it: move it away, or choose another with --identity FILE")]
    Invalid {
        path: PathBuf,
        problem: &'static str,
    },
    #[error("cannot create the key file {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot get random bytes for a new key from the operating system: {0}")]
    Random(getrandom::Error),
}

/// An identity read from its key file, or made and saved just now.
#[derive(Debug)]
pub struct LoadedIdentity {
    pub identity: Identity,
    /// Whether the file did not exist and was created: a new identity,
    /// which the user may want to be told about.
    pub created: bool,
}

/// The identity in `path`, created there (with its directories) if the
/// file does not exist yet.
/// A fresh seed for a peer's random choices (the ephemeral keys of its
/// links): from the operating system, never reused across runs.
pub fn random_seed() -> Result<[u8; KEY_SEED], KeyFileError> {
    let mut seed = [0u8; KEY_SEED];
    getrandom::fill(&mut seed).map_err(KeyFileError::Random)?;
    Ok(seed)
}

/// Length of a seed.
const KEY_SEED: usize = 32;

pub fn load_or_create(path: &Path) -> Result<LoadedIdentity, KeyFileError> {
    match File::open(path) {
        Ok(file) => Ok(LoadedIdentity {
            identity: read(path, file)?,
            created: false,
        }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => create(path),
        Err(source) => Err(KeyFileError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

fn read(path: &Path, file: File) -> Result<Identity, KeyFileError> {
    let invalid = |problem| KeyFileError::Invalid {
        path: path.to_owned(),
        problem,
    };
    let mut bytes = Vec::new();
    file.take(MAX_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| KeyFileError::Read {
            path: path.to_owned(),
            source,
        })?;
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(invalid("it is too large"));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| invalid("it is not text"))?;
    let mut keys = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'));
    let key = keys.next().ok_or_else(|| invalid("it has no key line"))?;
    if keys.next().is_some() {
        return Err(invalid("it has more than one key line"));
    }
    let secret: [u8; KEY_LEN] = data_encoding::HEXLOWER_PERMISSIVE
        .decode(key.as_bytes())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| invalid("its key line is not 64 hex digits"))?;
    Ok(Identity::from_secret(secret))
}

fn create(path: &Path) -> Result<LoadedIdentity, KeyFileError> {
    let failed = |source| KeyFileError::Create {
        path: path.to_owned(),
        source,
    };
    let mut secret = [0; KEY_LEN];
    getrandom::fill(&mut secret).map_err(KeyFileError::Random)?;
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        crate::private::dir().create(dir).map_err(failed)?;
    }
    // `create_new`: never replace a file, even one another process
    // creates between our open and this one.
    let mut file = match crate::private::file()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            // Another process got there first: its key is the key.
            return load_or_create(path);
        }
        Err(source) => return Err(failed(source)),
    };
    let text = format!("{HEADER}{}\n", data_encoding::HEXLOWER.encode(&secret));
    // One write, then to disk: a key that a crash could lose would give
    // the user a new identity on the next start.
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(failed)?;
    Ok(LoadedIdentity {
        identity: Identity::from_secret(secret),
        created: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn first_use_creates_the_key_and_the_next_loads_the_same_one() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("data/peers/alice/identity");
        let first = load_or_create(&path).unwrap();
        assert!(first.created);
        let again = load_or_create(&path).unwrap();
        assert!(!again.created);
        assert_eq!(again.identity.public(), first.identity.public());

        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# natter identity key"), "{text}");
        assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 1);

        let other = load_or_create(&root.path().join("data/peers/bob/identity")).unwrap();
        assert_ne!(other.identity.public(), first.identity.public());
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_is_private_and_so_are_the_directories_made_for_it() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("data/server/identity");
        load_or_create(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&root.path().join("data/server")), 0o700);
        assert_eq!(mode(&root.path().join("data")), 0o700);
    }

    #[test]
    fn a_file_that_is_not_a_key_is_refused_and_left_as_it_was() {
        let cases: [(&[u8], &str); 6] = [
            (b"", "no key line"),
            (b"# only a comment\n", "no key line"),
            (b"abcd\n", "not 64 hex digits"),
            (&[0xab; 32], "not text"),
            (&[b'a'; 5000], "too large"),
            (b"aa\nbb\n", "more than one key line"),
        ];
        for (content, problem) in cases {
            let root = tempfile::tempdir().unwrap();
            let path = root.path().join("identity");
            fs::write(&path, content).unwrap();
            let error = load_or_create(&path).unwrap_err();
            assert!(
                matches!(&error, KeyFileError::Invalid { problem: p, .. } if p.contains(problem)),
                "{error}"
            );
            assert!(error.to_string().contains("--identity"), "{error}");
            assert_eq!(fs::read(&path).unwrap(), content, "never overwritten");
        }
    }

    #[test]
    fn a_hand_written_key_file_loads() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("identity");
        // RFC 7748's test key, upper case, with comments and blank lines.
        let secret = "77076D0A7318A57D3C16C17251B26645DF4C2F87EBC0992AB177FBA51DB92C2A";
        fs::write(&path, format!("# mine\n\n  {secret}  \n# end\n")).unwrap();
        let loaded = load_or_create(&path).unwrap();
        assert_eq!(
            loaded.identity.public().to_string(),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
    }

    #[test]
    fn a_path_that_cannot_be_read_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        let error = load_or_create(root.path()).unwrap_err();
        assert!(matches!(error, KeyFileError::Read { .. }), "{error}");
    }
}
