//! The engine's handle on any report: a [`Report`] with its types erased. Still pure:
//! the engine's [`Sieve`] decides which rows count (the ledger, the window, the step);
//! this decodes, checks, folds and applies.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveDateTime;
use enum_map::Enum;
use serde_json::value::RawValue;

use super::agents::Agents;
use super::days::DayTallies;
use super::{Applied, Counted, Encoding, Family, InvalidReason, Key, Report, ReportName, SourceDay};
use crate::client::{interpret, Answer, ApiError, Item};

/// A report's counters for one operation, its type known to the report alone.
pub type Counters = Box<dyn Any + Send + Sync>;

/// One of a report's metric families (its `Family` enum, erased).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FamilyId(usize);

/// A page's changes, folded, waiting to be applied (the report's `Page`).
pub type Folded = Box<dyn Any + Send>;

/// What the engine decides about a page and its rows.
pub trait Sieve {
    /// Whether the page, whose rows have these dates in the order sent, is counted at
    /// all (false: cut at the cap, to be read again in parts).
    fn whole(&mut self, dates: &[Option<NaiveDateTime>]) -> bool;
    /// A record, before it is checked: the date it counts as, `None` when it is skipped
    /// (already counted or rejected, or rejected now by the sieve).
    fn judge(&mut self, key: Key, date: Option<NaiveDateTime>) -> Option<NaiveDateTime>;
    /// A row rejected after [`Sieve::judge`] let it through, or that is not a record.
    fn rejected(&mut self, reason: InvalidReason);
    /// A row the report's check passed: the step (of a backfill) it falls in and whether
    /// it arrived late, or `None` when it lies outside the window (rejected).
    fn place(&mut self, date: NaiveDateTime) -> Option<(u32, bool)>;
}

/// What a page held.
#[derive(Debug)]
pub enum Read {
    /// The 404 "no records" answer, and a page of no rows (what it means to a daily
    /// report: a day of zeros).
    Empty(Folded),
    /// Not counted ([`Sieve::whole`] said so): the local dates of its rows, as sent.
    Cut { dates: Vec<NaiveDateTime> },
    /// Its countable rows folded, one fold per step in step order, and every row's date.
    Counted { steps: Vec<(u32, Folded)>, dates: Vec<NaiveDateTime> },
}

/// Any report, as the engine, the state and the renderer drive it.
pub trait DynReport: Send + Sync + fmt::Debug {
    fn name(&self) -> ReportName;
    fn families(&self) -> Vec<(FamilyId, Family)>;
    fn new_counters(&self) -> Counters;
    /// Counters from the state file, with a warning when something was adjusted.
    fn restore(&self, saved: &RawValue) -> Result<(Counters, Option<String>), String>;
    fn save(&self, counters: &Counters) -> Box<RawValue>;
    /// Decodes an answer and folds the rows `sieve` lets through.
    fn read(&self, status: u16, body: &[u8], sieve: &mut dyn Sieve) -> Result<Read, ApiError>;
    fn apply(
        &self,
        counters: &mut Counters,
        agents: &mut Agents,
        page: Folded,
        source: Option<&SourceDay>,
    ) -> Applied;
    fn settle(&self, counters: &mut Counters, agents: &mut Agents, until: NaiveDateTime) -> Applied;
    fn day_tallies<'c>(&self, counters: &'c mut Counters) -> Option<&'c mut DayTallies>;
    fn encode(&self, counters: &Counters, family: FamilyId, out: Encoding) -> fmt::Result;
}

fn typed<R: Report>(counters: &Counters) -> &R::Counters {
    counters.downcast_ref().expect("a report's slot holds its own counters")
}

fn typed_mut<R: Report>(counters: &mut Counters) -> &mut R::Counters {
    counters.downcast_mut().expect("a report's slot holds its own counters")
}

impl<R: Report> DynReport for R {
    fn name(&self) -> ReportName {
        R::NAME
    }

    fn families(&self) -> Vec<(FamilyId, Family)> {
        (0..R::Family::LENGTH).map(|i| (FamilyId(i), R::family(R::Family::from_usize(i)))).collect()
    }

    fn new_counters(&self) -> Counters {
        Box::new(Report::new_counters(self))
    }

    fn restore(&self, saved: &RawValue) -> Result<(Counters, Option<String>), String> {
        let counters: R::Counters =
            serde_json::from_str(saved.get()).map_err(|e| format!("unreadable counters: {e}"))?;
        let warning = self.check_restored(&counters)?;
        Ok((Box::new(counters), warning))
    }

    fn save(&self, counters: &Counters) -> Box<RawValue> {
        serde_json::value::to_raw_value(typed::<R>(counters)).expect("counters serialize")
    }

    fn read(&self, status: u16, body: &[u8], sieve: &mut dyn Sieve) -> Result<Read, ApiError> {
        let rows = match interpret::<R::Record<'_>>(status, body)? {
            Answer::Empty => return Ok(Read::Empty(Box::new(self.count(Vec::new())))),
            Answer::Records(rows) => rows,
        };
        let dates: Vec<Option<NaiveDateTime>> = rows
            .iter()
            .map(|item| match item {
                Item::Record(row) => self.date(row),
                Item::NotAnObject => None,
            })
            .collect();
        if !sieve.whole(&dates) {
            let dates = dates.into_iter().flatten().collect();
            return Ok(Read::Cut { dates });
        }
        let mut counted: BTreeMap<u32, Vec<_>> = BTreeMap::new();
        for (item, &date) in rows.iter().zip(&dates) {
            // Nothing to identify it by: rejected again on every re-read.
            let Item::Record(row) = item else {
                sieve.rejected(InvalidReason::missing_field);
                continue;
            };
            let Some(date) = sieve.judge(self.identity(row), date) else {
                continue;
            };
            match self.check(row) {
                Err(reason) => sieve.rejected(reason),
                Ok(change) => {
                    if let Some((step, late)) = sieve.place(date) {
                        counted.entry(step).or_default().push(Counted { change, date, late });
                    }
                }
            }
        }
        let steps =
            counted.into_iter().map(|(step, rows)| (step, Box::new(self.count(rows)) as Folded)).collect();
        Ok(Read::Counted { steps, dates: dates.into_iter().flatten().collect() })
    }

    fn apply(
        &self,
        counters: &mut Counters,
        agents: &mut Agents,
        page: Folded,
        source: Option<&SourceDay>,
    ) -> Applied {
        let page = page.downcast().expect("a report's fold is its own page");
        Report::apply(self, typed_mut::<R>(counters), agents, *page, source)
    }

    fn settle(&self, counters: &mut Counters, agents: &mut Agents, until: NaiveDateTime) -> Applied {
        Report::settle(self, typed_mut::<R>(counters), agents, until)
    }

    fn day_tallies<'c>(&self, counters: &'c mut Counters) -> Option<&'c mut DayTallies> {
        R::day_tallies(typed_mut::<R>(counters))
    }

    fn encode(&self, counters: &Counters, family: FamilyId, out: Encoding) -> fmt::Result {
        Report::encode(self, typed::<R>(counters), R::Family::from_usize(family.0), out)
    }
}
