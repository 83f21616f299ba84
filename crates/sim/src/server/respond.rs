//! One request through the simulated API, as the vendor's server treats it: the path, a
//! scripted reply, the caller, the token, the day's quota, one request in flight per
//! token, then a fault or the report's answer. Each request is logged once, also when
//! its client leaves before the answer.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Response, StatusCode};
use tokio::sync::Notify;
use wolkvox_api::{text, INFO_PATH, REPORT_PATH, TOKEN_HEADER, TOKEN_INFO};

use super::config::{Clock, Fault, Responder, WolkvoxConfig, CALLER_REFUSED, UNLIMITED_TOKEN_LIMIT};
use super::log::{lock, Records, Request, Served};
use super::scripted::Reply;
use crate::answer::{self, Answer, Format};
use crate::model::{rng::splitmix, Simulator};
use crate::reports::{self, Query};

/// The server's state, shared by its connections and its handle.
pub(crate) struct Shared {
    pub model: Arc<Simulator>,
    pub token: String,
    fault_kinds: Vec<Fault>,
    fault_seed: u64,
    timeout_delay: Duration,
    format: Format,
    not_enabled: Vec<String>,
    clock: Clock,
    responder: Option<Responder>,
    pub control: Mutex<Control>,
    pub in_flight: AtomicUsize,
    pub violations: AtomicU64,
    pub requests: AtomicU64,
    pub records: Records,
}

/// What a test may change while the server runs.
pub(crate) struct Control {
    pub script: VecDeque<Option<Fault>>,
    pub fault_probability: f64,
    pub latency: Duration,
    pub invalid_token: bool,
    pub refuse_caller: bool,
    pub daily_limit: Option<u64>,
}

impl Shared {
    pub fn new(config: WolkvoxConfig) -> Shared {
        Shared {
            model: Arc::new(Simulator::new(config.sim)),
            token: config.token,
            fault_kinds: config.fault_kinds,
            fault_seed: config.fault_seed,
            timeout_delay: config.timeout_delay,
            format: config.format,
            not_enabled: config.not_enabled,
            clock: config.clock,
            responder: config.responder,
            control: Mutex::new(Control {
                script: config.script.into(),
                fault_probability: config.fault_probability,
                latency: config.latency,
                invalid_token: config.invalid_token,
                refuse_caller: config.refuse_caller,
                daily_limit: config.daily_limit,
            }),
            in_flight: AtomicUsize::new(0),
            violations: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            records: Records::new(config.keep_log),
        }
    }

    /// The scripted fault of request `number`, else a random one, else none.
    fn next_fault(&self, number: u64) -> Option<Fault> {
        let mut control = lock(&self.control);
        if let Some(scripted) = control.script.pop_front() {
            return scripted;
        }
        if control.fault_probability <= 0.0 || self.fault_kinds.is_empty() {
            return None;
        }
        let draw = splitmix(self.fault_seed ^ splitmix(number));
        let unit = (draw >> 11) as f64 / (1u64 << 53) as f64;
        (unit < control.fault_probability).then(|| {
            let kind = splitmix(draw) % self.fault_kinds.len() as u64;
            self.fault_kinds[kind as usize]
        })
    }
}

pub(crate) type Body = Full<Bytes>;

/// A request on its way: logged when answered, or as unanswered if dropped first (the
/// client left, or the connection is reset).
struct Pending<'a> {
    records: &'a Records,
    entry: Option<Served>,
}

impl Pending<'_> {
    fn entry(&mut self) -> &mut Served {
        self.entry.as_mut().expect("an entry until it is logged")
    }

    fn finish(mut self, response: Response<Body>) -> Response<Body> {
        let mut entry = self.entry.take().expect("an entry until it is logged");
        entry.status = Some(response.status().as_u16());
        self.records.push(entry);
        response
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            self.records.push(entry);
        }
    }
}

