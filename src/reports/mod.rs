//! A report is data, the engine is behaviour. A report module says what its `api=` is,
//! how a row decodes, what identifies a row and how a row changes the metrics; the
//! engine (`crate::engine`) drives every report the same way through [`Ingest`].

pub mod agent_12;
pub mod agent_13;
pub mod agent_13_1;
mod by_agent;
pub mod cdr_1;
pub mod fields;
mod runner;
#[cfg(test)]
pub(crate) mod testing;

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use chrono::NaiveDateTime;
use enum_map::Enum;
use prometheus_client::encoding::{EncodeLabelValue, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::MetricsConfig;
use crate::store::Agents;
pub use fields::Identity;
pub use runner::{Ingest, LocalWindow, PageOutcome, Runner, Tally, Timeline};

/// The reports the exporter reads; the `report` label. Declared in priority order:
/// when the daily allowance runs short, earlier reports keep polling longest.
#[allow(non_camel_case_types)]
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Enum,
    EncodeLabelValue,
    Serialize,
    Deserialize,
)]
pub enum ReportName {
    agent_13,
    cdr_1,
    agent_13_1,
    agent_12,
}

impl ReportName {
    pub fn as_str(self) -> &'static str {
        kind(self).api
    }

    pub fn parse(text: &str) -> Option<ReportName> {
        KINDS.iter().find(|k| k.api == text.trim()).map(|k| k.name)
    }
}

impl fmt::Display for ReportName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a row was rejected: the `reason` label of `wolkvox_records_invalid_total`.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Enum, EncodeLabelValue)]
pub enum InvalidReason {
    bad_time,
    bad_date,
    missing_field,
    outside_window,
}

impl InvalidReason {
    pub const ALL: [InvalidReason; 4] = [
        InvalidReason::bad_time,
        InvalidReason::bad_date,
        InvalidReason::missing_field,
        InvalidReason::outside_window,
    ];
}

/// What a report module implements. Everything here is pure: no I/O, no clock, no lock.
pub trait Report: Send + Sync + fmt::Debug + 'static {
    const NAME: ReportName;
    /// One row of the answer, borrowing its text from the body.
    type Record<'de>: Deserialize<'de>;
    /// What a valid row changes, borrowing from the row.
    type Change<'r>;
    /// The report's counters for one operation: persisted in the state, rendered.
    type Counters: Counters + Serialize + DeserializeOwned;
    /// One page's worth of changes, folded outside the store's lock.
    type Page: Send;

    fn new_counters(&self) -> Self::Counters;
    /// Checks restored counters against the configuration; `Err` says what is wrong
    /// and they are discarded, `Ok(Some(_))` is a warning.
    fn check_restored(&self, counters: &Self::Counters) -> Result<Option<String>, String>;
    /// What makes a row unique: the same row read twice has the same identity.
    fn identity(&self, row: &Self::Record<'_>) -> Key;
    /// The row's operation-local date, `None` when missing or unreadable.
    fn date(&self, row: &Self::Record<'_>) -> Option<NaiveDateTime>;
    /// Checks the rest of the row.
    fn check<'r>(&self, row: &'r Self::Record<'_>) -> Result<Self::Change<'r>, InvalidReason>;
    /// Folds the page's new, valid rows, each with its date, into one change.
    fn count(&self, rows: Vec<(Self::Change<'_>, NaiveDateTime)>) -> Self::Page;
    /// Applies a page to the counters and the operation's agents, in one step under the
    /// store's lock; returns the rows counted under the overflow agent.
    fn apply(&self, counters: &mut Self::Counters, agents: &mut Agents, page: Self::Page) -> u64;
}

/// What the store asks of any report's counters, for every serializable type.
pub trait StoredCounters: Any + Send + Sync + fmt::Debug {
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// The counters as the state file saves them.
    fn save(&self) -> Box<serde_json::value::RawValue>;
}

impl<T: Any + Send + Sync + fmt::Debug + Serialize> StoredCounters for T {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn save(&self) -> Box<serde_json::value::RawValue> {
        serde_json::value::to_raw_value(self).expect("counters serialize")
    }
}

/// A report's counters for one operation, as the store keeps them.
pub trait Counters: StoredCounters {
    /// Encodes this operation's series of the report's `family`-th family. A histogram
    /// family pushes one entry per bucket to `exemplars` when it is given.
    fn encode(
        &self,
        family: usize,
        operation: &str,
        agents: &Agents,
        encoder: &mut MetricEncoder,
        exemplars: Option<&mut Exemplars>,
    ) -> fmt::Result;
}

/// The newest row in a histogram bucket, shown as an OpenMetrics exemplar.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    pub conn_id: Box<str>,
    pub value: f64,
    /// The row's operation-local date.
    pub date: NaiveDateTime,
}

/// An exemplar as written: its row's instant as Unix time.
#[derive(Debug, Clone, PartialEq)]
pub struct ExemplarLine {
    pub conn_id: Box<str>,
    pub value: f64,
    pub timestamp: i64,
}

/// Exemplars of a histogram family, one entry per bucket line in encoding order.
pub type Exemplars = Vec<Option<ExemplarLine>>;

/// A row's identity, and whether the row has every field the report needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Complete(Identity),
    /// Rejected as `missing_field`, and remembered (by [`Identity::of_incomplete`]) so
    /// that a re-read rejects it only once.
    Incomplete(Identity),
}

/// A metric family a report exports.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub unit: Option<Unit>,
    pub metric_type: MetricType,
}

/// A report in the registry.
#[derive(Debug)]
pub struct Kind {
    pub name: ReportName,
    /// The `api=` parameter.
    pub api: &'static str,
    pub families: &'static [Family],
    /// Enabled when the configuration names no reports.
    pub default_on: bool,
    pub build: fn(&MetricsConfig) -> Arc<dyn Ingest>,
}

/// Every report the exporter knows, in [`ReportName`] order.
pub static KINDS: &[Kind] = &[
    agent_13::KIND,
    cdr_1::KIND,
    agent_13_1::KIND,
    agent_12::KIND,
];

pub fn kind(name: ReportName) -> &'static Kind {
    KINDS
        .iter()
        .find(|k| k.name == name)
        .expect("every report name is registered")
}

/// The reports enabled when the configuration names none.
pub fn defaults() -> Vec<ReportName> {
    KINDS
        .iter()
        .filter(|k| k.default_on)
        .map(|k| k.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_lists_every_name_once_in_order() {
        let names: Vec<_> = KINDS.iter().map(|k| k.name).collect();
        let all: Vec<_> = (0..ReportName::LENGTH)
            .map(ReportName::from_usize)
            .collect();
        assert_eq!(names, all);
        for k in KINDS {
            assert_eq!(ReportName::parse(k.api), Some(k.name));
            assert_eq!(format!("{:?}", k.name), k.api);
        }
        assert_eq!(ReportName::parse("agent_99"), None);
    }
}
