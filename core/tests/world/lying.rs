//! A lying directory: a peer's server link carried by a relay that holds
//! the server's key, so the peer takes it for its server (its pin of the
//! server's key holds), and that speaks to the real registry as the peer
//! (holding the peer's key, so names stay bound to the right keys). Frames
//! pass both ways unchanged, except that whatever the server lists for a
//! name the directory lies about (in `peers` and `found`) gets the lie as
//! its key. It is what a malicious server operator can do.

use natter_core::identity::Identity;
use natter_core::protocol::{PeerInfo, ServerMsg};
use natter_core::registry::client::InProcessClient;
use natter_core::registry::RegistryOutput;
use natter_core::{encode, FrameDecoder, LinkId, LinkKind, Now, PublicKey, Registry, SecureLink};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// What the directory says about names (in lower case): this key, or no
/// key at all (as for a client that made no handshake).
pub type Lies = BTreeMap<String, Option<PublicKey>>;

/// What the relay sends on after bytes from the peer.
pub struct Onward {
    /// Back to the peer: its handshake's answer.
    pub to_peer: Vec<Vec<u8>>,
    /// On to the registry, sealed as the peer.
    pub to_registry: Vec<Vec<u8>>,
}

/// One relayed server link.
pub struct Relay {
    /// The peer's session, ended here as the server.
    facing_peer: SecureLink,
    /// The session with the registry, as the peer.
    facing_registry: InProcessClient,
    /// The registry's frames, read so they can be rewritten.
    frames: FrameDecoder<ServerMsg>,
}

impl Relay {
    /// Opens `link` from `addr` to the registry as `peer` would, at once;
    /// returns the relay and the registry's outputs not meant for it.
    pub fn connect(
        registry: &mut Registry,
        now: Now,
        link: LinkId,
        addr: SocketAddr,
        peer: &Identity,
        server: &Identity,
        seed: [u8; 32],
    ) -> (Self, Vec<RegistryOutput>) {
        let (facing_registry, others) =
            InProcessClient::connect(registry, now, link, addr, peer, seed);
        let relay = Self {
            facing_peer: SecureLink::responder(server, LinkKind::Server, seed),
            facing_registry,
            frames: FrameDecoder::new(usize::MAX),
        };
        (relay, others)
    }

    /// Bytes the peer sent, and where they lead; `None` if the peer's
    /// session failed (the link is then closed).
    pub fn carry_up(&mut self, bytes: &[u8]) -> Option<Onward> {
        self.facing_peer.push(bytes).ok()?;
        while let Some(plaintext) = self.facing_peer.poll_plaintext() {
            self.facing_registry.send(&plaintext).ok()?;
        }
        Some(Onward {
            to_peer: std::iter::from_fn(|| self.facing_peer.poll_transmit()).collect(),
            to_registry: std::iter::from_fn(|| self.facing_registry.outgoing()).collect(),
        })
    }

    /// Reads `output` if it is the registry's bytes or close for this
    /// link (false if not); `Some` bytes for the peer, the lies told.
    pub fn carry_down(&mut self, output: &RegistryOutput, lies: &Lies) -> Option<Vec<Vec<u8>>> {
        if !self.facing_registry.take(output) {
            return None;
        }
        self.frames.push(self.facing_registry.received().as_bytes());
        while let Some(frame) = self.frames.next_frame() {
            let mut frame = frame.expect("the registry sends valid frames");
            match &mut frame {
                ServerMsg::Peers { peers, .. } => peers.iter_mut().for_each(|p| lie(p, lies)),
                ServerMsg::Found {
                    peer: Some(info), ..
                } => lie(info, lies),
                _ => {}
            }
            let _ = self.facing_peer.send(&encode(&frame));
        }
        Some(std::iter::from_fn(|| self.facing_peer.poll_transmit()).collect())
    }
}

/// Puts the lie about `info`'s name, if there is one, in place of its key.
fn lie(info: &mut PeerInfo, lies: &Lies) {
    if let Some(key) = lies.get(&info.name.to_ascii_lowercase()) {
        info.key = *key;
    }
}
