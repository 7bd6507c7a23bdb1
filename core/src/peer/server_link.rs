//! The link to the directory server: registration, lists, lookups,
//! heartbeat, and reconnecting when it is lost: at once to the next of
//! several server addresses, and with a capped backoff with jitter once
//! every address has failed in a row (see [`super::servers`]). Every
//! request gets an answer or an error: one pending when the link breaks
//! fails with `request_lost`.
//!
//! The link is a Noise XX session (the server link's prologue). Nothing
//! is sent before the handshake has proved the server's key and that key
//! has been checked against the one pinned for the server's address
//! (trust on first use, like SSH's known_hosts): not even our name. Each
//! address has its own pin: servers sharing one directory may each have
//! their own key.

use super::chat::{Dialled, Directory};
use super::server_errors::UnaskedErrors;
use super::servers::{Next, Servers};
use super::{Peer, PeerConfig, PeerOutput, Timer};
use crate::codec::{encode, FrameDecoder};
use crate::event::{ErrorDetail, Event, Problem, Request, ServerFailure};
use crate::heartbeat::{Beat, Heartbeat, HeartbeatConfig};
use crate::identity::PublicKey;
use crate::link::LinkId;
use crate::protocol::{
    negotiate, ClientMsg, ErrorCode, PeerInfo, PresenceChange, ServerMsg, Versions,
};
use crate::rate::{RateLimit, TokenBucket};
use crate::secure::{LinkKind, SecureLink};
use crate::text::{is_valid_name, same_name, sanitize, MAX_NAME};
use crate::time::Instant;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

/// Longest server error message shown, in characters.
const MAX_SERVER_MESSAGE: usize = 512;

/// Lookups of callers this peer does not know, at most: a burst of 10,
/// then 2 a second. Half the server's default request budget (20, then 5
/// a second), so that a flood of strangers' calls cannot use it up and
/// get this peer's server link closed; callers beyond it are refused
/// (`cannot_verify`).
const CALLER_LOOKUPS: RateLimit = RateLimit {
    burst: 10,
    per_second: 2,
};

/// The server link's state and what it is waiting for.
#[derive(Debug)]
pub(super) struct ServerLink {
    phase: Phase,
    ever_registered: bool,
    /// The next reconnection delay, before jitter.
    backoff: Duration,
    jitter: Jitter,
    /// Requests sent and not yet answered, by id, oldest first.
    pending: VecDeque<(u64, Pending)>,
    /// What is left of [`CALLER_LOOKUPS`].
    caller_lookups: TokenBucket,
    next_request: u64,
    /// Where the server says we listen.
    own_addr: Option<SocketAddr>,
    heartbeat_config: HeartbeatConfig,
    max_frame: usize,
    /// The addresses to register with, and which one is in use. `None`
    /// when none was given (the peer then ends at once).
    servers: Option<Servers>,
    /// The servers' keys by address: pinned at an earlier run, or proved
    /// by the first handshake with that address in this one. Every later
    /// handshake with an address must prove the same key.
    keys: BTreeMap<SocketAddr, PublicKey>,
    /// Addresses whose key this run pinned and no registration through
    /// them has reported yet (`new_server`): a first attempt the server
    /// refused (`store_unavailable`, `server_full`) pins the key, and the
    /// registration that finally succeeds still says it is new.
    pinned_unannounced: BTreeSet<SocketAddr>,
    /// Whether natter stopped using the servers for good (`replaced`, or
    /// `server_key_changed` at every address after a registration):
    /// requests then say so rather than that it is reconnecting.
    stopped: bool,
    /// Errors that answer no request, shown only a few at a time.
    unasked_errors: UnaskedErrors,
}

#[derive(Debug)]
enum Phase {
    /// We asked the driver to connect.
    Connecting {
        link: LinkId,
    },
    /// Connected; the Noise handshake is under way.
    Handshaking(Conn),
    /// The server's key is checked; hello and register are sent.
    Registering(Conn),
    Registered(Conn),
    /// Lost; reconnect at `retry_at`.
    Down {
        retry_at: Instant,
    },
    /// Quit or failed for good.
    Gone,
}

#[derive(Debug)]
struct Conn {
    link: LinkId,
    secure: SecureLink,
    decoder: FrameDecoder<ServerMsg>,
    heartbeat: Heartbeat,
}

