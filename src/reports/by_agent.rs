//! What the report modules share about agents: a page's rows gathered per agent in the
//! order the page first names them, and the apply step that admits each agent (or
//! counts it under the overflow agent, past `max_agents`).

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use foldhash::fast::RandomState;
use indexmap::map::{Entry, IndexMap};

use super::agents::{Agents, Sighting, OVERFLOW_AGENT};

/// A page's rows per agent in order of first appearance, borrowing the ids from the
/// rows; `T` is what the report adds up per agent.
#[derive(Debug, Default)]
pub struct ByAgent<'r, T>(IndexMap<&'r str, (Sighting, T), RandomState>);

impl<'r, T: Default> ByAgent<'r, T> {
    /// The agent's part of the page, noting its name and the row's date.
    pub fn entry(&mut self, id: &'r str, name: Option<&str>, date: NaiveDateTime) -> &mut T {
        match self.0.entry(id) {
            Entry::Occupied(e) => {
                let (seen, part) = e.into_mut();
                seen.add(name, date);
                part
            }
            Entry::Vacant(e) => &mut e.insert((Sighting::new(name, date), T::default())).1,
        }
    }

    /// The page's agents, owned, in order of first appearance.
    pub fn finish<U>(self, mut own: impl FnMut(T) -> U) -> AgentPages<U> {
        AgentPages(self.0.into_iter().map(|(id, (seen, t))| (Box::from(id), seen, own(t))).collect())
    }
}

/// A page's changes per agent id as sent, in order of first appearance.
#[derive(Debug, Default)]
pub struct AgentPages<T>(pub Vec<(Box<str>, Sighting, T)>);

impl<T> AgentPages<T> {
    /// Admits each agent and merges its part into its series, or past `max_agents` the
    /// overflow's; returns the rows `merge` said it merged into the overflow.
    pub fn apply<S: Default>(
        self,
        agents: &mut Agents,
        series: &mut BTreeMap<Box<str>, S>,
        overflow: &mut S,
        mut merge: impl FnMut(&mut S, &str, T) -> u64,
    ) -> u64 {
        let mut overflowed = 0;
        for (raw_id, seen, part) in self.0 {
            match agents.admit(&raw_id, &seen) {
                Some(id) => {
                    let s = match series.get_mut(id) {
                        Some(s) => s,
                        None => series.entry(id.into()).or_default(),
                    };
                    merge(s, id, part);
                }
                None => overflowed += merge(overflow, OVERFLOW_AGENT, part),
            }
        }
        overflowed
    }
}

/// Each agent's series in label order, then the overflow agent's (an empty one encodes
/// no line).
pub fn with_overflow<'a, S>(
    series: &'a BTreeMap<Box<str>, S>,
    overflow: &'a S,
) -> impl Iterator<Item = (&'a str, &'a S)> {
    series.iter().map(|(id, s)| (id.as_ref(), s)).chain([(OVERFLOW_AGENT, overflow)])
}
