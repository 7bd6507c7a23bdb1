//! The transport phase of a Noise link: its two ChaCha20-Poly1305 keys
//! and their counters, 80 bytes.
//!
//! snow's `TransportState` keeps one boxed cipher object per direction;
//! ring's key object is sized for its largest algorithm (AES-GCM's key
//! schedule and tables), so a link held about 1.2 KiB for two 32-byte
//! keys. A server holds one link per client (20,000 of them, or a million
//! in the core bench): the keys are kept raw here, and ring's ChaCha20
//! key — a copy of the 32 bytes, no schedule — is made for each message.
//! The wire is unchanged: Noise's ChaChaPoly with the counter as nonce
//! (32 zero bits, then the counter little-endian), empty associated data,
//! as snow's ring resolver does (a test checks both against each other).

use super::TAG_LEN;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use snow::HandshakeState;

/// Both directions' keys, once the handshake is finished.
pub(super) struct Transport {
    send: Direction,
    receive: Direction,
}

struct Direction {
    key: [u8; 32],
    /// Messages sealed or opened so far: the next one's nonce.
    nonce: u64,
}

/// The counter ran out (2^64 − 1 messages, reserved by Noise): the link
/// can carry no more.
#[derive(Debug)]
pub(super) struct Exhausted;

/// The message did not authenticate (or the counter ran out).
#[derive(Debug)]
pub(super) struct OpenFailed;

impl Transport {
    /// The keys of a finished handshake, as its side uses them.
    pub(super) fn new(noise: &mut HandshakeState) -> Self {
        let initiator = noise.is_initiator();
        let (first, second) = noise.dangerously_get_raw_split();
        // Noise's Split(): the first key encrypts what the initiator sends.
        let (send, receive) = if initiator {
            (first, second)
        } else {
            (second, first)
        };
        Transport {
            send: Direction::new(send),
            receive: Direction::new(receive),
        }
    }

    /// Seals `plaintext` into `out`, which is `plaintext.len() + TAG_LEN`
    /// bytes long.
    pub(super) fn seal(&mut self, plaintext: &[u8], out: &mut [u8]) -> Result<(), Exhausted> {
        let (nonce, key) = self.send.next().ok_or(Exhausted)?;
        let (body, tag_out) = out.split_at_mut(plaintext.len());
        body.copy_from_slice(plaintext);
        let tag = key
            .seal_in_place_separate_tag(nonce, Aad::empty(), body)
            .map_err(|_| Exhausted)?;
        tag_out[..TAG_LEN].copy_from_slice(tag.as_ref());
        Ok(())
    }

    /// Opens `message` (ciphertext and tag) in place; returns the length
    /// of the plaintext now at its start.
    pub(super) fn open(&mut self, message: &mut [u8]) -> Result<usize, OpenFailed> {
        let (nonce, key) = self.receive.peek().ok_or(OpenFailed)?;
        let plaintext = key
            .open_in_place(nonce, Aad::empty(), message)
            .map_err(|_| OpenFailed)?;
        let length = plaintext.len();
        // Only a message that authenticated uses its nonce up.
        self.receive.nonce += 1;
        Ok(length)
    }
}

impl Direction {
    fn new(key: [u8; 32]) -> Self {
        Direction { key, nonce: 0 }
    }

    /// The nonce and key of the next message.
    fn peek(&self) -> Option<(Nonce, LessSafeKey)> {
        if self.nonce == u64::MAX {
            return None;
        }
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&self.nonce.to_le_bytes());
        let key = UnboundKey::new(&CHACHA20_POLY1305, &self.key).ok()?;
        Some((Nonce::assume_unique_for_key(nonce), LessSafeKey::new(key)))
    }

    /// As [`Direction::peek`], using the nonce up.
    fn next(&mut self) -> Option<(Nonce, LessSafeKey)> {
        let next = self.peek()?;
        self.nonce += 1;
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{builder, LinkKind};
    use super::*;
    use crate::identity::Identity;

    /// An XX handshake between two snow states, run to its end.
    fn handshake() -> (HandshakeState, HandshakeState) {
        let (a, b) = (Identity::from_seed(&[1; 32]), Identity::from_seed(&[2; 32]));
        let mut initiator = builder(&a, LinkKind::Peer, [3; 32])
            .build_initiator()
            .unwrap();
        let mut responder = builder(&b, LinkKind::Peer, [4; 32])
            .build_responder()
            .unwrap();
        let (mut buf, mut out) = ([0u8; 256], [0u8; 256]);
        let n = initiator.write_message(&[], &mut buf).unwrap();
        responder.read_message(&buf[..n], &mut out).unwrap();
        let n = responder.write_message(&[], &mut buf).unwrap();
        initiator.read_message(&buf[..n], &mut out).unwrap();
        let n = initiator.write_message(&[], &mut buf).unwrap();
        responder.read_message(&buf[..n], &mut out).unwrap();
        (initiator, responder)
    }

    #[test]
    fn raw_keys_speak_exactly_what_snows_transport_state_speaks_both_ways() {
        let (mut initiator, responder) = handshake();
        let mut ours = Transport::new(&mut initiator);
        let mut snow = responder.into_transport_mode().unwrap();
        for n in 0..3u8 {
            let text = [b'a' + n; 100];
            let mut sealed = [0u8; 100 + TAG_LEN];
            ours.seal(&text, &mut sealed).unwrap();
            let mut opened = [0u8; 100];
            assert_eq!(snow.read_message(&sealed, &mut opened).unwrap(), 100);
            assert_eq!(opened, text, "message {n}, ours to snow");

            let mut sealed = [0u8; 100 + TAG_LEN];
            assert_eq!(
                snow.write_message(&text, &mut sealed).unwrap(),
                sealed.len()
            );
            assert_eq!(ours.open(&mut sealed).unwrap(), 100);
            assert_eq!(sealed[..100], text, "message {n}, snow to ours");
        }
    }

    #[test]
    fn a_forged_message_is_refused_and_does_not_use_up_the_nonce() {
        let (mut initiator, mut responder) = handshake();
        let mut ours = Transport::new(&mut initiator);
        let mut theirs = Transport::new(&mut responder);
        let mut sealed = [0u8; 10 + TAG_LEN];
        theirs.seal(b"0123456789", &mut sealed).unwrap();
        let mut forged = sealed;
        forged[3] ^= 1;
        assert!(ours.open(&mut forged).is_err());
        assert_eq!(ours.open(&mut sealed).unwrap(), 10);
        assert_eq!(&sealed[..10], b"0123456789");
    }
}
