//! Transfer chains: the transfer legs of one call (`id_call_origin`) within
//! `metrics.chain_horizon` of the chain's first leg, held open until the watermark
//! settles them, then counted once by their transfers and the agents who sent it back.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Bound;

use chrono::NaiveDateTime;
use enum_map::{Enum, EnumMap};
use foldhash::fast::RandomState;
use indexmap::{IndexMap, IndexSet};
use prometheus_client::encoding::NoLabelSet;
use prometheus_client::metrics::MetricType;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use super::{Destination, Families};
use crate::calendar::local_secs;
use crate::reports::agents::{Agents, Sighting, OVERFLOW_AGENT};
use crate::reports::{Encoding, Family, Notice, Settings};

/// How chains are cut and bounded.
#[derive(Debug, Clone, Copy)]
pub struct ChainSettings {
    pub horizon_secs: i64,
    pub max_open: usize,
}

impl ChainSettings {
    pub fn of(s: &Settings) -> ChainSettings {
        ChainSettings {
            horizon_secs: s.chain_horizon.as_secs().try_into().unwrap_or(i64::MAX),
            max_open: s.max_open_chains,
        }
    }
}

/// A settled chain's transfer legs: the `transfers` label, 1, 2 and 3+.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize)]
pub enum Transfers {
    One,
    Two,
    ThreeOrMore,
}

pub fn family(f: Families) -> Family {
    let (name, help) = match f {
        Families::Returned => ("wolkvox_agent_transfers_returned", "Transfer legs of settled chains that sent the call to an agent who had already held it in the chain, by the agent who sent it back (origin_agent_id)."),
        Families::Evicted => ("wolkvox_transfer_chains_evicted", "Open transfer chains settled early because metrics.max_open_chains was reached (counted in wolkvox_transfer_chains_total too)."),
        _ => ("wolkvox_transfer_chains", "Settled transfer chains (agent_13_1 transfer legs of one id_call_origin within metrics.chain_horizon of the first) by their transfer legs; each counted once, when the watermark less poll.overlap passes its first leg plus the horizon."),
    };
    Family { name, help, unit: None, metric_type: MetricType::Counter }
}

/// A transfer leg's place in chains: its call (a hash of `id_call_origin`) and, for legs
/// of one call in the same second, an order fixed by the leg's id.
pub fn chain_leg(call: &str, leg: &str) -> (u64, u32) {
    (xxh3_64(call.as_bytes()), xxh3_64(leg.as_bytes()) as u32)
}

/// No agent received the leg (a skill or outside).
const NO_AGENT: u32 = u32::MAX;

/// A page's chain legs, with the agent ids they name (as sent, each with a leg's date).
#[derive(Debug, Default)]
pub struct ChainPage {
    agents: Vec<(Box<str>, NaiveDateTime)>,
    legs: Vec<((u64, i64, u32), u32, u32)>,
}

/// Gathers a page's chain legs outside the store's lock, borrowing ids from the rows.
#[derive(Debug, Default)]
pub struct ChainPageBuilder<'r> {
    agents: IndexMap<&'r str, NaiveDateTime, RandomState>,
    legs: Vec<((u64, i64, u32), u32, u32)>,
}

impl<'r> ChainPageBuilder<'r> {
    pub fn add(&mut self, leg: (u64, u32), date: NaiveDateTime, from: &'r str, to: Destination<'r>) {
        let from = self.agent(from, date);
        let to = match to {
            Destination::Agent(id) => self.agent(id, date),
            _ => NO_AGENT,
        };
        self.legs.push(((leg.0, local_secs(date), leg.1), from, to));
    }

    fn agent(&mut self, id: &'r str, date: NaiveDateTime) -> u32 {
        let entry = self.agents.entry(id);
        let i = entry.index() as u32;
        entry.or_insert(date);
        i
    }

    pub fn finish(self) -> ChainPage {
        ChainPage {
            agents: self.agents.into_iter().map(|(id, date)| (id.into(), date)).collect(),
            legs: self.legs,
        }
    }
}

/// An open leg: its call, local date (seconds), order within the second, and the
/// agents it went from and to.
type Leg = (u64, i64, u32, u32, u32);

/// The settled counts and the open chains of one operation. Open legs name agents by
/// their index in `agents` (labels, interned); a chain is the legs of its call from its
/// first leg up to the call's next chain. Saved whole, so a restart cuts none again.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Chains {
    settled: EnumMap<Transfers, u64>,
    evicted: u64,
    returned: BTreeMap<Box<str>, u64>,
    /// The latest `until` settled (local seconds): a leg dated at or before it that joins
    /// no open chain belongs to one settled already, and counts as a chain of its own.
    through: Option<i64>,
    agents: IndexSet<Box<str>, RandomState>,
    legs: BTreeSet<Leg>,
    /// Open chains by (call, first leg's date).
    starts: BTreeSet<(u64, i64)>,
    /// The same by (first leg's date, call): rebuilt on restore.
    #[serde(skip)]
    queue: BTreeSet<(i64, u64)>,
}

impl Chains {
    pub fn open(&self) -> usize {
        self.starts.len()
    }

    /// Restored chains name only agents they know.
    pub fn check(&self) -> Result<(), String> {
        let known = self.agents.len() as u32;
        match self.legs.iter().find(|l| l.3 >= known || (l.4 != NO_AGENT && l.4 >= known)) {
            Some(l) => Err(format!("an open transfer chain names agent {} of {known}", l.3.max(l.4))),
            None => Ok(()),
        }
    }

