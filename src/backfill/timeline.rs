//! The history of one report's series at the backfill's step boundaries: before the rows
//! of a step are counted, its families are rendered as the exporter serves them and each
//! series keeps the boundaries where its value changed.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::engine::Timeline;
use crate::metrics::{render_data, DataPart};
use crate::reports::ReportName;
use crate::store::OperationStore;

/// The boundaries of one operation's range: boundary `b` is the instant `start + b *
/// step` (the last one is the range's end); its value counts every row dated before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    pub start: DateTime<Utc>,
    /// Excluded: the last boundary.
    pub end: DateTime<Utc>,
    pub step_secs: i64,
    pub timezone: Tz,
}

impl Grid {
    /// The last boundary's number.
    pub fn last(&self) -> u32 {
        let span = (self.end - self.start).num_seconds().max(1) as u64;
        u32::try_from(span.div_ceil(self.step_secs as u64)).unwrap_or(u32::MAX)
    }

    /// Boundary `b` as Unix time.
    pub fn time(&self, b: u32) -> i64 {
        (self.start.timestamp() + i64::from(b) * self.step_secs).min(self.end.timestamp())
    }

    /// The step an instant (Unix time) falls in; instants outside the range count in
    /// the first or last step.
    pub fn step_at(&self, unix: i64) -> u32 {
        let n = (unix - self.start.timestamp()).div_euclid(self.step_secs);
        u32::try_from(n.max(0)).unwrap_or(u32::MAX).min(self.last().saturating_sub(1))
    }
}

/// A value from boundary `.0` on; `None`: the series is not exported from there on.
pub type Point = (u32, Option<f64>);

/// The series of one metric family.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FamilyHistory {
    pub name: String,
    /// Its `# HELP`, `# TYPE` and `# UNIT` lines.
    pub meta: Vec<String>,
    /// A counter or histogram: its series start at 0 one boundary before their first
    /// value, as a counter that existed at 0 before its first increment.
    pub counter: bool,
    /// Per series (the sample's name and labels, as rendered), its changes.
    pub series: BTreeMap<String, Vec<Point>>,
}

/// The families of one report (or the agents) of one operation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub families: Vec<FamilyHistory>,
    /// The step whose rows were counted last and are not yet recorded.
    pub pending: Option<u32>,
}

impl History {
    /// Records a rendering as the values from boundary `b` on.
    pub fn record(&mut self, b: u32, text: &str) {
        let mut present: HashSet<&str> = HashSet::new();
        let mut family = None;
        for line in text.lines() {
            if let Some(meta) = line.strip_prefix("# ") {
                let mut words = meta.splitn(3, ' ');
                let (Some(kind), Some(name)) = (words.next(), words.next()) else {
                    continue;
                };
                let f = self.families.iter().position(|f| f.name == name).unwrap_or_else(|| {
                    self.families.push(FamilyHistory { name: name.to_owned(), ..FamilyHistory::default() });
                    self.families.len() - 1
                });
                let fam = &mut self.families[f];
                if !fam.meta.iter().any(|m| m == line) {
                    fam.meta.push(line.to_owned());
                }
                if kind == "TYPE" {
                    fam.counter = matches!(words.next(), Some("counter" | "histogram"));
                }
                family = Some(f);
                continue;
            }
            let (Some(f), Some((key, value))) = (family, line.rsplit_once(' ')) else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            present.insert(key);
            let points = self.families[f].series.entry(key.to_owned()).or_default();
            if points.last().map(|p| p.1) != Some(Some(value)) {
                points.push((b, Some(value)));
            }
        }
        for fam in &mut self.families {
            for (key, points) in &mut fam.series {
                if !present.contains(key.as_str()) && points.last().is_some_and(|p| p.1.is_some()) {
                    points.push((b, None));
                }
            }
        }
    }
}

/// A report's timeline while the engine reads it.
#[derive(Debug)]
pub struct ReportTimeline {
    pub op: Arc<OperationStore>,
    pub report: ReportName,
    pub grid: Grid,
    pub history: History,
}

