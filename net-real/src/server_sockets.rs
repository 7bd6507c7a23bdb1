//! The kernel's share of a server connection: the listening socket of
//! `natter server` on real TCP, with the send and receive buffers of the
//! connections it accepts bounded and an accept queue deep enough for a
//! burst of connections.
//!
//! The server bounds what it queues for a client in bytes (`--max-queue`,
//! `--memory-budget`), but behind that queue the kernel keeps its own
//! buffer per socket, and Linux grows a send buffer by itself up to
//! `net.ipv4.tcp_wmem`'s maximum (4 MiB here; about 2.7 MiB for a new
//! loopback connection): a client that asks for lists and never reads
//! made the kernel hold megabytes per connection, outside every budget of
//! the server. Setting `SO_SNDBUF` and `SO_RCVBUF` fixes each buffer at
//! that size (the kernel doubles the number for its bookkeeping and stops
//! growing it). They are set on the listener before `listen`: the
//! connections it accepts inherit them (Linux, the BSDs, macOS and
//! Windows all copy them), and a receive buffer must be known before the
//! handshake to size the window it advertises.
//!
//! Only the server's listener is made here; peers and the simulation bind
//! with [`Net::bind`](crate::Net::bind), whose buffers the system sizes.

use std::io;
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpSocket};

/// How the kernel is to hold the connections a server accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerSockets {
    /// `SO_SNDBUF` of each accepted connection, in bytes: what the kernel
    /// may hold for a client on top of the server's own queue (twice this,
    /// counting its bookkeeping). It caps how much of a list is in flight
    /// per round trip, so it is a client's throughput far away: 64 KiB
    /// (~128 KiB in flight) brings a 10,000-peer list (~1.5 MB) 50 ms
    /// away in about 15 round trips (~0.75 s) instead of about 7; the
    /// rest of the list waits in the server's queue, which holds a whole
    /// one.
    pub send_buffer: u32,
    /// `SO_RCVBUF` of each accepted connection, in bytes: what the kernel
    /// may hold of what a client sent while the server is busy. Requests
    /// are at most 4 KiB once registered, so little is needed.
    pub receive_buffer: u32,
    /// Connections the kernel completes and holds until the server
    /// accepts them (further capped by `net.core.somaxconn`). Past it the
    /// kernel drops a newcomer's SYN, and its client only tries again a
    /// second later: deep enough for a burst of connections while the
    /// server is busy.
    pub backlog: u32,
}

impl ServerSockets {
    /// The defaults of `natter server` (docs/LIMITS.md).
    pub const DEFAULT: ServerSockets = ServerSockets {
        send_buffer: 64 * 1024,
        receive_buffer: 16 * 1024,
        backlog: 1024,
    };

    /// A listener on `addr` whose connections get these buffers (and, as
    /// with [`TcpListener::bind`], `SO_REUSEADDR` on Unix, so that a
    /// restarted server can listen again at once).
    ///
    /// A buffer larger than the system allows is refused rather than
    /// silently cut down to its maximum. Must be called within a tokio
    /// runtime.
    pub fn bind(&self, addr: SocketAddr) -> Result<TcpListener, ServerSocketsError> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        #[cfg(unix)]
        socket.set_reuseaddr(true)?;
        socket.set_send_buffer_size(self.send_buffer)?;
        socket.set_recv_buffer_size(self.receive_buffer)?;
        check_kept(Buffer::Send, self.send_buffer, socket.send_buffer_size()?)?;
        check_kept(
            Buffer::Receive,
            self.receive_buffer,
            socket.recv_buffer_size()?,
        )?;
        socket.bind(addr)?;
        Ok(socket.listen(self.backlog)?)
    }
}

/// Why the server's listener could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ServerSocketsError {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The system keeps less than was asked for.
    #[error("this system keeps at most {kept} bytes of {} buffer per connection, less than the {asked} asked for; give at most {kept}, or raise the system's maximum (Linux: sysctl net.core.{}={asked})", .which.noun(), .which.sysctl())]
    Capped {
        which: Buffer,
        asked: u32,
        kept: u32,
    },
}

