//! How far the directory server's design goes, without sockets: a
//! [`Registry`] holding 10,000, 100,000 and 1,000,000 registrations.
//!
//! Every operation goes through the same path a `natter server` uses: wire
//! bytes (sealed in each connection's Noise session) into `handle_input`,
//! then `poll_output` drained until `None` (sealed replies and log entries
//! are built and dropped, as the driver would after writing them). Per
//! size it measures
//!
//! - `register`: a connection opens, completes its Noise handshake (the
//!   client's half is timed too) and sends `hello` + `register` in one
//!   read (as a peer does), i.e. one more registration in a full registry;
//! - `status`: a registered peer flips between available and chatting;
//! - `lookup`: a registered peer looks up another by name;
//! - `list`: a registered peer asks for the full list, all chunks drained;
//!
//! and, once per size, the memory the registrations take: live heap bytes
//! counted by this binary's global allocator and the growth of the process
//! RSS while building the registry in a fresh child process, printed as
//! bytes per entry.
//!
//! Run with `cargo bench -p natter-core --bench registry`; results and their
//! meaning are in `docs/BENCH-CORE.md`.

use criterion::measurement::{Measurement, WallTime};
use criterion::{criterion_group, BenchmarkId, Criterion, SamplingMode};
use natter_core::codec::encode;
use natter_core::identity::{derive_seed, Identity};
use natter_core::protocol::{ClientMsg, PeerStatus, Versions};
use natter_core::registry::client::InProcessClient;
use natter_core::registry::{RegistryConfig, RegistryInput, RegistryOutput};
use natter_core::{LinkId, Now, Registry};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};
use std::time::Duration;

const SIZES: [usize; 3] = [10_000, 100_000, 1_000_000];
/// Distinct peers the per-operation benches cycle through, spread over the
/// whole registry so the figures include cache misses, not one hot entry.
const SAMPLES: usize = 4_096;

// ---- memory accounting ----

/// Counts live heap bytes and blocks, but only while `COUNTING` is set, so
/// the timed benches pay one relaxed load per allocation and nothing more.
struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static LIVE_BLOCKS: AtomicIsize = AtomicIsize::new(0);
static PEAK_BYTES: AtomicIsize = AtomicIsize::new(0);

