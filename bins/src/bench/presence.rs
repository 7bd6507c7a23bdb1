//! The presence section (issue 12, item 2): what live presence costs the
//! real `natter server` with 10,000 subscribed peers while others join and
//! leave, 100 times a second in all, and how many frames each subscriber
//! gets for it.
//!
//! One server process (`ServerProc`, as in the registry section) and one
//! load-generator process. The load generator registers N clients (the
//! registry section's `Client`: Noise server link, own key each), then
//! times a window of churn twice on the same server:
//!
//! 1. *none subscribed*: the N clients are registered and idle (answering
//!    pings); other clients of the same process join (a handshake and a
//!    registration each) and leave (`bye`), alternately, at the set rate;
//! 2. *all subscribed*: every one of the N sends `subscribe`, then the
//!    same churn with new names.
//!
//! Over each window: the server's CPU time (utime + stime from
//! /proc/PID/stat, read by the load generator at both edges) per second
//! of wall time; the frames each of the N reads (every frame: `presence`,
//! and the heartbeat's pings and pongs); and, from every hundredth
//! subscriber (the *watchers*), the time from a join's start (before its
//! TCP connect) to the `presence` frame that names it. The difference
//! between the windows is what presence costs; the second alone is what
//! the goals are about.
//!
//! Each subscriber reads every frame but parses only what it counts (the
//! type and each change's kind and name): the load generator shares the
//! machine with the server it measures.

use super::child::{
    cpu_seconds, emit, fd_limit, run_queue_wait_seconds, ChildSpec, Proc, SERVER_SPARE_FILES,
};
use super::lines::Wire;
use super::registry_scale::{identity_of, Client, ServerProc};
use super::report::{percentile, Figure, Goal, Section};
use super::{wall_now, Plan};
use anyhow::{anyhow, bail, Context, Result};
use natter_core::protocol::ClientMsg;
use natter_core::{encode, HeartbeatConfig, Identity};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};

/// The presence load generator's settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PresenceLoad {
    pub server: SocketAddr,
    /// The server's process id: its CPU time is read at each window's
    /// edges by the load generator itself (no pipe round trip between).
    pub server_pid: u32,
    /// Clients registered, then subscribed for the second window.
    pub subscribers: usize,
    /// Joins plus leaves a second (alternately, a join first).
    pub churn: u32,
    /// How long each window of churn is timed.
    pub window_ms: u64,
}

/// Listening port claimed by subscriber 0 and by churner 0: ports below
/// the usual ephemeral range, unique per client (the directory is keyed
/// by address too, and every client comes from 127.0.0.1).
const SUBSCRIBER_PORT: u16 = 10_000;
const CHURNER_PORT: u16 = 21_000;
/// Subscribers that fit below [`CHURNER_PORT`].
const MAX_SUBSCRIBERS: usize = (CHURNER_PORT - SUBSCRIBER_PORT) as usize;

/// Subscribers that time each join (evenly spread over the N, so the
/// spread of the server's fan-out shows).
const WATCHERS: usize = 100;

/// Registrations in progress at once, as in the registry section.
const CONCURRENCY: usize = 128;

/// Pause before a window: longer than two presence intervals (250 ms),
/// so what came before (the churners online at the start, the
/// subscriptions) is flushed and read before the clock starts.
const SETTLE: Duration = Duration::from_millis(600);

