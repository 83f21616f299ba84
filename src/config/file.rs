//! The YAML configuration file as written: every key optional, unknown keys refused by
//! name, durations in humantime form (`30s`, `5m`, `1h30m`) through `humantime_serde`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::operation::{Address, Given, RawOperation, TokenSource};
use super::reports::RawReport;
use super::{invalid, ApiConfig, ConfigError, MetricsConfig, PollConfig, Token};

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    pub poll: PollConfig,
    pub api: ApiConfig,
    pub metrics: MetricsConfig,
    pub state: FileState,
    pub operations: Vec<FileOperation>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileState {
    pub path: Option<PathBuf>,
}

/// One entry of `operations:`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOperation {
    pub name: Option<String>,
    pub server: Option<String>,
    pub base_url: Option<String>,
    pub token: Option<Token>,
    pub token_file: Option<PathBuf>,
    pub token_env: Option<String>,
    pub timezone: Option<String>,
    pub licenses: Option<u32>,
    /// Report name to its settings (`cdr_1: {interval: 15m}`, or just `cdr_1:`).
    pub reports: Option<BTreeMap<String, Option<FileReport>>>,
}

/// One entry of `operations[].reports`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileReport {
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::parse(&text).map_err(|source| ConfigError::Parse { path: path.to_owned(), source })
    }

    /// Parses the file's text; serde's error names the offending key and line.
    pub fn parse(text: &str) -> Result<Self, serde_yaml_ng::Error> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        serde_yaml_ng::from_str(text)
    }
}

