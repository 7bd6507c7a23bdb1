//! Output unread for a while (a slow terminal, a paused pipe) costs
//! nobody their links: the stalled peer keeps reading the network, so
//! heartbeats flow, while receipts wait and the sender stops at its
//! window, so what the stalled peer holds stays bounded.

use sim_tests::scenarios::{stalled_reader, STALL, STALLED_EVENT_BUFFER};

/// The sender's window of messages without receipt (`PeerConfig`).
const WINDOW: usize = 64;

#[test]
fn a_reader_stalled_for_four_heartbeat_timeouts_keeps_its_chat_and_registration_and_holds_a_bounded_backlog(
) {
    let stalled = stalled_reader(7);
    assert!(
        stalled.bob_in_server_log.is_empty(),
        "the server changed bob during the stall of {STALL:?}: {:?}",
        stalled.bob_in_server_log
    );
    assert!(
        stalled.max_held > 0 && stalled.max_held <= WINDOW,
        "bob held {} events beyond his buffer of {STALLED_EVENT_BUFFER}: at most the window",
        stalled.max_held
    );
    assert!(
        stalled.delivered_during_stall <= STALLED_EVENT_BUFFER,
        "receipts waited for the reader: {} delivered during the stall",
        stalled.delivered_during_stall
    );
}
