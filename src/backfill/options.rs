//! The command's settings: the range's ends, the step, the output and the labels
//! Prometheus attaches to the exporter's target, checked before anything is read.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, DurationRound, NaiveDate, Utc};

use super::BackfillError;
use crate::calendar::day_start;
use crate::config::{Config, OperationConfig};

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
        DateTime::parse_from_rfc3339(s).map(|t| Bound::Instant(t.with_timezone(&Utc))).map_err(|_| {
            format!(
                "{s:?} is neither a date (2026-11-01) nor an RFC 3339 instant (2026-11-01T08:00:00-05:00)"
            )
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

/// The command's flags.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct Options {
    /// The first day read (operation-local, YYYY-MM-DD), or an RFC 3339 instant.
    #[arg(long, value_name = "DATE")]
    pub from: Bound,
    /// The last day read, included (or an RFC 3339 instant, excluded); default: up to
    /// now less --poll.delay.
    #[arg(long, value_name = "DATE")]
    pub to: Option<Bound>,
    /// Time between the samples written.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    pub step: Duration,
    /// The OpenMetrics file to write; it must not exist.
    #[arg(long, value_name = "PATH")]
    pub output: PathBuf,
    /// Replace an existing regular file at --output (a directory, device or other
    /// non-regular file never is).
    #[arg(long = "output.overwrite")]
    pub overwrite: bool,
    /// Accept a backfill that needs more requests than today's allowance leaves it: it
    /// stops when today's share is spent, and the same command resumes on later days.
    #[arg(long)]
    pub spread: bool,
    /// A label Prometheus attaches to the exporter's target (repeatable; job and
    /// instance at least), so that backfilled and scraped samples are one series.
    #[arg(long = "label", value_name = "NAME=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
}

/// Parses `--label=NAME=VALUE`.
fn parse_label(text: &str) -> Result<(String, String), String> {
    let (name, value) = text.split_once('=').ok_or_else(|| format!("{text:?} is not NAME=VALUE"))?;
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
    if value.is_empty() {
        return Err(format!(
            "{name:?} has an empty value: Prometheus treats an empty label as absent, so the \
             backfilled series would not be the scraped ones"
        ));
    }
    Ok((name.to_owned(), value.to_owned()))
}

impl Options {
    /// Checks what `parse_label` cannot see alone, and the step.
    pub(super) fn check(&self) -> Result<(), BackfillError> {
        let labels = &self.labels;
        for needed in ["job", "instance"] {
            if !labels.iter().any(|(n, _)| n == needed) {
                return Err(BackfillError::Usage(format!(
                    "--label={needed}=... is missing: backfilled series must carry the labels Prometheus attaches to the exporter's target (at least job and instance), or they are not the series it scrapes"
                )));
            }
        }
        if let Some((name, _)) =
            labels.iter().enumerate().find_map(|(i, l)| labels[..i].iter().find(|m| m.0 == l.0))
        {
            return Err(BackfillError::Usage(format!("--label={name}=... is given twice")));
        }
        if self.step < Duration::from_secs(1) {
            return Err(BackfillError::Usage("--step must be at least 1s".into()));
        }
        if self.step > Duration::from_secs(300) {
            tracing::warn!(
                step = %humantime::format_duration(self.step),
                "samples further apart than Prometheus's 5m lookback leave gaps in graphs of the backfilled range"
            );
        }
        Ok(())
    }

    /// `[start, end)` of operation `op`: local days in its time zone, at most up to now
    /// less `--poll.delay` (the exporter reads on from there).
    pub(super) fn range(
        &self,
        op: &OperationConfig,
        config: &Config,
        now: DateTime<Utc>,
    ) -> Result<(DateTime<Utc>, DateTime<Utc>), BackfillError> {
        let trunc =
            |t: DateTime<Utc>| t.duration_trunc(chrono::Duration::seconds(1)).expect("truncating to seconds");
        let latest = trunc(now - chrono::Duration::from_std(config.poll.delay).unwrap_or_default());
        let start = match self.from {
            Bound::Day(d) => day_start(d, op.timezone),
            Bound::Instant(t) => trunc(t),
        };
        let end = match self.to {
            Some(Bound::Day(d)) => day_start(d + chrono::Days::new(1), op.timezone),
            Some(Bound::Instant(t)) => trunc(t),
            None => latest,
        }
        .min(latest);
        if start >= end {
            return Err(BackfillError::Usage(format!(
                "nothing to read for operation {:?}: the range starts at {start} and ends at {end} (--to, or now less --poll.delay)",
                op.name
            )));
        }
        let steps = (end - start).num_seconds() as u64 / self.step.as_secs().max(1);
        if steps >= u64::from(u32::MAX) {
            return Err(BackfillError::Usage(format!(
                "--from, --to, --step: the range from {start} to {end} holds {steps} steps, too many to write (each series gets a sample at every step)"
            )));
        }
        Ok((start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_is_a_local_day_or_an_instant() {
        assert_eq!(
            "2026-11-01".parse::<Bound>(),
            Ok(Bound::Day(NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()))
        );
        let instant: Bound = "2026-11-01T08:00:00-05:00".parse().unwrap();
        assert_eq!(instant, Bound::Instant(DateTime::from_timestamp(1_793_538_000, 0).unwrap()));
        assert_eq!(instant.to_string(), "2026-11-01T13:00:00+00:00");
        let err = "yesterday".parse::<Bound>().unwrap_err();
        assert!(err.contains("neither a date"), "{err}");
    }

    #[test]
    fn labels_are_names_prometheus_keeps_and_not_the_exporters_own() {
        assert_eq!(parse_label("instance=host:9798=x"), Ok(("instance".into(), "host:9798=x".into())));
        let empty = parse_label("job=").unwrap_err();
        assert!(empty.contains("empty value"), "{empty}");
        for bad in ["job", "=x", "9job=x", "__name__=x", "a-b=x"] {
            assert!(parse_label(bad).is_err(), "{bad}");
        }
        let own = parse_label("agent_id=7").unwrap_err();
        assert!(own.contains("exported_agent_id"), "{own}");
        let twice = [
            ("job".to_owned(), "a".to_owned()),
            ("instance".to_owned(), "b".to_owned()),
            ("job".to_owned(), "c".to_owned()),
        ];
        let options = |labels: &[(String, String)]| Options {
            from: Bound::Day(NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()),
            to: None,
            step: Duration::from_secs(60),
            output: PathBuf::from("out.om"),
            overwrite: false,
            labels: labels.to_vec(),
            spread: false,
        };
        assert!(options(&twice).check().unwrap_err().to_string().contains("twice"));
        assert!(options(&twice[..2]).check().is_ok());
    }
}
