//! Workloads: a busy 60,000-record page from the simulator, and stores of N agents with
//! both interactions and every histogram bucket filled, built the way the exporter
//! builds them (a restored store, pages through the agent_13 report).

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use serde_json::json;
use wolkvox_exporter::client::RECORD_CAP;
use wolkvox_exporter::config::{Config, FileConfig, Overrides};
use wolkvox_exporter::engine::{Outcome, PageSpec, Tally};
use wolkvox_exporter::reports::Identity;
use wolkvox_exporter::store::{OperationStore, Store};
use wolkvox_sim::reports::{agent_13::Transfers, page};
use wolkvox_sim::{Burst, Format, SimConfig, Simulator};

/// One API answer at the record cap, and the local window it answers.
pub struct Page {
    pub body: Vec<u8>,
    pub records: usize,
    pub window: PageSpec,
}

pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A busy five minutes of a 2,000-agent operation: the usual traffic plus a burst, cut
/// at 60,000 records as the API cuts it. Realistic values: accented names, conn ids,
/// telephones, both interactions, log-normal durations.
pub fn busy_page() -> Page {
    let start = t("2025-03-10T15:00:00Z"); // 10:00 in Bogota, a Monday morning
    let end = start + Duration::minutes(5) - Duration::seconds(1);
    let mut config = SimConfig::bounded(start, end);
    config.agents = 2_000;
    config.peak_per_agent_hour = 12.0;
    config.bursts.push(Burst { start, duration: Duration::minutes(5), records: RECORD_CAP });
    let sim = Simulator::new(config);
    let (ini, end) = (sim.local(start), sim.local(end));
    let mut records = sim.records_local(ini, end, None);
    records.truncate(RECORD_CAP);
    let count = records.len();
    let body = page::<Transfers>(&records, &Format::default()).body;
    Page { body: body.into_bytes(), records: count, window: spec(ini, end) }
}

/// The configuration of one operation `bench` with the default buckets.
pub fn config(max_agents: usize) -> Config {
    let yaml = format!(
        "metrics:\n  max_agents: {max_agents}\nstate:\n  path: /nonexistent/bench-state.json\n\
         operations:\n  - name: bench\n    base_url: http://127.0.0.1:1\n    token: t\n    licenses: 100\n"
    );
    Config::build(FileConfig::parse(&yaml).unwrap(), &Overrides::default(), |_| None).unwrap()
}

/// A local window, both ends inclusive, counted as a page that may not be split.
pub fn spec(ini: NaiveDateTime, end: NaiveDateTime) -> PageSpec {
    PageSpec { ini, end, may_split: false, late_before: None, overlap: Duration::minutes(30) }
}

/// One answer through the operation's agent_13 report, as the engine counts it.
pub fn ingest(store: &Store, body: &[u8], window: PageSpec) -> Tally {
    let op = &store.operations()[0];
    match wolkvox_exporter::engine::ingest(op, 0, 200, body, window, None) {
        Ok(Outcome::Counted(t)) => t,
        other => panic!("the page counts: {other:?}"),
    }
}

/// An empty store of one operation, as a first start builds it.
pub fn empty_store(max_agents: usize) -> Arc<Store> {
    Arc::new(wolkvox_exporter::state::restore(&config(max_agents), t("2025-03-11T00:00:00Z")))
}

/// Durations that land in every default bucket, +Inf included.
const SPREAD: [u64; 10] = [12, 45, 95, 250, 480, 750, 1500, 3000, 6000, 9000];

fn local(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
}

/// A store of `agents` agents with realistic names, both interactions and every bucket
/// filled, plus `identities` remembered records.
pub fn store(agents: usize, identities: usize) -> Arc<Store> {
    let store = empty_store(agents.max(10_000));
    let op: &OperationStore = &store.operations()[0];
    let mut sim_config = SimConfig::bounded(t("2025-03-10T00:00:00Z"), t("2025-03-11T00:00:00Z"));
    sim_config.agents = agents;
    let sim = Simulator::new(sim_config);
    let window = spec(local("2025-03-10 00:00:00"), local("2025-03-10 23:59:59"));
    let mut rows = Vec::new();
    let mut n = 0u64;
    for (i, a) in sim.agents().iter().enumerate() {
        for (k, kind) in ["transfer", "conference"].into_iter().enumerate() {
            for (j, secs) in SPREAD.iter().enumerate() {
                for _ in 0..1 + (i + j + k) % 4 {
                    let secs = secs + (i % 7) as u64;
                    n += 1;
                    rows.push(json!({"agent_name": a.name, "agent_id": a.id,
                        "conn_id": format!("{n}.0001"), "date": "2025-03-10 10:00:00",
                        "type_interaction": kind,
                        "time": format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)}));
                }
            }
        }
        if rows.len() > 50_000 || i + 1 == agents {
            let body = json!({"code": 200, "data": rows}).to_string();
            ingest(&store, body.as_bytes(), window);
            rows.clear();
        }
    }
    let mut ledger = op.ledger();
    let seen = &mut ledger.reports[0].seen;
    seen.clear();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..identities {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        seen.insert(Identity(x, x.rotate_left(29) ^ i as u64), 1_741_600_000 + (i % 3600) as i64);
    }
    drop(ledger);
    store
}
