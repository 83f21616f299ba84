//! What every scenario shares: a counting allocator for peak memory, timing helpers,
//! /proc readings of a child process, and the table of targets.

use std::time::{Duration, Instant};

use peak_alloc::PeakAlloc;

/// The system allocator, counting live bytes and their peak (the `peak_alloc` crate).
#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// Live heap bytes now.
pub fn live_bytes() -> usize {
    ALLOC.current_usage()
}

/// Runs `f` and returns its result with the peak of live heap bytes above what was live
/// when it started.
pub fn peak_extra<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = ALLOC.current_usage();
    ALLOC.reset_peak_usage();
    let out = f();
    (out, ALLOC.peak_usage().saturating_sub(base))
}

/// Median wall time of `runs` calls of `f` (after one warm-up call).
pub fn median_time(runs: usize, mut f: impl FnMut()) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// Times several cases round after round (A, B, C, A, B, C, ...) after one untimed
/// warm-up round, so a slow spell of a shared machine falls on every case alike. Each
/// case times itself, leaving out its own set-up; the result is each case's times in
/// round order.
pub fn rounds(runs: usize, cases: &mut [&mut dyn FnMut() -> Duration]) -> Vec<Vec<Duration>> {
    for case in cases.iter_mut() {
        case();
    }
    let mut times = vec![Vec::with_capacity(runs); cases.len()];
    for _ in 0..runs {
        for (case, times) in cases.iter_mut().zip(&mut times) {
            times.push(case());
        }
    }
    times
}

/// The median of some times.
pub fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

/// How fast `measured` ran next to `floor`, as the median over rounds of
/// `floor / measured`: each round's pair ran back to back, under the same load.
pub fn median_ratio(floor: &[Duration], measured: &[Duration]) -> f64 {
    let mut ratios: Vec<f64> =
        floor.iter().zip(measured).map(|(f, m)| f.as_secs_f64() / m.as_secs_f64()).collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

/// Figures of a process from /proc: CPU time, peak and current resident memory.
#[derive(Debug, Clone, Copy)]
pub struct ProcStats {
    pub cpu: Duration,
    pub hwm_bytes: u64,
    pub rss_bytes: u64,
}

pub fn proc_stats(pid: u32) -> std::io::Result<ProcStats> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
    let ticks: u64 = fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
    let hz = clock_ticks_per_second();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(ProcStats {
        cpu: Duration::from_secs_f64(ticks as f64 / hz as f64),
        hwm_bytes: kib("VmHWM:") * 1024,
        rss_bytes: kib("VmRSS:") * 1024,
    })
}

fn clock_ticks_per_second() -> u64 {
    // USER_HZ; `getconf CLK_TCK` is 100 on every Linux this runs on, but ask anyway.
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// How a measured value is judged against its target.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    /// The value must be at most the target.
    AtMost(f64),
    /// The value must be at least the target.
    AtLeast(f64),
    /// Reported only.
    Info,
}

pub struct Row {
    pub scenario: String,
    pub what: String,
    pub unit: &'static str,
    pub value: f64,
    pub goal: Goal,
}

impl Row {
    /// Measured over target, written so that above 1 is better for at-least goals and
    /// below 1 is better for at-most goals.
    fn ratio(&self) -> Option<f64> {
        match self.goal {
            Goal::AtMost(t) | Goal::AtLeast(t) if t != 0.0 => Some(self.value / t),
            _ => None,
        }
    }

    fn verdict(&self) -> &'static str {
        match self.goal {
            Goal::AtMost(t) if self.value <= t => "PASS",
            Goal::AtLeast(t) if self.value >= t => "PASS",
            Goal::Info => "",
            _ => "MISS",
        }
    }
}

#[derive(Default)]
pub struct Report {
    pub rows: Vec<Row>,
}

impl Report {
    pub fn add(&mut self, scenario: &str, what: &str, unit: &'static str, value: f64, goal: Goal) {
        let row = Row { scenario: scenario.to_owned(), what: what.to_owned(), unit, value, goal };
        println!("  {}", line(&row));
        self.rows.push(row);
    }

    pub fn print(&self) {
        println!();
        println!("{:<4} {:<58} {:>14} {:>14} {:>7}  verdict", "#", "measure", "value", "target", "ratio");
        for row in &self.rows {
            println!("{}", line(row));
        }
        let misses = self.rows.iter().filter(|r| r.verdict() == "MISS").count();
        let checked = self.rows.iter().filter(|r| !matches!(r.goal, Goal::Info)).count();
        println!("\n{} of {} targets met", checked - misses, checked);
    }
}

fn line(row: &Row) -> String {
    let target = match row.goal {
        Goal::AtMost(t) => format!("<= {}", num(t)),
        Goal::AtLeast(t) => format!(">= {}", num(t)),
        Goal::Info => String::new(),
    };
    let ratio = row.ratio().map_or(String::new(), |r| format!("{r:.2}"));
    format!(
        "{:<4} {:<58} {:>14} {:>14} {:>7}  {}",
        row.scenario,
        row.what,
        format!("{} {}", num(row.value), row.unit),
        target,
        ratio,
        row.verdict()
    )
}

fn num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

pub const MB: f64 = 1024.0 * 1024.0;

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
