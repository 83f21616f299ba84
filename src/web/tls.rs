//! `tls_server_config` checked and turned into a rustls acceptor (ring provider): certificate
//! and key checked to belong together, client certificates requested and verified per
//! `client_auth_type`, protocol versions bounded.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::version::{TLS12, TLS13};
use rustls::SupportedProtocolVersion;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme};
use tokio_rustls::TlsAcceptor;

use super::config::{ReadLog, TlsServerConfig, WebConfigError};

/// Go's `tls.ClientAuthType` names, as exporter-toolkit spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthType {
    NoClientCert,
    /// Ask for a certificate, accept the connection without one, never verify it.
    RequestClientCert,
    /// Demand a certificate, do not verify it.
    RequireAnyClientCert,
    /// Verify a certificate against the client CA when the client sends one.
    VerifyClientCertIfGiven,
    /// Demand a certificate and verify it against the client CA.
    RequireAndVerifyClientCert,
}

impl ClientAuthType {
    const ALL: [Self; 5] = [
        Self::NoClientCert,
        Self::RequestClientCert,
        Self::RequireAnyClientCert,
        Self::VerifyClientCertIfGiven,
        Self::RequireAndVerifyClientCert,
    ];
}

impl FromStr for ClientAuthType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // "RequireClientCert" is exporter-toolkit's backwards-compatible alias.
        let name = if s == "RequireClientCert" { "RequireAnyClientCert" } else { s };
        Self::ALL.into_iter().find(|t| format!("{t:?}") == name).ok_or_else(|| {
            format!("unknown value {s:?}; expected one of {}", Self::ALL.map(|t| format!("{t:?}")).join(", "))
        })
    }
}

/// The TLS versions rustls implements, by their exporter-toolkit names, oldest first.
const VERSIONS: [(&str, &SupportedProtocolVersion); 2] = [("TLS12", &TLS12), ("TLS13", &TLS13)];

/// One PEM setting's text, with its full key and its source as messages name it.
struct Pem {
    key: String,
    source: String,
    text: Vec<u8>,
}

impl Pem {
    /// Reads setting `name` in its inline or its file form (relative to the web config's
    /// directory, as in exporter-toolkit), recording a file's digest for the watcher.
    /// Both forms at once are refused rather than silently preferring one.
    fn read(
        path: &Path,
        name: &str,
        inline: Option<String>,
        file: Option<PathBuf>,
        read_log: &mut ReadLog,
    ) -> Result<Option<Self>, WebConfigError> {
        let key = format!("tls_server_config.{name}_file");
        let file = match (inline, file) {
            (None, None) => return Ok(None),
            (Some(text), None) => {
                let (key, source) = (format!("tls_server_config.{name}"), format!("inline {name}"));
                return Ok(Some(Self { key, source, text: text.into_bytes() }));
            }
            (Some(_), Some(_)) => {
                let message = format!("set only one of {name} and {name}_file");
                return Err(WebConfigError::invalid(path, key, message));
            }
            (None, Some(file)) if file.as_os_str().is_empty() => {
                return Err(WebConfigError::invalid(path, key, "is empty"))
            }
            (None, Some(file)) => path.parent().unwrap_or(Path::new("")).join(file),
        };
        let text = std::fs::read(&file).map_err(|source| WebConfigError::ReadReferenced {
            path: path.to_path_buf(),
            key: key.clone(),
            file: file.clone(),
            source,
        })?;
        read_log.record(&file, &text);
        Ok(Some(Self { key, source: file.display().to_string(), text }))
    }

    fn certs(&self, path: &Path) -> Result<Vec<CertificateDer<'static>>, WebConfigError> {
        let certs = CertificateDer::pem_slice_iter(&self.text)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.invalid(path, format!("not valid PEM: {e}")))?;
        if certs.is_empty() {
            return Err(self.invalid(path, "no CERTIFICATE block found"));
        }
        Ok(certs)
    }

    fn invalid(&self, path: &Path, message: impl fmt::Display) -> WebConfigError {
        WebConfigError::invalid(path, self.key.as_str(), format!("{}: {message}", self.source))
    }
}

