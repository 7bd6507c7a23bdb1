//! What live presence costs the directory server at scale: 10,000
//! connected peers, 100 joins and leaves a second, with every peer
//! subscribed and with none; the registry driven in-process through real
//! Noise sessions (joins include the server's half of each handshake).
//!
//! Run with `cargo bench -p natter-core --bench presence`; the figures are
//! in docs/BENCH-CORE.md and issue 12's closing note.

use criterion::measurement::{Measurement, WallTime};
use natter_core::rate::RateLimit;
use natter_core::registry::client::InProcessClient;
use natter_core::registry::RegistryConfig;
use natter_core::{Identity, LinkId, Now, Registry, RegistryInput, RegistryOutput};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// The presence flush interval (the registry's default).
const INTERVAL: Duration = Duration::from_millis(250);

/// Benches measure wall time, which natter-core itself must never read:
/// they take it from criterion's own clock.
fn wall_clock() -> std::time::Instant {
    WallTime.start()
}

const LOAD_SUBSCRIBERS: u32 = 10_000;
/// Joins plus leaves per simulated second.
const LOAD_CHURN: u32 = 100;
const LOAD_SECONDS: u32 = 10;

/// What [`churn`] measured.
struct Load {
    /// CPU seconds of the first flush, after every peer came at once.
    burst: f64,
    /// CPU seconds per second of churn.
    cpu: f64,
    /// Frames sent to each connected peer per second.
    frames: f64,
    /// Bytes (ciphertext) sent to each connected peer per second.
    bytes: f64,
}

