//! One chat peer's driver: runs a [`Peer`] over a [`Net`], with typed lines
//! coming in on a channel and events for the user going out on another.
//!
//! The peer decides everything; this loop moves bytes, link events, lines
//! and timer expiry in, and carries the peer's outputs out, in order, after
//! every call into it. The user interface (a terminal line editor, JSON on
//! standard output, a scripted demo or a simulation) sits on the other side
//! of the two channels and is not this module's business.

use crate::link::{LinkEvent, Links, Queued};
use crate::net::{Clock, Net};
use crate::transcripts::Transcripts;
use natter_core::{
    Command, ErrorCode, ErrorDetail, Event, Peer, PeerConfig, PeerInput, PeerOutput,
};
use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;
use tokio::sync::mpsc;

/// One command of the user, parsed from a typed line by the user interface.
pub type PeerLine = Command;

/// Exit code of a peer that could not start (bad transcripts directory).
pub const EXIT_STARTUP_FAILED: i32 = 1;

/// Runs one peer until it exits, and returns its exit code.
///
/// - `listener`: already bound by the caller (so a bind error is reported
///   where the port was chosen); `config.listen_port` must be its port.
/// - `transcripts_dir`: created if needed; if that fails, an `error` event
///   is sent and the peer exits with [`EXIT_STARTUP_FAILED`] before
///   contacting anyone.
/// - `lines`: the user's lines. A line is only taken while the peer accepts
///   lines (backpressure while too many messages await receipts). The
///   channel closing is the end of input, which means `/quit`.
/// - `events`: every event for the user, in order (see [`EventSink`]:
///   a bounded channel makes a slow reader push back). A closed receiver
///   is not an error: the peer goes on.
pub async fn run_peer<N: Net, E: EventSink>(
    net: N,
    listener: N::Listener,
    config: PeerConfig,
    transcripts_dir: PathBuf,
    mut lines: mpsc::Receiver<PeerLine>,
    events: E,
) -> i32 {
    let transcripts = match Transcripts::open(transcripts_dir) {
        Ok(t) => t,
        Err(e) => {
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
    };
    let clock = Clock::start();
    let (links, mut network) = Links::new(net.clone());
    let mut driver = Driver {
        peer: Peer::new(config, clock.now(&net)),
        links,
        transcripts,
        events,
        held: VecDeque::new(),
        clock,
        net,
        exit: None,
    };
    driver.links.listen(listener);
    driver.drain();
    let mut input_open = true;
    while driver.exit.is_none() {
        let deadline = driver
            .peer
            .poll_timeout()
            .map(|at| driver.clock.deadline(at));
        // While the user's events are not taken, neither is anything that
        // makes more of them: the network waits (TCP pushes back on the
        // partner, whose window fills) and so do the user's lines.
        let backlog = !driver.held.is_empty();
        let take_line = input_open && !backlog && driver.peer.accepts_lines();
        tokio::select! {
            biased;
            () = crate::sleep_until(deadline) => {
                let now = driver.clock.now(&driver.net);
                driver.peer.handle_timeout(now);
                driver.drain();
            }
            () = driver.events.room(), if backlog => driver.release(),
            Some(event) = network.recv(), if !backlog => driver.network(event),
            line = lines.recv(), if take_line => match line {
                Some(command) => driver.input(PeerInput::Command(command)),
                None => {
                    input_open = false;
                    driver.input(PeerInput::EndOfInput);
                }
            },
        }
    }
    let code = driver.exit.unwrap_or(0);
    while !driver.held.is_empty() {
        driver.events.room().await;
        driver.release();
    }
    // Let the last frames (the partner's `bye`, the server's `bye`) go out
    // before the caller ends the process. Nobody reads link events any
    // more: readers waiting to report one give up at once.
    drop(network);
    driver.links.shutdown().await;
    code
}

/// Where a peer's events go.
///
/// An unbounded channel never pushes back (the demo, the simulation). A
/// bounded one does: when it is full the driver holds the events (at most
/// those of one input) and stops taking network input and lines until
/// there is room, so a reader slower than the network (a terminal, a pipe
/// nobody empties) slows the partner down through TCP and the partner's
/// window of unacknowledged messages, instead of events queueing without
/// bound.
pub trait EventSink: Send + 'static {
    /// Passes `event` on, or hands it back if there is no room now. An
    /// event for a receiver that is gone is dropped (`Ok`).
    fn offer(&self, event: Event) -> Result<(), Event>;
    /// Completes when there may be room again.
    fn room(&self) -> impl Future<Output = ()> + Send;
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

struct Driver<N: Net, E: EventSink> {
    peer: Peer,
    links: Links<N>,
    transcripts: Transcripts,
    events: E,
    /// Events the sink had no room for, in order; while any are held the
    /// driver takes no input but timers.
    held: VecDeque<Event>,
    clock: Clock,
    net: N,
    exit: Option<i32>,
}

impl<N: Net, E: EventSink> Driver<N, E> {
    fn emit(&mut self, event: Event) {
        if !self.held.is_empty() {
            return self.held.push_back(event);
        }
        if let Err(event) = self.events.offer(event) {
            self.held.push_back(event);
        }
    }

    /// Passes on held events while the sink takes them.
    fn release(&mut self) {
        while let Some(event) = self.held.pop_front() {
            if let Err(event) = self.events.offer(event) {
                self.held.push_front(event);
                return;
            }
        }
    }

    fn input(&mut self, input: PeerInput) {
        let now = self.clock.now(&self.net);
        self.peer.handle_input(now, input);
        self.drain();
    }

    fn network(&mut self, event: LinkEvent<N::Stream>) {
        match event {
            LinkEvent::Accepted { stream, addr } => {
                let link = self.peer.allocate_link();
                tracing::debug!(%link, %addr, "connection accepted");
                self.links.open(link, stream);
                self.input(PeerInput::Accepted { link, addr });
            }
            LinkEvent::Connected { link, stream } => {
                if self.links.connect_finished(link) {
                    self.links.open(link, stream);
                    self.input(PeerInput::Connected { link });
                }
            }
            LinkEvent::ConnectFailed { link, reason } => {
                if self.links.connect_finished(link) {
                    self.input(PeerInput::ConnectFailed { link, reason });
                }
            }
            LinkEvent::Bytes { link, bytes } => self.input(PeerInput::Bytes { link, bytes }),
            LinkEvent::Closed { link, reason } => {
                if self.links.closed(link) {
                    tracing::debug!(%link, %reason, "connection closed");
                    self.input(PeerInput::Closed { link });
                }
            }
        }
    }

    /// Carries out every output, in order, until the peer has nothing more
    /// to say. Inputs that carrying out an output produces (a transcript
    /// line recorded, a link cut for not reading) are fed back at once;
    /// their outputs join the same queue.
    fn drain(&mut self) {
        while let Some(output) = self.peer.poll_output() {
            match output {
                PeerOutput::Connect { link, addr } => self.links.connect(link, addr),
                PeerOutput::Send { link, bytes } => {
                    if self.links.send(link, bytes) == Queued::Overflowed {
                        let now = self.clock.now(&self.net);
                        self.peer.handle_input(now, PeerInput::Stalled { link });
                    }
                }
                PeerOutput::Close { link } => self.links.close(link),
                PeerOutput::Event(event) => self.emit(event),
                PeerOutput::Transcript(write) => {
                    let result = self
                        .transcripts
                        .append(&write.file, &write.line)
                        .map_err(|e| e.to_string());
                    if let Err(e) = &result {
                        tracing::warn!(file = %write.file, error = %e, "transcript write failed");
                        if write.receipt.is_none() {
                            // A received message's failure is reported by
                            // the peer itself (no receipt is sent); any
                            // other line lost must not be lost silently.
                            let detail = ErrorDetail::TranscriptWrite {
                                file: self
                                    .transcripts
                                    .dir()
                                    .join(&write.file)
                                    .display()
                                    .to_string(),
                                reason: e.clone(),
                            };
                            self.emit(Event::error(ErrorCode::TranscriptFailed, detail));
                        }
                    }
                    if let Some((link, n)) = write.receipt {
                        // Only now may the receipt go out: the line is on
                        // disk (or the peer learns that it is not).
                        let now = self.clock.now(&self.net);
                        self.peer
                            .handle_input(now, PeerInput::Recorded { link, n, result });
                    }
                }
                PeerOutput::Exit { code } => self.exit = Some(code),
            }
        }
    }
}
