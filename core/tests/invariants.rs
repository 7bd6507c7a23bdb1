//! Invariants of the codec and both state machines under arbitrary input.
//!
//! The harness half of this file (everything outside `mod properties`) is
//! plain Rust with `assert!`s: it takes a list of operations, runs them and
//! panics on the first broken invariant. The proptest half generates the
//! operations for `cargo test` with a modest case count; the cargo-fuzz
//! targets in `fuzz/` include this same file with `#[path]` and build the
//! operations from fuzzer bytes, so both check exactly the same things.
//!
//! More cases: `PROPTEST_CASES=5000 cargo test --release --test invariants`.

mod world;

use natter_core::identity::{derive_seed, Identity};
use natter_core::peer::{PeerConfig, PeerInput};
use natter_core::protocol::{ClientMsg, PeerStatus, ServerMsg};
use natter_core::registry::client::InProcessClient;
use natter_core::registry::{RegistryConfig, RegistryInput, RegistryOutput};
use natter_core::{Event, FrameDecoder, LinkId, Now, Peer, Registry};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use world::World;

// ---------------------------------------------------------------------------
// (a) the frame decoder
// ---------------------------------------------------------------------------

/// Feeds `chunks` to decoders of every frame type with line limit `limit`.
///
/// Asserts: the unfinished-line buffer never exceeds `limit`; feeding the
/// same bytes in one piece gives the same results (frames and errors, in
/// order) as feeding them in `chunks`; nothing panics.
pub fn check_decoder(chunks: &[Vec<u8>], limit: usize) {
    check_decoder_for::<ClientMsg>(chunks, limit);
    check_decoder_for::<ServerMsg>(chunks, limit);
    check_decoder_for::<natter_core::protocol::PeerMsg>(chunks, limit);
}

fn check_decoder_for<T>(chunks: &[Vec<u8>], limit: usize)
where
    T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let mut split = FrameDecoder::<T>::new(limit);
    let mut split_results = Vec::new();
    for chunk in chunks {
        split.push(chunk);
        assert!(
            split.buffered() <= limit,
            "decoder holds {} bytes, limit {limit}",
            split.buffered()
        );
        split_results.extend(std::iter::from_fn(|| split.next_frame()));
    }
    let mut whole = FrameDecoder::<T>::new(limit);
    whole.push(&chunks.concat());
    assert!(whole.buffered() <= limit);
    let whole_results: Vec<_> = std::iter::from_fn(|| whole.next_frame()).collect();
    assert_eq!(
        split_results, whole_results,
        "a split stream decodes differently from the whole stream"
    );
    assert_eq!(split.buffered(), whole.buffered());
}

// ---------------------------------------------------------------------------
// (b) the registry on its own
// ---------------------------------------------------------------------------

/// One thing that happens to a registry.
#[derive(Clone, Debug)]
pub enum RegOp {
    /// A client connects from IP number `ip` (a small pool, so addresses
    /// collide).
    Open { ip: u8 },
    /// Bytes on the `link`-th link ever opened (open or not: late bytes for
    /// a closed link must be harmless).
    Bytes { link: u8, payload: Payload },
    /// The driver reports the `link`-th link closed.
    Close { link: u8 },
    /// Time moves on by `ms` and the driver calls `handle_timeout`, maybe
    /// later than the deadline it was given.
    Advance { ms: u32 },
}

/// What arrives on a link.
#[derive(Clone, Debug)]
pub enum Payload {
    Raw(Vec<u8>),
    /// Well-formed frames, cut into pieces at `cuts` (offsets, taken modulo
    /// the length): each piece is its own `Bytes` input.
    Frames {
        frames: Vec<ClientMsg>,
        cuts: Vec<u16>,
    },
}

/// The names and ports registry clients pick from: small pools, so names
/// and addresses collide, plus invalid ones.
pub const REG_NAMES: &[&str] = &["ann", "bob", "cat", "bad name", "", "x\u{1b}[2J"];
pub const REG_PORTS: &[u16] = &[4000, 4001, 0];
const REG_IPS: u8 = 3;

/// The registry under test: tiny limits so every refusal path is reached.
pub fn small_registry_config() -> RegistryConfig {
    RegistryConfig {
        max_peers: 3,
        max_frame: 256,
        list_chunk: 2,
        ..RegistryConfig::default()
    }
}

struct LinkModel {
    id: LinkId,
    client: SocketAddr,
    /// The client's end of the link's Noise session: every payload is
    /// sealed in it, everything the registry sends is opened with it.
    session: InProcessClient,
    /// Neither closed by the driver nor closed by the registry.
    open: bool,
    /// What the registry sent on it, decoded.
    decoder: FrameDecoder<ServerMsg>,
    /// The name and address the registry confirmed.
    registered: Option<(String, SocketAddr)>,
}

