//! Real `natter` processes on loopback, driven through their `--json`
//! events, for the end-to-end tests.
//!
//! Each process's standard output is read by a thread that parses one JSON
//! object per line into a channel; tests wait for the event they need with
//! a generous timeout that only guards against a hang. Nothing here sleeps
//! to let something happen.
//!
//! The server is started with `--listen 127.0.0.1:0 --log-format json`: its
//! first log line, `{"message":"listening on …","addr":"127.0.0.1:PORT",
//! "fingerprint":…}`, tells which port the system chose.
//!
//! Clients written by hand (the limit and soak tests) stand where a client
//! in another language would: [`secure_client`] runs the server link's
//! Noise handshake (docs/PROTOCOL.md) and gives the session, whose
//! plaintext is the JSON lines.

#![allow(dead_code)]

pub mod attack;

use natter_core::identity::Identity;
use natter_core::secure::LinkKind;
use natter_net_real::secure_stream::{SecureStream, SecureStreamError};
use serde_json::Value;
use std::io::Read;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// Hang guard for one awaited event. Events arrive in milliseconds; this
/// is only reached when something is broken.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the natter processes of the tests keep their keys and state
/// (`XDG_DATA_HOME`, which natter's default data directory follows): in
/// cargo's scratch directory for tests, never the user's own.
pub fn data_home() -> std::path::PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("data-home")
}

const NATTER: &str = env!("CARGO_BIN_EXE_natter");

/// The key every test server holds. The peers of the tests share their
/// data directory ([`data_home`]), so they pin a server's key per address
/// (`known_servers`) across tests and runs; servers on ports the system
/// picks must then all be the same server to them.
pub fn server_identity() -> std::path::PathBuf {
    static MADE: std::sync::Once = std::sync::Once::new();
    let path = data_home().join("test-server").join("identity");
    MADE.call_once(|| {
        natter_net_real::keyfile::load_or_create(&path).expect("the test server's key");
    });
    path
}

/// What the reader thread saw.
enum Line {
    Json(Value),
    /// Standard output closed: the process ended (or closed it).
    Eof,
}

/// A running `natter` process whose standard output is JSON lines.
pub struct Proc {
    pub label: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Line>,
    /// Every line seen so far, for failure messages.
    pub seen: Vec<Value>,
    eof: bool,
    /// What the process wrote on standard error (complete once it ended).
    stderr: Arc<Mutex<String>>,
}

impl Proc {
    fn spawn(label: &str, args: &[&str]) -> Proc {
        Proc::spawn_bin(NATTER, label, args)
    }

    /// `natter ARGS` with these environment variables set.
    pub fn spawn_with(label: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        Proc::spawn_bin_with(NATTER, label, args, env)
    }

    /// `bin` (a `natter` build: this one, or another to compare) with
    /// `args`, its standard output read as JSON lines.
    pub fn spawn_bin(bin: &str, label: &str, args: &[&str]) -> Proc {
        Proc::spawn_bin_with(bin, label, args, &[])
    }

