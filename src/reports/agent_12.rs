//! `agent_12`, per-agent totals of transfers and conferences over a range. Read once for
//! each local day, some time after the day's end, and compared with the agent_13 records
//! the exporter counted with a date in that day: a proof, or a disproof, that it counted
//! what Wolkvox reports.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::NaiveDate;
use prometheus_client::encoding::{EncodeLabelSet, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;
use serde::{Deserialize, Serialize};

use super::agent_13::{Agent13Counters, DayCount, Interaction};
use super::fields::present;
use super::{
    Counters, Exemplars, Family, Ingest, InvalidReason, Kind, LocalWindow, PageOutcome, ReportName,
    Tally,
};
use crate::client::{interpret, Answer, ApiError, Item, Text};
use crate::metrics::labels::OperationLabel;
use crate::store::{Agents, OperationStore};

pub const KIND: Kind = Kind {
    name: ReportName::agent_12,
    api: "agent_12",
    families: &[
        Family {
            name: "wolkvox_reconciliation_difference",
            help: "For the last reconciled local day: agent_12's total minus the agent_13 records the exporter counted with a date in that day (0 = they agree).",
            unit: None,
            metric_type: MetricType::Gauge,
        },
        Family {
            name: "wolkvox_reconciliation_day_timestamp",
            help: "Start (operation-local midnight, as Unix time) of the last reconciled local day.",
            unit: Some(Unit::Seconds),
            metric_type: MetricType::Gauge,
        },
        Family {
            name: "wolkvox_reconciliation_agents_mismatched",
            help: "Agents whose agent_12 totals differ from the agent_13 records counted for the last reconciled local day.",
            unit: None,
            metric_type: MetricType::Gauge,
        },
    ],
    default_on: true,
    build: |_| Arc::new(Reconciler),
};

/// One row: an agent's totals (one documentation table names the agent `skill_name`).
#[derive(Debug, Deserialize)]
struct Row<'a> {
    #[serde(borrow, default)]
    agent_id: Text<'a>,
    #[serde(borrow, default)]
    transfer_calls: Text<'a>,
    #[serde(borrow, default)]
    conference_calls: Text<'a>,
}

/// The last reconciled day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciled {
    pub day: NaiveDate,
    /// The day's start as Unix time.
    pub day_start: i64,
    /// agent_12 less agent_13, transfers then conferences.
    pub difference: [i64; 2],
    pub mismatched: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Reconciliation {
    pub last: Option<Reconciled>,
}

#[derive(Debug)]
pub struct Reconciler;

#[derive(EncodeLabelSet)]
struct InteractionLabel {
    interaction: Interaction,
}

impl Ingest for Reconciler {
    fn name(&self) -> ReportName {
        ReportName::agent_12
    }

    fn daily(&self) -> bool {
        true
    }

    fn new_counters(&self) -> Box<dyn Counters> {
        Box::new(Reconciliation::default())
    }

    fn restore(
        &self,
        saved: &serde_json::value::RawValue,
    ) -> Result<(Box<dyn Counters>, Option<String>), String> {
        let r: Reconciliation =
            serde_json::from_str(saved.get()).map_err(|e| format!("unreadable: {e}"))?;
        Ok((Box::new(r), None))
    }

