//! One chat peer's driver: runs a [`Peer`] over a [`Net`], with typed lines
//! coming in on a channel and events for the user going out on another.
//!
//! The peer decides everything; this loop moves bytes, link events, lines
//! and timer expiry in, and carries the peer's outputs out, in order, after
//! every call into it. The user interface (a terminal line editor, JSON on
//! standard output, a scripted demo or a simulation) sits on the other side
//! of the two channels and is not this module's business.

use crate::disk::Disk;
use crate::link::{LinkEvent, Links, Queued};
use crate::net::{Clock, Net};
use crate::pins::{PinFile, Pins};
use crate::transcripts::Transcripts;
use natter_core::drive::{Drive, Effects, Sent, Unwritten};
use natter_core::{Command, ErrorCode, ErrorDetail, Event, LinkId, Peer, PeerConfig, PeerInput};
use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use tokio::sync::mpsc;

/// Bytes of typed messages read ahead of a peer that has no room for
/// them yet (see [`run_peer`]): 1 MiB, thousands of messages, so that a
/// paste into a chat whose partner stopped answering never keeps `/leave`
/// or `/quit` from being read.
pub const MAX_TYPED_AHEAD: usize = 1 << 20;

/// Exit code of a peer that could not start (bad transcripts directory).
pub const EXIT_STARTUP_FAILED: i32 = 1;

/// Network inputs already waiting that are taken together, with one sync
/// of the transcripts for all of them (group commit across reads: while
/// one sync runs, the next messages queue up, and are then recorded with
/// the next one). Bounded so that timers and lines still get their turn.
const NETWORK_BATCH: usize = 64;

/// Lines of the user already waiting that are taken together, with one
/// commit (see [`NETWORK_BATCH`]): a script piping messages, or a paste,
/// then costs one transcript write for all of them. Bounded like the
/// network's batch, so that the network and timers still get their turn.
const LINE_BATCH: usize = 64;

/// Events held for a sink that has no room, beyond which the driver stops
/// reading the network too. Far above what a chat can cause (the partner
/// stops at its window of 64 messages without receipt, and receipts wait
/// while events are held); reached only if the network floods the peer
/// with events some other way (a caller dialling in a loop), and then
/// memory wins over liveness.
pub const MAX_HELD_EVENTS: usize = 1024;

/// Runs one peer until it exits, and returns its exit code.
///
/// - `listener`: already bound by the caller (so a bind error is reported
///   where the port was chosen); `config.listen_port` must be its port.
/// - `transcripts`: prepared here (see [`Transcripts::prepare`]); if that
///   fails, an `error` event is sent and the peer exits with
///   [`EXIT_STARTUP_FAILED`] before contacting anyone.
/// - `lines`: the user's commands, parsed by the user interface. Commands
///   are always taken (while no events are held); typed messages the peer
///   has no room for yet (too many wait for the window of the chat they
///   go to) are read ahead and kept here, up to [`MAX_TYPED_AHEAD`]
///   bytes, so a command typed after them is still taken; only past that
///   does reading stop, which pushes back on whoever writes (a script
///   piping messages). The channel
///   closing is the end of input, which means `/quit`.
/// - `events`: every event for the user, in order (see [`EventSink`]:
///   a bounded channel makes a slow reader push back). A closed receiver
///   is not an error: the peer goes on.
pub async fn run_peer<N: Net, D: Disk, E: EventSink>(
    net: N,
    listener: N::Listener,
    config: PeerConfig,
    mut transcripts: Transcripts<D>,
    pins: Option<Pins>,
    mut lines: mpsc::Receiver<Command>,
    events: E,
) -> i32 {
    if let Err(e) = transcripts.prepare() {
        let detail = ErrorDetail::TranscriptsUnusable {
            reason: e.to_string(),
        };
        let mut event = Event::error(ErrorCode::TranscriptFailed, detail);
        while let Err(back) = events.offer(event) {
            event = back;
            events.room().await;
        }
        return EXIT_STARTUP_FAILED;
    }
    let clock = Clock::start();
    let (links, mut network) = Links::new(net.clone());
    let mut driver = Driver {
        peer: Peer::new(config, clock.now(&net)),
        drive: Drive::new(),
        io: Io {
            links,
            transcripts,
            pins,
            events,
            held: VecDeque::new(),
            exit: None,
        },
        typed: TypedAhead::default(),
        clock,
        net,
    };
    driver.io.links.listen(listener);
    driver.drain();
    let mut input_open = true;
    while driver.io.exit.is_none() {
        driver.pass_typed();
        let deadline = driver
            .peer
            .poll_timeout()
            .map(|at| driver.clock.deadline(at));
        // While the user's events are not taken, the network is still
        // read (pings are answered, links stay alive) but receipts wait
        // (see `natter_core::drive`), so the partner stops at its window;
        // the user's lines, which make events too, wait as well.
        let backlog = !driver.io.held.is_empty();
        let read_network = driver.io.held.len() < MAX_HELD_EVENTS;
        let take_line = input_open && !backlog && driver.typed.bytes < MAX_TYPED_AHEAD;
        tokio::select! {
            biased;
            () = crate::sleep_until(deadline) => {
                let now = driver.clock.now(&driver.net);
                driver.peer.handle_timeout(now);
                driver.drain();
            }
            () = driver.io.events.room(), if backlog => driver.release(),
            Some(event) = network.recv(), if read_network => {
                driver.network_reads(event, &mut network);
            }
            line = lines.recv(), if take_line => match line {
                Some(command) => driver.commands(command, &mut lines),
                None => {
                    input_open = false;
                    driver.hand_in_typed();
                    driver.input(PeerInput::EndOfInput);
                }
            },
        }
    }
    let code = driver.io.exit.unwrap_or(0);
    while !driver.io.held.is_empty() {
        driver.io.events.room().await;
        driver.io.release();
    }
    // Let the last frames (the partner's `bye`, the server's `bye`) go out
    // before the caller ends the process. Nobody reads link events any
    // more: readers waiting to report one give up at once.
    drop(network);
    driver.io.links.shutdown().await;
    code
}

