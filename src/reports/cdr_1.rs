//! `cdr_1`, the call detail records: one row per call leg, counted per agent and
//! direction with the leg's duration. The calls are the denominator of the transfer
//! rate; their seconds give the average handle time.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDateTime;
use enum_map::{Enum, EnumMap};
use prometheus_client::encoding::{EncodeLabelValue, NoLabelSet};
use prometheus_client::metrics::MetricType;
use serde::{Deserialize, Serialize};

use super::agents::Agents;
use super::by_agent::{with_overflow, AgentPages, ByAgent};
use super::fields::{id, parse_date, parse_seconds, present};
use super::{
    Applied, Counted, Encoding, Family, InvalidReason, Key, Kind, Report, ReportName, Schedule, SourceDay,
};
use crate::client::Text;

pub const NAME: ReportName = ReportName::new("cdr_1");

pub const KIND: Kind =
    Kind { name: NAME, schedule: Schedule::Windowed, default_on: true, build: |_| Arc::new(Cdr1) };

#[derive(Debug, Clone, Copy, Enum)]
pub enum Families {
    Calls,
    Seconds,
}

/// The `direction` label, from the row's `type_interaction`.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Enum, EncodeLabelValue, Serialize, Deserialize)]
pub enum Direction {
    inbound,
    outbound,
    internal,
    other,
}

impl Direction {
    /// `inbound`; `outbound`, `outbound_ma`, `out_pre` and anything else starting with
    /// `out`; anything starting with `internal`; everything else is `other`.
    pub fn parse(text: &str) -> Direction {
        let t = text.trim().to_ascii_lowercase();
        if t == "inbound" {
            Direction::inbound
        } else if t.starts_with("out") {
            Direction::outbound
        } else if t.starts_with("internal") {
            Direction::internal
        } else {
            Direction::other
        }
    }
}

/// One row as the API sends it; the personal and free-text fields (telephone,
/// customer_id, destiny, comment...) are never decoded.
#[derive(Debug, Default, Deserialize)]
#[serde(default, bound(deserialize = "'de: 'a"))]
pub struct Record<'a> {
    pub agent_id: Text<'a>,
    pub agent_name: Text<'a>,
    pub conn_id: Text<'a>,
    pub date: Text<'a>,
    pub type_interaction: Text<'a>,
    pub time_seg: Text<'a>,
}

#[derive(Debug)]
pub struct Change<'r> {
    agent_id: &'r str,
    name: Option<&'r str>,
    direction: Direction,
    seconds: u64,
}

/// Calls and their seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calls {
    pub calls: u64,
    pub seconds: u64,
}

/// One agent's series: calls per direction.
pub type Series = EnumMap<Direction, Calls>;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Cdr1Counters {
    pub agents: BTreeMap<Box<str>, Series>,
    pub overflow: Series,
}

#[derive(Debug)]
pub struct Cdr1;

impl Report for Cdr1 {
    const NAME: ReportName = NAME;
    type Record<'de> = Record<'de>;
    type Change<'r> = Change<'r>;
    type Counters = Cdr1Counters;
    type Page = AgentPages<Series>;
    type Family = Families;

    fn family(family: Families) -> Family {
        let (name, help) = match family {
            Families::Calls => ("wolkvox_agent_calls", "Call legs (cdr_1 records) per agent and direction, each record exactly once; grows when a record is ingested, not at the record's own time."),
            Families::Seconds => ("wolkvox_agent_call_seconds", "Sum of the call legs' durations (time_seg) per agent and direction; divided by wolkvox_agent_calls_total it is the average handle time."),
        };
        Family { name, help, unit: None, metric_type: MetricType::Counter }
    }

    fn identity(&self, r: &Record<'_>) -> Key {
        let key = r.time_seg.get().and_then(|_| {
            Some([present(&r.conn_id)?, id(&r.agent_id)?, present(&r.type_interaction)?, r.date.get()?])
        });
        Key::of(key, &[&r.conn_id, &r.agent_id, &r.type_interaction, &r.date, &r.time_seg])
    }

    fn date(&self, r: &Record<'_>) -> Option<NaiveDateTime> {
        r.date.get().and_then(parse_date)
    }

    fn check<'r>(&self, r: &'r Record<'_>) -> Result<Change<'r>, InvalidReason> {
        let seconds = r.time_seg.get().and_then(parse_seconds).ok_or(InvalidReason::bad_time)?;
        Ok(Change {
            agent_id: id(&r.agent_id).ok_or(InvalidReason::missing_field)?,
            name: present(&r.agent_name),
            direction: Direction::parse(present(&r.type_interaction).ok_or(InvalidReason::missing_field)?),
            seconds,
        })
    }

