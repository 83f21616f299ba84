//! Building blocks of the fault, hostile-input, secrets and load tests: a configuration
//! file for any API base URL and token source, process memory probes, and waits with
//! a deadline.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where an operation's token comes from.
#[derive(Debug, Clone)]
pub enum TokenSource {
    Inline(String),
    File(PathBuf),
}

/// One operation of a test configuration.
#[derive(Debug, Clone)]
pub struct OpSpec {
    pub name: String,
    pub base_url: String,
    pub token: TokenSource,
    pub timezone: String,
}

impl OpSpec {
    pub fn new(name: &str, base_url: &str, token: &str, timezone: &str) -> OpSpec {
        OpSpec {
            name: name.to_owned(),
            base_url: base_url.to_owned(),
            token: TokenSource::Inline(token.to_owned()),
            timezone: timezone.to_owned(),
        }
    }
}

/// Knobs of a fast test configuration; the defaults match `inproc::config_yaml`.
#[derive(Debug, Clone)]
pub struct Knobs {
    pub interval: &'static str,
    pub overlap: &'static str,
    pub catch_up: String,
    pub timeout: &'static str,
    pub retry_attempts: u32,
    pub max_agents: Option<usize>,
    pub max_body_bytes: Option<u64>,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            interval: "1s",
            overlap: "30m",
            catch_up: "24h".to_owned(),
            timeout: "2s",
            retry_attempts: 6,
            max_agents: None,
            max_body_bytes: None,
        }
    }
}

/// A YAML configuration with 1 s cycles and quick retries.
pub fn yaml(ops: &[OpSpec], knobs: &Knobs, state: &Path) -> String {
    let mut y = format!(
        "poll:\n  interval: {}\n  allow_fast: true\n  overlap: {}\n  delay: 0s\n  catch_up: {}\n\
         api:\n  timeout: {}\n  requests_per_second: 1000\n  retry_initial: 20ms\n  retry_max: 200ms\n  retry_attempts: {}\n",
        knobs.interval, knobs.overlap, knobs.catch_up, knobs.timeout, knobs.retry_attempts
    );
    if let Some(n) = knobs.max_body_bytes {
        y.push_str(&format!("  max_body_bytes: {n}\n"));
    }
    if let Some(n) = knobs.max_agents {
        y.push_str(&format!("metrics:\n  max_agents: {n}\n"));
    }
    y.push_str(&format!(
        "state:\n  path: {}\noperations:\n",
        state.display()
    ));
    for op in ops {
        let token = match &op.token {
            TokenSource::Inline(t) => format!("token: {t}"),
            TokenSource::File(p) => format!("token_file: {}", p.display()),
        };
        y.push_str(&format!(
            "  - name: {}\n    base_url: {}\n    {token}\n    timezone: {}\n    licenses: 100\n",
            op.name, op.base_url, op.timezone
        ));
    }
    y
}

/// Writes `yaml` next to the state and returns the `--config.file=` argument.
pub fn config_arg(dir: &Path, yaml: &str) -> String {
    let path = dir.join("config.yml");
    std::fs::write(&path, yaml).expect("write the test configuration");
    format!("--config.file={}", path.display())
}

/// Resident and peak resident memory of a process, in KiB, from `/proc`.
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Polls `probe` until it returns `Some`, panicking with `what` and the last `describe`
/// output at the deadline.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Option<T>,
    describe: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                describe()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Like `inproc::assert_exact`, with the exposition indexed first, for expositions of
/// thousands of agents.
pub fn assert_exact_indexed(
    m: &super::exposition::Exposition,
    op: &str,
    truth: &super::fake_wolkvox::Truth,
    bounds: &[f64],
) {
    use std::collections::HashMap;
    let mut index: HashMap<(&str, &str, &str, &str), f64> = HashMap::new();
    for s in &m.samples {
        if s.labels.get("operation").map(String::as_str) != Some(op) {
            continue;
        }
        let (Some(agent), Some(interaction)) =
            (s.labels.get("agent_id"), s.labels.get("interaction"))
        else {
            continue;
        };
        let le = s.labels.get("le").map_or("", String::as_str);
        let previous = index.insert((&s.name, agent, interaction, le), s.value);
        assert!(
            previous.is_none(),
            "duplicate sample {} {:?}",
            s.name,
            s.labels
        );
    }
    let mut series = 0;
    for ((agent, interaction), t) in &truth.series {
        let get = |name: &str, le: &str| {
            index
                .get(&(name, agent.as_str(), interaction.as_str(), le))
                .copied()
        };
        let what = format!("{op}/{agent}/{interaction}");
        assert_eq!(
            get("wolkvox_agent_interactions_total", ""),
            Some(t.count as f64),
            "count of {what}"
        );
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
        for (b, want) in bounds
            .iter()
            .map(|b| b.to_string())
            .chain(["+Inf".to_owned()])
            .zip(cumulative)
        {
            assert_eq!(
                get("wolkvox_agent_interaction_duration_seconds_bucket", &b),
                Some(want as f64),
                "bucket le={b} of {what}"
            );
        }
        series += 1;
    }
    let exported = index
        .keys()
        .filter(|k| k.0 == "wolkvox_agent_interactions_total")
        .count();
    assert_eq!(
        exported, series,
        "{op} has series the ground truth does not"
    );
}
