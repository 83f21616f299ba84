//! A deterministic simulated contact center: the agent_13 records of one operation,
//! generated minute by minute from a seed. The `--demo` mode and the tests' fake
//! Wolkvox share it, so what the demo shows is what the tests check.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{
    DateTime, Datelike, Duration, NaiveDateTime, Offset, TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;

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
    /// The `--demo` operation: 40 agents on Colombia time, 24 h of history before `now`
    /// and open-ended, with a few records that show up 1 to 5 minutes late and one agent
    /// renamed half-way so the info metric has something to show.
    pub fn demo(now: DateTime<Utc>) -> Self {
        let start = floor_minute(now) - Duration::hours(24);
        SimConfig {
            seed: 13,
            agents: 40,
            agent_id_base: 1001,
            timezone: chrono_tz::America::Bogota,
            start,
            end: None,
            anchor: start,
            peak_per_agent_hour: 6.0,
            conference_share: 0.25,
            late_fraction: 0.05,
            late_by: (StdDuration::from_secs(60), StdDuration::from_secs(300)),
            bursts: Vec::new(),
            renames: vec![Rename {
                agent_id: "1007".to_string(),
                at: start + Duration::hours(12),
                new_name: "María Fernanda Gómez de Ruiz".to_string(),
            }],
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
        }
    }
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

/// An agent's fixed identity (the name before any rename).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimAgent {
    pub id: String,
    pub name: String,
}

/// Minutes kept in the cache before it is emptied; about a month and a half.
const CACHE_MINUTES: usize = 64 * 1024;
const MAX_DURATION_SECS: f64 = 4.0 * 3600.0;

/// The simulated operation. Generating a minute never looks at another minute, so any
/// range can be produced on demand, in any order, with the same result.
pub struct Simulator {
    config: SimConfig,
    agents: Vec<SimAgent>,
    conn_prefix: u64,
    /// Minutes from a real minute to the reference minute it is generated as.
    shift_minutes: i64,
    cache: Mutex<HashMap<i64, Arc<[SimRecord]>>>,
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
            cache: Mutex::new(HashMap::new()),
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

    /// Every record with `from <= at <= to`, visible or not, sorted by `at`.
    pub fn records_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<SimRecord> {
        let from = from.max(self.config.start);
        let to = self.config.end.map_or(to, |end| to.min(end));
        let mut out = Vec::new();
        if to < from {
            return out;
        }
        for minute in from.timestamp().div_euclid(60)..=to.timestamp().div_euclid(60) {
            let records = self.minute(minute);
            out.extend(
                records
                    .iter()
                    .filter(|r| r.at >= from && r.at <= to)
                    .cloned(),
            );
        }
        out
    }

    /// Every record whose local date is in `[ini, end]` and that happened no later than
    /// `until`, sorted by local date. Both passes of a repeated hour (DST fall-back)
    /// match, as they do on the real API.
    pub fn records_local(
        &self,
        ini: NaiveDateTime,
        end: NaiveDateTime,
        until: Option<DateTime<Utc>>,
    ) -> Vec<SimRecord> {
        if end < ini {
            return Vec::new();
        }
        let offsets = |naive: NaiveDateTime| {
            [-1, 0, 1].map(|days| {
                let probe = naive + Duration::days(days);
                self.config
                    .timezone
                    .offset_from_utc_datetime(&probe)
                    .fix()
                    .local_minus_utc()
            })
        };
        let max_ini = offsets(ini).into_iter().max().unwrap_or(0);
        let min_end = offsets(end).into_iter().min().unwrap_or(0);
        let from = Utc.from_utc_datetime(&ini) - Duration::seconds(i64::from(max_ini) + 3600);
        let mut to = Utc.from_utc_datetime(&end) - Duration::seconds(i64::from(min_end) - 3600);
        if let Some(until) = until {
            to = to.min(until);
        }
        let mut out = self.records_between(from, to);
        out.retain(|r| r.local_date >= ini && r.local_date <= end);
        out.sort_by_key(|r| (r.local_date, r.at));
        out
    }

