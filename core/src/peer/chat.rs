//! One chat, from the first byte of its link to its end: a sub-machine
//! that owns its data.
//!
//! Each [`Phase`] carries what only that phase has (the ring deadline of a
//! call, the caller's name of a ringing request, the numbering and the
//! transcript of a conversation), so no field is ever read in a phase
//! where it means nothing. The [`Peer`](super::Peer) routes inputs to a
//! chat and decides what needs the whole picture (whether there is room
//! for a caller); the chat reports back with a [`Signal`]. A chat ends in
//! exactly one way, [`Chat::finish`], with a typed [`End`].

use super::{Ctx, PeerOutput, TranscriptWrite};
use crate::codec::{encode, FrameDecoder};
use crate::event::{EndCause, ErrorDetail, Event, Problem, QuotaScope};
use crate::heartbeat::{Beat, Heartbeat};
use crate::identity::{PublicKey, KEY_LEN};
use crate::link::LinkId;
use crate::protocol::{negotiate, ErrorCode, PeerMsg, Versions};
use crate::secure::{LinkKind, SecureLink};
use crate::text::{
    check_message, is_valid_name, same_name, sanitize, sanitize_owned, MessageProblem,
};
use crate::time::Instant;
use crate::transcript::{self, Direction, Entry};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Longest text shown from a partner's `error` frame, in characters.
const MAX_REMOTE_MESSAGE: usize = 256;

/// One chat link and what is going on over it.
#[derive(Debug)]
pub(super) struct Chat {
    pub(super) link: LinkId,
    pub(super) addr: SocketAddr,
    /// The Noise XX session every byte of the link goes through: the
    /// frames below are its plaintext.
    secure: SecureLink,
    decoder: FrameDecoder<PeerMsg>,
    heartbeat: Heartbeat,
    phase: Phase,
}

/// Where a chat is, with the data of that phase only.
#[derive(Debug)]
enum Phase {
    /// We asked the driver to connect; our call rings until `ring_until`.
    Dialing {
        dialled: Option<Dialled>,
        ring_until: Instant,
    },
    /// Our hello is sent; the callee answers with its hello, then
    /// `accept`, `reject` or `busy`.
    Calling {
        dialled: Option<Dialled>,
        ring_until: Instant,
        /// The callee, once its hello has come.
        callee: Option<Partner>,
    },
    /// Someone connected to us; its hello is due by `until`.
    Greeting { until: Instant },
    /// The caller's hello came, with a key not pinned for its name: the
    /// directory is asked which key it lists for that name, and must
    /// answer by `until`. Nothing shows to the user yet.
    Verifying { caller: Partner, until: Instant },
    /// The request is shown to the user until they answer or `until`.
    Ringing { caller: Partner, until: Instant },
    /// The conversation.
    Talking(Talk),
    /// `/leave` was typed; waiting (bounded) for the last receipts.
    Leaving { talk: Talk, until: Instant },
}

/// The other side of a chat, as its hello introduced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Partner {
    pub(super) name: String,
    /// The longest message it takes, in characters.
    pub(super) max_message: usize,
    /// The key its handshake proved.
    pub(super) key: PublicKey,
}

/// A call placed by name: the name, and what the directory said about it
/// when it gave the address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Dialled {
    pub(super) name: String,
    pub(super) listed: Directory,
}

/// What the directory says about a name, for checking whoever claims it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Directory {
    /// It lists this key for the name.
    Key(PublicKey),
    /// It lists the name without a key (a server too old to list keys).
    NoKey,
    /// It has nobody of that name.
    NoSuchName,
    /// It could not be asked: not connected, the link broke, or no answer
    /// in time.
    Unreachable,
}

impl Directory {
    /// What a directory entry (or its absence) says.
    pub(super) fn from_entry(key: Option<Option<PublicKey>>) -> Self {
        match key {
            Some(Some(key)) => Directory::Key(key),
            Some(None) => Directory::NoKey,
            None => Directory::NoSuchName,
        }
    }
}

/// What a partner takes when its hello does not say (SPEC's default).
const DEFAULT_MAX_MESSAGE: usize = 256;

/// A conversation in progress.
#[derive(Debug)]
struct Talk {
    partner: String,
    /// The key the partner's handshake proved.
    key: PublicKey,
    /// The longest message the partner takes.
    partner_max: usize,
    /// The transcript file of this conversation.
    transcript: String,
    /// Number of the next message the user types.
    next_out: u64,
    /// Number of the next message to put on the wire: messages from here
    /// to `next_out` wait for room in the window.
    next_wire: u64,
    /// Number expected on the next message received.
    next_in: u64,
    /// Messages received whose receipt has not gone out yet: the sender's
    /// window bounds them, so a sender that ignores it is cut.
    unreceipted: usize,
    /// Every message of ours without receipt, in flight or waiting.
    unacked: BTreeMap<u64, String>,
    /// Bytes written to the transcript so far (see [`super::quota`]).
    recorded: u64,
}

impl Talk {
    /// Messages on the wire without receipt. Counted from the numbers,
    /// not by walking `unacked` (asked once per message typed and per
    /// message put on the wire: a walk of up to 128 entries each time):
    /// every message from `next_wire` on is waiting and in `unacked`
    /// (only a receipt below `next_wire` removes one), so the rest of
    /// `unacked` is in flight.
    fn in_flight(&self) -> usize {
        debug_assert_eq!(
            self.unacked.range(..self.next_wire).count(),
            self.unacked.len() - self.waiting()
        );
        self.unacked.len() - self.waiting()
    }

    /// Messages typed that wait for room in the window: `next_wire` up
    /// to `next_out`, all of them in `unacked` (see [`Talk::in_flight`]).
    fn waiting(&self) -> usize {
        debug_assert_eq!(
            self.unacked.range(self.next_wire..).count() as u64,
            self.next_out - self.next_wire
        );
        (self.next_out - self.next_wire) as usize
    }
}

