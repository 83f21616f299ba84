//! `wolkvox-exporter check`: asks each operation's reports for one short recent window
//! and the API for the token's information, then says in plain lines whether the
//! exporter can work: token, caller address, reports, allowance, use and plan.

mod info;
mod outcome;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;
use serde::de::IgnoredAny;
use tokio::time::Instant;

pub use info::{read as read_token_info, TokenInfo};
pub use outcome::{Answered, OperationCheck, PlanVerdict, Verdict};

use crate::app::Wiring;
use crate::client::{interpret, Answer, ApiError};
use crate::clock::SystemClock;
use crate::config::{Config, OperationConfig};
use crate::engine::Engine;
use crate::shard::Shard;

/// How much of each report is asked for (a short window, so that the answer is small),
/// ending `LAG` before now as the exporter's `poll.delay` does.
const WINDOW: TimeDelta = TimeDelta::minutes(10);
const LAG: TimeDelta = TimeDelta::minutes(1);
/// The longest a request waits for its answer (`api.timeout` when shorter); the whole
/// command waits at most [`TOTAL_REQUESTS`] times that.
const REQUEST_LIMIT: Duration = Duration::from_secs(20);
const TOTAL_REQUESTS: u32 = 3;

/// Everything `check` found, in the configuration's order.
#[derive(Debug, Clone)]
pub struct Checked {
    pub shard: Shard,
    pub operations: Vec<OperationCheck>,
    /// Every configured operation and its shard, said when the shard follows none.
    pub elsewhere: String,
}

impl Checked {
    /// Whether everything the exporter needs works, for every operation checked (and
    /// there is one).
    pub fn ok(&self) -> bool {
        !self.operations.is_empty() && self.operations.iter().all(|op| op.problems().is_empty())
    }

    pub fn spent(&self) -> u64 {
        self.operations.iter().map(OperationCheck::spent).sum()
    }

    /// The whole report: each operation's lines, then a summary line.
    pub fn render(&self) -> String {
        if self.operations.is_empty() {
            return format!(
                "summary: FAILED: shard {} follows none of the configured operations ({}); check --shard\n",
                self.shard, self.elsewhere
            );
        }
        let shard = if self.shard == Shard::ALL { String::new() } else { format!(" (shard {})", self.shard) };
        let failed: Vec<&str> = self
            .operations
            .iter()
            .filter(|op| !op.problems().is_empty())
            .map(|op| op.config.name.as_str())
            .collect();
        let verdict = match failed.is_empty() {
            true => "all OK".to_owned(),
            false => format!("{} FAILED ({})", failed.len(), failed.join(", ")),
        };
        let (n, spent) = (self.operations.len(), self.spent());
        let ops: String = self.operations.iter().map(OperationCheck::render).collect();
        format!(
            "{ops}summary: {n} operation{} checked{shard}, {verdict}; {spent} requests spent\n",
            plural(n)
        )
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The `check` command over the shard's operations of `config`: prints what it found;
/// 0 when everything works, 1 otherwise (a shard that follows no operation included).
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

/// Checks the shard's operations of `config` at `now`, each through its engine:
/// operations with different tokens side by side, requests on one token one at a time,
/// ever; each request and the whole command bounded in time.
pub async fn run(config: &Config, shard: Shard, now: DateTime<Utc>) -> Checked {
    let mut config = config.clone();
    let elsewhere = shard.assignments(&config);
    shard.select(&mut config);
    config.api.timeout = config.api.timeout.min(REQUEST_LIMIT);
    let total = config.api.timeout * TOTAL_REQUESTS;
    let deadline = Instant::now() + total;
    tracing::info!(
        operations = config.operations.len(),
        request_timeout = %humantime::format_duration(config.api.timeout),
        total_timeout = %humantime::format_duration(total),
        "checking; each request waits at most request_timeout, the whole check total_timeout"
    );
    let config = Arc::new(config);
    let store = Arc::new(crate::state::restore_saved(&config, Default::default(), now));
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let wiring = Wiring::new(config.clone(), store, Arc::new(SystemClock), None, shutdown);
    let tasks: Vec<_> = (config.operations.iter().enumerate())
        .map(|(index, op)| {
            let (engine, op, reserve) = (wiring.engine(index), op.clone(), config.api.daily_reserve);
            tokio::spawn(async move { check_operation(&engine, op, reserve, now, deadline).await })
        })
        .collect();
    let mut operations = Vec::with_capacity(tasks.len());
    for task in tasks {
        operations.push(task.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())));
    }
    Checked { shard, elsewhere, operations }
}

/// The operation-local window asked of every report: `WINDOW` ending `LAG` before now.
pub fn window(now: DateTime<Utc>, tz: Tz) -> (NaiveDateTime, NaiveDateTime) {
    let end = (now - LAG).with_timezone(&tz).naive_local();
    let end = end.with_nanosecond(0).unwrap_or(end);
    (end - WINDOW, end)
}

/// One request, said on stderr before it goes; `None` once `deadline` has passed, and
/// a timeout when it passes meanwhile.
async fn ask<T>(
    operation: &str,
    what: &str,
    deadline: Instant,
    request: impl Future<Output = Result<T, ApiError>>,
) -> Option<Result<T, ApiError>> {
    if Instant::now() >= deadline {
        return None;
    }
    tracing::info!(operation, request = what, "asking the API");
    let answer = tokio::time::timeout_at(deadline, request).await.unwrap_or(Err(ApiError::Timeout));
    if let Err(e) = &answer {
        tracing::info!(operation, request = what, reason = e.reason().as_str(), "request failed");
    }
    Some(answer)
}

async fn check_operation(
    engine: &Engine,
    op: OperationConfig,
    reserve: f64,
    now: DateTime<Utc>,
    deadline: Instant,
) -> OperationCheck {
    let window = window(now, op.timezone);
    let mut answers = Vec::with_capacity(op.reports.len());
    for (i, report) in op.reports.iter().enumerate() {
        let request = async {
            let (status, body) = engine.probe(Some(i), window.0, window.1).await?;
            match interpret::<IgnoredAny>(status, &body)? {
                Answer::Records(rows) => Ok(Answered::Records(rows.len())),
                Answer::Empty => Ok(Answered::NoRecords),
            }
        };
        let answer = ask(&op.name, report.name.as_str(), deadline, request).await;
        answers.push(answer);
    }
    let request = async {
        let (status, body) = engine.probe(None, window.0, window.1).await?;
        info::read(status, &body)
    };
    let info = ask(&op.name, "token_info", deadline, request).await;
    if let Some(Ok(None)) = info {
        tracing::warn!(operation = %op.name, "token_info is not available (it answered 404): the allowance and today's use come from the configuration");
    }
    let midnight = crate::calendar::next_local_midnight(now, op.timezone);
    let rest_of_day = (midnight - now).num_seconds().max(0) as u64;
    OperationCheck { config: op, window, reserve, answers, info, rest_of_day }
}

#[cfg(test)]
mod tests;
