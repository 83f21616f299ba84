//! What a simulated Wolkvox server is told at start: its operation, token, limits,
//! answer format, faults (scripted and random), clock and an optional scripted
//! responder.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::log::Request;
use super::scripted::Reply;
use crate::answer::Format;
use crate::model::SimConfig;

/// "Now" for the server: what is visible and which local day the quota counts.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Answers a request outright, before tokens, limits and faults are looked at; `None`
/// leaves it to the simulated API.
pub type Responder = Arc<dyn Fn(&Request) -> Option<Reply> + Send + Sync>;

/// The real clock.
pub fn real_clock() -> Clock {
    Arc::new(Utc::now)
}

/// `token_info`'s `token_limit` when [`WolkvoxConfig::daily_limit`] is `None`: 1000 licenses.
pub const UNLIMITED_TOKEN_LIMIT: u64 = 1_000_000;

/// The 403 text of a refused caller ([`WolkvoxConfig::refuse_caller`]): none of the vendor's
/// other 403 texts, so a client classifies it as forbidden.
pub const CALLER_REFUSED: &str = "ACCESS DENIED: THIS IP ADDRESS IS NOT REGISTERED";

/// Something going wrong on the way, chosen per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// 500, 502 or 503 with a small HTML body.
    ServerError(u16),
    /// Holds the answer for [`WolkvoxConfig::timeout_delay`], or until the client hangs up.
    Timeout,
    /// Closes the connection with a TCP reset instead of answering.
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
    /// One of each kind but `Simultaneous`, for random injection over everything.
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

/// A simulated Wolkvox server. Fields are public so a test starts from
/// [`WolkvoxConfig::new`] or [`WolkvoxConfig::bounded`] and changes only what it needs.
#[derive(Clone)]
pub struct WolkvoxConfig {
    /// The simulated operation behind every report.
    pub sim: SimConfig,
    pub token: String,
    /// Requests per operation-local day; past it, 403 `TOKEN LIMIT EXCEEDED`.
    pub daily_limit: Option<u64>,
    /// Chance that a request gets a fault from `fault_kinds`, drawn from `fault_seed`
    /// and the request's number, so a run is repeatable.
    pub fault_probability: f64,
    pub fault_kinds: Vec<Fault>,
    pub fault_seed: u64,
    /// Faults for the first requests, in order, before any random one (`None`: no fault).
    pub script: Vec<Option<Fault>>,
    /// How long a `Timeout` fault holds the answer.
    pub timeout_delay: Duration,
    /// Added to every accepted request, while it counts as in flight.
    pub latency: Duration,
    pub format: Format,
    /// Every request is refused as carrying an invalid token.
    pub invalid_token: bool,
    /// Every request is refused with 403 [`CALLER_REFUSED`] before its token is looked
    /// at, as for a caller whose public IP address is not registered in the operation.
    pub refuse_caller: bool,
    /// Reports (`api=`) answered 404 "no records" for every window, as on a server where
    /// they are not enabled.
    pub not_enabled: Vec<String>,
    pub clock: Clock,
    /// Keep the request log and the served ids (tests read them; a long-running demo
    /// does not keep them).
    pub keep_log: bool,
    /// Scripted answers, consulted first for every request to the API's paths.
    pub responder: Option<Responder>,
}

impl WolkvoxConfig {
    /// Serves `sim` with a fixed token, no limits, no faults, on the real clock.
    pub fn new(sim: SimConfig) -> WolkvoxConfig {
        WolkvoxConfig {
            sim,
            token: "test-token-0123456789".to_string(),
            daily_limit: None,
            fault_probability: 0.0,
            fault_kinds: Fault::ALL.to_vec(),
            fault_seed: 7,
            script: Vec::new(),
            timeout_delay: Duration::from_secs(3),
            latency: Duration::ZERO,
            format: Format::default(),
            invalid_token: false,
            refuse_caller: false,
            not_enabled: Vec::new(),
            clock: real_clock(),
            keep_log: true,
            responder: None,
        }
    }

    /// A closed operation producing records in `[start, end]` (see [`SimConfig::bounded`]).
    pub fn bounded(start: DateTime<Utc>, end: DateTime<Utc>) -> WolkvoxConfig {
        WolkvoxConfig::new(SimConfig::bounded(start, end))
    }

    /// The `--demo` operation at `now` (see [`SimConfig::demo`]), with a fresh random
    /// token and no request log.
    pub fn demo(now: DateTime<Utc>) -> WolkvoxConfig {
        WolkvoxConfig {
            token: format!("demo-{:032x}", rand::random::<u128>()),
            keep_log: false,
            ..WolkvoxConfig::new(SimConfig::demo(now))
        }
    }

    /// A server whose every answer comes from `reply`, for what the simulated API
    /// cannot produce (hostile bodies, error texts, echoed secrets).
    pub fn scripted(reply: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> WolkvoxConfig {
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        WolkvoxConfig {
            responder: Some(Arc::new(move |request| Some(reply(request)))),
            ..WolkvoxConfig::bounded(epoch, epoch)
        }
    }
}

impl std::fmt::Debug for WolkvoxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WolkvoxConfig")
            .field("sim", &self.sim)
            .field("daily_limit", &self.daily_limit)
            .field("fault_probability", &self.fault_probability)
            .field("fault_kinds", &self.fault_kinds)
            .field("script", &self.script)
            .field("latency", &self.latency)
            .field("format", &self.format)
            .field("scripted", &self.responder.is_some())
            .finish_non_exhaustive()
    }
}
