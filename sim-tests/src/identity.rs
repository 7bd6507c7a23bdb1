//! The identity scenarios: every chat checked against the directory and
//! the pins, and names owned by keys, proved with the production peers and
//! server over turmoil, against attackers that hold real keys and speak
//! real Noise ([`SecureStream`]). Each scenario asserts what the users
//! observe and returns all of it (events with simulated times, transcripts,
//! the server log, and what an attacker read) for a snapshot.
//!
//! Identities are fixed: a peer's key derives from the name its host
//! starts it with (`PeerConfig::new`), so alice is the same user at every
//! start of host `alice`, and a peer started on host `mallory` under the
//! name `alice` holds mallory's key.

use crate::{chat, is_error, observed, registered, say, LIMIT};
use natter_core::protocol::ServerMsg;
use natter_core::{
    encode, ErrorCode, ErrorDetail, Event, FrameDecoder, Identity, LinkKind, ListedPeer,
    PeerConfig, PeerInfo, PublicKey, RegistryConfig,
};
use natter_net_real::SecureStream;
use natter_net_sim::scenario::{builder, Scenario, PEER_PORT, SERVER_PORT};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use turmoil::net::{TcpListener, TcpStream};

/// The key of the peer a scenario starts on host `name`.
fn key_of(name: &str) -> Identity {
    PeerConfig::new(name, any_addr(0), 0).identity
}

fn any_addr(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)
}

fn server_addr() -> SocketAddr {
    SocketAddr::new(turmoil::lookup("server"), SERVER_PORT)
}

/// The first error event with `code` that `peer` saw, if any.
fn error_seen(s: &Scenario<'_>, peer: &str, code: ErrorCode) -> Option<ErrorDetail> {
    s.events(peer).iter().find_map(|(_, e)| match e {
        Event::Error { code: c, detail } if *c == code => Some(detail.clone()),
        _ => None,
    })
}

fn saw(s: &Scenario<'_>, peer: &str, wanted: impl Fn(&Event) -> bool) -> bool {
    s.events(peer).iter().any(|(_, e)| wanted(e))
}

fn chat_started(e: &Event) -> bool {
    matches!(e, Event::ChatStarted { .. })
}

fn rang(e: &Event) -> bool {
    matches!(e, Event::Incoming { .. })
}

/// Whether `peer` was told by `from`, in an `error` frame, that `from`
/// refused it with `code`.
fn told_by(s: &Scenario<'_>, peer: &str, code: ErrorCode, from: &str) -> bool {
    matches!(error_seen(s, peer, code), Some(ErrorDetail::PeerSaid { peer: p, .. }) if p == from)
}

/// `peer` asks for the list and gets it.
fn list(s: &mut Scenario<'_>, peer: &str) -> Vec<ListedPeer> {
    s.type_line(peer, "/list");
    match s.wait_for(peer, LIMIT, |e| matches!(e, Event::Peers { .. })) {
        (_, Event::Peers { peers }) => peers,
        _ => unreachable!(),
    }
}

/// What an attacker's host read in clear, one line each, in order.
type Notes = Arc<Mutex<Vec<String>>>;

fn note(notes: &Notes, line: String) {
    notes.lock().unwrap().push(line);
}

