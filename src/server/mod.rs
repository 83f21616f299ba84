//! The HTTP server: `/metrics`, `/-/healthy`, `/-/ready` and a landing page, with a cap
//! on connections that sheds idle ones, request-head timeouts and a bounded response time.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;

use crate::metrics::Renderer;
use crate::store::Store;
use crate::web::WebConfigHandle;
use shedding::Connections;

mod connection;
mod routes;
mod shedding;

/// Limits that keep slow or idle clients from exhausting the server or delaying a scrape.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections held open at once. A new connection is still accepted at the limit:
    /// the one idle longest is closed for it, those that never sent a request first and
    /// then kept-alive ones; it is refused only while every one is answering a request.
    pub max_connections: usize,
    /// From accept to a complete first request head, the TLS handshake included.
    pub first_request_timeout: Duration,
    /// How long a kept-alive connection may take to send its next complete request head
    /// after a response; longer than common scrape intervals, so Prometheus can reuse it.
    pub idle_timeout: Duration,
    /// How long a request may take to be answered; a 503 after that.
    pub response_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 512,
            first_request_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(90),
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
            && self.store.operations().iter().all(|op| op.read().reports.iter().all(|s| s.health.cycled))
    }
}

/// Connections the kernel queues before the server accepts them. Past it a client's
/// SYN is dropped and waits a 1 s retransmit, so a burst of idle connections would delay
/// a scrape; tokio's default is 128. The kernel caps it at `net.core.somaxconn`.
const ACCEPT_QUEUE: u32 = 4096;

/// Binds a Prometheus-style listen address (`:9798` means every interface, IPv6 else
/// IPv4) with a longer accept queue: the first address it resolves to that can be bound.
pub async fn bind(address: &str) -> std::io::Result<TcpListener> {
    let candidates = match address.strip_prefix(':') {
        Some(port) => vec![format!("[::]:{port}"), format!("0.0.0.0:{port}")],
        None => vec![address.to_owned()],
    };
    let mut last = None;
    for candidate in candidates {
        for addr in tokio::net::lookup_host(candidate).await? {
            let socket = if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() };
            let listener = socket.and_then(|socket| {
                socket.set_reuseaddr(true)?;
                socket.bind(addr)?;
                socket.listen(ACCEPT_QUEUE)
            });
            match listener {
                Ok(listener) => return Ok(listener),
                Err(e) => last = Some(e),
            }
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "could not resolve to any address")
    }))
}

/// Serves until `shutdown` resolves; open connections get a short grace period. At the
/// connection limit an idle connection makes room (see [`Limits`]), so a scrape never waits
/// behind idle or slow clients. A reload of the web config reaches open connections: TLS
/// is taken per connection, basic auth per request.
pub async fn serve(
    listener: TcpListener,
    site: Arc<Site>,
    limits: Limits,
    web: WebConfigHandle,
    shutdown: impl Future<Output = ()>,
) {
    let open = Connections::new(limits.max_connections);
    let shared = Arc::new(connection::Shared { site, limits, web });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
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
        let Some((ticket, shed)) = open.admit() else {
            tracing::debug!(%peer, "connection refused: every connection is answering a request");
            continue;
        };
        let (shared, stop) = (shared.clone(), stop_rx.clone());
        connections.spawn(connection::run(stream, peer, shared, ticket, shed, stop));
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bind_takes_a_port_alone_an_address_or_a_name() {
        for address in [":0", "127.0.0.1:0", "localhost:0"] {
            let listener = bind(address).await.expect(address);
            let addr = listener.local_addr().unwrap();
            let client = tokio::net::TcpStream::connect(("localhost", addr.port()));
            let (accepted, connected) = tokio::join!(listener.accept(), client);
            assert!(accepted.is_ok() && connected.is_ok(), "{address}");
        }
        assert!(bind("nonsense").await.is_err());
        assert!(bind(":99999").await.is_err());
    }
}
