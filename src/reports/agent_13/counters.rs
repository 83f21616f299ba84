//! agent_13's counters: a duration histogram per agent and interaction with the newest
//! call of each bucket, the late rows and the day tallies; saved in the state and
//! encoded as the report's families.

use std::collections::{BTreeMap, HashMap};

use chrono::DateTime;
use enum_map::EnumMap;
use foldhash::fast::RandomState;
use prometheus_client::encoding::NoLabelSet;
use serde::{Deserialize, Serialize};

use super::Families;
use crate::reports::by_agent::with_overflow;
use crate::reports::days::DayTallies;
use crate::reports::histogram::Histogram;
use crate::reports::labels::Interaction;
use crate::reports::Encoding;

/// One agent's (or the overflow's) series: a histogram per interaction seen.
pub type Series = EnumMap<Interaction, Option<Histogram>>;

/// The newest call of each bucket of a series that got one, shown as OpenMetrics
/// exemplars; not persisted. A slot per such bucket, in bucket order, and their
/// `conn_id`s in one string: two allocations per series, none per call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Calls {
    slots: Box<[Slot]>,
    ids: Box<str>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Slot {
    /// The row's operation-local date, in local seconds (`local_secs`).
    date: i64,
    /// The row's duration in seconds.
    value: u32,
    bucket: u16,
    /// The length of its `conn_id`, the next one in `ids`.
    len: u8,
}

impl Calls {
    /// The calls of some buckets, each at most once, in bucket order, with `conn_id`s
    /// of at most 255 bytes (cleaned by [`clean_label`](crate::reports::fields)); a
    /// duration is kept up to `u32::MAX` seconds, a bucket past 65,535 keeps none.
    pub fn new<S: AsRef<str>>(calls: impl IntoIterator<Item = (usize, S, u64, i64)>) -> Calls {
        let mut slots = Vec::new();
        let mut ids = String::new();
        for (bucket, conn_id, value, date) in calls {
            let (Ok(bucket), Ok(len)) = (u16::try_from(bucket), u8::try_from(conn_id.as_ref().len())) else {
                continue;
            };
            ids.push_str(conn_id.as_ref());
            slots.push(Slot { date, value: u32::try_from(value).unwrap_or(u32::MAX), bucket, len });
        }
        Calls { slots: slots.into(), ids: ids.into() }
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Every bucket's call, in bucket order: its bucket, `conn_id`, duration in seconds
    /// and local date (seconds).
    pub fn iter(&self) -> impl Iterator<Item = (usize, &str, u64, i64)> {
        self.slots.iter().scan(0, |start, s| {
            let end = *start + usize::from(s.len);
            let id = &self.ids[*start..end];
            *start = end;
            Some((usize::from(s.bucket), id, u64::from(s.value), s.date))
        })
    }

    /// Keeps, bucket by bucket, the newer of its own call and `other`'s (`other`'s on
    /// the same date: it was read later).
    pub fn merge(&mut self, other: Calls) {
        if self.is_empty() {
            *self = other;
            return;
        }
        let (mut mine, mut theirs) = (self.iter().peekable(), other.iter().peekable());
        let merged = Calls::new(std::iter::from_fn(move || match (mine.peek(), theirs.peek()) {
            (Some(a), Some(b)) if a.0 == b.0 => {
                let newer = if a.3 <= b.3 { *b } else { *a };
                mine.next();
                theirs.next();
                Some(newer)
            }
            (Some(a), Some(b)) if a.0 < b.0 => mine.next(),
            (Some(_), None) => mine.next(),
            _ => theirs.next(),
        }));
        *self = merged;
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Agent13Counters {
    pub bounds: Vec<f64>,
    pub agents: BTreeMap<Box<str>, Series>,
    pub overflow: Series,
    /// Counts per local day, for a daily report to compare with.
    #[serde(default)]
    pub days: DayTallies,
    /// Rows counted late, per interaction.
    #[serde(default)]
    pub late: EnumMap<Interaction, u64>,
    #[serde(skip)]
    pub(super) calls: HashMap<Box<str>, EnumMap<Interaction, Calls>, RandomState>,
}

impl Agent13Counters {
    /// Counters carried over from an earlier state format.
    pub fn from_parts(bounds: Vec<f64>, agents: BTreeMap<Box<str>, Series>, overflow: Series) -> Self {
        Agent13Counters { bounds, agents, overflow, ..Agent13Counters::default() }
    }

    pub(super) fn encode(&self, family: Families, out: Encoding) -> std::fmt::Result {
        let Encoding { operation, agents, encoder, exemplars } = out;
        if let Families::Late = family {
            for (interaction, n) in &self.late {
                let labels = ([("operation", operation)], [("interaction", interaction)]);
                encoder.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(n, None)?;
            }
            return Ok(());
        }
        for (agent_id, series) in with_overflow(&self.agents, &self.overflow) {
            for (interaction, h) in series {
                let Some(h) = h else { continue };
                let labels =
                    ([("operation", operation), ("agent_id", agent_id)], [("interaction", interaction)]);
                let mut m = encoder.encode_family(&labels)?;
                if let Families::Interactions = family {
                    m.encode_counter::<NoLabelSet, _, u64>(&h.count, None)?;
                    continue;
                }
                // A series' exemplars are handed over before its bucket lines are written.
                if let Some(sink) = exemplars {
                    let calls = self.calls.get(agent_id).map(|c| &c[interaction]);
                    let calls =
                        calls.into_iter().flat_map(Calls::iter).map(|(bucket, conn_id, value, date)| {
                            let date = DateTime::from_timestamp(date, 0).unwrap_or_default();
                            (bucket, conn_id, value, agents.unix_time(date.naive_utc()))
                        });
                    sink.series(self.bounds.len() + 1, calls);
                }
                m.encode_histogram::<NoLabelSet>(h.sum, h.count, &h.encoder_buckets(&self.bounds), None)?;
            }
        }
        Ok(())
    }
}
