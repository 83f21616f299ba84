//! How a run starts: each operation's range, its store and its timelines, new or as an
//! interrupted run of the same command left them in the progress file.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::options::{range, Options};
use super::progress::{self, Settings};
use super::timeline::{Grid, ReportTimeline};
use super::{BackfillError, Run};
use crate::clock::Clock;
use crate::config::Config;
use crate::reports::Schedule;
use crate::state;

/// The range of each operation, its store and its timelines: new, or as an
/// interrupted run of the same command left them.
pub(super) async fn prepare(
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
        settings.ranges.insert(op.name.clone(), range(op, options, config, now)?);
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
        let grid = Grid { start, end, step_secs: settings.step_secs, timezone: op.timezone };
        let mut saved = histories.remove(&op.name).unwrap_or_default();
        let mut reports = Vec::new();
        let windowed: Vec<_> =
            op.read().reports.iter().filter(|s| s.schedule == Schedule::Windowed).map(|s| s.name()).collect();
        for (i, name) in op_config.report_names().into_iter().enumerate() {
            if !windowed.contains(&name) {
                continue;
            }
            let restored = op.ledger().reports[i].cursor;
            let key = (op.name.clone(), name.to_string());
            if restored != cursors.get(&key).copied().flatten() {
                return Err(BackfillError::Progress(format!(
                    "the configuration of operation {:?} changed since the backfill in {} was interrupted (report {name} cannot continue): delete the file to start over",
                    op.name,
                    progress_path.display()
                )));
            }
            let history = saved.remove(name.as_str()).unwrap_or_default();
            let timeline = ReportTimeline::new(op.clone(), name, grid, history);
            reports.push((name, Arc::new(Mutex::new(timeline))));
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

fn describe(s: &Settings) -> String {
    let labels: Vec<_> = s.labels.iter().map(|(n, v)| format!("--label={n}={v}")).collect();
    format!(
        "--from={}{} --step={}s {} for operations {}",
        s.from,
        s.to.as_ref().map_or(String::new(), |t| format!(" --to={t}")),
        s.step_secs,
        labels.join(" "),
        s.ranges.keys().cloned().collect::<Vec<_>>().join(", ")
    )
}

fn cursors_of(saved: &BTreeMap<String, state::OpState>) -> BTreeMap<(String, String), Option<DateTime<Utc>>> {
    saved
        .iter()
        .flat_map(|(op, s)| s.reports.iter().map(move |(name, r)| ((op.clone(), name.clone()), r.cursor)))
        .collect()
}
