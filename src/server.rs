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
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::metrics::{Format, Renderer, VERSION};
use crate::store::Store;
use crate::web::{unauthorized_response, AuthResult, WebConfigHandle};

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
                .all(|op| op.read().enabled().all(|(_, s)| s.health.cycled))
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

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn handle(site: &Arc<Site>, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let path = req.uri().path();
    if path == site.telemetry_path {
        return metrics(site, req).await;
    }
    match path {
        "/-/healthy" => text(StatusCode::OK, "Healthy\n"),
        "/-/ready" if site.ready() => text(StatusCode::OK, "Ready\n"),
        "/-/ready" => text(StatusCode::SERVICE_UNAVAILABLE, "Not ready\n"),
        "/" => landing(site),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn header_str(req: &Request<Incoming>, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Whether an `Accept-Encoding` header lets the answer be gzip (RFC 9110 §12.5.3): an
/// entry naming gzip (or its alias x-gzip) decides by its q-value, else `*` does. No
/// header gets identity. Written here because the gzip body is cached per store change:
/// tower-http's parser is private to its per-response compressor, and the crates that
/// offer the negotiation alone are unmaintained or in their first release.
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let Some(header) = accept_encoding else {
        return false;
    };
    let (mut gzip, mut any) = (None, None);
    for entry in header.split(',') {
        let mut params = entry.split(';');
        let coding = params.next().unwrap_or("").trim();
        let q = params.find_map(|p| {
            let (name, value) = p.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("q")
                .then_some(value.trim())
        });
        // A q-value that does not parse is no consent to gzip.
        let accepted = q.is_none_or(|q| q.parse::<f32>().is_ok_and(|q| q > 0.0));
        let is_gzip = coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip");
        let slot = if is_gzip {
            &mut gzip
        } else if coding == "*" {
            &mut any
        } else {
            continue;
        };
        *slot = Some(slot.unwrap_or(false) || accepted);
    }
    gzip.or(any).unwrap_or(false)
}

async fn metrics(site: &Arc<Site>, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let format = Format::negotiate(header_str(req, header::ACCEPT));
    let gzip = accepts_gzip(header_str(req, header::ACCEPT_ENCODING));
    let body = match site.renderer.cached(format, gzip) {
        Some(body) => body,
        None => {
            let site = site.clone();
            match tokio::task::spawn_blocking(move || site.renderer.get(format, gzip)).await {
                Ok(body) => body,
                Err(e) => {
                    tracing::error!(error = %e, "rendering the metrics failed");
                    return text(StatusCode::INTERNAL_SERVER_ERROR, "rendering failed\n");
                }
            }
        }
    };
    let mut r = Response::new(Full::new(body));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    h.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Encoding"),
    );
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn landing(site: &Site) -> Response<Full<Bytes>> {
    let when = |t: Option<chrono::DateTime<chrono::Utc>>, none: &str| {
        t.map_or(none.to_owned(), |c| {
            c.format("%Y-%m-%d %H:%M:%S UTC").to_string()
        })
    };
    let mut rows = String::new();
    for op in site.store.operations() {
        let data = op.read();
        for (report, slot) in data.enabled() {
            let h = &slot.health;
            rows.push_str(&format!(
                "<tr><td>{}</td><td>{report}</td><td>{}</td><td>{}</td><td>{}</td><td>{}/{}</td><td>{}</td><td>{}</td></tr>\n",
                escape_html(&op.name),
                if h.up { "up" } else { "down" },
                when(h.watermark, "not yet"),
                when(h.last_success, "never"),
                data.daily.used,
                op.daily_limit,
                data.agents.known.len(),
                escape_html(data.last_error.as_deref().unwrap_or("")),
            ));
        }
    }
    let page = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Wolkvox exporter</title></head>\n<body>\n\
         <h1>Wolkvox exporter</h1>\n<p>Version {VERSION}. Per-agent transfers, conferences and calls from the Wolkvox report API.</p>\n\
         <p><a href=\"{path}\">Metrics</a> &middot; <a href=\"/-/healthy\">Health</a> &middot; <a href=\"/-/ready\">Readiness</a></p>\n\
         <table border=\"1\" cellpadding=\"4\">\n<tr><th>Operation</th><th>Report</th><th>Status</th><th>Watermark</th><th>Last success</th><th>Requests today / limit</th><th>Agents</th><th>Last error</th></tr>\n{rows}</table>\n</body></html>\n",
        path = escape_html(&site.telemetry_path),
    );
    let mut r = Response::new(Full::new(Bytes::from(page)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_negotiation() {
        for yes in [
            "gzip",
            "deflate, gzip;q=0.8",
            "*",
            "GZIP",
            "x-gzip",
            "br, *;q=0.1",
            "gzip ; q=0.5",
            "gzip;Q=1",
        ] {
            assert!(accepts_gzip(Some(yes)), "{yes:?}");
        }
        for no in [
            "gzip;q=0",
            "gzip;q=0.000",
            "identity",
            "deflate, br",
            "",
            // An explicit refusal is not overridden by the wildcard.
            "gzip;q=0, *",
            "*;q=0",
            "identity, *;q=0",
            "gzip;q=none",
        ] {
            assert!(!accepts_gzip(Some(no)), "{no:?}");
        }
        assert!(!accepts_gzip(None));
    }

    #[test]
    fn format_negotiation() {
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
            )),
            Format::OpenMetrics
        );
        assert_eq!(Format::negotiate(Some("text/plain")), Format::Text);
        assert_eq!(Format::negotiate(None), Format::Text);
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }
}