/// The registry under [`LOAD_CHURN`] with [`LOAD_SUBSCRIBERS`] connected
/// peers, all subscribed or none.
fn churn(subscribe: bool) -> Load {
    let mut now = Now::at_unix(1_764_068_934);
    // The flood protections (issue 11) are not what is measured: every
    // peer here arrives through one in-process driver at once.
    let config = RegistryConfig {
        max_peers: 100_000,
        max_connections: 1_000_000,
        handshakes_total: RateLimit {
            burst: 1_000_000,
            per_second: 1_000_000,
        },
        ..RegistryConfig::default()
    };
    let mut registry = Registry::new(config, now);
    let addr = |i: u32| {
        let [_, b, c, d] = (0x0a00_0000u32 + i).to_be_bytes();
        SocketAddr::from(([10, b, c, d], 40_000))
    };
    let identity = |i: u32| {
        Identity::from_seed(&natter_core::identity::derive_seed(
            &[3; 32],
            b"load",
            i.into(),
        ))
    };
    let mut seed = 0u64;
    let mut connect = |registry: &mut Registry, now: Now, i: u32, name: String| {
        seed += 1;
        let seed = natter_core::identity::derive_seed(&[4; 32], b"load seed", seed);
        let link = LinkId(u64::from(i) + 1);
        let (mut client, others) =
            InProcessClient::connect(registry, now, link, addr(i), &identity(i), seed);
        assert!(others.is_empty(), "{others:?}");
        let mut frames =
            format!("{{\"type\":\"hello\",\"version\":2}}\n{{\"type\":\"register\",\"name\":\"{name}\",\"port\":4000}}\n");
        if subscribe {
            frames.push_str("{\"type\":\"subscribe\"}\n");
        }
        client.send(frames.as_bytes()).unwrap();
        client
    };
    // Every output handled as a driver would: probes answered at once,
    // bytes for subscribers counted (not read), others read.
    fn drain(
        registry: &mut Registry,
        now: Now,
        churners: &mut BTreeMap<LinkId, InProcessClient>,
        sent: &mut (u64, u64),
    ) {
        while let Some(out) = registry.poll_output() {
            match &out {
                RegistryOutput::Probe { link, .. } => {
                    let input = RegistryInput::Probed {
                        link: *link,
                        reachable: true,
                    };
                    registry.handle_input(now, input);
                }
                RegistryOutput::Send { link, bytes } if link.0 <= u64::from(LOAD_SUBSCRIBERS) => {
                    sent.0 += 1;
                    sent.1 += bytes.len() as u64;
                }
                _ => {
                    if let RegistryOutput::Send { link, .. } | RegistryOutput::Close { link } = &out
                    {
                        if let Some(client) = churners.get_mut(link) {
                            client.take(&out);
                        }
                    }
                }
            }
        }
    }
    let mut churners = BTreeMap::new();
    let mut sent = (0, 0);
    for i in 1..=LOAD_SUBSCRIBERS {
        let mut client = connect(&mut registry, now, i, format!("s{i}"));
        let bytes = client.outgoing().unwrap();
        let link = client.link();
        registry.handle_input(now, RegistryInput::Bytes { link, bytes });
        drain(&mut registry, now, &mut churners, &mut sent);
    }
    assert_eq!(registry.registered(), LOAD_SUBSCRIBERS as usize);
    // Half the churners are online at the start, so joins and leaves
    // alternate from the first event.
    let pool = LOAD_CHURN * LOAD_SECONDS;
    let first = LOAD_SUBSCRIBERS + 1;
    for i in first..first + pool / 2 {
        let client = connect(&mut registry, now, i, format!("c{i}"));
        churners.insert(LinkId(u64::from(i) + 1), client);
    }
    for client in churners.values_mut() {
        let bytes = client.outgoing().unwrap();
        let link = client.link();
        registry.handle_input(now, RegistryInput::Bytes { link, bytes });
    }
    let mut sent = (0, 0);
    drain(&mut registry, now, &mut churners, &mut sent);
    // All of them came within one interval (as after a server restart):
    // the first flush tells each to list again.
    now = now.advanced(INTERVAL);
    let start = wall_clock();
    registry.handle_timeout(now);
    drain(&mut registry, now, &mut churners, &mut sent);
    let burst = start.elapsed().as_secs_f64();
    let mut online: Vec<LinkId> = churners.keys().copied().collect();
    let mut next = first + pool / 2;
    let step = Duration::from_secs(1) / LOAD_CHURN;
    let mut sent = (0, 0);
    let start = wall_clock();
    for event in 0..LOAD_CHURN * LOAD_SECONDS {
        now = now.advanced(step);
        if event % 2 == 0 {
            let mut client = connect(&mut registry, now, next, format!("c{next}"));
            let bytes = client.outgoing().unwrap();
            let link = client.link();
            churners.insert(link, client);
            online.push(link);
            next += 1;
            registry.handle_input(now, RegistryInput::Bytes { link, bytes });
        } else {
            let link = online.remove(0);
            let client = churners.get_mut(&link).unwrap();
            client.send(b"{\"type\":\"bye\"}\n").unwrap();
            let bytes = client.outgoing().unwrap();
            registry.handle_input(now, RegistryInput::Bytes { link, bytes });
        }
        if registry.poll_timeout().is_some_and(|at| at <= now.mono) {
            registry.handle_timeout(now);
        }
        drain(&mut registry, now, &mut churners, &mut sent);
    }
    let cpu = start.elapsed().as_secs_f64() / f64::from(LOAD_SECONDS);
    let per_peer_second = f64::from(LOAD_SUBSCRIBERS) * f64::from(LOAD_SECONDS);
    Load {
        burst,
        cpu,
        frames: sent.0 as f64 / per_peer_second,
        bytes: sent.1 as f64 / per_peer_second,
    }
}

fn main() {
    println!(
        "{LOAD_SUBSCRIBERS} peers, {LOAD_CHURN} joins+leaves/s over {LOAD_SECONDS} s (joins include the server's half of each Noise handshake):"
    );
    for (what, subscribe) in [("none subscribed", false), ("all subscribed", true)] {
        let Load {
            burst,
            cpu,
            frames,
            bytes,
        } = churn(subscribe);
        println!(
            "  {what:15}: {:6.1} ms CPU per second of churn; per peer per second {frames:.2} frames, {bytes:.0} bytes; first flush after all came at once {:.1} ms",
            cpu * 1000.0,
            burst * 1000.0
        );
        assert!(frames <= 4.0 + 0.1, "at most one frame per 250 ms");
        assert!(cpu < 1.0, "under one core");
    }
}
