//! The one way to run a natter server or peer in-process: a builder and a
//! handle. The demo, the bench's own processes, the soak test, the
//! driver tests and the simulation all start their peers and servers
//! here, so none of them wires channels to [`run_peer`] or
//! [`run_server`] by hand.
//!
//! - On tokio, [`PeerBuilder::spawn`] and [`ServerBuilder::spawn`] bind,
//!   start a task and give the handle.
//! - Under turmoil, sockets can only be bound inside the host that owns
//!   them: [`PeerBuilder::build`] and [`ServerBuilder::build`] give the
//!   handle at once and a task whose [`PeerTask::run`] the host awaits.
//!
//! A [`PeerHandle`] types lines, ends input, reads or waits for events
//! and tells the exit code; a [`ServerHandle`] reads or waits for the
//! directory log and stops the server.

use crate::bindings::NameBindings;
use crate::disk::{Disk, StdDisk};
use crate::net::{Listener, Net};
use crate::peer::{run_peer, EventSink, EXIT_STARTUP_FAILED};
use crate::server::run_server;
use crate::store::{Embedded, Store};
use crate::transcripts::Transcripts;
use natter_core::{command, Command, Event, PeerConfig, RegistryConfig};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Lines read ahead of the peer, as in `natter peer`: the peer stops
/// taking lines while its window is full, and then so does the handle.
const LINE_QUEUE: usize = 16;

/// What the handle hands the peer for a line the user typed, parsed as a
/// user interface does (the one place that knows the peer's input type);
/// a line no interface would pass on is the error event the user sees
/// (returned by value, as the event sinks take events: an event is about
/// 150 bytes, and moving it costs less than boxing every one).
#[allow(clippy::result_large_err)]
fn to_input(line: &str) -> Result<Command, Event> {
    command::parse(line).map_err(Event::from)
}

/// A wait that did not end as hoped.
#[derive(Debug, Error)]
pub enum WaitError {
    #[error("{who}: nothing matching within {limit:?}; last seen: {seen}")]
    TimedOut {
        who: String,
        limit: Duration,
        seen: String,
    },
    #[error("{who} stopped before anything matching came; last seen: {seen}")]
    Stopped { who: String, seen: String },
}

/// A line the peer did not take.
#[derive(Debug, Error)]
pub enum InputError {
    /// The input was ended, or the peer exited.
    #[error("{who} takes no more input")]
    Closed { who: String },
    /// The lines read ahead fill the buffer (the peer takes none now).
    #[error("{who} takes no line now: its input buffer is full")]
    Full { who: String },
    /// A line no user interface would pass on (a [`Typist`] cannot show
    /// the error event to anyone).
    #[error("{line:?} is not a line natter takes")]
    Refused { line: String },
}

/// Loopback with a port the system picks: where in-process peers and
/// servers listen unless told otherwise.
fn loopback() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// A peer to start.
pub struct PeerBuilder<N: Net, D: Disk = StdDisk> {
    net: N,
    config: PeerConfig,
    listen: SocketAddr,
    transcripts: Transcripts<D>,
    event_buffer: Option<usize>,
    line_buffer: usize,
}

impl<N: Net> PeerBuilder<N, StdDisk> {
    /// A peer named `name` that registers with `server`, listens on
    /// loopback (port chosen by the system) and writes its transcripts in
    /// `transcripts` on the machine's disk; its events are never pushed
    /// back.
    pub fn new(net: N, name: &str, server: SocketAddr, transcripts: impl Into<PathBuf>) -> Self {
        Self::on_disk(net, name, server, StdDisk, transcripts)
    }
}