/// Why a chat ends. One type for every phase: [`Chat::finish`] turns it
/// into what the user sees, given the phase the chat was in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum End {
    /// The user left, quit, or cancelled their own call.
    Left,
    /// The partner said `bye`.
    Bye,
    /// The connection closed without `bye`.
    Closed,
    /// Nothing heard for the heartbeat timeout.
    Silent,
    /// The partner stopped reading what we send.
    Cut,
    /// The partner broke the protocol (an `error` frame went to it).
    BadFrame { problem: String },
    /// The callee rejected our call, or we rejected the caller.
    Rejected,
    /// The callee had no room for our call.
    Busy,
    /// A caller reached us while we had no room (we answered `busy`).
    NoRoom { caller: String },
    /// A ring deadline passed: ours (no answer) or the caller's request
    /// shown to us for too long.
    NoAnswer,
    /// The connection could not be opened.
    Unreachable { reason: String },
    /// The handshake failed or the partner sent an `error`: shown as is.
    Refused(Problem),
    /// The handshake failed in a way not worth showing (a stranger's
    /// malformed hello, before any request reached the user).
    Quiet,
    /// The link's cryptography failed: a tampered, truncated or forged
    /// Noise message, or bytes that are not Noise at all.
    Insecure { problem: String },
    /// The partner sent message `n` longer than our limit (our hello
    /// said it): refused (an `error` frame went to it).
    TooLong { n: u64, chars: usize },
    /// A transcript quota is reached: the message that would pass it is
    /// not recorded, and the partner is told.
    Quota(QuotaScope),
    /// The other side's key failed a check (the directory's key, the
    /// pinned key, or no way to check it): shown to the user in every
    /// phase (an `error` frame went to the other side).
    Untrusted(Problem),
}

/// What a chat needs the [`Peer`](super::Peer) to decide or know.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Signal {
    /// A caller said hello: ring, or answer busy if there is no room.
    Greeted { caller: Partner },
    /// A caller said hello with a key not pinned for its name: ask the
    /// directory about `name`, and hand its answer to [`Chat::listed`].
    Verify { name: String },
    /// The peer we called said hello and proved its key: a call placed
    /// by address now knows whom it reached (the peer checks that this is
    /// no second chat with that name).
    Answered,
    /// The conversation started (our call was accepted).
    Started,
    /// The chat is over.
    Ended(End),
}

/// The state of a chat as the rest of the peer sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    /// Connecting or greeting: not yet a request anybody sees.
    Opening,
    /// Our call rings.
    Calling,
    /// A request waits for the user's answer.
    Ringing,
    /// A conversation, going on or being left.
    Talking,
    Leaving,
}

impl Stage {
    /// The stages of a chat that is open: one a user sees, which takes
    /// room (see [`super::PeerConfig::max_chats`]).
    pub(super) const OPEN: [Stage; 4] = [
        Stage::Calling,
        Stage::Ringing,
        Stage::Talking,
        Stage::Leaving,
    ];
}

/// The chat's named deadlines (see [`super::Timer`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChatTimer {
    /// Our call rings too long: `no_answer`.
    Ring,
    /// A caller's request is shown too long: `missed`.
    Answer,
    /// A connection to us said no hello in time.
    Greeting,
    /// The directory did not say in time which key a caller's name has:
    /// `cannot_verify`.
    Verify,
    /// The receipts awaited by `/leave` are late: the chat ends anyway.
    Leave,
    /// Ping the partner, or give it up as silent.
    Heartbeat,
}

impl Chat {
    /// A call we place: the driver is asked to connect.
    pub(super) fn dial(
        ctx: &mut Ctx<'_>,
        link: LinkId,
        addr: SocketAddr,
        dialled: Option<Dialled>,
        seed: [u8; KEY_LEN],
    ) -> Self {
        ctx.out.push_back(PeerOutput::Connect { link, addr });
        let ring_until = ctx.now.mono + ctx.config.ring_timeout;
        let secure = SecureLink::initiator(&ctx.config.identity, LinkKind::Peer, seed);
        let phase = Phase::Dialing {
            dialled,
            ring_until,
        };
        Self::new(ctx, link, addr, secure, phase)
    }

    /// A connection someone opened to us.
    pub(super) fn accepted(
        ctx: &Ctx<'_>,
        link: LinkId,
        addr: SocketAddr,
        seed: [u8; KEY_LEN],
    ) -> Self {
        let until = ctx.now.mono + ctx.config.handshake_timeout;
        let secure = SecureLink::responder(&ctx.config.identity, LinkKind::Peer, seed);
        Self::new(ctx, link, addr, secure, Phase::Greeting { until })
    }

    fn new(
        ctx: &Ctx<'_>,
        link: LinkId,
        addr: SocketAddr,
        secure: SecureLink,
        phase: Phase,
    ) -> Self {
        Self {
            link,
            addr,
            secure,
            decoder: FrameDecoder::new(ctx.config.max_frame),
            heartbeat: Heartbeat::new(ctx.config.heartbeat, ctx.now.mono),
            phase,
        }
    }

    // ---- getters ----

    pub(super) fn stage(&self) -> Stage {
        match self.phase {
            Phase::Dialing { .. } | Phase::Calling { .. } => Stage::Calling,
            Phase::Greeting { .. } | Phase::Verifying { .. } => Stage::Opening,
            Phase::Ringing { .. } => Stage::Ringing,
            Phase::Talking(_) => Stage::Talking,
            Phase::Leaving { .. } => Stage::Leaving,
        }
    }

    /// How events name the partner: its name once known, else the name we
    /// dialled, else its address.
    pub(super) fn partner(&self) -> String {
        let name = match &self.phase {
            Phase::Dialing { dialled, .. } => dialled.as_ref().map(|d| d.name.as_str()),
            Phase::Calling {
                callee, dialled, ..
            } => callee
                .as_ref()
                .map(|c| c.name.as_str())
                .or(dialled.as_ref().map(|d| d.name.as_str())),
            Phase::Greeting { .. } => None,
            Phase::Verifying { caller, .. } | Phase::Ringing { caller, .. } => {
                Some(caller.name.as_str())
            }
            Phase::Talking(talk) | Phase::Leaving { talk, .. } => Some(talk.partner.as_str()),
        };
        name.map_or_else(|| self.addr.to_string(), str::to_string)
    }