/// The token's in-flight mark; cleared before the answer is written, so a client that
/// reads an answer and sends the next request at once is never counted as concurrent.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Answers one request; `reset` asks the connection to be reset instead.
pub(crate) async fn respond(
    shared: Arc<Shared>,
    request: hyper::Request<Incoming>,
    reset: Arc<Notify>,
) -> Response<Body> {
    let number = shared.requests.fetch_add(1, Ordering::SeqCst);
    let now = (shared.clock)();
    // A GET's body, if any, is not read.
    let (head, _) = request.into_parts();
    let token = head.headers.get(TOKEN_HEADER).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let path = head.uri.path();
    let query = head.uri.query().unwrap_or_default();
    let incoming = Request::new(number, now, path, query, token);
    let mut pending = Pending { records: &shared.records, entry: Some(Served::new(incoming)) };
    let info = path == INFO_PATH;
    if path != REPORT_PATH && !info {
        return pending.finish(plain(StatusCode::NOT_FOUND, "not found\n"));
    }
    if head.method != Method::GET {
        return pending.finish(plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"));
    }
    if let Some(reply) = shared.responder.as_ref().and_then(|responder| responder(&pending.entry().request)) {
        return pending.finish(scripted(reply));
    }
    let (latency, invalid_token, refuse_caller, daily_limit) = {
        let c = lock(&shared.control);
        (c.latency, c.invalid_token, c.refuse_caller, c.daily_limit)
    };
    if refuse_caller {
        return pending.finish(json(answer::error(403, CALLER_REFUSED)));
    }
    let refusal = match pending.entry().request.token.as_deref() {
        None | Some("") => Some(text::TOKEN_MISSING),
        Some(_) if invalid_token => Some(text::INVALID_TOKEN),
        Some(token) if token != shared.token => Some(text::INVALID_TOKEN),
        Some(_) => None,
    };
    if let Some(text) = refusal {
        let status = if text == text::TOKEN_MISSING { 401 } else { 403 };
        return pending.finish(json(answer::error(status, text)));
    }

    let day = now.with_timezone(&shared.model.config().timezone).date_naive();
    let used = shared.records.count_day(day);
    if shared.in_flight.fetch_add(1, Ordering::SeqCst) > 0 {
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        shared.violations.fetch_add(1, Ordering::SeqCst);
        pending.entry().concurrent = true;
        return pending.finish(json(answer::error(403, text::SIMULTANEOUS)));
    }
    let in_flight = InFlight(&shared.in_flight);
    if daily_limit.is_some_and(|limit| used > limit) {
        drop(in_flight);
        return pending.finish(json(answer::error(403, text::QUOTA_EXCEEDED)));
    }

    // token_info: the day's figures as the server counts them, this request included.
    let info = info.then(|| (daily_limit.unwrap_or(UNLIMITED_TOKEN_LIMIT), used));
    let fault = shared.next_fault(number);
    pending.entry().fault = fault;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = match fault {
        Some(Fault::Reset) => {
            drop(in_flight);
            drop(pending);
            reset.notify_one();
            return std::future::pending().await;
        }
        Some(Fault::ServerError(code) | Fault::Html(code)) => html(code),
        Some(Fault::Maintenance) => json(answer::error(403, text::MAINTENANCE)),
        Some(Fault::Simultaneous) => json(answer::error(403, text::SIMULTANEOUS)),
        Some(Fault::TruncatedJson) => {
            let full = answer_at(&shared, info, query, now).await;
            let mut body = full.body.into_bytes();
            body.truncate(body.len() / 2);
            response(StatusCode::OK, "application/json; charset=utf-8", body)
        }
        Some(Fault::Timeout) | None => {
            if fault == Some(Fault::Timeout) {
                tokio::time::sleep(shared.timeout_delay).await;
            }
            let answer = answer_at(&shared, info, query, now).await;
            shared.records.served(pending.entry(), &answer);
            json(answer)
        }
    };
    drop(in_flight);
    pending.finish(response)
}

/// The answer to `query` at `now`: `token_info`'s when `info` gives the day's limit and
/// use, else the report's.
async fn answer_at(
    shared: &Arc<Shared>,
    info: Option<(u64, u64)>,
    query: &str,
    now: DateTime<Utc>,
) -> Answer {
    if let Some((limit, used)) = info {
        let asked = query.split('&').any(|p| p.strip_prefix("api=") == Some(TOKEN_INFO));
        return if asked {
            answer::token_info(limit, used, used, &shared.format)
        } else {
            answer::error(400, text::UNKNOWN_API)
        };
    }
    let shared = shared.clone();
    let query = query.to_owned();
    // Up to 60,000 rows to write: off the reactor threads.
    tokio::task::spawn_blocking(move || match Query::parse(&query) {
        Some(q) if shared.not_enabled.iter().any(|api| api == q.api) => answer::no_records(),
        Some(q) => reports::answer(&shared.model, &q, now, &shared.format),
        None => Query::refusal(&query),
    })
    .await
    .unwrap_or_else(|_| answer::error(500, "internal error"))
}

fn response(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn json(answer: Answer) -> Response<Body> {
    response(status(answer.status), "application/json; charset=utf-8", answer.body.into_bytes())
}

fn scripted(reply: Reply) -> Response<Body> {
    response(status(reply.status), reply.content_type, reply.body)
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    response(status, "text/plain; charset=utf-8", text.as_bytes().to_vec())
}

/// A proxy's HTML error page (or a login page, for 200).
fn html(code: u16) -> Response<Body> {
    let status = status(code);
    let reason = status.canonical_reason().unwrap_or("Unknown");
    let body = format!(
        "<!DOCTYPE html>\n<html><head><title>{code} {reason}</title></head>\
         <body><h1>{reason}</h1><p>nginx</p></body></html>\n"
    );
    response(status, "text/html; charset=utf-8", body.into_bytes())
}
