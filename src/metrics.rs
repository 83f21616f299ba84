//! Renders the store as metrics and caches the bytes (plain, OpenMetrics, gzip) until
//! the store changes, so a scrape usually copies bytes. The per-agent families are
//! written directly ([`agents`]); a prometheus-client `Collector` encodes the rest, and
//! encodes everything as the reference the direct writer is tested against.

use std::fmt;
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

mod agents;

use crate::client::ApiError;
use crate::store::{Histogram, Operation, Store, INTERACTIONS, INVALID_REASONS, OVERFLOW_AGENT};

/// Version and revision for `wolkvox_exporter_build_info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const REVISION: &str = match option_env!("WOLKVOX_BUILD_REVISION") {
    Some(r) => r,
    None => "unknown",
};

/// Exposition formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// Picks the format from an `Accept` header: OpenMetrics only when asked for.
    pub fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text,
        }
    }
}

pub(crate) const AGENT_INTERACTIONS_HELP: &str = "Transfer and conference records counted per agent, each record exactly once; grows when a record is ingested, not at the record's own time.";
pub(crate) const AGENT_DURATION_HELP: &str = "Elapsed time of transfer and conference records per agent (the report's time field); observed when a record is ingested.";
pub(crate) const AGENT_INFO_HELP: &str =
    "The latest name seen for each agent (value 1); join on operation and agent_id.";

#[derive(Debug)]
struct StoreCollector {
    store: Arc<Store>,
    /// Whether to encode the per-agent families too; the renderer writes them itself
    /// and keeps this full encoding as the reference it is tested against.
    agents: bool,
}

#[derive(Default)]
struct Cache {
    generation: u64,
    entries: [Option<Bytes>; 4],
}

/// Renders and caches the exposition.
pub struct Renderer {
    /// The families other than the per-agent ones.
    registry: Registry,
    /// Every family, through prometheus-client alone.
    reference: Registry,
    store: Arc<Store>,
    cache: Mutex<Cache>,
    /// Held while rendering, so scrapers arriving together after a change wait for one
    /// rendering instead of each doing their own.
    render_lock: Mutex<()>,
    /// Size of the last rendering, so the next one allocates once.
    last_len: AtomicUsize,
}

impl fmt::Debug for Renderer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Renderer").finish_non_exhaustive()
    }
}

impl Renderer {
    pub fn new(store: Arc<Store>) -> Self {
        let registry = |agents| {
            let mut r = Registry::default();
            r.register_collector(Box::new(StoreCollector {
                store: store.clone(),
                agents,
            }));
            r
        };
        Renderer {
            registry: registry(false),
            reference: registry(true),
            store,
            cache: Mutex::new(Cache::default()),
            render_lock: Mutex::new(()),
            last_len: AtomicUsize::new(64 * 1024),
        }
    }

    /// Renders without the cache: the per-agent families written directly, then the
    /// rest through the Collector; the same bytes as [`Renderer::render_reference`].
    pub fn render(&self, format: Format) -> String {
        let mut out = String::with_capacity(self.last_len.load(Ordering::Relaxed) + 4096);
        agents::write(&mut out, &self.store, format);
        encode(&mut out, &self.registry, format);
        self.last_len.store(out.len(), Ordering::Relaxed);
        out
    }

    /// The whole exposition through the prometheus-client Collector alone: slower,
    /// and the reference [`Renderer::render`] is tested against.
    pub fn render_reference(&self, format: Format) -> String {
        let mut out = String::with_capacity(self.last_len.load(Ordering::Relaxed) + 4096);
        encode(&mut out, &self.reference, format);
        out
    }

    /// The cached exposition, when the store has not changed since it was rendered.
    pub fn cached(&self, format: Format, gzip: bool) -> Option<Bytes> {
        let generation = self.store.generation();
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        (cache.generation == generation)
            .then(|| cache.entries[slot(format, gzip)].clone())
            .flatten()
    }

    /// The exposition for a format, gzipped or not, rendered at most once per change.
    /// Rendering is CPU work: call it off the async workers when `cached` has nothing.
    pub fn get(&self, format: Format, gzip: bool) -> Bytes {
        if let Some(b) = self.cached(format, gzip) {
            return b;
        }
        let _rendering = self.render_lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = self.cached(format, gzip) {
            return b;
        }
        let slot = slot(format, gzip);
        let generation = self.store.generation();
        let plain = {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            (cache.generation == generation)
                .then(|| cache.entries[slot & 2].clone())
                .flatten()
        };
        let plain = plain.unwrap_or_else(|| Bytes::from(self.render(format)));
        let bytes = if gzip { gzip_bytes(&plain) } else { plain };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.generation != generation {
            *cache = Cache {
                generation,
                entries: Default::default(),
            };
        }
        // A gzip answer keeps only the compressed bytes: the plain text of 10,000
        // agents is 30 MB, and scrapers that compress never ask for it.
        cache.entries[slot] = Some(bytes.clone());
        bytes
    }
}

