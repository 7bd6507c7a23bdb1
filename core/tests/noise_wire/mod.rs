//! The far end of one peer chat link, played by a test as a real peer
//! would: a Noise XX session (`SecureLink`, `LinkKind::Peer`) that the
//! test drives by hand against a `Peer` it feeds directly; or the far end
//! of the peer's server link, played as a (possibly hostile) server.
//!
//! The test peer only ever sees framed Noise bytes, so every frame a test
//! writes goes through [`Wire::seal`] and every byte the peer sends is read
//! back through [`Wire::open`], in order (Noise nonces are counters: a
//! `Send` skipped would make the next one fail to decrypt).

#![allow(dead_code)]

use natter_core::peer::{PeerInput, PeerOutput};
use natter_core::{Identity, LinkId, LinkKind, Now, Peer, PublicKey, SecureLink};

/// The key of the far end: a fixed identity, not derived from any name.
pub const FAR_KEY_SEED: [u8; 32] = [0x66; 32];
/// The seed of the far end's ephemeral key.
pub const FAR_EPHEMERAL_SEED: [u8; 32] = [0x42; 32];

/// Everything the peer output after `input`.
pub fn feed_input(peer: &mut Peer, at: Now, input: PeerInput) -> Vec<PeerOutput> {
    peer.handle_input(at, input);
    std::iter::from_fn(|| peer.poll_output()).collect()
}

/// `bytes` arrive on `link`, as they are; everything the peer output.
pub fn feed(peer: &mut Peer, at: Now, link: LinkId, bytes: &[u8]) -> Vec<PeerOutput> {
    let bytes = bytes.to_vec();
    feed_input(peer, at, PeerInput::Bytes { link, bytes })
}

/// Every byte the peer sent on `link` in `outputs`, raw (ciphertext).
pub fn sent_bytes(outputs: &[PeerOutput], link: LinkId) -> Vec<u8> {
    outputs
        .iter()
        .filter_map(|o| match o {
            PeerOutput::Send { link: l, bytes } if *l == link => Some(bytes.as_slice()),
            _ => None,
        })
        .flatten()
        .copied()
        .collect()
}

/// The far end of a chat link.
pub struct Wire {
    secure: SecureLink,
}

impl Wire {
    /// The far end's identity.
    pub fn identity() -> Identity {
        Identity::from_seed(&FAR_KEY_SEED)
    }

    /// The side that opened the connection (the test peer accepted it):
    /// its first handshake message is ready in [`Wire::transmit`].
    pub fn caller() -> Self {
        let secure = SecureLink::initiator(&Self::identity(), LinkKind::Peer, FAR_EPHEMERAL_SEED);
        Wire { secure }
    }

    /// The side that accepted the connection (the test peer dialled it):
    /// it waits for the peer's first handshake message.
    pub fn callee() -> Self {
        let secure = SecureLink::responder(&Self::identity(), LinkKind::Peer, FAR_EPHEMERAL_SEED);
        Wire { secure }
    }

    /// A directory server that accepted the peer's connection
    /// (`LinkKind::Server`), holding `identity`.
    pub fn server(identity: &Identity) -> Self {
        let secure = SecureLink::responder(identity, LinkKind::Server, FAR_EPHEMERAL_SEED);
        Wire { secure }
    }

    /// Plays the whole handshake as the caller against `peer`, which has
    /// accepted `link` and not heard from it yet. Returns the established
    /// wire and everything the peer output meanwhile.
    pub fn call(peer: &mut Peer, at: Now, link: LinkId) -> (Self, Vec<PeerOutput>) {
        let mut wire = Wire::caller();
        let message_1 = wire.transmit();
        let mut outputs = feed(peer, at, link, &message_1);
        wire.take(&outputs, link);
        let message_3 = wire.transmit();
        assert!(!message_3.is_empty(), "no message 3: {outputs:?}");
        outputs.extend(feed(peer, at, link, &message_3));
        assert!(wire.is_established(), "handshake: {outputs:?}");
        (wire, outputs)
    }

    /// Plays the whole handshake as the callee against `peer`, which has
    /// dialled `link` and been told `Connected`; `sent` holds what it
    /// output since (its message 1). Returns the established wire, the
    /// plaintext the peer sent with its message 3 (its hello) and
    /// everything the peer output while answering.
    pub fn answer(
        peer: &mut Peer,
        at: Now,
        link: LinkId,
        sent: &[PeerOutput],
    ) -> (Self, String, Vec<PeerOutput>) {
        Wire::callee().respond(peer, at, link, sent)
    }

    /// [`Wire::answer`] by this wire, a responder not yet used (a callee,
    /// or a server the peer connected to).
    pub fn respond(
        self,
        peer: &mut Peer,
        at: Now,
        link: LinkId,
        sent: &[PeerOutput],
    ) -> (Self, String, Vec<PeerOutput>) {
        let mut wire = self;
        wire.take(sent, link);
        let message_2 = wire.transmit();
        assert!(!message_2.is_empty(), "no message 1 in {sent:?}");
        let outputs = feed(peer, at, link, &message_2);
        let hello = wire.open(&outputs, link);
        assert!(wire.is_established(), "handshake: {outputs:?}");
        (wire, hello, outputs)
    }

    /// Framed bytes to hand the peer: handshake messages and sealed frames.
    pub fn transmit(&mut self) -> Vec<u8> {
        let mut bytes = Vec::new();
        while let Some(more) = self.secure.poll_transmit() {
            bytes.extend(more);
        }
        bytes
    }

    /// Takes in what the peer sent on `link` in `outputs` (handshake
    /// messages are answered: see [`Wire::transmit`]). Panics if it is not
    /// a valid continuation of the session.
    pub fn take(&mut self, outputs: &[PeerOutput], link: LinkId) {
        let bytes = sent_bytes(outputs, link);
        if let Err(error) = self.secure.push(&bytes) {
            panic!("the peer sent bytes that fail Noise ({error}): {outputs:?}");
        }
    }

    /// `plaintext` sealed in the session: the bytes to hand the peer.
    pub fn seal(&mut self, plaintext: impl AsRef<[u8]>) -> Vec<u8> {
        self.secure
            .send(plaintext.as_ref())
            .expect("the far end's session is alive");
        self.transmit()
    }

    /// What the peer sent on `link` in `outputs`, decrypted (lossily as
    /// text; natter frames are UTF-8 JSON lines).
    pub fn open(&mut self, outputs: &[PeerOutput], link: LinkId) -> String {
        self.take(outputs, link);
        let mut text = Vec::new();
        while let Some(more) = self.secure.poll_plaintext() {
            text.extend(more);
        }
        String::from_utf8_lossy(&text).into_owned()
    }

    pub fn is_established(&self) -> bool {
        self.secure.is_established()
    }

    /// The key the peer's handshake proved.
    pub fn remote_key(&self) -> Option<PublicKey> {
        self.secure.remote_key()
    }
}
