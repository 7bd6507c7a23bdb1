//! One function per scenario of the simulation issue. Each drives the
//! production driver over turmoil, asserts what a user must observe, and
//! returns the full observable text for a snapshot.

use crate::invariants::every_message_accounted_for;
use crate::raw_client::{plain_bytes, RawClient};
use crate::{busy_answered_at_once, chat, is_error, observed, registered, say, LIMIT};
use natter_core::{
    ChatEndReason, EndCause, ErrorCode, ErrorDetail, Event, ListedPeer, PeerStatus, RegistryConfig,
};
use natter_net_sim::scenario::{builder, Scenario, LATENCY};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn chat_ended(e: &Event) -> bool {
    matches!(e, Event::ChatEnded { .. })
}

/// Scenario 1: The old program's demo: register, list, chat with receipts both
/// ways, leave.
pub fn happy_path(seed: u64) -> String {
    let mut s = Scenario::new(seed);
    s.start_peer("alice");
    s.start_peer("zuzu");
    registered(&mut s, &["alice", "zuzu"]);
    s.type_line("alice", "/list");
    let (_, peers) = s.wait_for("alice", LIMIT, |e| matches!(e, Event::Peers { .. }));
    let Event::Peers { peers } = peers else {
        unreachable!()
    };
    assert_eq!(peers.len(), 1);
    assert_eq!(
        (peers[0].name.as_str(), peers[0].status),
        ("zuzu", PeerStatus::Available)
    );
    chat(&mut s, "alice", "zuzu");
    say(&mut s, "alice", "hi zuzu");
    say(&mut s, "zuzu", "how are you");
    say(&mut s, "alice", "i am fine");
    say(&mut s, "zuzu", "thank you very much");
    s.type_line("alice", "/leave");
    let (_, ended) = s.wait_for("zuzu", LIMIT, chat_ended);
    assert_eq!(
        ended,
        Event::ChatEnded {
            peer: "alice".into(),
            reason: ChatEndReason::PeerLeft,
            cause: EndCause::Bye,
            undelivered: vec![]
        }
    );
    s.end_input("alice");
    s.end_input("zuzu");
    assert_eq!(s.wait_exit("alice", LIMIT), 0);
    assert_eq!(s.wait_exit("zuzu", LIMIT), 0);
    s.run_for(Duration::from_millis(100));
    observed(&s, &["alice", "zuzu"])
}

/// Scenario 2: A peer crashes mid-chat: its partner's chat ends by itself with
/// `peer_left`, the server forgets it, unacknowledged messages are listed.
pub fn peer_crash(seed: u64) -> String {
    peer_crash_in(&mut Scenario::new(seed), LATENCY)
}

/// [`peer_crash`] in a given world whose links take at most `latency`.
pub fn peer_crash_in(s: &mut Scenario<'_>, latency: Duration) -> String {
    s.start_peer("alice");
    s.start_peer("bob");
    registered(s, &["alice", "bob"]);
    chat(s, "alice", "bob");
    say(s, "alice", "are you still there");
    // bob dies while alice's next message is on the wire.
    s.type_line("alice", "hello?");
    s.wait_for("alice", LIMIT, |e| matches!(e, Event::Sent { n: 2, .. }));
    s.sim.crash("bob");
    let crashed_at = s.elapsed();
    let (at, ended) = s.wait_for("alice", LIMIT, chat_ended);
    assert_eq!(
        ended,
        Event::ChatEnded {
            peer: "bob".into(),
            reason: ChatEndReason::PeerLost,
            cause: EndCause::Closed,
            undelivered: vec![2]
        }
    );
    assert!(
        at - crashed_at <= 4 * latency,
        "told at once, not after a timeout: {:?}",
        at - crashed_at
    );
    // The server learns of the crash on its own link to bob, which may be
    // slower than alice's: it must drop bob within one more link delay.
    let peers = list_soon(s, "alice", |peers| peers.is_empty(), 2 * latency);
    assert_eq!(peers, vec![], "the server dropped bob");
    every_message_accounted_for(s.events("alice")).unwrap();
    observed(s, &["alice"])
}

/// Scenario 3: A partition mid-chat (packets silently dropped, no FIN): both sides
/// detect `peer_lost` within the heartbeat timeout, the server drops the
/// unreachable peer, and after `repair` the peer re-registers.
pub fn partition(seed: u64) -> String {
    partition_in(&mut Scenario::new(seed))
}

