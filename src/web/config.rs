//! The web-config file: its YAML shape (exporter-toolkit keys, unknown keys refused),
//! validation with messages that name the key and the file, and the loaded result.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use serde::de::IgnoredAny;
use serde::Deserialize;
use tokio_rustls::TlsAcceptor;

use super::auth::{AuthResult, BasicAuth};
use super::tls::{self, ClientAuthType, PemSource, TlsSettings, TlsVersion};

/// Why a web-config file was refused. Every message names the web-config file, and
/// where it can, the key (`tls_server_config.cert_file`) and the file that key points at.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("web config {}: cannot read: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("web config {}: {message}", .path.display())]
    Syntax { path: PathBuf, message: String },
    #[error("web config {}: {key}: cannot read {}: {source}", .path.display(), .file.display())]
    ReadReferenced {
        path: PathBuf,
        key: &'static str,
        file: PathBuf,
        source: io::Error,
    },
    #[error("web config {}: {key}: {message}", .path.display())]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error(
        "web config {}: tls_server_config: the private key ({key_source}) does not match the certificate ({cert_source})",
        .path.display()
    )]
    KeyMismatch {
        path: PathBuf,
        cert_source: String,
        key_source: String,
    },
    #[error("web config {}: basic_auth_users.{user}: not a valid bcrypt hash: {reason}", .path.display())]
    BadHash {
        path: PathBuf,
        user: String,
        reason: String,
    },
    #[error("web config {}: {message}; restart the exporter to apply this change", .path.display())]
    NeedsRestart { path: PathBuf, message: String },
}

