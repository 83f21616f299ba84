//! `agent_13_1`, the legs of transfers and conferences: where each went. Counted per
//! origin agent, destination (an agent, a skill, or outside) and type, with a guard on
//! the number of series; transfer legs also make up the calls' chains ([`chains`]).

pub mod chains;

use std::collections::BTreeMap;
use std::sync::Arc;

use enum_map::{Enum, EnumMap};
use foldhash::fast::RandomState;
use indexmap::IndexMap;
use prometheus_client::encoding::NoLabelSet;
use prometheus_client::metrics::MetricType;
use serde::{Deserialize, Serialize};

use chrono::NaiveDateTime;

use super::agents::Agents;
use super::by_agent::{with_overflow, AgentPages, ByAgent};
use super::fields::{clean_label, id, parse_date, present, MAX_ID_BYTES};
use super::labels::Interaction;
use super::{
    Applied, Counted, Encoding, Family, InvalidReason, Key, Kind, Report, ReportName, Schedule, SourceDay,
};
use crate::client::Text;
use chains::{chain_leg, ChainPage, ChainPageBuilder, ChainSettings, Chains};

pub const NAME: ReportName = ReportName::new("agent_13_1");

pub const KIND: Kind = Kind {
    name: NAME,
    schedule: Schedule::Windowed,
    default_on: false,
    build: |settings| Arc::new(Flows { max_flows: settings.max_flows, chains: ChainSettings::of(settings) }),
};

#[derive(Debug, Clone, Copy, Enum)]
pub enum Families {
    Flows,
    Chains,
    Returned,
    Evicted,
}

/// The destination under which flows past `max_flows` are counted.
pub const OVERFLOW_DESTINATION: &str = "_overflow";

/// One row as the API sends it; `ani` and `dnis` (numbers) are never decoded.
#[derive(Debug, Default, Deserialize)]
#[serde(default, bound(deserialize = "'de: 'a"))]
pub struct Record<'a> {
    pub conn_id_transfer: Text<'a>,
    pub id_call_origin: Text<'a>,
    pub date: Text<'a>,
    pub origin_agent_id: Text<'a>,
    pub origin_agent_name: Text<'a>,
    pub destiny_agent_id: Text<'a>,
    pub destiny_agent_name: Text<'a>,
    pub skill_id: Text<'a>,
    pub type_call: Text<'a>,
}

/// Where a leg went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Destination<'r> {
    Agent(&'r str),
    Skill(&'r str),
    External,
}

impl Destination<'_> {
    /// The `destination` label value.
    pub fn label(&self) -> String {
        match self {
            Destination::Agent(id) => clean_label(id, MAX_ID_BYTES),
            Destination::Skill(id) => format!("skill:{}", clean_label(id, MAX_ID_BYTES)),
            Destination::External => "external".to_owned(),
        }
    }
}

#[derive(Debug)]
pub struct Change<'r> {
    origin: &'r str,
    origin_name: Option<&'r str>,
    destination: Destination<'r>,
    destination_name: Option<&'r str>,
    kind: Interaction,
    /// A transfer leg with its call's id: part of a chain.
    chain: Option<(u64, u32)>,
}

/// One origin agent's flows: destination label to counts per type.
pub type Destinations = BTreeMap<Box<str>, EnumMap<Interaction, u64>>;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct FlowCounters {
    pub origins: BTreeMap<Box<str>, Destinations>,
    pub overflow: Destinations,
    #[serde(default)]
    pub chains: Chains,
}

impl FlowCounters {
    /// Series exported: (origin, destination, type) with a count.
    pub fn series(&self) -> usize {
        self.origins
            .values()
            .chain([&self.overflow])
            .flat_map(|f| f.values())
            .map(|types| types.values().filter(|n| **n > 0).count())
            .sum()
    }
}

/// A page: each origin's flows in the order the page first shows them (so that past
/// `max_flows` the first flows seen keep their series), and the agents named as
/// destinations (for their names).
#[derive(Debug, Default)]
pub struct Page {
    origins: AgentPages<Vec<((String, Interaction), u64)>>,
    destinations: AgentPages<()>,
    chains: ChainPage,
}

/// One origin's flows while a page is counted, in order of first appearance.
type OriginFlows<'r> = IndexMap<(Destination<'r>, Interaction), u64, RandomState>;

#[derive(Debug)]
pub struct Flows {
    max_flows: usize,
    chains: ChainSettings,
}

impl Report for Flows {
    const NAME: ReportName = NAME;
    type Record<'de> = Record<'de>;
    type Change<'r> = Change<'r>;
    type Counters = FlowCounters;
    type Page = Page;
    type Family = Families;

