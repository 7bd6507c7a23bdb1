//! Command-line flags, exactly as SPEC.md lists them, plus the limits of
//! docs/LIMITS.md.
//!
//! Where a flag's default comes from when it is not given (its environment
//! variable, then the config file) is in src/config_file.rs.

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum, ValueHint};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Peer-to-peer chat with delivery receipts and transcripts.
///
/// A small directory server says who is online; peers then talk directly,
/// with numbered messages, delivery receipts and a transcript on each side.
#[derive(Debug, Parser)]
#[command(name = "natter", version, after_long_help = DEFAULTS_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the directory server.
    Server(ServerArgs),
    /// Join as a chat peer: type /help once connected.
    Peer(PeerArgs),
    /// A server and two peers (alice and zuzu) in one process, chatting.
    Demo(DemoArgs),
    /// Latency, throughput, registry scale, presence and memory under a
    /// flood, against a raw-TCP baseline taken in the same run (use a release
    /// build: cargo run --release -p natter -- bench).
    Bench(crate::bench::BenchArgs),
    /// Print the fingerprint of a name's identity (its key is created on
    /// first use), to compare with what others see.
    Id(IdArgs),
    /// Print a completion script for a shell, e.g. `natter completions bash
    /// > ~/.local/share/bash-completion/completions/natter`.
    Completions(CompletionsArgs),
    /// Print natter's manual page (roff), or one command's: `natter man |
    /// man -l -`, `natter man peer`; `--dir DIR` writes them all.
    Man(ManArgs),
    /// One process of `natter bench` (internal).
    #[command(hide = true)]
    BenchChild(crate::bench::BenchChildArgs),
}

/// Where defaults come from: the end of `natter --help`, of the `--help` of
/// the commands that read the config file, and of their man pages.
const DEFAULTS_HELP: &str = "\
Defaults: a flag given on the command line wins over its environment \
variable (NATTER_NAME, NATTER_SERVER), which wins over the config file, \
which wins over natter's own default.

The config file of `natter peer`, `natter server` and `natter id` is \
config.toml in the platform config directory (~/.config/natter/config.toml \
on Linux, or $XDG_CONFIG_HOME/natter/config.toml), or the one given with \
--config FILE or NATTER_CONFIG. Each line `key = value` sets the default of \
the flag --key, e.g. `server = \"chat.example.org\"`, `name = \"alice\"`, \
`data-dir = \"~/natter\"`.";