    /// The partner of a conversation and the key its handshake proved.
    pub(super) fn talking_with(&self) -> Option<(String, PublicKey)> {
        match &self.phase {
            Phase::Talking(talk) | Phase::Leaving { talk, .. } => {
                Some((talk.partner.clone(), talk.key))
            }
            _ => None,
        }
    }

    /// Our messages waiting for room in the window.
    pub(super) fn waiting(&self) -> usize {
        match &self.phase {
            Phase::Talking(talk) | Phase::Leaving { talk, .. } => talk.waiting(),
            _ => 0,
        }
    }

    /// The earliest deadline of this chat, and which it is.
    pub(super) fn deadline(&self) -> Option<(Instant, ChatTimer)> {
        let phase = match &self.phase {
            Phase::Dialing { ring_until, .. } => return Some((*ring_until, ChatTimer::Ring)),
            Phase::Calling { ring_until, .. } => Some((*ring_until, ChatTimer::Ring)),
            // A stranger who has not said hello is not pinged: it gets
            // nothing from us before its hello, and only that deadline.
            Phase::Greeting { until } => return Some((*until, ChatTimer::Greeting)),
            Phase::Verifying { until, .. } => return Some((*until, ChatTimer::Verify)),
            Phase::Ringing { until, .. } => Some((*until, ChatTimer::Answer)),
            Phase::Talking(_) => None,
            Phase::Leaving { until, .. } => Some((*until, ChatTimer::Leave)),
        };
        let beat = (self.heartbeat.deadline(), ChatTimer::Heartbeat);
        Some(phase.map_or(beat, |p| p.min(beat)))
    }

    // ---- inputs ----

    /// The connection we asked for is open: say hello.
    pub(super) fn connected(&mut self, ctx: &mut Ctx<'_>) {
        let Phase::Dialing {
            dialled,
            ring_until,
        } = &mut self.phase
        else {
            return;
        };
        self.phase = Phase::Calling {
            dialled: dialled.take(),
            ring_until: *ring_until,
            callee: None,
        };
        self.heartbeat = Heartbeat::new(ctx.config.heartbeat, ctx.now.mono);
        let hello = super::peer_hello(ctx.config);
        self.send(ctx, &hello);
        ctx.out.push_back(PeerOutput::Event(Event::Calling {
            peer: self.partner(),
        }));
    }

    /// Bytes arrived: they go through the Noise session (answering its
    /// handshake), and its plaintext to the frame decoder; the frames are
    /// then taken one at a time with [`Chat::next_frame`], so the peer can
    /// act on each signal. An error means the link cannot be trusted.
    pub(super) fn push_bytes(&mut self, ctx: &mut Ctx<'_>, bytes: &[u8]) -> Result<(), String> {
        self.heartbeat.received(ctx.now.mono);
        self.secure.push(bytes).map_err(|e| e.to_string())?;
        while let Some(plaintext) = self.secure.poll_plaintext() {
            self.decoder.push(&plaintext);
        }
        self.transmit(ctx);
        Ok(())
    }

    /// The partner's key, once its handshake proved it.
    fn remote_key(&self) -> Option<PublicKey> {
        self.secure.remote_key()
    }

    /// The next frame received, decoded and acted on.
    pub(super) fn next_frame(&mut self, ctx: &mut Ctx<'_>) -> Option<Option<Signal>> {
        let frame = self.decoder.next_frame()?;
        Some(match frame {
            Ok(frame) => self.on_frame(ctx, frame),
            Err(e) => Some(self.protocol_error(ctx, e.to_string())),
        })
    }

    fn on_frame(&mut self, ctx: &mut Ctx<'_>, frame: PeerMsg) -> Option<Signal> {
        match (&mut self.phase, frame) {
            (_, PeerMsg::Ping) => {
                self.send(ctx, &PeerMsg::Pong);
                None
            }
            (_, PeerMsg::Pong) => None,
            (
                Phase::Greeting { .. },
                PeerMsg::Hello {
                    versions,
                    name,
                    max_message,
                },
            ) => self.caller_hello(ctx, &versions, name, max_message),
            (
                Phase::Calling { callee: None, .. },
                PeerMsg::Hello {
                    versions,
                    name,
                    max_message,
                },
            ) => self.callee_hello(ctx, &versions, name, max_message),
            (
                Phase::Calling { callee: None, .. },
                PeerMsg::Accept | PeerMsg::Reject | PeerMsg::Busy,
            ) => Some(self.protocol_error(ctx, "the answer came before the hello".into())),
            (
                Phase::Calling {
                    callee: Some(callee),
                    ..
                },
                PeerMsg::Accept,
            ) => {
                let partner = callee.clone();
                self.start(ctx, partner, Direction::Outgoing);
                Some(Signal::Started)
            }
            (Phase::Calling { .. }, PeerMsg::Reject) => Some(Signal::Ended(End::Rejected)),
            (Phase::Calling { .. }, PeerMsg::Busy) => Some(Signal::Ended(End::Busy)),
            (Phase::Verifying { .. } | Phase::Ringing { .. }, PeerMsg::Bye) => {
                Some(Signal::Ended(End::Bye))
            }
            (_, PeerMsg::Error { code, message, .. }) => {
                let detail = ErrorDetail::PeerSaid {
                    peer: self.partner(),
                    text: sanitize(&message, MAX_REMOTE_MESSAGE),
                };
                Some(Signal::Ended(End::Refused(Problem::new(code, detail))))
            }
            (Phase::Talking(talk), PeerMsg::Msg { n, text, at })
            | (Phase::Leaving { talk, .. }, PeerMsg::Msg { n, text, at }) => {
                if n != talk.next_in {
                    let problem = format!("expected message #{}, got #{n}", talk.next_in);
                    return Some(self.protocol_error(ctx, problem));
                }
                talk.next_in += 1;
                talk.unreceipted += 1;
                if talk.unreceipted > ctx.config.window {
                    let problem = format!(
                        "more than {} messages without receipt: the window was ignored",
                        ctx.config.window
                    );
                    return Some(self.protocol_error(ctx, problem));
                }
                let chars = text.chars().count();
                if chars > ctx.config.max_message {
                    // A sender that ignores the limit our hello announced:
                    // refused with its own code, and the chat ends (the
                    // numbering cannot skip a message). The message is
                    // neither shown nor recorded nor acknowledged: the
                    // sender lists it in `undelivered`.
                    let problem = format!(
                        "message #{n} has {chars} characters; this peer takes at most {}",
                        ctx.config.max_message
                    );
                    self.send_error(ctx, ErrorCode::MessageTooLong, problem);
                    return Some(Signal::Ended(End::TooLong { n, chars }));
                }
                let text = sanitize_owned(text, ctx.config.max_message);
                let at = sanitize_owned(at, 64);
                let entry = Entry::Received {
                    n,
                    text: &text,
                    at: &at,
                };
                // Past a quota the message is not recorded, so it gets no
                // receipt: the sender lists it in `undelivered`.
                if let Err(scope) = record_within_quota(ctx, talk, &entry, Some((self.link, n))) {
                    return Some(Signal::Ended(End::Quota(scope)));
                }
                let peer = talk.partner.clone();
                ctx.out
                    .push_back(PeerOutput::Event(Event::Message { peer, n, text, at }));
                None
            }
            (Phase::Talking(talk), PeerMsg::Ack { n })
            | (Phase::Leaving { talk, .. }, PeerMsg::Ack { n }) => {
                if n < talk.next_wire && talk.unacked.remove(&n).is_some() {
                    record(ctx, talk, &Entry::Delivered { n }, None);
                    let peer = talk.partner.clone();
                    ctx.out
                        .push_back(PeerOutput::Event(Event::Delivered { peer, n }));
                    let last = talk.unacked.is_empty();
                    if last && matches!(self.phase, Phase::Leaving { .. }) {
                        return Some(Signal::Ended(End::Left));
                    }
                    self.flush(ctx);
                }
                None
            }
            (Phase::Talking(_) | Phase::Leaving { .. }, PeerMsg::Bye) => {
                Some(Signal::Ended(End::Bye))
            }
            (_, frame) => {
                let problem = format!("unexpected {} frame", frame_type(&frame));
                Some(self.protocol_error(ctx, problem))
            }
        }
    }

