//! Calls passed from agent to agent. The agent a transfer reaches (or whoever takes it
//! from a skill) may transfer it again, up to three times, sometimes back to an agent
//! who held it already; a few calls are transferred again hours later. These legs are
//! agent_13_1 rows (and cdr_1's internal leg of the agent they reach), nothing else.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::rng::{mix, Rng};
use super::{SimDestination, SimLeg, SimRecord, Simulator};

/// Shares of transfers passed on again at least once, twice, three times.
const AGAIN: [f64; 3] = [0.30, 0.12, 0.04];
/// Share of the legs passed on that go back to an agent who held the call.
const BACK: f64 = 0.35;
/// Seconds between two legs of a chain.
const GAP_SECS: (u64, u64) = (120, 1_800);
/// Share of transferred calls transferred again long after their first leg, and when
/// (seconds after it): mostly past a 2-hour horizon, some before the first chain of the
/// call is settled and some after.
const LATER: f64 = 0.05;
const LATER_SECS: (u64, u64) = (110 * 60, 200 * 60);
/// The most minutes a call's legs follow its first.
const SPAN_MINUTES: i64 = (LATER_SECS.1 / 60) as i64 + 1;

impl Simulator {
    /// The legs passed on in one minute, from the transfers of the minutes before it.
    pub(super) fn chain_legs_in(&self, minute: i64) -> Vec<SimLeg> {
        (minute - SPAN_MINUTES..=minute)
            .flat_map(|m| {
                let legs = self.chain_legs_from(m);
                (0..legs.len()).filter_map(move |i| {
                    let l = &legs[i];
                    (l.at.timestamp().div_euclid(60) == minute).then(|| l.clone())
                })
            })
            .collect()
    }

    /// The legs that the transfers of one minute are passed on in, whenever they fall.
    fn chain_legs_from(&self, minute: i64) -> Arc<[SimLeg]> {
        self.chains.get(minute, || {
            let records = self.minute(minute);
            let end = self.config.end;
            self.first_legs(minute)
                .iter()
                .zip(records.iter())
                .enumerate()
                .filter(|(_, (_, r))| r.interaction == "transfer")
                .flat_map(|(i, (first, r))| self.passed_on(minute, i, r, first))
                .filter(|l| end.is_none_or(|end| l.at <= end))
                .collect()
        })
    }

    /// The legs after `first`, the `i`-th transfer of a minute; their randomness depends
    /// on that alone.
    fn passed_on(&self, minute: i64, i: usize, r: &SimRecord, first: &SimLeg) -> Vec<SimLeg> {
        let mut rng = Rng::new(mix(mix(self.config.seed ^ 0xC4A1, minute as u64), i as u64));
        let times = rng.unit();
        let again = AGAIN.iter().filter(|&&share| times < share).count();
        let mut held = vec![self.index_of(&first.origin_id)];
        let mut out: Vec<SimLeg> = Vec::new();
        let mut last = first.clone();
        for k in 1..=again {
            let from = match &last.destination {
                SimDestination::Agent { id, .. } => self.index_of(id),
                SimDestination::Skill(_) => self.active_agent(&mut rng, last.at),
                SimDestination::External => break,
            };
            held.push(from);
            let gap = GAP_SECS.0 + rng.below(GAP_SECS.1 - GAP_SECS.0);
            let at = last.at + Duration::seconds(gap as i64);
            let back: Vec<usize> = held.iter().copied().filter(|&a| a != from).collect();
            let to = if rng.unit() < BACK && !back.is_empty() {
                let a = back[rng.below(back.len() as u64) as usize];
                self.agent_destination(a, at)
            } else {
                self.destination(&mut rng, from, at)
            };
            if let SimDestination::Agent { id, .. } = &to {
                held.push(self.index_of(id));
            }
            last = self.passed_leg(&mut rng, r, k, from, to, at);
            out.push(last.clone());
        }
        if rng.unit() < LATER {
            let at = first.at + Duration::seconds(rng_between(&mut rng, LATER_SECS) as i64);
            let from = self.active_agent(&mut rng, at);
            let to = self.destination(&mut rng, from, at);
            out.push(self.passed_leg(&mut rng, r, 9, from, to, at));
        }
        out
    }

    fn passed_leg(
        &self,
        rng: &mut Rng,
        r: &SimRecord,
        k: usize,
        from: usize,
        destination: SimDestination,
        at: DateTime<Utc>,
    ) -> SimLeg {
        let seconds = (120f64.ln() + 0.8 * rng.normal()).exp().clamp(5.0, 7200.0) as u64;
        let late = rng.unit() < self.config.late_fraction;
        let delay = rng_between(
            rng,
            (self.config.late_by.0.as_millis() as u64, self.config.late_by.1.as_millis() as u64),
        );
        SimLeg {
            leg_id: format!("{}T{k}", r.conn_id),
            call_id: r.conn_id.clone(),
            local_date: self.local(at),
            at,
            origin_id: self.agents[from].id.clone(),
            origin_name: self.name_at(from, at),
            destination,
            kind: "transfer",
            seconds,
            ani: r.telephone.clone(),
            visible_at: match late {
                true => at + Duration::milliseconds(delay as i64),
                false => at,
            },
        }
    }

    fn agent_destination(&self, index: usize, at: DateTime<Utc>) -> SimDestination {
        SimDestination::Agent { id: self.agents[index].id.clone(), name: self.name_at(index, at) }
    }

    /// An agent working at `at` (the one who takes a call from a skill).
    fn active_agent(&self, rng: &mut Rng, at: DateTime<Utc>) -> usize {
        let n = self.agents.len() as u64;
        let pick = rng.below(n) as usize;
        if self.active(pick, at) {
            pick
        } else {
            (pick + 1) % self.agents.len()
        }
    }
}

fn rng_between(rng: &mut Rng, (lo, hi): (u64, u64)) -> u64 {
    lo + rng.below(hi.saturating_sub(lo).max(1))
}
