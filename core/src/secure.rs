//! One encrypted, authenticated link: the Noise handshake and transport of a
//! TCP connection, sans-IO.
//!
//! Every natter link (peer to server, peer to peer) runs
//! `Noise_XX_25519_ChaChaPoly_BLAKE2s` through `snow` (itself sans-IO).
//! XX because neither side knows the other's key beforehand: both static
//! keys are sent, encrypted, and proven, and each side decides afterwards
//! whether the key it learnt is the one it expected (the directory and the
//! pins live above this layer).
//!
//! On the wire every Noise message, handshake or transport, is a frame:
//! a 2-byte big-endian length, then that many bytes (1 to 65535, the Noise
//! limit). The three handshake messages carry empty payloads, so they are
//! exactly 32, 96 and 64 bytes long; anything else is refused. After them,
//! the application's byte stream (natter's newline-delimited JSON) is cut
//! into transport messages of at most [`MAX_PLAINTEXT`] bytes; the
//! receiving side gets the same stream back, in order, with the cuts gone.
//!
//! The prologue names the kind of link ([`LinkKind`]), so a handshake made
//! for a server link fails on a peer link and the other way round.
//!
//! Memory is bounded: one partial incoming frame at most (2 + 65535 bytes),
//! and at most [`MAX_PENDING`] bytes of plaintext queued before the
//! handshake completes. Decrypted and sealed bytes wait for the caller to
//! drain them with [`SecureLink::poll_plaintext`] and
//! [`SecureLink::poll_transmit`], as with the other machines' `poll_*`.
//!
//! Any error (a tampered, replayed, reordered or truncated message, an
//! empty frame, a handshake message of the wrong shape) is final: the link
//! answers every later call with [`SecureError::Failed`] and the caller
//! closes the connection. Noise nonces are implicit counters, so a frame
//! replayed, dropped or moved fails authentication like a tampered one.
//!
//! Determinism: the only randomness of a handshake is the ephemeral key,
//! and it comes from the `seed` given at construction (ChaCha20 as a
//! CSPRNG), never from the OS. Same identities and seeds give the same
//! bytes; a real process must therefore give each link a fresh seed (see
//! [`LinkSeeds`]).

use crate::identity::{derive_seed, Identity, PublicKey, KEY_LEN};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};
use snow::HandshakeState;
use transport::Transport;

mod transport;
use std::fmt;

/// The Noise protocol name of every natter link.
pub const NOISE_PATTERN: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
/// Largest Noise message, hence largest frame body.
pub const MAX_MESSAGE: usize = 65535;
/// Bytes a transport message adds to its plaintext (the AEAD tag).
pub const TAG_LEN: usize = 16;
/// Largest plaintext of one transport message.
pub const MAX_PLAINTEXT: usize = MAX_MESSAGE - TAG_LEN;
/// Plaintext that [`SecureLink::send`] queues while the handshake runs.
/// A handshake takes one round trip and a half; natter sends a hello and
/// little else in that time, so 64 KiB is generous, and bounded.
pub const MAX_PENDING: usize = 64 * 1024;

/// Capacity of the incoming-frame buffer kept between frames.
const KEEP_INCOMING: usize = 4 * 1024;

/// Lengths of the three XX messages with empty payloads: `e`; `e, ee, s,
/// es` plus the tag of the payload; `s, se` plus the tag of the payload.
const HANDSHAKE_LENGTHS: [usize; 3] = [32, 32 + 32 + TAG_LEN + TAG_LEN, 32 + TAG_LEN + TAG_LEN];

/// Which link a handshake is for; its prologue is mixed into the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// A peer and the directory server.
    Server,
    /// Two peers chatting.
    Peer,
}

impl LinkKind {
    /// The Noise prologue: both sides must use the same one or the
    /// handshake fails.
    pub const fn prologue(self) -> &'static [u8] {
        match self {
            LinkKind::Server => b"natter/2 server link",
            LinkKind::Peer => b"natter/2 peer link",
        }
    }
}

/// Why a link failed. Every one is final.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecureError {
    #[error("a frame of length 0")]
    EmptyFrame,
    #[error("handshake message {index} is {got} bytes, expected {expected}")]
    BadHandshake {
        index: usize,
        expected: usize,
        got: usize,
    },
    #[error("a message failed authentication: tampered, replayed, reordered or cut")]
    Decrypt,
    #[error("the other side's static key is a low-order point: it proves nothing")]
    WeakKey,
    #[error("the stream ended inside a frame or before the handshake completed")]
    Truncated,
    #[error("more than {MAX_PENDING} bytes queued before the handshake completed")]
    PendingFull,
    #[error("the link already failed")]
    Failed,
}

