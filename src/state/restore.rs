//! Builds the store from the configuration and the saved state, and says in the log
//! what it restored and what it had to discard.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use enum_map::EnumMap;

use super::{load, Loaded, OpState};
use crate::config::{Config, OperationConfig};
use crate::engine::limits::local_day;
use crate::engine::plan;
use crate::reports::{kind, Identity, ReportName};
use crate::store::{
    Agents, DailyUse, Ledger, NewOperation, OpData, ReportHealth, ReportSlot, Store,
};

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
    restore_saved(config, saved, now)
}

/// The store for `config`, with the saved operations `saved`.
pub fn restore_saved(
    config: &Config,
    mut saved: BTreeMap<String, OpState>,
    now: DateTime<Utc>,
) -> Store {
    let ops = config
        .operations
        .iter()
        .map(|op| operation(config, op, saved.remove(&op.name), now))
        .collect();
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
    let enabled = op.report_names();
    let mut reports = EnumMap::default();
    for &name in &enabled {
        let counters = (kind(name).build)(&config.metrics).new_counters();
        reports[name] = Some(ReportSlot {
            counters,
            health: ReportHealth::default(),
        });
    }
    let mut data = OpData {
        agents: Agents::new(config.metrics.max_agents, op.timezone),
        reports,
        daily: DailyUse::new(local_day(now, op.timezone)),
        planned_daily: plan::daily_requests(&op.reports),
        last_error: None,
        restarts: 0,
    };
    let mut ledger = Ledger::default();
    match saved {
        None => tracing::info!(operation = %op.name, "new operation; starting with catch-up"),
        Some(saved) => restore_operation(config, op, saved, &mut data, &mut ledger),
    }
    NewOperation {
        name: op.name.clone(),
        timezone: op.timezone,
        daily_limit: op.daily_limit(),
        ledger,
        data,
    }
}

fn restore_operation(
    config: &Config,
    op: &OperationConfig,
    saved: OpState,
    data: &mut OpData,
    ledger: &mut Ledger,
) {
    if let Some(daily) = saved.daily {
        data.daily = daily;
    }
    data.agents.known = saved
        .agents
        .into_iter()
        .map(|(id, a)| (id.into_boxed_str(), a))
        .collect();
    data.agents.overflow_records = saved.overflow_records;
    for (name, state) in saved.reports {
        let Some(slot) = data.reports[name].as_mut() else {
            tracing::warn!(
                operation = %op.name,
                report = %name,
                remembered_rows = state.seen.len(),
                "saved state of a report that is no longer enabled is dropped (its counters, cursor and remembered rows)"
            );
            continue;
        };
        match (kind(name).build)(&config.metrics).restore(&state.counters) {
            Ok((counters, warning)) => {
                if let Some(w) = warning {
                    tracing::warn!(operation = %op.name, report = %name, "{w}");
                }
                slot.counters = counters;
                slot.health.watermark = state.cursor;
                let l = &mut ledger.reports[name];
                l.cursor = state.cursor;
                l.since = state.since;
                l.density = state.density;
                l.seen = state
                    .seen
                    .into_iter()
                    .map(|(hi, lo, d)| (Identity(hi, lo), d))
                    .collect();
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
    let cursors: Vec<_> = enabled_cursors(ledger, &op.report_names());
    tracing::info!(
        operation = %op.name,
        agents = data.agents.known.len(),
        cursors = ?cursors,
        "state restored"
    );
}

fn enabled_cursors(ledger: &Ledger, names: &[ReportName]) -> Vec<String> {
    names
        .iter()
        .map(|n| {
            let c = ledger.reports[*n]
                .cursor
                .map_or("none".to_owned(), |c| c.to_rfc3339());
            format!("{n}={c}")
        })
        .collect()
}
