//! The sockets behind the state machines' link ids: one reader task and one
//! writer task per connection, and the bookkeeping the driver loops share.
//!
//! The driver's main loop must never wait on one socket, or one slow or
//! stuck peer would freeze every other conversation and every timer. So the
//! loop only ever hands bytes to a link's bounded queue (`try_send`) and
//! learns about the network through one channel of [`LinkEvent`]s fed by
//! the per-link tasks. A link whose queue is full is a peer that stopped
//! reading: it is cut off rather than buffered without bound.
//!
//! Only `tokio::spawn`, tokio channels and tokio timers are used, so the
//! same code runs over turmoil's simulated sockets.

use crate::net::{Listener, Net};
use natter_core::LinkId;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, watch};
use tokio::task::{AbortHandle, JoinHandle};

/// Bytes asked of the socket per read: bounds the memory one connection can
/// make the driver hold before the state machine has seen it.
pub const READ_BUFFER: usize = 8 * 1024;

/// A link's first read buffer. It doubles (up to [`READ_BUFFER`]) each
/// time a read fills it, so an idle connection — a server holds
/// thousands — costs a few hundred bytes, and a busy one soon reads in
/// large chunks.
pub const READ_BUFFER_MIN: usize = 512;

/// Frames queued for one link before it counts as not reading. Frames are
/// bounded by the codec's frame limit, so this bounds a link's memory; it
/// is large enough for a 10,000-peer list (40 chunks) plus chat traffic.
pub const WRITE_QUEUE: usize = 256;

/// Bytes of queued frames joined into one write.
const WRITE_BATCH: usize = 64 * 1024;

/// Longest wait for an outgoing connection to be established.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// After a link is closed (or the driver exits), how long its queued bytes
/// may take to drain and the other side may take to close its end.
pub const LINGER: Duration = Duration::from_secs(2);

/// Events from the per-link tasks to the main loop, in one bounded channel:
/// a reader waits when the main loop is behind, which pushes back on the
/// remote sender through TCP flow control instead of growing a queue.
const EVENT_QUEUE: usize = 256;

/// Wait after a failed `accept` (e.g. out of file descriptors), so that a
/// persistent error does not spin the accept loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What the network did, as seen by the per-link tasks.
pub enum LinkEvent<S> {
    /// The listener accepted a connection; the main loop gives it an id.
    Accepted { stream: S, addr: SocketAddr },
    /// A connection asked for with [`Links::connect`] is established.
    Connected { link: LinkId, stream: S },
    /// A connection asked for with [`Links::connect`] failed or timed out.
    ConnectFailed { link: LinkId, reason: String },
    /// Bytes read from a link, split anywhere.
    Bytes { link: LinkId, bytes: Vec<u8> },
    /// The link ended: EOF, reset or a write error.
    Closed { link: LinkId, reason: String },
}

impl<S> fmt::Debug for LinkEvent<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkEvent::Accepted { addr, .. } => write!(f, "Accepted({addr})"),
            LinkEvent::Connected { link, .. } => write!(f, "Connected({link})"),
            LinkEvent::ConnectFailed { link, reason } => {
                write!(f, "ConnectFailed({link}, {reason})")
            }
            LinkEvent::Bytes { link, bytes } => write!(f, "Bytes({link}, {} bytes)", bytes.len()),
            LinkEvent::Closed { link, reason } => write!(f, "Closed({link}, {reason})"),
        }
    }
}

/// Whether bytes could be queued on a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Queued {
    /// Queued, or the link is already gone (the state machine will learn
    /// of that, or already has).
    Ok,
    /// The link's queue was full: the link has been cut and the state
    /// machine must be told it closed.
    Overflowed,
}

/// The open links of one driver and the channel their tasks report on.
pub struct Links<N: Net> {
    net: N,
    events: mpsc::Sender<LinkEvent<N::Stream>>,
    open: BTreeMap<LinkId, LinkHandle>,
    /// Outgoing connections in progress, so that one the state machine
    /// gave up on can be cancelled and its late success ignored.
    dialing: BTreeMap<LinkId, AbortHandle>,
    /// Links closed gracefully whose writer may still be flushing; awaited
    /// (bounded) when the driver stops, so a last `bye` is not lost.
    closing: Vec<JoinHandle<()>>,
    accept: Option<AbortHandle>,
}

