//! An encrypted connection for code that talks to natter from outside: a
//! core [`SecureLink`] run over any tokio byte stream (tokio's
//! `TcpStream`, turmoil's, an in-memory duplex).
//!
//! natter's own drivers do not use this: their state machines hold the
//! links and the handshake is a phase of the core's link machine. Tests
//! that write frames by hand, the soak test and the bench's baselines and
//! load generator stand where a client in another language would, and
//! must complete the same Noise XX handshake with the same framing
//! (docs/PROTOCOL.md); this is the one copy of that glue they share.
//!
//! [`SecureStream::connect`] and [`SecureStream::accept`] return once the
//! handshake is complete, with the other side's proven key
//! ([`SecureStream::remote_key`]). Then [`SecureStream::send`] seals and
//! writes application bytes (natter's are JSON lines),
//! [`SecureStream::recv`] gives the bytes that arrived, in order, and
//! [`SecureStream::recv_line`] one line at a time. A reader and a writer
//! that must wait at the same time (a burst of messages while acks come
//! back) take the halves of [`SecureStream::into_split`]. Receiving is
//! cancel-safe (a `select!` may drop a `recv` or `recv_line` and call it
//! again: nothing read is lost); sending, like `write_all`, is not.
//!
//! Every error is final, like the link's: a failed handshake, a tampered,
//! replayed or cut message, or a close inside a frame comes back as
//! [`SecureStreamError::Secure`], a failing socket as
//! [`SecureStreamError::Io`]. Nothing here reads a clock or asks the OS
//! for randomness: the handshake's ephemeral key comes from the seed the
//! caller passes (see `natter_core::LinkSeeds`), and timeouts are the
//! caller's (`tokio::time::timeout` around a call).

use crate::link::{READ_BUFFER, READ_BUFFER_MIN};
use natter_core::identity::{Identity, PublicKey, KEY_LEN};
use natter_core::protocol::MAX_FRAME;
use natter_core::secure::{LinkKind, SecureError, SecureLink};
use std::fmt;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

/// Why a [`SecureStream`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SecureStreamError {
    /// The connection itself failed: reset, broken pipe, refused.
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    /// The Noise layer refused what arrived (a handshake that fails, a
    /// message that does not authenticate, the stream cut inside a frame
    /// or before the handshake completed). The link is dead.
    #[error("secure link: {0}")]
    Secure(#[from] SecureError),
    /// [`SecureStream::recv_line`] found no newline within
    /// [`MAX_FRAME`] bytes, natter's own line limit.
    #[error("a line longer than {MAX_FRAME} bytes")]
    LineTooLong,
    /// [`SecureStream::recv_line`] found a line that is not UTF-8.
    #[error("a line that is not UTF-8")]
    NotUtf8,
    /// The other side closed cleanly in the middle of a line.
    #[error("the connection closed inside a line")]
    PartialLine,
}

type Result<T> = std::result::Result<T, SecureStreamError>;

/// The link, shared by the two halves of a split stream. Never locked
/// across an `await`; once the handshake is done a read never makes the
/// link write, so the halves only meet at this lock.
type Shared = Arc<Mutex<SecureLink>>;

fn lock(link: &Shared) -> std::sync::MutexGuard<'_, SecureLink> {
    link.lock().expect("nothing panics while holding a link")
}

/// A connection whose handshake is complete; see the module doc.
pub struct SecureStream<S> {
    reader: SecureReader<ReadHalf<S>>,
    writer: SecureWriter<WriteHalf<S>>,
    remote: PublicKey,
}

