//! The parent's side of a natter chat between two processes: a directory
//! server (a bench child), a receiver that is the real `natter peer
//! --json` (its standard output read by this process), and a sending peer
//! (a bench child running `run_peer` with a workload).

use super::baseline::stdin_closed;
use super::child::{emit, ChildSpec, Pace, Proc, Work};
use super::wall_now;
use anyhow::{bail, Context, Result};
use natter_core::rate::RateLimit;
use natter_core::registry::ClusterConfig;
use natter_core::RegistryConfig;
use natter_net_real::{Bucket, Kv, NatsKv, ServerBuilder, TokioNet};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Transcript quota (per chat and per day) of both bench peers: the
/// throughput burst writes about 20 MiB of transcript per side, past the
/// 16 MiB a chat may take by default (issue 11), which is not what the
/// bench measures.
pub const TRANSCRIPT_QUOTA: u64 = 1 << 30;

/// `natter bench-child server`: the directory the chat and cluster
/// sections' peers register with (the registry section runs the real
/// `natter server` binary instead), logging as `natter server` does
/// (formatted, then discarded), its limits raised since every bench client
/// comes from 127.0.0.1. Stops when its standard input closes.
///
/// With `store` (a NATS address), the server shares its directory there,
/// as `natter server --store` does, and says it is ready only once NATS
/// answers.
pub async fn natter_server(max_peers: usize, store: Option<String>) -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .with_ansi(false)
        .with_target(false)
        .with_max_level(tracing::Level::INFO)
        .init();
    let config = RegistryConfig {
        max_peers,
        max_connections_per_ip: 1_000_000,
        requests: RateLimit {
            burst: 1_000_000,
            per_second: 1_000_000,
        },
        // One load generator stands for every peer: the protections
        // against floods of connections (issue 11) are not what is
        // measured here.
        max_connections: 1_000_000,
        handshakes_total: RateLimit {
            burst: 1_000_000,
            per_second: 1_000_000,
        },
        ..RegistryConfig::default()
    };
    let server = match store {
        None => ServerBuilder::new(TokioNet).config(config).spawn().await?,
        Some(url) => {
            let kv = NatsKv::connect(&url).await?;
            let deadline = wall_now() + Duration::from_secs(10);
            while let Err(e) = kv
                .open(Bucket::Peers, ClusterConfig::new("").entry_ttl)
                .await
            {
                if wall_now() > deadline {
                    bail!("NATS at {url} does not answer: {e}");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let cluster = ClusterConfig::new(format!("bench-{}", std::process::id()));
            ServerBuilder::new(TokioNet)
                .config(config)
                .with_store(natter_net_real::Shared::new(kv, cluster))
                .spawn()
                .await?
        }
    };
    emit(&json!({ "addr": server.addr(), "pid": std::process::id() }));
    stdin_closed().await;
    server.stop(Duration::from_secs(10)).await?;
    Ok(())
}

/// A directory server for the peer sections.
pub struct Server {
    pub proc: Proc,
    pub addr: SocketAddr,
}

impl Server {
    pub fn start() -> Result<Server> {
        let mut proc = Proc::bench_child(
            "server",
            &ChildSpec::Server {
                max_peers: 100,
                store: None,
            },
        )?;
        let hello = proc.recv()?;
        let addr = serde_json::from_value(hello["addr"].clone())
            .with_context(|| format!("the server said {hello}"))?;
        Ok(Server { proc, addr })
    }
}

/// A chat in progress: the sender is running its workload.
pub struct Chat {
    pub receiver: Proc,
    pub sender: Proc,
    pub receiver_dir: PathBuf,
    pub sender_dir: PathBuf,
}

impl Chat {
    /// Starts both peers (named after `tag`) and the chat between them.
    pub fn start(
        server: &Server,
        dir: &Path,
        tag: &str,
        work: Work,
        pace: Option<Pace>,
    ) -> Result<Chat> {
        let rx_name = format!("rx{tag}");
        let tx_name = format!("tx{tag}");
        let receiver_dir = dir.join(&rx_name);
        let sender_dir = dir.join(&tx_name);
        let args = [
            "peer",
            "--json",
            "--name",
            &rx_name,
            "--server",
            &server.addr.to_string(),
            "--transcripts",
            &receiver_dir.to_string_lossy(),
            "--transcript-quota-chat",
            &TRANSCRIPT_QUOTA.to_string(),
            "--transcript-quota-day",
            &TRANSCRIPT_QUOTA.to_string(),
        ]
        .map(String::from);
        let mut receiver = Proc::natter("receiving peer", &args, pace)?;
        receiver.wait_event("registered")?;
        let sender = Proc::bench_child(
            "sending peer",
            &ChildSpec::Sender {
                server: server.addr,
                name: tx_name,
                partner: rx_name,
                transcripts: sender_dir.clone(),
                work,
            },
        )?;
        receiver.wait_event("incoming")?;
        receiver.send_line("/accept")?;
        receiver.wait_event("chat_started")?;
        Ok(Chat {
            receiver,
            sender,
            receiver_dir,
            sender_dir,
        })
    }

    /// Lets the sender finish (it quits after its result); waits for the
    /// receiver to see the chat end, then quits it. Returns how many
    /// `message` events the receiver printed.
    pub fn end(mut self) -> Result<u64> {
        self.sender.finish()?;
        let mut messages = 0;
        loop {
            let event = self.receiver.recv()?;
            match event.get("event").and_then(Value::as_str) {
                Some("message") => messages += 1,
                Some("chat_ended") => break,
                Some("error") => bail!("the receiving peer failed: {event}"),
                _ => {}
            }
        }
        self.receiver.finish()?;
        Ok(messages)
    }
}

/// Checks a transcript directory holding one conversation: every number
/// from 1 to `count` appears once, in order, for each of `kinds` (`sent`,
/// `delivered`, `received`). Returns what is wrong, if anything.
pub fn verify_transcript(dir: &Path, count: u64, kinds: &[&str]) -> Result<Option<String>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "log") {
            files.push(path);
        }
    }
    let [file] = files.as_slice() else {
        return Ok(Some(format!(
            "{} transcript files in {}, expected one",
            files.len(),
            dir.display()
        )));
    };
    let text = std::fs::read_to_string(file)?;
    for kind in kinds {
        let marker = format!(" {kind} #");
        let mut next = 1u64;
        for line in text.lines() {
            let Some((_, rest)) = line.split_once(&marker) else {
                continue;
            };
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let n: u64 = digits.parse().unwrap_or(0);
            if n != next {
                return Ok(Some(format!(
                    "{}: `{kind} #{n}` where #{next} was expected",
                    file.display()
                )));
            }
            next += 1;
        }
        if next != count + 1 {
            return Ok(Some(format!(
                "{}: {} `{kind}` lines, expected {count}",
                file.display(),
                next - 1
            )));
        }
    }
    if !text
        .lines()
        .last()
        .is_some_and(|l| l.contains(" chat ended: "))
    {
        return Ok(Some(format!(
            "{}: does not end with the chat's end",
            file.display()
        )));
    }
    Ok(None)
}
