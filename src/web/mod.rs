//! `--web.config.file`: TLS and basic auth for the HTTP server, in the Prometheus
//! exporter-toolkit web-config format, with reloading that keeps the last good version.

pub mod auth;
pub mod config;
pub mod reload;
pub mod tls;

pub use auth::{AuthDenied, AuthResult};
pub use config::{HttpServerConfig, LoadedWebConfig, TlsServerConfig, WebConfig, WebConfigError};
pub use reload::{ReloadStats, WatchOptions, WebConfigHandle};
pub use tls::ClientAuthType;
