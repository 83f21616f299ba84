//! Typed configuration: the YAML file, overridden by flags, with the single-operation
//! environment variables as a fallback. Validation names the exact key that is wrong.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use serde::Deserialize;

/// Defaults, stated once.
pub mod defaults {
    use std::time::Duration;
    pub const INTERVAL: Duration = Duration::from_secs(5 * 60);
    pub const OVERLAP: Duration = Duration::from_secs(30 * 60);
    pub const DELAY: Duration = Duration::from_secs(60);
    pub const CATCH_UP: Duration = Duration::from_secs(24 * 3600);
    pub const TIMEOUT: Duration = Duration::from_secs(65);
    pub const MAX_BODY_BYTES: u64 = 256 * 1024 * 1024;
    pub const TIMEZONE: &str = "America/Bogota";
    pub const LICENSES: u32 = 1;
    pub const DAILY_RESERVE: f64 = 0.10;
    pub const REQUESTS_PER_SECOND: f64 = 1.0;
    pub const RETRY_INITIAL: Duration = Duration::from_secs(2);
    pub const RETRY_MAX: Duration = Duration::from_secs(60);
    pub const RETRY_ATTEMPTS: u32 = 4;
    pub const MAX_AGENTS: usize = 10_000;
    pub const BUCKETS: [f64; 9] = [
        30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
    ];
    pub const STATE_PATH: &str = "data/state.json";
}

/// The shortest poll interval accepted without `--poll.allow-fast`: the vendor's cadence.
pub const MIN_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// A Wolkvox token. It never prints itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(secret: impl Into<String>) -> Self {
        Token(secret.into())
    }
    /// The secret itself, for the request header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub poll: PollConfig,
    pub api: ApiConfig,
    pub metrics: MetricsConfig,
    pub operations: Vec<OperationConfig>,
    pub state_path: PathBuf,
}

#[derive(Debug, Clone)]
pub struct PollConfig {
    pub interval: Duration,
    pub overlap: Duration,
    pub delay: Duration,
    pub catch_up: Duration,
    pub allow_fast: bool,
}

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub timeout: Duration,
    pub max_body_bytes: u64,
    /// Share of the daily quota left for the operation's other clients.
    pub daily_reserve: f64,
    pub requests_per_second: f64,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub retry_attempts: u32,
}

#[derive(Debug, Clone)]
pub struct MetricsConfig {
    pub duration_buckets: Vec<f64>,
    pub max_agents: usize,
    /// OpenMetrics exemplars (`conn_id`) on the duration histogram's buckets.
    pub exemplars: bool,
    /// Series of `wolkvox_transfer_flows_total` per operation before new ones count
    /// under `destination="_overflow"`.
    pub max_flows: usize,
}

#[derive(Debug, Clone)]
pub struct OperationConfig {
    pub name: String,
    /// Base URL without the report path, e.g. `https://wv0042.wolkvox.com`.
    pub base_url: String,
    pub token: Token,
    pub timezone: Tz,
    pub licenses: u32,
}

impl OperationConfig {
    pub fn daily_limit(&self) -> u64 {
        u64::from(self.licenses) * 1000
    }

