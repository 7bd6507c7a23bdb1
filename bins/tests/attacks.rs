//! The server's attack suite (issue 11): each attack that once took the
//! directory server down, run against a real `natter server` child process
//! on loopback, while an honest client registers again and again.
//!
//! Every test prints one line of figures (the server's VmRSS before,
//! at its peak and after the attack, and the honest client's registration
//! latencies) and asserts generous bounds: at most 64 MiB of RSS over the
//! baseline, every honest registration done within [`HONEST_BOUND`], and
//! memory back near the baseline once the attackers are gone.
//!
//! Loopback is exempt from the per-source shares by default (the users of
//! the same host), so the server runs with `--limit-loopback`, and each
//! attacker stands for other hosts by binding its sockets to another
//! loopback address (127.0.0.0/8 all reaches the server): 127.0.0.1 is the
//! honest client's, 127.1.x.y the attackers'.
//!
//! Sizes fit CI (each test under 20 s in debug); `NATTER_ATTACK_SECS`
//! (default 3) sets how long each attack lasts, for longer manual runs.
//! Loopback only, bounded in count and time, stops by itself.

#![cfg(target_os = "linux")]

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::attack::{
    attack_bin, attack_time, attacker_ip, connect_from, keep_alive, mib, next_port, one_at_a_time,
    register_from, rss_of, runtime, server_line_with, session_from, RssWatch, HONEST_IP, RSS_BOUND,
    SERVER_HELLO, STEP,
};
use tokio::time::Instant;

/// Longest an honest registration may take during an attack before the
/// test fails: generous (a debug build on 2 shared cores); the figures
/// printed are what to compare.
const HONEST_BOUND: Duration = Duration::from_secs(3);

/// How close to the baseline memory must come back once the attack ends
/// (the server hands freed memory back every 5 s).
const RSS_AFTER_BOUND: u64 = 16 << 20;

/// Kernel memory the server's sockets may hold during an attack: its
/// buffers per connection are bounded (`--send-buffer`,
/// `--receive-buffer`), not the attacker's to grow.
const KERNEL_BOUND: u64 = 64 << 20;

// ---- the server under attack ----

/// `natter server` as a child process, its log counted as it comes.
struct Target {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<Log>>,
    _data: tempfile::TempDir,
}

#[derive(Default)]
struct Log {
    lines: u64,
    /// Lines per `change` field (refused, registered, dropped, …).
    changes: BTreeMap<String, u64>,
    /// Every line's message, for failure messages and figures.
    messages: Vec<String>,
}

impl Target {
    fn start(extra: &[&str]) -> Target {
        Self::start_limited(extra, None)
    }

