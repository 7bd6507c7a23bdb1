//! What the seed sweeps share (`tests/seed_sweep.rs`, `tests/fault_sweep.rs`):
//! which seeds to run, and a world whose links take a random 1 ms to
//! [`MAX_LATENCY`] per message, so that each seed orders the network
//! differently.

use natter_core::RegistryConfig;
use natter_net_sim::scenario::{builder, Scenario};
use std::time::Duration;

/// The largest one-way latency of a sweep's links.
pub const MAX_LATENCY: Duration = Duration::from_millis(20);

/// The seeds to run: `NATTER_SEED=S` replays one, `NATTER_SEEDS=N` runs
/// 0..N, and without either, 0..`default`.
pub fn seeds(default: u64) -> Vec<u64> {
    if let Ok(seed) = std::env::var("NATTER_SEED") {
        return vec![seed.parse().expect("NATTER_SEED is a number")];
    }
    let count = std::env::var("NATTER_SEEDS")
        .map_or(default, |n| n.parse().expect("NATTER_SEEDS is a number"));
    (0..count).collect()
}

/// A world with the default registry and links of random latency.
pub fn world(seed: u64) -> Scenario<'static> {
    let mut b = builder(seed);
    b.min_message_latency(Duration::from_millis(1))
        .max_message_latency(MAX_LATENCY);
    Scenario::with_builder(&b, RegistryConfig::default())
}
