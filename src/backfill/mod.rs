//! `wolkvox-exporter backfill`: reads the enabled reports' history once and writes it as
//! OpenMetrics stamped with the records' own time, for `promtool tsdb
//! create-blocks-from openmetrics`, and writes the state file the exporter then
//! continues from: the backfilled and the scraped samples are one series, with no
//! reset, nothing counted twice and nothing lost across the seam.
//!
//! Each operation's reports are read one after the other by the polling engine
//! (`Engine::backfill`: oldest window first, no overlap, the cap splits, the allowance,
//! pacing, one request per token, retries). Before the rows of each `--step` are
//! counted, the report's families are rendered and their changes kept
//! ([`timeline`]); [`output`] writes them densely. The progress is saved to
//! `<state>.backfill` every [`SAVE_EVERY`] and when stopped, so the same command resumes.

mod bars;
mod output;
mod progress;
pub mod timeline;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, DurationRound, NaiveDate, Utc};
use enum_map::EnumMap;
use indicatif::ProgressBar;
use tokio::sync::watch;

pub use bars::Bars;

use crate::clock::Clock;
use crate::config::{Config, OperationConfig};
use crate::engine::limits::{day_start, TokenLocks};
use crate::engine::{Ended, Engine, Saver, Shared};
use crate::metrics::{render_data, DataPart};
use crate::reports::agent_13::Agent13Counters;
use crate::reports::ReportName;
use crate::state::{self, StateFile};
use crate::store::{OperationStore, Store};
use progress::Settings;
use timeline::{agents_history, Grid, History, ReportTimeline};

/// How often the progress is saved while reading.
pub const SAVE_EVERY: Duration = Duration::from_secs(30);

/// Labels the exporter's own series carry: a target label of the same name would be
/// renamed `exported_...` by Prometheus.
const OWN_LABELS: &[&str] = &[
    "operation",
    "agent_id",
    "agent_name",
    "interaction",
    "le",
    "direction",
    "origin_agent_id",
    "destination",
    "type",
];

/// One end of the range: an operation-local day, or an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Day(NaiveDate),
    Instant(DateTime<Utc>),
}

impl FromStr for Bound {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(day) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Ok(Bound::Day(day));
        }
        DateTime::parse_from_rfc3339(s)
            .map(|t| Bound::Instant(t.with_timezone(&Utc)))
            .map_err(|_| {
                format!("{s:?} is neither a date (2026-11-01) nor an RFC 3339 instant (2026-11-01T08:00:00-05:00)")
            })
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bound::Day(d) => write!(f, "{d}"),
            Bound::Instant(t) => write!(f, "{}", t.to_rfc3339()),
        }
    }
}

/// The command's settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// The first day read (its local midnight), or the first instant.
    pub from: Bound,
    /// The last day read (included), or the instant the range ends (excluded); `None`:
    /// up to now less `--poll.delay`.
    pub to: Option<Bound>,
    pub step: Duration,
    pub output: PathBuf,
    /// The labels Prometheus attaches to the exporter's target.
    pub labels: Vec<(String, String)>,
}

/// Parses `--label=NAME=VALUE`.
pub fn parse_label(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=VALUE"))?;
    let valid = name
        .chars()
        .enumerate()
        .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    if name.is_empty() || !valid || name.starts_with("__") {
        return Err(format!(
            "{name:?} is not a label name Prometheus keeps ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"
        ));
    }
    if OWN_LABELS.contains(&name) {
        return Err(format!(
            "{name:?} is a label of the exporter's own series; a target label of that name becomes exported_{name}"
        ));
    }
    Ok((name.to_owned(), value.to_owned()))
}

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("the state file {} exists: the exporter has counted into it, so backfilled history would count its records twice. Point --state.path at a new file (and start the exporter on it afterwards), or move {} away to start over", .0.display(), .0.display())]
    StateExists(PathBuf),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Progress(String),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How an operation's backfill ended.
#[derive(Debug, Clone)]
pub struct OperationResult {
    pub name: String,
    pub ended: Ended,
    pub records: u64,
    pub requests: u64,
}

/// What the command did.
#[derive(Debug)]
pub struct Summary {
    pub operations: Vec<OperationResult>,
    /// Written when every operation is done.
    pub output: Option<output::Written>,
    pub progress_path: PathBuf,
}

