//! The calls behind the transfers. Every agent_13 record is a call of its agent in
//! cdr_1 and a leg in agent_13_1 (to another agent, a skill or outside), which may be
//! transferred on (see `chains`); a transfer to an agent also gives that agent an
//! internal leg in cdr_1; and calls that are not transferred fill cdr_1 at
//! `calls_per_transfer`.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDateTime, Timelike, Utc};

use super::rng::{mix, Rng};
use super::{SimRecord, Simulator, Timed};

/// One cdr_1 row: a call leg of an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimCall {
    pub agent_id: String,
    pub agent_name: String,
    pub conn_id: String,
    pub local_date: NaiveDateTime,
    pub at: DateTime<Utc>,
    /// `type_interaction`: `inbound`, `outbound_ma`, `internal call_inb`...
    pub kind: &'static str,
    pub seconds: u64,
    pub telephone: String,
    pub customer_id: String,
    pub skill_id: Option<String>,
    pub visible_at: DateTime<Utc>,
}

/// Where a transfer or conference went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimDestination {
    Agent { id: String, name: String },
    Skill(String),
    External,
}

/// One agent_13_1 row: the leg of a transfer or conference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimLeg {
    /// `conn_id_transfer`
    pub leg_id: String,
    /// `id_call_origin`: the agent_13 record's conn_id.
    pub call_id: String,
    pub local_date: NaiveDateTime,
    pub at: DateTime<Utc>,
    pub origin_id: String,
    pub origin_name: String,
    pub destination: SimDestination,
    /// `type_call`: `transfer` or `conference`.
    pub kind: &'static str,
    pub seconds: u64,
    pub ani: String,
    pub visible_at: DateTime<Utc>,
}

