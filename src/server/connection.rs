//! One connection: the TLS handshake when configured, HTTP/1 with keep-alive and basic
//! auth per request, and the deadline and shedding that stop an idle client holding it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header;
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch};

use super::routes::{handle, text, unauthorized};
use super::shedding::Ticket;
use super::{Limits, Site};
use crate::web::{AuthResult, WebConfigHandle};

/// The largest request head, and so the most a connection buffers from its client.
/// hyper's default (about 400 KiB) is far beyond what a scraper sends.
const MAX_REQUEST_HEAD: usize = 16 * 1024;

/// What every connection reads.
#[derive(Debug)]
pub(super) struct Shared {
    pub site: Arc<Site>,
    pub limits: Limits,
    pub web: WebConfigHandle,
}

/// Serves one connection, after the TLS handshake when configured, until it ends, is
/// shed (`shed` resolves), sends no complete request head within the first-request
/// timeout, or the server stops.
pub(super) async fn run(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    ticket: Ticket,
    shed: oneshot::Receiver<()>,
    mut stop: watch::Receiver<bool>,
) {
    let ticket = Arc::new(ticket);
    let serve = async {
        let Some(acceptor) = shared.web.current().tls.clone() else {
            return http(TokioIo::new(stream), peer, &shared, ticket.clone(), stop).await;
        };
        let handshake = tokio::select! {
            r = acceptor.accept(stream) => r,
            _ = stop.changed() => return,
        };
        match handshake {
            Ok(tls) => http(TokioIo::new(tls), peer, &shared, ticket.clone(), stop).await,
            Err(e) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        }
    };
    let first_request = async {
        tokio::time::sleep(shared.limits.first_request_timeout).await;
        if ticket.has_requested() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = serve => {}
        _ = shed => tracing::debug!(%peer, "idle connection closed to admit a new one"),
        () = first_request => tracing::debug!(%peer, "no request in time: connection closed"),
    }
}

/// Answers the requests of one connection: authentication against the web
/// configuration current at each request, then the route, within the response timeout.
async fn http<I>(
    io: I,
    peer: SocketAddr,
    shared: &Shared,
    ticket: Arc<Ticket>,
    mut stop: watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (site, web, timeout) = (shared.site.clone(), shared.web.clone(), shared.limits.response_timeout);
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (site, config, ticket) = (site.clone(), web.current(), ticket.clone());
        async move {
            let _answering = ticket.answering();
            let auth = config.clone().authorize(req.headers().get(header::AUTHORIZATION).cloned()).await;
            if let AuthResult::Denied(why) = auth {
                tracing::debug!(%peer, reason = why.as_str(), "unauthorized request");
                return Ok::<_, Infallible>(unauthorized());
            }
            let mut resp = match tokio::time::timeout(timeout, handle(&site, &req)).await {
                Ok(r) => r,
                Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "response timed out\n"),
            };
            config.apply_headers(resp.headers_mut());
            Ok(resp)
        }
    });
    // hyper's header read timeout starts again each time the connection goes idle, so
    // it bounds the wait for every request after the first.
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.limits.idle_timeout)
        .max_buf_size(MAX_REQUEST_HEAD)
        .serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => match r {
            Err(e) if !e.is_incomplete_message() => tracing::debug!(%peer, error = %e, "connection ended with an error"),
            _ => {}
        },
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
        }
    }
}