impl<N: Net, D: Disk> PeerBuilder<N, D> {
    /// As [`PeerBuilder::new`], with the transcripts in `dir` on `disk`.
    pub fn on_disk(
        net: N,
        name: &str,
        server: SocketAddr,
        disk: D,
        dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            net,
            config: PeerConfig::new(name, server, 0),
            listen: loopback(),
            transcripts: Transcripts::on(disk, dir),
            event_buffer: None,
            line_buffer: LINE_QUEUE,
        }
    }

    /// Listens on `addr` instead of loopback.
    pub fn listen_on(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Adjusts the configuration (the listening port is set when bound).
    pub fn config(mut self, tune: impl FnOnce(&mut PeerConfig)) -> Self {
        tune(&mut self.config);
        self
    }

    /// Holds at most `capacity` events the handle has not read; beyond
    /// that the peer pushes back as behind a slow terminal.
    pub fn event_buffer(mut self, capacity: usize) -> Self {
        self.event_buffer = Some(capacity);
        self
    }

    /// Lets `capacity` lines wait for the peer to take them, instead of
    /// the 16 of `natter peer`: a script may type many lines at once.
    pub fn line_buffer(mut self, capacity: usize) -> Self {
        self.line_buffer = capacity;
        self
    }

    /// The peer's task (to run where its sockets live) and its handle.
    pub fn build(self) -> (PeerTask<N, D>, PeerHandle) {
        let (lines, line_rx) = mpsc::channel(self.line_buffer);
        let held = Arc::new(AtomicUsize::new(0));
        let (sink, events) = match self.event_buffer {
            None => {
                let (tx, rx) = mpsc::unbounded_channel();
                (Sink::Unbounded(tx), Events::Unbounded(rx))
            }
            Some(capacity) => {
                let (tx, rx) = mpsc::channel(capacity);
                (Sink::Bounded(tx), Events::Bounded(rx))
            }
        };
        let (exit_tx, exit) = watch::channel(None);
        let (addr_tx, addr) = watch::channel(None);
        let handle = PeerHandle {
            name: self.config.name.clone(),
            lines: Some(lines),
            refused: VecDeque::new(),
            events,
            seen: Vec::new(),
            exit,
            addr,
            held: held.clone(),
            task: None,
        };
        let task = PeerTask {
            net: self.net,
            config: self.config,
            listen: self.listen,
            transcripts: self.transcripts,
            lines: line_rx,
            sink: HandleSink { sink, held },
            exit: exit_tx,
            addr: addr_tx,
        };
        (task, handle)
    }

    /// Binds and starts the peer on the current tokio runtime. Dropping
    /// the handle stops the peer as a crash would.
    pub async fn spawn(self) -> io::Result<PeerHandle> {
        let (task, mut handle) = self.build();
        let listener = task.bind().await?;
        handle.task = Some(tokio::spawn(task.run_on(listener)));
        Ok(handle)
    }
}

/// A peer ready to run, with everything its handle talks to.
pub struct PeerTask<N: Net, D: Disk> {
    net: N,
    config: PeerConfig,
    listen: SocketAddr,
    transcripts: Transcripts<D>,
    lines: mpsc::Receiver<Command>,
    sink: HandleSink,
    exit: watch::Sender<Option<i32>>,
    addr: watch::Sender<Option<SocketAddr>>,
}

impl<N: Net, D: Disk> PeerTask<N, D> {
    /// Binds the listener and runs the peer until it exits; returns its
    /// exit code. A bind error is returned (and the exit code is then
    /// [`EXIT_STARTUP_FAILED`]).
    pub async fn run(self) -> io::Result<i32> {
        match self.bind().await {
            Ok(listener) => Ok(self.run_on(listener).await),
            Err(e) => {
                self.exit.send_replace(Some(EXIT_STARTUP_FAILED));
                Err(e)
            }
        }
    }

    async fn bind(&self) -> io::Result<N::Listener> {
        let listener = self.net.bind(self.listen).await?;
        self.addr.send_replace(Some(listener.local_addr()?));
        Ok(listener)
    }

    async fn run_on(mut self, listener: N::Listener) -> i32 {
        if let Some(addr) = *self.addr.borrow() {
            self.config.listen_port = addr.port();
        }
        let code = run_peer(
            self.net,
            listener,
            self.config,
            self.transcripts,
            None,
            self.lines,
            self.sink,
        )
        .await;
        self.exit.send_replace(Some(code));
        code
    }
}

/// A running (or finished) peer, as its user sees it.
pub struct PeerHandle {
    name: String,
    lines: Option<mpsc::Sender<Command>>,
    /// Errors for lines refused before reaching the peer, read before the
    /// peer's next events.
    refused: VecDeque<Event>,
    events: Events,
    /// Events consumed by [`PeerHandle::wait_for`], in order.
    seen: Vec<Event>,
    exit: watch::Receiver<Option<i32>>,
    addr: watch::Receiver<Option<SocketAddr>>,
    held: Arc<AtomicUsize>,
    task: Option<JoinHandle<i32>>,
}