/// The driver's grip on one connection's tasks. Dropping it is a graceful
/// close: the writer sends what was queued, shuts the socket down, and the
/// reader drains until the other side closes (bounded by [`LINGER`]).
struct LinkHandle {
    queue: mpsc::Sender<Vec<u8>>,
    /// Never written; dropping it tells both tasks the link is closing.
    _alive: watch::Sender<()>,
    reader: AbortHandle,
    writer: JoinHandle<()>,
}

impl<N: Net> Links<N> {
    /// An empty set of links and the receiver of their events.
    pub fn new(net: N) -> (Self, mpsc::Receiver<LinkEvent<N::Stream>>) {
        let (events, rx) = mpsc::channel(EVENT_QUEUE);
        let links = Self {
            net,
            events,
            open: BTreeMap::new(),
            dialing: BTreeMap::new(),
            closing: Vec::new(),
            accept: None,
        };
        (links, rx)
    }

    /// Starts accepting connections on `listener`, reporting each as
    /// [`LinkEvent::Accepted`].
    pub fn listen(&mut self, listener: N::Listener) {
        let events = self.events.clone();
        let task = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, addr)) => {
                        // A dual-stack `[::]` listener shows IPv4 clients
                        // as `::ffff:a.b.c.d`; people and registries want
                        // the plain IPv4 address.
                        let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
                        if events
                            .send(LinkEvent::Accepted { stream, addr })
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                }
            }
        });
        self.accept = Some(task.abort_handle());
    }

    /// Opens a connection to `addr` for `link` in the background; the
    /// outcome arrives as [`LinkEvent::Connected`] or
    /// [`LinkEvent::ConnectFailed`].
    pub fn connect(&mut self, link: LinkId, addr: SocketAddr) {
        let net = self.net.clone();
        let events = self.events.clone();
        let task = tokio::spawn(async move {
            let event = match tokio::time::timeout(CONNECT_TIMEOUT, net.connect(addr)).await {
                Ok(Ok(stream)) => LinkEvent::Connected { link, stream },
                Ok(Err(e)) => LinkEvent::ConnectFailed {
                    link,
                    reason: connect_error(&e),
                },
                Err(_) => LinkEvent::ConnectFailed {
                    link,
                    reason: format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
                },
            };
            let _ = events.send(event).await;
        });
        self.dialing.insert(link, task.abort_handle());
    }

    /// Takes the outcome of a connect. False if the state machine closed
    /// the link meanwhile: the outcome must then not be reported (a
    /// connected stream is simply dropped).
    pub fn connect_finished(&mut self, link: LinkId) -> bool {
        self.dialing.remove(&link).is_some()
    }

    /// Starts the reader and writer tasks of a connected stream.
    pub fn open(&mut self, link: LinkId, stream: N::Stream) {
        let (read, write) = tokio::io::split(stream);
        let (queue, queued) = mpsc::channel(WRITE_QUEUE);
        let (alive, alive_rx) = watch::channel(());
        let reader = tokio::spawn(read_loop(link, read, self.events.clone(), alive_rx.clone()));
        let writer = tokio::spawn(write_loop(
            link,
            write,
            queued,
            self.events.clone(),
            alive_rx,
        ));
        self.open.insert(
            link,
            LinkHandle {
                queue,
                _alive: alive,
                reader: reader.abort_handle(),
                writer,
            },
        );
    }

    /// Queues bytes on a link without ever waiting.
    pub fn send(&mut self, link: LinkId, bytes: Vec<u8>) -> Queued {
        let Some(handle) = self.open.get(&link) else {
            return Queued::Ok;
        };
        match handle.queue.try_send(bytes) {
            Ok(()) => Queued::Ok,
            // The writer already failed; its Closed event is on the way.
            Err(mpsc::error::TrySendError::Closed(_)) => Queued::Ok,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    %link,
                    queued = WRITE_QUEUE,
                    "the other side stopped reading; closing the link"
                );
                if let Some(handle) = self.open.remove(&link) {
                    handle.reader.abort();
                    handle.writer.abort();
                }
                Queued::Overflowed
            }
        }
    }

    /// Closes a link after what was queued on it is sent; cancels it if it
    /// is still connecting. Unknown links are ignored.
    pub fn close(&mut self, link: LinkId) {
        if let Some(dial) = self.dialing.remove(&link) {
            dial.abort();
        }
        if let Some(handle) = self.open.remove(&link) {
            self.closing.retain(|w| !w.is_finished());
            self.closing.push(handle.writer);
            // Dropping the rest of the handle (queue sender, alive) starts
            // the graceful close.
        }
    }

    /// Forgets a link whose task reported it closed. True if it was open,
    /// i.e. the state machine has not been told yet.
    pub fn closed(&mut self, link: LinkId) -> bool {
        self.open.remove(&link).is_some()
    }

    /// Closes every link gracefully and waits, at most [`LINGER`], for the
    /// queued bytes to be written. Called when the driver stops.
    pub async fn shutdown(mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        for (_, dial) in std::mem::take(&mut self.dialing) {
            dial.abort();
        }
        let links: Vec<LinkId> = self.open.keys().copied().collect();
        for link in links {
            self.close(link);
        }
        let writers = std::mem::take(&mut self.closing);
        let all = async {
            for writer in writers {
                let _ = writer.await;
            }
        };
        let _ = tokio::time::timeout(LINGER, all).await;
    }
}

