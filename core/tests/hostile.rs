//! Spoofing and injection (issue 6, item 3): what a hostile client,
//! partner or server can send, and what the other side makes of it.
//!
//! Each test names the attack it tries. Whatever reaches the user (an
//! event) or the disk (a transcript line) must carry no raw control
//! character and no bidi control; a link that starts wrong is closed; an
//! address is never taken from what a client claims.

mod noise_wire;
mod world;

use natter_core::peer::{PeerConfig, PeerInput, PeerOutput};
use natter_core::protocol::ServerMsg;
use natter_core::{ErrorCode, Event, Identity, LinkId, Now, Peer};
use noise_wire::{feed, feed_input, sent_bytes, Wire};
use std::net::SocketAddr;
use std::time::Duration;
use world::{World, LISTEN_PORT, SERVER};

/// Characters that must never reach a terminal or a transcript raw: every
/// control character, and the bidi controls that reorder what is shown.
fn is_dangerous(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

fn assert_clean(what: &str, text: &str) {
    assert!(
        !text.chars().any(is_dangerous),
        "{what} carries a raw control or bidi character: {text:?}"
    );
}

/// Every string of an event, checked.
fn assert_event_clean(event: &Event) {
    let json = serde_json::to_value(event).unwrap();
    fn walk(v: &serde_json::Value) {
        match v {
            serde_json::Value::String(s) => assert_clean("an event", s),
            serde_json::Value::Array(a) => a.iter().for_each(walk),
            serde_json::Value::Object(o) => o.values().for_each(walk),
            _ => {}
        }
    }
    walk(&json);
}

fn client(last: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last], port))
}

// ---------------------------------------------------------------------------
// the server link: clients lying about who and where they are
// ---------------------------------------------------------------------------

#[test]
fn a_client_cannot_register_an_address_other_than_its_observed_ip() {
    let mut world = World::new();
    world.add_peer("alice");
    let alice = world.addr_of("alice");
    // mallory claims alice's address in every field it can think of; only
    // the port is taken from register, the IP is the socket's.
    let link = world.raw_client(client(66, 50_000));
    let claim = format!(
        "{{\"type\":\"hello\",\"version\":2}}\n{{\"type\":\"register\",\"name\":\"mallory\",\"port\":{},\"ip\":\"{}\",\"addr\":\"{alice}\",\"host\":\"{}\"}}\n",
        alice.port(),
        alice.ip(),
        alice.ip()
    );
    let (reply, closed) = world.raw_send(link, claim.as_bytes());
    assert!(!closed, "{reply}");
    let frames = world::server_frames(&reply);
    let ServerMsg::Registered { addr, .. } = &frames[1] else {
        panic!("{reply}")
    };
    assert_eq!(*addr, SocketAddr::new(client(66, 0).ip(), alice.port()));
    let directory: Vec<(String, SocketAddr)> = world
        .registry()
        .peers()
        .into_iter()
        .map(|p| (p.name, p.addr))
        .collect();
    assert_eq!(
        directory,
        vec![
            ("alice".to_string(), alice),
            (
                "mallory".to_string(),
                SocketAddr::from(([10, 0, 0, 66], 4000))
            )
        ],
        "alice keeps her address; mallory is listed at its own"
    );
}

#[test]
fn a_name_with_control_characters_is_refused_at_register() {
    let mut world = World::new();
    for (i, name) in [
        "a\\u001b[31mred",
        "nul\\u0000",
        "two\\nlines",
        "rtl\\u202eevil",
        "bell\\u0007",
        "tab\\t",
    ]
    .iter()
    .enumerate()
    {
        let link = world.raw_client(client(70 + i as u8, 50_000));
        let register = format!(
            "{{\"type\":\"hello\",\"version\":2}}\n{{\"type\":\"register\",\"name\":\"{name}\",\"port\":4000}}\n"
        );
        let (reply, _) = world.raw_send(link, register.as_bytes());
        assert!(
            reply.contains("\"code\":\"invalid_name\""),
            "{name}: {reply}"
        );
    }
    assert_eq!(world.registry().registered(), 0);
    let logs = world.take_logs();
    assert_eq!(logs.len(), 6, "each refusal is logged: {logs:?}");
    for line in &logs {
        assert_clean("a server log line", line);
    }
}

