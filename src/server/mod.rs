//! The HTTP server: `/metrics`, `/-/healthy`, `/-/ready` and a landing page, with a cap
//! on connections, a header read timeout and a bounded response time.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header;
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::metrics::Renderer;
use crate::store::Store;
use crate::web::{unauthorized_response, AuthResult, WebConfigHandle};
use routes::{handle, text};

pub use scrape::accepts_gzip;

mod landing;
mod routes;
mod scrape;

/// Limits that keep slow or idle clients from exhausting the server.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub response_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 512,
            header_read_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(30),
        }
    }
}

/// What the handlers read.
#[derive(Debug)]
pub struct Site {
    pub telemetry_path: String,
    pub store: Arc<Store>,
    pub renderer: Renderer,
    pub status: Status,
}

/// Where the process stands, for `/-/ready`.
#[derive(Debug, Default)]
pub struct Status {
    /// The state is loaded.
    pub loaded: AtomicBool,
    /// Shutdown has begun.
    pub stopping: AtomicBool,
}

impl Site {
    /// Ready once the state is loaded and every report of every operation has finished
    /// its first cycle (either way), and no longer once shutdown has begun.
    pub fn ready(&self) -> bool {
        self.status.loaded.load(Ordering::Acquire)
            && !self.status.stopping.load(Ordering::Acquire)
            && self
                .store
                .operations()
                .iter()
                .all(|op| op.read().reports.iter().all(|s| s.health.cycled))
    }
}

/// Binds a Prometheus-style listen address; `:9798` means every interface.
pub async fn bind(address: &str) -> std::io::Result<TcpListener> {
    if let Some(port) = address.strip_prefix(':') {
        match TcpListener::bind(format!("[::]:{port}")).await {
            Ok(l) => Ok(l),
            Err(_) => TcpListener::bind(format!("0.0.0.0:{port}")).await,
        }
    } else {
        TcpListener::bind(address).await
    }
}

/// Serves until `shutdown` resolves; open connections get a short grace period.
/// TLS and basic auth come from the current web configuration: TLS settings per
/// connection, authentication per request, so a reload reaches open connections.
pub async fn serve(
    listener: TcpListener,
    site: Arc<Site>,
    limits: Limits,
    web: WebConfigHandle,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("semaphore never closed"),
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        while connections.try_join_next().is_some() {}
        let site = site.clone();
        let limits = limits.clone();
        let stop = stop_rx.clone();
        let web = web.clone();
        connections.spawn(async move {
            let _permit = permit;
            let tls = web.current().tls_acceptor().cloned();
            let svc = {
                let limits = limits.clone();
                hyper::service::service_fn(move |req: Request<Incoming>| {
                    let site = site.clone();
                    let config = web.current();
                    let timeout = limits.response_timeout;
                    async move {
                        let auth = config
                            .clone()
                            .authorize(req.headers().get(header::AUTHORIZATION).cloned())
                            .await;
                        if let AuthResult::Denied(why) = auth {
                            tracing::debug!(%peer, reason = why.as_str(), "unauthorized request");
                            return Ok::<_, Infallible>(unauthorized_response());
                        }
                        let mut resp = match tokio::time::timeout(timeout, handle(&site, &req))
                            .await
                        {
                            Ok(r) => r,
                            Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "response timed out\n"),
                        };
                        config.apply_headers(resp.headers_mut());
                        Ok(resp)
                    }
                })
            };
            match tls {
                None => serve_connection(TokioIo::new(stream), svc, &limits, stop, peer).await,
                Some(acceptor) => {
                    match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls)) => {
                            serve_connection(TokioIo::new(tls), svc, &limits, stop, peer).await
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
}

async fn serve_connection<I, S>(
    io: I,
    svc: S,
    limits: &Limits,
    mut stop: watch::Receiver<bool>,
    peer: SocketAddr,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = Full<Bytes>>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .serve_connection(io, svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => log_conn_error(r, peer),
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
        }
    }
}

fn log_conn_error(r: Result<(), hyper::Error>, peer: SocketAddr) {
    if let Err(e) = r {
        if !e.is_incomplete_message() {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}
