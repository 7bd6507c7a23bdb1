//! The server driver with a store of name bindings on disk: what the store
//! holds at start binds names, what expired is purged, and the store is
//! released when the server stops.
//!
//! Clients cannot authenticate over this driver yet (the handshake is not
//! wired in), so bindings are made by writing the store directly, and the
//! write path (registry store operations to SQLite) is tested in
//! `src/bindings.rs` and `natter-core`'s `tests/bindings.rs` instead.

use natter_core::protocol::{ClientMsg, Versions};
use natter_core::registry::StoreOp;
use natter_core::{encode, RegistryConfig};
use natter_net_real::{run_server, NameBindings, Net, TokioNet};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Only reached when something is broken.
const HANG_GUARD: Duration = Duration::from_secs(20);

/// Registers `name` from a client without a key and returns the answer.
async fn register(server: SocketAddr, name: &str) -> Value {
    let stream = TcpStream::connect(server).await.unwrap();
    let mut bytes = encode(&ClientMsg::Hello {
        versions: Versions::ours(),
    });
    bytes.extend(encode(&ClientMsg::Register {
        name: name.to_string(),
        port: 4000,
    }));
    let mut reader = BufReader::new(stream);
    reader.get_mut().write_all(&bytes).await.unwrap();
    let answer = async {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(reader.read_line(&mut line).await.unwrap() > 0, "closed");
            let frame: Value = serde_json::from_str(&line).unwrap();
            if frame["type"] != "hello" {
                return frame;
            }
        }
    };
    tokio::time::timeout(HANG_GUARD, answer)
        .await
        .expect("an answer to register")
}

#[tokio::test]
async fn names_bound_in_the_store_stay_bound_after_a_restart_and_expired_ones_are_purged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server/names.sqlite");
    let now = TokioNet
        .wall_clock()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let config = RegistryConfig::default();
    let ttl = config.name_ttl.as_secs();
    // What an earlier run of the server left.
    let mut store = NameBindings::open(&path).unwrap();
    store
        .apply(&[
            StoreOp::Bind {
                name: "alice".into(),
                key: [0xa1; 32],
                at: now - 60,
            },
            StoreOp::Bind {
                name: "gone".into(),
                key: [0x90; 32],
                at: now - ttl - 60,
            },
        ])
        .unwrap();
    drop(store);

    let store = NameBindings::open(&path).unwrap();
    let listener = TokioNet.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(run_server(
        TokioNet,
        listener,
        config.clone(),
        Some(store),
        None,
        async {
            let _ = stopped.await;
        },
    ));

    let answer = register(addr, "Alice").await;
    assert_eq!(answer["code"], "name_taken", "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(message.contains("owned by another key"), "{message}");
    let answer = register(addr, "gone").await;
    assert_eq!(
        answer["type"], "registered",
        "an expired binding frees the name: {answer}"
    );

    stop.send(()).unwrap();
    tokio::time::timeout(HANG_GUARD, server)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
    // The server let go of the store; the expired binding left the file.
    let mut store = NameBindings::open(&path).unwrap();
    let names: Vec<String> = store
        .load_live(0, config.name_ttl)
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, vec!["alice"]);
}