/// Longest wait for the last changes to reach every watcher, and for the
/// churners to finish, after a window.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the section.
pub fn run(plan: &Plan) -> Result<Section> {
    let peers = plan.presence_peers;
    if peers > MAX_SUBSCRIBERS {
        bail!("the presence section holds at most {MAX_SUBSCRIBERS} subscribers, not {peers}");
    }
    let limit = fd_limit();
    let needed = (peers + 2 * plan.presence_churn as usize) as u64 + SERVER_SPARE_FILES;
    if limit < needed {
        bail!("the open-file limit is {limit}, too low for {peers} subscribers and the churn in one process ({needed}); raise it (ulimit -n) or use --quick");
    }
    let mut reps = Vec::new();
    for _ in 0..plan.presence_reps {
        reps.push(one_rep(plan).context("presence section")?);
    }
    let window = plan.presence_window.as_secs_f64();
    let watchers = reps
        .first()
        .and_then(|r| r["watchers"].as_u64())
        .unwrap_or(0);
    let mut section = Section::new(
        "presence",
        format!(
            "{peers} peers register with one `natter server` process from a load-generator process; other clients of it join and leave, \
             {} a second in all, for {window:.1} s twice: with none of the {peers} subscribed, then with all of them; \
             each counts the frames it reads (pings and pongs included), {watchers} time each join \
             (ratio = all subscribed / none)",
            plan.presence_churn,
        ),
    );
    section.columns = ["all subscribed", "none subscribed"];
    let all = |key: &str| phase_column(&reps, "all", key);
    let none = |key: &str| phase_column(&reps, "none", key);
    section.figures.push(Figure::lower(
        "server CPU during the churn",
        "core",
        all("server_cpu"),
        Some(none("server_cpu")),
        Some(Goal::AtMost(SERVER_CPU_GOAL)),
    ));
    section.figures.push(Figure::lower(
        "frames per peer per second, median",
        "frames/s",
        all("frames_p50"),
        None,
        None,
    ));
    section.figures.push(Figure::lower(
        "frames per peer per second, max",
        "frames/s",
        all("frames_max"),
        None,
        Some(Goal::AtMost(FRAMES_GOAL)),
    ));
    section.figures.push(Figure::lower(
        "presence changes per peer per second",
        "/s",
        all("changes_per_peer_s"),
        None,
        None,
    ));
    section.figures.push(Figure::lower(
        "bytes read per peer per second",
        "KiB/s",
        all("kib_per_peer_s"),
        None,
        None,
    ));
    section.figures.push(Figure::lower(
        "join seen by subscribers p50",
        "ms",
        column_of(&reps, "join_p50_ms"),
        None,
        None,
    ));
    section.figures.push(Figure::lower(
        "join seen by subscribers p99",
        "ms",
        column_of(&reps, "join_p99_ms"),
        None,
        None,
    ));
    section.figures.push(Figure::lower(
        "server threads waiting for a CPU",
        "threads",
        all("server_wait"),
        Some(none("server_wait")),
        None,
    ));
    section.figures.push(Figure::lower(
        "load generator CPU (same machine)",
        "core",
        all("loadgen_cpu"),
        Some(none("loadgen_cpu")),
        None,
    ));
    let sum = |key: &str| {
        reps.iter()
            .map(|r| r[key].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    let waits = all("server_wait");
    let most = waits.iter().copied().fold(0.0, f64::max);
    section.check(
        "the server got the CPU it asked for",
        most <= STARVED,
        format!(
            "while all were subscribed, its threads waited for a CPU {} on average (at most; {STARVED} allowed): \
             above that the machine's other work held it back, and its CPU figure is what it got, not what it needs",
            super::report::num(most)
        ),
    );
    let lost = sum("lost");
    section.check(
        "every subscriber stayed connected",
        lost == 0,
        match reps.iter().find_map(|r| r["first_error"].as_str()) {
            None => {
                format!("{lost} of {peers} subscribers lost their connection over all repetitions")
            }
            Some(e) => format!(
                "{lost} subscribers lost their connection over all repetitions; the first: {e}"
            ),
        },
    );
    let (both, partly, unseen, disorder) = (
        sum("seen_both_ways_by_all"),
        sum("seen_partly"),
        sum("seen_by_none"),
        sum("out_of_order"),
    );
    let marked = reps
        .iter()
        .all(|r| r["marker_seen_by"].as_u64() == r["watchers"].as_u64());
    section.check(
        "every watcher saw each churner come and go, in order, or none did",
        marked && partly == 0 && disorder == 0,
        format!(
            "over all repetitions, of the churners while all were subscribed: {both} seen online then offline by all {watchers} watchers, \
             {unseen} by none (joined and left within one flush, or never joined), {partly} by some only, {disorder} times offline before online{}",
            if marked { "" } else { "; the final marker did not reach every watcher" }
        ),
    );
    let resyncs = sum("resyncs_during_churn");
    section.check(
        "no presence_resync during the churn",
        resyncs == 0,
        format!("{resyncs} presence_resync frames read while subscribed churn ran"),
    );
    let target = f64::from(plan.presence_churn);
    let rates: Vec<f64> = reps
        .iter()
        .flat_map(|r| [&r["none"], &r["all"]])
        .map(|w| w["churn_per_s"].as_f64().unwrap_or(0.0))
        .collect();
    let slowest = rates.iter().copied().fold(f64::INFINITY, f64::min);
    let failed = sum("churn_failures");
    section.check(
        "the churn kept its rate",
        slowest >= 0.9 * target && failed == 0,
        format!(
            "joins and leaves completed within each window: {} a second at the slowest (target {target}); {failed} failed",
            super::report::num(slowest)
        ),
    );
    section.extra = json!(reps);
    Ok(section)
}

/// "Well under one core" (issue 12), read as at most half of one: on a
/// machine of a few cores the server then leaves most of one free.
pub const SERVER_CPU_GOAL: f64 = 0.5;

/// "At most a few frames a second" (issue 12): the server's presence
/// interval allows four, and the heartbeat adds well under one.
pub const FRAMES_GOAL: f64 = 5.0;

/// Server threads waiting for a CPU, on average, above which the server
/// counts as held back by other work on the machine (run-queue time from
/// schedstat; NaN where the kernel keeps none, which passes).
const STARVED: f64 = 0.25;

/// A figure of one window (`all` or `none`) in each repetition.
fn phase_column(reps: &[Value], phase: &str, key: &str) -> Vec<f64> {
    reps.iter()
        .map(|r| r[phase][key].as_f64().unwrap_or(f64::NAN))
        .collect()
}

fn column_of(reps: &[Value], key: &str) -> Vec<f64> {
    reps.iter()
        .map(|r| r[key].as_f64().unwrap_or(f64::NAN))
        .collect()
}

/// One repetition: a fresh server, the load generator's result.
fn one_rep(plan: &Plan) -> Result<Value> {
    let peers = plan.presence_peers;
    let churn = plan.presence_churn as usize;
    // The subscribers, the churners online at once (about half the rate,
    // more while joins are in progress), and a margin.
    let server = ServerProc::start(peers + 2 * churn + 100)?;
    let load = PresenceLoad {
        server: server.addr(),
        server_pid: server.pid(),
        subscribers: peers,
        churn: plan.presence_churn,
        window_ms: plan.presence_window.as_millis() as u64,
    };
    let mut gen = Proc::bench_child("presence load generator", &ChildSpec::PresenceLoad(load))?;
    let result = gen.result()?;
    gen.finish()?;
    server.stop()?;
    Ok(result)
}

// ---- the load generator (a child process) ----

/// What the load generator's clients share: their keys, the counters the
/// windows read, and the watchers' sightings.
struct Board {
    server: SocketAddr,
    /// The subscribers' keys, then the churners'.
    keys: Vec<Identity>,
    subscribers: usize,
    /// Every `watch_every`-th subscriber is a watcher.
    watch_every: usize,
    permits: Semaphore,
    /// Where the churners' join times count from.
    base: Instant,
    /// Frames each subscriber has read (pings and pongs included).
    frames: Vec<AtomicU64>,
    /// Bytes of those frames (plaintext, as the client reads them).
    bytes: AtomicU64,
    presence: AtomicU64,
    resyncs: AtomicU64,
    changes: AtomicU64,
    subscribed: AtomicUsize,
    /// When churner `k`'s join started: µs since `base`, plus one (0: not
    /// yet).
    joined_at: Vec<AtomicU64>,
    /// What the watchers saw of the churners, in the order each read it.
    sightings: Mutex<Vec<Sighting>>,
    /// Subscribers whose connection failed, and the first reason.
    lost: AtomicU64,
    first_error: Mutex<Option<String>>,
}

#[derive(Clone, Copy, Debug)]
struct Sighting {
    watcher: u32,
    churner: u32,
    online: bool,
    /// Online only: ms from the start of the join.
    delay_ms: f64,
}

/// One frame as a subscriber reads it: only what it counts is parsed
/// (borrowed; the rest of each entry is skipped).
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    changes: Vec<Change<'a>>,
}

#[derive(Deserialize)]
struct Change<'a> {
    #[serde(borrow)]
    change: Cow<'a, str>,
    #[serde(default, borrow)]
    name: Cow<'a, str>,
}

