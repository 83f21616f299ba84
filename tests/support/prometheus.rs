//! A real Prometheus on loopback for end-to-end tests: it scrapes the given targets,
//! loads the given rule files, and answers PromQL through its HTTP API.

use std::fs;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::http;
use super::wait::Wait;

const START_TIMEOUT: Duration = Duration::from_secs(30);
const POLL_EVERY: Duration = Duration::from_millis(100);

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| candidate.is_file())
}

fn required_tool(name: &str) -> PathBuf {
    find_on_path(name).unwrap_or_else(|| {
        panic!(
            "`{name}` is not on PATH. These tests need the real Prometheus tools: run \
             scripts/test.sh (its scripts/setup/10-prometheus.sh installs them), or install \
             Prometheus so that `prometheus` and `promtool` are on PATH."
        )
    })
}

pub fn promtool() -> PathBuf {
    required_tool("promtool")
}

pub fn prometheus_bin() -> PathBuf {
    required_tool("prometheus")
}

/// One `scrape_configs` entry.
#[derive(Debug, Clone)]
pub struct ScrapeJob {
    pub job_name: String,
    pub targets: Vec<String>,
    pub interval: Duration,
}

#[derive(Debug, Clone)]
pub struct PrometheusBuilder {
    jobs: Vec<ScrapeJob>,
    rule_files: Vec<PathBuf>,
    evaluation_interval: Duration,
    /// `--enable-feature=` values.
    features: Vec<String>,
    /// OpenMetrics files turned into blocks of the TSDB before it starts.
    backfills: Vec<PathBuf>,
}

impl PrometheusBuilder {
    /// Scrapes `targets` (`HOST:PORT`) as job `job_name` every `interval`.
    pub fn scrape(mut self, job_name: &str, targets: &[String], interval: Duration) -> Self {
        self.jobs.push(ScrapeJob { job_name: job_name.to_string(), targets: targets.to_vec(), interval });
        self
    }

    pub fn rule_file(mut self, path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        let absolute = fs::canonicalize(path).unwrap_or_else(|e| panic!("rule file {}: {e}", path.display()));
        self.rule_files.push(absolute);
        self
    }

    pub fn evaluation_interval(mut self, interval: Duration) -> Self {
        self.evaluation_interval = interval;
        self
    }

    /// Turns on a feature flag (`--enable-feature=exemplar-storage`).
    pub fn feature(mut self, feature: &str) -> Self {
        self.features.push(feature.to_owned());
        self
    }

    /// Turns `openmetrics` into TSDB blocks with `promtool tsdb create-blocks-from
    /// openmetrics` before Prometheus starts, as a user backfills history.
    pub fn backfill(mut self, openmetrics: impl AsRef<Path>) -> Self {
        self.backfills.push(openmetrics.as_ref().to_owned());
        self
    }

    /// Starts Prometheus and waits for `/-/ready`; panics with its log if it fails.
    pub fn start(self) -> Prometheus {
        let dir = tempfile::tempdir().expect("temp dir for Prometheus");
        let config_path = dir.path().join("prometheus.yml");
        fs::write(&config_path, self.config_yaml()).expect("write prometheus.yml");
        for file in &self.backfills {
            let out = Command::new(promtool())
                .args(["tsdb", "create-blocks-from", "openmetrics"])
                .arg(file)
                .arg(dir.path().join("data"))
                .output()
                .expect("run promtool");
            assert!(
                out.status.success(),
                "promtool tsdb create-blocks-from openmetrics {} failed:\n{}{}",
                file.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }

        let mut last_failure = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            match Prometheus::launch(dir.path(), &config_path, port, &self.features) {
                Ok(child) => return Prometheus { child, port, dir },
                // Another process may have taken the port between our probe and the bind.
                Err(log) if log.contains("address already in use") => last_failure = log,
                Err(log) => panic!("Prometheus did not start:\n{log}"),
            }
        }
        panic!("Prometheus did not start after 3 attempts:\n{last_failure}");
    }

    fn config_yaml(&self) -> String {
        let scrape_configs: Vec<Value> = self
            .jobs
            .iter()
            .map(|job| {
                serde_json::json!({
                    "job_name": job.job_name,
                    "scrape_interval": prom_duration(job.interval),
                    "scrape_timeout": prom_duration(job.interval),
                    "static_configs": [{"targets": job.targets}],
                })
            })
            .collect();
        let config = serde_json::json!({
            "global": {
                "scrape_interval": "15s",
                "evaluation_interval": prom_duration(self.evaluation_interval),
            },
            "rule_files": self.rule_files,
            "scrape_configs": scrape_configs,
        });
        serde_yaml_ng::to_string(&config).expect("serialize prometheus.yml")
    }
}