impl PeerHandle {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the peer listens, once bound.
    pub fn addr(&self) -> Option<SocketAddr> {
        *self.addr.borrow()
    }

    /// The user types `line`; waits while the peer takes no lines (its
    /// window is full). A line no user interface would pass on is not
    /// sent: its error is the next event.
    pub async fn send(&mut self, line: &str) -> Result<(), InputError> {
        let closed = || InputError::Closed {
            who: self.name.clone(),
        };
        let lines = self.lines.as_ref().ok_or_else(closed)?;
        match to_input(line) {
            Ok(input) => lines.send(input).await.map_err(|_| closed()),
            Err(refused) => {
                self.refused.push_back(refused);
                Ok(())
            }
        }
    }

    /// The user types `line` if the peer takes it now (see
    /// [`PeerHandle::send`]).
    pub fn try_send(&mut self, line: &str) -> Result<(), InputError> {
        let who = self.name.clone();
        let lines = self
            .lines
            .as_ref()
            .ok_or(InputError::Closed { who: who.clone() })?;
        match to_input(line) {
            Ok(input) => lines.try_send(input).map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => InputError::Full { who },
                mpsc::error::TrySendError::Closed(_) => InputError::Closed { who },
            }),
            Err(refused) => {
                self.refused.push_back(refused);
                Ok(())
            }
        }
    }

    /// Another way to type, for a task of its own (it keeps the input
    /// open until dropped).
    pub fn typist(&self) -> Typist {
        Typist {
            name: self.name.clone(),
            lines: self.lines.clone(),
        }
    }

    /// The end of input: the user quits.
    pub fn end_input(&mut self) {
        self.lines = None;
    }

    /// The next event; `None` once the peer has exited and every event
    /// was read.
    pub async fn next_event(&mut self) -> Option<Event> {
        if let Some(refused) = self.refused.pop_front() {
            return Some(refused);
        }
        match &mut self.events {
            Events::Unbounded(rx) => rx.recv().await,
            Events::Bounded(rx) => rx.recv().await,
        }
    }

    /// The next event if there is one now.
    pub fn try_event(&mut self) -> Option<Event> {
        if let Some(refused) = self.refused.pop_front() {
            return Some(refused);
        }
        match &mut self.events {
            Events::Unbounded(rx) => rx.try_recv().ok(),
            Events::Bounded(rx) => rx.try_recv().ok(),
        }
    }

    /// Reads events until one matches `wanted` and returns it; gives up
    /// after `limit`. What was read on the way is kept in
    /// [`PeerHandle::seen`].
    pub async fn wait_for(
        &mut self,
        limit: Duration,
        wanted: impl Fn(&Event) -> bool,
    ) -> Result<Event, WaitError> {
        let wait = async {
            while let Some(event) = self.next_event().await {
                self.seen.push(event.clone());
                if wanted(&event) {
                    return Some(event);
                }
            }
            None
        };
        let outcome = tokio::time::timeout(limit, wait).await;
        let who = self.name.clone();
        let seen = last_seen(&self.seen);
        match outcome {
            Ok(Some(event)) => Ok(event),
            Ok(None) => Err(WaitError::Stopped { who, seen }),
            Err(_) => Err(WaitError::TimedOut { who, limit, seen }),
        }
    }

    /// Every event [`PeerHandle::wait_for`] read, in order.
    pub fn seen(&self) -> &[Event] {
        &self.seen
    }

    /// The exit code, once the peer has exited.
    pub fn exit_code(&self) -> Option<i32> {
        *self.exit.borrow()
    }

    /// Waits (at most `limit`) for the peer to exit; returns its code.
    pub async fn exited(&mut self, limit: Duration) -> Result<i32, WaitError> {
        let outcome = tokio::time::timeout(limit, self.exit.wait_for(Option::is_some)).await;
        match outcome {
            Ok(Ok(code)) => Ok(code.expect("waited for it")),
            Ok(Err(_)) => Err(WaitError::Stopped {
                who: self.name.clone(),
                seen: last_seen(&self.seen),
            }),
            Err(_) => Err(WaitError::TimedOut {
                who: self.name.clone(),
                limit,
                seen: last_seen(&self.seen),
            }),
        }
    }

    /// The most events the peer ever held because nobody read them.
    pub fn max_held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