    /// The hello of someone who called us.
    fn caller_hello(
        &mut self,
        ctx: &mut Ctx<'_>,
        versions: &Versions,
        name: String,
        max_message: Option<usize>,
    ) -> Option<Signal> {
        if let Err(mismatch) = negotiate(versions) {
            self.send_error(ctx, ErrorCode::VersionMismatch, mismatch.to_string());
            return Some(Signal::Ended(End::Quiet));
        }
        if !is_valid_name(&name) {
            let problem = "a name is 1-32 characters of A-Z a-z 0-9 _ -".to_string();
            self.send_error(ctx, ErrorCode::InvalidName, problem);
            return Some(Signal::Ended(End::Quiet));
        }
        let Some(key) = self.remote_key() else {
            return Some(Signal::Ended(End::Quiet));
        };
        let caller = Partner {
            name,
            max_message: max_message.unwrap_or(DEFAULT_MAX_MESSAGE),
            key,
        };
        // A contact pinned with this very key is known: no need to ask
        // the directory (which may be down).
        if ctx.pins.get(&caller.name.to_ascii_lowercase()) == Some(&key) {
            return Some(Signal::Greeted { caller });
        }
        let name = caller.name.clone();
        let until = ctx.now.mono + ctx.config.handshake_timeout;
        self.phase = Phase::Verifying { caller, until };
        Some(Signal::Verify { name })
    }

    /// The directory's answer about a caller we are verifying: the key it
    /// lists must be the caller's, and then the pinned one (if any) too.
    /// Only then may the call ring.
    pub(super) fn listed(&mut self, ctx: &mut Ctx<'_>, directory: Directory) -> Option<Signal> {
        let Phase::Verifying { caller, .. } = &self.phase else {
            return None; // the caller is gone, or an answer nobody awaits
        };
        let caller = caller.clone();
        if let Some(end) = self.directory_refusal(ctx, &caller.name, caller.key, directory) {
            return Some(Signal::Ended(end));
        }
        if let Some(refusal) = self.pin_refusal(ctx, &caller.name, caller.key) {
            return Some(refusal);
        }
        Some(Signal::Greeted { caller })
    }

    /// The hello of the peer we called: is it the one we meant?
    fn callee_hello(
        &mut self,
        ctx: &mut Ctx<'_>,
        versions: &Versions,
        name: String,
        max_message: Option<usize>,
    ) -> Option<Signal> {
        let key = self.remote_key();
        let listed = match &self.phase {
            Phase::Calling {
                dialled: Some(dialled),
                ..
            } => Some(dialled.clone()),
            _ => None,
        };
        if let (Some(key), Some(dialled)) = (key, listed) {
            // The one the directory sent us to must be the one answering.
            let refusal = self.directory_refusal(ctx, &dialled.name, key, dialled.listed);
            if let Some(end) = refusal {
                return Some(Signal::Ended(end));
            }
        }
        if let Some(refusal) = key.and_then(|key| self.pin_refusal(ctx, &name, key)) {
            return Some(refusal);
        }
        let Phase::Calling {
            dialled, callee, ..
        } = &mut self.phase
        else {
            return None;
        };
        let refusal = if let Err(mismatch) = negotiate(versions) {
            let detail = ErrorDetail::PeerVersion {
                peer: sanitize(&name, crate::text::MAX_NAME),
                version: mismatch.theirs.max,
                min_version: mismatch.theirs.min,
            };
            Some((ErrorCode::VersionMismatch, detail, mismatch.to_string()))
        } else if !is_valid_name(&name) {
            let detail = ErrorDetail::PeerNameInvalid { addr: self.addr };
            Some((ErrorCode::InvalidName, detail, "invalid name".to_string()))
        } else if same_name(&name, &ctx.config.name) {
            let problem = "you called yourself".to_string();
            Some((ErrorCode::BadInput, ErrorDetail::CallingYourself, problem))
        } else if let Some(expected) = dialled
            .as_ref()
            .map(|d| &d.name)
            .filter(|d| !same_name(d, &name))
        {
            let detail = ErrorDetail::WrongPeer {
                addr: self.addr,
                expected: expected.clone(),
                answered: name.clone(),
            };
            let problem = format!("this call is for {expected}, not {name}");
            Some((ErrorCode::WrongPeer, detail, problem))
        } else {
            match key {
                Some(key) => {
                    *callee = Some(Partner {
                        name,
                        max_message: max_message.unwrap_or(DEFAULT_MAX_MESSAGE),
                        key,
                    });
                    return Some(Signal::Answered);
                }
                None => {
                    let detail = ErrorDetail::PeerBadFrame {
                        peer: name,
                        problem: "a hello before the handshake".to_string(),
                    };
                    let problem = "a hello before the handshake".to_string();
                    Some((ErrorCode::BadFrame, detail, problem))
                }
            }
        };
        let (code, detail, problem) = refusal?;
        self.send_error(ctx, code, problem);
        Some(Signal::Ended(End::Refused(Problem::new(code, detail))))
    }