/// Where a peer's events go.
///
/// An unbounded channel never pushes back (the demo, the simulation). A
/// bounded one does: when it is full the driver holds the events and
/// withholds the receipts of messages received meanwhile until there is
/// room, so a reader slower than the network (a terminal, a pipe nobody
/// empties) slows the partner down through the partner's window of
/// unacknowledged messages, instead of events queueing without bound,
/// while pings and pongs keep both links alive.
pub trait EventSink: Send + 'static {
    /// Passes `event` on, or hands it back if there is no room now. An
    /// event for a receiver that is gone is dropped (`Ok`). Events move by
    /// value (about 150 bytes) on this path of every event: no box each.
    #[allow(clippy::result_large_err)]
    fn offer(&self, event: Event) -> Result<(), Event>;
    /// Completes when there may be room again.
    fn room(&self) -> impl Future<Output = ()> + Send;
    /// Told how many events the driver holds for want of room, each time
    /// that number grows: a user interface can say it is behind, a test
    /// can bound it.
    fn backlog(&self, _held: usize) {}
}

impl EventSink for mpsc::UnboundedSender<Event> {
    fn offer(&self, event: Event) -> Result<(), Event> {
        let _ = self.send(event);
        Ok(())
    }

    async fn room(&self) {}
}

impl EventSink for mpsc::Sender<Event> {
    fn offer(&self, event: Event) -> Result<(), Event> {
        match self.try_send(event) {
            Err(mpsc::error::TrySendError::Full(event)) => Err(event),
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => Ok(()),
        }
    }

    async fn room(&self) {
        // The slot is released at once: `offer` takes it again.
        let _ = self.reserve().await;
    }
}

/// Typed messages read ahead of the peer, in order, and their size.
#[derive(Default)]
struct TypedAhead {
    messages: VecDeque<Command>,
    bytes: usize,
}

impl TypedAhead {
    fn push(&mut self, message: Command) {
        if let Command::Say(text) = &message {
            self.bytes += text.len();
        }
        self.messages.push_back(message);
    }

    fn pop(&mut self) -> Option<Command> {
        let message = self.messages.pop_front()?;
        if let Command::Say(text) = &message {
            self.bytes -= text.len();
        }
        Some(message)
    }
}

struct Driver<N: Net, D: Disk, E: EventSink> {
    peer: Peer,
    drive: Drive,
    io: Io<N, D, E>,
    typed: TypedAhead,
    clock: Clock,
    net: N,
}