/// Scenario i01: a man in the middle. bob's machine sits behind mallory's
/// (a router mallory controls): bob's server link passes through it
/// untouched (its Noise session is bob's and the server's, so the
/// directory is honest and lists bob's own key), but the server sees bob
/// at mallory's address and so lists him there. alice calls bob and
/// reaches mallory, who ends Noise on both sides with its own key and
/// relays. bob refuses the relay's key before his call rings (it is not
/// the key the directory lists for alice); mallory hides that and greets
/// alice as bob itself; alice refuses the relay's key too (it is not the
/// key the directory lists for bob). Both are told why, with both
/// fingerprints; no chat starts, and mallory never reads a message.
pub fn man_in_the_middle(seed: u64) -> String {
    let mut s = Scenario::new(seed);
    let notes = Notes::default();
    let bob_addr = SocketAddr::new(s.sim.lookup("bob"), PEER_PORT);
    let read = notes.clone();
    s.start_raw_host("mallory", move || relay_between(bob_addr, read.clone()));
    let mallory = s.sim.lookup("mallory");
    s.start_peer_with("bob", |c| {
        c.servers = vec![SocketAddr::new(mallory, SERVER_PORT)]
    });
    s.start_peer("alice");
    registered(&mut s, &["alice", "bob"]);
    let listed = list(&mut s, "alice");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].addr,
        SocketAddr::new(mallory, PEER_PORT),
        "the directory sends alice to mallory"
    );
    assert_eq!(
        listed[0].fingerprint,
        Some(key_of("bob").public().fingerprint()),
        "with bob's own key"
    );

    s.type_line("alice", "/connect bob");
    s.wait_for("alice", LIMIT, is_error(ErrorCode::IdentityMismatch));
    s.wait_for("bob", LIMIT, is_error(ErrorCode::IdentityMismatch));
    s.run_for(Duration::from_secs(1));

    let relay = key_of("mallory").public().fingerprint();
    assert_eq!(
        error_seen(&s, "alice", ErrorCode::IdentityMismatch),
        Some(ErrorDetail::IdentityMismatch {
            peer: "bob".into(),
            expected: key_of("bob").public().fingerprint(),
            presented: relay.clone(),
        })
    );
    assert_eq!(
        error_seen(&s, "bob", ErrorCode::IdentityMismatch),
        Some(ErrorDetail::IdentityMismatch {
            peer: "alice".into(),
            expected: key_of("alice").public().fingerprint(),
            presented: relay,
        })
    );
    assert!(!saw(&s, "bob", rang), "bob's call never rang");
    for peer in ["alice", "bob"] {
        assert!(!saw(&s, peer, chat_started), "{peer} chatted");
        assert_eq!(s.transcripts(peer), "", "{peer} recorded something");
    }
    let notes = notes.lock().unwrap().join("\n");
    assert!(
        !notes.contains("\"msg\""),
        "mallory read a message: {notes}"
    );
    let hosts: String = ["bob", "mallory", "alice"]
        .iter()
        .map(|host| format!("{host} {}\n", s.sim.lookup(*host)))
        .collect();
    format!(
        "### hosts\n{hosts}{}### what mallory's relay read\n{notes}\n",
        observed(&s, &["alice", "bob"])
    )
}

/// mallory's machine: bob's server link passes through it on the server's
/// port (bytes forwarded as they are), and every call to bob's port is
/// intercepted by [`intercept`].
async fn relay_between(bob: SocketAddr, read: Notes) {
    let directory = TcpListener::bind(any_addr(SERVER_PORT)).await.unwrap();
    let chats = TcpListener::bind(any_addr(PEER_PORT)).await.unwrap();
    tokio::spawn(async move {
        while let Ok((mut from_bob, _)) = directory.accept().await {
            tokio::spawn(async move {
                if let Ok(mut to_server) = TcpStream::connect(server_addr()).await {
                    let _ = tokio::io::copy_bidirectional(&mut from_bob, &mut to_server).await;
                }
            });
        }
    });
    let mut calls = 0u8;
    while let Ok((caller, _)) = chats.accept().await {
        calls = calls.wrapping_add(1);
        tokio::spawn(intercept(caller, bob, calls, read.clone()));
    }
}

/// bob's hello as bob would say it, forged by mallory.
const BOBS_HELLO: &str =
    "{\"type\":\"hello\",\"version\":2,\"min_version\":2,\"features\":[],\"name\":\"bob\",\"max_message\":256}\n";

/// One call through mallory: Noise ends here on both sides with mallory's
/// own key; the caller's hello goes on to bob, whose answer mallory reads
/// and keeps to itself; then it greets the caller as bob and reads what
/// the caller says. (The server's reachability probe also lands here: it
/// closes before any handshake, and nothing is read.)
async fn intercept(caller: TcpStream, bob: SocketAddr, call: u8, read: Notes) {
    let mallory = key_of("mallory");
    let Ok(mut caller) = SecureStream::accept(caller, &mallory, LinkKind::Peer, [call; 32]).await
    else {
        return;
    };
    let Ok(Some(hello)) = caller.recv_line().await else {
        return;
    };
    let who = caller.remote_key().fingerprint();
    note(&read, format!("caller {who}: {hello}"));
    let Ok(to_bob) = TcpStream::connect(bob).await else {
        return;
    };
    let seed = [0x80 | call; 32];
    let Ok(mut callee) = SecureStream::connect(to_bob, &mallory, LinkKind::Peer, seed).await else {
        return;
    };
    if callee.send(format!("{hello}\n").as_bytes()).await.is_err() {
        return;
    }
    let who = callee.remote_key().fingerprint();
    while let Ok(Some(line)) = callee.recv_line().await {
        note(&read, format!("bob {who}: {line}"));
    }
    if caller.send(BOBS_HELLO.as_bytes()).await.is_err() {
        return;
    }
    let who = caller.remote_key().fingerprint();
    while let Ok(Some(line)) = caller.recv_line().await {
        note(&read, format!("caller {who}: {line}"));
    }
}

