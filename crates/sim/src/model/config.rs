//! What the simulated operation looks like: its agents, zone, volume, bursts, renames
//! and newcomer, with the `--demo` story and the bounded operation the tests start from.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

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
    /// Share of agent_13 records that agent_13's answers leave out while agent_12 still
    /// counts them (see [`Simulator::hidden`](super::Simulator::hidden)).
    pub hidden_share: f64,
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
            hidden_share: 0.0,
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
            hidden_share: 0.0,
        }
    }
}

/// Skill 7 takes most of the escalations.
fn default_skills() -> Vec<(String, f64)> {
    [("7", 6.0), ("12", 2.0), ("15", 1.0), ("21", 1.0)].map(|(id, w)| (id.to_owned(), w)).to_vec()
}

fn floor_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp().div_euclid(60) * 60, 0).unwrap_or(t)
}
