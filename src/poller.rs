//! The polling loop of one operation: each cycle reads `[cursor - overlap, now - delay]`
//! window by window, splits windows that hit the record cap, retries failures with
//! backoff and jitter, and advances the cursor only past windows read completely.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, Utc};
use chrono_tz::Tz;
use governor::DefaultDirectRateLimiter;
use rand::Rng;
use tokio::sync::watch;

use crate::client::{Answer, ApiError, Client};
use crate::config::{ApiConfig, Config, OperationConfig, PollConfig};
use crate::ingest::{self, local_secs};
use crate::limits::{self, daily_allowance, may_request};
use crate::store::Store;
use crate::windows::{self, Window};

/// A response with this many records may have been cut by the API.
pub const RECORD_CAP: usize = 60_000;

/// The time source; tests may substitute their own.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Serializes state saves from several pollers and the shutdown path.
#[derive(Debug)]
pub struct Saver {
    pub store: Arc<Store>,
    pub path: PathBuf,
    lock: tokio::sync::Mutex<()>,
}

impl Saver {
    pub fn new(store: Arc<Store>, path: PathBuf) -> Self {
        Saver {
            store,
            path,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    fn save_failed(&self, error: &dyn std::fmt::Display) -> bool {
        self.store
            .save_failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.store.touch();
        tracing::error!(error = %error, "state save failed; will retry after the next cycle");
        false
    }

    /// Saves the state; a failure is logged and counted here, and polling goes on.
    pub async fn save(&self) -> bool {
        let _guard = self.lock.lock().await;
        let (store, path) = (self.store.clone(), self.path.clone());
        let started = Instant::now();
        let result = tokio::task::spawn_blocking(move || crate::state::save(&store, &path)).await;
        match result {
            Ok(Ok(bytes)) => {
                tracing::debug!(
                    bytes,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "state saved"
                );
                true
            }
            Ok(Err(e)) => self.save_failed(&e),
            Err(e) => self.save_failed(&e),
        }
    }
}

/// Why a cycle stopped early.
#[derive(Debug)]
enum Stop {
    Api(ApiError),
    /// The day's allowance is spent (or the API said so): wait for the next local day.
    Quota,
    Shutdown,
}

#[derive(Debug)]
pub struct Poller {
    index: usize,
    name: String,
    tz: Tz,
    daily_allowance: u64,
    store: Arc<Store>,
    client: Client,
    poll: PollConfig,
    api: ApiConfig,
    pacer: DefaultDirectRateLimiter,
    token_lock: Arc<tokio::sync::Mutex<()>>,
    clock: Arc<dyn Clock>,
    saver: Arc<Saver>,
    shutdown: watch::Receiver<bool>,
}

enum Fetched {
    Done,
    Truncated,
}

impl Poller {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        index: usize,
        op: &OperationConfig,
        config: &Config,
        store: Arc<Store>,
        token_lock: Arc<tokio::sync::Mutex<()>>,
        clock: Arc<dyn Clock>,
        saver: Arc<Saver>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Poller {
            index,
            name: op.name.clone(),
            tz: op.timezone,
            daily_allowance: daily_allowance(op.daily_limit(), config.api.daily_reserve),
            store,
            client: Client::new(op, config.api.timeout, config.api.max_body_bytes),
            poll: config.poll.clone(),
            api: config.api.clone(),
            pacer: limits::pacer(config.api.requests_per_second),
            token_lock,
            clock,
            saver,
            shutdown,
        }
    }

    /// Polls until shutdown.
    pub async fn run(mut self) {
        loop {
            let started = tokio::time::Instant::now();
            let wait = match self.cycle().await {
                Ok(()) => self.poll.interval,
                Err(Stop::Shutdown) => return,
                Err(Stop::Quota) => {
                    let now = self.clock.now();
                    let until = limits::next_local_midnight(now, self.tz);
                    tracing::warn!(
                        operation = %self.name,
                        resume_at = %until,
                        "daily request allowance spent; pausing until the operation's next local day"
                    );
                    let left = (until - now).to_std().unwrap_or_default() + Duration::from_secs(1);
                    // Re-check at least hourly: the clock may jump.
                    left.min(Duration::from_secs(3600))
                }
                Err(Stop::Api(e)) if e.is_configuration() => {
                    self.poll.interval.max(self.api.retry_max)
                }
                Err(Stop::Api(_)) => self.poll.interval,
            };
            let deadline = started + wait;
            if self.sleep_until(deadline).await.is_err() {
                return;
            }
        }
    }

    async fn sleep_until(&mut self, deadline: tokio::time::Instant) -> Result<(), Stop> {
        if *self.shutdown.borrow() {
            return Err(Stop::Shutdown);
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => Ok(()),
            _ = self.shutdown.changed() => Err(Stop::Shutdown),
        }
    }

    async fn cycle(&mut self) -> Result<(), Stop> {
        let now = self
            .clock
            .now()
            .duration_trunc(chrono::Duration::seconds(1))
            .expect("truncating to seconds");
        let end = now - chrono::Duration::from_std(self.poll.delay).unwrap_or_default();
        let cursor = self.store.read(self.index).cursor;
        let start = match cursor {
            Some(c) => c - chrono::Duration::from_std(self.poll.overlap).unwrap_or_default(),
            None => now - chrono::Duration::from_std(self.poll.catch_up).unwrap_or_default(),
        };
        let mut pending: Vec<Window> = windows::plan(start, end, self.tz);
        pending.reverse();
        let mut result = Ok(());
        while let Some(w) = pending.pop() {
            match self.fetch_window(w).await {
                Ok(Fetched::Done) => {
                    let mut op = self.store.lock(self.index);
                    let next = w.end + chrono::Duration::seconds(1);
                    if op.cursor.is_none_or(|c| c < next) {
                        op.cursor = Some(next);
                    }
                }
                Ok(Fetched::Truncated) => {
                    let (left, right) = w.split().expect("one-second windows are never truncated");
                    self.store.lock(self.index).health.splits += 1;
                    tracing::info!(
                        operation = %self.name,
                        window_start = %w.start,
                        window_end = %w.end,
                        "response hit the 60,000-record cap; splitting the window"
                    );
                    pending.push(right);
                    pending.push(left);
                }
                Err(stop) => {
                    result = Err(stop);
                    break;
                }
            }
        }
        let advanced = self.store.read(self.index).cursor != cursor;
        {
            let mut op = self.store.lock(self.index);
            match &result {
                Ok(()) => {
                    op.health.up = true;
                    op.health.last_success = Some(self.clock.now());
                    op.health.last_error = None;
                }
                Err(Stop::Shutdown) => {}
                Err(_) => op.health.up = false,
            }
            if let Some(c) = op.cursor {
                // Keep identities the next overlap re-read can return, plus any DST step back.
                let keep = c
                    - chrono::Duration::from_std(self.poll.overlap).unwrap_or_default()
                    - windows::max_backward_step(self.tz, c);
                op.data.prune(local_secs(windows::local(keep, self.tz)));
            }
        }
        if advanced || result.is_ok() {
            self.saver.save().await;
        }
        result
    }

    /// Reads one window, retrying transient failures with backoff and jitter.
    async fn fetch_window(&mut self, w: Window) -> Result<Fetched, Stop> {
        let (ini, end) = w.local_bounds(self.tz);
        let mut backoff = self.api.retry_initial;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.request(w, ini, end).await {
                Ok(f) => return Ok(f),
                Err(Stop::Api(e))
                    if !e.is_configuration()
                        && !matches!(e, ApiError::QuotaExceeded(_))
                        && attempt <= self.api.retry_attempts =>
                {
                    let jittered = backoff.mul_f64(rand::rng().random_range(0.5..1.0));
                    tracing::debug!(operation = %self.name, attempt, wait_ms = jittered.as_millis() as u64, "retrying");
                    self.sleep_until(tokio::time::Instant::now() + jittered)
                        .await?;
                    backoff = (backoff * 2).min(self.api.retry_max);
                }
                Err(stop) => return Err(stop),
            }
        }
    }

