//! Files and directories only their owner may use: keys, pins and name
//! bindings. One place, so every such file gets the same modes (0600 for
//! files, 0700 for directories, set when created, never chmod-ed after).

use std::fs::{DirBuilder, OpenOptions};

/// Options that create a file (if asked to create) readable by its owner
/// only; the caller adds how it opens it (write, append, create_new…).
pub(crate) fn file() -> OpenOptions {
    #[allow(unused_mut)] // only unix sets a mode
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Creates a directory, and its missing parents, only its owner may enter.
pub(crate) fn dir() -> DirBuilder {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
}
