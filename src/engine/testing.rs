//! Helpers for unit tests of the reports and the engine: an operation in a store, and
//! pages fed through the engine's ingest as JSON.

use std::sync::Arc;

use chrono::NaiveDateTime;

use super::ingest::{ingest as ingest_page, Outcome, PageSpec, Tally};
use crate::config::MetricsConfig;
use crate::reports::agents::Agents;
use crate::reports::fields::parse_date;
use crate::reports::{kind, ReportName};
use crate::store::{
    DailyUse, Ledger, NewOperation, OpData, OperationStore, ReportHealth, ReportLedger, ReportSlot, Store,
};

pub fn metrics(bounds: &[f64], max_agents: usize) -> MetricsConfig {
    MetricsConfig {
        duration_buckets: bounds.to_vec(),
        max_agents,
        exemplars: true,
        max_flows: 20_000,
        chain_horizon: std::time::Duration::from_secs(2 * 3600),
        max_open_chains: 200_000,
    }
}

/// The data of an operation on Colombia time following `names`, nothing counted yet.
pub fn empty_data(metrics: &MetricsConfig, names: &[ReportName]) -> (OpData, Ledger) {
    let settings = metrics.settings();
    let reports = names
        .iter()
        .map(|&name| {
            let report = (kind(name).build)(&settings);
            ReportSlot {
                counters: report.new_counters(),
                report,
                schedule: kind(name).schedule,
                interval: std::time::Duration::from_secs(300),
                health: ReportHealth::default(),
            }
        })
        .collect();
    let data = OpData {
        agents: Agents::new(metrics.max_agents, chrono_tz::America::Bogota),
        reports,
        daily: DailyUse::new(chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()),
        planned_daily: 0,
        last_error: None,
        restarts: 0,
    };
    let ledger = Ledger { reports: names.iter().map(|_| ReportLedger::default()).collect() };
    (data, ledger)
}

/// A store of one operation, `op`, on Colombia time following `names`.
pub fn store(metrics: &MetricsConfig, names: &[ReportName]) -> Arc<Store> {
    let (data, ledger) = empty_data(metrics, names);
    Arc::new(Store::new(vec![NewOperation {
        name: "op".into(),
        timezone: chrono_tz::America::Bogota,
        daily_limit: 1000,
        ledger,
        data,
    }]))
}

/// One operation on Colombia time following `names`.
pub fn operation(metrics: &MetricsConfig, names: &[ReportName]) -> Arc<OperationStore> {
    store(metrics, names).operations()[0].clone()
}

pub fn local(s: &str) -> NaiveDateTime {
    parse_date(s).unwrap()
}

/// The local day 2026-11-24, nothing late.
pub fn day() -> PageSpec {
    PageSpec {
        ini: local("2026-11-24 00:00:00"),
        end: local("2026-11-24 23:59:59"),
        may_split: true,
        late_before: None,
        overlap: chrono::Duration::minutes(30),
    }
}

/// A 200 answer carrying `rows`.
pub fn page(rows: &[serde_json::Value]) -> Vec<u8> {
    serde_json::json!({"code": 200, "error": null, "msg": "ok", "data": rows}).to_string().into_bytes()
}

/// Feeds one page to report `name` of `op` and returns its tally.
pub fn ingest(op: &OperationStore, name: ReportName, rows: &[serde_json::Value], spec: PageSpec) -> Tally {
    let index = op.read().position(name).expect("the report is enabled");
    match ingest_page(op, index, 200, &page(rows), spec, None) {
        Ok(Outcome::Counted(t)) => t,
        other => panic!("expected a counted page, got {other:?}"),
    }
}

/// Lets report `name` of `op` count what waited for every row dated before `until`
/// (operation-local), as the engine does when the report's watermark moves.
pub fn settle(op: &OperationStore, name: ReportName, until: &str) -> crate::reports::Applied {
    let mut data = op.data();
    let index = data.position(name).expect("the report is enabled");
    super::ingest::settle(&mut data, index, local(until))
}

/// Reads report `name`'s counters of `op`, typed.
pub fn with_counters<C: 'static, T>(op: &OperationStore, name: ReportName, f: impl FnOnce(&C) -> T) -> T {
    let data = op.read();
    let slot = &data.reports[data.position(name).expect("the report is enabled")];
    f(slot.counters.downcast_ref().expect("the report's counters"))
}
