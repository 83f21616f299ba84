//! The exporter run in-process on a loopback port, the way `main` runs it, with
//! helpers to build its configuration and to compare its metrics with ground truth.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wolkvox_exporter::config::{Config, FileConfig, Overrides};

use super::exposition::Exposition;
use super::fake_wolkvox::{FakeWolkvox, Truth};

/// One operation of a test configuration.
pub struct Op<'a> {
    pub name: &'a str,
    pub fake: &'a FakeWolkvox,
    pub timezone: &'a str,
}

/// A YAML configuration for fast tests: 1 s cycles, quick retries, a 2 s timeout.
pub fn config_yaml(ops: &[Op], catch_up: &str, state: &Path, extra_poll: &str) -> String {
    let mut y = format!(
        "poll:\n  interval: 1s\n  allow_fast: true\n  overlap: 30m\n  delay: 0s\n  catch_up: {catch_up}\n{extra_poll}\
         api:\n  timeout: 2s\n  requests_per_second: 1000\n  retry_initial: 20ms\n  retry_max: 200ms\n  retry_attempts: 6\n\
         state:\n  path: {}\noperations:\n",
        state.display()
    );
    for op in ops {
        y.push_str(&format!(
            "  - name: {}\n    base_url: {}\n    token: {}\n    timezone: {}\n    licenses: 100\n",
            op.name,
            op.fake.base_url(),
            op.fake.token(),
            op.timezone
        ));
    }
    y
}

/// One operation named `op` on Colombia time.
pub fn one_op_yaml(fake: &FakeWolkvox, catch_up: &str, state: &Path) -> String {
    config_yaml(
        &[Op {
            name: "op",
            fake,
            timezone: "America/Bogota",
        }],
        catch_up,
        state,
        "",
    )
}

pub fn config(yaml: &str) -> Config {
    Config::build(
        FileConfig::parse(yaml).expect("test YAML parses"),
        &Overrides::default(),
        |_| None,
    )
    .expect("test configuration is valid")
}

/// A running in-process exporter; `stop` shuts it down gracefully (state saved).
pub struct InProc {
    pub addr: SocketAddr,
    pub state_path: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl InProc {
    pub async fn start(config: Config) -> InProc {
        Self::start_with(wolkvox_exporter::app::Options::new(config)).await
    }

    /// Starts with options a test has adjusted (web configuration, server limits).
    pub async fn start_with(options: wolkvox_exporter::app::Options) -> InProc {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state_path = options.config.state_path.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(wolkvox_exporter::app::run(options, listener, async {
            let _ = rx.await;
        }));
        InProc {
            addr,
            state_path,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = reqwest::get(format!("http://{}{}", self.addr, path))
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    pub async fn metrics(&self) -> Exposition {
        let (status, body) = self.get("/metrics").await;
        assert_eq!(status, 200);
        Exposition::parse(&body)
    }

    /// Waits until `pred` holds for the metrics, failing with the last metrics at the deadline.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Exposition) -> bool,
    ) -> Exposition {
        let deadline = Instant::now() + timeout;
        loop {
            let m = self.metrics().await;
            if pred(&m) {
                return m;
            }
            if Instant::now() > deadline {
                let summary: Vec<String> = m
                    .samples
                    .iter()
                    .filter(|s| !s.name.starts_with("wolkvox_agent"))
                    .map(|s| format!("{} {:?} {}", s.name, s.labels, s.value))
                    .collect();
                panic!(
                    "timed out waiting for {what}; health metrics:\n{}",
                    summary.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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
pub fn assert_exact(m: &Exposition, op: &str, truth: &Truth, bounds: &[f64]) {
    let mut seen = 0;
    for ((agent, interaction), t) in &truth.series {
        let labels = [
            ("operation", op),
            ("agent_id", agent.as_str()),
            ("interaction", interaction.as_str()),
        ];
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
        assert_eq!(
            m.get("wolkvox_agent_interaction_duration_seconds_bucket", &l),
            Some(t.count as f64)
        );
        seen += 1;
    }
    let series = m
        .select("wolkvox_agent_interactions_total", &[("operation", op)])
        .count();
    assert_eq!(series, seen, "{op} has series the ground truth does not");
}

/// The `le` label as the exporter writes it (Go's float format: `30`, `0.5`).
fn format_le(b: f64) -> String {
    b.to_string()
}