    /// With `nofile`, the server runs under that open-file limit (soft and
    /// hard), as on a system whose default is 1,024.
    fn start_limited(extra: &[&str], nofile: Option<u64>) -> Target {
        let data = tempfile::tempdir().expect("a data directory");
        let identity = support::server_identity();
        let mut command = Command::new(attack_bin());
        command
            .args(["server", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .arg("--data-dir")
            .arg(data.path())
            .arg("--identity")
            .arg(identity)
            .arg("--limit-loopback")
            .args(extra)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(limit) = nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe; nothing else runs
            // between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    let rlim = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rlim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = command.spawn().expect("start natter server");
        let stdout = child.stdout.take().expect("piped");
        let log = Arc::new(Mutex::new(Log::default()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(value) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let message = value["message"].as_str().unwrap_or_default().to_string();
                if message.starts_with("listening on") {
                    let _ = addr_tx.send(value["addr"].as_str().unwrap_or_default().to_string());
                }
                let mut log = sink.lock().unwrap();
                log.lines += 1;
                if let Some(change) = value["change"].as_str() {
                    *log.changes.entry(change.to_string()).or_default() += 1;
                }
                log.messages.push(message);
            }
        });
        let addr = addr_rx
            .recv_timeout(STEP)
            .expect("the listening line")
            .parse()
            .expect("a socket address");
        Target {
            child,
            addr,
            log,
            _data: data,
        }
    }

    fn rss(&self) -> u64 {
        rss_of(self.child.id())
    }

    /// Total CPU time the server has used (user + system).
    fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .expect("the server's /proc stat");
        // Fields after the command name (which is in parentheses).
        let rest = &stat[stat.rfind(')').expect("comm") + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        Duration::from_millis(ticks * 1000 / hz)
    }

    fn changes(&self, change: &str) -> u64 {
        self.log
            .lock()
            .unwrap()
            .changes
            .get(change)
            .copied()
            .unwrap_or(0)
    }

    fn messages_containing(&self, text: &str) -> Vec<String> {
        let log = self.log.lock().unwrap();
        log.messages
            .iter()
            .filter(|m| m.contains(text))
            .cloned()
            .collect()
    }

    fn lines(&self) -> u64 {
        self.log.lock().unwrap().lines
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kernel memory of the server's TCP sockets (every socket on its port,
/// the listener, its connections and those it closed that still hold
/// data): what `ss -m` says each holds received (`r`), queued to send
/// (`w`) and reserved ahead (`f`), summed; with the number of sockets and
/// the largest one. `None` where `ss` (iproute2) cannot be run.
///
/// The attackers' own sockets are not counted: a remote attacker pays for
/// those on its own host.
fn kernel_memory(port: u16) -> Option<SocketMemory> {
    let filter = format!("sport = :{port}");
    let out = Command::new("ss")
        .args(["-tmnH", "state", "all", &filter])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let mut memory = SocketMemory::default();
    for skmem in String::from_utf8_lossy(&out.stdout)
        .split("skmem:(")
        .skip(1)
    {
        let fields = skmem.split(')').next().unwrap_or_default();
        let mut held = 0;
        for field in fields.split(',') {
            let digits = field
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(field.len());
            let (key, value) = field.split_at(digits);
            if matches!(key, "r" | "w" | "f") {
                held += value.parse::<u64>().unwrap_or(0);
            }
        }
        memory.sockets += 1;
        memory.bytes += held;
        memory.largest = memory.largest.max(held);
    }
    Some(memory)
}

#[derive(Clone, Copy, Debug, Default)]
struct SocketMemory {
    sockets: u64,
    bytes: u64,
    largest: u64,
}

/// Samples [`kernel_memory`] of the server's sockets every second until
/// stopped; gives the sample with the most bytes. Not more often: each
/// sample runs `ss` over thousands of sockets, which at 10 a second took
/// enough of these two cores to double the honest client's latencies.
/// Buffers that a client does not read fill within the attack and stay
/// full until it ends, so a second is enough to see them.
struct KernelWatch {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<Option<SocketMemory>>,
}

impl KernelWatch {
    fn start(port: u16) -> KernelWatch {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let mut peak = kernel_memory(port)?;
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(Duration::from_secs(1))
            {
                let now = kernel_memory(port)?;
                if now.bytes > peak.bytes {
                    peak = now;
                }
            }
            Some(peak)
        });
        KernelWatch { stop, thread }
    }

    /// The peak, with a last sample taken now.
    fn peak(self, port: u16) -> Option<SocketMemory> {
        drop(self.stop);
        let peak = self.thread.join().ok().flatten()?;
        let last = kernel_memory(port)?;
        Some(if last.bytes > peak.bytes { last } else { peak })
    }
}

// ---- clients ----

/// Registers `count` peers from `sources` attacker addresses (counting
/// from `first_source`), kept alive: a directory of that size. Each tries
/// up to `tries` times: the server takes new connections at a bounded
/// rate, and a set-up wants them all.
async fn fill_directory(
    to: SocketAddr,
    count: u32,
    first_source: u32,
    sources: u32,
    prefix: &str,
    tries: u32,
) -> Vec<tokio::task::JoinHandle<()>> {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut alive = Vec::new();
    for i in 0..count {
        let ip = attacker_ip(first_source + i % sources);
        let name = format!("{prefix}{i:05}");
        tasks.spawn(async move {
            for _ in 0..tries {
                if let Some(registered) = register_from(ip, to, &name).await {
                    return Some(registered);
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            None
        });
        // A few at a time: the server takes handshakes at a bounded rate.
        while tasks.len() >= 32 {
            if let Some(Some((reader, writer))) =
                tasks.join_next().await.map(|d| d.expect("no panic"))
            {
                alive.push(keep_alive(reader, writer));
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        if let Some((reader, writer)) = done.expect("no panic") {
            alive.push(keep_alive(reader, writer));
        }
    }
    println!(
        "  {} of {count} registered ({prefix}…) in {:.1} s",
        alive.len(),
        started.elapsed().as_secs_f64()
    );
    alive
}

/// The honest client: registers again and again (a new session and name
/// each time, from 127.0.0.1) until `stop`, timing each registration from
/// the connect to `registered`.
struct Honest {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Result<Phases, &'static str>>>,
}

/// How long one honest registration took, step by step: where a slow one
/// lost its time (a connection the kernel did not take at once waits a
/// second for its SYN to be sent again; a busy server answers the
/// handshake or the registration late).
#[derive(Clone, Copy, Debug)]
struct Phases {
    /// From `connect` to the TCP connection being established.
    connect: Duration,
    /// The Noise handshake.
    handshake: Duration,
    /// From sending `hello` and `register` to `registered`.
    register: Duration,
}

impl Phases {
    fn total(&self) -> Duration {
        self.connect + self.handshake + self.register
    }
}

/// One honest registration of `name`, timed; if it failed, at which
/// step.
async fn register_timed(to: SocketAddr, name: &str) -> Result<Phases, &'static str> {
    let start = Instant::now();
    let stream = connect_from(HONEST_IP, to, None)
        .await
        .map_err(|_| "connect")?;
    let connect = start.elapsed();
    let identity = support::new_identity();
    let handshake = support::secure_client(stream, &identity);
    let session = match tokio::time::timeout(STEP, handshake).await {
        Ok(Ok(session)) => session,
        Ok(Err(_)) => return Err("handshake refused"),
        Err(_) => return Err("handshake timed out"),
    };
    let handshake = start.elapsed() - connect;
    let (mut reader, mut writer) = session.into_split();
    let register = format!(
        "{SERVER_HELLO}{{\"type\":\"register\",\"name\":\"{name}\",\"port\":{}}}\n",
        next_port()
    );
    writer
        .send(register.as_bytes())
        .await
        .map_err(|_| "register not sent")?;
    server_line_with(&mut reader, "\"registered\"")
        .await
        .ok_or("register answered with an error, or not in time")?;
    let register = start.elapsed() - connect - handshake;
    tokio::spawn(async move { writer.send(b"{\"type\":\"bye\"}\n").await });
    Ok(Phases {
        connect,
        handshake,
        register,
    })
}

impl Honest {
    fn start(to: SocketAddr) -> Honest {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        // A thread and runtime of its own: on the attackers' runtime,
        // its steps waited for their tasks (hundreds of client-side
        // handshakes at once), which is the test's own load, not the
        // server's.
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the honest client");
            runtime.block_on(async move {
                let mut took = Vec::new();
                let mut n = 0;
                while !flag.load(Ordering::Relaxed) {
                    n += 1;
                    took.push(register_timed(to, &format!("honest{n}")).await);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                took
            })
        });
        Honest { stop, thread }
    }

    async fn finish(self) -> Latencies {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread;
        let took = tokio::task::spawn_blocking(move || thread.join())
            .await
            .expect("joined")
            .expect("no panic");
        Latencies(took)
    }
}

struct Latencies(Vec<Result<Phases, &'static str>>);

impl Latencies {
    fn failed(&self) -> usize {
        self.0.iter().filter(|t| t.is_err()).count()
    }

    fn sorted(&self) -> Vec<Phases> {
        let mut ok: Vec<Phases> = self.0.iter().flatten().copied().collect();
        ok.sort_by_key(Phases::total);
        ok
    }

    fn max(&self) -> Duration {
        self.sorted().last().map(Phases::total).unwrap_or_default()
    }

    fn summary(&self) -> String {
        let ok = self.sorted();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let at = |q: f64| {
            ok.get(((ok.len() as f64 * q).ceil() as usize).saturating_sub(1))
                .map_or(0.0, |p| ms(p.total()))
        };
        let slowest = ok.last().map_or(String::new(), |p| {
            format!(
                " (connect {:.1} ms, handshake {:.1} ms, register {:.1} ms)",
                ms(p.connect),
                ms(p.handshake),
                ms(p.register)
            )
        });
        let mut failures: BTreeMap<&str, usize> = BTreeMap::new();
        for step in self.0.iter().filter_map(|t| t.err()) {
            *failures.entry(step).or_default() += 1;
        }
        let failed = if failures.is_empty() {
            String::new()
        } else {
            format!(" {failures:?}")
        };
        format!(
            "honest registrations {} ok, {} failed{failed}, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms{slowest}",
            ok.len(),
            self.failed(),
            at(0.5),
            at(0.99),
            at(1.0)
        )
    }

    fn assert_fine(&self, attack: &str) {
        assert!(!self.0.is_empty(), "{attack}: the honest client never ran");
        assert_eq!(self.failed(), 0, "{attack}: {}", self.summary());
        assert!(self.max() <= HONEST_BOUND, "{attack}: {}", self.summary());
    }
}

/// Runs `attack` against `target` while the honest client registers;
/// prints the figures and asserts the bounds. `baseline` is the server's
/// RSS before the attack (after any set-up).
async fn measure<F>(name: &str, target: &Target, attack: F) -> (u64, u64, u64, Latencies)
where
    F: std::future::Future<Output = ()>,
{
    let baseline = target.rss();
    let kernel_baseline = kernel_memory(target.addr.port());
    let cpu = target.cpu();
    let started = Instant::now();
    let watch = RssWatch::start(target.child.id());
    let kernel_watch = KernelWatch::start(target.addr.port());
    let honest = Honest::start(target.addr);
    attack.await;
    let latencies = honest.finish().await;
    let peak = watch.peak();
    let kernel_peak = kernel_watch.peak(target.addr.port());
    let busy = target.cpu() - cpu;
    let wall = started.elapsed();
    // Memory once the attackers are gone: given a few seconds to settle.
    let settle = Instant::now();
    let mut after = target.rss();
    while after > baseline + RSS_AFTER_BOUND / 2 && settle.elapsed() < Duration::from_secs(6) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = target.rss();
    }
    println!(
        "attack {name}: server RSS baseline {:.1} MiB, peak {:.1} MiB (+{:.1}), after {:.1} MiB; CPU {:.0}% of a core over {:.1} s; {}; {} log lines",
        mib(baseline),
        mib(peak),
        mib(peak.saturating_sub(baseline)),
        mib(after),
        busy.as_secs_f64() * 100.0 / wall.as_secs_f64(),
        wall.as_secs_f64(),
        latencies.summary(),
        target.lines(),
    );
    let kernel_after = kernel_memory(target.addr.port());
    match (kernel_baseline, kernel_peak, kernel_after) {
        (Some(base), Some(peak), Some(after)) => {
            println!(
                "  kernel memory of the server's sockets: baseline {:.1} MiB ({} sockets), peak {:.1} MiB ({} sockets, the largest {:.0} KiB), after {:.1} MiB ({} sockets)",
                mib(base.bytes),
                base.sockets,
                mib(peak.bytes),
                peak.sockets,
                peak.largest as f64 / 1024.0,
                mib(after.bytes),
                after.sockets,
            );
            assert!(
                peak.bytes <= base.bytes + KERNEL_BOUND,
                "{name}: the kernel held {:.1} MiB for the server's sockets",
                mib(peak.bytes)
            );
        }
        _ => println!("  kernel memory of the server's sockets: not measured (no `ss`)"),
    }
    assert!(
        peak <= baseline + RSS_BOUND,
        "{name}: RSS grew by {:.1} MiB",
        mib(peak - baseline)
    );
    if latencies.failed() > 0 {
        println!(
            "  the server about 127.0.0.1: {:#?}",
            target.messages_containing("127.0.0.1:")
        );
    }
    assert!(
        after <= baseline + RSS_AFTER_BOUND,
        "{name}: RSS {:.1} MiB after the attack, baseline {:.1} MiB",
        mib(after),
        mib(baseline)
    );
    latencies.assert_fine(name);
    (baseline, peak, after, latencies)
}

/// Runs `n` attacker loops (`body(i)`) until the attack time is over.
async fn for_attack_time<F, Fut>(n: u32, body: F)
where
    F: Fn(u32, Instant) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let until = Instant::now() + attack_time();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        tasks.spawn(body(i, until));
    }
    // Attackers that outlive the attack (a write blocked on a server that
    // does not read) are dropped with their sockets.
    let all = async { while tasks.join_next().await.is_some() {} };
    let _ = tokio::time::timeout_at(until + Duration::from_secs(2), all).await;
}

// ---- the attacks ----

/// 64 connections from one host register and send lookups of a
/// 65,000-character name without ever reading: each answer once echoed
/// the name, 256 of them queued per connection.
#[test]
fn lookups_of_huge_names_that_are_never_read() {
    let _one = one_at_a_time();
    let target = Target::start(&[]);
    runtime().block_on(async {
        let to = target.addr;
        let attack = for_attack_time(64, move |i, until| async move {
            let huge = format!(
                "{{\"type\":\"lookup\",\"id\":1,\"name\":\"{}\"}}\n",
                "x".repeat(65_000)
            );
            let mut n = 0;
            while Instant::now() < until {
                n += 1;
                let Some(session) = session_from(attacker_ip(0), to).await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let (_never_read, mut writer) = session.into_split();
                let port = next_port();
                let register = format!(
                    "{SERVER_HELLO}{{\"type\":\"register\",\"name\":\"echo{i}x{n}\",\"port\":{port}}}\n"
                );
                let _ = writer.send(register.as_bytes()).await;
                while Instant::now() < until {
                    if writer.send(huge.as_bytes()).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(150)).await;
                }
            }
        });
        measure("lookup echo", &target, attack).await;
    });
}

