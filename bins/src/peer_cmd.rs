//! `natter peer`: one chat peer on real sockets, in a terminal or a pipe.

use crate::cli::{is_privileged, PeerArgs, ServerAddr};
use crate::data_dir::Owner;
use crate::input::{self, Interrupt};
use crate::{plain, render, terminal};
use natter_core::command::Command;
use natter_core::rate::RateLimit;
use natter_core::{ErrorCode, ErrorDetail, Event, PeerConfig};
use natter_net_real::pins::Pins;
use natter_net_real::{keyfile, run_peer, Net, TokioNet, Transcripts};
use std::io::{IsTerminal, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use tokio::sync::mpsc;

/// Lines read ahead of the peer: a small buffer, so that a peer that stops
/// taking lines (too many messages without receipt) stops the reading.
const LINE_QUEUE: usize = 16;

/// Events waiting to be printed. When the output is slower than the
/// network (a slow terminal, a pipe read slowly), the peer withholds
/// receipts once this is full, and the partner's window does the rest:
/// memory stays bounded instead of queueing every message received.
const EVENT_QUEUE: usize = 256;

/// How the user talks to the peer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ui {
    /// One JSON event per line; lines from standard input.
    Json,
    /// Lines in, lines out, the terminal left as it is (`plain.rs`).
    Plain,
    /// The full-screen UI (`ui/`, on the terminal of `terminal.rs`).
    Screen,
}

/// `--json` or `--plain` when given; otherwise JSON unless both standard
/// input and output are a terminal, and on a terminal the full-screen UI
/// unless it is `TERM=dumb` or the terminal cannot take raw mode.
fn choose_ui(args: &PeerArgs) -> Ui {
    if args.json {
        return Ui::Json;
    }
    if args.plain {
        return Ui::Plain;
    }
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return Ui::Json;
    }
    if std::env::var_os("TERM").is_some_and(|term| term == "dumb") {
        return Ui::Plain;
    }
    match terminal::probe() {
        Ok(()) => Ui::Screen,
        Err(e) => {
            eprintln!(
                "natter: the full-screen UI cannot start here ({e}); using the plain line mode"
            );
            Ui::Plain
        }
    }
}

