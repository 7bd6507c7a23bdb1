//! Two honest ends of an encrypted link (`natter_core::secure`) and the
//! fuzzer as the network between them: it splits, delays, tampers with,
//! drops, replays and injects bytes, closes streams, and makes either side
//! send. Asserted: nothing panics; what a side decrypts is always a prefix
//! of what the other side sent (never altered, reordered or invented);
//! and when the network was honest and no side failed, everything sent
//! arrives once the wires are flushed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natter_core::identity::Identity;
use natter_core::secure::{LinkKind, SecureLink};
use natter_fuzz::{some_bytes, Result, Unstructured, MAX_OPS};

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});

/// Bytes the network holds toward one side at most (replays copy them).
const MAX_IN_FLIGHT: usize = 1 << 20;

struct End {
    link: SecureLink,
    /// Plaintext this side has handed to `send` successfully.
    sent: Vec<u8>,
    /// Plaintext this side has decrypted.
    received: Vec<u8>,
    /// Ciphertext on its way to this side, not yet pushed.
    inbound: Vec<u8>,
    /// Whether the network altered what travels to this side.
    tampered: bool,
    /// Whether a call on this side returned an error.
    failed: bool,
}

impl End {
    fn new(link: SecureLink) -> End {
        End {
            link,
            sent: Vec::new(),
            received: Vec::new(),
            inbound: Vec::new(),
            tampered: false,
            failed: false,
        }
    }

    fn collect(&mut self) {
        if let Some(bytes) = self.link.poll_plaintext() {
            self.received.extend_from_slice(&bytes);
        }
    }
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let alice = Identity::from_seed(&[1; 32]);
    let bob = Identity::from_seed(&[2; 32]);
    let kind = if u.arbitrary()? {
        LinkKind::Peer
    } else {
        LinkKind::Server
    };
    let mut ends = [
        End::new(SecureLink::initiator(&alice, kind, u.arbitrary()?)),
        End::new(SecureLink::responder(&bob, kind, u.arbitrary()?)),
    ];
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        let side = usize::from(u.arbitrary::<bool>()?);
        let other = 1 - side;
        match u.int_in_range(0..=7u8)? {
            0 => {
                let bytes = if u.ratio(1, 16)? {
                    vec![u.arbitrary::<u8>()?; u.int_in_range(60_000..=70_000usize)?]
                } else {
                    some_bytes(u, 300)?
                };
                match ends[side].link.send(&bytes) {
                    Ok(()) => ends[side].sent.extend_from_slice(&bytes),
                    Err(_) => ends[side].failed = true,
                }
            }
            1 => {
                if let Some(bytes) = ends[side].link.poll_transmit() {
                    ends[other].inbound.extend_from_slice(&bytes);
                }
            }
            2 => {
                let end = &mut ends[side];
                let len = u.int_in_range(0..=end.inbound.len())?;
                let bytes: Vec<u8> = end.inbound.drain(..len).collect();
                if end.link.push(&bytes).is_err() {
                    end.failed = true;
                }
                end.collect();
            }
            3 if !ends[side].inbound.is_empty() => {
                let end = &mut ends[side];
                let at = u.choose_index(end.inbound.len())?;
                end.inbound[at] ^= u.int_in_range(1..=255u8)?;
                end.tampered = true;
            }
            4 => {
                // Drop, or replay, a stretch of what is in flight.
                let end = &mut ends[side];
                let start = u.int_in_range(0..=end.inbound.len())?;
                let len = u.int_in_range(0..=end.inbound.len() - start)?;
                if u.arbitrary()? {
                    end.inbound.drain(start..start + len);
                } else if end.inbound.len() + len <= MAX_IN_FLIGHT {
                    let copy = end.inbound[start..start + len].to_vec();
                    end.inbound.extend_from_slice(&copy);
                }
                end.tampered |= len > 0;
            }
            5 => {
                let garbage = some_bytes(u, 100)?;
                let end = &mut ends[side];
                let at = u.int_in_range(0..=end.inbound.len())?;
                end.inbound.splice(at..at, garbage.iter().copied());
                end.tampered |= !garbage.is_empty();
            }
            6 => {
                let end = &mut ends[side];
                if end.link.end_of_stream().is_err() {
                    end.failed = true;
                }
            }
            _ => {
                let _ = ends[side].link.is_established();
                let _ = ends[side].link.remote_key();
            }
        }
        for (i, end) in ends.iter().enumerate() {
            let from = &ends[1 - i].sent;
            assert!(
                from.starts_with(&end.received),
                "side {i} decrypted bytes its partner never sent in that order"
            );
        }
    }

    // An honest network and no failure: flushing delivers everything.
    if ends.iter().any(|end| end.tampered || end.failed) {
        return Ok(());
    }
    // Each round moves one message each way: 3 handshake messages, then
    // the data each side had queued, fit in 6.
    for _ in 0..6 {
        for side in 0..2 {
            if let Some(bytes) = ends[side].link.poll_transmit() {
                ends[1 - side].inbound.extend_from_slice(&bytes);
            }
            let end = &mut ends[side];
            let bytes = std::mem::take(&mut end.inbound);
            end.link.push(&bytes).expect("an honest stream is accepted");
            end.collect();
        }
    }
    for (i, end) in ends.iter().enumerate() {
        assert!(end.link.is_established(), "side {i} established");
        assert_eq!(end.received, ends[1 - i].sent, "side {i} got everything");
    }
    Ok(())
}
