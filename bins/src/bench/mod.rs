//! `natter bench`: natter's figures against a raw-TCP baseline and a raw
//! TCP + Noise baseline, taken in one run on one machine (issue 5,
//! sections 1, 2, 3 and 5; section 4 is `cargo bench -p natter-core`;
//! issue 10, item 7: the handshake and the cost of encryption; issue 12,
//! item 2: what live presence costs the server).
//!
//! Every figure is measured between **separate processes**: this binary
//! starts itself (`std::env::current_exe()`) as hidden `natter bench-child
//! SPEC` processes (a directory server, a sending peer, the raw baselines,
//! a load generator) and as the real `natter peer --json` for receivers,
//! and reads one JSON object per line from their standard output. Each
//! natter figure and its baseline run alternately, several repetitions, so
//! that drift of the machine affects both alike; only the ratios of one
//! run are comparable across machines.
//!
//! The bench measures real time between real processes. It never runs
//! under the turmoil simulation, so it reads the real clock (through
//! [`wall_now`] only).

mod baseline;
mod chat;
mod child;
mod cluster;
mod flood;
mod handshake;
mod latency;
mod lines;
mod peer_child;
mod presence;
mod registry_scale;
mod report;
mod throughput;

pub use child::ChildSpec;

use anyhow::{Context, Result};
use clap::Args;
use report::Report;
use std::time::{Duration, Instant, SystemTime};

/// `natter bench` flags.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Print one JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
    /// A smoke run: smaller workloads, two repetitions (seconds, not
    /// minutes); the figures are not the ones to quote.
    #[arg(long)]
    pub quick: bool,
    /// Repetitions of each figure and its baseline [default: 5, or 2 with
    /// --quick; the registry and presence sections use at most 3].
    #[arg(long, value_name = "N")]
    pub reps: Option<usize>,
    /// Run only these sections (handshake, latency, throughput, registry,
    /// presence, flood, cluster); all of them by default. The cluster section needs
    /// nats-server 2.11 or newer on PATH and is skipped without it.
    #[arg(long, value_delimiter = ',', value_name = "SECTION")]
    pub only: Vec<String>,
    /// Also print today's figures beside those of an earlier run saved
    /// with `natter bench --json > FILE` (with --json: on standard error).
    #[arg(long, value_name = "FILE")]
    pub compare: Option<std::path::PathBuf>,
}

/// `natter bench-child SPEC`: one process of the bench (hidden).
#[derive(Debug, Args)]
pub struct BenchChildArgs {
    /// What to run, as JSON (see `ChildSpec`).
    pub spec: String,
}

/// The real monotonic clock. The bench times real processes on a real
/// network and never runs under simulation, so the determinism rule that
/// forbids `Instant::now` elsewhere does not apply here.
#[allow(clippy::disallowed_methods)]
pub fn wall_now() -> Instant {
    Instant::now()
}

/// The real date, for the report's header (same reason as [`wall_now`]).
#[allow(clippy::disallowed_methods)]
fn wall_date() -> SystemTime {
    SystemTime::now()
}

/// Peers registered in the registry section at most: this host's
/// open-file limit (20,000) less a few, as issue 13 asks. Each process
/// (server, load generator) holds one socket per peer; the bench raises
/// its open-file limit (children inherit it) to fit them and the server's
/// spare files ([`child::SERVER_SPARE_FILES`]) where it may; where the
/// hard limit cannot be raised (20,000 here, in a container), the server
/// holds 19,670 and the bench says so.
pub const REGISTRY_TOTAL: usize = 19_980;

