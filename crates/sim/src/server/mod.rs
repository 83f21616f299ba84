//! The simulated Wolkvox over HTTP on loopback: [`Wolkvox`] starts it on port 0 (on a
//! thread of its own or on the caller's runtime), and reads back what it served and
//! the truth of its operation; faults and limits can change while it runs.

mod config;
mod http;
mod log;
mod respond;
mod scripted;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::oneshot;
use wolkvox_api::REPORT_PATH;

pub use config::{real_clock, Clock, Fault, Responder, WolkvoxConfig, CALLER_REFUSED, UNLIMITED_TOKEN_LIMIT};
pub use log::{Request, Served};
pub use scripted::{Reply, Schedule};

use log::lock;
use respond::Shared;

use crate::model::Simulator;
use crate::reports::Truth;

/// A running simulated Wolkvox; it stops when dropped.
pub struct Wolkvox {
    base_url: String,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn bind() -> std::io::Result<(std::net::TcpListener, String)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let base_url = format!("http://{}", listener.local_addr()?);
    Ok((listener, base_url))
}

impl Wolkvox {
    /// Binds 127.0.0.1:0 and serves from a runtime of its own on a thread, so it works
    /// the same under `#[test]` and `#[tokio::test]`. Panics if loopback cannot be
    /// bound: it is for tests.
    pub fn start(config: WolkvoxConfig) -> Wolkvox {
        let (listener, base_url) = bind().expect("bind a loopback port");
        let shared = Arc::new(Shared::new(config));
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name("wolkvox-sim".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("the simulator's runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("a listener on this runtime");
                    http::serve(listener, serving, async {
                        let _ = stopped.await;
                    })
                    .await;
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .expect("the simulator's thread");
        Wolkvox { base_url, shared, stop: Some(stop), thread: Some(thread) }
    }

    /// Binds 127.0.0.1:0 and serves on the current tokio runtime (panics outside one),
    /// as `--demo` does.
    pub fn spawn(config: WolkvoxConfig) -> std::io::Result<Wolkvox> {
        let (listener, base_url) = bind()?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let shared = Arc::new(Shared::new(config));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(http::serve(listener, shared.clone(), async {
            let _ = stopped.await;
        }));
        Ok(Wolkvox { base_url, shared, stop: Some(stop), thread: None })
    }

    /// `http://127.0.0.1:PORT`, to which a client appends the report path.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The report URL with `query`, for tests that call the server directly.
    pub fn report_url(&self, query: &str) -> String {
        format!("{}{REPORT_PATH}?{query}", self.base_url)
    }

    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// The simulated operation behind every answer.
    pub fn simulator(&self) -> &Simulator {
        &self.shared.model
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

    /// Every request so far and what became of it, in the order they ended.
    pub fn served_log(&self) -> Vec<Served> {
        self.shared.records.log()
    }

    /// Requests that asked for report `api`.
    pub fn requests_for(&self, api: &str) -> usize {
        self.shared
            .records
            .with_log(|log| log.iter().filter(|r| r.request.api.as_deref() == Some(api)).count())
    }

    /// The widest `date_end - date_ini` asked, in seconds (0 before any).
    pub fn max_range_seconds(&self) -> i64 {
        self.shared.records.with_log(|log| {
            log.iter()
                .filter_map(|r| Some((r.request.end? - r.request.ini?).num_seconds()))
                .max()
                .unwrap_or(0)
        })
    }

    /// Ids of the rows of report `api` sent in 200 answers (see
    /// [`Report::id`](crate::reports::Report::id)).
    pub fn served_ids(&self, api: &str) -> HashSet<String> {
        self.shared.records.served_ids(api)
    }

    /// Requests counted against the quota on an operation-local day.
    pub fn daily_used(&self, day: NaiveDate) -> u64 {
        self.shared.records.day(day)
    }

    /// A report's truth over the whole operation (`start..=end`; the simulation must be
    /// bounded).
    pub fn truth<T: Truth>(&self) -> T {
        let config = self.shared.model.config();
        let end = config.end.expect("truth needs a bounded simulation: set SimConfig::end");
        T::between(&self.shared.model, config.start, end)
    }

    /// A report's truth over the instants `[from, to]`.
    pub fn truth_between<T: Truth>(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> T {
        T::between(&self.shared.model, from, to)
    }

    /// Faults for the next requests, after any already scripted.
    pub fn push_faults(&self, faults: &[Fault]) {
        lock(&self.shared.control).script.extend(faults.iter().copied().map(Some));
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

impl Drop for Wolkvox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for Wolkvox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wolkvox").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
