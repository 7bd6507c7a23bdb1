//! What the attack suites share (bins/tests/attacks.rs against the server,
//! bins/tests/peer_attacks.rs against a peer): how long an attack lasts,
//! which build is attacked, the loopback addresses that stand for other
//! hosts, a victim's resident memory, and clients of the server written by
//! hand.
//!
//! Attackers stand for other hosts by binding their sockets to 127.1.x.y
//! (all of 127.0.0.0/8 reaches a loopback listener); honest clients come
//! from 127.0.0.1.

use natter_core::identity::Identity;
use natter_net_real::secure_stream::{SecureReader, SecureStream, SecureWriter};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::{TcpSocket, TcpStream};

/// Our hello on a server link; the server answers with the same line.
pub const SERVER_HELLO: &str =
    "{\"type\":\"hello\",\"version\":2,\"min_version\":2,\"features\":[]}\n";

/// Hang guard of one step of a client: only reached when broken.
pub const STEP: Duration = Duration::from_secs(10);

/// RSS a victim may grow by during an attack (issue 11).
pub const RSS_BOUND: u64 = 64 << 20;

/// The honest clients' address.
pub const HONEST_IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Held by each attack test while it runs, so that the tests of a file
/// run one at a time whatever `--test-threads` says: two attacks at once
/// on two cores would each measure the other.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A test that failed holding it leaves nothing to protect.
    ONE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How long each attack lasts: `NATTER_ATTACK_SECS`, 3 s by default (CI).
pub fn attack_time() -> Duration {
    let secs = std::env::var("NATTER_ATTACK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    Duration::from_secs(secs)
}

/// The `natter` build to attack: `NATTER_ATTACK_BIN` (a release build, or
/// an older one for figures before a change), else this one.
pub fn attack_bin() -> String {
    std::env::var("NATTER_ATTACK_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_natter").to_string())
}

/// A loopback address standing for attacking host `n` (never 127.0.0.1).
pub fn attacker_ip(n: u32) -> IpAddr {
    let [_, _, b, c] = (n + 1).to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(127, 1, b, c))
}

/// A process's resident memory (VmRSS) in bytes; 0 once it is gone.
pub fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

/// Samples a process's RSS every 20 ms until stopped; gives the peak.
pub struct RssWatch {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssWatch {
    pub fn start(pid: u32) -> RssWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss_of(pid)));
        let (s, p) = (Arc::clone(&stop), Arc::clone(&peak));
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss_of(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        RssWatch {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    pub fn peak(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

/// The runtime of the attackers and honest clients: two workers, as the
/// machine has two cores.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A TCP connection from `ip` (another loopback address: another host to
/// the other side) to `to`, sending without delay (no Nagle: timings are
/// the victim's, not 40 ms of delayed acknowledgements). With
/// `receive_buffer`, the socket's own kernel receive buffer is that small.
pub async fn connect_from(
    ip: IpAddr,
    to: SocketAddr,
    receive_buffer: Option<u32>,
) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(bytes) = receive_buffer {
        socket.set_recv_buffer_size(bytes)?;
    }
    socket.bind(SocketAddr::new(ip, 0))?;
    let stream = socket.connect(to).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

pub type Reader = SecureReader<ReadHalf<TcpStream>>;
pub type Writer = SecureWriter<WriteHalf<TcpStream>>;

/// A Noise session with the server from `ip`, with a new key; `None` if
/// the server refused or dropped it.
pub async fn session_from(ip: IpAddr, to: SocketAddr) -> Option<SecureStream<TcpStream>> {
    session_as(ip, to, &super::new_identity()).await
}

/// As [`session_from`], with this key. Attackers (any address but
/// [`HONEST_IP`]) read as little as they can: a small receive buffer keeps
/// the kernel from taking in for them what the server sends (on loopback
/// it would grow to megabytes per socket), so the server's own queues
/// fill.
pub async fn session_as(
    ip: IpAddr,
    to: SocketAddr,
    identity: &Identity,
) -> Option<SecureStream<TcpStream>> {
    let receive_buffer = (ip != HONEST_IP).then_some(4096);
    let stream = connect_from(ip, to, receive_buffer).await.ok()?;
    let handshake = super::secure_client(stream, identity);
    tokio::time::timeout(STEP, handshake).await.ok()?.ok()
}

/// The first line from the server containing `want`, skipping the others;
/// `None` if an error comes first, the session ends or it takes longer
/// than [`STEP`].
pub async fn server_line_with(reader: &mut Reader, want: &str) -> Option<String> {
    let wait = async {
        loop {
            match reader.recv_line().await {
                Ok(Some(line)) if line.contains(want) => return Some(line),
                Ok(Some(line)) if line.contains("\"type\":\"error\"") => return None,
                Ok(Some(_)) => {}
                _ => return None,
            }
        }
    };
    tokio::time::timeout(STEP, wait).await.ok().flatten()
}

/// A port for the next registration: an address (IP and port) is
/// registered once, and a host registers many names.
pub fn next_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    1_024 + NEXT.fetch_add(1, Ordering::Relaxed) % 64_000
}

/// Registers `name` with the server at `to` over a new session from `ip`
/// (a new key): the halves of the session once `registered` has come, or
/// `None` if it did not. Nobody listens on the registered port: the
/// server's probe answers "unreachable" at once, and the registration
/// stands.
pub async fn register_from(ip: IpAddr, to: SocketAddr, name: &str) -> Option<(Reader, Writer)> {
    register_as(ip, to, name, &super::new_identity()).await
}

/// As [`register_from`], with this key (the directory then lists it for
/// `name`).
pub async fn register_as(
    ip: IpAddr,
    to: SocketAddr,
    name: &str,
    identity: &Identity,
) -> Option<(Reader, Writer)> {
    let session = session_as(ip, to, identity).await?;
    let (mut reader, mut writer) = session.into_split();
    let port = next_port();
    let register =
        format!("{SERVER_HELLO}{{\"type\":\"register\",\"name\":\"{name}\",\"port\":{port}}}\n");
    writer.send(register.as_bytes()).await.ok()?;
    server_line_with(&mut reader, "\"registered\"").await?;
    Some((reader, writer))
}

/// Keeps a registered client alive: answers the server's pings until the
/// session ends. (The server drops a client silent for 15 s.)
pub fn keep_alive(mut reader: Reader, mut writer: Writer) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok(Some(line)) = reader.recv_line().await {
            if line.contains("\"type\":\"ping\"") {
                let _ = writer.send(b"{\"type\":\"pong\"}\n").await;
            }
        }
    })
}
