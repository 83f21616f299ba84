//! Validation of a parsed web config: each key checked against exporter-toolkit's rules,
//! the referenced files resolved and read, the result built into a [`LoadedWebConfig`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use tokio_rustls::TlsAcceptor;

use super::{LoadedWebConfig, ReadLog, TlsServerConfig, WebConfig, WebConfigError};
use crate::web::auth::BasicAuth;
use crate::web::tls::{self, ClientAuthType, PemSource, TlsSettings, TlsVersion};

/// The security headers exporter-toolkit lets a web config set, with their allowed
/// values when restricted.
const ALLOWED_HEADERS: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

impl WebConfig {
    /// Validates everything and loads the referenced files. Relative paths are resolved
    /// against the directory of `path`, as exporter-toolkit does.
    pub(super) fn build(self, path: &Path, mut read_log: ReadLog) -> Result<LoadedWebConfig, WebConfigError> {
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
                (Some(TlsAcceptor::from(Arc::new(server_config))), Some(client_auth))
            }
            _ => (None, None),
        };

        Ok(LoadedWebConfig { source: Some(path.to_path_buf()), tls, client_auth, auth, headers, read_log })
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
        (Some(text), None) => Ok(Some(PemSource::Inline { key: inline_key, text })),
        (None, Some(file)) if file.as_os_str().is_empty() => {
            Err(WebConfigError::invalid(path, format!("tls_server_config.{file_key}"), "is empty"))
        }
        (None, Some(file)) => Ok(Some(PemSource::File { key: file_key, path: resolve(base_dir, file) })),
        (None, None) => Ok(None),
    }
}

fn tls_settings(path: &Path, base_dir: &Path, raw: TlsServerConfig) -> Result<TlsSettings, WebConfigError> {
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
            return Err(WebConfigError::invalid(path, format!("tls_server_config.{key}"), why));
        }
    }

    let cert =
        pem_source(path, base_dir, "cert", "cert_file", raw.cert, raw.cert_file)?.ok_or_else(|| {
            WebConfigError::invalid(
                path,
                "tls_server_config.cert_file",
                "missing: TLS needs one of cert_file or cert",
            )
        })?;
    let key = pem_source(path, base_dir, "key", "key_file", raw.key.map(|s| s.0), raw.key_file)?.ok_or_else(
        || {
            WebConfigError::invalid(
                path,
                "tls_server_config.key_file",
                "missing: TLS needs one of key_file or key",
            )
        },
    )?;
    let client_ca =
        pem_source(path, base_dir, "client_ca", "client_ca_file", raw.client_ca, raw.client_ca_file)?;

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

    Ok(TlsSettings { cert, key, client_ca, client_auth, min_version, max_version })
}

fn build_headers(path: &Path, configured: &BTreeMap<String, String>) -> Result<HeaderMap, WebConfigError> {
    let mut headers = HeaderMap::new();
    for (name, value) in configured {
        let key = format!("http_server_config.headers.{name}");
        let Some((canonical, allowed)) =
            ALLOWED_HEADERS.iter().find(|(allowed, _)| allowed.eq_ignore_ascii_case(name))
        else {
            let names: Vec<&str> = ALLOWED_HEADERS.iter().map(|(n, _)| *n).collect();
            return Err(WebConfigError::invalid(
                path,
                key,
                format!("this header cannot be configured; allowed: {}", names.join(", ")),
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