    fn spawn_bin_with(bin: &str, label: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut child = Command::new(bin)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("RUST_LOG")
            .env("XDG_DATA_HOME", data_home())
            .spawn()
            .expect("start natter");
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("piped stderr");
        let err_text = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err_pipe.read_to_string(&mut text);
            err_text.lock().unwrap().push_str(&text);
        });
        let (tx, lines) = mpsc::channel();
        let name = label.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<Value>(&line) {
                    Ok(value) => {
                        if tx.send(Line::Json(value)).is_err() {
                            return;
                        }
                    }
                    Err(e) => panic!("{name}: stdout line is not JSON ({e}): {line:?}"),
                }
            }
            let _ = tx.send(Line::Eof);
        });
        Proc {
            label: label.to_string(),
            child,
            stdin,
            lines,
            seen: Vec::new(),
            eof: false,
            stderr,
        }
    }

    /// The next line matching `want`; other lines are skipped (and kept in
    /// `seen`). Panics on a timeout, on the end of output, or when an
    /// `error` event arrives that `want` does not ask for.
    pub fn expect(&mut self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        self.expect_within(EVENT_TIMEOUT, what, want)
    }

    /// [`Proc::expect`] with another hang guard: for what takes longer
    /// than a few messages by design (an entry expiring).
    pub fn expect_within(
        &mut self,
        timeout: Duration,
        what: &str,
        want: impl Fn(&Value) -> bool,
    ) -> Value {
        loop {
            match self.lines.recv_timeout(timeout) {
                Ok(Line::Json(value)) => {
                    self.seen.push(value.clone());
                    if want(&value) {
                        return value;
                    }
                    if value["event"] == "error" {
                        panic!(
                            "{}: unexpected error while waiting for {what}: {value}\nseen: {:#?}{}",
                            self.label,
                            self.seen,
                            self.stderr_note()
                        );
                    }
                }
                Ok(Line::Eof) => {
                    self.eof = true;
                    panic!(
                        "{}: output ended while waiting for {what}\nseen: {:#?}{}",
                        self.label,
                        self.seen,
                        self.stderr_note()
                    );
                }
                Err(_) => panic!(
                    "{}: no {what} within {:?}\nseen: {:#?}{}",
                    self.label,
                    timeout,
                    self.seen,
                    self.stderr_note()
                ),
            }
        }
    }

    /// Every line that comes within `wait` (each kept in `seen` too):
    /// what a user would have seen meanwhile. Never panics.
    pub fn lines_within(&mut self, wait: Duration) -> Vec<Value> {
        let until = tokio::time::Instant::now() + wait;
        let mut got = Vec::new();
        while !self.eof {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(Line::Json(value)) => {
                    self.seen.push(value.clone());
                    got.push(value);
                }
                Ok(Line::Eof) => self.eof = true,
                Err(_) => break,
            }
        }
        got
    }

    /// The first line matching `want` within `wait`, if any (the others
    /// are kept in `seen`). Never panics: for attacks, where a victim may
    /// fail in any way and the test reports it.
    pub fn wait_for(&mut self, wait: Duration, want: impl Fn(&Value) -> bool) -> Option<Value> {
        let until = tokio::time::Instant::now() + wait;
        while !self.eof {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(Line::Json(value)) => {
                    self.seen.push(value.clone());
                    if want(&value) {
                        return Some(value);
                    }
                }
                Ok(Line::Eof) => self.eof = true,
                Err(_) => return None,
            }
        }
        None
    }

    /// Standard error so far, for a failure message.
    pub fn stderr_note(&self) -> String {
        let text = self.stderr.lock().unwrap();
        if text.is_empty() {
            String::new()
        } else {
            format!("\nstderr:\n{text}")
        }
    }

    /// The next event named `event` (with `--json`, `{"event": …}`).
    pub fn expect_event(&mut self, event: &str) -> Value {
        self.expect(event, |v| v["event"] == event)
    }

    /// The next `error` event with this code.
    pub fn expect_error(&mut self, code: &str) -> Value {
        self.expect(&format!("error {code}"), |v| {
            v["event"] == "error" && v["code"] == code
        })
    }

    /// Types one line on the process's standard input.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}").expect("write to natter's stdin");
        stdin.flush().expect("flush natter's stdin");
    }

    /// Standard input, to write from another thread (a burst that blocks
    /// when the peer pushes back).
    pub fn take_stdin(&mut self) -> ChildStdin {
        self.stdin.take().expect("stdin still open")
    }

    /// Closes standard input: natter's `/quit`.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the process to end: first for its output to close (the
    /// hang guard applies), then for its exit status. Lines still unread
    /// are kept in `seen`.
    pub fn wait_exit(&mut self) -> ExitStatus {
        while !self.eof {
            match self.lines.recv_timeout(EVENT_TIMEOUT) {
                Ok(Line::Json(value)) => self.seen.push(value),
                Ok(Line::Eof) => self.eof = true,
                Err(_) => panic!(
                    "{}: did not exit within {:?}\nseen: {:#?}",
                    self.label, EVENT_TIMEOUT, self.seen
                ),
            }
        }
        self.child.wait().expect("wait for natter")
    }

    /// SIGKILL: no goodbye, no flushing; the kernel closes the sockets.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill natter");
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A failed test must not leave processes behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `natter server` on an ephemeral loopback port.
pub struct Server {
    pub proc: Proc,
    pub addr: SocketAddr,
    /// Its key's fingerprint, from its first log line.
    pub fingerprint: String,
    /// Its `--data-dir` (name bindings), removed with it: tests run
    /// servers side by side and must not touch the user's data directory.
    _data: tempfile::TempDir,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// The server with extra flags (limits).
    pub fn start_with(extra: &[&str]) -> Server {
        Server::start_at("127.0.0.1:0", &server_identity(), extra)
    }

