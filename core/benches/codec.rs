//! Frame codec cost: ns per message to encode and to decode the frames a
//! natter link carries most: a 100-byte chat `msg`, its `ack`, and one
//! 256-peer `peers` chunk of a list answer.
//!
//! Decoding is measured two ways: the whole stream pushed at once (best
//! case: one scan per line) and the same stream pushed in 64-byte chunks,
//! draining frames after every push (worst realistic case: a slow link
//! whose reads return a few bytes at a time).
//!
//! Run with `cargo bench -p natter-core --bench codec`; results and their
//! meaning are in `docs/BENCH-CORE.md`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use natter_core::codec::{encode, FrameDecoder};
use natter_core::protocol::{PeerInfo, PeerMsg, PeerStatus, ServerMsg, LIST_CHUNK, MAX_FRAME};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Frames per decoded stream: enough that per-stream setup is noise.
const STREAM_FRAMES: usize = 256;
/// Read size of the chunked decode.
const SMALL_CHUNK: usize = 64;

fn chat_msg(n: u64) -> PeerMsg {
    // 100 bytes of text, with a few non-ASCII characters as people type.
    let text = "héllo wörld, this is a typical chat line of about a hundred bytes — nothing special in it! ok";
    let mut text: String = text.chars().take(90).collect();
    while text.len() < 100 {
        text.push('.');
    }
    assert_eq!(text.len(), 100, "the msg text is exactly 100 bytes");
    PeerMsg::Msg {
        n,
        text,
        at: "2026-11-25T11:08:54.123Z".into(),
    }
}

fn peers_chunk() -> ServerMsg {
    let peers = (0..LIST_CHUNK as u32)
        .map(|i| PeerInfo {
            name: format!("peer-{i:06}"),
            addr: SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(127, 0, (i >> 8) as u8, i as u8)),
                4000 + i as u16,
            ),
            status: if i % 3 == 0 {
                PeerStatus::Chatting
            } else {
                PeerStatus::Available
            },
            reachable: i % 5 != 0,
            key: Some(natter_core::PublicKey::from_bytes([i as u8; 32])),
        })
        .collect();
    ServerMsg::Peers {
        id: None,
        peers,
        more: true,
    }
}

fn bench_encode<T: Serialize>(c: &mut Criterion, kind: &str, frame: &T) {
    let mut group = c.benchmark_group("codec/encode");
    let len = encode(frame).len();
    group.throughput(Throughput::Elements(1));
    group.bench_function(format!("{kind} ({len} B)"), |b| {
        b.iter(|| encode(black_box(frame)))
    });
    group.finish();
}

fn bench_decode<T: DeserializeOwned>(c: &mut Criterion, kind: &str, stream: &[u8], frames: usize) {
    let mut group = c.benchmark_group("codec/decode");
    group.throughput(Throughput::Elements(frames as u64));
    group.bench_function(format!("{kind} whole stream"), |b| {
        b.iter_batched_ref(
            || FrameDecoder::<T>::new(MAX_FRAME),
            |decoder| {
                decoder.push(black_box(stream));
                let mut got = 0;
                while let Some(frame) = decoder.next_frame() {
                    black_box(frame.expect("bench frames are valid"));
                    got += 1;
                }
                assert_eq!(got, frames);
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function(format!("{kind} {SMALL_CHUNK}-byte chunks"), |b| {
        b.iter_batched_ref(
            || FrameDecoder::<T>::new(MAX_FRAME),
            |decoder| {
                let mut got = 0;
                for chunk in black_box(stream).chunks(SMALL_CHUNK) {
                    decoder.push(chunk);
                    while let Some(frame) = decoder.next_frame() {
                        black_box(frame.expect("bench frames are valid"));
                        got += 1;
                    }
                }
                assert_eq!(got, frames);
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn stream_of<T: Serialize>(frames: impl Iterator<Item = T>) -> Vec<u8> {
    frames.flat_map(|f| encode(&f)).collect()
}

fn codec(c: &mut Criterion) {
    let peers = peers_chunk();
    bench_encode(c, "msg", &chat_msg(1_234));
    bench_encode(c, "ack", &PeerMsg::Ack { n: 1_234 });
    bench_encode(c, "peers", &peers);

    let msgs = stream_of((1..=STREAM_FRAMES as u64).map(chat_msg));
    bench_decode::<PeerMsg>(c, "msg", &msgs, STREAM_FRAMES);
    let acks = stream_of((1..=STREAM_FRAMES as u64).map(|n| PeerMsg::Ack { n }));
    bench_decode::<PeerMsg>(c, "ack", &acks, STREAM_FRAMES);
    // A 10,000-peer list is 40 chunks; 16 are plenty for a stable figure.
    let lists = stream_of(std::iter::repeat_n(peers, 16));
    bench_decode::<ServerMsg>(c, "peers", &lists, 16);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = codec
}
criterion_main!(benches);
