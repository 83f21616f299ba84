//! A deterministic simulated contact center: the agent_13 records of one operation,
//! generated minute by minute from a seed. The `--demo` mode and the tests' fake
//! Wolkvox share it, so what the demo shows is what the tests check.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, Timelike, Utc, Weekday};
use chrono_tz::Tz;

pub use calls::{SimCall, SimDestination, SimLeg};
use names::{FIRST_NAMES, LAST_NAMES};
use rng::{mix, Rng};
use select::Cache;
pub use select::Timed;

mod calls;
mod names;
mod rng;
mod select;

/// How much history the demo has: its veterans' first records are this old, so that
/// only the newcomer shows as new.
pub const DEMO_HISTORY: Duration = Duration::days(35);

/// What the simulated operation looks like. Fields are public so a test can start from
/// [`SimConfig::bounded`] or [`SimConfig::demo`] and change only what it needs.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Every record is a function of this seed and its minute.
    pub seed: u64,
    pub agents: usize,
    /// Agent ids are `agent_id_base + i` as decimal strings (`1001`, `1002`...).
    pub agent_id_base: u64,
    /// The operation's zone: record dates are wall-clock times in it.
    pub timezone: Tz,
    /// No record before this instant.
    pub start: DateTime<Utc>,
    /// No record after this instant; `None` keeps producing records as real time goes on.
    pub end: Option<DateTime<Utc>>,
    /// The instant whose minute `start`'s minute stands for: the minute `start + d` has
    /// the volume (the operation's local weekday and hour) and the random draws of the
    /// minute `anchor + d`, while its records carry their real times. [`bounded`] and
    /// [`demo`] set it to `start`, which moves nothing; a history placed relative to
    /// the real clock sets a fixed date, so it holds the same records whatever day it
    /// is generated on.
    ///
    /// [`bounded`]: SimConfig::bounded
    /// [`demo`]: SimConfig::demo
    pub anchor: DateTime<Utc>,
    /// Transfers plus conferences per agent per hour at the busiest hour of a weekday;
    /// the rate follows a working-day curve in the operation's local time.
    pub peak_per_agent_hour: f64,
    /// Share of records that are conferences (the rest are transfers).
    pub conference_share: f64,
    /// Share of records that the API only shows some time after they happened.
    pub late_fraction: f64,
    /// A late record becomes visible at its time plus a uniform delay in this range.
    pub late_by: (StdDuration, StdDuration),
    /// Extra records packed in short intervals, to fill a window past the API's cap.
    pub bursts: Vec<Burst>,
    /// Agents whose display name changes at some instant.
    pub renames: Vec<Rename>,
    /// cdr_1 call legs per transfer or conference at the usual rate (at least 1: every
    /// transfer is a call): the other calls are the ones not transferred. Bursts add
    /// transfers (each with its call) and no other calls.
    pub calls_per_transfer: f64,
    /// An agent who joins late and transfers much more at first.
    pub newcomer: Option<Newcomer>,
    /// Skills that receive transfers, with their weights (a transfer goes to another
    /// agent, a skill or outside).
    pub skills: Vec<(String, f64)>,
}

/// An agent with no record before `joined`, whose share of the transfers starts
/// `start_weight` times an other agent's and falls evenly to the same share at
/// `settled`: a new consultant learning the job.
#[derive(Debug, Clone)]
pub struct Newcomer {
    pub index: usize,
    pub joined: DateTime<Utc>,
    pub settled: DateTime<Utc>,
    pub start_weight: f64,
}

/// `records` extra records spread evenly over `[start, start + duration)`.
#[derive(Debug, Clone)]
pub struct Burst {
    pub start: DateTime<Utc>,
    pub duration: Duration,
    pub records: usize,
}

/// From `at` on, the agent's records carry `new_name`.
#[derive(Debug, Clone)]
pub struct Rename {
    pub agent_id: String,
    pub at: DateTime<Utc>,
    pub new_name: String,
}

impl SimConfig {
    /// The `--demo` operation, a story for the dashboards: 40 agents on Colombia time
    /// with [`DEMO_HISTORY`] of history before `now`, open-ended. Whatever the real
    /// time, `now` is generated as a Thursday late morning (the busy hours follow).
    /// Agent 1040 joined three hours ago and transfers far more than the others,
    /// less and less until two hours from now; skill 7 takes most escalations; a burst
    /// of transfers 70 minutes after the start trips the spike alert (its baseline
    /// needs that first hour of Prometheus history); a few records show up 1 to 5
    /// minutes late; agent 1007 was renamed half a day ago.
    pub fn demo(now: DateTime<Utc>) -> Self {
        let now = floor_minute(now);
        let start = now - DEMO_HISTORY;
        // A Thursday, 11:00 in Bogota.
        let reference = DateTime::from_timestamp(1_741_881_600, 0).unwrap_or(now);
        SimConfig {
            seed: 13,
            agents: 40,
            agent_id_base: 1001,
            timezone: chrono_tz::America::Bogota,
            start,
            end: None,
            anchor: reference - DEMO_HISTORY,
            peak_per_agent_hour: 6.0,
            conference_share: 0.25,
            late_fraction: 0.05,
            late_by: (StdDuration::from_secs(60), StdDuration::from_secs(300)),
            bursts: vec![Burst {
                start: now + Duration::minutes(70),
                duration: Duration::minutes(20),
                records: 1_200,
            }],
            renames: vec![Rename {
                agent_id: "1007".to_string(),
                at: now - Duration::hours(12),
                new_name: "María Fernanda Gómez de Ruiz".to_string(),
            }],
            calls_per_transfer: 6.0,
            newcomer: Some(Newcomer {
                index: 39,
                joined: now - Duration::hours(3),
                settled: now + Duration::hours(2),
                start_weight: 8.0,
            }),
            skills: default_skills(),
        }
    }

