//! The fault sweep (issue 11, item 7): every fault of src/faults.rs over
//! many seeds, in worlds whose links take 1 to 20 ms at random, with the
//! invariants checked after each run: every message of every chat ends
//! exactly once (delivered, or listed undelivered when its chat ended),
//! nobody is listed as chatting without a chat, and no honest peer hits a
//! budget.
//!
//! `NATTER_SEEDS=N` sets the seeds per fault (default 8, a short run for
//! CI); the long run is `NATTER_SEEDS=1000 cargo test --release -p
//! sim-tests --test fault_sweep`. A failing seed is printed and replays
//! alone with `NATTER_SEED=S` (and `NATTER_FAULT=name` for one fault).

use sim_tests::faults::FAULTS;
use sim_tests::invariants::{
    every_message_of_every_chat_accounted_for, no_budget_hit, nobody_chatting_without_a_chat,
};
use sim_tests::sweep::{seeds, world};
use std::time::Duration;

#[test]
fn every_fault_over_many_seeds_keeps_the_invariants() {
    assert!(FAULTS.len() >= 10, "the sweep covers at least ten faults");
    let only = std::env::var("NATTER_FAULT").ok();
    for fault in FAULTS {
        if only.as_deref().is_some_and(|name| name != fault.name) {
            continue;
        }
        let seeds = seeds(8);
        let mut simulated = Duration::ZERO;
        for &seed in &seeds {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut s = world(seed);
                let peers = (fault.run)(&mut s);
                s.run_for(Duration::from_secs(1));
                let events: Vec<(&str, &[(Duration, natter_core::Event)])> =
                    peers.iter().map(|p| (*p, s.events(p))).collect();
                for (peer, events) in &events {
                    every_message_of_every_chat_accounted_for(events)
                        .unwrap_or_else(|e| panic!("{peer}: {e}"));
                }
                nobody_chatting_without_a_chat(&s.server_log(), &events).unwrap();
                no_budget_hit(&s.server_log(), &events).unwrap();
                s.elapsed()
            }));
            let elapsed = outcome.unwrap_or_else(|panic| {
                eprintln!(
                    "fault {} failed with seed {seed}; replay: NATTER_FAULT={} NATTER_SEED={seed} cargo test -p sim-tests --test fault_sweep",
                    fault.name, fault.name
                );
                std::panic::resume_unwind(panic)
            });
            simulated += elapsed;
        }
        eprintln!(
            "{:<32} {} seeds, {:.1} s simulated",
            fault.name,
            seeds.len(),
            simulated.as_secs_f64()
        );
    }
}
