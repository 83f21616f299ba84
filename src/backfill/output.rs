//! The OpenMetrics file for `promtool tsdb create-blocks-from openmetrics`: checked
//! before the first request, written once every operation is done (each series with a
//! sample at every boundary from its first value on) beside it and renamed, then the state.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tempfile::NamedTempFile;

use super::options::Options;
use super::timeline::{agents_history, FamilyHistory, Grid, History, Point};
use super::{lock, progress, BackfillError, Run};
use crate::metrics::{render_data, DataPart};

/// What was written.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub series: u64,
    pub samples: u64,
}

/// Whether `output` may be written, before anything is read: a new file, or with
/// `--output.overwrite` a regular one; in a directory that takes files; none of the
/// state's own.
pub(super) fn check(output: &Path, overwrite: bool, state_path: &Path) -> Result<(), BackfillError> {
    let refuse = |why: String| Err(BackfillError::Usage(format!("--output={}: {why}", output.display())));
    if output.file_name().is_none() {
        return refuse("not a file name".to_owned());
    }
    let dir = directory(output);
    match std::fs::metadata(dir) {
        Err(e) => return refuse(format!("its directory {} is not usable: {e}", dir.display())),
        Ok(m) if !m.is_dir() => return refuse(format!("{} is not a directory", dir.display())),
        Ok(_) => {}
    }
    match std::fs::symlink_metadata(output) {
        Ok(m) if !m.is_file() => {
            return refuse(
                "exists and is not a regular file (a directory, device, FIFO, socket or link): it is never \
                 replaced; name a new file"
                    .to_owned(),
            )
        }
        Ok(_) if !overwrite => {
            return refuse("exists; name a new file, or pass --output.overwrite to replace it".to_owned())
        }
        _ => {}
    }
    let own = [
        ("--state.path", state_path.to_owned()),
        ("the backfill's progress file", progress::path_for(state_path)),
        ("the state's lock file", crate::state::beside(state_path, ".lock")),
    ];
    if let Some((what, path)) = own.iter().find(|(_, path)| resolved(path) == resolved(output)) {
        return refuse(format!("is {what} ({}); name another file", path.display()));
    }
    match temporary(dir) {
        Ok(_) => Ok(()),
        Err(e) => refuse(format!("cannot create a file in {}: {e}", dir.display())),
    }
}

/// Writes the output, then the state (both or neither), then forgets the progress. The
/// output goes to a temporary file beside it, removed on every failure (a full disk
/// included), synced, then renamed over it (only a regular file, only when `overwrite`).
pub(super) async fn finish(run: &Arc<Run>, options: &Options) -> Result<Written, BackfillError> {
    let run = run.clone();
    let (output, overwrite) = (options.output.clone(), options.overwrite);
    tokio::task::spawn_blocking(move || {
        let written = write_file(&run, &output, overwrite)
            .map_err(|source| BackfillError::Write { path: output.clone(), source })?;
        let state_path = &run.config.state_path;
        if let Err(e) = crate::state::save(&run.store, state_path, run.clock.now()) {
            // The same command writes both again.
            let _ = std::fs::remove_file(&output);
            let source = io::Error::other(e.to_string());
            return Err(BackfillError::Write { path: state_path.clone(), source });
        }
        let _ = std::fs::remove_file(&run.progress_path);
        Ok(written)
    })
    .await
    .expect("writing the output does not panic")
}

fn write_file(run: &Run, output: &Path, overwrite: bool) -> io::Result<Written> {
    let tmp = temporary(directory(output))?;
    let mut out = BufWriter::with_capacity(1 << 20, tmp.as_file());
    let locked: Vec<Vec<_>> = run.timelines.iter().map(|t| t.iter().map(|t| lock(t)).collect()).collect();
    let reports: Vec<Vec<&History>> = locked.iter().map(|l| l.iter().map(|t| &t.history).collect()).collect();
    let agents: Vec<History> = (run.store.operations().iter().zip(&run.grids).zip(&reports))
        .map(|((op, grid), reports)| agents_history(&render_data(op, DataPart::Agents), grid, reports))
        .collect();
    let ops: Vec<(Grid, Vec<&History>)> = (run.grids.iter().zip(reports).zip(&agents))
        .map(|((&grid, reports), agents)| (grid, reports.into_iter().chain([agents]).collect()))
        .collect();
    let written = write(&mut out, &ops, &label_text(&run.settings.labels))?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    let persisted = match std::fs::symlink_metadata(output) {
        Ok(m) if !m.is_file() => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "it is now there and not a regular file",
            ))
        }
        _ if overwrite => tmp.persist(output),
        _ => tmp.persist_noclobber(output),
    };
    persisted.map_err(|e| e.error)?;
    Ok(written)
}

fn directory(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// The path with its directory resolved (links, `..`), for comparing files that may
/// not exist yet.
fn resolved(path: &Path) -> PathBuf {
    let dir = directory(path);
    dir.canonicalize().unwrap_or_else(|_| dir.to_owned()).join(path.file_name().unwrap_or_default())
}

/// A new file in `dir`, removed when dropped; readable as a file created plainly is.
fn temporary(dir: &Path) -> io::Result<NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".wolkvox-backfill-").suffix(".tmp");
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    builder.tempfile_in(dir)
}

