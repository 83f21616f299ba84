//! The transfers and conferences themselves (agent_13 rows): how many fall in a minute
//! by the operation's weekday and hour, plus bursts, and what each one is.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, Timelike, Utc, Weekday};

use super::rng::{mix, Rng};
use super::{Simulator, Timed};

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

const MAX_DURATION_SECS: f64 = 4.0 * 3600.0;

impl Simulator {
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
        let mut rng = Rng::new(mix(self.config.seed, minute.wrapping_add(self.shift_minutes) as u64));
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
                (ceil_div(a * total, span).clamp(0, total), ceil_div((a + 60) * total, span).clamp(0, total))
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

    /// The agent of a transfer at `at`: any agent alike, but for a newcomer.
    fn transferring_agent(&self, rng: &mut Rng, at: DateTime<Utc>) -> usize {
        let n = self.agents.len();
        let Some(new) = self.config.newcomer.as_ref().filter(|c| c.index < n && n > 1) else {
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
        let interaction = if rng.unit() < self.config.conference_share { "conference" } else { "transfer" };
        let duration = (170f64.ln() + 0.85 * rng.normal()).exp();
        let duration_secs = duration.clamp(5.0, MAX_DURATION_SECS).round() as u64;
        let telephone = format!("3{:02}{:07}", rng.below(51), rng.below(10_000_000));
        let late = rng.unit() < self.config.late_fraction;
        let (lo, hi) = self.config.late_by;
        let delay = lo.as_secs_f64() + rng.unit() * (hi.as_secs_f64() - lo.as_secs_f64()).max(0.0);
        let visible_at = if late { at + Duration::milliseconds((delay * 1000.0) as i64) } else { at };
        let station = (self.config.agent_id_base + index as u64) % 10_000;
        SimRecord {
            agent_id: agent.id.clone(),
            agent_name: self.name_at(index, at),
            conn_id: format!("{}.{station:04}.{}.{seq:05}", self.conn_prefix, at.timestamp()),
            local_date: self.local(at),
            at,
            telephone,
            interaction,
            duration_secs,
            visible_at,
        }
    }
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