impl WebConfigError {
    pub(crate) fn invalid(path: &Path, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.to_path_buf(),
            key: key.into(),
            message: message.into(),
        }
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
        self.cert_file.is_some()
            || self.key_file.is_some()
            || self.client_ca_file.is_some()
            || self.cert.is_some()
            || self.key.is_some()
            || self.client_ca.is_some()
            || self.client_auth_type.is_some()
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

/// The security headers exporter-toolkit lets a web config set, with their allowed
/// values when restricted.
const ALLOWED_HEADERS: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// A validated web config, ready to serve: the TLS acceptor (when TLS is on), the
/// basic-auth users and the extra headers. Shared behind an `Arc` and swapped whole
/// on reload, so a connection or request sees one consistent version.
pub struct LoadedWebConfig {
    source: Option<PathBuf>,
    tls: Option<TlsAcceptor>,
    client_auth: Option<ClientAuthType>,
    auth: BasicAuth,
    headers: HeaderMap,
    read_log: ReadLog,
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
}

/// A digest of a file's content, or of why it could not be read.
pub(crate) fn digest(content: Result<&[u8], io::ErrorKind>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    match content {
        Ok(bytes) => (0u8, bytes).hash(&mut hasher),
        Err(kind) => (1u8, kind).hash(&mut hasher),
    }
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

impl WebConfig {
    /// Reads, validates and builds the web config at `path`: what `main` calls at start
    /// (a bad file stops the exporter) and what the watcher calls on every change.
    pub fn load(path: impl AsRef<Path>) -> Result<Arc<LoadedWebConfig>, WebConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| WebConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut read_log = ReadLog::default();
        read_log.record(path, text.as_bytes());
        let config = Self::parse(&text, path)?;
        config.build(path, read_log).map(Arc::new)
    }

    /// Parses the YAML text of the file at `path` (used for messages only). An empty
    /// file is a valid config with nothing enabled, as in exporter-toolkit.
    pub fn parse(text: &str, path: &Path) -> Result<Self, WebConfigError> {
        let parsed: Option<Self> =
            serde_yaml_ng::from_str(text).map_err(|e| WebConfigError::Syntax {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        Ok(parsed.unwrap_or_default())
    }

    /// Validates everything and loads the referenced files. Relative paths are resolved
    /// against the directory of `path`, as exporter-toolkit does.
    fn build(self, path: &Path, mut read_log: ReadLog) -> Result<LoadedWebConfig, WebConfigError> {
        if self.unsupported_rate_limit.is_some() {
            return Err(WebConfigError::invalid(
                path,
                "rate_limit",
                "not supported by this exporter; remove the key",
            ));
        }
        let base_dir = path.parent().unwrap_or_else(|| Path::new(""));

        let headers = match &self.http_server_config {
            Some(http) => build_headers(path, &http.headers)?,
            None => HeaderMap::new(),
        };

        let users = self.basic_auth_users.unwrap_or_default();
        let auth = BasicAuth::new(path, users)?;

        let (tls, client_auth) = match self.tls_server_config {
            Some(raw) if raw.is_enabled() => {
                let settings = tls_settings(path, base_dir, raw)?;
                let client_auth = settings.client_auth;
                let server_config = tls::build_server_config(path, &settings, &mut read_log)?;
                (
                    Some(TlsAcceptor::from(Arc::new(server_config))),
                    Some(client_auth),
                )
            }
            _ => (None, None),
        };

        Ok(LoadedWebConfig {
            source: Some(path.to_path_buf()),
            tls,
            client_auth,
            auth,
            headers,
            read_log,
        })
    }
}

fn resolve(base_dir: &Path, file: PathBuf) -> PathBuf {
    if file.is_absolute() || file.as_os_str().is_empty() {
        file
    } else {
        base_dir.join(file)
    }
}

/// Chooses between the inline and the file form of one PEM setting; both at once is
/// refused rather than silently preferring one.
fn pem_source(
    path: &Path,
    base_dir: &Path,
    inline_key: &'static str,
    file_key: &'static str,
    inline: Option<String>,
    file: Option<PathBuf>,
) -> Result<Option<PemSource>, WebConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(WebConfigError::invalid(
            path,
            format!("tls_server_config.{file_key}"),
            format!("set only one of {inline_key} and {file_key}"),
        )),
        (Some(text), None) => Ok(Some(PemSource::Inline {
            key: inline_key,
            text,
        })),
        (None, Some(file)) if file.as_os_str().is_empty() => Err(WebConfigError::invalid(
            path,
            format!("tls_server_config.{file_key}"),
            "is empty",
        )),
        (None, Some(file)) => Ok(Some(PemSource::File {
            key: file_key,
            path: resolve(base_dir, file),
        })),
        (None, None) => Ok(None),
    }
}

fn tls_settings(
    path: &Path,
    base_dir: &Path,
    raw: TlsServerConfig,
) -> Result<TlsSettings, WebConfigError> {
    for (present, key, why) in [
        (
            raw.unsupported_cipher_suites.is_some(),
            "cipher_suites",
            "not supported: rustls offers only AEAD suites with forward secrecy; remove the key",
        ),
        (
            raw.unsupported_curve_preferences.is_some(),
            "curve_preferences",
            "not supported: rustls chooses among X25519, P-256 and P-384; remove the key",
        ),
        (
            raw.unsupported_client_allowed_sans.is_some(),
            "client_allowed_sans",
            "not supported by this exporter; use a client CA that issues only to scrapers",
        ),
    ] {
        if present {
            return Err(WebConfigError::invalid(
                path,
                format!("tls_server_config.{key}"),
                why,
            ));
        }
    }

    let cert = pem_source(path, base_dir, "cert", "cert_file", raw.cert, raw.cert_file)?
        .ok_or_else(|| {
            WebConfigError::invalid(
                path,
                "tls_server_config.cert_file",
                "missing: TLS needs one of cert_file or cert",
            )
        })?;
    let key = pem_source(
        path,
        base_dir,
        "key",
        "key_file",
        raw.key.map(|s| s.0),
        raw.key_file,
    )?
    .ok_or_else(|| {
        WebConfigError::invalid(
            path,
            "tls_server_config.key_file",
            "missing: TLS needs one of key_file or key",
        )
    })?;
    let client_ca = pem_source(
        path,
        base_dir,
        "client_ca",
        "client_ca_file",
        raw.client_ca,
        raw.client_ca_file,
    )?;

    let client_auth = match raw.client_auth_type.as_deref() {
        None | Some("") => ClientAuthType::NoClientCert,
        Some(name) => name.parse().map_err(|message: String| {
            WebConfigError::invalid(path, "tls_server_config.client_auth_type", message)
        })?,
    };
    match (client_auth, &client_ca) {
        (ClientAuthType::NoClientCert, Some(_)) => {
            return Err(WebConfigError::invalid(
                path,
                "tls_server_config.client_ca_file",
                "a client CA is set but client_auth_type is NoClientCert; set client_auth_type \
                 (for example RequireAndVerifyClientCert)",
            ))
        }
        (ClientAuthType::VerifyClientCertIfGiven | ClientAuthType::RequireAndVerifyClientCert, None) => {
            return Err(WebConfigError::invalid(
                path,
                "tls_server_config.client_ca_file",
                format!("missing: client_auth_type {client_auth} verifies client certificates against client_ca_file"),
            ))
        }
        _ => {}
    }

    let version = |key: &str, value: Option<String>, default: TlsVersion| match value.as_deref() {
        None | Some("") => Ok(default),
        Some(name) => name.parse().map_err(|message: String| {
            WebConfigError::invalid(path, format!("tls_server_config.{key}"), message)
        }),
    };
    let min_version = version("min_version", raw.min_version, TlsVersion::Tls12)?;
    let max_version = version("max_version", raw.max_version, TlsVersion::Tls13)?;
    if min_version > max_version {
        return Err(WebConfigError::invalid(
            path,
            "tls_server_config.min_version",
            format!("{min_version} is above max_version {max_version}"),
        ));
    }

    Ok(TlsSettings {
        cert,
        key,
        client_ca,
        client_auth,
        min_version,
        max_version,
    })
}

fn build_headers(
    path: &Path,
    configured: &BTreeMap<String, String>,
) -> Result<HeaderMap, WebConfigError> {
    let mut headers = HeaderMap::new();
    for (name, value) in configured {
        let key = format!("http_server_config.headers.{name}");
        let Some((canonical, allowed)) = ALLOWED_HEADERS
            .iter()
            .find(|(allowed, _)| allowed.eq_ignore_ascii_case(name))
        else {
            let names: Vec<&str> = ALLOWED_HEADERS.iter().map(|(n, _)| *n).collect();
            return Err(WebConfigError::invalid(
                path,
                key,
                format!(
                    "this header cannot be configured; allowed: {}",
                    names.join(", ")
                ),
            ));
        };
        if !allowed.is_empty() && !allowed.iter().any(|v| v.eq_ignore_ascii_case(value)) {
            return Err(WebConfigError::invalid(
                path,
                key,
                format!("value {value:?} is not one of {}", allowed.join(", ")),
            ));
        }
        let header_name = HeaderName::from_bytes(canonical.as_bytes())
            .map_err(|e| WebConfigError::invalid(path, key.as_str(), e.to_string()))?;
        let header_value = HeaderValue::from_str(value)
            .map_err(|_| WebConfigError::invalid(path, key.as_str(), "not a valid header value"))?;
        headers.insert(header_name, header_value);
    }
    Ok(headers)
}

impl LoadedWebConfig {
    /// The configuration in force when no `--web.config.file` is given: plain HTTP, no
    /// authentication, no extra headers.
    pub fn disabled() -> Arc<Self> {
        Arc::new(Self {
            source: None,
            tls: None,
            client_auth: None,
            auth: BasicAuth::empty(),
            headers: HeaderMap::new(),
            read_log: ReadLog::default(),
        })
    }