impl FileOperation {
    /// Checks which keys are given together; values are checked in `validate`.
    pub(super) fn into_raw(self, index: usize) -> Result<RawOperation, ConfigError> {
        let key = |k: &str| format!("operations[{index}].{k}");
        let address = match (self.server, self.base_url) {
            (Some(server), None) => Given::new(key("server"), Address::Server(server)),
            (None, Some(url)) => Given::new(key("base_url"), Address::BaseUrl(url)),
            (Some(_), Some(_)) => {
                return Err(invalid(key("base_url"), "give either server or base_url, not both"))
            }
            (None, None) => {
                return Err(invalid(key("server"), "missing: give the four-digit server code or base_url"))
            }
        };
        let token = match (self.token, self.token_file, self.token_env) {
            (Some(token), None, None) => Given::new(key("token"), TokenSource::Inline(token)),
            (None, Some(path), None) => Given::new(key("token_file"), TokenSource::File(path)),
            (None, None, Some(var)) => Given::new(key("token_env"), TokenSource::Env(var)),
            (None, None, None) => {
                return Err(invalid(key("token"), "missing: give token, token_file or token_env"))
            }
            _ => return Err(invalid(key("token"), "give only one of token, token_file, token_env")),
        };
        Ok(RawOperation {
            name: self.name.map(|v| Given::new(key("name"), v)),
            address,
            token,
            timezone: self.timezone.map(|v| Given::new(key("timezone"), v)),
            licenses: self.licenses.map(|v| Given::new(key("licenses"), v)),
            reports: self.reports.map(|reports| {
                let named = reports
                    .into_iter()
                    .map(|(name, settings)| {
                        let report =
                            RawReport { interval: settings.and_then(|s| s.interval), name: name.clone() };
                        Given::new(format!("{}.{name}", key("reports")), report)
                    })
                    .collect();
                Given::new(key("reports"), named)
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{defaults, Config, Overrides};
    use super::*;

    fn build(yaml: &str) -> Result<Config, ConfigError> {
        let file = FileConfig::parse(yaml)
            .map_err(|source| ConfigError::Parse { path: "test.yml".into(), source })?;
        Config::build(file, &Overrides::default(), |_| None)
    }

    const OK: &str = "operations:\n  - name: bog\n    server: \"0042\"\n    token: abc\n";

    #[test]
    fn defaults_apply() {
        let c = build(OK).unwrap();
        assert_eq!(c.poll.interval, PollConfig::default().interval);
        assert_eq!(c.poll.overlap, PollConfig::default().overlap);
        assert_eq!(c.api.timeout, ApiConfig::default().timeout);
        assert_eq!(c.operations[0].base_url, "https://wv0042.wolkvox.com");
        assert_eq!(c.operations[0].timezone, chrono_tz::America::Bogota);
        assert_eq!(c.operations[0].daily_limit(), 1000);
        assert_eq!(c.metrics.duration_buckets, defaults::BUCKETS.to_vec());
    }

    #[test]
    fn durations_are_humantime() {
        let yaml = format!("poll:\n  interval: 1h30m\n  delay: 90s\napi:\n  retry_max: 2m\n{OK}");
        let c = build(&yaml).unwrap();
        assert_eq!(c.poll.interval, Duration::from_secs(5400));
        assert_eq!(c.poll.delay, Duration::from_secs(90));
        assert_eq!(c.api.retry_max, Duration::from_secs(120));
    }

    #[test]
    fn errors_name_the_key() {
        let op = "operations:\n  - server: \"0042\"\n    token: a\n";
        let cases = [
            ("operations:\n  - server: \"42\"\n    token: a\n".to_owned(), "operations[0].server"),
            (format!("{op}    timezone: Mars/Base\n"), "operations[0].timezone"),
            (format!("{op}    licenses: 0\n"), "operations[0].licenses"),
            (format!("{op}    name: a/b\n"), "operations[0].name"),
            (format!("{op}    token_env: NOT_SET_ANYWHERE\n"), "operations[0].token"),
            (format!("{op}  - server: \"0042\"\n    token: b\n"), "operations[1].name"),
            (format!("{op}  - server: \"0107\"\n"), "operations[1].token"),
            ("operations:\n  - token: a\n".to_owned(), "operations[0].server"),
            (
                "operations:\n  - base_url: ftp://x\n    name: a\n    token: a\n".to_owned(),
                "operations[0].base_url",
            ),
            (
                "operations:\n  - server: \"0042\"\n    token_env: UNSET\n".to_owned(),
                "operations[0].token_env",
            ),
            (format!("poll:\n  interval: 20s\n{op}"), "poll.interval"),
            (format!("poll:\n  catch_up: 0s\n{op}"), "poll.catch_up"),
            (format!("api:\n  retry_initial: 0s\n{op}"), "api.retry_initial"),
            (format!("api:\n  daily_reserve: 1.5\n{op}"), "api.daily_reserve"),
            (format!("metrics:\n  duration_buckets: [60, 30]\n{op}"), "metrics.duration_buckets"),
            (String::new(), "operations"),
        ];
        for (yaml, key) in cases {
            let err = build(&yaml).unwrap_err().to_string();
            assert!(err.starts_with(&format!("{key}:")), "{yaml:?} gave {err:?}");
        }
    }

    #[test]
    fn schema_errors_name_the_key() {
        let op = "operations:\n  - server: \"0042\"\n    token: a\n";
        let cases = [
            ("poll:\n  intervall: 5m\n".to_owned(), "intervall"),
            (format!("poll:\n  overlap: soon\n{op}"), "poll.overlap"),
            (format!("api:\n  timeout: 5\n{op}"), "api.timeout"),
            (format!("{op}  - server: \"0107\"\n    licenses: many\n"), "operations[1].licenses"),
            (format!("{op}    servr: \"0042\"\n"), "servr"),
        ];
        for (yaml, key) in cases {
            let err = FileConfig::parse(&yaml).unwrap_err().to_string();
            assert!(err.contains(key), "{yaml:?} gave {err:?}");
        }
    }

    #[test]
    fn an_inline_token_is_never_shown() {
        let yaml = "operations:\n  - server: \"0042\"\n    token: SUPERSECRET\n";
        let file = FileConfig::parse(yaml).unwrap();
        assert!(!format!("{file:?}").contains("SUPERSECRET"));
        let yaml = "operations:\n  - server: \"0042\"\n    token: \"SUPER\\u0007SECRET\"\n";
        let err = build(yaml).unwrap_err().to_string();
        assert_eq!(err, "operations[0].token: the token contains control characters");
    }

    #[test]
    fn token_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tok");
        std::fs::write(&p, "abc123\n").unwrap();
        let yaml = format!("operations:\n  - server: \"0042\"\n    token_file: {}\n", p.display());
        assert_eq!(build(&yaml).unwrap().operations[0].token.expose(), "abc123");
        let yaml = "operations:\n  - server: \"0042\"\n    token_file: /nonexistent/tok\n";
        let err = build(yaml).unwrap_err().to_string();
        assert!(err.starts_with("operations[0].token_file: cannot read"), "{err}");
    }

    /// The example in `examples/` (shown in the README) stays valid.
    #[test]
    fn the_shipped_example_is_valid_and_complete() {
        let text = include_str!("../../examples/wolkvox-exporter.yml");
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("tok");
        std::fs::write(&token, "t").unwrap();
        let text = text.replace("/run/secrets/wolkvox_token", token.to_str().unwrap());
        let env = |k: &str| (k == "WOLKVOX_TOKEN_CDMX").then(|| "t2".to_owned());
        let c = Config::build(FileConfig::parse(&text).unwrap(), &Overrides::default(), env).unwrap();
        assert_eq!(c.operations.len(), 2);
        assert_eq!(c.operations[0].base_url, "https://wv0042.wolkvox.com");
        assert_eq!(c.operations[1].daily_limit(), 20_000);
        assert_eq!(c.poll.interval, PollConfig::default().interval);
        assert_eq!(c.api.retry_attempts, ApiConfig::default().retry_attempts);
        assert_eq!(c.metrics.duration_buckets, defaults::BUCKETS.to_vec());
    }
}
