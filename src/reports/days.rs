//! Records counted per operation-local day and agent, by the record's own date: what a
//! report keeps for a daily report to compare its totals with (the typed accessor of
//! `Schedule::DailyAfter`), until the day is compared or too old.

use std::collections::{BTreeMap, HashMap};

use chrono::{NaiveDate, NaiveDateTime};
use enum_map::EnumMap;
use foldhash::fast::RandomState;
use serde::{Deserialize, Serialize};

use super::labels::Interaction;

/// Days kept: a comparison may lag this far behind (an outage) before its oldest days
/// are given up.
pub const KEPT_DAYS: usize = 8;

/// One agent's records of one day, per interaction.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "SavedCount")]
pub struct DayCount(pub EnumMap<Interaction, u64>);

/// A day count as saved: today a map by interaction; before, `[transfers, conferences]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum SavedCount {
    Map(EnumMap<Interaction, u64>),
    Pair([u64; 2]),
}

impl From<SavedCount> for DayCount {
    fn from(saved: SavedCount) -> Self {
        match saved {
            SavedCount::Map(m) => DayCount(m),
            SavedCount::Pair([transfers, conferences]) => {
                DayCount(EnumMap::from_array([transfers, conferences, 0]))
            }
        }
    }
}

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
        self.0.entry((date.date(), agent)).or_default().0[interaction] += 1;
    }

    pub fn finish(self) -> Vec<(NaiveDate, Box<str>, DayCount)> {
        self.0.into_iter().map(|((day, agent), n)| (day, Box::from(agent), n)).collect()
    }
}

impl DayTallies {
    pub fn merge(&mut self, page: Vec<(NaiveDate, Box<str>, DayCount)>) {
        for (day, agent, n) in page {
            if self.whole_from.is_some_and(|from| day < from) {
                continue;
            }
            let c = self.days.entry(day).or_default().entry(agent).or_default();
            for (interaction, k) in n.0 {
                c.0[interaction] += k;
            }
        }
        while self.days.len() > KEPT_DAYS {
            self.days.pop_first();
            self.whole_from = self.days.keys().next().copied();
        }
    }

    /// Whether `day`'s tallies are whole (possibly empty: nothing counted that day).
    pub fn kept(&self, day: NaiveDate) -> bool {
        self.whole_from.is_none_or(|from| day >= from)
    }

    /// The tallies of `day`, when they are whole (empty when nothing was counted).
    pub fn day(&self, day: NaiveDate) -> Option<BTreeMap<Box<str>, DayCount>> {
        self.kept(day).then(|| self.days.get(&day).cloned().unwrap_or_default())
    }

    /// Forgets `day` and every day before it: they are compared.
    pub fn forget_through(&mut self, day: NaiveDate) {
        self.days.retain(|d, _| *d > day);
        self.whole_from = Some(self.whole_from.map_or(day, |w| w.max(day)).succ_opt().unwrap_or(day));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    fn count(transfers: u64, conferences: u64) -> DayCount {
        SavedCount::Pair([transfers, conferences]).into()
    }

    #[test]
    fn days_add_up_and_only_the_newest_are_kept() {
        let mut t = DayTallies::default();
        for d in 1..=10 {
            t.merge(vec![(day(d), "1".into(), count(d.into(), 1))]);
        }
        t.merge(vec![(day(10), "1".into(), count(5, 0)), (day(1), "1".into(), count(9, 9))]);
        assert_eq!(t.days.len(), KEPT_DAYS);
        assert_eq!(t.whole_from, Some(day(3)));
        assert_eq!(t.day(day(10)).unwrap()["1"], count(15, 1));
        assert_eq!(t.day(day(2)), None, "dropped, not zero");
        assert_eq!(t.day(day(11)).unwrap().len(), 0, "nothing counted yet");
        t.forget_through(day(9));
        assert_eq!(t.days.keys().copied().collect::<Vec<_>>(), vec![day(10)]);
        assert!(!t.kept(day(9)) && t.kept(day(10)));
    }

    #[test]
    fn counts_saved_as_pairs_still_read() {
        let old: DayCount = serde_json::from_str("[3,4]").unwrap();
        let new: DayCount = serde_json::from_str(&serde_json::to_string(&old).unwrap()).unwrap();
        assert_eq!((old, new), (count(3, 4), count(3, 4)));
    }
}