impl<S> fmt::Debug for SecureStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecureStream")
            .field("remote", &self.remote.fingerprint())
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> SecureStream<S> {
    /// As the side that opened `stream`: runs the handshake of a `kind`
    /// link as `identity`, its ephemeral key drawn from `seed`.
    pub fn connect(
        stream: S,
        identity: &Identity,
        kind: LinkKind,
        seed: [u8; KEY_LEN],
    ) -> impl Future<Output = Result<Self>> {
        Self::handshake(stream, SecureLink::initiator(identity, kind, seed))
    }

    /// As the side that accepted `stream`: waits for the other side's
    /// handshake and answers it. (Neither keeps `identity` borrowed: the
    /// link copies the key it needs.)
    pub fn accept(
        stream: S,
        identity: &Identity,
        kind: LinkKind,
        seed: [u8; KEY_LEN],
    ) -> impl Future<Output = Result<Self>> {
        Self::handshake(stream, SecureLink::responder(identity, kind, seed))
    }

    async fn handshake(stream: S, link: SecureLink) -> Result<Self> {
        let (read, write) = tokio::io::split(stream);
        let link = Arc::new(Mutex::new(link));
        let mut reader = SecureReader::new(Arc::clone(&link), read);
        let mut writer = SecureWriter { link, write };
        loop {
            writer.write_transmit().await?;
            let remote = lock(&writer.link).remote_key();
            if let Some(remote) = remote {
                return Ok(SecureStream {
                    reader,
                    writer,
                    remote,
                });
            }
            // The end of the stream here is an error (`Truncated`).
            reader.read_into_link().await?;
        }
    }

    /// The other side's static key, proven by the handshake.
    pub fn remote_key(&self) -> PublicKey {
        self.remote
    }

    /// Seals `plaintext` and writes it.
    pub async fn send(&mut self, plaintext: &[u8]) -> Result<()> {
        self.writer.send(plaintext).await
    }

    /// The application bytes that have arrived, cut anywhere (at least
    /// one byte); `None` once the other side closed cleanly.
    pub async fn recv(&mut self) -> Result<Option<Vec<u8>>> {
        self.reader.recv().await
    }

    /// The next line, without its newline; `None` once the other side
    /// closed cleanly between lines.
    pub async fn recv_line(&mut self) -> Result<Option<String>> {
        self.reader.recv_line().await
    }

    /// Closes the writing side (the other side reads the end of the
    /// stream); reading goes on.
    pub async fn close(&mut self) -> Result<()> {
        self.writer.close().await
    }

    /// A reading half and a writing half, usable from two tasks at once.
    pub fn into_split(self) -> (SecureReader<ReadHalf<S>>, SecureWriter<WriteHalf<S>>) {
        (self.reader, self.writer)
    }
}

/// The reading half of a [`SecureStream`].
pub struct SecureReader<R> {
    link: Shared,
    read: R,
    /// Ciphertext read from the socket; grows like a driver link's read
    /// buffer, so thousands of idle clients stay small.
    buffer: Vec<u8>,
    /// Decrypted bytes not yet returned, from `taken` on.
    plain: Vec<u8>,
    taken: usize,
    /// How far past `taken` a newline has already been looked for.
    scanned: usize,
}

impl<R: AsyncRead + Unpin> SecureReader<R> {
    fn new(link: Shared, read: R) -> Self {
        SecureReader {
            link,
            read,
            buffer: Vec::with_capacity(READ_BUFFER_MIN),
            plain: Vec::new(),
            taken: 0,
            scanned: 0,
        }
    }

    /// See [`SecureStream::recv`].
    pub async fn recv(&mut self) -> Result<Option<Vec<u8>>> {
        if self.taken == self.plain.len() && !self.fill().await? {
            return Ok(None);
        }
        let bytes = self.plain.split_off(self.taken);
        self.plain.clear();
        self.taken = 0;
        self.scanned = 0;
        Ok(Some(bytes))
    }

    /// See [`SecureStream::recv_line`].
    pub async fn recv_line(&mut self) -> Result<Option<String>> {
        loop {
            let unread = &self.plain[self.taken..];
            if let Some(at) = unread[self.scanned..].iter().position(|&b| b == b'\n') {
                let end = self.taken + self.scanned + at;
                let line = std::str::from_utf8(&self.plain[self.taken..end])
                    .map_err(|_| SecureStreamError::NotUtf8)?
                    .to_string();
                self.taken = end + 1;
                self.scanned = 0;
                if self.taken == self.plain.len() {
                    self.plain.clear();
                    self.taken = 0;
                }
                return Ok(Some(line));
            }
            self.scanned = unread.len();
            if self.scanned > MAX_FRAME {
                return Err(SecureStreamError::LineTooLong);
            }
            if !self.fill().await? {
                return match self.scanned {
                    0 => Ok(None),
                    _ => Err(SecureStreamError::PartialLine),
                };
            }
        }
    }

    /// Appends newly decrypted bytes to `plain`; false at a clean end.
    async fn fill(&mut self) -> Result<bool> {
        if self.taken > 0 {
            self.plain.drain(..self.taken);
            self.taken = 0;
        }
        loop {
            // Bytes may be waiting already: the ones that came in the same
            // read as the handshake's last message.
            if let Some(bytes) = lock(&self.link).poll_plaintext() {
                self.plain.extend_from_slice(&bytes);
                return Ok(true);
            }
            if !self.read_into_link().await? {
                return Ok(false);
            }
        }
    }