    /// The records of one minute (`minute` counts from the Unix epoch), sorted by `at`.
    pub fn minute(&self, minute: i64) -> Arc<[SimRecord]> {
        if let Some(hit) = self.lock_cache().get(&minute) {
            return hit.clone();
        }
        let records: Arc<[SimRecord]> = self.generate(minute).into();
        let mut cache = self.lock_cache();
        if cache.len() >= CACHE_MINUTES {
            cache.clear();
        }
        cache.insert(minute, records.clone());
        records
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Arc<[SimRecord]>>> {
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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

    fn record(&self, rng: &mut Rng, at: DateTime<Utc>, seq: u64) -> SimRecord {
        let at = at.with_nanosecond(0).unwrap_or(at);
        let index = rng.below(self.agents.len() as u64) as usize;
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

/// SplitMix64 finaliser: spreads (seed, index) pairs into independent streams.
fn mix(seed: u64, index: u64) -> u64 {
    let mut z = seed
        ^ index
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small SplitMix64 generator: our own, so records never change with a crate upgrade.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0, 0)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
        }
    }

    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    fn poisson(&mut self, lambda: f64) -> u64 {
        if lambda <= 0.0 || !lambda.is_finite() {
            return 0;
        }
        if lambda > 30.0 {
            return (lambda + lambda.sqrt() * self.normal()).round().max(0.0) as u64;
        }
        let limit = (-lambda).exp();
        let mut k = 0;
        let mut p = self.unit();
        while p > limit {
            k += 1;
            p *= self.unit();
        }
        k
    }
}

const FIRST_NAMES: [&str; 32] = [
    "María",
    "José",
    "Luis",
    "Ana",
    "Carlos",
    "Laura",
    "Andrés",
    "Daniela",
    "Juan Pablo",
    "Valentina",
    "Camilo",
    "Sofía",
    "Jorge",
    "Paola",
    "Sebastián",
    "Natalia",
    "Diego",
    "Catalina",
    "Felipe",
    "Lorena",
    "Michael",
    "Jennifer",
    "David",
    "Sarah",
    "Kevin",
    "Emily",
    "Brian",
    "Jessica",
    "Iván",
    "Ximena",
    "Ángela",
    "Nicolás",
];

const LAST_NAMES: [&str; 32] = [
    "García",
    "Rodríguez",
    "Martínez",
    "López",
    "González",
    "Hernández",
    "Pérez",
    "Sánchez",
    "Ramírez",
    "Torres",
    "Flórez",
    "Rivera",
    "Gómez",
    "Díaz",
    "Moreno",
    "Muñoz",
    "Rojas",
    "Vargas",
    "Castro",
    "Ortiz",
    "Jiménez",
    "Suárez",
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Miller",
    "Ospina",
    "Cárdenas",
    "Quintero",
    "Peña",
    "O'Connor",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn minutes_are_independent_of_the_range_asked() {
        let sim = Simulator::new(SimConfig::bounded(
            t("2025-03-10T12:00:00Z"),
            t("2025-03-10T20:00:00Z"),
        ));
        let whole = sim.records_between(t("2025-03-10T13:00:00Z"), t("2025-03-10T15:00:00Z"));
        let other = Simulator::new(sim.config().clone());
        let mut parts = other.records_between(t("2025-03-10T14:00:00Z"), t("2025-03-10T15:00:00Z"));
        let mut first = other.records_between(t("2025-03-10T13:00:00Z"), t("2025-03-10T13:59:59Z"));
        first.append(&mut parts);
        assert!(whole.len() > 50, "{} records", whole.len());
        assert_eq!(whole, first);
    }

    #[test]
    fn conn_ids_are_unique_even_in_a_burst() {
        let mut config = SimConfig::bounded(t("2025-03-10T12:00:00Z"), t("2025-03-10T13:00:00Z"));
        config.bursts.push(Burst {
            start: t("2025-03-10T12:10:00Z"),
            duration: Duration::minutes(2),
            records: 5_000,
        });
        let sim = Simulator::new(config);
        let records = sim.records_between(t("2025-03-10T12:00:00Z"), t("2025-03-10T13:00:00Z"));
        let bursty = records
            .iter()
            .filter(|r| r.at >= t("2025-03-10T12:10:00Z") && r.at < t("2025-03-10T12:12:00Z"))
            .count();
        assert!(bursty >= 5_000);
        let ids: std::collections::HashSet<_> = records.iter().map(|r| &r.conn_id).collect();
        assert_eq!(ids.len(), records.len());
    }

    #[test]
    fn the_day_has_a_shape() {
        let sim = Simulator::new(SimConfig::demo(t("2025-03-12T00:00:00Z")));
        // Bogota is UTC-5: 15:30 UTC is 10:30 local, 08:00 UTC is 03:00 local.
        let peak = sim.expected_per_minute(t("2025-03-11T15:30:00Z"));
        let night = sim.expected_per_minute(t("2025-03-11T08:00:00Z"));
        assert!((peak - 40.0 * 6.0 / 60.0).abs() < 0.01, "peak {peak}");
        assert!(night < peak / 10.0, "night {night}");
    }

    #[test]
    fn fall_back_repeats_local_times() {
        let mut config = SimConfig::bounded(t("2025-11-02T04:00:00Z"), t("2025-11-02T08:00:00Z"));
        config.timezone = chrono_tz::America::New_York;
        config.peak_per_agent_hour = 600.0;
        let sim = Simulator::new(config);
        let ini =
            NaiveDateTime::parse_from_str("2025-11-02 01:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
        let end =
            NaiveDateTime::parse_from_str("2025-11-02 01:59:59", "%Y-%m-%d %H:%M:%S").unwrap();
        let local = sim.records_local(ini, end, None);
        // 01:00-01:59 local happens at 05:00-05:59 UTC (EDT) and again at 06:00-06:59 (EST).
        let utc = sim.records_between(t("2025-11-02T05:00:00Z"), t("2025-11-02T06:59:59Z"));
        assert!(!local.is_empty());
        assert_eq!(local.len(), utc.len());
        assert!(local.windows(2).all(|w| w[0].local_date <= w[1].local_date));
    }

    /// What a record is, apart from where in real time it was placed.
    fn shape(sim: &Simulator, r: &SimRecord) -> (i64, String, &'static str, u64, String) {
        (
            (r.at - sim.config().start).num_seconds(),
            r.agent_id.clone(),
            r.interaction,
            r.duration_secs,
            r.telephone.clone(),
        )
    }

    #[test]
    fn an_anchored_history_is_the_same_wherever_it_is_placed() {
        // Two days before a Monday are a quiet weekend; anchored to a Tuesday they are
        // the Tuesday's and Wednesday's records, whatever real days they are placed on.
        let anchor = t("2025-03-11T00:00:00Z");
        let reference = Simulator::new(SimConfig::bounded(anchor, anchor + Duration::days(2)));
        let placed = |start: DateTime<Utc>| {
            let mut config = SimConfig::bounded(start, start + Duration::days(2));
            config.anchor = anchor;
            Simulator::new(config)
        };
        let all = |sim: &Simulator| {
            let c = sim.config();
            sim.records_between(c.start, c.end.unwrap())
                .iter()
                .map(|r| shape(sim, r))
                .collect::<Vec<_>>()
        };
        let want = all(&reference);
        assert!(want.len() > 1_500, "{} records", want.len());
        for start in [t("2026-11-28T05:30:00Z"), t("2031-07-05T17:07:00Z")] {
            let sim = placed(start);
            assert_eq!(all(&sim), want, "placed at {start}");
            assert_eq!(
                sim.expected_per_minute(start + Duration::hours(15)),
                reference.expected_per_minute(anchor + Duration::hours(15))
            );
        }
        // Unanchored, the same weekend is another, quieter history.
        let weekend = SimConfig::bounded(t("2026-11-28T05:30:00Z"), t("2026-11-30T05:30:00Z"));
        assert!(all(&Simulator::new(weekend)).len() < want.len() / 2);
    }

    #[test]
    fn renames_apply_from_their_instant() {
        let now = t("2025-03-12T00:00:00Z");
        let sim = Simulator::new(SimConfig::demo(now));
        let index = 6;
        assert_eq!(sim.agents()[index].id, "1007");
        let at = sim.config().renames[0].at;
        assert_eq!(
            sim.name_at(index, at - Duration::seconds(1)),
            sim.agents()[index].name
        );
        assert_eq!(sim.name_at(index, at), "María Fernanda Gómez de Ruiz");
    }
}
