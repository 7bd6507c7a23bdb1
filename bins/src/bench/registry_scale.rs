//! Section 3, registry scale: N peers register with one directory server
//! (a separate process) from a load generator (another process), then
//! full lists are timed, then every peer leaves and rejoins while lists
//! are read and checked. The same load runs against `natter`'s server and
//! against the raw directory of `baseline.rs`, over plain TCP and inside
//! Noise XX server links.

use super::baseline::stdin_closed;
use super::child::{emit, ChildSpec, Proc};
use super::lines::{LineReader, LineWriter, Lines, Wire};
use super::report::{column, percentile, Figure, Goal, Section};
use super::{wall_now, Plan};
use anyhow::{anyhow, bail, Context, Result};
use natter_core::identity::derive_seed;
use natter_core::protocol::{ClientMsg, ServerMsg, Versions};
use natter_core::rate::RateLimit;
use natter_core::registry::ClusterConfig;
use natter_core::{encode, Identity, LinkKind, PeerInfo, RegistryConfig};
use natter_net_real::{Bucket, Kv, NatsKv, ServerBuilder, TokioNet};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Semaphore};

/// The load generator's settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Load {
    pub server: SocketAddr,
    pub peers: usize,
    pub lists: usize,
    /// Registrations (and churns) in progress at once.
    pub concurrency: usize,
    /// Plain lines, or each client a Noise XX server link with its own key.
    pub wire: Wire,
}

/// The directory a repetition runs against: natter's server (its clients
/// speak Noise, as on every natter server link) or the raw directory.
#[derive(Clone, Copy, Debug)]
enum Directory {
    Natter,
    Raw(Wire),
}

/// First listening port claimed by peer 0, and by peer 0 once rejoined:
/// a rejoined peer claims a new port, so a stale entry is recognisable.
const PORT_BEFORE: u16 = 10_000;
const PORT_AFTER: u16 = 30_000;