/// [`partition`] in a given world.
pub fn partition_in(s: &mut Scenario<'_>) -> String {
    s.start_peer("alice");
    s.start_peer("bob");
    registered(s, &["alice", "bob"]);
    chat(s, "alice", "bob");
    say(s, "alice", "can you hear me");
    s.sim.partition("alice", "bob");
    s.sim.partition("alice", "server");
    let cut_at = s.elapsed();
    s.type_line("alice", "hello?");
    let (alice_at, alice_end) = s.wait_for("alice", LIMIT, chat_ended);
    let (bob_at, bob_end) = s.wait_for("bob", LIMIT, chat_ended);
    assert_eq!(
        alice_end,
        Event::ChatEnded {
            peer: "bob".into(),
            reason: ChatEndReason::PeerLost,
            cause: EndCause::Silent,
            undelivered: vec![2]
        }
    );
    assert_eq!(
        bob_end,
        Event::ChatEnded {
            peer: "alice".into(),
            reason: ChatEndReason::PeerLost,
            cause: EndCause::Silent,
            undelivered: vec![]
        }
    );
    let heartbeat = Duration::from_secs(15);
    assert!(
        alice_at - cut_at <= heartbeat,
        "alice noticed in {:?}",
        alice_at - cut_at
    );
    assert!(
        bob_at - cut_at <= heartbeat,
        "bob noticed in {:?}",
        bob_at - cut_at
    );
    // The server dropped alice: bob's list no longer shows her.
    s.run_for(Duration::from_secs(1));
    assert!(s
        .events("alice")
        .iter()
        .any(|(_, e)| *e == Event::ServerLost));
    s.type_line("bob", "/list");
    let (_, list) = s.wait_for("bob", LIMIT, |e| matches!(e, Event::Peers { .. }));
    assert_eq!(list, Event::Peers { peers: vec![] });
    s.sim.repair("alice", "bob");
    s.sim.repair("alice", "server");
    s.wait_for("alice", LIMIT, |e| matches!(e, Event::Reregistered { .. }));
    s.type_line("bob", "/list");
    let (_, list) = s.wait_for("bob", LIMIT, |e| matches!(e, Event::Peers { .. }));
    let Event::Peers { peers } = list else {
        unreachable!()
    };
    assert_eq!(
        peers.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["alice"]
    );
    every_message_accounted_for(s.events("alice")).unwrap();
    every_message_accounted_for(s.events("bob")).unwrap();
    observed(s, &["alice", "bob"])
}

/// Scenario 4: Calling a busy peer answers `busy` at once: one round trip, not the
/// length of the other chat.
pub fn busy(seed: u64) -> String {
    let mut s = Scenario::new(seed);
    // Room for one chat: the one with bob fills it.
    s.start_peer_with("alice", |c| c.max_chats = 1);
    s.start_peer("bob");
    s.start_peer("carol");
    registered(&mut s, &["alice", "bob", "carol"]);
    chat(&mut s, "alice", "bob");
    busy_answered_at_once(&mut s, "carol", "alice");
    say(&mut s, "alice", "still chatting");
    s.type_line("bob", "/leave");
    s.wait_for("alice", LIMIT, chat_ended);
    observed(&s, &["alice", "bob", "carol"])
}

/// Scenario 5: A stale list: the target left after the list was fetched, so the
/// call fails with a clear `peer_unreachable` and the list is refreshed.
pub fn stale_list(seed: u64) -> String {
    let mut s = Scenario::new(seed);
    s.start_peer("alice");
    s.start_peer("bob");
    registered(&mut s, &["alice", "bob"]);
    s.type_line("alice", "/list");
    s.wait_for(
        "alice",
        LIMIT,
        |e| matches!(e, Event::Peers { peers } if peers.len() == 1),
    );
    // bob quits: his process is gone, his machine answers with a refusal.
    s.end_input("bob");
    assert_eq!(s.wait_exit("bob", LIMIT), 0);
    // alice dials the address her list showed: bob has gone since.
    let bob = s.addr_of("bob");
    s.type_line("alice", &format!("/connect {bob}"));
    let (_, error) = s.wait_for("alice", LIMIT, is_error(ErrorCode::PeerUnreachable));
    assert!(
        matches!(&error, Event::Error { detail: ErrorDetail::ConnectFailed { addr, .. }, .. } if *addr == bob),
        "{error:?}"
    );
    s.wait_for("alice", LIMIT, |e| matches!(e, Event::Peers { .. }));
    observed(&s, &["alice"])
}

