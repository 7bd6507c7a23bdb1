//! The directory server's driver: runs one [`Registry`] over a [`Net`].
//!
//! The registry decides everything; this loop only moves bytes, link events
//! and timer expiry in and carries the registry's outputs out, in order,
//! after every call into it (the sans-IO contract). The one thing it does
//! on its own is dial a registering peer's address when the registry asks
//! for a reachability probe.
//!
//! The registry's store operations of each drain go to the [`Store`]
//! before the loop waits again, and what the store tells comes back as
//! [`RegistryInput::Store`]. With the embedded store and its SQLite
//! bindings, a drain's operations are written in one transaction: a
//! binding is durable before the registration that made it is confirmed
//! (`registered` goes out only after the reachability probe, in a later
//! drain).

use crate::link::{LinkEvent, Links, Overflow, WRITE_QUEUE};
use crate::net::{Clock, Listener, Net};
use crate::store::Store;
use natter_core::registry::{LeaveReason, SourceKey, StoreOp};
use natter_core::{LinkId, Registry, RegistryConfig, RegistryInput, RegistryLog, RegistryOutput};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Where the server's directory log goes besides `tracing`: the simulation
/// collects the lines to snapshot them.
pub type LogHook = mpsc::UnboundedSender<String>;

/// Runs the directory server until `shutdown` completes, then closes every
/// connection gracefully (bounded by [`crate::link::LINGER`]).
///
/// The listener is bound by the caller, so that a bind error is reported
/// where the address was chosen and port 0 can be resolved before start.
/// Every [`RegistryLog`] is logged with `tracing::info!` (structured
/// fields, the human sentence as message) and, if `logs` is given, sent
/// there as its one-line text.
///
/// `store` is [`crate::Embedded`] for one server (with no SQLite file,
/// names are bound to keys in memory only, until the server stops) or a
/// [`crate::Shared`] store, whose cluster configuration the registry then
/// runs with. Fails only if the store cannot start; a write that fails
/// later is logged (embedded: its bindings live on in memory).
pub async fn run_server<N: Net, S: Store>(
    net: N,
    listener: N::Listener,
    mut config: RegistryConfig,
    mut store: S,
    logs: Option<LogHook>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), S::Error> {
    let clock = Clock::start();
    if let Some(cluster) = store.cluster() {
        config.cluster = Some(cluster);
    }
    // One line for both: users compare the fingerprint with the one their
    // natter pinned for this address.
    let fingerprint = config.identity.public().fingerprint();
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, %fingerprint, "listening on {addr}, key fingerprint {fingerprint}");
    }
    if let Some(limit) = config.open_file_limit {
        let (connections, probes) = (config.max_connections, config.max_probes);
        tracing::info!(
            open_files = limit,
            max_connections = connections,
            max_probes = probes,
            "open-file limit {limit}: at most {connections} connections and {probes} probes at once"
        );
    }
    let bindings = store
        .start(clock.now(&net).wall.as_secs(), config.name_ttl)
        .await?;
    let now = clock.now(&net);
    let (links, mut events) = Links::with_queue_limit(net.clone(), config.max_queue);
    let mut server = Server {
        memory_budget: config.memory_budget,
        limit_loopback: config.limit_loopback,
        probe_timeout: config.probe_timeout,
        probes: JoinSet::new(),
        registry: Registry::with_bindings(config, now, bindings),
        store,
        store_ops: Vec::new(),
        links,
        next_link: 0,
        clients: BTreeMap::new(),
        logs,
        clock,
        net,
    };
    server.links.listen(listener);
    tokio::pin!(shutdown);
    loop {
        let deadline = server
            .registry
            .poll_timeout()
            .map(|at| server.clock.deadline(at));
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            () = crate::sleep_until(deadline) => {
                let now = server.clock.now(&server.net);
                server.registry.handle_timeout(now);
                server.drain();
            }
            // A probe task never panics and is aborted only when the
            // server stops, so every probe is answered.
            Some(Ok((link, reachable))) = server.probes.join_next() => {
                server.input(RegistryInput::Probed { link, reachable });
            }
            input = server.store.next() => server.input(RegistryInput::Store(input)),
            Some(event) = events.recv() => server.network(event),
        }
    }
    tracing::info!("shutting down");
    drop(events);
    server.links.shutdown().await;
    Ok(())
}

