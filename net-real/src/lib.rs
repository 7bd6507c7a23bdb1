//! natter's async driver: runs the sans-IO state machines of `natter-core`
//! over any [`Net`] (tokio sockets here, turmoil in `natter-net-sim`).
//!
//! - [`run_server`]: the directory server (a `Registry`).
//! - [`run_peer`]: one chat peer (a `Peer`), fed lines and giving events
//!   through channels, so a terminal, a JSON pipe, the demo and the
//!   simulation all drive the same code; its transcripts go through a
//!   [`Disk`] ([`Transcripts`]).
//! - [`keyfile`]: a peer's or server's identity, loaded from its key file
//!   or created there on first use.
//! - [`harness`]: the one way to start either in-process and talk to it
//!   (a builder and a handle), on tokio or inside a turmoil host.
//! - [`store_nats`]: the shared store on NATS JetStream (`natter server
//!   --store nats://…`), and [`nats_server`], a `nats-server` process for
//!   its tests and the bench. Both open real sockets (or processes) and
//!   never run under turmoil.
//! - [`server_sockets`]: the listening socket of `natter server` on real
//!   TCP, its connections' kernel buffers bounded (never under turmoil).
//!
//! Only `tokio::spawn`, tokio channels and tokio timers are used here, never
//! tokio's own sockets, blocking threads or the system clock (see
//! [`Clock`]): under turmoil each host runs this code on a current-thread
//! runtime with simulated sockets and virtual time.

pub mod bindings;
pub mod disk;
pub mod harness;
pub mod intake;
pub mod keyfile;
pub mod link;
pub mod nats_server;
pub mod net;
pub mod peer;
pub mod pins;
mod private;
pub mod secure_stream;
pub mod server;
pub mod server_sockets;
pub mod store;
pub mod store_nats;
pub mod transcripts;
mod write_queue;

pub use bindings::{BindingsError, NameBindings};
pub use disk::{Disk, StdDisk};
pub use harness::{PeerBuilder, PeerHandle, ServerBuilder, ServerHandle};
pub use keyfile::{KeyFileError, LoadedIdentity};
pub use net::{Clock, Listener, Net, Stream, TokioNet};
pub use peer::{run_peer, EventSink, EXIT_STARTUP_FAILED, MAX_TYPED_AHEAD};
pub use secure_stream::{SecureStream, SecureStreamError};
pub use server::{run_server, LogHook};
pub use server_sockets::ServerSockets;
pub use store::{Bucket, Embedded, Kv, KvEntry, KvError, KvEvent, Shared, Store};
pub use store_nats::{NatsKv, NatsStoreError};
pub use transcripts::{Transcripts, TranscriptsError};

/// Sleeps until `deadline`, or forever when the state machine has none,
/// so that a `select!` branch can wait on an optional timer.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
