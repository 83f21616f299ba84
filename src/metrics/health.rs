//! The exporter's own health families: per operation, and per operation and report.

use std::fmt;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use enum_map::{EnumArray, EnumMap};
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelValue, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType::{self, Counter, Gauge, Histogram};
use prometheus_client::registry::Unit;

use super::collector::Ops;
use super::{REVISION, VERSION};
use crate::reports::Schedule;
use crate::store::{OpData, OperationStore, ReportHealth, ReportSlot, Store, API_LATENCY_BUCKETS};
use crate::web::ReloadStats;

/// Where a family's series come from.
enum Series {
    /// One series per operation.
    Operation(fn(&OperationStore, &OpData) -> u64),
    /// One series per operation and report.
    Report(fn(&ReportHealth) -> u64),
    /// An instant per operation and report (0 before there is one).
    Instant(fn(&ReportHealth) -> Option<DateTime<Utc>>),
    /// Per operation, report and `ErrorReason`.
    Errors,
    /// Per operation, report and `InvalidReason`.
    Invalid,
    /// The request latency histogram, in seconds.
    Latency,
    /// The interval of each windowed report, in seconds.
    Interval,
}

/// The health families, in exposition order.
const FAMILIES: [(&str, &str, MetricType, Series); 19] = [
    (
        "wolkvox_up",
        "1 when the last poll cycle of every enabled report of the operation succeeded.",
        Gauge,
        Series::Operation(|_, d| u64::from(d.up())),
    ),
    (
        "wolkvox_last_success_timestamp_seconds",
        "Wall time of the report's last successful poll cycle (0 before the first).",
        Gauge,
        Series::Instant(|h| h.last_success),
    ),
    (
        "wolkvox_ingested_until_timestamp_seconds",
        "Every record of the report dated before this instant has been fetched at least once (the event-time watermark; 0 before the first window).",
        Gauge,
        Series::Instant(|h| h.watermark),
    ),
    ("wolkvox_api_requests", "Requests sent to the Wolkvox API.", Counter, Series::Report(|h| h.requests)),
    ("wolkvox_api_request_errors", "Failed API requests by reason.", Counter, Series::Errors),
    (
        "wolkvox_api_empty_responses",
        "API answers of 404 \"no records\" (also what a server without the report enabled answers).",
        Counter,
        Series::Report(|h| h.empty_responses),
    ),
    (
        "wolkvox_api_request_duration",
        "Latency of API requests, including failed ones.",
        Histogram,
        Series::Latency,
    ),
    (
        "wolkvox_api_daily_requests",
        "Requests spent in the operation's current local day, by every report.",
        Gauge,
        Series::Operation(|_, d| d.daily.used),
    ),
    (
        "wolkvox_api_daily_request_limit",
        "The operation's daily request limit (licenses x 1000), shared by all its clients.",
        Gauge,
        Series::Operation(|op, _| op.daily_limit),
    ),
    (
        "wolkvox_api_planned_daily_requests",
        "Requests a local day the configured reports and intervals spend at steady state.",
        Gauge,
        Series::Operation(|_, d| d.planned_daily),
    ),
    ("wolkvox_records_received", "Records read from API responses.", Counter, Series::Report(|h| h.received)),
    (
        "wolkvox_records_duplicate",
        "Records skipped because they were already counted (overlap re-reads, retries, split windows).",
        Counter,
        Series::Report(|h| h.duplicate),
    ),
    ("wolkvox_records_invalid", "Records rejected, by reason.", Counter, Series::Invalid),
    (
        "wolkvox_report_paused",
        "1 while the report waits because what is left of today's allowance is kept for the reports before it in priority order.",
        Gauge,
        Series::Report(|h| u64::from(h.paused)),
    ),
    (
        "wolkvox_records_late",
        "Records counted more than the poll delay and two poll intervals (at least two minutes) after their own date: a catch-up after an outage or a restart, or records the API showed late.",
        Counter,
        Series::Report(|h| h.late),
    ),
    (
        "wolkvox_poll_interval",
        "How often each windowed report is polled (its configured interval).",
        Gauge,
        Series::Interval,
    ),
    (
        "wolkvox_window_splits",
        "Windows split because a response hit the API's 60,000-record cap.",
        Counter,
        Series::Report(|h| h.splits),
    ),
    (
        "wolkvox_agent_overflow_records",
        "Records of agents past max_agents, counted under agent_id=\"_overflow\".",
        Counter,
        Series::Operation(|_, d| d.agents.overflow_records),
    ),
    (
        "wolkvox_poller_restarts",
        "Times the operation's poller ended unexpectedly (a panic) and was restarted.",
        Counter,
        Series::Operation(|_, d| d.restarts),
    ),
];

