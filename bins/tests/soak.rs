//! Soak (issue 6, item 5): many peers chatting through a real `natter
//! server` process while some of them are killed and restarted and hostile
//! clients hammer the server and the peers' listeners. Loopback only,
//! bounded, stops by itself.
//!
//! - The server is a child process (`--log-format json`, its first line
//!   gives the port), so its RSS can be read from /proc without the test's
//!   own allocations in it.
//! - Peers are the production driver (started with the harness over
//!   `TokioNet`) in this process, paired up: callers call callees, both
//!   send messages.
//! - "Victim" pairs are chosen up front; only they are killed (their
//!   handle dropped, which aborts the driver task: sockets closed as a
//!   crash would) and restarted under the same name and key, which
//!   registers at once (it replaces its dead session). Every other peer
//!   is unaffected and must never see an `error` event.
//! - Hostile clients abuse the server inside Noise sessions (garbage
//!   lines, an endless line, a stalled hello, a client that never reads),
//!   where the frame-level limits apply, and outside (plain bytes where
//!   the handshake belongs, at the server and at peers' chat ports).
//! - Every message a surviving peer sent ends delivered or undelivered,
//!   exactly once, checked per chat when it ends.
//! - The server's VmRSS at the end, once everyone is gone, is compared
//!   with its baseline.
//!
//! Scale with `NATTER_SOAK_PEERS` (default 100) and `NATTER_SOAK_SECS`
//! (default 15 s of chaos); the defaults fit CI. Nothing sleeps to let
//! something happen: every wait is on an event, with a hang guard.

#![cfg(target_os = "linux")]

mod support;

