//! The bench's child processes: what each one runs ([`ChildSpec`]), and the
//! parent's grip on one ([`Proc`]): its standard input, its standard output
//! read as JSON lines by a thread, its memory.

use super::cluster::ClusterLoad;
use super::handshake::Handshake;
use super::lines::Wire;
use super::presence::PresenceLoad;
use super::registry_scale::Load;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// What a `natter bench-child` process runs; passed as one JSON argument.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum ChildSpec {
    /// A natter directory server (`run_server`) on 127.0.0.1, port chosen
    /// by the system, with its per-IP and request limits raised: every
    /// bench client comes from 127.0.0.1. Prints `{"addr", "pid"}`, runs
    /// until its standard input closes.
    ///
    /// With `store`, it shares its directory through NATS JetStream there
    /// (the cluster section).
    Server {
        max_peers: usize,
        #[serde(default)]
        store: Option<String>,
    },
    /// A natter peer (`run_peer`, fed through its line channel) that calls
    /// `partner` and runs `work`, then quits. Prints `{"result": …}`.
    Sender {
        server: SocketAddr,
        name: String,
        partner: String,
        transcripts: PathBuf,
        work: Work,
    },
    /// Baseline: a raw JSON-lines receiver that acks every `msg`.
    RawReceiver { wire: Wire },
    /// Baseline: a raw JSON-lines sender running `work` against `addr`.
    RawSender {
        addr: SocketAddr,
        work: Work,
        wire: Wire,
    },
    /// Baseline: a raw JSON-lines directory (hello, register, list, ping).
    RawRegistry { wire: Wire },
    /// The registry section's load generator.
    Loadgen(Load),
    /// The cluster section's load generator.
    ClusterLoad(ClusterLoad),
    /// The presence section's load generator.
    PresenceLoad(PresenceLoad),
    /// The handshake section: accepts connections and answers `via`.
    Responder { via: Handshake },
    /// The handshake section: opens `warmup + connections` links to
    /// `addr`, one at a time, and times them.
    Initiator {
        addr: SocketAddr,
        via: Handshake,
        connections: usize,
        warmup: usize,
    },
}

/// A sender's workload, the same for natter and the raw baseline.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Work {
    /// One message at a time, each waiting for its receipt.
    Latency {
        pings: usize,
        warmup: usize,
        size: usize,
    },
    /// `count` messages as fast as the window of unacknowledged messages
    /// allows.
    Burst {
        count: usize,
        size: usize,
        window: usize,
    },
    /// Messages as fast as accepted for `millis`, sampling the in-flight
    /// count and this process's memory.
    Flood { millis: u64, size: usize },
}

/// A message text of `size` bytes, numbered so that no two are alike.
pub fn message_text(n: u64, size: usize) -> String {
    let mut text = format!("m{n:08} ");
    while text.len() < size {
        text.push((b'a' + (text.len() % 26) as u8) as char);
    }
    text.truncate(size);
    text
}

/// One JSON line on standard output, flushed (the parent is waiting).
pub fn emit(value: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

/// Resident memory of a process, in KiB (`VmRSS` of /proc/PID/status).
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status (Linux only)"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS in /proc/{pid}/status"))
}

/// CPU time a process has used so far, user and system, in seconds
/// (`utime + stime` of /proc/PID/stat, all its threads).
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat (Linux only)"))?;
    // The command name, in parentheses, may hold spaces: the fields
    // counted are those after its closing parenthesis, from field 3.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |at: usize| -> Result<f64> {
        fields
            .get(at)
            .and_then(|f| f.parse::<u64>().ok())
            .map(|t| t as f64)
            .ok_or_else(|| anyhow!("no CPU times in /proc/{pid}/stat"))
    };
    // utime and stime are fields 14 and 15 of the file.
    let (user, system) = (ticks(11)?, ticks(12)?);
    // SAFETY: sysconf only reads a system setting.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if per_second <= 0 {
        bail!("the clock tick of /proc/{pid}/stat is unknown");
    }
    Ok((user + system) / per_second as f64)
}

/// Time the threads of a process have spent runnable but waiting for a
/// CPU so far, in seconds: the sum over /proc/PID/task/*/schedstat's
/// second field (nanoseconds). On a shared machine it says whether a
/// process got the CPU it asked for. Threads that have ended are no
/// longer counted.
pub fn run_queue_wait_seconds(pid: u32) -> Result<f64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .with_context(|| format!("cannot read /proc/{pid}/task (Linux only)"))?;
    let mut nanos = 0u64;
    for task in tasks.flatten() {
        // A thread may end between the listing and the read.
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        nanos += stat
            .split_whitespace()
            .nth(1)
            .and_then(|w| w.parse::<u64>().ok())
            .ok_or_else(|| anyhow!("no run-queue time in {}", task.path().display()))?;
    }
    Ok(nanos as f64 / 1e9)
}

/// Files a `natter server` keeps beside one socket per client: its spare
/// files and probes (`fit_open_file_limit` in `server_cmd.rs`: 64 + 256),
/// and the bench's lister, with a margin.
pub const SERVER_SPARE_FILES: u64 = 64 + 256 + 10;