    /// The acceptor to wrap each accepted TCP stream in; `None` means plain HTTP.
    pub fn tls_acceptor(&self) -> Option<&TlsAcceptor> {
        self.tls.as_ref()
    }

    pub fn tls_enabled(&self) -> bool {
        self.tls.is_some()
    }

    /// The client certificate policy when TLS is on.
    pub fn client_auth_type(&self) -> Option<ClientAuthType> {
        self.client_auth
    }

    /// Whether requests must carry basic-auth credentials.
    pub fn basic_auth_enabled(&self) -> bool {
        self.auth.user_count() > 0
    }

    /// Checks an `Authorization` header against the configured users. Blocking: a
    /// credential not seen before costs one bcrypt verification (tens of milliseconds);
    /// from async code prefer [`LoadedWebConfig::authorize`].
    pub fn check_basic_auth(&self, authorization_header: Option<&HeaderValue>) -> AuthResult {
        self.auth.check(authorization_header)
    }

    /// [`LoadedWebConfig::check_basic_auth`] for async handlers: a cached credential is
    /// answered in place, a new one is verified on the blocking pool so bcrypt never
    /// stalls the runtime's workers.
    pub async fn authorize(
        self: Arc<Self>,
        authorization_header: Option<HeaderValue>,
    ) -> AuthResult {
        if let Some(fast) = self.auth.check_cached(authorization_header.as_ref()) {
            return fast;
        }
        let config = self.clone();
        tokio::task::spawn_blocking(move || config.auth.check(authorization_header.as_ref()))
            .await
            .unwrap_or(AuthResult::Denied(
                super::auth::AuthDenied::InvalidCredentials,
            ))
    }

    /// The extra security headers from `http_server_config.headers`.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Adds the configured headers to a response's headers (replacing same-named ones).
    pub fn apply_headers(&self, response_headers: &mut HeaderMap) {
        for (name, value) in &self.headers {
            response_headers.insert(name.clone(), value.clone());
        }
    }

    /// The web-config file this was loaded from.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// The web-config file and every file it references: the watcher re-reads them all,
    /// so a renewed certificate is picked up even when the web config itself is unchanged.
    pub fn watched_files(&self) -> &[PathBuf] {
        &self.read_log.files
    }

    pub(crate) fn read_log(&self) -> &ReadLog {
        &self.read_log
    }
}
