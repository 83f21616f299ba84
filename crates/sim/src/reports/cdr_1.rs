//! cdr_1: one row per call leg of an agent; its truth is per agent and direction.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{Query, Report, Truth};
use crate::answer::{field, push_date, push_str};
use crate::model::{SimCall, Simulator};

/// The cdr_1 report.
#[derive(Debug, Clone, Copy)]
pub struct Calls;

impl Report for Calls {
    const API: &'static str = "cdr_1";
    type Row = SimCall;

    fn rows(model: &Simulator, q: &Query, now: DateTime<Utc>, cap: usize) -> Vec<SimCall> {
        model.calls_visible(q.ini, q.end, now, cap)
    }

    fn id(row: &SimCall) -> &str {
        &row.conn_id
    }

    fn date(row: &SimCall) -> Option<chrono::NaiveDateTime> {
        Some(row.local_date)
    }

    fn write(body: &mut String, c: &SimCall, shift_hours: i64) {
        let skill = c.skill_id.as_deref().unwrap_or("-");
        let skill_name = if skill == "-" { "-" } else { "Servicio al cliente" };
        body.push('{');
        field(body, true, "agent_id", |b| push_str(b, &c.agent_id));
        field(body, false, "agent_name", |b| push_str(b, &c.agent_name));
        field(body, false, "conn_id", |b| push_str(b, &c.conn_id));
        field(body, false, "date", |b| push_date(b, c.local_date, shift_hours));
        field(body, false, "type_interaction", |b| push_str(b, c.kind));
        field(body, false, "skill_id", |b| push_str(b, skill));
        field(body, false, "skill_name", |b| push_str(b, skill_name));
        field(body, false, "campaign_id", |b| push_str(b, "-"));
        field(body, false, "telephone", |b| push_str(b, &c.telephone));
        field(body, false, "customer_id", |b| push_str(b, &c.customer_id));
        field(body, false, "destiny", |b| push_str(b, &c.telephone));
        field(body, false, "time_seg", |b| push_str(b, &c.seconds.to_string()));
        field(body, false, "time_min", |b| push_str(b, &format!("{:.2}", c.seconds as f64 / 60.0)));
        field(body, false, "comment", |b| push_str(b, "cliente pide \"devolución\""));
        field(body, false, "cost", |b| push_str(b, "0"));
        field(body, false, "hang_up", |b| push_str(b, "agent"));
        body.push('}');
    }
}

/// The contract's `direction` of a cdr_1 `type_interaction` (metrics.md).
pub fn direction(kind: &str) -> &'static str {
    match kind {
        "inbound" => "inbound",
        k if k.starts_with("out") => "outbound",
        k if k.starts_with("internal") => "internal",
        _ => "other",
    }
}

/// cdr_1's truth: per (agent_id, direction), the calls and their seconds; and each
/// agent's latest name (every agent with a row in any report has calls).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallsTruth {
    pub series: BTreeMap<(String, String), (u64, u64)>,
    /// agent_id → the name on the agent's latest call.
    pub names: BTreeMap<String, String>,
}

impl CallsTruth {
    /// The truth of these calls, in order of time.
    pub fn from_calls(calls: &[SimCall]) -> Self {
        let mut t = CallsTruth::default();
        for c in calls {
            let s = t.series.entry((c.agent_id.clone(), direction(c.kind).to_owned())).or_default();
            s.0 += 1;
            s.1 += c.seconds;
            t.names.insert(c.agent_id.clone(), c.agent_name.clone());
        }
        t
    }

    pub fn total(&self) -> u64 {
        self.series.values().map(|s| s.0).sum()
    }
}

impl Truth for CallsTruth {
    fn between(model: &Simulator, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        Self::from_calls(&model.calls_between(from, to))
    }
}
