//! The exporter run in-process on a loopback port, the way `main` runs it but on a
//! clock the test controls, with helpers to compare its metrics with ground truth.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use wolkvox_exporter::config::Config;
use wolkvox_sim::{CallsTruth, ChainsTruth, FlowsTruth, TransfersTruth, Wolkvox};

use super::clock::TestClock;
use super::exposition::Exposition;
use super::wait::Wait;

/// A running in-process exporter; `stop` shuts it down gracefully (state saved).
pub struct InProc {
    pub addr: SocketAddr,
    pub state_path: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl InProc {
    /// Starts with `clock` as the exporter's time.
    pub async fn start(config: Config, clock: &TestClock) -> InProc {
        let mut options = wolkvox_exporter::app::Options::new(config);
        options.clock = clock.shared();
        Self::start_with(options).await
    }

    /// Starts with options a test has adjusted (web configuration, server limits); the
    /// test sets `options.clock` too.
    pub async fn start_with(options: wolkvox_exporter::app::Options) -> InProc {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state_path = options.config.state_path.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(wolkvox_exporter::app::run(options, listener, async {
            let _ = rx.await;
        }));
        InProc { addr, state_path, stop: Some(tx), task: Some(task) }
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = reqwest::get(format!("http://{}{}", self.addr, path)).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    pub async fn metrics(&self) -> Exposition {
        let (status, body) = self.get("/metrics").await;
        assert_eq!(status, 200);
        Exposition::parse(&body)
    }

    /// Waits until `pred` holds for the metrics, failing with the last health metrics
    /// at the deadline.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Exposition) -> bool,
    ) -> Exposition {
        Wait::new(what, timeout)
            .every(Duration::from_millis(100))
            .until_async(|| async {
                let m = self.metrics().await;
                if pred(&m) {
                    return Ok(m);
                }
                let health: Vec<String> = m
                    .samples
                    .iter()
                    .filter(|s| {
                        !s.name.starts_with("wolkvox_agent") && !s.name.starts_with("wolkvox_transfer_flows")
                    })
                    .map(|s| format!("{} {:?} {}", s.name, s.labels, s.value))
                    .collect();
                Err(format!("health metrics:\n{}", health.join("\n")))
            })
            .await
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("exporter stops within 10 s")
            .unwrap()
            .unwrap();
    }
}

impl Drop for InProc {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

/// Total of `wolkvox_agent_interactions_total` for an operation.
pub fn total(m: &Exposition, op: &str) -> u64 {
    m.sum("wolkvox_agent_interactions_total", &[("operation", op)]) as u64
}

/// Asserts that every counter and histogram of `op` equals the truth exactly, and that
/// there is no series the truth does not have.
pub fn assert_exact(m: &Exposition, op: &str, truth: &TransfersTruth, bounds: &[f64]) {
    let mut seen = 0;
    for ((agent, interaction), t) in &truth.series {
        let labels = [("operation", op), ("agent_id", agent.as_str()), ("interaction", interaction.as_str())];
        assert_eq!(
            m.get("wolkvox_agent_interactions_total", &labels),
            Some(t.count as f64),
            "count of {op}/{agent}/{interaction}"
        );
        assert_eq!(
            m.get("wolkvox_agent_interaction_duration_seconds_count", &labels),
            Some(t.count as f64),
            "histogram count of {op}/{agent}/{interaction}"
        );
        assert_eq!(
            m.get("wolkvox_agent_interaction_duration_seconds_sum", &labels),
            Some(t.sum_secs as f64),
            "histogram sum of {op}/{agent}/{interaction}"
        );
        let expected = t.cumulative_buckets(bounds);
        for (i, b) in bounds.iter().enumerate() {
            let le = format_le(*b);
            let mut l = labels.to_vec();
            l.push(("le", le.as_str()));
            assert_eq!(
                m.get("wolkvox_agent_interaction_duration_seconds_bucket", &l),
                Some(expected[i] as f64),
                "bucket le={le} of {op}/{agent}/{interaction}"
            );
        }
        let mut l = labels.to_vec();
        l.push(("le", "+Inf"));
        assert_eq!(m.get("wolkvox_agent_interaction_duration_seconds_bucket", &l), Some(t.count as f64));
        seen += 1;
    }
    let series = m.select("wolkvox_agent_interactions_total", &[("operation", op)]).count();
    assert_eq!(series, seen, "{op} has series the ground truth does not");
}

/// The `le` label as the exporter writes it (Go's float format: `30`, `0.5`).
fn format_le(b: f64) -> String {
    b.to_string()
}

/// Like [`assert_exact`], with the exposition indexed first, for expositions of
/// thousands of agents.
pub fn assert_exact_indexed(m: &Exposition, op: &str, truth: &TransfersTruth, bounds: &[f64]) {
    use std::collections::HashMap;
    let mut index: HashMap<(&str, &str, &str, &str), f64> = HashMap::new();
    for s in &m.samples {
        if s.labels.get("operation").map(String::as_str) != Some(op) {
            continue;
        }
        let (Some(agent), Some(interaction)) = (s.labels.get("agent_id"), s.labels.get("interaction")) else {
            continue;
        };
        let le = s.labels.get("le").map_or("", String::as_str);
        let previous = index.insert((&s.name, agent, interaction, le), s.value);
        assert!(previous.is_none(), "duplicate sample {} {:?}", s.name, s.labels);
    }
    let mut series = 0;
    for ((agent, interaction), t) in &truth.series {
        let get =
            |name: &str, le: &str| index.get(&(name, agent.as_str(), interaction.as_str(), le)).copied();
        let what = format!("{op}/{agent}/{interaction}");
        assert_eq!(get("wolkvox_agent_interactions_total", ""), Some(t.count as f64), "count of {what}");
        assert_eq!(
            get("wolkvox_agent_interaction_duration_seconds_count", ""),
            Some(t.count as f64),
            "histogram count of {what}"
        );
        assert_eq!(
            get("wolkvox_agent_interaction_duration_seconds_sum", ""),
            Some(t.sum_secs as f64),
            "histogram sum of {what}"
        );
        let cumulative = t.cumulative_buckets(bounds);
        for (b, want) in bounds.iter().map(|b| b.to_string()).chain(["+Inf".to_owned()]).zip(cumulative) {
            assert_eq!(
                get("wolkvox_agent_interaction_duration_seconds_bucket", &b),
                Some(want as f64),
                "bucket le={b} of {what}"
            );
        }
        series += 1;
    }
    let exported = index.keys().filter(|k| k.0 == "wolkvox_agent_interactions_total").count();
    assert_eq!(exported, series, "{op} has series the ground truth does not");
}

/// Total of `wolkvox_agent_calls_total` for an operation.
pub fn calls_total(m: &Exposition, op: &str) -> u64 {
    m.sum("wolkvox_agent_calls_total", &[("operation", op)]) as u64
}

/// Total of `wolkvox_transfer_flows_total` for an operation.
pub fn flows_total(m: &Exposition, op: &str) -> u64 {
    m.sum("wolkvox_transfer_flows_total", &[("operation", op)]) as u64
}

/// The values of `name` for operation `op`, keyed by the values of `keys`.
fn by_labels(m: &Exposition, name: &str, op: &str, keys: &[&str]) -> BTreeMap<Vec<String>, f64> {
    m.select(name, &[("operation", op)])
        .map(|s| {
            let key = keys.iter().map(|k| s.labels.get(*k).cloned().unwrap_or_default()).collect();
            (key, s.value)
        })
        .collect()
}

/// Asserts that the calls and call seconds of `op` are exactly the truth's series: the
/// same series, the same values.
pub fn assert_calls_exact(m: &Exposition, op: &str, truth: &CallsTruth) {
    let keys = ["agent_id", "direction"];
    let want = |pick: fn(&(u64, u64)) -> u64| -> BTreeMap<Vec<String>, f64> {
        truth.series.iter().map(|((a, d), v)| (vec![a.clone(), d.clone()], pick(v) as f64)).collect()
    };
    assert_eq!(by_labels(m, "wolkvox_agent_calls_total", op, &keys), want(|v| v.0), "calls of {op}");
    assert_eq!(
        by_labels(m, "wolkvox_agent_call_seconds_total", op, &keys),
        want(|v| v.1),
        "call seconds of {op}"
    );
}

/// Asserts that the transfer flows of `op` are exactly the truth's series.
pub fn assert_flows_exact(m: &Exposition, op: &str, truth: &FlowsTruth) {
    let want: BTreeMap<Vec<String>, f64> = truth
        .series
        .iter()
        .map(|((o, d, t), n)| (vec![o.clone(), d.clone(), t.clone()], *n as f64))
        .collect();
    assert_eq!(
        by_labels(m, "wolkvox_transfer_flows_total", op, &["origin_agent_id", "destination", "type"]),
        want,
        "flows of {op}"
    );
}

/// The transfer chains a correct exporter has settled by the watermark of `op`'s
/// agent_13_1 in `m` (less `overlap`), from every leg of `fake`'s closed history, with
/// the default 2-hour horizon.
pub fn settled_chains(m: &Exposition, op: &str, fake: &Wolkvox, overlap: chrono::Duration) -> ChainsTruth {
    let labels = [("operation", op), ("report", "agent_13_1")];
    let watermark =
        m.get("wolkvox_ingested_until_timestamp_seconds", &labels).expect("agent_13_1's watermark");
    let sim = fake.simulator();
    let until = chrono::DateTime::from_timestamp(watermark as i64, 0).unwrap() - overlap;
    let config = sim.config();
    let legs = sim.legs_between(config.start, config.end.expect("a closed history"));
    ChainsTruth::settled(&legs, sim.local(until), chrono::Duration::hours(2))
}

/// Asserts that the transfer chains of `op` are exactly the truth's: by transfers, the
/// returned transfers by agent, and none evicted.
pub fn assert_chains_exact(m: &Exposition, op: &str, truth: &ChainsTruth) {
    let chains = by_labels(m, "wolkvox_transfer_chains_total", op, &["transfers"]);
    let want: BTreeMap<Vec<String>, f64> =
        ["1", "2", "3+"].iter().zip(truth.chains).map(|(t, n)| (vec![t.to_string()], n as f64)).collect();
    assert_eq!(chains, want, "chains of {op}");
    let returned = by_labels(m, "wolkvox_agent_transfers_returned_total", op, &["agent_id"]);
    let want: BTreeMap<Vec<String>, f64> =
        truth.returned.iter().map(|(a, n)| (vec![a.clone()], *n as f64)).collect();
    assert_eq!(returned, want, "returned transfers of {op}");
    assert_eq!(m.get("wolkvox_transfer_chains_evicted_total", &[("operation", op)]), Some(0.0));
}