/// One of a socket's two kernel buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buffer {
    Send,
    Receive,
}

impl Buffer {
    fn noun(self) -> &'static str {
        match self {
            Buffer::Send => "send",
            Buffer::Receive => "receive",
        }
    }

    fn sysctl(self) -> &'static str {
        match self {
            Buffer::Send => "wmem_max",
            Buffer::Receive => "rmem_max",
        }
    }
}

/// The system silently caps a buffer at its maximum (`net.core.wmem_max`,
/// `net.core.rmem_max` on Linux, which then reports twice what it keeps;
/// other systems report what they keep).
fn check_kept(which: Buffer, asked: u32, reported: u32) -> Result<(), ServerSocketsError> {
    let kept = if cfg!(target_os = "linux") {
        reported / 2
    } else {
        reported
    };
    if kept < asked {
        return Err(ServerSocketsError::Capped { which, asked, kept });
    }
    Ok(())
}

impl Default for ServerSockets {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::net::Listener;
    use std::time::Duration;

    /// What the server side of a connection takes in before the kernel
    /// says "would block" and stays so: written until a write would block,
    /// then again each time the socket turns writable, until it has not
    /// for 200 ms (the client never reads, so it stays blocked for good).
    async fn bytes_taken_by_a_client_that_never_reads(server: ServerSockets) -> usize {
        let listener = server.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = Listener::local_addr(&listener).unwrap();
        let client = TcpSocket::new_v4().unwrap();
        // The client's own window, small: what is counted is the server's.
        client.set_recv_buffer_size(4096).unwrap();
        let _never_read = client.connect(addr).await.unwrap();
        let (stream, _) = Listener::accept(&listener).await.unwrap();
        let chunk = vec![0u8; 16 * 1024];
        let mut taken = 0;
        loop {
            match stream.try_write(&chunk) {
                Ok(n) => taken += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let writable = stream.writable();
                    if tokio::time::timeout(Duration::from_millis(200), writable)
                        .await
                        .is_err()
                    {
                        return taken;
                    }
                }
                Err(e) => panic!("write failed: {e}"),
            }
            assert!(taken < 256 << 20, "the kernel takes without bound");
        }
    }

    #[tokio::test]
    async fn a_client_that_never_reads_makes_the_kernel_hold_about_twice_the_send_buffer() {
        let taken = bytes_taken_by_a_client_that_never_reads(ServerSockets::DEFAULT).await;
        // Twice the buffer (the kernel's doubling) plus the client's small
        // window and one segment; unbounded, loopback took ~2.7 MiB.
        let bound = 4 * ServerSockets::DEFAULT.send_buffer as usize;
        assert!(
            taken <= bound,
            "the kernel took {taken} bytes for a client that never reads; at most {bound} expected"
        );
    }

    #[tokio::test]
    async fn a_buffer_larger_than_the_system_keeps_is_refused_not_cut_down() {
        let max: u64 = std::fs::read_to_string("/proc/sys/net/core/wmem_max")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let asked = 1 << 30;
        if max >= asked {
            eprintln!("skipped: net.core.wmem_max allows {asked} bytes here");
            return;
        }
        let server = ServerSockets {
            send_buffer: asked as u32,
            ..ServerSockets::DEFAULT
        };
        match server.bind("127.0.0.1:0".parse().unwrap()) {
            Err(ServerSocketsError::Capped {
                which: Buffer::Send,
                asked: 0x4000_0000,
                kept,
            }) => assert_eq!(u64::from(kept), max),
            other => panic!("expected Capped, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn accepted_connections_inherit_the_listeners_buffers() {
        let server = ServerSockets::DEFAULT;
        let listener = server.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = Listener::local_addr(&listener).unwrap();
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (stream, _) = Listener::accept(&listener).await.unwrap();
        let socket = TcpSocket::from_std_stream(stream.into_std().unwrap());
        // Linux reports the doubled size it keeps.
        assert_eq!(socket.send_buffer_size().unwrap(), 2 * server.send_buffer);
        assert_eq!(
            socket.recv_buffer_size().unwrap(),
            2 * server.receive_buffer
        );
    }
}
