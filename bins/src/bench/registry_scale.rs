//! Section 3, registry scale: N peers register with one directory server
//! (a separate process: the real `natter server` binary, its limits raised
//! by flags) from a load generator (another process), then full lists of
//! N are timed, then more peers register up to what the open-file limit
//! allows (the RSS figure), then every peer leaves and rejoins while lists
//! are read and checked. The same load runs against `natter server` and
//! against the raw directory of `baseline.rs`, over plain TCP and inside
//! Noise XX server links.

use super::child::{emit, ChildSpec, Proc};
use super::lines::{LineReader, LineWriter, Lines, Wire};
use super::report::{column, percentile, Figure, Goal, Section};
use super::{wall_now, Plan};
use anyhow::{anyhow, bail, Context, Result};
use natter_core::identity::derive_seed;
use natter_core::protocol::{ClientMsg, ServerMsg, Versions};
use natter_core::{encode, Identity, LinkKind, PeerInfo};
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
    /// Peers registered while the lists are timed.
    pub peers: usize,
    /// Peers registered in all (then RSS, then the churn of all).
    pub total: usize,
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

/// A `natter server` process, as a user runs it: its own data directory
/// (key, SQLite name bindings), its log on standard output (JSON, read and
/// discarded by the bench), and the limits a single load generator would
/// trip raised by flags, since every bench client comes from 127.0.0.1.
/// The presence section runs the same server.
pub(super) struct ServerProc {
    child: std::process::Child,
    addr: SocketAddr,
    _data: tempfile::TempDir,
}

