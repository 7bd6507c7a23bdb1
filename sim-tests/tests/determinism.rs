//! Same seed, same world: every scenario run twice gives byte-identical
//! events, transcripts and server logs. (The snapshots prove the same
//! across processes and machines; this proves it within one.)

use sim_tests::{identity, scenarios};

const SEED: u64 = 4242;

fn twice(name: &str, scenario: fn(u64) -> String) {
    let first = scenario(SEED);
    let second = scenario(SEED);
    assert!(
        first == second,
        "{name} differs between two runs with seed {SEED}:\n{first}\n---\n{second}"
    );
}

#[test]
fn every_scenario_gives_identical_output_for_the_same_seed() {
    twice("happy_path", scenarios::happy_path);
    twice("peer_crash", scenarios::peer_crash);
    twice("partition", scenarios::partition);
    twice("busy", scenarios::busy);
    twice("stale_list", scenarios::stale_list);
    twice("duplicates", scenarios::duplicates);
    twice("server_bounce", scenarios::server_bounce);
    twice("hostile_client", scenarios::hostile_client);
    twice("ring_timeout", scenarios::ring_timeout);
    twice("thousand_messages", scenarios::thousand_messages);
    twice("man_in_the_middle", identity::man_in_the_middle);
    twice("lying_directory", identity::lying_directory);
    twice("key_change", identity::key_change);
    twice("name_takeover", identity::name_takeover);
    twice("owner_restart", identity::owner_restart);
    twice(
        "server_restart_keeps_bindings",
        identity::server_restart_keeps_bindings,
    );
}
