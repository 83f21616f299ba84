//! How a run ends: the progress saved for the same command to resume, or, when every
//! operation is done, the OpenMetrics file, then the state, then the progress forgotten.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use super::options::Options;
use super::timeline::{agents_history, History};
use super::{lock, output, paths, progress, BackfillError, Run};
use crate::metrics::{render_data, DataPart};
use crate::state::{self, StateFile};

/// Saves the store and the histories, each operation's read together between two
/// pages (its timelines are locked while a page is counted).
pub(super) async fn save_progress(run: &Arc<Run>) -> Result<(), BackfillError> {
    let run = run.clone();
    tokio::task::spawn_blocking(move || {
        let mut guards = Vec::new();
        let mut operations = BTreeMap::new();
        for (op, timelines) in run.store.operations().iter().zip(&run.timelines) {
            let locked: Vec<_> = timelines.iter().map(|(name, t)| (*name, lock(t))).collect();
            operations.insert(op.name.clone(), state::snapshot(op));
            guards.push((op.name.as_str(), locked));
        }
        let file = StateFile { version: state::VERSION, saved_at: run.clock.now(), operations };
        let histories = guards
            .iter()
            .map(|(name, locked)| {
                let reports = locked.iter().map(|(r, t)| (r.as_str(), &t.history)).collect();
                (*name, reports)
            })
            .collect();
        let to_save = progress::ToSave::new(&run.settings, &file, histories);
        let bytes = progress::save(&run.progress_path, &to_save)
            .map_err(|source| BackfillError::Write { path: run.progress_path.clone(), source })?;
        tracing::debug!(path = %run.progress_path.display(), bytes, "backfill progress saved");
        Ok(())
    })
    .await
    .expect("saving the progress does not panic")
}

/// Writes the output, then the state, then forgets the progress.
pub(super) async fn finish(run: &Arc<Run>, options: &Options) -> Result<output::Written, BackfillError> {
    let run = run.clone();
    let (output, overwrite) = (options.output.clone(), options.overwrite);
    tokio::task::spawn_blocking(move || {
        let written = paths::write_output(&output, overwrite, |out| write_output(&run, out))
            .map_err(|source| BackfillError::Write { path: output.clone(), source })?;
        let state_path = &run.config.state_path;
        if let Err(e) = state::save(&run.store, state_path, run.clock.now()) {
            // Both or neither: the same command writes them again.
            let _ = std::fs::remove_file(&output);
            return Err(BackfillError::Write {
                path: state_path.clone(),
                source: std::io::Error::other(e.to_string()),
            });
        }
        let _ = std::fs::remove_file(&run.progress_path);
        Ok(written)
    })
    .await
    .expect("writing the output does not panic")
}

fn write_output(run: &Run, out: &mut impl Write) -> std::io::Result<output::Written> {
    let guards: Vec<Vec<_>> =
        run.timelines.iter().map(|t| t.iter().map(|(_, t)| lock(t)).collect()).collect();
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
            output::Operation { grid: *grid, histories }
        })
        .collect();
    output::write(out, &ops, &output::label_text(&run.settings.labels))
}