/// A running Prometheus; killed (and its TSDB deleted) on drop.
pub struct Prometheus {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Prometheus {
    pub fn builder() -> PrometheusBuilder {
        PrometheusBuilder {
            jobs: Vec::new(),
            rule_files: Vec::new(),
            evaluation_interval: Duration::from_secs(1),
            features: Vec::new(),
            backfills: Vec::new(),
        }
    }

    fn launch(dir: &Path, config: &Path, port: u16, features: &[String]) -> Result<Child, String> {
        let log_path = dir.join("prometheus.log");
        let log = fs::File::create(&log_path).expect("create prometheus.log");
        let mut child = Command::new(prometheus_bin())
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(features.iter().map(|f| format!("--enable-feature={f}")))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log file"))
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", prometheus_bin().display()))?;

        let read_log = || fs::read_to_string(&log_path).unwrap_or_default();
        let ready = Wait::new("prometheus ready", START_TIMEOUT).every(POLL_EVERY).poll(|| {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(Some(status));
            }
            let url = format!("http://127.0.0.1:{port}/-/ready");
            match http::get(&url) {
                Ok(r) if r.status == 200 => Ok(()),
                _ => Err(None),
            }
        });
        match ready {
            Ok(()) => Ok(child),
            Err(Some(status)) => Err(format!("prometheus exited ({status}):\n{}", read_log())),
            Err(None) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("prometheus not ready within {START_TIMEOUT:?}:\n{}", read_log()))
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// Prometheus' own log so far, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// GETs an API path and returns `data`, or the API's error.
    pub fn api(&self, path_and_query: &str) -> Result<Value, String> {
        let response =
            http::get(&self.url(path_and_query)).map_err(|e| format!("GET {path_and_query}: {e}"))?;
        let body: Value = serde_json::from_slice(&response.body).map_err(|e| {
            format!(
                "GET {path_and_query}: status {}, body is not JSON ({e}): {}",
                response.status,
                response.text()
            )
        })?;
        if body["status"] != "success" {
            return Err(format!(
                "GET {path_and_query}: status {}, {}: {}",
                response.status, body["errorType"], body["error"]
            ));
        }
        Ok(body["data"].clone())
    }

    /// An instant query at the current time; returns `data` (`resultType`, `result`).
    pub fn query(&self, promql: &str) -> Result<Value, String> {
        self.api(&format!("/api/v1/query?query={}", percent_encode(promql)))
    }

    /// An instant query at Unix time `at`.
    pub fn query_at(&self, promql: &str, at: i64) -> Result<Value, String> {
        self.api(&format!("/api/v1/query?query={}&time={at}", percent_encode(promql)))
    }

    /// Repeats `promql` until `predicate` accepts its `data`, and returns that `data`.
    /// Panics with the last answer after `timeout`.
    pub fn wait_until(&self, promql: &str, timeout: Duration, predicate: impl Fn(&Value) -> bool) -> Value {
        Wait::new(format!("`{promql}` to reach the expected state"), timeout).every(POLL_EVERY).until(|| {
            match self.query(promql) {
                Ok(data) if predicate(&data) => Ok(data),
                last => Err(format!("last answer: {last:?}")),
            }
        })
    }

    /// `/api/v1/targets` `data`.
    pub fn targets(&self) -> Value {
        self.api("/api/v1/targets").unwrap_or_else(|e| panic!("{e}"))
    }

    /// `/api/v1/rules` `data`.
    pub fn rules(&self) -> Value {
        self.api("/api/v1/rules").unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The number of samples of an instant-query `data` (a vector's series, or 1 for a scalar).
pub fn result_len(data: &Value) -> usize {
    match data["resultType"].as_str() {
        Some("vector") | Some("matrix") => data["result"].as_array().map_or(0, Vec::len),
        Some("scalar") | Some("string") => 1,
        _ => 0,
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("probe a free loopback port").port()
}

fn prom_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Runs `promtool check metrics` on an exposition and panics with its complaints.
pub fn check_metrics(exposition: &str) {
    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child.stdin.take().unwrap().write_all(exposition.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics refused the exposition:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