impl ServerProc {
    /// Starts a server with room for `total` registered peers.
    pub(super) fn start(total: usize) -> Result<ServerProc> {
        let data = tempfile::Builder::new()
            .prefix("natter-bench-server-")
            .tempdir()
            .context("cannot create the server's data directory")?;
        let many = "1000000";
        let exe = std::env::current_exe().context("cannot find this program's own path")?;
        let mut child = std::process::Command::new(exe)
            .arg("server")
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .arg("--data-dir")
            .arg(data.path())
            .args(["--max-peers", &(total + 10).to_string()])
            .args(["--max-connections", &(total + 100).to_string()])
            // One load generator stands for every peer: the protections
            // against floods (issue 11) are not what is measured here.
            .args(["--max-per-ip", many, "--handshake-rate", many])
            .args(["--handshake-rate-total", many])
            .args(["--max-registrations-per-source", many])
            .args(["--request-burst", many, "--request-rate", many])
            .args([
                "--source-request-burst",
                many,
                "--source-request-rate",
                many,
            ])
            // A list of 19,670 peers is more than the 2 MiB queued for one
            // client by default (room for 10,000), and lists during the
            // churn come on top of thousands of handshakes.
            .args(["--max-queue", "67108864", "--memory-budget", "1073741824"])
            .env_remove("RUST_LOG")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .context("cannot start `natter server`")?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The first log line says where it listens; the rest (one
                // line per registry change) is read so the pipe never
                // fills, and dropped.
                if let Some(addr) = tx.as_ref().and_then(|_| listening_addr(&line)) {
                    let _ = tx.take().map(|tx| tx.send(addr));
                }
            }
        });
        let addr = match rx.recv_timeout(super::child::LINE_TIMEOUT) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("`natter server` did not say where it listens");
            }
        };
        Ok(ServerProc {
            child,
            addr,
            _data: data,
        })
    }

    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where it listens.
    pub(super) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server as a service manager would (SIGTERM) and waits.
    pub(super) fn stop(mut self) -> Result<()> {
        // SAFETY: kill only sends a signal to our own child.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = wall_now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("`natter server` exited with {status}");
                }
                return Ok(());
            }
            if wall_now() > deadline {
                let _ = self.child.kill();
                bail!(
                    "`natter server` did not stop within {} s of SIGTERM",
                    STOP_TIMEOUT.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A section that fails half-way (`?`) does not leave its server running
/// (it did: a failed presence run left one for two hours).
impl Drop for ServerProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The address in `natter server --log-format json`'s "listening on" line.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let value: Value = serde_json::from_str(line).ok()?;
    if !value["message"].as_str()?.starts_with("listening on") {
        return None;
    }
    value["addr"].as_str()?.parse().ok()
}

/// Runs the section: natter's server and the raw directory alternately.
pub fn run(plan: &Plan) -> Result<Section> {
    let (peers, total) = (plan.registry_peers, plan.registry_total);
    let limit = super::child::fd_limit();
    if limit < total as u64 + 100 {
        bail!("the open-file limit is {limit}, too low for {total} connections in one process; raise it (ulimit -n) or use --quick");
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
            "{peers} peers register with one `natter server` process from a load-generator process, then {} full lists; \
             then {} more register ({total} in all: the RSS figure) and leave; the first {peers} leave and rejoin while lists are read",
            plan.registry_lists,
            total - peers,
        ),
    );
    section.figures.push(
        Figure::higher(
            "registrations/s",
            "/s",
            column(&natter, "registrations_per_s"),
            Some(column(&raw, "registrations_per_s")),
            Some(Goal::NoiseRatioAtLeast(0.8)),
        )
        .with_noise(column(&noise, "registrations_per_s")),
    );
    section.figures.push(
        Figure::lower(
            &format!("server RSS per peer ({total} peers)"),
            "KiB",
            column(&natter, "rss_per_peer_kib"),
            Some(column(&raw, "rss_per_peer_kib")),
            Some(Goal::AtMost(4.0)),
        )
        .with_noise(column(&noise, "rss_per_peer_kib")),
    );
    section.figures.push(
        Figure::lower(
            &format!("full list ({peers} peers) p50"),
            "ms",
            column(&natter, "list_p50_ms"),
            Some(column(&raw, "list_p50_ms")),
            Some(Goal::AtMost(5.0)),
        )
        .with_noise(column(&noise, "list_p50_ms")),
    );
    section.figures.push(
        Figure::lower(
            &format!("full list ({peers} peers) p99"),
            "ms",
            column(&natter, "list_p99_ms"),
            Some(column(&raw, "list_p99_ms")),
            Some(Goal::AtMost(8.0)),
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
    let sum = |key: &str| {
        natter
            .iter()
            .map(|r| r[key].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    let lists_during: u64 = sum("lists_during_churn");
    let errors = sum("errors");
    let stale = sum("stale");
    let missing = sum("missing");
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
    let total = plan.registry_total;
    let (server, wire) = match directory {
        Directory::Natter => (Server::Natter(ServerProc::start(total)?), Wire::Noise),
        Directory::Raw(wire) => {
            let mut proc = Proc::bench_child("raw directory", &ChildSpec::RawRegistry { wire })?;
            let hello = proc.recv()?;
            let addr: SocketAddr = serde_json::from_value(hello["addr"].clone())?;
            (Server::Raw(proc, addr), wire)
        }
    };
    std::thread::sleep(Duration::from_millis(200));
    let before = server.rss_kib()?;
    let load = Load {
        server: server.addr(),
        peers: plan.registry_peers,
        total,
        lists: plan.registry_lists,
        concurrency: 128,
        wire,
    };
    let mut gen = Proc::bench_child("load generator", &ChildSpec::Loadgen(load))?;
    let first = gen.wait_for("registrations", |v| v["phase"] == "registered")?;
    gen.send_line("go")?;
    let all = gen.wait_for("the other registrations", |v| {
        v["phase"] == "registered_all"
    })?;
    // Let the last replies leave the server's queues before reading.
    std::thread::sleep(Duration::from_millis(300));
    let after = server.rss_kib()?;
    gen.send_line("go")?;
    let mut result = gen.result()?;
    gen.finish()?;
    server.stop()?;
    let secs =
        first["secs"].as_f64().unwrap_or(f64::NAN) + all["secs"].as_f64().unwrap_or(f64::NAN);
    result["registrations_per_s"] = json!(total as f64 / secs);
    result["rss_before_kib"] = json!(before);
    result["rss_after_kib"] = json!(after);
    result["rss_per_peer_kib"] = json!(after.saturating_sub(before) as f64 / total as f64);
    Ok(result)
}

/// The directory of one repetition.
enum Server {
    Natter(ServerProc),
    Raw(Proc, SocketAddr),
}

impl Server {
    fn addr(&self) -> SocketAddr {
        match self {
            Server::Natter(server) => server.addr,
            Server::Raw(_, addr) => *addr,
        }
    }

    fn rss_kib(&self) -> Result<u64> {
        match self {
            Server::Natter(server) => super::child::rss_kib(server.pid()),
            Server::Raw(proc, _) => proc.rss_kib(),
        }
    }

    fn stop(self) -> Result<()> {
        match self {
            Server::Natter(server) => server.stop(),
            Server::Raw(proc, _) => proc.finish(),
        }
    }
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

    /// The next frame as its JSON text, pings included and not answered
    /// (the caller answers them), for a client that reads thousands of
    /// frames a second and parses only what it counts (the presence
    /// section's subscribers). Cancel-safe with Noise: it only reads.
    pub(super) async fn next_text(&mut self) -> Result<&str> {
        match self.read.next_line().await? {
            Some(line) => Ok(line),
            None => bail!("the server closed the connection"),
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
    pub(super) async fn leave(mut self) -> Result<()> {
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

/// Registrations between two progress lines of the load generator.
const PROGRESS_EVERY: usize = 1_000;

/// Where member `i` is in the churn.
const REGISTERED: u8 = 0;
const LEFT: u8 = 1;
const REJOINED: u8 = 2;
/// Gone for good before the churn: may still be listed at its old address
/// until the server has seen the connection close.
const DEPARTED: u8 = 3;

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
        Wire::Noise => (0..=load.total).map(identity_of).collect(),
        Wire::Plain => vec![identity_of(0)],
    };
    let shared = Arc::new(Shared {
        server: load.server,
        wire: load.wire,
        keys,
        permits: Semaphore::new(load.concurrency),
        state: (0..load.total).map(|_| AtomicU8::new(REGISTERED)).collect(),
        errors: AtomicU64::new(0),
    });
    let (report, mut reports) = tokio::sync::mpsc::unbounded_channel::<Result<()>>();
    let mut members = Members {
        shared: Arc::clone(&shared),
        report,
        leave: Vec::with_capacity(load.total),
        tasks: Vec::with_capacity(load.total),
    };
    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut go = String::new();

    let secs = members.register(0..load.peers, &mut reports).await?;
    emit(&json!({ "phase": "registered", "secs": secs, "per_s": load.peers as f64 / secs }));
    stdin.read_line(&mut go).await?;

    // Full lists of `peers`, one at a time.
    let mut lister = shared.register(load.total, "lister", 9_999).await?;
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

    // The others, up to `total` (the RSS figure is read after them).
    let others = load.total - load.peers;
    let secs = members
        .register(load.peers..load.total, &mut reports)
        .await?;
    emit(&json!({ "phase": "registered_all", "secs": secs, "per_s": others as f64 / secs }));
    go.clear();
    stdin.read_line(&mut go).await?;
    // The lister answered no ping while the others registered (longer
    // than the server's 15 s idle limit on a busy machine): a new session
    // with the same key replaces it.
    drop(lister);
    let mut lister = shared.register(load.total, "lister", 9_998).await?;

    // The members past `peers` go for good (their connections dropped):
    // at the open-file limit, the churn needs their files for the
    // connections that overlap while members leave and rejoin.
    for (i, task) in members.tasks.iter().enumerate().skip(load.peers) {
        shared.state[i].store(DEPARTED, Ordering::Release);
        task.abort();
    }
    // Churn: the first `peers` members leave and rejoin; lists are read
    // meanwhile.
    let start = wall_now();
    // (The departed members' senders are kept: a dropped one would read
    // as "leave" to a task not yet cancelled.)
    let _departed = members.leave.split_off(load.peers);
    for tx in members.leave {
        let _ = tx.send(());
    }
    let churned = std::sync::atomic::AtomicBool::new(false);
    let churn = async {
        for done in 1..=load.peers {
            if let Some(Err(e)) = reports.recv().await {
                eprintln!("natter bench-child: churn: {e:#}");
                shared.errors.fetch_add(1, Ordering::Relaxed);
            }
            if done % PROGRESS_EVERY == 0 {
                emit(&json!({ "phase": "progress", "rejoined": done }));
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
            let (s, m) = check_list(&list, &before, load.total);
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
    let (s, m) = check_list(&last, &before, load.total);
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

/// The members started so far, and how to tell each to leave.
struct Members {
    shared: Arc<Shared>,
    report: tokio::sync::mpsc::UnboundedSender<Result<()>>,
    leave: Vec<oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Members {
    /// Starts members `range` and waits until each has registered;
    /// returns the seconds it took.
    async fn register(
        &mut self,
        range: std::ops::Range<usize>,
        reports: &mut tokio::sync::mpsc::UnboundedReceiver<Result<()>>,
    ) -> Result<f64> {
        let start = wall_now();
        let count = range.len();
        for i in range {
            let (tx, rx) = oneshot::channel();
            self.leave.push(tx);
            let task = tokio::spawn(member(i, Arc::clone(&self.shared), rx, self.report.clone()));
            self.tasks.push(task);
        }
        for done in 1..=count {
            reports
                .recv()
                .await
                .ok_or_else(|| anyhow!("members stopped"))?
                .context("registration")?;
            // A line now and then: the bench gives up on a child silent
            // for a minute, and on a busy machine 10,000 registrations
            // with a handshake each may take longer.
            if done % PROGRESS_EVERY == 0 {
                emit(&json!({ "phase": "progress", "registered": done }));
            }
        }
        Ok(start.elapsed().as_secs_f64())
    }
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
        if old && before[i] != REGISTERED && before[i] != DEPARTED {
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
