//! Builds the store from the configuration and the saved state, and says in the log
//! what it restored and what it had to discard.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{load, Loaded, OpState};
use crate::calendar::local_day;
use crate::config::{plan, Config, OperationConfig};
use crate::reports::agents::Agents;
use crate::reports::{kind, Identity};
use crate::store::{DailyUse, Ledger, NewOperation, OpData, ReportHealth, ReportLedger, ReportSlot, Store};

/// The store for `config`, with what the state file at `config.state_path` holds.
pub fn restore(config: &Config, now: DateTime<Utc>) -> Store {
    let path = config.state_path.display();
    let saved = match load(&config.state_path, now) {
        Loaded::Fresh => {
            tracing::info!(path = %path, "no saved state; starting with catch-up");
            BTreeMap::new()
        }
        Loaded::MovedAside { moved_to, error } => {
            tracing::error!(
                path = %path,
                moved_to = %moved_to.as_ref().map_or("(could not move it)".into(), |p| p.display().to_string()),
                error = %error,
                "state file unreadable; moved aside, counting from scratch with catch-up"
            );
            BTreeMap::new()
        }
        Loaded::Restored(file) => file.operations,
    };
    for op in config.operations.iter().filter(|op| !saved.contains_key(&op.name)) {
        tracing::info!(operation = %op.name, "new operation; starting with catch-up");
    }
    restore_saved(config, saved, now)
}

/// The store for `config`, with the saved operations `saved`.
pub fn restore_saved(config: &Config, mut saved: BTreeMap<String, OpState>, now: DateTime<Utc>) -> Store {
    let ops = config.operations.iter().map(|op| operation(config, op, saved.remove(&op.name), now)).collect();
    for (name, dropped) in saved {
        tracing::warn!(
            operation = %name,
            agents = dropped.agents.len(),
            reports = ?dropped.reports.keys().collect::<Vec<_>>(),
            "saved state of an operation no longer configured is dropped"
        );
    }
    Store::new(ops)
}

fn operation(
    config: &Config,
    op: &OperationConfig,
    saved: Option<OpState>,
    now: DateTime<Utc>,
) -> NewOperation {
    let settings = config.metrics.settings();
    let reports = op
        .reports
        .iter()
        .map(|r| {
            let kind = kind(r.name);
            let report = (kind.build)(&settings);
            ReportSlot {
                counters: report.new_counters(),
                report,
                schedule: kind.schedule,
                interval: r.interval,
                health: ReportHealth::default(),
            }
        })
        .collect();
    let mut data = OpData {
        agents: Agents::new(config.metrics.max_agents, op.timezone),
        reports,
        daily: DailyUse::new(local_day(now, op.timezone)),
        planned_daily: plan::daily_requests(&op.reports),
        last_error: None,
        restarts: 0,
    };
    let mut ledger = Ledger { reports: op.reports.iter().map(|_| ReportLedger::default()).collect() };
    if let Some(saved) = saved {
        restore_operation(op, saved, &mut data, &mut ledger);
    }
    NewOperation { name: op.name.clone(), timezone: op.timezone, daily_limit: op.daily_limit(), ledger, data }
}

fn restore_operation(op: &OperationConfig, saved: OpState, data: &mut OpData, ledger: &mut Ledger) {
    if let Some(daily) = saved.daily {
        data.daily = daily;
    }
    data.agents.known = saved.agents.into_iter().map(|(id, a)| (id.into_boxed_str(), a)).collect();
    data.agents.overflow_records = saved.overflow_records;
    for (name, state) in saved.reports {
        let Some(i) = data.reports.iter().position(|s| s.name().as_str() == name) else {
            tracing::warn!(
                operation = %op.name,
                report = %name,
                remembered_rows = state.seen.len(),
                "saved state of a report that is no longer enabled is dropped (its counters, cursor and remembered rows)"
            );
            continue;
        };
        let slot = &mut data.reports[i];
        match slot.report.restore(&state.counters) {
            Ok((counters, warning)) => {
                if let Some(w) = warning {
                    tracing::warn!(operation = %op.name, report = %name, "{w}");
                }
                slot.counters = counters;
                slot.health.watermark = state.cursor;
                let seen = state.seen.into_iter().map(|(hi, lo, d)| (Identity(hi, lo), d)).collect();
                ledger.reports[i] =
                    ReportLedger { cursor: state.cursor, since: state.since, density: state.density, seen };
            }
            Err(why) => tracing::error!(
                operation = %op.name,
                report = %name,
                error = %why,
                remembered_rows = state.seen.len(),
                "saved counters of the report are discarded; counting it from scratch with catch-up"
            ),
        }
    }
    let cursors: Vec<String> = data
        .reports
        .iter()
        .zip(&ledger.reports)
        .map(|(slot, l)| {
            let c = l.cursor.map_or("none".to_owned(), |c| c.to_rfc3339());
            format!("{}={c}", slot.name())
        })
        .collect();
    tracing::info!(
        operation = %op.name,
        agents = data.agents.known.len(),
        cursors = ?cursors,
        "state restored"
    );
}