    /// A partner (caller or callee) presenting another key than the one
    /// pinned for its name is refused: told why, and the user is shown
    /// both fingerprints.
    fn pin_refusal(&mut self, ctx: &mut Ctx<'_>, name: &str, key: PublicKey) -> Option<Signal> {
        let expected = pin_mismatch(ctx, name, key)?;
        let message = format!("{name}'s key is not the one pinned at an earlier chat; refused");
        let detail = ErrorDetail::KeyChanged {
            peer: name.to_string(),
            expected: expected.fingerprint(),
            presented: key.fingerprint(),
        };
        let problem = Problem::new(ErrorCode::KeyChanged, detail);
        Some(Signal::Ended(self.refuse(ctx, problem, message)))
    }

    /// A partner whose key is not the one the directory gives for `name`
    /// (or that the directory cannot vouch for) is refused the same way:
    /// told why, and the user is shown what the directory said.
    fn directory_refusal(
        &mut self,
        ctx: &mut Ctx<'_>,
        name: &str,
        key: PublicKey,
        directory: Directory,
    ) -> Option<End> {
        let (problem, message) = directory_problem(name, key, directory)?;
        Some(self.refuse(ctx, problem, message))
    }

    /// Refuses the other side after a failed identity check: an `error`
    /// frame with the problem's code tells it why, and the chat ends
    /// showing the problem to our user.
    fn refuse(&mut self, ctx: &mut Ctx<'_>, problem: Problem, message: String) -> End {
        self.send_error(ctx, problem.code, message);
        End::Untrusted(problem)
    }

    /// The peer we called is one we have another chat or call with
    /// already: the call ends, the callee told why.
    pub(super) fn refuse_second_chat(
        &mut self,
        ctx: &mut Ctx<'_>,
        code: ErrorCode,
        detail: ErrorDetail,
    ) -> End {
        let message = format!("{} has a chat or call with you already", ctx.config.name);
        self.send_error(ctx, code, message);
        End::Refused(Problem::new(code, detail))
    }

    /// There is room for the caller: show the request.
    pub(super) fn ring(&mut self, ctx: &mut Ctx<'_>, caller: Partner) {
        let hello = super::peer_hello(ctx.config);
        self.send(ctx, &hello);
        let until = ctx.now.mono + ctx.config.ring_timeout;
        let peer = caller.name.clone();
        let fingerprint = caller.key.fingerprint();
        self.phase = Phase::Ringing { caller, until };
        let addr = self.addr;
        ctx.out.push_back(PeerOutput::Event(Event::Incoming {
            peer,
            addr,
            fingerprint,
        }));
    }

    /// There is no room for the caller: say hello, then `busy`.
    pub(super) fn answer_busy(&mut self, ctx: &mut Ctx<'_>) {
        let hello = super::peer_hello(ctx.config);
        self.send(ctx, &hello);
        self.send(ctx, &PeerMsg::Busy);
    }

    /// The user accepted the request: the conversation starts.
    pub(super) fn accept(&mut self, ctx: &mut Ctx<'_>) {
        let Phase::Ringing { caller, .. } = &self.phase else {
            return;
        };
        let partner = caller.clone();
        self.send(ctx, &PeerMsg::Accept);
        self.start(ctx, partner, Direction::Incoming);
    }

    fn start(&mut self, ctx: &mut Ctx<'_>, partner: Partner, direction: Direction) {
        let Partner {
            name: partner,
            max_message: partner_max,
            key,
        } = partner;
        let pinned_name = partner.to_ascii_lowercase();
        let new_contact = !ctx.pins.contains_key(&pinned_name);
        if new_contact {
            ctx.pins.insert(pinned_name.clone(), key);
            ctx.out.push_back(PeerOutput::Pin {
                name: pinned_name,
                key,
            });
        }
        let me = &ctx.config.name;
        let fingerprint = key.fingerprint();
        let transcript = transcript::file_name(&ctx.now, me, &partner);
        let entry = Entry::Started {
            me,
            peer: &partner,
            addr: self.addr,
            direction,
            fingerprint: fingerprint.as_str(),
        };
        let line = transcript::line(&ctx.now, &entry);
        let recorded = line.len() as u64 + 1;
        write(ctx, &transcript, line, None);
        ctx.out.push_back(PeerOutput::Event(Event::ChatStarted {
            peer: partner.clone(),
            fingerprint,
            new_contact,
        }));
        self.phase = Phase::Talking(Talk {
            partner,
            key,
            partner_max,
            transcript,
            next_out: 1,
            next_wire: 1,
            next_in: 1,
            unreceipted: 0,
            unacked: BTreeMap::new(),
            recorded,
        });
    }