/// Runs `ops` against a fresh registry, then lets 31 s of silence pass.
///
/// Asserts after every step: `peers()` lists exactly the open links the
/// registry confirmed with `registered` (never a closed one), no two entries
/// share a name or an address, each address has the IP the socket showed;
/// the registry sends only well-formed frames, only on open links;
/// `connections()` counts the open links; after `handle_timeout(now)`,
/// `poll_timeout()` is later than `now`, and it is `None` only when no
/// connection is open. At the end every silent connection is gone.
pub fn check_registry(ops: &[RegOp]) {
    let mut now = Now::at_unix(1_764_068_934);
    let mut registry = Registry::new(small_registry_config(), now);
    let mut links: Vec<LinkModel> = Vec::new();
    for op in ops {
        match op {
            RegOp::Open { ip } => {
                let id = LinkId(links.len() as u64 + 1);
                let ip = Ipv4Addr::new(10, 0, 0, 10 + ip % REG_IPS);
                let client = SocketAddr::new(IpAddr::V4(ip), 50_000 + links.len() as u16);
                let seed = derive_seed(&[5; 32], b"invariants client", id.0);
                let identity = Identity::from_seed(&seed);
                links.push(LinkModel {
                    id,
                    client,
                    session: InProcessClient::new(id, &identity, seed),
                    open: true,
                    decoder: FrameDecoder::new(usize::MAX),
                    registered: None,
                });
                registry.handle_input(
                    now,
                    RegistryInput::Opened {
                        link: id,
                        addr: client,
                    },
                );
                drain_registry(&mut registry, &mut links, now);
                // The handshake: our message 1, its answer, our message 3.
                for _ in 0..2 {
                    let model = model_of(&mut links, id);
                    if let Some(bytes) = model.session.outgoing().filter(|_| model.open) {
                        registry.handle_input(now, RegistryInput::Bytes { link: id, bytes });
                        drain_registry(&mut registry, &mut links, now);
                    }
                }
                assert!(
                    model_of(&mut links, id).session.is_established(),
                    "the handshake completes"
                );
            }
            RegOp::Bytes { link, payload } => {
                let Some(i) = pick(*link, links.len()) else {
                    continue;
                };
                let link = links[i].id;
                for piece in payload.pieces() {
                    let model = &mut links[i];
                    if !model.open {
                        break;
                    }
                    model.session.send(&piece).expect("the session is up");
                    let Some(bytes) = model.session.outgoing() else {
                        continue; // an empty piece
                    };
                    registry.handle_input(now, RegistryInput::Bytes { link, bytes });
                    drain_registry(&mut registry, &mut links, now);
                    check_directory(&registry, &links);
                }
            }
            RegOp::Close { link } => {
                let Some(i) = pick(*link, links.len()) else {
                    continue;
                };
                links[i].open = false;
                links[i].registered = None;
                registry.handle_input(now, RegistryInput::Closed { link: links[i].id });
                drain_registry(&mut registry, &mut links, now);
            }
            RegOp::Advance { ms } => {
                now = now.advanced(Duration::from_millis(u64::from(*ms)));
                registry.handle_timeout(now);
                check_timer(&registry, now);
                drain_registry(&mut registry, &mut links, now);
            }
        }
        check_directory(&registry, &links);
    }
    // Silence: nobody answers pings, nobody registers. One late
    // handle_timeout must clear everything out.
    now = now.advanced(Duration::from_secs(31));
    registry.handle_timeout(now);
    drain_registry(&mut registry, &mut links, now);
    check_directory(&registry, &links);
    assert_eq!(
        registry.connections(),
        0,
        "31 s of silence leaves no connection"
    );
    // The refusals of those timeouts are summed up when their interval
    // ends; then nothing is due.
    if let Some(at) = registry.poll_timeout() {
        now = now.advanced(at.saturating_since(now.mono));
        registry.handle_timeout(now);
        drain_registry(&mut registry, &mut links, now);
    }
    assert_eq!(registry.poll_timeout(), None);
}

impl Payload {
    fn pieces(&self) -> Vec<Vec<u8>> {
        match self {
            Payload::Raw(bytes) => vec![bytes.clone()],
            Payload::Frames { frames, cuts } => {
                let bytes: Vec<u8> = frames.iter().flat_map(natter_core::encode).collect();
                let mut at: Vec<usize> = cuts
                    .iter()
                    .map(|&c| usize::from(c) % (bytes.len() + 1))
                    .chain([0, bytes.len()])
                    .collect();
                at.sort_unstable();
                at.dedup();
                at.windows(2).map(|w| bytes[w[0]..w[1]].to_vec()).collect()
            }
        }
    }
}

fn pick(choice: u8, len: usize) -> Option<usize> {
    (len > 0).then(|| usize::from(choice) % len)
}