    /// The reports the operation follows, in priority order.
    pub fn report_names(&self) -> Vec<crate::reports::ReportName> {
        crate::reports::defaults()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// The file as written, before validation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub poll: FilePoll,
    #[serde(default)]
    pub api: FileApi,
    #[serde(default)]
    pub metrics: FileMetrics,
    #[serde(default)]
    pub state: FileState,
    #[serde(default)]
    pub operations: Vec<FileOperation>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePoll {
    pub interval: Option<String>,
    pub overlap: Option<String>,
    pub delay: Option<String>,
    pub catch_up: Option<String>,
    pub allow_fast: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileApi {
    pub timeout: Option<String>,
    pub max_body_bytes: Option<u64>,
    pub daily_reserve: Option<f64>,
    pub requests_per_second: Option<f64>,
    pub retry_initial: Option<String>,
    pub retry_max: Option<String>,
    pub retry_attempts: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMetrics {
    pub duration_buckets: Option<Vec<f64>>,
    pub max_agents: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileState {
    pub path: Option<PathBuf>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOperation {
    pub name: Option<String>,
    pub server: Option<String>,
    pub base_url: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    pub token_env: Option<String>,
    pub timezone: Option<String>,
    pub licenses: Option<u32>,
}

/// Command-line values that override the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub interval: Option<String>,
    pub overlap: Option<String>,
    pub delay: Option<String>,
    pub catch_up: Option<String>,
    pub allow_fast: bool,
    pub state_path: Option<PathBuf>,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        serde_yaml_ng::from_str(text).map_err(|e| e.to_string())
    }
}

/// Reads the single-operation environment (`WOLKVOX_*`) into a file-style operation.
pub fn operation_from_env(get: impl Fn(&str) -> Option<String>) -> Option<FileOperation> {
    let server = get("WOLKVOX_SERVER");
    let base_url = get("WOLKVOX_BASE_URL");
    if server.is_none() && base_url.is_none() {
        return None;
    }
    Some(FileOperation {
        name: get("WOLKVOX_OPERATION"),
        server,
        base_url,
        token: get("WOLKVOX_TOKEN"),
        token_file: get("WOLKVOX_TOKEN_FILE").map(PathBuf::from),
        token_env: None,
        timezone: get("WOLKVOX_TIMEZONE"),
        licenses: get("WOLKVOX_LICENSES")
            .and_then(|v| v.trim().parse().ok())
            .or_else(|| {
                // An unparsable value must not silently become the default.
                get("WOLKVOX_LICENSES").map(|_| u32::MAX)
            }),
    })
}

/// Parses `30s`, `5m`, `24h`, `1h30m` (humantime) and names the key on error.
pub fn parse_duration(key: &str, value: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(value.trim())
        .map_err(|e| invalid(key, format!("invalid duration {value:?}: {e}")))
}

impl Config {
    /// Validates the file and overrides into a typed configuration.
    pub fn build(
        file: FileConfig,
        overrides: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let dur =
            |key: &str, flag: &Option<String>, file: &Option<String>, default: Duration| match flag
                .as_ref()
                .map(|v| (format!("--{}", key.replace('_', "-")), v))
            {
                Some((flag_key, v)) => parse_duration(&flag_key, v),
                None => match file {
                    Some(v) => parse_duration(key, v),
                    None => Ok(default),
                },
            };
        let interval = dur(
            "poll.interval",
            &overrides.interval,
            &file.poll.interval,
            defaults::INTERVAL,
        )?;
        let overlap = dur(
            "poll.overlap",
            &overrides.overlap,
            &file.poll.overlap,
            defaults::OVERLAP,
        )?;
        let delay = dur(
            "poll.delay",
            &overrides.delay,
            &file.poll.delay,
            defaults::DELAY,
        )?;
        let catch_up = dur(
            "poll.catch_up",
            &overrides.catch_up,
            &file.poll.catch_up,
            defaults::CATCH_UP,
        )?;
        let allow_fast = overrides.allow_fast || file.poll.allow_fast.unwrap_or(false);
        let interval_key = if overrides.interval.is_some() {
            "--poll.interval"
        } else {
            "poll.interval"
        };
        if interval < MIN_INTERVAL && !allow_fast {
            return Err(invalid(
                interval_key,
                format!(
                    "{} is shorter than the API's 5m cadence; add --poll.allow-fast to accept it",
                    humantime::format_duration(interval)
                ),
            ));
        }
        if interval < Duration::from_millis(100) {
            return Err(invalid(interval_key, "must be at least 100ms"));
        }
        if catch_up.as_secs() == 0 {
            return Err(invalid("poll.catch_up", "must be at least 1s"));
        }
        let poll = PollConfig {
            interval,
            overlap,
            delay,
            catch_up,
            allow_fast,
        };

        let api = ApiConfig {
            timeout: match &file.api.timeout {
                Some(v) => parse_duration("api.timeout", v)?,
                None => defaults::TIMEOUT,
            },
            max_body_bytes: file.api.max_body_bytes.unwrap_or(defaults::MAX_BODY_BYTES),
            daily_reserve: file.api.daily_reserve.unwrap_or(defaults::DAILY_RESERVE),
            requests_per_second: file
                .api
                .requests_per_second
                .unwrap_or(defaults::REQUESTS_PER_SECOND),
            retry_initial: match &file.api.retry_initial {
                Some(v) => parse_duration("api.retry_initial", v)?,
                None => defaults::RETRY_INITIAL,
            },
            retry_max: match &file.api.retry_max {
                Some(v) => parse_duration("api.retry_max", v)?,
                None => defaults::RETRY_MAX,
            },
            retry_attempts: file.api.retry_attempts.unwrap_or(defaults::RETRY_ATTEMPTS),
        };
        if api.timeout.is_zero() {
            return Err(invalid("api.timeout", "must be positive"));
        }
        if api.max_body_bytes < 1024 {
            return Err(invalid("api.max_body_bytes", "must be at least 1024"));
        }
        if !(0.0..1.0).contains(&api.daily_reserve) {
            return Err(invalid(
                "api.daily_reserve",
                "must be a fraction in [0, 1), e.g. 0.1",
            ));
        }
        if !(api.requests_per_second > 0.0 && api.requests_per_second.is_finite()) {
            return Err(invalid("api.requests_per_second", "must be positive"));
        }
        if api.retry_initial.is_zero() || api.retry_max < api.retry_initial {
            return Err(invalid(
                "api.retry_max",
                "must be positive and not below api.retry_initial",
            ));
        }

        let duration_buckets = file
            .metrics
            .duration_buckets
            .unwrap_or_else(|| defaults::BUCKETS.to_vec());
        if duration_buckets.is_empty()
            || duration_buckets.iter().any(|b| !b.is_finite() || *b <= 0.0)
            || duration_buckets.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(invalid(
                "metrics.duration_buckets",
                "must be a non-empty, strictly increasing list of positive finite numbers",
            ));
        }
        let max_agents = file.metrics.max_agents.unwrap_or(defaults::MAX_AGENTS);
        if max_agents == 0 {
            return Err(invalid("metrics.max_agents", "must be at least 1"));
        }
        let metrics = MetricsConfig {
            duration_buckets,
            max_agents,
            exemplars: true,
            max_flows: 20_000,
        };

        let mut raw_ops = file.operations;
        if raw_ops.is_empty() {
            if let Some(op) = operation_from_env(&env) {
                raw_ops.push(op);
            }
        }
        if raw_ops.is_empty() {
            return Err(invalid(
                "operations",
                "no operation configured: give --config.file with `operations:`, \
                 set WOLKVOX_SERVER or WOLKVOX_BASE_URL, or run with --demo",
            ));
        }
        let mut operations = Vec::with_capacity(raw_ops.len());
        let mut names = HashSet::new();
        for (i, raw) in raw_ops.into_iter().enumerate() {
            let op = validate_operation(i, raw, &env)?;
            if !names.insert(op.name.clone()) {
                return Err(invalid(
                    format!("operations[{i}].name"),
                    format!("duplicate operation name {:?}", op.name),
                ));
            }
            operations.push(op);
        }

        let state_path = overrides
            .state_path
            .clone()
            .or(file.state.path)
            .unwrap_or_else(|| PathBuf::from(defaults::STATE_PATH));

        Ok(Config {
            poll,
            api,
            metrics,
            operations,
            state_path,
        })
    }
}

fn validate_operation(
    i: usize,
    raw: FileOperation,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<OperationConfig, ConfigError> {
    let key = |k: &str| format!("operations[{i}].{k}");
    let base_url = match (&raw.server, &raw.base_url) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                key("base_url"),
                "give either server or base_url, not both",
            ))
        }
        (Some(server), None) => {
            let server = server.trim();
            if server.len() != 4 || !server.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(
                    key("server"),
                    format!("must be the four-digit server code (e.g. \"0042\"), got {server:?}"),
                ));
            }
            format!("https://wv{server}.wolkvox.com")
        }
        (None, Some(url)) => {
            let url = url.trim().trim_end_matches('/');
            let parsed = reqwest::Url::parse(url)
                .map_err(|e| invalid(key("base_url"), format!("invalid URL {url:?}: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
                return Err(invalid(
                    key("base_url"),
                    format!("must be an http(s) URL with a host, got {url:?}"),
                ));
            }
            url.to_owned()
        }
        (None, None) => {
            return Err(invalid(
                key("server"),
                "missing: give the four-digit server code or base_url",
            ))
        }
    };
    // The label defaults to the server code, or to the base URL's host.
    let name = match (raw.name, &raw.server) {
        (Some(n), _) => n,
        (None, Some(server)) => server.trim().to_owned(),
        (None, None) => reqwest::Url::parse(&base_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default(),
    };
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(invalid(
            key("name"),
            format!("must be 1-64 characters of [A-Za-z0-9_.-], got {name:?}"),
        ));
    }

    let token = match (&raw.token, &raw.token_file, &raw.token_env) {
        (Some(t), None, None) => t.trim().to_owned(),
        (None, Some(path), None) => {
            read_token_file(path).map_err(|m| invalid(key("token_file"), m))?
        }
        (None, None, Some(var)) => env(var).map(|t| t.trim().to_owned()).ok_or_else(|| {
            invalid(
                key("token_env"),
                format!("environment variable {var} is not set"),
            )
        })?,
        (None, None, None) => return Err(invalid(
            key("token"),
            "missing: give token, token_file or token_env (WOLKVOX_TOKEN or WOLKVOX_TOKEN_FILE)",
        )),
        _ => {
            return Err(invalid(
                key("token"),
                "give only one of token, token_file, token_env",
            ))
        }
    };
    if token.is_empty() {
        return Err(invalid(key("token"), "is empty"));
    }
    if token.bytes().any(|b| b.is_ascii_control()) {
        return Err(invalid(key("token"), "contains control characters"));
    }

    let tz_name = raw.timezone.as_deref().unwrap_or(defaults::TIMEZONE);
    let timezone: Tz = tz_name.trim().parse().map_err(|_| {
        invalid(
            key("timezone"),
            format!("unknown IANA time zone {tz_name:?} (e.g. America/Bogota)"),
        )
    })?;
    let licenses = raw.licenses.unwrap_or(defaults::LICENSES);
    if licenses == 0 || licenses > 1_000_000 {
        return Err(invalid(
            key("licenses"),
            "must be a whole number between 1 and 1000000",
        ));
    }
    Ok(OperationConfig {
        name,
        base_url,
        token: Token::new(token),
        timezone,
        licenses,
    })
}