#[derive(Debug)]
enum Pending {
    /// A list, with the chunks received so far.
    List { chunks: Vec<PeerInfo> },
    /// For `/connect NAME`.
    Lookup { name: String },
    /// Which key the directory lists for the name a caller claims: the
    /// answer goes to the chat on `link` (if it is still there).
    Caller { link: LinkId, name: String },
    /// For `/trust NAME`.
    Trust { name: String },
}

impl Pending {
    /// Directory entries held for this request.
    fn entries(&self) -> usize {
        match self {
            Pending::List { chunks } => chunks.len(),
            _ => 0,
        }
    }
}

impl ServerLink {
    pub(super) fn new(config: &PeerConfig) -> Self {
        Self {
            phase: Phase::Gone,
            ever_registered: false,
            backoff: config.reconnect_min,
            jitter: Jitter(u64::from_le_bytes(
                crate::identity::derive_seed(&config.seed, b"jitter", 0)[..8]
                    .try_into()
                    .expect("8 bytes"),
            )),
            pending: VecDeque::new(),
            caller_lookups: TokenBucket::new(CALLER_LOOKUPS, Instant::from_origin(Duration::ZERO)),
            next_request: 0,
            own_addr: None,
            heartbeat_config: config.heartbeat,
            max_frame: config.max_frame,
            servers: Servers::new(&config.servers),
            keys: config.server_keys.clone(),
            pinned_unannounced: BTreeSet::new(),
            stopped: false,
            unasked_errors: UnaskedErrors::default(),
        }
    }

    /// The address in use, or being tried.
    fn server(&self) -> SocketAddr {
        self.servers
            .as_ref()
            .expect("a peer with no server address ends at once")
            .current()
    }

    /// The other side of [`Servers`], which needs one address at least.
    fn servers(&mut self) -> &mut Servers {
        self.servers
            .as_mut()
            .expect("a peer with no server address ends at once")
    }

    pub(super) fn owns(&self, link: LinkId) -> bool {
        self.link() == Some(link)
    }

    fn link(&self) -> Option<LinkId> {
        match &self.phase {
            Phase::Connecting { link } => Some(*link),
            Phase::Handshaking(conn) | Phase::Registering(conn) | Phase::Registered(conn) => {
                Some(conn.link)
            }
            Phase::Down { .. } | Phase::Gone => None,
        }
    }

    /// Whether the first registration is still under way (connecting,
    /// registering, or waiting to retry).
    pub(super) fn first_registration_pending(&self) -> bool {
        !self.ever_registered && !matches!(self.phase, Phase::Gone)
    }

    pub(super) fn is_registered(&self) -> bool {
        matches!(self.phase, Phase::Registered(_))
    }

    pub(super) fn own_addr(&self) -> Option<SocketAddr> {
        self.own_addr
    }

    pub(super) fn deadline(&self) -> Option<(Instant, Timer)> {
        match &self.phase {
            Phase::Down { retry_at } => Some((*retry_at, Timer::ServerRetry)),
            // No ping before the handshake is done: only its end.
            Phase::Handshaking(conn) => Some((conn.heartbeat.lost_at(), Timer::ServerHeartbeat)),
            Phase::Registering(conn) | Phase::Registered(conn) => {
                Some((conn.heartbeat.deadline(), Timer::ServerHeartbeat))
            }
            Phase::Connecting { .. } | Phase::Gone => None,
        }
    }
}

impl Peer {
    pub(super) fn connect_server(&mut self) {
        let link = self.allocate_link();
        self.server.phase = Phase::Connecting { link };
        self.outputs.push_back(PeerOutput::Connect {
            link,
            addr: self.server.server(),
        });
    }

    /// Connected: the handshake's first message goes out.
    pub(super) fn server_connected(&mut self) {
        let Phase::Connecting { link } = self.server.phase else {
            return;
        };
        let seed = self.seeds.next_seed();
        let mut conn = Conn {
            link,
            secure: SecureLink::initiator(&self.config.identity, LinkKind::Server, seed),
            decoder: FrameDecoder::new(self.server.max_frame),
            heartbeat: Heartbeat::new(self.server.heartbeat_config, self.clock.mono),
        };
        conn.transmit(&mut self.outputs);
        self.server.phase = Phase::Handshaking(conn);
    }