/// Raises the limit of open files to at least `wanted` where allowed: the
/// hard limit too when the bench may (as root), else the soft limit to
/// the hard one. Child processes inherit it.
pub fn raise_fd_limit_to(wanted: u64) {
    #[cfg(unix)]
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every system
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 || limit.rlim_cur as u64 >= wanted
        {
            return;
        }
        let raised = libc::rlimit {
            rlim_cur: wanted as libc::rlim_t,
            rlim_max: limit.rlim_max.max(wanted as libc::rlim_t),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
            raise_fd_limit();
        }
    }
    #[cfg(not(unix))]
    let _ = wanted;
}

/// Raises the soft limit of open files to the hard limit: the registry
/// section holds a connection per peer in each of two processes.
pub fn raise_fd_limit() {
    #[cfg(unix)]
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// The soft limit of open files of this process.
pub fn fd_limit() -> u64 {
    #[cfg(unix)]
    // SAFETY: getrlimit only writes the struct we pass.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            return limit.rlim_cur;
        }
    }
    1024
}

/// Microseconds the reader of a child's output waits after each line;
/// shared, so that the parent can speed the reading up later.
pub type Pace = Arc<AtomicU64>;

/// Hang guard for one awaited line; things happen in milliseconds, this
/// is only reached when something is broken.
pub const LINE_TIMEOUT: Duration = Duration::from_secs(60);

/// A running child process whose standard output is JSON lines.
pub struct Proc {
    label: String,
    child: Child,
    stdin: Option<ChildStdin>,
    /// Lines as read: parsed by [`Proc::recv`], not by the reading
    /// thread, so that a burst the bench times (100,000 `message` events
    /// of the receiving peer) is not slowed by the bench parsing them on
    /// the same CPUs meanwhile.
    lines: mpsc::Receiver<Option<String>>,
    pub pid: u32,
}

impl Proc {
    /// `natter bench-child SPEC`.
    pub fn bench_child(label: &str, spec: &ChildSpec) -> Result<Proc> {
        let spec = serde_json::to_string(spec)?;
        Self::spawn(label, &["bench-child".to_string(), spec], None)
    }

    /// `natter ARGS…` (e.g. a real `natter peer --json`). With `pace`, its
    /// standard output is read no faster than one line per `pace`
    /// microseconds (a slow terminal), as long as that stays above zero.
    pub fn natter(label: &str, args: &[String], pace: Option<Pace>) -> Result<Proc> {
        Self::spawn(label, args, pace)
    }

    fn spawn(label: &str, args: &[String], pace: Option<Pace>) -> Result<Proc> {
        let exe = std::env::current_exe().context("cannot find this program's own path")?;
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .env_remove("RUST_LOG")
            .spawn()
            .with_context(|| format!("cannot start the {label} process"))?;
        let stdout = child.stdout.take().expect("piped");
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(Some(line)).is_err() {
                    return;
                }
                if let Some(pace) = &pace {
                    let micros = pace.load(Ordering::Relaxed);
                    if micros > 0 {
                        std::thread::sleep(Duration::from_micros(micros));
                    }
                }
            }
            let _ = tx.send(None);
        });
        Ok(Proc {
            label: label.to_string(),
            pid: child.id(),
            child,
            stdin,
            lines,
        })
    }

    /// The next line, or an error if the process ended or said nothing
    /// for [`LINE_TIMEOUT`].
    pub fn recv(&mut self) -> Result<Value> {
        match self.lines.recv_timeout(LINE_TIMEOUT) {
            Ok(Some(line)) => Ok(parse(line)),
            Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                bail!("the {} process ended unexpectedly", self.label)
            }
            Err(mpsc::RecvTimeoutError::Timeout) => bail!(
                "the {} process said nothing for {} s",
                self.label,
                LINE_TIMEOUT.as_secs()
            ),
        }
    }

    /// The next line, if one is already there.
    pub fn try_recv(&mut self) -> Option<Value> {
        self.lines.try_recv().ok().flatten().map(parse)
    }

    /// Skips lines until one matches; an `error` line is a failure.
    pub fn wait_for(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Result<Value> {
        loop {
            let value = self.recv()?;
            if matches(&value) {
                return Ok(value);
            }
            if value.get("event").and_then(Value::as_str) == Some("error")
                || value.get("error").is_some()
            {
                bail!("{} failed while waiting for {what}: {value}", self.label);
            }
        }
    }

    /// Waits for a `natter peer --json` event by name.
    pub fn wait_event(&mut self, event: &str) -> Result<Value> {
        self.wait_for(event, |v| {
            v.get("event").and_then(Value::as_str) == Some(event)
        })
    }

    /// Waits for a bench child's `{"result": …}` line.
    pub fn result(&mut self) -> Result<Value> {
        let v = self.wait_for("its result", |v| v.get("result").is_some())?;
        Ok(v["result"].clone())
    }

    pub fn send_line(&mut self, line: &str) -> Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow!("{}: standard input already closed", self.label))?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .with_context(|| format!("cannot write to the {} process", self.label))
    }

    pub fn rss_kib(&self) -> Result<u64> {
        rss_kib(self.pid)
    }

    /// Closes standard input (end of input: a peer quits, a bench child
    /// stops) and waits for the process to exit.
    pub fn finish(mut self) -> Result<()> {
        self.stdin = None;
        let deadline = super::wall_now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("the {} process exited with {status}", self.label);
                }
                return Ok(());
            }
            if super::wall_now() > deadline {
                bail!(
                    "the {} process did not exit after its input closed",
                    self.label
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A line of a child's output as JSON; a line that is not JSON as a string.
fn parse(line: String) -> Value {
    serde_json::from_str(&line).unwrap_or(Value::String(line))
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
