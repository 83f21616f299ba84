//! Drives any [`Report`] through one page: decode, set aside the rows already counted,
//! check and fold the rest outside the store's lock, then apply the page in one step.

use std::collections::HashSet;
use std::fmt;

use chrono::NaiveDateTime;
use enum_map::EnumMap;
use foldhash::fast::RandomState;

use super::fields::local_secs;
use super::{Counters, Identity, InvalidReason, Key, Report, ReportName};
use crate::client::{interpret, Answer, ApiError, Item, RECORD_CAP};
use crate::store::{OpData, OperationStore};

/// The window a page was asked for, in operation-local time, both ends inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalWindow {
    pub ini: NaiveDateTime,
    pub end: NaiveDateTime,
}

/// What one page did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageOutcome {
    /// The 404 "no records" answer.
    Empty,
    /// A full page: the window must be split and read again, nothing was counted. The
    /// local dates of its rows, in the order sent, tell where to split.
    Truncated {
        rows: u64,
        dates: Vec<NaiveDateTime>,
    },
    Counted(Tally),
}

/// How a page's rows ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub received: u64,
    pub counted: u64,
    pub duplicate: u64,
    pub invalid: EnumMap<InvalidReason, u64>,
    /// Counted under the overflow agent (`max_agents` reached).
    pub overflowed: u64,
    /// The local dates of the page's rows (those that have one), for the engine's
    /// estimate of how many rows each hour holds.
    pub dates: Vec<NaiveDateTime>,
}

/// Takes a page's rows in time order, one step of the backfill's `--step` at a time, so
/// that it can see the store as it stood at each step's start (`crate::backfill`).
pub trait Timeline: Send + fmt::Debug {
    /// The step a row dated `date` (operation-local) falls in.
    fn step_of(&self, date: NaiveDateTime) -> u32;
    /// The rows of `step` are counted next: the store holds every row of the earlier
    /// steps read so far. Called with no store lock held.
    fn next_step(&mut self, step: u32);
}

/// A report as the engine sees it: bytes in, the operation's store changed.
pub trait Ingest: Send + Sync + fmt::Debug {
    fn name(&self) -> ReportName;
    /// Whether the report reads whole local days once each, after they end (agent_12),
    /// rather than windows from its cursor.
    fn daily(&self) -> bool {
        false
    }
    fn new_counters(&self) -> Box<dyn Counters>;
    /// Counters from the state file, with a warning when something was adjusted.
    fn restore(
        &self,
        saved: &serde_json::value::RawValue,
    ) -> Result<(Box<dyn Counters>, Option<String>), String>;
    /// Reads one answer for `window` and counts its new rows into `op`. With `may_split`
    /// a full page is not counted but reported as truncated. With a `timeline` the rows
    /// are counted in time order, a step at a time.
    fn ingest(
        &self,
        op: &OperationStore,
        status: u16,
        body: &[u8],
        window: LocalWindow,
        may_split: bool,
        timeline: Option<&mut dyn Timeline>,
    ) -> Result<PageOutcome, ApiError>;
}

/// Makes a [`Report`] an [`Ingest`].
#[derive(Debug)]
pub struct Runner<R>(pub R);

impl<R: Report> Ingest for Runner<R> {
    fn name(&self) -> ReportName {
        R::NAME
    }

    fn new_counters(&self) -> Box<dyn Counters> {
        Box::new(self.0.new_counters())
    }

    fn restore(
        &self,
        saved: &serde_json::value::RawValue,
    ) -> Result<(Box<dyn Counters>, Option<String>), String> {
        let counters: R::Counters =
            serde_json::from_str(saved.get()).map_err(|e| format!("unreadable counters: {e}"))?;
        let warning = self.0.check_restored(&counters)?;
        Ok((Box::new(counters), warning))
    }

