//! The crash and partition scenarios over many seeds with random link
//! latency, asserting invariants instead of snapshots. Each scenario
//! function asserts its own observable outcome (who is told what, when);
//! here we add the cross-cutting invariants: every message accounted for
//! exactly once, nobody listed as chatting without a chat. (That the
//! registry lists only connected peers is asserted inside the scenarios:
//! the crashed or partitioned peer disappears from the other's list.)
//!
//! `NATTER_SEEDS=N` changes the number of seeds (default 200); a failing
//! seed is printed and can be replayed alone with `NATTER_SEED=S`.

use sim_tests::invariants::{every_message_accounted_for, nobody_chatting_without_a_chat};
use sim_tests::scenarios::{partition_in, peer_crash_in};
use sim_tests::sweep::{seeds, world, MAX_LATENCY};
use std::time::Duration;

fn sweep(name: &str, run: impl Fn(u64)) {
    for seed in seeds(200) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(seed)));
        if let Err(panic) = outcome {
            eprintln!("{name} failed with seed {seed}; replay: NATTER_SEED={seed} cargo test -p sim-tests --test seed_sweep {name}");
            std::panic::resume_unwind(panic);
        }
    }
}

#[test]
fn peer_crash_over_many_seeds_loses_no_message_silently() {
    sweep(
        "peer_crash_over_many_seeds_loses_no_message_silently",
        |seed| {
            let mut s = world(seed);
            peer_crash_in(&mut s, MAX_LATENCY);
            every_message_accounted_for(s.events("alice")).unwrap();
            s.run_for(Duration::from_secs(1));
            let alice = ("alice", s.events("alice"));
            nobody_chatting_without_a_chat(&s.server_log(), &[alice]).unwrap();
        },
    );
}

#[test]
fn partition_over_many_seeds_loses_no_message_silently_and_recovers() {
    sweep(
        "partition_over_many_seeds_loses_no_message_silently_and_recovers",
        |seed| {
            let mut s = world(seed);
            partition_in(&mut s);
            every_message_accounted_for(s.events("alice")).unwrap();
            every_message_accounted_for(s.events("bob")).unwrap();
            s.run_for(Duration::from_secs(1));
            let peers = [("alice", s.events("alice")), ("bob", s.events("bob"))];
            nobody_chatting_without_a_chat(&s.server_log(), &peers).unwrap();
        },
    );
}
