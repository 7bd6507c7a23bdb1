//! The NATS store ([`NatsKv`]) keeps the promises of the `Kv` trait
//! (net-real/src/store.rs) against a real `nats-server -js`: each test
//! plays two servers as two connections to one NATS.
//!
//! Skipped, with a `skipped:` line on standard error, where no nats-server
//! 2.11 or newer is installed (`.ci/run` installs one from PyPI).

use natter_net_real::nats_server::NatsServer;
use natter_net_real::store::{Bucket, Kv, KvError, KvEvent};
use natter_net_real::store_nats::NatsKv;
use std::io::Write;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};

const AGE: Duration = Duration::from_secs(60);

fn nats(test: &str) -> Option<NatsServer> {
    match NatsServer::start() {
        Ok(server) => Some(server),
        Err(why) => {
            let _ = writeln!(std::io::stderr(), "skipped: {test}: {why}");
            None
        }
    }
}

/// A connection with both buckets open, as a server has after start.
async fn server(nats: &NatsServer, peers_age: Duration) -> NatsKv {
    let kv = NatsKv::connect(&nats.url()).await.expect("connect");
    open(&kv, peers_age).await;
    kv
}

/// Opens both buckets, waiting for the connection: the client connects in
/// the background, and opening fails until it has.
async fn open(kv: &NatsKv, peers_age: Duration) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let opened = async {
            kv.open(Bucket::Names, AGE).await?;
            kv.open(Bucket::Peers, peers_age).await
        };
        match opened.await {
            Ok(()) => return,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("buckets not opened within 10 s: {e}"),
        }
    }
}

async fn next(watch: &mut mpsc::Receiver<KvEvent>) -> KvEvent {
    timeout(Duration::from_secs(10), watch.recv())
        .await
        .expect("an event within 10 s")
        .expect("the watch is open")
}

#[tokio::test]
async fn of_two_servers_creating_one_name_at_once_exactly_one_wins() {
    let Some(nats) = nats("of_two_servers_creating_one_name_at_once_exactly_one_wins") else {
        return;
    };
    let (a, b) = (server(&nats, AGE).await, server(&nats, AGE).await);
    for round in 0..20 {
        let name = format!("alice{round}");
        let (ra, rb) = tokio::join!(
            a.create(Bucket::Names, &name, b"key-a".to_vec()),
            b.create(Bucket::Names, &name, b"key-b".to_vec())
        );
        let (won, lost) = match (ra, rb) {
            (Ok(rev), Err(e)) => ((rev, b"key-a"), e),
            (Err(e), Ok(rev)) => ((rev, b"key-b"), e),
            other => panic!("round {round}: exactly one create wins, got {other:?}"),
        };
        assert_eq!(lost, KvError::Conflict);
        let stored = a.get(Bucket::Names, &name).await.unwrap().unwrap();
        assert_eq!((stored.revision, &stored.value[..]), (won.0, &won.1[..]));
    }
}

