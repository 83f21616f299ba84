//! The call model: a deterministic simulated contact center whose transfers, calls and
//! transfer legs are generated minute by minute from a seed, so any range can be asked
//! in any order with the same result. Every report's rows and truth come from it.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};

pub use calls::{SimCall, SimDestination, SimLeg};
pub use config::{Burst, Newcomer, Rename, SimConfig, DEMO_HISTORY};
use names::{FIRST_NAMES, LAST_NAMES};
use rng::{mix, splitmix, Rng};
use select::Cache;
pub use select::Timed;
pub use transfers::SimRecord;

mod calls;
mod chains;
mod config;
mod names;
pub(crate) mod rng;
mod select;
mod transfers;

/// An agent's fixed identity (the name before any rename).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimAgent {
    pub id: String,
    pub name: String,
}

/// The simulated operation. Generating a minute never looks at another minute, so any
/// range can be produced on demand, in any order, with the same result.
pub struct Simulator {
    config: SimConfig,
    agents: Vec<SimAgent>,
    conn_prefix: u64,
    /// Minutes from a real minute to the reference minute it is generated as.
    shift_minutes: i64,
    transfers: Cache<SimRecord>,
    calls: Cache<SimCall>,
    legs: Cache<SimLeg>,
    /// The legs each minute's transfers are passed on in (see `chains`).
    chains: Cache<SimLeg>,
}

impl Simulator {
    pub fn new(config: SimConfig) -> Self {
        let agents = (0..config.agents)
            .map(|i| {
                let mut rng = Rng::new(mix(config.seed, 0xA6E7 + i as u64));
                let first = FIRST_NAMES[rng.below(FIRST_NAMES.len() as u64) as usize];
                let last = LAST_NAMES[rng.below(LAST_NAMES.len() as u64) as usize];
                SimAgent {
                    id: (config.agent_id_base + i as u64).to_string(),
                    name: format!("{first} {last}"),
                }
            })
            .collect();
        let conn_prefix = 10_000 + mix(config.seed, 0xC0DE) % 90_000;
        let shift_minutes =
            config.anchor.timestamp().div_euclid(60) - config.start.timestamp().div_euclid(60);
        Simulator {
            config,
            agents,
            conn_prefix,
            shift_minutes,
            transfers: Cache::new(),
            calls: Cache::new(),
            legs: Cache::new(),
            chains: Cache::new(),
        }
    }

    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    pub fn agents(&self) -> &[SimAgent] {
        &self.agents
    }

    /// The operation-local wall clock at `at`.
    pub fn local(&self, at: DateTime<Utc>) -> NaiveDateTime {
        at.with_timezone(&self.config.timezone).naive_local()
    }

    /// The agent's display name at `at`, renames applied.
    pub fn name_at(&self, index: usize, at: DateTime<Utc>) -> String {
        let agent = &self.agents[index];
        self.config
            .renames
            .iter()
            .filter(|r| r.agent_id == agent.id && r.at <= at)
            .max_by_key(|r| r.at)
            .map_or_else(|| agent.name.clone(), |r| r.new_name.clone())
    }

    /// The instant of the reference history that `at` is generated as (see
    /// [`SimConfig::anchor`]).
    pub fn reference(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        at + Duration::minutes(self.shift_minutes)
    }

    /// Whether agent_13's answers leave this record out (agent_12 still counts it): a
    /// share [`SimConfig::hidden_share`] of the records, chosen by conn_id.
    pub fn hidden(&self, record: &SimRecord) -> bool {
        let share = self.config.hidden_share;
        if share <= 0.0 {
            return false;
        }
        let h = record
            .conn_id
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        (splitmix(h) >> 11) as f64 / (1u64 << 53) as f64 <= share
    }

    /// Whether agent `index` has joined by `at`.
    pub fn active(&self, index: usize, at: DateTime<Utc>) -> bool {
        self.config.newcomer.as_ref().is_none_or(|n| n.index != index || at >= n.joined)
    }
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("config", &self.config)
            .field("agents", &self.agents)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