fn drain_registry(registry: &mut Registry, links: &mut [LinkModel], now: Now) {
    while let Some(out) = registry.poll_output() {
        match out {
            RegistryOutput::Send { link, .. } => {
                let model = model_of(links, link);
                assert!(model.open, "the registry sent on closed {link}");
                model.session.take(&out);
                model.decoder.push(model.session.received().as_bytes());
                while let Some(frame) = model.decoder.next_frame() {
                    let frame = frame.unwrap_or_else(|e| panic!("registry sent a bad frame: {e}"));
                    if let ServerMsg::Registered { name, addr, .. } = frame {
                        assert_eq!(addr.ip(), model.client.ip(), "address from the socket");
                        assert!(model.registered.is_none(), "{link} registered twice");
                        model.registered = Some((name, addr));
                    }
                }
            }
            RegistryOutput::Close { link } => {
                let model = model_of(links, link);
                assert!(model.open, "the registry closed {link} twice");
                model.open = false;
                model.registered = None;
            }
            RegistryOutput::Probe { link, .. } => {
                // Every probe is answered at once, whether or not its link
                // is still open.
                registry.handle_input(
                    now,
                    RegistryInput::Probed {
                        link,
                        reachable: true,
                    },
                );
            }
            RegistryOutput::Log(_) | RegistryOutput::Store(_) => {}
        }
    }
}

fn model_of(links: &mut [LinkModel], link: LinkId) -> &mut LinkModel {
    links
        .iter_mut()
        .find(|m| m.id == link)
        .unwrap_or_else(|| panic!("output for {link}, which was never opened"))
}

fn check_directory(registry: &Registry, links: &[LinkModel]) {
    let listed = registry.peers();
    let names: BTreeSet<&str> = listed.iter().map(|p| p.name.as_str()).collect();
    let addrs: BTreeSet<SocketAddr> = listed.iter().map(|p| p.addr).collect();
    assert_eq!(names.len(), listed.len(), "two entries share a name");
    assert_eq!(addrs.len(), listed.len(), "two entries share an address");
    let listed: BTreeSet<(String, SocketAddr)> =
        listed.into_iter().map(|p| (p.name, p.addr)).collect();
    let expected: BTreeSet<(String, SocketAddr)> = links
        .iter()
        .filter(|m| m.open)
        .filter_map(|m| m.registered.clone())
        .collect();
    assert_eq!(
        listed, expected,
        "the directory must be exactly the open, registered links"
    );
    assert_eq!(registry.registered(), expected.len());
    let open = links.iter().filter(|m| m.open).count();
    assert_eq!(
        registry.connections(),
        open,
        "connections() counts open links"
    );
    // With none open, a timer may still be due: the summary of refusals
    // logged at a bounded rate (the end of the run checks it fires).
    assert!(
        open == 0 || registry.poll_timeout().is_some(),
        "every open connection has a deadline"
    );
}

fn check_timer(registry: &Registry, now: Now) {
    if let Some(at) = registry.poll_timeout() {
        assert!(
            at > now.mono,
            "poll_timeout {at:?} not after handle_timeout({:?})",
            now.mono
        );
    }
}

// ---------------------------------------------------------------------------
// (c) peers and a registry wired together
// ---------------------------------------------------------------------------

/// The peers of a world scenario, each on its own IP.
pub const PEERS: &[&str] = &["ann", "bob", "cat"];

/// Texts users type as messages: ordinary, empty, too long, with a control
/// character, escaped slash, `exit()`, non-ASCII.
pub const TEXTS: &[&str] = &[
    "hi",
    "how are you?",
    "",
    "bell \u{7} ring",
    "//etc/hosts",
    "exit()",
    "ünïcödé 👋",
    "/dance",
];

/// A line a user types.
#[derive(Clone, Debug)]
pub enum UserLine {
    List,
    /// `/connect NAME` (an index into [`PEERS`], or a name nobody has).
    ConnectName(u8),
    /// `/connect IP:PORT`: a peer's address, the server's, or nobody's.
    ConnectAddr(u8),
    Accept,
    Reject,
    Leave,
    Quit,
    Help,
    /// One of [`TEXTS`].
    Say(u8),
    /// A long message (over the 256-character limit when `long`).
    SayLong {
        long: bool,
    },
    /// A command of several chats naming a peer (an index into
    /// [`PEERS`]): `/accept`, `/reject`, `/cancel`, `/leave`, `/switch`
    /// or `/msg` (by `verb`), or `/chats`.
    Named {
        verb: u8,
        who: u8,
    },
    /// Anything at all.
    Raw(String),
}

/// One thing that happens to the world.
#[derive(Clone, Debug)]
pub enum WorldOp {
    Line {
        who: u8,
        line: UserLine,
    },
    EndInput {
        who: u8,
    },
    Advance {
        ms: u32,
    },
    /// Silently cut `who` from the server (`None`) or from another peer.
    Partition {
        who: u8,
        other: Option<u8>,
    },
    Crash {
        who: u8,
    },
    /// Start a crashed or exited peer again, same name and address.
    Restart {
        who: u8,
    },
    CrashServer,
    RestartServer,
    /// Transcript writes of `who` fail from now on (`None`: disks work).
    FailDisk {
        who: Option<u8>,
    },
    /// Hostile bytes arrive on one of `who`'s links (fuzz targets only:
    /// forged receipts are then possible, so the cross-check that a
    /// receipt matches a received message is skipped for that peer).
    Inject {
        who: u8,
        link: u8,
        bytes: Vec<u8>,
    },
}

