//! The engine's side of a backfill (`crate::backfill`): one report read over a fixed
//! range, from its cursor, oldest window first and with no overlap, its pages counted
//! step by step into a timeline. The windows, the cap splits, the allowance, pacing,
//! the token's lock and the retries are the polling's own.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Engine, Stop, Timeline};
use crate::calendar::Window;
use crate::config::plan;
use crate::reports::{ReportName, Schedule};

/// What a backfill may spend today: the allowance less today's use and what every
/// report's polling needs until the operation's midnight (what `spend` keeps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The day's allowance less the reserve, of the smaller of the configured limit and
    /// the API's (token_info).
    pub allowance: u64,
    /// Spent today: the larger of this process's count and the API's.
    pub used: u64,
    /// What the reports' polling needs until the operation's midnight.
    pub reserved: u64,
    /// What their polling needs in a whole day.
    pub daily_plan: u64,
}

impl Budget {
    pub fn left_today(&self) -> u64 {
        self.allowance.saturating_sub(self.used + self.reserved)
    }

    /// The days `requests` take at this pace (today first); `None`: the reports'
    /// polling leaves nothing on a whole day.
    pub fn days(&self, requests: u64) -> Option<u64> {
        let rest = requests.saturating_sub(self.left_today());
        if rest == 0 {
            return Some(1);
        }
        let per_day = self.allowance.saturating_sub(self.daily_plan);
        (per_day > 0).then(|| 1 + rest.div_ceil(per_day))
    }
}

impl Engine {
    /// The requests a backfill of each report over `[start, end)` needs from its
    /// cursor: one a window (31 days at most), more where a window is split at the cap.
    pub fn backfill_requests(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<(ReportName, u64)> {
        self.windowed().map(|i| (self.name(i), self.backfill_windows(i, start, end).len() as u64)).collect()
    }

    /// The windows of `[start, end)` a backfill of report `i` reads from its cursor.
    fn backfill_windows(&self, i: usize, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<Window> {
        let from = self.op.ledger().reports[i].cursor.unwrap_or(start).max(start);
        match from < end {
            true => self.planned_windows(i, from, end - chrono::Duration::seconds(1)),
            false => Vec::new(),
        }
    }

    pub fn budget(&self) -> Budget {
        let all: Vec<_> = self.reports.iter().map(|r| (r.schedule, r.interval)).collect();
        Budget {
            allowance: self.allowance,
            used: self.op.read().daily.clone().on(self.today()).used,
            reserved: self.reserved_until_midnight(self.reports.len()),
            daily_plan: plan::reserved(&all, 86_400),
        }
    }

    /// Takes in a `token_info` request (which cost one) and what it said: the
    /// allowance becomes that of the smaller limit, today's use the larger count.
    pub fn token_info_seen(&mut self, limit: Option<u64>, used_today: Option<u64>) {
        if let Some(limit) = limit {
            let api = plan::daily_allowance(limit, self.api.daily_reserve);
            self.allowance = self.allowance.min(api);
        }
        let today = self.today();
        let mut data = self.op.data();
        let daily = data.daily.on(today);
        daily.used = (daily.used + 1).max(used_today.unwrap_or(0));
    }

    /// The engine as the backfill uses it (see `reserve_all`).
    pub fn for_backfill(mut self) -> Self {
        self.reserve_all = true;
        self
    }

    /// The reports a backfill reads, in priority order: those read in windows (a daily
    /// report compares whole days once the exporter runs).
    pub fn windowed_reports(&self) -> Vec<ReportName> {
        self.windowed().map(|i| self.name(i)).collect()
    }

    fn windowed(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.reports.len()).filter(|&i| self.reports[i].schedule == Schedule::Windowed)
    }

    /// Reads `report` from its cursor (or `start`) up to `end` (excluded), counting
    /// each page into `timeline`; `after_window` runs after each window read.
    pub async fn backfill(
        &mut self,
        report: ReportName,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        timeline: Arc<std::sync::Mutex<dyn Timeline>>,
        mut after_window: impl FnMut(),
    ) -> Result<(), Stop> {
        let Some(i) = (0..self.reports.len()).find(|&i| self.name(i) == report) else {
            return Ok(());
        };
        let cursor = self.op.ledger().reports[i].cursor;
        let windows = self.backfill_windows(i, start, end);
        if windows.is_empty() {
            return Ok(());
        }
        self.begin_cycle(i, windows, cursor);
        self.timeline = Some(timeline);
        let ended = loop {
            let ended = self.step(i).await;
            if ended == Some(Err(Stop::Shutdown)) {
                break Err(Stop::Shutdown);
            }
            self.forget_read(i);
            after_window();
            if let Some(ended) = ended {
                break ended;
            }
        };
        self.timeline = None;
        ended
    }
}
