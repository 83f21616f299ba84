//! The agents of one operation, across every report: each agent's newest name, the
//! date of its earliest record, and the `max_agents` guard.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::NaiveDateTime;
use chrono_tz::Tz;
use foldhash::fast::RandomState;
use serde::{Deserialize, Serialize};

use super::fields::{clean_label, MAX_ID_BYTES, MAX_NAME_BYTES};
use crate::calendar::local_secs;

/// The agent id under which agents past `max_agents` are counted.
pub const OVERFLOW_AGENT: &str = "_overflow";
/// The name `wolkvox_agent_info` shows for [`OVERFLOW_AGENT`].
pub const OVERFLOW_NAME: &str = "(agents past max_agents)";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub name: Box<str>,
    /// Record date (local seconds, see `local_secs`) of the name: the newest name wins.
    pub name_date: i64,
    /// The earliest record of the agent in any report, as Unix time.
    pub first_seen: i64,
}

/// What one page says of one agent: the name on its newest record and its earliest
/// record's local date.
#[derive(Debug, Clone, PartialEq)]
pub struct Sighting {
    pub name: Option<(Box<str>, NaiveDateTime)>,
    pub earliest: NaiveDateTime,
}

impl Sighting {
    pub fn new(name: Option<&str>, date: NaiveDateTime) -> Self {
        Sighting { name: name.map(|n| (n.into(), date)), earliest: date }
    }

    /// Takes in one more record of the agent.
    pub fn add(&mut self, name: Option<&str>, date: NaiveDateTime) {
        self.earliest = self.earliest.min(date);
        match (&mut self.name, name) {
            (Some((n, d)), Some(name)) if *d <= date => {
                if n.as_ref() != name {
                    *n = name.into();
                }
                *d = date;
            }
            (None, Some(name)) => self.name = Some((name.into(), date)),
            _ => {}
        }
    }
}

#[derive(Debug, Clone)]
pub struct Agents {
    pub max_agents: usize,
    pub timezone: Tz,
    pub known: HashMap<Box<str>, AgentInfo, RandomState>,
    /// Records counted under [`OVERFLOW_AGENT`], in every report.
    pub overflow_records: u64,
}

impl Agents {
    pub fn new(max_agents: usize, timezone: Tz) -> Self {
        Agents { max_agents, timezone, known: HashMap::default(), overflow_records: 0 }
    }

    /// Takes in what a page says of an agent and returns its label value: its cleaned
    /// id, or `None` when `max_agents` agents are known already and it is not one of
    /// them (its records then count under [`OVERFLOW_AGENT`]).
    pub fn admit(&mut self, raw_id: &str, seen: &Sighting) -> Option<&str> {
        let id = if self.known.contains_key(raw_id) {
            Cow::Borrowed(raw_id)
        } else {
            Cow::Owned(clean_label(raw_id, MAX_ID_BYTES))
        };
        let first_seen = self.unix_time(seen.earliest);
        let info = match self.known.get_mut(id.as_ref()) {
            Some(info) => info,
            None => {
                if id == OVERFLOW_AGENT || self.known.len() >= self.max_agents {
                    return None;
                }
                self.known.entry(id.as_ref().into()).or_insert(AgentInfo {
                    name: Box::from(""),
                    name_date: i64::MIN,
                    first_seen,
                })
            }
        };
        info.first_seen = info.first_seen.min(first_seen);
        if let Some((name, date)) = &seen.name {
            let date = local_secs(*date);
            if date >= info.name_date {
                if info.name.as_ref() != name.as_ref() {
                    let cleaned = clean_label(name, MAX_NAME_BYTES);
                    if info.name.as_ref() != cleaned {
                        info.name = cleaned.into();
                    }
                }
                info.name_date = date;
            }
        }
        self.known.get_key_value(id.as_ref()).map(|(k, _)| k.as_ref())
    }

    /// A local date as Unix time (the earlier instant of a repeated DST hour).
    pub fn unix_time(&self, local: NaiveDateTime) -> i64 {
        crate::calendar::instant(local, self.timezone).timestamp()
    }

    /// The known agents in label order: id, name and first seen.
    pub fn sorted(&self) -> Vec<(&str, &str, i64)> {
        let mut out: Vec<_> =
            self.known.iter().map(|(id, a)| (id.as_ref(), a.name.as_ref(), a.first_seen)).collect();
        out.sort_unstable_by(|a, b| a.0.cmp(b.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::fields::parse_date;
    use chrono::TimeZone;

    fn at(s: &str) -> NaiveDateTime {
        parse_date(s).unwrap()
    }

    #[test]
    fn newest_name_wins_earliest_record_stays_and_the_limit_holds() {
        let mut agents = Agents::new(2, chrono_tz::America::Bogota);
        let mut s = Sighting::new(Some("Old"), at("2026-11-24 10:00:00"));
        s.add(Some("Ana María\nR."), at("2026-11-24 11:00:00"));
        s.add(Some("Older"), at("2026-11-24 09:00:00"));
        assert_eq!(agents.admit("1", &s), Some("1"));
        let a = &agents.known["1"];
        assert_eq!(a.name.as_ref(), "Ana María R.");
        // 09:00 in Bogota (UTC-5) is 14:00 UTC.
        let expected = chrono::Utc.with_ymd_and_hms(2026, 11, 24, 14, 0, 0).unwrap();
        assert_eq!(a.first_seen, expected.timestamp());
        // An older sighting from another report neither renames nor moves first_seen on.
        let late = Sighting::new(Some("Stale"), at("2026-11-24 10:30:00"));
        agents.admit("1", &late);
        assert_eq!(agents.known["1"].name.as_ref(), "Ana María R.");
        assert_eq!(agents.admit(" 2\u{7} ", &late), Some("2 "));
        assert_eq!(agents.admit("3", &late), None);
        assert_eq!(agents.admit(OVERFLOW_AGENT, &late), None);
        assert_eq!(agents.known.len(), 2);
    }
}