    /// A closed operation for tests: 10 agents on Colombia time producing records in
    /// `[start, end]` only, all visible at once, no bursts, no renames.
    pub fn bounded(start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        SimConfig {
            seed: 1,
            agents: 10,
            agent_id_base: 1001,
            timezone: chrono_tz::America::Bogota,
            start,
            end: Some(end),
            anchor: start,
            peak_per_agent_hour: 12.0,
            conference_share: 0.3,
            late_fraction: 0.0,
            late_by: (StdDuration::from_secs(60), StdDuration::from_secs(300)),
            bursts: Vec::new(),
            renames: Vec::new(),
            calls_per_transfer: 4.0,
            newcomer: None,
            skills: default_skills(),
        }
    }
}

/// Skill 7 takes most of the escalations.
fn default_skills() -> Vec<(String, f64)> {
    [("7", 6.0), ("12", 2.0), ("15", 1.0), ("21", 1.0)]
        .map(|(id, w)| (id.to_owned(), w))
        .to_vec()
}

/// One agent_13 row, with the instant it happened and the instant the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRecord {
    pub agent_id: String,
    pub agent_name: String,
    pub conn_id: String,
    /// Operation-local wall clock, as the API writes `date`.
    pub local_date: NaiveDateTime,
    pub at: DateTime<Utc>,
    pub telephone: String,
    pub interaction: &'static str,
    pub duration_secs: u64,
    pub visible_at: DateTime<Utc>,
}

impl Timed for SimRecord {
    fn at(&self) -> DateTime<Utc> {
        self.at
    }
    fn local_date(&self) -> NaiveDateTime {
        self.local_date
    }
    fn visible_at(&self) -> DateTime<Utc> {
        self.visible_at
    }
}

/// An agent's fixed identity (the name before any rename).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimAgent {
    pub id: String,
    pub name: String,
}

