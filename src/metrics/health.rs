//! The exporter's own health families: per operation, and per operation and report.

use std::fmt;
use std::sync::atomic::Ordering;

use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use super::collector::Ops;
use super::{REVISION, VERSION};
use crate::reports::labels::{ErrorLabel, InvalidLabel, OperationLabel, OperationReport};
use crate::reports::Schedule;
use crate::store::{OpData, OperationStore, ReportHealth, ReportSlot, Store, API_LATENCY_BUCKETS};
use crate::vocab::{ErrorReason, InvalidReason};
use crate::web::ReloadStats;

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
        let labels = OperationLabel { operation: &op.name };
        write(&mut m.encode_family(&labels)?, &value(op, data))?;
    }
    Ok(())
}

pub(super) fn gauge(m: &mut MetricEncoder, v: &f64) -> fmt::Result {
    m.encode_gauge(v)
}

pub(super) fn counter(m: &mut MetricEncoder, v: &u64) -> fmt::Result {
    m.encode_counter::<NoLabelSet, _, u64>(v, None)
}

/// Each enabled report of each operation, with its labels.
fn slots<'a>(ops: &'a Ops) -> impl Iterator<Item = (OperationReport<'a>, &'a ReportSlot)> {
    ops.iter().flat_map(|(op, data)| {
        data.reports.iter().map(move |slot| {
            let labels = OperationReport { operation: &op.name, report: slot.name() };
            (labels, slot)
        })
    })
}

/// Each enabled report of each operation, with its labels and health.
fn reports<'a>(ops: &'a Ops) -> impl Iterator<Item = (OperationReport<'a>, &'a ReportHealth)> {
    slots(ops).map(|(labels, slot)| (labels, &slot.health))
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

pub(super) fn encode(e: &mut DescriptorEncoder, ops: &Ops) -> fmt::Result {
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
    report_counter(e, ops, "wolkvox_api_requests", "Requests sent to the Wolkvox API.", |h| h.requests)?;
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
    report_counter(e, ops, "wolkvox_records_received", "Records read from API responses.", |h| h.received)?;
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
    {
        let mut m = e.encode_descriptor(
            "wolkvox_report_paused",
            "1 while the report waits because what is left of today's allowance is kept for the reports before it in priority order.",
            None,
            MetricType::Gauge,
        )?;
        for (labels, h) in reports(ops) {
            gauge(&mut m.encode_family(&labels)?, &f64::from(u8::from(h.paused)))?;
        }
    }
    report_counter(
        e,
        ops,
        "wolkvox_records_late",
        "Records counted more than two poll intervals and the poll delay after their own date: a catch-up after an outage or a restart, or records the API showed late.",
        |h| h.late,
    )?;
    {
        let mut m = e.encode_descriptor(
            "wolkvox_poll_interval",
            "How often each windowed report is polled (its configured interval).",
            Some(&Unit::Seconds),
            MetricType::Gauge,
        )?;
        for (labels, slot) in slots(ops).filter(|(_, s)| s.schedule == Schedule::Windowed) {
            gauge(&mut m.encode_family(&labels)?, &slot.interval.as_secs_f64())?;
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

/// The process-wide families: state saves, web-config reloads, the build.
pub(super) fn encode_process(e: &mut DescriptorEncoder, store: &Store, web: &ReloadStats) -> fmt::Result {
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
        store.save_failures.load(Ordering::Relaxed),
    )?;
    single(
        e,
        "wolkvox_web_config_reload_failures",
        "Changed versions of the web configuration file that were refused (the previous version stays in force).",
        MetricType::Counter,
        web.failures.load(Ordering::Relaxed),
    )?;
    single(
        e,
        "wolkvox_web_config_last_reload_successful",
        "1 when the last reload of the web configuration succeeded (or none was needed).",
        MetricType::Gauge,
        web.last_reload_successful.load(Ordering::Relaxed),
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
