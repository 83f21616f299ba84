//! Ground truth: what a correct exporter counts from a simulated history, per report,
//! worked out here independently of the exporter's own code.

use std::collections::BTreeMap;

use wolkvox_exporter::demo::simulator::{SimCall, SimDestination, SimLeg, SimRecord};

/// agent_13: per (agent_id, interaction).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Truth {
    pub series: BTreeMap<(String, String), SeriesTruth>,
}

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

impl Truth {
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a SimRecord>) -> Self {
        let mut truth = Truth::default();
        for r in records {
            let series = truth
                .series
                .entry((r.agent_id.clone(), r.interaction.to_string()))
                .or_default();
            series.count += 1;
            series.sum_secs += r.duration_secs;
            series.durations.push(r.duration_secs);
        }
        truth
    }

    pub fn total(&self) -> u64 {
        self.series.values().map(|s| s.count).sum()
    }

    pub fn get(&self, agent_id: &str, interaction: &str) -> Option<&SeriesTruth> {
        self.series
            .get(&(agent_id.to_string(), interaction.to_string()))
    }

    pub fn count(&self, agent_id: &str, interaction: &str) -> u64 {
        self.get(agent_id, interaction).map_or(0, |s| s.count)
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

/// cdr_1: per (agent_id, direction), the calls and their seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallsTruth {
    pub series: BTreeMap<(String, String), (u64, u64)>,
}

impl CallsTruth {
    pub fn from_calls(calls: &[SimCall]) -> Self {
        let mut t = CallsTruth::default();
        for c in calls {
            let s = t
                .series
                .entry((c.agent_id.clone(), direction(c.kind).to_owned()))
                .or_default();
            s.0 += 1;
            s.1 += c.seconds;
        }
        t
    }

    pub fn total(&self) -> u64 {
        self.series.values().map(|s| s.0).sum()
    }
}

/// agent_13_1: per (origin_agent_id, destination, type), the legs.
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
