//! The sockets behind the state machines' link ids: one reader task and one
//! writer task per connection, and the bookkeeping the driver loops share.
//!
//! The driver's main loop must never wait on one socket, or one slow or
//! stuck peer would freeze every other conversation and every timer. So the
//! loop only ever hands bytes to a link's bounded queue (`try_send`),
//! and learns about the network through one channel of
//! [`LinkEvent`]s fed by the per-link tasks. A link whose queue is full is
//! a peer that stopped reading: it is cut off rather than buffered without
//! bound.
//!
//! Only `tokio::spawn`, tokio channels and tokio timers are used, so the
//! same code runs over turmoil's simulated sockets.

use crate::intake::{Intake, Turn};
use crate::net::{Listener, Net};
use crate::write_queue::{write_queue, Discarder, QueueReceiver, QueueSender, TrySendError};
use natter_core::registry::SourceKey;
use natter_core::LinkId;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::{AbortHandle, JoinHandle};

/// Bytes asked of the socket per read: bounds the memory one connection can
/// make the driver hold before the state machine has seen it. The buffer
/// exists only during the read (see `read_some`): an idle link holds none.
pub const READ_BUFFER: usize = 8 * 1024;

/// Bytes a link that takes turns ([`Links::open_from`]) reads before it
/// waits for its turn: what it holds while it waits. Once it has the
/// turn, what else arrived is read at once, up to [`READ_BUFFER`].
pub const READ_BEFORE_TURN: usize = 512;

/// The first buffer of a [`crate::SecureStream`]'s reads; it grows to
/// [`READ_BUFFER`] while reads fill it.
pub const READ_BUFFER_MIN: usize = 512;

/// Frames queued for one link before it counts as not reading. Frames are
/// bounded by the codec's frame limit, so this bounds a link's memory; it
/// is large enough for a 10,000-peer list (40 chunks) plus chat traffic.
/// A server also bounds the queue in bytes ([`Links::with_queue_limit`]).
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
    /// Bytes read from a link, split anywhere. The link's source has its
    /// next turn once the driver drops `turn`, after handling the bytes
    /// (see [`crate::intake`]).
    Bytes {
        link: LinkId,
        bytes: Vec<u8>,
        turn: Turn,
    },
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
            LinkEvent::Bytes { link, bytes, .. } => {
                write!(f, "Bytes({link}, {} bytes)", bytes.len())
            }
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
    /// The link's queue was full (see [`Overflow`]): the link has been
    /// cut and the state
    /// machine must be told it closed.
    Overflowed,
}

/// Which bound of a link's queue a send would have passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// [`WRITE_QUEUE`] frames waiting.
    Frames,
    /// More bytes waiting than the limit (the limit, in bytes).
    Bytes(usize),
}

/// The open links of one driver and the channel their tasks report on.
pub struct Links<N: Net> {
    net: N,
    events: mpsc::Sender<LinkEvent<N::Stream>>,
    open: BTreeMap<LinkId, LinkHandle>,
    /// Outgoing connections in progress, so that one the state machine
    /// gave up on can be cancelled and its late success ignored.
    dialing: BTreeMap<LinkId, AbortHandle>,
    /// Links closed gracefully whose writer may still be flushing (for at
    /// most [`LINGER`]); what they still hold is counted in `queued` until
    /// written, and they are cut first when a server is short of memory.
    /// Awaited (bounded) when the driver stops, so a last `bye` is not
    /// lost.
    closing: Vec<Closing>,
    accept: Option<AbortHandle>,
    /// Bytes queued on one link at most, not yet written to its socket.
    max_queue: usize,
    /// Bytes queued on the open and closing links, not yet written.
    queued: Arc<AtomicUsize>,
    /// The turns of the sources of links opened with one
    /// ([`Links::open_from`]).
    intake: Intake,
}

/// A link closed gracefully whose writer may still be flushing.
struct Closing {
    link: LinkId,
    /// Its bytes not yet written; its writer counts them down, and gives
    /// back what is left when it ends.
    queued: Arc<AtomicUsize>,
    discard: Discarder,
    writer: JoinHandle<()>,
}

