//! The identity scenarios with a fixed seed, snapshot-checked: events
//! with their simulated times, transcripts, the server log and what an
//! attacker read. Review snapshot changes like code.

use sim_tests::identity;

const SEED: u64 = 7;

#[test]
fn i01_man_in_the_middle_is_refused_on_both_sides_and_reads_no_message() {
    insta::assert_snapshot!(identity::man_in_the_middle(SEED));
}

#[test]
fn i02_lying_directory_gets_the_call_refused_and_both_told() {
    insta::assert_snapshot!(identity::lying_directory(SEED));
}

#[test]
fn i03_key_change_after_a_reinstall_is_refused_until_trust() {
    insta::assert_snapshot!(identity::key_change(SEED));
}

#[test]
fn i04_name_takeover_by_another_key_refused_owner_unaffected() {
    insta::assert_snapshot!(identity::name_takeover(SEED));
}

#[test]
fn i05_owner_restarting_after_a_crash_is_registered_at_once() {
    insta::assert_snapshot!(identity::owner_restart(SEED));
}

#[test]
fn i06_server_restart_keeps_name_bindings() {
    insta::assert_snapshot!(identity::server_restart_keeps_bindings(SEED));
}