    /// One read from the socket, pushed into the link; false at a clean
    /// end of the stream.
    async fn read_into_link(&mut self) -> Result<bool> {
        // A link that already failed says so at once (no bytes pushed),
        // rather than after waiting for bytes that may never come.
        lock(&self.link).push(&[])?;
        self.buffer.clear();
        let read = self.read.read_buf(&mut self.buffer).await?;
        let mut link = lock(&self.link);
        if read == 0 {
            link.end_of_stream()?;
            return Ok(false);
        }
        link.push(&self.buffer)?;
        if read == self.buffer.capacity() && read < READ_BUFFER {
            self.buffer
                .reserve_exact((2 * read).min(READ_BUFFER) - read);
        }
        Ok(true)
    }
}

/// The writing half of a [`SecureStream`].
pub struct SecureWriter<W> {
    link: Shared,
    write: W,
}

impl<W: AsyncWrite + Unpin> SecureWriter<W> {
    /// See [`SecureStream::send`].
    pub async fn send(&mut self, plaintext: &[u8]) -> Result<()> {
        lock(&self.link).send(plaintext)?;
        self.write_transmit().await
    }

    /// See [`SecureStream::close`].
    pub async fn close(&mut self) -> Result<()> {
        Ok(self.write.shutdown().await?)
    }