/// Workload sizes; `--quick` shrinks them for a smoke run.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub quick: bool,
    pub reps: usize,
    pub latency_pings: usize,
    pub latency_warmup: usize,
    /// Links opened one after the other in each repetition of the
    /// handshake section, after `handshake_warmup` untimed ones.
    pub handshakes: usize,
    pub handshake_warmup: usize,
    pub message_size: usize,
    pub burst: usize,
    pub window: usize,
    /// Messages a peer numbers and keeps waiting beyond its window before
    /// it stops taking more (`PeerConfig::max_waiting`): what a sender can
    /// have without receipt is `window + max_waiting`, of which at most
    /// `window` are on the wire (a receiver cuts a sender with more).
    pub max_waiting: usize,
    /// Peers registered when the full lists are timed (the issue's
    /// 10,000-peer list).
    pub registry_peers: usize,
    /// Peers registered in all, for the RSS figure and the churn: as many
    /// as the open-file limit allows, up to [`REGISTRY_TOTAL`].
    pub registry_total: usize,
    pub registry_lists: usize,
    pub registry_reps: usize,
    pub flood: Duration,
    /// The presence section: peers registered and then subscribed, joins
    /// plus leaves a second from other clients, how long the churn is
    /// timed (once with nobody subscribed, once with every peer), and its
    /// repetitions (each starts a server and registers them all).
    pub presence_peers: usize,
    pub presence_churn: u32,
    pub presence_window: Duration,
    pub presence_reps: usize,
    /// Peers registered over the servers in each repetition of the
    /// cluster section, joins timed after them, and its repetitions (each
    /// starts a NATS server and four directory servers).
    pub cluster_peers: usize,
    pub cluster_joins: usize,
    pub cluster_reps: usize,
}

impl Plan {
    fn new(args: &BenchArgs) -> Self {
        let quick = args.quick;
        let reps = args.reps.unwrap_or(if quick { 2 } else { 5 }).max(1);
        Plan {
            quick,
            reps,
            latency_pings: if quick { 300 } else { 2_000 },
            latency_warmup: if quick { 30 } else { 200 },
            handshakes: if quick { 100 } else { 500 },
            handshake_warmup: if quick { 10 } else { 50 },
            message_size: 100,
            burst: if quick { 5_000 } else { 100_000 },
            window: 64,
            max_waiting: 64,
            registry_peers: if quick { 1_000 } else { 10_000 },
            registry_total: if quick { 1_200 } else { REGISTRY_TOTAL },
            registry_lists: if quick { 10 } else { 100 },
            registry_reps: reps.min(3),
            flood: Duration::from_millis(if quick { 1_500 } else { 6_000 }),
            presence_peers: if quick { 300 } else { 10_000 },
            presence_churn: if quick { 20 } else { 100 },
            presence_window: Duration::from_millis(if quick { 1_500 } else { 10_000 }),
            presence_reps: reps.min(3),
            // Larger runs fail for now (3,000 peers: a server closed a
            // member's connection; 100 joins: the watcher's), not yet
            // diagnosed: the sizes measured are the ones run.
            cluster_peers: 300,
            cluster_joins: 10,
            cluster_reps: reps.min(3),
        }
    }
}

/// Runs the bench; returns the exit code.
pub async fn run(args: BenchArgs) -> i32 {
    // Everything below waits on child processes with blocking reads; the
    // runtime only hosts this one task.
    // Read first: a wrong path should not cost a whole run.
    let earlier = match args.compare.as_deref().map(read_earlier).transpose() {
        Ok(earlier) => earlier,
        Err(e) => {
            eprintln!("natter bench: {e:#}");
            return 2;
        }
    };
    match tokio::task::block_in_place(|| bench(&args)) {
        Ok(report) => {
            let compared = earlier
                .as_ref()
                .map(|(path, doc)| report.compare(doc, path));
            if args.json {
                println!("{}", report.json());
                if let Some(compared) = compared {
                    eprint!("{compared}");
                }
            } else {
                print!("{}", report.table());
                if let Some(compared) = compared {
                    print!("{compared}");
                }
            }
            0
        }
        Err(e) => {
            eprintln!("natter bench: {e:#}");
            1
        }
    }
}

