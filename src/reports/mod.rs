//! Reports are data, the engine is behaviour. A report module says what its `api=` is,
//! how it is polled, how a row decodes, what identifies and dates a row, and how rows
//! change its counters; [`KINDS`] is the registry. Nothing here sees the store.

pub mod agent_12;
pub mod agent_13;
pub mod agent_13_1;
pub mod agents;
mod by_agent;
pub mod cdr_1;
pub mod days;
mod erased;
mod exemplars;
pub mod fields;
pub mod histogram;
pub mod labels;

use std::fmt;
use std::sync::Arc;

use chrono::NaiveDateTime;
use enum_map::Enum;
use prometheus_client::encoding::MetricEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::client::Text;
pub use crate::vocab::{InvalidReason, ReportName};
use agents::Agents;
use days::DayTallies;
pub use erased::{Counters, DynReport, FamilyId, Folded, Read, Sieve};
pub(crate) use exemplars::ExemplarWriter;
pub use exemplars::Exemplars;
pub use fields::Identity;

/// How a report is polled: data on its kind, from which the engine plans every report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Windows from the report's cursor up to now less `poll.delay`, every interval,
    /// re-reading `poll.overlap`; rows are identified, so a re-read counts nothing twice.
    Windowed,
    /// Each operation-local day once, `poll.reconcile_delay` after it ends, once report
    /// `source` has read the day whole while it still keeps the day's tallies, which
    /// `apply` then receives. The rows are the day's totals.
    DailyAfter { source: ReportName },
}

/// What the reports are built from (the `metrics` part of the configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub duration_buckets: Vec<f64>,
    /// OpenMetrics exemplars (`conn_id`) on the duration histogram's buckets.
    pub exemplars: bool,
    /// Series of `wolkvox_transfer_flows_total` before new ones count as `_overflow`.
    pub max_flows: usize,
    /// How long after a transfer chain's first leg its call's legs still join it.
    pub chain_horizon: std::time::Duration,
    /// Open transfer chains per operation before the oldest settle early.
    pub max_open_chains: usize,
}

/// A report in the registry.
#[derive(Debug)]
pub struct Kind {
    pub name: ReportName,
    pub schedule: Schedule,
    /// Enabled when the configuration names no reports.
    pub default_on: bool,
    pub build: fn(&Settings) -> Arc<dyn DynReport>,
}

/// Every report the exporter knows, in priority order: when the daily allowance runs
/// short, earlier reports keep polling longest.
pub static KINDS: &[Kind] = &[agent_13::KIND, cdr_1::KIND, agent_13_1::KIND, agent_12::KIND];

/// The report called `name` (its `api=`), if it exists.
pub fn find(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name.as_str() == name.trim())
}

pub fn kind(name: ReportName) -> &'static Kind {
    KINDS.iter().find(|k| k.name == name).expect("every report name is registered")
}

/// A report's place in the priority order.
pub fn priority(name: ReportName) -> usize {
    KINDS.iter().position(|k| k.name == name).unwrap_or(usize::MAX)
}

/// The reports enabled when the configuration names none.
pub fn defaults() -> Vec<ReportName> {
    KINDS.iter().filter(|k| k.default_on).map(|k| k.name).collect()
}