    /// Writes whatever the link has sealed or answered.
    async fn write_transmit(&mut self) -> Result<()> {
        let bytes = lock(&self.link).poll_transmit();
        if let Some(bytes) = bytes {
            self.write.write_all(&bytes).await?;
            self.write.flush().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{duplex, DuplexStream};

    fn alice() -> Identity {
        Identity::from_seed(&[1; KEY_LEN])
    }

    fn bob() -> Identity {
        Identity::from_seed(&[2; KEY_LEN])
    }

    /// Alice connects to bob over `(a, b)`, both handshakes awaited together.
    async fn pair_over<S: AsyncRead + AsyncWrite + Unpin>(
        a: S,
        b: S,
        kinds: (LinkKind, LinkKind),
    ) -> (Result<SecureStream<S>>, Result<SecureStream<S>>) {
        tokio::join!(
            SecureStream::connect(a, &alice(), kinds.0, [10; KEY_LEN]),
            SecureStream::accept(b, &bob(), kinds.1, [20; KEY_LEN]),
        )
    }

    async fn pair() -> (SecureStream<DuplexStream>, SecureStream<DuplexStream>) {
        let (a, b) = duplex(64 * 1024);
        let (a, b) = pair_over(a, b, (LinkKind::Peer, LinkKind::Peer)).await;
        (a.unwrap(), b.unwrap())
    }

    #[tokio::test]
    async fn the_handshake_shows_each_side_the_others_key() {
        let (a, b) = pair().await;
        assert_eq!(a.remote_key(), bob().public());
        assert_eq!(b.remote_key(), alice().public());
    }

    #[tokio::test]
    async fn lines_go_both_ways_and_a_close_ends_them_cleanly() {
        let (mut a, mut b) = pair().await;
        a.send(b"{\"type\":\"hello\"}\n{\"type\":").await.unwrap();
        a.send(b"\"ping\"}\n").await.unwrap();
        assert_eq!(b.recv_line().await.unwrap().unwrap(), r#"{"type":"hello"}"#);
        assert_eq!(b.recv_line().await.unwrap().unwrap(), r#"{"type":"ping"}"#);
        b.send(b"{\"type\":\"pong\"}\n").await.unwrap();
        assert_eq!(a.recv_line().await.unwrap().unwrap(), r#"{"type":"pong"}"#);
        a.close().await.unwrap();
        assert_eq!(b.recv_line().await.unwrap(), None);
        assert_eq!(b.recv().await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_write_larger_than_one_noise_message_arrives_whole_and_in_order() {
        let (mut a, b) = pair().await;
        let text: Vec<u8> = (0..200_000).map(|i| (i % 251) as u8).collect();
        let (mut reader, _writer) = b.into_split();
        let receive = async {
            let mut got = Vec::new();
            while got.len() < text.len() {
                got.extend(reader.recv().await.unwrap().unwrap());
            }
            got
        };
        let (got, sent) = tokio::join!(receive, a.send(&text));
        sent.unwrap();
        assert_eq!(got, text);
    }

    #[tokio::test]
    async fn split_halves_send_and_receive_at_the_same_time() {
        let (a, mut b) = pair().await;
        let (mut a_read, mut a_write) = a.into_split();
        let echo = async {
            while let Some(line) = b.recv_line().await.unwrap() {
                b.send(format!("ack {line}\n").as_bytes()).await.unwrap();
            }
        };
        let burst = async {
            for n in 0..1_000 {
                a_write.send(format!("{n}\n").as_bytes()).await.unwrap();
            }
            a_write.close().await.unwrap();
        };
        let acks = async {
            for n in 0..1_000 {
                let line = a_read.recv_line().await.unwrap().unwrap();
                assert_eq!(line, format!("ack {n}"));
            }
        };
        tokio::join!(echo, burst, acks);
    }

    /// Copies bytes from `from` to `to`, flipping the lowest bit of the
    /// byte at position `flip` of the stream, if any.
    async fn relay(
        mut from: impl AsyncRead + Unpin,
        mut to: impl AsyncWrite + Unpin,
        flip: Option<usize>,
    ) {
        let (mut seen, mut buf) = (0, [0u8; 1024]);
        while let Ok(n @ 1..) = from.read(&mut buf).await {
            if let Some(at) = flip.filter(|at| (seen..seen + n).contains(at)) {
                buf[at - seen] ^= 0x01;
            }
            seen += n;
            if to.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    }

    #[tokio::test]
    async fn a_byte_changed_on_the_wire_is_an_error_and_no_text_arrives() {
        let (a, a_wire) = duplex(64 * 1024);
        let (b_wire, b) = duplex(64 * 1024);
        let (from_a, to_a) = tokio::io::split(a_wire);
        let (from_b, to_b) = tokio::io::split(b_wire);
        // Alice's handshake messages 1 and 3 take 2 + 32 and 2 + 64 bytes:
        // byte 110 is in the sealed text of her first message.
        tokio::spawn(relay(from_a, to_b, Some(110)));
        tokio::spawn(relay(from_b, to_a, None));
        let (a, b) = pair_over(a, b, (LinkKind::Peer, LinkKind::Peer)).await;
        let (mut a, mut b) = (a.unwrap(), b.unwrap());
        a.send(b"wire 10 EUR\n").await.unwrap();
        assert!(matches!(
            b.recv_line().await,
            Err(SecureStreamError::Secure(SecureError::Decrypt))
        ));
        // Dead for good, and said at once: alice sends nothing more.
        assert!(matches!(
            b.recv().await,
            Err(SecureStreamError::Secure(SecureError::Failed))
        ));
    }

    #[tokio::test]
    async fn a_plain_json_client_is_refused_at_its_first_two_bytes() {
        let (mut a, b) = duplex(1024);
        a.write_all(b"{\"type\":\"hello\"}\n").await.unwrap();
        let refused = SecureStream::accept(b, &bob(), LinkKind::Server, [20; KEY_LEN]).await;
        assert!(
            matches!(
                refused,
                Err(SecureStreamError::Secure(SecureError::BadHandshake {
                    index: 0,
                    ..
                }))
            ),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn a_server_handshake_fails_against_a_peer_link() {
        let (a, b) = duplex(1024);
        let (a, b) = pair_over(a, b, (LinkKind::Server, LinkKind::Peer)).await;
        // Alice cannot authenticate bob's message 2 (another prologue)
        // and gives up; bob sees the stream end before message 3.
        assert!(matches!(
            a,
            Err(SecureStreamError::Secure(SecureError::Decrypt))
        ));
        assert!(b.is_err());
    }

    #[tokio::test]
    async fn a_close_during_the_handshake_is_truncation() {
        let (a, b) = duplex(1024);
        drop(a);
        let cut = SecureStream::accept(b, &bob(), LinkKind::Peer, [20; KEY_LEN]).await;
        assert!(matches!(
            cut,
            Err(SecureStreamError::Secure(SecureError::Truncated))
        ));
    }

    #[tokio::test]
    async fn a_close_inside_a_line_or_past_the_limit_is_an_error() {
        let (mut a, mut b) = pair().await;
        a.send(b"{\"type\":").await.unwrap();
        a.close().await.unwrap();
        assert!(matches!(
            b.recv_line().await,
            Err(SecureStreamError::PartialLine)
        ));

        let (mut a, mut b) = pair().await;
        let long = vec![b'x'; MAX_FRAME + 2];
        let (sent, got) = tokio::join!(a.send(&long), b.recv_line());
        sent.unwrap();
        assert!(matches!(got, Err(SecureStreamError::LineTooLong)));
    }
}