/// Runs the peer until it exits; returns its exit code.
pub async fn run(args: PeerArgs) -> i32 {
    let ui = choose_ui(&args);
    let report = Report {
        json: ui == Ui::Json,
    };
    init_logging();

    let Some(dir) = args
        .transcripts
        .clone()
        .or_else(|| default_transcripts_dir(&args))
    else {
        return report.fatal(ErrorCode::TranscriptFailed, ErrorDetail::NoDataDir);
    };
    let servers = match resolve_servers(&args.server).await {
        Ok(servers) => servers,
        Err((server, reason)) => {
            let detail = ErrorDetail::ServerAddress { server, reason };
            return report.fatal(ErrorCode::ServerUnreachable, detail);
        }
    };
    if is_privileged(args.port) {
        eprintln!(
            "natter: warning: port {} is below 1024; such ports usually need administrator rights (--port 0 lets the system choose)",
            args.port
        );
    }
    let listener = match bind(args.port).await {
        Ok(listener) => listener,
        Err(reason) => {
            let detail = ErrorDetail::BindFailed {
                port: args.port,
                reason,
            };
            return report.fatal(ErrorCode::BindFailed, detail);
        }
    };
    let port = match listener.local_addr() {
        Ok(addr) => addr.port(),
        Err(e) => {
            let detail = ErrorDetail::BindFailed {
                port: args.port,
                reason: e.to_string(),
            };
            return report.fatal(ErrorCode::BindFailed, detail);
        }
    };
    if ui != Ui::Json {
        let names: Vec<String> = servers.iter().map(ToString::to_string).collect();
        let with = match &names[..] {
            [one] => one.clone(),
            several => format!("the first that answers of {}", several.join(", ")),
        };
        println!(
            "natter: listening for chats on port {port}; registering as {} with {with}…",
            args.name
        );
        println!("natter: transcripts go to {}", dir.display());
    }

    let mut config = PeerConfig::new(args.name.clone(), servers[0], port);
    config.servers = servers.clone();
    // A name that is no name is refused by the peer itself, first thing.
    let mut pins = None;
    if natter_core::text::is_valid_name(&args.name) {
        match own_keys(&args, &servers) {
            Ok(keys) => {
                config.identity = keys.identity;
                config.seed = keys.seed;
                config.known_peers = keys.known;
                config.server_keys = keys.server_keys;
                pins = Some(keys.pins);
            }
            Err(reason) => {
                let detail = ErrorDetail::IdentityUnusable { reason };
                return report.fatal(ErrorCode::BadInput, detail);
            }
        }
    }
    config.max_message = args.max_message;
    config.ring_timeout = args.limits.ring_timeout;
    config.handshake_timeout = args.limits.handshake_timeout;
    config.max_pending_incoming = args.limits.max_pending_calls as usize;
    config.max_calls_per_source = args.limits.max_calls_per_source as usize;
    config.calls_per_source = RateLimit {
        burst: args.limits.call_burst,
        per_second: args.limits.call_rate,
    };
    config.limit_loopback = args.limits.limit_loopback;
    config.transcript_quota_chat = args.limits.transcript_quota_chat;
    config.transcript_quota_day = args.limits.transcript_quota_day;
    config.transcript_used_today =
        natter_net_real::transcripts::written_today(&dir, &args.name, TokioNet.wall_clock());
    config.max_chats = args.limits.max_chats as usize;
    config.presence = true;
    let (line_tx, line_rx) = mpsc::channel(LINE_QUEUE);
    let (command_tx, command_rx) = mpsc::channel(LINE_QUEUE);
    let (event_tx, event_rx) = mpsc::channel(EVENT_QUEUE);
    tokio::spawn(pass_typed(line_rx, command_tx, event_tx.clone()));
    let printer = match ui {
        Ui::Json => {
            tokio::spawn(input::read_stdin(line_tx, Interrupt::Quit, || {}));
            std::thread::spawn(move || print_json(event_rx, std::io::stdout()))
        }
        Ui::Plain => plain::start(&args.name, line_tx, event_rx),
        Ui::Screen => {
            match terminal::start(&args.name, line_tx, event_rx, screen_options(&args, &dir)) {
                Ok(printer) => printer,
                Err(e) => {
                    let detail = ErrorDetail::Terminal {
                        reason: e.to_string(),
                    };
                    return report.fatal(ErrorCode::BadInput, detail);
                }
            }
        }
    };
    let transcripts = Transcripts::new(dir);
    let code = run_peer(
        TokioNet,
        listener,
        config,
        transcripts,
        pins,
        command_rx,
        event_tx,
    )
    .await;
    // Joined off the runtime: the tasks that still hold an event sender
    // must be able to run meanwhile and drop it.
    let _ = tokio::task::spawn_blocking(move || printer.join()).await;
    code
}

/// This name's key (created on first use), a fresh seed from the system,
/// the keys it pinned at earlier chats (`DATA/peers/NAME/known_peers`) and
/// those it pinned for these server addresses (`known_servers`).
fn own_keys(args: &PeerArgs, servers: &[SocketAddr]) -> Result<OwnKeys, String> {
    let no_dir = |_| "no data directory (is HOME set?); give --data-dir DIR".to_string();
    let key_path =
        crate::data_dir::identity_path(&args.identity, Owner::Peer(&args.name)).map_err(no_dir)?;
    let loaded = keyfile::load_or_create(&key_path).map_err(|e| e.to_string())?;
    let seed = keyfile::random_seed().map_err(|e| e.to_string())?;
    let dir =
        crate::data_dir::DataDir::from_flag(args.identity.data_dir.as_deref()).map_err(no_dir)?;
    let pins = Pins::in_dir(&dir.peer(&args.name));
    let known = pins.peers.load()?;
    let mut server_keys = pins.servers.load_servers()?;
    server_keys.retain(|addr, _| servers.contains(addr));
    Ok(OwnKeys {
        identity: loaded.identity,
        seed,
        pins,
        known,
        server_keys,
    })
}