/// Well-formed frames a hostile partner or server might send out of
/// place, lying about receipts, names or registration.
pub const FORGED: &[&[u8]] = &[
    b"{\"type\":\"ack\",\"n\":1}\n",
    b"{\"type\":\"msg\",\"n\":1,\"text\":\"forged\",\"at\":\"x\"}\n",
    b"{\"type\":\"bye\"}\n",
    b"{\"type\":\"accept\"}\n",
    b"{\"type\":\"hello\",\"version\":2,\"name\":\"bob\"}\n",
    b"{\"type\":\"registered\",\"name\":\"ann\",\"addr\":\"10.0.0.2:4000\"}\n",
    b"{\"type\":\"peers\",\"peers\":[],\"more\":true}\n",
    b"{\"type\":\"error\",\"code\":\"name_taken\",\"message\":\"m\"}\n",
];

/// Which invariants a world run asserts.
#[derive(Clone, Copy, Debug)]
pub struct WorldChecks {
    /// Peers have room for one chat (`max_chats` 1), and are checked to
    /// be in at most one.
    pub one_chat_at_a_time: bool,
}

/// One chat as one side saw it, from `chat_started` to `chat_ended`.
#[derive(Debug, Default)]
struct Session {
    /// Our messages: number → text.
    sent: BTreeMap<u64, String>,
    delivered: BTreeSet<u64>,
    /// Number of the last message received.
    last_in: u64,
}

/// One process of a peer: a restart is a new incarnation with fresh state.
#[derive(Debug, Default)]
struct Incarnation {
    /// Open chats, by partner name.
    sessions: BTreeMap<String, Session>,
    /// Every message received: (from, n, text).
    received: BTreeSet<(String, u64, String)>,
    /// Crashed: its open chats are excused from the accounting.
    crashed: bool,
}

struct Accounting {
    lives: BTreeMap<String, Vec<Incarnation>>,
    /// Receipts seen in this round of events, checked against what the
    /// partner received once every peer's events of the round are in.
    receipts: Vec<(String, String, u64, String)>,
    /// Peers that got forged bytes: receipts to them may be forged too.
    forged: BTreeSet<String>,
    checks: WorldChecks,
}

/// Runs `ops` on a world of three peers and a registry, then lets 70 s
/// pass, then every peer quits and another 60 s pass.
///
/// Asserts after every step: each `sent` is numbered from 1 per chat, each
/// received `message` too; a `delivered` names a message we sent in that
/// chat and not yet delivered, and (unless forged bytes were injected) one
/// the partner received with that text; `chat_ended.undelivered` is exactly
/// the sent messages not delivered, so each message ends exactly once;
/// `chat_partner()` names an open chat and is `None` without one; after
/// `handle_timeout(now)` no deadline lies in the past; an exited peer has
/// no open chat. After 70 s of quiet: the registry lists exactly the live
/// peers, `chatting` exactly when they are in a chat. At the end: every
/// live peer has exited, every chat has ended, the directory is empty.
pub fn check_world(ops: &[WorldOp], checks: WorldChecks) {
    let mut world = World::new();
    let mut acc = Accounting {
        lives: BTreeMap::new(),
        receipts: Vec::new(),
        forged: BTreeSet::new(),
        checks,
    };
    for name in PEERS {
        world.add_peer_with(peer_config(name, checks));
        acc.lives
            .entry(name.to_string())
            .or_default()
            .push(Incarnation::default());
        acc.observe(&mut world);
    }
    for op in ops {
        apply(&mut world, &mut acc, op);
        acc.observe(&mut world);
    }
    // Quiet: heartbeats find every cut link, peers re-register.
    if world.registry.is_none() {
        world.restart_server();
    }
    advance_checked(&mut world, &mut acc, Duration::from_secs(70));
    check_directory_matches_peers(&mut world, checks);
    // Everybody quits.
    for name in PEERS {
        if world.peers.get(*name).is_some_and(|p| !p.has_exited()) {
            world.end_input(name);
            acc.observe(&mut world);
        }
    }
    advance_checked(&mut world, &mut acc, Duration::from_secs(60));
    for (name, peer) in &world.peers {
        assert!(peer.has_exited(), "{name} still running 60 s after /quit");
    }
    for (name, lives) in &acc.lives {
        for life in lives.iter().filter(|l| !l.crashed) {
            assert!(
                life.sessions.is_empty(),
                "{name}: chats never ended: {:?}",
                life.sessions
            );
        }
    }
    if let Some(registry) = &world.registry {
        assert_eq!(registry.peers(), vec![], "everyone quit 60 s ago");
    }
}

/// The settings of peer `name` in a world run with `checks`.
fn peer_config(name: &str, checks: WorldChecks) -> PeerConfig {
    let mut config = PeerConfig::new(name, world::SERVER, world::LISTEN_PORT);
    if checks.one_chat_at_a_time {
        config.max_chats = 1;
    }
    config
}

