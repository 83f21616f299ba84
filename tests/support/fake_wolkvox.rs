//! The tests' strict fake Wolkvox: real HTTP on loopback over the demo's simulator (every
//! report and `token_info`), the vendor's limits enforced and recorded, and faults
//! injected on demand.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wolkvox_exporter::demo::answer::{self, Answer, Api, Format, Query};

pub use super::truth::{CallsTruth, FlowsTruth, Truth};
use wolkvox_exporter::demo::simulator::{SimConfig, SimRecord, Simulator};

use super::clock::{self, TestClock};

/// The report endpoint the fake serves.
pub const REPORT_PATH: &str = "/api/v2/reports_manager.php";
/// The token information endpoint (`?api=token_info`).
pub const INFO_PATH: &str = "/api/v2/information.php";
/// `token_info`'s `token_limit` when `FakeConfig::daily_limit` is `None`: 1000 licences,
/// as `TestConfig`'s operations have.
pub const UNLIMITED_TOKEN_LIMIT: u64 = 1_000_000;
/// The 403 text of a refused caller (`FakeConfig::refuse_caller`): none of the vendor's
/// other 403 texts, so a client classifies it `forbidden`.
pub const CALLER_REFUSED: &str = "ACCESS DENIED: THIS IP ADDRESS IS NOT REGISTERED";

/// Something going wrong on the way, chosen per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// 500, 502 or 503 with a small HTML body.
    ServerError(u16),
    /// Waits `FakeConfig::timeout_delay` before answering (or until the client leaves).
    Timeout,
    /// Closes the socket with a TCP reset instead of answering.
    Reset,
    /// An HTML page with this status (200 or 502), as a proxy would send.
    Html(u16),
    /// Status 200 and a JSON body cut in the middle.
    TruncatedJson,
    /// 403 server maintenance.
    Maintenance,
    /// 403 simultaneous requests, though nothing else was in flight.
    Simultaneous,
}

impl Fault {
    /// One of each kind, for random injection over everything.
    pub const ALL: [Fault; 9] = [
        Fault::ServerError(500),
        Fault::ServerError(502),
        Fault::ServerError(503),
        Fault::Timeout,
        Fault::Reset,
        Fault::Html(200),
        Fault::Html(502),
        Fault::TruncatedJson,
        Fault::Maintenance,
    ];
}

#[derive(Debug, Clone)]
pub struct FakeConfig {
    pub sim: SimConfig,
    pub token: String,
    /// Requests per operation-local day; past it, 403 `Token limit exceeded`.
    pub daily_limit: Option<u64>,
    /// Chance that a request gets a fault from `fault_kinds`, drawn from `fault_seed`
    /// and the request's number, so a run is repeatable.
    pub fault_probability: f64,
    pub fault_kinds: Vec<Fault>,
    pub fault_seed: u64,
    /// Faults for the next requests, in order, before any random ones (`None`: no fault).
    pub script: Vec<Option<Fault>>,
    /// How long a `Timeout` fault keeps the client waiting.
    pub timeout_delay: Duration,
    /// Added to every accepted request, while it counts as in flight.
    pub latency: Duration,
    pub code_as_string: bool,
    pub single_object_data: bool,
    /// Every request is refused as carrying an invalid token.
    pub invalid_token: bool,
    /// Every request is refused with 403 [`CALLER_REFUSED`] before its token is looked
    /// at, as for a caller whose public IP address is not registered in the operation.
    pub refuse_caller: bool,
    /// Reports (`api=` names) answered 404 "no records" for every window, as on a server
    /// where they are not enabled.
    pub not_enabled: Vec<String>,
    /// Dates in bodies written this many hours off (selection stays correct).
    pub tz_shift_hours: i64,
    /// "Now" for visibility and the quota day, shared with whoever else holds the
    /// clock (the in-process exporter); `None` is the real clock, for an exporter
    /// binary that reads it.
    pub clock: Option<TestClock>,
    /// Share of agent_13 records left out of agent_13's answers (agent_12 still counts
    /// them), chosen by conn_id; see [`hidden`].
    pub hidden_share: f64,
}