    /// A message the user typed for this chat.
    pub(super) fn say(&mut self, ctx: &mut Ctx<'_>, text: &str) -> Result<(), Problem> {
        let talk = match &mut self.phase {
            Phase::Talking(talk) => talk,
            Phase::Leaving { talk, .. } => {
                let peer = talk.partner.clone();
                return Err(Problem::new(
                    ErrorCode::NotInChat,
                    ErrorDetail::AlreadyLeaving { peer },
                ));
            }
            _ => {
                return Err(Problem::new(
                    ErrorCode::NotInChat,
                    ErrorDetail::StillRinging {
                        peer: self.partner(),
                    },
                ))
            }
        };
        check_typed(text, ctx.config.max_message)?;
        let chars = text.chars().count();
        if chars > talk.partner_max {
            let detail = ErrorDetail::MessageTooLongForPeer {
                peer: talk.partner.clone(),
                chars,
                max: talk.partner_max,
            };
            return Err(Problem::new(ErrorCode::MessageTooLong, detail));
        }
        let was_waiting = talk.waiting();
        let n = talk.next_out;
        if let Err(scope) = record_within_quota(ctx, talk, &Entry::Sent { n, text }, None) {
            let detail = ErrorDetail::QuotaReached {
                peer: talk.partner.clone(),
                scope,
                limit: super::quota::limit(ctx.config, scope),
            };
            return Err(Problem::new(ErrorCode::TranscriptQuota, detail));
        }
        talk.next_out += 1;
        talk.unacked.insert(n, text.to_string());
        let peer = talk.partner.clone();
        ctx.out.push_back(PeerOutput::Event(Event::Sent {
            peer,
            n,
            text: text.to_string(),
        }));
        self.flush(ctx);
        if let Phase::Talking(talk) = &self.phase {
            if talk.waiting() > 0 && was_waiting == 0 {
                ctx.out.push_back(PeerOutput::Event(Event::WindowFull {
                    peer: talk.partner.clone(),
                    in_flight: talk.in_flight(),
                    waiting: talk.waiting(),
                }));
            }
        }
        Ok(())
    }

    /// Puts waiting messages on the wire while the window has room.
    fn flush(&mut self, ctx: &mut Ctx<'_>) {
        let (Phase::Talking(talk) | Phase::Leaving { talk, .. }) = &mut self.phase else {
            return;
        };
        let mut frames = Vec::new();
        // One clock reading for all: the same instant, formatted once.
        let mut at = None;
        while talk.next_wire < talk.next_out && talk.in_flight() < ctx.config.window {
            let n = talk.next_wire;
            talk.next_wire += 1;
            if let Some(text) = talk.unacked.get(&n) {
                let at = at.get_or_insert_with(|| ctx.now.rfc3339());
                frames.push(PeerMsg::Msg {
                    n,
                    text: text.clone(),
                    at: at.clone(),
                });
            }
        }
        for frame in &frames {
            self.send(ctx, frame);
        }
    }

    /// `/leave`: end the conversation once the last receipts are in (or
    /// the grace is over), or cancel our ringing call.
    pub(super) fn leave(&mut self, ctx: &mut Ctx<'_>) -> Option<End> {
        match &mut self.phase {
            Phase::Talking(talk) if talk.unacked.is_empty() => Some(End::Left),
            Phase::Talking(_) => {
                let Phase::Talking(talk) = std::mem::replace(
                    &mut self.phase,
                    Phase::Greeting {
                        until: ctx.now.mono,
                    },
                ) else {
                    unreachable!("matched above")
                };
                let until = ctx.now.mono + ctx.config.leave_grace;
                self.phase = Phase::Leaving { talk, until };
                None
            }
            Phase::Leaving { .. } => None,
            Phase::Dialing { .. } | Phase::Calling { .. } => Some(End::Left),
            Phase::Ringing { .. } => Some(End::Rejected),
            Phase::Greeting { .. } | Phase::Verifying { .. } => Some(End::Quiet),
        }
    }

    /// A deadline may have passed: act on it.
    pub(super) fn on_timeout(&mut self, ctx: &mut Ctx<'_>) -> Option<End> {
        let now = ctx.now.mono;
        match &self.phase {
            Phase::Dialing { ring_until, .. } | Phase::Calling { ring_until, .. }
                if now >= *ring_until =>
            {
                return Some(End::NoAnswer)
            }
            Phase::Greeting { until } if now >= *until => return Some(End::Quiet),
            Phase::Verifying { caller, until } if now >= *until => {
                let (problem, message) = unverifiable(&caller.name, caller.key);
                return Some(self.refuse(ctx, problem, message));
            }
            Phase::Ringing { until, .. } if now >= *until => return Some(End::NoAnswer),
            Phase::Leaving { until, .. } if now >= *until => return Some(End::Left),
            Phase::Dialing { .. } | Phase::Greeting { .. } | Phase::Verifying { .. } => {
                return None
            }
            _ => {}
        }
        match self.heartbeat.check(now) {
            Beat::Lost => Some(End::Silent),
            Beat::Ping => {
                self.send(ctx, &PeerMsg::Ping);
                None
            }
            Beat::Idle => None,
        }
    }

    /// A received message was recorded (or not): send its receipt.
    pub(super) fn recorded(&mut self, ctx: &mut Ctx<'_>, n: u64, result: Result<(), String>) {
        if let Phase::Talking(talk) | Phase::Leaving { talk, .. } = &mut self.phase {
            talk.unreceipted = talk.unreceipted.saturating_sub(1);
        }
        match result {
            Ok(()) => self.send(ctx, &PeerMsg::Ack { n }),
            Err(reason) => {
                let detail = ErrorDetail::NotRecorded {
                    peer: self.partner(),
                    n,
                    reason,
                };
                ctx.out.push_back(PeerOutput::Event(Event::error(
                    ErrorCode::TranscriptFailed,
                    detail,
                )));
            }
        }
    }

