//! `natter peer`: one chat peer on real sockets, in a terminal or a pipe.

use crate::cli::PeerArgs;
use crate::{render, terminal};
use natter_core::command::{self, Command};
use natter_core::{ErrorCode, ErrorDetail, Event, PeerConfig};
use natter_net_real::{run_peer, Net, TokioNet, Transcripts};
use std::io::{IsTerminal, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

/// Default server port, used when `--server` names a host without one.
const DEFAULT_SERVER_PORT: u16 = 4201;

/// Longest line taken from standard input; the rest of a longer line is
/// dropped (the message is then refused as too long anyway).
const MAX_INPUT_LINE: usize = 64 * 1024;

/// Lines read ahead of the peer: a small buffer, so that a peer that stops
/// taking lines (too many messages without receipt) stops the reading.
const LINE_QUEUE: usize = 16;

/// Events waiting to be printed. When the output is slower than the
/// network (a slow terminal, a pipe read slowly), the peer withholds
/// receipts once this is full, and the partner's window does the rest:
/// memory stays bounded instead of queueing every message received.
const EVENT_QUEUE: usize = 256;

/// Runs the peer until it exits; returns its exit code.
pub async fn run(args: PeerArgs) -> i32 {
    let json = args.json || !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal();
    let report = Report { json };
    init_logging();

    let Some(dir) = args.transcripts.clone().or_else(default_transcripts_dir) else {
        return report.fatal(ErrorCode::TranscriptFailed, ErrorDetail::NoDataDir);
    };
    let server = match resolve_server(&args.server).await {
        Ok(addr) => addr,
        Err(reason) => {
            let server = args.server.clone();
            let detail = ErrorDetail::ServerAddress { server, reason };
            return report.fatal(ErrorCode::ServerUnreachable, detail);
        }
    };
    if (1..=1024).contains(&args.port) {
        eprintln!(
            "natter: warning: port {} is at most 1024; such ports usually need administrator rights (--port 0 lets the system choose)",
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
    if !json {
        println!(
            "natter: listening for chats on port {port}; registering as {} with {server}…",
            args.name
        );
        println!("natter: transcripts go to {}", dir.display());
    }

    let mut config = PeerConfig::new(args.name.clone(), server, port);
    config.max_message = args.max_message;
    config.ring_timeout = args.limits.ring_timeout;
    config.handshake_timeout = args.limits.handshake_timeout;
    config.max_pending_incoming = args.limits.max_pending_calls as usize;
    let (line_tx, line_rx) = mpsc::channel(LINE_QUEUE);
    let (command_tx, command_rx) = mpsc::channel(LINE_QUEUE);
    let (event_tx, event_rx) = mpsc::channel(EVENT_QUEUE);
    tokio::spawn(parse_lines(line_rx, command_tx, event_tx.clone()));
    let printer = if json {
        tokio::spawn(read_stdin(line_tx));
        std::thread::spawn(move || print_json(event_rx))
    } else {
        match terminal::start(&args.name, line_tx, event_rx) {
            Ok(printer) => printer,
            Err(e) => {
                let detail = ErrorDetail::Terminal {
                    reason: e.to_string(),
                };
                return report.fatal(ErrorCode::BadInput, detail);
            }
        }
    };
    let transcripts = Transcripts::new(dir);
    let code = run_peer(
        TokioNet,
        listener,
        config,
        transcripts,
        command_rx,
        event_tx,
    )
    .await;
    // Joined off the runtime: the tasks that still hold an event sender
    // must be able to run meanwhile and drop it.
    let _ = tokio::task::spawn_blocking(move || printer.join()).await;
    code
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

/// `~/.local/share/natter/transcripts` on Linux, the equivalents elsewhere.
fn default_transcripts_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "natter").map(|d| d.data_dir().join("transcripts"))
}

/// `--server` as an address: an IP:PORT, or a host name to resolve (the
/// default port is added when only a host is given).
async fn resolve_server(server: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = server.parse() {
        return Ok(addr);
    }
    let target = if server.contains(':') {
        server.to_string()
    } else {
        format!("{server}:{DEFAULT_SERVER_PORT}")
    };
    let resolved = match tokio::net::lookup_host(target).await {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| "the name resolves to no address".to_string()),
        Err(e) => Err(e.to_string()),
    };
    resolved
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
                    " (ports up to 1024 need administrator rights; pick a port above 1024)"
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

/// Feeds standard input to the peer line by line. Lines are bounded and
/// need not be UTF-8 (invalid bytes become U+FFFD); the end of input
/// closes the channel, which the peer takes as `/quit`. Ctrl-C does the
/// same (a script's user expects a goodbye, not a vanished peer); a second
/// Ctrl-C exits at once.
async fn read_stdin(lines: mpsc::Sender<String>) {
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let mut line = Vec::new();
    loop {
        let complete = tokio::select! {
            biased;
            _ = tokio::signal::ctrl_c() => {
                eprintln!("natter: interrupted; leaving (Ctrl-C again to exit at once)");
                tokio::spawn(async {
                    let _ = tokio::signal::ctrl_c().await;
                    std::process::exit(130);
                });
                return;
            }
            complete = read_line(&mut stdin, &mut line) => complete,
        };
        if !complete && line.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']).to_string();
        if lines.send(text).await.is_err() || !complete {
            return;
        }
    }
}

/// Reads one line into `line` (cleared first), keeping at most
/// [`MAX_INPUT_LINE`] bytes of it. False when input ended (or failed)
/// before a newline.
async fn read_line(stdin: &mut tokio::io::BufReader<tokio::io::Stdin>, line: &mut Vec<u8>) -> bool {
    line.clear();
    loop {
        let buf = match stdin.fill_buf().await {
            Ok(buf) => buf,
            Err(_) => return false,
        };
        if buf.is_empty() {
            return false;
        }
        let (chunk, found) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let room = MAX_INPUT_LINE.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = chunk.len();
        stdin.consume(used);
        if found {
            return true;
        }
    }
}

/// One JSON event per line on standard output, flushed at once so that a
/// program reading the pipe sees each event when it happens. Errors also
/// go to standard error as a sentence.
fn print_json(mut events: mpsc::Receiver<Event>) {
    while let Some(event) = events.blocking_recv() {
        print_event(&mut std::io::stdout().lock(), &event);
        if matches!(event, Event::Error { .. }) {
            eprintln!("natter: {}", render::human(&event));
        }
    }
}

fn print_event(out: &mut impl Write, event: &Event) {
    let _ = writeln!(out, "{}", render::json(event));
    let _ = out.flush();
}

/// Parses each typed line once, in order: a command goes to the peer; a
/// line that is no valid command is answered here, with its `error`
/// event, and never reaches the peer. The end of the lines is the end of
/// input.
async fn parse_lines(
    mut lines: mpsc::Receiver<String>,
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
        match command::parse(&line) {
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