fn count_alloc(size: usize) {
    if COUNTING.load(Relaxed) {
        let live = LIVE_BYTES.fetch_add(size as isize, Relaxed) + size as isize;
        LIVE_BLOCKS.fetch_add(1, Relaxed);
        PEAK_BYTES.fetch_max(live, Relaxed);
    }
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_alloc(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_alloc(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Relaxed) {
            LIVE_BYTES.fetch_sub(layout.size() as isize, Relaxed);
            LIVE_BLOCKS.fetch_sub(1, Relaxed);
        }
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            let grown = new_size as isize - layout.size() as isize;
            let live = LIVE_BYTES.fetch_add(grown, Relaxed) + grown;
            PEAK_BYTES.fetch_max(live, Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Resident set size of this process, from `/proc/self/status` (Linux).
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

// ---- a registry full of peers ----

fn now() -> Now {
    Now::at_unix(1_764_068_934)
}

/// A bijection on `u32` that scatters consecutive numbers, so names and
/// addresses arrive in random order (as they would on a real server) and
/// the B-trees are not filled in their cheapest, sequential way.
fn scramble(i: u32) -> u32 {
    let mut x = i.wrapping_mul(0x9E37_79B1);
    x ^= x >> 15;
    x = x.wrapping_mul(0x85EB_CA77);
    x ^ (x >> 13)
}

/// Peer number `i`: its name, and the socket address its connection shows
/// (the registry pairs that IP with the registered port). All addresses are
/// plain data in loopback space; nothing is ever sent anywhere.
fn peer(i: u64) -> (String, SocketAddr, u16) {
    let s = scramble(i as u32);
    let [a, b, c, d] = s.to_be_bytes();
    let ip = IpAddr::V4(Ipv4Addr::new(127, b, c, d));
    (
        format!("p{s:08x}"),
        SocketAddr::new(ip, 50_000),
        1_024 + u16::from(a),
    )
}

/// The registry, the next unused peer number (= link id), and the client
/// sessions of the sampled peers (the only ones that send after
/// registering; the others' are dropped, so the memory figures count the
/// registry alone).
struct Bench {
    registry: Registry,
    size: usize,
    next: u64,
    /// The key every bench client proves (one key may own many names).
    identity: Identity,
    clients: BTreeMap<u64, InProcessClient>,
}

impl Bench {
    fn build(size: usize) -> Self {
        // Every peer connects at the same instant, from few addresses: the
        // shares and budgets of the server would refuse most of them, and
        // the bench measures the work, not the limits.
        let unlimited = natter_core::rate::RateLimit {
            burst: u32::MAX,
            per_second: u32::MAX,
        };
        let config = RegistryConfig {
            // Room for the registrations the `register` bench adds on top.
            max_peers: usize::MAX,
            max_connections: usize::MAX,
            max_connections_per_ip: usize::MAX,
            max_registrations_per_source: usize::MAX,
            handshakes_per_source: unlimited,
            handshakes_total: unlimited,
            requests: unlimited,
            source_requests: unlimited,
            ..RegistryConfig::default()
        };
        let mut bench = Self {
            registry: Registry::new(config, now()),
            size,
            next: 0,
            identity: Identity::from_seed(&[0xbe; 32]),
            clients: BTreeMap::new(),
        };
        let samples: std::collections::BTreeSet<u64> = bench.sample_peers().into_iter().collect();
        for i in 0..size as u64 {
            bench.register_next(samples.contains(&i));
        }
        assert_eq!(bench.registry.registered(), size, "every peer registered");
        bench
    }

    /// Opens a connection for the next peer number, completes its
    /// handshake and registers it, the way a peer does: `hello` and
    /// `register` in one write. Its session is kept if `keep`.
    fn register_next(&mut self, keep: bool) -> LinkId {
        let i = self.next;
        self.next += 1;
        let (name, addr, port) = peer(i);
        let link = LinkId(i);
        let seed = derive_seed(&[0xbf; 32], b"bench client", i);
        let (mut client, others) =
            InProcessClient::connect(&mut self.registry, now(), link, addr, &self.identity, seed);
        black_box(others);
        let mut bytes = encode(&ClientMsg::Hello {
            versions: Versions::ours(),
        });
        bytes.extend(encode(&ClientMsg::Register { name, port }));
        client.send(&bytes).expect("the session is up");
        let sealed = client.outgoing().expect("sealed");
        self.registry.handle_input(
            now(),
            RegistryInput::Bytes {
                link,
                bytes: sealed,
            },
        );
        self.drain();
        if keep {
            self.clients.insert(i, client);
        }
        link
    }

    /// Seals one read's worth of frames from sampled peer `link`, feeds
    /// it and drains the outputs.
    fn feed(&mut self, link: LinkId, frames: Vec<u8>) -> usize {
        let client = self.clients.get_mut(&link.0).expect("a sampled peer");
        client.send(&frames).expect("the session is up");
        let bytes = client.outgoing().expect("sealed");
        self.registry
            .handle_input(now(), RegistryInput::Bytes { link, bytes });
        self.drain()
    }

    /// Drains `poll_output`, returning how many outputs there were. Each
    /// reachability probe is answered at once, as the driver would when
    /// the peer listens.
    fn drain(&mut self) -> usize {
        let mut n = 0;
        while let Some(out) = self.registry.poll_output() {
            if let RegistryOutput::Probe { link, .. } = out {
                let answer = RegistryInput::Probed {
                    link,
                    reachable: true,
                };
                self.registry.handle_input(now(), answer);
            }
            black_box(out);
            n += 1;
        }
        n
    }

    /// `SAMPLES` distinct registered peers (numbers = link ids), evenly
    /// spread over the registry and visited in scattered order.
    fn sample_peers(&self) -> Vec<u64> {
        let size = self.size as u64;
        let mut samples: Vec<u64> = (0..SAMPLES as u64)
            .map(|k| k * size / SAMPLES as u64)
            .collect();
        samples.sort_by_key(|&i| scramble(i as u32));
        samples
    }
}

/// Issue 13's core-level goal: heap per registration at this size.
const GOAL_SIZE: usize = 1_000_000;
const GOAL_BYTES_PER_ENTRY: f64 = 400.0;

/// Set in the environment of the child process that measures memory.
const MEMORY_CHILD: &str = "NATTER_BENCH_REGISTRY_MEMORY";

/// Prints what a registry of `size` costs in memory, measured in a fresh
/// child process (this binary again): RSS only ever grows in a process that
/// has already built and dropped other registries, so measuring here would
/// under-count.
fn report_memory(size: usize) {
    let exe = std::env::current_exe().expect("the bench binary knows its path");
    let out = std::process::Command::new(exe)
        .env(MEMORY_CHILD, size.to_string())
        .output()
        .expect("the bench binary runs itself");
    assert!(out.status.success(), "memory child failed: {out:?}");
    print!("{}", String::from_utf8_lossy(&out.stdout));
}

/// The child's side of [`report_memory`]: builds the registry, counting.
fn measure_memory(size: usize) {
    let rss_before = rss_bytes();
    LIVE_BYTES.store(0, Relaxed);
    LIVE_BLOCKS.store(0, Relaxed);
    COUNTING.store(true, Relaxed);
    let started = wall_clock();
    let mut bench = Bench::build(size);
    let took = started.elapsed();
    COUNTING.store(false, Relaxed);
    let heap = LIVE_BYTES.load(Relaxed);
    let blocks = LIVE_BLOCKS.load(Relaxed);
    let rss_after = rss_bytes();
    // A list answer is built whole before the driver sees any of it: how
    // much memory does one request hold at its peak?
    PEAK_BYTES.store(heap, Relaxed);
    COUNTING.store(true, Relaxed);
    bench.feed(LinkId(0), encode(&ClientMsg::List { id: None }));
    COUNTING.store(false, Relaxed);
    let list_peak = PEAK_BYTES.load(Relaxed) - heap;
    let per = |bytes: f64| bytes / size as f64;
    let mib = |bytes: f64| bytes / (1024.0 * 1024.0);
    println!(
        "registry/memory/{size}: built in {:.2} s ({:.2} µs per registration); \
         live heap +{:.1} MiB = {:.0} B per entry in {:.1} allocations per entry",
        took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / size as f64,
        mib(heap as f64),
        per(heap as f64),
        blocks as f64 / size as f64,
    );
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        let grown = after.saturating_sub(before) as f64;
        println!(
            "registry/memory/{size}: RSS {:.1} MiB -> {:.1} MiB, +{:.1} MiB = {:.0} B per entry",
            mib(before as f64),
            mib(after as f64),
            mib(grown),
            per(grown),
        );
    }
    println!(
        "registry/memory/{size}: one full list holds up to +{:.1} MiB of heap at its peak",
        mib(list_peak as f64),
    );
    if size == GOAL_SIZE {
        let met = per(heap as f64) <= GOAL_BYTES_PER_ENTRY;
        println!(
            "registry/memory/{size}: goal (issue 13) ≤ {GOAL_BYTES_PER_ENTRY} B of heap per registration: {:.0} B, {}",
            per(heap as f64),
            if met { "met" } else { "NOT MET" },
        );
    }
    drop(bench);
}

/// Benches measure wall time, which natter-core itself must never read:
/// they take it from criterion's own clock.
fn wall_clock() -> std::time::Instant {
    WallTime.start()
}

// ---- benches ----

fn registry(c: &mut Criterion) {
    for size in SIZES {
        report_memory(size);
        let mut bench = Bench::build(size);
        let samples = bench.sample_peers();
        let mut group = c.benchmark_group("registry");
        group
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
            .sample_size(20);

        // One more registration, timed from `Opened` to the drained reply;
        // the connections are closed afterwards, untimed, so the registry
        // stays at `size` for the next bench.
        group.bench_function(BenchmarkId::new("register", size), |b| {
            b.iter_custom(|iters| {
                let first = bench.next;
                let started = wall_clock();
                for _ in 0..iters {
                    black_box(bench.register_next(false));
                }
                let took = started.elapsed();
                for i in first..bench.next {
                    bench
                        .registry
                        .handle_input(now(), RegistryInput::Closed { link: LinkId(i) });
                    bench.drain();
                }
                took
            })
        });
        assert_eq!(bench.registry.registered(), size);

        // Each sampled peer alternates available -> chatting -> available,
        // so every call is a real change (and logs it).
        let to_chatting = encode(&ClientMsg::Status {
            status: PeerStatus::Chatting,
        });
        let to_available = encode(&ClientMsg::Status {
            status: PeerStatus::Available,
        });
        let mut chatting = vec![false; samples.len()];
        let mut k = 0;
        group.bench_function(BenchmarkId::new("status", size), |b| {
            b.iter(|| {
                let slot = k % samples.len();
                k += 1;
                let bytes = if chatting[slot] {
                    to_available.clone()
                } else {
                    to_chatting.clone()
                };
                chatting[slot] = !chatting[slot];
                let outputs = bench.feed(LinkId(samples[slot]), bytes);
                debug_assert_eq!(outputs, 1, "one StatusChanged log");
            })
        });

        let lookups: Vec<Vec<u8>> = samples
            .iter()
            .map(|&i| {
                encode(&ClientMsg::Lookup {
                    id: None,
                    name: peer(i).0,
                })
            })
            .collect();
        let asker = LinkId(samples[0]);
        let mut k = 0;
        group.bench_function(BenchmarkId::new("lookup", size), |b| {
            b.iter(|| {
                let bytes = lookups[k % lookups.len()].clone();
                k += 1;
                bench.feed(asker, bytes)
            })
        });

        // A full list is O(size): ten lists, one per sample, are plenty
        // (about 1.3 µs per entry at a million, hence the measurement time).
        group
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_millis(100))
            .measurement_time(Duration::from_micros(2_000_000.max(15 * size as u64)));
        let list = encode(&ClientMsg::List { id: None });
        let chunks = (size - 1).div_ceil(natter_core::protocol::LIST_CHUNK);
        group.bench_function(BenchmarkId::new("list", size), |b| {
            b.iter(|| {
                let outputs = bench.feed(asker, list.clone());
                assert_eq!(outputs, chunks, "one Send per chunk");
            })
        });
        group.finish();
        drop(bench);
    }
}

criterion_group!(benches, registry);

/// `criterion_main!`, plus the memory child's entry point.
fn main() {
    if let Ok(size) = std::env::var(MEMORY_CHILD) {
        measure_memory(size.parse().expect("a registry size"));
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