fn apply(world: &mut World, acc: &mut Accounting, op: &WorldOp) {
    let name = |who: &u8| PEERS[usize::from(*who) % PEERS.len()];
    let running = |world: &World, who: &str| world.peers.contains_key(who);
    match op {
        WorldOp::Line { who, line } => {
            let who = name(who);
            if running(world, who) {
                let text = line.render(world);
                world.type_line(who, &text);
            }
        }
        WorldOp::EndInput { who } => {
            let who = name(who);
            if running(world, who) {
                world.end_input(who);
            }
        }
        WorldOp::Advance { ms } => {
            advance_checked(world, acc, Duration::from_millis(u64::from(*ms)));
        }
        WorldOp::Partition { who, other } => {
            let who = name(who);
            match other {
                None => world.partition(who, None),
                Some(other) if name(other) != who => world.partition(who, Some(name(other))),
                Some(_) => {}
            }
        }
        WorldOp::Crash { who } => {
            let who = name(who);
            if running(world, who) {
                world.crash_peer(who);
                let life = acc.current(who);
                life.crashed = true;
            }
        }
        WorldOp::Restart { who } => {
            let who = name(who);
            let gone = world.peers.get(who).is_none_or(Peer::has_exited);
            if gone {
                acc.lives
                    .entry(who.to_string())
                    .or_default()
                    .push(Incarnation::default());
                // Same name, same address: `World::add_peer` would pick a
                // fresh IP that a second restarted peer then shares.
                let ip = world.addr_of(who).ip();
                world.add_peer_at(peer_config(who, acc.checks), ip);
            }
        }
        WorldOp::CrashServer => {
            if world.registry.is_some() {
                world.crash_server();
            }
        }
        WorldOp::RestartServer => {
            if world.registry.is_none() {
                world.restart_server();
            }
        }
        WorldOp::FailDisk { who } => {
            world.failing_disk = who.as_ref().map(|w| name(w).to_string());
        }
        WorldOp::Inject { who, link, bytes } => {
            let who = name(who);
            if let Some(peer) = world.peers.get_mut(who) {
                let now = world.now;
                let link = LinkId(u64::from(*link % 8) + 1);
                peer.handle_input(
                    now,
                    PeerInput::Bytes {
                        link,
                        bytes: bytes.clone(),
                    },
                );
                acc.forged.insert(who.to_string());
                world.settle();
            }
        }
    }
}

impl UserLine {
    fn render(&self, world: &World) -> String {
        match self {
            UserLine::List => "/list".into(),
            UserLine::ConnectName(i) => match PEERS.get(usize::from(*i)) {
                Some(name) => format!("/connect {name}"),
                None => "/connect nobody".into(),
            },
            UserLine::ConnectAddr(i) => match PEERS.get(usize::from(*i)) {
                Some(name) if world.peers.contains_key(*name) => {
                    format!("/connect {}", world.addr_of(name))
                }
                Some(_) => "/connect 10.0.0.99:4000".into(),
                None if *i % 2 == 0 => format!("/connect {}", world::SERVER),
                None => "/connect [2001:db8::1]:4000".into(),
            },
            UserLine::Accept => "/accept".into(),
            UserLine::Reject => "/reject".into(),
            UserLine::Leave => "/leave".into(),
            UserLine::Quit => "/quit".into(),
            UserLine::Help => "/help".into(),
            UserLine::Say(i) => TEXTS[usize::from(*i) % TEXTS.len()].into(),
            UserLine::SayLong { long } => "z".repeat(if *long { 257 } else { 256 }),
            UserLine::Named { verb, who } => {
                let name = PEERS.get(usize::from(*who)).unwrap_or(&"nobody");
                match verb % 7 {
                    0 => format!("/accept {name}"),
                    1 => format!("/reject {name}"),
                    2 => format!("/cancel {name}"),
                    3 => format!("/leave {name}"),
                    4 => format!("/switch {name}"),
                    5 => format!("/msg {name} {}", TEXTS[usize::from(*verb) % TEXTS.len()]),
                    _ => "/chats".into(),
                }
            }
            UserLine::Raw(text) => text.clone(),
        }
    }
}

impl Accounting {
    fn current(&mut self, name: &str) -> &mut Incarnation {
        self.lives
            .get_mut(name)
            .and_then(|l| l.last_mut())
            .expect("every peer has a life")
    }