/// Scenario 6: A second peer asking for a name another key owns, and a
/// client on the same IP claiming a registered port, are refused with
/// distinct errors.
pub fn duplicates(seed: u64) -> String {
    let mut s = Scenario::new(seed);
    let answer = Arc::new(Mutex::new(String::new()));
    let seen = answer.clone();
    s.start_peer_beside(
        "alice",
        |_| {},
        move || {
            let seen = seen.clone();
            async move {
                // Same host as alice, so the server observes alice's IP:
                // claiming port 4000 claims alice's address.
                tokio::time::sleep(Duration::from_secs(1)).await;
                let reply = RawClient::new("mallory")
                    .exchange(&[
                        "{\"type\":\"hello\",\"version\":2}",
                        "{\"type\":\"register\",\"name\":\"mallory\",\"port\":4000}",
                    ])
                    .await;
                *seen.lock().unwrap() = reply;
            }
        },
    );
    registered(&mut s, &["alice"]);
    // Another user, with a key of its own (a simulated peer's key derives
    // from its host's name), asks for alice's name. (alice's own key asking
    // again would replace her session: core/tests/server_key.rs.)
    s.start_peer_with("alice-twin", |c| c.name = "alice".into());
    let (_, refused) = s.wait_for("alice-twin", LIMIT, |e| matches!(e, Event::Error { .. }));
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
        s.wait_exit("alice-twin", LIMIT),
        1,
        "a taken name is fatal at start-up"
    );
    // The refused client may retry with another port; it has the register
    // timeout (10 s) to do so before the server hangs up.
    s.run_for(Duration::from_secs(12));
    let reply = answer.lock().unwrap().clone();
    assert!(reply.contains("\"code\":\"addr_taken\""), "{reply}");
    assert!(reply.ends_with("(closed)"), "{reply}");
    format!(
        "{}### raw client on alice's host\n{reply}\n",
        observed(&s, &["alice", "alice-twin"])
    )
}

/// Scenario 7: The server crashes and comes back while two peers chat: the chat goes
/// on, both peers re-register, and lists are right again.
pub fn server_bounce(seed: u64) -> String {
    server_bounce_in(&mut Scenario::new(seed))
}

/// [`server_bounce`] in a given world.
pub fn server_bounce_in(s: &mut Scenario<'_>) -> String {
    s.start_peer("alice");
    s.start_peer("bob");
    registered(s, &["alice", "bob"]);
    chat(s, "alice", "bob");
    s.sim.crash("server");
    s.wait_for("alice", LIMIT, |e| *e == Event::ServerLost);
    s.wait_for("bob", LIMIT, |e| *e == Event::ServerLost);
    say(s, "alice", "the server is gone");
    say(s, "bob", "we do not need it");
    s.run_for(Duration::from_secs(3));
    s.sim.bounce("server");
    s.wait_for("alice", LIMIT, |e| matches!(e, Event::Reregistered { .. }));
    s.wait_for("bob", LIMIT, |e| matches!(e, Event::Reregistered { .. }));
    s.run_for(Duration::from_millis(100));
    s.type_line("alice", "/list");
    let (_, list) = s.wait_for("alice", LIMIT, |e| matches!(e, Event::Peers { .. }));
    let Event::Peers { peers } = list else {
        unreachable!()
    };
    assert_eq!(peers.len(), 1);
    assert_eq!(
        (peers[0].name.as_str(), peers[0].status),
        ("bob", PeerStatus::Chatting)
    );
    say(s, "alice", "and it is back");
    observed(s, &["alice", "bob"])
}

