//! Section 5, memory under a flood: a sending peer sends as fast as it is
//! allowed to a receiving `natter peer --json` whose standard output is
//! read slowly (one line per millisecond: a slow terminal). The receiver's
//! memory must stay bounded, and the slowness must come back to the sender
//! as backpressure (its window of unacknowledged messages full, its input
//! no longer read) rather than as a queue that grows somewhere.
//!
//! There is no raw baseline here: the figures are bounds, not ratios.

use super::chat::{Chat, Server};
use super::child::{Pace, Work};
use super::peer_child::SAMPLE_EVERY;
use super::report::{Figure, Goal, Section};
use super::{wall_now, Plan};
use anyhow::{bail, Result};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How slowly the receiver's output is read: one line per this many µs.
const SLOW_TERMINAL_MICROS: u64 = 1_000;

/// The receiver's memory may grow by at most this much under the flood
/// (see docs/BENCH.md for where the bound comes from).
pub const RECEIVER_BOUND_MIB: f64 = 4.0;

/// The sender's memory may grow by at most this much: its window bounds
/// what it keeps.
pub const SENDER_BOUND_MIB: f64 = 4.0;

pub fn run(plan: &Plan, dir: &Path) -> Result<Section> {
    let server = Server::start()?;
    let pace: Pace = Arc::new(AtomicU64::new(SLOW_TERMINAL_MICROS));
    let work = Work::Flood {
        millis: plan.flood.as_millis() as u64,
        size: plan.message_size,
    };
    let mut chat = Chat::start(&server, dir, "flood", work, Some(Arc::clone(&pace)))?;
    let rx_start = chat.receiver.rss_kib()?;
    let start = wall_now();
    let mut printed = 0u64;
    let mut rx_samples = Vec::new();
    let result = 'flood: loop {
        while let Some(line) = chat.receiver.try_recv() {
            if line["event"] == "message" {
                printed += 1;
            }
        }
        while let Some(line) = chat.sender.try_recv() {
            if line.get("result").is_some() {
                break 'flood line["result"].clone();
            }
            if line.get("error").is_some() {
                bail!("the flooding peer failed: {line}");
            }
        }
        rx_samples.push(json!({
            "t_ms": start.elapsed().as_millis() as u64,
            "rss_kib": chat.receiver.rss_kib().unwrap_or(0),
            "printed": printed,
        }));
        if start.elapsed() > plan.flood + Duration::from_secs(60) {
            bail!("the flooding peer did not report");
        }
        std::thread::sleep(SAMPLE_EVERY);
    };
    let rx_max = rx_samples
        .iter()
        .filter_map(|s| s["rss_kib"].as_u64())
        .max()
        .unwrap_or(rx_start);
    // The flood is over: read the rest at full speed and end the chat.
    pace.store(0, Ordering::Relaxed);
    printed += chat.end()?;
    server.proc.finish()?;

    let samples = result["samples"].as_array().cloned().unwrap_or_default();
    let rss = |s: &Value| s["rss_kib"].as_u64().unwrap_or(0);
    let tx_start = samples.first().map_or(0, rss);
    let tx_max = samples.iter().map(rss).max().unwrap_or(0);
    let max_in_flight = result["max_in_flight"].as_u64().unwrap_or(u64::MAX);
    let delivered = result["delivered"].as_u64().unwrap_or(0);
    let printed_during = rx_samples
        .last()
        .and_then(|s| s["printed"].as_u64())
        .unwrap_or(0);
    let mib = |kib: u64| kib as f64 / 1024.0;
    let rx_growth = mib(rx_max.saturating_sub(rx_start));
    let tx_growth = mib(tx_max.saturating_sub(tx_start));
    let secs = plan.flood.as_secs_f64();

    let mut section = Section::new(
        "flood",
        format!(
            "{secs:.1} s of messages as fast as allowed to a receiver whose output is read at {} lines/s",
            1_000_000 / SLOW_TERMINAL_MICROS
        ),
    );
    section.figures.push(Figure::lower(
        "receiver RSS growth",
        "MiB",
        vec![rx_growth],
        None,
        Some(Goal::AtMost(RECEIVER_BOUND_MIB)),
    ));
    section.figures.push(Figure::lower(
        "sender RSS growth",
        "MiB",
        vec![tx_growth],
        None,
        Some(Goal::AtMost(SENDER_BOUND_MIB)),
    ));
    section.figures.push(Figure::lower(
        "sender, taken without receipt, max",
        "msgs",
        vec![max_in_flight as f64],
        None,
        Some(Goal::AtMost((plan.window + plan.max_waiting) as f64)),
    ));
    section.figures.push(Figure::lower(
        "acknowledged, not yet printed",
        "msgs",
        vec![delivered.saturating_sub(printed_during) as f64],
        None,
        None,
    ));
    section.figures.push(Figure::higher(
        "sender rate under the flood",
        "msg/s",
        vec![delivered as f64 / secs],
        None,
        None,
    ));
    section.check(
        "backpressure reaches the sender",
        max_in_flight <= (plan.window + plan.max_waiting) as u64 && tx_growth <= SENDER_BOUND_MIB,
        format!(
            "taken without receipt never above {max_in_flight} (window {} + {} waiting), sender RSS {:.1} → {:.1} MiB",
            plan.window,
            plan.max_waiting,
            mib(tx_start),
            mib(tx_max)
        ),
    );
    section.check(
        "receiver memory bounded",
        rx_growth <= RECEIVER_BOUND_MIB,
        format!(
            "receiver RSS {:.1} → {:.1} MiB (bound +{RECEIVER_BOUND_MIB} MiB); {delivered} messages acknowledged, {printed_during} printed during the flood, {printed} in all",
            mib(rx_start),
            mib(rx_max)
        ),
    );
    section.extra = json!({ "sender": result, "receiver_samples": rx_samples });
    Ok(section)
}
