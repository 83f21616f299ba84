//! agent_13: one row per transfer or conference, less the share the operation hides
//! (see `SimConfig::hidden_share`); its truth is per agent and interaction.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{Query, Report, Truth};
use crate::answer::{field, push_date, push_hms, push_str};
use crate::model::{SimRecord, Simulator};

/// The agent_13 report.
#[derive(Debug, Clone, Copy)]
pub struct Transfers;

impl Report for Transfers {
    const API: &'static str = "agent_13";
    type Row = SimRecord;

    fn rows(model: &Simulator, q: &Query, now: DateTime<Utc>, cap: usize) -> Vec<SimRecord> {
        model.records_visible(q.ini, q.end, now, cap, |r| !model.hidden(r))
    }

    fn id(row: &SimRecord) -> &str {
        &row.conn_id
    }

    fn date(row: &SimRecord) -> Option<chrono::NaiveDateTime> {
        Some(row.local_date)
    }

    fn write(body: &mut String, r: &SimRecord, shift_hours: i64) {
        body.push('{');
        field(body, true, "agent_name", |b| push_str(b, &r.agent_name));
        field(body, false, "agent_id", |b| push_str(b, &r.agent_id));
        field(body, false, "conn_id", |b| push_str(b, &r.conn_id));
        field(body, false, "date", |b| push_date(b, r.local_date, shift_hours));
        field(body, false, "telephone", |b| push_str(b, &r.telephone));
        field(body, false, "type_interaction", |b| push_str(b, r.interaction));
        field(body, false, "time", |b| push_hms(b, r.duration_secs));
        body.push('}');
    }
}

/// agent_13's truth: per (agent_id, interaction), and each agent's latest name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TransfersTruth {
    pub series: BTreeMap<(String, String), SeriesTruth>,
    /// agent_id → the name on the agent's latest record.
    pub names: BTreeMap<String, String>,
}

/// One series of agent_13's truth.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeriesTruth {
    pub count: u64,
    pub sum_secs: u64,
    pub durations: Vec<u64>,
}

impl SeriesTruth {
    /// Cumulative histogram counts for each upper bound, then +Inf.
    pub fn cumulative_buckets(&self, bounds: &[f64]) -> Vec<u64> {
        let mut out: Vec<u64> = bounds
            .iter()
            .map(|&le| self.durations.iter().filter(|&&d| d as f64 <= le).count() as u64)
            .collect();
        out.push(self.count);
        out
    }
}

impl TransfersTruth {
    /// The truth of these records, in order of time.
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a SimRecord>) -> Self {
        let mut truth = TransfersTruth::default();
        for r in records {
            let series = truth.series.entry((r.agent_id.clone(), r.interaction.to_string())).or_default();
            series.count += 1;
            series.sum_secs += r.duration_secs;
            series.durations.push(r.duration_secs);
            truth.names.insert(r.agent_id.clone(), r.agent_name.clone());
        }
        truth
    }

    pub fn total(&self) -> u64 {
        self.series.values().map(|s| s.count).sum()
    }

    pub fn get(&self, agent_id: &str, interaction: &str) -> Option<&SeriesTruth> {
        self.series.get(&(agent_id.to_string(), interaction.to_string()))
    }

    pub fn count(&self, agent_id: &str, interaction: &str) -> u64 {
        self.get(agent_id, interaction).map_or(0, |s| s.count)
    }
}

impl Truth for TransfersTruth {
    /// The records agent_13 shows: the hidden share left out.
    fn between(model: &Simulator, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        let records = model.records_between(from, to);
        Self::from_records(records.iter().filter(|r| !model.hidden(r)))
    }
}