    fn ingest(
        &self,
        op: &OperationStore,
        status: u16,
        body: &[u8],
        window: LocalWindow,
        may_split: bool,
        timeline: Option<&mut dyn Timeline>,
    ) -> Result<PageOutcome, ApiError> {
        let rows = match interpret::<R::Record<'_>>(status, body)? {
            Answer::Empty => {
                op.data().report(R::NAME).health.empty_responses += 1;
                return Ok(PageOutcome::Empty);
            }
            Answer::Records(rows) => rows,
        };
        let received = rows.len() as u64;
        if may_split && rows.len() >= RECORD_CAP {
            op.data().report(R::NAME).health.received += received;
            let dates = rows
                .iter()
                .filter_map(|item| match item {
                    Item::Record(row) => self.0.date(row),
                    Item::NotAnObject => None,
                })
                .collect();
            return Ok(PageOutcome::Truncated {
                rows: received,
                dates,
            });
        }

        // The engine is the only writer of its operation's ledger: holding it for the
        // page keeps a state save from seeing the rows counted but not remembered.
        let mut ledger = op.ledger();
        let seen = &ledger.reports[R::NAME].seen;
        let mut tally = Tally {
            received,
            ..Tally::default()
        };
        let (ini, end) = (local_secs(window.ini), local_secs(window.end));
        let mut on_page: HashSet<Identity, RandomState> =
            HashSet::with_capacity_and_hasher(rows.len(), RandomState::default());
        let mut remember: Vec<(Identity, i64)> = Vec::with_capacity(rows.len());
        let mut valid = Vec::with_capacity(rows.len());
        tally.dates.reserve(rows.len());
        for item in &rows {
            let Item::Record(row) = item else {
                // Nothing to identify it by: rejected again on every re-read.
                tally.invalid[InvalidReason::missing_field] += 1;
                continue;
            };
            let date = self.0.date(row);
            tally.dates.extend(date);
            let (id, complete) = match self.0.identity(row) {
                Key::Complete(id) => (id, true),
                Key::Incomplete(id) => (id, false),
            };
            if seen.contains_key(&id) || !on_page.insert(id) {
                tally.duplicate += 1;
                continue;
            }
            if !complete {
                remember.push((id, end));
                tally.invalid[InvalidReason::missing_field] += 1;
                continue;
            }
            // A row is remembered even when rejected, so a re-read of the overlap
            // neither counts it twice nor rejects it twice. It is forgotten after its
            // date when that lies in the window; otherwise after the window's end,
            // since any later read overlapping this window may return it again.
            let in_window = date.map(local_secs).filter(|d| (ini..=end).contains(d));
            remember.push((id, in_window.unwrap_or(end)));
            let Some(date) = date else {
                tally.invalid[InvalidReason::bad_date] += 1;
                continue;
            };
            match self.0.check(row) {
                Err(reason) => tally.invalid[reason] += 1,
                Ok(_) if in_window.is_none() => tally.invalid[InvalidReason::outside_window] += 1,
                Ok(change) => valid.push((change, date)),
            }
        }
        tally.counted = valid.len() as u64;
        match timeline {
            Some(timeline) if !valid.is_empty() => {
                valid.sort_by_key(|(_, date)| *date);
                let mut rest = valid.into_iter().peekable();
                while let Some((_, date)) = rest.peek() {
                    let step = timeline.step_of(*date);
                    timeline.next_step(step);
                    let group: Vec<_> =
                        std::iter::from_fn(|| rest.next_if(|(_, d)| timeline.step_of(*d) == step))
                            .collect();
                    let last = rest.peek().is_none();
                    self.apply(op, self.0.count(group), &mut tally, last);
                }
            }
            _ => self.apply(op, self.0.count(valid), &mut tally, true),
        }
        drop(rows);
        ledger.reports[R::NAME].seen.extend(remember);
        Ok(PageOutcome::Counted(tally))
    }
}

impl<R: Report> Runner<R> {
    /// Applies folded rows to the operation's counters and agents in one step; the
    /// `last` rows of a page also count the page in the report's health.
    fn apply(&self, op: &OperationStore, page: R::Page, tally: &mut Tally, last: bool) {
        let mut data = op.data();
        let OpData {
            agents, reports, ..
        } = &mut *data;
        let slot = reports[R::NAME]
            .as_mut()
            .expect("the engine reads only enabled reports");
        let counters = slot
            .counters
            .as_any_mut()
            .downcast_mut::<R::Counters>()
            .expect("a report's slot holds its own counters");
        let overflowed = self.0.apply(counters, agents, page);
        agents.overflow_records += overflowed;
        tally.overflowed += overflowed;
        if last {
            slot.health.count_page(tally);
        }
    }
}