/// A key nobody in these scenarios holds: what the lying directory lists
/// for bob.
fn forged_key() -> PublicKey {
    Identity::from_seed(&[0x6d; 32]).public()
}

/// Scenario i02: a lying directory. The server alice uses lists another
/// key for bob than the one bob proved (as a malicious operator can): its
/// answers come through a relay that holds the server's key, so alice's
/// natter takes it for the server, and rewrites bob's `key` in `peers`
/// and `found`. alice's call reaches the real bob, whose key is not the
/// listed one: refused (`identity_mismatch`, both fingerprints), bob told;
/// no chat starts.
pub fn lying_directory(seed: u64) -> String {
    let mut s = Scenario::new(seed);
    let liar = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), SERVER_PORT);
    s.start_peer_beside(
        "alice",
        |c| c.servers = vec![liar],
        || lying_relay(key_of("alice"), "bob", forged_key()),
    );
    s.start_peer("bob");
    registered(&mut s, &["alice", "bob"]);
    let listed = list(&mut s, "alice");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].fingerprint, Some(forged_key().fingerprint()));

    s.type_line("alice", "/connect bob");
    s.wait_for("alice", LIMIT, is_error(ErrorCode::IdentityMismatch));
    s.wait_for("bob", LIMIT, is_error(ErrorCode::IdentityMismatch));
    s.run_for(Duration::from_secs(1));

    assert_eq!(
        error_seen(&s, "alice", ErrorCode::IdentityMismatch),
        Some(ErrorDetail::IdentityMismatch {
            peer: "bob".into(),
            expected: forged_key().fingerprint(),
            presented: key_of("bob").public().fingerprint(),
        })
    );
    assert!(told_by(&s, "bob", ErrorCode::IdentityMismatch, "alice"));
    for peer in ["alice", "bob"] {
        assert!(!saw(&s, peer, chat_started), "{peer} chatted");
        assert_eq!(s.transcripts(peer), "", "{peer} recorded something");
    }
    observed(&s, &["alice", "bob"])
}

/// The lying directory, on alice's machine in front of the real server
/// (so the server sees alice's own address): it answers alice's server
/// link with the server's key, and speaks to the server as alice, with
/// her key, so her name stays hers. Frames pass unchanged both ways,
/// except that `about`'s key in `peers` and `found` becomes `lie`. (A
/// malicious server needs none of this: it is the directory.)
async fn lying_relay(peer: Identity, about: &'static str, lie: PublicKey) {
    let listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), SERVER_PORT);
    let listener = TcpListener::bind(listen).await.unwrap();
    let mut sessions = 0u8;
    while let Ok((stream, _)) = listener.accept().await {
        sessions = sessions.wrapping_add(1);
        tokio::spawn(lie_on(stream, peer.clone(), about, lie, sessions));
    }
}

async fn lie_on(stream: TcpStream, peer: Identity, about: &str, lie: PublicKey, session: u8) {
    let server_key = RegistryConfig::default().identity;
    let seed = [0x40 | session; 32];
    let Ok(to_peer) = SecureStream::accept(stream, &server_key, LinkKind::Server, seed).await
    else {
        return;
    };
    let Ok(stream) = TcpStream::connect(server_addr()).await else {
        return;
    };
    let seed = [0xc0 | session; 32];
    let Ok(to_server) = SecureStream::connect(stream, &peer, LinkKind::Server, seed).await else {
        return;
    };
    let (mut from_peer, mut to_peer) = to_peer.into_split();
    let (mut from_server, mut to_server) = to_server.into_split();
    let upward = async {
        while let Ok(Some(bytes)) = from_peer.recv().await {
            if to_server.send(&bytes).await.is_err() {
                break;
            }
        }
        let _ = to_server.close().await;
    };
    let downward = async {
        let mut frames = FrameDecoder::<ServerMsg>::new(usize::MAX);
        while let Ok(Some(bytes)) = from_server.recv().await {
            frames.push(&bytes);
            while let Some(Ok(mut frame)) = frames.next_frame() {
                let lie_about = |info: &mut PeerInfo| {
                    if info.name.eq_ignore_ascii_case(about) {
                        info.key = Some(lie);
                    }
                };
                match &mut frame {
                    ServerMsg::Peers { peers, .. } => peers.iter_mut().for_each(lie_about),
                    ServerMsg::Found {
                        peer: Some(info), ..
                    } => lie_about(info),
                    _ => {}
                }
                if to_peer.send(&encode(&frame)).await.is_err() {
                    return;
                }
            }
        }
        let _ = to_peer.close().await;
    };
    tokio::join!(upward, downward);
}