enum Phase {
    Handshake {
        noise: Box<HandshakeState>,
        /// Handshake messages read or written so far (0 to 3).
        messages: usize,
        /// Plaintext given to `send` before the transport keys exist.
        pending: Vec<u8>,
    },
    Transport(Transport),
    Failed,
}

/// The Noise state of one connection; see the module doc.
pub struct SecureLink {
    phase: Phase,
    /// The incoming frame being assembled: its 2 header bytes, then its body.
    incoming: Vec<u8>,
    /// Framed bytes to write to the connection, in order.
    transmit: Vec<u8>,
    /// Decrypted application bytes, in order.
    plaintext: Vec<u8>,
    remote: Option<PublicKey>,
}

impl fmt::Debug for SecureLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecureLink")
            .field("established", &self.is_established())
            .field("remote", &self.remote.map(|key| key.fingerprint()))
            .finish_non_exhaustive()
    }
}

impl SecureLink {
    /// The side that opened the connection. Its first handshake message is
    /// ready in [`SecureLink::poll_transmit`] at once.
    pub fn initiator(identity: &Identity, kind: LinkKind, seed: [u8; KEY_LEN]) -> Self {
        let noise = builder(identity, kind, seed)
            .build_initiator()
            .expect("the pattern, key and prologue are valid");
        let mut link = SecureLink::new(noise);
        link.write_handshake();
        link
    }

    /// The side that accepted the connection: it waits for the initiator.
    pub fn responder(identity: &Identity, kind: LinkKind, seed: [u8; KEY_LEN]) -> Self {
        let noise = builder(identity, kind, seed)
            .build_responder()
            .expect("the pattern, key and prologue are valid");
        SecureLink::new(noise)
    }

    fn new(noise: HandshakeState) -> Self {
        SecureLink {
            phase: Phase::Handshake {
                noise: Box::new(noise),
                messages: 0,
                pending: Vec::new(),
            },
            incoming: Vec::with_capacity(2),
            transmit: Vec::new(),
            plaintext: Vec::new(),
            remote: None,
        }
    }

    /// Bytes read from the connection, cut anywhere. Handshake messages
    /// are answered (see `poll_transmit`), transport messages decrypted
    /// (see `poll_plaintext`).
    pub fn push(&mut self, mut bytes: &[u8]) -> Result<(), SecureError> {
        if matches!(self.phase, Phase::Failed) {
            return Err(SecureError::Failed);
        }
        while !bytes.is_empty() {
            let wanted = self.incoming_wanted();
            let take = wanted.min(bytes.len());
            self.incoming.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if take < wanted {
                break;
            }
            if self.incoming.len() == 2 && self.incoming_wanted() == 0 {
                return self.fail(SecureError::EmptyFrame);
            }
            // A handshake message has one size: a header announcing
            // another (an HTTP request, plain JSON, any stranger) is
            // refused at once, not after waiting for kilobytes.
            if self.incoming.len() == 2 {
                if let Phase::Handshake { messages, .. } = &self.phase {
                    let expected = HANDSHAKE_LENGTHS[*messages];
                    let got = usize::from(u16::from_be_bytes([self.incoming[0], self.incoming[1]]));
                    if got != expected {
                        let index = *messages;
                        return self.fail(SecureError::BadHandshake {
                            index,
                            expected,
                            got,
                        });
                    }
                }
            }
            if self.incoming.len() == 2 {
                // The whole frame in one allocation of its size: growing
                // by doubling would hold up to twice what arrived, and
                // thousands of links that each send part of a big frame
                // fragment the heap with the smaller buffers left behind.
                self.incoming.reserve_exact(self.incoming_wanted());
            }
            if self.incoming.len() > 2 && self.incoming_wanted() == 0 {
                let frame = std::mem::take(&mut self.incoming);
                let result = self.on_frame(&frame[2..]);
                // The buffer is reused for the next frame, unless one big
                // frame grew it: a server holds thousands of links, and
                // each would keep up to 64 KiB for good.
                if frame.capacity() <= KEEP_INCOMING {
                    self.incoming = frame;
                    self.incoming.clear();
                }
                if let Err(error) = result {
                    return self.fail(error);
                }
            }
        }
        Ok(())
    }

    /// The connection's read side ended: an error if that cut a frame or
    /// the handshake short, so the caller can tell a clean close from a
    /// truncation.
    pub fn end_of_stream(&mut self) -> Result<(), SecureError> {
        match self.phase {
            Phase::Failed => Err(SecureError::Failed),
            Phase::Handshake { .. } => self.fail(SecureError::Truncated),
            Phase::Transport(_) if !self.incoming.is_empty() => self.fail(SecureError::Truncated),
            Phase::Transport(_) => Ok(()),
        }
    }

