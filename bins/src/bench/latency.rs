//! Section 1, message latency: from the line handed to the sending peer to
//! its `delivered` event, through both peers' full stacks (driver tasks,
//! state machine, JSON, the receiver's transcript write and its `--json`
//! output), two processes; against a raw JSON-lines ping-pong between two
//! processes, over plain TCP and inside a Noise XX link as natter's.

use super::chat::{Chat, Server};
use super::child::{ChildSpec, Proc, Work};
use super::lines::Wire;
use super::report::{column, Figure, Goal, Section};
use super::Plan;
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;

pub fn run(plan: &Plan, dir: &Path) -> Result<Section> {
    let work = Work::Latency {
        pings: plan.latency_pings,
        warmup: plan.latency_warmup,
        size: plan.message_size,
    };
    let server = Server::start()?;
    let (mut natter, mut raw, mut noise) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 0..plan.reps {
        let mut chat = Chat::start(&server, dir, &format!("lat{rep}"), work, None)?;
        natter.push(chat.sender.result().context("latency, natter")?);
        chat.end()?;
        raw.push(raw_run(work, Wire::Plain).context("latency, raw TCP")?);
        noise.push(raw_run(work, Wire::Noise).context("latency, raw TCP + Noise")?);
    }
    server.proc.finish()?;
    let mut section = Section::new(
        "latency",
        format!(
            "{} messages of {} bytes one at a time, send → receipt, between two processes ({} warm-up)",
            plan.latency_pings, plan.message_size, plan.latency_warmup
        ),
    );
    section.figures.push(
        Figure::lower(
            "send → receipt p50",
            "µs",
            column(&natter, "p50_us"),
            Some(column(&raw, "p50_us")),
            Some(Goal::RatioAtMost(1.3)),
        )
        .with_noise(column(&noise, "p50_us"))
        .goal(Goal::NoiseRatioAtMost(1.15)),
    );
    section.figures.push(
        Figure::lower(
            "send → receipt p99",
            "µs",
            column(&natter, "p99_us"),
            Some(column(&raw, "p99_us")),
            None,
        )
        .with_noise(column(&noise, "p99_us")),
    );
    section.extra = json!({ "natter": natter, "raw": raw, "raw_noise": noise });
    Ok(section)
}

/// A raw receiver and a raw sender, two processes; the sender's result.
pub fn raw_run(work: Work, wire: Wire) -> Result<Value> {
    let mut receiver = Proc::bench_child("raw receiver", &ChildSpec::RawReceiver { wire })?;
    let hello = receiver.recv()?;
    let addr: SocketAddr = serde_json::from_value(hello["addr"].clone())?;
    let spec = ChildSpec::RawSender { addr, work, wire };
    let mut sender = Proc::bench_child("raw sender", &spec)?;
    let result = sender.result()?;
    sender.finish()?;
    receiver.finish()?;
    Ok(result)
}
