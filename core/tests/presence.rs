//! Live presence: subscribers are told who comes, goes and changes status,
//! coalesced per interval and bounded per subscriber.

mod world;

use natter_core::peer::PeerConfig;
use natter_core::protocol::{PeerStatus, PresenceChange, ServerMsg};
use natter_core::registry::presence::PresenceConfig;
use natter_core::registry::RegistryConfig;
use natter_core::{Event, Identity, LinkId};
use std::net::SocketAddr;
use std::time::Duration;
use world::{World, LISTEN_PORT, SERVER};

const INTERVAL: Duration = Duration::from_millis(250);

/// Raw clients live at 10.0.1.N, away from the peers' 10.0.0.N.
fn client(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 1, i], 40_000))
}

/// A raw client registers as `name`; returns its link.
fn join(world: &mut World, i: u8, name: &str) -> LinkId {
    let link = world.raw_client(client(i));
    register(world, link, name)
}

fn register(world: &mut World, link: LinkId, name: &str) -> LinkId {
    let hello = format!(
        "{{\"type\":\"hello\",\"version\":2}}\n{{\"type\":\"register\",\"name\":\"{name}\",\"port\":4000}}\n"
    );
    let (reply, _) = world.raw_send(link, hello.as_bytes());
    let frames = world::server_frames(&reply);
    assert!(
        matches!(frames.last(), Some(ServerMsg::Registered { .. })),
        "{reply}"
    );
    link
}

/// A raw client registers as `name` and subscribes.
fn subscriber(world: &mut World, i: u8, name: &str) -> LinkId {
    let link = join(world, i, name);
    let (reply, _) = world.raw_send(link, b"{\"type\":\"subscribe\"}\n");
    assert_eq!(reply, "", "subscribe has no answer");
    link
}

fn send(world: &mut World, link: LinkId, frame: &str) {
    world.raw_send(link, format!("{frame}\n").as_bytes());
}

/// The presence frames `link` got since the last call, each as its
/// changes in words ("online bob", "offline bob", "status bob busy",
/// "resync").
fn frames(world: &mut World, link: LinkId) -> Vec<Vec<String>> {
    let (text, _) = world.drain_raw(link);
    world::server_frames(&text)
        .into_iter()
        .filter_map(|frame| match frame {
            ServerMsg::Presence { changes } => Some(changes.iter().map(words).collect()),
            ServerMsg::PresenceResync => Some(vec!["resync".to_string()]),
            _ => None,
        })
        .collect()
}

fn words(change: &PresenceChange) -> String {
    match change {
        PresenceChange::Online(info) => format!("online {}", info.name),
        PresenceChange::Offline { name } => format!("offline {name}"),
        PresenceChange::Status { name, status } => format!("status {name} {status}"),
        PresenceChange::Unknown => "unknown".to_string(),
    }
}

/// The presence events of a peer, in words.
fn presence_events(world: &mut World, name: &str) -> Vec<String> {
    world
        .take_events(name)
        .into_iter()
        .filter_map(|event| match event {
            Event::PeerOnline { peer } => Some(format!("online {}", peer.name)),
            Event::PeerOffline { name } => Some(format!("offline {name}")),
            Event::PeerStatus { name, status } => Some(format!("status {name} {status}")),
            _ => None,
        })
        .collect()
}

fn add_subscribed_peer(world: &mut World, name: &str) {
    let mut config = PeerConfig::new(name, SERVER, LISTEN_PORT);
    config.presence = true;
    world.add_peer_with(config);
}

