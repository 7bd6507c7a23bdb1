//! Statistics, the table and the JSON document of `natter bench`.

use super::Plan;
use serde_json::{json, Value};
use std::fmt::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One figure's value in each repetition's JSON result (`NaN` if absent).
pub fn column(reps: &[Value], key: &str) -> Vec<f64> {
    reps.iter()
        .map(|r| r[key].as_f64().unwrap_or(f64::NAN))
        .collect()
}

/// Nearest-rank percentile of sorted samples (NaN when empty).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Median of unsorted values (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn min(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// A goal from the issue.
#[derive(Clone, Copy, Debug)]
pub enum Goal {
    /// natter / raw TCP ≤ x.
    RatioAtMost(f64),
    /// natter / (raw TCP + Noise) ≤ x.
    NoiseRatioAtMost(f64),
    /// natter / (raw TCP + Noise) ≥ x.
    NoiseRatioAtLeast(f64),
    /// natter's median ≤ x (in the figure's unit).
    AtMost(f64),
}

impl Goal {
    pub fn text(self, unit: &str) -> String {
        match self {
            Goal::RatioAtMost(x) => format!("ratio ≤ {x}"),
            Goal::NoiseRatioAtMost(x) => format!("ratio +N ≤ {x}"),
            Goal::NoiseRatioAtLeast(x) => format!("ratio +N ≥ {x}"),
            Goal::AtMost(x) => format!("≤ {x} {unit}"),
        }
    }

    /// Whether `figure` reaches the goal (`None`: a baseline is missing).
    fn met(self, figure: &Figure) -> Option<bool> {
        let value = median(&figure.natter);
        Some(match self {
            Goal::RatioAtMost(x) => figure.ratio()? <= x,
            Goal::NoiseRatioAtMost(x) => figure.noise_ratio()? <= x,
            Goal::NoiseRatioAtLeast(x) => figure.noise_ratio()? >= x,
            Goal::AtMost(x) => value <= x,
        })
    }
}

/// One figure: natter's value per repetition, the raw-TCP baseline's and
/// the raw TCP + Noise baseline's.
#[derive(Clone, Debug)]
pub struct Figure {
    pub name: String,
    pub unit: &'static str,
    pub higher_is_better: bool,
    pub natter: Vec<f64>,
    pub baseline: Option<Vec<f64>>,
    /// The same baseline inside a Noise XX link, as natter's links are:
    /// natter against it is what natter costs beyond encryption.
    pub noise: Option<Vec<f64>>,
    /// Every goal the figure has (issue 13 gives the latency two).
    pub goals: Vec<Goal>,
}

impl Figure {
    pub fn higher(
        name: &str,
        unit: &'static str,
        natter: Vec<f64>,
        baseline: Option<Vec<f64>>,
        goal: Option<Goal>,
    ) -> Self {
        Figure {
            name: name.to_string(),
            unit,
            higher_is_better: true,
            natter,
            baseline,
            noise: None,
            goals: goal.into_iter().collect(),
        }
    }

    /// With one more goal.
    pub fn goal(mut self, goal: Goal) -> Self {
        self.goals.push(goal);
        self
    }

    /// With a raw TCP + Noise baseline too.
    pub fn with_noise(self, noise: Vec<f64>) -> Self {
        Figure {
            noise: Some(noise),
            ..self
        }
    }

    pub fn lower(
        name: &str,
        unit: &'static str,
        natter: Vec<f64>,
        baseline: Option<Vec<f64>>,
        goal: Option<Goal>,
    ) -> Self {
        Figure {
            higher_is_better: false,
            ..Figure::higher(name, unit, natter, baseline, goal)
        }
    }

    /// natter's median over the baseline's.
    pub fn ratio(&self) -> Option<f64> {
        self.baseline
            .as_ref()
            .map(|b| median(&self.natter) / median(b))
    }

    /// natter's median over the raw TCP + Noise baseline's.
    pub fn noise_ratio(&self) -> Option<f64> {
        self.noise
            .as_ref()
            .map(|b| median(&self.natter) / median(b))
    }