impl<N: Net> Drop for Links<N> {
    fn drop(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
    }
}

/// Reads into a bounded buffer and forwards what arrives. When the driver
/// closes the link, keeps reading (and discarding) until the other side
/// closes too, so that unread data does not turn our close into a reset
/// that could destroy the last frames we sent.
async fn read_loop<S: crate::net::Stream>(
    link: LinkId,
    mut read: ReadHalf<S>,
    events: mpsc::Sender<LinkEvent<S>>,
    mut alive: watch::Receiver<()>,
) {
    let mut buf = vec![0u8; READ_BUFFER_MIN];
    loop {
        tokio::select! {
            biased;
            _ = alive.changed() => break,
            read = read.read(&mut buf) => {
                let event = match read {
                    Ok(0) => LinkEvent::Closed { link, reason: "closed by the other side".into() },
                    Ok(n) => {
                        let bytes = buf[..n].to_vec();
                        if n == buf.len() && buf.len() < READ_BUFFER {
                            buf.resize((buf.len() * 2).min(READ_BUFFER), 0);
                        }
                        LinkEvent::Bytes { link, bytes }
                    }
                    Err(e) => LinkEvent::Closed { link, reason: e.to_string() },
                };
                let done = matches!(event, LinkEvent::Closed { .. });
                if events.send(event).await.is_err() || done {
                    return;
                }
            }
        }
    }
    let drain = async {
        while let Ok(n) = read.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// Writes queued frames in order. The queue closing (the driver dropped
/// its end) means "close after what is queued": flush, then shut the write
/// side down. Once closing, the rest is bounded by [`LINGER`] so a peer
/// that never reads cannot keep the task alive.
async fn write_loop<S: crate::net::Stream>(
    link: LinkId,
    mut write: WriteHalf<S>,
    mut queued: mpsc::Receiver<Vec<u8>>,
    events: mpsc::Sender<LinkEvent<S>>,
    mut alive: watch::Receiver<()>,
) {
    let work = async {
        while let Some(mut bytes) = queued.recv().await {
            // Frames queued meanwhile (a burst of receipts, list chunks) go
            // out in one write: one syscall instead of one per frame.
            while bytes.len() < WRITE_BATCH {
                match queued.try_recv() {
                    Ok(more) => bytes.extend_from_slice(&more),
                    Err(_) => break,
                }
            }
            write.write_all(&bytes).await?;
            // Streams that buffer (any `Stream` may) must not sit on a
            // frame while the queue is idle.
            if queued.is_empty() {
                write.flush().await?;
            }
        }
        write.shutdown().await
    };
    tokio::pin!(work);
    let result = tokio::select! {
        biased;
        result = &mut work => Some(result),
        _ = alive.changed() => None,
    };
    let result = match result {
        Some(result) => result,
        None => match tokio::time::timeout(LINGER, &mut work).await {
            Ok(result) => result,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the other side did not read the last bytes in time",
            )),
        },
    };
    if let Err(e) = result {
        tracing::debug!(%link, error = %e, "write failed");
        let _ = events
            .send(LinkEvent::Closed {
                link,
                reason: e.to_string(),
            })
            .await;
    }
}