/// The full-screen UI's bell, history file and transcripts to read back.
fn screen_options(args: &PeerArgs, transcripts: &std::path::Path) -> terminal::Options {
    let history = crate::data_dir::DataDir::from_flag(args.identity.data_dir.as_deref())
        .ok()
        .filter(|_| natter_core::text::is_valid_name(&args.name))
        .map(|dir| dir.peer(&args.name).join("history"));
    terminal::Options {
        bell: !args.no_bell,
        history,
        transcripts: transcripts.to_owned(),
    }
}

/// What [`own_keys`] finds.
struct OwnKeys {
    identity: natter_core::Identity,
    seed: [u8; 32],
    pins: Pins,
    known: std::collections::BTreeMap<String, natter_core::PublicKey>,
    server_keys: std::collections::BTreeMap<SocketAddr, natter_core::PublicKey>,
}

/// How start-up failures are shown: an `error` event on standard output in
/// JSON mode (SPEC: every error is an event), and a sentence on standard
/// error in both modes.
struct Report {
    json: bool,
}

impl Report {
    fn fatal(&self, code: ErrorCode, detail: ErrorDetail) -> i32 {
        let event = Event::error(code, detail);
        if self.json {
            print_event(&mut std::io::stdout().lock(), &event);
        }
        eprintln!("natter: {}", render::human(&event));
        1
    }
}

/// `transcripts/` in the data directory (SPEC: `--data-dir` holds it
/// unless `--transcripts` says otherwise): `--data-dir`, or
/// `~/.local/share/natter` on Linux and the equivalents elsewhere.
fn default_transcripts_dir(args: &PeerArgs) -> Option<PathBuf> {
    crate::data_dir::DataDir::from_flag(args.identity.data_dir.as_deref())
        .ok()
        .map(|dir| dir.transcripts())
}

/// The `--server`s as addresses, in order, each once: a host name is
/// resolved now and stands for all of its addresses (A and AAAA records,
/// in the resolver's order), so that servers behind one name take over
/// from each other. A name that does not resolve is left out with a
/// warning while others give addresses; with none at all, the first
/// failure is the error: (the `--server` text, why).
async fn resolve_servers(servers: &[ServerAddr]) -> Result<Vec<SocketAddr>, (String, String)> {
    let mut addrs: Vec<SocketAddr> = Vec::new();
    let mut failures = Vec::new();
    for server in servers {
        match resolve_server(server).await {
            Ok(found) => {
                for addr in found {
                    if !addrs.contains(&addr) {
                        addrs.push(addr);
                    }
                }
            }
            Err(reason) => failures.push((server.to_string(), reason)),
        }
    }
    if addrs.is_empty() {
        return Err(failures
            .into_iter()
            .next()
            .unwrap_or_else(|| (String::new(), "no server address given".to_string())));
    }
    for (server, reason) in failures {
        eprintln!("natter: warning: --server {server} left out: {reason}");
    }
    Ok(addrs)
}

/// One `--server` as addresses: a host name is resolved now.
async fn resolve_server(server: &ServerAddr) -> Result<Vec<SocketAddr>, String> {
    let (name, port) = match server {
        ServerAddr::Ip(addr) => return Ok(vec![*addr]),
        ServerAddr::Host { name, port } => (name.as_str(), *port),
    };
    match tokio::net::lookup_host((name, port)).await {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                return Err("the name resolves to no address".to_string());
            }
            Ok(addrs)
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Binds the chat listener on every interface: `[::]` takes IPv6 and, on
/// most systems, IPv4 too; `0.0.0.0` is the fallback where IPv6 is off.
async fn bind(port: u16) -> Result<<TokioNet as Net>::Listener, String> {
    let v6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
    let v4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    match TokioNet.bind(v6).await {
        Ok(listener) => Ok(listener),
        Err(_) => TokioNet.bind(v4).await.map_err(|e| {
            let hint = match e.kind() {
                std::io::ErrorKind::AddrInUse => {
                    " (another program uses it; pick another --port, or 0 to let the system choose)"
                }
                std::io::ErrorKind::PermissionDenied => {
                    " (ports below 1024 need administrator rights; pick a port from 1024 up)"
                }
                _ => "",
            };
            format!("{e}{hint}")
        }),
    }
}

/// Peers log nothing by default (events are the user interface);
/// `RUST_LOG=debug` shows the driver's connection log on standard error.
fn init_logging() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
    }
}

