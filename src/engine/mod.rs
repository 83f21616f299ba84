//! One engine per operation. It owns what every report of the operation shares: the
//! windows it asks for (31-day chunks, halved at the 60,000-row cap), the token's single
//! request in flight, pacing, the daily allowance, retries with backoff and jitter, a
//! cursor per report, and the state saves. It knows no report's fields: a page's bytes
//! go to the report's [`Ingest`] and come back as a tally.

mod backfill;
pub mod density;
pub mod limits;
pub mod plan;
mod request;
mod saver;
pub mod windows;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};
use governor::DefaultDirectRateLimiter;
use tokio::sync::watch;
use tokio::time::Instant;

pub use backfill::Ended;
pub use saver::Saver;

use crate::client::{ApiError, Client};
use crate::clock::Clock;
use crate::config::{ApiConfig, Config, OperationConfig, PollConfig, ReportConfig};
use crate::reports::fields::local_secs;
use crate::reports::{kind, Ingest, ReportName, Timeline};
use crate::store::OperationStore;
use windows::Window;

/// Why a cycle stopped early.
#[derive(Debug)]
enum Stop {
    Api(ApiError),
    /// The day's allowance is spent (or the API said so): wait for the next local day.
    Quota,
    /// What is left of the day's allowance is kept for earlier reports.
    Paused,
    Shutdown,
}

/// A window read, with the local dates of the rows it held.
enum Fetched {
    Done(Vec<chrono::NaiveDateTime>),
    /// Cut at the cap: the dates of the rows sent.
    Truncated(Vec<chrono::NaiveDateTime>),
}

/// A report of the operation and where its cycles stand.
#[derive(Debug)]
struct Scheduled {
    ingest: Arc<dyn Ingest>,
    interval: Duration,
    /// When the next cycle may start.
    due: Instant,
    cycle: Option<Cycle>,
    /// When it last read a window, so that reports with work take turns.
    last_step: Instant,
    /// How its last cycle ended.
    ended: Option<Ended>,
}