    /// Ciphertext from the server: through the Noise session, then the
    /// frames one at a time.
    pub(super) fn server_bytes(&mut self, bytes: &[u8]) {
        let now = self.clock.mono;
        let (Phase::Handshaking(conn) | Phase::Registering(conn) | Phase::Registered(conn)) =
            &mut self.server.phase
        else {
            return;
        };
        let link = conn.link;
        conn.heartbeat.received(now);
        if let Err(e) = conn.secure.push(bytes) {
            return self.server_down(&format!("the encrypted link failed: {e}"));
        }
        if let Phase::Handshaking(conn) = &self.server.phase {
            // Message 2 proves the server's key. It is checked before our
            // message 3 goes out: an impostor does not even learn our key.
            let Some(key) = conn.secure.remote_key() else {
                return; // message 2 is not complete yet
            };
            if !self.server_key_accepted(key) {
                return;
            }
            self.start_registering();
        }
        let (Phase::Registering(conn) | Phase::Registered(conn)) = &mut self.server.phase else {
            return;
        };
        while let Some(plaintext) = conn.secure.poll_plaintext() {
            conn.decoder.push(&plaintext);
        }
        loop {
            let (Phase::Registering(conn) | Phase::Registered(conn)) = &mut self.server.phase
            else {
                return;
            };
            if conn.link != link {
                return;
            }
            match conn.decoder.next_frame() {
                None => return,
                Some(Ok(frame)) => self.server_frame(frame),
                Some(Err(e)) => {
                    return self.server_down(&format!("the server sent a bad frame: {e}"))
                }
            }
        }
    }

    /// Whether the server proved the key pinned for its address (or, at
    /// first contact with that address, pins it). A server with another
    /// key is refused, and its address is not tried again in this run:
    /// the peer moves on to the next address, if there is one. With none
    /// left, that is fatal before the first registration, and after it
    /// the peer stops using servers (chats go on): the name must not be
    /// handed to an impostor.
    fn server_key_accepted(&mut self, key: PublicKey) -> bool {
        let addr = self.server.server();
        let Some(&pinned) = self.server.keys.get(&addr) else {
            self.server.keys.insert(addr, key);
            self.server.pinned_unannounced.insert(addr);
            self.outputs.push_back(PeerOutput::PinServer { addr, key });
            return true;
        };
        if pinned == key {
            return true;
        }
        self.server_close();
        let detail = ErrorDetail::ServerKeyChanged {
            server: addr,
            expected: pinned.fingerprint(),
            presented: key.fingerprint(),
        };
        let problem = Problem::new(ErrorCode::ServerKeyChanged, detail);
        match self.server.servers().shun() {
            Next::NoneLeft if !self.server.ever_registered => self.fatal(problem),
            Next::NoneLeft => {
                self.server.stopped = true;
                self.event(problem.into());
                self.exit_if_done();
            }
            next => {
                self.event(problem.into());
                self.move_on(next);
            }
        }
        false
    }

    /// The server is who we think: our last handshake message, hello and
    /// register go out.
    fn start_registering(&mut self) {
        let Phase::Handshaking(conn) = std::mem::replace(&mut self.server.phase, Phase::Gone)
        else {
            return;
        };
        self.server.phase = Phase::Registering(conn);
        self.send_server(&ClientMsg::Hello {
            versions: Versions::ours(),
        });
        let register = ClientMsg::Register {
            name: self.config.name.clone(),
            port: self.config.listen_port,
        };
        self.send_server(&register);
    }

