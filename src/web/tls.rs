//! Turns validated `tls_server_config` settings into a rustls `ServerConfig` (ring
//! provider): certificate and key checked to belong together, client certificates
//! requested and verified per `client_auth_type`, protocol versions bounded.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme};

use super::config::{ReadLog, WebConfigError};

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

const CLIENT_AUTH_NAMES: &str = "NoClientCert, RequestClientCert, RequireAnyClientCert, \
                                 VerifyClientCertIfGiven, RequireAndVerifyClientCert";

impl FromStr for ClientAuthType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "NoClientCert" => Ok(Self::NoClientCert),
            "RequestClientCert" => Ok(Self::RequestClientCert),
            // "RequireClientCert" is exporter-toolkit's backwards-compatible alias.
            "RequireAnyClientCert" | "RequireClientCert" => Ok(Self::RequireAnyClientCert),
            "VerifyClientCertIfGiven" => Ok(Self::VerifyClientCertIfGiven),
            "RequireAndVerifyClientCert" => Ok(Self::RequireAndVerifyClientCert),
            other => Err(format!("unknown value {other:?}; expected one of {CLIENT_AUTH_NAMES}")),
        }
    }
}

impl fmt::Display for ClientAuthType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The TLS versions rustls implements; ordered so `min <= max` can be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl FromStr for TlsVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "TLS12" => Ok(Self::Tls12),
            "TLS13" => Ok(Self::Tls13),
            "TLS10" | "TLS11" => {
                Err(format!("{s} is not supported (rustls implements TLS12 and TLS13 only)"))
            }
            other => Err(format!("unknown TLS version {other:?}; expected TLS12 or TLS13")),
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tls12 => "TLS12",
            Self::Tls13 => "TLS13",
        })
    }
}

/// Where a PEM setting comes from, remembering its key for error messages.
#[derive(Debug)]
pub(crate) enum PemSource {
    File { key: &'static str, path: PathBuf },
    Inline { key: &'static str, text: String },
}

impl PemSource {
    fn key(&self) -> &'static str {
        match self {
            Self::File { key, .. } | Self::Inline { key, .. } => key,
        }
    }

    /// How the source is named in messages: the file path, or the inline key.
    fn describe(&self) -> String {
        match self {
            Self::File { path, .. } => path.display().to_string(),
            Self::Inline { key, .. } => format!("inline {key}"),
        }
    }

    /// Reads the PEM text, recording a file's digest in `read_log` for the watcher.
    fn read(&self, config_path: &Path, read_log: &mut ReadLog) -> Result<Vec<u8>, WebConfigError> {
        match self {
            Self::File { key, path } => {
                let bytes = std::fs::read(path).map_err(|source| WebConfigError::ReadReferenced {
                    path: config_path.to_path_buf(),
                    key: tls_key(key),
                    file: path.clone(),
                    source,
                })?;
                read_log.record(path, &bytes);
                Ok(bytes)
            }
            Self::Inline { text, .. } => Ok(text.as_bytes().to_vec()),
        }
    }

    fn invalid(&self, config_path: &Path, message: impl fmt::Display) -> WebConfigError {
        WebConfigError::invalid(config_path, tls_key(self.key()), format!("{}: {message}", self.describe()))
    }
}

fn tls_key(key: &str) -> &'static str {
    match key {
        "cert_file" => "tls_server_config.cert_file",
        "key_file" => "tls_server_config.key_file",
        "client_ca_file" => "tls_server_config.client_ca_file",
        "cert" => "tls_server_config.cert",
        "key" => "tls_server_config.key",
        _ => "tls_server_config.client_ca",
    }
}

/// Validated `tls_server_config`, paths already resolved.
#[derive(Debug)]
pub(crate) struct TlsSettings {
    pub(crate) cert: PemSource,
    pub(crate) key: PemSource,
    pub(crate) client_ca: Option<PemSource>,
    pub(crate) client_auth: ClientAuthType,
    pub(crate) min_version: TlsVersion,
    pub(crate) max_version: TlsVersion,
}