    /// Each goal with whether it is met.
    pub fn verdicts(&self) -> Vec<(Goal, Option<bool>)> {
        self.goals.iter().map(|&g| (g, g.met(self))).collect()
    }

    /// The goal column: each goal, and (unless `judged` is false: the
    /// machine was loaded) met or not.
    fn goal_text(&self, judged: bool) -> String {
        let goals: Vec<String> = self
            .verdicts()
            .into_iter()
            .map(|(goal, met)| match (judged, met) {
                (true, Some(true)) => format!("{} met", goal.text(self.unit)),
                (true, Some(false)) => format!("{} NOT MET", goal.text(self.unit)),
                _ => goal.text(self.unit),
            })
            .collect();
        let mut text = goals.join(", ");
        if !judged && !goals.is_empty() {
            text.push_str(" (no verdict: loaded)");
        }
        text
    }

    fn json(&self, judged: bool) -> Value {
        let stats =
            |v: &[f64]| json!({ "median": median(v), "min": min(v), "max": max(v), "reps": v });
        json!({
            "name": self.name,
            "unit": self.unit,
            "better": if self.higher_is_better { "higher" } else { "lower" },
            "natter": stats(&self.natter),
            "baseline": self.baseline.as_deref().map(stats),
            "ratio": self.ratio(),
            "noise_baseline": self.noise.as_deref().map(stats),
            "noise_ratio": self.noise_ratio(),
            "goals": self.verdicts().into_iter().map(|(goal, met)| json!({
                "goal": goal.text(self.unit),
                "met": if judged { met } else { None },
            })).collect::<Vec<_>>(),
        })
    }
}

/// A pass/fail observation that is not a timing (complete transcripts, no
/// stale entry, bounded memory).
#[derive(Clone, Debug)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// One section of the issue.
#[derive(Clone, Debug)]
pub struct Section {
    pub name: &'static str,
    pub what: String,
    pub figures: Vec<Figure>,
    pub checks: Vec<Check>,
    /// Raw per-repetition results, for the JSON document.
    pub extra: Value,
    /// The table's headings of the natter and baseline columns, where
    /// the section compares something else (the cluster section: three
    /// servers against one).
    pub columns: [&'static str; 2],
}

impl Section {
    pub fn new(name: &'static str, what: String) -> Self {
        Section {
            name,
            what,
            figures: Vec::new(),
            checks: Vec::new(),
            extra: Value::Null,
            columns: ["natter", "raw TCP"],
        }
    }