    fn server_frame(&mut self, frame: ServerMsg) {
        match frame {
            ServerMsg::Hello { versions } => {
                if let Err(mismatch) = negotiate(&versions) {
                    let detail = ErrorDetail::ServerVersion {
                        version: mismatch.theirs.max,
                        min_version: mismatch.theirs.min,
                    };
                    self.server_refused(Problem::new(ErrorCode::VersionMismatch, detail));
                }
            }
            ServerMsg::Registered {
                addr, reachable, ..
            } => self.registered(addr, reachable),
            ServerMsg::Peers { id, peers, more } => {
                // Bounded over every list still being received, and only
                // entries with valid names are kept (a name is at most 32
                // bytes): a server cannot make us hold more than
                // `max_list` small entries, whatever it sends.
                let held: usize = self.server.pending.iter().map(|(_, p)| p.entries()).sum();
                let room = self.config.max_list.saturating_sub(held);
                let Some(chunks) =
                    self.server
                        .pending
                        .iter_mut()
                        .find_map(|(pending, p)| match p {
                            Pending::List { chunks } if Some(*pending) == id => Some(chunks),
                            _ => None,
                        })
                else {
                    return; // an answer nobody asked for
                };
                let valid = peers.into_iter().filter(|p| is_valid_name(&p.name));
                chunks.extend(valid.take(room));
                if more {
                    return;
                }
                let Some(Pending::List { chunks: mut peers }) = self.take_pending(id) else {
                    return;
                };
                for p in &mut peers {
                    p.name = sanitize(&p.name, MAX_NAME);
                }
                let peers = peers.into_iter().map(Into::into).collect();
                self.event(Event::Peers { peers });
            }
            ServerMsg::Found { id, name, peer } => match self.take_pending(id) {
                Some(Pending::Lookup { name: asked }) => self.found(asked, name, peer),
                Some(Pending::Caller { link, name: asked }) => {
                    let entry = entry_for(&asked, &name, peer);
                    self.caller_listed(link, Directory::from_entry(entry.map(|e| e.key)));
                }
                Some(Pending::Trust { name: asked }) => {
                    let entry = entry_for(&asked, &name, peer);
                    self.trust_answered(asked, entry);
                }
                Some(Pending::List { .. }) | None => {}
            },
            ServerMsg::Error {
                id, code, message, ..
            } => {
                if code == ErrorCode::Replaced {
                    return self.replaced();
                }
                let message = sanitize(&message, MAX_SERVER_MESSAGE);
                let problem = Problem::new(code, ErrorDetail::ServerSaid { text: message });
                if matches!(self.server.phase, Phase::Registering(_)) {
                    return self.server_refused(problem);
                }
                let refused = if id.is_some() {
                    match self.take_pending(id) {
                        Some(pending) => Some(pending),
                        // An answer to nothing we asked: not shown.
                        None => return,
                    }
                } else if self.server.unasked_errors.show(self.clock.mono) {
                    None
                } else {
                    return;
                };
                self.event(problem.into());
                if let Some(Pending::Caller { link, .. }) = refused {
                    self.caller_listed(link, Directory::Unreachable);
                }
            }
            // Presence comes only to a subscriber: any other is ignored.
            ServerMsg::Presence { changes } if self.subscribed() => self.presence(changes),
            ServerMsg::Presence { .. } => {}
            // Changes were dropped: a fresh list says who is online (one
            // at a time, however often a server says so).
            ServerMsg::PresenceResync if self.subscribed() && !self.list_pending() => {
                self.request_list()
            }
            ServerMsg::PresenceResync => {}
            ServerMsg::Ping => {
                self.send_server(&ClientMsg::Pong);
            }
            ServerMsg::Pong => {}
        }
    }

    /// Whether we asked the server for presence (`subscribe` goes out
    /// once registered, with [`PeerConfig::presence`]).
    fn subscribed(&self) -> bool {
        self.config.presence && self.server.is_registered()
    }

    fn list_pending(&self) -> bool {
        let list = |(_, p): &(u64, Pending)| matches!(p, Pending::List { .. });
        self.server.pending.iter().any(list)
    }

    /// Live presence: one event per change, in the server's order; an
    /// entry whose name is no valid name is dropped.
    fn presence(&mut self, changes: Vec<PresenceChange>) {
        for change in changes {
            if !change.name().is_some_and(is_valid_name) {
                continue;
            }
            let event = match change {
                PresenceChange::Online(mut info) => {
                    info.name = sanitize(&info.name, MAX_NAME);
                    Event::PeerOnline { peer: info.into() }
                }
                PresenceChange::Offline { name } => Event::PeerOffline {
                    name: sanitize(&name, MAX_NAME),
                },
                PresenceChange::Status { name, status } => Event::PeerStatus {
                    name: sanitize(&name, MAX_NAME),
                    status,
                },
                PresenceChange::Unknown => continue,
            };
            self.event(event);
        }
    }