    /// Application bytes to send: sealed now if the handshake is done,
    /// otherwise queued (up to [`MAX_PENDING`]) and sealed when it
    /// completes. Either way they come out of `poll_transmit`, in order.
    pub fn send(&mut self, plaintext: &[u8]) -> Result<(), SecureError> {
        match &mut self.phase {
            Phase::Failed => Err(SecureError::Failed),
            Phase::Handshake { pending, .. } => {
                if pending.len() + plaintext.len() > MAX_PENDING {
                    return self.fail(SecureError::PendingFull);
                }
                pending.extend_from_slice(plaintext);
                Ok(())
            }
            Phase::Transport(keys) => match seal(keys, plaintext, &mut self.transmit) {
                Ok(()) => Ok(()),
                Err(error) => self.fail(error),
            },
        }
    }

    /// Framed bytes to write to the connection (everything ready, in one
    /// buffer), or `None`.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        (!self.transmit.is_empty()).then(|| std::mem::take(&mut self.transmit))
    }

    /// Decrypted application bytes (everything ready, in order), or `None`.
    pub fn poll_plaintext(&mut self) -> Option<Vec<u8>> {
        (!self.plaintext.is_empty()).then(|| std::mem::take(&mut self.plaintext))
    }

    /// Whether the handshake completed: from then on `remote_key` is known
    /// and `send` seals at once.
    pub fn is_established(&self) -> bool {
        matches!(self.phase, Phase::Transport(_))
    }

    /// The other side's static key, once the handshake has proven it.
    pub fn remote_key(&self) -> Option<PublicKey> {
        self.remote
    }

    /// Bytes held of an incoming frame not yet complete (at most 2 +
    /// [`MAX_MESSAGE`]): what a server counts as a client's partial input.
    pub fn buffered(&self) -> usize {
        self.incoming.len()
    }

    /// Memory held for an incoming frame not yet complete: its buffer,
    /// sized for the whole frame as soon as its header is in (0 between
    /// frames, when the link keeps at most a small buffer for the next).
    pub fn held_memory(&self) -> usize {
        if self.incoming.is_empty() {
            0
        } else {
            self.incoming.capacity()
        }
    }

    /// Bytes of the incoming frame still missing: of the header, then of
    /// the body.
    fn incoming_wanted(&self) -> usize {
        match self.incoming.len() {
            held @ 0..=1 => 2 - held,
            held => {
                2 + usize::from(u16::from_be_bytes([self.incoming[0], self.incoming[1]])) - held
            }
        }
    }

    fn on_frame(&mut self, frame: &[u8]) -> Result<(), SecureError> {
        match &mut self.phase {
            Phase::Handshake {
                noise, messages, ..
            } => {
                let expected = HANDSHAKE_LENGTHS[*messages];
                if frame.len() != expected {
                    return Err(SecureError::BadHandshake {
                        index: *messages,
                        expected,
                        got: frame.len(),
                    });
                }
                let mut payload = [0u8; HANDSHAKE_LENGTHS[1]];
                noise
                    .read_message(frame, &mut payload)
                    .map_err(|_| SecureError::Decrypt)?;
                *messages += 1;
                // Checked as soon as it is known: the initiator learns the
                // key from msg 2 and must not answer a weak one with its own.
                if noise
                    .get_remote_static()
                    .is_some_and(|key| key.try_into().is_ok_and(is_low_order))
                {
                    return Err(SecureError::WeakKey);
                }
                if !noise.is_handshake_finished() {
                    self.write_handshake();
                }
                self.finish_handshake_if_done()
            }
            Phase::Transport(keys) => {
                let start = self.plaintext.len();
                self.plaintext.extend_from_slice(frame);
                match keys.open(&mut self.plaintext[start..]) {
                    Ok(length) => {
                        self.plaintext.truncate(start + length);
                        Ok(())
                    }
                    Err(_) => {
                        self.plaintext.truncate(start);
                        Err(SecureError::Decrypt)
                    }
                }
            }
            Phase::Failed => Err(SecureError::Failed),
        }
    }

    /// Writes our next handshake message (it is our turn).
    fn write_handshake(&mut self) {
        let Phase::Handshake {
            noise, messages, ..
        } = &mut self.phase
        else {
            unreachable!("only called during the handshake");
        };
        let length = HANDSHAKE_LENGTHS[*messages];
        let start = self.transmit.len();
        self.transmit
            .extend_from_slice(&(length as u16).to_be_bytes());
        // snow wants room for a tag even where the payload has none (msg 1).
        self.transmit.resize(start + 2 + length + TAG_LEN, 0);
        let written = noise
            .write_message(&[], &mut self.transmit[start + 2..])
            .expect("a handshake message with an empty payload fits its buffer");
        debug_assert_eq!(written, length, "XX message {messages} length");
        self.transmit.truncate(start + 2 + length);
        *messages += 1;
    }

    /// After the last handshake message: switches to transport keys and
    /// seals what was queued.
    fn finish_handshake_if_done(&mut self) -> Result<(), SecureError> {
        let Phase::Handshake { noise, pending, .. } = &mut self.phase else {
            return Ok(());
        };
        if !noise.is_handshake_finished() {
            return Ok(());
        }
        let remote: [u8; KEY_LEN] = noise
            .get_remote_static()
            .and_then(|key| key.try_into().ok())
            .expect("XX always transmits the remote static key");
        let pending = std::mem::take(pending);
        let Phase::Handshake { mut noise, .. } = std::mem::replace(&mut self.phase, Phase::Failed)
        else {
            unreachable!("matched above");
        };
        let mut transport = Transport::new(&mut noise);
        let sealed = seal(&mut transport, &pending, &mut self.transmit);
        self.phase = Phase::Transport(transport);
        self.remote = Some(PublicKey::from_bytes(remote));
        sealed.or_else(|error| self.fail(error))
    }

    fn fail(&mut self, error: SecureError) -> Result<(), SecureError> {
        self.phase = Phase::Failed;
        self.incoming = Vec::new();
        Err(error)
    }
}

