//! Reads a version 1 state (before reports: one agent_13 history per operation) as a
//! version 2 one, so an upgrade keeps every counter, cursor and remembered row.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{OpState, ReportState, StateFile, VERSION};
use crate::reports::agent_13::{self, Agent13Counters, Series};
use crate::reports::agents::AgentInfo;
use crate::reports::histogram::Histogram;
use crate::store::DailyUse;

#[derive(Deserialize)]
struct V1File {
    saved_at: DateTime<Utc>,
    operations: BTreeMap<String, V1Operation>,
}

#[derive(Deserialize)]
struct V1Operation {
    cursor: Option<DateTime<Utc>>,
    daily: Option<DailyUse>,
    bounds: Vec<f64>,
    agents: Vec<(String, V1Agent)>,
    overflow: V1Agent,
    overflow_records: u64,
    seen: Vec<(u64, u64, i64)>,
}

#[derive(Deserialize)]
struct V1Agent {
    name: Box<str>,
    name_date: i64,
    /// transfer, conference, other: `Interaction`'s order.
    series: [Option<Histogram>; 3],
}

/// Converts the text of a version 1 state file.
pub fn convert(text: &[u8]) -> Result<StateFile, serde_json::Error> {
    let v1: V1File = serde_json::from_slice(text)?;
    let mut operations = BTreeMap::new();
    for (name, op) in v1.operations {
        let (mut agents, mut series) = (Vec::new(), BTreeMap::new());
        for (id, a) in op.agents {
            // Version 1 kept no first-seen dates: carried-over agents get 0 ("before the
            // upgrade"), so they do not show as new consultants.
            agents.push((id.clone(), AgentInfo { name: a.name, name_date: a.name_date, first_seen: 0 }));
            series.insert(id.into_boxed_str(), Series::from_array(a.series));
        }
        let counters = Agent13Counters::from_parts(op.bounds, series, Series::from_array(op.overflow.series));
        let report = ReportState {
            cursor: op.cursor,
            // Version 1 kept no day counts: days are reconciled from the upgrade on.
            since: op.cursor,
            density: Default::default(),
            seen: op.seen,
            counters: serde_json::value::to_raw_value(&counters)?,
        };
        let reports = BTreeMap::from([(agent_13::NAME.to_string(), report)]);
        let state = OpState { daily: op.daily, agents, overflow_records: op.overflow_records, reports };
        operations.insert(name, state);
    }
    Ok(StateFile { version: VERSION, saved_at: v1.saved_at, operations })
}