    fn registered(&mut self, addr: SocketAddr, reachable: bool) {
        if !matches!(self.server.phase, Phase::Registering(_)) {
            return; // a second `registered`: nothing to do
        }
        let Phase::Registering(conn) = std::mem::replace(&mut self.server.phase, Phase::Gone)
        else {
            return;
        };
        self.server.phase = Phase::Registered(conn);
        self.server.backoff = self.config.reconnect_min;
        self.server.servers().registered();
        // Told who comes and goes from now on (a server too old to know
        // `subscribe` skips it: no presence events then, `/list` works).
        if self.config.presence {
            self.send_server(&ClientMsg::Subscribe);
        }
        self.server.own_addr = Some(addr);
        let server = self.server.server();
        let server_fingerprint = self.server.keys[&server].fingerprint();
        let new_server = self.server.pinned_unannounced.remove(&server);
        if self.server.ever_registered {
            self.event(Event::Reregistered {
                addr,
                server,
                reachable,
                server_fingerprint,
                new_server,
            });
        } else {
            self.server.ever_registered = true;
            // Our own name, not the server's echo of it: a server cannot
            // put text of its choosing on our screen here.
            let name = self.config.name.clone();
            let fingerprint = self.config.identity.public().fingerprint();
            self.event(Event::Registered {
                name,
                addr,
                server,
                reachable,
                fingerprint,
                server_fingerprint,
                new_server,
            });
        }
        self.status_sent = None;
        self.update_status();
        self.exit_if_done();
    }

    /// The same identity registered our name again elsewhere (another
    /// natter started with this key): that one is listed now. Registering
    /// back, at this server or another, would only make the two take
    /// turns; this one stops using servers and keeps its chats.
    ///
    /// Only the session in use can be replaced: when this peer moves to
    /// another server, it has closed the link to the old one first, so
    /// the old session being replaced by its own new registration (a
    /// shared directory) never reaches it.
    fn replaced(&mut self) {
        self.server_close();
        self.server.stopped = true;
        let name = self.config.name.clone();
        self.error(ErrorCode::Replaced, ErrorDetail::Replaced { name });
        self.exit_if_done();
    }

    /// The answer to a lookup made for `/connect NAME`.
    fn found(&mut self, asked: String, name: String, peer: Option<PeerInfo>) {
        let Some(info) = entry_for(&asked, &name, peer) else {
            return self.error(
                ErrorCode::UnknownPeer,
                ErrorDetail::NoSuchPeer { name: asked },
            );
        };
        if self.is_own_addr(info.addr) {
            return self.error(ErrorCode::BadInput, ErrorDetail::CallingYourself);
        }
        let name = sanitize(&info.name, MAX_NAME);
        if !info.reachable {
            // The server could not connect to it either (NAT, firewall):
            // dialling would only fail; the other direction works.
            return self.error(
                ErrorCode::PeerUnreachable,
                ErrorDetail::NotCallable { peer: name },
            );
        }
        // Rechecked with the name as listed: a call may have come from it,
        // or the chats filled up, while the directory was asked.
        if let Some((code, detail)) = self.dial_refusal(Some(&name)) {
            return self.error(code, detail);
        }
        // The key listed now is the one the callee must prove.
        let listed = Directory::from_entry(Some(info.key));
        self.dial(info.addr, Some(Dialled { name, listed }));
    }

    /// The server refused us while registering. Some refusals pass by
    /// themselves (too many connections from our address just now): try
    /// the next address, or wait and retry. Others need the user (a name
    /// taken by someone else, a full server): fatal the first time,
    /// whichever server says it (servers sharing a directory agree on
    /// names); after an earlier registration they are retried like a lost
    /// link (the user is away, chatting; the server may have lost its
    /// state).
    fn server_refused(&mut self, problem: Problem) {
        let passing = matches!(
            problem.code,
            ErrorCode::TooManyConnections | ErrorCode::RateLimited | ErrorCode::StoreUnavailable
        );
        // With input at end, the user is gone: do not retry forever.
        let give_up = !self.server.ever_registered && (!passing || self.quitting);
        if give_up {
            return self.fatal(problem);
        }
        self.server_close();
        let server_message = match &problem.detail {
            ErrorDetail::ServerSaid { text } => text.clone(),
            ErrorDetail::ServerVersion { .. } => "no protocol version in common".to_string(),
            _ => String::new(),
        };
        let next = self.server.servers().refused_for_now(&server_message);
        let retry_in = match next {
            Next::Try(_) => Duration::ZERO,
            Next::Wait | Next::NoneLeft => self.schedule_reconnect(),
        };
        self.error(
            problem.code,
            ErrorDetail::Retrying {
                server_message,
                retry_in_ms: retry_in.as_millis() as u64,
            },
        );
        if let Next::Try(_) = next {
            self.connect_server();
        }
    }

