//! `natter demo`: the old program's demo conversation, played by a real
//! server and two real peers in one process on loopback.
//!
//! They are started with natter-net-real's harness, so they run the same
//! drivers on the same sockets as `natter server` and `natter peer`; only
//! the user is scripted. Each step waits for the event it depends on (a
//! request arriving, a receipt), never for a fixed time, so the demo is as
//! fast as the machine and cannot race itself.
//!
//! The transcripts go to a fresh temporary directory, removed at the end,
//! unless `--transcripts DIR` keeps them; either way the demo shows only
//! the files this run wrote.

use crate::cli::DemoArgs;
use crate::render;
use anyhow::{anyhow, bail, Context, Result};
use natter_core::{ChatEndReason, Event};
use natter_net_real::{PeerBuilder, PeerHandle, ServerBuilder, ServerHandle, TokioNet};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    let shelf = Shelf::new(args.transcripts)?;
    let server = ServerBuilder::new(TokioNet)
        .logs()
        .spawn()
        .await
        .context("cannot listen on 127.0.0.1")?;
    let server_addr = server.addr();
    println!("natter demo: a directory server on {server_addr} and two peers, alice and zuzu\n");

    let alice = start_peer(Who::Alice, server_addr, &shelf).await?;
    let zuzu = start_peer(Who::Zuzu, server_addr, &shelf).await?;
    let mut stage = Stage {
        alice,
        zuzu,
        server,
    };

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
        let code = stage.peer(who).exited(STEP_TIMEOUT).await?;
        if code != 0 {
            bail!("{} exited with code {code}", who.name());
        }
    }
    let _ = stage.server.stop(STEP_TIMEOUT).await;
    shelf.show()
}

async fn start_peer(who: Who, server: SocketAddr, shelf: &Shelf) -> Result<PeerHandle> {
    PeerBuilder::new(TokioNet, who.name(), server, shelf.dir(who))
        .spawn()
        .await
        .with_context(|| format!("cannot bind {}'s listener", who.name()))
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
    alice: PeerHandle,
    zuzu: PeerHandle,
    server: ServerHandle,
}

impl Stage {
    fn peer(&mut self, who: Who) -> &mut PeerHandle {
        match who {
            Who::Alice => &mut self.alice,
            Who::Zuzu => &mut self.zuzu,
        }
    }

    /// Shows a line as typed at the prompt and hands it to the peer.
    fn type_line(&mut self, who: Who, line: &str) -> Result<()> {
        println!("{:6}| {}> {line}", who.name(), who.name());
        Ok(self.peer(who).try_send(line)?)
    }

    /// Closes a peer's input: natter's `/quit`.
    fn quit(&mut self, who: Who) {
        println!("{:6}| (end of input: quit)", who.name());
        self.peer(who).end_input();
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
            Some(line) = self.server.next_log() => Ok(Happened::Log(line)),
            Some(event) = self.alice.next_event() => Ok(Happened::Event(Who::Alice, event)),
            Some(event) = self.zuzu.next_event() => Ok(Happened::Event(Who::Zuzu, event)),
            else => Err(anyhow!("the server and both peers stopped")),
        }
    }
}

enum Happened {
    Log(String),
    Event(Who, Event),
}

/// Where the transcripts go: a temporary directory removed with the demo,
/// or one the user keeps, which may hold earlier runs' files.
struct Shelf {
    dir: PathBuf,
    /// Removes the directory when the demo ends, unless the user chose it.
    temporary: Option<tempfile::TempDir>,
    /// Files there before this run, not shown as this run's.
    before: BTreeSet<PathBuf>,
}

impl Shelf {
    fn new(kept: Option<PathBuf>) -> Result<Self> {
        let (dir, temporary) = match kept {
            Some(dir) => (dir, None),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("natter-demo-")
                    .tempdir()
                    .context("cannot create a temporary directory for the transcripts")?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let mut shelf = Self {
            dir,
            temporary,
            before: BTreeSet::new(),
        };
        shelf.before = shelf.files().into_iter().collect();
        Ok(shelf)
    }

    fn dir(&self, who: Who) -> PathBuf {
        self.dir.join(who.name())
    }

    /// Every transcript on the shelf, both peers, in order.
    fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = [Who::Alice, Who::Zuzu]
            .iter()
            .filter_map(|who| std::fs::read_dir(self.dir(*who)).ok())
            .flatten()
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
            .collect();
        files.sort();
        files
    }

    /// Shows the transcripts this run wrote; says where they are only if
    /// they are kept.
    fn show(&self) -> Result<()> {
        match self.temporary {
            Some(_) => println!("\ntranscripts (one file per conversation, on each side; removed with the demo, --transcripts DIR keeps them):"),
            None => println!("\ntranscripts (one file per conversation, on each side):"),
        }
        for file in self.files().iter().filter(|f| !self.before.contains(*f)) {
            match self.temporary {
                Some(_) => println!("\n{}", shown_name(file, &self.dir).display()),
                None => println!("\n{}", file.display()),
            }
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            for line in text.lines() {
                println!("  {line}");
            }
        }
        Ok(())
    }
}

/// A transcript's name without the temporary directory (`alice/….log`).
fn shown_name<'a>(file: &'a Path, dir: &Path) -> &'a Path {
    file.strip_prefix(dir).unwrap_or(file)
}
