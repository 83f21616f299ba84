//! Typed configuration: the YAML file ([`file`]), overridden by flags, with the
//! single-operation environment ([`env`]) as a fallback; `validate` builds it and names
//! the true source of a wrong value: a file key, a flag or an environment variable.

pub mod env;
pub mod file;
mod operation;
pub mod plan;
mod reports;
mod validate;

use std::path::PathBuf;
use std::time::Duration;

use chrono_tz::Tz;
use serde::Deserialize;

pub use file::{FileConfig, FileOperation, FileReport, FileState};
pub use reports::ReportConfig;

/// Defaults used beyond this module; the others are stated once, in the `Default` impls.
pub mod defaults {
    pub const TIMEZONE: chrono_tz::Tz = chrono_tz::America::Bogota;
    pub const LICENSES: u32 = 1;
    pub const BUCKETS: [f64; 9] = [30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0];
    pub const STATE_PATH: &str = "data/state.json";
}

/// The shortest poll interval accepted without `--poll.allow-fast`: the vendor's cadence.
pub const MIN_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// Refuses a poll interval under 100ms, or under [`MIN_INTERVAL`] without `allow_fast`.
fn check_interval(key: &str, interval: Duration, allow_fast: bool) -> Result<(), ConfigError> {
    if interval < Duration::from_millis(100) {
        return Err(invalid(key, "must be at least 100ms"));
    }
    if interval < MIN_INTERVAL && !allow_fast {
        let interval = humantime::format_duration(interval);
        let message =
            format!("{interval} is shorter than the API's 5m cadence; add --poll.allow-fast to accept it");
        return Err(invalid(key, message));
    }
    Ok(())
}

pub use crate::vocab::Token;

#[derive(Debug, Clone)]
pub struct Config {
    pub poll: PollConfig,
    pub api: ApiConfig,
    pub metrics: MetricsConfig,
    pub operations: Vec<OperationConfig>,
    pub state_path: PathBuf,
}

/// The file's `poll:` section, and once built the flags' values over it.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PollConfig {
    /// How long after a local day's end a daily report (`Schedule::DailyAfter`) reads it.
    #[serde(with = "humantime_serde")]
    pub reconcile_delay: Duration,
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    #[serde(with = "humantime_serde")]
    pub overlap: Duration,
    #[serde(with = "humantime_serde")]
    pub delay: Duration,
    #[serde(with = "humantime_serde")]
    pub catch_up: Duration,
    pub allow_fast: bool,
}

impl Default for PollConfig {
    fn default() -> Self {
        PollConfig {
            reconcile_delay: Duration::from_secs(2 * 3600),
            interval: Duration::from_secs(5 * 60),
            overlap: Duration::from_secs(30 * 60),
            delay: Duration::from_secs(60),
            catch_up: Duration::from_secs(24 * 3600),
            allow_fast: false,
        }
    }
}

/// The file's `api:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    pub max_body_bytes: u64,
    /// Share of the daily quota left for the operation's other clients.
    pub daily_reserve: f64,
    pub requests_per_second: f64,
    #[serde(with = "humantime_serde")]
    pub retry_initial: Duration,
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    pub retry_attempts: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            timeout: Duration::from_secs(65),
            max_body_bytes: 256 * 1024 * 1024,
            daily_reserve: 0.10,
            requests_per_second: 1.0,
            retry_initial: Duration::from_secs(2),
            retry_max: Duration::from_secs(60),
            retry_attempts: 4,
        }
    }
}

/// The file's `metrics:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    pub duration_buckets: Vec<f64>,
    pub max_agents: usize,
    /// OpenMetrics exemplars (`conn_id`) on the duration histogram's buckets.
    pub exemplars: bool,
    /// Series of `wolkvox_transfer_flows_total` per operation before new ones count
    /// under `destination="_overflow"`.
    pub max_flows: usize,
    /// How long after a transfer chain's first leg its call's legs still join it.
    #[serde(with = "humantime_serde")]
    pub chain_horizon: Duration,
    /// Open transfer chains per operation before the oldest settle early.
    pub max_open_chains: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            duration_buckets: defaults::BUCKETS.to_vec(),
            max_agents: 10_000,
            exemplars: true,
            max_flows: 20_000,
            chain_horizon: Duration::from_secs(2 * 3600),
            max_open_chains: 200_000,
        }
    }
}

impl MetricsConfig {
    /// What the reports are built from.
    pub fn settings(&self) -> crate::reports::Settings {
        crate::reports::Settings {
            duration_buckets: self.duration_buckets.clone(),
            exemplars: self.exemplars,
            max_flows: self.max_flows,
            chain_horizon: self.chain_horizon,
            max_open_chains: self.max_open_chains,
        }
    }
}

#[derive(Debug, Clone)]
pub struct OperationConfig {
    pub name: String,
    /// Base URL without the report path, e.g. `https://wv0042.wolkvox.com`.
    pub base_url: String,
    pub token: Token,
    pub timezone: Tz,
    pub licenses: u32,
    /// The reports it follows, in priority order.
    pub reports: Vec<ReportConfig>,
}

impl OperationConfig {
    pub fn daily_limit(&self) -> u64 {
        u64::from(self.licenses) * 1000
    }

    /// The reports the operation follows, in priority order.
    pub fn report_names(&self) -> Vec<crate::vocab::ReportName> {
        self.reports.iter().map(|r| r.name).collect()
    }
}

/// Command-line values that override the file: `Some` only for the flags given.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub interval: Option<Duration>,
    pub overlap: Option<Duration>,
    pub delay: Option<Duration>,
    pub catch_up: Option<Duration>,
    pub allow_fast: bool,
    pub state_path: Option<PathBuf>,
    pub reconcile_delay: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `key` is where the value came from: a file key (`poll.interval`,
    /// `operations[1].server`), a flag (`--poll.interval`) or an environment variable
    /// (`WOLKVOX_LICENSES`). The message never holds a token.
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// YAML that does not fit the schema; serde's message names the key
    /// (`poll.overlap: invalid value ...`, `unknown field `intervall``).
    #[error("config file {path}: {source}")]
    Parse { path: PathBuf, source: serde_yaml_ng::Error },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.into(), message: message.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_never_prints() {
        let yaml = "operations:\n  - server: \"0042\"\n    token: SUPERSECRET\n";
        let c = Config::build(FileConfig::parse(yaml).unwrap(), &Overrides::default(), |_| None).unwrap();
        let shown = format!("{:?} {}", c, c.operations[0].token);
        assert!(!shown.contains("SUPERSECRET"), "{shown}");
        assert_eq!(c.operations[0].token.expose(), "SUPERSECRET");
    }
}
