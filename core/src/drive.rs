//! Carrying out a [`Peer`]'s outputs: the one drain loop that the async
//! driver (natter-net-real) and the in-memory test world both run, so the
//! rules below are exercised by every test, not re-implemented per test.
//!
//! After every `handle_*` call the driver calls [`Drive::drain`], which
//! takes every output in order and performs it through [`Effects`]. Two
//! outputs produce inputs, which are fed straight back:
//!
//! - a send whose link had to be cut (its queue was full: the other side
//!   stopped reading) comes back as [`PeerInput::Stalled`];
//! - a transcript line with a receipt comes back as
//!   [`PeerInput::Recorded`], which is what lets the peer send the receipt.
//!
//! **A receipt means "recorded".** Every line of one drain is appended,
//! then [`Effects::sync`] makes them durable **once**, and only then are
//! the `Recorded` inputs fed back (group commit: a burst of messages read
//! in one go costs one disk flush, not one per message). A driver that has
//! several inputs at hand (network reads that queued up during the last
//! flush, lines the user typed at once) can widen the group:
//! [`Drive::carry_out`] after each input, then one [`Drive::commit`] for
//! all of them (always one: the lines wait for it).
//!
//! **One write per file per commit.** The lines are appended when the
//! driver commits, those of one file in one [`Effects::append`] (a burst
//! of messages costs one system call, not one per line), in the order the
//! peer gave them. The user's events that come after a line wait with it,
//! so that the `error` event of a line that could not be written (one
//! with no receipt to withhold) comes where the line was, as if it had
//! been written at once.
//!
//! **Backpressure sits on the receipts.** While the user's events are
//! backed up ([`Effects::events_backed_up`]), the `Recorded` inputs are
//! withheld (the lines are already durable); the next drain after the
//! events move again feeds them. The partner, short of receipts, stops at
//! its window of unacknowledged messages, so the events held stay bounded
//! while the driver keeps reading the network: pings are answered and the
//! links stay alive however long the user's output is stalled.

use crate::event::{ErrorDetail, Event};
use crate::link::LinkId;
use crate::peer::{Peer, PeerInput, PeerOutput, TranscriptWrite};
use crate::protocol::ErrorCode;
use crate::time::Now;
use std::collections::VecDeque;
use std::net::SocketAddr;

/// What a driver does for a peer. Every method returns at once: anything
/// that takes time (a connect) reports back later as a [`PeerInput`].
pub trait Effects {
    /// Starts opening a connection for `link`; the outcome comes back as
    /// [`PeerInput::Connected`] or [`PeerInput::ConnectFailed`].
    fn connect(&mut self, link: LinkId, addr: SocketAddr);
    /// Queues bytes on a link without waiting.
    fn send(&mut self, link: LinkId, bytes: Vec<u8>) -> Sent;
    /// Closes a link once what was queued on it is sent.
    fn close(&mut self, link: LinkId);
    /// An event for the user.
    fn event(&mut self, event: Event);
    /// Appends `lines`, in order, to the transcript `file`, a newline
    /// added to each (in one write where the disk allows). On failure,
    /// says how many of them, from the first, are in the file whole, and
    /// why the others are not, in words for the user.
    fn append(&mut self, file: &str, lines: &[&str]) -> Result<(), Unwritten>;
    /// Makes every line appended so far durable (`fsync`). The error says
    /// where and why.
    fn sync(&mut self) -> Result<(), String>;
    /// The peer is done: the driver stops with this exit code.
    fn exit(&mut self, code: i32);
    /// Keeps a key pinned for a name met for the first time (or trusted
    /// with `/trust`, replacing the older pin), for later runs (the peer itself already holds it for this one). Nothing by
    /// default: a test world or a simulation keeps pins in the peer only.
    fn pin(&mut self, _name: &str, _key: crate::identity::PublicKey) {}
    /// Keeps the key of the server at `addr`, pinned at its first
    /// handshake, for later runs. Nothing by default, as [`Effects::pin`].
    fn pin_server(&mut self, _addr: SocketAddr, _key: crate::identity::PublicKey) {}
    /// Whether the user's events are backed up (the output is not being
    /// read): receipts then wait.
    fn events_backed_up(&self) -> bool {
        false
    }
}

/// Lines of an [`Effects::append`] that did not all reach the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unwritten {
    /// How many lines, from the first, are in the file whole; none of
    /// the others is, not even in part.
    pub written: usize,
    /// Why the others are not, in words for the user.
    pub reason: String,
}

/// Whether bytes could be queued on a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// Queued, or the link is already gone (the peer hears of that on its
    /// own).
    Queued,
    /// The link's queue was full, so the link was cut: the peer must be
    /// told (the other side stopped reading).
    Cut,
}

/// The drain loop's memory between two calls: receipts waiting for their
/// lines to be made durable, or for the user's events to move.
#[derive(Debug, Default)]
pub struct Drive {
    /// Received messages whose lines were appended (or failed to be),
    /// waiting for the next sync.
    unsynced: Vec<Recorded>,
    /// Received messages whose lines are durable (or failed), in order,
    /// whose `Recorded` input is withheld while events are backed up.
    recorded: VecDeque<Recorded>,
    /// Transcript lines of the outputs being carried out, appended once
    /// the peer has nothing more to say, and the events after the first
    /// of them, in order (kept empty between calls; the buffer is
    /// reused).
    held: Vec<Held>,
}