/// Writes every family of `ops` (each operation's grid and histories), each once in the
/// order first seen, then `# EOF`; `labels` (`job="...",instance="..."`) is added to
/// every series' label set.
pub fn write(out: &mut impl Write, ops: &[(Grid, Vec<&History>)], labels: &str) -> io::Result<Written> {
    let families =
        || ops.iter().flat_map(|(grid, h)| h.iter().flat_map(|h| &h.families).map(move |f| (grid, f)));
    let mut names: Vec<&str> = Vec::new();
    for (_, f) in families() {
        if !names.contains(&f.name.as_str()) {
            names.push(&f.name);
        }
    }
    let mut written = Written::default();
    for name in names {
        let mut meta = true;
        for (grid, f) in families().filter(|(_, f)| f.name == name) {
            if std::mem::take(&mut meta) {
                f.meta.iter().try_for_each(|line| writeln!(out, "{line}"))?;
            }
            write_family(out, f, grid, labels, &mut written)?;
        }
    }
    writeln!(out, "# EOF")?;
    Ok(written)
}

/// A counter's series starts at 0 one boundary before its first value, as a counter
/// that existed at 0 before its first increment.
fn write_family(
    out: &mut impl Write,
    family: &FamilyHistory,
    grid: &Grid,
    labels: &str,
    written: &mut Written,
) -> io::Result<()> {
    for (key, points) in &family.series {
        let series = with_labels(key, labels);
        written.series += 1;
        if let (true, Some(&(first @ 1.., Some(_)))) = (family.counter, points.first()) {
            writeln!(out, "{series} 0 {}", grid.time(first - 1))?;
            written.samples += 1;
        }
        for (i, &(from, value)) in points.iter().enumerate() {
            let Some(value) = value else { continue };
            let until = points.get(i + 1).map_or(grid.last() + 1, |p: &Point| p.0);
            let value = format_value(value);
            for b in from..until {
                writeln!(out, "{series} {value} {}", grid.time(b))?;
                written.samples += 1;
            }
        }
    }
    Ok(())
}

/// `name{a="b"}` with `labels` first in the label set.
fn with_labels(key: &str, labels: &str) -> String {
    match key.split_once('{') {
        _ if labels.is_empty() => key.to_owned(),
        Some((name, rest)) if rest.starts_with('}') => format!("{name}{{{labels}}}"),
        Some((name, rest)) => format!("{name}{{{labels},{rest}"),
        None => format!("{key}{{{labels}}}"),
    }
}

/// Rust writes NaN as OpenMetrics does, not the infinities.
fn format_value(v: f64) -> String {
    match v {
        f64::INFINITY => "+Inf".to_owned(),
        f64::NEG_INFINITY => "-Inf".to_owned(),
        _ => v.to_string(),
    }
}

/// `job="a",instance="b"`, values escaped as OpenMetrics requires.
pub fn label_text(labels: &[(String, String)]) -> String {
    let escape = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
    labels.iter().map(|(name, value)| format!("{name}=\"{}\"", escape(value))).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    #[test]
    fn series_are_dense_from_their_first_value_and_counters_start_at_zero() {
        let start = DateTime::from_timestamp(1_000, 0).unwrap();
        let grid = Grid {
            start,
            end: start + chrono::Duration::seconds(40),
            step_secs: 10,
            timezone: chrono_tz::UTC,
        };
        let mut h = History::default();
        h.record(
            2,
            "# HELP c Things.\n# TYPE c counter\nc_total{a=\"x\"} 2\n# TYPE g gauge\ng{a=\"y\"} 1.5\n",
        );
        h.record(3, "# TYPE c counter\nc_total{a=\"x\"} 5\n");
        let mut out = Vec::new();
        let labels = label_text(&[("job".into(), "wolkvox".into()), ("instance".into(), "a \"b\"".into())]);
        let written = write(&mut out, &[(grid, vec![&h])], &labels).unwrap();
        let text = String::from_utf8(out).unwrap();
        let l = r#"job="wolkvox",instance="a \"b\"""#;
        let expected = format!(
            "# HELP c Things.\n# TYPE c counter\n\
             c_total{{{l},a=\"x\"}} 0 1010\n\
             c_total{{{l},a=\"x\"}} 2 1020\n\
             c_total{{{l},a=\"x\"}} 5 1030\n\
             c_total{{{l},a=\"x\"}} 5 1040\n\
             # TYPE g gauge\n\
             g{{{l},a=\"y\"}} 1.5 1020\n\
             # EOF\n"
        );
        assert_eq!(text, expected);
        assert_eq!(written, Written { series: 2, samples: 5 });
    }

    #[test]
    fn labels_go_into_any_label_set() {
        assert_eq!(with_labels("x", "j=\"1\""), "x{j=\"1\"}");
        assert_eq!(with_labels("x{}", "j=\"1\""), "x{j=\"1\"}");
        assert_eq!(with_labels("x{a=\"{\"}", "j=\"1\""), "x{j=\"1\",a=\"{\"}");
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(0.25), "0.25");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(f64::NAN), "NaN");
    }
}