    /// The server on `listen` with the key in `identity` (created if
    /// missing): a test that changes a server's key at an address.
    pub fn start_at(listen: &str, identity: &Path, extra: &[&str]) -> Server {
        let data = tempfile::tempdir().expect("a data directory");
        let data_dir = data.path().to_str().expect("a UTF-8 temporary path");
        let identity = identity.to_str().expect("a UTF-8 path");
        let mut args = vec!["server", "--listen", listen, "--log-format", "json"];
        args.extend_from_slice(&["--data-dir", data_dir, "--identity", identity]);
        args.extend_from_slice(extra);
        let mut proc = Proc::spawn("server", &args);
        let listening = proc.expect("the listening line", |v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("listening on"))
        });
        let addr = listening["addr"]
            .as_str()
            .expect("addr field")
            .parse()
            .expect("a socket address");
        let fingerprint = listening["fingerprint"]
            .as_str()
            .expect("fingerprint field")
            .to_string();
        Server {
            proc,
            addr,
            fingerprint,
            _data: data,
        }
    }

    /// The next log line with these field values.
    pub fn expect_log(&mut self, fields: &[(&str, &str)]) -> Value {
        let what = format!("log {fields:?}");
        self.proc
            .expect(&what, |v| fields.iter().all(|(k, want)| v[*k] == *want))
    }

    /// Log lines matching each of `lines`, in whatever order they come.
    pub fn expect_logs(&mut self, lines: &[&[(&str, &str)]]) {
        let mut pending: Vec<&[(&str, &str)]> = lines.to_vec();
        while !pending.is_empty() {
            let what = format!("logs {pending:?}");
            let matches =
                |v: &Value, fields: &[(&str, &str)]| fields.iter().all(|(k, want)| v[*k] == *want);
            let line = self
                .proc
                .expect(&what, |v| pending.iter().any(|f| matches(v, f)));
            pending.retain(|f| !matches(&line, f));
        }
    }
}

/// A fresh identity for a hand-written client: another key each call.
pub fn new_identity() -> Identity {
    Identity::from_seed(&random_seed())
}

fn random_seed() -> [u8; 32] {
    natter_net_real::keyfile::random_seed().expect("random bytes")
}

/// The server link's Noise handshake over `stream`, as `identity`, as a
/// client in another language would do it: the session whose plaintext
/// is JSON lines. (An error is the server's answer to study, not a
/// failure of the harness: hostile clients expect some.)
pub async fn secure_client(
    stream: tokio::net::TcpStream,
    identity: &Identity,
) -> Result<SecureStream<tokio::net::TcpStream>, SecureStreamError> {
    SecureStream::connect(stream, identity, LinkKind::Server, random_seed()).await
}

/// The lines the other side sends until it closes the session (cleanly
/// or not: a server that closes with our bytes unread resets the
/// connection). No hang guard: the caller's.
pub async fn lines_until_close(session: &mut SecureStream<tokio::net::TcpStream>) -> Vec<String> {
    let mut lines = Vec::new();
    while let Ok(Some(line)) = session.recv_line().await {
        lines.push(line);
    }
    lines
}

/// `natter peer --json` registered with `server`, transcripts in `dir`.
pub fn peer(name: &str, server: SocketAddr, dir: &Path, extra: &[&str]) -> Proc {
    let server = server.to_string();
    let dir = dir.to_str().expect("utf-8 temp path").to_string();
    let mut args = vec![
        "peer",
        "--json",
        "--name",
        name,
        "--server",
        &server,
        "--transcripts",
        &dir,
    ];
    args.extend_from_slice(extra);
    Proc::spawn(name, &args)
}

/// A peer that must register; returns it and its `registered` event.
pub fn registered_peer(name: &str, server: SocketAddr, dir: &Path) -> (Proc, Value) {
    let mut p = peer(name, server, dir, &[]);
    let event = p.expect_event("registered");
    assert_eq!(event["name"], name);
    (p, event)
}

/// The transcript lines of every file in `dir` whose name ends with
/// `suffix`, timestamps checked and cut off.
pub fn transcript(dir: &Path, suffix: &str) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("transcripts dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    assert_eq!(
        files.len(),
        1,
        "one transcript *{suffix} in {dir:?}: {files:?}"
    );
    let text = std::fs::read_to_string(files.pop().unwrap()).expect("read transcript");
    text.lines()
        .map(|line| {
            let (stamp, rest) = line.split_once(' ').expect("timestamp, then text");
            assert!(is_rfc3339_millis(stamp), "bad timestamp in {line:?}");
            rest.to_string()
        })
        .collect()
}

/// `2026-11-25T11:08:54.123Z`.
fn is_rfc3339_millis(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[23] == b'Z'
        && b.iter()
            .enumerate()
            .all(|(i, c)| [4, 7, 10, 13, 16, 19, 23].contains(&i) || c.is_ascii_digit())
}
