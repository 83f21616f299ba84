//! The server on its listener: hyper's HTTP/1.1 on each connection, a graceful stop, and
//! the TCP reset that a `Reset` fault asks for.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use super::respond::{respond, Shared};

/// How long open connections get to finish their request once the server stops.
const DRAIN: Duration = Duration::from_secs(1);

/// Serves on `listener` until `shutdown` completes, then lets open connections finish
/// their current request for a moment and drops the rest.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>, shutdown: impl Future<Output = ()>) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection(shared.clone(), stream, stop_rx.clone()));
                }
                // Out of descriptors or similar: wait instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(DRAIN, async { while connections.join_next().await.is_some() {} }).await;
}

/// One connection, kept alive between requests like a real server's; reset (SO_LINGER
/// 0, then closed) when a request asks for it.
async fn connection(shared: Arc<Shared>, stream: TcpStream, mut stop: watch::Receiver<bool>) {
    let reset = Arc::new(Notify::new());
    let service = {
        let reset = reset.clone();
        service_fn(move |request| {
            let (shared, reset) = (shared.clone(), reset.clone());
            async move { Ok::<_, Infallible>(respond(shared, request, reset).await) }
        })
    };
    let mut connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    let reset_asked = tokio::select! {
        _ = &mut connection => false,
        () = reset.notified() => true,
        () = async { drop(stop.wait_for(|stopped| *stopped).await) } => {
            std::pin::Pin::new(&mut connection).graceful_shutdown();
            let _ = (&mut connection).await;
            false
        }
    };
    if reset_asked {
        let stream = connection.into_parts().io.into_inner();
        let _ = stream.set_zero_linger();
    }
}
