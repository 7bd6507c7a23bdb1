//! The handshake section: what opening an encrypted link costs (issue 10,
//! item 7). One process accepts connections and answers; another opens
//! links to it one after the other over loopback and times, on its own
//! side, TCP's connect and then the Noise XX handshake until it holds the
//! transport keys and may send. Three ways, alternately, each in a fresh
//! pair of processes:
//!
//! - **natter**: natter's `SecureLink` (the core's, with natter's
//!   prologue and framing) through `SecureStream`, as on every natter link;
//! - **raw TCP**: the connect alone, no handshake;
//! - **raw TCP + Noise**: the same handshake (pattern, primitives,
//!   prologue, framing) written straight against `snow`, with the OS's
//!   randomness, as a `snow` user would write it. natter against it is
//!   what the sans-IO wrapping costs.
//!
//! After each link the initiator closes and waits, untimed, for the other
//! side to close as well, so that no two links' work overlaps.

use super::baseline::{listen, stdin_closed};
use super::child::{emit, ChildSpec, Proc};
use super::lines::{link_seed, process_identity};
use super::peer_child::latency_result;
use super::report::{column, Figure, Section};
use super::{wall_now, Plan};
use anyhow::{bail, Context, Result};
use natter_core::secure::{NOISE_PATTERN, TAG_LEN};
use natter_core::LinkKind;
use natter_net_real::SecureStream;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How a link is opened after TCP's connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Handshake {
    /// natter's `SecureLink` through `SecureStream`.
    Natter,
    /// None: a plain TCP connection.
    Plain,
    /// `snow` directly.
    Snow,
}

pub fn run(plan: &Plan) -> Result<Section> {
    let (mut natter, mut plain, mut snow) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..plan.reps {
        natter.push(one_rep(plan, Handshake::Natter).context("handshake, natter")?);
        plain.push(one_rep(plan, Handshake::Plain).context("handshake, raw TCP")?);
        snow.push(one_rep(plan, Handshake::Snow).context("handshake, snow")?);
    }
    let mut section = Section::new(
        "handshake",
        format!(
            "{} links opened one after the other between two processes ({} warm-up), TCP connect then Noise XX until the initiator may send; raw TCP + Noise is the same handshake written with snow directly",
            plan.handshakes, plan.handshake_warmup
        ),
    );
    for p in ["p50", "p99"] {
        section.figures.push(
            Figure::lower(
                &format!("connect + handshake {p}"),
                "µs",
                column(&natter, &format!("ready_{p}_us")),
                Some(column(&plain, &format!("ready_{p}_us"))),
                None,
            )
            .with_noise(column(&snow, &format!("ready_{p}_us"))),
        );
    }
    for p in ["p50", "p99"] {
        section.figures.push(
            Figure::lower(
                &format!("XX handshake {p}"),
                "µs",
                column(&natter, &format!("handshake_{p}_us")),
                None,
                None,
            )
            .with_noise(column(&snow, &format!("handshake_{p}_us"))),
        );
    }
    section.extra = json!({ "natter": natter, "raw": plain, "snow": snow });
    Ok(section)
}

/// A responder and an initiator, two processes; the initiator's result.
fn one_rep(plan: &Plan, via: Handshake) -> Result<Value> {
    let mut responder = Proc::bench_child("responder", &ChildSpec::Responder { via })?;
    let hello = responder.recv()?;
    let addr: SocketAddr = serde_json::from_value(hello["addr"].clone())?;
    let spec = ChildSpec::Initiator {
        addr,
        via,
        connections: plan.handshakes,
        warmup: plan.handshake_warmup,
    };
    let mut initiator = Proc::bench_child("initiator", &spec)?;
    let result = initiator.result()?;
    initiator.finish()?;
    responder.finish()?;
    Ok(result)
}

/// `natter bench-child responder`: answers every connection's handshake,
/// then waits for the other side to close, until stdin closes.
pub async fn responder(via: Handshake) -> Result<()> {
    let listener = listen().await?;
    let serve = async {
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio::spawn(async move {
                if let Ok(link) = open(stream, via, false).await {
                    let _ = link.close_and_drain().await;
                }
            });
        }
        #[allow(unreachable_code)]
        Ok::<(), anyhow::Error>(())
    };
    tokio::select! {
        biased;
        result = serve => result,
        () = stdin_closed() => Ok(()),
    }
}

