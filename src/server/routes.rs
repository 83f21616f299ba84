//! Answering a request: `/metrics` (exposition format and gzip negotiated from the
//! headers), the health and readiness probes, a landing page, plain text for the rest.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::Site;
use crate::metrics::{Format, VERSION};

pub(super) fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

/// The answer to a request without valid credentials; `WWW-Authenticate: Basic` makes
/// browsers and tools prompt for them, as exporter-toolkit does.
pub(super) fn unauthorized() -> Response<Full<Bytes>> {
    let mut r = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
    r
}

pub(super) async fn handle(site: &Arc<Site>, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
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
fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let Some(header) = accept_encoding else {
        return false;
    };
    let (mut gzip, mut any) = (None, None);
    for entry in header.split(',') {
        let mut params = entry.split(';');
        let coding = params.next().unwrap_or("").trim();
        let q = params.find_map(|p| {
            let (name, value) = p.split_once('=')?;
            name.trim().eq_ignore_ascii_case("q").then_some(value.trim())
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
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    h.insert(header::VARY, HeaderValue::from_static("Accept, Accept-Encoding"));
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r
}

fn escape_html(s: &str) -> String {
    let s = s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    s.replace('"', "&quot;").replace('\'', "&#39;")
}

fn landing(site: &Site) -> Response<Full<Bytes>> {
    let when = |t: Option<chrono::DateTime<chrono::Utc>>, none: &str| {
        t.map_or(none.to_owned(), |c| c.format("%Y-%m-%d %H:%M:%S UTC").to_string())
    };
    let mut rows = String::new();
    for op in site.store.operations() {
        let data = op.read();
        for slot in &data.reports {
            let report = slot.name();
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
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_negotiation() {
        for yes in
            ["gzip", "deflate, gzip;q=0.8", "*", "GZIP", "x-gzip", "br, *;q=0.1", "gzip ; q=0.5", "gzip;Q=1"]
        {
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
    fn the_401_response_asks_for_basic_credentials() {
        let response = unauthorized();
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()["www-authenticate"], "Basic");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(escape_html("<a href=\"x\">&</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;");
    }
}
