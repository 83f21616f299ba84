//! `/metrics`: the exposition format and gzip negotiated from the request's headers, the
//! body taken from the renderer's cache or rendered off the async workers.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};

use super::routes::text;
use super::Site;
use crate::metrics::Format;

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

pub(super) async fn metrics(site: &Arc<Site>, req: &Request<Incoming>) -> Response<Full<Bytes>> {
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
}
