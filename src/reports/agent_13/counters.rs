//! agent_13's counters: a duration histogram per agent and interaction with the newest
//! call of each bucket, the late rows and the day tallies; saved in the state and
//! encoded as the report's families.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDateTime;
use enum_map::EnumMap;
use foldhash::fast::RandomState;
use prometheus_client::encoding::NoLabelSet;
use serde::{Deserialize, Serialize};

use super::Families;
use crate::reports::agents::OVERFLOW_AGENT;
use crate::reports::days::DayTallies;
use crate::reports::histogram::Histogram;
use crate::reports::labels::{Interaction, InteractionLabel, OperationAgent, OperationLabel};
use crate::reports::{Encoding, ExemplarLine};

/// One agent's (or the overflow's) series: a histogram per interaction seen.
pub type Series = EnumMap<Interaction, Option<Histogram>>;

/// The newest row in a histogram bucket, shown as an OpenMetrics exemplar.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    pub conn_id: Box<str>,
    pub value: f64,
    /// The row's operation-local date.
    pub date: NaiveDateTime,
}

/// The newest call in each bucket of a series, for exemplars; not persisted.
pub(super) type BucketCalls = EnumMap<Interaction, Vec<Option<Exemplar>>>;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Agent13Counters {
    pub bounds: Vec<f64>,
    pub agents: BTreeMap<Box<str>, Series>,
    pub overflow: Series,
    /// Counts per local day, for a daily report to compare with.
    #[serde(default)]
    pub days: DayTallies,
    /// Rows counted late, per interaction.
    #[serde(default)]
    pub late: EnumMap<Interaction, u64>,
    #[serde(skip)]
    pub(super) calls: HashMap<Box<str>, BucketCalls, RandomState>,
}

impl Agent13Counters {
    /// Counters carried over from an earlier state format.
    pub fn from_parts(
        bounds: Vec<f64>,
        agents: BTreeMap<Box<str>, Series>,
        overflow: Series,
    ) -> Self {
        Agent13Counters {
            bounds,
            agents,
            overflow,
            ..Agent13Counters::default()
        }
    }

    /// Agents in label order, the overflow agent last when it has rows.
    fn sorted(&self) -> impl Iterator<Item = (&str, &Series)> {
        let overflow = self
            .overflow
            .values()
            .any(Option::is_some)
            .then_some((OVERFLOW_AGENT, &self.overflow));
        self.agents
            .iter()
            .map(|(id, s)| (id.as_ref(), s))
            .chain(overflow)
    }

    pub(super) fn encode(&self, family: Families, out: Encoding) -> std::fmt::Result {
        let Encoding {
            operation,
            agents,
            encoder,
            mut exemplars,
        } = out;
        if let Families::Late = family {
            for (interaction, n) in &self.late {
                let labels = (
                    OperationLabel { operation },
                    InteractionLabel { interaction },
                );
                encoder
                    .encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(n, None)?;
            }
            return Ok(());
        }
        for (agent_id, series) in self.sorted() {
            for (interaction, h) in series {
                let Some(h) = h else { continue };
                let labels = (
                    OperationAgent {
                        operation,
                        agent_id,
                    },
                    InteractionLabel { interaction },
                );
                let mut m = encoder.encode_family(&labels)?;
                if let Families::Interactions = family {
                    m.encode_counter::<NoLabelSet, _, u64>(&h.count, None)?;
                    continue;
                }
                m.encode_histogram::<NoLabelSet>(
                    h.sum,
                    h.count,
                    &h.encoder_buckets(&self.bounds),
                    None,
                )?;
                if let Some(sink) = exemplars.as_deref_mut() {
                    let calls = self.calls.get(agent_id).map(|c| &c[interaction]);
                    for bucket in 0..=self.bounds.len() {
                        let e = calls.and_then(|c| c.get(bucket)).and_then(Option::as_ref);
                        sink.push(e.map(|e| ExemplarLine {
                            conn_id: e.conn_id.clone(),
                            value: e.value,
                            timestamp: agents.unix_time(e.date),
                        }));
                    }
                }
            }
        }
        Ok(())
    }
}