/// One pass of a report from its cursor up to now.
#[derive(Debug)]
struct Cycle {
    started: Instant,
    /// Windows still to read, the next one last.
    pending: Vec<Window>,
    cursor_before: Option<DateTime<Utc>>,
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
    reports: Vec<Scheduled>,
    /// The reports' settings, in the same (priority) order.
    plan: Vec<ReportConfig>,
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
    pub fn new(
        op: Arc<OperationStore>,
        config: &OperationConfig,
        global: &Config,
        shared: Shared,
    ) -> Self {
        let now = Instant::now();
        let reports = config
            .reports
            .iter()
            .map(|r| Scheduled {
                ingest: (kind(r.name).build)(&global.metrics),
                interval: r.interval,
                due: now,
                cycle: None,
                last_step: now,
                ended: None,
            })
            .collect();
        Engine {
            op,
            client: Client::new(config, global.api.timeout, global.api.max_body_bytes),
            reports,
            plan: config.reports.clone(),
            poll: global.poll.clone(),
            api: global.api.clone(),
            allowance: limits::daily_allowance(config.daily_limit(), global.api.daily_reserve),
            pacer: limits::pacer(global.api.requests_per_second),
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
            let result = match next {
                Some(i) => self.step(i).await,
                None => {
                    let due = self.reports.iter().map(|r| r.due).min();
                    self.sleep_until(due.unwrap_or(now + self.poll.interval))
                        .await
                }
            };
            if matches!(result, Err(Stop::Shutdown)) {
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

    fn name(&self, i: usize) -> ReportName {
        self.reports[i].ingest.name()
    }

    /// Plans a cycle of report `i`: `[cursor - overlap, now - delay]`, or the catch-up
    /// period before now when the report has no cursor yet.
    fn start_cycle(&mut self, i: usize) {
        let now = self
            .shared
            .clock
            .now()
            .duration_trunc(chrono::Duration::seconds(1))
            .expect("truncating to seconds");
        let span = |d: Duration| chrono::Duration::from_std(d).unwrap_or_default();
        let cursor = self.op.ledger().reports[self.name(i)].cursor;
        let mut pending = if self.reports[i].ingest.daily() {
            self.days_to_reconcile(now)
        } else {
            let end = now - span(self.poll.delay);
            let start = match cursor {
                Some(c) => c - span(self.poll.overlap),
                None => now - span(self.poll.catch_up),
            };
            // Each window cut to about the rows a request should carry, by the density
            // learned so far.
            let density = self.op.ledger().reports[self.name(i)].density.clone();
            windows::plan(start, end, self.op.timezone)
                .into_iter()
                .flat_map(|w| density.cut(w, self.op.timezone))
                .collect()
        };
        pending.reverse();
        self.reports[i].cycle = Some(Cycle {
            started: Instant::now(),
            pending,
            cursor_before: cursor,
        });
    }

    /// The local days a daily report (agent_12) may read now, oldest first, each one
    /// window: after the one it read last (from the first day agent_13 read whole), each
    /// whose end lies `reconcile_delay` in the past and before agent_13's cursor.
    fn days_to_reconcile(&self, now: DateTime<Utc>) -> Vec<Window> {
        let tz = self.op.timezone;
        let (since, through, done) = {
            let ledger = self.op.ledger();
            let a13 = &ledger.reports[ReportName::agent_13];
            (
                a13.since,
                a13.cursor,
                ledger.reports[ReportName::agent_12].cursor,
            )
        };
        let (Some(since), Some(through)) = (since, through) else {
            return Vec::new();
        };
        let delay = chrono::Duration::from_std(self.poll.reconcile_delay).unwrap_or_default();
        let mut day = match done {
            Some(next) => limits::local_day(next, tz),
            // The first day that begins at or after the first catch-up.
            None => {
                let first = limits::local_day(since, tz);
                if limits::day_start(first, tz) >= since {
                    first
                } else {
                    first + chrono::Days::new(1)
                }
            }
        };
        let mut out = Vec::new();
        loop {
            let start = limits::day_start(day, tz);
            let end =
                limits::day_start(day + chrono::Days::new(1), tz) - chrono::Duration::seconds(1);
            if end + delay > now || end >= through {
                return out;
            }
            out.push(Window { start, end });
            day = day + chrono::Days::new(1);
        }
    }

    /// Reads the next window of report `i`'s cycle, starting the cycle if needed.
    async fn step(&mut self, i: usize) -> Result<(), Stop> {
        self.reports[i].last_step = Instant::now();
        if self.reports[i].cycle.is_none() {
            self.start_cycle(i);
        }
        let next = self.reports[i].cycle.as_mut().and_then(|c| c.pending.pop());
        let Some(w) = next else {
            return self.end_cycle(i, Ok(())).await;
        };
        match self.fetch_window(i, w).await {
            Ok(Fetched::Done(dates)) => {
                let next = w.end + chrono::Duration::seconds(1);
                self.learn(i, w, next, &dates);
                self.advance(i, w.start, next);
                let done = self.reports[i]
                    .cycle
                    .as_ref()
                    .is_some_and(|c| c.pending.is_empty());
                if done {
                    self.end_cycle(i, Ok(())).await?;
                }
                Ok(())
            }
            Ok(Fetched::Truncated(dates)) => {
                let parts = self.split(i, w, &dates);
                self.op.data().report(self.name(i)).health.splits += 1;
                tracing::info!(
                    operation = %self.op.name,
                    report = %self.name(i),
                    window_start = %w.start,
                    window_end = %w.end,
                    parts = parts.len(),
                    "response hit the 60,000-record cap; splitting the window"
                );
                if let Some(c) = self.reports[i].cycle.as_mut() {
                    c.pending.extend(parts.into_iter().rev());
                }
                Ok(())
            }
            Err(Stop::Shutdown) => Err(Stop::Shutdown),
            Err(stop) => self.end_cycle(i, Err(stop)).await,
        }
    }

    /// Learns how many rows report `i` holds per hour from `dates`, the rows of `w` up
    /// to `until` (the whole window, or the part a cut page covers).
    fn learn(
        &mut self,
        i: usize,
        w: Window,
        until: DateTime<Utc>,
        dates: &[chrono::NaiveDateTime],
    ) {
        let name = self.name(i);
        self.op.ledger().reports[name]
            .density
            .learn(w, until, dates, self.op.timezone);
    }

    /// The parts to read instead of a window cut at the cap. When the page's dates come
    /// in order, as the API sends them, every row before the last date is in it: that
    /// part is read as one window, and the rest cut to the learned density. Otherwise
    /// the window is halved. Either way every part is read in full again, so no count
    /// depends on the order the API sends rows in.
    fn split(&mut self, i: usize, w: Window, dates: &[chrono::NaiveDateTime]) -> Vec<Window> {
        let tz = self.op.timezone;
        let halves = |w: Window| {
            let (left, right) = w.split().expect("one-second windows are never truncated");
            vec![left, right]
        };
        let in_order = dates.windows(2).all(|d| d[0] <= d[1]);
        let (Some(last), true) = (dates.last(), in_order) else {
            return halves(w);
        };
        // No offset change inside a window: local and UTC seconds run together.
        let cut = w.start + (*last - windows::local(w.start, tz));
        if cut <= w.start || cut > w.end {
            return halves(w);
        }
        let before: Vec<_> = dates.iter().copied().filter(|d| d < last).collect();
        self.learn(i, w, cut, &before);
        let left = Window {
            start: w.start,
            end: cut - chrono::Duration::seconds(1),
        };
        let right = Window {
            start: cut,
            end: w.end,
        };
        let density = self.op.ledger().reports[self.name(i)].density.clone();
        let mut parts = vec![left];
        parts.extend(density.cut(right, tz));
        parts
    }

    /// Moves report `i`'s cursor to `next` once every row before it, from the window
    /// starting at `start`, has been read.
    fn advance(&mut self, i: usize, start: DateTime<Utc>, next: DateTime<Utc>) {
        let name = self.name(i);
        let mut ledger = self.op.ledger();
        let l = &mut ledger.reports[name];
        if l.cursor.is_none() && l.since.is_none() {
            l.since = Some(start);
        }
        if l.cursor.is_none_or(|c| c < next) {
            l.cursor = Some(next);
            self.op.data().report(name).health.watermark = Some(next);
        }
    }

    async fn end_cycle(&mut self, i: usize, result: Result<(), Stop>) -> Result<(), Stop> {
        let name = self.name(i);
        let Some(cycle) = self.reports[i].cycle.take() else {
            return Ok(());
        };
        self.reports[i].ended = Some(Ended::of(&result));
        let interval = self.reports[i].interval;
        let due = match &result {
            Ok(()) => cycle.started + interval,
            Err(Stop::Api(e)) if e.is_configuration() => {
                cycle.started + interval.max(self.api.retry_max)
            }
            Err(Stop::Quota) => {
                let due = self.quota_pause();
                let mut data = self.op.data();
                for r in &mut self.reports {
                    r.due = r.due.max(due);
                    // Waiting for the next day is where every report stands now.
                    data.report(r.ingest.name()).health.cycled = true;
                }
                due
            }
            Err(_) => cycle.started + interval,
        };
        self.reports[i].due = due;
        if matches!(result, Err(Stop::Paused)) {
            // Not a failure: the report waits, and its cycle starts again later.
            self.op.data().report(name).health.cycled = true;
            return Ok(());
        }
        let ok = result.is_ok();
        {
            let mut data = self.op.data();
            if ok {
                data.last_error = None;
            }
            let h = &mut data.report(name).health;
            h.up = ok;
            h.cycled = true;
            if ok {
                h.last_success = Some(self.shared.clock.now());
            }
        }
        self.forget_read(name);
        let advanced = self.op.ledger().reports[name].cursor != cycle.cursor_before;
        if advanced || ok {
            self.shared.saver.save().await;
        }
        Ok(())
    }

    /// Forgets the rows of report `name` that no later read can return: it keeps those
    /// the next overlap re-read can, plus any DST step back.
    fn forget_read(&self, name: ReportName) {
        let tz = self.op.timezone;
        let mut ledger = self.op.ledger();
        let l = &mut ledger.reports[name];
        if let Some(c) = l.cursor {
            let keep = c
                - chrono::Duration::from_std(self.poll.overlap).unwrap_or_default()
                - windows::max_backward_step(tz, c);
            l.prune(local_secs(windows::local(keep, tz)));
        }
    }

    /// How long the spent allowance pauses every report: until the operation's next
    /// local day, re-checked at least hourly since the clock may jump.
    fn quota_pause(&self) -> Instant {
        let now = self.shared.clock.now();
        let until = limits::next_local_midnight(now, self.op.timezone);
        tracing::warn!(
            operation = %self.op.name,
            resume_at = %until,
            "daily request allowance spent; pausing until the operation's next local day"
        );
        let left = (until - now).to_std().unwrap_or_default() + Duration::from_secs(1);
        Instant::now() + left.min(Duration::from_secs(3600))
    }
}