    /// Takes every new event and checks the invariants against them.
    fn observe(&mut self, world: &mut World) {
        for name in PEERS {
            if !world.events.contains_key(*name) {
                continue;
            }
            for event in world.take_events(name) {
                self.event(name, event);
            }
        }
        for (me, peer, n, text) in std::mem::take(&mut self.receipts) {
            let received = self.lives.get(&peer).is_some_and(|lives| {
                lives
                    .iter()
                    .any(|l| l.received.contains(&(me.clone(), n, text.clone())))
            });
            assert!(
                received,
                "{me}: #{n} {text:?} delivered but {peer} never received it"
            );
        }
        for name in PEERS {
            let Some(peer) = world.peers.get(*name) else {
                continue;
            };
            let life = self.current(name);
            match peer.chat_partner() {
                Some(partner) => assert!(
                    life.sessions.contains_key(&partner),
                    "{name}: chat_partner() is {partner} but the open chats are {:?}",
                    life.sessions.keys()
                ),
                None => assert!(
                    life.sessions.is_empty(),
                    "{name}: chat_partner() is None during chats with {:?}",
                    life.sessions.keys()
                ),
            }
            if peer.has_exited() {
                assert!(
                    life.sessions.is_empty(),
                    "{name} exited without ending its chats with {:?}",
                    life.sessions.keys()
                );
            }
        }
    }

    fn event(&mut self, me: &str, event: Event) {
        let one_chat = self.checks.one_chat_at_a_time;
        let forged = self.forged.contains(me);
        match event {
            Event::ChatStarted { peer, .. } => {
                let life = self.current(me);
                assert!(
                    !life.sessions.contains_key(&peer),
                    "{me}: a second chat with {peer} started before the first ended"
                );
                if one_chat {
                    assert!(
                        life.sessions.is_empty(),
                        "{me}: chat with {peer} started while chatting with {:?}",
                        life.sessions.keys()
                    );
                }
                life.sessions.insert(peer, Session::default());
            }
            Event::Sent { peer, n, text } => {
                let life = self.current(me);
                let session = life
                    .sessions
                    .get_mut(&peer)
                    .unwrap_or_else(|| panic!("{me}: sent #{n} to {peer} outside a chat"));
                assert_eq!(
                    n,
                    session.sent.len() as u64 + 1,
                    "{me}: messages to {peer} are numbered from 1"
                );
                session.sent.insert(n, text);
            }
            Event::Message { peer, n, text, .. } => {
                let life = self.current(me);
                let session = life
                    .sessions
                    .get_mut(&peer)
                    .unwrap_or_else(|| panic!("{me}: message #{n} from {peer} outside a chat"));
                assert_eq!(
                    n,
                    session.last_in + 1,
                    "{me}: messages from {peer} count up from 1"
                );
                session.last_in = n;
                life.received.insert((peer, n, text));
            }
            Event::Delivered { peer, n } => {
                let life = self.current(me);
                let session = life
                    .sessions
                    .get_mut(&peer)
                    .unwrap_or_else(|| panic!("{me}: delivered #{n} to {peer} outside a chat"));
                let text = session
                    .sent
                    .get(&n)
                    .unwrap_or_else(|| panic!("{me}: delivered #{n} to {peer}, never sent"))
                    .clone();
                assert!(
                    session.delivered.insert(n),
                    "{me}: #{n} to {peer} delivered twice"
                );
                if !forged {
                    self.receipts.push((me.to_string(), peer, n, text));
                }
            }
            Event::ChatEnded {
                peer,
                reason,
                undelivered,
                ..
            } => {
                let life = self.current(me);
                let session = life.sessions.remove(&peer).unwrap_or_else(|| {
                    panic!("{me}: chat with {peer} ended ({reason}) but never started")
                });
                let expected: Vec<u64> = session
                    .sent
                    .keys()
                    .filter(|n| !session.delivered.contains(n))
                    .copied()
                    .collect();
                assert_eq!(
                    undelivered, expected,
                    "{me}: undelivered to {peer} must be exactly the sent messages without receipt"
                );
            }
            _ => {}
        }
    }
}

/// Moves the world's time on by `by` like `World::advance`, firing every
/// deadline at its moment, and asserts that after `handle_timeout(now)`
/// no machine's next deadline is at or before `now` (which would also make
/// a driver spin).
fn advance_checked(world: &mut World, acc: &mut Accounting, by: Duration) {
    let target = world.now.mono + by;
    for _ in 0..100_000 {
        let next = world
            .peers
            .values()
            .filter_map(Peer::poll_timeout)
            .chain(world.registry.as_ref().and_then(Registry::poll_timeout))
            .filter(|&at| at <= target)
            .min();
        let Some(at) = next else {
            let rest = target.saturating_since(world.now.mono);
            world.now = world.now.advanced(rest);
            return;
        };
        world.now = world.now.advanced(at.saturating_since(world.now.mono));
        let now = world.now;
        for (name, peer) in world.peers.iter_mut() {
            if peer.poll_timeout().is_some_and(|t| t <= now.mono) {
                peer.handle_timeout(now);
                if let Some(t) = peer.poll_timeout() {
                    assert!(
                        t > now.mono,
                        "{name}: poll_timeout in the past after handle_timeout"
                    );
                }
            }
        }
        if let Some(registry) = &mut world.registry {
            if registry.poll_timeout().is_some_and(|t| t <= now.mono) {
                registry.handle_timeout(now);
                check_timer(registry, now);
            }
        }
        world.settle();
        acc.observe(world);
    }
    panic!("deadlines keep firing without time moving on");
}