/// The driver's grip on one connection's tasks. Dropping it is a graceful
/// close: the writer sends what was queued, shuts the socket down, and the
/// reader drains until the other side closes (bounded by [`LINGER`]).
struct LinkHandle {
    queue: QueueSender,
    /// Drops what `queue` holds when the link is cut.
    discard: Discarder,
    /// Bytes queued on this link and not yet written; the writer counts
    /// them down as it writes (see [`Written`]).
    queued: Arc<AtomicUsize>,
    /// Never written; dropping it tells both tasks the link is closing.
    _alive: watch::Sender<()>,
    reader: AbortHandle,
    writer: JoinHandle<()>,
}

impl<N: Net> Links<N> {
    /// An empty set of links and the receiver of their events; each
    /// link's queue is bounded in frames only ([`WRITE_QUEUE`]).
    pub fn new(net: N) -> (Self, mpsc::Receiver<LinkEvent<N::Stream>>) {
        Self::with_queue_limit(net, usize::MAX)
    }

    /// As [`Links::new`], each link's queue also bounded to `max_queue`
    /// bytes not yet written: a server's clients send small requests and
    /// may be sent big lists, and one that does not read must not make
    /// the server hold megabytes for it.
    pub fn with_queue_limit(
        net: N,
        max_queue: usize,
    ) -> (Self, mpsc::Receiver<LinkEvent<N::Stream>>) {
        let (events, rx) = mpsc::channel(EVENT_QUEUE);
        let links = Self {
            net,
            events,
            open: BTreeMap::new(),
            dialing: BTreeMap::new(),
            closing: Vec::new(),
            accept: None,
            max_queue,
            queued: Arc::new(AtomicUsize::new(0)),
            intake: Intake::default(),
        };
        (links, rx)
    }

    /// Bytes queued on the open links, and on the closed ones still
    /// flushing, not yet written to the sockets.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// The open link with the most bytes queued, and how many: the one a
    /// server short of memory cuts first.
    pub fn heaviest(&self) -> Option<(LinkId, usize)> {
        self.open
            .iter()
            .map(|(&link, handle)| (link, handle.queued.load(Ordering::Relaxed)))
            .filter(|&(_, bytes)| bytes > 0)
            .max_by_key(|&(link, bytes)| (bytes, std::cmp::Reverse(link)))
    }

