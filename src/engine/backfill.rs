//! The engine's side of a backfill (`crate::backfill`): one report read over a fixed
//! range, from its cursor, oldest window first and with no overlap, its pages counted
//! step by step into a timeline. The windows, the cap splits, the allowance, pacing,
//! the token's lock and the retries are the polling's own.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Engine, Stop, Timeline};
use crate::reports::ReportName;

/// How a report's cycle (or backfill) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Done,
    /// The day's allowance is spent, or what is left of it is kept for polling.
    Allowance,
    Failed(String),
    Interrupted,
}

impl Ended {
    pub(super) fn of(result: &Result<(), Stop>) -> Ended {
        match result {
            Ok(()) => Ended::Done,
            Err(Stop::Quota | Stop::Paused) => Ended::Allowance,
            Err(Stop::Api(e)) => Ended::Failed(e.to_string()),
            Err(Stop::Shutdown) => Ended::Interrupted,
        }
    }
}

impl Engine {
    /// The engine as the backfill uses it: it spends only what leaves every report of
    /// the operation its polling for the rest of the local day.
    pub fn for_backfill(mut self) -> Self {
        self.reserve_all = true;
        self
    }

    /// The reports a backfill reads, in priority order: those read in windows (a daily
    /// report compares whole days once the exporter runs).
    pub fn windowed_reports(&self) -> Vec<ReportName> {
        (0..self.reports.len())
            .filter(|&i| self.windowed(i))
            .map(|i| self.name(i))
            .collect()
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
    ) -> Ended {
        let Some(i) = (0..self.reports.len()).find(|&i| self.name(i) == report) else {
            return Ended::Done;
        };
        let cursor = self.op.ledger().reports[i].cursor;
        let from = cursor.unwrap_or(start).max(start);
        if from >= end {
            return Ended::Done;
        }
        let windows = self.planned_windows(i, from, end - chrono::Duration::seconds(1));
        self.begin_cycle(i, windows, cursor);
        self.reports[i].ended = None;
        self.timeline = Some(timeline);
        let ended = loop {
            if let Err(Stop::Shutdown) = self.step(i).await {
                break Ended::Interrupted;
            }
            self.forget_read(i);
            after_window();
            if self.reports[i].cycle.is_none() {
                break self.reports[i].ended.clone().unwrap_or(Ended::Done);
            }
        };
        self.timeline = None;
        ended
    }
}