macro_rules! timed {
    ($t:ty) => {
        impl Timed for $t {
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
    };
}
timed!(SimCall);
timed!(SimLeg);

/// Shares of where a transfer goes: another agent, a skill, else outside.
const TO_AGENT: f64 = 0.35;
const TO_SKILL: f64 = 0.55;
/// The `type_interaction` of calls that are not transferred, with their shares.
const CALL_KINDS: [(&str, f64); 6] = [
    ("inbound", 0.75),
    ("outbound", 0.10),
    ("outbound_ma", 0.05),
    ("out_pre", 0.03),
    ("internal call", 0.05),
    ("callback", 0.02),
];
/// Sequence numbers of the calls that are not transferred start here, apart from the
/// transfers' of the same minute.
const CALL_SEQ: u64 = 500_000;

impl Simulator {
    /// The agent_13_1 legs of one minute, sorted by `at`: one per transfer or
    /// conference, and the legs of earlier transfers passed on in it.
    pub fn legs_minute(&self, minute: i64) -> Arc<[SimLeg]> {
        self.legs.get(minute, || {
            let mut legs = self.first_legs(minute);
            legs.extend(self.chain_legs_in(minute));
            legs.sort_by_key(|l| l.at);
            legs
        })
    }

    /// The legs of the transfers and conferences of one minute, in their order.
    pub(super) fn first_legs(&self, minute: i64) -> Vec<SimLeg> {
        self.minute(minute).iter().enumerate().map(|(i, r)| self.leg(minute, i, r)).collect()
    }

    /// The cdr_1 legs of one minute, sorted by `at`.
    pub fn calls_minute(&self, minute: i64) -> Arc<[SimCall]> {
        self.calls.get(minute, || self.generate_calls(minute))
    }

    pub fn legs_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<SimLeg> {
        self.between(from, to, |m| self.legs_minute(m))
    }

    pub fn calls_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<SimCall> {
        self.between(from, to, |m| self.calls_minute(m))
    }

    pub fn legs_local(
        &self,
        ini: NaiveDateTime,
        end: NaiveDateTime,
        until: Option<DateTime<Utc>>,
    ) -> Vec<SimLeg> {
        self.local_window(ini, end, until, |m| self.legs_minute(m))
    }

    pub fn calls_local(
        &self,
        ini: NaiveDateTime,
        end: NaiveDateTime,
        until: Option<DateTime<Utc>>,
    ) -> Vec<SimCall> {
        self.local_window(ini, end, until, |m| self.calls_minute(m))
    }

    /// The first `cap + 1` legs by local date in `[ini, end]`, visible at `now`.
    pub fn legs_visible(
        &self,
        ini: NaiveDateTime,
        end: NaiveDateTime,
        now: DateTime<Utc>,
        cap: usize,
    ) -> Vec<SimLeg> {
        self.first_visible(ini, end, Some(now), cap, |_| true, |m| self.legs_minute(m))
    }

    /// The first `cap + 1` calls by local date in `[ini, end]`, visible at `now`.
    pub fn calls_visible(
        &self,
        ini: NaiveDateTime,
        end: NaiveDateTime,
        now: DateTime<Utc>,
        cap: usize,
    ) -> Vec<SimCall> {
        self.first_visible(ini, end, Some(now), cap, |_| true, |m| self.calls_minute(m))
    }

    pub(super) fn index_of(&self, agent_id: &str) -> usize {
        let id: u64 = agent_id.parse().unwrap_or(self.config.agent_id_base);
        (id.saturating_sub(self.config.agent_id_base) as usize).min(self.agents.len() - 1)
    }

    /// The leg of the `i`-th transfer of a minute; its randomness depends on that alone.
    fn leg(&self, minute: i64, i: usize, r: &SimRecord) -> SimLeg {
        let mut rng = Rng::new(mix(mix(self.config.seed ^ 0x1E6, minute as u64), i as u64));
        let origin = self.index_of(&r.agent_id);
        let destination = self.destination(&mut rng, origin, r.at);
        SimLeg {
            leg_id: format!("{}T", r.conn_id),
            call_id: r.conn_id.clone(),
            local_date: r.local_date,
            at: r.at,
            origin_id: r.agent_id.clone(),
            origin_name: r.agent_name.clone(),
            destination,
            kind: r.interaction,
            seconds: r.duration_secs,
            ani: r.telephone.clone(),
            visible_at: r.visible_at,
        }
    }

    /// Where agent `origin` sends a call at `at`: another agent, a skill or outside.
    pub(super) fn destination(&self, rng: &mut Rng, origin: usize, at: DateTime<Utc>) -> SimDestination {
        let u = rng.unit();
        let n = self.agents.len();
        let mut to = rng.below(n.saturating_sub(1) as u64) as usize;
        to += usize::from(to >= origin);
        if u < TO_AGENT && to < n && self.active(to, at) {
            SimDestination::Agent { id: self.agents[to].id.clone(), name: self.name_at(to, at) }
        } else if u < TO_AGENT + TO_SKILL && !self.config.skills.is_empty() {
            let total: f64 = self.config.skills.iter().map(|s| s.1).sum();
            let mut pick = rng.unit() * total;
            let skill = self
                .config
                .skills
                .iter()
                .find(|s| {
                    pick -= s.1;
                    pick < 0.0
                })
                .unwrap_or(&self.config.skills[0]);
            SimDestination::Skill(skill.0.clone())
        } else {
            SimDestination::External
        }
    }

    fn generate_calls(&self, minute: i64) -> Vec<SimCall> {
        let mut out = Vec::new();
        let Some(minute_start) = DateTime::from_timestamp(minute.saturating_mul(60), 0) else {
            return out;
        };
        if self.agents.is_empty() {
            return out;
        }
        let mut rng =
            Rng::new(mix(self.config.seed ^ 0xCA11, minute.wrapping_add(self.shift_minutes) as u64));
        // The call of every transfer, and the internal leg of its receiving agent.
        for (r, leg) in self.minute(minute).iter().zip(self.first_legs(minute)) {
            let kind = if rng.unit() < 0.8 { "inbound" } else { "outbound" };
            out.push(SimCall {
                agent_id: r.agent_id.clone(),
                agent_name: r.agent_name.clone(),
                conn_id: r.conn_id.clone(),
                local_date: r.local_date,
                at: r.at,
                kind,
                seconds: r.duration_secs + 30 + rng.below(300),
                telephone: r.telephone.clone(),
                customer_id: format!("CC{}", 10_000_000 + rng.below(89_999_999)),
                skill_id: None,
                visible_at: r.visible_at,
            });
            out.extend(internal_leg(&leg));
        }
        out.extend(self.chain_legs_in(minute).iter().filter_map(internal_leg));
        // The calls that no one transferred.
        let extra = (self.config.calls_per_transfer - 1.0).max(0.0);
        let lambda = self.expected_per_minute(minute_start + Duration::seconds(30)) * extra;
        let active: Vec<usize> = (0..self.agents.len()).filter(|&a| self.active(a, minute_start)).collect();
        for k in 0..rng.poisson(lambda) {
            if active.is_empty() {
                break;
            }
            let at = minute_start + Duration::seconds(rng.below(60) as i64);
            let at = at.with_nanosecond(0).unwrap_or(at);
            let index = active[rng.below(active.len() as u64) as usize];
            let mut pick = rng.unit();
            let kind = CALL_KINDS
                .iter()
                .find(|(_, share)| {
                    pick -= share;
                    pick < 0.0
                })
                .map_or("inbound", |k| k.0);
            let seconds = (200f64.ln() + 0.7 * rng.normal()).exp().clamp(5.0, 4.0 * 3600.0);
            let late = rng.unit() < self.config.late_fraction;
            let (lo, hi) = self.config.late_by;
            let delay = lo.as_secs_f64() + rng.unit() * (hi.as_secs_f64() - lo.as_secs_f64()).max(0.0);
            let station = (self.config.agent_id_base + index as u64) % 10_000;
            out.push(SimCall {
                agent_id: self.agents[index].id.clone(),
                agent_name: self.name_at(index, at),
                conn_id: format!("{}.{station:04}.{}.{}", self.conn_prefix, at.timestamp(), CALL_SEQ + k),
                local_date: self.local(at),
                at,
                kind,
                seconds: seconds.round() as u64,
                telephone: format!("3{:02}{:07}", rng.below(51), rng.below(10_000_000)),
                customer_id: format!("CC{}", 10_000_000 + rng.below(89_999_999)),
                skill_id: kind
                    .starts_with("in")
                    .then(|| self.config.skills.first().map_or("1".to_owned(), |s| s.0.clone())),
                visible_at: if late { at + Duration::milliseconds((delay * 1000.0) as i64) } else { at },
            });
        }
        let (start, end) = (self.config.start, self.config.end);
        out.retain(|c| c.at >= start && end.is_none_or(|end| c.at <= end));
        out.sort_by_key(|c| c.at);
        out
    }
}

/// The internal cdr_1 leg of the agent a transfer leg reached, if it reached one.
fn internal_leg(leg: &SimLeg) -> Option<SimCall> {
    let SimDestination::Agent { id, name } = &leg.destination else {
        return None;
    };
    Some(SimCall {
        agent_id: id.clone(),
        agent_name: name.clone(),
        conn_id: format!("{}I", leg.leg_id.trim_end_matches('T')),
        local_date: leg.local_date,
        at: leg.at,
        kind: "internal call_inb",
        seconds: leg.seconds,
        telephone: leg.ani.clone(),
        customer_id: String::new(),
        skill_id: None,
        visible_at: leg.visible_at,
    })
}