use natter_core::identity::Identity;
use natter_core::Event;
use natter_net_real::secure_stream::SecureStream;
use natter_net_real::{PeerBuilder, PeerHandle, TokioNet};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{lines_until_close, secure_client, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;

/// Only reached when something is broken.
const HANG_GUARD: Duration = Duration::from_secs(30);
/// How often a chatting peer types a message.
const TYPING: Duration = Duration::from_millis(100);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one incarnation of a peer has been through, for the orchestrator.
#[derive(Clone, Debug, Default)]
struct Status {
    port: u16,
    registered: bool,
    exited: Option<i32>,
    in_chat: bool,
    chats_started: u64,
    chats_ended: u64,
    /// Lines typed as messages; each becomes one `sent` (or an error).
    typed: u64,
    sent: u64,
    delivered: u64,
    undelivered: u64,
    received: u64,
    /// `peers` events (answers to /list, also the refresh after a stale
    /// entry).
    lists: u64,
    errors: Vec<String>,
    /// Broken accounting: a receipt for an unknown message, a chat end
    /// that does not account for every sent message exactly once.
    violations: Vec<String>,
}

enum Cmd {
    Connect(String),
    StopTyping,
    Leave,
}

/// One running incarnation of a peer.
struct Incarnation {
    status: watch::Receiver<Status>,
    cmds: mpsc::UnboundedSender<Cmd>,
    /// The agent task, which owns the peer's handle: aborting it drops the
    /// handle, which aborts the peer's driver: a crash.
    agent: AbortHandle,
    lines_closed: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Incarnation {
    async fn start(name: &str, server: SocketAddr, dir: &Path) -> Incarnation {
        let peer = PeerBuilder::new(TokioNet, name, server, dir)
            .spawn()
            .await
            .unwrap();
        let (status_tx, status) = watch::channel(Status {
            port: peer.addr().unwrap().port(),
            ..Status::default()
        });
        let (cmds, cmd_rx) = mpsc::unbounded_channel();
        let (close_tx, close_rx) = tokio::sync::oneshot::channel();
        let agent = tokio::spawn(agent(name.to_string(), peer, cmd_rx, close_rx, status_tx));
        Incarnation {
            status,
            cmds,
            agent: agent.abort_handle(),
            lines_closed: Some(close_tx),
        }
    }

    /// Starts a peer and waits until it is registered: at once, even
    /// when a killed incarnation (the same name and key) is still listed,
    /// since the same key replaces its old session.
    async fn start_registered(name: &str, server: SocketAddr, dir: &Path) -> Incarnation {
        let mut inc = Incarnation::start(name, server, dir).await;
        let status = inc
            .wait(&format!("{name} registered or exited"), |s| {
                s.registered || s.exited.is_some()
            })
            .await;
        assert!(status.registered, "{name} could not register: {status:?}");
        inc
    }

    async fn wait(&mut self, what: &str, cond: impl Fn(&Status) -> bool) -> Status {
        let result = tokio::time::timeout(HANG_GUARD, self.status.wait_for(|s| cond(s)))
            .await
            .map(|r| r.map(|s| s.clone()));
        match result {
            Ok(Ok(status)) => status,
            Ok(Err(_)) => panic!("{what}: agent gone; {:?}", self.status.borrow()),
            Err(_) => panic!(
                "no {what} within {HANG_GUARD:?}; {:?}",
                self.status.borrow()
            ),
        }
    }

    fn now(&self) -> Status {
        self.status.borrow().clone()
    }

    fn kill(&self) {
        self.agent.abort();
    }

    /// End of input: `/quit`.
    fn quit(&mut self) {
        if let Some(close) = self.lines_closed.take() {
            let _ = close.send(());
        }
    }
}

/// Plays one user: accepts every call, types a message every [`TYPING`]
/// while in a chat, checks the accounting of each chat when it ends.
async fn agent(
    name: String,
    mut peer: PeerHandle,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    mut close: tokio::sync::oneshot::Receiver<()>,
    status: watch::Sender<Status>,
) {
    let mut input_open = true;
    let mut sent: BTreeSet<u64> = BTreeSet::new();
    let mut delivered: BTreeSet<u64> = BTreeSet::new();
    let mut typing = tokio::time::interval(TYPING);
    let mut counter = 0u64;
    let mut typing_on = true;
    loop {
        let in_chat = status.borrow().in_chat;
        tokio::select! {
            biased;
            _ = &mut close, if input_open => {
                input_open = false;
                peer.end_input();
            }
            Some(cmd) = cmds.recv() => {
                let line = match cmd {
                    Cmd::Connect(to) => format!("/connect {to}"),
                    Cmd::StopTyping => {
                        typing_on = false;
                        continue;
                    }
                    Cmd::Leave => "/leave".to_string(),
                };
                let _ = peer.send(&line).await;
            }
            event = peer.next_event() => match event {
                // The peer exited and every event was read.
                None => {
                    let code = peer.exited(HANG_GUARD).await.unwrap_or(-1);
                    status.send_modify(|s| s.exited = Some(code));
                    return;
                }
                Some(Event::Registered { .. }) => status.send_modify(|s| s.registered = true),
                Some(Event::Incoming { .. }) => {
                    let _ = peer.send("/accept").await;
                }
                Some(Event::ChatStarted { .. }) => {
                    sent.clear();
                    delivered.clear();
                    status.send_modify(|s| {
                        s.in_chat = true;
                        s.chats_started += 1;
                    });
                }
                Some(Event::Sent { n, .. }) => {
                    sent.insert(n);
                    status.send_modify(|s| s.sent += 1);
                }
                Some(Event::Delivered { n, .. }) => {
                    let known = sent.contains(&n) && delivered.insert(n);
                    status.send_modify(|s| {
                        s.delivered += 1;
                        if !known {
                            s.violations.push(format!("{name}: receipt for #{n}"));
                        }
                    });
                }
                Some(Event::Message { .. }) => status.send_modify(|s| s.received += 1),
                Some(Event::Peers { .. }) => status.send_modify(|s| s.lists += 1),
                Some(Event::ChatEnded { undelivered, .. }) => {
                    let undelivered: BTreeSet<u64> = undelivered.into_iter().collect();
                    let whole: BTreeSet<u64> = delivered.union(&undelivered).copied().collect();
                    let ok = delivered.is_disjoint(&undelivered) && whole == sent;
                    status.send_modify(|s| {
                        s.in_chat = false;
                        s.chats_ended += 1;
                        s.undelivered += undelivered.len() as u64;
                        if !ok {
                            s.violations.push(format!(
                                "{name}: sent {} delivered {} undelivered {undelivered:?}",
                                sent.len(),
                                delivered.len()
                            ));
                        }
                    });
                }
                Some(Event::Error { code, detail }) => {
                    status.send_modify(|s| s.errors.push(format!("{code}: {detail:?}")))
                }
                Some(_) => {}
            },
            _ = typing.tick(), if in_chat && typing_on => {
                // Never block the agent on a full window: skip a beat.
                counter += 1;
                if peer.try_send(&format!("{name} says {counter}")).is_ok() {
                    status.send_modify(|s| s.typed += 1);
                }
            }
        }
    }
}

/// A peer slot: the same name across restarts.
struct Slot {
    name: String,
    dir: PathBuf,
    partner: usize,
    caller: bool,
    victim: bool,
    current: Incarnation,
    /// Figures of the incarnations that were killed.
    killed: Vec<Status>,
}

/// Hostile clients; each returns whether it was refused as it should be.
mod hostile {
    use super::*;

    /// The kinds, in the order of the counts the report prints.
    pub const KINDS: usize = 6;
    pub const GARBAGE: usize = 0;
    pub const ENDLESS: usize = 1;
    pub const PEER_GARBAGE: usize = 2;
    pub const SLOWLORIS: usize = 3;
    pub const NON_READER: usize = 4;
    pub const PLAIN: usize = 5;

    /// Bytes no natter frame or handshake looks like.
    const GARBAGE_BYTES: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\x1b[2J\xff\n";

    /// A Noise session with the server as a new client (a fresh key):
    /// what the attacker sends next is inside it, where the frame-level
    /// limits apply.
    async fn session(to: SocketAddr) -> Option<SecureStream<TcpStream>> {
        let stream = TcpStream::connect(to).await.ok()?;
        secure_client(stream, &support::new_identity()).await.ok()
    }

    /// All the server said until it closed the session.
    async fn said(mut session: SecureStream<TcpStream>) -> String {
        tokio::time::timeout(HANG_GUARD, lines_until_close(&mut session))
            .await
            .unwrap_or_default()
            .join("\n")
    }

    /// Closed with not one byte in answer (there is no channel to answer
    /// on before a handshake).
    async fn closed_silently(mut s: TcpStream) -> bool {
        let mut reply = Vec::new();
        let closed = tokio::time::timeout(HANG_GUARD, s.read_to_end(&mut reply))
            .await
            .is_ok();
        closed && reply.is_empty()
    }

    pub async fn garbage(to: SocketAddr) -> bool {
        let Some(mut s) = session(to).await else {
            return false;
        };
        let _ = s.send(GARBAGE_BYTES).await;
        said(s).await.contains("\"bad_frame\"")
    }

    /// Plain JSON where the handshake belongs, as a client of the
    /// unencrypted protocol (or `nc`) would send: closed silently, and
    /// the server logs it (checked at the end).
    pub async fn plain_bytes(to: SocketAddr) -> bool {
        let Ok(mut s) = TcpStream::connect(to).await else {
            return false;
        };
        let _ = s
            .write_all(b"{\"type\":\"hello\",\"version\":2,\"min_version\":2,\"features\":[]}\n")
            .await;
        closed_silently(s).await
    }

    /// Garbage at a peer's chat port, which speaks Noise: closed at once,
    /// with not one byte in answer.
    pub async fn garbage_at_peer(to: SocketAddr) -> bool {
        let Ok(mut s) = TcpStream::connect(to).await else {
            return false;
        };
        let _ = s.write_all(GARBAGE_BYTES).await;
        closed_silently(s).await
    }

    pub async fn endless_line(to: SocketAddr) -> bool {
        let Some(mut s) = session(to).await else {
            return false;
        };
        let chunk = vec![b'x'; 8192];
        for _ in 0..16 {
            if s.send(&chunk).await.is_err() {
                break;
            }
        }
        said(s).await.contains("\"frame_too_long\"")
    }

    /// Half a hello, then silence until the register timeout cuts it.
    pub async fn slowloris(to: SocketAddr) -> bool {
        let Some(mut s) = session(to).await else {
            return false;
        };
        let _ = s.send(b"{\"type\":\"hel").await;
        said(s).await.contains("\"timeout\"")
    }

    /// Registers, then pings without ever reading the pongs, until the
    /// server cuts it (write fails) or `until`.
    pub async fn non_reader(to: SocketAddr, n: u64, until: tokio::time::Instant) -> bool {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        let _ = socket.set_recv_buffer_size(4096);
        let Ok(stream) = socket.connect(to).await else {
            return false;
        };
        let Ok(mut s) = secure_client(stream, &support::new_identity()).await else {
            return false;
        };
        let hello = format!(
            "{{\"type\":\"hello\",\"version\":2}}\n{{\"type\":\"register\",\"name\":\"hog{n}\",\"port\":{}}}\n",
            10_000 + n
        );
        if s.send(hello.as_bytes()).await.is_err() {
            return false;
        }
        let pings = b"{\"type\":\"ping\"}\n".repeat(512);
        loop {
            match tokio::time::timeout_at(until, s.send(&pings)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return true,
                Err(_) => return false,
            }
        }
    }
}

/// What the chaos phase leaves for the checks.
struct Chaos {
    slots: Vec<Slot>,
    /// Each peer's last status, after it exited.
    finals: Vec<Status>,
    kills: u64,
    stale_calls: u32,
    /// Hostile clients started and refused as expected, per kind.
    attempts: [u64; hostile::KINDS],
    outcomes: [u64; hostile::KINDS],
    rss_steady: u64,
    rss_peak: u64,
    /// Whether the directory was empty once everyone had left.
    empty: bool,
}

fn vm_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Asks the server for its directory as a client of its own would, always
/// with the same key (the name `probe` stays bound to it).
async fn directory_size(server: SocketAddr) -> usize {
    let stream = TcpStream::connect(server).await.unwrap();
    let probe = Identity::from_seed(&[7; 32]);
    let mut s = secure_client(stream, &probe).await.unwrap();
    s.send(b"{\"type\":\"hello\",\"version\":2}\n{\"type\":\"register\",\"name\":\"probe\",\"port\":9}\n{\"type\":\"list\"}\n{\"type\":\"bye\"}\n")
        .await
        .unwrap();
    let lines = tokio::time::timeout(HANG_GUARD, lines_until_close(&mut s))
        .await
        .expect("the server closes after bye");
    // An answer, not a refusal (which would read as an empty directory).
    assert!(
        lines.iter().any(|l| l.contains("\"type\":\"peers\"")),
        "the probe got the list: {lines:?}"
    );
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "peers")
        .map(|v| v["peers"].as_array().map_or(0, Vec::len))
        .sum()
}

#[test]
fn soak_many_peers_with_kills_restarts_and_hostile_clients() {
    let peers = env_or("NATTER_SOAK_PEERS", 100).max(4) as usize & !1;
    let chaos = Duration::from_secs(env_or("NATTER_SOAK_SECS", 15));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut server = Server::start_with(&["--max-per-ip", "100000", "--register-timeout", "2s"]);
    let pid = server.proc.pid();
    let addr = server.addr;
    let rss_start = vm_rss_kb(pid);
    let dirs = tempfile::tempdir().unwrap();

    let report = runtime.block_on(async move {
        // Pairs (2k caller, 2k+1 callee); one pair in five is a victim.
        let mut slots: Vec<Slot> = Vec::new();
        for i in 0..peers {
            let name = format!("p{i:04}");
            let dir = dirs.path().join(&name);
            let current = Incarnation::start_registered(&name, addr, &dir).await;
            slots.push(Slot {
                name,
                dir,
                partner: i ^ 1,
                caller: i % 2 == 0,
                victim: (i / 2) % 5 == 0,
                current,
                killed: Vec::new(),
            });
        }
        for i in (0..peers).step_by(2) {
            let to = slots[i + 1].name.clone();
            slots[i].current.cmds.send(Cmd::Connect(to)).unwrap();
        }
        for slot in &mut slots {
            let what = format!("{} chat_started", slot.name);
            slot.current.wait(&what, |s| s.chats_started >= 1).await;
        }
        let rss_steady = vm_rss_kb(pid);

        // Chaos: hostile clients in the background, kills in the loop.
        let until = tokio::time::Instant::now() + chaos;
        let peer_ports: Vec<u16> = slots
            .iter()
            .filter(|s| !s.victim)
            .map(|s| s.current.now().port)
            .collect();
        let hostile = tokio::spawn(async move {
            use hostile::*;
            let mut n = 0u64;
            let mut outcomes = [0u64; KINDS];
            let mut attempts = [0u64; KINDS];
            let mut hogs = tokio::task::JoinSet::new();
            while tokio::time::Instant::now() < until {
                n += 1;
                let kind = n as usize % KINDS;
                // Four non-readers in all: each holds its connection
                // until the server cuts it.
                let enough = kind == NON_READER && attempts[NON_READER] == 4;
                if !enough {
                    attempts[kind] += 1;
                    let ok = match kind {
                        GARBAGE => garbage(addr).await,
                        ENDLESS => endless_line(addr).await,
                        PEER_GARBAGE => {
                            // Garbage at an unaffected peer's chat port:
                            // it must drop it without bothering its user.
                            let port = peer_ports[attempts[kind] as usize % peer_ports.len()];
                            let to = SocketAddr::from(([127, 0, 0, 1], port));
                            garbage_at_peer(to).await
                        }
                        PLAIN => plain_bytes(addr).await,
                        // A few slowloris and non-readers at a time, not
                        // awaited here.
                        SLOWLORIS => {
                            hogs.spawn(async move { (kind, slowloris(addr).await) });
                            false
                        }
                        _ => {
                            hogs.spawn(async move { (kind, non_reader(addr, n, until).await) });
                            false
                        }
                    };
                    if ok {
                        outcomes[kind] += 1;
                    }
                }
                // Pace the attackers: one connection per 20 ms.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            while let Some(Ok((kind, ok))) = hogs.join_next().await {
                if ok {
                    outcomes[kind] += 1;
                }
            }
            (attempts, outcomes)
        });

        let victims: Vec<usize> = (0..peers).filter(|&i| slots[i].victim).collect();
        let mut kills = 0u64;
        let mut stale_calls = 0u32;
        let mut rss_peak = rss_steady;
        let mut turn = 0usize;
        // One kill every 20 ms at most, so that victims chat between kills.
        let mut pace = tokio::time::interval(Duration::from_millis(20));
        while tokio::time::Instant::now() < until {
            pace.tick().await;
            turn += 1;
            let i = victims[(turn * 7) % victims.len()];
            let j = slots[i].partner;
            // Kill i; its partner sees the chat end; restart i; the caller
            // of the pair calls again.
            let ended = slots[j].current.now().chats_ended;
            slots[i].current.kill();
            kills += 1;
            let what = format!("{} sees its partner's chat end", slots[j].name);
            slots[j]
                .current
                .wait(&what, |s| s.chats_ended > ended)
                .await;
            let fresh = Incarnation::start_registered(&slots[i].name, addr, &slots[i].dir).await;
            let old = std::mem::replace(&mut slots[i].current, fresh);
            slots[i].killed.push(old.now());
            let (caller, callee) = if slots[i].caller { (i, j) } else { (j, i) };
            let to = slots[callee].name.clone();
            let mut called = false;
            for _ in 0..5 {
                let before = slots[caller].current.now();
                slots[caller]
                    .current
                    .cmds
                    .send(Cmd::Connect(to.clone()))
                    .unwrap();
                let what = format!("{} chats again", slots[caller].name);
                let after = slots[caller]
                    .current
                    .wait(&what, |s| {
                        s.chats_started > before.chats_started
                            || s.errors.len() > before.errors.len()
                    })
                    .await;
                if after.chats_started > before.chats_started {
                    called = true;
                    break;
                }
                // A restarted callee listens on a new port: the caller's
                // list was stale (peer_unreachable) and is being
                // refreshed; call again once it is.
                let what = format!("{} refreshed list", slots[caller].name);
                slots[caller]
                    .current
                    .wait(&what, |s| s.lists > before.lists)
                    .await;
                stale_calls += 1;
            }
            assert!(called, "{} could not call {to} again", slots[caller].name);
            rss_peak = rss_peak.max(vm_rss_kb(pid));
        }
        let (attempts, outcomes) = tokio::time::timeout(HANG_GUARD * 2, hostile)
            .await
            .expect("hostile clients finish")
            .unwrap();
        rss_peak = rss_peak.max(vm_rss_kb(pid));

        // Wind down: everyone stops typing and what was typed is sent (so
        // no line races the end of its chat); callers leave (waiting for
        // their last receipts); then everyone quits.
        for slot in &slots {
            let _ = slot.current.cmds.send(Cmd::StopTyping);
        }
        for slot in &mut slots {
            let what = format!("{} sent all it typed", slot.name);
            slot.current.wait(&what, |s| s.sent >= s.typed).await;
        }
        for i in (0..peers).step_by(2) {
            let _ = slots[i].current.cmds.send(Cmd::Leave);
        }
        for slot in &mut slots {
            let what = format!("{} chat ended", slot.name);
            slot.current.wait(&what, |s| !s.in_chat).await;
            slot.current.quit();
        }
        let mut finals = Vec::new();
        for slot in &mut slots {
            let what = format!("{} exited", slot.name);
            finals.push(slot.current.wait(&what, |s| s.exited.is_some()).await);
        }
        // The server has seen everyone go: the directory is empty.
        let mut empty = false;
        for _ in 0..200 {
            if directory_size(addr).await == 0 {
                empty = true;
                break;
            }
            tokio::task::yield_now().await;
        }
        Chaos {
            slots,
            finals,
            kills,
            stale_calls,
            attempts,
            outcomes,
            rss_steady,
            rss_peak,
            empty,
        }
    });
    let Chaos {
        slots,
        finals,
        kills,
        stale_calls,
        attempts,
        outcomes,
        rss_steady,
        rss_peak,
        empty,
    } = report;
    let rss_end = vm_rss_kb(pid);

    let mut problems = Vec::new();
    let (mut sent, mut delivered, mut undelivered, mut received) = (0, 0, 0, 0);
    for (slot, last) in slots.iter().zip(&finals) {
        for status in slot.killed.iter().chain([last]) {
            sent += status.sent;
            delivered += status.delivered;
            undelivered += status.undelivered;
            received += status.received;
            problems.extend(status.violations.iter().cloned());
        }
        if last.exited != Some(0) {
            problems.push(format!("{} exited with {:?}", slot.name, last.exited));
        }
        if !slot.victim && !last.errors.is_empty() {
            problems.push(format!(
                "{} (unaffected) got errors: {:?}",
                slot.name, last.errors
            ));
        }
    }
    eprintln!(
        "soak: {peers} peers, {:?} of chaos, {kills} kills ({stale_calls} calls to a stale address), \
         messages sent {sent}, delivered {delivered}, undelivered {undelivered}, received {received}; \
         hostile attempts [garbage, endless, peer-garbage, slowloris, non-reader, plain] {attempts:?} \
         refused as expected {outcomes:?}; server VmRSS start {rss_start} kB, steady {rss_steady} kB, \
         peak {rss_peak} kB, end {rss_end} kB",
        chaos
    );
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(empty, "the server still lists peers after everyone left");
    assert!(kills > 0 && sent > 0 && delivered > 0);
    let every = |kind: usize, what: &str| {
        assert_eq!(outcomes[kind], attempts[kind], "{what}");
        assert!(attempts[kind] > 0, "no attempt: {what}");
    };
    every(hostile::GARBAGE, "every garbage line got bad_frame");
    every(hostile::ENDLESS, "every endless line got frame_too_long");
    every(
        hostile::PEER_GARBAGE,
        "every garbage call at a peer was closed without an answer",
    );
    every(hostile::SLOWLORIS, "every slowloris got timeout");
    every(hostile::NON_READER, "every non-reader was cut off");
    every(
        hostile::PLAIN,
        "every plain client was closed without an answer",
    );
    // The server says why it closed each plain client.
    for _ in 0..attempts[hostile::PLAIN] {
        server.proc.expect("a plain client's refusal", |v| {
            v["change"] == "refused"
                && v["code"] == "bad_frame"
                && v["detail"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("the encrypted link failed"))
        });
    }
    // Memory: what the load and the attacks took is given back, within an
    // allocator's slack (freed memory is not always returned to the OS).
    let slack_kb = 16 * 1024;
    assert!(
        rss_end <= rss_steady.max(rss_start) + slack_kb,
        "server RSS did not come back: start {rss_start} kB, steady {rss_steady} kB, peak {rss_peak} kB, end {rss_end} kB"
    );
    drop(server);
}
