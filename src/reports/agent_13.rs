//! `agent_13`, "transfers and detailed conferences": one row per transfer or conference,
//! counted per agent and interaction, with its duration in a histogram whose buckets
//! carry the newest call as an exemplar, and its day tallies kept for a daily report.

use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime};
use enum_map::{Enum, EnumMap};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;
use serde::Deserialize;

use super::agents::Agents;
use super::by_agent::{with_overflow, AgentPages, ByAgent};
use super::days::{DayCount, DayTallies, PageDays};
use super::fields::{clean_label, parse_date, parse_duration, present};
use super::histogram::Histogram;
use super::labels::Interaction;
use super::{
    Applied, Counted, Encoding, Family, InvalidReason, Key, Kind, Report, ReportName, Schedule, Settings,
    SourceDay,
};
use crate::calendar::local_secs;
use crate::client::Text;
pub use counters::{Agent13Counters, Calls, Series};

mod counters;

pub const NAME: ReportName = ReportName::new("agent_13");

pub const KIND: Kind = Kind {
    name: NAME,
    schedule: Schedule::Windowed,
    default_on: true,
    build: |settings| Arc::new(Agent13::new(settings)),
};

#[derive(Debug, Clone, Copy, Enum)]
pub enum Families {
    Interactions,
    Duration,
    Late,
}

/// One row as the API sends it; `telephone` is never decoded.
#[derive(Debug, Default, Deserialize)]
#[serde(default, bound(deserialize = "'de: 'a"))]
pub struct Record<'a> {
    pub agent_name: Text<'a>,
    pub agent_id: Text<'a>,
    pub conn_id: Text<'a>,
    pub date: Text<'a>,
    pub type_interaction: Text<'a>,
    pub time: Text<'a>,
}

#[derive(Debug)]
pub struct Change<'r> {
    agent_id: &'r str,
    name: &'r str,
    conn_id: &'r str,
    interaction: Interaction,
    seconds: u64,
}

#[derive(Debug)]
pub struct Agent13 {
    bounds: Arc<[f64]>,
    /// Whether the newest call of each bucket is kept for exemplars: not kept when
    /// never shown.
    exemplars: bool,
}

impl Agent13 {
    pub fn new(settings: &Settings) -> Self {
        Agent13 { bounds: settings.duration_buckets.clone().into(), exemplars: settings.exemplars }
    }
}

/// What a page adds to one agent's series, and the newest call of each bucket: while
/// the page is counted, a slot per bucket borrowing from the rows (so only the survivors
/// are copied), then [`Calls`].
#[derive(Debug, Default)]
pub struct AgentPage<C = Calls> {
    series: Series,
    calls: EnumMap<Interaction, C>,
}

/// The newest call of a bucket while a page is counted: its date, duration and conn_id.
type NewestCall<'r> = Option<(NaiveDateTime, u64, &'r str)>;

/// One page: what it adds to each agent, to each day's tallies, and to the late rows.
#[derive(Debug, Default)]
pub struct Page {
    agents: AgentPages<AgentPage>,
    days: Vec<(NaiveDate, Box<str>, DayCount)>,
    late: EnumMap<Interaction, u64>,
}

impl Report for Agent13 {
    const NAME: ReportName = NAME;
    type Record<'de> = Record<'de>;
    type Change<'r> = Change<'r>;
    type Counters = Agent13Counters;
    type Page = Page;
    type Family = Families;

    fn family(family: Families) -> Family {
        let (name, help, unit, metric_type) = match family {
            Families::Interactions => ("wolkvox_agent_interactions", "Transfer and conference records counted per agent, each record exactly once; grows when a record is ingested, not at the record's own time.", None, MetricType::Counter),
            Families::Duration => ("wolkvox_agent_interaction_duration", "Elapsed time of transfer and conference records per agent (the report's time field); observed when a record is ingested. In OpenMetrics each bucket carries the newest record's conn_id as an exemplar.", Some(Unit::Seconds), MetricType::Histogram),
            Families::Late => ("wolkvox_agent_interactions_late", "Of those records, the ones counted late: more than the poll delay and two poll intervals (at least two minutes) after their own date (a catch-up after an outage or a restart, or a record the API showed late). Subtract it to get what arrived on time.", None, MetricType::Counter),
        };
        Family { name, help, unit, metric_type }
    }

    fn new_counters(&self) -> Agent13Counters {
        Agent13Counters { bounds: self.bounds.to_vec(), ..Agent13Counters::default() }
    }