#[test]
fn invalid_utf8_on_the_server_link_is_refused_and_closes_only_that_connection() {
    let mut world = World::new();
    world.add_peer("alice");
    let link = world.raw_client(client(66, 50_000));
    let (reply, closed) = world.raw_send(
        link,
        b"{\"type\":\"hello\",\"version\":2}\n{\"type\":\"register\",\"name\":\"m\xff\xfe\",\"port\":4000}\n",
    );
    assert!(closed, "{reply}");
    assert!(reply.contains("\"code\":\"bad_frame\""), "{reply}");
    assert_eq!(world.registry().registered(), 1, "alice is unaffected");
}

// ---------------------------------------------------------------------------
// the peer link: callers that do not start with a valid hello
// ---------------------------------------------------------------------------

const CALLER: &str = "10.0.0.66:5000";

/// bob, registered nowhere, with one incoming connection `link` open.
fn callee() -> (Peer, LinkId) {
    let now = Now::at_unix(0);
    // bob met mallory before (her key is pinned), so her calls ring
    // without asking a directory: this bob has none.
    let mut config = PeerConfig::new("bob", SERVER, LISTEN_PORT);
    config
        .known_peers
        .insert("mallory".into(), Wire::identity().public());
    let mut bob = Peer::new(config, now);
    while bob.poll_output().is_some() {}
    let link = LinkId(100);
    bob.handle_input(
        now,
        PeerInput::Accepted {
            link,
            addr: CALLER.parse().unwrap(),
        },
    );
    (bob, link)
}

/// bob with one incoming connection `link` whose caller (the test, as a
/// real peer would) has completed the Noise handshake and said nothing
/// yet. The handshake alone shows nothing, records nothing, closes nothing.
fn callee_after_handshake() -> (Peer, LinkId, Wire) {
    let (mut bob, link) = callee();
    let (wire, outputs) = Wire::call(&mut bob, Now::at_unix(0), link);
    assert!(
        outputs
            .iter()
            .all(|o| matches!(o, PeerOutput::Send { link: l, .. } if *l == link)),
        "the handshake did more than answer: {outputs:?}"
    );
    assert_eq!(
        wire.remote_key(),
        Some(
            PeerConfig::new("bob", SERVER, LISTEN_PORT)
                .identity
                .public()
        ),
        "the handshake proved bob's key"
    );
    (bob, link, wire)
}

#[test]
fn a_peer_link_that_does_not_start_with_a_valid_hello_is_closed() {
    let cases: [(&str, &[u8], &str); 9] = [
        (
            "a message",
            b"{\"type\":\"msg\",\"n\":1,\"text\":\"hi\",\"at\":\"x\"}\n",
            "bad_frame",
        ),
        ("an accept", b"{\"type\":\"accept\"}\n", "bad_frame"),
        (
            "a forged receipt",
            b"{\"type\":\"ack\",\"n\":1}\n",
            "bad_frame",
        ),
        ("a bye", b"{\"type\":\"bye\"}\n", "bad_frame"),
        ("http", b"GET / HTTP/1.1\r\n", "bad_frame"),
        ("invalid utf-8", b"\xff\xfe\xfd\n", "bad_frame"),
        (
            "a hello without a name",
            b"{\"type\":\"hello\",\"version\":2}\n",
            "bad_frame",
        ),
        (
            "a hello of another version",
            b"{\"type\":\"hello\",\"version\":99,\"min_version\":99,\"name\":\"eve\"}\n",
            "version_mismatch",
        ),
        (
            "a hello with an escape in the name",
            b"{\"type\":\"hello\",\"version\":2,\"name\":\"eve\\u001b[2J\"}\n",
            "invalid_name",
        ),
    ];
    for (what, bytes, code) in cases {
        // Sent inside an established Noise session: the frames, not the
        // cryptography, are what is wrong.
        let (mut bob, link, mut wire) = callee_after_handshake();
        let outputs = feed(&mut bob, Now::at_unix(0), link, &wire.seal(bytes));
        let reply = wire.open(&outputs, link);
        assert!(
            reply.contains(&format!("\"code\":\"{code}\"")),
            "{what}: replied {reply:?}"
        );
        assert!(
            outputs.contains(&PeerOutput::Close { link }),
            "{what}: link not closed: {outputs:?}"
        );
        assert!(
            !outputs
                .iter()
                .any(|o| matches!(o, PeerOutput::Event(Event::Incoming { .. }))),
            "{what}: shown as a request: {outputs:?}"
        );
        assert!(
            !outputs
                .iter()
                .any(|o| matches!(o, PeerOutput::Transcript(_))),
            "{what}: recorded: {outputs:?}"
        );
    }
}