    /// Ends the chat: the last frame to the partner, the transcript's last
    /// lines, the event the user sees, and the link closed.
    pub(super) fn finish(self, ctx: &mut Ctx<'_>, end: End) {
        let peer = self.partner();
        let link = self.link;
        let addr = self.addr;
        let Chat {
            mut secure, phase, ..
        } = self;
        let event = |e: Event| PeerOutput::Event(e);
        let mut goodbye = |ctx: &mut Ctx<'_>, frame: PeerMsg| {
            if secure.send(&encode(&frame)).is_ok() {
                while let Some(bytes) = secure.poll_transmit() {
                    ctx.out.push_back(PeerOutput::Send { link, bytes });
                }
            }
        };
        match phase {
            Phase::Talking(talk) | Phase::Leaving { talk, .. } => {
                let cause = match &end {
                    End::Left => EndCause::Left,
                    End::Bye => EndCause::Bye,
                    End::Silent => EndCause::Silent,
                    End::Cut => EndCause::Cut,
                    End::BadFrame { problem } | End::Insecure { problem } => {
                        let detail = ErrorDetail::PeerBadFrame {
                            peer: peer.clone(),
                            problem: problem.clone(),
                        };
                        ctx.out
                            .push_back(event(Event::error(ErrorCode::BadFrame, detail)));
                        EndCause::BadFrame
                    }
                    End::TooLong { n, chars } => {
                        let detail = ErrorDetail::PartnerMessageTooLong {
                            peer: peer.clone(),
                            n: *n,
                            chars: *chars,
                            max: ctx.config.max_message,
                        };
                        ctx.out
                            .push_back(event(Event::error(ErrorCode::MessageTooLong, detail)));
                        EndCause::BadFrame
                    }
                    End::Quota(scope) => {
                        let limit = super::quota::limit(ctx.config, *scope);
                        let detail = ErrorDetail::QuotaReached {
                            peer: peer.clone(),
                            scope: *scope,
                            limit,
                        };
                        ctx.out
                            .push_back(event(Event::error(ErrorCode::TranscriptQuota, detail)));
                        EndCause::Quota
                    }
                    End::Refused(problem) => {
                        ctx.out.push_back(event(problem.clone().into()));
                        if problem.code == ErrorCode::TranscriptQuota {
                            EndCause::PeerQuota
                        } else {
                            EndCause::Closed
                        }
                    }
                    _ => EndCause::Closed,
                };
                let mut talk = talk;
                for (n, text) in std::mem::take(&mut talk.unacked) {
                    let entry = Entry::Undelivered { n, text: &text };
                    record(ctx, &mut talk, &entry, None);
                    talk.unacked.insert(n, text);
                }
                let entry = Entry::Ended { cause };
                record(ctx, &mut talk, &entry, None);
                if cause == EndCause::Left {
                    goodbye(ctx, PeerMsg::Bye);
                }
                if let End::Quota(scope) = &end {
                    let limit = super::quota::limit(ctx.config, *scope);
                    let message = format!(
                        "{}'s transcript quota ({limit} bytes per {scope}) is reached; the chat is ended",
                        ctx.config.name
                    );
                    goodbye(
                        ctx,
                        PeerMsg::Error {
                            code: ErrorCode::TranscriptQuota,
                            message,
                            close: true,
                        },
                    );
                }
                ctx.out.push_back(event(Event::ChatEnded {
                    peer,
                    reason: cause.reason(),
                    cause,
                    undelivered: talk.unacked.keys().copied().collect(),
                }));
            }
            phase @ (Phase::Dialing { .. } | Phase::Calling { .. }) => {
                let outcome = match end {
                    End::Rejected => event(Event::Rejected { peer }),
                    End::Busy => event(Event::Busy { peer }),
                    End::NoAnswer => event(Event::NoAnswer { peer }),
                    End::Left => {
                        // A connected caller says why it hangs up; a
                        // connection still being opened just closes.
                        if matches!(phase, Phase::Calling { .. }) {
                            goodbye(ctx, PeerMsg::Bye);
                        }
                        event(Event::Cancelled { peer })
                    }
                    End::Refused(problem) | End::Untrusted(problem) => event(problem.into()),
                    End::Unreachable { reason } => event(Event::error(
                        ErrorCode::PeerUnreachable,
                        ErrorDetail::ConnectFailed { peer, addr, reason },
                    )),
                    End::Silent => event(Event::error(
                        ErrorCode::PeerUnreachable,
                        ErrorDetail::StoppedAnswering { peer },
                    )),
                    End::BadFrame { problem } | End::Insecure { problem } => event(Event::error(
                        ErrorCode::BadFrame,
                        ErrorDetail::PeerBadFrame { peer, problem },
                    )),
                    End::Bye
                    | End::Closed
                    | End::Cut
                    | End::NoRoom { .. }
                    | End::Quiet
                    | End::TooLong { .. }
                    | End::Quota(_) => event(Event::error(
                        ErrorCode::PeerUnreachable,
                        ErrorDetail::ClosedBeforeAnswer { peer },
                    )),
                };
                ctx.out.push_back(outcome);
            }
            Phase::Ringing { .. } => match end {
                End::Rejected | End::Left => {
                    goodbye(ctx, PeerMsg::Reject);
                    ctx.out.push_back(event(Event::Declined { peer }));
                }
                // The caller refused us after all (its check of our key
                // failed, say): its reason, not a mere missed call. Its
                // key was verified before it rang, so in a summary it is
                // no refused caller (`missed_calls.refused`).
                End::Refused(problem) => notice(ctx, &peer, false, problem.into()),
                _ => notice(ctx, &peer, false, Event::Missed { peer: peer.clone() }),
            },
            Phase::Greeting { .. } | Phase::Verifying { .. } => match end {
                End::NoRoom { caller } => notice(
                    ctx,
                    &caller,
                    false,
                    Event::Missed {
                        peer: caller.clone(),
                    },
                ),
                End::Untrusted(problem) => notice(ctx, &peer, true, problem.into()),
                _ => {}
            },
        }
        ctx.out.push_back(PeerOutput::Close { link });
    }

    // ---- sending ----

    /// Sends a frame through the Noise session (queued there until the
    /// handshake is done, which bounds it; a frame beyond that bound is
    /// dropped, and the heartbeat or the window sorts the link out).
    fn send(&mut self, ctx: &mut Ctx<'_>, frame: &PeerMsg) {
        self.heartbeat.sent(ctx.now.mono);
        let _ = self.secure.send(&encode(frame));
        self.transmit(ctx);
    }

    /// Hands the driver whatever the Noise session has ready to go out:
    /// handshake messages and sealed frames. Nothing goes out before the
    /// connection is open (a dialled link's first handshake message waits
    /// for `connected`).
    fn transmit(&mut self, ctx: &mut Ctx<'_>) {
        if matches!(self.phase, Phase::Dialing { .. }) {
            return;
        }
        while let Some(bytes) = self.secure.poll_transmit() {
            ctx.out.push_back(PeerOutput::Send {
                link: self.link,
                bytes,
            });
        }
    }

    /// An `error` frame; the link closes right after it (the chat ends).
    fn send_error(&mut self, ctx: &mut Ctx<'_>, code: ErrorCode, message: String) {
        let frame = PeerMsg::Error {
            code,
            message,
            close: true,
        };
        self.send(ctx, &frame);
    }

    /// The partner broke the protocol: tell it why; the chat ends.
    fn protocol_error(&mut self, ctx: &mut Ctx<'_>, problem: String) -> Signal {
        self.send_error(ctx, ErrorCode::BadFrame, problem.clone());
        if matches!(self.phase, Phase::Greeting { .. }) {
            return Signal::Ended(End::Quiet);
        }
        Signal::Ended(End::BadFrame { problem })
    }
}

