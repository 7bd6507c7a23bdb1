//! Same seed, same world: every scenario run twice gives byte-identical
//! events, transcripts and server logs. (The snapshots prove the same
//! across processes and machines; this proves it within one.)

use sim_tests::{cluster, identity, scenarios};

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
    twice(
        "cluster_two_servers",
        cluster::peers_on_two_servers_list_and_call_each_other,
    );
    twice(
        "cluster_same_name_at_once",
        cluster::same_name_on_two_servers_at_once_goes_to_one_key,
    );
    twice(
        "cluster_cut_off_from_store",
        cluster::server_cut_off_from_the_store_refuses_registrations_and_recovers,
    );
    twice(
        "cluster_server_crash",
        cluster::crashed_servers_peers_expire_from_the_others_listing,
    );
}
