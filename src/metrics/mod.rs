//! Renders the store as metrics with prometheus-client and caches the bytes (plain,
//! OpenMetrics, gzip) until the store changes, so a scrape usually copies bytes.

mod collector;
mod health;

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use prometheus_client::registry::Registry;

use crate::reports::{ExemplarWriter, Exemplars};
use crate::store::{OperationStore, Store};
use crate::web::ReloadStats;
pub use collector::DataPart;
use collector::{DataCollector, StoreCollector};

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

#[derive(Default)]
struct Cache {
    generation: u64,
    entries: [Option<Bytes>; 4],
    /// Plain requests of this generation per format: the text is kept from the second.
    plain_asks: [u8; 2],
}

/// One operation's `part` of the data families in OpenMetrics, without exemplars or
/// `# EOF`: what the backfill records at each step.
pub fn render_data(op: &Arc<OperationStore>, part: DataPart) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(DataCollector { op: op.clone(), part }));
    let mut out = String::new();
    prometheus_client::encoding::text::encode_registry(&mut out, &registry)
        .expect("writing to a String cannot fail");
    out
}

/// Renders and caches the exposition.
pub struct Renderer {
    registry: Registry,
    collector: Arc<StoreCollector>,
    store: Arc<Store>,
    /// Whether OpenMetrics carries the exemplars of the duration histogram.
    exemplars: bool,
    cache: Mutex<Cache>,
    /// Held while rendering, so scrapers arriving together after a change wait for one
    /// rendering instead of each doing their own.
    render_lock: Mutex<()>,
    /// Size of the last rendering, so the next one allocates once.
    last_len: AtomicUsize,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer").finish_non_exhaustive()
    }
}

impl Renderer {
    pub fn new(store: Arc<Store>, web: Arc<ReloadStats>, exemplars: bool) -> Self {
        let collector =
            Arc::new(StoreCollector { store: store.clone(), web, exemplars: Exemplars::default() });
        let mut registry = Registry::default();
        registry.register_collector(Box::new(collector.clone()));
        Renderer {
            registry,
            collector,
            store,
            exemplars,
            cache: Mutex::new(Cache::default()),
            render_lock: Mutex::new(()),
            last_len: AtomicUsize::new(64 * 1024),
        }
    }

    /// Renders without the cache.
    pub fn render(&self, format: Format) -> String {
        let mut out = String::with_capacity(self.last_len.load(Ordering::Relaxed) + 4096);
        use prometheus_client::encoding::{prometheus_text, text};
        let result = match format {
            Format::Text => prometheus_text::encode(&mut out, &self.registry),
            Format::OpenMetrics if self.exemplars => {
                let exemplars = &self.collector.exemplars;
                exemplars.turn(true);
                let mut writer = ExemplarWriter { out: &mut out, exemplars, line: 0 };
                let result = text::encode(&mut writer, &self.registry);
                exemplars.turn(false);
                result
            }
            Format::OpenMetrics => text::encode(&mut out, &self.registry),
        };
        // Writing into a String cannot fail; a collector error would be a bug.
        result.expect("encoding into a String");
        self.last_len.store(out.len(), Ordering::Relaxed);
        out
    }

    /// The cached exposition, when the store has not changed since it was rendered.
    pub fn cached(&self, format: Format, gzip: bool) -> Option<Bytes> {
        let generation = self.store.generation();
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        (cache.generation == generation).then(|| cache.entries[slot(format, gzip)].clone()).flatten()
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
        let (plain, packed, asks) = {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if cache.generation != generation {
                *cache = Cache { generation, ..Cache::default() };
            }
            let asks = &mut cache.plain_asks[slot / 2];
            *asks = asks.saturating_add(u8::from(!gzip));
            let asks = *asks;
            (cache.entries[slot & 2].clone(), cache.entries[slot | 1].clone(), asks)
        };
        // The plain text of 10,000 agents is 30 MB, and Prometheus always compresses: a
        // plain request (a person, curl) unpacks the compressed bytes or renders, and the
        // text is kept only from the generation's second plain request on.
        let bytes = match (gzip, plain, packed) {
            (false, _, Some(packed)) => {
                let mut text = Vec::with_capacity(self.last_len.load(Ordering::Relaxed));
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&packed[..]), &mut text)
                    .expect("unpacking what this renderer packed");
                Bytes::from(text)
            }
            (_, plain, _) => {
                let plain = plain.unwrap_or_else(|| Bytes::from(self.render(format)));
                if gzip {
                    gzip_bytes(&plain)
                } else {
                    plain
                }
            }
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.generation == generation && (gzip || asks >= 2) {
            cache.entries[slot] = Some(bytes.clone());
        }
        bytes
    }
}

fn slot(format: Format, gzip: bool) -> usize {
    (format == Format::OpenMetrics) as usize * 2 + gzip as usize
}

