//! One answer through its report: the engine's sieve decides which rows count (the
//! ledger's identities, the window, the backfill's steps, lateness); the report decodes,
//! checks and folds outside the store's lock; each fold is applied in one step, and the
//! page is counted in the report's health here, once.

use std::collections::{HashMap, HashSet};
use std::fmt;

use chrono::NaiveDateTime;
use enum_map::EnumMap;
use foldhash::fast::RandomState;

use crate::calendar::local_secs;
use crate::client::{ApiError, RECORD_CAP};
use crate::reports::{
    Applied, Folded, Identity, InvalidReason, Key, Notice, Read, Schedule, Sieve, SourceDay,
};
use crate::store::{OpData, OperationStore};

/// The window a page was asked for, in operation-local time (both ends inclusive), and
/// how it is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSpec {
    pub ini: NaiveDateTime,
    pub end: NaiveDateTime,
    /// A full page is not counted but cut, to be read again in parts.
    pub may_split: bool,
    /// Rows dated before this arrived late; `None`: none is (a backfill).
    pub late_before: Option<NaiveDateTime>,
    /// `poll.overlap`: what waits for every row before an instant is counted once the
    /// reading has passed that instant by this much (a backfill's steps).
    pub overlap: chrono::Duration,
}

/// Takes a page's rows in time order, one step of the backfill's `--step` at a time, so
/// that it can see the store as it stood at each step's start (`crate::backfill`).
pub trait Timeline: Send + fmt::Debug {
    /// The step a row dated `date` (operation-local) falls in.
    fn step_of(&self, date: NaiveDateTime) -> u32;
    /// The rows of `step` are counted next: the store holds every row of the earlier
    /// steps read so far. Each boundary not yet recorded, up to the step's start, is
    /// recorded after `settle` has let the report count what waited for the rows
    /// before it (given the boundary's local time). Called with no store lock held.
    fn next_step(&mut self, step: u32, settle: &mut dyn FnMut(NaiveDateTime));
}

/// How a page ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A full page, not counted: the local dates of its rows, in the order sent.
    Cut(Vec<NaiveDateTime>),
    Counted(Tally),
}

/// How a page's rows ended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// The 404 "no records" answer.
    pub empty: bool,
    pub received: u64,
    pub counted: u64,
    pub duplicate: u64,
    pub invalid: EnumMap<InvalidReason, u64>,
    pub late: u64,
    /// Counted under the overflow agent (`max_agents` reached).
    pub overflowed: u64,
    /// A full page whose dates came in order: only its rows dated before this were
    /// counted (`deferred` the others); the window goes on from here.
    pub before: Option<NaiveDateTime>,
    pub deferred: u64,
    /// The local dates of the page's rows (those that have one), to learn the density.
    pub dates: Vec<NaiveDateTime>,
    pub notices: Vec<Notice>,
}

/// The engine's judgement of a page's rows against the report's ledger.
struct LedgerSieve<'a> {
    seen: &'a HashMap<Identity, i64, RandomState>,
    on_page: HashSet<Identity, RandomState>,
    /// Identities to remember, with the local date after which they may be forgotten.
    remember: Vec<(Identity, i64)>,
    /// A daily report's rows are the totals of the window's day: not identified.
    daily: bool,
    spec: PageSpec,
    /// The window's local seconds, both ends included.
    window: std::ops::RangeInclusive<i64>,
    timeline: Option<&'a dyn Timeline>,
    tally: Tally,
}

impl Sieve for LedgerSieve<'_> {
    /// A full page is cut: when its dates come in order (as the API sends them), every
    /// row dated before its last second is in it and counts now, the window going on from
    /// that second; otherwise nothing counts and the window is split.
    fn whole(&mut self, dates: &[Option<NaiveDateTime>]) -> bool {
        self.tally.received = dates.len() as u64;
        if !self.spec.may_split || dates.len() < RECORD_CAP {
            return true;
        }
        let in_order = dates.windows(2).all(|d| matches!(d, [Some(a), Some(b)] if a <= b));
        match (dates.first(), dates.last()) {
            (Some(Some(first)), Some(Some(last))) if in_order && first < last => {
                self.tally.before = Some(*last);
                true
            }
            _ => false,
        }
    }

    fn judge(&mut self, key: Key, date: Option<NaiveDateTime>) -> Option<NaiveDateTime> {
        if self.daily {
            return Some(self.spec.ini);
        }
        if let Some(before) = self.tally.before {
            if date.is_none_or(|d| d >= before) {
                // Read again with the rest of the window.
                self.tally.deferred += 1;
                return None;
            }
        }
        let (Key::Complete(id) | Key::Incomplete(id)) = key;
        if self.seen.contains_key(&id) || !self.on_page.insert(id) {
            self.tally.duplicate += 1;
            return None;
        }
        let end = *self.window.end();
        if let Key::Incomplete(_) = key {
            self.remember.push((id, end));
            self.rejected(InvalidReason::missing_field);
            return None;
        }
        // A row is remembered even when rejected, so a re-read of the overlap neither
        // counts it twice nor rejects it twice. It is forgotten after its date when that
        // lies in the window; otherwise after the window's end, since any later read
        // overlapping this window may return it again.
        let forget_after = date.filter(|d| self.in_window(*d)).map_or(end, local_secs);
        self.remember.push((id, forget_after));
        if date.is_none() {
            self.rejected(InvalidReason::bad_date);
        }
        date
    }

    fn rejected(&mut self, reason: InvalidReason) {
        self.tally.invalid[reason] += 1;
    }

    fn place(&mut self, date: NaiveDateTime) -> Option<(u32, bool)> {
        if !self.in_window(date) {
            self.rejected(InvalidReason::outside_window);
            return None;
        }
        let late = self.spec.late_before.is_some_and(|before| date < before);
        self.tally.counted += 1;
        self.tally.late += u64::from(late);
        Some((self.timeline.map_or(0, |t| t.step_of(date)), late))
    }
}