/// An output held until the transcript lines are appended.
#[derive(Debug)]
enum Held {
    Line(TranscriptWrite),
    Event(Event),
}

#[derive(Debug)]
struct Recorded {
    link: LinkId,
    n: u64,
    result: Result<(), String>,
}

impl Drive {
    pub fn new() -> Self {
        Self::default()
    }

    /// Carries out every output of `peer`, in order, until it has nothing
    /// more to say, feeding back the inputs that carrying them out
    /// produces (see the module documentation): [`Drive::carry_out`] then
    /// [`Drive::commit`].
    pub fn drain(&mut self, peer: &mut Peer, now: Now, effects: &mut impl Effects) {
        self.carry_out(peer, now, effects);
        self.commit(peer, now, effects);
    }

    /// Carries out every output of `peer`, in order, except that the
    /// transcript lines, and the user's events after the first of them,
    /// wait for [`Drive::commit`] (see the module documentation), which
    /// must follow.
    pub fn carry_out(&mut self, peer: &mut Peer, now: Now, effects: &mut impl Effects) {
        while let Some(output) = peer.poll_output() {
            match output {
                PeerOutput::Connect { link, addr } => effects.connect(link, addr),
                PeerOutput::Send { link, bytes } => {
                    if effects.send(link, bytes) == Sent::Cut {
                        peer.handle_input(now, PeerInput::Stalled { link });
                    }
                }
                PeerOutput::Close { link } => effects.close(link),
                PeerOutput::Event(event) if self.held.is_empty() => effects.event(event),
                PeerOutput::Event(event) => self.held.push(Held::Event(event)),
                PeerOutput::Transcript(write) => self.held.push(Held::Line(write)),
                PeerOutput::Exit { code } => effects.exit(code),
                PeerOutput::Pin { name, key } => effects.pin(&name, key),
                PeerOutput::PinServer { addr, key } => effects.pin_server(addr, key),
            }
        }
    }

    /// Appends the lines held since the last commit, those of each file
    /// in one [`Effects::append`], notes the outcome of each line that
    /// asked for one, and passes the events held on, in order, with the
    /// error of each line lost where that line was.
    fn append_lines(&mut self, effects: &mut impl Effects) {
        if self.held.is_empty() {
            return;
        }
        let mut held = std::mem::take(&mut self.held);
        // Whether each line (in order) is in its file.
        let mut written = vec![Ok(()); held.len()];
        let mut files: Vec<&str> = Vec::new();
        for item in &held {
            if let Held::Line(write) = item {
                if !files.contains(&write.file.as_str()) {
                    files.push(&write.file);
                }
            }
        }
        for file in files {
            let (at, lines): (Vec<usize>, Vec<&str>) = held
                .iter()
                .enumerate()
                .filter_map(|(i, item)| match item {
                    Held::Line(write) if write.file == file => Some((i, write.line.as_str())),
                    _ => None,
                })
                .unzip();
            if let Err(unwritten) = effects.append(file, &lines) {
                for &i in &at[unwritten.written.min(at.len())..] {
                    written[i] = Err(unwritten.reason.clone());
                }
            }
        }
        for (item, result) in held.drain(..).zip(written) {
            match (item, result) {
                (Held::Event(event), _) => effects.event(event),
                (Held::Line(write), result) => match (write.receipt, result) {
                    (Some((link, n)), result) => self.unsynced.push(Recorded { link, n, result }),
                    (None, Ok(())) => {}
                    // A received message's failure is told by the peer
                    // itself (no receipt is sent); any other line lost
                    // must not be lost silently.
                    (None, Err(reason)) => effects.event(Event::error(
                        ErrorCode::TranscriptFailed,
                        ErrorDetail::TranscriptWrite {
                            file: write.file,
                            reason,
                        },
                    )),
                },
            }
        }
        self.held = held;
    }

    /// Makes the lines appended since the last commit durable with one
    /// sync, then (unless the user's events are backed up) feeds back the
    /// `Recorded` inputs, carrying out what they produce, until quiet.
    pub fn commit(&mut self, peer: &mut Peer, now: Now, effects: &mut impl Effects) {
        loop {
            self.append_lines(effects);
            if !self.unsynced.is_empty() {
                let synced = effects.sync();
                self.recorded.extend(self.unsynced.drain(..).map(|mut r| {
                    r.result = r.result.and_then(|()| synced.clone());
                    r
                }));
            }
            if self.recorded.is_empty() || effects.events_backed_up() {
                return;
            }
            for Recorded { link, n, result } in std::mem::take(&mut self.recorded) {
                peer.handle_input(now, PeerInput::Recorded { link, n, result });
            }
            self.carry_out(peer, now, effects);
        }
    }

    /// Receipts withheld while the user's events are backed up.
    pub fn withheld(&self) -> usize {
        self.recorded.len()
    }
}