impl FakeConfig {
    pub fn new(sim: SimConfig) -> Self {
        FakeConfig {
            sim,
            token: "test-token-0123456789".to_string(),
            daily_limit: None,
            fault_probability: 0.0,
            fault_kinds: Fault::ALL.to_vec(),
            fault_seed: 7,
            script: Vec::new(),
            timeout_delay: Duration::from_secs(3),
            latency: Duration::ZERO,
            code_as_string: false,
            single_object_data: false,
            invalid_token: false,
            refuse_caller: false,
            not_enabled: Vec::new(),
            tz_shift_hours: 0,
            clock: None,
            hidden_share: 0.0,
        }
    }

    /// A closed operation producing records in `[start, end]` (see `SimConfig::bounded`).
    pub fn bounded(start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        Self::new(SimConfig::bounded(start, end))
    }
}

/// One request as the fake saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServedRequest {
    /// 0 for the first request.
    pub number: u64,
    /// The fake's clock when the request arrived.
    pub received_at: DateTime<Utc>,
    pub query: String,
    pub ini: Option<NaiveDateTime>,
    pub end: Option<NaiveDateTime>,
    /// `None` when no answer was written (reset, or the client left first).
    pub status: Option<u16>,
    pub fault: Option<Fault>,
    /// Records in a complete, parseable 200 answer.
    pub records: usize,
    pub truncated: bool,
    /// It arrived while another request on the token was in flight.
    pub concurrent: bool,
    /// `date_end - date_ini` in days, when both parse.
    pub range_days: Option<f64>,
    /// The `api=` asked for, when given.
    pub api: Option<String>,
}

/// What can change while the fake runs.
struct Control {
    script: VecDeque<Option<Fault>>,
    fault_probability: f64,
    latency: Duration,
    invalid_token: bool,
    refuse_caller: bool,
    clock: Option<TestClock>,
    daily_limit: Option<u64>,
}