/// Longest wait for the server to close its connections when told to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// `natter bench-child server`: natter's directory server, logging as
/// `natter server` does (formatted, then discarded), with the per-IP and
/// request limits raised since every bench client comes from 127.0.0.1.
///
/// With `store` (a NATS address), the server shares its directory there,
/// as `natter server --store` does, and says it is ready only once NATS
/// answers.
pub async fn natter_server(max_peers: usize, store: Option<String>) -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .with_ansi(false)
        .with_target(false)
        .with_max_level(tracing::Level::INFO)
        .init();
    let config = RegistryConfig {
        max_peers,
        max_connections_per_ip: 1_000_000,
        requests: RateLimit {
            burst: 1_000_000,
            per_second: 1_000_000,
        },
        // One load generator stands for every peer: the protections
        // against floods of connections (issue 11) are not what is
        // measured here.
        max_connections: 1_000_000,
        handshakes_total: RateLimit {
            burst: 1_000_000,
            per_second: 1_000_000,
        },
        ..RegistryConfig::default()
    };
    let server = match store {
        None => ServerBuilder::new(TokioNet).config(config).spawn().await?,
        Some(url) => {
            let kv = NatsKv::connect(&url).await?;
            let deadline = wall_now() + Duration::from_secs(10);
            while let Err(e) = kv
                .open(Bucket::Peers, ClusterConfig::new("").entry_ttl)
                .await
            {
                if wall_now() > deadline {
                    bail!("NATS at {url} does not answer: {e}");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let cluster = ClusterConfig::new(format!("bench-{}", std::process::id()));
            ServerBuilder::new(TokioNet)
                .config(config)
                .with_store(natter_net_real::Shared::new(kv, cluster))
                .spawn()
                .await?
        }
    };
    emit(&json!({ "addr": server.addr(), "pid": std::process::id() }));
    stdin_closed().await;
    server.stop(STOP_TIMEOUT).await?;
    Ok(())
}

/// Runs the section: natter's server and the raw directory alternately.
pub fn run(plan: &Plan) -> Result<Section> {
    let peers = plan.registry_peers;
    let limit = super::child::fd_limit();
    if limit < peers as u64 + 1_000 {
        bail!("the open-file limit is {limit}, too low for {peers} connections in one process; raise it (ulimit -n) or use --quick");
    }
    let (mut natter, mut raw, mut noise) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..plan.registry_reps {
        natter.push(one_rep(plan, Directory::Natter).context("registry section, natter server")?);
        raw.push(
            one_rep(plan, Directory::Raw(Wire::Plain))
                .context("registry section, raw directory")?,
        );
        noise.push(
            one_rep(plan, Directory::Raw(Wire::Noise))
                .context("registry section, raw directory + Noise")?,
        );
    }
    let mut section = Section::new(
        "registry",
        format!(
            "{peers} peers register with one server process from a load-generator process, then {} full lists; then all {peers} leave and rejoin while lists are read",
            plan.registry_lists
        ),
    );
    section.figures.push(
        Figure::higher(
            "registrations/s",
            "/s",
            column(&natter, "registrations_per_s"),
            Some(column(&raw, "registrations_per_s")),
            None,
        )
        .with_noise(column(&noise, "registrations_per_s")),
    );
    section.figures.push(
        Figure::lower(
            "server RSS per peer",
            "KiB",
            column(&natter, "rss_per_peer_kib"),
            Some(column(&raw, "rss_per_peer_kib")),
            Some(Goal::AtMost(8.0)),
        )
        .with_noise(column(&noise, "rss_per_peer_kib")),
    );
    section.figures.push(
        Figure::lower(
            &format!("full list ({peers} peers) p50"),
            "ms",
            column(&natter, "list_p50_ms"),
            Some(column(&raw, "list_p50_ms")),
            Some(Goal::Below(50.0)),
        )
        .with_noise(column(&noise, "list_p50_ms")),
    );
    section.figures.push(
        Figure::lower(
            &format!("full list ({peers} peers) p99"),
            "ms",
            column(&natter, "list_p99_ms"),
            Some(column(&raw, "list_p99_ms")),
            None,
        )
        .with_noise(column(&noise, "list_p99_ms")),
    );
    section.figures.push(
        Figure::lower(
            &format!("churn of {peers} (leave + rejoin)"),
            "s",
            column(&natter, "churn_secs"),
            Some(column(&raw, "churn_secs")),
            None,
        )
        .with_noise(column(&noise, "churn_secs")),
    );
    let total = |key: &str| {
        natter
            .iter()
            .map(|r| r[key].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    let lists_during: u64 = total("lists_during_churn");
    let errors = total("errors");
    let stale = total("stale");
    let missing = total("missing");
    section.check(
        "churn: no error",
        errors == 0,
        format!("{errors} errors (registration refused, connection dropped) over all repetitions"),
    );
    section.check(
        "churn: no stale entry",
        stale == 0 && missing == 0,
        format!("{lists_during} lists read during churn: {stale} stale entries (a peer that had left listed at its old address), {missing} rejoined peers missing; the final list has every peer once at its new address"),
    );
    section.extra = json!({ "natter": natter, "raw": raw, "raw_noise": noise });
    Ok(section)
}

/// One repetition against one server; returns the load generator's result
/// plus the server's memory per registered peer.
fn one_rep(plan: &Plan, directory: Directory) -> Result<Value> {
    let peers = plan.registry_peers;
    let (spec, label, wire) = match directory {
        Directory::Natter => (
            ChildSpec::Server {
                max_peers: peers + 10,
                store: None,
            },
            "server",
            Wire::Noise,
        ),
        Directory::Raw(wire) => (ChildSpec::RawRegistry { wire }, "raw directory", wire),
    };
    let mut server = Proc::bench_child(label, &spec)?;
    let hello = server.recv()?;
    let addr: SocketAddr = serde_json::from_value(hello["addr"].clone())?;
    std::thread::sleep(Duration::from_millis(200));
    let before = server.rss_kib()?;
    let load = Load {
        server: addr,
        peers,
        lists: plan.registry_lists,
        concurrency: 128,
        wire,
    };
    let mut gen = Proc::bench_child("load generator", &ChildSpec::Loadgen(load))?;
    let registered = gen.wait_for("registrations", |v| v["phase"] == "registered")?;
    // Let the last replies leave the server's queues before reading.
    std::thread::sleep(Duration::from_millis(300));
    let after = server.rss_kib()?;
    gen.send_line("go")?;
    let mut result = gen.result()?;
    gen.finish()?;
    server.finish()?;
    result["registrations_per_s"] = registered["per_s"].clone();
    result["rss_before_kib"] = json!(before);
    result["rss_after_kib"] = json!(after);
    result["rss_per_peer_kib"] = json!(after.saturating_sub(before) as f64 / peers as f64);
    Ok(result)
}

// ---- the load generator (a child process) ----

/// A plain reader's buffer in each client: 10,000 of them in one process.
const CLIENT_BUFFER: usize = 512;

/// A raw JSON-lines client of the directory (the cluster section's too).
pub(super) struct Client {
    read: LineReader,
    write: LineWriter,
}

impl Client {
    /// Connects as `me` (with Noise: the key the name is bound to) and
    /// registers.
    pub(super) async fn register(
        server: SocketAddr,
        wire: Wire,
        me: &Identity,
        name: &str,
        port: u16,
    ) -> Result<Client> {
        let stream = TcpStream::connect(server).await?;
        let Lines { read, write, .. } = wire
            .connect(stream, LinkKind::Server, me, CLIENT_BUFFER)
            .await?;
        let mut client = Client { read, write };
        let mut hello = encode(&ClientMsg::Hello {
            versions: Versions::ours(),
        });
        hello.extend(encode(&ClientMsg::Register {
            name: name.to_string(),
            port,
        }));
        client.write.send(&hello).await?;
        loop {
            match client.next().await? {
                ServerMsg::Registered { .. } => return Ok(client),
                ServerMsg::Error { code, message, .. } => bail!("{name}: {code}: {message}"),
                _ => {}
            }
        }
    }

    /// Sends frames as they are.
    pub(super) async fn send(&mut self, frames: &[u8]) -> Result<()> {
        self.write.send(frames).await
    }

    /// The next frame that is not a ping (pings are answered).
    pub(super) async fn next(&mut self) -> Result<ServerMsg> {
        loop {
            let Some(line) = self.read.next_line().await? else {
                bail!("the server closed the connection");
            };
            match serde_json::from_str(line)? {
                ServerMsg::Ping => self.write.send(&encode(&ClientMsg::Pong)).await?,
                frame => return Ok(frame),
            }
        }
    }

    /// Stays connected, answering pings, until the connection fails.
    pub(super) async fn idle(&mut self) -> Result<()> {
        let frame = self.next().await?;
        bail!("unexpected frame {frame:?}")
    }

    pub(super) async fn list(&mut self) -> Result<Vec<PeerInfo>> {
        self.write
            .send(&encode(&ClientMsg::List { id: None }))
            .await?;
        let mut all = Vec::new();
        loop {
            match self.next().await? {
                ServerMsg::Peers { peers, more, .. } => {
                    all.extend(peers);
                    if !more {
                        return Ok(all);
                    }
                }
                ServerMsg::Error { code, message, .. } => bail!("list refused: {code}: {message}"),
                _ => {}
            }
        }
    }

    /// Says bye and waits for the server to close the connection: the
    /// entry is gone once it has.
    async fn leave(mut self) -> Result<()> {
        self.write.send(&encode(&ClientMsg::Bye)).await?;
        self.read.drain().await
    }
}

fn name_of(i: usize) -> String {
    format!("p{i:05}")
}

/// Member `i`'s key, the same at every run; the lister is member `peers`.
pub(super) fn identity_of(i: usize) -> Identity {
    Identity::from_seed(&derive_seed(&[0; 32], b"bench member", i as u64))
}

/// Where member `i` is in the churn.
const REGISTERED: u8 = 0;
const LEFT: u8 = 1;
const REJOINED: u8 = 2;

struct Shared {
    server: SocketAddr,
    wire: Wire,
    /// Each member's key (and the lister's, last), made before the clock
    /// starts as a peer has its key before it connects; one unused key
    /// when the lines are plain.
    keys: Vec<Identity>,
    permits: Semaphore,
    state: Vec<AtomicU8>,
    errors: AtomicU64,
}

impl Shared {
    fn key(&self, i: usize) -> &Identity {
        &self.keys[i.min(self.keys.len() - 1)]
    }

    async fn register(&self, i: usize, name: &str, port: u16) -> Result<Client> {
        Client::register(self.server, self.wire, self.key(i), name, port).await
    }
}

/// `natter bench-child loadgen`: see the module comment.
pub async fn loadgen(load: Load) -> Result<()> {
    let keys = match load.wire {
        Wire::Noise => (0..=load.peers).map(identity_of).collect(),
        Wire::Plain => vec![identity_of(0)],
    };
    let shared = Arc::new(Shared {
        server: load.server,
        wire: load.wire,
        keys,
        permits: Semaphore::new(load.concurrency),
        state: (0..load.peers).map(|_| AtomicU8::new(REGISTERED)).collect(),
        errors: AtomicU64::new(0),
    });
    let (report, mut reports) = tokio::sync::mpsc::unbounded_channel::<Result<()>>();
    let mut leave = Vec::with_capacity(load.peers);
    let start = wall_now();
    for i in 0..load.peers {
        let (tx, rx) = oneshot::channel();
        leave.push(tx);
        tokio::spawn(member(i, Arc::clone(&shared), rx, report.clone()));
    }
    for _ in 0..load.peers {
        reports
            .recv()
            .await
            .ok_or_else(|| anyhow!("members stopped"))?
            .context("registration")?;
    }
    let secs = start.elapsed().as_secs_f64();
    emit(&json!({ "phase": "registered", "secs": secs, "per_s": load.peers as f64 / secs }));
    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut go = String::new();
    stdin.read_line(&mut go).await?;

    // Full lists, one at a time.
    let mut lister = shared.register(load.peers, "lister", 9_999).await?;
    let mut millis = Vec::new();
    for i in 0..=load.lists {
        let start = wall_now();
        let list = lister.list().await?;
        if i > 0 {
            millis.push(start.elapsed().as_secs_f64() * 1e3);
        }
        if list.len() != load.peers {
            bail!("a list had {} peers, not {}", list.len(), load.peers);
        }
    }
    millis.sort_by(f64::total_cmp);

    // Churn: every member leaves and rejoins; lists are read meanwhile.
    let start = wall_now();
    for tx in leave {
        let _ = tx.send(());
    }
    let churned = std::sync::atomic::AtomicBool::new(false);
    let churn = async {
        for _ in 0..load.peers {
            if let Some(Err(e)) = reports.recv().await {
                eprintln!("natter bench-child: churn: {e:#}");
                shared.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        churned.store(true, Ordering::Release);
    };
    // Lists are read until the churn is over; a list in progress is
    // finished (a half-read line would be lost), never cancelled.
    let lists = async {
        let (mut lists_during, mut stale, mut missing) = (0u64, 0u64, 0u64);
        while !churned.load(Ordering::Acquire) {
            let before: Vec<u8> = shared
                .state
                .iter()
                .map(|s| s.load(Ordering::Acquire))
                .collect();
            let list = lister.list().await?;
            lists_during += 1;
            let (s, m) = check_list(&list, &before, load.peers);
            stale += s;
            missing += m;
        }
        Ok::<_, anyhow::Error>((lists_during, stale, missing))
    };
    let ((), lists) = tokio::join!(churn, lists);
    let (lists_during, stale, missing) = lists?;
    let churn_secs = start.elapsed().as_secs_f64();
    let before: Vec<u8> = shared
        .state
        .iter()
        .map(|s| s.load(Ordering::Acquire))
        .collect();
    let last = lister.list().await?;
    let (s, m) = check_list(&last, &before, load.peers);
    let final_ok = last.len() == load.peers && s == 0 && m == 0;
    emit(&json!({ "result": {
        "list_p50_ms": percentile(&millis, 50.0),
        "list_p99_ms": percentile(&millis, 99.0),
        "churn_secs": churn_secs,
        "lists_during_churn": lists_during,
        "errors": shared.errors.load(Ordering::Relaxed) + u64::from(!final_ok && s + m == 0),
        "stale": stale + s,
        "missing": missing + m,
        "final_ok": final_ok,
    }}));
    Ok(())
}

/// Stale entries (a member listed at its old address although it had
/// left before the list was asked for) and missing ones (a member that had
/// rejoined before the list was asked for but is not in it), given each
/// member's state when the list was asked for. Also counts duplicates and
/// strangers as stale.
fn check_list(list: &[PeerInfo], before: &[u8], peers: usize) -> (u64, u64) {
    let mut seen = vec![false; peers];
    let mut stale = 0;
    for info in list {
        let Some(i) = info
            .name
            .strip_prefix('p')
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&i| i < peers)
        else {
            stale += 1;
            continue;
        };
        if std::mem::replace(&mut seen[i], true) {
            stale += 1;
        }
        let old = info.addr.port() == PORT_BEFORE + i as u16;
        if old && before[i] != REGISTERED {
            stale += 1;
        }
    }
    let missing = (0..peers)
        .filter(|&i| before[i] == REJOINED && !seen[i])
        .count() as u64;
    (stale, missing)
}

/// One member: registers, idles (answering pings) until told to leave,
/// leaves, rejoins at a new port, idles until the process ends. Reports
/// once after registering and once after rejoining.
async fn member(
    i: usize,
    shared: Arc<Shared>,
    leave: oneshot::Receiver<()>,
    report: tokio::sync::mpsc::UnboundedSender<Result<()>>,
) {
    let name = name_of(i);
    let permit = shared.permits.acquire().await.expect("never closed");
    let first = shared.register(i, &name, PORT_BEFORE + i as u16).await;
    drop(permit);
    let mut client = match first {
        Ok(client) => client,
        Err(e) => {
            let _ = report.send(Err(e));
            return;
        }
    };
    let _ = report.send(Ok(()));
    tokio::select! {
        biased;
        _ = leave => {}
        result = client.idle() => {
            let _ = report.send(result);
            return;
        }
    }
    let permit = shared.permits.acquire().await.expect("never closed");
    let rejoined = async {
        client.leave().await?;
        shared.state[i].store(LEFT, Ordering::Release);
        shared.register(i, &name, PORT_AFTER + i as u16).await
    }
    .await;
    drop(permit);
    match rejoined {
        Ok(mut client) => {
            shared.state[i].store(REJOINED, Ordering::Release);
            let _ = report.send(Ok(()));
            if client.idle().await.is_err() {
                shared.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        Err(e) => {
            let _ = report.send(Err(e));
        }
    }
}
