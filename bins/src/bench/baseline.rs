//! The raw-TCP baselines: what the same exchanges cost with nothing but
//! tokio sockets and serde_json lines — the same framing (natter-core's
//! own message types, one JSON object per line), the same multi-threaded
//! tokio runtime (this binary's), TCP_NODELAY on both ends; no state
//! machine, no driver tasks, no transcript, no events. Each runs over
//! plain TCP or, as natter's links do, inside a Noise XX link
//! ([`Wire`]): the second isolates what natter costs beyond encryption.

use super::child::{emit, message_text, Work};
use super::lines::{process_identity, LineReader, Lines, Wire};
use super::peer_child::latency_result;
use super::wall_now;
use anyhow::{bail, Context, Result};
use natter_core::protocol::{ClientMsg, PeerMsg, ServerMsg, Versions, LIST_CHUNK};
use natter_core::{encode, ErrorCode, LinkKind, PeerInfo, PeerStatus};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// A plain reader's buffer in the chat baselines (tokio's default).
const CHAT_BUFFER: usize = 8 * 1024;

/// A plain reader's buffer in the raw directory: 10,000 idle connections.
const REGISTRY_BUFFER: usize = 1024;

/// Completes when standard input closes: the parent is done with us (or
/// died), so a child never outlives the bench.
pub async fn stdin_closed() {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 256];
    while let Ok(n) = stdin.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

pub async fn listen() -> Result<TcpListener> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
    emit(&json!({ "addr": listener.local_addr()?, "pid": std::process::id() }));
    Ok(listener)
}

