//! Hand-written clients of the simulated server, run on a turmoil host:
//! they stand where a client in another language (or a hostile one) would,
//! below natter's peer state machine, so a scenario can send any frame, any
//! garbage and any timing.
//!
//! [`RawClient`] completes the server link's Noise handshake first (through
//! natter-net-real's [`SecureStream`], as docs/PROTOCOL.md says a client
//! must) and then speaks inside the encrypted session; [`plain_bytes`] and
//! [`plain_trickle`] skip the handshake, as an old natter/1 client, a port
//! scanner or `nc` would.
//!
//! Every key and every ephemeral key comes from the client's name, so a
//! scenario replays byte for byte. Each function returns what the client
//! observed as text for a snapshot: the lines the server sent, then how the
//! connection ended (see [`ending`]).

use natter_core::identity::{derive_seed, Identity, KEY_LEN};
use natter_core::secure::{LinkKind, SecureLink};
use natter_core::LinkSeeds;
use natter_net_real::secure_stream::SecureReader;
use natter_net_real::{SecureStream, SecureStreamError};
use natter_net_sim::scenario::SERVER_PORT;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use turmoil::net::TcpStream;

/// A client with a key of its own, for any number of connections.
pub struct RawClient {
    identity: Identity,
    seeds: LinkSeeds,
}

impl RawClient {
    /// A client whose static key and ephemeral keys derive from `name`
    /// alone: unlike any simulated peer's, the same in every run.
    pub fn new(name: &str) -> Self {
        let master = derive_seed(&[0; KEY_LEN], name.as_bytes(), 0);
        Self {
            identity: Identity::from_seed(&master),
            seeds: LinkSeeds::new(derive_seed(&master, b"links", 0)),
        }
    }

    /// Connects, sends each line (a newline added), then reads everything
    /// until the server closes the connection.
    pub async fn exchange(&mut self, lines: &[&str]) -> String {
        let mut bytes = Vec::new();
        for line in lines {
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
        }
        self.send_bytes(&bytes).await
    }

    /// Connects, sends `bytes` as they are (in as many Noise messages as
    /// their length needs), then reads until the server closes.
    pub async fn send_bytes(&mut self, bytes: &[u8]) -> String {
        let mut stream = match self.connect().await {
            Ok(stream) => stream,
            Err(failed) => return failed,
        };
        // The server may hang up before taking it all (an endless line):
        // what it said before is still there to read.
        let _ = stream.send(bytes).await;
        let (mut reader, _writer) = stream.into_split();
        read_until_closed(&mut reader).await
    }

    /// Connects, then sends `bytes` one at a time, each in its own Noise
    /// message, `every` apart, until the server hangs up.
    pub async fn trickle(&mut self, bytes: &[u8], every: Duration) -> String {
        let stream = match self.connect().await {
            Ok(stream) => stream,
            Err(failed) => return failed,
        };
        let (mut reader, mut writer) = stream.into_split();
        let write = async {
            for &b in bytes {
                if writer.send(&[b]).await.is_err() {
                    break;
                }
                tokio::time::sleep(every).await;
            }
        };
        until_done(read_until_closed(&mut reader), write).await
    }

    /// Sends a valid first handshake message (natter's own, for this
    /// client's key) one byte at a time, `every` apart, until the server
    /// hangs up: a handshake that never completes.
    pub async fn slow_handshake(&mut self, every: Duration) -> String {
        let mut link =
            SecureLink::initiator(&self.identity, LinkKind::Server, self.seeds.next_seed());
        let message = link.poll_transmit().expect("an initiator speaks first");
        plain_trickle(&message, every).await
    }

    /// A connection whose handshake is complete, or what went wrong.
    async fn connect(&mut self) -> Result<SecureStream<TcpStream>, String> {
        let Ok(stream) = TcpStream::connect(server_addr()).await else {
            return Err("connect failed".into());
        };
        let seed = self.seeds.next_seed();
        SecureStream::connect(stream, &self.identity, LinkKind::Server, seed)
            .await
            .map_err(|e| format!("handshake failed: {e}"))
    }
}

/// Connects and sends `bytes` in clear, with no handshake, then reads
/// until the server closes.
pub async fn plain_bytes(bytes: &[u8]) -> String {
    let Ok(mut stream) = TcpStream::connect(server_addr()).await else {
        return "connect failed".into();
    };
    let _ = stream.write_all(bytes).await;
    let mut reply = Vec::new();
    let end = stream.read_to_end(&mut reply).await;
    plain_reply(&reply, end)
}

/// Connects and sends `bytes` in clear one at a time, `every` apart, until
/// the server hangs up.
pub async fn plain_trickle(bytes: &[u8], every: Duration) -> String {
    let Ok(stream) = TcpStream::connect(server_addr()).await else {
        return "connect failed".into();
    };
    let (mut read, mut write) = stream.into_split();
    let send = async {
        for &b in bytes {
            if write.write_all(&[b]).await.is_err() {
                break;
            }
            tokio::time::sleep(every).await;
        }
    };
    let mut reply = Vec::new();
    let end = until_done(read.read_to_end(&mut reply), send).await;
    plain_reply(&reply, end)
}

/// `read`'s outcome, with `write` running beside it until `read` ends.
async fn until_done<T>(read: impl Future<Output = T>, write: impl Future<Output = ()>) -> T {
    let write_then_wait = async {
        write.await;
        std::future::pending().await
    };
    tokio::select! {
        biased;
        out = read => out,
        out = write_then_wait => out,
    }
}

/// Every line the server sends until the connection ends, then the end.
async fn read_until_closed<R: AsyncRead + Unpin>(reader: &mut SecureReader<R>) -> String {
    let mut out = String::new();
    loop {
        match reader.recv_line().await {
            Ok(Some(line)) => {
                out.push_str(&line);
                out.push('\n');
            }
            Ok(None) => return out + &ending(Ok(())),
            Err(SecureStreamError::Io(e)) => return out + &ending(Err(e)),
            Err(e) => return out + &format!("(failed: {e})"),
        }
    }
}

/// What a client without a session read: the bytes as text, then the end.
fn plain_reply(reply: &[u8], end: std::io::Result<usize>) -> String {
    let text = String::from_utf8_lossy(reply);
    let mut out = text.trim_end().to_string();
    if !out.is_empty() {
        out.push('\n');
    }
    out + &ending(end.map(|_| ()))
}

/// How a connection ended, as the last line of a reply: `(closed)` for a
/// clean end of the stream, `(reset: …)` for an error.
fn ending(end: std::io::Result<()>) -> String {
    match end {
        Ok(()) => "(closed)".into(),
        Err(e) => format!("(reset: {e})"),
    }
}

fn server_addr() -> SocketAddr {
    SocketAddr::new(turmoil::lookup("server"), SERVER_PORT)
}