/// What a subscriber does after a frame.
enum Read {
    /// A ping, to answer.
    Ping,
    Other,
    /// An `error` frame, or a frame that does not parse.
    Refused(String),
}

impl Board {
    fn micros(&self) -> u64 {
        self.base.elapsed().as_micros() as u64
    }

    /// Subscriber `i`'s watcher number, if it is one.
    fn watcher(&self, i: usize) -> Option<u32> {
        i.is_multiple_of(self.watch_every)
            .then_some((i / self.watch_every) as u32)
    }

    fn watchers(&self) -> usize {
        self.subscribers.div_ceil(self.watch_every)
    }

    /// Counts one frame read by subscriber `i`.
    fn read(&self, i: usize, watcher: Option<u32>, text: &str) -> Read {
        self.frames[i].fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
        let frame: Frame = match serde_json::from_str(text) {
            Ok(frame) => frame,
            Err(e) => return Read::Refused(format!("unreadable frame ({e}): {text}")),
        };
        match &*frame.kind {
            "ping" => Read::Ping,
            "presence" => {
                self.presence.fetch_add(1, Ordering::Relaxed);
                self.changes
                    .fetch_add(frame.changes.len() as u64, Ordering::Relaxed);
                if let Some(watcher) = watcher {
                    self.sighted(watcher, &frame.changes);
                }
                Read::Other
            }
            "presence_resync" => {
                self.resyncs.fetch_add(1, Ordering::Relaxed);
                Read::Other
            }
            "error" => Read::Refused(text.to_string()),
            _ => Read::Other,
        }
    }