/// Reads a token file; warns (without the token) when others may read it.
fn read_token_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o004 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{:o}", meta.permissions().mode() & 0o777),
                    "token file is readable by other users; chmod 600 it"
                );
            }
        }
    }
    Ok(text.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn build(yaml: &str) -> Result<Config, ConfigError> {
        Config::build(
            FileConfig::parse(yaml).map_err(|m| invalid("file", m))?,
            &Overrides::default(),
            no_env,
        )
    }

    const OK: &str = "operations:\n  - name: bog\n    server: \"0042\"\n    token: abc\n";

    #[test]
    fn defaults_apply() {
        let c = build(OK).unwrap();
        assert_eq!(c.poll.interval, defaults::INTERVAL);
        assert_eq!(c.poll.overlap, defaults::OVERLAP);
        assert_eq!(c.api.timeout, defaults::TIMEOUT);
        assert_eq!(c.operations[0].base_url, "https://wv0042.wolkvox.com");
        assert_eq!(c.operations[0].timezone, chrono_tz::America::Bogota);
        assert_eq!(c.operations[0].daily_limit(), 1000);
        assert_eq!(c.metrics.duration_buckets, defaults::BUCKETS.to_vec());
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("operations:\n  - server: \"42\"\n    token: a\n", "operations[0].server"),
            (
                "operations:\n  - server: \"0042\"\n    token: a\n    timezone: Mars/Base\n",
                "operations[0].timezone",
            ),
            ("operations:\n  - server: \"0042\"\n", "operations[0].token"),
            (
                "poll:\n  interval: 20s\noperations:\n  - server: \"0042\"\n    token: a\n",
                "poll.interval",
            ),
            (
                "poll:\n  overlap: soon\noperations:\n  - server: \"0042\"\n    token: a\n",
                "poll.overlap",
            ),
            (
                "metrics:\n  duration_buckets: [60, 30]\noperations:\n  - server: \"0042\"\n    token: a\n",
                "metrics.duration_buckets",
            ),
            (
                "operations:\n  - server: \"0042\"\n    token: a\n  - server: \"0042\"\n    token: b\n",
                "operations[1].name",
            ),
            ("operations:\n  - base_url: ftp://x\n    name: a\n    token: a\n", "operations[0].base_url"),
            ("", "operations"),
        ];
        for (yaml, key) in cases {
            let err = build(yaml).unwrap_err().to_string();
            assert!(err.starts_with(&format!("{key}:")), "{yaml:?} gave {err:?}");
        }
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let err = FileConfig::parse("poll:\n  intervall: 5m\n").unwrap_err();
        assert!(err.contains("intervall"), "{err}");
    }

    #[test]
    fn fast_interval_needs_the_flag() {
        let o = Overrides {
            interval: Some("20s".into()),
            allow_fast: true,
            ..Default::default()
        };
        let c = Config::build(FileConfig::parse(OK).unwrap(), &o, no_env).unwrap();
        assert_eq!(c.poll.interval, Duration::from_secs(20));
        let o = Overrides {
            interval: Some("20s".into()),
            ..Default::default()
        };
        let err = Config::build(FileConfig::parse(OK).unwrap(), &o, no_env).unwrap_err();
        assert!(err.to_string().starts_with("--poll.interval:"), "{err}");
    }

    #[test]
    fn environment_builds_one_operation() {
        let env = |k: &str| match k {
            "WOLKVOX_BASE_URL" => Some("http://127.0.0.1:9/".to_string()),
            "WOLKVOX_TOKEN" => Some("s3cret".to_string()),
            "WOLKVOX_OPERATION" => Some("local".to_string()),
            "WOLKVOX_TIMEZONE" => Some("America/Mexico_City".to_string()),
            "WOLKVOX_LICENSES" => Some("7".to_string()),
            _ => None,
        };
        let c = Config::build(FileConfig::default(), &Overrides::default(), env).unwrap();
        let op = &c.operations[0];
        assert_eq!(op.name, "local");
        assert_eq!(op.base_url, "http://127.0.0.1:9");
        assert_eq!(op.licenses, 7);
        assert_eq!(op.timezone, chrono_tz::America::Mexico_City);
        let bad = |k: &str| match k {
            "WOLKVOX_SERVER" => Some("0042".to_string()),
            "WOLKVOX_TOKEN" => Some("s3cret".to_string()),
            "WOLKVOX_LICENSES" => Some("many".to_string()),
            _ => None,
        };
        let err = Config::build(FileConfig::default(), &Overrides::default(), bad).unwrap_err();
        assert!(
            err.to_string().starts_with("operations[0].licenses"),
            "{err}"
        );
    }

    #[test]
    fn token_never_prints() {
        let c = build("operations:\n  - server: \"0042\"\n    token: SUPERSECRET\n").unwrap();
        let shown = format!("{:?} {}", c, c.operations[0].token);
        assert!(!shown.contains("SUPERSECRET"), "{shown}");
        assert_eq!(c.operations[0].token.expose(), "SUPERSECRET");
    }

    #[test]
    fn token_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tok");
        std::fs::write(&p, "abc123\n").unwrap();
        let yaml = format!(
            "operations:\n  - server: \"0042\"\n    token_file: {}\n",
            p.display()
        );
        assert_eq!(build(&yaml).unwrap().operations[0].token.expose(), "abc123");
        let yaml = "operations:\n  - server: \"0042\"\n    token_file: /nonexistent/tok\n";
        let err = build(yaml).unwrap_err().to_string();
        assert!(
            err.starts_with("operations[0].token_file: cannot read"),
            "{err}"
        );
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;

    /// The example in `examples/` (shown in the README) stays valid.
    #[test]
    fn the_shipped_example_is_valid_and_complete() {
        let text = include_str!("../examples/wolkvox-exporter.yml");
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("tok");
        std::fs::write(&token, "t").unwrap();
        let text = text.replace("/run/secrets/wolkvox_token", token.to_str().unwrap());
        let env = |k: &str| (k == "WOLKVOX_TOKEN_CDMX").then(|| "t2".to_owned());
        let c = Config::build(
            FileConfig::parse(&text).unwrap(),
            &Overrides::default(),
            env,
        )
        .unwrap();
        assert_eq!(c.operations.len(), 2);
        assert_eq!(c.operations[0].base_url, "https://wv0042.wolkvox.com");
        assert_eq!(c.operations[1].daily_limit(), 20_000);
        assert_eq!(c.poll.interval, defaults::INTERVAL);
        assert_eq!(c.api.retry_attempts, defaults::RETRY_ATTEMPTS);
        assert_eq!(c.metrics.duration_buckets, defaults::BUCKETS.to_vec());
    }
}
