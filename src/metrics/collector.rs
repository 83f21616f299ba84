//! Encodes the store with prometheus-client: every report's families, the agents, then
//! the exporter's own health; each family once, with the series of every operation.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use super::labels::{
    AgentInfoLabels, ErrorLabel, InvalidLabel, OperationAgent, OperationLabel, OperationReport,
};
use super::{REVISION, VERSION};
use crate::client::ErrorReason;
use crate::reports::{Exemplars, InvalidReason, KINDS};
use crate::store::{
    OpData, OperationStore, ReportHealth, Store, API_LATENCY_BUCKETS, OVERFLOW_AGENT, OVERFLOW_NAME,
};
use crate::web::ReloadStats;

/// The bucket lines of each histogram family that has exemplars, in encoding order.
pub type FamilyExemplars = Vec<(String, Exemplars)>;

#[derive(Debug)]
pub(super) struct StoreCollector {
    pub store: Arc<Store>,
    pub web: Arc<ReloadStats>,
    /// `Some` while the renderer encodes OpenMetrics: collects the exemplars.
    pub exemplars: Mutex<Option<FamilyExemplars>>,
}

type Ops<'a> = [(&'a OperationStore, MutexGuard<'a, OpData>)];

impl Collector for StoreCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        // Every operation is read at one instant, each under its own lock, in store order.
        let ops: Vec<_> = self
            .store
            .operations()
            .iter()
            .map(|op| (op.as_ref(), op.read()))
            .collect();
        let mut exemplars = self
            .exemplars
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        encode_reports(&mut e, &ops, exemplars.as_mut())?;
        encode_agents(&mut e, &ops)?;
        encode_health(&mut e, &ops)?;
        self.encode_process(&mut e)?;
        *self.exemplars.lock().unwrap_or_else(|p| p.into_inner()) = exemplars;
        Ok(())
    }
}

fn encode_reports(
    e: &mut DescriptorEncoder,
    ops: &Ops,
    mut exemplars: Option<&mut FamilyExemplars>,
) -> fmt::Result {
    for kind in KINDS {
        for (f, family) in kind.families.iter().enumerate() {
            let mut m = e.encode_descriptor(
                family.name,
                family.help,
                family.unit.as_ref(),
                family.metric_type,
            )?;
            let mut lines = Exemplars::new();
            let want = exemplars.is_some() && family.metric_type == MetricType::Histogram;
            for (op, data) in ops {
                if let Some(slot) = &data.reports[kind.name] {
                    let sink = want.then_some(&mut lines);
                    slot.counters
                        .encode(f, &op.name, &data.agents, &mut m, sink)?;
                }
            }
            if let Some(all) = exemplars.as_deref_mut() {
                if lines.iter().any(Option::is_some) {
                    let unit = family
                        .unit
                        .as_ref()
                        .map_or(String::new(), |u| format!("_{}", u.as_str()));
                    all.push((format!("{}{unit}_bucket{{", family.name), lines));
                }
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
            for (agent_id, agent_name, _) in data.agents.sorted() {
                let labels = AgentInfoLabels {
                    operation: &op.name,
                    agent_id,
                    agent_name,
                };
                m.encode_family(&labels)?.encode_gauge(&1i64)?;
            }
            if data.agents.overflow_records > 0 {
                let labels = AgentInfoLabels {
                    operation: &op.name,
                    agent_id: OVERFLOW_AGENT,
                    agent_name: OVERFLOW_NAME,
                };
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
            let labels = OperationAgent {
                operation: &op.name,
                agent_id,
            };
            m.encode_family(&labels)?.encode_gauge(&first_seen)?;
        }
    }
    Ok(())
}

/// A family with one series per operation.
fn per_operation<V>(
    e: &mut DescriptorEncoder,
    ops: &Ops,
    (name, help, metric_type): (&str, &str, MetricType),
    value: impl Fn(&OperationStore, &OpData) -> V,
    write: impl Fn(&mut MetricEncoder, &V) -> fmt::Result,
) -> fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, metric_type)?;
    for (op, data) in ops {
        let labels = OperationLabel {
            operation: &op.name,
        };
        write(&mut m.encode_family(&labels)?, &value(op, data))?;
    }
    Ok(())
}

fn gauge(m: &mut MetricEncoder, v: &f64) -> fmt::Result {
    m.encode_gauge(v)
}

fn counter(m: &mut MetricEncoder, v: &u64) -> fmt::Result {
    m.encode_counter::<NoLabelSet, _, u64>(v, None)
}

/// Each enabled report of each operation, with its labels and health.
fn reports<'a>(ops: &'a Ops) -> impl Iterator<Item = (OperationReport<'a>, &'a ReportHealth)> {
    ops.iter().flat_map(|(op, data)| {
        data.enabled().map(move |(report, slot)| {
            let labels = OperationReport {
                operation: &op.name,
                report,
            };
            (labels, &slot.health)
        })
    })
}

/// A counter per operation and report.
fn report_counter(
    e: &mut DescriptorEncoder,
    ops: &Ops,
    name: &str,
    help: &str,
    value: impl Fn(&ReportHealth) -> u64,
) -> fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, h) in reports(ops) {
        counter(&mut m.encode_family(&labels)?, &value(h))?;
    }
    Ok(())
}

/// A gauge per operation and report holding an instant (0 before there is one).
fn report_instant(
    e: &mut DescriptorEncoder,
    ops: &Ops,
    name: &str,
    help: &str,
    value: impl Fn(&ReportHealth) -> Option<chrono::DateTime<chrono::Utc>>,
) -> fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, h) in reports(ops) {
        let t = value(h).map_or(0.0, |t| t.timestamp() as f64);
        gauge(&mut m.encode_family(&labels)?, &t)?;
    }
    Ok(())
}

