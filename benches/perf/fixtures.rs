//! Workloads: a busy 60,000-record page from the simulator, and stores of N agents with
//! both interactions and every histogram bucket filled.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use wolkvox_exporter::config::defaults::BUCKETS;
use wolkvox_exporter::demo::answer::{self, Format};
use wolkvox_exporter::demo::simulator::{Burst, SimConfig, Simulator};
use wolkvox_exporter::store::{Agent, DailyUse, Data, Health, Histogram, Operation, Store};

/// One API answer at the record cap, and the local window it answers.
pub struct Page {
    pub body: Vec<u8>,
    pub records: usize,
    pub ini: NaiveDateTime,
    pub end: NaiveDateTime,
}

fn t(s: &str) -> DateTime<Utc> {
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
    config.bursts.push(Burst {
        start,
        duration: Duration::minutes(5),
        records: answer::MAX_RECORDS,
    });
    let sim = Simulator::new(config);
    let (ini, end) = (sim.local(start), sim.local(end));
    let mut records = sim.records_local(ini, end, None);
    records.truncate(answer::MAX_RECORDS);
    let count = records.len();
    let body = answer::records_answer(records, &Format::default()).body;
    Page {
        body: body.into_bytes(),
        records: count,
        ini,
        end,
    }
}

/// Durations that land in every default bucket, +Inf included.
const SPREAD: [f64; 10] = [
    12.0, 45.0, 95.0, 250.0, 480.0, 750.0, 1500.0, 3000.0, 6000.0, 9000.0,
];

/// The data of `agents` agents with realistic names, both interactions and every bucket
/// filled, plus `identities` remembered records.
pub fn data(agents: usize, identities: usize) -> Data {
    let mut sim_config = SimConfig::bounded(t("2025-03-10T00:00:00Z"), t("2025-03-11T00:00:00Z"));
    sim_config.agents = agents;
    let sim = Simulator::new(sim_config);
    let mut data = Data::new(&BUCKETS, agents.max(10_000));
    for (i, a) in sim.agents().iter().enumerate() {
        let mut agent = Agent::new(&a.name, 1_741_600_000 + i as i64);
        for (k, series) in agent.series.iter_mut().take(2).enumerate() {
            let mut h = Histogram::new(&BUCKETS);
            for (j, v) in SPREAD.iter().enumerate() {
                for _ in 0..1 + (i + j + k) % 4 {
                    h.observe(&BUCKETS, *v + (i % 7) as f64);
                }
            }
            *series = Some(h);
        }
        data.agents.insert(a.id.clone().into_boxed_str(), agent);
    }
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..identities {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let key = (u128::from(x) << 64) | u128::from(x.rotate_left(29) ^ i as u64);
        data.seen
            .insert(key.into(), 1_741_600_000 + (i % 3600) as i64);
    }
    data
}

pub fn operation(name: &str, data: Data) -> Operation {
    let mut health = Health {
        up: true,
        last_success: Some(t("2025-03-11T00:00:00Z")),
        requests: 1234,
        received: 987_654,
        duplicate: 4321,
        ..Health::default()
    };
    health
        .latency
        .observe(&wolkvox_exporter::store::API_LATENCY_BUCKETS, 0.3);
    Operation {
        name: name.to_owned(),
        daily_limit: 100_000,
        cursor: Some(t("2025-03-11T00:00:00Z")),
        daily: DailyUse {
            day: NaiveDate::from_ymd_opt(2025, 3, 10).unwrap(),
            used: 321,
            exhausted: false,
        },
        data,
        health,
    }
}

/// A store of one operation with `agents` agents.
pub fn store(agents: usize, identities: usize) -> Arc<Store> {
    Arc::new(Store::new(vec![operation(
        "bench",
        data(agents, identities),
    )]))
}
