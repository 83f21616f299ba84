//! agent_13_1: one row per transfer or conference leg, with where it went; its truth is
//! per origin, destination and type.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{Query, Report, Truth};
use crate::answer::{field, push_date, push_hms, push_str};
use crate::model::{SimDestination, SimLeg, Simulator};

/// The agent_13_1 report.
#[derive(Debug, Clone, Copy)]
pub struct Legs;

impl Report for Legs {
    const API: &'static str = "agent_13_1";
    type Row = SimLeg;

    fn rows(model: &Simulator, q: &Query, now: DateTime<Utc>, cap: usize) -> Vec<SimLeg> {
        model.legs_visible(q.ini, q.end, now, cap)
    }

    fn id(row: &SimLeg) -> &str {
        &row.leg_id
    }

    fn date(row: &SimLeg) -> Option<chrono::NaiveDateTime> {
        Some(row.local_date)
    }

    fn write(body: &mut String, l: &SimLeg, shift_hours: i64) {
        let (dest_id, dest_name, skill) = match &l.destination {
            SimDestination::Agent { id, name } => (id.as_str(), name.as_str(), "-"),
            SimDestination::Skill(skill) => ("-", "", skill.as_str()),
            SimDestination::External => ("-", "", "-"),
        };
        body.push('{');
        field(body, true, "conn_id_transfer", |b| push_str(b, &l.leg_id));
        field(body, false, "id_call_origin", |b| push_str(b, &l.call_id));
        field(body, false, "date", |b| {
            push_date(b, l.local_date, shift_hours)
        });
        field(body, false, "origin_agent_id", |b| {
            push_str(b, &l.origin_id)
        });
        field(body, false, "origin_agent_name", |b| {
            push_str(b, &l.origin_name)
        });
        field(body, false, "destiny_agent_id", |b| push_str(b, dest_id));
        field(body, false, "destiny_agent_name", |b| {
            push_str(b, dest_name)
        });
        field(body, false, "skill_id", |b| push_str(b, skill));
        field(body, false, "ani", |b| push_str(b, &l.ani));
        field(body, false, "dnis", |b| push_str(b, "6015550100"));
        field(body, false, "time", |b| push_hms(b, l.seconds));
        field(body, false, "type_call", |b| push_str(b, l.kind));
        body.push('}');
    }
}

/// agent_13_1's truth: per (origin_agent_id, destination, type), the legs. The
/// destination is an agent id, `skill:ID` or `external`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlowsTruth {
    pub series: BTreeMap<(String, String, String), u64>,
}

impl FlowsTruth {
    pub fn from_legs(legs: &[SimLeg]) -> Self {
        let mut t = FlowsTruth::default();
        for l in legs {
            let destination = match &l.destination {
                SimDestination::Agent { id, .. } => id.clone(),
                SimDestination::Skill(skill) => format!("skill:{skill}"),
                SimDestination::External => "external".to_owned(),
            };
            *t.series
                .entry((l.origin_id.clone(), destination, l.kind.to_owned()))
                .or_default() += 1;
        }
        t
    }

    pub fn total(&self) -> u64 {
        self.series.values().sum()
    }
}

impl Truth for FlowsTruth {
    fn between(model: &Simulator, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        Self::from_legs(&model.legs_between(from, to))
    }
}
