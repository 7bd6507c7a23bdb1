//! `natter bench --quick --json` runs to the end and reports every section
//! with numbers, and the sections that measure encryption's cost with a
//! raw TCP + Noise baseline from the same run. No figure is compared with
//! anything: timings depend on the machine, and the bench is not a test.

#![cfg(target_os = "linux")]

use serde_json::Value;
use std::io::Write;
use std::process::Command;

/// Sections where every figure has a raw TCP + Noise baseline.
const WITH_NOISE: [&str; 4] = ["handshake", "latency", "throughput", "registry"];

#[test]
fn quick_bench_reports_every_section_with_numeric_figures_and_noise_baselines() {
    let output = Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(["bench", "--quick", "--json", "--reps", "1"])
        .env_remove("RUST_LOG")
        .output()
        .expect("run natter bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "natter bench failed: {stderr}");
    let doc: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert!(doc["load_average_at_start"].is_number(), "{doc:#}");
    // Issue 13's goals, each with a verdict (or none on a loaded machine).
    let goals: Vec<&str> = doc["sections"]
        .as_object()
        .expect("sections")
        .values()
        .flat_map(|s| s["figures"].as_array().into_iter().flatten())
        .flat_map(|f| f["goals"].as_array().into_iter().flatten())
        .filter_map(|g| g["goal"].as_str())
        .collect();
    for goal in [
        "ratio ≤ 1.3",
        "ratio +N ≤ 1.15",
        "ratio +N ≥ 0.8",
        "≤ 4 KiB",
        "≤ 5 ms",
        "≤ 8 ms",
        // Issue 12's presence goals.
        "≤ 0.5 core",
        "≤ 5 frames/s",
    ] {
        assert!(goals.contains(&goal), "goal {goal} missing: {goals:?}");
    }
    // The cluster section needs a nats-server; without one it says so.
    let cluster = &doc["sections"]["cluster"];
    let skipped = cluster["what"]
        .as_str()
        .is_some_and(|w| w.starts_with("skipped:"));
    if skipped {
        let _ = writeln!(
            std::io::stderr(),
            "skipped: the bench's cluster section: {}",
            cluster["what"]
        );
    }
    let sections = [
        "handshake",
        "latency",
        "throughput",
        "registry",
        "presence",
        "flood",
        "cluster",
    ];
    for section in sections.into_iter().filter(|s| *s != "cluster" || !skipped) {
        let figures = doc["sections"][section]["figures"]
            .as_array()
            .unwrap_or_else(|| panic!("section {section} missing in {doc:#}"));
        assert!(!figures.is_empty(), "{section} has no figures");
        for figure in figures {
            let median = &figure["natter"]["median"];
            assert!(median.is_number(), "{section}: {figure:#}");
            if !figure["baseline"].is_null() {
                assert!(figure["baseline"]["median"].is_number(), "{figure:#}");
                assert!(figure["ratio"].is_number(), "{figure:#}");
            }
            if WITH_NOISE.contains(&section) {
                assert!(
                    figure["noise_baseline"]["median"].is_number(),
                    "{section}: no raw TCP + Noise baseline in {figure:#}"
                );
                assert!(figure["noise_ratio"].is_number(), "{figure:#}");
            }
        }
    }
}
