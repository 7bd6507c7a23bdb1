//! Events as a peer emits them, for the UI's tests.

use natter_core::protocol::PeerStatus;
use natter_core::{Event, Fingerprint, Identity, ListedPeer};

pub fn key(seed: u8) -> Fingerprint {
    Identity::from_seed(&[seed; 32]).public().fingerprint()
}

pub fn registered(name: &str) -> Event {
    Event::Registered {
        name: name.into(),
        addr: "192.0.2.1:40001".parse().unwrap(),
        server: "192.0.2.100:4201".parse().unwrap(),
        reachable: true,
        fingerprint: key(1),
        server_fingerprint: key(9),
        new_server: false,
    }
}

pub fn peers(list: &[(&str, PeerStatus)]) -> Event {
    Event::Peers {
        peers: list
            .iter()
            .enumerate()
            .map(|(i, (name, status))| ListedPeer {
                name: name.to_string(),
                addr: format!("192.0.2.{}:4000", i + 2).parse().unwrap(),
                status: *status,
                reachable: true,
                fingerprint: Some(key(i as u8 + 2)),
            })
            .collect(),
    }
}

pub fn incoming(peer: &str) -> Event {
    Event::Incoming {
        peer: peer.into(),
        addr: "192.0.2.7:4000".parse().unwrap(),
        fingerprint: key(7),
    }
}

pub fn started(peer: &str) -> Event {
    Event::ChatStarted {
        peer: peer.into(),
        fingerprint: key(3),
        new_contact: false,
    }
}

pub fn message(peer: &str, n: u64, text: &str) -> Event {
    Event::Message {
        peer: peer.into(),
        n,
        text: text.into(),
        at: "2026-01-05T10:00:00.000Z".into(),
    }
}

pub fn sent(peer: &str, n: u64, text: &str) -> Event {
    Event::Sent {
        peer: peer.into(),
        n,
        text: text.into(),
    }
}

pub fn delivered(peer: &str, n: u64) -> Event {
    Event::Delivered {
        peer: peer.into(),
        n,
    }
}
