//! Command-line flags, exactly as SPEC.md lists them.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// natter: peer-to-peer chat. A small directory server says who is online;
/// peers then talk directly, with numbered messages, delivery receipts and
/// a transcript on each side.
#[derive(Debug, Parser)]
#[command(name = "natter", version)]
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
    #[arg(long)]
    pub name: String,
    /// The directory server, HOST:PORT (a host name is resolved).
    #[arg(long, default_value = "127.0.0.1:4201", value_name = "HOST:PORT")]
    pub server: String,
    /// Port to listen on for chats; 0 lets the system choose.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Where conversations are recorded [default: the platform data
    /// directory, e.g. ~/.local/share/natter/transcripts].
    #[arg(long, value_name = "DIR")]
    pub transcripts: Option<PathBuf>,
    /// One JSON event per line on standard output, no prompt (also the
    /// behaviour when standard input or output is not a terminal).
    #[arg(long)]
    pub json: bool,
    /// Longest message you may send, in characters.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_message: usize,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to write the two transcripts [default: a new temporary
    /// directory, kept after the demo].
    #[arg(long, value_name = "DIR")]
    pub transcripts: Option<PathBuf>,
}