/// An earlier `natter bench --json` document, and its path as given.
fn read_earlier(path: &std::path::Path) -> Result<(String, serde_json::Value)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {} for --compare", path.display()))?;
    let doc: serde_json::Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not the output of `natter bench --json`",
            path.display()
        )
    })?;
    if !doc["sections"].is_object() {
        anyhow::bail!(
            "{} is not the output of `natter bench --json` (no sections)",
            path.display()
        );
    }
    Ok((path.display().to_string(), doc))
}

fn bench(args: &BenchArgs) -> Result<Report> {
    if cfg!(debug_assertions) && !args.quick {
        eprintln!("natter bench: this is a debug build; use `cargo run --release -p natter -- bench` for figures worth quoting");
    }
    let mut plan = Plan::new(args);
    // The server keeps files beside its sockets (probes, its database):
    // room for those too, where the hard limit may be raised (root).
    child::raise_fd_limit_to(plan.registry_total as u64 + child::SERVER_SPARE_FILES);
    let fits = child::fd_limit().saturating_sub(child::SERVER_SPARE_FILES) as usize;
    if plan.registry_total > fits {
        eprintln!(
            "natter bench: the open-file limit ({}, which this process may not raise) holds {fits} peers \
             beside the server's spare files and probes, not {}",
            child::fd_limit(),
            plan.registry_total
        );
        plan.registry_total = fits.max(plan.registry_peers);
    }
    let wanted = |s: &str| args.only.is_empty() || args.only.iter().any(|o| o == s);
    let started = wall_now();
    let mut report = Report::new(wall_date(), plan);
    let work = tempfile::Builder::new()
        .prefix("natter-bench-")
        .tempdir()
        .context("cannot create a temporary directory for the transcripts")?;
    if wanted("handshake") {
        progress(args, "handshake");
        report.push(handshake::run(&plan)?);
    }
    if wanted("latency") {
        progress(args, "latency");
        report.push(latency::run(&plan, work.path())?);
    }
    if wanted("throughput") {
        progress(args, "throughput");
        report.push(throughput::run(&plan, work.path())?);
    }
    if wanted("registry") {
        progress(args, "registry");
        report.push(registry_scale::run(&plan)?);
    }
    if wanted("presence") {
        progress(args, "presence");
        report.push(presence::run(&plan)?);
    }
    if wanted("flood") {
        progress(args, "flood");
        report.push(flood::run(&plan, work.path())?);
    }
    if wanted("cluster") {
        progress(args, "cluster");
        report.push(cluster::run(&plan)?);
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

fn progress(args: &BenchArgs, section: &str) {
    if !args.json {
        eprintln!("natter bench: {section}…");
    }
}

/// `natter bench-child SPEC`: runs one child process of the bench.
pub async fn run_child(args: BenchChildArgs) -> i32 {
    let spec: ChildSpec = match serde_json::from_str(&args.spec) {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("natter bench-child: bad spec: {e}");
            return 2;
        }
    };
    child::raise_fd_limit();
    let result = match spec {
        ChildSpec::Server { max_peers, store } => chat::natter_server(max_peers, store).await,
        ChildSpec::ClusterLoad(load) => cluster::loadgen(load).await,
        ChildSpec::PresenceLoad(load) => presence::loadgen(load).await,
        ChildSpec::Sender {
            server,
            name,
            partner,
            transcripts,
            work,
        } => peer_child::run(server, name, partner, transcripts, work).await,
        ChildSpec::RawReceiver { wire } => baseline::raw_receiver(wire).await,
        ChildSpec::RawSender { addr, work, wire } => baseline::raw_sender(addr, work, wire).await,
        ChildSpec::RawRegistry { wire } => baseline::raw_registry(wire).await,
        ChildSpec::Loadgen(load) => registry_scale::loadgen(load).await,
        ChildSpec::Responder { via } => handshake::responder(via).await,
        ChildSpec::Initiator {
            addr,
            via,
            connections,
            warmup,
        } => handshake::initiator(addr, via, connections, warmup).await,
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            child::emit(&serde_json::json!({ "error": format!("{e:#}") }));
            eprintln!("natter bench-child: {e:#}");
            1
        }
    }
}