/// Says why a connect failed in words a user reads, independent of how the
/// network layer phrases its errors (turmoil's refusal text is only the
/// address).
fn connect_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        std::io::ErrorKind::TimedOut => "timed out".to_string(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::time::SystemTime;
    use tokio::io::DuplexStream;

    /// In-memory streams with a tiny buffer: a peer that does not read is
    /// then one that blocks writes after a few bytes.
    #[derive(Clone)]
    struct DuplexNet;

    struct NoListener;

    impl Listener for NoListener {
        type Stream = DuplexStream;
        async fn accept(&self) -> io::Result<(DuplexStream, SocketAddr)> {
            std::future::pending().await
        }
        fn local_addr(&self) -> io::Result<SocketAddr> {
            Err(io::ErrorKind::Unsupported.into())
        }
    }

    impl Net for DuplexNet {
        type Stream = DuplexStream;
        type Listener = NoListener;
        async fn bind(&self, _: SocketAddr) -> io::Result<NoListener> {
            Ok(NoListener)
        }
        async fn connect(&self, _: SocketAddr) -> io::Result<DuplexStream> {
            Err(io::ErrorKind::ConnectionRefused.into())
        }
        fn wall_clock(&self) -> SystemTime {
            SystemTime::UNIX_EPOCH
        }
    }

    const LINK: LinkId = LinkId(7);

    #[tokio::test]
    async fn a_link_that_never_reads_is_cut_instead_of_buffered() {
        let (mut links, _events) = Links::new(DuplexNet);
        let (ours, _theirs_never_read) = tokio::io::duplex(64);
        links.open(LINK, ours);
        let frame = vec![b'x'; 1024];
        let overflowed_at = (0..WRITE_QUEUE + 2)
            .find(|_| links.send(LINK, frame.clone()) == Queued::Overflowed)
            .expect("the queue is bounded");
        assert!(overflowed_at >= WRITE_QUEUE, "cut at {overflowed_at}");
        // The link is gone: later sends are dropped, not queued.
        assert_eq!(links.send(LINK, frame), Queued::Ok);
        assert!(!links.closed(LINK), "already forgotten");
    }

    #[tokio::test]
    async fn close_sends_what_was_queued_then_ends_the_stream() {
        let (mut links, _events) = Links::new(DuplexNet);
        let (ours, mut theirs) = tokio::io::duplex(64);
        links.open(LINK, ours);
        assert_eq!(links.send(LINK, b"one\n".to_vec()), Queued::Ok);
        assert_eq!(links.send(LINK, b"two\n".to_vec()), Queued::Ok);
        links.close(LINK);
        let mut got = Vec::new();
        theirs.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"one\ntwo\n");
    }

    #[tokio::test]
    async fn bytes_and_the_end_of_the_stream_are_reported() {
        let (mut links, mut events) = Links::new(DuplexNet);
        let (ours, mut theirs) = tokio::io::duplex(64);
        links.open(LINK, ours);
        theirs.write_all(b"hello").await.unwrap();
        match events.recv().await {
            Some(LinkEvent::Bytes { link, bytes }) => {
                assert_eq!((link, bytes.as_slice()), (LINK, &b"hello"[..]))
            }
            other => panic!("expected bytes, got {other:?}"),
        }
        drop(theirs);
        match events.recv().await {
            Some(LinkEvent::Closed { link, .. }) => assert_eq!(link, LINK),
            other => panic!("expected closed, got {other:?}"),
        }
        assert!(links.closed(LINK), "first report of the close");
    }

    #[tokio::test]
    async fn a_failed_connect_is_reported_for_its_link() {
        let (mut links, mut events) = Links::new(DuplexNet);
        links.connect(LINK, "127.0.0.1:9".parse().unwrap());
        match events.recv().await {
            Some(LinkEvent::ConnectFailed { link, .. }) => assert_eq!(link, LINK),
            other => panic!("expected connect failed, got {other:?}"),
        }
        assert!(links.connect_finished(LINK));
        assert!(!links.connect_finished(LINK), "reported once");
    }
}