/// What the peer's outputs are carried out on: the drain loop's
/// [`Effects`].
struct Io<N: Net, D: Disk, E: EventSink> {
    links: Links<N>,
    transcripts: Transcripts<D>,
    /// Where pins of names and servers met for the first time are kept,
    /// if anywhere.
    pins: Option<Pins>,
    events: E,
    /// Events the sink had no room for, in order.
    held: VecDeque<Event>,
    exit: Option<i32>,
}

impl<N: Net, D: Disk, E: EventSink> Driver<N, D, E> {
    /// Takes `first` and the lines already waiting after it (at most
    /// [`LINE_BATCH`] in all, while a line would be taken on its own:
    /// no events held, room to read ahead), then commits once for all
    /// of them.
    fn commands(&mut self, first: Command, lines: &mut mpsc::Receiver<Command>) {
        self.command(first);
        for _ in 1..LINE_BATCH {
            if self.io.exit.is_some()
                || !self.io.held.is_empty()
                || self.typed.bytes >= MAX_TYPED_AHEAD
            {
                break;
            }
            match lines.try_recv() {
                Ok(command) => self.command(command),
                // The end of input is taken by the main loop's next read.
                Err(_) => break,
            }
        }
        self.commit();
    }

    /// A command of the user. A message the peer has no room for waits
    /// here (behind any already waiting); any other command first hands
    /// in the messages typed before it, so the order stays the user's,
    /// and is then taken at once. Receipts wait for the next commit.
    fn command(&mut self, command: Command) {
        if command.is_message() && (!self.typed.messages.is_empty() || !self.peer.accepts(&command))
        {
            return self.typed.push(command);
        }
        self.hand_in_typed();
        self.take(PeerInput::Command(command));
    }

    /// Hands the peer the messages read ahead, whether it has room or not
    /// (it numbers them and lets them wait for the window). Receipts wait
    /// for the next commit.
    fn hand_in_typed(&mut self) {
        while let Some(message) = self.typed.pop() {
            self.take(PeerInput::Command(message));
        }
    }

    /// Hands the peer the messages read ahead while it has room for them,
    /// then commits once for all of them.
    fn pass_typed(&mut self) {
        let mut taken = false;
        while self.io.exit.is_none() {
            match self.typed.messages.front() {
                Some(message) if self.peer.accepts(message) => {}
                _ => break,
            }
            let Some(message) = self.typed.pop() else {
                break;
            };
            self.take(PeerInput::Command(message));
            taken = true;
        }
        if taken {
            self.commit();
        }
    }

    fn input(&mut self, input: PeerInput) {
        self.take(input);
        self.commit();
    }

    /// Hands the peer an input and carries out its outputs; receipts wait
    /// for the next [`Driver::commit`].
    fn take(&mut self, input: PeerInput) {
        let now = self.clock.now(&self.net);
        self.peer.handle_input(now, input);
        self.drive.carry_out(&mut self.peer, now, &mut self.io);
    }

    /// Carries out every output, in order, until the peer has nothing more
    /// to say (see `natter_core::drive`).
    fn drain(&mut self) {
        let now = self.clock.now(&self.net);
        self.drive.drain(&mut self.peer, now, &mut self.io);
    }

    /// Makes what was recorded durable and lets its receipts go out.
    fn commit(&mut self) {
        let now = self.clock.now(&self.net);
        self.drive.commit(&mut self.peer, now, &mut self.io);
    }

    /// Passes on held events while the sink takes them; once none is
    /// left, the receipts that waited for them go out.
    fn release(&mut self) {
        self.io.release();
        if self.io.held.is_empty() && self.drive.withheld() > 0 {
            self.commit();
        }
    }

    /// Takes `first` and what else the network already reported (at most
    /// [`NETWORK_BATCH`] in all), then commits once for all of them.
    fn network_reads(
        &mut self,
        first: LinkEvent<N::Stream>,
        network: &mut mpsc::Receiver<LinkEvent<N::Stream>>,
    ) {
        self.network(first);
        for _ in 1..NETWORK_BATCH {
            if self.io.exit.is_some() || self.io.held.len() >= MAX_HELD_EVENTS {
                break;
            }
            match network.try_recv() {
                Ok(event) => self.network(event),
                Err(_) => break,
            }
        }
        self.commit();
    }

