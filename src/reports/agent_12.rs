//! `agent_12`, per-agent totals of transfers and conferences over a range. Read once for
//! each local day, some time after the day's end, and compared with the agent_13 records
//! counted with a date in that day: a proof, or a disproof, that the exporter counted
//! what Wolkvox reports.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime};
use enum_map::{Enum, EnumMap};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;
use serde::{Deserialize, Serialize};

use super::agents::Agents;
use super::days::DayCount;
use super::fields::{present, Identity};
use super::labels::Interaction;
use super::{
    agent_13, Applied, Counted, Encoding, Family, InvalidReason, Key, Kind, Notice, Report, ReportName,
    Schedule, SourceDay,
};
use crate::client::Text;

pub const NAME: ReportName = ReportName::new("agent_12");

pub const KIND: Kind = Kind {
    name: NAME,
    schedule: Schedule::DailyAfter { source: agent_13::NAME },
    default_on: true,
    build: |_| Arc::new(Reconciler),
};

#[derive(Debug, Clone, Copy, Enum)]
pub enum Families {
    Difference,
    Day,
    Mismatched,
}

/// One row: an agent's totals (one documentation table names the agent `skill_name`).
#[derive(Debug, Default, Deserialize)]
#[serde(default, bound(deserialize = "'de: 'a"))]
pub struct Row<'a> {
    agent_id: Text<'a>,
    transfer_calls: Text<'a>,
    conference_calls: Text<'a>,
}

/// The last reconciled day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciled {
    pub day: NaiveDate,
    /// The day's start as Unix time.
    pub day_start: i64,
    /// agent_12 less agent_13: transfers, conferences.
    pub difference: [i64; 2],
    pub mismatched: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Reconciliation {
    pub last: Option<Reconciled>,
}

#[derive(Debug)]
pub struct Reconciler;

/// The interactions agent_12 totals.
const COMPARED: [Interaction; 2] = [Interaction::transfer, Interaction::conference];

impl Report for Reconciler {
    const NAME: ReportName = NAME;
    type Record<'de> = Row<'de>;
    type Change<'r> = (&'r str, DayCount);
    type Counters = Reconciliation;
    type Page = BTreeMap<Box<str>, DayCount>;
    type Family = Families;

    fn family(family: Families) -> Family {
        let (name, help, unit) = match family {
            Families::Difference => ("wolkvox_reconciliation_difference", "For the last reconciled local day: agent_12's total minus the agent_13 records the exporter counted with a date in that day (0 = they agree).", None),
            Families::Day => ("wolkvox_reconciliation_day_timestamp", "Start (operation-local midnight, as Unix time) of the last reconciled local day.", Some(Unit::Seconds)),
            Families::Mismatched => ("wolkvox_reconciliation_agents_mismatched", "Agents whose agent_12 totals differ from the agent_13 records counted for the last reconciled local day.", None),
        };
        Family { name, help, unit, metric_type: MetricType::Gauge }
    }

    fn identity(&self, r: &Row<'_>) -> Key {
        Key::Complete(Identity::of(&[r.agent_id.get().unwrap_or("")]))
    }

    /// The rows are the totals of the day asked for: they carry no date.
    fn date(&self, _: &Row<'_>) -> Option<NaiveDateTime> {
        None
    }

    fn check<'r>(&self, r: &'r Row<'_>) -> Result<(&'r str, DayCount), InvalidReason> {
        let number = |t: &Text<'_>| present(t).and_then(|n| n.parse::<u64>().ok());
        let agent = present(&r.agent_id).ok_or(InvalidReason::missing_field)?;
        let (Some(transfers), Some(conferences)) = (number(&r.transfer_calls), number(&r.conference_calls))
        else {
            return Err(InvalidReason::missing_field);
        };
        Ok((agent, DayCount(EnumMap::from_array([transfers, conferences, 0]))))
    }

    fn count(&self, rows: Vec<Counted<(&str, DayCount)>>) -> Self::Page {
        let mut totals: Self::Page = BTreeMap::new();
        for row in rows {
            let (agent, n) = row.change;
            let t = totals.entry(agent.into()).or_default();
            for (interaction, k) in n.0 {
                t.0[interaction] += k;
            }
        }
        totals
    }

    /// Compares the day's totals with the agent_13 records counted for it.
    fn apply(
        &self,
        c: &mut Reconciliation,
        _: &mut Agents,
        totals: Self::Page,
        source: Option<&SourceDay>,
    ) -> Applied {
        let Some(SourceDay { day, start, counts }) = source else {
            return Applied::default();
        };
        let Some(counted) = counts else {
            return notice(
                true,
                format!("agent_13's counts of {day} are no longer kept; the day is not reconciled"),
            );
        };
        let agents: BTreeSet<&str> = totals.keys().chain(counted.keys()).map(|k| k.as_ref()).collect();
        let mut difference = [0; 2];
        let mut mismatched = Vec::new();
        for agent in agents {
            let theirs = totals.get(agent).copied().unwrap_or_default();
            let ours = counted.get(agent).copied().unwrap_or_default();
            let mut differs = false;
            for (d, i) in difference.iter_mut().zip(COMPARED) {
                *d += theirs.0[i] as i64 - ours.0[i] as i64;
                differs |= theirs.0[i] != ours.0[i];
            }
            if differs {
                mismatched.push(agent);
            }
        }
        c.last = Some(Reconciled {
            day: *day,
            day_start: *start,
            difference,
            mismatched: mismatched.len() as u64,
        });
        if mismatched.is_empty() {
            notice(false, format!("agent_12 agrees with the records counted for {day}"))
        } else {
            notice(true, format!(
                "agent_12's totals for {day} differ from the records counted: transfers {:+}, conferences {:+}, agents {}",
                difference[0],
                difference[1],
                mismatched.join(",")
            ))
        }
    }

    fn encode(&self, c: &Reconciliation, family: Families, out: Encoding) -> std::fmt::Result {
        let Some(last) = &c.last else {
            return Ok(());
        };
        let op = [("operation", out.operation)];
        let m = out.encoder;
        match family {
            Families::Difference => {
                for (interaction, d) in COMPARED.into_iter().zip(&last.difference) {
                    m.encode_family(&(op, [("interaction", interaction)]))?.encode_gauge(d)?;
                }
                Ok(())
            }
            Families::Day => m.encode_family(&op)?.encode_gauge(&last.day_start),
            Families::Mismatched => m.encode_family(&op)?.encode_gauge(&(last.mismatched as i64)),
        }
    }
}

fn notice(warning: bool, message: String) -> Applied {
    Applied { overflowed: 0, notices: vec![Notice { warning, message }] }
}
