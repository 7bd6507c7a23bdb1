//! `natter demo`: the old program's demo conversation, played by a real
//! server and two real peers in one process on loopback.
//!
//! It goes through the same `run_server` and `run_peer` drivers and the
//! same sockets as `natter server` and `natter peer`; only the user is
//! scripted. Each step waits for the event it depends on (a request
//! arriving, a receipt), never for a fixed time, so the demo is as fast as
//! the machine and cannot race itself.

use crate::cli::DemoArgs;
use crate::render;
use anyhow::{anyhow, bail, Context, Result};
use natter_core::command::{self, Command};
use natter_core::{ChatEndReason, Event, PeerConfig, RegistryConfig};
use natter_net_real::{run_peer, run_server, Net, TokioNet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Hang guard for one step of the script; a step takes milliseconds.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(args: DemoArgs) -> i32 {
    match play(args).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("natter demo: {e:#}");
            1
        }
    }
}

async fn play(args: DemoArgs) -> Result<()> {
    let dir = match args.transcripts {
        Some(dir) => dir,
        None => tempfile::Builder::new()
            .prefix("natter-demo-")
            .tempdir()
            .context("cannot create a temporary directory for the transcripts")?
            .keep(),
    };
    let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let listener = TokioNet
        .bind(loopback)
        .await
        .context("cannot listen on 127.0.0.1")?;
    let server_addr = listener.local_addr()?;
    println!("natter demo: a directory server on {server_addr} and two peers, alice and zuzu\n");

    let (log_tx, logs) = mpsc::unbounded_channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(run_server(
        TokioNet,
        listener,
        RegistryConfig::default(),
        Some(log_tx),
        async {
            let _ = stopped.await;
        },
    ));
    let alice = DemoPeer::start("alice", server_addr, dir.join("alice")).await?;
    let zuzu = DemoPeer::start("zuzu", server_addr, dir.join("zuzu")).await?;
    let mut stage = Stage { alice, zuzu, logs };

    stage
        .expect(&[registered(Who::Alice), registered(Who::Zuzu)])
        .await?;
    stage.type_line(Who::Alice, "/list")?;
    stage
        .expect(&[Expect::event(
            Who::Alice,
            |e| matches!(e, Event::Peers { peers } if peers.iter().any(|p| p.name == "zuzu")),
        )])
        .await?;
    stage.type_line(Who::Alice, "/connect zuzu")?;
    stage
        .expect(&[Expect::event(Who::Zuzu, |e| {
            matches!(e, Event::Incoming { .. })
        })])
        .await?;
    stage.type_line(Who::Zuzu, "/accept")?;
    stage
        .expect(&[
            Expect::event(Who::Alice, |e| matches!(e, Event::ChatStarted { .. })),
            Expect::event(Who::Zuzu, |e| matches!(e, Event::ChatStarted { .. })),
        ])
        .await?;

    let script = [
        (Who::Alice, "hi zuzu", 1),
        (Who::Zuzu, "how are you", 1),
        (Who::Alice, "i am fine", 2),
        (Who::Zuzu, "thank you very much", 2),
    ];
    for (who, text, n) in script {
        stage.type_line(who, text)?;
        stage
            .expect(&[
                Expect::event(
                    who.other(),
                    move |e| matches!(e, Event::Message { n: got, .. } if *got == n),
                ),
                Expect::event(
                    who,
                    move |e| matches!(e, Event::Delivered { n: got, .. } if *got == n),
                ),
            ])
            .await?;
    }

    stage.type_line(Who::Alice, "/leave")?;
    stage
        .expect(&[
            Expect::event(Who::Alice, |e| {
                matches!(
                    e,
                    Event::ChatEnded {
                        reason: ChatEndReason::Left,
                        ..
                    }
                )
            }),
            Expect::event(Who::Zuzu, |e| {
                matches!(
                    e,
                    Event::ChatEnded {
                        reason: ChatEndReason::PeerLeft,
                        ..
                    }
                )
            }),
        ])
        .await?;

    // Both quit: the end of their input, as when standard input closes.
    stage.quit(Who::Alice);
    stage.quit(Who::Zuzu);
    stage
        .expect(&[
            Expect::log(|line| line.starts_with("alice has disconnected")),
            Expect::log(|line| line.starts_with("zuzu has disconnected")),
        ])
        .await?;
    for who in [Who::Alice, Who::Zuzu] {
        let code = stage.exit_code(who).await?;
        if code != 0 {
            bail!("{} exited with code {code}", who.name());
        }
    }
    let _ = stop.send(());
    let _ = tokio::time::timeout(STEP_TIMEOUT, server).await;

    println!("\ntranscripts (one file per conversation, on each side):");
    for who in [Who::Alice, Who::Zuzu] {
        show_transcripts(&dir.join(who.name()))?;
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Alice,
    Zuzu,
}

impl Who {
    fn name(self) -> &'static str {
        match self {
            Who::Alice => "alice",
            Who::Zuzu => "zuzu",
        }
    }

    fn other(self) -> Who {
        match self {
            Who::Alice => Who::Zuzu,
            Who::Zuzu => Who::Alice,
        }
    }
}

