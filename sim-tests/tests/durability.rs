//! "A receipt means recorded", proven against lost writes: the receiver's
//! machine is switched off in the middle of a burst (`sim.crash` on
//! turmoil's simulated disk loses everything not made durable), and every
//! message the sender saw `delivered` is still in the receiver's
//! transcript. Without the sync before receipts, the transcript is lost.

use natter_net_sim::scenario::Scenario;
use sim_tests::scenarios::{crash_mid_burst_in, BURST};

#[test]
fn every_message_delivered_before_the_receivers_machine_crashed_is_on_its_disk() {
    // Early in the chat, at the end of the first window, in the middle.
    for crash_after in [1, 64, BURST / 2] {
        let mut s = Scenario::new(7);
        let burst = crash_mid_burst_in(&mut s, crash_after);
        assert!(
            !burst.undelivered.is_empty() && burst.delivered.len() as u64 >= crash_after,
            "crash after #{crash_after}: the crash falls in the middle of the burst: {} delivered, {} not",
            burst.delivered.len(),
            burst.undelivered.len()
        );
        for n in &burst.delivered {
            assert_eq!(
                burst.on_disk.get(n).map(String::as_str),
                Some(format!("message {n}").as_str()),
                "crash after #{crash_after}: #{n} was delivered but is not on the receiver's \
                 disk (its disk kept {} received lines)",
                burst.on_disk.len()
            );
        }
    }
}
