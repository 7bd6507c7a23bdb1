//! The server driver with a store of name bindings on disk: what the store
//! holds at start binds names to keys, what expired is purged, a
//! registration binds its name to the key its client proved, and the
//! bindings outlive the server process. The clients prove their keys with
//! the server link's Noise handshake (`support::register`).

mod support;

use natter_core::registry::StoreOp;
use natter_core::{Identity, RegistryConfig};
use natter_net_real::{run_server, BindingsError, Embedded, NameBindings, Net, TokioNet};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::time::UNIX_EPOCH;
use support::{identity, HANG_GUARD};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server on a loopback port whose bindings live in the store at `path`.
struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), BindingsError>>,
}

impl Server {
    async fn start(path: &Path, config: &RegistryConfig) -> Self {
        let store = NameBindings::open(path).unwrap();
        let listener = TokioNet.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run_server(
            TokioNet,
            listener,
            config.clone(),
            Embedded::from(store),
            None,
            async {
                let _ = stopped.await;
            },
        ));
        Self { addr, stop, task }
    }

    /// Registers `name` as `who` at `port` from a new connection, which is
    /// closed at once; returns the answer.
    async fn register(&self, who: &Identity, name: &str, port: u16) -> Value {
        let stream = TcpStream::connect(self.addr).await.unwrap();
        support::register(stream, who, name, port).await.0
    }

    /// Stops the server and waits until it has let go of the store.
    async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(HANG_GUARD, self.task)
            .await
            .expect("the server stops")
            .unwrap()
            .unwrap();
    }
}

/// Asserts that `answer` refuses a name owned by another key.
fn assert_owned_by_another_key(answer: &Value) {
    assert_eq!(answer["code"], "name_taken", "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(message.contains("owned by another key"), "{message}");
}

/// Every binding in the store at `path`, expired or not, by name.
fn stored(path: &Path, config: &RegistryConfig) -> Vec<(String, [u8; 32])> {
    let mut store = NameBindings::open(path).unwrap();
    let bindings = store.load_live(0, config.name_ttl).unwrap();
    bindings.into_iter().map(|b| (b.name, b.key)).collect()
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
    let (alice, mallory) = (identity("alice"), identity("mallory"));
    // What an earlier run of the server left.
    let mut store = NameBindings::open(&path).unwrap();
    store
        .apply(&[
            StoreOp::Bind {
                name: "alice".into(),
                key: *alice.public().as_bytes(),
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

    let server = Server::start(&path, &config).await;
    assert_owned_by_another_key(&server.register(&mallory, "Alice", 4000).await);
    let answer = server.register(&alice, "alice", 4001).await;
    assert_eq!(answer["type"], "registered", "its owner's key: {answer}");
    let answer = server.register(&mallory, "gone", 4002).await;
    assert_eq!(
        answer["type"], "registered",
        "an expired binding frees the name: {answer}"
    );
    server.stop().await;

    // The server let go of the store; the expired binding left the file
    // and the name is mallory's now.
    assert_eq!(
        stored(&path, &config),
        [
            ("alice".to_string(), *alice.public().as_bytes()),
            ("gone".to_string(), *mallory.public().as_bytes()),
        ]
    );
}

#[tokio::test]
async fn a_name_registered_before_a_restart_stays_its_keys_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server/names.sqlite");
    let config = RegistryConfig::default();
    let (alice, mallory) = (identity("alice"), identity("mallory"));

    let server = Server::start(&path, &config).await;
    let answer = server.register(&alice, "alice", 4000).await;
    assert_eq!(answer["type"], "registered", "{answer}");
    server.stop().await;

    let server = Server::start(&path, &config).await;
    assert_owned_by_another_key(&server.register(&mallory, "alice", 4001).await);
    let answer = server.register(&alice, "alice", 4000).await;
    assert_eq!(answer["type"], "registered", "its owner's key: {answer}");
    server.stop().await;
}