impl Summary {
    pub fn done(&self) -> bool {
        self.output.is_some()
    }
}

/// Everything one run shares.
struct Run {
    config: Config,
    store: Arc<Store>,
    settings: Settings,
    grids: Vec<Grid>,
    /// Per operation, per report read, its timeline.
    timelines: Vec<EnumMap<ReportName, Option<Arc<Mutex<ReportTimeline>>>>>,
    progress_path: PathBuf,
    clock: Arc<dyn Clock>,
}

/// Runs the backfill until it is done or `shutdown` resolves (then the progress is
/// saved for the same command to resume).
pub async fn run(
    config: &Config,
    options: &Options,
    clock: Arc<dyn Clock>,
    bars: &Bars,
    shutdown: impl Future<Output = ()>,
) -> Result<Summary, BackfillError> {
    check_labels(&options.labels)?;
    if options.step < Duration::from_secs(1) {
        return Err(BackfillError::Usage("--step must be at least 1s".into()));
    }
    if options.step > Duration::from_secs(300) {
        tracing::warn!(
            step = %humantime::format_duration(options.step),
            "samples further apart than Prometheus's 5m lookback leave gaps in graphs of the backfilled range"
        );
    }
    let state_path = config.state_path.clone();
    if state_path.exists() {
        return Err(BackfillError::StateExists(state_path));
    }
    tokio::pin!(shutdown);
    // Polled once before any request, so that a signal handler it installs is in place.
    let mut stopping = tokio::select! {
        biased;
        _ = &mut shutdown => true,
        _ = std::future::ready(()) => false,
    };
    let run = Arc::new(prepare(config, options, clock).await?);
    let (stop_tx, stop_rx) = watch::channel(stopping);
    let mut tasks = tokio::task::JoinSet::new();
    let mut locks = TokenLocks::default();
    for (index, op_config) in run.config.operations.iter().enumerate() {
        let shared = Shared {
            token_lock: locks.get(&op_config.token),
            clock: run.clock.clone(),
            saver: Arc::new(Saver::disabled(run.store.clone(), run.clock.clone())),
            shutdown: stop_rx.clone(),
        };
        let bar = bars.add(&op_config.name);
        tasks.spawn(backfill_operation(run.clone(), index, shared, bar));
    }
    let mut results = Vec::new();
    let mut saves = tokio::time::interval_at(tokio::time::Instant::now() + SAVE_EVERY, SAVE_EVERY);
    while !tasks.is_empty() {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(Ok(result)) => results.push(result),
                Some(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                _ => {}
            },
            _ = saves.tick() => save_progress(&run).await?,
            _ = &mut shutdown, if !stopping => {
                tracing::info!("stopping: saving the progress so that the same command resumes");
                stopping = true;
                let _ = stop_tx.send(true);
            }
        }
    }
    results.sort_by_key(|r: &OperationResult| {
        run.config.operations.iter().position(|o| o.name == r.name)
    });
    let mut summary = Summary {
        operations: results,
        output: None,
        progress_path: run.progress_path.clone(),
    };
    if summary.operations.iter().all(|r| r.ended == Ended::Done) {
        summary.output = Some(finish(&run, options).await?);
    } else {
        save_progress(&run).await?;
    }
    Ok(summary)
}

fn check_labels(labels: &[(String, String)]) -> Result<(), BackfillError> {
    for needed in ["job", "instance"] {
        if !labels.iter().any(|(n, _)| n == needed) {
            return Err(BackfillError::Usage(format!(
                "--label={needed}=... is missing: backfilled series must carry the labels Prometheus attaches to the exporter's target (at least job and instance), or they are not the series it scrapes"
            )));
        }
    }
    for (i, (name, _)) in labels.iter().enumerate() {
        if labels[..i].iter().any(|(n, _)| n == name) {
            return Err(BackfillError::Usage(format!(
                "--label={name}=... is given twice"
            )));
        }
    }
    Ok(())
}

