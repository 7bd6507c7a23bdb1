//! Several servers sharing one directory through the store model (issue
//! 14), with a fixed seed, snapshot-checked: events with their simulated
//! times, transcripts, and every server's log interleaved.

use sim_tests::cluster;

const SEED: u64 = 14;

#[test]
fn c01_peers_on_two_servers_list_and_call_each_other() {
    insta::assert_snapshot!(cluster::peers_on_two_servers_list_and_call_each_other(SEED));
}

#[test]
fn c02_same_name_on_two_servers_at_once_goes_to_one_key() {
    insta::assert_snapshot!(cluster::same_name_on_two_servers_at_once_goes_to_one_key(
        SEED
    ));
}

#[test]
fn c03_server_cut_off_from_the_store_refuses_registrations_and_recovers() {
    insta::assert_snapshot!(
        cluster::server_cut_off_from_the_store_refuses_registrations_and_recovers(SEED)
    );
}

#[test]
fn c04_crashed_servers_peers_expire_from_the_others_listing() {
    insta::assert_snapshot!(cluster::crashed_servers_peers_expire_from_the_others_listing(SEED));
}

#[test]
fn c05_peer_that_quits_while_its_server_is_cut_off_is_withdrawn_when_the_store_returns() {
    insta::assert_snapshot!(
        cluster::peer_that_quits_while_its_server_is_cut_off_is_withdrawn_when_the_store_returns(
            SEED
        )
    );
}
