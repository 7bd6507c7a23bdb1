//! Like `peer` without forged bytes and without the one-chat-at-a-time rule:
//! the message accounting, numbering, chat_partner and directory invariants
//! of `invariants::check_world`. Use it to fuzz past a hostile-input or
//! one-chat bug that `peer` keeps hitting while it is being fixed.
#![no_main]

#[allow(dead_code)]
#[path = "../../core/tests/invariants.rs"]
mod invariants;
mod world_ops;

use invariants::WorldChecks;
use libfuzzer_sys::fuzz_target;
use natter_fuzz::Unstructured;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    if let Ok(ops) = world_ops::world_ops(&mut u, false) {
        let checks = WorldChecks {
            one_chat_at_a_time: false,
        };
        invariants::check_world(&ops, checks);
    }
});
