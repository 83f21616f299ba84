//! agent_13_1: one row per transfer or conference leg, with where it went; its truths
//! are per origin, destination and type, and the transfer chains settled at a watermark.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};

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
        field(body, false, "date", |b| push_date(b, l.local_date, shift_hours));
        field(body, false, "origin_agent_id", |b| push_str(b, &l.origin_id));
        field(body, false, "origin_agent_name", |b| push_str(b, &l.origin_name));
        field(body, false, "destiny_agent_id", |b| push_str(b, dest_id));
        field(body, false, "destiny_agent_name", |b| push_str(b, dest_name));
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
            *t.series.entry((l.origin_id.clone(), destination, l.kind.to_owned())).or_default() += 1;
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

/// The transfer chains a correct exporter has counted once its watermark less
/// `poll.overlap` is `until` (operation-local). The transfer legs of each call, in date
/// order, are cut into chains: a leg more than `horizon` after its chain's first leg
/// starts the next. A chain is settled when its first leg is `horizon` or more before
/// `until`. Counted: settled chains by transfer legs (`1`, `2`, `3+`), and their legs
/// whose destination agent was the origin or destination of an earlier leg of the chain,
/// by the leg's origin agent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChainsTruth {
    /// Settled chains with 1, 2, and 3 or more transfer legs.
    pub chains: [u64; 3],
    pub returned: BTreeMap<String, u64>,
}

impl ChainsTruth {
    pub fn settled(legs: &[SimLeg], until: NaiveDateTime, horizon: Duration) -> Self {
        let mut calls: BTreeMap<&str, Vec<&SimLeg>> = BTreeMap::new();
        for l in legs.iter().filter(|l| l.kind == "transfer") {
            calls.entry(&l.call_id).or_default().push(l);
        }
        let mut t = ChainsTruth::default();
        for legs in calls.values_mut() {
            legs.sort_by_key(|l| (l.local_date, l.at));
            let mut rest = &legs[..];
            while let Some(first) = rest.first() {
                let end = first.local_date + horizon;
                let n = rest.iter().take_while(|l| l.local_date <= end).count();
                let (chain, after) = rest.split_at(n);
                rest = after;
                if end > until {
                    continue;
                }
                t.chains[n.min(3) - 1] += 1;
                let mut held: Vec<&str> = Vec::new();
                for l in chain {
                    if let SimDestination::Agent { id, .. } = &l.destination {
                        if held.contains(&id.as_str()) {
                            *t.returned.entry(l.origin_id.clone()).or_default() += 1;
                        }
                        held.push(id);
                    }
                    held.push(&l.origin_id);
                }
            }
        }
        t
    }

    pub fn total(&self) -> u64 {
        self.chains.iter().sum()
    }
}
