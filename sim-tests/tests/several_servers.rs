//! A peer given two independent servers moves to the second when the
//! first crashes: snapshot-checked (events with their simulated times,
//! transcripts, both servers' logs), and run twice to prove the same seed
//! gives the same world.

use sim_tests::several_servers;

const SEED: u64 = 7;

#[test]
fn the_first_server_crashes_peers_register_with_the_second_and_chat_on() {
    insta::assert_snapshot!(several_servers::failover(SEED));
}

#[test]
fn the_same_seed_gives_the_same_failover() {
    assert!(several_servers::failover(4242) == several_servers::failover(4242));
}