impl ReportTimeline {
    /// Records the rows counted last: the report has been read to the range's end.
    pub fn finish(&mut self) {
        if let Some(p) = self.history.pending.take() {
            self.record(p + 1);
        }
    }

    /// The operation-local time `step` begins at.
    fn step_start(&self, step: u32) -> NaiveDateTime {
        let unix = self.grid.time(step);
        let t = DateTime::from_timestamp(unix, 0).unwrap_or(self.grid.start);
        crate::calendar::local(t, self.grid.timezone)
    }

    fn record(&mut self, b: u32) {
        let text = render_data(&self.op, DataPart::Report(self.report));
        self.history.record(b, &text);
    }
}

impl Timeline for ReportTimeline {
    /// The earlier instant of a repeated hour.
    fn step_of(&self, date: NaiveDateTime) -> u32 {
        self.grid.step_at(crate::calendar::instant(date, self.grid.timezone).timestamp())
    }

    fn next_step(&mut self, step: u32, settle: &mut dyn FnMut(NaiveDateTime)) {
        // The rows of the pending step are all counted: the store is as it stood at each
        // boundary after it, up to this step's start, once settled there.
        let from = match self.history.pending {
            Some(p) if step <= p => return,
            Some(p) => p + 1,
            None => step,
        };
        for b in from..=step {
            settle(self.step_start(b));
            if self.history.pending.is_some() {
                self.record(b);
            }
        }
        self.history.pending = Some(step);
    }
}

const INFO: &str = "wolkvox_agent_info";
const FIRST_SEEN: &str = "wolkvox_agent_first_seen_timestamp_seconds";

