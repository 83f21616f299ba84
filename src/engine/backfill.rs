//! The engine's side of a backfill (`crate::backfill`): one report read over a fixed
//! range, from its cursor, oldest window first and with no overlap, its pages counted
//! step by step into a timeline. The windows, the cap splits, the allowance, pacing,
//! the token's lock and the retries are the polling's own.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Engine, Stop};
use crate::config::{Config, OperationConfig};
use crate::reports::{ReportName, Timeline};
use crate::store::OperationStore;

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
    /// An engine for the backfill: it spends only what leaves every report of the
    /// operation its polling for the rest of the local day.
    pub fn for_backfill(
        op: Arc<OperationStore>,
        config: &OperationConfig,
        global: &Config,
        shared: super::Shared,
    ) -> Self {
        let mut engine = Engine::new(op, config, global, shared);
        engine.reserve_all = true;
        engine
    }

    /// The reports a backfill reads, in priority order: those read in windows (not
    /// agent_12, which compares whole days once the exporter runs).
    pub fn windowed_reports(&self) -> Vec<ReportName> {
        self.reports
            .iter()
            .filter(|r| !r.ingest.daily())
            .map(|r| r.ingest.name())
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
        let Some(i) = self.reports.iter().position(|r| r.ingest.name() == report) else {
            return Ended::Done;
        };
        let cursor = self.op.ledger().reports[report].cursor;
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
            self.forget_read(report);
            after_window();
            if self.reports[i].cycle.is_none() {
                break self.reports[i].ended.clone().unwrap_or(Ended::Done);
            }
        };
        self.timeline = None;
        ended
    }
}
