//! `wolkvox-exporter backfill`: reads the enabled reports' history once and writes it as
//! OpenMetrics stamped with the records' own time (for `promtool tsdb create-blocks-from
//! openmetrics`), and the state file the exporter continues from without a seam.

mod bars;
mod options;
mod output;
mod plan;
mod progress;
mod timeline;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use indicatif::ProgressBar;
use tokio::sync::watch;

pub use bars::Bars;
pub use options::{Bound, Options};

use crate::app::{Exit, Wiring};
use crate::clock::Clock;
use crate::config::Config;
use crate::engine::Stop;
use crate::reports::ReportName;
use crate::store::{OperationStore, Store};
use progress::Settings;
use timeline::{Grid, ReportTimeline};

/// How often the progress is saved while reading (and when stopped), so that the same
/// command resumes.
const SAVE_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("the state file {} exists: the exporter has counted into it, so backfilled history would count its records twice. Point --state.path at a new file (and start the exporter on it afterwards), or move {} away to start over", .0.display(), .0.display())]
    StateExists(PathBuf),
    /// Bad flags or paths, the cost, or a progress file this command cannot resume.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Locked(#[from] crate::state::LockError),
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

/// How an operation's backfill ended.
#[derive(Debug, Clone)]
pub struct OperationResult {
    pub name: String,
    pub ended: Result<(), Stop>,
    pub records: u64,
    pub requests: u64,
}

/// What the command did.
#[derive(Debug)]
pub struct Summary {
    pub operations: Vec<OperationResult>,
    /// Written when every operation is done.
    pub output: Option<output::Written>,
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
    /// Per operation, the timeline of each report read.
    timelines: Vec<Vec<Arc<Mutex<ReportTimeline>>>>,
    progress_path: PathBuf,
    clock: Arc<dyn Clock>,
}

/// The `backfill` command: runs until done or stopped by a signal, prints what it did
/// and exits as `cli::Command::Backfill` says.
pub async fn command(config: Config, options: Options, clock: Arc<dyn Clock>, bars: &Bars) -> Exit {
    match run(&config, &options, clock, bars, crate::app::signal()).await {
        Ok(summary) => {
            // A closed stdout is not worth a panic.
            let _ = std::io::Write::write_all(
                &mut std::io::stdout(),
                report(&summary, &options, &config.state_path).as_bytes(),
            );
            if summary.done() {
                Exit::Done
            } else {
                Exit::Failed
            }
        }
        Err(e @ BackfillError::Write { .. }) => {
            let progress = progress::path_for(&config.state_path);
            let next = match progress.exists() {
                true => format!(
                    "the progress is saved in {}: the same command resumes from there",
                    progress.display()
                ),
                false => "nothing was saved: the same command starts over".to_owned(),
            };
            tracing::error!(error = %e, next = %next, "backfill stopped");
            Exit::Failed
        }
        Err(e) => {
            tracing::error!(error = %e, "backfill refused");
            Exit::Usage
        }
    }
}

/// Runs the backfill until it is done or `shutdown` resolves (then the progress is
/// saved for the same command to resume), checking all it can before the first request.
pub async fn run(
    config: &Config,
    options: &Options,
    clock: Arc<dyn Clock>,
    bars: &Bars,
    shutdown: impl Future<Output = ()>,
) -> Result<Summary, BackfillError> {
    options.check()?;
    let state_path = config.state_path.clone();
    output::check(&options.output, options.overwrite, &state_path)?;
    // Held until the command returns: no exporter or other backfill on this state.
    let _lock = crate::state::lock(&state_path)?;
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
    let run = Arc::new(progress::prepare(config, options, clock).await?);
    let (stop_tx, stop_rx) = watch::channel(stopping);
    let wiring =
        Wiring::new(Arc::new(run.config.clone()), run.store.clone(), run.clock.clone(), None, stop_rx);
    let mut engines: Vec<_> =
        (0..run.config.operations.len()).map(|index| wiring.engine(index).for_backfill()).collect();
    plan::check(&run, &mut engines, options.spread).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for (index, engine) in engines.into_iter().enumerate() {
        let bar = bars.add(&run.config.operations[index].name);
        tasks.spawn(backfill_operation(run.clone(), index, engine, bar));
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
            _ = saves.tick() => progress::save(&run).await?,
            _ = &mut shutdown, if !stopping => {
                tracing::info!("stopping: saving the progress so that the same command resumes");
                stopping = true;
                let _ = stop_tx.send(true);
            }
        }
    }
    results.sort_by_key(|r: &OperationResult| run.config.operations.iter().position(|o| o.name == r.name));
    if !results.iter().all(|r| r.ended.is_ok()) {
        progress::save(&run).await?;
        return Ok(Summary { operations: results, output: None });
    }
    let written = output::finish(&run, options).await;
    if written.is_err() {
        // What was read is kept: the same command writes it without reading again.
        let _ = progress::save(&run).await;
    }
    Ok(Summary { operations: results, output: Some(written?) })
}

