//! Section 2, chat throughput: a burst of 100-byte messages through the
//! sending peer's line channel (64 in flight at most, the peer's window),
//! each one written to both transcripts and acknowledged; against raw JSON
//! messages with acks, 64 in flight, over plain TCP and inside a Noise XX
//! link as natter's. Afterwards both transcripts are read back and checked
//! complete and in order.

use super::chat::{verify_transcript, Chat, Server};
use super::child::Work;
use super::latency::raw_run;
use super::lines::Wire;
use super::report::{column, Figure, Goal, Section};
use super::Plan;
use anyhow::{Context, Result};
use serde_json::json;
use std::path::Path;

pub fn run(plan: &Plan, dir: &Path) -> Result<Section> {
    let count = plan.burst;
    let work = Work::Burst {
        count,
        size: plan.message_size,
        window: plan.window,
    };
    let server = Server::start()?;
    let (mut natter, mut raw, mut noise) = (Vec::new(), Vec::new(), Vec::new());
    let mut problems = Vec::new();
    let mut printed_all = true;
    let mut max_in_flight = 0;
    for rep in 0..plan.reps {
        let chat = Chat::start(&server, dir, &format!("thr{rep}"), work, None)?;
        let mut chat = chat;
        let result = chat.sender.result().context("throughput, natter")?;
        let (tx_dir, rx_dir) = (chat.sender_dir.clone(), chat.receiver_dir.clone());
        let printed = chat.end()?;
        printed_all &= printed == count as u64;
        max_in_flight = max_in_flight.max(result["max_in_flight"].as_u64().unwrap_or(u64::MAX));
        problems.extend(verify_transcript(
            &tx_dir,
            count as u64,
            &["sent", "delivered"],
        )?);
        problems.extend(verify_transcript(&rx_dir, count as u64, &["received"])?);
        // Transcripts are checked; free the disk for the next repetition.
        let _ = std::fs::remove_dir_all(&tx_dir);
        let _ = std::fs::remove_dir_all(&rx_dir);
        natter.push(result);
        raw.push(raw_run(work, Wire::Plain).context("throughput, raw TCP")?);
        noise.push(raw_run(work, Wire::Noise).context("throughput, raw TCP + Noise")?);
    }
    server.proc.finish()?;
    let mut section = Section::new(
        "throughput",
        format!(
            "a burst of {count} messages of {} bytes, {} in flight at most, every one in both transcripts and acknowledged",
            plan.message_size, plan.window
        ),
    );
    section.figures.push(
        Figure::higher(
            "acknowledged messages/s",
            "msg/s",
            column(&natter, "msgs_per_s"),
            Some(column(&raw, "msgs_per_s")),
            Some(Goal::NoiseRatioAtLeast(0.8)),
        )
        .with_noise(column(&noise, "msgs_per_s")),
    );
    section.check(
        "transcripts complete and in order",
        problems.is_empty(),
        if problems.is_empty() {
            format!("both transcripts of every repetition hold messages 1..={count} in order (sender: sent and delivered; receiver: received)")
        } else {
            problems.join("; ")
        },
    );
    section.check(
        "receiver printed every message",
        printed_all,
        format!("the receiving `natter peer --json` printed {count} message events each time"),
    );
    section.check(
        "window respected",
        max_in_flight <= (plan.window + plan.max_waiting) as u64,
        format!(
            "at most {max_in_flight} messages taken without receipt (window {} on the wire, {} more waiting; no sender was cut for exceeding the window)",
            plan.window, plan.max_waiting
        ),
    );
    section.extra = json!({ "natter": natter, "raw": raw, "raw_noise": noise });
    Ok(section)
}