#[test]
fn joins_leaves_and_status_changes_reach_every_subscribed_peer_in_order() {
    let mut world = World::new();
    add_subscribed_peer(&mut world, "alice");
    add_subscribed_peer(&mut world, "bob");
    world.advance(INTERVAL);
    add_subscribed_peer(&mut world, "carol");
    world.advance(INTERVAL);
    let dave = join(&mut world, 1, "dave");
    world.advance(INTERVAL);
    send(&mut world, dave, r#"{"type":"status","status":"busy"}"#);
    world.advance(INTERVAL);
    world.end_input("bob");
    world.advance(INTERVAL);

    assert_eq!(
        presence_events(&mut world, "alice"),
        [
            "online bob",
            "online carol",
            "online dave",
            "status dave busy",
            "offline bob"
        ]
    );
    assert_eq!(
        presence_events(&mut world, "bob"),
        ["online carol", "online dave", "status dave busy"]
    );
    assert_eq!(
        presence_events(&mut world, "carol"),
        ["online dave", "status dave busy", "offline bob"]
    );
}

#[test]
fn a_peer_that_does_not_subscribe_is_told_nothing() {
    let mut world = World::new();
    world.add_peer("alice");
    add_subscribed_peer(&mut world, "bob");
    world.advance(INTERVAL);
    world.end_input("bob");
    world.advance(INTERVAL);
    assert_eq!(presence_events(&mut world, "alice"), Vec::<String>::new());
    assert_eq!(world.registry().subscribers(), 0, "bob's went with him");
}

#[test]
fn changes_wait_for_the_end_of_the_interval_and_go_in_one_frame() {
    let mut world = World::new();
    let watcher = subscriber(&mut world, 1, "watcher");
    join(&mut world, 2, "bob");
    world.advance(Duration::from_millis(100));
    join(&mut world, 3, "carol");
    world.advance(Duration::from_millis(149));
    assert!(frames(&mut world, watcher).is_empty(), "not before 250 ms");
    world.advance(Duration::from_millis(1));
    assert_eq!(
        frames(&mut world, watcher),
        [["online bob", "online carol"]]
    );
}

#[test]
fn a_join_and_a_leave_within_one_interval_give_nothing() {
    let mut world = World::new();
    let watcher = subscriber(&mut world, 1, "watcher");
    let bob = join(&mut world, 2, "bob");
    world.advance(Duration::from_millis(100));
    send(&mut world, bob, r#"{"type":"bye"}"#);
    world.advance(INTERVAL * 4);
    assert!(frames(&mut world, watcher).is_empty());
}

#[test]
fn a_known_peer_leaving_and_back_within_one_interval_is_one_online_and_leaving_again_is_told() {
    let mut world = World::new();
    let bobs_key = Identity::from_seed(&[42; 32]);
    let link = world.raw_client_with(client(2), &bobs_key);
    let bob = register(&mut world, link, "bob");
    let watcher = subscriber(&mut world, 1, "watcher");
    send(&mut world, bob, r#"{"type":"bye"}"#);
    let link = world.raw_client_with(client(3), &bobs_key);
    let bob = register(&mut world, link, "bob");
    world.advance(INTERVAL);
    assert_eq!(frames(&mut world, watcher), [["online bob"]]);
    // Leaving, back and leaving again: the watcher knew bob, so what
    // comes to something is that he left.
    send(&mut world, bob, r#"{"type":"bye"}"#);
    let link = world.raw_client_with(client(4), &bobs_key);
    let bob = register(&mut world, link, "bob");
    send(&mut world, bob, r#"{"type":"bye"}"#);
    world.advance(INTERVAL);
    assert_eq!(frames(&mut world, watcher), [["offline bob"]]);
}

#[test]
fn many_changes_give_at_most_one_frame_per_interval_each_with_the_last_status() {
    let mut world = World::new();
    let watcher = subscriber(&mut world, 1, "watcher");
    let bob = join(&mut world, 2, "bob");
    world.advance(INTERVAL);
    assert_eq!(frames(&mut world, watcher), [["online bob"]]);
    let statuses = ["chatting", "busy", "available"];
    let mut per_interval = Vec::new();
    // 18 changes a second (within bob's request budget) for a second.
    for window in 0..4 {
        for step in 0..4 {
            let status = statuses[(window + step) % 3];
            send(
                &mut world,
                bob,
                &format!(r#"{{"type":"status","status":"{status}"}}"#),
            );
            // The watcher's own changes are not sent to it.
            if step == 0 {
                send(&mut world, watcher, r#"{"type":"status","status":"busy"}"#);
            }
            world.advance(INTERVAL / 4);
        }
        per_interval.push(frames(&mut world, watcher));
    }
    let last = |window: usize| format!("status bob {}", statuses[(window + 3) % 3]);
    assert_eq!(
        per_interval,
        (0..4).map(|w| vec![vec![last(w)]]).collect::<Vec<_>>(),
        "one frame per interval, with bob's last status only"
    );
}

#[test]
fn a_list_shows_what_came_before_it_so_a_later_leave_is_still_told() {
    let mut world = World::new();
    let watcher = subscriber(&mut world, 1, "watcher");
    let bob = join(&mut world, 2, "bob");
    let (listed, _) = world.raw_send(watcher, b"{\"type\":\"list\"}\n");
    assert!(listed.contains("\"bob\""), "{listed}");
    send(&mut world, bob, r#"{"type":"bye"}"#);
    world.advance(INTERVAL);
    // bob's join is in the list; his leave, after it, must come.
    assert_eq!(frames(&mut world, watcher), [["offline bob"]]);
}

fn small_bound() -> RegistryConfig {
    RegistryConfig {
        presence: PresenceConfig {
            max_bytes: 600,
            ..PresenceConfig::default()
        },
        ..RegistryConfig::default()
    }
}

#[test]
fn a_subscriber_whose_changes_pile_up_past_the_bound_is_told_to_list_again() {
    let mut world = World::with_registry(small_bound());
    let watcher = subscriber(&mut world, 1, "watcher");
    for i in 0..3 {
        join(&mut world, 10 + i, &format!("p{i}"));
    }
    world.advance(INTERVAL);
    // Three online entries with keys (about 200 bytes each) fit in 600
    // bytes; ten do not.
    assert_eq!(frames(&mut world, watcher)[0].len(), 3);
    for i in 3..13 {
        join(&mut world, 10 + i, &format!("p{i}"));
    }
    world.advance(INTERVAL);
    assert_eq!(frames(&mut world, watcher), [["resync"]]);
    // Later changes come as before.
    join(&mut world, 50, "late");
    world.advance(INTERVAL);
    assert_eq!(frames(&mut world, watcher), [["online late"]]);
}

#[test]
fn a_peer_told_to_resync_lists_again_by_itself() {
    let mut world = World::with_registry(small_bound());
    add_subscribed_peer(&mut world, "alice");
    world.take_events("alice");
    for i in 0..10 {
        join(&mut world, 10 + i, &format!("p{i}"));
    }
    world.advance(INTERVAL);
    let events = world.take_events("alice");
    let [Event::Peers { peers }] = events.as_slice() else {
        panic!("one peers event, not {events:?}");
    };
    assert_eq!(peers.len(), 10);
    assert!(peers.iter().all(|p| p.status == PeerStatus::Available));
}
