//! The scenarios of several chats at once, each with a fixed seed,
//! snapshot-checked (events with their simulated times, transcripts, the
//! server log), and run twice to prove the same seed gives the same world.

use sim_tests::several_chats;

const SEED: u64 = 7;

#[test]
fn three_chats_one_partner_crashes_the_others_go_on() {
    insta::assert_snapshot!(several_chats::three_chats_one_partner_crashes(SEED));
}

#[test]
fn a_caller_while_full_gets_busy_at_once() {
    insta::assert_snapshot!(several_chats::caller_while_full_gets_busy(SEED));
}

#[test]
fn the_same_seed_gives_the_same_several_chats() {
    for scenario in [
        several_chats::three_chats_one_partner_crashes,
        several_chats::caller_while_full_gets_busy,
    ] {
        assert!(scenario(4242) == scenario(4242));
    }
}