/// Acks every `msg` it reads, on every connection, until stdin closes.
pub async fn raw_receiver(wire: Wire) -> Result<()> {
    let listener = listen().await?;
    let serve = async {
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(async move {
                let me = process_identity();
                let accepted = wire.accept(stream, LinkKind::Peer, me, CHAT_BUFFER);
                let Ok(Lines {
                    mut read,
                    mut write,
                    ..
                }) = accepted.await
                else {
                    return;
                };
                while let Ok(Some(line)) = read.next_line().await {
                    if let Ok(PeerMsg::Msg { n, .. }) = serde_json::from_str(line) {
                        if write.send(&encode(&PeerMsg::Ack { n })).await.is_err() {
                            return;
                        }
                    }
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

/// The frame of message `n`, as a natter peer would send it.
fn msg_frame(n: u64, size: usize) -> Vec<u8> {
    encode(&PeerMsg::Msg {
        n,
        text: message_text(n, size),
        at: "2026-01-01T00:00:00.000Z".to_string(),
    })
}

/// The next line from a raw receiver, which must not close.
async fn ack_line(read: &mut LineReader) -> Result<PeerMsg> {
    match read.next_line().await? {
        Some(line) => Ok(serde_json::from_str(line)?),
        None => bail!("the raw receiver closed"),
    }
}

/// Runs `work` against a raw receiver and prints `{"result": …}`.
pub async fn raw_sender(addr: SocketAddr, work: Work, wire: Wire) -> Result<()> {
    let stream = TcpStream::connect(addr).await?;
    let Lines {
        mut read,
        mut write,
        ..
    } = wire
        .connect(stream, LinkKind::Peer, process_identity(), CHAT_BUFFER)
        .await?;
    let result = match work {
        Work::Latency {
            pings,
            warmup,
            size,
        } => {
            let mut micros = Vec::with_capacity(pings);
            for i in 0..(warmup + pings) {
                let n = i as u64 + 1;
                let start = wall_now();
                write.send(&msg_frame(n, size)).await?;
                match ack_line(&mut read).await? {
                    PeerMsg::Ack { n: got } if got == n => {}
                    other => bail!("expected ack {n}, got {other:?}"),
                }
                if i >= warmup {
                    micros.push(start.elapsed().as_secs_f64() * 1e6);
                }
            }
            latency_result(micros)
        }
        Work::Burst {
            count,
            size,
            window,
        } => {
            let start = wall_now();
            let credit = Arc::new(Semaphore::new(window));
            let writer_credit = Arc::clone(&credit);
            let writer = tokio::spawn(async move {
                for n in 1..=count as u64 {
                    writer_credit.acquire().await?.forget();
                    write.send(&msg_frame(n, size)).await?;
                }
                Ok::<_, anyhow::Error>(write)
            });
            let mut expected = 1;
            while expected <= count as u64 {
                match ack_line(&mut read).await? {
                    PeerMsg::Ack { n } if n == expected => expected += 1,
                    other => bail!("expected ack {expected}, got {other:?}"),
                }
                credit.add_permits(1);
            }
            let secs = start.elapsed().as_secs_f64();
            let _write = writer.await??;
            json!({ "msgs_per_s": count as f64 / secs, "secs": secs, "max_in_flight": window })
        }
        Work::Flood { .. } => bail!("the flood section has no raw baseline"),
    };
    emit(&json!({ "result": result }));
    Ok(())
}

/// A directory in a few lines: every connection is one task that answers
/// `hello`, `register`, `list` (chunked like natter's) and `ping`, over one
/// shared map. No heartbeats, limits or log: what holding and listing
/// 10,000 registrations costs with nothing else.
pub async fn raw_registry(wire: Wire) -> Result<()> {
    let listener = listen().await?;
    let names: Arc<Mutex<BTreeMap<String, PeerInfo>>> = Arc::default();
    let serve = async {
        loop {
            let (stream, client) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let names = Arc::clone(&names);
            tokio::spawn(async move {
                let mut me = None;
                let _ = registry_conn(stream, wire, client, &names, &mut me).await;
                if let Some(name) = me {
                    names.lock().expect("not poisoned").remove(&name);
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

async fn registry_conn(
    stream: TcpStream,
    wire: Wire,
    client: SocketAddr,
    names: &Mutex<BTreeMap<String, PeerInfo>>,
    me: &mut Option<String>,
) -> Result<()> {
    let Lines {
        mut read,
        mut write,
        remote,
    } = wire
        .accept(
            stream,
            LinkKind::Server,
            process_identity(),
            REGISTRY_BUFFER,
        )
        .await?;
    loop {
        let Some(line) = read.next_line().await? else {
            return Ok(());
        };
        let reply = match serde_json::from_str(line)? {
            ClientMsg::Hello { .. } => encode(&ServerMsg::Hello {
                versions: Versions::ours(),
            }),
            ClientMsg::Register { name, port } => {
                let addr = SocketAddr::new(client.ip(), port);
                let info = PeerInfo {
                    name: name.clone(),
                    addr,
                    status: PeerStatus::Available,
                    reachable: true,
                    // Listed as natter's directory lists it: the key the
                    // client proved on this link (Noise only).
                    key: remote,
                };
                let mut map = names.lock().expect("not poisoned");
                if map.contains_key(&name) {
                    encode(&ServerMsg::Error {
                        id: None,
                        code: ErrorCode::NameTaken,
                        message: format!("{name} is taken"),
                        close: false,
                    })
                } else {
                    map.insert(name.clone(), info);
                    *me = Some(name.clone());
                    encode(&ServerMsg::Registered {
                        name,
                        addr,
                        reachable: true,
                    })
                }
            }
            ClientMsg::List { id } => {
                let peers: Vec<PeerInfo> = {
                    let map = names.lock().expect("not poisoned");
                    map.values()
                        .filter(|p| Some(&p.name) != me.as_ref())
                        .cloned()
                        .collect()
                };
                let mut out = Vec::new();
                let chunks = peers.len().div_ceil(LIST_CHUNK).max(1);
                for i in 0..chunks {
                    let end = ((i + 1) * LIST_CHUNK).min(peers.len());
                    out.extend(encode(&ServerMsg::Peers {
                        id,
                        peers: peers[i * LIST_CHUNK..end].to_vec(),
                        more: i + 1 < chunks,
                    }));
                }
                out
            }
            ClientMsg::Ping => encode(&ServerMsg::Pong),
            ClientMsg::Bye => {
                if let Some(name) = me.take() {
                    names.lock().expect("not poisoned").remove(&name);
                }
                return Ok(());
            }
            ClientMsg::Pong
            | ClientMsg::Status { .. }
            | ClientMsg::Lookup { .. }
            | ClientMsg::Subscribe => continue,
        };
        write.send(&reply).await.context("raw registry")?;
    }
}
