//! One request of the engine: the allowance, pacing and the token's lock first, then
//! the page goes to its report off the async workers; retries, and the one place where
//! each failure is counted and logged.

use rand::Rng;
use tokio::time::Instant;

use super::ingest::{ingest, Outcome, PageSpec, Tally, Timeline};
use super::{Engine, Stop};
use crate::calendar::{self, Window};
use crate::client::{ApiError, RECORD_CAP};
use crate::config::plan;
use crate::reports::ReportName;
use crate::store::API_LATENCY_BUCKETS;

/// The least time past the delay after which a counted row is late: polls seconds apart
/// take seconds each (the API's answers, the other reports' turns), which two short
/// intervals would not cover.
pub const LATE_SLACK: std::time::Duration = std::time::Duration::from_secs(120);

impl Engine {
    /// Reads one window, retrying transient failures with backoff and jitter.
    pub(super) async fn fetch_window(&mut self, i: usize, w: Window) -> Result<Outcome, Stop> {
        let mut backoff = self.api.retry_initial;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.request(i, w).await {
                Err(Stop::Api(e)) if !e.is_configuration() && attempt <= self.api.retry_attempts => {
                    let jittered = backoff.mul_f64(rand::rng().random_range(0.5..1.0));
                    tracing::debug!(
                        operation = %self.op.name,
                        report = %self.name(i),
                        attempt,
                        wait_ms = jittered.as_millis() as u64,
                        "retrying"
                    );
                    self.sleep_until(Instant::now() + jittered).await?;
                    backoff = (backoff * 2).min(self.api.retry_max);
                }
                other => return other,
            }
        }
    }

    /// One request outside any cycle, for `check`: report `i` over the local window
    /// `[ini, end]`, or the token's information when `i` is `None`; sent at the pace
    /// allowed, holding the token's lock. Nothing is counted; errors hold no token.
    pub async fn probe(
        &self,
        i: Option<usize>,
        ini: chrono::NaiveDateTime,
        end: chrono::NaiveDateTime,
    ) -> Result<(u16, Vec<u8>), ApiError> {
        self.pacer.until_ready().await;
        let _in_flight = self.shared.token_lock.lock().await;
        let answer = match i {
            Some(i) => self.client.fetch(self.name(i).as_str(), ini, end).await,
            None => self.client.token_info().await,
        };
        answer.map_err(|e| self.client.redact(e))
    }

    /// Takes one request of the day's allowance for report `i`, unless it is spent, or
    /// unless what is left is what the earlier reports need for the rest of the day
    /// (then report `i` pauses, which shows in `wolkvox_report_paused` and the log).
    fn spend(&mut self, i: usize) -> Result<(), Stop> {
        let name = self.name(i);
        let today = self.today();
        let earlier = if self.reserve_all { self.reports.len() } else { i };
        let reserved = self.reserved_until_midnight(earlier);
        let mut data = self.op.data();
        if !data.daily.may_request(today, self.allowance) {
            data.last_error = Some("daily request allowance spent".into());
            return Err(Stop::Quota);
        }
        let used = data.daily.used;
        let paused = used + 1 + reserved > self.allowance;
        let slot = &mut data.reports[i];
        if paused != slot.health.paused {
            slot.health.paused = paused;
            if paused {
                tracing::warn!(
                    operation = %self.op.name,
                    report = %name,
                    used,
                    allowance = self.allowance,
                    reserved,
                    "report paused: what is left of today's allowance is kept for the reports before it"
                );
            } else {
                tracing::info!(operation = %self.op.name, report = %name, "report resumed");
            }
        }
        if paused {
            Err(Stop::Paused)
        } else {
            Ok(())
        }
    }

    /// What the first `reports` need for their polling until the operation's midnight.
    pub(super) fn reserved_until_midnight(&self, reports: usize) -> u64 {
        let now = self.shared.clock.now();
        let left = (calendar::next_local_midnight(now, self.op.timezone) - now).num_seconds();
        let polled: Vec<_> = self.reports[..reports].iter().map(|r| (r.schedule, r.interval)).collect();
        plan::reserved(&polled, left.max(0) as u64)
    }

    /// One request of report `i` for `w`, in the order the module's doc gives.
    async fn request(&mut self, i: usize, w: Window) -> Result<Outcome, Stop> {
        let name = self.name(i);
        let (ini, end) = w.local_bounds(self.op.timezone);
        self.spend(i)?;
        let mut shutdown = self.shared.shutdown.clone();
        let token_lock = self.shared.token_lock.clone();
        let in_flight = tokio::select! {
            g = async { self.pacer.until_ready().await; token_lock.lock().await } => g,
            _ = shutdown.changed() => return Err(Stop::Shutdown),
        };
        let started = std::time::Instant::now();
        let fetched = tokio::select! {
            r = self.client.fetch(name.as_str(), ini, end) => Some(r),
            // Abandoned at shutdown: it was sent, so it still cost a request.
            _ = shutdown.changed() => None,
        };
        drop(in_flight);
        {
            let mut data = self.op.data();
            let sent = match &fetched {
                None | Some(Ok(_)) => true,
                Some(Err(e)) => e.was_sent(),
            };
            if sent {
                data.daily.used += 1;
            }
            let h = &mut data.reports[i].health;
            h.requests += 1;
            if fetched.is_some() {
                h.latency.observe(&API_LATENCY_BUCKETS, started.elapsed().as_secs_f64());
            }
        }
        let (status, body) = fetched.ok_or(Stop::Shutdown)?.map_err(|e| self.failed(i, e, ini, end))?;
        let (op, timeline) = (self.op.clone(), self.timeline.clone());
        let spec = PageSpec {
            ini,
            end,
            may_split: w.seconds() > 1,
            late_before: self.late_before(i),
            overlap: super::span(self.poll.overlap),
        };
        let counted = tokio::task::spawn_blocking(move || {
            let mut timeline = timeline.as_ref().map(|t| t.lock().unwrap_or_else(|p| p.into_inner()));
            let timeline = timeline.as_deref_mut().map(|t| t as &mut dyn Timeline);
            ingest(&op, i, status, &body, spec, timeline)
        })
        .await;
        let outcome = match counted {
            Ok(result) => result.map_err(|e| self.client.redact(e)),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => return Err(Stop::Shutdown),
        };
        if let Ok(Outcome::Counted(tally)) = &outcome {
            self.log_page(name, ini, tally);
        }
        outcome.map_err(|e| self.failed(i, e, ini, end))
    }

    /// Rows dated before this local time are late when counted now: more than the delay
    /// and two of the report's polls (at least [`LATE_SLACK`]) after their date. A
    /// backfill counts nothing late.
    fn late_before(&self, i: usize) -> Option<chrono::NaiveDateTime> {
        if self.timeline.is_some() {
            return None;
        }
        let after = self.poll.delay + (2 * self.reports[i].interval).max(LATE_SLACK);
        let before = self.shared.clock.now() - chrono::Duration::from_std(after).ok()?;
        Some(calendar::local(before, self.op.timezone))
    }

    fn log_page(&self, name: ReportName, ini: chrono::NaiveDateTime, tally: &Tally) {
        if tally.received >= RECORD_CAP as u64 {
            tracing::error!(
                operation = %self.op.name,
                report = %name,
                second = %ini,
                "one second holds 60,000 records or more; records past the cap cannot be read"
            );
        }
        if tally.overflowed > 0 {
            tracing::warn!(
                operation = %self.op.name,
                report = %name,
                records = tally.overflowed,
                "agents past max_agents; their records are counted under agent_id=\"_overflow\""
            );
        }
        self.log_notices(name, &tally.notices);
        let invalid: Vec<_> =
            tally.invalid.iter().filter(|(_, n)| **n > 0).map(|(r, n)| format!("{r:?}={n}")).collect();
        if !invalid.is_empty() {
            tracing::debug!(operation = %self.op.name, report = %name, invalid = %invalid.join(","), "records rejected");
        }
    }

    /// Logs what a report said it did besides counting.
    pub(super) fn log_notices(&self, name: ReportName, notices: &[crate::reports::Notice]) {
        for notice in notices {
            if notice.warning {
                tracing::warn!(operation = %self.op.name, report = %name, "{}", notice.message);
            } else {
                tracing::info!(operation = %self.op.name, report = %name, "{}", notice.message);
            }
        }
    }

    /// Counts and logs a failed request; what the cycle does next.
    fn failed(&self, i: usize, e: ApiError, ini: chrono::NaiveDateTime, end: chrono::NaiveDateTime) -> Stop {
        let (name, quota) = (self.name(i), matches!(e, ApiError::QuotaExceeded(_)));
        {
            let mut data = self.op.data();
            data.reports[i].health.errors[e.reason()] += 1;
            data.last_error = Some(format!("{name}: {e}"));
            data.daily.exhausted |= quota;
        }
        let reason = e.reason().as_str();
        if e.is_configuration() {
            tracing::error!(operation = %self.op.name, report = %name, reason, error = %e, "API request refused: check the operation's configuration");
        } else {
            tracing::warn!(operation = %self.op.name, report = %name, reason, error = %e, date_ini = %ini, date_end = %end, "API request failed");
        }
        if quota {
            Stop::Quota
        } else {
            Stop::Api(e)
        }
    }
}