    /// The link to the server in use failed or was lost: on to the next
    /// address at once, or, once every address has failed in a row, wait
    /// (and before the first registration, end: nobody answers).
    pub(super) fn server_down(&mut self, reason: &str) {
        let was_registered = self.server.is_registered();
        self.server_close();
        let next = self.server.servers().failed(reason);
        if !self.server.ever_registered {
            return self.move_on(next);
        }
        if self.quitting {
            self.server.phase = Phase::Gone;
            return self.exit_if_done();
        }
        if was_registered {
            self.event(Event::ServerLost);
        }
        self.try_next(next);
    }

    /// After an address failed: [`Peer::try_next`], except that before
    /// the first registration a round of failed addresses, none of them a
    /// server that only turned us away for now, is fatal, even when input
    /// has ended already, so the user learns why (not a silent exit 0).
    fn move_on(&mut self, next: Next) {
        if !self.server.ever_registered {
            let servers = self.server.servers();
            let retry = servers.any_for_now() && !self.quitting;
            if !matches!(next, Next::Try(_)) && !retry {
                let failures = servers.failures();
                return self.fatal(unreachable(failures));
            }
        }
        self.try_next(next);
    }

    /// Connects to the next address now, or waits for the next round.
    fn try_next(&mut self, next: Next) {
        match next {
            Next::Try(_) => self.connect_server(),
            Next::Wait => {
                self.schedule_reconnect();
            }
            Next::NoneLeft => {
                self.server.stopped = true;
                self.server.phase = Phase::Gone;
            }
        }
    }

    /// Closes the server link, failing every request still pending.
    pub(super) fn server_close(&mut self) {
        if let Some(link) = self.server.link() {
            self.outputs.push_back(PeerOutput::Close { link });
        }
        self.server.phase = Phase::Gone;
        for (_, pending) in std::mem::take(&mut self.server.pending) {
            let request = match pending {
                Pending::List { .. } => Request::List,
                Pending::Lookup { .. } => Request::Lookup,
                Pending::Trust { .. } => Request::Trust,
                Pending::Caller { link, .. } => {
                    self.caller_listed(link, Directory::Unreachable);
                    continue;
                }
            };
            self.error(
                ErrorCode::ServerUnreachable,
                ErrorDetail::RequestLost { request },
            );
        }
    }

    /// Says goodbye to the server (quitting) and closes the link.
    pub(super) fn server_goodbye(&mut self) {
        if self.server.is_registered() {
            self.send_server(&ClientMsg::Bye);
        }
        self.server_close();
    }

    /// Schedules the next connection attempt; returns the wait.
    fn schedule_reconnect(&mut self) -> Duration {
        let base = self.server.backoff;
        self.server.backoff = (base * 2).min(self.config.reconnect_max);
        let wait = self
            .server
            .jitter
            .spread(base)
            .min(self.config.reconnect_max);
        self.server.phase = Phase::Down {
            retry_at: self.clock.mono + wait,
        };
        wait
    }

    pub(super) fn server_timeout(&mut self) {
        let now = self.clock.mono;
        match &self.server.phase {
            Phase::Down { retry_at } if now >= *retry_at => {
                self.server.servers().new_round();
                self.connect_server();
            }
            Phase::Handshaking(conn) if now >= conn.heartbeat.lost_at() => {
                self.server_down("the server did not complete the encrypted handshake")
            }
            Phase::Registering(conn) | Phase::Registered(conn) => match conn.heartbeat.check(now) {
                Beat::Lost => self.server_down("no heartbeat from the server"),
                Beat::Ping => {
                    self.send_server(&ClientMsg::Ping);
                }
                Beat::Idle => {}
            },
            _ => {}
        }
    }

    /// The request answered by a frame repeating `id`, if it is pending.
    fn take_pending(&mut self, id: Option<u64>) -> Option<Pending> {
        let at = self
            .server
            .pending
            .iter()
            .position(|(pending, _)| Some(*pending) == id)?;
        self.server.pending.remove(at).map(|(_, p)| p)
    }

    fn request_id(&mut self) -> u64 {
        self.server.next_request += 1;
        self.server.next_request
    }

