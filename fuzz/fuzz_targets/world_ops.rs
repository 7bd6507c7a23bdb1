//! Fuzzer bytes → operations on a world of three peers and a registry.
//! Included by the `peer` and `peer_honest` targets next to the harness.

use crate::invariants::{UserLine, WorldOp, FORGED};
use natter_fuzz::{some_bytes, Result, Unstructured, MAX_OPS};

fn who(u: &mut Unstructured<'_>) -> Result<u8> {
    u.int_in_range(0..=2)
}

fn user_line(u: &mut Unstructured<'_>) -> Result<UserLine> {
    Ok(match u.int_in_range(0..=12u8)? {
        0 => UserLine::List,
        1 | 2 => UserLine::ConnectName(u.int_in_range(0..=3)?),
        3 => UserLine::ConnectAddr(u.int_in_range(0..=4)?),
        4 | 5 => UserLine::Accept,
        6 => UserLine::Reject,
        7 => UserLine::Leave,
        8 => UserLine::Quit,
        9 => UserLine::Help,
        10 => UserLine::SayLong {
            long: u.arbitrary()?,
        },
        11 => {
            let bytes = some_bytes(u, 40)?;
            UserLine::Raw(String::from_utf8_lossy(&bytes).into_owned())
        }
        _ => UserLine::Say(u.arbitrary()?),
    })
}

/// Operations for `check_world`; `hostile` adds forged bytes on links.
pub fn world_ops(u: &mut Unstructured<'_>, hostile: bool) -> Result<Vec<WorldOp>> {
    let mut ops = Vec::new();
    while !u.is_empty() && ops.len() < MAX_OPS {
        ops.push(match u.int_in_range(0..=31u8)? {
            0..=15 => WorldOp::Line {
                who: who(u)?,
                line: user_line(u)?,
            },
            16 => WorldOp::EndInput { who: who(u)? },
            17 => WorldOp::Partition {
                who: who(u)?,
                other: if u.arbitrary()? { Some(who(u)?) } else { None },
            },
            18 => WorldOp::Crash { who: who(u)? },
            19 => WorldOp::Restart { who: who(u)? },
            20 => WorldOp::CrashServer,
            21 => WorldOp::RestartServer,
            22 => WorldOp::FailDisk {
                who: if u.arbitrary()? { Some(who(u)?) } else { None },
            },
            23 | 24 if hostile => WorldOp::Inject {
                who: who(u)?,
                link: u.int_in_range(0..=3)?,
                bytes: if u.arbitrary()? {
                    some_bytes(u, 80)?
                } else {
                    u.choose(FORGED)?.to_vec()
                },
            },
            _ => WorldOp::Advance {
                ms: if u.ratio(3, 4)? {
                    u.int_in_range(0..=1_000)?
                } else {
                    u.int_in_range(0..=20_000)?
                },
            },
        });
    }
    Ok(ops)
}