    fn family(family: Families) -> Family {
        if !matches!(family, Families::Flows) {
            return chains::family(family);
        }
        Family {
            name: "wolkvox_transfer_flows",
            help: "Transfer and conference legs (agent_13_1 records) per origin agent, destination (an agent id, skill:<id> or external) and type, each record exactly once; past max_flows series, new ones count under destination=\"_overflow\".",
            unit: None,
            metric_type: MetricType::Counter,
        }
    }

    fn check_restored(&self, c: &FlowCounters) -> Result<Option<String>, String> {
        c.chains.check().map(|()| None)
    }

    fn identity(&self, r: &Record<'_>) -> Key {
        let complete = id(&r.origin_agent_id).and(present(&r.type_call));
        let key = complete.and_then(|_| Some([present(&r.conn_id_transfer)?, r.date.get()?]));
        Key::of(key, &[&r.conn_id_transfer, &r.date, &r.origin_agent_id, &r.type_call])
    }

    fn date(&self, r: &Record<'_>) -> Option<NaiveDateTime> {
        r.date.get().and_then(parse_date)
    }

    fn check<'r>(&self, r: &'r Record<'_>) -> Result<Change<'r>, InvalidReason> {
        let destination = match (id(&r.destiny_agent_id), id(&r.skill_id)) {
            (Some(agent), _) => Destination::Agent(agent),
            (None, Some(skill)) => Destination::Skill(skill),
            (None, None) => Destination::External,
        };
        let kind = Interaction::parse(present(&r.type_call).ok_or(InvalidReason::missing_field)?);
        let chain = match (kind, id(&r.id_call_origin), present(&r.conn_id_transfer)) {
            (Interaction::transfer, Some(call), Some(leg)) => Some(chain_leg(call, leg)),
            _ => None,
        };
        Ok(Change {
            origin: id(&r.origin_agent_id).ok_or(InvalidReason::missing_field)?,
            origin_name: present(&r.origin_agent_name),
            destination,
            destination_name: present(&r.destiny_agent_name),
            kind,
            chain,
        })
    }

    fn count(&self, rows: Vec<Counted<Change<'_>>>) -> Page {
        let mut origins: ByAgent<OriginFlows> = ByAgent::default();
        let mut destinations: ByAgent<()> = ByAgent::default();
        let mut chains = ChainPageBuilder::default();
        for Counted { change: c, date, .. } in rows {
            *origins.entry(c.origin, c.origin_name, date).entry((c.destination, c.kind)).or_default() += 1;
            if let Destination::Agent(agent) = c.destination {
                destinations.entry(agent, c.destination_name, date);
            }
            if let Some(leg) = c.chain {
                chains.add(leg, date, c.origin, c.destination);
            }
        }
        Page {
            origins: origins.finish(|o| o.into_iter().map(|((d, kind), n)| ((d.label(), kind), n)).collect()),
            destinations: destinations.finish(|()| ()),
            chains: chains.finish(),
        }
    }

    fn apply(&self, c: &mut FlowCounters, agents: &mut Agents, page: Page, _: Option<&SourceDay>) -> Applied {
        for (raw_id, seen, ()) in page.destinations.0 {
            agents.admit(&raw_id, &seen);
        }
        let mut series = c.series();
        let max_flows = self.max_flows;
        let overflowed = page.origins.apply(agents, &mut c.origins, &mut c.overflow, |flows, _, part| {
            let mut rows = 0;
            for ((destination, kind), n) in part {
                rows += n;
                let known = flows.get(destination.as_str()).is_some_and(|t| t[kind] > 0);
                let key =
                    if known || series < max_flows { destination } else { OVERFLOW_DESTINATION.to_owned() };
                let counts = flows.entry(key.into_boxed_str()).or_default();
                if counts[kind] == 0 {
                    series += 1;
                }
                counts[kind] += n;
            }
            rows
        });
        let notices = c.chains.apply(page.chains, agents, self.chains);
        Applied { overflowed, notices }
    }

    fn settle(&self, c: &mut FlowCounters, _: &mut Agents, until: NaiveDateTime) -> Applied {
        c.chains.settle(until, self.chains.horizon_secs);
        Applied::default()
    }

    fn encode(&self, c: &FlowCounters, family: Families, out: Encoding) -> std::fmt::Result {
        match family {
            Families::Flows => c.encode(out),
            _ => c.chains.encode(family, out),
        }
    }
}

impl FlowCounters {
    fn encode(&self, out: Encoding) -> std::fmt::Result {
        for (origin, flows) in with_overflow(&self.origins, &self.overflow) {
            for (destination, types) in flows {
                for (kind, n) in types {
                    if *n == 0 {
                        continue;
                    }
                    let names = [
                        ("operation", out.operation),
                        ("origin_agent_id", origin),
                        ("destination", destination),
                    ];
                    let labels = (names, [("type", kind)]);
                    out.encoder.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(n, None)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