/// Appends `plaintext` to `out` as framed transport messages.
fn seal(keys: &mut Transport, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), SecureError> {
    for chunk in plaintext.chunks(MAX_PLAINTEXT) {
        let length = chunk.len() + TAG_LEN;
        let start = out.len();
        out.extend_from_slice(&(length as u16).to_be_bytes());
        out.resize(start + 2 + length, 0);
        if keys.seal(chunk, &mut out[start + 2..]).is_err() {
            out.truncate(start);
            return Err(SecureError::Failed);
        }
    }
    Ok(())
}

/// Whether an X25519 public key is of small order. Such a key makes every
/// Diffie-Hellman with it output zero, so a handshake "proves" it without
/// any secret: anyone could present it as theirs. (A lookup, not a scalar
/// multiplication: that would cost a quarter of a handshake.)
fn is_low_order(key: &[u8; KEY_LEN]) -> bool {
    let mut masked = *key;
    masked[31] &= 0x7f;
    SMALL_ORDER.contains(&masked)
}

/// The X25519 public keys of small order, top bit cleared (X25519 ignores
/// it): the five small-order u-coordinates of the curve and its twist (both
/// have a cyclic torsion, of order 8 and 4) and the two that also have a
/// second encoding below 2^255. They are the list libsodium refuses too.
const SMALL_ORDER: [[u8; KEY_LEN]; 7] = [
    // 0 (the point at infinity's encoding and the point of order 2)
    [
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00,
    ],
    // 1 (order 4)
    [
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00,
    ],
    // order 8
    [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
        0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
        0xb8, 0x00,
    ],
    // order 8
    [
        0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef,
        0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f,
        0x11, 0x57,
    ],
    // p - 1 (order 4, on the twist)
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    // p, a second encoding of 0
    [
        0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    // p + 1, a second encoding of 1
    [
        0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
];

fn builder(identity: &Identity, kind: LinkKind, seed: [u8; KEY_LEN]) -> snow::Builder<'_> {
    let params = NOISE_PATTERN.parse().expect("a valid Noise protocol name");
    snow::Builder::with_resolver(params, Box::new(SeededResolver { seed }))
        .local_private_key(identity.secret())
        .expect("a 32-byte X25519 key")
        .prologue(kind.prologue())
        .expect("a prologue is set once")
}

/// The primitives of a link: X25519 and BLAKE2s from snow's pure-Rust set,
/// ChaChaPoly from ring (several times faster on chat-sized messages), and
/// the randomness (the ephemeral key) from a seed instead of the OS.
struct SeededResolver {
    seed: [u8; KEY_LEN],
}

impl CryptoResolver for SeededResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(SeededRandom(ChaCha20Rng::from_seed(self.seed))))
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver.resolve_dh(choice)
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        snow::resolvers::RingResolver.resolve_cipher(choice)
    }
}

struct SeededRandom(ChaCha20Rng);

impl Random for SeededRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }
}

/// One fresh ephemeral seed per link from one master seed: the seed of
/// link `n` is `derive_seed(master, "link", n)`.
///
/// A process draws the master seed once (from the OS in a real process,
/// from the simulation's seed under turmoil) and takes every link's seed
/// from here, so no two links of a process ever share an ephemeral key
/// (which would give their sessions the same `ee` secret) and a simulation
/// replays byte for byte.
pub struct LinkSeeds {
    master: [u8; KEY_LEN],
    next: u64,
}

impl LinkSeeds {
    pub fn new(master: [u8; KEY_LEN]) -> Self {
        LinkSeeds { master, next: 0 }
    }