const MAX_DURATION_SECS: f64 = 4.0 * 3600.0;

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

    /// Expected records in the minute containing `at`, bursts aside: the rate of the
    /// reference minute's local weekday and hour.
    pub fn expected_per_minute(&self, at: DateTime<Utc>) -> f64 {
        let local = self.local(self.reference(at));
        let hour = f64::from(local.hour()) + f64::from(local.minute()) / 60.0;
        let weekday = match local.weekday() {
            Weekday::Sat => 0.5,
            Weekday::Sun => 0.25,
            _ => 1.0,
        };
        self.config.agents as f64 * self.config.peak_per_agent_hour.max(0.0) / 60.0
            * day_curve(hour)
            * weekday
    }

    /// Every transfer or conference with `from <= at <= to`, visible or not, sorted by
    /// `at`.
    pub fn records_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<SimRecord> {
        self.between(from, to, |m| self.minute(m))
    }

    /// Every transfer or conference whose local date is in `[ini, end]` and that
    /// happened no later than `until`, sorted by local date.
    pub fn records_local(
        &self,
        ini: NaiveDateTime,
        end: NaiveDateTime,
        until: Option<DateTime<Utc>>,
    ) -> Vec<SimRecord> {
        self.local_window(ini, end, until, |m| self.minute(m))
    }

    /// The first `cap + 1` transfers and conferences by local date in `[ini, end]`,
    /// visible at `now` and kept by `keep`.
    pub fn records_visible(
        &self,
        ini: NaiveDateTime,
        end: NaiveDateTime,
        now: DateTime<Utc>,
        cap: usize,
        keep: impl Fn(&SimRecord) -> bool,
    ) -> Vec<SimRecord> {
        self.first_visible(ini, end, Some(now), cap, keep, |m| self.minute(m))
    }

    /// The transfers and conferences of one minute (`minute` counts from the Unix
    /// epoch), sorted by `at`.
    pub fn minute(&self, minute: i64) -> Arc<[SimRecord]> {
        self.transfers.get(minute, || self.generate(minute))
    }

    fn generate(&self, minute: i64) -> Vec<SimRecord> {
        let mut out = Vec::new();
        let Some(minute_start) = DateTime::from_timestamp(minute.saturating_mul(60), 0) else {
            return out;
        };
        if self.agents.is_empty() {
            return out;
        }
        let mut seq = 0u64;
        let mut rng = Rng::new(mix(
            self.config.seed,
            minute.wrapping_add(self.shift_minutes) as u64,
        ));
        let lambda = self.expected_per_minute(minute_start + Duration::seconds(30));
        for _ in 0..rng.poisson(lambda) {
            let at = minute_start + Duration::seconds(rng.below(60) as i64);
            out.push(self.record(&mut rng, at, seq));
            seq += 1;
        }
        for (b, burst) in self.config.bursts.iter().enumerate() {
            let total = burst.records as i128;
            let span = i128::from(burst.duration.num_seconds().max(0));
            let start = burst.start.timestamp();
            let (lo, hi) = if span == 0 {
                if start.div_euclid(60) == minute {
                    (0, total)
                } else {
                    (0, 0)
                }
            } else {
                let a = i128::from(minute * 60 - start);
                (
                    ceil_div(a * total, span).clamp(0, total),
                    ceil_div((a + 60) * total, span).clamp(0, total),
                )
            };
            for k in lo..hi {
                let offset = if span == 0 { 0 } else { k * span / total };
                let at = burst.start + Duration::seconds(offset as i64);
                let mut rng = Rng::new(mix(mix(self.config.seed, 0xB0_0000 + b as u64), k as u64));
                out.push(self.record(&mut rng, at, seq));
                seq += 1;
            }
        }
        let start = self.config.start;
        let end = self.config.end;
        out.retain(|r| r.at >= start && end.is_none_or(|end| r.at <= end));
        out.sort_by_key(|r| r.at);
        out
    }

    /// Whether agent `index` has joined by `at`.
    pub fn active(&self, index: usize, at: DateTime<Utc>) -> bool {
        self.config
            .newcomer
            .as_ref()
            .is_none_or(|n| n.index != index || at >= n.joined)
    }

    /// The agent of a transfer at `at`: any agent alike, but for a newcomer.
    fn transferring_agent(&self, rng: &mut Rng, at: DateTime<Utc>) -> usize {
        let n = self.agents.len();
        let Some(new) = self
            .config
            .newcomer
            .as_ref()
            .filter(|c| c.index < n && n > 1)
        else {
            return rng.below(n as u64) as usize;
        };
        let others = |rng: &mut Rng| {
            let i = rng.below(n as u64 - 1) as usize;
            i + usize::from(i >= new.index)
        };
        if at < new.joined {
            return others(rng);
        }
        let span = (new.settled - new.joined).num_seconds().max(1) as f64;
        let left = ((new.settled - at).num_seconds() as f64 / span).clamp(0.0, 1.0);
        let weight = 1.0 + (new.start_weight - 1.0).max(0.0) * left;
        if rng.unit() < weight / (weight + (n - 1) as f64) {
            new.index
        } else {
            others(rng)
        }
    }

    fn record(&self, rng: &mut Rng, at: DateTime<Utc>, seq: u64) -> SimRecord {
        let at = at.with_nanosecond(0).unwrap_or(at);
        let index = self.transferring_agent(rng, at);
        let agent = &self.agents[index];
        let interaction = if rng.unit() < self.config.conference_share {
            "conference"
        } else {
            "transfer"
        };
        let duration = (170f64.ln() + 0.85 * rng.normal()).exp();
        let duration_secs = duration.clamp(5.0, MAX_DURATION_SECS).round() as u64;
        let telephone = format!("3{:02}{:07}", rng.below(51), rng.below(10_000_000));
        let late = rng.unit() < self.config.late_fraction;
        let (lo, hi) = self.config.late_by;
        let delay = lo.as_secs_f64() + rng.unit() * (hi.as_secs_f64() - lo.as_secs_f64()).max(0.0);
        let visible_at = if late {
            at + Duration::milliseconds((delay * 1000.0) as i64)
        } else {
            at
        };
        let station = (self.config.agent_id_base + index as u64) % 10_000;
        SimRecord {
            agent_id: agent.id.clone(),
            agent_name: self.name_at(index, at),
            conn_id: format!(
                "{}.{station:04}.{}.{seq:05}",
                self.conn_prefix,
                at.timestamp()
            ),
            local_date: self.local(at),
            at,
            telephone,
            interaction,
            duration_secs,
            visible_at,
        }
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

fn floor_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp().div_euclid(60) * 60, 0).unwrap_or(t)
}

fn ceil_div(a: i128, b: i128) -> i128 {
    let q = a.div_euclid(b);
    if a.rem_euclid(b) == 0 {
        q
    } else {
        q + 1
    }
}

/// Share of the peak rate at a local hour: quiet at night, a late-morning peak and a
/// slightly lower afternoon one.
fn day_curve(hour: f64) -> f64 {
    let bump = |mu: f64, sigma: f64| (-(hour - mu).powi(2) / (2.0 * sigma * sigma)).exp();
    (0.03 + 0.97 * bump(10.5, 1.6).max(0.9 * bump(15.5, 1.8))).min(1.0)
}

#[cfg(test)]
mod tests;
