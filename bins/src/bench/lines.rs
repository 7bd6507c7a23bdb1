//! JSON lines over a TCP connection, plain or inside a Noise XX link: how
//! the raw baselines and the load generator talk. The same loop runs over
//! either, so "raw TCP" and "raw TCP + Noise" differ by the encryption
//! only (natter's own `SecureLink`, through `SecureStream`, with natter's
//! framing and prologues).

use anyhow::Result;
use natter_core::identity::derive_seed;
use natter_core::{Identity, LinkKind, PublicKey};
use natter_net_real::keyfile::random_seed;
use natter_net_real::secure_stream::{SecureReader, SecureWriter};
use natter_net_real::SecureStream;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// What carries a baseline's lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wire {
    /// The bytes of the lines as they are.
    Plain,
    /// A Noise XX link of the given kind's prologue, as natter's links.
    Noise,
}

impl Wire {
    /// Opens the lines of a connection this side made. With Noise, runs
    /// the handshake as `me`; `buffer` is a plain reader's buffer size.
    pub async fn connect(
        self,
        stream: TcpStream,
        kind: LinkKind,
        me: &Identity,
        buffer: usize,
    ) -> Result<Lines> {
        self.open(stream, kind, me, buffer, true).await
    }

    /// Opens the lines of a connection this side accepted.
    pub async fn accept(
        self,
        stream: TcpStream,
        kind: LinkKind,
        me: &Identity,
        buffer: usize,
    ) -> Result<Lines> {
        self.open(stream, kind, me, buffer, false).await
    }

    async fn open(
        self,
        stream: TcpStream,
        kind: LinkKind,
        me: &Identity,
        buffer: usize,
        initiator: bool,
    ) -> Result<Lines> {
        stream.set_nodelay(true)?;
        let (read, write, remote) = match self {
            Wire::Plain => {
                let (read, write) = stream.into_split();
                let read = BufReader::with_capacity(buffer, read);
                (Reader::Plain(read), LineWriter::Plain(write), None)
            }
            Wire::Noise => {
                let secure = if initiator {
                    SecureStream::connect(stream, me, kind, link_seed()).await?
                } else {
                    SecureStream::accept(stream, me, kind, link_seed()).await?
                };
                let remote = secure.remote_key();
                let (read, write) = secure.into_split();
                (Reader::Noise(read), LineWriter::Noise(write), Some(remote))
            }
        };
        let read = LineReader {
            read,
            line: String::new(),
        };
        Ok(Lines {
            read,
            write,
            remote,
        })
    }
}

/// An open connection's lines.
pub struct Lines {
    pub read: LineReader,
    pub write: LineWriter,
    /// The other side's key, proven by the handshake (Noise only).
    pub remote: Option<PublicKey>,
}

/// This process's identity for the Noise baselines (a raw receiver's, a
/// raw sender's, a raw directory's): a new key each run.
pub fn process_identity() -> &'static Identity {
    static IDENTITY: OnceLock<Identity> = OnceLock::new();
    IDENTITY.get_or_init(|| Identity::from_secret(random_seed().expect("the OS gives randomness")))
}

/// A fresh ephemeral seed for each link of this process, from one seed
/// drawn from the OS, as a natter process draws them (`LinkSeeds`; that
/// one needs `&mut`, and here many tasks open links at once).
pub fn link_seed() -> [u8; 32] {
    static MASTER: OnceLock<[u8; 32]> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let master = MASTER.get_or_init(|| random_seed().expect("the OS gives randomness"));
    derive_seed(master, b"bench link", NEXT.fetch_add(1, Ordering::Relaxed))
}

enum Reader {
    Plain(BufReader<OwnedReadHalf>),
    Noise(SecureReader<ReadHalf<TcpStream>>),
}

/// The reading side: one line at a time.
pub struct LineReader {
    read: Reader,
    line: String,
}

impl LineReader {
    /// The next line (a plain one with its newline), `None` at the end.
    pub async fn next_line(&mut self) -> Result<Option<&str>> {
        match &mut self.read {
            Reader::Plain(read) => {
                self.line.clear();
                if read.read_line(&mut self.line).await? == 0 {
                    return Ok(None);
                }
            }
            Reader::Noise(read) => match read.recv_line().await? {
                Some(line) => self.line = line,
                None => return Ok(None),
            },
        }
        Ok(Some(&self.line))
    }

    /// Reads and drops everything until the other side closes.
    pub async fn drain(&mut self) -> Result<()> {
        while self.next_line().await?.is_some() {}
        Ok(())
    }
}

/// The writing side.
pub enum LineWriter {
    Plain(OwnedWriteHalf),
    Noise(SecureWriter<WriteHalf<TcpStream>>),
}

impl LineWriter {
    /// Writes `bytes` (whole lines), sealed first if the link is Noise.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        match self {
            LineWriter::Plain(write) => write.write_all(bytes).await?,
            LineWriter::Noise(write) => write.send(bytes).await?,
        }
        Ok(())
    }
}
