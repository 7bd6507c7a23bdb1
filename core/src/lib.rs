//! natter's protocol logic as sans-IO state machines.
//!
//! Nothing in this crate touches a socket, a runtime or a clock: time enters
//! only as [`Now`] arguments, bytes enter as slices and leave as
//! [`Vec<u8>`] outputs. Two machines share one shape (see
//! `docs/ARCHITECTURE.md`):
//!
//! - [`Registry`]: the directory server's brain.
//! - [`Peer`]: one chat peer's brain.
//!
//! Each has `handle_input(now, input)`, `handle_timeout(now)`,
//! `poll_output()` (drain until `None` after every `handle_*`) and
//! `poll_timeout()`.

pub mod codec;
pub mod command;
pub mod drive;
pub mod event;
pub mod heartbeat;
pub mod identity;
pub mod link;
pub mod peer;
pub mod protocol;
pub mod rate;
pub mod registry;
pub mod secure;
pub mod text;
pub mod time;
pub mod transcript;

pub use codec::{encode, DecodeError, FrameDecoder};
pub use command::Command;
pub use event::{
    ChatEndReason, EndCause, ErrorDetail, Event, ListedPeer, Problem, Request, ServerFailure,
};
pub use heartbeat::HeartbeatConfig;
pub use identity::{safety_number, Fingerprint, Identity, PublicKey};
pub use link::LinkId;
pub use peer::{ChatTimer, Peer, PeerConfig, PeerInput, PeerOutput, Timer, TranscriptWrite};
pub use protocol::{ErrorCode, PeerInfo, PeerStatus, PROTOCOL_VERSION};
pub use registry::{Registry, RegistryConfig, RegistryInput, RegistryLog, RegistryOutput};
pub use secure::{LinkKind, LinkSeeds, SecureError, SecureLink};
pub use time::Now;