struct Server<N: Net, S: Store> {
    registry: Registry,
    store: S,
    /// Store operations of the drain in progress.
    store_ops: Vec<StoreOp>,
    links: Links<N>,
    /// Reachability probes in progress, each answering `(link, reachable)`;
    /// the registry bounds how many.
    probes: JoinSet<(LinkId, bool)>,
    probe_timeout: Duration,
    /// Queued output (counted by `links`) plus partial input (counted by
    /// the registry) allowed in all; past it, the heaviest is cut.
    memory_budget: usize,
    /// Whether clients on the server's own host take turns at the intake
    /// like other sources (they are exempt from shares otherwise).
    limit_loopback: bool,
    /// The registry does not allocate link ids; the driver counts them,
    /// never reusing one.
    next_link: u64,
    /// Each open link's client address, for log lines the driver itself
    /// writes (a client dropped for not reading).
    clients: BTreeMap<LinkId, SocketAddr>,
    logs: Option<LogHook>,
    clock: Clock,
    net: N,
}

impl<N: Net, S: Store> Server<N, S> {
    fn input(&mut self, input: RegistryInput) {
        let now = self.clock.now(&self.net);
        let ignored = self.registry.ignored_frames();
        self.registry.handle_input(now, input);
        let skipped = self.registry.ignored_frames() - ignored;
        if skipped > 0 {
            tracing::debug!(
                skipped,
                "ignored frames of an unknown type (a newer client?)"
            );
        }
        self.drain();
    }

    /// Dials `addr` and hangs up at once: whether the connection opens
    /// within the probe timeout is all the registry asks.
    fn probe(&mut self, link: LinkId, addr: SocketAddr) {
        let net = self.net.clone();
        let timeout = self.probe_timeout;
        self.probes.spawn(async move {
            let connected = tokio::time::timeout(timeout, net.connect(addr)).await;
            (link, matches!(connected, Ok(Ok(_))))
        });
    }

    fn network(&mut self, event: LinkEvent<N::Stream>) {
        match event {
            LinkEvent::Accepted { stream, addr } => {
                self.next_link += 1;
                let link = LinkId(self.next_link);
                tracing::debug!(%link, %addr, "connection accepted");
                if self.limit_loopback || !addr.ip().to_canonical().is_loopback() {
                    self.links.open_from(link, stream, SourceKey::of(addr.ip()));
                } else {
                    self.links.open(link, stream);
                }
                self.clients.insert(link, addr);
                self.input(RegistryInput::Opened { link, addr });
            }
            LinkEvent::Bytes { link, bytes, turn } => {
                self.input(RegistryInput::Bytes { link, bytes });
                // The source's next read may come (see `crate::intake`).
                drop(turn);
            }
            LinkEvent::Closed { link, reason } => {
                if self.links.closed(link) {
                    self.clients.remove(&link);
                    tracing::debug!(%link, %reason, "connection closed");
                    self.input(RegistryInput::Closed { link });
                }
            }
            // The registry never dials out.
            LinkEvent::Connected { .. } | LinkEvent::ConnectFailed { .. } => {}
        }
    }

    /// Carries out every output of the last call, in order, then holds
    /// the memory budget (which may cut a connection, whose outputs are
    /// carried out in turn).
    fn drain(&mut self) {
        loop {
            self.carry_out();
            if !self.hold_budget() {
                break;
            }
        }
        self.write_store();
    }

    /// If the queued output and the partial input together pass the
    /// memory budget, drops the unread output of a connection already
    /// closed, or else cuts the connection holding the most of either: a
    /// client that does not read what it asked for, or one that sends a
    /// line that never ends. True if it cut one.
    fn hold_budget(&mut self) -> bool {
        let output = self.links.queued();
        let input = self.registry.partial_input();
        if output + input <= self.memory_budget {
            return false;
        }
        // A connection already closed (refused, rate-limited, left) whose
        // client has not read what was still queued for it: dropped first,
        // it was being let go anyway.
        if let Some((link, queued)) = self.links.heaviest_closing() {
            tracing::debug!(%link, queued, "over the memory budget: dropping what a closed connection left unread");
            self.links.cut(link);
            return true;
        }
        let heaviest_output = self.links.heaviest();
        let heaviest_input = self.registry.heaviest_input();
        let now = self.clock.now(&self.net);
        let budget = self.memory_budget;
        let output_first = match (heaviest_output, heaviest_input) {
            (Some((_, queued)), Some((_, held))) => queued >= held,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return false,
        };
        if let (true, Some((link, queued))) = (output_first, heaviest_output) {
            let why = format!(
                "over the server's memory budget of {} KiB, with the most output queued ({} KiB unread)",
                budget / 1024,
                queued / 1024
            );
            self.links.cut(link);
            self.dropped(link, &why);
            self.registry
                .handle_input(now, RegistryInput::Stalled { link });
        } else if let Some((link, held)) = heaviest_input {
            tracing::warn!(
                %link, held, budget,
                "over the memory budget: cutting the connection with the most partial input"
            );
            self.registry
                .handle_input(now, RegistryInput::OverBudget { link });
        }
        true
    }

