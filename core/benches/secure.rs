//! Cost of an encrypted link (core/src/secure.rs): one complete XX
//! handshake (both sides, three messages, in memory), the seal and open of a
//! 100-byte chat message, and of a 64 KiB write (throughput).
//!
//! Run with `cargo bench -p natter-core --bench secure`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use natter_core::identity::Identity;
use natter_core::secure::{LinkKind, SecureLink};
use std::hint::black_box;
use std::time::Duration;

fn handshake(alice: &Identity, bob: &Identity) -> (SecureLink, SecureLink) {
    let mut a = SecureLink::initiator(alice, LinkKind::Peer, [10; 32]);
    let mut b = SecureLink::responder(bob, LinkKind::Peer, [20; 32]);
    b.push(&a.poll_transmit().unwrap()).unwrap();
    a.push(&b.poll_transmit().unwrap()).unwrap();
    b.push(&a.poll_transmit().unwrap()).unwrap();
    assert!(a.is_established() && b.is_established());
    (a, b)
}

fn secure(c: &mut Criterion) {
    let alice = Identity::from_seed(&[1; 32]);
    let bob = Identity::from_seed(&[2; 32]);
    c.bench_function("xx_handshake_both_sides", |bench| {
        bench.iter(|| handshake(black_box(&alice), black_box(&bob)))
    });

    for size in [100usize, 64 * 1024] {
        let (mut a, mut b) = handshake(&alice, &bob);
        let text = vec![b'x'; size];
        let mut group = c.benchmark_group("seal_and_open");
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(format!("{size}_bytes"), |bench| {
            bench.iter(|| {
                a.send(black_box(&text)).unwrap();
                b.push(&a.poll_transmit().unwrap()).unwrap();
                b.poll_plaintext().unwrap()
            })
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = secure
}
criterion_main!(benches);
