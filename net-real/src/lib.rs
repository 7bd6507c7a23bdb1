//! natter's async driver: runs the sans-IO state machines of `natter-core`
//! over any [`Net`] (tokio sockets here, turmoil in `natter-net-sim`).

pub mod net;

pub use net::{Clock, Listener, Net, Stream, TokioNet};