/// After things settled: the registry lists exactly the running peers, at
/// their addresses, `chatting` exactly when they are in a chat (`busy`
/// with room for one chat only; three peers never fill the default four).
fn check_directory_matches_peers(world: &mut World, checks: WorldChecks) {
    let Some(registry) = &world.registry else {
        return;
    };
    let listed: BTreeMap<String, (SocketAddr, PeerStatus)> = registry
        .peers()
        .into_iter()
        .map(|p| (p.name, (p.addr, p.status)))
        .collect();
    let running: BTreeMap<String, (SocketAddr, PeerStatus)> = world
        .peers
        .iter()
        .filter(|(_, p)| !p.has_exited())
        .map(|(name, p)| {
            let status = if p.chat_partner().is_some() {
                if checks.one_chat_at_a_time {
                    PeerStatus::Busy
                } else {
                    PeerStatus::Chatting
                }
            } else {
                PeerStatus::Available
            };
            (name.clone(), (world.addr_of(name), status))
        })
        .collect();
    assert_eq!(
        listed, running,
        "after 70 s of quiet the directory shows every running peer as it is"
    );
    for (name, peer) in &world.peers {
        if !peer.has_exited() {
            assert!(peer.is_registered(), "{name} is running but not registered");
        }
    }
}

// ---------------------------------------------------------------------------
// proptest strategies and the properties themselves
// ---------------------------------------------------------------------------

#[cfg(test)]
mod properties {
    use super::*;
    use natter_core::protocol::{Versions, PROTOCOL_VERSION};
    use proptest::prelude::*;

    fn cases(default: u32) -> ProptestConfig {
        let cases = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default);
        ProptestConfig {
            cases,
            // Failures are minimised and printed; nothing is written into
            // the source tree.
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![
                6 => any::<u8>(),
                2 => Just(b'\n'),
                1 => Just(b'{'),
                1 => Just(b'"'),
            ],
            0..max,
        )
    }

    /// Byte chunks that mix garbage with real frames of every kind.
    fn stream_chunk() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            3 => bytes(80),
            2 => client_frame().prop_map(|f| natter_core::encode(&f)),
            1 => Just(b"{\"type\":\"msg\",\"n\":1,\"text\":\"hi\",\"at\":\"x\"}\n".to_vec()),
            1 => Just(b"{\"type\":\"peers\",\"peers\":[],\"more\":false}\r\n".to_vec()),
            1 => prop::collection::vec(Just(b'x'), 0..300),
        ]
    }

    fn client_frame() -> impl Strategy<Value = ClientMsg> {
        let name = prop::sample::select(REG_NAMES).prop_map(str::to_string);
        prop_oneof![
            3 => prop_oneof![4 => Just(PROTOCOL_VERSION), 1 => Just(1u32)]
                .prop_map(|version| ClientMsg::Hello { versions: Versions { version, min_version: None, features: vec![] } }),
            4 => (name.clone(), prop::sample::select(REG_PORTS))
                .prop_map(|(name, port)| ClientMsg::Register { name, port }),
            2 => Just(ClientMsg::List { id: None }),
            1 => name.prop_map(|name| ClientMsg::Lookup { id: None, name }),
            2 => prop_oneof![Just(PeerStatus::Available), Just(PeerStatus::Chatting)]
                .prop_map(|status| ClientMsg::Status { status }),
            1 => Just(ClientMsg::Ping),
            1 => Just(ClientMsg::Pong),
            1 => Just(ClientMsg::Bye),
        ]
    }

    fn reg_op() -> impl Strategy<Value = RegOp> {
        let payload = prop_oneof![
            1 => bytes(64).prop_map(Payload::Raw),
            4 => (
                prop::collection::vec(client_frame(), 1..5),
                prop::collection::vec(any::<u16>(), 0..4)
            )
                .prop_map(|(frames, cuts)| Payload::Frames { frames, cuts }),
        ];
        prop_oneof![
            2 => any::<u8>().prop_map(|ip| RegOp::Open { ip }),
            6 => (any::<u8>(), payload).prop_map(|(link, payload)| RegOp::Bytes { link, payload }),
            1 => any::<u8>().prop_map(|link| RegOp::Close { link }),
            2 => prop_oneof![0..2_000u32, 0..20_000u32].prop_map(|ms| RegOp::Advance { ms }),
        ]
    }

    fn user_line() -> impl Strategy<Value = UserLine> {
        prop_oneof![
            2 => Just(UserLine::List),
            6 => (0..4u8).prop_map(UserLine::ConnectName),
            1 => (0..5u8).prop_map(UserLine::ConnectAddr),
            6 => Just(UserLine::Accept),
            1 => Just(UserLine::Reject),
            2 => Just(UserLine::Leave),
            1 => Just(UserLine::Quit),
            1 => Just(UserLine::Help),
            8 => any::<u8>().prop_map(UserLine::Say),
            1 => any::<bool>().prop_map(|long| UserLine::SayLong { long }),
            4 => (any::<u8>(), 0..4u8).prop_map(|(verb, who)| UserLine::Named { verb, who }),
            1 => "[ -~]{0,12}".prop_map(UserLine::Raw),
        ]
    }

    /// Bytes a hostile partner or server might send: garbage, or frames
    /// that are well-formed but out of place or lying.
    fn forged_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            bytes(40),
            prop::sample::select(FORGED).prop_map(<[u8]>::to_vec),
        ]
    }

    fn world_op(hostile: bool) -> impl Strategy<Value = WorldOp> {
        let who = 0..3u8;
        let inject_weight = if hostile { 2 } else { 0 };
        prop_oneof![
            16 => (who.clone(), user_line()).prop_map(|(who, line)| WorldOp::Line { who, line }),
            1 => who.clone().prop_map(|who| WorldOp::EndInput { who }),
            5 => prop_oneof![3 => 0..1_000u32, 1 => 0..20_000u32].prop_map(|ms| WorldOp::Advance { ms }),
            1 => (who.clone(), prop::option::of(0..3u8))
                .prop_map(|(who, other)| WorldOp::Partition { who, other }),
            1 => who.clone().prop_map(|who| WorldOp::Crash { who }),
            1 => who.clone().prop_map(|who| WorldOp::Restart { who }),
            1 => Just(WorldOp::CrashServer),
            1 => Just(WorldOp::RestartServer),
            1 => prop::option::of(who.clone()).prop_map(|who| WorldOp::FailDisk { who }),
            inject_weight => (who, 0..4u8, forged_bytes())
                .prop_map(|(who, link, bytes)| WorldOp::Inject { who, link, bytes }),
        ]
    }

    proptest! {
        #![proptest_config(cases(256))]

        #[test]
        fn decoder_fed_arbitrary_chunks_stays_bounded_and_split_does_not_matter(
            chunks in prop::collection::vec(stream_chunk(), 0..24),
            limit in prop_oneof![Just(16usize), Just(64), Just(256)],
        ) {
            check_decoder(&chunks, limit);
        }
    }

    proptest! {
        #![proptest_config(cases(192))]

        #[test]
        fn registry_fed_arbitrary_inputs_lists_only_open_registered_links_once(
            ops in prop::collection::vec(reg_op(), 0..60),
        ) {
            check_registry(&ops);
        }
    }

    proptest! {
        #![proptest_config(cases(128))]

        #[test]
        fn peers_under_arbitrary_use_and_faults_end_every_message_exactly_once(
            ops in prop::collection::vec(world_op(false), 0..50),
        ) {
            check_world(&ops, WorldChecks { one_chat_at_a_time: false });
        }

        #[test]
        fn a_peer_is_never_in_two_chats_at_once(
            ops in prop::collection::vec(world_op(false), 0..50),
        ) {
            check_world(&ops, WorldChecks { one_chat_at_a_time: true });
        }

        #[test]
        fn hostile_bytes_on_peer_links_never_break_the_message_accounting(
            ops in prop::collection::vec(world_op(true), 0..50),
        ) {
            check_world(&ops, WorldChecks { one_chat_at_a_time: false });
        }
    }
}