/// A count, as a counter or as a gauge.
fn number(m: &mut MetricEncoder, metric_type: MetricType, v: u64) -> fmt::Result {
    match metric_type {
        Counter => m.encode_counter::<NoLabelSet, _, u64>(&v, None),
        _ => m.encode_gauge(&(v as f64)),
    }
}

/// Each enabled report of each operation, with its labels.
fn slots<'a>(ops: &'a Ops) -> impl Iterator<Item = ([(&'static str, &'a str); 2], &'a ReportSlot)> {
    ops.iter().flat_map(|(op, data)| {
        data.reports
            .iter()
            .map(move |slot| ([("operation", op.name.as_str()), ("report", slot.name().as_str())], slot))
    })
}

/// A counter per report and `reason`, every reason from the start.
fn by_reason<K: EnumArray<u64> + EncodeLabelValue>(
    m: &mut MetricEncoder,
    ops: &Ops,
    counts: fn(&ReportHealth) -> &EnumMap<K, u64>,
) -> fmt::Result {
    for (labels, slot) in slots(ops) {
        for (reason, n) in counts(&slot.health) {
            number(&mut m.encode_family(&(labels, [("reason", reason)]))?, Counter, *n)?;
        }
    }
    Ok(())
}

pub(super) fn encode(e: &mut DescriptorEncoder, ops: &Ops) -> fmt::Result {
    for (name, help, metric_type, series) in &FAMILIES {
        let unit = matches!(series, Series::Latency | Series::Interval).then_some(Unit::Seconds);
        let mut m = e.encode_descriptor(name, help, unit.as_ref(), *metric_type)?;
        match series {
            Series::Operation(value) => {
                for (op, data) in ops {
                    let labels = [("operation", op.name.as_str())];
                    number(&mut m.encode_family(&labels)?, *metric_type, value(op, data))?;
                }
            }
            Series::Report(value) => {
                for (labels, slot) in slots(ops) {
                    number(&mut m.encode_family(&labels)?, *metric_type, value(&slot.health))?;
                }
            }
            Series::Instant(value) => {
                for (labels, slot) in slots(ops) {
                    let t = value(&slot.health).map_or(0.0, |t| t.timestamp() as f64);
                    m.encode_family(&labels)?.encode_gauge(&t)?;
                }
            }
            Series::Errors => by_reason(&mut m, ops, |h| &h.errors)?,
            Series::Invalid => by_reason(&mut m, ops, |h| &h.invalid)?,
            Series::Latency => {
                for (labels, slot) in slots(ops) {
                    let latency = &slot.health.latency;
                    let buckets = latency.encoder_buckets(&API_LATENCY_BUCKETS);
                    m.encode_family(&labels)?.encode_histogram::<NoLabelSet>(
                        latency.sum,
                        latency.count,
                        &buckets,
                        None,
                    )?;
                }
            }
            Series::Interval => {
                for (labels, slot) in slots(ops).filter(|(_, s)| s.schedule == Schedule::Windowed) {
                    m.encode_family(&labels)?.encode_gauge(&slot.interval.as_secs_f64())?;
                }
            }
        }
    }
    Ok(())
}

/// The process-wide families: state saves, web-config reloads, the build.
pub(super) fn encode_process(e: &mut DescriptorEncoder, store: &Store, web: &ReloadStats) -> fmt::Result {
    let families = [
        (
            "wolkvox_state_save_failures",
            "Failed saves of the state file (the exporter keeps running and retries).",
            Counter,
            store.save_failures.load(Ordering::Relaxed),
        ),
        (
            "wolkvox_web_config_reload_failures",
            "Changed versions of the web configuration file that were refused (the previous version stays in force).",
            Counter,
            web.failures.load(Ordering::Relaxed),
        ),
        (
            "wolkvox_web_config_last_reload_successful",
            "1 when the last reload of the web configuration succeeded (or none was needed).",
            Gauge,
            web.last_reload_successful.load(Ordering::Relaxed),
        ),
    ];
    for (name, help, metric_type, value) in families {
        number(&mut e.encode_descriptor(name, help, None, metric_type)?, metric_type, value)?;
    }
    let mut m = e.encode_descriptor(
        "wolkvox_exporter_build_info",
        "Build information of the exporter (value 1).",
        None,
        MetricType::Gauge,
    )?;
    let labels = [("version", VERSION), ("revision", REVISION)];
    m.encode_family(&labels)?.encode_gauge(&1i64)
}