    fn check_restored(&self, c: &Agent13Counters) -> Result<Option<String>, String> {
        let consistent = with_overflow(&c.agents, &c.overflow)
            .flat_map(|(_, s)| s.values().flatten())
            .all(|h| h.is_consistent(&c.bounds));
        if !consistent {
            return Err("saved histograms are inconsistent with their buckets".to_owned());
        }
        // Saved bounds win, so a restart never breaks a histogram's buckets.
        Ok((c.bounds != *self.bounds).then(|| {
            format!(
                "duration buckets differ from the saved state's {:?}; keeping the saved \
                 buckets (remove the state file to apply new ones, which resets the counters)",
                c.bounds
            )
        }))
    }

    fn identity(&self, r: &Record<'_>) -> Key {
        let key = r.time.get().and(r.agent_name.get()).and_then(|_| {
            Some([present(&r.conn_id)?, present(&r.agent_id)?, present(&r.type_interaction)?, r.date.get()?])
        });
        Key::of(key, &[&r.conn_id, &r.agent_id, &r.type_interaction, &r.date, &r.time, &r.agent_name])
    }

    fn date(&self, r: &Record<'_>) -> Option<NaiveDateTime> {
        r.date.get().and_then(parse_date)
    }

    fn check<'r>(&self, r: &'r Record<'_>) -> Result<Change<'r>, InvalidReason> {
        let field = |f: &'r Text<'_>| present(f).ok_or(InvalidReason::missing_field);
        let seconds = r.time.get().and_then(parse_duration).ok_or(InvalidReason::bad_time)?;
        Ok(Change {
            agent_id: field(&r.agent_id)?,
            name: r.agent_name.get().unwrap_or(""),
            conn_id: field(&r.conn_id)?,
            interaction: Interaction::parse(field(&r.type_interaction)?),
            seconds,
        })
    }

    fn count(&self, rows: Vec<Counted<Change<'_>>>) -> Page {
        let bounds = &self.bounds;
        let mut page: ByAgent<AgentPage<Vec<NewestCall>>> = ByAgent::default();
        let mut days = PageDays::default();
        let mut late = EnumMap::default();
        for Counted { change: c, date, late: is_late } in rows {
            days.add(date, c.agent_id, c.interaction);
            late[c.interaction] += u64::from(is_late);
            let draft = page.entry(c.agent_id, Some(c.name), date);
            let value = c.seconds as f64;
            draft.series[c.interaction].get_or_insert_with(|| Histogram::new(bounds)).observe(bounds, value);
            if !self.exemplars {
                continue;
            }
            let bucket = Histogram::bucket(bounds, value);
            let calls = &mut draft.calls[c.interaction];
            calls.resize(bounds.len() + 1, None);
            if calls[bucket].is_none_or(|(newest, _, _)| newest <= date) {
                calls[bucket] = Some((date, c.seconds, c.conn_id));
            }
        }
        let agents = page.finish(|draft| AgentPage {
            series: draft.series,
            calls: EnumMap::from_fn(|i| {
                Calls::new(draft.calls[i].iter().enumerate().filter_map(|(bucket, e)| {
                    let (date, value, conn_id) = (*e)?;
                    Some((bucket, clean_label(conn_id, 64), value, local_secs(date)))
                }))
            }),
        });
        Page { agents, days: days.finish(), late }
    }

    fn apply(
        &self,
        c: &mut Agent13Counters,
        agents: &mut Agents,
        page: Page,
        _: Option<&SourceDay>,
    ) -> Applied {
        c.days.merge(page.days);
        for (interaction, n) in page.late {
            c.late[interaction] += n;
        }
        let calls = &mut c.calls;
        let overflowed = page.agents.apply(agents, &mut c.agents, &mut c.overflow, |series, id, part| {
            let mut rows = 0;
            for (interaction, h) in part.series {
                let Some(h) = h else { continue };
                rows += h.count;
                match &mut series[interaction] {
                    Some(total) => total.merge(&h),
                    empty => *empty = Some(h),
                }
            }
            if part.calls.values().all(Calls::is_empty) {
                return rows;
            }
            let newest = match calls.get_mut(id) {
                Some(c) => c,
                None => calls.entry(id.into()).or_default(),
            };
            for (interaction, page_calls) in part.calls {
                newest[interaction].merge(page_calls);
            }
            rows
        });
        Applied { overflowed, notices: Vec::new() }
    }

    fn day_tallies(c: &mut Agent13Counters) -> Option<&mut DayTallies> {
        Some(&mut c.days)
    }

    fn encode(&self, c: &Agent13Counters, family: Families, out: Encoding) -> std::fmt::Result {
        c.encode(family, out)
    }
}

#[cfg(test)]
mod tests;