/// Scenario 8: Hostile clients. One sends plain JSON instead of a Noise
/// handshake, one starts its handshake at one byte per second: each is
/// closed without a word. Inside an encrypted session, garbage, an endless
/// line and one byte per second are each refused or timed out. The server
/// logs every one; the peers chatting meanwhile are unaffected.
pub fn hostile_client(seed: u64) -> String {
    let mut s = Scenario::new(seed);
    let replies: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = replies.clone();
    s.start_raw_host("mallory", move || {
        let seen = seen.clone();
        async move {
            let note = |what: &str, reply: String| {
                seen.lock().unwrap().push(format!("{what} -> {reply}"));
            };
            tokio::time::sleep(Duration::from_secs(1)).await;
            let hello = b"{\"type\":\"hello\",\"version\":2}\n";
            note("plain JSON, no handshake", plain_bytes(hello).await);
            let mut mallory = RawClient::new("mallory");
            note("garbage", mallory.exchange(&["GET / HTTP/1.1"]).await);
            let endless = mallory.send_bytes(&vec![b'A'; 100 * 1024]).await;
            note("endless line", endless);
            let mut slowpoke = RawClient::new("slowpoke");
            let every = Duration::from_secs(1);
            let (slow, stalled) = tokio::join!(
                mallory.trickle(hello, every),
                slowpoke.slow_handshake(every)
            );
            note("one byte per second", slow);
            note("handshake at one byte per second", stalled);
        }
    });
    s.start_peer("alice");
    s.start_peer("bob");
    registered(&mut s, &["alice", "bob"]);
    chat(&mut s, "alice", "bob");
    for i in 0..12 {
        say(&mut s, "alice", &format!("tick {i}"));
        s.run_for(Duration::from_secs(1));
    }
    s.run_for(Duration::from_secs(5));
    let replies = replies.lock().unwrap().clone();
    let expected = [
        // Told nothing: there is no session to say it in.
        ("plain JSON, no handshake", "(closed)"),
        ("garbage", "\"code\":\"bad_frame\""),
        ("endless line", "\"code\":\"frame_too_long\""),
        ("one byte per second", "\"code\":\"timeout\""),
        ("handshake at one byte per second", "(closed)"),
    ];
    assert_eq!(replies.len(), expected.len(), "{replies:?}");
    for (reply, (what, said)) in replies.iter().zip(expected) {
        let heard = reply.strip_prefix(&format!("{what} -> ")).unwrap_or("");
        assert!(heard.contains(said), "{what}: {reply}");
    }
    let log = s.server_log();
    let refusals: Vec<&str> = log
        .lines()
        .filter_map(|line| line.split_once(" refused 192.168.0.2:"))
        .map(|(_, refusal)| refusal.split_once(": ").map_or(refusal, |(_, why)| why))
        .collect();
    let expected = [
        "bad_frame: the encrypted link failed: handshake message 0 is",
        "bad_frame: line is not valid JSON",
        "frame_too_long: ",
        "timeout: no hello within 10 s",
        "timeout: no encrypted handshake within 10 s",
    ];
    assert_eq!(refusals.len(), expected.len(), "{log}");
    for (refusal, expected) in refusals.iter().zip(expected) {
        assert!(refusal.starts_with(expected), "{refusal}");
    }
    for peer in ["alice", "bob"] {
        let errors: Vec<_> = s
            .events(peer)
            .iter()
            .filter(|(_, e)| matches!(e, Event::Error { .. }))
            .collect();
        assert!(errors.is_empty(), "{peer} was affected: {errors:?}");
    }
    format!(
        "{}### hostile clients\n{}\n",
        observed(&s, &["alice", "bob"]),
        replies.join("\n")
    )
}

/// Scenario 9: Ring timeout: the callee never answers, the caller gets `no_answer`
/// after the ring time.
pub fn ring_timeout(seed: u64) -> String {
    let mut s = Scenario::new(seed);
    s.start_peer("alice");
    s.start_peer("bob");
    registered(&mut s, &["alice", "bob"]);
    s.type_line("alice", "/connect bob");
    let asked_at = s.elapsed();
    s.wait_for("bob", LIMIT, |e| matches!(e, Event::Incoming { .. }));
    let (at, answer) = s.wait_for("alice", LIMIT, |e| {
        !matches!(e, Event::Registered { .. } | Event::Calling { .. })
    });
    assert_eq!(answer, Event::NoAnswer { peer: "bob".into() });
    let rang = at - asked_at;
    assert!(
        rang >= Duration::from_secs(30) && rang <= Duration::from_secs(30) + 4 * LATENCY,
        "rang {rang:?}"
    );
    s.wait_for("bob", LIMIT, |e| matches!(e, Event::Missed { .. }));
    // Let bob's new status reach the server log.
    s.run_for(Duration::from_millis(100));
    observed(&s, &["alice", "bob"])
}

