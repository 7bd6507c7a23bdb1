//! The sending peer of sections 1, 2 and 5: a real natter peer (the
//! harness's, over tokio sockets, writing its transcript), driven through
//! the same line channel as `natter peer`, timing its own messages from
//! the line handed to the peer to the `delivered` event coming back.

use super::child::{emit, message_text, rss_kib, Work};
use super::report::percentile;
use super::wall_now;
use anyhow::{bail, Context, Result};
use natter_core::Event;
use natter_net_real::harness::Typist;
use natter_net_real::{PeerBuilder, PeerHandle, TokioNet};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Hang guard for one awaited event.
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the flood samples its in-flight count and memory.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);

pub async fn run(
    server: SocketAddr,
    name: String,
    partner: String,
    transcripts: PathBuf,
    work: Work,
) -> Result<()> {
    let mut peer = PeerBuilder::new(TokioNet, &name, server, transcripts)
        .config(|config| {
            config.transcript_quota_chat = super::chat::TRANSCRIPT_QUOTA;
            config.transcript_quota_day = super::chat::TRANSCRIPT_QUOTA;
        })
        .spawn()
        .await
        .context("cannot listen on 127.0.0.1")?;
    expect(&mut peer, "registered", |e| {
        matches!(e, Event::Registered { .. })
    })
    .await?;
    peer.send(&format!("/connect {partner}")).await?;
    expect(&mut peer, "chat_started", |e| {
        matches!(e, Event::ChatStarted { .. })
    })
    .await?;
    let result = match work {
        Work::Latency {
            pings,
            warmup,
            size,
        } => latency(&mut peer, pings, warmup, size).await?,
        Work::Burst { count, size, .. } => burst(&mut peer, count, size).await?,
        Work::Flood { millis, size } => flood(&mut peer, millis, size).await?,
    };
    emit(&json!({ "result": result }));
    // End of input: the peer leaves the chat (waiting for the last
    // receipts), deregisters and exits. Generous: after a flood the last
    // receipts come at the pace of a slow reader, then the link's and the
    // server's linger (2 s each); a debug build on a loaded machine took
    // more than 10 s (a fresh-clone CI run).
    peer.end_input();
    let code = peer
        .exited(Duration::from_secs(60))
        .await
        .context("the peer did not exit after its input ended")?;
    if code != 0 {
        bail!("the peer exited with code {code}");
    }
    Ok(())
}

/// The next event; an error or a silent peer ends the bench.
async fn next(peer: &mut PeerHandle) -> Result<Event> {
    match tokio::time::timeout(EVENT_TIMEOUT, peer.next_event()).await {
        Ok(Some(Event::Error { code, detail })) => bail!("peer error {code}: {detail:?}"),
        Ok(Some(event)) => Ok(event),
        Ok(None) => bail!("the peer stopped"),
        Err(_) => bail!("no event from the peer for {} s", EVENT_TIMEOUT.as_secs()),
    }
}

/// The next event `matches` accepts; an error ends the bench.
async fn expect(
    peer: &mut PeerHandle,
    what: &str,
    matches: impl Fn(&Event) -> bool,
) -> Result<Event> {
    let event = peer
        .wait_for(EVENT_TIMEOUT, |e| {
            matches!(e, Event::Error { .. }) || matches(e)
        })
        .await
        .with_context(|| format!("while waiting for {what}"))?;
    if let Event::Error { code, detail } = event {
        bail!("peer error {code}: {detail:?} (while waiting for {what})");
    }
    Ok(event)
}

/// One message at a time: hand the line to the peer, wait for its receipt.
async fn latency(peer: &mut PeerHandle, pings: usize, warmup: usize, size: usize) -> Result<Value> {
    let mut micros = Vec::with_capacity(pings);
    for i in 0..(warmup + pings) {
        let n = i as u64 + 1;
        let text = message_text(n, size);
        let start = wall_now();
        peer.send(&text).await?;
        expect(
            peer,
            "a receipt",
            |e| matches!(e, Event::Delivered { n: got, .. } if *got == n),
        )
        .await?;
        if i >= warmup {
            micros.push(start.elapsed().as_secs_f64() * 1e6);
        }
    }
    Ok(latency_result(micros))
}

pub fn latency_result(mut micros: Vec<f64>) -> Value {
    micros.sort_by(f64::total_cmp);
    json!({
        "p50_us": percentile(&micros, 50.0),
        "p99_us": percentile(&micros, 99.0),
        "count": micros.len(),
    })
}

/// `count` messages as fast as the peer takes them; the peer stops taking
/// lines while 64 are without receipt (its window).
async fn burst(peer: &mut PeerHandle, count: usize, size: usize) -> Result<Value> {
    let start = wall_now();
    let typist = peer.typist();
    let feeder = tokio::spawn(async move {
        for n in 1..=count as u64 {
            if typist.send(&message_text(n, size)).await.is_err() {
                break;
            }
        }
    });
    let (mut delivered, mut max_in_flight, mut out_of_order) = (0u64, 0u64, 0u64);
    while delivered < count as u64 {
        match next(peer).await? {
            Event::Sent { n, .. } => max_in_flight = max_in_flight.max(n - delivered),
            Event::Delivered { n, .. } => {
                if n != delivered + 1 {
                    out_of_order += 1;
                }
                delivered += 1;
            }
            _ => {}
        }
    }
    let secs = start.elapsed().as_secs_f64();
    feeder.await?;
    Ok(json!({
        "msgs_per_s": count as f64 / secs,
        "secs": secs,
        "max_in_flight": max_in_flight,
        "out_of_order": out_of_order,
    }))
}

/// Messages as fast as the peer takes them for `millis`; every
/// [`SAMPLE_EVERY`] the in-flight count (sent − delivered, its maximum
/// since the last sample) and this process's memory.
async fn flood(peer: &mut PeerHandle, millis: u64, size: usize) -> Result<Value> {
    let pid = std::process::id();
    let start = wall_now();
    let stop_at = tokio::time::Instant::now() + Duration::from_millis(millis);
    let typist: Typist = peer.typist();
    let feeder = tokio::spawn(async move {
        let mut n = 0u64;
        loop {
            n += 1;
            let text = message_text(n, size);
            match tokio::time::timeout_at(stop_at, typist.send(&text)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => break,
            }
        }
    });
    let mut ticker = tokio::time::interval(SAMPLE_EVERY);
    let (mut sent, mut delivered, mut window_max, mut max_in_flight) = (0u64, 0u64, 0u64, 0u64);
    let mut samples = Vec::new();
    loop {
        tokio::select! {
            biased;
            _ = ticker.tick() => {
                samples.push(json!({
                    "t_ms": start.elapsed().as_millis() as u64,
                    "sent": sent,
                    "delivered": delivered,
                    "in_flight_max": window_max,
                    "rss_kib": rss_kib(pid).unwrap_or(0),
                }));
                window_max = sent - delivered;
                if tokio::time::Instant::now() >= stop_at {
                    break;
                }
            }
            event = next(peer) => match event? {
                Event::Sent { n, .. } => {
                    sent = n;
                    window_max = window_max.max(sent - delivered);
                    max_in_flight = max_in_flight.max(sent - delivered);
                }
                Event::Delivered { .. } => delivered += 1,
                _ => {}
            },
        }
    }
    feeder.await?;
    Ok(json!({
        "sent": sent,
        "delivered": delivered,
        "max_in_flight": max_in_flight,
        "samples": samples,
    }))
}