fn slot(format: Format, gzip: bool) -> usize {
    (format == Format::OpenMetrics) as usize * 2 + gzip as usize
}

fn encode(out: &mut String, registry: &Registry, format: Format) {
    let result = match format {
        Format::Text => prometheus_client::encoding::prometheus_text::encode(out, registry),
        Format::OpenMetrics => prometheus_client::encoding::text::encode(out, registry),
    };
    // Writing into a String cannot fail; a collector error would be a bug.
    result.expect("encoding into a String");
}

pub fn gzip_bytes(data: &[u8]) -> Bytes {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 8 + 64),
        flate2::Compression::fast(),
    );
    enc.write_all(data).expect("writing to a Vec");
    Bytes::from(enc.finish().expect("writing to a Vec"))
}

type L<'a, const N: usize> = [(&'static str, &'a str); N];

fn histogram(
    enc: &mut prometheus_client::encoding::MetricEncoder,
    bounds: &[f64],
    h: &Histogram,
) -> fmt::Result {
    let buckets: Vec<(f64, u64)> = bounds
        .iter()
        .copied()
        .chain(std::iter::once(f64::INFINITY))
        .zip(h.buckets.iter().copied())
        .collect();
    enc.encode_histogram::<NoLabelSet>(h.sum, h.count, &buckets, None)
}

impl StoreCollector {
    /// Runs `f` on every operation in turn, each under its own lock.
    fn each(&self, mut f: impl FnMut(&Operation) -> fmt::Result) -> fmt::Result {
        for i in 0..self.store.len() {
            f(&self.store.read(i))?;
        }
        Ok(())
    }

    fn gauge_per_op(
        &self,
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        unit: Option<&Unit>,
        value: impl Fn(&Operation) -> f64,
    ) -> fmt::Result {
        let mut m = encoder.encode_descriptor(name, help, unit, MetricType::Gauge)?;
        self.each(|op| {
            m.encode_family(&[("operation", op.name.as_str())])?
                .encode_gauge(&value(op))
        })
    }

    fn counter_per_op(
        &self,
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        value: impl Fn(&Operation) -> u64,
    ) -> fmt::Result {
        let mut m = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        self.each(|op| {
            m.encode_family(&[("operation", op.name.as_str())])?
                .encode_counter::<NoLabelSet, _, u64>(&value(op), None)
        })
    }

    /// A counter per operation and reason, every reason exported from the start.
    fn counter_per_op_reason(
        &self,
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        reasons: &[&str],
        values: impl Fn(&Operation) -> &[u64],
    ) -> fmt::Result {
        let mut m = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        self.each(|op| {
            for (reason, value) in reasons.iter().zip(values(op)) {
                let labels: L<2> = [("operation", &op.name), ("reason", reason)];
                m.encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(value, None)?;
            }
            Ok(())
        })
    }
}

/// Agents in label order, the overflow agent last when it has records.
fn sorted_agents(op: &Operation) -> Vec<(&str, &crate::store::Agent)> {
    let mut agents = op.data.sorted_agents();
    if op.data.overflow_records > 0 {
        agents.push((OVERFLOW_AGENT, &op.data.overflow));
    }
    agents
}

impl Collector for StoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let e = &mut encoder;
        if self.agents {
            self.encode_agents(e)?;
        }
        self.encode_health(e)
    }
}

impl StoreCollector {
    fn encode_agents(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        {
            let mut m = e.encode_descriptor(
                "wolkvox_agent_interactions",
                AGENT_INTERACTIONS_HELP,
                None,
                MetricType::Counter,
            )?;
            self.each(|op| {
                for (id, agent) in sorted_agents(op) {
                    for (i, s) in agent.series.iter().enumerate() {
                        if let Some(h) = s {
                            let labels: L<3> = [
                                ("operation", &op.name),
                                ("agent_id", id),
                                ("interaction", INTERACTIONS[i]),
                            ];
                            m.encode_family(&labels)?
                                .encode_counter::<NoLabelSet, _, u64>(&h.count, None)?;
                        }
                    }
                }
                Ok(())
            })?;
        }
        {
            let mut m = e.encode_descriptor(
                "wolkvox_agent_interaction_duration",
                AGENT_DURATION_HELP,
                Some(&Unit::Seconds),
                MetricType::Histogram,
            )?;
            self.each(|op| {
                for (id, agent) in sorted_agents(op) {
                    for (i, s) in agent.series.iter().enumerate() {
                        if let Some(h) = s {
                            let labels: L<3> = [
                                ("operation", &op.name),
                                ("agent_id", id),
                                ("interaction", INTERACTIONS[i]),
                            ];
                            histogram(&mut m.encode_family(&labels)?, &op.data.bounds, h)?;
                        }
                    }
                }
                Ok(())
            })?;
        }
        {
            let mut m = e.encode_descriptor(
                "wolkvox_agent_info",
                AGENT_INFO_HELP,
                None,
                MetricType::Gauge,
            )?;
            self.each(|op| {
                for (id, agent) in sorted_agents(op) {
                    let labels: L<3> = [
                        ("operation", &op.name),
                        ("agent_id", id),
                        ("agent_name", &agent.name),
                    ];
                    m.encode_family(&labels)?.encode_gauge(&1i64)?;
                }
                Ok(())
            })
        }
    }