    /// The seed of the next link; never the same twice.
    pub fn next_seed(&mut self) -> [u8; KEY_LEN] {
        let seed = derive_seed(&self.master, b"link", self.next);
        self.next += 1;
        seed
    }
}

impl fmt::Debug for LinkSeeds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkSeeds")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn alice() -> Identity {
        Identity::from_seed(&[1; KEY_LEN])
    }

    fn bob() -> Identity {
        Identity::from_seed(&[2; KEY_LEN])
    }

    fn pair(kind: LinkKind) -> (SecureLink, SecureLink) {
        (
            SecureLink::initiator(&alice(), kind, [10; KEY_LEN]),
            SecureLink::responder(&bob(), kind, [20; KEY_LEN]),
        )
    }

    /// Moves every transmitted byte from each side to the other until
    /// neither has anything to say.
    fn pump(a: &mut SecureLink, b: &mut SecureLink) -> Result<(), SecureError> {
        loop {
            let mut moved = false;
            if let Some(bytes) = a.poll_transmit() {
                b.push(&bytes)?;
                moved = true;
            }
            if let Some(bytes) = b.poll_transmit() {
                a.push(&bytes)?;
                moved = true;
            }
            if !moved {
                return Ok(());
            }
        }
    }

    fn established() -> (SecureLink, SecureLink) {
        let (mut a, mut b) = pair(LinkKind::Peer);
        pump(&mut a, &mut b).unwrap();
        assert!(a.is_established() && b.is_established());
        (a, b)
    }

    /// Splits a stream into frames (header included).
    fn frames(mut bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        while !bytes.is_empty() {
            let length = 2 + usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
            frames.push(bytes[..length].to_vec());
            bytes = &bytes[length..];
        }
        frames
    }

    fn sealed(link: &mut SecureLink, text: &[u8]) -> Vec<u8> {
        link.send(text).unwrap();
        link.poll_transmit().unwrap()
    }

    /// Delivers `bytes` in pieces of the given sizes (cycling), then the rest.
    fn push_split(
        link: &mut SecureLink,
        mut bytes: &[u8],
        cuts: &[usize],
    ) -> Result<(), SecureError> {
        for cut in cuts.iter().cycle() {
            if bytes.is_empty() {
                break;
            }
            let take = (*cut).clamp(1, bytes.len());
            link.push(&bytes[..take])?;
            bytes = &bytes[take..];
        }
        link.push(bytes)
    }

    proptest! {
        #[test]
        fn handshake_and_transport_work_through_any_byte_split(
            cuts in prop::collection::vec(1usize..200, 1..8),
            text in prop::collection::vec(any::<u8>(), 1..3000),
        ) {
            let (mut a, mut b) = pair(LinkKind::Server);
            prop_assert_eq!(a.remote_key(), None);
            for _ in 0..3 {
                if let Some(bytes) = a.poll_transmit() {
                    push_split(&mut b, &bytes, &cuts).unwrap();
                }
                if let Some(bytes) = b.poll_transmit() {
                    push_split(&mut a, &bytes, &cuts).unwrap();
                }
            }
            prop_assert!(a.is_established() && b.is_established());
            prop_assert_eq!(a.remote_key(), Some(bob().public()));
            prop_assert_eq!(b.remote_key(), Some(alice().public()));

            let to_b = sealed(&mut a, &text);
            push_split(&mut b, &to_b, &cuts).unwrap();
            prop_assert_eq!(b.poll_plaintext(), Some(text.clone()));
            let to_a = sealed(&mut b, &text);
            push_split(&mut a, &to_a, &cuts).unwrap();
            prop_assert_eq!(a.poll_plaintext(), Some(text));
            prop_assert_eq!(a.poll_plaintext(), None);
        }

        #[test]
        fn any_tampered_byte_fails_the_link_and_delivers_nothing(
            position in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let (mut a, mut b) = established();
            let mut stream = sealed(&mut a, b"wire 10 EUR\n");
            stream.extend(sealed(&mut a, b"thanks\n"));
            let at = position.index(stream.len());
            stream[at] ^= flip;
            // A changed length header may make the link wait for bytes that
            // never come: then the end of the stream is the error.
            let result = b.push(&stream).and_then(|()| b.end_of_stream());
            prop_assert!(result.is_err(), "tampered byte {} accepted", at);
            // The first message may have been intact (byte in the second),
            // but no altered text ever comes out.
            let got = b.poll_plaintext().unwrap_or_default();
            prop_assert!(got.is_empty() || got == b"wire 10 EUR\n", "{:?}", got);
            prop_assert_eq!(b.push(b"x"), Err(SecureError::Failed));
        }

        #[test]
        fn a_tampered_handshake_message_never_establishes_the_responder(
            message in 0usize..3,
            position in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let (mut a, mut b) = pair(LinkKind::Peer);
            for index in 0..3 {
                let (from, to) = if index == 1 { (&mut b, &mut a) } else { (&mut a, &mut b) };
                let Some(mut bytes) = from.poll_transmit() else { break };
                if index == message {
                    let at = position.index(bytes.len());
                    bytes[at] ^= flip;
                }
                if to.push(&bytes).is_err() {
                    break;
                }
            }
            prop_assert!(!b.is_established());
            prop_assert_eq!(b.remote_key(), None);
        }

        #[test]
        fn garbage_never_authenticates_and_buffers_at_most_one_frame(
            chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..70_000), 1..6),
        ) {
            let (_a, mut b) = established();
            for chunk in chunks {
                let result = b.push(&chunk);
                prop_assert!(b.incoming.len() <= 2 + MAX_MESSAGE);
                prop_assert_eq!(b.poll_plaintext(), None);
                if result.is_err() {
                    prop_assert_eq!(b.incoming.capacity(), 0);
                    break;
                }
            }
        }
    }

    #[test]
    fn a_link_can_move_between_threads_with_its_connection() {
        fn assert_send<T: Send>() {}
        assert_send::<SecureLink>();
        assert_send::<Identity>();
    }

    #[test]
    fn handshake_messages_have_the_documented_lengths() {
        let (mut a, mut b) = pair(LinkKind::Peer);
        let msg1 = a.poll_transmit().unwrap();
        assert_eq!(msg1.len(), 2 + 32);
        assert_eq!(&msg1[..2], &[0, 32]);
        b.push(&msg1).unwrap();
        let msg2 = b.poll_transmit().unwrap();
        assert_eq!(msg2.len(), 2 + 96);
        a.push(&msg2).unwrap();
        assert!(
            a.is_established(),
            "the initiator is done once it wrote msg 3"
        );
        let msg3 = a.poll_transmit().unwrap();
        assert_eq!(msg3.len(), 2 + 64);
        assert!(!b.is_established());
        assert_eq!(b.remote_key(), None, "not proven before msg 3");
        b.push(&msg3).unwrap();
        assert!(b.is_established());
    }

    #[test]
    fn text_sent_before_the_handshake_is_delivered_after_it_in_order() {
        let (mut a, mut b) = pair(LinkKind::Peer);
        a.send(b"hello ").unwrap();
        a.send(b"bob\n").unwrap();
        b.send(b"hi alice\n").unwrap();
        assert_eq!(
            b.poll_transmit(),
            None,
            "the responder speaks only when asked"
        );
        pump(&mut a, &mut b).unwrap();
        assert_eq!(b.poll_plaintext().as_deref(), Some(&b"hello bob\n"[..]));
        assert_eq!(a.poll_plaintext().as_deref(), Some(&b"hi alice\n"[..]));
    }

    #[test]
    fn queueing_past_the_limit_before_the_handshake_is_an_error() {
        let (mut a, _b) = pair(LinkKind::Peer);
        a.send(&vec![b'x'; MAX_PENDING]).unwrap();
        assert_eq!(a.send(b"y"), Err(SecureError::PendingFull));
        assert_eq!(a.send(b"y"), Err(SecureError::Failed));
    }

    #[test]
    fn a_64_kib_write_is_split_into_messages_and_reassembled() {
        let (mut a, mut b) = established();
        let text: Vec<u8> = (0..64 * 1024 + 100).map(|i| (i % 251) as u8).collect();
        let stream = sealed(&mut a, &text);
        let lengths: Vec<usize> = frames(&stream).iter().map(|f| f.len() - 2).collect();
        assert_eq!(
            lengths,
            vec![MAX_MESSAGE, text.len() - MAX_PLAINTEXT + TAG_LEN]
        );
        b.push(&stream).unwrap();
        assert_eq!(b.poll_plaintext(), Some(text));
    }

    #[test]
    fn a_replayed_frame_fails() {
        let (mut a, mut b) = established();
        let first = sealed(&mut a, b"wire 10 EUR\n");
        b.push(&first).unwrap();
        assert_eq!(b.push(&first), Err(SecureError::Decrypt));
    }

    #[test]
    fn reordered_frames_fail() {
        let (mut a, mut b) = established();
        let first = sealed(&mut a, b"one\n");
        let second = sealed(&mut a, b"two\n");
        assert_eq!(b.push(&second), Err(SecureError::Decrypt));
        assert_eq!(b.push(&first), Err(SecureError::Failed));
        assert_eq!(b.poll_plaintext(), None);
    }

    #[test]
    fn a_dropped_frame_fails_the_next_one() {
        let (mut a, mut b) = established();
        let _lost = sealed(&mut a, b"one\n");
        let second = sealed(&mut a, b"two\n");
        assert_eq!(b.push(&second), Err(SecureError::Decrypt));
    }

    #[test]
    fn a_frame_cut_short_fails() {
        let (mut a, mut b) = established();
        let frame = sealed(&mut a, b"wire 10 EUR\n");
        // Shorter length in the header, body cut to match: bad tag.
        let mut cut = frame[..frame.len() - 4].to_vec();
        cut[..2].copy_from_slice(&((frame.len() - 6) as u16).to_be_bytes());
        assert_eq!(b.push(&cut), Err(SecureError::Decrypt));
        // Shorter than a tag.
        let (mut a, mut b) = established();
        let _ = sealed(&mut a, b"x");
        assert_eq!(b.push(&[0, 3, 1, 2, 3]), Err(SecureError::Decrypt));
    }

    #[test]
    fn the_stream_ending_inside_a_frame_is_truncation() {
        let (mut a, mut b) = established();
        let frame = sealed(&mut a, b"wire 10 EUR\n");
        b.push(&frame[..frame.len() - 1]).unwrap();
        assert_eq!(b.poll_plaintext(), None);
        assert_eq!(b.end_of_stream(), Err(SecureError::Truncated));

        let (_a, mut b) = established();
        assert_eq!(b.end_of_stream(), Ok(()), "a close between frames is clean");
        let (_a, mut b) = pair(LinkKind::Peer);
        assert_eq!(
            b.end_of_stream(),
            Err(SecureError::Truncated),
            "during the handshake"
        );
    }

    #[test]
    fn a_frame_in_progress_holds_one_buffer_of_its_size_and_it_is_counted() {
        let (mut a, mut b) = established();
        let frame = sealed(&mut a, &[b'y'; 60_000]);
        assert_eq!(b.held_memory(), 0, "nothing between frames");
        // The header and a few bytes: the buffer is the frame's size at
        // once, not grown by doubling as the bytes trickle in.
        b.push(&frame[..10]).unwrap();
        assert_eq!(b.buffered(), 10);
        assert_eq!(b.held_memory(), frame.len());
        push_split(&mut b, &frame[10..frame.len() - 1], &[1000]).unwrap();
        assert_eq!(b.held_memory(), frame.len(), "never regrown");
        b.push(&frame[frame.len() - 1..]).unwrap();
        assert_eq!(b.poll_plaintext().map(|text| text.len()), Some(60_000));
        assert_eq!(b.held_memory(), 0, "a frame that big is not kept");
    }

    #[test]
    fn an_empty_frame_is_an_error() {
        let (_a, mut b) = established();
        assert_eq!(b.push(&[0, 0, 9, 9]), Err(SecureError::EmptyFrame));
        let (_a, mut b) = pair(LinkKind::Peer);
        assert_eq!(b.push(&[0]), Ok(()));
        assert_eq!(b.push(&[0]), Err(SecureError::EmptyFrame));
    }

    #[test]
    fn a_handshake_message_of_the_wrong_length_is_refused() {
        let (mut a, mut b) = pair(LinkKind::Peer);
        let mut msg1 = a.poll_transmit().unwrap();
        msg1[1] += 1;
        msg1.push(0);
        assert_eq!(
            b.push(&msg1),
            Err(SecureError::BadHandshake {
                index: 0,
                expected: 32,
                got: 33
            })
        );
        // A transport-sized frame where msg 2 is due.
        let (mut a, _b) = pair(LinkKind::Peer);
        let _ = a.poll_transmit();
        assert!(matches!(
            a.push(&[0, 20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]),
            Err(SecureError::BadHandshake { index: 1, .. })
        ));
    }

    #[test]
    fn a_server_handshake_cannot_be_used_on_a_peer_link() {
        let mut a = SecureLink::initiator(&alice(), LinkKind::Server, [10; KEY_LEN]);
        let mut b = SecureLink::responder(&bob(), LinkKind::Peer, [20; KEY_LEN]);
        assert_eq!(pump(&mut a, &mut b), Err(SecureError::Decrypt));
        assert!(!a.is_established() && !b.is_established());
    }

    #[test]
    fn same_identities_and_seeds_give_byte_identical_links() {
        let transcript = |seed_a: u8| {
            let mut a = SecureLink::initiator(&alice(), LinkKind::Peer, [seed_a; KEY_LEN]);
            let mut b = SecureLink::responder(&bob(), LinkKind::Peer, [20; KEY_LEN]);
            let mut wire = Vec::new();
            a.send(b"hello\n").unwrap();
            for _ in 0..3 {
                if let Some(bytes) = a.poll_transmit() {
                    wire.extend_from_slice(&bytes);
                    b.push(&bytes).unwrap();
                }
                if let Some(bytes) = b.poll_transmit() {
                    wire.extend_from_slice(&bytes);
                    a.push(&bytes).unwrap();
                }
            }
            wire.extend(sealed(&mut b, b"hi\n"));
            wire
        };
        assert_eq!(transcript(10), transcript(10));
        assert_ne!(
            transcript(10)[2..34],
            transcript(11)[2..34],
            "another ephemeral key"
        );
    }

    #[test]
    fn link_seeds_never_repeat_and_replay_from_the_master() {
        let mut seeds = LinkSeeds::new([5; KEY_LEN]);
        let first: Vec<_> = (0..3).map(|_| seeds.next_seed()).collect();
        assert!(first[0] != first[1] && first[1] != first[2] && first[0] != first[2]);
        let mut again = LinkSeeds::new([5; KEY_LEN]);
        assert_eq!((0..3).map(|_| again.next_seed()).collect::<Vec<_>>(), first);
        assert!(
            !format!("{seeds:?}").contains('5'),
            "the master seed stays hidden"
        );
    }

    /// The definition the lookup table stands for: a clamped scalar is a
    /// multiple of the cofactor, so it maps exactly the small-order points
    /// to zero.
    fn diffie_hellman_is_zero(key: &[u8; KEY_LEN]) -> bool {
        let mut dh = DefaultResolver.resolve_dh(&DHChoice::Curve25519).unwrap();
        dh.set(&[0x5a; KEY_LEN]);
        let mut shared = [0u8; KEY_LEN];
        dh.dh(key, &mut shared).unwrap();
        shared == [0; KEY_LEN]
    }

    #[test]
    fn every_listed_small_order_key_and_its_high_bit_twin_is_refused() {
        for key in SMALL_ORDER {
            let mut high = key;
            high[31] |= 0x80;
            for key in [key, high] {
                assert!(
                    diffie_hellman_is_zero(&key),
                    "{key:02x?} is not of small order"
                );
                assert!(is_low_order(&key));
            }
        }
        assert!(!is_low_order(alice().public().as_bytes()));
    }

    /// A static (and ephemeral) "key" of small order: every Diffie-Hellman
    /// with it is zero, on both sides, so the handshake itself succeeds.
    struct ZeroDh;

    impl Dh for ZeroDh {
        fn name(&self) -> &'static str {
            "25519"
        }
        fn pub_len(&self) -> usize {
            KEY_LEN
        }
        fn priv_len(&self) -> usize {
            KEY_LEN
        }
        fn set(&mut self, _: &[u8]) {}
        fn generate(&mut self, _: &mut dyn Random) -> Result<(), snow::Error> {
            Ok(())
        }
        fn pubkey(&self) -> &[u8] {
            &[0; KEY_LEN]
        }
        fn privkey(&self) -> &[u8] {
            &[0; KEY_LEN]
        }
        fn dh(&self, _: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
            out[..KEY_LEN].fill(0);
            Ok(())
        }
    }

    struct ZeroDhResolver;

    impl CryptoResolver for ZeroDhResolver {
        fn resolve_rng(&self) -> Option<Box<dyn Random>> {
            SeededResolver { seed: [0; KEY_LEN] }.resolve_rng()
        }
        fn resolve_dh(&self, _: &DHChoice) -> Option<Box<dyn Dh>> {
            Some(Box::new(ZeroDh))
        }
        fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
            SeededResolver { seed: [0; KEY_LEN] }.resolve_hash(choice)
        }
        fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
            SeededResolver { seed: [0; KEY_LEN] }.resolve_cipher(choice)
        }
    }

    #[test]
    fn a_small_order_static_key_is_refused_although_the_handshake_checks_out() {
        let noise =
            snow::Builder::with_resolver(NOISE_PATTERN.parse().unwrap(), Box::new(ZeroDhResolver))
                .local_private_key(&[0; KEY_LEN])
                .unwrap()
                .prologue(LinkKind::Peer.prologue())
                .unwrap()
                .build_responder()
                .unwrap();
        let mut impostor = SecureLink::new(noise);
        let mut a = SecureLink::initiator(&alice(), LinkKind::Peer, [10; KEY_LEN]);
        impostor.push(&a.poll_transmit().unwrap()).unwrap();
        let msg2 = impostor.poll_transmit().unwrap();
        assert_eq!(a.push(&msg2), Err(SecureError::WeakKey));
        assert_eq!(a.poll_transmit(), None, "alice never sends her key to it");
        assert!(!a.is_established());
        assert_eq!(a.remote_key(), None);
    }

    proptest! {
        #[test]
        fn the_small_order_lookup_agrees_with_diffie_hellman(key in any::<[u8; KEY_LEN]>()) {
            prop_assert_eq!(is_low_order(&key), diffie_hellman_is_zero(&key));
        }
    }
}
