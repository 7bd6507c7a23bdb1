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
    /// natter / baseline ≤ x.
    RatioAtMost(f64),
    /// natter / baseline ≥ x.
    RatioAtLeast(f64),
    /// natter's median ≤ x (in the figure's unit).
    AtMost(f64),
    /// natter's median < x.
    Below(f64),
}

impl Goal {
    fn text(self, unit: &str) -> String {
        match self {
            Goal::RatioAtMost(x) => format!("ratio ≤ {x}"),
            Goal::RatioAtLeast(x) => format!("ratio ≥ {x}"),
            Goal::AtMost(x) => format!("≤ {x} {unit}"),
            Goal::Below(x) => format!("< {x} {unit}"),
        }
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
    pub goal: Option<Goal>,
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
            goal,
        }
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

    pub fn met(&self) -> Option<bool> {
        let value = median(&self.natter);
        Some(match self.goal? {
            Goal::RatioAtMost(x) => self.ratio()? <= x,
            Goal::RatioAtLeast(x) => self.ratio()? >= x,
            Goal::AtMost(x) => value <= x,
            Goal::Below(x) => value < x,
        })
    }

    fn json(&self) -> Value {
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
            "goal": self.goal.map(|g| g.text(self.unit)),
            "met": self.met(),
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

/// The whole run.
pub struct Report {
    date: SystemTime,
    plan: Plan,
    sections: Vec<Section>,
    pub elapsed: Duration,
}

impl Report {
    pub fn new(date: SystemTime, plan: Plan) -> Self {
        Report {
            date,
            plan,
            sections: Vec::new(),
            elapsed: Duration::ZERO,
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
                        match (f.goal, f.met()) {
                            (Some(goal), Some(met)) => format!(
                                "{} {}",
                                goal.text(f.unit),
                                if met { "met" } else { "NOT MET" }
                            ),
                            _ => String::new(),
                        },
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
                    "figures": s.figures.iter().map(Figure::json).collect::<Vec<_>>(),
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

fn num(x: f64) -> String {
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
