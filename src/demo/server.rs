//! The demo's Wolkvox over HTTP on loopback: token checks, one request in flight per
//! token, every report's answer at the current time and `token_info`.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{NaiveDate, Utc};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::answer::{self, Answer, Format};
use super::simulator::Simulator;

/// The report endpoint, relative to the base URL.
pub const REPORT_PATH: &str = "/api/v2/reports_manager.php";
/// The token information endpoint (`?api=token_info`).
pub const INFO_PATH: &str = "/api/v2/information.php";
/// The demo operation's daily request limit: its licenses x 1000.
pub const DAILY_LIMIT: u64 = super::DEMO_LICENSES as u64 * 1000;
/// The header that carries the operation's token.
pub const TOKEN_HEADER: &str = "wolkvox-token";

/// How long open connections get to finish once shutdown is asked.
const DRAIN: Duration = Duration::from_secs(5);

struct State {
    sim: Arc<Simulator>,
    token: String,
    busy: AtomicBool,
    /// Requests accepted on the operation-local day, for `token_info`.
    daily: Mutex<(NaiveDate, u64)>,
}

impl State {
    /// Counts an accepted request; returns the day's count with it.
    fn count_request(&self) -> u64 {
        let today = Utc::now()
            .with_timezone(&self.sim.config().timezone)
            .date_naive();
        let mut daily = self.daily.lock().unwrap_or_else(|p| p.into_inner());
        if daily.0 != today {
            *daily = (today, 0);
        }
        daily.1 += 1;
        daily.1
    }
}

/// Serves the simulated API on `listener` until `shutdown` completes, then lets open
/// connections finish their current request (for a few seconds at most).
pub async fn serve(
    listener: TcpListener,
    sim: Arc<Simulator>,
    token: String,
    shutdown: impl Future<Output = ()>,
) {
    let state = Arc::new(State {
        sim,
        token,
        busy: AtomicBool::new(false),
        daily: Mutex::new((NaiveDate::MIN, 0)),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of descriptors or similar: wait instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let state = state.clone();
                let mut stop = stop_rx.clone();
                connections.spawn(async move {
                    let service = service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(&state, request).await) }
                    });
                    let connection =
                        http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                    tokio::pin!(connection);
                    tokio::select! {
                        _ = connection.as_mut() => {}
                        () = async { drop(stop.wait_for(|stopped| *stopped).await) } => {
                            connection.as_mut().graceful_shutdown();
                            let _ = connection.await;
                        }
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}

/// Clears the token's busy flag when the request is over, whatever happened.
struct InFlight<'a>(&'a AtomicBool);

impl<'a> InFlight<'a> {
    fn acquire(flag: &'a AtomicBool) -> Option<Self> {
        flag.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| InFlight(flag))
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

async fn handle(state: &Arc<State>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let info = request.uri().path() == INFO_PATH;
    if request.uri().path() != REPORT_PATH && !info {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    }
    if request.method() != Method::GET {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    match request.headers().get(TOKEN_HEADER) {
        None => return json(answer::token_missing()),
        Some(value) if value.is_empty() => return json(answer::token_missing()),
        Some(value) if value.as_bytes() != state.token.as_bytes() => {
            return json(answer::invalid_token())
        }
        Some(_) => {}
    }
    let Some(_in_flight) = InFlight::acquire(&state.busy) else {
        return json(answer::simultaneous());
    };
    let used = state.count_request();
    let query = request.uri().query().unwrap_or_default().to_owned();
    if info {
        return json(if query.split('&').any(|p| p == "api=token_info") {
            answer::token_info(DAILY_LIMIT, used, used, &Format::default())
        } else {
            answer::error(400, answer::UNKNOWN_API)
        });
    }
    let sim = state.sim.clone();
    // Up to 60,000 records to encode: keep it off the reactor threads.
    let answered = tokio::task::spawn_blocking(move || {
        answer::respond(&sim, &query, Utc::now(), &Format::default())
    })
    .await;
    match answered {
        Ok(answer) => json(answer),
        Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n"),
    }
}

fn json(answer: Answer) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(answer.body)));
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::simulator::SimConfig;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: std::net::SocketAddr, target: &str, token: Option<&str>) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let token = token.map_or(String::new(), |t| format!("wolkvox-token: {t}\r\n"));
        let request =
            format!("GET {target} HTTP/1.1\r\nHost: x\r\n{token}Connection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn answers_checks_tokens_and_stops() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let start = chrono::DateTime::from_timestamp(1_741_611_600, 0).unwrap(); // 2025-03-10 13:00Z
        let end = start + chrono::Duration::hours(4);
        let sim = Arc::new(Simulator::new(SimConfig::bounded(start, end)));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, sim.clone(), "secret".into(), async {
            let _ = rx.await;
        }));

        let target =
            format!("{REPORT_PATH}?api=agent_13&date_ini=20250310080000&date_end=20250310115959");
        let ok = get(addr, &target, Some("secret")).await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.contains("records were found"));
        let missing = get(addr, &target, None).await;
        assert!(
            missing.starts_with("HTTP/1.1 401")
                && missing.contains("PLEASE ENTER THE WOLKVOX-TOKEN")
        );
        let wrong = get(addr, &target, Some("nope")).await;
        assert!(wrong.starts_with("HTTP/1.1 403") && wrong.contains("PLEASE VALIDATE TOKEN"));
        let bad = get(addr, &format!("{REPORT_PATH}?api=agent_13"), Some("secret")).await;
        assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
        // token_info counts every request the token got through, itself included.
        let info_target = format!("{INFO_PATH}?api=token_info");
        let info = get(addr, &info_target, Some("secret")).await;
        assert!(info.starts_with("HTTP/1.1 200"), "{info}");
        assert!(
            info.contains(r#""token_limit":"1000000","token_use_today":"3","all_token_today":"3","available_consumption_options":"999997""#),
            "{info}"
        );
        let refused = get(addr, &info_target, Some("nope")).await;
        assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
        let unknown = get(addr, &format!("{INFO_PATH}?api=other"), Some("secret")).await;
        assert!(unknown.starts_with("HTTP/1.1 400"), "{unknown}");

        tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("server stops on shutdown")
            .unwrap();
    }
}