    /// Compares agent_12's totals for the local day `window` covers with the agent_13
    /// records counted for it; a 404 (no records) is a day of zeros.
    fn ingest(
        &self,
        op: &OperationStore,
        status: u16,
        body: &[u8],
        window: LocalWindow,
        _may_split: bool,
        _timeline: Option<&mut dyn super::Timeline>,
    ) -> Result<PageOutcome, ApiError> {
        let rows = match interpret::<Row>(status, body)? {
            Answer::Empty => Vec::new(),
            Answer::Records(rows) => rows,
        };
        let mut tally = Tally {
            received: rows.len() as u64,
            ..Tally::default()
        };
        let mut totals: BTreeMap<&str, DayCount> = BTreeMap::new();
        for item in &rows {
            let counts = match item {
                Item::Record(r) => parse(r),
                Item::NotAnObject => None,
            };
            match counts {
                Some((agent, n)) => {
                    let t = totals.entry(agent).or_default();
                    t[0] += n[0];
                    t[1] += n[1];
                    tally.counted += 1;
                }
                None => tally.invalid[InvalidReason::missing_field] += 1,
            }
        }
        let day = window.ini.date();
        let mut data = op.data();
        let counted = data.reports[ReportName::agent_13]
            .as_ref()
            .and_then(|s| s.counters.as_any().downcast_ref::<Agent13Counters>())
            .and_then(|c| c.days.day(day));
        let Some(counted) = counted else {
            tracing::warn!(operation = %op.name, day = %day, "agent_13's counts of the day are no longer kept; the day is not reconciled");
            data.report(ReportName::agent_12).health.count_page(&tally);
            return Ok(PageOutcome::Counted(tally));
        };
        let agents: BTreeSet<&str> = totals
            .keys()
            .copied()
            .chain(counted.keys().map(|k| k.as_ref()))
            .collect();
        let mut difference = [0i64; 2];
        let mut mismatched = Vec::new();
        for agent in agents {
            let theirs = totals.get(agent).copied().unwrap_or_default();
            let ours = counted.get(agent).copied().unwrap_or_default();
            difference[0] += theirs[0] as i64 - ours[0] as i64;
            difference[1] += theirs[1] as i64 - ours[1] as i64;
            if theirs != ours {
                mismatched.push(agent.to_owned());
            }
        }
        let day_start = data.agents.unix_time(window.ini);
        let slot = data.report(ReportName::agent_12);
        slot.health.count_page(&tally);
        let reconciliation = slot
            .counters
            .as_any_mut()
            .downcast_mut::<Reconciliation>()
            .expect("agent_12's slot holds its reconciliation");
        reconciliation.last = Some(Reconciled {
            day,
            day_start,
            difference,
            mismatched: mismatched.len() as u64,
        });
        if let Some(c) = data.reports[ReportName::agent_13].as_mut() {
            if let Some(c) = c.counters.as_any_mut().downcast_mut::<Agent13Counters>() {
                c.days.forget_through(day);
            }
        }
        drop(data);
        if mismatched.is_empty() {
            tracing::info!(operation = %op.name, day = %day, "agent_12 agrees with the records counted for the day");
        } else {
            tracing::warn!(
                operation = %op.name,
                day = %day,
                transfers = difference[0],
                conferences = difference[1],
                agents = %mismatched.join(","),
                "agent_12's totals differ from the records counted for the day"
            );
        }
        Ok(PageOutcome::Counted(tally))
    }
}

/// An agent's transfers and conferences; `None` for a row without an id or numbers.
fn parse<'r>(r: &'r Row<'_>) -> Option<(&'r str, DayCount)> {
    let number = |t: &Text<'_>| present(t).and_then(|n| n.parse::<u64>().ok());
    Some((
        present(&r.agent_id)?,
        [number(&r.transfer_calls)?, number(&r.conference_calls)?],
    ))
}

impl Counters for Reconciliation {
    fn encode(
        &self,
        family: usize,
        operation: &str,
        _: &Agents,
        encoder: &mut MetricEncoder,
        _: Option<&mut Exemplars>,
    ) -> std::fmt::Result {
        let Some(last) = &self.last else {
            return Ok(());
        };
        let op = OperationLabel { operation };
        match family {
            0 => {
                for (interaction, d) in [
                    (Interaction::transfer, last.difference[0]),
                    (Interaction::conference, last.difference[1]),
                ] {
                    encoder
                        .encode_family(&(op, InteractionLabel { interaction }))?
                        .encode_gauge(&d)?;
                }
                Ok(())
            }
            1 => encoder.encode_family(&op)?.encode_gauge(&last.day_start),
            _ => encoder
                .encode_family(&op)?
                .encode_gauge(&(last.mismatched as i64)),
        }
    }
}