    /// Takes in a page's legs; past `max_open` open chains, the oldest settle early.
    pub fn apply(&mut self, page: ChainPage, agents: &mut Agents, s: ChainSettings) -> Vec<Notice> {
        self.restored();
        let refs: Vec<u32> = page
            .agents
            .iter()
            .map(|(id, date)| {
                let seen = Sighting::new(None, *date);
                self.intern(agents.admit(id, &seen).unwrap_or(OVERFLOW_AGENT))
            })
            .collect();
        for ((call, date, tie), from, to) in page.legs {
            let to = refs.get(to as usize).copied().unwrap_or(NO_AGENT);
            self.add((call, date, tie, refs[from as usize], to), s.horizon_secs);
        }
        let mut early = 0;
        while self.queue.len() > s.max_open {
            self.settle_first();
            early += 1;
        }
        self.evicted += early;
        let message = format!("{early} open transfer chains settled early: metrics.max_open_chains ({}) reached; raise it or shorten metrics.chain_horizon", s.max_open);
        (early > 0).then_some(Notice { warning: true, message }).into_iter().collect()
    }

    /// Settles every chain whose first leg is `horizon_secs` or more before `until`.
    pub fn settle(&mut self, until: NaiveDateTime, horizon_secs: i64) {
        self.restored();
        let until = local_secs(until);
        self.through = Some(self.through.map_or(until, |t| t.max(until)));
        while self.queue.first().is_some_and(|&(first, _)| first.saturating_add(horizon_secs) <= until) {
            self.settle_first();
        }
    }

    /// Rebuilds what the state file leaves out.
    fn restored(&mut self) {
        if self.queue.len() != self.starts.len() {
            self.queue = self.starts.iter().map(|&(call, first)| (first, call)).collect();
        }
    }

    fn intern(&mut self, label: &str) -> u32 {
        match self.agents.get_index_of(label) {
            Some(i) => i as u32,
            None => self.agents.insert_full(label.into()).0 as u32,
        }
    }

    /// A leg joins the call's latest chain opened at or before it when within the
    /// horizon of its first leg; otherwise it opens a chain, and the call's later chains
    /// are cut again from it when it reaches them (a late leg read in the overlap).
    fn add(&mut self, (call, date, tie, from, to): Leg, h: i64) {
        let open = self.starts.range((call, i64::MIN)..=(call, date)).next_back();
        let joins = open.is_some_and(|&(_, first)| date - first <= h);
        if !joins && self.through.is_some_and(|t| date <= t) {
            self.settled[Transfers::One] += 1;
            return;
        }
        let mut tie = tie;
        while self.legs.range(at(call, date, tie)..=(call, date, tie, u32::MAX, u32::MAX)).next().is_some() {
            tie = tie.wrapping_add(1);
        }
        self.legs.insert((call, date, tie, from, to));
        if joins {
            return;
        }
        let later: Vec<i64> = self.starts.range((call, date)..=(call, i64::MAX)).map(|s| s.1).collect();
        if later.first().is_none_or(|&next| next - date > h) {
            self.open_chain(call, date);
            return;
        }
        for first in later {
            self.starts.remove(&(call, first));
            self.queue.remove(&(first, call));
        }
        let dates: Vec<i64> = self.legs.range(at(call, date, 0)..=last(call)).map(|l| l.1).collect();
        let mut first = None;
        for d in dates {
            if first.is_none_or(|f| d - f > h) {
                first = Some(d);
                self.open_chain(call, d);
            }
        }
    }

    fn open_chain(&mut self, call: u64, first: i64) {
        self.starts.insert((call, first));
        self.queue.insert((first, call));
    }

    /// Counts the chain opened first: its transfers, and each leg (in date order) that
    /// sent the call to an agent who had held it earlier in the chain.
    fn settle_first(&mut self) {
        let Some((first, call)) = self.queue.pop_first() else {
            return;
        };
        self.starts.remove(&(call, first));
        let end = match self.starts.range((call, first)..=(call, i64::MAX)).next() {
            Some(&(_, next)) => Bound::Excluded(at(call, next, 0)),
            None => Bound::Included(last(call)),
        };
        let legs: Vec<Leg> = self.legs.range((Bound::Included(at(call, first, 0)), end)).copied().collect();
        let mut held = Vec::with_capacity(2 * legs.len());
        for leg @ (_, _, _, from, to) in &legs {
            self.legs.remove(leg);
            if *to != NO_AGENT && held.contains(to) {
                let name = &self.agents[*from as usize];
                *self.returned.entry(name.clone()).or_default() += 1;
            }
            held.extend([*from, *to]);
        }
        self.settled[Transfers::from_usize(legs.len().clamp(1, 3) - 1)] += 1;
    }

    pub fn encode(&self, family: Families, out: Encoding) -> fmt::Result {
        let operation = out.operation;
        let encoder = out.encoder;
        match family {
            Families::Returned => {
                for (agent_id, n) in &self.returned {
                    let labels = [("operation", operation), ("agent_id", agent_id)];
                    encoder.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(n, None)?;
                }
            }
            Families::Evicted => encoder
                .encode_family(&[("operation", operation)])?
                .encode_counter::<NoLabelSet, _, u64>(&self.evicted, None)?,
            _ => {
                for (transfers, n) in &self.settled {
                    let transfers = match transfers {
                        Transfers::One => "1",
                        Transfers::Two => "2",
                        Transfers::ThreeOrMore => "3+",
                    };
                    let labels = [("operation", operation), ("transfers", transfers)];
                    encoder.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(n, None)?;
                }
            }
        }
        Ok(())
    }
}

/// The first possible leg of `call` at `date` in order `tie`, and its last, for ranges.
fn at(call: u64, date: i64, tie: u32) -> Leg {
    (call, date, tie, 0, 0)
}

fn last(call: u64) -> Leg {
    (call, i64::MAX, u32::MAX, u32::MAX, u32::MAX)
}

#[cfg(test)]
mod tests;