    /// Records what a watcher saw of the churners in one frame.
    fn sighted(&self, watcher: u32, changes: &[Change]) {
        let now = self.micros();
        let mut seen = Vec::new();
        for change in changes {
            let online = match &*change.change {
                "online" => true,
                "offline" => false,
                _ => continue,
            };
            let Some(k) = change
                .name
                .strip_prefix('c')
                .and_then(|k| k.parse::<usize>().ok())
                .filter(|&k| k < self.joined_at.len())
            else {
                continue;
            };
            let joined = self.joined_at[k].load(Ordering::Acquire);
            let delay_ms = if online && joined > 0 {
                now.saturating_sub(joined - 1) as f64 / 1e3
            } else {
                f64::NAN
            };
            seen.push(Sighting {
                watcher,
                churner: k as u32,
                online,
                delay_ms,
            });
        }
        if !seen.is_empty() {
            self.sightings.lock().expect("not poisoned").extend(seen);
        }
    }

    fn lose(&self, error: anyhow::Error) {
        self.lost.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().expect("not poisoned");
        first.get_or_insert_with(|| format!("{error:#}"));
    }

    /// The counters at one edge of a window.
    fn snapshot(&self, server_pid: u32) -> Result<Snapshot> {
        Ok(Snapshot {
            at: wall_now(),
            server_cpu: cpu_seconds(server_pid).context("the server's CPU time")?,
            own_cpu: cpu_seconds(std::process::id())?,
            // Not every kernel keeps schedstat: then no figure.
            server_wait: run_queue_wait_seconds(server_pid).unwrap_or(f64::NAN),
            own_wait: run_queue_wait_seconds(std::process::id()).unwrap_or(f64::NAN),
            frames: self
                .frames
                .iter()
                .map(|f| f.load(Ordering::Relaxed))
                .collect(),
            bytes: self.bytes.load(Ordering::Relaxed),
            presence: self.presence.load(Ordering::Relaxed),
            resyncs: self.resyncs.load(Ordering::Relaxed),
            changes: self.changes.load(Ordering::Relaxed),
        })
    }
}

struct Snapshot {
    at: Instant,
    server_cpu: f64,
    own_cpu: f64,
    server_wait: f64,
    own_wait: f64,
    frames: Vec<u64>,
    bytes: u64,
    presence: u64,
    resyncs: u64,
    changes: u64,
}

