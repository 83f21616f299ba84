//! The web config in force: the TLS acceptor, basic-auth users and headers the server
//! uses, and the log of the files it was read from that the watcher compares.

use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper::header::{HeaderMap, HeaderValue};
use tokio_rustls::TlsAcceptor;

use super::auth::{AuthDenied, AuthResult, BasicAuth};
use super::tls::ClientAuthType;

/// A validated web config, ready to serve. Shared behind an `Arc` and swapped whole on
/// reload, so a connection or request sees one consistent version.
pub struct LoadedWebConfig {
    pub(super) source: Option<PathBuf>,
    pub(super) tls: Option<TlsAcceptor>,
    pub(super) client_auth: Option<ClientAuthType>,
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
}

/// A digest of a file's content, or of why it could not be read.
pub(crate) fn digest(content: Result<&[u8], io::ErrorKind>) -> u64 {
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
        let auth = BasicAuth::default();
        let (headers, read_log) = (HeaderMap::new(), ReadLog::default());
        Arc::new(Self { source: None, tls: None, client_auth: None, auth, headers, read_log })
    }

    /// The acceptor to wrap each accepted TCP stream in; `None` means plain HTTP.
    pub fn tls_acceptor(&self) -> Option<&TlsAcceptor> {
        self.tls.as_ref()
    }

    pub fn tls_enabled(&self) -> bool {
        self.tls.is_some()
    }

    pub fn client_auth_type(&self) -> Option<ClientAuthType> {
        self.client_auth
    }

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
    pub async fn authorize(self: Arc<Self>, authorization_header: Option<HeaderValue>) -> AuthResult {
        match self.auth.check_cached(authorization_header.as_ref()) {
            Ok(fast) => fast,
            Err(unverified) => tokio::task::spawn_blocking(move || self.auth.verify(unverified))
                .await
                .unwrap_or(AuthResult::Denied(AuthDenied::InvalidCredentials)),
        }
    }

    /// Adds the `http_server_config.headers` to a response's headers (replacing
    /// same-named ones).
    pub fn apply_headers(&self, response_headers: &mut HeaderMap) {
        for (name, value) in &self.headers {
            response_headers.insert(name.clone(), value.clone());
        }
    }

    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// The web-config file and every file it references: the watcher re-reads them all,
    /// so a renewed certificate is picked up even when the web config itself is unchanged.
    pub fn watched_files(&self) -> &[PathBuf] {
        &self.read_log.files
    }
}