/// How long a name stays bound after its last use in [`key_change`]: a
/// reinstalled bob gets his name back once it has run out.
const SHORT_NAME_TTL: Duration = Duration::from_secs(60);

/// Scenario i03: a contact reinstalls. alice and bob chat once (each pins
/// the other's key); bob quits, and reinstalls natter: a new key. Once
/// his name's binding has run out he registers it again with the new key.
/// alice's next call is refused (`key_changed`, both fingerprints), and
/// bob is told, until alice types `/trust bob` (event `trusted`); then the
/// call goes through and they chat.
pub fn key_change(seed: u64) -> String {
    let registry = RegistryConfig {
        name_ttl: SHORT_NAME_TTL,
        ..RegistryConfig::default()
    };
    let mut s = Scenario::with_builder(&builder(seed), registry);
    s.start_peer("alice");
    s.start_peer("bob");
    registered(&mut s, &["alice", "bob"]);
    chat(&mut s, "alice", "bob");
    say(&mut s, "alice", "see you on your new laptop");
    s.type_line("bob", "/leave");
    s.wait_for("alice", LIMIT, |e| matches!(e, Event::ChatEnded { .. }));
    s.end_input("bob");
    assert_eq!(s.wait_exit("bob", LIMIT), 0);

    s.run_for(SHORT_NAME_TTL + Duration::from_secs(1));
    let reinstalled = Identity::from_seed(&[0xb0; 32]);
    let new_key = reinstalled.public();
    s.restart_peer("bob", |c| {
        c.identity = reinstalled;
        c.seed = [0xb1; 32];
    });
    s.wait_for("bob", LIMIT, |e| matches!(e, Event::Registered { .. }));

    s.type_line("alice", "/connect bob");
    s.wait_for("alice", LIMIT, is_error(ErrorCode::KeyChanged));
    s.wait_for("bob", LIMIT, is_error(ErrorCode::KeyChanged));
    assert_eq!(
        error_seen(&s, "alice", ErrorCode::KeyChanged),
        Some(ErrorDetail::KeyChanged {
            peer: "bob".into(),
            expected: key_of("bob").public().fingerprint(),
            presented: new_key.fingerprint(),
        })
    );
    assert!(told_by(&s, "bob", ErrorCode::KeyChanged, "alice"));
    assert_eq!(
        s.events("alice")
            .iter()
            .filter(|(_, e)| chat_started(e))
            .count(),
        1,
        "only the chat before the reinstall"
    );

    s.type_line("alice", "/trust bob");
    let (_, trusted) = s.wait_for("alice", LIMIT, |e| matches!(e, Event::Trusted { .. }));
    assert_eq!(
        trusted,
        Event::Trusted {
            peer: "bob".into(),
            fingerprint: new_key.fingerprint()
        }
    );
    chat(&mut s, "alice", "bob");
    say(&mut s, "alice", "welcome back");
    say(&mut s, "bob", "thanks");
    let fingerprints: Vec<_> = s
        .events("alice")
        .iter()
        .filter_map(|(_, e)| match e {
            Event::ChatStarted { fingerprint, .. } => Some(fingerprint.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        fingerprints,
        [key_of("bob").public().fingerprint(), new_key.fingerprint()],
        "one chat with each of bob's keys, the second after /trust"
    );
    observed(&s, &["alice", "bob"])
}

/// Scenario i04: mallory (another key) registers `alice` while alice is
/// online and chatting, then again after alice left: refused both times
/// (`name_taken`, "owned by another key"), fatal at mallory's start. alice
/// is unaffected (her chat goes on), nobody holds her name while she is
/// away, and she comes back to it with her key.
pub fn name_takeover(seed: u64) -> String {
    let mut s = Scenario::new(seed);
    s.start_peer("alice");
    s.start_peer("bob");
    registered(&mut s, &["alice", "bob"]);
    chat(&mut s, "alice", "bob");
    say(&mut s, "alice", "are you there");

    s.start_peer_with("mallory", |c| c.name = "alice".into());
    refused_owned_by_another_key(&mut s, "mallory");
    say(&mut s, "bob", "yes, still here");
    say(&mut s, "alice", "good");

    s.type_line("alice", "/leave");
    s.wait_for("bob", LIMIT, |e| matches!(e, Event::ChatEnded { .. }));
    s.end_input("alice");
    assert_eq!(s.wait_exit("alice", LIMIT), 0);
    s.restart_peer("mallory", |c| c.name = "alice".into());
    refused_owned_by_another_key(&mut s, "mallory");
    assert_eq!(list(&mut s, "bob"), vec![], "nobody took alice's name");

    s.restart_peer("alice", |_| {});
    s.wait_for("alice", LIMIT, |e| matches!(e, Event::Registered { .. }));
    assert_listed_with_her_key(&mut s, "bob");
    for peer in ["alice", "bob"] {
        let errors: Vec<_> = s
            .events(peer)
            .iter()
            .filter(|(_, e)| matches!(e, Event::Error { .. } | Event::ServerLost))
            .collect();
        assert!(errors.is_empty(), "{peer} was affected: {errors:?}");
    }
    observed(&s, &["alice", "bob", "mallory"])
}

/// `peer`, registering another key's name, is refused at start.
fn refused_owned_by_another_key(s: &mut Scenario<'_>, peer: &str) {
    let (_, refused) = s.wait_for(peer, LIMIT, |e| matches!(e, Event::Error { .. }));
    assert!(
        matches!(
            &refused,
            Event::Error {
                code: ErrorCode::NameTaken,
                detail: ErrorDetail::ServerSaid { text },
            } if text.contains("owned by another key")
        ),
        "{refused:?}"
    );
    assert_eq!(
        s.wait_exit(peer, LIMIT),
        1,
        "a taken name is fatal at start"
    );
}

/// Scenario i05: the owner's restart after a crash. alice's machine dies
/// (a power cut: nothing it had open says goodbye, so the server still
/// lists her old session) and alice starts natter again at once, same key,
/// same address: she is registered at once, her old session replaced,
/// without waiting for the server's heartbeat to give up on it; bob calls
/// her and they chat.
pub fn owner_restart(seed: u64) -> String {
    let mut s = Scenario::new(seed);
    s.start_peer("alice");
    s.start_peer("bob");
    registered(&mut s, &["alice", "bob"]);

    // turmoil's crash closes the host's sockets, as a crashed process's
    // kernel would; a machine losing power sends nothing, which the cut
    // link models (what the crash sends is lost).
    s.sim.partition("alice", "server");
    s.sim.crash("alice");
    s.run_for(Duration::from_millis(100));
    s.sim.repair("alice", "server");
    let restarted_at = s.elapsed();
    s.restart_peer("alice", |_| {});
    let (at, _) = s.wait_for("alice", LIMIT, |e| matches!(e, Event::Registered { .. }));
    let took = at - restarted_at;
    assert!(
        took < Duration::from_millis(100),
        "registered at once, not after a heartbeat timeout: {took:?}"
    );
    assert!(
        s.server_log().contains("replaced"),
        "the old session was still listed, and replaced:\n{}",
        s.server_log()
    );
    chat(&mut s, "bob", "alice");
    say(&mut s, "bob", "you are back");
    say(&mut s, "alice", "a power cut");
    observed(&s, &["alice", "bob"])
}

/// Scenario i06: the server restarts and keeps its name bindings (SQLite).
/// alice registers and leaves; the server crashes and comes back; mallory
/// (another key) is first to register `alice` after the restart: refused
/// (`name_taken`, "owned by another key"); alice comes back to her name,
/// and bob, who stayed, lists her with her key.
pub fn server_restart_keeps_bindings(seed: u64) -> String {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut s = Scenario::with_bindings(
        &builder(seed),
        RegistryConfig::default(),
        &dir.path().join("names.sqlite"),
    );
    s.start_peer("alice");
    s.start_peer("bob");
    registered(&mut s, &["alice", "bob"]);
    s.end_input("alice");
    assert_eq!(s.wait_exit("alice", LIMIT), 0);
    s.run_for(Duration::from_millis(100));

    s.sim.crash("server");
    s.wait_for("bob", LIMIT, |e| *e == Event::ServerLost);
    s.sim.bounce("server");
    s.start_peer_with("mallory", |c| c.name = "alice".into());
    refused_owned_by_another_key(&mut s, "mallory");
    s.wait_for("bob", LIMIT, |e| matches!(e, Event::Reregistered { .. }));

    s.restart_peer("alice", |_| {});
    s.wait_for("alice", LIMIT, |e| matches!(e, Event::Registered { .. }));
    assert_listed_with_her_key(&mut s, "bob");
    let out = observed(&s, &["alice", "bob", "mallory"]);
    // The server's database closes before its directory is removed.
    drop(s);
    drop(dir);
    out
}

/// `peer`'s list shows alice, and the key is alice's own.
fn assert_listed_with_her_key(s: &mut Scenario<'_>, peer: &str) {
    let listed = list(s, peer);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (listed[0].name.as_str(), listed[0].fingerprint.clone()),
        ("alice", Some(key_of("alice").public().fingerprint()))
    );
}