    /// The closed link still flushing with the most bytes left, and how
    /// many: its client was being let go anyway, so a server short of
    /// memory drops what it has not read before cutting an open link.
    pub fn heaviest_closing(&self) -> Option<(LinkId, usize)> {
        self.closing
            .iter()
            .filter(|closing| !closing.writer.is_finished())
            .map(|closing| (closing.link, closing.queued.load(Ordering::Relaxed)))
            .filter(|&(_, bytes)| bytes > 0)
            .max_by_key(|&(link, bytes)| (bytes, std::cmp::Reverse(link)))
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

    /// Starts the reader and writer tasks of a connected stream, whose
    /// reads go to the driver as fast as it takes them.
    pub fn open(&mut self, link: LinkId, stream: N::Stream) {
        self.open_with(link, stream, None);
    }

    /// As [`Links::open`], for a connection from `source`: its reads take
    /// turns with those of the source's other links (see
    /// [`crate::intake`]).
    pub fn open_from(&mut self, link: LinkId, stream: N::Stream, source: SourceKey) {
        let turns = self.intake.turns_of(source);
        self.open_with(link, stream, Some(turns));
    }

    fn open_with(&mut self, link: LinkId, stream: N::Stream, turns: Option<Arc<Semaphore>>) {
        let (read, write) = tokio::io::split(stream);
        let (queue, queued) = write_queue(WRITE_QUEUE);
        let discard = queue.discarder();
        let (alive, alive_rx) = watch::channel(());
        let written = Written {
            link: Arc::new(AtomicUsize::new(0)),
            total: Arc::clone(&self.queued),
        };
        let reader = tokio::spawn(read_loop(
            link,
            read,
            turns,
            self.events.clone(),
            alive_rx.clone(),
        ));
        let writer = tokio::spawn(write_loop(
            link,
            write,
            queued,
            written.clone(),
            self.events.clone(),
            alive_rx,
        ));
        self.open.insert(
            link,
            LinkHandle {
                queue,
                discard,
                queued: written.link,
                _alive: alive,
                reader: reader.abort_handle(),
                writer,
            },
        );
    }

    /// Queues bytes on a link without ever waiting.
    pub fn send(&mut self, link: LinkId, bytes: Vec<u8>) -> Queued {
        match self.send_checked(link, bytes) {
            Ok(()) => Queued::Ok,
            Err(_) => Queued::Overflowed,
        }
    }

    /// As [`Links::send`], saying which bound of the queue was hit when
    /// the link had to be cut.
    pub fn send_checked(&mut self, link: LinkId, bytes: Vec<u8>) -> Result<(), Overflow> {
        let Some(handle) = self.open.get(&link) else {
            return Ok(());
        };
        // What the buffer holds, not only what it says: an encrypted
        // frame's buffer may be twice its length.
        let size = bytes.capacity();
        let overflow = if handle.queued.load(Ordering::Relaxed) + size > self.max_queue {
            Some(Overflow::Bytes(self.max_queue))
        } else {
            // Counted before the writer can see them, so it never counts
            // below zero.
            handle.queued.fetch_add(size, Ordering::Relaxed);
            self.queued.fetch_add(size, Ordering::Relaxed);
            let sent = handle.queue.try_send(bytes);
            if sent.is_err() {
                handle.queued.fetch_sub(size, Ordering::Relaxed);
                self.queued.fetch_sub(size, Ordering::Relaxed);
            }
            match sent {
                Ok(()) => None,
                // The writer already failed; its Closed event is on the way.
                Err(TrySendError::Closed(_)) => None,
                Err(TrySendError::Full(_)) => Some(Overflow::Frames),
            }
        };
        let Some(overflow) = overflow else {
            return Ok(());
        };
        tracing::warn!(
            %link,
            ?overflow,
            "the other side stopped reading; closing the link"
        );
        self.cut(link);
        Err(overflow)
    }

    /// Cuts a link at once, open or still flushing after a close: its
    /// tasks are aborted and what was queued on it is dropped now (and no
    /// longer counted). Unknown links are ignored.
    pub fn cut(&mut self, link: LinkId) {
        if let Some(handle) = self.open.remove(&link) {
            handle.discard.discard();
            handle.reader.abort();
            handle.writer.abort();
            self.uncount(&handle.queued);
        }
        for closing in self.closing.iter().filter(|closing| closing.link == link) {
            closing.discard.discard();
            closing.writer.abort();
            self.uncount(&closing.queued);
        }
        self.closing.retain(|closing| !closing.writer.is_finished());
    }

    /// Takes a link out of the count: nothing is added to it any more,
    /// and its writer's later counting down stops at zero.
    fn uncount(&self, link_queued: &AtomicUsize) {
        let left = link_queued.swap(0, Ordering::Relaxed);
        self.queued.fetch_sub(left, Ordering::Relaxed);
    }

    /// Closes a link after what was queued on it is sent; cancels it if it
    /// is still connecting. Unknown links are ignored.
    pub fn close(&mut self, link: LinkId) {
        if let Some(dial) = self.dialing.remove(&link) {
            dial.abort();
        }
        if let Some(handle) = self.open.remove(&link) {
            self.start_closing(link, handle);
        }
    }

    /// Moves an open link to the closing ones. Dropping the rest of its
    /// handle (queue sender, alive) starts the graceful close; what it
    /// still holds stays counted until written, or dropped by its writer
    /// after [`LINGER`].
    fn start_closing(&mut self, link: LinkId, handle: LinkHandle) {
        self.closing.retain(|closing| !closing.writer.is_finished());
        self.closing.push(Closing {
            link,
            queued: handle.queued,
            discard: handle.discard,
            writer: handle.writer,
        });
    }

    /// Forgets a link whose task reported it closed. True if it was open,
    /// i.e. the state machine has not been told yet.
    pub fn closed(&mut self, link: LinkId) -> bool {
        let Some(handle) = self.open.remove(&link) else {
            return false;
        };
        self.start_closing(link, handle);
        true
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
        let closing = std::mem::take(&mut self.closing);
        let all = async {
            for closing in closing {
                let _ = closing.writer.await;
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

/// Reads what arrives and forwards it, each read once the link's source
/// has a turn (if it has a source). When the driver closes the link,
/// keeps reading (and discarding) until the other side closes too, so
/// that unread data does not turn our close into a reset that could
/// destroy the last frames we sent.
async fn read_loop<S: crate::net::Stream>(
    link: LinkId,
    mut read: ReadHalf<S>,
    turns: Option<Arc<Semaphore>>,
    events: mpsc::Sender<LinkEvent<S>>,
    mut alive: watch::Receiver<()>,
) {
    let first_read = if turns.is_some() {
        READ_BEFORE_TURN
    } else {
        READ_BUFFER
    };
    // An error met while reading more after a turn came, reported after
    // the bytes read before it.
    let mut failed: Option<std::io::Error> = None;
    loop {
        tokio::select! {
            biased;
            _ = alive.changed() => break,
            result = async {
                match failed.take() {
                    Some(e) => Err(e),
                    None => read_some(&mut read, first_read).await,
                }
            } => {
                let event = match result {
                    Ok(bytes) if bytes.is_empty() => {
                        LinkEvent::Closed { link, reason: "closed by the other side".into() }
                    }
                    Ok(mut bytes) => {
                        let turn = Turn::take(turns.as_ref()).await;
                        // A full small read before the turn: more may be
                        // waiting.
                        if turns.is_some() && bytes.len() == READ_BEFORE_TURN {
                            if let Err(e) = read_ready(&mut read, &mut bytes).await {
                                failed = Some(e);
                            }
                        }
                        LinkEvent::Bytes { link, bytes, turn }
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
        while let Ok(bytes) = read_some(&mut read, READ_BUFFER).await {
            if bytes.is_empty() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// The next bytes the stream has (at most `limit`, itself at most
/// [`READ_BUFFER`]; empty at its end), in a buffer of their size.
///
/// The read goes to a buffer on the stack that lives only while the read
/// is polled: a stream writes into the buffer only when it returns ready,
/// so an idle link — a server holds thousands — keeps no read buffer.
async fn read_some<R: AsyncRead + Unpin>(read: &mut R, limit: usize) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::future::poll_fn(|cx| poll_read_onto(read, cx, limit, &mut bytes)).await?;
    Ok(bytes)
}

/// Appends to `bytes` what the stream already has, up to [`READ_BUFFER`]
/// in all, without waiting for more. The end of the stream is left for
/// the next read to find.
async fn read_ready<R: AsyncRead + Unpin>(
    read: &mut R,
    bytes: &mut Vec<u8>,
) -> std::io::Result<()> {
    let room = READ_BUFFER.saturating_sub(bytes.len());
    std::future::poll_fn(|cx| match poll_read_onto(read, cx, room, bytes) {
        Poll::Pending => Poll::Ready(Ok(())),
        ready => ready,
    })
    .await
}

/// One `poll_read` of at most `limit` bytes into a buffer on the stack
/// (see [`read_some`]), what it read appended to `bytes`.
fn poll_read_onto<R: AsyncRead + Unpin>(
    read: &mut R,
    cx: &mut std::task::Context<'_>,
    limit: usize,
    bytes: &mut Vec<u8>,
) -> Poll<std::io::Result<()>> {
    let mut buf = [0u8; READ_BUFFER];
    let mut filled = ReadBuf::new(&mut buf[..limit]);
    match Pin::new(read).poll_read(cx, &mut filled) {
        Poll::Ready(Ok(())) => {
            bytes.extend_from_slice(filled.filled());
            Poll::Ready(Ok(()))
        }
        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        Poll::Pending => Poll::Pending,
    }
}

/// The count of a link's bytes not yet written, and of all links': the
/// writer counts both down as it writes.
#[derive(Clone)]
struct Written {
    link: Arc<AtomicUsize>,
    total: Arc<AtomicUsize>,
}

impl Written {
    /// `bytes` left the queue (written, or dropped with the link). A link
    /// cut meanwhile was counted down to 0 already: never below.
    fn release(&self, bytes: usize) {
        let before = self
            .link
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(bytes))
            })
            .unwrap_or_else(|n| n);
        self.total.fetch_sub(before.min(bytes), Ordering::Relaxed);
    }

    /// The writer ends: what it did not write is dropped with it.
    fn release_all(&self) {
        let left = self.link.swap(0, Ordering::Relaxed);
        self.total.fetch_sub(left, Ordering::Relaxed);
    }
}

/// Writes queued frames in order. The queue closing (the driver dropped
/// its end) means "close after what is queued": flush, then shut the write
/// side down. Once closing, the rest is bounded by [`LINGER`] so a peer
/// that never reads cannot keep the task alive.
async fn write_loop<S: crate::net::Stream>(
    link: LinkId,
    mut write: WriteHalf<S>,
    mut queued: QueueReceiver,
    written: Written,
    events: mpsc::Sender<LinkEvent<S>>,
    mut alive: watch::Receiver<()>,
) {
    let work = async {
        while let Some(mut bytes) = queued.recv().await {
            // What the queued buffers held (see `Links::send_checked`).
            let mut held = bytes.capacity();
            // Frames queued meanwhile (a burst of receipts, list chunks) go
            // out in one write: one syscall instead of one per frame.
            while bytes.len() < WRITE_BATCH {
                match queued.try_recv() {
                    Some(more) => {
                        held += more.capacity();
                        bytes.extend_from_slice(&more);
                    }
                    None => break,
                }
            }
            write.write_all(&bytes).await?;
            written.release(held);
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
    written.release_all();
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
    use tokio::io::{AsyncReadExt, DuplexStream};

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
    async fn a_link_that_never_reads_is_cut_once_its_queue_passes_the_byte_limit() {
        let (mut links, _events) = Links::with_queue_limit(DuplexNet, 10 * 1024);
        let (ours, _theirs_never_read) = tokio::io::duplex(64);
        links.open(LINK, ours);
        let frame = vec![b'x'; 1024];
        let outcomes: Vec<_> = (0..12)
            .map(|_| links.send_checked(LINK, frame.clone()))
            .collect();
        let cut_at = outcomes.iter().position(Result::is_err).expect("bounded");
        // Every byte counts until its write returns, which a socket that
        // is never read does not let happen.
        assert_eq!(cut_at, 10, "{outcomes:?}");
        assert_eq!(outcomes[cut_at], Err(Overflow::Bytes(10 * 1024)));
        assert_eq!(links.queued(), 0, "a cut link holds nothing any more");
        assert_eq!(links.heaviest(), None);
    }

    #[tokio::test]
    async fn queued_bytes_are_counted_until_written() {
        let (mut links, _events) = Links::with_queue_limit(DuplexNet, 1 << 20);
        let (ours, mut theirs) = tokio::io::duplex(1 << 16);
        links.open(LINK, ours);
        assert_eq!(links.send_checked(LINK, vec![b'x'; 5_000]), Ok(()));
        let mut got = vec![0; 5_000];
        theirs.read_exact(&mut got).await.unwrap();
        // The writer counts down after its write returns.
        while links.queued() > 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(links.heaviest(), None);
    }

    #[tokio::test]
    async fn a_closed_link_counts_what_it_could_not_write_until_it_is_cut() {
        let (mut links, _events) = Links::with_queue_limit(DuplexNet, 1 << 20);
        let (ours, _theirs_never_read) = tokio::io::duplex(64);
        links.open(LINK, ours);
        assert_eq!(links.send_checked(LINK, vec![b'x'; 5_000]), Ok(()));
        links.close(LINK);
        // Nobody reads: the frame waits in the closing writer, counted, so
        // that a server's memory budget sees it.
        assert_eq!(links.queued(), 5_000);
        assert_eq!(links.heaviest(), None, "no open link holds anything");
        assert_eq!(links.heaviest_closing(), Some((LINK, 5_000)));
        links.cut(LINK);
        assert_eq!(links.queued(), 0);
        assert_eq!(links.heaviest_closing(), None);
    }

    #[tokio::test]
    async fn a_closed_link_gives_back_what_it_could_not_write_after_the_linger() {
        let (mut links, _events) = Links::with_queue_limit(DuplexNet, 1 << 20);
        let (ours, _theirs_never_read) = tokio::io::duplex(64);
        links.open(LINK, ours);
        assert_eq!(links.send_checked(LINK, vec![b'x'; 5_000]), Ok(()));
        links.close(LINK);
        let given_back = async {
            while links.queued() > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(LINGER * 5, given_back)
            .await
            .expect("the writer gives up after LINGER and its bytes leave the count");
        assert_eq!(links.heaviest_closing(), None);
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
            Some(LinkEvent::Bytes { link, bytes, .. }) => {
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
    async fn a_busy_source_has_one_read_at_the_driver_so_another_source_is_not_queued_behind_it() {
        let (mut links, mut events) = Links::new(DuplexNet);
        let busy = SourceKey::of("10.0.0.1".parse().unwrap());
        let other = SourceKey::of("10.0.0.2".parse().unwrap());
        let mut busy_ends = Vec::new();
        for i in 0..20 {
            let (ours, mut theirs) = tokio::io::duplex(1024);
            links.open_from(LinkId(100 + i), ours, busy);
            theirs.write_all(b"busy").await.unwrap();
            busy_ends.push(theirs);
        }
        let (ours, mut theirs) = tokio::io::duplex(1024);
        links.open_from(LINK, ours, other);
        theirs.write_all(b"other").await.unwrap();
        // Every reader has read its bytes (a current-thread runtime runs
        // them while this test yields).
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        let mut reached = Vec::new();
        let mut turns = Vec::new();
        while let Ok(event) = events.try_recv() {
            if let LinkEvent::Bytes { link, turn, .. } = event {
                reached.push(link);
                turns.push(turn);
            }
        }
        // One of the busy source's 20 reads, and the other source's.
        assert_eq!(reached.len(), 2, "{reached:?}");
        assert!(reached.contains(&LINK), "{reached:?}");
        // Once the driver is done with an event, the busy source's next
        // read comes.
        drop(turns);
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        match events.try_recv() {
            Ok(LinkEvent::Bytes { link, .. }) => assert!(link.0 >= 100, "{link}"),
            other => panic!("expected the busy source's next read, got {other:?}"),
        }
        assert!(events.try_recv().is_err(), "one at a time");
    }

    #[tokio::test]
    async fn a_link_that_takes_turns_still_reads_what_arrived_at_once() {
        let (mut links, mut events) = Links::new(DuplexNet);
        let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
        let sent = vec![b'z'; 3 * READ_BEFORE_TURN + 7];
        theirs.write_all(&sent).await.unwrap();
        links.open_from(LINK, ours, SourceKey::of("10.0.0.1".parse().unwrap()));
        match events.recv().await {
            Some(LinkEvent::Bytes { link, bytes, .. }) => {
                assert_eq!((link, bytes.len()), (LINK, sent.len()), "one event")
            }
            other => panic!("expected bytes, got {other:?}"),
        }
        drop(theirs);
        match events.recv().await {
            Some(LinkEvent::Closed { link, .. }) => assert_eq!(link, LINK),
            other => panic!("expected closed, got {other:?}"),
        }
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
