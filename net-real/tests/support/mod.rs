//! A hand-written client of the server link, shared by these tests: it
//! completes the Noise handshake a client in another language must
//! (docs/PROTOCOL.md) through [`SecureStream`], then registers, and gives
//! the test the encrypted stream to go on with (pings, a list, silence).

use natter_core::identity::{derive_seed, Identity, KEY_LEN};
use natter_core::protocol::{ClientMsg, Versions};
use natter_core::{encode, LinkKind};
use natter_net_real::SecureStream;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// Only reached when something is broken.
pub const HANG_GUARD: Duration = Duration::from_secs(20);

/// The key of a client called `name`: the same in every run, another for
/// every name.
pub fn identity(name: &str) -> Identity {
    Identity::from_seed(&derive_seed(&[0; KEY_LEN], name.as_bytes(), 0))
}

/// A fresh ephemeral seed for each connection of this test process, so
/// no two sessions share an ephemeral key (see `natter_core::LinkSeeds`).
fn next_seed() -> [u8; KEY_LEN] {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    derive_seed(
        &[0; KEY_LEN],
        b"test client link",
        NEXT.fetch_add(1, Ordering::Relaxed),
    )
}

/// Over `stream`, a fresh connection to the server: the handshake as
/// `identity`, then `hello` and `register` for `name` at `port`. Returns
/// the answer to `register` (`registered` or an `error`) and the stream.
pub async fn register<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    identity: &Identity,
    name: &str,
    port: u16,
) -> (Value, SecureStream<S>) {
    let exchange = async {
        let mut stream = SecureStream::connect(stream, identity, LinkKind::Server, next_seed())
            .await
            .expect("the server's handshake");
        let mut bytes = encode(&ClientMsg::Hello {
            versions: Versions::ours(),
        });
        bytes.extend(encode(&ClientMsg::Register {
            name: name.to_string(),
            port,
        }));
        stream.send(&bytes).await.unwrap();
        loop {
            let line = stream.recv_line().await.unwrap().expect("closed");
            let frame: Value = serde_json::from_str(&line).unwrap();
            if frame["type"] != "hello" {
                return (frame, stream);
            }
        }
    };
    tokio::time::timeout(HANG_GUARD, exchange)
        .await
        .expect("an answer to register")
}
