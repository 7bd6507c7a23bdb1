//! `natter server`: the directory server on real sockets.

use crate::cli::{LogFormat, ServerArgs};
use natter_core::rate::RateLimit;
use natter_core::registry::ClusterConfig;
use natter_core::{HeartbeatConfig, RegistryConfig};
use natter_net_real::server_sockets::{Buffer, ServerSocketsError};
use natter_net_real::{
    keyfile, run_server, Embedded, NameBindings, NatsKv, Net, ServerSockets, Shared, TokioNet,
};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use tracing_subscriber::EnvFilter;

/// Runs the server until Ctrl-C (or SIGTERM); returns the exit code.
pub async fn run(args: ServerArgs) -> i32 {
    init_logging(args.log_format);
    let addr = match resolve(&args.listen).await {
        Ok(addr) => addr,
        Err(message) => {
            eprintln!("natter server: {message}");
            return 2;
        }
    };
    let sockets = ServerSockets {
        send_buffer: args.limits.send_buffer,
        receive_buffer: args.limits.receive_buffer,
        ..ServerSockets::DEFAULT
    };
    let listener = match sockets.bind(addr) {
        Ok(listener) => listener,
        Err(e @ ServerSocketsError::Capped { which, .. }) => {
            let flag = match which {
                Buffer::Send => "--send-buffer",
                Buffer::Receive => "--receive-buffer",
            };
            eprintln!("natter server: {flag}: {e}");
            return 2;
        }
        Err(ServerSocketsError::Io(e)) => {
            let hint = if crate::cli::is_privileged(addr.port()) {
                " (ports below 1024 usually need administrator rights)"
            } else {
                ""
            };
            eprintln!(
                "natter server: cannot listen on {addr}: {e}{hint}; is another server running? pick another --listen ADDR"
            );
            return 1;
        }
    };
    let mut config = registry_config(&args);
    fit_open_file_limit(&mut config);
    give_back_freed_memory();
    match server_keys(&args) {
        Ok((identity, seed)) => {
            config.identity = identity;
            config.seed = seed;
        }
        Err(reason) => {
            eprintln!("natter server: cannot use its key: {reason}");
            return 1;
        }
    }
    match &args.store {
        None => run_embedded(&args, listener, config).await,
        Some(url) => run_shared(url, listener, config).await,
    }
}

/// One server: the name bindings in SQLite in the data directory.
async fn run_embedded(
    args: &ServerArgs,
    listener: <TokioNet as Net>::Listener,
    config: RegistryConfig,
) -> i32 {
    let Some(path) = bindings_path(args) else {
        eprintln!(
            "natter server: no data directory on this system to keep the name bindings in; give one with --data-dir DIR"
        );
        return 1;
    };
    let store = match NameBindings::open(&path) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("natter server: cannot keep the name bindings: {e}");
            return 1;
        }
    };
    match run_server(
        TokioNet,
        listener,
        config,
        Embedded::from(store),
        None,
        stop_signal(),
    )
    .await
    {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("natter server: cannot read the name bindings: {e}");
            1
        }
    }
}

/// Several servers sharing one directory on NATS JetStream at `url`. The
/// server starts even while NATS is unreachable (it says so, and refuses
/// registrations until NATS answers).
async fn run_shared(
    url: &str,
    listener: <TokioNet as Net>::Listener,
    config: RegistryConfig,
) -> i32 {
    let kv = match NatsKv::connect(url).await {
        Ok(kv) => kv,
        Err(e) => {
            eprintln!("natter server: {e}");
            return 2;
        }
    };
    let port = listener.local_addr().map_or(0, |addr| addr.port());
    let cluster = ClusterConfig::new(server_id(&config, port));
    tracing::info!(store = %url, server = %cluster.server, "sharing the directory through NATS at {url} as {}", cluster.server);
    match run_server(
        TokioNet,
        listener,
        config,
        Shared::new(kv, cluster),
        None,
        stop_signal(),
    )
    .await
    {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("natter server: {e}");
            1
        }
    }
}

/// This server's id among those sharing a store: its key's fingerprint,
/// the host's name and the listening port. Stable across restarts (so a
/// restarted server recognises the entries its earlier life left), and
/// distinct even for servers that were given copies of one key, or run
/// side by side on one host (as the tests do).
fn server_id(config: &RegistryConfig, port: u16) -> String {
    let fingerprint = config.identity.public().fingerprint();
    format!("{fingerprint}@{}:{port}", host_name())
}

#[cfg(unix)]
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..len]) {
        Ok(name) if ok && !name.is_empty() => name.to_string(),
        _ => "localhost".to_string(),
    }
}

#[cfg(not(unix))]
fn host_name() -> String {
    std::env::var("COMPUTERNAME").unwrap_or_else(|_| "localhost".to_string())
}

/// The server's key (`DIR/server/identity`, or `--identity FILE`; created
/// on first use) and a fresh seed from the system for its handshakes.
fn server_keys(args: &ServerArgs) -> Result<(natter_core::Identity, [u8; 32]), String> {
    let path = crate::data_dir::identity_path(&args.identity, crate::data_dir::Owner::Server)
        .map_err(|_| "no data directory (is HOME set?); give --data-dir DIR".to_string())?;
    let loaded = keyfile::load_or_create(&path).map_err(|e| e.to_string())?;
    let seed = keyfile::random_seed().map_err(|e| e.to_string())?;
    Ok((loaded.identity, seed))
}

