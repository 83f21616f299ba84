//! `--web.config.file`: TLS and basic auth for the HTTP server, in the Prometheus
//! exporter-toolkit web-config format, with reloading that keeps the last good version.

pub mod auth;
pub mod config;
mod loaded;
pub mod reload;
pub mod tls;

pub use auth::{unauthorized_response, AuthDenied, AuthResult};
pub use config::{HttpServerConfig, TlsServerConfig, WebConfig, WebConfigError};
pub use loaded::LoadedWebConfig;
pub use reload::{ReloadStats, WatchOptions, WebConfigHandle, WebConfigWatcher};
pub use tls::ClientAuthType;
