//! Everything at once: three peers and a registry under arbitrary user lines,
//! time, partitions, crashes, failing disks AND forged bytes on their links,
//! with every invariant of `invariants::check_world` including the
//! one-chat-at-a-time rule.
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
    if let Ok(ops) = world_ops::world_ops(&mut u, true) {
        let checks = WorldChecks {
            one_chat_at_a_time: true,
        };
        invariants::check_world(&ops, checks);
    }
});