    pub(super) fn request_list(&mut self) {
        let id = self.request_id();
        if self.send_server(&ClientMsg::List { id: Some(id) }) {
            let list = Pending::List { chunks: Vec::new() };
            self.server.pending.push_back((id, list));
        } else {
            self.not_connected(Request::List);
        }
    }

    /// `/connect NAME`: where NAME is, and its key.
    pub(super) fn lookup(&mut self, name: String) {
        if !self.ask(name.clone(), Pending::Lookup { name }) {
            self.not_connected(Request::Lookup);
        }
    }

    /// `/trust NAME`: the key NAME has now.
    pub(super) fn lookup_to_trust(&mut self, name: String) {
        if !self.ask(name.clone(), Pending::Trust { name }) {
            self.not_connected(Request::Trust);
        }
    }

    /// Which key the directory lists for the name a caller claims; the
    /// chat on `link` gets the answer (at once if it cannot be asked, or
    /// if unknown callers have used up their lookups for now).
    pub(super) fn verify_caller(&mut self, link: LinkId, name: String) {
        let within = self.server.caller_lookups.take(self.clock.mono);
        if !(within && self.ask(name.clone(), Pending::Caller { link, name })) {
            self.caller_listed(link, Directory::Unreachable);
        }
    }

    /// Sends a lookup of `name`, answered through `pending`; false if the
    /// server cannot be asked now.
    fn ask(&mut self, name: String, pending: Pending) -> bool {
        let id = self.request_id();
        let sent = self.send_server(&ClientMsg::Lookup { id: Some(id), name });
        if sent {
            self.server.pending.push_back((id, pending));
        }
        sent
    }

    fn not_connected(&mut self, request: Request) {
        let detail = if self.server.stopped {
            ErrorDetail::ServerStopped { request }
        } else {
            ErrorDetail::ServerNotConnected { request }
        };
        self.error(ErrorCode::ServerUnreachable, detail);
    }

    /// Sends to the server if the link can carry `frame` now; false if not.
    pub(super) fn send_server(&mut self, frame: &ClientMsg) -> bool {
        let now = self.clock.mono;
        let conn = match &mut self.server.phase {
            Phase::Registered(conn) => conn,
            Phase::Registering(conn)
                if matches!(
                    frame,
                    ClientMsg::Hello { .. }
                        | ClientMsg::Register { .. }
                        | ClientMsg::Pong
                        | ClientMsg::Ping
                ) =>
            {
                conn
            }
            _ => return false,
        };
        conn.heartbeat.sent(now);
        // Cannot fail: the handshake is done (Registering or Registered),
        // and a failed session has taken the link down already.
        let _ = conn.secure.send(&encode(frame));
        conn.transmit(&mut self.outputs);
        true
    }
}

impl Conn {
    /// Hands the driver what the Noise session has ready to go out.
    fn transmit(&mut self, outputs: &mut VecDeque<PeerOutput>) {
        while let Some(bytes) = self.secure.poll_transmit() {
            outputs.push_back(PeerOutput::Send {
                link: self.link,
                bytes,
            });
        }
    }
}

/// Why registering failed when every address failed in a row before the
/// first registration: one address says so alone (as a single server
/// always did), several list each one's reason.
fn unreachable(failures: Vec<(SocketAddr, String)>) -> Problem {
    let detail = match <[_; 1]>::try_from(failures) {
        Ok([(server, reason)]) => ErrorDetail::ServerDown { server, reason },
        Err(failures) => ErrorDetail::ServersDown {
            servers: failures
                .into_iter()
                .map(|(server, reason)| ServerFailure { server, reason })
                .collect(),
        },
    };
    Problem::new(ErrorCode::ServerUnreachable, detail)
}

/// The entry of a `found` answer, if it is about the name asked: an
/// answer about another name counts as none.
fn entry_for(asked: &str, name: &str, peer: Option<PeerInfo>) -> Option<PeerInfo> {
    peer.filter(|info| same_name(asked, name) && same_name(asked, &info.name))
}

/// Spreads reconnection delays: peers cut off by one server restart come
/// back over an interval instead of all at one instant. A seeded
/// splitmix64, so a simulation replays exactly.
#[derive(Debug)]
struct Jitter(u64);

impl Jitter {
    /// `base` times a factor in [0.5, 1.5).
    fn spread(&mut self, base: Duration) -> Duration {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let per_mille = 500 + z % 1000;
        base * per_mille as u32 / 1000
    }
}