fn encode_health(e: &mut DescriptorEncoder, ops: &Ops) -> fmt::Result {
    per_operation(
        e,
        ops,
        (
            "wolkvox_up",
            "1 when the last poll cycle of every enabled report of the operation succeeded.",
            MetricType::Gauge,
        ),
        |_, d| f64::from(u8::from(d.up())),
        gauge,
    )?;
    report_instant(
        e,
        ops,
        "wolkvox_last_success_timestamp_seconds",
        "Wall time of the report's last successful poll cycle (0 before the first).",
        |h| h.last_success,
    )?;
    report_instant(
        e,
        ops,
        "wolkvox_ingested_until_timestamp_seconds",
        "Every record of the report dated before this instant has been fetched at least once (the event-time watermark; 0 before the first window).",
        |h| h.watermark,
    )?;
    report_counter(
        e,
        ops,
        "wolkvox_api_requests",
        "Requests sent to the Wolkvox API.",
        |h| h.requests,
    )?;
    {
        let mut m = e.encode_descriptor(
            "wolkvox_api_request_errors",
            "Failed API requests by reason.",
            None,
            MetricType::Counter,
        )?;
        for (labels, h) in reports(ops) {
            for reason in ErrorReason::ALL {
                let labels = (labels, ErrorLabel { reason });
                counter(&mut m.encode_family(&labels)?, &h.errors[reason])?;
            }
        }
    }
    report_counter(
        e,
        ops,
        "wolkvox_api_empty_responses",
        "API answers of 404 \"no records\" (also what a server without the report enabled answers).",
        |h| h.empty_responses,
    )?;
    {
        let mut m = e.encode_descriptor(
            "wolkvox_api_request_duration",
            "Latency of API requests, including failed ones.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for (labels, h) in reports(ops) {
            let buckets = h.latency.encoder_buckets(&API_LATENCY_BUCKETS);
            m.encode_family(&labels)?.encode_histogram::<NoLabelSet>(
                h.latency.sum,
                h.latency.count,
                &buckets,
                None,
            )?;
        }
    }
    per_operation(
        e,
        ops,
        (
            "wolkvox_api_daily_requests",
            "Requests spent in the operation's current local day, by every report.",
            MetricType::Gauge,
        ),
        |_, d| d.daily.used as f64,
        gauge,
    )?;
    per_operation(
        e,
        ops,
        (
            "wolkvox_api_daily_request_limit",
            "The operation's daily request limit (licenses x 1000), shared by all its clients.",
            MetricType::Gauge,
        ),
        |op, _| op.daily_limit as f64,
        gauge,
    )?;
    per_operation(
        e,
        ops,
        (
            "wolkvox_api_planned_daily_requests",
            "Requests a local day the configured reports and intervals spend at steady state.",
            MetricType::Gauge,
        ),
        |_, d| d.planned_daily as f64,
        gauge,
    )?;
    report_counter(
        e,
        ops,
        "wolkvox_records_received",
        "Records read from API responses.",
        |h| h.received,
    )?;
    report_counter(
        e,
        ops,
        "wolkvox_records_duplicate",
        "Records skipped because they were already counted (overlap re-reads, retries, split windows).",
        |h| h.duplicate,
    )?;
    {
        let mut m = e.encode_descriptor(
            "wolkvox_records_invalid",
            "Records rejected, by reason.",
            None,
            MetricType::Counter,
        )?;
        for (labels, h) in reports(ops) {
            for reason in InvalidReason::ALL {
                let labels = (labels, InvalidLabel { reason });
                counter(&mut m.encode_family(&labels)?, &h.invalid[reason])?;
            }
        }
    }
    report_counter(
        e,
        ops,
        "wolkvox_window_splits",
        "Windows split because a response hit the API's 60,000-record cap.",
        |h| h.splits,
    )?;
    per_operation(
        e,
        ops,
        (
            "wolkvox_agent_overflow_records",
            "Records of agents past max_agents, counted under agent_id=\"_overflow\".",
            MetricType::Counter,
        ),
        |_, d| d.agents.overflow_records,
        counter,
    )?;
    per_operation(
        e,
        ops,
        (
            "wolkvox_poller_restarts",
            "Times the operation's poller ended unexpectedly (a panic) and was restarted.",
            MetricType::Counter,
        ),
        |_, d| d.restarts,
        counter,
    )
}

impl StoreCollector {
    fn encode_process(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        let single = |e: &mut DescriptorEncoder, name: &str, help: &str, t: MetricType, v: u64| {
            let mut m = e.encode_descriptor(name, help, None, t)?;
            match t {
                MetricType::Counter => counter(&mut m, &v),
                _ => gauge(&mut m, &(v as f64)),
            }
        };
        single(
            e,
            "wolkvox_state_save_failures",
            "Failed saves of the state file (the exporter keeps running and retries).",
            MetricType::Counter,
            self.store.save_failures.load(Ordering::Relaxed),
        )?;
        single(
            e,
            "wolkvox_web_config_reload_failures",
            "Changed versions of the web configuration file that were refused (the previous version stays in force).",
            MetricType::Counter,
            self.web.failures(),
        )?;
        single(
            e,
            "wolkvox_web_config_last_reload_successful",
            "1 when the last reload of the web configuration succeeded (or none was needed).",
            MetricType::Gauge,
            self.web.last_reload_successful.load(Ordering::Relaxed),
        )?;
        let mut m = e.encode_descriptor(
            "wolkvox_exporter_build_info",
            "Build information of the exporter (value 1).",
            None,
            MetricType::Gauge,
        )?;
        let labels = [("version", VERSION), ("revision", REVISION)];
        m.encode_family(&labels)?.encode_gauge(&1i64)
    }
}