/// Registered clients ask for the whole list, six times, and never read.
#[test]
fn lists_that_are_never_read() {
    let _one = one_at_a_time();
    let target = Target::start(&[]);
    runtime().block_on(async {
        let to = target.addr;
        let _directory = fill_directory(to, 2_000, 0, 100, "dir", 5).await;
        let attack = async move {
            let mut readers = Vec::new();
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..200u32 {
                let ip = attacker_ip(200 + i / 10);
                tasks.spawn(async move {
                    let (reader, mut writer) =
                        register_from(ip, to, &format!("lazy{i:03}")).await?;
                    let lists = "{\"type\":\"list\"}\n".repeat(6);
                    let _ = writer.send(lists.as_bytes()).await;
                    Some((reader, writer))
                });
            }
            while let Some(done) = tasks.join_next().await {
                readers.push(done.expect("no panic"));
            }
            tokio::time::sleep(attack_time()).await;
            drop(readers);
        };
        measure("lists never read", &target, attack).await;
    });
}

/// Hosts connect, register, ask for six lists and reset the connection,
/// in a loop: handshakes, probes and lists, never read, as fast as the
/// server takes them.
#[test]
fn connect_register_list_reset_loops() {
    let _one = one_at_a_time();
    let target = Target::start(&[]);
    runtime().block_on(async {
        let to = target.addr;
        let _directory = fill_directory(to, 2_000, 0, 100, "dir", 5).await;
        let attack = for_attack_time(32, move |i, until| async move {
            let mut n = 0;
            while Instant::now() < until {
                n += 1;
                let Some(mut session) = session_from(attacker_ip(1_000 + i % 4), to).await else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let port = next_port();
                let frames = format!(
                    "{SERVER_HELLO}{{\"type\":\"register\",\"name\":\"churn{i}x{n}\",\"port\":{port}}}\n{}",
                    "{\"type\":\"list\"}\n".repeat(6)
                );
                let _ = session.send(frames.as_bytes()).await;
                // Dropped unread: a reset.
            }
        });
        measure("connect/register/list/reset", &target, attack).await;
    });
}

