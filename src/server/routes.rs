//! Routing a request to its answer: `/metrics` at the telemetry path, the health and
//! readiness probes, the landing page, and plain-text answers for the rest.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::{landing::landing, scrape::metrics, Site};

pub(super) fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
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
