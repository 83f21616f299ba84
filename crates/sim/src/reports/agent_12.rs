//! agent_12: one row per agent with its transfers, conferences and their time over the
//! asked range, counting the records agent_13 hides too; its truth is the same totals,
//! and what they hold beyond agent_13's truth is what a reconciliation reports.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::agent_13::TransfersTruth;
use super::{Query, Report, Truth};
use crate::answer::{field, push_hms, push_str};
use crate::model::{SimRecord, Simulator};

/// The agent_12 report.
#[derive(Debug, Clone, Copy)]
pub struct Totals;

impl Report for Totals {
    const API: &'static str = "agent_12";
    type Row = AgentTotal;

    fn rows(model: &Simulator, q: &Query, now: DateTime<Utc>, _cap: usize) -> Vec<AgentTotal> {
        let records = model.records_visible(q.ini, q.end, now, usize::MAX, |_| true);
        agent_totals(&records).into_values().collect()
    }

    fn id(row: &AgentTotal) -> &str {
        &row.agent_id
    }

    fn write(body: &mut String, t: &AgentTotal, _shift_hours: i64) {
        body.push('{');
        field(body, true, "agent_id", |b| push_str(b, &t.agent_id));
        field(body, false, "agent_name", |b| push_str(b, &t.agent_name));
        field(body, false, "transfer_calls", |b| push_str(b, &t.transfers.to_string()));
        field(body, false, "conference_calls", |b| push_str(b, &t.conferences.to_string()));
        field(body, false, "total_time", |b| push_hms(b, t.seconds));
        body.push('}');
    }
}

/// One agent's agent_12 totals over a range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentTotal {
    pub agent_id: String,
    pub agent_name: String,
    pub transfers: u64,
    pub conferences: u64,
    pub seconds: u64,
}

/// Per-agent totals of agent_13 records, by agent id.
pub fn agent_totals(records: &[SimRecord]) -> BTreeMap<String, AgentTotal> {
    let mut by_agent: BTreeMap<String, AgentTotal> = BTreeMap::new();
    for r in records {
        let t = by_agent
            .entry(r.agent_id.clone())
            .or_insert_with(|| AgentTotal { agent_id: r.agent_id.clone(), ..AgentTotal::default() });
        t.agent_name.clone_from(&r.agent_name);
        match r.interaction {
            "transfer" => t.transfers += 1,
            "conference" => t.conferences += 1,
            _ => {}
        }
        t.seconds += r.duration_secs;
    }
    by_agent
}

/// agent_12's truth: every agent's totals, hidden records included.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TotalsTruth {
    pub agents: BTreeMap<String, AgentTotal>,
}

/// What agent_12 counts beyond agent_13 over the same span.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Difference {
    pub transfers: u64,
    pub conferences: u64,
    /// Agents whose agent_12 totals differ from what agent_13 shows of them.
    pub agents: usize,
}

impl TotalsTruth {
    /// What these totals hold beyond `shown`, agent_13's truth of the same span: what a
    /// reconciliation of that span reports.
    pub fn beyond(&self, shown: &TransfersTruth) -> Difference {
        let mut difference = Difference::default();
        for (id, total) in &self.agents {
            let transfers = total.transfers.saturating_sub(shown.count(id, "transfer"));
            let conferences = total.conferences.saturating_sub(shown.count(id, "conference"));
            difference.transfers += transfers;
            difference.conferences += conferences;
            difference.agents += usize::from(transfers + conferences > 0);
        }
        difference
    }
}

impl Truth for TotalsTruth {
    fn between(model: &Simulator, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        TotalsTruth { agents: agent_totals(&model.records_between(from, to)) }
    }
}
