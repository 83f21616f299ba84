//! agent_13's records counted per operation-local day and agent (by the record's own
//! date), kept until agent_12's totals for the day have been compared with them.

use std::collections::{BTreeMap, HashMap};

use chrono::{NaiveDate, NaiveDateTime};
use foldhash::fast::RandomState;
use serde::{Deserialize, Serialize};

use super::Interaction;

/// Days kept: a reconciliation may lag this far behind (an outage) before its oldest
/// days are given up.
pub const KEPT_DAYS: usize = 8;

/// Transfers and conferences of one agent on one day.
pub type DayCount = [u64; 2];

/// Per local day, per agent id as the report sent it (trimmed).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayTallies {
    pub days: BTreeMap<NaiveDate, BTreeMap<Box<str>, DayCount>>,
    /// The first day whose tallies are whole: earlier ones were dropped past
    /// [`KEPT_DAYS`].
    pub whole_from: Option<NaiveDate>,
}

/// A page's tallies while it is counted.
#[derive(Debug, Default)]
pub struct PageDays<'r>(HashMap<(NaiveDate, &'r str), DayCount, RandomState>);

impl<'r> PageDays<'r> {
    pub fn add(&mut self, date: NaiveDateTime, agent: &'r str, interaction: Interaction) {
        let i = match interaction {
            Interaction::transfer => 0,
            Interaction::conference => 1,
            Interaction::other => return,
        };
        self.0.entry((date.date(), agent)).or_default()[i] += 1;
    }

    pub fn finish(self) -> Vec<(NaiveDate, Box<str>, DayCount)> {
        self.0
            .into_iter()
            .map(|((day, agent), n)| (day, Box::from(agent), n))
            .collect()
    }
}

impl DayTallies {
    pub fn merge(&mut self, page: Vec<(NaiveDate, Box<str>, DayCount)>) {
        for (day, agent, n) in page {
            if self.whole_from.is_some_and(|from| day < from) {
                continue;
            }
            let c = self.days.entry(day).or_default().entry(agent).or_default();
            c[0] += n[0];
            c[1] += n[1];
        }
        while self.days.len() > KEPT_DAYS {
            self.days.pop_first();
            self.whole_from = self.days.keys().next().copied();
        }
    }

    /// The tallies of `day`, when they are whole (empty when nothing was counted).
    pub fn day(&self, day: NaiveDate) -> Option<BTreeMap<Box<str>, DayCount>> {
        if self.whole_from.is_some_and(|from| day < from) {
            return None;
        }
        Some(self.days.get(&day).cloned().unwrap_or_default())
    }

    /// Forgets `day` and every day before it: they are reconciled.
    pub fn forget_through(&mut self, day: NaiveDate) {
        self.days.retain(|d, _| *d > day);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    #[test]
    fn days_add_up_and_only_the_newest_are_kept() {
        let mut t = DayTallies::default();
        for d in 1..=10 {
            t.merge(vec![(day(d), "1".into(), [d.into(), 1])]);
        }
        t.merge(vec![
            (day(10), "1".into(), [5, 0]),
            (day(1), "1".into(), [9, 9]),
        ]);
        assert_eq!(t.days.len(), KEPT_DAYS);
        assert_eq!(t.whole_from, Some(day(3)));
        assert_eq!(t.day(day(10)).unwrap()["1"], [15, 1]);
        assert_eq!(t.day(day(2)), None, "dropped, not zero");
        assert_eq!(t.day(day(11)).unwrap().len(), 0, "nothing counted yet");
        t.forget_through(day(9));
        assert_eq!(t.days.keys().copied().collect::<Vec<_>>(), vec![day(10)]);
    }
}
