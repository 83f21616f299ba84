//! Helpers for the report modules' tests: an operation in a store, pages as JSON.

use std::sync::Arc;

use chrono::NaiveDateTime;
use enum_map::EnumMap;

use super::fields::parse_date;
use super::{kind, Ingest, LocalWindow, PageOutcome, ReportName, Tally};
use crate::config::MetricsConfig;
use crate::store::{
    Agents, DailyUse, Ledger, NewOperation, OpData, OperationStore, ReportHealth, ReportSlot, Store,
};

pub fn metrics(bounds: &[f64], max_agents: usize) -> MetricsConfig {
    MetricsConfig {
        duration_buckets: bounds.to_vec(),
        max_agents,
        exemplars: true,
        max_flows: 20_000,
    }
}

/// The data of an operation on Colombia time following `names`, nothing counted yet.
pub fn empty_data(metrics: &MetricsConfig, names: &[ReportName]) -> OpData {
    let mut reports = EnumMap::default();
    for &name in names {
        reports[name] = Some(ReportSlot {
            counters: (kind(name).build)(metrics).new_counters(),
            health: ReportHealth::default(),
        });
    }
    OpData {
        agents: Agents::new(metrics.max_agents, chrono_tz::America::Bogota),
        reports,
        daily: DailyUse::new(chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()),
        planned_daily: 0,
        last_error: None,
        restarts: 0,
    }
}

/// One operation on Colombia time following `names`.
pub fn operation(metrics: &MetricsConfig, names: &[ReportName]) -> Arc<OperationStore> {
    let tz = chrono_tz::America::Bogota;
    let data = empty_data(metrics, names);
    let store = Store::new(vec![NewOperation {
        name: "op".into(),
        timezone: tz,
        daily_limit: 1000,
        ledger: Ledger::default(),
        data,
    }]);
    store.operations()[0].clone()
}

pub fn local(s: &str) -> NaiveDateTime {
    parse_date(s).unwrap()
}

/// The local day 2026-11-24.
pub fn day() -> LocalWindow {
    LocalWindow {
        ini: local("2026-11-24 00:00:00"),
        end: local("2026-11-24 23:59:59"),
    }
}

/// A 200 answer carrying `rows`.
pub fn page(rows: &[serde_json::Value]) -> Vec<u8> {
    serde_json::json!({"code": 200, "error": null, "msg": "ok", "data": rows})
        .to_string()
        .into_bytes()
}

/// Feeds one page to the report and returns its tally.
pub fn ingest(
    report: &dyn Ingest,
    op: &OperationStore,
    rows: &[serde_json::Value],
    window: LocalWindow,
) -> Tally {
    match report.ingest(op, 200, &page(rows), window, true, None) {
        Ok(PageOutcome::Counted(t)) => t,
        other => panic!("expected a counted page, got {other:?}"),
    }
}