/// The range of each operation, its store and its timelines: new, or as an
/// interrupted run of the same command left them.
async fn prepare(
    config: &Config,
    options: &Options,
    clock: Arc<dyn Clock>,
) -> Result<Run, BackfillError> {
    let now = clock.now();
    let mut settings = Settings {
        from: options.from.to_string(),
        to: options.to.map(|t| t.to_string()),
        step_secs: options.step.as_secs() as i64,
        labels: options.labels.clone(),
        ranges: BTreeMap::new(),
    };
    for op in &config.operations {
        settings
            .ranges
            .insert(op.name.clone(), range(op, options, config, now)?);
    }
    let progress_path = progress::path_for(&config.state_path);
    let saved = progress::load(&progress_path).map_err(BackfillError::Progress)?;
    let (saved_state, mut histories) = match saved {
        None => (BTreeMap::new(), BTreeMap::new()),
        Some(saved) => {
            if !saved.settings.same_command(&settings) {
                return Err(BackfillError::Progress(format!(
                    "{} holds an interrupted backfill of another command ({}): run that command again to resume it, or delete the file to start over",
                    progress_path.display(),
                    describe(&saved.settings)
                )));
            }
            if settings.to.is_none() {
                settings.ranges = saved.settings.ranges.clone();
            }
            tracing::info!(path = %progress_path.display(), "resuming an interrupted backfill");
            (saved.state.operations, saved.histories)
        }
    };
    let cursors = cursors_of(&saved_state);
    let store = {
        let (config, now) = (config.clone(), now);
        tokio::task::spawn_blocking(move || state::restore_saved(&config, saved_state, now))
            .await
            .expect("restoring the store does not panic")
    };
    let mut grids = Vec::new();
    let mut timelines = Vec::new();
    for (op, op_config) in store.operations().iter().zip(&config.operations) {
        let (start, end) = settings.ranges[&op.name];
        let grid = Grid {
            start,
            end,
            step_secs: settings.step_secs,
            timezone: op.timezone,
        };
        let mut saved = histories.remove(&op.name).unwrap_or_default();
        let mut reports = EnumMap::default();
        for name in op_config.report_names() {
            if name == ReportName::agent_12 {
                continue;
            }
            let restored = op.ledger().reports[name].cursor;
            if restored != cursors.get(&(op.name.clone(), name)).copied().flatten() {
                return Err(BackfillError::Progress(format!(
                    "the configuration of operation {:?} changed since the backfill in {} was interrupted (report {name} cannot continue): delete the file to start over",
                    op.name,
                    progress_path.display()
                )));
            }
            let history = saved.remove(&name).unwrap_or_default();
            reports[name] = Some(Arc::new(Mutex::new(ReportTimeline::new(
                op.clone(),
                name,
                grid,
                history,
            ))));
        }
        grids.push(grid);
        timelines.push(reports);
    }
    Ok(Run {
        config: config.clone(),
        store: Arc::new(store),
        settings,
        grids,
        timelines,
        progress_path,
        clock,
    })
}

/// `[start, end)` of operation `op`: local days in its time zone, at most up to now
/// less `--poll.delay` (the exporter reads on from there).
fn range(
    op: &OperationConfig,
    options: &Options,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), BackfillError> {
    let tz = op.timezone;
    let second = chrono::Duration::seconds(1);
    let latest = (now - chrono::Duration::from_std(config.poll.delay).unwrap_or_default())
        .duration_trunc(second)
        .expect("truncating to seconds");
    let start = match options.from {
        Bound::Day(d) => day_start(d, tz),
        Bound::Instant(t) => t.duration_trunc(second).expect("truncating to seconds"),
    };
    let end = match options.to {
        Some(Bound::Day(d)) => day_start(d + chrono::Days::new(1), tz),
        Some(Bound::Instant(t)) => t.duration_trunc(second).expect("truncating to seconds"),
        None => latest,
    };
    let end = end.min(latest);
    if start >= end {
        return Err(BackfillError::Usage(format!(
            "nothing to read for operation {:?}: the range starts at {start} and ends at {end} (--to, or now less --poll.delay)",
            op.name
        )));
    }
    Ok((start, end))
}

fn describe(s: &Settings) -> String {
    let labels: Vec<_> = s
        .labels
        .iter()
        .map(|(n, v)| format!("--label={n}={v}"))
        .collect();
    format!(
        "--from={}{} --step={}s {} for operations {}",
        s.from,
        s.to.as_ref()
            .map_or(String::new(), |t| format!(" --to={t}")),
        s.step_secs,
        labels.join(" "),
        s.ranges.keys().cloned().collect::<Vec<_>>().join(", ")
    )
}