struct Shared {
    sim: Arc<Simulator>,
    token: String,
    fault_kinds: Vec<Fault>,
    fault_seed: u64,
    timeout_delay: Duration,
    format: Format,
    control: Mutex<Control>,
    in_flight: AtomicUsize,
    violations: AtomicU64,
    requests: AtomicU64,
    log: Mutex<Vec<ServedRequest>>,
    /// Ids of the rows sent in complete 200 answers, per `api`.
    served: Mutex<HashMap<String, HashSet<String>>>,
    hidden_share: f64,
    not_enabled: Vec<String>,
    daily: Mutex<HashMap<NaiveDate, u64>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running fake; it stops when dropped.
pub struct FakeWolkvox {
    base_url: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeWolkvox {
    /// Binds 127.0.0.1:0 and serves from a runtime of its own, so it works the same
    /// under `#[test]` and `#[tokio::test]`.
    pub fn start(config: FakeConfig) -> FakeWolkvox {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let base_url = format!("http://{}", listener.local_addr().expect("local address"));
        let shared = Arc::new(Shared {
            sim: Arc::new(Simulator::new(config.sim)),
            token: config.token,
            fault_kinds: config.fault_kinds,
            fault_seed: config.fault_seed,
            timeout_delay: config.timeout_delay,
            format: Format {
                code_as_string: config.code_as_string,
                single_object_data: config.single_object_data,
                shift_hours: config.tz_shift_hours,
            },
            control: Mutex::new(Control {
                script: config.script.into(),
                fault_probability: config.fault_probability,
                latency: config.latency,
                invalid_token: config.invalid_token,
                refuse_caller: config.refuse_caller,
                clock: config.clock,
                daily_limit: config.daily_limit,
            }),
            in_flight: AtomicUsize::new(0),
            violations: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
            served: Mutex::new(HashMap::new()),
            hidden_share: config.hidden_share,
            not_enabled: config.not_enabled,
            daily: Mutex::new(HashMap::new()),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name("fake-wolkvox".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("fake runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    tokio::pin!(stopped);
                    loop {
                        tokio::select! {
                            _ = &mut stopped => break,
                            accepted = listener.accept() => {
                                if let Ok((stream, _)) = accepted {
                                    tokio::spawn(connection(serving.clone(), stream));
                                }
                            }
                        }
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .expect("fake thread");
        FakeWolkvox {
            base_url,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`, without the report path.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The full report URL, for tests that call the fake directly.
    pub fn report_url(&self, query: &str) -> String {
        format!("{}{REPORT_PATH}?{query}", self.base_url)
    }

    pub fn token(&self) -> &str {
        &self.shared.token
    }

    pub fn simulator(&self) -> &Simulator {
        &self.shared.sim
    }

    /// Requests received, whatever became of them.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Requests being answered now (more than one only in a violation).
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// Requests that arrived while another one on the token was in flight.
    pub fn concurrent_violations(&self) -> u64 {
        self.shared.violations.load(Ordering::SeqCst)
    }

    pub fn served_log(&self) -> Vec<ServedRequest> {
        lock(&self.shared.log).clone()
    }

    /// The widest `date_end - date_ini` asked, in seconds (0 before any valid query).
    pub fn max_range_seconds(&self) -> i64 {
        lock(&self.shared.log)
            .iter()
            .filter_map(|r| Some((r.end? - r.ini?).num_seconds()))
            .max()
            .unwrap_or(0)
    }

    /// agent_13 conn_ids sent in complete 200 answers (not in truncated or faulty ones).
    pub fn served_conn_ids(&self) -> HashSet<String> {
        self.served_ids("agent_13")
    }

    /// Row ids of report `api` sent in complete 200 answers.
    pub fn served_ids(&self, api: &str) -> HashSet<String> {
        lock(&self.shared.served)
            .get(api)
            .cloned()
            .unwrap_or_default()
    }

    /// Requests that asked for report `api`.
    pub fn requests_for(&self, api: &str) -> usize {
        lock(&self.shared.log)
            .iter()
            .filter(|r| r.api.as_deref() == Some(api))
            .count()
    }

    /// Requests counted against the quota on an operation-local day.
    pub fn daily_used(&self, day: NaiveDate) -> u64 {
        lock(&self.shared.daily).get(&day).copied().unwrap_or(0)
    }

    /// Every agent_13 record of the operation (`start..=end`; the config must set `end`).
    pub fn truth(&self) -> Truth {
        Truth::from_records(&self.all_records())
    }

    /// Records with `from <= at <= to`, for tests that check a part of the history.
    pub fn truth_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Truth {
        Truth::from_records(&self.shared.sim.records_between(from, to))
    }

    /// Every cdr_1 leg of the operation, per agent and direction.
    pub fn calls_truth(&self) -> CallsTruth {
        let (start, end) = self.span();
        CallsTruth::from_calls(&self.shared.sim.calls_between(start, end))
    }

    /// Every agent_13_1 leg of the operation, per origin, destination and type.
    pub fn flows_truth(&self) -> FlowsTruth {
        let (start, end) = self.span();
        FlowsTruth::from_legs(&self.shared.sim.legs_between(start, end))
    }

    /// agent_id → the name on the agent's latest agent_13 record.
    pub fn latest_names(&self) -> BTreeMap<String, String> {
        self.all_records()
            .into_iter()
            .map(|r| (r.agent_id, r.agent_name))
            .collect()
    }

    /// agent_id → the name on the agent's latest call (every agent with a record in any
    /// report has calls).
    pub fn latest_call_names(&self) -> BTreeMap<String, String> {
        let (start, end) = self.span();
        self.shared
            .sim
            .calls_between(start, end)
            .into_iter()
            .map(|c| (c.agent_id, c.agent_name))
            .collect()
    }

    fn span(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let config = self.shared.sim.config();
        let end = config
            .end
            .expect("truth needs a bounded simulation: set SimConfig::end");
        (config.start, end)
    }

    fn all_records(&self) -> Vec<SimRecord> {
        let (start, end) = self.span();
        self.shared.sim.records_between(start, end)
    }

    /// Faults for the next requests, after any already scripted.
    pub fn push_faults(&self, faults: &[Fault]) {
        lock(&self.shared.control)
            .script
            .extend(faults.iter().copied().map(Some));
    }

    pub fn set_fault_probability(&self, probability: f64) {
        lock(&self.shared.control).fault_probability = probability;
    }

    pub fn set_latency(&self, latency: Duration) {
        lock(&self.shared.control).latency = latency;
    }

    pub fn set_invalid_token(&self, invalid: bool) {
        lock(&self.shared.control).invalid_token = invalid;
    }

    pub fn set_refuse_caller(&self, refuse: bool) {
        lock(&self.shared.control).refuse_caller = refuse;
    }

    pub fn set_daily_limit(&self, limit: Option<u64>) {
        lock(&self.shared.control).daily_limit = limit;
    }
}

impl Drop for FakeWolkvox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A parsed request head.
struct Head {
    target: String,
    token: Option<String>,
    close: bool,
    body_len: usize,
}

const MAX_HEAD: usize = 64 * 1024;

/// Serves one connection, keeping it alive between requests like a real server.
async fn connection(shared: Arc<Shared>, mut stream: TcpStream) {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let head = match read_head(&mut stream, &mut buf).await {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(_) => {
                let _ =
                    write_response(&mut stream, 400, "text/plain", b"bad request\n", true).await;
                return;
            }
        };
        // GET bodies are unexpected but legal: skip them.
        while buf.len() < head.body_len {
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        buf.drain(..head.body_len);
        if !request(&shared, &mut stream, &mut buf, &head).await || head.close {
            return;
        }
    }
}

async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Option<Head>> {
    let invalid = || std::io::Error::new(std::io::ErrorKind::InvalidData, "bad request head");
    loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&buf[..pos]).into_owned();
            buf.drain(..pos + 4);
            let mut lines = text.split("\r\n");
            let mut parts = lines.next().unwrap_or_default().split_whitespace();
            let (Some(method), Some(target), Some(version)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(invalid());
            };
            let mut head = Head {
                target: if method == "GET" {
                    target.to_string()
                } else {
                    String::new()
                },
                token: None,
                close: version == "HTTP/1.0",
                body_len: 0,
            };
            for line in lines {
                let Some((name, value)) = line.split_once(':') else {
                    return Err(invalid());
                };
                let value = value.trim();
                match name.trim().to_ascii_lowercase().as_str() {
                    "wolkvox-token" => head.token = Some(value.to_string()),
                    "connection" => head.close = value.eq_ignore_ascii_case("close"),
                    "content-length" => head.body_len = value.parse().map_err(|_| invalid())?,
                    _ => {}
                }
            }
            return Ok(Some(head));
        }
        if buf.len() > MAX_HEAD {
            return Err(invalid());
        }
        if stream.read_buf(buf).await? == 0 {
            return Ok(None);
        }
    }
}

/// Clears the in-flight mark; dropped before the answer is written, so a client that
/// reads an answer and immediately sends the next request is never counted as
/// concurrent.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Answers one request; false when the connection must close.
async fn request(
    shared: &Arc<Shared>,
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    head: &Head,
) -> bool {
    let number = shared.requests.fetch_add(1, Ordering::SeqCst);
    let (latency, invalid_token, refuse_caller, now, daily_limit) = {
        let control = lock(&shared.control);
        (
            control.latency,
            control.invalid_token,
            control.refuse_caller,
            control
                .clock
                .as_ref()
                .map_or_else(clock::real_now, TestClock::now),
            control.daily_limit,
        )
    };
    let (path, query) = head.target.split_once('?').unwrap_or((&head.target, ""));
    let parsed = Query::parse(query);
    let mut entry = ServedRequest {
        number,
        received_at: now,
        query: query.to_string(),
        ini: parsed.map(|q| q.ini),
        end: parsed.map(|q| q.end),
        status: None,
        fault: None,
        records: 0,
        truncated: false,
        concurrent: false,
        range_days: parsed.map(|q| (q.end - q.ini).num_seconds() as f64 / 86_400.0),
        api: query
            .split('&')
            .find_map(|p| p.strip_prefix("api="))
            .map(str::to_owned),
    };
    if entry.ini.is_none() {
        // Keep the asked range visible even when it is refused (e.g. over 31 days).
        let value = |key: &str| {
            query
                .split('&')
                .find_map(|p| p.strip_prefix(key)?.strip_prefix('='))
                .and_then(|v| NaiveDateTime::parse_from_str(v, "%Y%m%d%H%M%S").ok())
        };
        entry.ini = value("date_ini");
        entry.end = value("date_end");
        if let (Some(ini), Some(end)) = (entry.ini, entry.end) {
            entry.range_days = Some((end - ini).num_seconds() as f64 / 86_400.0);
        }
    }

    let info = path == INFO_PATH;
    if path != REPORT_PATH && !info {
        return finish(shared, stream, entry, plain(404, "not found\n"), head.close).await;
    }
    if refuse_caller {
        let refusal = json(answer::error(403, CALLER_REFUSED));
        return finish(shared, stream, entry, refusal, head.close).await;
    }
    let refusal = match head.token.as_deref() {
        None | Some("") => Some(answer::token_missing()),
        Some(_) if invalid_token => Some(answer::invalid_token()),
        Some(token) if token != shared.token => Some(answer::invalid_token()),
        Some(_) => None,
    };
    if let Some(refusal) = refusal {
        return finish(shared, stream, entry, json(refusal), head.close).await;
    }

    let day = now
        .with_timezone(&shared.sim.config().timezone)
        .date_naive();
    let used = {
        let mut daily = lock(&shared.daily);
        let used = daily.entry(day).or_insert(0);
        *used += 1;
        *used
    };
    if shared.in_flight.fetch_add(1, Ordering::SeqCst) > 0 {
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        shared.violations.fetch_add(1, Ordering::SeqCst);
        entry.concurrent = true;
        return finish(
            shared,
            stream,
            entry,
            json(answer::simultaneous()),
            head.close,
        )
        .await;
    }
    let in_flight = InFlight(&shared.in_flight);
    if daily_limit.is_some_and(|limit| used > limit) {
        drop(in_flight);
        return finish(
            shared,
            stream,
            entry,
            json(answer::quota_exceeded()),
            head.close,
        )
        .await;
    }

    // token_info: the day's figures as the fake counts them, this request included.
    let info = info.then(|| (daily_limit.unwrap_or(UNLIMITED_TOKEN_LIMIT), used));
    let fault = next_fault(shared, number);
    entry.fault = fault;
    if !latency.is_zero() && !wait_while_connected(stream, buf, latency).await {
        drop(in_flight);
        log(shared, entry);
        return false;
    }
    let response = match fault {
        Some(Fault::Reset) => {
            drop(in_flight);
            log(shared, entry);
            let _ = stream.set_zero_linger();
            return false;
        }
        Some(Fault::ServerError(status)) => html(status),
        Some(Fault::Html(status)) => html(status),
        Some(Fault::Maintenance) => json(answer::maintenance()),
        Some(Fault::Simultaneous) => json(answer::simultaneous()),
        Some(Fault::Timeout) => {
            if !wait_while_connected(stream, buf, shared.timeout_delay).await {
                drop(in_flight);
                log(shared, entry);
                return false;
            }
            served(
                shared,
                &mut entry,
                answer_at(shared, info, query, now).await,
            )
        }
        Some(Fault::TruncatedJson) => {
            let full = answer_at(shared, info, query, now).await;
            let mut body = full.body.into_bytes();
            body.truncate(body.len() / 2);
            Response {
                status: 200,
                content_type: "application/json; charset=utf-8",
                body,
            }
        }
        None => served(
            shared,
            &mut entry,
            answer_at(shared, info, query, now).await,
        ),
    };
    drop(in_flight);
    finish(shared, stream, entry, response, head.close).await
}

fn next_fault(shared: &Shared, number: u64) -> Option<Fault> {
    let mut control = lock(&shared.control);
    if let Some(scripted) = control.script.pop_front() {
        return scripted;
    }
    if control.fault_probability <= 0.0 || shared.fault_kinds.is_empty() {
        return None;
    }
    let draw = splitmix(shared.fault_seed ^ splitmix(number));
    let unit = (draw >> 11) as f64 / (1u64 << 53) as f64;
    (unit < control.fault_probability).then(|| {
        let kind = splitmix(draw) % shared.fault_kinds.len() as u64;
        shared.fault_kinds[kind as usize]
    })
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
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
        return if query.split('&').any(|p| p == "api=token_info") {
            answer::token_info(limit, used, used, &shared.format)
        } else {
            answer::error(400, answer::UNKNOWN_API)
        };
    }
    let shared = shared.clone();
    let query = query.to_string();
    tokio::task::spawn_blocking(move || match Query::parse(&query) {
        Some(q)
            if shared
                .not_enabled
                .iter()
                .any(|api| Api::parse(api) == Some(q.api)) =>
        {
            answer::no_records()
        }
        Some(q) => answer::answer(&shared.sim, &q, now, &shared.format, |r| {
            !hidden(shared.hidden_share, &r.conn_id)
        }),
        None => Query::refusal(&query),
    })
    .await
    .unwrap_or_else(|_| answer::error(500, "internal error"))
}

/// Whether the agent_13 record `conn_id` is among the share left out of agent_13's
/// answers (agent_12 still counts it).
pub fn hidden(share: f64, conn_id: &str) -> bool {
    if share <= 0.0 {
        return false;
    }
    let h = conn_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (splitmix(h) >> 11) as f64 / (1u64 << 53) as f64 <= share
}

/// The answer as a response, noting what it carried.
fn served(shared: &Shared, entry: &mut ServedRequest, answer: Answer) -> Response {
    if answer.status == 200 {
        entry.records = answer.ids.len();
        entry.truncated = answer.truncated;
        let api = entry.api.clone().unwrap_or_default();
        lock(&shared.served)
            .entry(api)
            .or_default()
            .extend(answer.ids.iter().cloned());
    }
    json(answer)
}

/// Sleeps for `wait`, watching the socket: false as soon as the client hangs up.
async fn wait_while_connected(stream: &mut TcpStream, buf: &mut Vec<u8>, wait: Duration) -> bool {
    let deadline = tokio::time::sleep(wait);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => return true,
            read = stream.read_buf(buf) => match read {
                Ok(0) | Err(_) => return false,
                Ok(_) => {}
            },
        }
    }
}

struct Response {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

fn json(answer: Answer) -> Response {
    Response {
        status: answer.status,
        content_type: "application/json; charset=utf-8",
        body: answer.body.into_bytes(),
    }
}

fn plain(status: u16, text: &str) -> Response {
    Response {
        status,
        content_type: "text/plain; charset=utf-8",
        body: text.as_bytes().to_vec(),
    }
}

fn html(status: u16) -> Response {
    let body = format!(
        "<!DOCTYPE html>\n<html><head><title>{status} {reason}</title></head>\
         <body><h1>{reason}</h1><p>nginx</p></body></html>\n",
        reason = reason(status)
    );
    Response {
        status,
        content_type: "text/html; charset=utf-8",
        body: body.into_bytes(),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

fn log(shared: &Shared, entry: ServedRequest) {
    lock(&shared.log).push(entry);
}

/// Logs the request, then writes the answer; false when the connection must close.
async fn finish(
    shared: &Shared,
    stream: &mut TcpStream,
    mut entry: ServedRequest,
    response: Response,
    close: bool,
) -> bool {
    entry.status = Some(response.status);
    log(shared, entry);
    write_response(
        stream,
        response.status,
        response.content_type,
        &response.body,
        close,
    )
    .await
    .is_ok()
}

async fn write_response(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
    close: bool,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{}\r\n",
        reason(status),
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    );
    let mut out = Vec::with_capacity(head.len() + body.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body);
    stream.write_all(&out).await?;
    stream.flush().await
}