/// A window's figures, from its two edges.
fn figures_between(start: &Snapshot, end: &Snapshot, churned: usize) -> Value {
    let secs = end.at.duration_since(start.at).as_secs_f64();
    let peers = start.frames.len() as f64;
    let mut rates: Vec<f64> = start
        .frames
        .iter()
        .zip(&end.frames)
        .map(|(a, b)| (b - a) as f64 / secs)
        .collect();
    rates.sort_by(f64::total_cmp);
    let per_peer = |a: u64, b: u64| (b - a) as f64 / peers / secs;
    json!({
        "secs": secs,
        "server_cpu": (end.server_cpu - start.server_cpu) / secs,
        "loadgen_cpu": (end.own_cpu - start.own_cpu) / secs,
        // Threads that ended take their time with them: never below 0.
        "server_wait": ((end.server_wait - start.server_wait) / secs).max(0.0),
        "loadgen_wait": ((end.own_wait - start.own_wait) / secs).max(0.0),
        "frames_p50": percentile(&rates, 50.0),
        "frames_max": rates.last().copied().unwrap_or(f64::NAN),
        "frames_min": rates.first().copied().unwrap_or(f64::NAN),
        "presence_frames_per_peer_s": per_peer(start.presence, end.presence),
        "changes_per_peer_s": per_peer(start.changes, end.changes),
        "kib_per_peer_s": per_peer(start.bytes, end.bytes) / 1024.0,
        "resyncs": end.resyncs - start.resyncs,
        "churn_per_s": churned as f64 / secs,
    })
}