fn cursors_of(
    saved: &BTreeMap<String, state::OpState>,
) -> BTreeMap<(String, ReportName), Option<DateTime<Utc>>> {
    saved
        .iter()
        .flat_map(|(op, s)| {
            s.reports
                .iter()
                .map(move |(name, r)| ((op.clone(), *name), r.cursor))
        })
        .collect()
}

/// Reads every report of operation `index` over its range.
async fn backfill_operation(
    run: Arc<Run>,
    index: usize,
    shared: Shared,
    bar: ProgressBar,
) -> OperationResult {
    let op = run.store.operations()[index].clone();
    let grid = run.grids[index];
    let mut engine = Engine::for_backfill(
        op.clone(),
        &run.config.operations[index],
        &run.config,
        shared,
    );
    let reports = engine.windowed_reports();
    let show = |bar: &ProgressBar| {
        let (read, records, requests) = read_so_far(&op, &reports, grid);
        bar.set_position(read);
        bar.set_message(format!("{records} records, {requests} requests"));
    };
    show(&bar);
    let mut ended = Ended::Done;
    for &report in &reports {
        let Some(timeline) = run.timelines[index][report].clone() else {
            continue;
        };
        ended = engine
            .backfill(report, grid.start, grid.end, timeline.clone(), || {
                show(&bar)
            })
            .await;
        if ended != Ended::Done {
            break;
        }
        lock(&timeline).finish();
        let (_, records, requests) = read_so_far(&op, &[report], grid);
        tracing::info!(operation = %op.name, report = %report, records, requests, "report backfilled");
    }
    match &ended {
        Ended::Done => bar.finish(),
        _ => bar.abandon(),
    }
    let (_, records, requests) = read_so_far(&op, &reports, grid);
    OperationResult {
        name: op.name.clone(),
        ended,
        records,
        requests,
    }
}

/// The share of the range read (thousandths), the records received and requests sent.
fn read_so_far(op: &OperationStore, reports: &[ReportName], grid: Grid) -> (u64, u64, u64) {
    let span = (grid.end - grid.start).num_seconds().max(1) as u128;
    let ledger = op.ledger();
    let read: u128 = reports
        .iter()
        .map(|r| {
            ledger.reports[*r].cursor.map_or(0, |c| {
                (c.min(grid.end) - grid.start)
                    .num_seconds()
                    .clamp(0, span as i64) as u128
            })
        })
        .sum();
    drop(ledger);
    let data = op.read();
    let (mut records, mut requests) = (0, 0);
    for r in reports {
        if let Some(slot) = &data.reports[*r] {
            records += slot.health.received;
            requests += slot.health.requests;
        }
    }
    let share = read * u128::from(bars::BAR_LEN) / (span * reports.len().max(1) as u128);
    (share as u64, records, requests)
}

fn lock(t: &Mutex<ReportTimeline>) -> MutexGuard<'_, ReportTimeline> {
    t.lock().unwrap_or_else(|p| p.into_inner())
}

/// Saves the store and the histories, each operation's read together between two
/// pages (its timelines are locked while a page is counted).
async fn save_progress(run: &Arc<Run>) -> Result<(), BackfillError> {
    let run = run.clone();
    tokio::task::spawn_blocking(move || {
        let mut guards = Vec::new();
        let mut operations = BTreeMap::new();
        for (op, timelines) in run.store.operations().iter().zip(&run.timelines) {
            let locked: Vec<_> = timelines
                .iter()
                .filter_map(|(name, t)| t.as_ref().map(|t| (name, lock(t))))
                .collect();
            operations.insert(op.name.clone(), state::snapshot(op));
            guards.push((op.name.as_str(), locked));
        }
        let file = StateFile {
            version: state::VERSION,
            saved_at: run.clock.now(),
            operations,
        };
        let histories = guards
            .iter()
            .map(|(name, locked)| {
                let reports = locked.iter().map(|(r, t)| (*r, &t.history)).collect();
                (*name, reports)
            })
            .collect();
        let to_save = progress::ToSave::new(&run.settings, &file, histories);
        let bytes = progress::save(&run.progress_path, &to_save).map_err(|source| {
            BackfillError::Write {
                path: run.progress_path.clone(),
                source,
            }
        })?;
        tracing::debug!(path = %run.progress_path.display(), bytes, "backfill progress saved");
        Ok(())
    })
    .await
    .expect("saving the progress does not panic")
}