/// natter's whole command line: the definitions above, plus `--config` on
/// the commands that read the config file (src/config_file.rs). The
/// completions and the man pages are made from it.
pub fn command() -> clap::Command {
    Cli::command().mut_subcommands(|command| {
        if !crate::config_file::COMMANDS.contains(&command.get_name()) {
            return command;
        }
        command
            .arg(crate::config_file::flag())
            .after_long_help(DEFAULTS_HELP)
    })
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Address to listen on: 0.0.0.0:4201 serves IPv4, [::]:4201 IPv6 (and
    /// IPv4 where the system allows); port 0 lets the system choose, and
    /// the first log line tells which.
    #[arg(long, default_value = "0.0.0.0:4201", value_name = "ADDR")]
    pub listen: String,
    /// Most peers registered at once; one more is refused with server_full.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub max_peers: usize,
    /// How the log is written to standard output.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// How long a name stays bound to the key that registered it after its
    /// last use (e.g. 30d, 12h); meanwhile another key gets name_taken.
    #[arg(long, default_value = "30d", value_name = "DURATION", value_parser = parse_duration)]
    pub name_ttl: Duration,
    /// Share the directory with other servers through NATS JetStream at
    /// this address (nats://HOST:PORT; several, comma-separated, for a NATS
    /// cluster): every server then lists every peer (docs/DEPLOY.md).
    /// Default: the embedded store (memory and the data directory), one
    /// server, nothing to set up.
    #[arg(long, value_name = "URL", env = "NATTER_STORE")]
    pub store: Option<String>,
    /// Limits against misbehaving clients (docs/LIMITS.md).
    #[command(flatten)]
    pub limits: ServerLimits,
    #[command(flatten)]
    pub identity: IdentityArgs,
}

/// The server's limits; the defaults are those of docs/LIMITS.md.
#[derive(Debug, Args)]
#[command(next_help_heading = "Limits (docs/LIMITS.md)")]
pub struct ServerLimits {
    /// Open connections from one IP address, registered or not; one more
    /// is refused with too_many_connections.
    #[arg(long, default_value_t = 64, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_per_ip: u32,
    /// Requests one connection may make at once (pings excluded); past it
    /// and the refill rate, it is refused with rate_limited and closed.
    #[arg(long, default_value_t = 20, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub request_burst: u32,
    /// Requests regained per second by each connection.
    #[arg(long, default_value_t = 5, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub request_rate: u32,
    /// Time a new connection has to send hello and register (e.g. 10s,
    /// 500ms); then it gets timeout and is closed.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration)]
    pub register_timeout: Duration,
    /// Silence after which a connection counts as lost and is dropped.
    /// Peers ping after 5 s without sending, so keep it well above that.
    #[arg(long, default_value = "15s", value_name = "DURATION", value_parser = parse_idle_timeout)]
    pub idle_timeout: Duration,
    /// Longest line accepted from a client, in bytes; a longer one gets
    /// frame_too_long and the connection is closed.
    #[arg(long, default_value_t = 65_536, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(256..=16_777_216))]
    pub max_frame: u32,
    /// Longest line accepted once a client has registered (no request
    /// needs more); a longer one gets frame_too_long, closed.
    #[arg(long, default_value_t = 4_096, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(256..=16_777_216))]
    pub max_request: u32,
    /// Longest time a line may stay unfinished (bytes trickling in do not
    /// count); then timeout, closed.
    #[arg(long, default_value = "15s", value_name = "DURATION", value_parser = parse_duration)]
    pub line_timeout: Duration,
    /// Open connections at most, from everyone; lowered to fit the
    /// open-file limit, which the first log lines report.
    #[arg(long, default_value_t = 12_000, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Names one source (IPv4 address, IPv6 /64) may hold registered; one
    /// more gets too_many_connections, closed.
    #[arg(long, default_value_t = 32, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_registrations_per_source: u32,
    /// New connections per second one source may open, after a burst of
    /// twice --max-per-ip; past it, closed unanswered (a handshake costs
    /// CPU).
    #[arg(long, default_value_t = 16, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub handshake_rate: u32,
    /// New connections per second from everyone, after a burst of twice
    /// as many; past it, closed unanswered.
    #[arg(long, default_value_t = 500, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub handshake_rate_total: u32,
    /// Requests one source may make at once over all its connections,
    /// reconnecting or not (pings excluded); past it and the rate,
    /// rate_limited, closed.
    #[arg(long, default_value_t = 256, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub source_request_burst: u32,
    /// Requests regained per second by each source.
    #[arg(long, default_value_t = 32, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub source_request_rate: u32,
    /// Bytes of queued output and partial input the whole server may
    /// hold; past it, the connection holding the most is cut.
    #[arg(long, default_value_t = 32 << 20, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1 << 20..))]
    pub memory_budget: u64,
    /// Bytes queued for one client that does not read before it is cut
    /// (room for a whole 10,000-peer list).
    #[arg(long, default_value_t = 2 << 20, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(64 << 10..))]
    pub max_queue: u64,
    /// Kernel send buffer of each client connection (SO_SNDBUF; the
    /// kernel keeps twice this): what a client that does not read makes
    /// the system hold besides --max-queue. Raise it for clients far away
    /// that list many peers.
    #[arg(long, default_value_t = 64 << 10, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(4 << 10..=64 << 20))]
    pub send_buffer: u32,
    /// Kernel receive buffer of each client connection (SO_RCVBUF; the
    /// kernel keeps twice this): what a client's sending may make the
    /// system hold while the server is busy.
    #[arg(long, default_value_t = 16 << 10, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(4 << 10..=64 << 20))]
    pub receive_buffer: u32,
    /// Give loopback clients (users of this host) the per-source shares
    /// too; by default they are exempt.
    #[arg(long)]
    pub limit_loopback: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line, fields at the top level.
    Json,
}

#[derive(Debug, Args)]
pub struct PeerArgs {
    /// Your name: 1-32 characters of A-Z a-z 0-9 _ -.
    #[arg(long, env = "NATTER_NAME")]
    pub name: String,
    /// The directory server: a host name or an IP address, with or without
    /// a port (default 4201); an IPv6 address with a port is [ADDR]:PORT.
    /// Give it more than once, or separate several with commas (as in
    /// NATTER_SERVER and the config file), for servers of one directory:
    /// natter registers with the first that answers and moves to the next
    /// when it is lost; a host name stands for all of its addresses.
    #[arg(long, env = "NATTER_SERVER", default_value = "127.0.0.1:4201", value_name = "HOST[:PORT]", value_parser = parse_server, value_delimiter = SERVER_SEPARATOR, value_hint = ValueHint::Hostname)]
    pub server: Vec<ServerAddr>,
    /// Port to listen on for chats; 0 lets the system choose.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Where conversations are recorded [default: the platform data
    /// directory, e.g. ~/.local/share/natter/transcripts].
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub transcripts: Option<PathBuf>,
    /// One JSON event per line on standard output, no prompt (also the
    /// behaviour when standard input or output is not a terminal).
    #[arg(long, conflicts_with = "plain")]
    pub json: bool,
    /// A plain line mode: the terminal edits the line, events are printed
    /// as lines, no screen control (also the behaviour with TERM=dumb, or
    /// when the full-screen UI cannot start).
    #[arg(long)]
    pub plain: bool,
    /// No terminal bell when someone calls (full-screen UI).
    #[arg(long)]
    pub no_bell: bool,
    /// Longest message you may send, in characters.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_message: usize,
    /// Limits of a peer (docs/LIMITS.md).
    #[command(flatten)]
    pub limits: PeerLimits,
    #[command(flatten)]
    pub identity: IdentityArgs,
}

/// Where an identity is kept (the layout is in src/data_dir.rs).
#[derive(Debug, Args)]
#[command(next_help_heading = "Identity")]
pub struct IdentityArgs {
    /// Where natter keeps identities and pins, and the server its name
    /// bindings (DIR/server/names.sqlite) [default: the platform data
    /// directory, e.g. ~/.local/share/natter].
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub data_dir: Option<PathBuf>,
    /// The key file to use instead of the data directory's (created if
    /// missing).
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub identity: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct IdArgs {
    /// The name whose identity to show: 1-32 characters of A-Z a-z 0-9 _ -.
    #[arg(long, env = "NATTER_NAME")]
    pub name: String,
    /// One JSON line: {"event":"identity","name":…,"fingerprint":…}.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub identity: IdentityArgs,
}

/// A peer's limits; the defaults are those of docs/LIMITS.md.
#[derive(Debug, Args)]
#[command(next_help_heading = "Limits (docs/LIMITS.md)")]
pub struct PeerLimits {
    /// How long your request rings before no_answer (e.g. 30s, 2m).
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    pub ring_timeout: Duration,
    /// Time someone who connects to you has to say hello before being cut.
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = parse_duration)]
    pub handshake_timeout: Duration,
    /// Incoming connections waiting for their hello at once; at the cap
    /// the oldest of the host holding the most is cut for a newcomer.
    #[arg(long, default_value_t = 32, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_pending_calls: u32,
    /// Incoming connections from one host (IPv4 address or IPv6 /64) not
    /// yet a chat (waiting for hello, ringing); more are closed at once.
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_calls_per_source: u32,
    /// New incoming connections one host may open at once (then
    /// --call-rate a second); more are closed at once.
    #[arg(long, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub call_burst: u32,
    /// New incoming connections per second from one host, after
    /// --call-burst.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub call_rate: u32,
    /// Count callers on this host (loopback) per host too; by default
    /// they are exempt from the per-host limits.
    #[arg(long)]
    pub limit_loopback: bool,
    /// Bytes one chat's transcript may take; past it the chat is ended
    /// (chat_ended reason quota).
    #[arg(long, default_value_t = 16 << 20, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(4096..))]
    pub transcript_quota_chat: u64,
    /// Bytes all transcripts may take in one UTC day; past it each chat
    /// is ended at its next message (reason quota).
    #[arg(long, default_value_t = 128 << 20, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(4096..))]
    pub transcript_quota_day: u64,
    /// Chats at once, calls ringing either way included; a caller beyond
    /// it gets busy.
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_chats: u32,
}

