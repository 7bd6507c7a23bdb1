//! natter over the turmoil network simulator.
//!
//! [`SimNet`] implements the driver's [`Net`] trait with turmoil's TCP
//! types and turmoil's simulated wall clock, so the production driver of
//! `natter-net-real` runs unchanged inside a simulation: same state
//! machines, same driver loop, only the sockets and the clock differ.
//! [`SimDisk`] does the same for the transcripts: turmoil's simulated
//! disk, which loses unsynced writes when a host crashes.

pub mod disk;
pub mod kv;
pub mod scenario;

pub use disk::{HostDisk, SimDisk};

use natter_net_real::{Listener, Net};
use std::io;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// Turmoil's network and clock, for the host the code runs on.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimNet;

/// A turmoil listener.
pub struct SimListener(turmoil::net::TcpListener);

impl Listener for SimListener {
    type Stream = turmoil::net::TcpStream;

    async fn accept(&self) -> io::Result<(Self::Stream, SocketAddr)> {
        self.0.accept().await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Net for SimNet {
    type Stream = turmoil::net::TcpStream;
    type Listener = SimListener;

    async fn bind(&self, addr: SocketAddr) -> io::Result<Self::Listener> {
        turmoil::net::TcpListener::bind(addr).await.map(SimListener)
    }

    async fn connect(&self, addr: SocketAddr) -> io::Result<Self::Stream> {
        turmoil::net::TcpStream::connect(addr).await
    }

    /// The simulation's wall clock: the `Builder::epoch` plus simulated
    /// time, so transcripts are the same on every run.
    fn wall_clock(&self) -> SystemTime {
        UNIX_EPOCH + turmoil::since_epoch().expect("SimNet is only used inside a turmoil host")
    }
}
