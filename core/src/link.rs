//! Identity of one connection, as seen by a state machine.

use serde::Serialize;
use std::fmt;

/// One TCP connection. The driver maps it to a socket; the state machines
/// only ever see this number, so they can be tested without sockets.
///
/// Ids are never reused within one machine's lifetime, which makes a late
/// event for a closed link harmless: the machine no longer knows the id and
/// ignores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct LinkId(pub u64);

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "link#{}", self.0)
    }
}
