//! The exporter's own store, one entry per operation: each enabled report's counters and
//! health, the agents the reports name, the day's request count, and the ledger of
//! cursors and remembered rows. Metrics are rendered from it; the state file is a
//! snapshot of it.

mod density;
mod health;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use foldhash::fast::RandomState;

pub use density::Density;
pub use health::{DailyUse, ReportHealth, API_LATENCY_BUCKETS};

use crate::reports::agents::Agents;
use crate::reports::{Counters, DynReport, Identity, ReportName, Schedule};

/// What the engine alone writes (and the state saves): per report, in the operation's
/// report order, the cursor and the rows already read.
#[derive(Debug, Default)]
pub struct Ledger {
    pub reports: Vec<ReportLedger>,
}

#[derive(Debug, Default)]
pub struct ReportLedger {
    /// Every row dated before this instant has been fetched at least once.
    pub cursor: Option<DateTime<Utc>>,
    /// Where the report's first catch-up began: rows dated earlier were never read.
    pub since: Option<DateTime<Utc>>,
    /// Rows per local hour, to plan windows that stay under the cap.
    pub density: Density,
    /// Identities of rows already counted or rejected, with the local date (seconds)
    /// after which they may be forgotten.
    pub seen: HashMap<Identity, i64, RandomState>,
}

impl ReportLedger {
    /// Forgets identities dated before `keep_from` (local seconds).
    pub fn prune(&mut self, keep_from: i64) {
        self.seen.retain(|_, date| *date >= keep_from);
        // After a catch-up the map has room for every row of it; give that back.
        if self.seen.capacity() > 4 * self.seen.len() + 4096 {
            self.seen.shrink_to(2 * self.seen.len());
        }
    }
}

/// One enabled report of an operation.
#[derive(Debug)]
pub struct ReportSlot {
    pub report: Arc<dyn DynReport>,
    pub schedule: Schedule,
    /// How often its cycle starts.
    pub interval: Duration,
    pub counters: Counters,
    pub health: ReportHealth,
}

impl ReportSlot {
    pub fn name(&self) -> ReportName {
        self.report.name()
    }
}

/// What the renderer reads.
#[derive(Debug)]
pub struct OpData {
    pub agents: Agents,
    /// The enabled reports, in priority order.
    pub reports: Vec<ReportSlot>,
    pub daily: DailyUse,
    /// Requests a day the configured reports will spend at steady state.
    pub planned_daily: u64,
    /// The last failure, for the landing page.
    pub last_error: Option<String>,
    /// Times the operation's poller ended unexpectedly and was restarted.
    pub restarts: u64,
}

impl OpData {
    /// The position of report `name`, when enabled.
    pub fn position(&self, name: ReportName) -> Option<usize> {
        self.reports.iter().position(|s| s.name() == name)
    }

    /// 1 when the last cycle of every enabled report succeeded; a report paused to keep
    /// the allowance for the reports before it has not failed.
    pub fn up(&self) -> bool {
        self.reports.iter().filter(|s| !s.health.paused).all(|s| s.health.up)
    }
}

/// Everything about one operation.
#[derive(Debug)]
pub struct OperationStore {
    pub name: String,
    pub timezone: Tz,
    /// licenses x 1000.
    pub daily_limit: u64,
    ledger: Mutex<Ledger>,
    data: Mutex<OpData>,
    generation: Arc<AtomicU64>,
}

impl OperationStore {
    /// Locks the ledger. Lock order: the ledger before the data.
    pub fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Locks the data for a change. The store's generation moves on once it is locked:
    /// the renderer reads the generation before it locks, so what it renders under a
    /// generation holds every change that generation counts.
    pub fn data(&self) -> MutexGuard<'_, OpData> {
        let guard = self.read();
        self.generation.fetch_add(1, Ordering::AcqRel);
        guard
    }

    /// Locks the data to read it, without marking a change.
    pub fn read(&self) -> MutexGuard<'_, OpData> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// All operations, with a generation number that changes whenever anything does, so
/// the rendered exposition can be cached until then.
#[derive(Debug)]
pub struct Store {
    ops: Vec<Arc<OperationStore>>,
    generation: Arc<AtomicU64>,
    pub save_failures: AtomicU64,
}

/// What a new operation starts from.
#[derive(Debug)]
pub struct NewOperation {
    pub name: String,
    pub timezone: Tz,
    pub daily_limit: u64,
    pub ledger: Ledger,
    pub data: OpData,
}

impl Store {
    pub fn new(ops: Vec<NewOperation>) -> Self {
        let generation = Arc::new(AtomicU64::new(1));
        Store {
            ops: ops
                .into_iter()
                .map(|op| {
                    Arc::new(OperationStore {
                        name: op.name,
                        timezone: op.timezone,
                        daily_limit: op.daily_limit,
                        ledger: Mutex::new(op.ledger),
                        data: Mutex::new(op.data),
                        generation: generation.clone(),
                    })
                })
                .collect(),
            generation,
            save_failures: AtomicU64::new(0),
        }
    }

    pub fn operations(&self) -> &[Arc<OperationStore>] {
        &self.ops
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Marks a change made outside an operation (a failed save).
    pub fn touch(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}
