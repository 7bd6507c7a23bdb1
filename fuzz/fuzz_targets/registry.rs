//! Arbitrary interleavings of opened / bytes (garbage and well-formed
//! frames, split anywhere) / closed on a handful of links and timeouts at
//! arbitrary later instants, into one registry: see
//! `invariants::check_registry` for what is asserted.
#![no_main]

#[allow(dead_code)]
#[path = "../../core/tests/invariants.rs"]
mod invariants;

use invariants::{Payload, RegOp, REG_NAMES, REG_PORTS};
use libfuzzer_sys::fuzz_target;
use natter_core::protocol::{ClientMsg, PeerStatus, Versions, PROTOCOL_VERSION};
use natter_fuzz::{name_from, some_bytes, Result, Unstructured, MAX_OPS};

fn client_frame(u: &mut Unstructured<'_>) -> Result<ClientMsg> {
    Ok(match u.int_in_range(0..=7u8)? {
        0 => ClientMsg::Hello {
            versions: Versions {
                version: if u.ratio(1, 5)? {
                    u.arbitrary()?
                } else {
                    PROTOCOL_VERSION
                },
                min_version: if u.ratio(1, 5)? { u.arbitrary()? } else { None },
                features: Vec::new(),
            },
        },
        1 => ClientMsg::Register {
            name: name_from(u, REG_NAMES)?,
            port: if u.ratio(1, 8)? {
                u.arbitrary()?
            } else {
                *u.choose(REG_PORTS)?
            },
        },
        2 => ClientMsg::List { id: u.arbitrary()? },
        3 => ClientMsg::Lookup {
            id: u.arbitrary()?,
            name: name_from(u, REG_NAMES)?,
        },
        4 => ClientMsg::Status {
            status: if u.arbitrary()? {
                PeerStatus::Chatting
            } else {
                PeerStatus::Available
            },
        },
        5 => ClientMsg::Ping,
        6 => ClientMsg::Pong,
        _ => ClientMsg::Bye,
    })
}

fn ops(u: &mut Unstructured<'_>) -> Result<Vec<RegOp>> {
    let mut ops = Vec::new();
    while !u.is_empty() && ops.len() < MAX_OPS {
        ops.push(match u.int_in_range(0..=10u8)? {
            0 | 1 => RegOp::Open { ip: u.arbitrary()? },
            2..=6 => {
                let link = u.arbitrary()?;
                let payload = if u.ratio(1, 4)? {
                    Payload::Raw(some_bytes(u, 300)?)
                } else {
                    let count = u.int_in_range(1..=5usize)?;
                    let frames = (0..count)
                        .map(|_| client_frame(u))
                        .collect::<Result<Vec<_>>>()?;
                    let cuts = (0..u.int_in_range(0..=4usize)?)
                        .map(|_| u.arbitrary())
                        .collect::<Result<Vec<u16>>>()?;
                    Payload::Frames { frames, cuts }
                };
                RegOp::Bytes { link, payload }
            }
            7 => RegOp::Close {
                link: u.arbitrary()?,
            },
            _ => RegOp::Advance {
                ms: if u.ratio(3, 4)? {
                    u.int_in_range(0..=2_000)?
                } else {
                    u.int_in_range(0..=20_000)?
                },
            },
        });
    }
    Ok(ops)
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    if let Ok(ops) = ops(&mut u) {
        invariants::check_registry(&ops);
    }
});
