//! A client of an in-process [`Registry`], for tests, benchmarks and
//! fuzzing: it speaks the server link's Noise session to the registry
//! directly, with no socket and no peer state machine, so that a test can
//! send any frame (or any garbage) as an authenticated client.

use super::{Registry, RegistryInput, RegistryOutput};
use crate::identity::{Identity, KEY_LEN};
use crate::link::LinkId;
use crate::secure::{LinkKind, SecureError, SecureLink};
use crate::time::Now;
use std::net::SocketAddr;

/// One client connection to a [`Registry`] fed by hand.
#[derive(Debug)]
pub struct InProcessClient {
    link: LinkId,
    session: SecureLink,
    /// Plaintext received and not taken yet.
    received: Vec<u8>,
    closed: bool,
}

impl InProcessClient {
    /// A client on `link` holding `identity`; its handshake starts when
    /// its first bytes are handed to the registry (see [`Self::connect`]).
    pub fn new(link: LinkId, identity: &Identity, seed: [u8; KEY_LEN]) -> Self {
        Self {
            link,
            session: SecureLink::initiator(identity, LinkKind::Server, seed),
            received: Vec::new(),
            closed: false,
        }
    }

    /// Opens `link` from `addr` and runs the handshake to its end. Returns
    /// the client and every output of the registry not meant for it (logs,
    /// probes, other links' bytes), in order.
    pub fn connect(
        registry: &mut Registry,
        now: Now,
        link: LinkId,
        addr: SocketAddr,
        identity: &Identity,
        seed: [u8; KEY_LEN],
    ) -> (Self, Vec<RegistryOutput>) {
        let mut client = Self::new(link, identity, seed);
        registry.handle_input(now, RegistryInput::Opened { link, addr });
        // Three messages: ours and the server's answer, then ours again.
        let mut others = client.flush(registry, now);
        others.extend(client.flush(registry, now));
        (client, others)
    }

    pub fn link(&self) -> LinkId {
        self.link
    }

    /// Whether the handshake is done (the registry has our key).
    pub fn is_established(&self) -> bool {
        self.session.is_established()
    }

    /// Whether the registry closed the connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Seals `plaintext` (frames, typically) for the registry; it goes out
    /// with the next [`Self::flush`].
    pub fn send(&mut self, plaintext: &[u8]) -> Result<(), SecureError> {
        self.session.send(plaintext)
    }

    /// Ciphertext ready for the registry ([`RegistryInput::Bytes`]).
    pub fn outgoing(&mut self) -> Option<Vec<u8>> {
        self.session.poll_transmit()
    }

    /// Hands what is ready to the registry and takes its answers: those
    /// for this client are read, the rest returned in order.
    pub fn flush(&mut self, registry: &mut Registry, now: Now) -> Vec<RegistryOutput> {
        if let Some(bytes) = self.outgoing() {
            let link = self.link;
            registry.handle_input(now, RegistryInput::Bytes { link, bytes });
        }
        let outputs: Vec<_> = std::iter::from_fn(|| registry.poll_output()).collect();
        self.take_all(outputs)
    }

    /// Reads the outputs meant for this client (bytes, close); returns the
    /// others, in order.
    pub fn take_all(&mut self, outputs: Vec<RegistryOutput>) -> Vec<RegistryOutput> {
        outputs.into_iter().filter(|out| !self.take(out)).collect()
    }

    /// Reads `output` if it is meant for this client; false if not.
    pub fn take(&mut self, output: &RegistryOutput) -> bool {
        match output {
            RegistryOutput::Send { link, bytes } if *link == self.link => {
                if self.session.push(bytes).is_ok() {
                    if let Some(plaintext) = self.session.poll_plaintext() {
                        self.received.extend_from_slice(&plaintext);
                    }
                }
                true
            }
            RegistryOutput::Close { link } if *link == self.link => {
                self.closed = true;
                true
            }
            _ => false,
        }
    }

    /// The plaintext received since the last call, as text.
    pub fn received(&mut self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut self.received)).into_owned()
    }
}