/// Bytes that are not Noise at all (a stray HTTP client, a natter of
/// another version speaking plain JSON) never reach the protocol: nothing
/// is shown, nothing recorded, nothing sent back (not even an error frame
/// in plaintext), and the link is closed.
#[test]
fn a_peer_link_that_does_not_start_with_a_noise_handshake_is_closed_without_a_word() {
    let short_request = b"GET / HTTP/1.1\r\n".to_vec();
    // Long enough to complete the frame its first two bytes announce.
    let mut long_request = b"GET / HTTP/1.1\r\nX-Filler: ".to_vec();
    long_request.resize(20_000, b'a');
    long_request.extend_from_slice(b"\r\n\r\n");
    let plain_hello = b"{\"type\":\"hello\",\"version\":2,\"name\":\"eve\"}\n".to_vec();
    let cases = [
        ("an http request line", short_request),
        ("a whole http request", long_request),
        ("a hello in plaintext", plain_hello),
    ];
    for (what, bytes) in cases {
        let (mut bob, link) = callee();
        let t0 = Now::at_unix(0);
        let mut outputs = feed(&mut bob, t0, link, &bytes);
        // If the bytes do not even make a whole frame, the handshake
        // timeout ends the link: no later than 10 s after connecting.
        if !outputs.contains(&PeerOutput::Close { link }) {
            let t10 = t0.advanced(Duration::from_secs(10));
            assert!(
                bob.poll_timeout().is_some_and(|at| at <= t10.mono),
                "{what}: no deadline"
            );
            bob.handle_timeout(t10);
            outputs.extend(std::iter::from_fn(|| bob.poll_output()));
        }
        assert!(
            outputs.contains(&PeerOutput::Close { link }),
            "{what}: link not closed: {outputs:?}"
        );
        assert_eq!(
            sent_bytes(&outputs, link),
            b"",
            "{what}: answered: {outputs:?}"
        );
        assert!(
            !outputs
                .iter()
                .any(|o| matches!(o, PeerOutput::Event(_) | PeerOutput::Transcript(_))),
            "{what}: shown or recorded: {outputs:?}"
        );
    }
}

#[test]
fn a_caller_that_only_pings_is_still_cut_at_the_handshake_timeout() {
    let (mut bob, link, mut wire) = callee_after_handshake();
    let t0 = Now::at_unix(0);
    // A ping before hello is answered (heartbeats are always answered)…
    let outputs = feed(&mut bob, t0, link, &wire.seal("{\"type\":\"ping\"}\n"));
    assert_eq!(wire.open(&outputs, link), "{\"type\":\"pong\"}\n");
    // …but does not buy time: the hello is still due 5 s after connecting.
    let t4 = t0.advanced(Duration::from_secs(4));
    feed(&mut bob, t4, link, &wire.seal("{\"type\":\"ping\"}\n"));
    let t5 = t0.advanced(Duration::from_secs(5));
    assert!(bob.poll_timeout().is_some_and(|at| at <= t5.mono));
    bob.handle_timeout(t5);
    let outputs: Vec<PeerOutput> = std::iter::from_fn(|| bob.poll_output()).collect();
    assert!(outputs.contains(&PeerOutput::Close { link }), "{outputs:?}");
}