    fn encode_health(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        self.gauge_per_op(
            e,
            "wolkvox_up",
            "1 when the last poll cycle of the operation succeeded.",
            None,
            |op| f64::from(u8::from(op.health.up)),
        )?;
        self.gauge_per_op(
            e,
            "wolkvox_last_success_timestamp_seconds",
            "Wall time of the operation's last successful poll cycle (0 before the first).",
            None,
            |op| op.health.last_success.map_or(0.0, |t| t.timestamp() as f64),
        )?;
        self.gauge_per_op(
            e,
            "wolkvox_ingested_until_timestamp_seconds",
            "Every record dated before this instant has been fetched at least once (the event-time watermark; 0 before the first window).",
            None,
            |op| op.cursor.map_or(0.0, |t| t.timestamp() as f64),
        )?;
        self.counter_per_op(
            e,
            "wolkvox_api_requests",
            "Requests sent to the Wolkvox API.",
            |op| op.health.requests,
        )?;
        self.counter_per_op_reason(
            e,
            "wolkvox_api_request_errors",
            "Failed API requests by reason.",
            &ApiError::REASONS,
            |op| &op.health.errors,
        )?;
        self.counter_per_op(
            e,
            "wolkvox_api_empty_responses",
            "API answers of 404 \"no records\" (also what a server without the report enabled answers).",
            |op| op.health.empty_responses,
        )?;
        {
            let mut m = e.encode_descriptor(
                "wolkvox_api_request_duration",
                "Latency of API requests, including failed ones.",
                Some(&Unit::Seconds),
                MetricType::Histogram,
            )?;
            self.each(|op| {
                histogram(
                    &mut m.encode_family(&[("operation", op.name.as_str())])?,
                    &crate::store::API_LATENCY_BUCKETS,
                    &op.health.latency,
                )
            })?;
        }
        self.gauge_per_op(
            e,
            "wolkvox_api_daily_requests",
            "Requests spent in the operation's current local day.",
            None,
            |op| op.daily.used as f64,
        )?;
        self.gauge_per_op(
            e,
            "wolkvox_api_daily_request_limit",
            "The operation's daily request limit (licenses x 1000), shared by all its clients.",
            None,
            |op| op.daily_limit as f64,
        )?;
        self.counter_per_op(
            e,
            "wolkvox_records_received",
            "Records read from API responses.",
            |op| op.health.received,
        )?;
        self.counter_per_op(
            e,
            "wolkvox_records_duplicate",
            "Records skipped because they were already counted (overlap re-reads, retries, split windows).",
            |op| op.health.duplicate,
        )?;
        self.counter_per_op_reason(
            e,
            "wolkvox_records_invalid",
            "Records rejected, by reason.",
            &INVALID_REASONS,
            |op| &op.health.invalid,
        )?;
        self.counter_per_op(
            e,
            "wolkvox_window_splits",
            "Windows split because a response hit the API's 60,000-record cap.",
            |op| op.health.splits,
        )?;
        self.counter_per_op(
            e,
            "wolkvox_agent_overflow_records",
            "Records of agents past max_agents, counted under agent_id=\"_overflow\".",
            |op| op.data.overflow_records,
        )?;
        {
            let mut m = e.encode_descriptor(
                "wolkvox_state_save_failures",
                "Failed saves of the state file (the exporter keeps running and retries).",
                None,
                MetricType::Counter,
            )?;
            let failures = self
                .store
                .save_failures
                .load(std::sync::atomic::Ordering::Relaxed);
            m.encode_counter::<NoLabelSet, _, u64>(&failures, None)?;
        }
        {
            let mut m = e.encode_descriptor(
                "wolkvox_exporter_build_info",
                "Build information of the exporter (value 1).",
                None,
                MetricType::Gauge,
            )?;
            let labels: L<2> = [("version", VERSION), ("revision", REVISION)];
            m.encode_family(&labels)?.encode_gauge(&1i64)?;
        }
        Ok(())
    }
}