    /// Carries out every output of the registry so far, in order.
    fn carry_out(&mut self) {
        while let Some(output) = self.registry.poll_output() {
            match output {
                RegistryOutput::Send { link, bytes } => {
                    if let Err(overflow) = self.links.send_checked(link, bytes) {
                        let why = match overflow {
                            Overflow::Frames => {
                                format!("not reading (write queue of {WRITE_QUEUE} frames full)")
                            }
                            Overflow::Bytes(limit) => {
                                format!("not reading (write queue of {} KiB full)", limit / 1024)
                            }
                        };
                        self.dropped(link, &why);
                        let now = self.clock.now(&self.net);
                        self.registry
                            .handle_input(now, RegistryInput::Stalled { link });
                    }
                }
                RegistryOutput::Close { link } => {
                    self.clients.remove(&link);
                    self.links.close(link);
                }
                RegistryOutput::Probe { link, addr } => self.probe(link, addr),
                RegistryOutput::Store(op) => self.store_ops.push(op),
                RegistryOutput::Log(log) => {
                    trace_log(&log);
                    if let Some(hook) = &self.logs {
                        let _ = hook.send(log.to_string());
                    }
                }
            }
        }
    }

    /// Hands the store operations of the last drain to the store (the
    /// embedded one writes them in one transaction).
    fn write_store(&mut self) {
        if self.store_ops.is_empty() {
            return;
        }
        self.store.apply(&self.store_ops);
        self.store_ops.clear();
    }
}

impl<N: Net, S: Store> Server<N, S> {
    /// Says in the server log why a client was cut off (its write queue
    /// overflowed, or it held the most of a memory budget passed): the
    /// registry only learns that it stopped reading, so its own line
    /// cannot tell the reason.
    fn dropped(&mut self, link: LinkId, why: &str) {
        let client = self
            .clients
            .remove(&link)
            .map_or_else(|| link.to_string(), |addr| addr.to_string());
        let line = format!("dropped {client}: {why}");
        tracing::warn!(change = "dropped", client = %client, reason = "not_reading", "{line}");
        if let Some(hook) = &self.logs {
            let _ = hook.send(line);
        }
    }
}

/// One directory change as a structured `tracing` event, so that
/// `--log-format json` gives machines the fields and people the sentence.
fn trace_log(log: &RegistryLog) {
    match log {
        RegistryLog::Registered {
            name,
            addr,
            reachable,
            status,
        } => {
            tracing::info!(change = "registered", name = %name, addr = %addr, reachable, status = %status, "{log}")
        }
        RegistryLog::StatusChanged { name, status } => {
            tracing::info!(change = "status", name = %name, status = %status, "{log}")
        }
        RegistryLog::Deregistered { name, reason } => {
            let reason = match reason {
                LeaveReason::Left => "left".to_string(),
                LeaveReason::Closed => "closed".to_string(),
                LeaveReason::Lost => "lost".to_string(),
                LeaveReason::Refused(code) => format!("refused:{code}"),
                LeaveReason::NotReading => "not_reading".to_string(),
            };
            tracing::info!(change = "deregistered", name = %name, reason = %reason, "{log}")
        }
        RegistryLog::Refused {
            client,
            code,
            detail,
        } => {
            tracing::info!(change = "refused", client = %client, code = %code, detail = %detail, "{log}")
        }
        RegistryLog::StoreUnreachable => {
            tracing::warn!(change = "store", reachable = false, "{log}")
        }
        RegistryLog::StoreReachable => {
            tracing::info!(change = "store", reachable = true, "{log}")
        }
        RegistryLog::RefusedSummary {
            from, code, count, ..
        } => {
            let code = code.map_or_else(|| "several".to_string(), |code| code.to_string());
            tracing::info!(change = "refused_summary", from = %from, code = %code, count, "{log}")
        }
    }
}
