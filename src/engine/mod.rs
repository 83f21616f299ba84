//! One engine per operation: the loop that gives due reports turns a window at a time and
//! ends their cycles, over what they share (windows, one request in flight, pacing, the
//! allowance, retries, cursors, the ledger, health, saves). It knows no report's fields,
//! only what [`DynReport`] and its [`Schedule`] say.

mod backfill;
mod cycle;
mod ingest;
pub mod limits;
mod request;
mod saver;
#[cfg(test)]
pub(crate) mod testing;

use std::sync::Arc;
use std::time::Duration;

use governor::DefaultDirectRateLimiter;
use tokio::sync::watch;
use tokio::time::Instant;

pub use backfill::Budget;
pub use ingest::{ingest, Outcome, PageSpec, Tally, Timeline};
pub use request::LATE_SLACK;
pub use saver::Saver;

use cycle::Cycle;

use crate::calendar;
use crate::client::{ApiError, Client};
use crate::clock::Clock;
use crate::config::{ApiConfig, Config, OperationConfig, PollConfig};
use crate::reports::{DynReport, ReportName, Schedule};
use crate::store::OperationStore;

/// A configured duration as a chrono one (their ranges are far beyond any configured).
fn span(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or_default()
}

/// Why a report's cycle (or backfill) stopped before its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    Api(ApiError),
    /// The day's allowance is spent (or the API said so): wait for the next local day.
    Quota,
    /// What is left of the day's allowance is kept for earlier reports (for a backfill,
    /// for the polling).
    Paused,
    /// The cycle is left as it stands.
    Shutdown,
}

/// A report of the operation and where its cycles stand.
#[derive(Debug)]
struct Scheduled {
    report: Arc<dyn DynReport>,
    schedule: Schedule,
    interval: Duration,
    /// When the next cycle may start.
    due: Instant,
    cycle: Option<Cycle>,
    /// When it last read a window, so that reports with work take turns.
    last_step: Instant,
}

/// What an engine needs from outside.
#[derive(Debug, Clone)]
pub struct Shared {
    pub token_lock: Arc<tokio::sync::Mutex<()>>,
    pub clock: Arc<dyn Clock>,
    pub saver: Arc<Saver>,
    pub shutdown: watch::Receiver<bool>,
}

#[derive(Debug)]
pub struct Engine {
    op: Arc<OperationStore>,
    client: Client,
    /// The operation's reports, in the store's (priority) order.
    reports: Vec<Scheduled>,
    poll: PollConfig,
    api: ApiConfig,
    allowance: u64,
    pacer: DefaultDirectRateLimiter,
    shared: Shared,
    /// The backfill's: counts each page step by step.
    timeline: Option<Arc<std::sync::Mutex<dyn Timeline>>>,
    /// The backfill spends only what leaves every report its polling for the rest of
    /// the day, so that the exporter started after it can poll.
    reserve_all: bool,
}

impl Engine {
    pub fn new(op: Arc<OperationStore>, config: &OperationConfig, global: &Config, shared: Shared) -> Self {
        let now = Instant::now();
        let reports = op
            .read()
            .reports
            .iter()
            .map(|slot| Scheduled {
                report: slot.report.clone(),
                schedule: slot.schedule,
                interval: slot.interval,
                due: now,
                cycle: None,
                last_step: now,
            })
            .collect();
        Engine {
            client: Client::new(
                &config.base_url,
                config.token.clone(),
                global.api.timeout,
                global.api.max_body_bytes,
            ),
            reports,
            poll: global.poll.clone(),
            api: global.api.clone(),
            allowance: crate::config::plan::daily_allowance(op.daily_limit, global.api.daily_reserve),
            pacer: limits::pacer(global.api.requests_per_second),
            op,
            shared,
            timeline: None,
            reserve_all: false,
        }
    }

    /// Polls until shutdown. Each step reads one window of a report whose cycle is
    /// under way or due; such reports take turns (the one that waited longest first,
    /// ties in priority order), so a long catch-up of one report delays another's
    /// cycle by a window at most.
    pub async fn run(mut self) {
        loop {
            let now = Instant::now();
            let next = self
                .reports
                .iter()
                .enumerate()
                .filter(|(_, r)| r.cycle.is_some() || r.due <= now)
                .min_by_key(|(i, r)| (r.last_step, *i))
                .map(|(i, _)| i);
            let stopped = match next {
                Some(i) => self.step(i).await == Some(Err(Stop::Shutdown)),
                None => {
                    let due = self.reports.iter().map(|r| r.due).min();
                    self.sleep_until(due.unwrap_or(now + self.poll.interval)).await.is_err()
                }
            };
            if stopped {
                return;
            }
        }
    }

    async fn sleep_until(&mut self, deadline: Instant) -> Result<(), Stop> {
        if *self.shared.shutdown.borrow() {
            return Err(Stop::Shutdown);
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => Ok(()),
            _ = self.shared.shutdown.changed() => Err(Stop::Shutdown),
        }
    }

    pub fn operation(&self) -> &str {
        &self.op.name
    }

    /// The operation's local day.
    fn today(&self) -> chrono::NaiveDate {
        calendar::local_day(self.shared.clock.now(), self.op.timezone)
    }