/// `natter bench-child initiator`: opens the links and prints
/// `{"result": …}` with the percentiles of the connect, of the handshake
/// and of both (`ready`).
pub async fn initiator(
    addr: SocketAddr,
    via: Handshake,
    connections: usize,
    warmup: usize,
) -> Result<()> {
    let mut connect = Vec::with_capacity(connections);
    let mut handshake = Vec::with_capacity(connections);
    let mut ready = Vec::with_capacity(connections);
    for i in 0..warmup + connections {
        let start = wall_now();
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let connected = wall_now();
        let link = open(stream, via, true).await?;
        let done = wall_now();
        link.close_and_drain().await?;
        if i >= warmup {
            connect.push((connected - start).as_secs_f64() * 1e6);
            handshake.push((done - connected).as_secs_f64() * 1e6);
            ready.push((done - start).as_secs_f64() * 1e6);
        }
    }
    let mut result = json!({ "count": connections });
    for (name, micros) in [
        ("connect", connect),
        ("handshake", handshake),
        ("ready", ready),
    ] {
        let stats = latency_result(micros);
        result[format!("{name}_p50_us")] = stats["p50_us"].clone();
        result[format!("{name}_p99_us")] = stats["p99_us"].clone();
    }
    emit(&json!({ "result": result }));
    Ok(())
}

/// A connection after its handshake.
enum Link {
    Tcp(TcpStream),
    Secure(SecureStream<TcpStream>),
}

impl Link {
    /// Closes this side and waits for the other side's close.
    async fn close_and_drain(self) -> Result<()> {
        match self {
            Link::Tcp(mut stream) => {
                stream.shutdown().await?;
                stream.read_to_end(&mut Vec::new()).await?;
            }
            Link::Secure(mut stream) => {
                stream.close().await?;
                while stream.recv().await?.is_some() {}
            }
        }
        Ok(())
    }
}

/// Runs `via`'s handshake on a connected stream, as the side that
/// connected (`initiator`) or accepted.
async fn open(mut stream: TcpStream, via: Handshake, initiator: bool) -> Result<Link> {
    let me = process_identity();
    Ok(match via {
        Handshake::Plain => Link::Tcp(stream),
        Handshake::Natter if initiator => {
            Link::Secure(SecureStream::connect(stream, me, LinkKind::Peer, link_seed()).await?)
        }
        Handshake::Natter => {
            Link::Secure(SecureStream::accept(stream, me, LinkKind::Peer, link_seed()).await?)
        }
        Handshake::Snow => {
            snow_handshake(&mut stream, initiator).await?;
            Link::Tcp(stream)
        }
    })
}

/// Longest XX message with empty payloads: `e, ee, s, es` and two tags.
const LONGEST_HANDSHAKE_MESSAGE: usize = 32 + 32 + 2 * TAG_LEN;

/// The XX handshake of a natter peer link written against `snow` alone:
/// the same pattern, primitives (ring's ChaChaPoly, snow's X25519 and
/// BLAKE2s), prologue and 2-byte length framing, the OS's randomness.
async fn snow_handshake(stream: &mut TcpStream, initiator: bool) -> Result<()> {
    use snow::resolvers::{DefaultResolver, FallbackResolver, RingResolver};
    let resolver = FallbackResolver::new(Box::new(RingResolver), Box::new(DefaultResolver));
    let builder = snow::Builder::with_resolver(NOISE_PATTERN.parse()?, Box::new(resolver))
        .local_private_key(process_identity().secret())?
        .prologue(LinkKind::Peer.prologue())?;
    let mut noise = if initiator {
        builder.build_initiator()?
    } else {
        builder.build_responder()?
    };
    let (read, mut write) = stream.split();
    let mut read = BufReader::new(read);
    let mut message = [0u8; 2 + LONGEST_HANDSHAKE_MESSAGE + TAG_LEN];
    let mut payload = [0u8; LONGEST_HANDSHAKE_MESSAGE];
    let mut my_turn = initiator;
    while !noise.is_handshake_finished() {
        if my_turn {
            let length = noise.write_message(&[], &mut message[2..])?;
            message[..2].copy_from_slice(&(length as u16).to_be_bytes());
            write.write_all(&message[..2 + length]).await?;
        } else {
            let length = usize::from(read.read_u16().await?);
            if length > LONGEST_HANDSHAKE_MESSAGE {
                bail!("a handshake message of {length} bytes");
            }
            read.read_exact(&mut message[..length]).await?;
            noise.read_message(&message[..length], &mut payload)?;
        }
        my_turn = !my_turn;
    }
    // The transport keys, as natter's link derives them too.
    noise.into_transport_mode()?;
    Ok(())
}