    pub fn check(&mut self, name: &str, ok: bool, detail: String) {
        self.checks.push(Check {
            name: name.to_string(),
            ok,
            detail,
        });
    }
}

/// A 1-minute load average per CPU above this at the start means other
/// work is running: the ratios then move with it (docs/BENCH.md, "Load
/// changes the latency ratio"), and no goal is judged.
pub const LOADED_PER_CPU: f64 = 0.5;

/// The whole run.
pub struct Report {
    date: SystemTime,
    plan: Plan,
    sections: Vec<Section>,
    pub elapsed: Duration,
    /// The 1-minute load average when the run started (NaN if unknown).
    load_at_start: f64,
    cpus: usize,
}

impl Report {
    pub fn new(date: SystemTime, plan: Plan) -> Self {
        Report {
            date,
            plan,
            sections: Vec::new(),
            elapsed: Duration::ZERO,
            load_at_start: load_average(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    /// Whether the machine was quiet enough at the start for verdicts.
    pub fn judged(&self) -> bool {
        self.load_at_start.is_finite() && self.load_at_start <= self.load_limit()
    }

    fn load_limit(&self) -> f64 {
        LOADED_PER_CPU * self.cpus as f64
    }

    fn load_text(&self) -> String {
        if self.judged() {
            format!(
                "load average {:.2} at the start (quiet: at most {:.1} on {} CPUs)",
                self.load_at_start,
                self.load_limit(),
                self.cpus
            )
        } else {
            format!(
                "load average {:.2} at the start, above {:.1} on {} CPUs: the machine is loaded, \
                 the ratios move with the load, so NO VERDICT is printed; rerun on a quiet machine",
                self.load_at_start,
                self.load_limit(),
                self.cpus
            )
        }
    }

    pub fn push(&mut self, section: Section) {
        self.sections.push(section);
    }

    fn date_text(&self) -> String {
        let since = self.date.duration_since(UNIX_EPOCH).unwrap_or_default();
        natter_core::time::rfc3339_millis(Duration::from_secs(since.as_secs()))
    }

    pub fn table(&self) -> String {
        let machine = Machine::read();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "natter bench — {} — {} CPUs ({}), {} build, {} repetitions{} — {:.0} s",
            self.date_text(),
            machine.cpus,
            machine.cpu_model,
            build(),
            self.plan.reps,
            if self.plan.quick { ", --quick" } else { "" },
            self.elapsed.as_secs_f64(),
        );
        let _ = writeln!(
            out,
            "medians over the repetitions [min–max]; ratio = natter median / raw-TCP median; \
             ratio +N = natter median / (raw TCP + Noise XX) median"
        );
        let _ = writeln!(out, "{}", self.load_text());
        let judged = self.judged();
        for section in &self.sections {
            let _ = writeln!(out, "\n== {}: {}", section.name, section.what);
            let values = |v: Option<&[f64]>, unit| v.map_or("—".to_string(), |v| spread(v, unit));
            let ratio = |r: Option<f64>| r.map_or("—".to_string(), |r| format!("{r:.2}"));
            let rows: Vec<[String; 7]> = section
                .figures
                .iter()
                .map(|f| {
                    [
                        f.name.clone(),
                        spread(&f.natter, f.unit),
                        values(f.baseline.as_deref(), f.unit),
                        values(f.noise.as_deref(), f.unit),
                        ratio(f.ratio()),
                        ratio(f.noise_ratio()),
                        f.goal_text(judged),
                    ]
                })
                .collect();
            let header = [
                "figure",
                section.columns[0],
                section.columns[1],
                "raw TCP + Noise",
                "ratio",
                "ratio +N",
                "goal",
            ]
            .map(String::from);
            // The Noise columns only where some figure has that baseline.
            let noise = section.figures.iter().any(|f| f.noise.is_some());
            let shown = [true, true, true, noise, true, noise, true];
            let mut widths = [0usize; 7];
            for row in std::iter::once(&header).chain(&rows) {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            // A section with no figure (skipped) shows no empty table.
            let table = if rows.is_empty() { &[][..] } else { &rows[..] };
            for row in std::iter::once(&header)
                .chain(table)
                .skip(usize::from(table.is_empty()))
            {
                let mut line = String::new();
                for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
                    let pad = " ".repeat(w - cell.chars().count());
                    match i {
                        _ if !shown[i] => {}
                        0 | 6 => {
                            let _ = write!(line, "{cell}{pad}  ");
                        }
                        _ => {
                            let _ = write!(line, "{pad}{cell}  ");
                        }
                    }
                }
                let _ = writeln!(out, "  {}", line.trim_end());
            }
            for check in &section.checks {
                let mark = if check.ok { "ok  " } else { "FAIL" };
                let _ = writeln!(out, "  [{mark}] {}: {}", check.name, check.detail);
            }
        }
        self.goals_summary(&mut out);
        out
    }

    /// The closing list: every goal of the run, with its figure and
    /// whether it is met (or why there is no verdict).
    fn goals_summary(&self, out: &mut String) {
        let judged = self.judged();
        let _ = writeln!(
            out,
            "\n== goals (issues 12 and 13){}",
            if judged {
                ""
            } else {
                ": no verdict, the machine was loaded"
            }
        );
        for section in &self.sections {
            for figure in &section.figures {
                for (goal, met) in figure.verdicts() {
                    let value = match goal {
                        Goal::RatioAtMost(_) => figure
                            .ratio()
                            .map_or("?".into(), |r| format!("ratio {r:.2}")),
                        Goal::NoiseRatioAtMost(_) | Goal::NoiseRatioAtLeast(_) => figure
                            .noise_ratio()
                            .map_or("?".into(), |r| format!("ratio +N {r:.2}")),
                        Goal::AtMost(_) => {
                            format!("{} {}", num(median(&figure.natter)), figure.unit)
                        }
                    };
                    let verdict = match (judged, met) {
                        (false, _) => "no verdict",
                        (true, Some(true)) => "met",
                        (true, Some(false)) => "NOT MET",
                        (true, None) => "no baseline",
                    };
                    let _ = writeln!(
                        out,
                        "  {:<10} {}: {} — goal {}: {verdict}",
                        section.name,
                        figure.name,
                        value,
                        goal.text(figure.unit)
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "  {:<10} memory per registration at 1,000,000 — goal ≤ 400 B: \
             `cargo bench -p natter-core --bench registry` prints it",
            "core"
        );
    }

    /// Today's figures beside those of an earlier `--json` document.
    pub fn compare(&self, earlier: &Value, source: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n== compared with {source}: the run of {} ({}, load average {} at its start)",
            earlier["date"].as_str().unwrap_or("?"),
            earlier["build"].as_str().unwrap_or("?"),
            earlier["load_average_at_start"]
                .as_f64()
                .map_or("unknown".to_string(), |l| format!("{l:.2}")),
        );
        let header = [
            "figure",
            "then",
            "now",
            "change",
            "ratio then → now",
            "ratio +N then → now",
        ]
        .map(String::from);
        let mut rows = vec![header];
        for section in &self.sections {
            let figures = earlier["sections"][section.name]["figures"].as_array();
            for f in &section.figures {
                let then =
                    figures.and_then(|all| all.iter().find(|e| e["name"] == f.name.as_str()));
                let now = median(&f.natter);
                let then_median = then.and_then(|e| e["natter"]["median"].as_f64());
                let change = then_median.map_or("—".to_string(), |t| {
                    format!("{:+.0} %", (now / t - 1.0) * 100.0)
                });
                let pair = |key: &str, today: Option<f64>| {
                    let before = then.and_then(|e| e[key].as_f64());
                    let show = |r: Option<f64>| r.map_or("—".to_string(), |r| format!("{r:.2}"));
                    format!("{} → {}", show(before), show(today))
                };
                rows.push([
                    format!("{} {}", section.name, f.name),
                    then_median.map_or("—".to_string(), |t| format!("{} {}", num(t), f.unit)),
                    format!("{} {}", num(now), f.unit),
                    change,
                    pair("ratio", f.ratio()),
                    pair("noise_ratio", f.noise_ratio()),
                ]);
            }
        }
        let mut widths = [0usize; 6];
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for row in &rows {
            let mut line = String::new();
            for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
                let pad = " ".repeat(w - cell.chars().count());
                if i == 0 {
                    let _ = write!(line, "{cell}{pad}  ");
                } else {
                    let _ = write!(line, "{pad}{cell}  ");
                }
            }
            let _ = writeln!(out, "  {}", line.trim_end());
        }
        out
    }

    pub fn json(&self) -> String {
        let machine = Machine::read();
        let mut sections = serde_json::Map::new();
        for s in &self.sections {
            sections.insert(
                s.name.to_string(),
                json!({
                    "what": s.what,
                    "figures": s.figures.iter().map(|f| f.json(self.judged())).collect::<Vec<_>>(),
                    "checks": s.checks.iter().map(|c| json!({
                        "name": c.name, "ok": c.ok, "detail": c.detail,
                    })).collect::<Vec<_>>(),
                    "runs": s.extra,
                }),
            );
        }
        let doc = json!({
            "date": self.date_text(),
            "machine": { "cpus": machine.cpus, "cpu_model": machine.cpu_model, "kernel": machine.kernel },
            "build": build(),
            "quick": self.plan.quick,
            "reps": self.plan.reps,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "load_average_at_start": self.load_at_start,
            "loaded": !self.judged(),
            "sections": sections,
        });
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    }
}

fn build() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

/// `median [min–max] unit`, with a precision that suits the magnitude.
fn spread(values: &[f64], unit: &str) -> String {
    format!(
        "{} [{}–{}] {unit}",
        num(median(values)),
        num(min(values)),
        num(max(values))
    )
}

/// A number with a precision that suits its magnitude.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        "?".to_string()
    } else if x.abs() >= 1000.0 {
        let whole = x.round() as i64;
        let digits = whole.abs().to_string();
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(c);
        }
        if whole < 0 {
            grouped.insert(0, '-');
        }
        grouped
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// The 1-minute load average from /proc/loadavg (NaN where there is none).
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// What the figures were taken on.
struct Machine {
    cpus: usize,
    cpu_model: String,
    kernel: String,
}

impl Machine {
    fn read() -> Self {
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, m)| m.trim().to_string())
            })
            .unwrap_or_else(|| "unknown CPU".to_string());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| format!("Linux {}", k.trim()))
            .unwrap_or_else(|_| std::env::consts::OS.to_string());
        Machine {
            cpus,
            cpu_model,
            kernel,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan::new(&super::super::BenchArgs {
            json: false,
            quick: true,
            reps: Some(1),
            only: Vec::new(),
            compare: None,
        })
    }

    /// A report of one latency figure (natter 60 µs, raw 50, raw + Noise
    /// 55) taken at the given load average on 2 CPUs.
    fn report(load: f64, natter: f64) -> Report {
        let mut report = Report::new(UNIX_EPOCH, plan());
        report.load_at_start = load;
        report.cpus = 2;
        let mut section = Section::new("latency", "pings".into());
        section.figures.push(
            Figure::lower(
                "send → receipt p50",
                "µs",
                vec![natter],
                Some(vec![50.0]),
                Some(Goal::RatioAtMost(1.3)),
            )
            .with_noise(vec![55.0])
            .goal(Goal::NoiseRatioAtMost(1.15)),
        );
        report.push(section);
        report
    }

    #[test]
    fn a_quiet_run_judges_every_goal_of_a_figure() {
        let table = report(0.2, 60.0).table();
        assert!(
            table.contains("ratio ≤ 1.3 met, ratio +N ≤ 1.15 met"),
            "{table}"
        );
        assert!(
            table.contains("ratio +N 1.09 — goal ratio +N ≤ 1.15: met"),
            "{table}"
        );
        let table = report(0.2, 70.0).table();
        assert!(
            table.contains("ratio ≤ 1.3 NOT MET, ratio +N ≤ 1.15 NOT MET"),
            "{table}"
        );
    }

    #[test]
    fn a_loaded_machine_gets_no_verdict_and_is_told_so() {
        let report = report(3.5, 60.0);
        let table = report.table();
        assert!(table.contains("load average 3.50 at the start"), "{table}");
        assert!(table.contains("NO VERDICT"), "{table}");
        assert!(!table.contains(" met"), "{table}");
        let doc: Value = serde_json::from_str(&report.json()).unwrap();
        assert_eq!(doc["loaded"], true);
        let goals = &doc["sections"]["latency"]["figures"][0]["goals"];
        assert_eq!(goals[0]["goal"], "ratio ≤ 1.3");
        assert!(goals[0]["met"].is_null(), "{goals}");
    }

    #[test]
    fn compare_prints_an_earlier_json_run_beside_today() {
        let earlier: Value = serde_json::from_str(&report(0.1, 100.0).json()).unwrap();
        let today = report(0.1, 60.0).compare(&earlier, "before.json");
        assert!(today.contains("compared with before.json"), "{today}");
        let row = today
            .lines()
            .find(|l| l.contains("latency send → receipt p50"))
            .unwrap_or_else(|| panic!("no row in {today}"));
        for cell in ["100 µs", "60.0 µs", "-40 %", "2.00 → 1.20", "1.82 → 1.09"] {
            assert!(row.contains(cell), "{cell} not in {row}");
        }
    }
}