/// Scenario 10: 1,000 messages under random link latency: every one delivered once
/// and in order. Returns a summary (the full log would be 4,000 lines).
pub fn thousand_messages(seed: u64) -> String {
    let mut b = builder(seed);
    b.min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(40));
    let mut s = Scenario::with_builder(&b, RegistryConfig::default());
    s.start_peer("alice");
    s.start_peer("bob");
    registered(&mut s, &["alice", "bob"]);
    chat(&mut s, "alice", "bob");
    let started = s.elapsed();
    for i in 1..=1000 {
        s.type_line("alice", &format!("message {i}"));
    }
    for n in 1..=1000u64 {
        s.wait_for(
            "alice",
            LIMIT,
            |e| matches!(e, Event::Delivered { n: got, .. } if *got == n),
        );
    }
    let took = s.elapsed() - started;
    let received: Vec<(u64, String)> = s
        .events("bob")
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Message { n, text, .. } => Some((*n, text.clone())),
            _ => None,
        })
        .collect();
    let expected: Vec<(u64, String)> = (1..=1000).map(|n| (n, format!("message {n}"))).collect();
    assert_eq!(received, expected, "every message once, in order");
    let delivered = s
        .events("alice")
        .iter()
        .filter(|(_, e)| matches!(e, Event::Delivered { .. }))
        .count();
    assert_eq!(delivered, 1000);
    let lines = s
        .transcripts("bob")
        .lines()
        .filter(|l| l.contains(" received #"))
        .count();
    assert_eq!(lines, 1000, "every message in the receiver's transcript");
    s.type_line("alice", "/leave");
    s.wait_for("bob", LIMIT, chat_ended);
    every_message_accounted_for(s.events("alice")).unwrap();
    format!(
        "1000 messages delivered in order in {:.3} s of simulated time\nfirst: {:?}\nlast: {:?}\n",
        took.as_secs_f64(),
        received.first().unwrap(),
        received.last().unwrap()
    )
}

/// Asks for the list until `wanted` holds for it or `within` (simulated)
/// has passed; returns the last list seen.
fn list_soon(
    s: &mut Scenario<'_>,
    peer: &str,
    wanted: impl Fn(&[ListedPeer]) -> bool,
    within: Duration,
) -> Vec<ListedPeer> {
    let give_up = s.elapsed() + within;
    loop {
        s.type_line(peer, "/list");
        let (at, list) = s.wait_for(peer, LIMIT, |e| matches!(e, Event::Peers { .. }));
        let Event::Peers { peers } = list else {
            unreachable!()
        };
        if wanted(&peers) || at >= give_up {
            return peers;
        }
    }
}

/// Messages a sender has queued in [`crash_mid_burst_in`].
pub const BURST: u64 = 300;

/// What [`crash_mid_burst_in`] observed.
#[derive(Debug)]
pub struct CrashedBurst {
    /// Every message number the sender saw `delivered`.
    pub delivered: Vec<u64>,
    /// Every message number the sender listed as undelivered.
    pub undelivered: Vec<u64>,
    /// Every message number found `received` in the receiver's transcript
    /// on its disk after the crash, with its text.
    pub on_disk: BTreeMap<u64, String>,
}

/// A receipt means "recorded", even against a crash of the machine: alice
/// sends a burst to bob, whose host is switched off (`sim.crash`: the
/// simulated disk loses every write not made durable) as soon as alice
/// sees message `crash_after` delivered. Returns what alice saw and what
/// bob's disk kept.
pub fn crash_mid_burst_in(s: &mut Scenario<'_>, crash_after: u64) -> CrashedBurst {
    s.start_peer("alice");
    s.start_peer("bob");
    registered(s, &["alice", "bob"]);
    chat(s, "alice", "bob");
    for i in 1..=BURST {
        s.type_line("alice", &format!("message {i}"));
    }
    s.wait_for(
        "alice",
        LIMIT,
        |e| matches!(e, Event::Delivered { n, .. } if *n == crash_after),
    );
    s.sim.crash("bob");
    // Receipts bob sent before the crash may still arrive: wait for the
    // end of the chat, which lists the rest as undelivered.
    let (_, ended) = s.wait_for("alice", LIMIT, chat_ended);
    let Event::ChatEnded { undelivered, .. } = ended else {
        unreachable!()
    };
    every_message_accounted_for(s.events("alice")).unwrap();
    let delivered = s
        .events("alice")
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Delivered { n, .. } => Some(*n),
            _ => None,
        })
        .collect();
    let transcripts = s.transcripts("bob");
    let on_disk = transcripts
        .lines()
        .filter_map(|line| {
            let (_, rest) = line.split_once(" received #")?;
            let (n, rest) = rest.split_once(' ')?;
            let (_, text) = rest.split_once("): ")?;
            Some((n.parse().ok()?, text.to_string()))
        })
        .collect();
    CrashedBurst {
        delivered,
        undelivered,
        on_disk,
    }
}

