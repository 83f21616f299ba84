//! What the report modules share about agents: a page's rows gathered per agent in the
//! order the page first names them, and the apply step that admits each agent (or
//! counts it under the overflow agent, past `max_agents`).

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDateTime;
use foldhash::fast::RandomState;

use super::agents::{Agents, Sighting, OVERFLOW_AGENT};

/// A page's rows per agent, borrowing the ids from the rows; `T` is what the report adds
/// up per agent.
#[derive(Debug)]
pub struct ByAgent<'r, T> {
    index: HashMap<&'r str, usize, RandomState>,
    agents: Vec<(&'r str, Sighting, T)>,
}

impl<'r, T: Default> ByAgent<'r, T> {
    pub fn new() -> Self {
        ByAgent { index: HashMap::default(), agents: Vec::new() }
    }

    /// The agent's part of the page, noting its name and the row's date.
    pub fn entry(&mut self, id: &'r str, name: Option<&str>, date: NaiveDateTime) -> &mut T {
        let i = match self.index.get(id) {
            Some(&i) => {
                self.agents[i].1.add(name, date);
                i
            }
            None => {
                self.agents.push((id, Sighting::new(name, date), T::default()));
                self.index.insert(id, self.agents.len() - 1);
                self.agents.len() - 1
            }
        };
        &mut self.agents[i].2
    }

    /// The page's agents, owned, in order of first appearance.
    pub fn finish<U>(self, mut own: impl FnMut(T) -> U) -> AgentPages<U> {
        AgentPages(self.agents.into_iter().map(|(id, seen, t)| (Box::from(id), seen, own(t))).collect())
    }
}

impl<T: Default> Default for ByAgent<'_, T> {
    fn default() -> Self {
        Self::new()
    }
}

/// A page's changes per agent id as sent, in order of first appearance.
#[derive(Debug, Default)]
pub struct AgentPages<T>(pub Vec<(Box<str>, Sighting, T)>);

impl<T> AgentPages<T> {
    /// Admits each agent and merges its part into its series (the overflow's past
    /// `max_agents`, keyed [`OVERFLOW_AGENT`]). `merge` returns the rows it merged;
    /// the sum of those merged into the overflow is returned.
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
