//! The web-config file: its YAML shape (exporter-toolkit keys, unknown keys refused), the
//! errors that name the key and the file, and its validation into the [`LoadedWebConfig`]
//! the server uses, with the log of the files read that the watcher compares.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use serde::de::IgnoredAny;
use serde::Deserialize;
use tokio_rustls::TlsAcceptor;

use super::auth::{AuthDenied, AuthResult, BasicAuth};
use super::tls::ClientAuthType;

/// Why a web-config file was refused. Every message names the web-config file, and
/// where it can, the key (`tls_server_config.cert_file`) and the file that key points at.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("web config {}: cannot read: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("web config {}: {message}", .path.display())]
    Syntax { path: PathBuf, message: String },
    #[error("web config {}: {key}: cannot read {}: {source}", .path.display(), .file.display())]
    ReadReferenced { path: PathBuf, key: String, file: PathBuf, source: io::Error },
    #[error("web config {}: {key}: {message}", .path.display())]
    Invalid { path: PathBuf, key: String, message: String },
    #[error("web config {}: {message}; restart the exporter to apply this change", .path.display())]
    NeedsRestart { path: PathBuf, message: String },
}

impl WebConfigError {
    pub(crate) fn invalid(path: &Path, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid { path: path.to_path_buf(), key: key.into(), message: message.into() }
    }
}

/// A string that must not appear in logs or `Debug` output (an inline private key).
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

/// The web-config file as written, with the exporter-toolkit key names.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    pub tls_server_config: Option<TlsServerConfig>,
    pub http_server_config: Option<HttpServerConfig>,
    /// User name to bcrypt hash.
    pub basic_auth_users: Option<BTreeMap<String, Secret>>,
    /// Accepted by exporter-toolkit, refused here with a clear message rather than
    /// reported as an unknown key.
    #[serde(rename = "rate_limit")]
    pub(crate) unsupported_rate_limit: Option<IgnoredAny>,
}

/// `tls_server_config`. File paths are relative to the web-config file's directory.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsServerConfig {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub client_ca_file: Option<PathBuf>,
    /// Inline PEM alternatives to the `*_file` keys.
    pub cert: Option<String>,
    pub key: Option<Secret>,
    pub client_ca: Option<String>,
    pub client_auth_type: Option<String>,
    pub min_version: Option<String>,
    pub max_version: Option<String>,
    /// Accepted for compatibility; rustls always uses its own (server) preference order.
    pub prefer_server_cipher_suites: Option<bool>,
    #[serde(rename = "cipher_suites")]
    pub(crate) unsupported_cipher_suites: Option<IgnoredAny>,
    #[serde(rename = "curve_preferences")]
    pub(crate) unsupported_curve_preferences: Option<IgnoredAny>,
    #[serde(rename = "client_allowed_sans")]
    pub(crate) unsupported_client_allowed_sans: Option<IgnoredAny>,
}

impl TlsServerConfig {
    /// Same rule as exporter-toolkit: TLS is on when any certificate, key or client
    /// setting is present; an empty `tls_server_config` means plain HTTP.
    fn is_enabled(&self) -> bool {
        let files = [&self.cert_file, &self.key_file, &self.client_ca_file];
        let texts = [&self.cert, &self.client_ca, &self.client_auth_type];
        files.iter().any(|f| f.is_some()) || texts.iter().any(|t| t.is_some()) || self.key.is_some()
    }
}

/// `http_server_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpServerConfig {
    /// Accepted for compatibility; this server speaks HTTP/1.1 only.
    pub http2: Option<bool>,
    /// Extra response headers, restricted to the security headers exporter-toolkit allows.
    pub headers: BTreeMap<String, String>,
}

impl WebConfig {
    /// Reads, validates and builds the web config at `path`: what `main` calls at start
    /// (a bad file stops the exporter) and what the watcher calls on every change.
    pub fn load(path: impl AsRef<Path>) -> Result<Arc<LoadedWebConfig>, WebConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| WebConfigError::Read { path: path.to_path_buf(), source })?;
        let mut read_log = ReadLog::default();
        read_log.record(path, text.as_bytes());
        let config = Self::parse(&text, path)?;
        config.build(path, read_log).map(Arc::new)
    }

    /// Parses the YAML text of the file at `path` (used for messages only). An empty
    /// file is a valid config with nothing enabled, as in exporter-toolkit.
    pub fn parse(text: &str, path: &Path) -> Result<Self, WebConfigError> {
        let parsed: Option<Self> = serde_yaml_ng::from_str(text)
            .map_err(|e| WebConfigError::Syntax { path: path.to_path_buf(), message: e.to_string() })?;
        Ok(parsed.unwrap_or_default())
    }

    fn build(self, path: &Path, mut read_log: ReadLog) -> Result<LoadedWebConfig, WebConfigError> {
        if self.unsupported_rate_limit.is_some() {
            return Err(WebConfigError::invalid(
                path,
                "rate_limit",
                "not supported by this exporter; remove the key",
            ));
        }
        let headers =
            build_headers(path, self.http_server_config.map(|http| http.headers).unwrap_or_default())?;
        let auth = BasicAuth::new(path, self.basic_auth_users.unwrap_or_default())?;
        let (tls, client_auth) = match self.tls_server_config {
            Some(raw) if raw.is_enabled() => {
                let (acceptor, client_auth) = super::tls::acceptor(path, raw, &mut read_log)?;
                (Some(acceptor), Some(client_auth))
            }
            _ => (None, None),
        };
        Ok(LoadedWebConfig { source: Some(path.to_path_buf()), tls, client_auth, auth, headers, read_log })
    }
}