/// Server port when `--server` names none.
pub const DEFAULT_SERVER_PORT: u16 = 4201;

/// Between several servers in one `--server` value, `NATTER_SERVER` or
/// the config file's `server`: no address has one (an IPv6 address has
/// colons, a host name neither).
pub const SERVER_SEPARATOR: char = ',';

/// Where `--server` points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerAddr {
    Ip(SocketAddr),
    /// A name to resolve when the peer starts.
    Host {
        name: String,
        port: u16,
    },
}

impl std::fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerAddr::Ip(addr) => addr.fmt(f),
            ServerAddr::Host { name, port } => write!(f, "{name}:{port}"),
        }
    }
}

/// `--server`: `HOST`, `HOST:PORT`, `IP`, `IP:PORT`, an IPv6 address bare
/// (`fd77::1`) or in brackets (`[fd77::1]`, `[fd77::1]:4201`). Without a
/// port, [`DEFAULT_SERVER_PORT`].
pub fn parse_server(text: &str) -> Result<ServerAddr, String> {
    let text = text.trim();
    let usage = || {
        format!("{text:?} is not a server address; write HOST, HOST:PORT, an IP address, or [IPv6]:PORT")
    };
    let port = |port: &str| match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("{port:?} is not a server port (1-65535)")),
        Ok(port) => Ok(port),
    };
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(ServerAddr::Ip(SocketAddr::new(ip, DEFAULT_SERVER_PORT)));
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (ip, after) = rest.split_once(']').ok_or_else(usage)?;
        let ip: Ipv6Addr = ip.parse().map_err(|_| usage())?;
        let port = match after {
            "" => DEFAULT_SERVER_PORT,
            _ => port(after.strip_prefix(':').ok_or_else(usage)?)?,
        };
        return Ok(ServerAddr::Ip(SocketAddr::from((ip, port))));
    }
    let (name, port) = match text.split_once(':') {
        Some((name, number)) => (name, port(number)?),
        None => (text, DEFAULT_SERVER_PORT),
    };
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(ServerAddr::Ip(SocketAddr::new(ip, port)));
    }
    let host_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    if name.is_empty() || !name.chars().all(host_char) {
        return Err(usage());
    }
    Ok(ServerAddr::Host {
        name: name.to_string(),
        port,
    })
}

