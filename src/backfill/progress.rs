//! The progress file `<state>.backfill`: the command's settings, the store and the
//! histories as they stood between two pages, from which the same command resumes. A
//! row is in the store and in its history before its window's cursor moves on.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::options::Options;
use super::timeline::{Grid, History, ReportTimeline};
use super::{lock, BackfillError, Run};
use crate::clock::Clock;
use crate::config::Config;
use crate::reports::Schedule;
use crate::state::{self, StateFile};

const VERSION: u32 = 1;

/// What must be the same for a backfill to resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// `--from` and `--to` as given.
    pub from: String,
    pub to: Option<String>,
    pub step_secs: i64,
    pub labels: Vec<(String, String)>,
    /// Per operation, the range read: `--to` left out reads up to when it started.
    pub ranges: BTreeMap<String, (DateTime<Utc>, DateTime<Utc>)>,
}

/// The file: read owning what it holds, written borrowing it.
#[derive(Debug, Serialize, Deserialize)]
struct ProgressFile<S, T, H> {
    version: u32,
    settings: S,
    state: T,
    /// Per operation, per report name.
    histories: H,
}

type Saved = ProgressFile<Settings, StateFile, BTreeMap<String, BTreeMap<String, History>>>;

/// Where the progress of a backfill writing `state_path` is kept.
pub fn path_for(state_path: &Path) -> PathBuf {
    state::beside(state_path, ".backfill")
}

fn load(path: &Path) -> Result<Option<Saved>, String> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    match serde_json::from_slice::<Version>(&text) {
        Ok(Version { version: VERSION }) => {
            serde_json::from_slice(&text).map(Some).map_err(|e| format!("{} is corrupt: {e}", path.display()))
        }
        Ok(Version { version }) => {
            Err(format!("{} was written by another version (format {version})", path.display()))
        }
        Err(e) => Err(format!("{} is corrupt: {e}", path.display())),
    }
}

/// Saves the store and the histories, each operation's read together between two
/// pages (its timelines are locked while a page is counted).
pub(super) async fn save(run: &Arc<Run>) -> Result<(), BackfillError> {
    let run = run.clone();
    tokio::task::spawn_blocking(move || {
        let locked: Vec<Vec<_>> = run.timelines.iter().map(|t| t.iter().map(|t| lock(t)).collect()).collect();
        let ops = run.store.operations();
        let state = StateFile::of(&run.store, run.clock.now());
        let histories: BTreeMap<&str, BTreeMap<&str, &History>> = ops
            .iter()
            .zip(&locked)
            .map(|(op, locked)| {
                (op.name.as_str(), locked.iter().map(|t| (t.report.as_str(), &t.history)).collect())
            })
            .collect();
        let file = ProgressFile { version: VERSION, settings: &run.settings, state: &state, histories };
        let body = serde_json::to_vec(&file).map_err(io::Error::other);
        let written =
            body.and_then(|body| state::write_atomically(&run.progress_path, &body).map(|()| body.len()));
        let bytes =
            written.map_err(|source| BackfillError::Write { path: run.progress_path.clone(), source })?;
        tracing::debug!(path = %run.progress_path.display(), bytes, "backfill progress saved");
        Ok(())
    })
    .await
    .expect("saving the progress does not panic")
}

/// The range of each operation, its store and its timelines: new, or as an
/// interrupted run of the same command left them in the progress file.
pub(super) async fn prepare(
    config: &Config,
    options: &Options,
    clock: Arc<dyn Clock>,
) -> Result<Run, BackfillError> {
    let now = clock.now();
    let ranges = config.operations.iter().map(|op| Ok((op.name.clone(), options.range(op, config, now)?)));
    let mut settings = Settings {
        from: options.from.to_string(),
        to: options.to.map(|t| t.to_string()),
        step_secs: options.step.as_secs() as i64,
        labels: options.labels.clone(),
        ranges: ranges.collect::<Result<_, BackfillError>>()?,
    };
    let progress_path = path_for(&config.state_path);
    let (saved_state, mut histories) = match load(&progress_path).map_err(BackfillError::Usage)? {
        None => (BTreeMap::new(), BTreeMap::new()),
        Some(saved) => {
            // Ranges aside: without `--to`, the saved ones stand.
            let s = &saved.settings;
            let same = (&s.from, &s.to, s.step_secs, &s.labels)
                == (&settings.from, &settings.to, settings.step_secs, &settings.labels);
            if !same || !s.ranges.keys().eq(settings.ranges.keys()) {
                let labels: Vec<_> = s.labels.iter().map(|(n, v)| format!("--label={n}={v}")).collect();
                return Err(BackfillError::Usage(format!(
                    "{} holds an interrupted backfill of another command (--from={}{} --step={}s {} for operations {}): run that command again to resume it, or delete the file to start over",
                    progress_path.display(),
                    s.from,
                    s.to.as_ref().map_or(String::new(), |t| format!(" --to={t}")),
                    s.step_secs,
                    labels.join(" "),
                    s.ranges.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
            if settings.to.is_none() {
                settings.ranges = saved.settings.ranges.clone();
            }
            tracing::info!(path = %progress_path.display(), "resuming an interrupted backfill");
            (saved.state.operations, saved.histories)
        }
    };
    let cursors: BTreeMap<(String, String), Option<DateTime<Utc>>> = saved_state
        .iter()
        .flat_map(|(op, s)| s.reports.iter().map(move |(name, r)| ((op.clone(), name.clone()), r.cursor)))
        .collect();
    let store = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || state::restore_saved(&config, saved_state, now))
            .await
            .expect("restoring the store does not panic")
    };
    let (mut grids, mut timelines) = (Vec::new(), Vec::new());
    for (op, op_config) in store.operations().iter().zip(&config.operations) {
        let (start, end) = settings.ranges[&op.name];
        let grid = Grid { start, end, step_secs: settings.step_secs, timezone: op.timezone };
        let mut saved = histories.remove(&op.name).unwrap_or_default();
        let mut reports = Vec::new();
        for (i, name) in op_config.report_names().into_iter().enumerate() {
            if !op.read().reports.iter().any(|s| s.name() == name && s.schedule == Schedule::Windowed) {
                continue;
            }
            let restored = op.ledger().reports[i].cursor;
            if restored != cursors.get(&(op.name.clone(), name.to_string())).copied().flatten() {
                return Err(BackfillError::Usage(format!(
                    "the configuration of operation {:?} changed since the backfill in {} was interrupted (report {name} cannot continue): delete the file to start over",
                    op.name,
                    progress_path.display()
                )));
            }
            let history = saved.remove(name.as_str()).unwrap_or_default();
            reports.push(Arc::new(Mutex::new(ReportTimeline {
                op: op.clone(),
                report: name,
                grid,
                history,
            })));
        }
        grids.push(grid);
        timelines.push(reports);
    }
    let store = Arc::new(store);
    Ok(Run { config: config.clone(), store, settings, grids, timelines, progress_path, clock })
}