/// One JSON event per line on `out` (standard output). The events already
/// waiting are written together, in one `write` (up to [`PRINT_BATCH`]
/// bytes), and flushed as soon as none is left waiting, so that a program
/// reading the pipe sees each event when it happens without paying a
/// system call and a wake-up for each of a burst of messages. Errors also
/// go to standard error as a sentence, once their line is out.
fn print_json(mut events: mpsc::Receiver<Event>, mut out: impl Write) {
    let mut batch = Vec::with_capacity(PRINT_BATCH);
    while let Some(first) = events.blocking_recv() {
        let mut next = Some(first);
        while let Some(event) = next.take() {
            render::write_json(&mut batch, &event);
            if let Event::Error { .. } = event {
                write_out(&mut out, &mut batch);
                eprintln!("natter: {}", render::human(&event));
            }
            if batch.len() < PRINT_BATCH {
                next = events.try_recv().ok();
            }
        }
        write_out(&mut out, &mut batch);
    }
}

/// Bytes of `--json` lines written together at most (see [`print_json`]).
const PRINT_BATCH: usize = 64 * 1024;

/// Writes and flushes what `batch` holds, and empties it.
fn write_out(out: &mut impl Write, batch: &mut Vec<u8>) {
    if batch.is_empty() {
        return;
    }
    let _ = out.write_all(batch);
    let _ = out.flush();
    batch.clear();
}

fn print_event(out: &mut impl Write, event: &Event) {
    let mut line = Vec::new();
    render::write_json(&mut line, event);
    let _ = out.write_all(&line);
    let _ = out.flush();
}

/// Passes each typed line, parsed once by [`input::hand_over`], on in
/// order: a command goes to the peer; a line that is no valid command is
/// answered here, with its `error` event, and never reaches the peer. The
/// end of the lines is the end of input.
async fn pass_typed(
    mut lines: mpsc::Receiver<crate::input::Typed>,
    commands: mpsc::Sender<Command>,
    events: mpsc::Sender<Event>,
) {
    loop {
        // Ends when the peer has exited too, so that this task's copy of
        // the event sender does not keep the printer waiting.
        let line = tokio::select! {
            biased;
            () = commands.closed() => return,
            line = lines.recv() => match line {
                Some(line) => line,
                None => return,
            },
        };
        match line {
            Ok(command) => {
                if commands.send(command).await.is_err() {
                    return;
                }
            }
            Err(problem) => {
                let _ = events.send(problem.into()).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records each `write` call it gets.
    #[derive(Default)]
    struct Writes(Vec<Vec<u8>>);

    impl Write for Writes {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn message(n: u64) -> Event {
        Event::Message {
            peer: "zuzu".into(),
            n,
            text: format!("message {n}"),
            at: "2026-12-06T11:00:00.000Z".into(),
        }
    }

    #[test]
    fn a_burst_of_events_waiting_is_printed_in_one_write_one_line_each_in_order() {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        for n in 1..=100 {
            tx.try_send(message(n)).unwrap();
        }
        drop(tx);
        let mut out = Writes::default();
        print_json(rx, &mut out);
        assert_eq!(out.0.len(), 1, "one write for the 100 events waiting");
        let printed = String::from_utf8(out.0.concat()).unwrap();
        let lines: Vec<&str> = printed.lines().collect();
        assert_eq!(lines.len(), 100);
        for (line, n) in lines.iter().zip(1..) {
            assert_eq!(*line, render::json(&message(n)));
        }
    }

    #[test]
    fn an_error_line_is_written_before_the_events_after_it_are_taken() {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let error = Event::error(ErrorCode::NoRequest, ErrorDetail::NoRequest);
        for event in [message(1), error.clone(), message(2)] {
            tx.try_send(event).unwrap();
        }
        drop(tx);
        let mut out = Writes::default();
        print_json(rx, &mut out);
        let writes: Vec<String> = out
            .0
            .into_iter()
            .map(|w| String::from_utf8(w).unwrap())
            .collect();
        assert_eq!(
            writes,
            [
                format!("{}\n{}\n", render::json(&message(1)), render::json(&error)),
                format!("{}\n", render::json(&message(2))),
            ]
        );
    }
}