/// `DIR/server/names.sqlite`, DIR being `--data-dir` or the platform data
/// directory (`~/.local/share/natter` on Linux).
fn bindings_path(args: &ServerArgs) -> Option<PathBuf> {
    let dir = crate::data_dir::DataDir::from_flag(args.identity.data_dir.as_deref()).ok()?;
    Some(dir.server().join("names.sqlite"))
}

/// The registry's settings from the flags.
fn registry_config(args: &ServerArgs) -> RegistryConfig {
    let limits = &args.limits;
    let defaults = RegistryConfig::default();
    RegistryConfig {
        max_peers: args.max_peers,
        register_timeout: limits.register_timeout,
        heartbeat: HeartbeatConfig {
            lost_after: limits.idle_timeout,
            ..defaults.heartbeat
        },
        max_frame: limits.max_frame as usize,
        max_request: limits.max_request as usize,
        line_timeout: limits.line_timeout,
        max_connections_per_ip: limits.max_per_ip as usize,
        requests: RateLimit {
            burst: limits.request_burst,
            per_second: limits.request_rate,
        },
        max_connections: limits.max_connections as usize,
        max_registrations_per_source: limits.max_registrations_per_source as usize,
        // A host may open its whole share at once, and be told so for as
        // many more.
        handshakes_per_source: RateLimit {
            burst: limits.max_per_ip.saturating_mul(2),
            per_second: limits.handshake_rate,
        },
        handshakes_total: RateLimit {
            burst: limits.handshake_rate_total.saturating_mul(2),
            per_second: limits.handshake_rate_total,
        },
        source_requests: RateLimit {
            burst: limits.source_request_burst,
            per_second: limits.source_request_rate,
        },
        memory_budget: usize::try_from(limits.memory_budget).unwrap_or(usize::MAX),
        max_queue: usize::try_from(limits.max_queue).unwrap_or(usize::MAX),
        limit_loopback: limits.limit_loopback,
        name_ttl: args.name_ttl,
        ..defaults
    }
}

/// File descriptors kept besides the clients' connections: the listener,
/// the bindings database, standard streams, the runtime's own.
const SPARE_FILES: u64 = 64;

/// Raises the open-file limit to what the system allows and lowers
/// `max_connections` (and if need be `max_probes`, each probe being a
/// socket) to fit under it, so that the server refuses connections
/// itself, cheapest first, instead of failing to accept them: with
/// every descriptor in use nobody at all could connect. The server's
/// second log line gives the limit and what fits.
fn fit_open_file_limit(config: &mut RegistryConfig) {
    let Some(limit) = raise_open_file_limit() else {
        return;
    };
    let probes = (config.max_probes as u64).min(limit / 4);
    let room = limit.saturating_sub(SPARE_FILES + probes).max(1);
    config.max_probes = probes.max(1) as usize;
    config.max_connections = config.max_connections.min(room as usize);
    config.open_file_limit = Some(limit);
}

/// The soft open-file limit, raised to the hard one if it was lower.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every system
fn raise_open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write `limit`.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_max > limit.rlim_cur {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
        Some(limit.rlim_cur as u64)
    }
}

#[cfg(not(unix))]
fn raise_open_file_limit() -> Option<u64> {
    None
}

/// How often freed memory is handed back to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// glibc's allocator keeps the memory an attack made the server use (the
/// queues of clients that were cut, their partial lines) in its arenas
/// after it is freed, so the server's resident memory would stay at its
/// peak for good. Every few seconds it is asked to give free pages back
/// (a walk of the free lists: about a millisecond).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn give_back_freed_memory() {
    tokio::spawn(async {
        let mut every = tokio::time::interval(TRIM_EVERY);
        loop {
            every.tick().await;
            // SAFETY: malloc_trim has no preconditions.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    });
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn give_back_freed_memory() {}

/// `--listen` as a socket address; a host name is resolved.
async fn resolve(listen: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = listen.parse() {
        return Ok(addr);
    }
    match tokio::net::lookup_host(listen).await {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("{listen} resolves to no address")),
        Err(e) => Err(format!(
            "cannot use --listen {listen}: {e}; give an address like 0.0.0.0:4201 or [::]:4201"
        )),
    }
}

fn init_logging(format: LogFormat) {
    // The NATS client logs every reconnection attempt at info; the
    // server says itself, once, when it is cut off and when it is back.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,async_nats=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .with_target(false);
    match format {
        // People read the sentence; the structured fields (which repeat
        // it) are for --log-format json.
        LogFormat::Text => builder
            .with_ansi(std::io::stdout().is_terminal())
            .fmt_fields(tracing_subscriber::fmt::format::debug_fn(
                |writer, field, value| {
                    if field.name() == "message" {
                        write!(writer, "{value:?}")
                    } else {
                        Ok(())
                    }
                },
            ))
            .init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
    }
}

/// Completes on Ctrl-C, or on SIGTERM where there is one (service
/// managers and `kill` send it), so that connections are closed cleanly.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                biased;
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