    /// One request: quota, pacing and the token lock first; then count, classify and
    /// ingest, each failure logged and counted here.
    async fn request(
        &mut self,
        w: Window,
        ini: chrono::NaiveDateTime,
        end: chrono::NaiveDateTime,
    ) -> Result<Fetched, Stop> {
        {
            let today = limits::local_day(self.clock.now(), self.tz);
            let mut op = self.store.lock(self.index);
            if !may_request(&mut op.daily, today, self.daily_allowance) {
                op.health.last_error = Some("daily request allowance spent".into());
                return Err(Stop::Quota);
            }
        }
        tokio::select! {
            _ = self.pacer.until_ready() => {}
            _ = self.shutdown.changed() => return Err(Stop::Shutdown),
        }
        let token_lock = self.token_lock.clone();
        let _in_flight = tokio::select! {
            g = token_lock.lock() => g,
            _ = self.shutdown.changed() => return Err(Stop::Shutdown),
        };
        let started = Instant::now();
        let fetched = tokio::select! {
            r = self.client.fetch(ini, end) => r,
            _ = self.shutdown.changed() => {
                // Abandoned at shutdown; it was sent, so it still cost a request.
                let mut op = self.store.lock(self.index);
                op.health.requests += 1;
                op.daily.used += 1;
                return Err(Stop::Shutdown);
            }
        };
        drop(_in_flight);
        let elapsed = started.elapsed().as_secs_f64();

        let mut op = self.store.lock(self.index);
        op.health.requests += 1;
        if fetched.as_ref().err().is_none_or(ApiError::was_sent) {
            op.daily.used += 1;
        }
        op.health
            .latency
            .observe(&crate::store::API_LATENCY_BUCKETS, elapsed);
        let answer = fetched.and_then(|(status, body)| {
            let answer = self.client.interpret(status, &body)?;
            Ok(match answer {
                Answer::Empty => {
                    op.health.empty_responses += 1;
                    Fetched::Done
                }
                Answer::Records(items) if items.len() >= RECORD_CAP && w.seconds() > 1 => {
                    op.health.received += items.len() as u64;
                    Fetched::Truncated
                }
                Answer::Records(items) => {
                    if items.len() >= RECORD_CAP {
                        tracing::error!(
                            operation = %self.name,
                            second = %ini,
                            "one second holds 60,000 records or more; records past the cap cannot be read"
                        );
                    }
                    let out = ingest::ingest(&mut op.data, items, ini, end);
                    let h = &mut op.health;
                    h.received += out.received;
                    h.duplicate += out.duplicate;
                    for (total, n) in h.invalid.iter_mut().zip(out.invalid) {
                        *total += n;
                    }
                    if out.overflowed > 0 {
                        tracing::warn!(
                            operation = %self.name,
                            records = out.overflowed,
                            max_agents = op.data.max_agents,
                            "agents past max_agents; their records are counted under agent_id=\"_overflow\""
                        );
                    }
                    if out.invalid.iter().any(|n| *n > 0) {
                        tracing::debug!(operation = %self.name, invalid = ?out.invalid, "records rejected");
                    }
                    Fetched::Done
                }
            })
        });
        match answer {
            Ok(f) => Ok(f),
            Err(e) => {
                op.health.count_error(&e);
                if matches!(e, ApiError::QuotaExceeded(_)) {
                    op.daily.exhausted = true;
                }
                let loud = e.is_configuration();
                drop(op);
                if loud {
                    tracing::error!(operation = %self.name, reason = e.reason(), error = %e, "API request refused: check the operation's configuration");
                } else {
                    tracing::warn!(operation = %self.name, reason = e.reason(), error = %e, date_ini = %ini, date_end = %end, "API request failed");
                }
                Err(if matches!(e, ApiError::QuotaExceeded(_)) {
                    Stop::Quota
                } else {
                    Stop::Api(e)
                })
            }
        }
    }
}