/// `natter bench-child presence_load`: see the module comment.
pub async fn loadgen(load: PresenceLoad) -> Result<()> {
    let n = load.subscribers;
    let events = (u64::from(load.churn) * load.window_ms / 1000) as usize;
    // About one second online each: as many online at the start as leave
    // in a second, so joins and leaves alternate from the first event.
    let online_at_start = (load.churn as usize / 2).max(1);
    let per_window = online_at_start + events.div_ceil(2);
    // Keys are made before the clock starts, as a peer has its key
    // before it connects.
    // The last churner key is the marker's (see below).
    let keys = (0..n + 2 * per_window + 1).map(identity_of).collect();
    let board = Arc::new(Board {
        server: load.server,
        keys,
        subscribers: n,
        watch_every: (n / WATCHERS).max(1),
        permits: Semaphore::new(CONCURRENCY),
        base: wall_now(),
        frames: (0..n).map(|_| AtomicU64::new(0)).collect(),
        bytes: AtomicU64::new(0),
        presence: AtomicU64::new(0),
        resyncs: AtomicU64::new(0),
        changes: AtomicU64::new(0),
        subscribed: AtomicUsize::new(0),
        joined_at: (0..=2 * per_window).map(|_| AtomicU64::new(0)).collect(),
        sightings: Mutex::new(Vec::new()),
        lost: AtomicU64::new(0),
        first_error: Mutex::new(None),
    });

    // The subscribers register (not subscribed yet).
    let (go, subscribe) = watch::channel(false);
    let (registered, mut registrations) = mpsc::unbounded_channel();
    for i in 0..n {
        tokio::spawn(subscriber(
            i,
            Arc::clone(&board),
            subscribe.clone(),
            registered.clone(),
        ));
    }
    let start = wall_now();
    for done in 1..=n {
        registrations
            .recv()
            .await
            .ok_or_else(|| anyhow!("subscribers stopped"))?
            .context("registration")?;
        if done % 1_000 == 0 {
            emit(&json!({ "phase": "progress", "registered": done }));
        }
    }
    emit(&json!({ "phase": "registered", "secs": start.elapsed().as_secs_f64() }));

    let mut churn = Churn::new(&board, &load, online_at_start, events);
    let none = churn.window(0, load.server_pid).await?;
    emit(&json!({ "phase": "none subscribed", "window": none }));

    // Everyone subscribes; the window starts once all have sent it.
    go.send_replace(true);
    let deadline = wall_now() + SETTLE_TIMEOUT;
    while board.subscribed.load(Ordering::Acquire) + (board.lost.load(Ordering::Relaxed) as usize)
        < n
    {
        if wall_now() > deadline {
            bail!("the subscribers did not all subscribe within {SETTLE_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all = churn.window(per_window, load.server_pid).await?;
    emit(&json!({ "phase": "all subscribed", "window": all }));

    // Every change of the window has reached a watcher once it has seen
    // a later one: a marker that joins after every churner has ended
    // (frames keep the order of the changes).
    let marker = 2 * per_window;
    let (_stay, told) = oneshot::channel();
    tokio::spawn(churner(
        marker,
        Arc::clone(&board),
        told,
        churn.report.clone(),
    ));
    let watchers = board.watchers();
    let deadline = wall_now() + SETTLE_TIMEOUT;
    let marked = loop {
        let marked = sightings_of(&board, &(marker..marker + 1)).len();
        if marked >= watchers || wall_now() > deadline {
            break marked;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let seen = sightings_of(&board, &(per_window..2 * per_window));
    // Per churner: the watchers that saw it come and go. A settled
    // subscriber is told a join and a leave within one flush interval of
    // neither, so a churner is seen both ways by every watcher, or by
    // none; and never its leave before its join.
    let mut ways: BTreeMap<u32, (usize, usize)> = BTreeMap::new();
    let mut out_of_order = 0u64;
    let mut delays = Vec::new();
    // The join times from the timed joins only (the churners online at
    // the start joined all at once, untimed).
    let timed = per_window + online_at_start;
    for (&(_, churner), kinds) in &seen {
        let first_online = kinds.iter().position(|(online, _)| *online);
        let first_offline = kinds.iter().position(|(online, _)| !*online);
        if let (Some(on), Some(off)) = (first_online, first_offline) {
            if off < on {
                out_of_order += 1;
            }
        }
        let way = ways.entry(churner).or_default();
        way.0 += usize::from(first_online.is_some());
        way.1 += usize::from(first_offline.is_some());
        if churner as usize >= timed {
            if let Some(on) = first_online {
                delays.push(kinds[on].1);
            }
        }
    }
    let both = ways
        .values()
        .filter(|&&w| w == (watchers, watchers))
        .count();
    let partly = ways.len() - both;
    let unseen = per_window - ways.len();
    delays.retain(|d| d.is_finite());
    delays.sort_by(f64::total_cmp);
    let first_error = board.first_error.lock().expect("not poisoned").clone();
    emit(&json!({ "result": {
        "subscribers": n,
        "watchers": watchers,
        "none": none,
        "all": all,
        "resyncs_during_churn": all["resyncs"],
        "join_p50_ms": percentile(&delays, 50.0),
        "join_p99_ms": percentile(&delays, 99.0),
        "joins_timed": delays.len() / watchers.max(1),
        "churners": per_window,
        "seen_both_ways_by_all": both,
        "seen_partly": partly,
        "seen_by_none": unseen,
        "marker_seen_by": marked,
        "out_of_order": out_of_order,
        "churn_failures": churn.failures,
        "lost": board.lost.load(Ordering::Relaxed),
        "first_error": first_error,
    }}));
    Ok(())
}

/// The watchers' sightings of `churners`, by (watcher, churner), each
/// with whether it was an online and its delay, in the order read.
fn sightings_of(
    board: &Board,
    churners: &std::ops::Range<usize>,
) -> BTreeMap<(u32, u32), Vec<(bool, f64)>> {
    let mut seen: BTreeMap<(u32, u32), Vec<(bool, f64)>> = BTreeMap::new();
    for s in board.sightings.lock().expect("not poisoned").iter() {
        if churners.contains(&(s.churner as usize)) {
            seen.entry((s.watcher, s.churner))
                .or_default()
                .push((s.online, s.delay_ms));
        }
    }
    seen
}

/// One subscriber: registers, answers pings until told to subscribe,
/// subscribes, then reads and counts every frame until the process ends.
/// Like a natter peer, it pings when it has sent nothing for the
/// heartbeat's interval (a subscriber only reads, and the server gives up
/// a link it has heard nothing from) and answers the server's pings.
async fn subscriber(
    i: usize,
    board: Arc<Board>,
    mut go: watch::Receiver<bool>,
    registered: mpsc::UnboundedSender<Result<()>>,
) {
    let permit = board.permits.acquire().await.expect("never closed");
    let port = SUBSCRIBER_PORT + i as u16;
    let name = format!("s{i:05}");
    let client = Client::register(board.server, Wire::Noise, &board.keys[i], &name, port).await;
    drop(permit);
    let mut client = match client {
        Ok(client) => client,
        Err(e) => {
            let _ = registered.send(Err(e.context(name)));
            return;
        }
    };
    let _ = registered.send(Ok(()));
    let watcher = board.watcher(i);
    let ping_after = HeartbeatConfig::default().ping_after;
    let mut subscribed = false;
    let mut last_sent = wall_now();
    loop {
        // Only the read is ever cancelled, and reading is cancel-safe
        // (bytes are taken only once a read is ready); writes happen
        // outside the select.
        let due = tokio::time::Instant::from_std(last_sent + ping_after);
        let read = tokio::select! {
            biased;
            _ = go.wait_for(|&go| go), if !subscribed => Wake::Subscribe,
            () = tokio::time::sleep_until(due) => Wake::Ping,
            text = client.next_text() => Wake::Read(text.map(|text| board.read(i, watcher, text))),
        };
        let sent = match read {
            Wake::Subscribe => {
                subscribed = true;
                let sent = client.send(&encode(&ClientMsg::Subscribe)).await;
                board.subscribed.fetch_add(1, Ordering::Release);
                sent.map(|()| true)
            }
            Wake::Ping => client.send(&encode(&ClientMsg::Ping)).await.map(|()| true),
            Wake::Read(Ok(Read::Ping)) => {
                client.send(&encode(&ClientMsg::Pong)).await.map(|()| true)
            }
            Wake::Read(Ok(Read::Other)) => Ok(false),
            Wake::Read(Ok(Read::Refused(frame))) => Err(anyhow!("{frame}")),
            Wake::Read(Err(e)) => Err(e),
        };
        match sent {
            Ok(true) => last_sent = wall_now(),
            Ok(false) => {}
            Err(e) => {
                board.lose(e.context(name));
                return;
            }
        }
    }
}

/// What woke a subscriber.
enum Wake {
    Subscribe,
    /// Nothing sent for the heartbeat's interval.
    Ping,
    Read(Result<Read>),
}

/// The churn: clients that join and leave at a set rate.
struct Churn {
    board: Arc<Board>,
    churn: u32,
    online_at_start: usize,
    events: usize,
    report: mpsc::UnboundedSender<Churned>,
    reports: mpsc::UnboundedReceiver<Churned>,
    /// Churners that joined in the last window (those online at its start
    /// included).
    joined_in_last: usize,
    failures: u64,
}

/// What churner `.0` tells the churn.
struct Churned(usize, Outcome);

enum Outcome {
    Joined,
    Left,
    Failed(anyhow::Error),
}

impl Churn {
    fn new(board: &Arc<Board>, load: &PresenceLoad, online_at_start: usize, events: usize) -> Self {
        let (report, reports) = mpsc::unbounded_channel();
        Churn {
            board: Arc::clone(board),
            churn: load.churn,
            online_at_start,
            events,
            report,
            reports,
            joined_in_last: 0,
            failures: 0,
        }
    }

    fn spawn(&self, k: usize) -> oneshot::Sender<()> {
        let (leave, told) = oneshot::channel();
        tokio::spawn(churner(
            k,
            Arc::clone(&self.board),
            told,
            self.report.clone(),
        ));
        leave
    }

    /// Churners `first..` join and leave: some join untimed, then the
    /// window is timed, then the rest leave. The window's figures.
    async fn window(&mut self, first: usize, server_pid: u32) -> Result<Value> {
        let mut tally = Tally {
            first,
            ..Tally::default()
        };
        let mut online = VecDeque::new();
        let mut next = first;
        for _ in 0..self.online_at_start {
            online.push_back(self.spawn(next));
            next += 1;
        }
        while tally.joined + tally.ended < self.online_at_start {
            let churned = self.reports.recv().await;
            let churned = churned.ok_or_else(|| anyhow!("churners stopped"))?;
            self.count(&mut tally, churned);
        }
        tokio::time::sleep(SETTLE).await;

        let start = self.board.snapshot(server_pid)?;
        let before = tally.joined + tally.ended;
        let mut ticker = tokio::time::interval(Duration::from_secs(1) / self.churn);
        for event in 0..self.events {
            ticker.tick().await;
            if event % 2 == 0 {
                online.push_back(self.spawn(next));
                next += 1;
            } else if let Some(leave) = online.pop_front() {
                let _ = leave.send(());
            }
            while let Ok(churned) = self.reports.try_recv() {
                self.count(&mut tally, churned);
            }
        }
        // The window ends one period after its last event.
        ticker.tick().await;
        while let Ok(churned) = self.reports.try_recv() {
            self.count(&mut tally, churned);
        }
        let end = self.board.snapshot(server_pid)?;
        let churned = tally.joined + tally.ended - before;

        // The rest leave; every churner ends (left or failed), or is
        // given up after a while (a starved server may take long): its
        // later reports are ignored.
        for leave in online {
            let _ = leave.send(());
        }
        tally.last = next;
        let spawned = next - first;
        let deadline = wall_now() + SETTLE_TIMEOUT;
        while tally.ended < spawned && wall_now() < deadline {
            tokio::select! {
                biased;
                churned = self.reports.recv() => {
                    let churned = churned.ok_or_else(|| anyhow!("churners stopped"))?;
                    self.count(&mut tally, churned);
                }
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
        let unfinished = spawned - tally.ended;
        if unfinished > 0 {
            eprintln!(
                "natter bench-child: presence churn: {unfinished} churners had not joined and left {SETTLE_TIMEOUT:?} after the window"
            );
            self.failures += unfinished as u64;
        }
        self.joined_in_last = tally.joined;
        tokio::time::sleep(SETTLE).await;
        let mut figures = figures_between(&start, &end, churned);
        figures["unfinished"] = json!(unfinished);
        Ok(figures)
    }

    fn count(&mut self, tally: &mut Tally, Churned(k, outcome): Churned) {
        // A churner of an earlier window, given up on.
        if k < tally.first || k >= tally.last {
            return;
        }
        match outcome {
            Outcome::Joined => tally.joined += 1,
            Outcome::Left => tally.ended += 1,
            Outcome::Failed(e) => {
                if self.failures == 0 {
                    eprintln!("natter bench-child: presence churn: {e:#}");
                }
                self.failures += 1;
                tally.ended += 1;
            }
        }
    }
}

/// One window's churners `first..last` so far: joined, and ended (left
/// or failed).
struct Tally {
    first: usize,
    last: usize,
    joined: usize,
    ended: usize,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            first: 0,
            last: usize::MAX,
            joined: 0,
            ended: 0,
        }
    }
}

/// Churner `k`: joins (its start noted for the watchers), stays online
/// answering pings until told to leave, says bye and waits for the server
/// to close.
async fn churner(
    k: usize,
    board: Arc<Board>,
    leave: oneshot::Receiver<()>,
    report: mpsc::UnboundedSender<Churned>,
) {
    board.joined_at[k].store(board.micros() + 1, Ordering::Release);
    let name = format!("c{k:05}");
    let key = &board.keys[board.subscribers + k];
    let port = CHURNER_PORT + k as u16;
    let mut client = match Client::register(board.server, Wire::Noise, key, &name, port).await {
        Ok(client) => client,
        Err(e) => {
            let _ = report.send(Churned(k, Outcome::Failed(e.context(name))));
            return;
        }
    };
    let _ = report.send(Churned(k, Outcome::Joined));
    tokio::select! {
        biased;
        _ = leave => {}
        result = client.idle() => {
            let e = result.err().unwrap_or_else(|| anyhow!("idle ended"));
            let _ = report.send(Churned(k, Outcome::Failed(e.context(name))));
            return;
        }
    }
    let outcome = match client.leave().await {
        Ok(()) => Outcome::Left,
        Err(e) => Outcome::Failed(e.context(name)),
    };
    let _ = report.send(Churned(k, outcome));
}