/// The security headers exporter-toolkit lets a web config set, with their allowed
/// values when restricted.
const ALLOWED_HEADERS: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

fn build_headers(path: &Path, configured: BTreeMap<String, String>) -> Result<HeaderMap, WebConfigError> {
    let mut headers = HeaderMap::new();
    for (name, value) in configured {
        let key = format!("http_server_config.headers.{name}");
        let Some((canonical, allowed)) =
            ALLOWED_HEADERS.iter().find(|(allowed, _)| allowed.eq_ignore_ascii_case(&name))
        else {
            let names: Vec<&str> = ALLOWED_HEADERS.iter().map(|(n, _)| *n).collect();
            let message = format!("this header cannot be configured; allowed: {}", names.join(", "));
            return Err(WebConfigError::invalid(path, key, message));
        };
        if !allowed.is_empty() && !allowed.iter().any(|v| v.eq_ignore_ascii_case(&value)) {
            let message = format!("value {value:?} is not one of {}", allowed.join(", "));
            return Err(WebConfigError::invalid(path, key, message));
        }
        let name = HeaderName::from_bytes(canonical.as_bytes())
            .map_err(|e| WebConfigError::invalid(path, key.as_str(), e.to_string()))?;
        let value = HeaderValue::from_str(&value)
            .map_err(|_| WebConfigError::invalid(path, key, "not a valid header value"))?;
        headers.insert(name, value);
    }
    Ok(headers)
}

/// A validated web config, ready to serve. Shared behind an `Arc` and swapped whole on
/// reload, so a connection or request sees one consistent version.
#[derive(Default)]
pub struct LoadedWebConfig {
    /// The web-config file; `None` when none is given.
    pub source: Option<PathBuf>,
    /// The acceptor to wrap each accepted TCP stream in; `None` means plain HTTP.
    pub tls: Option<TlsAcceptor>,
    pub client_auth: Option<ClientAuthType>,
    pub(super) auth: BasicAuth,
    pub(super) headers: HeaderMap,
    pub(super) read_log: ReadLog,
}

/// The files a load read, each with a digest of the bytes it read. The watcher compares
/// fresh digests with these, so a change made at any moment after the read is noticed.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReadLog {
    pub(crate) files: Vec<PathBuf>,
    pub(crate) digests: Vec<u64>,
}

impl ReadLog {
    pub(crate) fn record(&mut self, path: &Path, bytes: &[u8]) {
        self.files.push(path.to_path_buf());
        self.digests.push(digest(Ok(bytes)));
    }

    /// The files' digests now, comparable with those recorded at load.
    pub(crate) async fn digests_now(&self) -> Vec<u64> {
        let mut digests = Vec::with_capacity(self.files.len());
        for file in &self.files {
            digests.push(digest(tokio::fs::read(file).await.as_deref().map_err(|e| e.kind())));
        }
        digests
    }
}

/// A digest of a file's content, or of why it could not be read.
fn digest(content: Result<&[u8], io::ErrorKind>) -> u64 {
    let mut hasher = DefaultHasher::new();
    content.hash(&mut hasher);
    hasher.finish()
}

impl fmt::Debug for LoadedWebConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedWebConfig")
            .field("source", &self.source)
            .field("tls", &self.tls.is_some())
            .field("client_auth", &self.client_auth)
            .field("basic_auth_users", &self.auth.user_count())
            .field("headers", &self.headers.len())
            .finish()
    }
}

impl LoadedWebConfig {
    /// The configuration in force when no `--web.config.file` is given: plain HTTP, no
    /// authentication, no extra headers.
    pub fn disabled() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn tls_enabled(&self) -> bool {
        self.tls.is_some()
    }

    pub fn basic_auth_enabled(&self) -> bool {
        self.auth.user_count() > 0
    }

    /// Checks an `Authorization` header against the configured users. Blocking: a
    /// credential not seen before costs one bcrypt verification (tens of milliseconds);
    /// from async code prefer [`LoadedWebConfig::authorize`].
    pub fn check_basic_auth(&self, authorization_header: Option<&HeaderValue>) -> AuthResult {
        self.auth.check_cached(authorization_header).unwrap_or_else(|unverified| self.auth.verify(unverified))
    }

    /// [`LoadedWebConfig::check_basic_auth`] for async handlers: only a credential not
    /// cached yet goes to the blocking pool, so bcrypt never stalls the runtime's workers.
    pub async fn authorize(self: Arc<Self>, authorization_header: Option<HeaderValue>) -> AuthResult {
        match self.auth.check_cached(authorization_header.as_ref()) {
            Ok(fast) => fast,
            Err(unverified) => tokio::task::spawn_blocking(move || self.auth.verify(unverified))
                .await
                .unwrap_or(AuthResult::Denied(AuthDenied::InvalidCredentials)),
        }
    }

    /// Sets the `http_server_config.headers` on a response.
    pub fn apply_headers(&self, response_headers: &mut HeaderMap) {
        for (name, value) in &self.headers {
            response_headers.insert(name.clone(), value.clone());
        }
    }

    /// The web-config file and every file it references: the watcher re-reads them all,
    /// so a renewed certificate is picked up even when the web config itself is unchanged.
    pub fn watched_files(&self) -> &[PathBuf] {
        &self.read_log.files
    }
}