    /// Takes what the network did; receipts wait for the next commit.
    fn network(&mut self, event: LinkEvent<N::Stream>) {
        match event {
            LinkEvent::Accepted { stream, addr } => {
                let link = self.peer.allocate_link();
                tracing::debug!(%link, %addr, "connection accepted");
                self.io.links.open(link, stream);
                self.take(PeerInput::Accepted { link, addr });
            }
            LinkEvent::Connected { link, stream } => {
                if self.io.links.connect_finished(link) {
                    self.io.links.open(link, stream);
                    self.take(PeerInput::Connected { link });
                }
            }
            LinkEvent::ConnectFailed { link, reason } => {
                if self.io.links.connect_finished(link) {
                    self.take(PeerInput::ConnectFailed { link, reason });
                }
            }
            // A peer's links have no source: their turn is free.
            LinkEvent::Bytes { link, bytes, .. } => self.take(PeerInput::Bytes { link, bytes }),
            LinkEvent::Closed { link, reason } => {
                if self.io.links.closed(link) {
                    tracing::debug!(%link, %reason, "connection closed");
                    self.take(PeerInput::Closed { link });
                }
            }
        }
    }
}

impl<N: Net, D: Disk, E: EventSink> Io<N, D, E> {
    /// Passes on held events while the sink takes them.
    fn release(&mut self) {
        while let Some(event) = self.held.pop_front() {
            if let Err(event) = self.events.offer(event) {
                self.held.push_front(event);
                return;
            }
        }
    }
}

impl<N: Net, D: Disk, E: EventSink> Effects for Io<N, D, E> {
    fn connect(&mut self, link: LinkId, addr: SocketAddr) {
        self.links.connect(link, addr);
    }

    fn send(&mut self, link: LinkId, bytes: Vec<u8>) -> Sent {
        match self.links.send(link, bytes) {
            Queued::Ok => Sent::Queued,
            Queued::Overflowed => Sent::Cut,
        }
    }

    fn close(&mut self, link: LinkId) {
        self.links.close(link);
    }

    fn event(&mut self, event: Event) {
        if self.held.is_empty() {
            match self.events.offer(event) {
                Ok(()) => return,
                Err(event) => self.held.push_back(event),
            }
        } else {
            self.held.push_back(event);
        }
        self.events.backlog(self.held.len());
    }

    fn append(&mut self, file: &str, lines: &[&str]) -> Result<(), Unwritten> {
        self.transcripts
            .append_all(file, lines)
            .map_err(|(written, e)| {
                tracing::warn!(file, error = %e, "transcript write failed");
                Unwritten {
                    written,
                    reason: e.to_string(),
                }
            })
    }

    fn sync(&mut self) -> Result<(), String> {
        self.transcripts.sync().map_err(|e| {
            tracing::warn!(error = %e, "transcript sync failed");
            e.to_string()
        })
    }

    fn exit(&mut self, code: i32) {
        self.exit = Some(code);
    }

    fn pin(&mut self, name: &str, key: natter_core::PublicKey) {
        if let Some(pins) = self.pins.as_ref().map(|p| p.peers.clone()) {
            self.keep_pin(&pins, name, key);
        }
    }

    fn pin_server(&mut self, addr: std::net::SocketAddr, key: natter_core::PublicKey) {
        if let Some(pins) = self.pins.as_ref().map(|p| p.servers.clone()) {
            self.keep_pin(&pins, &addr.to_string(), key);
        }
    }

    fn events_backed_up(&self) -> bool {
        !self.held.is_empty()
    }
}

impl<N: Net, D: Disk, E: EventSink> Io<N, D, E> {
    /// Appends a pin to `pins`. If that fails, the pin holds for this run
    /// only, and the user learns it will not survive it.
    fn keep_pin(&mut self, pins: &PinFile, label: &str, key: natter_core::PublicKey) {
        if let Err(e) = pins.append(label, key) {
            tracing::warn!(file = %pins.path().display(), error = %e, "pin not saved");
            let detail = ErrorDetail::TranscriptWrite {
                file: pins.path().display().to_string(),
                reason: e.to_string(),
            };
            self.event(Event::error(ErrorCode::TranscriptFailed, detail));
        }
    }
}
