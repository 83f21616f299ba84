//! `wolkvox-exporter check`: asks each operation's reports for one short recent window
//! and the API for the token's information, then says in plain lines whether the
//! exporter can work: token, caller address, reports, allowance, use and plan.

mod info;
mod outcome;

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;
use serde::de::IgnoredAny;

pub use info::TokenInfo;
pub use outcome::{
    Answered, CallerVerdict, OperationCheck, PlanVerdict, ReportCheck, TokenVerdict,
};

use crate::app::Wiring;
use crate::client::{interpret, Answer};
use crate::clock::SystemClock;
use crate::config::{ApiConfig, Config, OperationConfig};
use crate::engine::Engine;
use crate::shard::Shard;

/// How much of each report is asked for: a short window, so that the answer is small.
pub const WINDOW: TimeDelta = TimeDelta::minutes(10);
/// How long before now the window ends, as the exporter's `poll.delay` does.
pub const LAG: TimeDelta = TimeDelta::minutes(1);

/// Everything `check` found, in the configuration's order.
#[derive(Debug, Clone)]
pub struct Checked {
    pub shard: Shard,
    pub operations: Vec<OperationCheck>,
}

impl Checked {
    /// Whether everything the exporter needs works, for every operation checked.
    pub fn ok(&self) -> bool {
        self.operations.iter().all(|op| op.problems().is_empty())
    }

    pub fn spent(&self) -> u64 {
        self.operations.iter().map(OperationCheck::spent).sum()
    }

    /// The whole report: each operation's lines, then a summary line.
    pub fn render(&self) -> String {
        let mut out: String = self.operations.iter().map(OperationCheck::render).collect();
        let shard = if self.shard == Shard::ALL {
            String::new()
        } else {
            format!(" (shard {})", self.shard)
        };
        let failed: Vec<&str> = self
            .operations
            .iter()
            .filter(|op| !op.problems().is_empty())
            .map(|op| op.name.as_str())
            .collect();
        let n = self.operations.len();
        let _ = match (n, failed.is_empty()) {
            (0, _) => writeln!(
                out,
                "summary: no operation to check: shard {} follows none of the configured \
                 operations",
                self.shard
            ),
            (_, true) => writeln!(
                out,
                "summary: {n} operation{} checked{shard}, all OK; {} requests spent",
                plural(n),
                self.spent()
            ),
            (_, false) => writeln!(
                out,
                "summary: {n} operation{} checked{shard}, {} FAILED ({}); {} requests spent",
                plural(n),
                failed.len(),
                failed.join(", "),
                self.spent()
            ),
        };
        out
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The `check` command: prints what it found; 0 when everything works, 1 otherwise.
pub async fn command(config: &Config, shard: Shard) -> crate::app::Exit {
    let checked = run(config, shard, Utc::now()).await;
    // A closed stdout (`check | head -1`) is not worth a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), checked.render().as_bytes());
    if checked.ok() {
        crate::app::Exit::Done
    } else {
        crate::app::Exit::Failed
    }
}

/// Checks every operation of `config` at `now`, each through its engine: operations
/// with different tokens side by side, requests on one token one at a time, ever.
pub async fn run(config: &Config, shard: Shard, now: DateTime<Utc>) -> Checked {
    let config = Arc::new(config.clone());
    let store = Arc::new(crate::state::restore_saved(
        &config,
        Default::default(),
        now,
    ));
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let wiring = Wiring::new(config.clone(), store, Arc::new(SystemClock), None, shutdown);
    let mut tasks = tokio::task::JoinSet::new();
    for (index, op) in config.operations.iter().enumerate() {
        let (engine, op, api) = (wiring.engine(index), op.clone(), config.api.clone());
        tasks.spawn(async move { (index, check_operation(&engine, &op, &api, now).await) });
    }
    let mut done = Vec::with_capacity(config.operations.len());
    while let Some(joined) = tasks.join_next().await {
        done.push(joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())));
    }
    done.sort_by_key(|(index, _)| *index);
    Checked {
        shard,
        operations: done.into_iter().map(|(_, op)| op).collect(),
    }
}

/// The operation-local window asked of every report: `WINDOW` ending `LAG` before now.
pub fn window(now: DateTime<Utc>, tz: Tz) -> (NaiveDateTime, NaiveDateTime) {
    let end = (now - LAG).with_timezone(&tz).naive_local();
    let end = end.with_nanosecond(0).unwrap_or(end);
    (end - WINDOW, end)
}

async fn check_operation(
    engine: &Engine,
    op: &OperationConfig,
    api: &ApiConfig,
    now: DateTime<Utc>,
) -> OperationCheck {
    tracing::info!(operation = %op.name, reports = op.reports.len(), "checking the operation");
    let window = window(now, op.timezone);
    let mut reports = Vec::with_capacity(op.reports.len());
    for (i, report) in op.reports.iter().enumerate() {
        let answer = engine
            .probe(Some(i), window.0, window.1)
            .await
            .and_then(
                |(status, body)| match interpret::<IgnoredAny>(status, &body)? {
                    Answer::Records(rows) => Ok(Answered::Records(rows.len())),
                    Answer::Empty => Ok(Answered::NoRecords),
                },
            );
        tracing::debug!(operation = %op.name, report = %report.name, answer = ?answer, "report checked");
        reports.push(ReportCheck {
            report: report.clone(),
            answer,
        });
    }
    let info = engine
        .probe(None, window.0, window.1)
        .await
        .and_then(|(status, body)| info::read(status, &body));
    tracing::debug!(operation = %op.name, answered = info.is_ok(), "token_info checked");
    OperationCheck {
        name: op.name.clone(),
        timezone: op.timezone,
        window,
        licenses: op.licenses,
        reserve: api.daily_reserve,
        reports,
        info,
    }
}

#[cfg(test)]
mod tests;