/// Registered clients each hold an unfinished line of almost 64 KiB and
/// trickle a byte now and then, to look alive.
#[test]
fn unfinished_lines_held_open() {
    let _one = one_at_a_time();
    let target = Target::start(&["--line-timeout", "2s"]);
    runtime().block_on(async {
        let to = target.addr;
        let attack = async move {
            let mut held = tokio::task::JoinSet::new();
            for i in 0..1_024u32 {
                let ip = attacker_ip(i / 32);
                held.spawn(async move {
                    let (reader, mut writer) =
                        register_from(ip, to, &format!("hold{i:04}")).await?;
                    let partial =
                        format!("{{\"type\":\"lookup\",\"name\":\"{}", "y".repeat(60_000));
                    writer.send(partial.as_bytes()).await.ok()?;
                    Some((reader, writer))
                });
            }
            let mut holders = Vec::new();
            while let Some(done) = held.join_next().await {
                if let Some(pair) = done.expect("no panic") {
                    holders.push(pair);
                }
            }
            println!("  {} connections hold a line", holders.len());
            let until = Instant::now() + attack_time();
            while Instant::now() < until {
                for (_, writer) in &mut holders {
                    let _ = writer.send(b"y").await;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        };
        measure("unfinished lines", &target, attack).await;
        let cut = target.messages_containing("line");
        println!("  lines cut: {} log lines mention a line", cut.len());
    });
}

/// Many hosts register as many names as they can: the directory is full
/// for everyone else.
#[test]
fn a_few_hosts_fill_the_directory() {
    let _one = one_at_a_time();
    let target = Target::start(&["--max-peers", "300"]);
    runtime().block_on(async {
        let to = target.addr;
        let attack = async move {
            // 20 hosts, 64 names each: four times the directory.
            let alive = fill_directory(to, 1_280, 0, 20, "fill", 1).await;
            tokio::time::sleep(attack_time()).await;
            for task in alive {
                task.abort();
            }
        };
        measure("directory fill", &target, attack).await;
        println!(
            "  refused: {} log lines, server_full {}",
            target.changes("refused"),
            target.messages_containing("server_full").len()
        );
    });
}

/// 17 hosts open 64 connections each against a server whose open-file
/// limit is 1,024: nobody else could connect.
#[test]
fn connections_up_to_the_open_file_limit() {
    let _one = one_at_a_time();
    let target = Target::start_limited(&[], Some(1_024));
    runtime().block_on(async {
        let to = target.addr;
        let attack = async move {
            // Registered, and kept alive: past the register timeout too.
            let alive = fill_directory(to, 17 * 64, 0, 17, "lock", 1).await;
            tokio::time::sleep(attack_time()).await;
            for task in alive {
                task.abort();
            }
        };
        measure("open-file limit", &target, attack).await;
        let cap = target.messages_containing("open-file limit");
        println!("  {cap:?}");
    });
}

/// One host keeps connecting past its connection share: every refusal
/// was once a log line.
#[test]
fn refused_connections_do_not_flood_the_log() {
    let _one = one_at_a_time();
    let target = Target::start(&[]);
    runtime().block_on(async {
        let to = target.addr;
        let attack = async move {
            let mut share = Vec::new();
            for _ in 0..64 {
                share.push(session_from(attacker_ip(0), to).await);
            }
            for_attack_time(8, move |_, until| async move {
                while Instant::now() < until {
                    // Through the handshake: the refusal is then said,
                    // and logged.
                    let _ = session_from(attacker_ip(0), to).await;
                }
            })
            .await;
            drop(share);
        };
        let lines_before = target.lines();
        measure("refusal log flood", &target, attack).await;
        let refused = target.changes("refused");
        println!(
            "  {} log lines during the attack, {refused} of them refusals",
            target.lines() - lines_before
        );
        assert!(
            refused <= 40,
            "refusals are logged at a bounded rate: {refused} lines"
        );
    });
}

/// Hosts open connections and complete handshakes as fast as they can,
/// then hang up: each one costs the server a handshake's CPU.
#[test]
fn a_flood_of_handshakes() {
    let _one = one_at_a_time();
    let target = Target::start(&[]);
    runtime().block_on(async {
        let to = target.addr;
        let attack = for_attack_time(16, move |i, until| async move {
            while Instant::now() < until {
                if session_from(attacker_ip(i % 4), to).await.is_none() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        });
        measure("handshake flood", &target, attack).await;
    });
}