// ---------------------------------------------------------------------------
// minimised failures the properties above found (core bugs, now fixed)
// ---------------------------------------------------------------------------

/// cat calls ann; while cat's request rings, ann calls bob; bob accepts,
/// then ann types `/accept`. Expected: ann ends up in one chat (the
/// `/accept` is refused or cat was answered `busy`). Before the fix in
/// 58f8d78 ann held two active chats at once.
#[test]
fn accepting_a_call_while_another_chat_is_active_leaves_one_chat() {
    let ops = [
        WorldOp::Line {
            who: 2,
            line: UserLine::ConnectName(0),
        },
        WorldOp::Line {
            who: 0,
            line: UserLine::ConnectName(1),
        },
        WorldOp::Line {
            who: 1,
            line: UserLine::Accept,
        },
        WorldOp::Line {
            who: 0,
            line: UserLine::Accept,
        },
    ];
    check_world(
        &ops,
        WorldChecks {
            one_chat_at_a_time: true,
        },
    );
}

/// bob dials an address; the callee answers `{"type":"accept"}` without
/// its `hello` first. Expected: the call is refused (a peer link must start
/// with a valid hello). Before the fix in 58f8d78 bob got `chat_started`
/// with `peer` = the address, `chat_partner()` was `None` during the chat,
/// and bob told the server it was `available`.
#[test]
fn a_callee_that_accepts_before_its_hello_is_refused() {
    let ops = [
        WorldOp::Line {
            who: 0,
            line: UserLine::Quit,
        },
        WorldOp::Line {
            who: 1,
            line: UserLine::ConnectAddr(0),
        },
        WorldOp::Inject {
            who: 1,
            link: 1,
            bytes: b"{\"type\":\"accept\"}\n".to_vec(),
        },
    ];
    check_world(
        &ops,
        WorldChecks {
            one_chat_at_a_time: false,
        },
    );
}