impl Drop for PeerHandle {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl fmt::Debug for PeerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerHandle")
            .field("name", &self.name)
            .field("addr", &self.addr())
            .field("exit", &self.exit_code())
            .finish_non_exhaustive()
    }
}

/// Types lines into a peer from a task of its own.
#[derive(Clone)]
pub struct Typist {
    name: String,
    lines: Option<mpsc::Sender<Command>>,
}

impl Typist {
    /// As [`PeerHandle::send`], but a refused line is an error.
    pub async fn send(&self, line: &str) -> Result<(), InputError> {
        let closed = || InputError::Closed {
            who: self.name.clone(),
        };
        let lines = self.lines.as_ref().ok_or_else(closed)?;
        let input = to_input(line).map_err(|_| InputError::Refused {
            line: line.to_string(),
        })?;
        lines.send(input).await.map_err(|_| closed())
    }
}

/// The last few events, for a failed wait's message.
fn last_seen(seen: &[Event]) -> String {
    let from = seen.len().saturating_sub(8);
    format!("{:?}", &seen[from..])
}

enum Events {
    Unbounded(mpsc::UnboundedReceiver<Event>),
    Bounded(mpsc::Receiver<Event>),
}

enum Sink {
    Unbounded(mpsc::UnboundedSender<Event>),
    Bounded(mpsc::Sender<Event>),
}

/// The peer's end of its handle's event channel; remembers the most
/// events the driver ever held for it.
struct HandleSink {
    sink: Sink,
    held: Arc<AtomicUsize>,
}

impl EventSink for HandleSink {
    fn offer(&self, event: Event) -> Result<(), Event> {
        match &self.sink {
            Sink::Unbounded(tx) => tx.offer(event),
            Sink::Bounded(tx) => tx.offer(event),
        }
    }

    async fn room(&self) {
        match &self.sink {
            Sink::Unbounded(tx) => tx.room().await,
            Sink::Bounded(tx) => tx.room().await,
        }
    }

    fn backlog(&self, held: usize) {
        self.held.fetch_max(held, Ordering::Relaxed);
    }
}

/// A directory server to start.
pub struct ServerBuilder<N: Net, S: Store = Embedded> {
    net: N,
    config: RegistryConfig,
    listen: SocketAddr,
    logs: bool,
    store: S,
}

impl<N: Net> ServerBuilder<N> {
    /// A server with the default configuration on loopback (port chosen
    /// by the system), keeping no log, with the embedded store in memory.
    pub fn new(net: N) -> Self {
        Self {
            net,
            config: RegistryConfig::default(),
            listen: loopback(),
            logs: false,
            store: Embedded::default(),
        }
    }

    /// Keeps the name bindings in `store`, as `natter server` does: loaded
    /// at start, every change written. Without it they live in memory
    /// only, so a restarted server has forgotten who owns which name.
    pub fn store(mut self, store: NameBindings) -> Self {
        self.store = Embedded::from(store);
        self
    }
}

impl<N: Net, S: Store> ServerBuilder<N, S> {
    /// Runs on `store` instead: a [`crate::Shared`] one, for a server that
    /// shares its directory with others.
    pub fn with_store<T: Store>(self, store: T) -> ServerBuilder<N, T> {
        ServerBuilder {
            net: self.net,
            config: self.config,
            listen: self.listen,
            logs: self.logs,
            store,
        }
    }

    pub fn config(mut self, config: RegistryConfig) -> Self {
        self.config = config;
        self
    }