/// Validates `tls_server_config` (from the web-config file at `path`) and builds its acceptor.
pub(super) fn acceptor(
    path: &Path,
    raw: TlsServerConfig,
    read_log: &mut ReadLog,
) -> Result<(TlsAcceptor, ClientAuthType), WebConfigError> {
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
    let missing = |name: &str| {
        let message = format!("missing: TLS needs one of {name}_file or {name}");
        WebConfigError::invalid(path, format!("tls_server_config.{name}_file"), message)
    };
    if raw.cert.is_none() && raw.cert_file.is_none() {
        return Err(missing("cert"));
    }
    if raw.key.is_none() && raw.key_file.is_none() {
        return Err(missing("key"));
    }
    let client_auth = match raw.client_auth_type.as_deref() {
        None | Some("") => ClientAuthType::NoClientCert,
        Some(name) => name.parse().map_err(|message: String| {
            WebConfigError::invalid(path, "tls_server_config.client_auth_type", message)
        })?,
    };
    let ca_error =
        |message: String| WebConfigError::invalid(path, "tls_server_config.client_ca_file", message);
    match (client_auth, raw.client_ca.is_some() || raw.client_ca_file.is_some()) {
        (ClientAuthType::NoClientCert, true) => {
            return Err(ca_error(
                "a client CA is set but client_auth_type is NoClientCert; set client_auth_type \
                 (for example RequireAndVerifyClientCert)"
                    .into(),
            ))
        }
        (ClientAuthType::VerifyClientCertIfGiven | ClientAuthType::RequireAndVerifyClientCert, false) => {
            return Err(ca_error(format!(
                "missing: client_auth_type {client_auth:?} verifies client certificates \
                 against client_ca_file"
            )))
        }
        _ => {}
    }

    let version = |key: &str, value: Option<String>, default: usize| match value.as_deref() {
        None | Some("") => Ok(default),
        Some(name) => VERSIONS.iter().position(|(known, _)| *known == name).ok_or_else(|| {
            let message = match name {
                "TLS10" | "TLS11" => {
                    format!("{name} is not supported (rustls implements TLS12 and TLS13 only)")
                }
                _ => format!("unknown TLS version {name:?}; expected TLS12 or TLS13"),
            };
            WebConfigError::invalid(path, format!("tls_server_config.{key}"), message)
        }),
    };
    let min = version("min_version", raw.min_version, 0)?;
    let max = version("max_version", raw.max_version, VERSIONS.len() - 1)?;
    if min > max {
        return Err(WebConfigError::invalid(
            path,
            "tls_server_config.min_version",
            format!("{} is above max_version {}", VERSIONS[min].0, VERSIONS[max].0),
        ));
    }

    // The files are read once every setting is known to be valid.
    let cert = Pem::read(path, "cert", raw.cert, raw.cert_file, read_log)?.ok_or_else(|| missing("cert"))?;
    let key = Pem::read(path, "key", raw.key.map(|s| s.0), raw.key_file, read_log)?;
    let key = key.ok_or_else(|| missing("key"))?;
    let client_ca = Pem::read(path, "client_ca", raw.client_ca, raw.client_ca_file, read_log)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = cert.certs(path)?;
    let private_key = PrivateKeyDer::from_pem_slice(&key.text)
        .map_err(|e| key.invalid(path, format!("no usable PRIVATE KEY block ({e})")))?;
    let signing_key = provider
        .key_provider
        .load_private_key(private_key)
        .map_err(|e| key.invalid(path, format!("unsupported private key: {e}")))?;
    let certified = CertifiedKey::new(certs, signing_key);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(_)) => {
            let message =
                format!("the private key ({}) does not match the certificate ({})", key.source, cert.source);
            return Err(WebConfigError::invalid(path, "tls_server_config", message));
        }
        Err(e) => return Err(cert.invalid(path, format!("not a usable certificate: {e}"))),
    }

    // The client CA is loaded whenever it is given, even for policies that do not
    // verify, so a broken CA file is reported at once rather than after a policy change.
    let mut roots = RootCertStore::empty();
    if let Some(ca) = &client_ca {
        for cert in ca.certs(path)? {
            roots.add(cert).map_err(|e| ca.invalid(path, format!("not a usable CA certificate: {e}")))?;
        }
    }
    let verifier: Arc<dyn ClientCertVerifier> = match client_auth {
        ClientAuthType::NoClientCert => WebPkiClientVerifier::no_client_auth(),
        ClientAuthType::RequestClientCert | ClientAuthType::RequireAnyClientCert => Arc::new(AnyClientCert {
            mandatory: client_auth == ClientAuthType::RequireAnyClientCert,
            algorithms: provider.signature_verification_algorithms,
        }),
        ClientAuthType::VerifyClientCertIfGiven | ClientAuthType::RequireAndVerifyClientCert => {
            let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let anonymous = client_auth == ClientAuthType::VerifyClientCertIfGiven;
            let builder = if anonymous { builder.allow_unauthenticated() } else { builder };
            builder.build().map_err(|e| ca_error(format!("cannot verify clients with it: {e}")))?
        }
    };
    let versions: Vec<_> = VERSIONS[min..=max].iter().map(|(_, version)| *version).collect();
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| WebConfigError::invalid(path, "tls_server_config.min_version", e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), client_auth))
}

/// Go's `RequestClientCert` / `RequireAnyClientCert`: the certificate is asked for
/// (and, when mandatory, required) but its chain is not checked. The handshake
/// signature is still verified, so the client must hold the certificate's key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
