//! Several servers (SPEC "Several servers", issue 14 item 2), peer side:
//! a peer given two server addresses registers with the first, moves to
//! the second at once when the first crashes, and its chat goes on. The
//! two servers are independent (each its own registry, as two `natter
//! server`s without a shared store): the second learns of the peers only
//! when they register there.

use crate::{chat, observed, registered, say, LIMIT};
use natter_core::{Event, Identity, PeerStatus, RegistryConfig};
use natter_net_sim::scenario::{Scenario, LATENCY, TICK};
use std::time::Duration;

/// How long after the first server crashed each peer is registered with
/// the second: seven one-way trips of [`LATENCY`] and a tick. The crash's
/// EOF reaches the peer (1); the peer connects to the second server at
/// once, no backoff (1: turmoil answers a SYN without a trip back); the
/// Noise handshake's messages 1 and 2 (2), message 3 with hello and
/// register riding along (1); the server's probe of the peer's listening
/// port (1: a connect); `registered` (1).
pub const FAILOVER: Duration = Duration::from_millis(7 * 5 + 1);

/// alice and bob, given both servers, chat; the first server crashes.
/// Both are registered with the second within [`FAILOVER`] (exactly: no
/// backoff before trying another address), the chat goes on, and the
/// second server lists them both as chatting.
pub fn failover(seed: u64) -> String {
    assert_eq!(
        FAILOVER,
        7 * LATENCY + TICK,
        "FAILOVER's derivation assumes the scenario's latency and tick"
    );
    let mut s = Scenario::new(seed);
    s.start_server(
        "server2",
        RegistryConfig {
            identity: Identity::from_seed(&[0x22; 32]),
            ..RegistryConfig::default()
        },
    );
    let first = s.server_addr("server");
    let second = s.server_addr("server2");
    for name in ["alice", "bob"] {
        s.start_peer_with(name, |c| c.servers = vec![first, second]);
    }
    registered(&mut s, &["alice", "bob"]);
    chat(&mut s, "alice", "bob");
    say(&mut s, "alice", "hello over server one");

    s.sim.crash("server");
    let crashed_at = s.elapsed();
    for name in ["alice", "bob"] {
        s.wait_for(name, LIMIT, |e| *e == Event::ServerLost);
        let (at, again) = s.wait_for(name, LIMIT, |e| matches!(e, Event::Reregistered { .. }));
        let Event::Reregistered {
            server, new_server, ..
        } = again
        else {
            unreachable!()
        };
        assert_eq!((server, new_server), (second, true), "{name}");
        assert_eq!(at - crashed_at, FAILOVER, "{name}");
    }
    say(&mut s, "alice", "server one is gone");
    say(&mut s, "bob", "server two has us");
    s.type_line("alice", "/list");
    let (_, list) = s.wait_for("alice", LIMIT, |e| matches!(e, Event::Peers { .. }));
    let Event::Peers { peers } = list else {
        unreachable!()
    };
    assert_eq!(
        peers
            .iter()
            .map(|p| (p.name.as_str(), p.status))
            .collect::<Vec<_>>(),
        [("bob", PeerStatus::Chatting)]
    );
    s.run_for(Duration::from_millis(100));
    format!(
        "{}\n### server2 log\n{}",
        observed(&s, &["alice", "bob"]),
        s.server_log_of("server2")
    )
}
