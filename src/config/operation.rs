//! One operation as a source (the file or the environment) gave it, and its checks:
//! each value keeps the key or variable it came from, so an error names its true source.

use std::path::{Path, PathBuf};

use chrono_tz::Tz;

use super::reports::{self, RawReport};
use super::{defaults, invalid, ConfigError, OperationConfig, PollConfig, Token};

/// A value with the name it was given under (`operations[1].server`, `WOLKVOX_SERVER`),
/// so that an error about it names its true source.
pub(super) struct Given<T> {
    pub key: String,
    pub value: T,
}

impl<T> Given<T> {
    pub fn new(key: impl Into<String>, value: T) -> Self {
        Given { key: key.into(), value }
    }
}

/// Where an operation's API lives.
pub(super) enum Address {
    /// The four-digit server code, for `https://wv<code>.wolkvox.com`.
    Server(String),
    /// A whole base URL (a proxy, a test server).
    BaseUrl(String),
}

/// Where an operation's token comes from.
pub(super) enum TokenSource {
    Inline(Token),
    File(PathBuf),
    /// The name of an environment variable holding it.
    Env(String),
}

/// One operation as a source gave it, before its values are checked. The file and the
/// environment each build one (they alone know how a missing or doubled key reads).
pub(super) struct RawOperation {
    pub name: Option<Given<String>>,
    pub address: Given<Address>,
    pub token: Given<TokenSource>,
    pub timezone: Option<Given<String>>,
    pub licenses: Option<Given<u32>>,
    /// The reports named, under the key of the whole list; `None` for the defaults.
    pub reports: Option<Given<Vec<Given<RawReport>>>>,
}

/// The characters an `operation` label may hold; also a safe file and URL component.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

pub(super) fn validate_operation(
    raw: RawOperation,
    poll: &PollConfig,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<OperationConfig, ConfigError> {
    let Given { key, value } = raw.address;
    // The label defaults to the server code, or to the base URL's host.
    let (base_url, default_name) = match value {
        Address::Server(server) => {
            let server = server.trim();
            if server.len() != 4 || !server.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(
                    key,
                    format!("must be the four-digit server code (e.g. \"0042\"), got {server:?}"),
                ));
            }
            (format!("https://wv{server}.wolkvox.com"), server.to_owned())
        }
        Address::BaseUrl(url) => {
            let url = url.trim().trim_end_matches('/');
            let parsed =
                reqwest::Url::parse(url).map_err(|e| invalid(&key, format!("invalid URL {url:?}: {e}")))?;
            let host = match parsed.host_str() {
                Some(host) if matches!(parsed.scheme(), "http" | "https") => host.to_owned(),
                _ => return Err(invalid(key, format!("must be an http(s) URL with a host, got {url:?}"))),
            };
            (url.to_owned(), host)
        }
    };
    let name = match raw.name {
        Some(Given { key, value }) if !valid_name(&value) => {
            return Err(invalid(key, format!("must be 1-64 characters of [A-Za-z0-9_.-], got {value:?}")))
        }
        Some(given) => given.value,
        None if !valid_name(&default_name) => {
            return Err(invalid(
                key,
                format!(
                    "the operation's name defaults to this host, {default_name:?}, which is not \
                     1-64 characters of [A-Za-z0-9_.-]; give a name"
                ),
            ))
        }
        None => default_name,
    };

    let token = read_token(raw.token, env)?;

    let timezone = match raw.timezone {
        None => defaults::TIMEZONE,
        Some(Given { key, value }) => value
            .trim()
            .parse::<Tz>()
            .map_err(|_| invalid(key, format!("unknown IANA time zone {value:?} (e.g. America/Bogota)")))?,
    };
    let licenses = match raw.licenses {
        None => defaults::LICENSES,
        Some(Given { key, value }) if value == 0 || value > 1_000_000 => {
            return Err(invalid(key, format!("must be a whole number between 1 and 1000000, got {value}")))
        }
        Some(given) => given.value,
    };
    Ok(OperationConfig {
        name,
        base_url,
        token,
        timezone,
        licenses,
        reports: reports::validate(raw.reports, poll)?,
    })
}

/// Reads the token from where it was given; errors never hold the token itself.
fn read_token(
    given: Given<TokenSource>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Token, ConfigError> {
    let Given { key, value } = given;
    let secret = match value {
        TokenSource::Inline(token) => token.expose().trim().to_owned(),
        TokenSource::File(path) => read_token_file(&path).map_err(|m| invalid(&key, m))?,
        TokenSource::Env(var) => env(&var)
            .map(|t| t.trim().to_owned())
            .ok_or_else(|| invalid(&key, format!("environment variable {var} is not set")))?,
    };
    if secret.is_empty() {
        return Err(invalid(key, "the token is empty"));
    }
    if secret.bytes().any(|b| b.is_ascii_control()) {
        return Err(invalid(key, "the token contains control characters"));
    }
    Ok(Token::new(secret))
}

/// Reads a token file; warns (without the token) when others may read it.
fn read_token_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
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
