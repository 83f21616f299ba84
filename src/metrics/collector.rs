//! Encodes the store with prometheus-client: every report's families, the agents, then
//! the exporter's own health; each family once, with the series of every operation.

use std::fmt;
use std::sync::{Arc, MutexGuard};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use super::Exemplars;
use crate::reports::agents::{OVERFLOW_AGENT, OVERFLOW_NAME};
use crate::reports::{Encoding, ReportName, KINDS};
use crate::store::{OpData, OperationStore, Store};
use crate::web::ReloadStats;

#[derive(Debug)]
pub(super) struct StoreCollector {
    pub store: Arc<Store>,
    pub web: Arc<ReloadStats>,
    /// On while the renderer encodes OpenMetrics with exemplars.
    pub exemplars: Exemplars,
}

/// Every operation, each under its own lock.
pub(super) type Ops<'a> = [(&'a OperationStore, MutexGuard<'a, OpData>)];

impl Collector for StoreCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        // Every operation is read at one instant, each under its own lock, in store order.
        let ops: Vec<_> = self.store.operations().iter().map(|op| (op.as_ref(), op.read())).collect();
        let exemplars = Some(&self.exemplars).filter(|x| x.is_on());
        encode_reports(&mut e, &ops, exemplars, None)?;
        encode_agents(&mut e, &ops)?;
        super::health::encode(&mut e, &ops)?;
        super::health::encode_process(&mut e, &self.store, &self.web)
    }
}

/// One operation's data families, without exemplars: a report's, or the agents'.
#[derive(Debug)]
pub(super) struct DataCollector {
    pub op: Arc<OperationStore>,
    pub part: DataPart,
}

/// A part of an operation's data families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataPart {
    Report(ReportName),
    /// `wolkvox_agent_info` and `wolkvox_agent_first_seen_timestamp_seconds`.
    Agents,
}

impl Collector for DataCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let ops = [(self.op.as_ref(), self.op.read())];
        match self.part {
            DataPart::Report(name) => encode_reports(&mut e, &ops, None, Some(name)),
            DataPart::Agents => encode_agents(&mut e, &ops),
        }
    }
}

/// Every report's families, or only those of report `only`; a report no operation
/// follows has none.
fn encode_reports(
    e: &mut DescriptorEncoder,
    ops: &Ops,
    exemplars: Option<&Exemplars>,
    only: Option<ReportName>,
) -> fmt::Result {
    for kind in KINDS.iter().filter(|k| only.is_none_or(|n| n == k.name)) {
        let following: Vec<_> = ops
            .iter()
            .filter_map(|(op, data)| {
                let slot = &data.reports[data.position(kind.name)?];
                Some((op, data, slot))
            })
            .collect();
        let Some((_, _, first)) = following.first() else {
            continue;
        };
        for (id, family) in first.report.families() {
            let mut m =
                e.encode_descriptor(family.name, family.help, family.unit.as_ref(), family.metric_type)?;
            let want = exemplars.filter(|_| family.metric_type == MetricType::Histogram);
            if let Some(x) = want {
                let unit = family.unit.as_ref().map_or(String::new(), |u| format!("_{}", u.as_str()));
                x.family(format!("{}{unit}_bucket{{", family.name));
            }
            for (op, data, slot) in &following {
                let out =
                    Encoding { operation: &op.name, agents: &data.agents, encoder: &mut m, exemplars: want };
                slot.report.encode(&slot.counters, id, out)?;
            }
        }
    }
    Ok(())
}

fn encode_agents(e: &mut DescriptorEncoder, ops: &Ops) -> fmt::Result {
    {
        let mut m = e.encode_descriptor(
            "wolkvox_agent_info",
            "The newest name seen for each agent in any report (value 1); join on operation and agent_id.",
            None,
            MetricType::Gauge,
        )?;
        for (op, data) in ops {
            let overflow = (data.agents.overflow_records > 0).then_some((OVERFLOW_AGENT, OVERFLOW_NAME, 0));
            for (agent_id, agent_name, _) in data.agents.sorted().into_iter().chain(overflow) {
                let labels =
                    [("operation", op.name.as_str()), ("agent_id", agent_id), ("agent_name", agent_name)];
                m.encode_family(&labels)?.encode_gauge(&1i64)?;
            }
        }
    }
    let mut m = e.encode_descriptor(
        "wolkvox_agent_first_seen_timestamp",
        "The instant of the agent's earliest record in any report (backfill included).",
        Some(&Unit::Seconds),
        MetricType::Gauge,
    )?;
    for (op, data) in ops {
        for (agent_id, _, first_seen) in data.agents.sorted() {
            let labels = [("operation", op.name.as_str()), ("agent_id", agent_id)];
            m.encode_family(&labels)?.encode_gauge(&first_seen)?;
        }
    }
    Ok(())
}