/// What a report module implements. Everything here is pure: no I/O, no clock, no lock.
pub trait Report: Send + Sync + fmt::Debug + 'static {
    const NAME: ReportName;
    /// One row of the answer, borrowing its text from the body.
    type Record<'de>: Deserialize<'de>;
    /// What a valid row changes, borrowing from the row.
    type Change<'r>;
    /// The report's counters for one operation: persisted in the state, rendered.
    type Counters: Serialize + DeserializeOwned + Default + Send + Sync + fmt::Debug + 'static;
    /// One page's worth of changes, folded outside the store's lock.
    type Page: Send + 'static;
    /// The metric families the report exports.
    type Family: Enum + Copy + fmt::Debug;

    fn family(family: Self::Family) -> Family;
    fn new_counters(&self) -> Self::Counters {
        Self::Counters::default()
    }
    /// Checks restored counters against the settings; `Err` says what is wrong and they
    /// are discarded, `Ok(Some(_))` is a warning.
    fn check_restored(&self, _counters: &Self::Counters) -> Result<Option<String>, String> {
        Ok(None)
    }
    /// What makes a row unique: the same row read twice has the same identity.
    fn identity(&self, row: &Self::Record<'_>) -> Key;
    /// The row's operation-local date, `None` when missing or unreadable.
    fn date(&self, row: &Self::Record<'_>) -> Option<NaiveDateTime>;
    /// Checks the rest of the row.
    fn check<'r>(&self, row: &'r Self::Record<'_>) -> Result<Self::Change<'r>, InvalidReason>;
    /// Folds the page's new, valid rows into one change.
    fn count(&self, rows: Vec<Counted<Self::Change<'_>>>) -> Self::Page;
    /// Applies a page to the counters and the operation's agents, in one step under the
    /// store's lock. A daily report gets the day and its source's counts of it.
    fn apply(
        &self,
        counters: &mut Self::Counters,
        agents: &mut Agents,
        page: Self::Page,
        source: Option<&SourceDay>,
    ) -> Applied;
    /// Every row dated before `until` has been read (the watermark less the overlap):
    /// whatever waited for that is counted now.
    fn settle(&self, _counters: &mut Self::Counters, _: &mut Agents, _until: NaiveDateTime) -> Applied {
        Applied::default()
    }
    /// The counts per local day that a daily report reads, for the reports that keep them.
    fn day_tallies(_counters: &mut Self::Counters) -> Option<&mut DayTallies> {
        None
    }
    /// Encodes one operation's series of `family`.
    fn encode(&self, counters: &Self::Counters, family: Self::Family, out: Encoding) -> fmt::Result;
}

/// A row to count: what it changes, its local date, and whether it arrived late (more
/// than two polls and the delay after its date).
#[derive(Debug)]
pub struct Counted<C> {
    pub change: C,
    pub date: NaiveDateTime,
    pub late: bool,
}

impl Key {
    /// `Complete` by `key` when the row has every field the report needs, otherwise
    /// `Incomplete` by all of its `fields`.
    pub fn of<const N: usize>(key: Option<[&str; N]>, fields: &[&Text<'_>]) -> Key {
        match key {
            Some(key) => Key::Complete(Identity::of(&key)),
            None => Key::Incomplete(Identity::of_incomplete(fields)),
        }
    }
}

/// What a daily report compares its page with: the local day, its start (Unix time),
/// and the source report's counts of it per agent (`None`: no longer kept).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceDay {
    pub day: chrono::NaiveDate,
    pub start: i64,
    pub counts: Option<std::collections::BTreeMap<Box<str>, days::DayCount>>,
}

/// A row's identity, and whether the row has every field the report needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Complete(Identity),
    /// Rejected as `missing_field`, and remembered (by [`Identity::of_incomplete`]) so
    /// that a re-read rejects it only once.
    Incomplete(Identity),
}

/// What applying a page or settling did besides changing the counters.
#[derive(Debug, Default, PartialEq)]
pub struct Applied {
    /// Rows counted under the overflow agent (`max_agents` reached).
    pub overflowed: u64,
    /// What the engine logs for the report.
    pub notices: Vec<Notice>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub warning: bool,
    pub message: String,
}

/// A metric family's description.
#[derive(Debug, Clone)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub unit: Option<Unit>,
    pub metric_type: MetricType,
}

/// Where a report encodes one operation's series.
pub struct Encoding<'a, 'e> {
    pub operation: &'a str,
    pub agents: &'a Agents,
    pub encoder: &'a mut MetricEncoder<'e>,
    /// For a histogram family in OpenMetrics: where each series' exemplars go, every
    /// series' (even with none) before its buckets are encoded.
    pub exemplars: Option<&'a Exemplars>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_names_each_report_once_and_dependencies_exist() {
        for (i, k) in KINDS.iter().enumerate() {
            assert_eq!(find(k.name.as_str()).map(|f| f.name), Some(k.name));
            assert_eq!(priority(k.name), i);
            if let Schedule::DailyAfter { source } = k.schedule {
                assert!(priority(source) < i, "{} reads a later report", k.name);
            }
        }
        assert!(find("agent_99").is_none());
    }
}