/// Ports below 1024 are privileged: binding one usually needs
/// administrator rights. (SPEC.md says "≤ 1024", but 1024 itself is an
/// ordinary port; natter warns for the ones that really are privileged.)
pub fn is_privileged(port: u16) -> bool {
    (1..1024).contains(&port)
}

/// A duration: a number with a unit, `ms`, `s`, `m`, `h` or `d` (`10s`,
/// `500ms`, `2m`, `30d`); a bare number is seconds. Zero is refused: every limit
/// here must leave some time.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; write e.g. 10s, 500ms or 2m"))?;
    let duration = match unit.trim() {
        "ms" => Duration::from_millis(number),
        "" | "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number.saturating_mul(60)),
        "h" => Duration::from_secs(number.saturating_mul(3600)),
        "d" => Duration::from_secs(number.saturating_mul(86_400)),
        _ => return Err(format!("{text:?}: the unit must be ms, s, m, h or d")),
    };
    if duration.is_zero() {
        return Err("the duration must be more than zero".to_string());
    }
    Ok(duration)
}

/// The server's idle timeout must outlast the peers' 5 s ping interval,
/// or every quiet peer would be dropped.
fn parse_idle_timeout(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    let ping = natter_core::HeartbeatConfig::default().ping_after;
    if duration <= ping {
        return Err(format!(
            "must be longer than the {} s peers wait before pinging",
            ping.as_secs()
        ));
    }
    Ok(duration)
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to write the two transcripts, kept after the demo [default: a
    /// new temporary directory, removed at the end].
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub transcripts: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete natter's commands and flags in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The command whose page to print (natter-peer(1), …) [default: the
    /// page of natter itself, natter(1)].
    #[arg(value_name = "COMMAND", value_parser = MAN_PAGES, conflicts_with = "dir")]
    pub command: Option<String>,
    /// Write every page (natter.1, natter-peer.1, …) into DIR, e.g.
    /// ~/.local/share/man/man1, instead of printing one.
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub dir: Option<PathBuf>,
}

/// The commands that have a page of their own: every visible command (a
/// test checks the list against the definitions).
pub const MAN_PAGES: [&str; 7] = [
    "server",
    "peer",
    "demo",
    "bench",
    "id",
    "completions",
    "man",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every subcommand's flags are consistent (no flag defined twice,
    /// e.g. by two flattened groups): clap checks it in debug builds only
    /// when the command runs, so check it here once for all.
    #[test]
    fn the_command_line_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn every_visible_command_has_a_man_page_and_no_other_name_does() {
        let natter = command();
        let visible: Vec<&str> = natter
            .get_subcommands()
            .filter(|command| !command.is_hide_set())
            .map(|command| command.get_name())
            .collect();
        assert_eq!(visible, MAN_PAGES);
    }

    fn ip(text: &str) -> ServerAddr {
        ServerAddr::Ip(text.parse().unwrap())
    }

    fn host(name: &str, port: u16) -> ServerAddr {
        ServerAddr::Host {
            name: name.into(),
            port,
        }
    }

    #[test]
    fn an_ipv6_server_is_taken_with_or_without_brackets_and_port() {
        assert_eq!(parse_server("fd77::1"), Ok(ip("[fd77::1]:4201")));
        assert_eq!(parse_server("[fd77::1]"), Ok(ip("[fd77::1]:4201")));
        assert_eq!(parse_server("[fd77::1]:5000"), Ok(ip("[fd77::1]:5000")));
        assert_eq!(parse_server("::1"), Ok(ip("[::1]:4201")));
    }

    #[test]
    fn an_ipv4_server_is_taken_with_or_without_port() {
        assert_eq!(parse_server("10.0.0.7"), Ok(ip("10.0.0.7:4201")));
        assert_eq!(parse_server("127.0.0.1:4300"), Ok(ip("127.0.0.1:4300")));
    }

    #[test]
    fn a_host_name_is_taken_with_or_without_port() {
        assert_eq!(parse_server("localhost"), Ok(host("localhost", 4201)));
        assert_eq!(
            parse_server("chat.example.org:4300"),
            Ok(host("chat.example.org", 4300))
        );
    }

    #[test]
    fn a_malformed_server_is_refused_with_the_accepted_forms() {
        for bad in [
            "",
            "host:",
            "host:0",
            "host:70000",
            "[fd77::1",
            "[fd77::1]5000",
            "[nothost]",
            "a b",
            "fd77::1:x:",
        ] {
            let error = parse_server(bad).expect_err(bad);
            assert!(error.contains("server"), "{bad:?}: {error}");
        }
    }

    #[test]
    fn several_servers_are_taken_repeated_or_separated_by_commas_in_order() {
        let servers = |args: &[&str]| {
            let mut line = vec!["natter", "peer", "--name", "a"];
            line.extend(args);
            match Cli::try_parse_from(line).unwrap().command {
                Command::Peer(peer) => peer.server,
                _ => unreachable!(),
            }
        };
        assert_eq!(servers(&[]), [ip("127.0.0.1:4201")], "the default");
        assert_eq!(
            servers(&[
                "--server",
                "10.0.0.7",
                "--server",
                "b.example:4300, [fd77::1]:5000"
            ]),
            [
                ip("10.0.0.7:4201"),
                host("b.example", 4300),
                ip("[fd77::1]:5000")
            ]
        );
        let wrong = Cli::try_parse_from(["natter", "peer", "--name", "a", "--server", "a,,b"]);
        assert!(wrong.is_err(), "an empty address between commas");
    }

    #[test]
    fn only_ports_below_1024_are_privileged() {
        assert!(is_privileged(1));
        assert!(is_privileged(1023));
        assert!(!is_privileged(1024));
        assert!(!is_privileged(0), "0 lets the system choose");
    }

    #[test]
    fn plain_and_json_cannot_be_asked_together() {
        let both = Cli::try_parse_from(["natter", "peer", "--name", "a", "--plain", "--json"]);
        assert!(both.is_err());
        let plain = Cli::try_parse_from(["natter", "peer", "--name", "a", "--plain"]).unwrap();
        assert!(matches!(
            plain.command,
            Command::Peer(PeerArgs { plain: true, .. })
        ));
    }
}
