//! The scenario of live presence, with a fixed seed, snapshot-checked
//! (events with their simulated times, transcripts, the server log), and
//! run twice to prove the same seed gives the same world.

use sim_tests::presence;

const SEED: u64 = 7;

#[test]
fn joins_and_leaves_are_seen_by_every_peer_in_order() {
    insta::assert_snapshot!(presence::joins_and_leaves_seen_by_every_peer_in_order(SEED));
}

#[test]
fn the_same_seed_gives_the_same_presence() {
    let run = presence::joins_and_leaves_seen_by_every_peer_in_order;
    assert!(run(4242) == run(4242));
}
