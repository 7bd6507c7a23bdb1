//! The drain loop every driver runs (`natter_core::drive`), through the
//! in-memory world: a receipt waits until its line is durable, a burst is
//! made durable with one sync, and receipts wait while the user's events
//! are backed up.

mod world;

use natter_core::event::{ErrorDetail, Event};
use natter_core::protocol::ErrorCode;
use world::{chatting, World};

fn delivered(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Delivered { n, .. } => Some(*n),
            _ => None,
        })
        .collect()
}

fn received_lines(world: &World) -> usize {
    world
        .transcripts
        .iter()
        .filter(|(file, _)| file.contains("_bob_"))
        .flat_map(|(_, lines)| lines)
        .filter(|line| line.contains(" received #"))
        .count()
}

#[test]
fn a_burst_read_in_one_go_is_made_durable_with_one_sync() {
    let mut world = chatting();
    world.hold("bob");
    for text in ["one", "two", "three"] {
        world.type_line("alice", text);
    }
    assert_eq!(delivered(&world.take_events("alice")), Vec::<u64>::new());
    let syncs = world.syncs.get("bob").copied().unwrap_or(0);

    world.release("bob");

    assert_eq!(world.syncs["bob"], syncs + 1, "one sync for the burst");
    assert_eq!(received_lines(&world), 3);
    assert_eq!(delivered(&world.take_events("alice")), vec![1, 2, 3]);
}

#[test]
fn a_burst_read_in_one_go_is_appended_in_one_write_and_its_receipts_in_one_more() {
    let mut world = chatting();
    world.hold("bob");
    for text in ["one", "two", "three"] {
        world.type_line("alice", text);
    }
    let (bob, alice) = (world.appends["bob"], world.appends["alice"]);

    world.release("bob");

    assert_eq!(world.appends["bob"], bob + 1, "bob's three received lines");
    assert_eq!(received_lines(&world), 3);
    assert_eq!(delivered(&world.take_events("alice")), vec![1, 2, 3]);
    assert_eq!(
        world.appends["alice"],
        alice + 1,
        "alice's three delivered lines"
    );
}

#[test]
fn a_line_that_cannot_be_written_is_reported_where_it_was_among_the_events() {
    let mut world = chatting();
    world.failing_disk = Some("alice".into());
    world.type_line("alice", "hi");
    let alice = world.take_events("alice");
    // The `sent` line comes before the `sent` event: so does its error,
    // though the lines of a drain are written together at its end.
    assert!(
        matches!(
            alice.as_slice(),
            [
                Event::Error {
                    code: ErrorCode::TranscriptFailed,
                    detail: ErrorDetail::TranscriptWrite { .. },
                },
                Event::Sent { n: 1, .. },
                ..
            ]
        ),
        "{alice:#?}"
    );
}

#[test]
fn a_line_written_but_not_made_durable_gets_no_receipt() {
    let mut world = chatting();
    world.failing_sync = Some("bob".into());
    world.type_line("alice", "are you writing this down?");
    assert_eq!(delivered(&world.take_events("alice")), Vec::<u64>::new());
    let bob = world.take_events("bob");
    assert!(
        bob.iter().any(|e| matches!(e,
            Event::Error {
                code: ErrorCode::TranscriptFailed,
                detail: ErrorDetail::NotRecorded { n: 1, reason, .. },
            } if reason.contains("fsync failed"))),
        "{bob:#?}"
    );
}

#[test]
fn receipts_wait_while_the_receivers_events_are_backed_up_and_the_sender_stops_at_its_window() {
    let mut world = chatting();
    world.backed_up.insert("bob".into());
    for i in 1..=65 {
        world.type_line("alice", &format!("message {i}"));
    }
    // The first 64 reached bob and are on his disk; none has a receipt,
    // so the 65th waits for alice's window.
    assert_eq!(received_lines(&world), 64);
    assert_eq!(delivered(&world.take_events("alice")), Vec::<u64>::new());
    assert_eq!(world.peer("alice").waiting(), 1);

    world.backed_up.clear();
    world.settle();

    assert_eq!(
        delivered(&world.take_events("alice")),
        (1..=65).collect::<Vec<u64>>()
    );
    assert_eq!(received_lines(&world), 65);
}
