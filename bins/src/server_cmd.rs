//! `natter server`: the directory server on real sockets.

use crate::cli::{LogFormat, ServerArgs};
use natter_core::rate::RateLimit;
use natter_core::{HeartbeatConfig, RegistryConfig};
use natter_net_real::{keyfile, run_server, NameBindings, Net, TokioNet};
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
    let listener = match TokioNet.bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
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
    let Some(path) = bindings_path(&args) else {
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
    let mut config = registry_config(&args);
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
    match run_server(TokioNet, listener, config, Some(store), None, stop_signal()).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("natter server: cannot read the name bindings: {e}");
            1
        }
    }
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
        max_connections_per_ip: limits.max_per_ip as usize,
        requests: RateLimit {
            burst: limits.request_burst,
            per_second: limits.request_rate,
        },
        name_ttl: args.name_ttl,
        ..defaults
    }
}

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
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
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
