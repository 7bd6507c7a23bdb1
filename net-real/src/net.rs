//! The network and clock a driver runs on, as traits: tokio sockets and the
//! system clock in production ([`TokioNet`]), turmoil's simulated network
//! and virtual time in tests (`natter-net-sim`). The driver loop is written
//! once against these traits, so the simulation exercises production code.

use natter_core::time::{Instant, Now};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncWrite};

/// A byte stream to one remote end.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// A bound listening socket.
pub trait Listener: Send + 'static {
    type Stream: Stream;
    /// The next incoming connection and the address it comes from.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;
    /// The address actually bound (the port the OS chose for port 0).
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// Opens sockets and tells the time.
pub trait Net: Clone + Send + Sync + 'static {
    type Stream: Stream;
    type Listener: Listener<Stream = Self::Stream>;

    fn bind(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Listener>> + Send;
    fn connect(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Stream>> + Send;
    /// Wall-clock time, for timestamps people read.
    fn wall_clock(&self) -> SystemTime;
}

/// Turns the runtime's monotonic clock into the core's [`Now`].
///
/// The origin is the moment the driver started; `tokio::time::Instant` is
/// virtual under turmoil and real under tokio, so the same code serves both.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: tokio::time::Instant,
}

impl Clock {
    pub fn start() -> Self {
        Self {
            origin: tokio::time::Instant::now(),
        }
    }

    /// Now, on both clocks.
    pub fn now(&self, net: &impl Net) -> Now {
        let mono = Instant::from_origin(tokio::time::Instant::now() - self.origin);
        Now::new(mono, net.wall_clock())
    }

    /// The runtime instant of a core deadline, for `sleep_until`.
    pub fn deadline(&self, at: Instant) -> tokio::time::Instant {
        self.origin + at.since_origin()
    }

    /// Time since the driver started.
    pub fn elapsed(&self) -> Duration {
        tokio::time::Instant::now() - self.origin
    }
}

/// Real sockets and the system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioNet;

impl Listener for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;

    async fn accept(&self) -> io::Result<(Self::Stream, SocketAddr)> {
        let (stream, addr) = tokio::net::TcpListener::accept(self).await?;
        // Chat frames are small and latency matters more than batching.
        stream.set_nodelay(true)?;
        Ok((stream, addr))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        tokio::net::TcpListener::local_addr(self)
    }
}

impl Net for TokioNet {
    type Stream = tokio::net::TcpStream;
    type Listener = tokio::net::TcpListener;

    async fn bind(&self, addr: SocketAddr) -> io::Result<Self::Listener> {
        tokio::net::TcpListener::bind(addr).await
    }

    async fn connect(&self, addr: SocketAddr) -> io::Result<Self::Stream> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    fn wall_clock(&self) -> SystemTime {
        #[allow(clippy::disallowed_methods)] // the one place real wall time enters
        SystemTime::now()
    }
}