/// Reads every report of operation `index` over its range.
async fn backfill_operation(
    run: Arc<Run>,
    index: usize,
    mut engine: crate::engine::Engine,
    bar: ProgressBar,
) -> OperationResult {
    let op = run.store.operations()[index].clone();
    let grid = run.grids[index];
    let reports = engine.windowed_reports();
    let show = |bar: &ProgressBar| {
        let (read, records, requests) = read_so_far(&op, &reports, grid);
        bar.set_position(read);
        bar.set_message(format!("{records} records, {requests} requests"));
    };
    show(&bar);
    let mut ended = Ok(());
    for &report in &reports {
        let Some(timeline) = run.timelines[index].iter().find(|t| lock(t).report == report) else {
            continue;
        };
        ended = engine.backfill(report, grid.start, grid.end, timeline.clone(), || show(&bar)).await;
        if ended.is_err() {
            break;
        }
        lock(timeline).finish();
        let (_, records, requests) = read_so_far(&op, &[report], grid);
        tracing::info!(operation = %op.name, report = %report, records, requests, "report backfilled");
    }
    match &ended {
        Ok(()) => bar.finish(),
        _ => bar.abandon(),
    }
    let (_, records, requests) = read_so_far(&op, &reports, grid);
    OperationResult { name: op.name.clone(), ended, records, requests }
}

/// The share of the range read (thousandths), the records received and requests sent.
fn read_so_far(op: &OperationStore, reports: &[ReportName], grid: Grid) -> (u64, u64, u64) {
    let span = (grid.end - grid.start).num_seconds().max(1) as u128;
    let ledger = op.ledger();
    let data = op.read();
    let (mut read, mut records, mut requests) = (0u128, 0, 0);
    for (slot, l) in data.reports.iter().zip(&ledger.reports).filter(|(s, _)| reports.contains(&s.name())) {
        read += l
            .cursor
            .map_or(0, |c| (c.min(grid.end) - grid.start).num_seconds().clamp(0, span as i64) as u128);
        records += slot.health.received;
        requests += slot.health.requests;
    }
    let share = read * u128::from(bars::BAR_LEN) / (span * reports.len().max(1) as u128);
    (share as u64, records, requests)
}

fn lock(t: &Mutex<ReportTimeline>) -> MutexGuard<'_, ReportTimeline> {
    t.lock().unwrap_or_else(|p| p.into_inner())
}

/// The lines printed when the command ends.
fn report(summary: &Summary, options: &Options, state_path: &Path) -> String {
    let mut out = String::new();
    for op in &summary.operations {
        let how = match &op.ended {
            Ok(()) => "done".to_owned(),
            Err(Stop::Quota | Stop::Paused) => "stopped: today's request allowance is spent, or what is left of it is kept for the exporter's polling; run the same command after the operation's midnight to resume".to_owned(),
            Err(Stop::Api(e)) => format!("stopped: {e}; run the same command to resume"),
            Err(Stop::Shutdown) => "interrupted; run the same command to resume".to_owned(),
        };
        out += &format!("operation {}: {} records in {} requests, {how}\n", op.name, op.records, op.requests);
    }
    let (output, state) = (options.output.display(), state_path.display());
    out += &match &summary.output {
        Some(w) => format!(
            "wrote {} series ({} samples) to {output} and the state to {state}\nnext: promtool tsdb create-blocks-from openmetrics {output} <prometheus data directory>, then start the exporter with --state.path={state}\n",
            w.series, w.samples,
        ),
        None => format!("progress saved to {}\n", progress::path_for(state_path).display()),
    };
    out
}