#[test]
fn a_callee_that_answers_with_another_name_or_a_bad_one_is_refused() {
    // Dialled by address (no expected name): the answer's name must still
    // be a valid name, never shown raw.
    let now = Now::at_unix(0);
    let mut alice = Peer::new(PeerConfig::new("alice", SERVER, LISTEN_PORT), now);
    while alice.poll_output().is_some() {}
    alice.handle_input(
        now,
        PeerInput::Command(natter_core::command::parse("/connect 10.0.0.66:4000").unwrap()),
    );
    let link = std::iter::from_fn(|| alice.poll_output())
        .find_map(|o| match o {
            PeerOutput::Connect { link, .. } => Some(link),
            _ => None,
        })
        .expect("dials");
    let sent = noise_wire::feed_input(&mut alice, now, PeerInput::Connected { link });
    // The test answers as a real peer would: the Noise handshake, then a
    // hello (sealed) with a hostile name.
    let (mut wire, hello, _) = Wire::answer(&mut alice, now, link, &sent);
    assert!(hello.contains("\"name\":\"alice\""), "{hello:?}");
    let outputs = feed(
        &mut alice,
        now,
        link,
        &wire.seal(
            "{\"type\":\"hello\",\"version\":2,\"name\":\"\\u001b]0;pwned\\u0007\"}\n{\"type\":\"accept\"}\n",
        ),
    );
    assert!(outputs.contains(&PeerOutput::Close { link }), "{outputs:?}");
    let errors: Vec<&Event> = outputs
        .iter()
        .filter_map(|o| match o {
            PeerOutput::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    assert!(
        matches!(
            errors.as_slice(),
            [Event::Error {
                code: ErrorCode::InvalidName,
                ..
            }]
        ),
        "{errors:?}"
    );
    errors.iter().for_each(|e| assert_event_clean(e));
    assert_eq!(alice.chat_partner(), None);
}

// ---------------------------------------------------------------------------
// the peer link during a chat: injection in messages
// ---------------------------------------------------------------------------

/// bob in an accepted chat with mallory on `link`; `wire` is mallory's
/// end of the Noise session, up to date with all bob sent.
fn chatting_with_mallory() -> (Peer, LinkId, Now, Wire) {
    let (mut bob, link, mut wire) = callee_after_handshake();
    let now = Now::at_unix(0);
    let hello = "{\"type\":\"hello\",\"version\":2,\"name\":\"mallory\"}\n";
    let outputs = feed(&mut bob, now, link, &wire.seal(hello));
    assert!(wire.open(&outputs, link).contains("\"type\":\"hello\""));
    let accept = natter_core::command::parse("/accept").unwrap();
    let outputs = noise_wire::feed_input(&mut bob, now, PeerInput::Command(accept));
    assert!(wire.open(&outputs, link).contains("\"type\":\"accept\""));
    (bob, link, now, wire)
}

#[test]
fn nul_bidi_and_escapes_in_a_message_are_shown_and_recorded_escaped() {
    let (mut bob, link, now, mut wire) = chatting_with_mallory();
    let hostile = "{\"type\":\"msg\",\"n\":1,\"text\":\"a\\u0000b\\u2066c\\u200fd\\u061ce\\nforged line\\r\\u001b[1;1H\\u009bf\\u007f\",\"at\":\"2026\\u202e\\u0000\"}\n";
    let outputs = feed(&mut bob, now, link, &wire.seal(hostile));
    let message = outputs
        .iter()
        .find_map(|o| match o {
            PeerOutput::Event(e @ Event::Message { .. }) => Some(e.clone()),
            _ => None,
        })
        .expect("the message is shown");
    assert_event_clean(&message);
    let Event::Message { text, at, .. } = &message else {
        unreachable!()
    };
    assert_eq!(
        text,
        "a\\u{0}b\\u{2066}c\\u{200f}d\\u{61c}e\\u{a}forged line\\u{d}\\u{1b}[1;1H\\u{9b}f\\u{7f}"
    );
    assert_eq!(at, "2026\\u{202e}\\u{0}");
    let lines: Vec<&String> = outputs
        .iter()
        .filter_map(|o| match o {
            PeerOutput::Transcript(w) => Some(&w.line),
            _ => None,
        })
        .collect();
    assert_eq!(lines.len(), 1, "one line for one message: {lines:?}");
    assert_clean("a transcript line", lines[0]);
    assert!(!lines[0].contains('\n'), "never two lines");
}

#[test]
fn invalid_utf8_in_a_chat_ends_it_with_bad_frame_and_records_nothing_raw() {
    let (mut bob, link, now, mut wire) = chatting_with_mallory();
    let outputs = feed(
        &mut bob,
        now,
        link,
        &wire.seal(b"{\"type\":\"msg\",\"n\":1,\"text\":\"\xff\x1b[2J\",\"at\":\"x\"}\n"),
    );
    assert!(
        wire.open(&outputs, link).contains("\"code\":\"bad_frame\""),
        "{outputs:?}"
    );
    assert!(outputs.contains(&PeerOutput::Close { link }), "{outputs:?}");
    for output in &outputs {
        match output {
            PeerOutput::Event(e) => {
                assert!(!matches!(e, Event::Message { .. }), "shown: {e:?}");
                assert_event_clean(e);
            }
            PeerOutput::Transcript(w) => {
                assert!(w.receipt.is_none(), "recorded as received: {w:?}");
                assert_clean("a transcript line", &w.line);
            }
            _ => {}
        }
    }
    assert!(outputs
        .iter()
        .any(|o| matches!(o, PeerOutput::Event(Event::ChatEnded { .. }))));
}

#[test]
fn an_error_frame_from_the_partner_is_shown_escaped() {
    let (mut bob, link, now, mut wire) = chatting_with_mallory();
    let outputs = feed(
        &mut bob,
        now,
        link,
        &wire.seal(
            "{\"type\":\"error\",\"code\":\"bad_frame\",\"message\":\"\\u001b[2Jgotcha\\u202e\"}\n",
        ),
    );
    let events: Vec<&Event> = outputs
        .iter()
        .filter_map(|o| match o {
            PeerOutput::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    assert!(!events.is_empty());
    events.iter().for_each(|e| assert_event_clean(e));
}

#[test]
fn a_typed_message_with_nul_or_bidi_is_refused_before_sending() {
    let (mut bob, link, now, mut wire) = chatting_with_mallory();
    for text in ["nul\u{0}", "rtl\u{202e}x", "iso\u{2066}x", "del\u{7f}"] {
        bob.handle_input(
            now,
            PeerInput::Command(natter_core::command::parse(text).unwrap()),
        );
        let outputs: Vec<PeerOutput> = std::iter::from_fn(|| bob.poll_output()).collect();
        assert!(
            matches!(
                outputs.as_slice(),
                [PeerOutput::Event(Event::Error {
                    code: ErrorCode::BadInput,
                    ..
                })]
            ),
            "{text:?}: {outputs:?}"
        );
        assert_eq!(sent_bytes(&outputs, link), b"");
        assert_eq!(wire.open(&outputs, link), "");
    }
}

// ---------------------------------------------------------------------------
// a hostile directory server
// ---------------------------------------------------------------------------

/// alice connected to a server the test plays, the encrypted handshake
/// done (hello and register received); returns the server link and the
/// server's end of the session, through which the test speaks.
fn alice_at_a_hostile_server() -> (Peer, LinkId, Now, Wire) {
    let now = Now::at_unix(0);
    let mut alice = Peer::new(PeerConfig::new("alice", SERVER, LISTEN_PORT), now);
    let link = std::iter::from_fn(|| alice.poll_output())
        .find_map(|o| match o {
            PeerOutput::Connect { link, .. } => Some(link),
            _ => None,
        })
        .expect("connects to the server");
    let sent = feed_input(&mut alice, now, PeerInput::Connected { link });
    let server = Wire::server(&Identity::from_seed(&[0x5e; 32]));
    let (wire, hello, _) = server.respond(&mut alice, now, link, &sent);
    assert!(hello.contains("\"register\""), "{hello}");
    (alice, link, now, wire)
}

fn events(outputs: &[PeerOutput]) -> Vec<&Event> {
    outputs
        .iter()
        .filter_map(|o| match o {
            PeerOutput::Event(e) => Some(e),
            _ => None,
        })
        .collect()
}

#[test]
fn names_in_a_list_from_the_server_reach_the_user_only_valid_and_clean() {
    let (mut alice, link, now, mut server) = alice_at_a_hostile_server();
    feed(
        &mut alice,
        now,
        link,
        &server.seal(b"{\"type\":\"hello\",\"version\":2}\n{\"type\":\"registered\",\"name\":\"alice\",\"addr\":\"10.0.0.2:4000\",\"reachable\":true}\n"),
    );
    alice.handle_input(
        now,
        PeerInput::Command(natter_core::command::parse("/list").unwrap()),
    );
    while alice.poll_output().is_some() {}
    let outputs = feed(
        &mut alice,
        now,
        link,
        &server.seal(list_of(&[
            "ev\\u001b[2Jil\\u202e",
            "-",
            "_-_",
            "Zz-9_",
            "0123456789abcdefghijklmnopqrstuv",
            "0123456789abcdefghijklmnopqrstuvw",
            "a b",
            "caf\\u00e9",
            "",
        ])),
    );
    // Only valid names (1-32 of A-Z a-z 0-9 _ -, odd as they may look)
    // come through, unchanged; an entry with another name is dropped (it
    // could only be spoofed: the server refuses such names at `register`).
    let shown = events(&outputs);
    let [Event::Peers { peers }] = shown.as_slice() else {
        panic!("one list: {shown:?}");
    };
    let names: Vec<&str> = peers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["-", "_-_", "Zz-9_", "0123456789abcdefghijklmnopqrstuv"]
    );
    shown.iter().for_each(|e| assert_event_clean(e));
}

/// A `peers` frame answering request 1 with an entry per name (JSON
/// string contents, escapes included).
fn list_of(names: &[&str]) -> Vec<u8> {
    let entries: Vec<String> = names
        .iter()
        .map(|name| format!("{{\"name\":\"{name}\",\"addr\":\"10.0.0.9:4000\",\"status\":\"available\",\"reachable\":true}}"))
        .collect();
    format!(
        "{{\"type\":\"peers\",\"id\":1,\"peers\":[{}],\"more\":false}}\n",
        entries.join(",")
    )
    .into_bytes()
}

/// A server's `error` message reaches the user escaped, both while
/// registering (fatal) and after.
#[test]
fn an_error_message_from_the_server_is_shown_escaped() {
    // While registering: fatal, but escaped.
    let (mut alice, link, now, mut server) = alice_at_a_hostile_server();
    let outputs = feed(
        &mut alice,
        now,
        link,
        &server.seal(b"{\"type\":\"hello\",\"version\":2}\n{\"type\":\"error\",\"code\":\"name_taken\",\"message\":\"\\u001b]0;owned\\u0007\\u001b[2J\"}\n"),
    );
    let shown = events(&outputs);
    assert!(!shown.is_empty());
    shown.iter().for_each(|e| assert_event_clean(e));
    // Once registered: shown as an error, escaped.
    let (mut alice, link, now, mut server) = alice_at_a_hostile_server();
    feed(
        &mut alice,
        now,
        link,
        &server.seal(b"{\"type\":\"hello\",\"version\":2}\n{\"type\":\"registered\",\"name\":\"alice\",\"addr\":\"10.0.0.2:4000\",\"reachable\":true}\n"),
    );
    let outputs = feed(
        &mut alice,
        now,
        link,
        &server.seal(
            b"{\"type\":\"error\",\"code\":\"bad_input\",\"message\":\"\\u001b[2J\\u202e\"}\n",
        ),
    );
    let shown = events(&outputs);
    assert!(!shown.is_empty());
    shown.iter().for_each(|e| assert_event_clean(e));
}

/// The name in a server's `registered` answer is never shown as sent.
#[test]
fn a_registered_answer_with_a_hostile_name_is_not_shown_raw() {
    let (mut alice, link, now, mut server) = alice_at_a_hostile_server();
    let outputs = feed(
        &mut alice,
        now,
        link,
        &server.seal(b"{\"type\":\"hello\",\"version\":2}\n{\"type\":\"registered\",\"name\":\"\\u001b[2Jalice\",\"addr\":\"10.0.0.2:4000\",\"reachable\":true}\n"),
    );
    events(&outputs).iter().for_each(|e| assert_event_clean(e));
}

// ---------------------------------------------------------------------------
// limits not covered elsewhere
// ---------------------------------------------------------------------------

#[test]
fn a_registered_client_that_goes_silent_is_dropped_after_the_idle_timeout() {
    let mut world = World::new();
    let link = world.raw_client(client(66, 50_000));
    world.raw_send(
        link,
        b"{\"type\":\"hello\",\"version\":2}\n{\"type\":\"register\",\"name\":\"mute\",\"port\":4000}\n",
    );
    world.take_logs();
    world.advance(Duration::from_millis(14_999));
    assert_eq!(world.registry().registered(), 1, "still there at 14.999 s");
    world.advance(Duration::from_millis(1));
    assert_eq!(
        world.take_logs(),
        vec!["mute has disconnected (lost: no heartbeat)"]
    );
    assert_eq!(world.registry().registered(), 0);
}

#[test]
fn a_sender_stops_taking_lines_when_the_window_of_unacknowledged_messages_is_full() {
    let mut world = World::new();
    world.add_peer("alice");
    world.add_peer("bob");
    world.type_line("alice", "/connect bob");
    world.type_line("bob", "/accept");
    // bob's receipts vanish from now on.
    world.partition("alice", Some("bob"));
    // 64 go out, 64 more wait for receipts; commands are still taken all
    // along, and only then does the driver stop reading input.
    for n in 1..=128 {
        assert!(world.peer("alice").accepts_lines(), "line {n}");
        world.type_line("alice", &format!("m{n}"));
    }
    assert!(
        !world.peer("alice").accepts_lines(),
        "64 in flight and 64 waiting: the driver stops reading input"
    );
}

/// A connection that has not said hello gets nothing from us, not even a
/// ping, and is closed at the handshake timeout "without a word".
#[test]
fn a_silent_stranger_is_never_pinged_before_its_hello() {
    let (mut bob, link) = callee();
    let t0 = Now::at_unix(0);
    for secs in [5, 6, 9] {
        let at = t0.advanced(Duration::from_secs(secs));
        if bob.poll_timeout().is_some_and(|t| t <= at.mono) {
            bob.handle_timeout(at);
        }
        let outputs: Vec<PeerOutput> = std::iter::from_fn(|| bob.poll_output()).collect();
        // Not even a handshake message: the caller speaks first.
        assert_eq!(sent_bytes(&outputs, link), b"", "at {secs} s: {outputs:?}");
    }
}

/// A partner that ignores the window (more than 64 messages without a
/// receipt) is cut with `bad_frame` instead of filling memory.
#[test]
fn a_partner_that_ignores_the_window_is_cut() {
    let (mut bob, link, now, mut wire) = chatting_with_mallory();
    let mut last = Vec::new();
    let mut reply = String::new();
    // No `Recorded` comes back (the driver is not writing): no receipt.
    for n in 1..=65 {
        let frame = format!("{{\"type\":\"msg\",\"n\":{n},\"text\":\"x\",\"at\":\"t\"}}\n");
        last = feed(&mut bob, now, link, &wire.seal(frame));
        reply = wire.open(&last, link);
    }
    assert!(
        reply.contains("\"code\":\"bad_frame\""),
        "{reply:?} {last:?}"
    );
    assert!(last.contains(&PeerOutput::Close { link }), "{last:?}");
    assert!(
        events(&last).iter().any(|e| matches!(
            e,
            Event::ChatEnded {
                cause: natter_core::EndCause::BadFrame,
                ..
            }
        )),
        "{last:?}"
    );
}