/// One peer of the demo: its input, its events and its driver task.
struct DemoPeer {
    lines: Option<mpsc::Sender<Command>>,
    events: mpsc::UnboundedReceiver<Event>,
    task: Option<JoinHandle<i32>>,
}

impl DemoPeer {
    async fn start(name: &str, server: SocketAddr, transcripts: PathBuf) -> Result<Self> {
        let listener = TokioNet
            .bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .with_context(|| format!("cannot bind {name}'s listener"))?;
        let port = listener.local_addr()?.port();
        let config = PeerConfig::new(name, server, port);
        let (lines, line_rx) = mpsc::channel(16);
        let (event_tx, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(run_peer(
            TokioNet,
            listener,
            config,
            transcripts,
            line_rx,
            event_tx,
        ));
        Ok(Self {
            lines: Some(lines),
            events,
            task: Some(task),
        })
    }
}

/// Something the script waits for.
struct Expect {
    what: Box<dyn Fn(Seen<'_>) -> bool>,
}

/// Something that happened on stage.
#[derive(Clone, Copy)]
enum Seen<'a> {
    Log(&'a str),
    Event(Who, &'a Event),
}

impl Expect {
    fn event(who: Who, what: impl Fn(&Event) -> bool + 'static) -> Self {
        Self {
            what: Box::new(move |seen| matches!(seen, Seen::Event(w, e) if w == who && what(e))),
        }
    }

    fn log(what: impl Fn(&str) -> bool + 'static) -> Self {
        Self {
            what: Box::new(move |seen| matches!(seen, Seen::Log(line) if what(line))),
        }
    }
}

fn registered(who: Who) -> Expect {
    Expect::event(who, |e| matches!(e, Event::Registered { .. }))
}

/// The two peers and the server log, shown as they happen.
struct Stage {
    alice: DemoPeer,
    zuzu: DemoPeer,
    logs: mpsc::UnboundedReceiver<String>,
}

impl Stage {
    fn peer(&mut self, who: Who) -> &mut DemoPeer {
        match who {
            Who::Alice => &mut self.alice,
            Who::Zuzu => &mut self.zuzu,
        }
    }

    /// Shows a line as typed at the prompt and hands it to the peer.
    fn type_line(&mut self, who: Who, line: &str) -> Result<()> {
        println!("{:6}| {}> {line}", who.name(), who.name());
        let lines = self
            .peer(who)
            .lines
            .as_ref()
            .context("input already closed")?;
        let command = command::parse(line).map_err(|e| anyhow!("{line:?}: {e:?}"))?;
        lines
            .try_send(command)
            .map_err(|e| anyhow!("{} takes no input: {e}", who.name()))
    }

    /// Closes a peer's input: natter's `/quit`.
    fn quit(&mut self, who: Who) {
        println!("{:6}| (end of input: quit)", who.name());
        self.peer(who).lines = None;
    }

    /// Shows everything that happens until each expectation was met once.
    async fn expect(&mut self, expectations: &[Expect]) -> Result<()> {
        let mut pending: Vec<&Expect> = expectations.iter().collect();
        while !pending.is_empty() {
            let next = tokio::time::timeout(STEP_TIMEOUT, self.next()).await;
            let Ok(next) = next else {
                bail!("nothing happened for {} s", STEP_TIMEOUT.as_secs());
            };
            let (who, event) = match next? {
                Happened::Log(line) => {
                    println!("{:6}| {line}", "server");
                    pending.retain(|e| !(e.what)(Seen::Log(&line)));
                    continue;
                }
                Happened::Event(who, event) => (who, event),
            };
            for line in render::human(&event).lines() {
                println!("{:6}| {line}", who.name());
            }
            if let Event::Error { code, detail } = &event {
                let message = render::error_sentence(detail);
                bail!("{} got an unexpected error: {code}: {message}", who.name());
            }
            pending.retain(|e| !(e.what)(Seen::Event(who, &event)));
        }
        Ok(())
    }

    async fn next(&mut self) -> Result<Happened> {
        tokio::select! {
            biased;
            Some(line) = self.logs.recv() => Ok(Happened::Log(line)),
            Some(event) = self.alice.events.recv() => Ok(Happened::Event(Who::Alice, event)),
            Some(event) = self.zuzu.events.recv() => Ok(Happened::Event(Who::Zuzu, event)),
            else => Err(anyhow!("the server and both peers stopped")),
        }
    }

    async fn exit_code(&mut self, who: Who) -> Result<i32> {
        let task = self.peer(who).task.take().context("already awaited")?;
        let code = tokio::time::timeout(STEP_TIMEOUT, task)
            .await
            .map_err(|_| anyhow!("{} did not exit", who.name()))??;
        Ok(code)
    }
}

enum Happened {
    Log(String),
    Event(Who, Event),
}

fn show_transcripts(dir: &Path) -> Result<()> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    files.sort();
    for file in files {
        println!("\n{}", file.display());
        let text = std::fs::read_to_string(&file)?;
        for line in text.lines() {
            println!("  {line}");
        }
    }
    Ok(())
}
