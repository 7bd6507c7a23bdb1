//! Each scenario with a fixed seed, snapshot-checked: events with their
//! simulated times, transcripts and the server log. Review snapshot changes
//! like code (`cargo insta review`).

use sim_tests::scenarios;

const SEED: u64 = 7;

#[test]
fn s01_happy_path_demo_conversation() {
    insta::assert_snapshot!(scenarios::happy_path(SEED));
}

#[test]
fn s02_peer_crash_mid_chat_partner_told_at_once() {
    insta::assert_snapshot!(scenarios::peer_crash(SEED));
}

#[test]
fn s03_partition_mid_chat_detected_by_heartbeat_then_reregistered() {
    insta::assert_snapshot!(scenarios::partition(SEED));
}

#[test]
fn s04_busy_peer_answers_at_once() {
    insta::assert_snapshot!(scenarios::busy(SEED));
}

#[test]
fn s05_stale_list_gives_peer_unreachable_and_a_fresh_list() {
    insta::assert_snapshot!(scenarios::stale_list(SEED));
}

#[test]
fn s06_duplicate_name_and_address_refused() {
    insta::assert_snapshot!(scenarios::duplicates(SEED));
}

#[test]
fn s07_server_bounce_while_chatting_chat_continues_and_peers_reregister() {
    insta::assert_snapshot!(scenarios::server_bounce(SEED));
}

#[test]
fn s08_hostile_client_refused_others_unaffected() {
    insta::assert_snapshot!(scenarios::hostile_client(SEED));
}

#[test]
fn s09_ring_timeout_gives_no_answer() {
    insta::assert_snapshot!(scenarios::ring_timeout(SEED));
}

#[test]
fn s10_thousand_messages_under_random_latency_delivered_once_in_order() {
    insta::assert_snapshot!(scenarios::thousand_messages(SEED));
}