/// Why `key` cannot be taken for `name`, given what the directory says
/// about `name` (nothing if it lists that very key): the problem for our
/// user, and the words for the other side.
fn directory_problem(
    name: &str,
    key: PublicKey,
    directory: Directory,
) -> Option<(Problem, String)> {
    let peer = name.to_string();
    let presented = key.fingerprint();
    let (detail, message) = match directory {
        Directory::Key(listed) if listed == key => return None,
        Directory::Key(listed) => (
            ErrorDetail::IdentityMismatch {
                peer,
                expected: listed.fingerprint(),
                presented,
            },
            format!("the directory lists another key for {name}; refused"),
        ),
        Directory::NoKey => (
            ErrorDetail::ListedWithoutKey { peer, presented },
            format!("the directory lists no key for {name}, so it cannot be verified; refused"),
        ),
        Directory::NoSuchName => (
            ErrorDetail::NotListed { peer, presented },
            format!("the directory has nobody named {name}; refused"),
        ),
        Directory::Unreachable => return Some(unverifiable(name, key)),
    };
    Some((Problem::new(ErrorCode::IdentityMismatch, detail), message))
}

/// A caller not pinned, with no directory to ask: `cannot_verify`.
fn unverifiable(name: &str, key: PublicKey) -> (Problem, String) {
    let detail = ErrorDetail::CannotVerify {
        peer: name.to_string(),
        presented: key.fingerprint(),
    };
    let message = format!(
        "{name} is not a known contact here and the directory cannot be asked now; refused, try again later"
    );
    (Problem::new(ErrorCode::CannotVerify, detail), message)
}

/// The key pinned for `name` when `key` is another one.
fn pin_mismatch(ctx: &Ctx<'_>, name: &str, key: PublicKey) -> Option<PublicKey> {
    ctx.pins
        .get(&name.to_ascii_lowercase())
        .copied()
        .filter(|pinned| *pinned != key)
}

/// The notice of a call the user never answered: shown, or counted for
/// the next summary (see [`super::missed`]).
fn notice(ctx: &mut Ctx<'_>, peer: &str, refused: bool, event: Event) {
    if ctx.missed.show(ctx.now.mono, peer, refused) {
        ctx.out.push_back(PeerOutput::Event(event));
    }
}

/// Appends a line to a conversation's transcript, counted against the
/// quotas but not checked (the lines that close a chat, receipts).
fn record(ctx: &mut Ctx<'_>, talk: &mut Talk, entry: &Entry<'_>, receipt: Option<(LinkId, u64)>) {
    let line = transcript::line(&ctx.now, entry);
    talk.recorded += line.len() as u64 + 1;
    write(ctx, &talk.transcript, line, receipt);
}

/// Appends a message's line unless it would take the chat or the day
/// past its quota.
fn record_within_quota(
    ctx: &mut Ctx<'_>,
    talk: &mut Talk,
    entry: &Entry<'_>,
    receipt: Option<(LinkId, u64)>,
) -> Result<(), QuotaScope> {
    let line = transcript::line(&ctx.now, entry);
    let bytes = line.len() as u64 + 1;
    let over = super::quota::exceeded(ctx.config, ctx.day_quota, ctx.now, talk.recorded, bytes);
    if let Some(scope) = over {
        return Err(scope);
    }
    talk.recorded += bytes;
    write(ctx, &talk.transcript, line, receipt);
    Ok(())
}

/// Hands a line to the driver, counted for the day.
fn write(ctx: &mut Ctx<'_>, file: &str, line: String, receipt: Option<(LinkId, u64)>) {
    ctx.day_quota.spend(ctx.now, line.len() as u64 + 1);
    ctx.out.push_back(PeerOutput::Transcript(TranscriptWrite {
        file: file.to_string(),
        line,
        receipt,
    }));
}

/// Checks a typed message against our own limit.
fn check_typed(text: &str, max: usize) -> Result<(), Problem> {
    match check_message(text, max) {
        Ok(()) => Ok(()),
        Err(MessageProblem::TooLong { chars, max }) => Err(Problem::new(
            ErrorCode::MessageTooLong,
            ErrorDetail::MessageTooLong { chars, max },
        )),
        Err(MessageProblem::ControlCharacter) => Err(Problem::new(
            ErrorCode::BadInput,
            ErrorDetail::ControlCharacters,
        )),
        Err(MessageProblem::Empty) => unreachable!("empty messages are dropped before"),
    }
}

fn frame_type(frame: &PeerMsg) -> &'static str {
    match frame {
        PeerMsg::Hello { .. } => "hello",
        PeerMsg::Accept => "accept",
        PeerMsg::Reject => "reject",
        PeerMsg::Busy => "busy",
        PeerMsg::Msg { .. } => "msg",
        PeerMsg::Ack { .. } => "ack",
        PeerMsg::Bye => "bye",
        PeerMsg::Ping => "ping",
        PeerMsg::Pong => "pong",
        PeerMsg::Error { .. } => "error",
    }
}