/// Events a stalled reader's peer buffers before it holds them itself.
pub const STALLED_EVENT_BUFFER: usize = 16;

/// How long the stalled reader does not read: four heartbeat timeouts.
pub const STALL: Duration = Duration::from_secs(60);

/// Messages alice types at a reader that does not read.
pub const STALLED_MESSAGES: u64 = 200;

/// What [`stalled_reader`] observed.
#[derive(Debug)]
pub struct Stalled {
    /// The most events bob's peer held for want of a reader.
    pub max_held: usize,
    /// Messages alice saw delivered during the stall.
    pub delivered_during_stall: usize,
    /// Server log lines about bob during the stall.
    pub bob_in_server_log: Vec<String>,
}

/// bob's user stops reading his events (a paused terminal) for
/// [`STALL`] while alice sends him [`STALLED_MESSAGES`]; then reads again.
/// Asserts that nobody lost anyone (chat and server registrations hold),
/// and that bob shows every message in order exactly once in the end.
pub fn stalled_reader(seed: u64) -> Stalled {
    let mut s = Scenario::new(seed);
    s.start_peer("alice");
    let bob = s.peer_builder("bob").event_buffer(STALLED_EVENT_BUFFER);
    s.start_built("bob", bob, || async {});
    registered(&mut s, &["alice", "bob"]);
    chat(&mut s, "alice", "bob");

    s.stop_reading("bob");
    let log_before = s.server_log().lines().count();
    for i in 1..=STALLED_MESSAGES {
        s.type_line("alice", &format!("message {i}"));
    }
    s.run_for(STALL);
    let lost: Vec<_> = s
        .events("alice")
        .iter()
        .filter(|(_, e)| matches!(e, Event::ChatEnded { .. } | Event::ServerLost))
        .collect();
    assert!(
        lost.is_empty(),
        "alice lost bob or the server while bob's output stalled: {lost:?}"
    );
    let delivered_during_stall = s
        .events("alice")
        .iter()
        .filter(|(_, e)| matches!(e, Event::Delivered { .. }))
        .count();
    let bob_in_server_log = s
        .server_log()
        .lines()
        .skip(log_before)
        .filter(|l| l.contains("bob"))
        .map(str::to_string)
        .collect();
    s.resume_reading("bob");

    s.wait_for(
        "alice",
        LIMIT,
        |e| matches!(e, Event::Delivered { n, .. } if *n == STALLED_MESSAGES),
    );
    s.run_for(Duration::from_secs(1));
    let shown: Vec<(u64, String)> = s
        .events("bob")
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Message { n, text, .. } => Some((*n, text.clone())),
            _ => None,
        })
        .collect();
    let expected: Vec<(u64, String)> = (1..=STALLED_MESSAGES)
        .map(|n| (n, format!("message {n}")))
        .collect();
    assert_eq!(shown, expected, "every message shown once, in order");
    for peer in ["alice", "bob"] {
        let lost: Vec<_> = s
            .events(peer)
            .iter()
            .filter(|(_, e)| {
                matches!(
                    e,
                    Event::ChatEnded { .. } | Event::ServerLost | Event::Error { .. }
                )
            })
            .collect();
        assert!(lost.is_empty(), "{peer} lost something: {lost:?}");
    }
    // Both still registered, bob still chatting, in the server's eyes.
    s.type_line("alice", "/list");
    let (_, list) = s.wait_for("alice", LIMIT, |e| matches!(e, Event::Peers { .. }));
    let Event::Peers { peers } = list else {
        unreachable!()
    };
    assert_eq!(
        peers
            .iter()
            .map(|p| (p.name.as_str(), p.status))
            .collect::<Vec<_>>(),
        [("bob", PeerStatus::Chatting)]
    );
    Stalled {
        max_held: s.max_held("bob"),
        delivered_during_stall,
        bob_in_server_log,
    }
}