    fn count(&self, rows: Vec<Counted<Change<'_>>>) -> AgentPages<Series> {
        let mut page: ByAgent<Series> = ByAgent::default();
        for Counted { change: c, date, .. } in rows {
            let calls = &mut page.entry(c.agent_id, c.name, date)[c.direction];
            calls.calls += 1;
            calls.seconds += c.seconds;
        }
        page.finish(|s| s)
    }

    fn apply(
        &self,
        c: &mut Cdr1Counters,
        agents: &mut Agents,
        page: AgentPages<Series>,
        _: Option<&SourceDay>,
    ) -> Applied {
        let overflowed = page.apply(agents, &mut c.agents, &mut c.overflow, |series, _, part| {
            let mut rows = 0;
            for (direction, add) in part {
                series[direction].calls += add.calls;
                series[direction].seconds += add.seconds;
                rows += add.calls;
            }
            rows
        });
        Applied { overflowed, notices: Vec::new() }
    }

    fn encode(&self, c: &Cdr1Counters, family: Families, out: Encoding) -> std::fmt::Result {
        for (agent_id, series) in with_overflow(&c.agents, &c.overflow) {
            for (direction, calls) in series {
                if calls.calls == 0 {
                    continue;
                }
                let labels =
                    ([("operation", out.operation), ("agent_id", agent_id)], [("direction", direction)]);
                let value = match family {
                    Families::Calls => calls.calls,
                    Families::Seconds => calls.seconds,
                };
                out.encoder.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(&value, None)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::engine::testing::{self, day};

    fn leg(agent: &str, conn: &str, kind: &str, date: &str, seg: &str) -> serde_json::Value {
        json!({"agent_id": agent, "agent_name": format!("Agent {agent}"), "conn_id": conn,
               "date": date, "type_interaction": kind, "time_seg": seg, "time_min": "1",
               "telephone": "3001234567", "customer_id": "CC123", "comment": "private"})
    }

    #[test]
    fn directions_follow_the_contract() {
        let cases = [
            ("inbound", Direction::inbound),
            ("outbound", Direction::outbound),
            ("outbound_ma", Direction::outbound),
            ("out_pre", Direction::outbound),
            ("OUTBOUND", Direction::outbound),
            ("internal call", Direction::internal),
            ("internal call_inb", Direction::internal),
            ("internal call_que", Direction::internal),
            ("callback", Direction::other),
            ("", Direction::other),
        ];
        for (text, d) in cases {
            assert_eq!(Direction::parse(text), d, "{text:?}");
        }
    }

    #[test]
    fn legs_count_once_per_agent_and_direction_with_their_seconds() {
        let metrics = testing::metrics(&[60.0], 10);
        let op = testing::operation(&metrics, &[NAME]);
        let page = vec![
            leg("1", "c1", "inbound", "2026-11-24 10:00:00", "120"),
            leg("1", "c2", "outbound_ma", "2026-11-24 10:05:00", "30"),
            leg("1", "c3", "inbound", "2026-11-24 10:06:00", "60"),
            // One internal transfer: the same call id, several legs.
            leg("2", "c4", "internal call", "2026-11-24 10:07:00", "10"),
            leg("3", "c4", "internal call_inb", "2026-11-24 10:07:00", "10"),
            leg("2", "c5", "inbound", "2026-11-24 10:08:00", "1.5"),
            leg("-", "c6", "inbound", "2026-11-24 10:09:00", "5"),
        ];
        let out = testing::ingest(&op, NAME, &page, day());
        assert_eq!(out.counted, 5);
        assert_eq!(out.invalid[InvalidReason::bad_time], 1);
        assert_eq!(out.invalid[InvalidReason::missing_field], 1);
        let again = testing::ingest(&op, NAME, &page, day());
        assert_eq!((again.counted, again.duplicate), (0, 7));
        let data = op.read();
        let c: &Cdr1Counters = data.reports[0].counters.downcast_ref().unwrap();
        assert_eq!(c.agents["1"][Direction::inbound], Calls { calls: 2, seconds: 180 });
        assert_eq!(c.agents["1"][Direction::outbound], Calls { calls: 1, seconds: 30 });
        assert_eq!(c.agents["2"][Direction::internal].calls, 1);
        assert_eq!(c.agents["3"][Direction::internal].calls, 1);
        // Agents seen only in cdr_1 are agents of the operation, with their names.
        assert_eq!(data.agents.known["3"].name.as_ref(), "Agent 3");
    }
}
