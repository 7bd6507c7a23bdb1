//! A hostile partner inside an established encrypted chat link: the
//! fuzzer holds a real Noise session with a peer (its key pinned there, so
//! the call needs no directory) and sends, through it, any sequence of
//! frames in and out of place, garbage plaintext, over-long lines; besides
//! the session it tampers with ciphertext, replays earlier ciphertext and
//! cuts the link mid-frame. The peer's user answers, types and leaves at
//! arbitrary moments, and time passes.
//!
//! Asserted: nothing panics; the peer only writes to links it knows and
//! never after closing one; whatever the peer sends on the link always
//! opens in the fuzzer's session (the peer never emits bytes that break
//! its own side of the session); after a close, nothing more arrives; a
//! message the user typed ends at most once (delivered or undelivered).
#![no_main]

#[allow(dead_code)]
#[path = "../../core/tests/noise_wire/mod.rs"]
mod noise_wire;

use libfuzzer_sys::fuzz_target;
use natter_core::command::parse;
use natter_core::peer::{PeerConfig, PeerInput, PeerOutput};
use natter_core::protocol::{ErrorCode, PeerMsg, Versions};
use natter_core::{encode, Event, Now, Peer};
use natter_fuzz::{some_bytes, Result, Unstructured, MAX_OPS};
use noise_wire::{feed, feed_input, Wire};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});

fn server() -> SocketAddr {
    "10.0.0.1:4201".parse().unwrap()
}

fn frame(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let n = u.int_in_range(0..=6u64)?;
    let text_len = u.int_in_range(0..=300usize)?;
    let msg = match u.int_in_range(0..=10u8)? {
        0 => PeerMsg::Hello {
            versions: Versions::ours(),
            name: natter_fuzz::name_from(u, &["mallory", "alice", "bob", ""])?,
            max_message: if u.arbitrary()? { Some(u.int_in_range(0..=70_000usize)?) } else { None },
        },
        1 => PeerMsg::Accept,
        2 => PeerMsg::Reject,
        3 => PeerMsg::Busy,
        4 => PeerMsg::Msg {
            n,
            text: "x".repeat(text_len),
            at: "2026-11-25T09:00:00.000Z".into(),
        },
        5 => PeerMsg::Ack { n },
        6 => PeerMsg::Bye,
        7 => PeerMsg::Ping,
        8 => PeerMsg::Pong,
        9 => PeerMsg::Error {
            code: ErrorCode::BadFrame,
            message: "no".into(),
            close: u.arbitrary()?,
        },
        _ => return some_bytes(u, 200),
    };
    Ok(encode(&msg))
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let mut now = Now::at_unix(1_764_068_934);
    let mut config = PeerConfig::new("alice", server(), 4000);
    config.known_peers.insert("mallory".into(), Wire::identity().public());
    let mut alice = Peer::new(config, now);
    while alice.poll_output().is_some() {}
    let link = alice.allocate_link();
    let addr: SocketAddr = "10.0.0.66:50000".parse().unwrap();
    feed_input(&mut alice, now, PeerInput::Accepted { link, addr });
    // The handshake's outputs are read by `call` already.
    let (mut wire, _) = Wire::call(&mut alice, now, link);
    let mut closed = false;
    let mut sealed_so_far: Vec<Vec<u8>> = Vec::new();
    let mut ended: BTreeSet<u64> = BTreeSet::new();
    let mut check = |outputs: &[PeerOutput], wire: &mut Wire, closed: &mut bool| {
        for out in outputs {
            match out {
                PeerOutput::Send { link: l, .. } => {
                    assert_eq!(*l, link, "a send on a link nobody opened");
                    assert!(!*closed, "a send after the close");
                }
                PeerOutput::Close { link: l } if *l == link => *closed = true,
                PeerOutput::Event(Event::Delivered { n, .. }) => {
                    assert!(ended.insert(*n), "message {n} ended twice");
                }
                PeerOutput::Event(Event::ChatEnded { undelivered, .. }) => {
                    for n in undelivered {
                        assert!(ended.insert(*n), "message {n} ended twice");
                    }
                }
                _ => {}
            }
        }
        // What the peer wrote always opens: it never breaks its own side.
        wire.open(outputs, link);
    };
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        let outputs = match u.int_in_range(0..=9u8)? {
            0..=3 if !closed => {
                let bytes = wire.seal(frame(u)?);
                if !bytes.is_empty() {
                    sealed_so_far.push(bytes.clone());
                }
                feed(&mut alice, now, link, &bytes)
            }
            4 if !closed => {
                // Tampered or invented ciphertext.
                let mut bytes = match sealed_so_far.last() {
                    Some(last) if u.arbitrary()? => last.clone(),
                    _ => some_bytes(u, 64)?,
                };
                if !bytes.is_empty() {
                    let at = u.int_in_range(0..=bytes.len() - 1)?;
                    bytes[at] ^= 1 << u.int_in_range(0..=7u8)?;
                }
                let outputs = feed(&mut alice, now, link, &bytes);
                for out in &outputs {
                    if let PeerOutput::Send { link: l, .. } = out {
                        assert!(!closed && *l == link);
                    }
                }
                // The session is broken now on alice's side: stop reading.
                return Ok(());
            }
            5 if !closed && !sealed_so_far.is_empty() => {
                // A replay: alice must refuse it (nonce) and close.
                let at = u.int_in_range(0..=sealed_so_far.len() - 1)?;
                let bytes = sealed_so_far[at].clone();
                let outputs = feed(&mut alice, now, link, &bytes);
                assert!(
                    outputs.contains(&PeerOutput::Close { link }),
                    "a replayed message is refused: {outputs:?}"
                );
                return Ok(());
            }
            6 if !closed => {
                // Cut mid-frame: half a sealed frame, then the close.
                let bytes = wire.seal(frame(u)?);
                let half = bytes.len() / 2;
                feed(&mut alice, now, link, &bytes[..half]);
                feed_input(&mut alice, now, PeerInput::Closed { link });
                return Ok(());
            }
            7 => {
                let line = *u.choose(&["/accept", "/reject", "/leave", "hello there", "/chats", "/quit"])?;
                match parse(line) {
                    Ok(command) => feed_input(&mut alice, now, PeerInput::Command(command)),
                    Err(_) => Vec::new(),
                }
            }
            8 => {
                now = now.advanced(Duration::from_millis(u.int_in_range(1..=20_000u64)?));
                alice.handle_timeout(now);
                std::iter::from_fn(|| alice.poll_output()).collect()
            }
            _ => Vec::new(),
        };
        check(&outputs, &mut wire, &mut closed);
    }
    Ok(())
}