impl LedgerSieve<'_> {
    fn in_window(&self, date: NaiveDateTime) -> bool {
        self.window.contains(&local_secs(date))
    }
}

/// Reads one answer for report `index` of `op` and counts its new rows; with a
/// `timeline`, a step at a time.
pub fn ingest(
    op: &OperationStore,
    index: usize,
    status: u16,
    body: &[u8],
    spec: PageSpec,
    mut timeline: Option<&mut dyn Timeline>,
) -> Result<Outcome, ApiError> {
    let (report, daily) = {
        let data = op.read();
        let slot = &data.reports[index];
        (slot.report.clone(), matches!(slot.schedule, Schedule::DailyAfter { .. }))
    };
    // The engine is the only writer of its operation's ledger: holding it for the page
    // keeps a state save from seeing the rows counted but not remembered.
    let mut ledger = op.ledger();
    let mut sieve = LedgerSieve {
        seen: &ledger.reports[index].seen,
        on_page: HashSet::default(),
        remember: Vec::new(),
        daily,
        window: local_secs(spec.ini)..=local_secs(spec.end),
        spec,
        timeline: timeline.as_deref().map(|t| t as &dyn Timeline),
        tally: Tally::default(),
    };
    let read = report.read(status, body, &mut sieve)?;
    let LedgerSieve { remember, mut tally, .. } = sieve;
    let steps = match read {
        Read::Cut { dates } => {
            op.data().reports[index].health.received += tally.received;
            return Ok(Outcome::Cut(dates));
        }
        Read::Empty(fold) => {
            tally.empty = true;
            daily.then_some((0, fold)).into_iter().collect()
        }
        Read::Counted { steps, dates } => {
            tally.dates = dates;
            steps
        }
    };
    // The last fold and the page's health are applied under one lock: a save sees both
    // or neither.
    let mut last = None;
    for (step, fold) in steps {
        // Each step's lock is let go before the timeline settles the next boundaries.
        last = None;
        if let Some(t) = timeline.as_deref_mut() {
            // The store as it stood at each boundary up to the step's start: rows
            // before it counted, and what waited for them settled.
            t.next_step(step, &mut |at| tally.add(settle(&mut op.data(), index, at - spec.overlap)));
        }
        apply(&mut *last.insert(op.data()), index, fold, spec, &mut tally);
    }
    let mut data = last.unwrap_or_else(|| op.data());
    let h = &mut data.reports[index].health;
    h.received += tally.received;
    h.duplicate += tally.duplicate;
    h.late += tally.late;
    h.empty_responses += u64::from(tally.empty);
    for (reason, n) in &tally.invalid {
        h.invalid[reason] += n;
    }
    drop(data);
    ledger.reports[index].seen.extend(remember);
    Ok(Outcome::Counted(tally))
}

impl Tally {
    pub(super) fn add(&mut self, applied: Applied) {
        self.overflowed += applied.overflowed;
        self.notices.extend(applied.notices);
    }
}

/// Lets report `index` count what waited for every row dated before `until` to be read.
pub(super) fn settle(data: &mut OpData, index: usize, until: NaiveDateTime) -> Applied {
    let OpData { agents, reports, .. } = data;
    let slot = &mut reports[index];
    let applied = slot.report.settle(&mut slot.counters, agents, until);
    agents.overflow_records += applied.overflowed;
    applied
}

/// Applies one fold to report `index`'s counters; a daily report gets its source's
/// counts of the day, which the source then forgets.
fn apply(data: &mut OpData, index: usize, fold: Folded, spec: PageSpec, tally: &mut Tally) {
    let source = match data.reports[index].schedule {
        Schedule::DailyAfter { source } => data.position(source).map(|s| {
            let day = spec.ini.date();
            let start = data.agents.unix_time(spec.ini);
            let slot = &mut data.reports[s];
            let counts = slot.report.day_tallies(&mut slot.counters).and_then(|t| t.day(day));
            (s, SourceDay { day, start, counts })
        }),
        Schedule::Windowed => None,
    };
    let OpData { agents, reports, .. } = data;
    let slot = &mut reports[index];
    let applied = slot.report.apply(&mut slot.counters, agents, fold, source.as_ref().map(|(_, d)| d));
    agents.overflow_records += applied.overflowed;
    tally.add(applied);
    if let Some((s, SourceDay { day, counts: Some(_), .. })) = source {
        let slot = &mut reports[s];
        if let Some(t) = slot.report.day_tallies(&mut slot.counters) {
            t.forget_through(day);
        }
    }
}

#[cfg(test)]
mod tests;