/// Builds the rustls server configuration; `config_path` is used in messages only.
pub(crate) fn build_server_config(
    config_path: &Path,
    settings: &TlsSettings,
    read_log: &mut ReadLog,
) -> Result<ServerConfig, WebConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());

    let certs = read_certs(config_path, &settings.cert, read_log)?;
    let key_pem = settings.key.read(config_path, read_log)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| settings.key.invalid(config_path, format!("no usable PRIVATE KEY block ({e})")))?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| settings.key.invalid(config_path, format!("unsupported private key: {e}")))?;
    let certified = CertifiedKey::new(certs, signing_key);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(_)) => {
            return Err(WebConfigError::KeyMismatch {
                path: config_path.to_path_buf(),
                cert_source: settings.cert.describe(),
                key_source: settings.key.describe(),
            })
        }
        Err(e) => return Err(settings.cert.invalid(config_path, format!("not a usable certificate: {e}"))),
    }

    let verifier = client_verifier(config_path, settings, &provider, read_log)?;
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [(TlsVersion::Tls12, &rustls::version::TLS12), (TlsVersion::Tls13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| *v >= settings.min_version && *v <= settings.max_version)
            .map(|(_, version)| version)
            .collect();

    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| WebConfigError::invalid(config_path, "tls_server_config.min_version", e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn read_certs(
    config_path: &Path,
    source: &PemSource,
    read_log: &mut ReadLog,
) -> Result<Vec<CertificateDer<'static>>, WebConfigError> {
    let pem = source.read(config_path, read_log)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| source.invalid(config_path, format!("not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(source.invalid(config_path, "no CERTIFICATE block found"));
    }
    Ok(certs)
}

fn client_verifier(
    config_path: &Path,
    settings: &TlsSettings,
    provider: &Arc<CryptoProvider>,
    read_log: &mut ReadLog,
) -> Result<Arc<dyn ClientCertVerifier>, WebConfigError> {
    // The client CA is loaded whenever it is given, even for policies that do not
    // verify, so a broken CA file is reported at once rather than after a policy change.
    let roots = match &settings.client_ca {
        Some(source) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(config_path, source, read_log)? {
                roots
                    .add(cert)
                    .map_err(|e| source.invalid(config_path, format!("not a usable CA certificate: {e}")))?;
            }
            Some((source, Arc::new(roots)))
        }
        None => None,
    };

    let webpki = |allow_anonymous: bool| {
        let Some((source, roots)) = &roots else {
            return Err(WebConfigError::invalid(config_path, "tls_server_config.client_ca_file", "missing"));
        };
        let builder = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone());
        let builder = if allow_anonymous { builder.allow_unauthenticated() } else { builder };
        builder
            .build()
            .map_err(|e| source.invalid(config_path, format!("cannot verify clients with it: {e}")))
    };

    match settings.client_auth {
        ClientAuthType::NoClientCert => Ok(WebPkiClientVerifier::no_client_auth()),
        ClientAuthType::RequestClientCert => Ok(Arc::new(AnyClientCert::new(provider, false))),
        ClientAuthType::RequireAnyClientCert => Ok(Arc::new(AnyClientCert::new(provider, true))),
        ClientAuthType::VerifyClientCertIfGiven => webpki(true),
        ClientAuthType::RequireAndVerifyClientCert => webpki(false),
    }
}

/// Go's `RequestClientCert` / `RequireAnyClientCert`: the certificate is asked for
/// (and, when mandatory, required) but its chain is not checked. The handshake
/// signature is still verified, so the client must hold the certificate's key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl AnyClientCert {
    fn new(provider: &CryptoProvider, mandatory: bool) -> Self {
        Self { mandatory, algorithms: provider.signature_verification_algorithms }
    }
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

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