    fn name(&self, i: usize) -> ReportName {
        self.reports[i].report.name()
    }

    /// Reads the next window of report `i`'s cycle, starting the cycle if needed; how the
    /// cycle ended, if it did.
    async fn step(&mut self, i: usize) -> Option<Result<(), Stop>> {
        self.reports[i].last_step = Instant::now();
        if self.reports[i].cycle.is_none() {
            self.start_cycle(i);
        }
        let next = self.reports[i].cycle.as_mut().and_then(|c| c.pending.pop());
        let Some(w) = next else {
            return Some(self.end_cycle(i, Ok(())).await);
        };
        let parts = match self.fetch_window(i, w).await {
            Ok(Outcome::Counted(tally)) => {
                let Some(before) = tally.before else {
                    self.read(i, w, w.end + chrono::Duration::seconds(1), &tally.dates);
                    if self.reports[i].cycle.as_ref().is_some_and(|c| c.pending.is_empty()) {
                        return Some(self.end_cycle(i, Ok(())).await);
                    }
                    return None;
                };
                // No offset change inside a window: local and UTC seconds run together.
                let cut = w.start + (before - calendar::local(w.start, self.op.timezone));
                let counted: Vec<_> = tally.dates.into_iter().filter(|d| *d < before).collect();
                self.read(i, w, cut, &counted);
                tracing::info!(
                    operation = %self.op.name,
                    report = %self.name(i),
                    counted_until = %before,
                    window_end = %w.end,
                    "response hit the 60,000-record cap in date order; reading on from its last second"
                );
                vec![calendar::Window { start: cut, end: w.end }]
            }
            Ok(Outcome::Cut(dates)) => {
                // Out of date order (or all in one second): its halves are read in full again,
                // and from then on the report's windows are planned by the rows per hour learned.
                if !dates.is_sorted() {
                    self.op.ledger().reports[i].density.unordered = true;
                }
                let (left, right) = w.split().expect("one-second windows are never cut");
                tracing::info!(
                    operation = %self.op.name,
                    report = %self.name(i),
                    window_start = %w.start,
                    window_end = %w.end,
                    parts = 2,
                    "response hit the 60,000-record cap out of date order; splitting the window"
                );
                vec![right, left]
            }
            Err(Stop::Shutdown) => return Some(Err(Stop::Shutdown)),
            Err(stop) => return Some(self.end_cycle(i, Err(stop)).await),
        };
        self.op.data().reports[i].health.splits += 1;
        if let Some(c) = self.reports[i].cycle.as_mut() {
            c.pending.extend(parts);
        }
        None
    }

    async fn end_cycle(&mut self, i: usize, result: Result<(), Stop>) -> Result<(), Stop> {
        let Some(cycle) = self.reports[i].cycle.take() else {
            return result;
        };
        let interval = self.reports[i].interval;
        let due = match &result {
            Ok(()) => cycle.started + interval,
            Err(Stop::Api(e)) if e.is_configuration() => cycle.started + interval.max(self.api.retry_max),
            Err(Stop::Quota) => {
                let due = self.quota_pause();
                let mut data = self.op.data();
                for (r, slot) in self.reports.iter_mut().zip(&mut data.reports) {
                    r.due = r.due.max(due);
                    // Waiting for the next day is where every report stands now.
                    slot.health.cycled = true;
                }
                due
            }
            Err(_) => cycle.started + interval,
        };
        self.reports[i].due = due;
        if matches!(result, Err(Stop::Paused)) {
            // Not a failure: the report waits, and its cycle starts again later.
            self.op.data().reports[i].health.cycled = true;
            return result;
        }
        let ok = result.is_ok();
        {
            let mut data = self.op.data();
            if ok {
                data.last_error = None;
                data.reports[i].health.last_success = Some(self.shared.clock.now());
            }
            let h = &mut data.reports[i].health;
            (h.up, h.cycled) = (ok, true);
        }
        self.forget_read(i);
        let advanced = self.op.ledger().reports[i].cursor != cycle.cursor_before;
        // (A daily report often has no day to read: its cycle then saves nothing.)
        if advanced || (ok && cycle.read) {
            self.shared.saver.save().await;
        }
        result
    }

    /// Forgets the rows of report `i` that no later read can return: it keeps those
    /// the next overlap re-read can, plus any DST step back.
    fn forget_read(&self, i: usize) {
        let tz = self.op.timezone;
        let mut ledger = self.op.ledger();
        let l = &mut ledger.reports[i];
        if let Some(c) = l.cursor {
            let keep = c - span(self.poll.overlap) - calendar::max_backward_step(tz, c);
            l.prune(calendar::local_secs(calendar::local(keep, tz)));
        }
    }

    /// How long the spent allowance pauses every report: until the operation's next
    /// local day, re-checked at least hourly since the clock may jump.
    fn quota_pause(&self) -> Instant {
        let now = self.shared.clock.now();
        let until = calendar::next_local_midnight(now, self.op.timezone);
        tracing::warn!(
            operation = %self.op.name,
            resume_at = %until,
            "daily request allowance spent; pausing until the operation's next local day"
        );
        let left = (until - now).to_std().unwrap_or_default() + Duration::from_secs(1);
        Instant::now() + left.min(Duration::from_secs(3600))
    }
}