/// Writes the output, then the state, then forgets the progress.
async fn finish(run: &Arc<Run>, options: &Options) -> Result<output::Written, BackfillError> {
    let run = run.clone();
    let output_path = options.output.clone();
    tokio::task::spawn_blocking(move || {
        let written = write_output(&run, &output_path)?;
        for op in run.store.operations() {
            continue_reconciliation(op);
        }
        let state_path = &run.config.state_path;
        if state_path.exists() {
            return Err(BackfillError::StateExists(state_path.clone()));
        }
        state::save(&run.store, state_path, run.clock.now()).map_err(|e| BackfillError::Write {
            path: state_path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let _ = std::fs::remove_file(&run.progress_path);
        Ok(written)
    })
    .await
    .expect("writing the output does not panic")
}

fn write_output(run: &Run, path: &Path) -> Result<output::Written, BackfillError> {
    let guards: Vec<Vec<_>> = run
        .timelines
        .iter()
        .map(|t| t.values().flatten().map(|t| lock(t)).collect())
        .collect();
    let agents: Vec<History> = run
        .store
        .operations()
        .iter()
        .zip(&guards)
        .zip(&run.grids)
        .map(|((op, locked), grid)| {
            let reports: Vec<&History> = locked.iter().map(|t| &t.history).collect();
            agents_history(&render_data(op, DataPart::Agents), grid, &reports)
        })
        .collect();
    let ops: Vec<output::Operation> = guards
        .iter()
        .zip(&agents)
        .zip(&run.grids)
        .map(|((locked, agents), grid)| {
            let mut histories: Vec<&History> = locked.iter().map(|t| &t.history).collect();
            histories.push(agents);
            output::Operation {
                grid: *grid,
                histories,
            }
        })
        .collect();
    let labels = output::label_text(&run.settings.labels);
    let tmp = {
        let mut p = path.as_os_str().to_owned();
        p.push(".tmp");
        PathBuf::from(p)
    };
    let write_err = |source| BackfillError::Write {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::create(&tmp).map_err(write_err)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let written = output::write(&mut out, &ops, &labels).map_err(write_err)?;
    out.into_inner()
        .map_err(|e| write_err(e.into_error()))?
        .sync_all()
        .map_err(write_err)?;
    std::fs::rename(&tmp, path).map_err(write_err)?;
    Ok(written)
}

/// agent_12 compares only days whose agent_13 tallies are whole: the exporter starts
/// reconciling at the first one the backfill kept, not at its range's first day.
fn continue_reconciliation(op: &OperationStore) {
    let whole_from = {
        let data = op.read();
        if data.reports[ReportName::agent_12].is_none() {
            return;
        }
        data.reports[ReportName::agent_13]
            .as_ref()
            .and_then(|s| s.counters.as_any().downcast_ref::<Agent13Counters>())
            .and_then(|c| c.days.whole_from)
    };
    if let Some(day) = whole_from {
        op.ledger().reports[ReportName::agent_12].cursor = Some(day_start(day, op.timezone));
    }
}

/// The lines printed when the command ends.
pub fn report(summary: &Summary, options: &Options, state_path: &Path) -> String {
    let mut out = String::new();
    for op in &summary.operations {
        let how = match &op.ended {
            Ended::Done => "done".to_owned(),
            Ended::Allowance => "stopped: today's request allowance is spent, or what is left of it is kept for the exporter's polling; run the same command after the operation's midnight to resume".to_owned(),
            Ended::Failed(e) => format!("stopped: {e}; run the same command to resume"),
            Ended::Interrupted => "interrupted; run the same command to resume".to_owned(),
        };
        out.push_str(&format!(
            "operation {}: {} records in {} requests, {how}\n",
            op.name, op.records, op.requests
        ));
    }
    match &summary.output {
        Some(w) => out.push_str(&format!(
            "wrote {} series ({} samples) to {} and the state to {}\nnext: promtool tsdb create-blocks-from openmetrics {} <prometheus data directory>, then start the exporter with --state.path={}\n",
            w.series,
            w.samples,
            options.output.display(),
            state_path.display(),
            options.output.display(),
            state_path.display()
        )),
        None => out.push_str(&format!(
            "progress saved to {}\n",
            summary.progress_path.display()
        )),
    }
    out
}