/// The agents' families over the range, from their rendering at the end (`text`): each
/// agent's series start at the boundary after its first record; the agents past
/// `max_agents` when a report first counted one. An agent's name is its newest one over
/// the whole range, as the exporter shows it when it starts.
pub fn agents_history(text: &str, grid: &Grid, reports: &[&History]) -> History {
    let mut h = History::default();
    h.record(0, text);
    let mut starts: BTreeMap<String, u32> = BTreeMap::new();
    for f in h.families.iter_mut().filter(|f| f.name == FIRST_SEEN) {
        for (key, points) in &mut f.series {
            if let Some(&(_, Some(first_seen))) = points.first() {
                let b = (grid.step_at(first_seen as i64) + 1).min(grid.last());
                *points = vec![(b, Some(first_seen))];
                starts.insert(key[f.name.len()..].to_owned(), b);
            }
        }
    }
    let overflow = reports
        .iter()
        .flat_map(|r| &r.families)
        .flat_map(|f| &f.series)
        .filter(|(key, _)| key.contains("agent_id=\"_overflow\""))
        .filter_map(|(_, points)| points.first().map(|p| p.0))
        .min();
    for f in h.families.iter_mut().filter(|f| f.name == INFO) {
        for (key, points) in &mut f.series {
            let labels = &key[f.name.len()..];
            let start = if labels.contains("agent_id=\"_overflow\"") {
                overflow
            } else {
                // `{operation="o",agent_id="a",agent_name="n"}`: inside a label value every
                // quote is escaped, so `,agent_name="` can only start the name's label.
                labels
                    .find(",agent_name=\"")
                    .and_then(|at| starts.get(&format!("{}}}", &labels[..at])))
                    .copied()
            };
            if let (Some(b), Some(&(_, value))) = (start, points.first()) {
                *points = vec![(b, value)];
            }
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Grid {
        let start = DateTime::from_timestamp(1_000_000_200, 0).unwrap();
        Grid {
            start,
            end: start + chrono::Duration::seconds(1_000),
            step_secs: 300,
            timezone: chrono_tz::UTC,
        }
    }

    #[test]
    fn boundaries_end_at_the_range_end() {
        let g = grid();
        // 1000 s in 300 s steps: boundaries at 0, 300, 600, 900 and the end (1000).
        assert_eq!(g.last(), 4);
        assert_eq!(g.time(3) - g.time(0), 900);
        assert_eq!(g.time(4) - g.time(0), 1_000);
        let t0 = g.start.timestamp();
        assert_eq!(g.step_at(t0), 0);
        assert_eq!(g.step_at(t0 + 299), 0);
        assert_eq!(g.step_at(t0 + 300), 1);
        assert_eq!(g.step_at(t0 + 999), 3);
        // Outside the range: the first or the last step.
        assert_eq!(g.step_at(t0 - 5), 0);
        assert_eq!(g.step_at(t0 + 5_000), 3);
    }

    #[test]
    fn a_history_keeps_changes_and_disappearances() {
        let mut h = History::default();
        let first = "# HELP x_total Things.\n# TYPE x_total counter\nx_total{a=\"1\"} 1\n# HELP y Info.\n# TYPE y gauge\ny{a=\"1\",n=\"old\"} 1\n";
        h.record(1, first);
        h.record(2, first);
        let second = "# HELP x_total Things.\n# TYPE x_total counter\nx_total{a=\"1\"} 3\nx_total{a=\"2\"} 1\n# HELP y Info.\n# TYPE y gauge\ny{a=\"1\",n=\"new\"} 1\n";
        h.record(4, second);
        assert_eq!(h.families.len(), 2);
        assert!(h.families[0].counter);
        assert!(!h.families[1].counter);
        assert_eq!(h.families[0].meta.len(), 2);
        let x = &h.families[0].series;
        assert_eq!(x["x_total{a=\"1\"}"], vec![(1, Some(1.0)), (4, Some(3.0))]);
        assert_eq!(x["x_total{a=\"2\"}"], vec![(4, Some(1.0))]);
        let y = &h.families[1].series;
        assert_eq!(y["y{a=\"1\",n=\"old\"}"], vec![(1, Some(1.0)), (4, None)]);
        assert_eq!(y["y{a=\"1\",n=\"new\"}"], vec![(4, Some(1.0))]);
    }

    #[test]
    fn agents_start_at_the_boundary_after_their_first_record() {
        let g = grid();
        let t0 = g.start.timestamp();
        let text = format!(
            "# HELP wolkvox_agent_info Names.\n# TYPE wolkvox_agent_info gauge\n\
             wolkvox_agent_info{{operation=\"o\",agent_id=\"1\",agent_name=\"A\"}} 1\n\
             wolkvox_agent_info{{operation=\"o\",agent_id=\"_overflow\",agent_name=\"past\"}} 1\n\
             # TYPE wolkvox_agent_first_seen_timestamp_seconds gauge\n\
             wolkvox_agent_first_seen_timestamp_seconds{{operation=\"o\",agent_id=\"1\"}} {}\n",
            t0 + 310
        );
        let mut report = History::default();
        report.record(3, "# TYPE c counter\nc_total{operation=\"o\",agent_id=\"_overflow\"} 4\n");
        let h = agents_history(&text, &g, &[&report]);
        let series = |family: &str, key: &str| {
            let f = h.families.iter().find(|f| f.name == family).unwrap();
            f.series[key].clone()
        };
        // The first record falls in step 1, so the agent shows from boundary 2.
        assert_eq!(
            series(INFO, "wolkvox_agent_info{operation=\"o\",agent_id=\"1\",agent_name=\"A\"}"),
            vec![(2, Some(1.0))]
        );
        assert_eq!(
            series(FIRST_SEEN, "wolkvox_agent_first_seen_timestamp_seconds{operation=\"o\",agent_id=\"1\"}"),
            vec![(2, Some((t0 + 310) as f64))]
        );
        assert_eq!(
            series(INFO, "wolkvox_agent_info{operation=\"o\",agent_id=\"_overflow\",agent_name=\"past\"}"),
            vec![(3, Some(1.0))]
        );
    }
}