#[tokio::test]
async fn updates_and_deletes_with_a_stale_revision_conflict() {
    let Some(nats) = nats("updates_and_deletes_with_a_stale_revision_conflict") else {
        return;
    };
    let (a, b) = (server(&nats, AGE).await, server(&nats, AGE).await);
    let first = a
        .create(Bucket::Names, "bob", b"k1".to_vec())
        .await
        .unwrap();
    let second = b
        .update(Bucket::Names, "bob", b"k1 used".to_vec(), first)
        .await
        .unwrap();
    assert_eq!(
        a.update(Bucket::Names, "bob", b"k2".to_vec(), first).await,
        Err(KvError::Conflict)
    );
    assert_eq!(
        a.delete(Bucket::Names, "bob", Some(first)).await,
        Err(KvError::Conflict)
    );
    a.delete(Bucket::Names, "bob", Some(second)).await.unwrap();
    assert_eq!(a.get(Bucket::Names, "bob").await.unwrap(), None);
    // Deleting what has no value is no error; a deleted name is free.
    a.delete(Bucket::Names, "nobody", None).await.unwrap();
    b.create(Bucket::Names, "bob", b"k3".to_vec())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_watch_gives_the_directory_then_current_then_each_change_in_order() {
    let Some(nats) = nats("a_watch_gives_the_directory_then_current_then_each_change_in_order")
    else {
        return;
    };
    let (a, b) = (server(&nats, AGE).await, server(&nats, AGE).await);
    // An empty directory: current at once.
    let mut empty = b.watch(Bucket::Peers).await.unwrap();
    assert_eq!(next(&mut empty).await, KvEvent::Current);
    a.put(Bucket::Peers, "alice", b"on a".to_vec())
        .await
        .unwrap();
    a.put(Bucket::Peers, "alice", b"on a, chatting".to_vec())
        .await
        .unwrap();
    a.put(Bucket::Peers, "gone", b"on a".to_vec())
        .await
        .unwrap();
    a.delete(Bucket::Peers, "gone", None).await.unwrap();
    let bob = a.put(Bucket::Peers, "bob", b"on a".to_vec()).await.unwrap();

    let mut watch = b.watch(Bucket::Peers).await.unwrap();
    let mut snapshot = Vec::new();
    loop {
        match next(&mut watch).await {
            KvEvent::Current => break,
            KvEvent::Put(entry) => snapshot.push((entry.key, entry.value)),
            other => panic!("only values before current, got {other:?}"),
        }
    }
    assert_eq!(
        snapshot,
        [
            ("alice".to_string(), b"on a, chatting".to_vec()),
            ("bob".to_string(), b"on a".to_vec())
        ],
        "the latest value of each key that has one, in revision order"
    );
    a.delete(Bucket::Peers, "bob", Some(bob)).await.unwrap();
    let carol = a
        .put(Bucket::Peers, "carol", b"on a".to_vec())
        .await
        .unwrap();
    let KvEvent::Deleted { key, revision } = next(&mut watch).await else {
        panic!("bob's delete first");
    };
    assert_eq!(key, "bob");
    assert!(revision < carol);
    match next(&mut watch).await {
        KvEvent::Put(entry) => assert_eq!((entry.key.as_str(), entry.revision), ("carol", carol)),
        other => panic!("then carol's put, got {other:?}"),
    }
    // The empty bucket's early watch saw the same changes.
    match next(&mut empty).await {
        KvEvent::Put(entry) => assert_eq!(entry.key, "alice"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_entry_its_server_stops_refreshing_expires_for_every_watcher() {
    let Some(nats) = nats("an_entry_its_server_stops_refreshing_expires_for_every_watcher") else {
        return;
    };
    let age = Duration::from_secs(2);
    let (a, b) = (server(&nats, age).await, server(&nats, age).await);
    let mut watch = b.watch(Bucket::Peers).await.unwrap();
    assert_eq!(next(&mut watch).await, KvEvent::Current);
    let put = Instant::now();
    a.put(Bucket::Peers, "alice", b"on a".to_vec())
        .await
        .unwrap();
    // A refresh restarts the age.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    a.put(Bucket::Peers, "alice", b"on a".to_vec())
        .await
        .unwrap();
    assert!(matches!(next(&mut watch).await, KvEvent::Put(_)));
    assert!(matches!(next(&mut watch).await, KvEvent::Put(_)));
    // Then a stops (dies): the entry goes, and b's watch says so.
    let event = next(&mut watch).await;
    let gone_after = put.elapsed();
    assert!(
        matches!(&event, KvEvent::Expired { key, .. } if key == "alice"),
        "{event:?}"
    );
    assert!(
        gone_after >= Duration::from_millis(3100) && gone_after < Duration::from_secs(8),
        "expired {gone_after:?} after the first put: 2 s after the refresh at 1.2 s, give or take the server's expiry timer"
    );
    assert_eq!(b.get(Bucket::Peers, "alice").await.unwrap(), None);
    // And the name can be announced again.
    b.create(Bucket::Peers, "alice", b"on b".to_vec())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_deleted_entry_is_reported_gone_once_not_again_when_its_marker_ages_out() {
    let Some(nats) = nats("a_deleted_entry_is_reported_gone_once") else {
        return;
    };
    let a = server(&nats, Duration::from_secs(1)).await;
    let mut watch = a.watch(Bucket::Peers).await.unwrap();
    assert_eq!(next(&mut watch).await, KvEvent::Current);
    a.put(Bucket::Peers, "alice", b"on a".to_vec())
        .await
        .unwrap();
    a.delete(Bucket::Peers, "alice", None).await.unwrap();
    assert!(matches!(next(&mut watch).await, KvEvent::Put(_)));
    assert!(matches!(next(&mut watch).await, KvEvent::Deleted { .. }));
    // The delete marker reaches the bucket's age after 1 s and JetStream
    // writes an expiry marker for "alice": a watcher hears nothing of it.
    let more = timeout(Duration::from_secs(3), watch.recv()).await;
    assert!(more.is_err(), "nothing more: {more:?}");
    // A later put and its expiry still are.
    a.put(Bucket::Peers, "alice", b"on a".to_vec())
        .await
        .unwrap();
    assert!(matches!(next(&mut watch).await, KvEvent::Put(_)));
    assert!(matches!(next(&mut watch).await, KvEvent::Expired { .. }));
}

#[tokio::test]
async fn cut_off_from_nats_calls_fail_at_once_watches_end_and_all_resumes_when_it_is_back() {
    let Some(mut nats) = nats("cut_off_from_nats_calls_fail_at_once_watches_end") else {
        return;
    };
    let a = server(&nats, AGE).await;
    a.put(Bucket::Peers, "alice", b"on a".to_vec())
        .await
        .unwrap();
    let mut watch = a.watch(Bucket::Peers).await.unwrap();
    assert!(matches!(next(&mut watch).await, KvEvent::Put(_)));
    assert_eq!(next(&mut watch).await, KvEvent::Current);

    nats.kill();
    let ended = timeout(Duration::from_secs(5), watch.recv()).await;
    assert_eq!(
        ended,
        Ok(None),
        "the watch ends when the connection is lost"
    );
    let asked = Instant::now();
    let refused = a.put(Bucket::Peers, "bob", b"on a".to_vec()).await;
    assert!(
        matches!(refused, Err(KvError::Unavailable(_))),
        "{refused:?}"
    );
    assert!(
        asked.elapsed() < Duration::from_millis(500),
        "refused at once, not after a timeout: {:?}",
        asked.elapsed()
    );
    assert!(matches!(
        a.watch(Bucket::Peers).await,
        Err(KvError::Unavailable(_))
    ));

    nats.restart().expect("nats-server restarts");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut watch = loop {
        match a.watch(Bucket::Peers).await {
            Ok(watch) => break watch,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("no watch within 10 s of NATS coming back: {e}"),
        }
    };
    // The directory was kept on NATS's disk.
    assert!(matches!(next(&mut watch).await, KvEvent::Put(e) if e.key == "alice"));
    assert_eq!(next(&mut watch).await, KvEvent::Current);
    a.put(Bucket::Peers, "bob", b"on a".to_vec()).await.unwrap();
}

#[tokio::test]
async fn a_server_started_while_nats_is_down_connects_when_it_comes() {
    let Some(mut nats) = nats("a_server_started_while_nats_is_down_connects_when_it_comes") else {
        return;
    };
    nats.kill();
    let a = NatsKv::connect(&nats.url())
        .await
        .expect("connect returns at once");
    assert!(matches!(
        a.open(Bucket::Peers, AGE).await,
        Err(KvError::Unavailable(_))
    ));
    nats.restart().expect("nats-server starts");
    open(&a, AGE).await;
    a.put(Bucket::Peers, "alice", b"on a".to_vec())
        .await
        .unwrap();
}