    /// Listens on `addr` instead of loopback.
    pub fn listen_on(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Gives the directory log's lines to the handle; they queue until
    /// read, so only ask for them if they will be read.
    pub fn logs(mut self) -> Self {
        self.logs = true;
        self
    }

    /// The server's task (to run where its sockets live) and its handle.
    pub fn build(self) -> (ServerTask<N, S>, ServerHandle) {
        let (hook, logs) = if self.logs {
            let (tx, rx) = mpsc::unbounded_channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let (stop, stopped) = oneshot::channel();
        let (addr_tx, addr) = watch::channel(None);
        let handle = ServerHandle {
            addr,
            logs,
            stop: Some(stop),
            task: None,
        };
        let task = ServerTask {
            net: self.net,
            config: self.config,
            listen: self.listen,
            store: self.store,
            hook,
            stopped,
            addr: addr_tx,
        };
        (task, handle)
    }

    /// Binds and starts the server on the current tokio runtime. Dropping
    /// the handle stops the server at once.
    pub async fn spawn(self) -> io::Result<ServerHandle> {
        let (task, handle) = self.build();
        let listener = task.net.bind(task.listen).await?;
        Ok(task.spawn_on(listener, handle))
    }

    /// Starts the server on the current tokio runtime with a listener
    /// bound by the caller (an in-memory one, say).
    pub fn spawn_on(self, listener: N::Listener) -> ServerHandle {
        let (task, handle) = self.build();
        task.spawn_on(listener, handle)
    }
}

/// A server ready to run, with everything its handle talks to.
pub struct ServerTask<N: Net, S: Store = Embedded> {
    net: N,
    config: RegistryConfig,
    listen: SocketAddr,
    store: S,
    hook: Option<mpsc::UnboundedSender<String>>,
    stopped: oneshot::Receiver<()>,
    addr: watch::Sender<Option<SocketAddr>>,
}

impl<N: Net, S: Store> ServerTask<N, S> {
    /// Binds and serves until the handle stops the server (or the host
    /// goes down; dropping the handle does not stop it). Fails if the
    /// store cannot be read at start.
    pub async fn run(self) -> io::Result<()> {
        let listener = self.net.bind(self.listen).await?;
        self.run_on(listener).await.map_err(io::Error::other)
    }

    async fn run_on(self, listener: N::Listener) -> Result<(), S::Error> {
        let Self {
            net,
            config,
            store,
            hook,
            stopped,
            addr,
            ..
        } = self;
        addr.send_replace(listener.local_addr().ok());
        let stopped = async move {
            if stopped.await.is_err() {
                // The handle is gone without asking: serve on.
                std::future::pending::<()>().await;
            }
        };
        run_server(net, listener, config, store, hook, stopped).await
    }

    fn spawn_on(self, listener: N::Listener, mut handle: ServerHandle) -> ServerHandle {
        self.addr.send_replace(listener.local_addr().ok());
        handle.task = Some(tokio::spawn(async move {
            if let Err(e) = self.run_on(listener).await {
                tracing::error!(error = %e, "the server cannot start: {e}");
            }
        }));
        handle
    }
}

/// A running directory server.
pub struct ServerHandle {
    addr: watch::Receiver<Option<SocketAddr>>,
    logs: Option<mpsc::UnboundedReceiver<String>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// Where the server listens, once bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
            .borrow()
            .expect("the server is bound before its address is asked")
    }

    /// The next line of the directory log (see [`ServerBuilder::logs`]);
    /// `None` once the server has stopped.
    pub async fn next_log(&mut self) -> Option<String> {
        match &mut self.logs {
            Some(logs) => logs.recv().await,
            None => None,
        }
    }

    /// Reads the log until a line matches `wanted` and returns it; gives
    /// up after `limit`.
    pub async fn wait_for_log(
        &mut self,
        limit: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<String, WaitError> {
        let mut seen = Vec::new();
        let wait = async {
            while let Some(line) = self.next_log().await {
                if wanted(&line) {
                    return Some(line);
                }
                seen.push(line);
            }
            None
        };
        let outcome = tokio::time::timeout(limit, wait).await;
        let who = "the server".to_string();
        let seen = format!("{:?}", &seen[seen.len().saturating_sub(8)..]);
        match outcome {
            Ok(Some(line)) => Ok(line),
            Ok(None) => Err(WaitError::Stopped { who, seen }),
            Err(_) => Err(WaitError::TimedOut { who, limit, seen }),
        }
    }

    /// The next log line if there is one now.
    pub fn try_log(&mut self) -> Option<String> {
        self.logs.as_mut()?.try_recv().ok()
    }

    /// Stops the server (connections are closed gracefully) and waits, at
    /// most `limit`, for it to finish.
    pub async fn stop(mut self, limit: Duration) -> Result<(), WaitError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        match tokio::time::timeout(limit, task).await {
            Ok(_) => Ok(()),
            Err(_) => Err(WaitError::TimedOut {
                who: "the server".to_string(),
                limit,
                seen: "its shutdown".to_string(),
            }),
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