pub fn gzip_bytes(data: &[u8]) -> Bytes {
    let mut enc =
        flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 8 + 64), flate2::Compression::fast());
    enc.write_all(data).expect("writing to a Vec");
    Bytes::from(enc.finish().expect("writing to a Vec"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::engine::testing::{self, day};
    use crate::reports::agent_13;

    /// A store of one operation with two agent_13 records.
    fn store() -> Arc<Store> {
        let metrics = testing::metrics(&[60.0, 120.0], 10);
        let store = testing::store(&metrics, &[agent_13::NAME]);
        let rows = [
            json!({"agent_name": "Ana", "agent_id": "1", "conn_id": "c\"1", "date": "2026-11-24 10:00:00", "type_interaction": "transfer", "time": "00:00:30"}),
            json!({"agent_name": "Ana", "agent_id": "1", "conn_id": "c2", "date": "2026-11-24 11:00:00", "type_interaction": "transfer", "time": "00:05:00"}),
        ];
        testing::ingest(&store.operations()[0], agent_13::NAME, &rows, day());
        store
    }

    #[test]
    fn openmetrics_buckets_carry_the_newest_call_unless_turned_off() {
        let stats = Arc::new(ReloadStats::default());
        let on = Renderer::new(store(), stats.clone(), true);
        let om = on.render(Format::OpenMetrics);
        let bucket = |le: &str| {
            om.lines()
                .find(|l| {
                    l.starts_with("wolkvox_agent_interaction_duration_seconds_bucket{")
                        && l.contains(&format!("le=\"{le}\""))
                })
                .unwrap()
                .to_owned()
        };
        // 10:00 in Bogota is 15:00 UTC.
        assert!(bucket("60.0").ends_with(" 1 # {conn_id=\"c\\\"1\"} 30 1795532400"), "{}", bucket("60.0"));
        assert!(!bucket("120.0").contains('#'), "{}", bucket("120.0"));
        assert!(bucket("+Inf").ends_with(" 2 # {conn_id=\"c2\"} 300 1795536000"));
        assert!(om.ends_with("# EOF\n"));
        // No exemplars in the text format, nor when turned off.
        assert!(!on.render(Format::Text).contains(" # {"));
        let off = Renderer::new(store(), stats, false);
        assert!(!off.render(Format::OpenMetrics).contains(" # {"));
    }

    #[test]
    fn plain_text_is_kept_from_the_second_plain_scrape() {
        let renderer = Renderer::new(store(), Arc::new(ReloadStats::default()), true);
        let held = |r: &Renderer| r.cache.lock().unwrap().entries.clone().map(|e| e.is_some());
        let text = renderer.get(Format::Text, false);
        assert_eq!(&text[..], renderer.render(Format::Text).as_bytes());
        assert_eq!(held(&renderer), [false; 4], "one plain scrape keeps nothing");
        let packed = renderer.get(Format::Text, true);
        assert_eq!(held(&renderer), [false, true, false, false], "a gzip scrape keeps its bytes");
        let mut unpacked = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&packed[..]), &mut unpacked).unwrap();
        assert_eq!(unpacked, text);
        // The second plain scrape unpacks the compressed bytes, and keeps the text for
        // the next ones.
        assert_eq!(renderer.get(Format::Text, false), text);
        assert_eq!(held(&renderer), [true, true, false, false]);
        assert_eq!(renderer.cached(Format::Text, false).as_deref(), Some(&text[..]));
    }

    #[test]
    fn each_series_gets_its_own_exemplars_across_the_encoders_chunks() {
        // 300 agents: far more text than prometheus-client passes on at once.
        let metrics = testing::metrics(&[60.0, 120.0], 1_000);
        let store = testing::store(&metrics, &[agent_13::NAME]);
        let rows: Vec<_> = (0..300)
            .map(|i| {
                json!({"agent_name": "A", "agent_id": format!("{}", 1000 + i),
                "conn_id": format!("c{i}"), "date": "2026-11-24 10:00:00",
                "type_interaction": "transfer", "time": if i % 2 == 0 { "00:00:30" } else { "00:05:00" }})
            })
            .collect();
        testing::ingest(&store.operations()[0], agent_13::NAME, &rows, day());
        let om = Renderer::new(store, Arc::new(ReloadStats::default()), true).render(Format::OpenMetrics);
        let buckets: Vec<_> = om
            .lines()
            .filter(|l| l.starts_with("wolkvox_agent_interaction_duration_seconds_bucket{"))
            .collect();
        assert_eq!(buckets.len(), 300 * 3);
        for (i, lines) in buckets.chunks(3).enumerate() {
            let id = format!("{{conn_id=\"c{i}\"}}");
            let want = if i % 2 == 0 { [true, false, false] } else { [false, false, true] };
            for (line, has) in lines.iter().zip(want) {
                assert!(line.contains(&format!("agent_id=\"{}\"", 1000 + i)), "{line}");
                assert_eq!(line.contains(&id), has, "{line}");
                assert_eq!(line.contains(" # {"), has, "{line}");
            }
        }
    }
}
