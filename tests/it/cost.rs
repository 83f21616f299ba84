//! What a catch-up costs: windows planned from the density the exporter learned, and
//! split at a cut page's last date, read a history in about the fewest requests.

use std::time::Duration;

use crate::support::clock::TestClock;
use crate::support::config::{Operation, TestConfig};
use crate::support::inproc::{assert_exact, total, InProc};
use chrono::{DateTime, TimeZone, Utc};
use wolkvox_exporter::config::defaults::BUCKETS;
use wolkvox_sim::Burst;
use wolkvox_sim::{TransfersTruth, Wolkvox, WolkvoxConfig};

fn local(d: u32, h: u32) -> DateTime<Utc> {
    chrono_tz::America::Bogota
        .with_ymd_and_hms(2025, 3, d, h, 0, 0)
        .unwrap()
        .with_timezone(&Utc)
}

/// The history of issue "API cost": 30 hours of about 300,000 records and a burst of
/// 61,000, after a day the exporter read (and learned the shape of) before going down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thirty_hour_catch_up_costs_at_most_a_quarter_over_the_floor() {
    let (start, down, end) = (local(11, 0), local(12, 0), local(13, 6));
    let clock = TestClock::at(down);
    let mut cfg = WolkvoxConfig::bounded(start, end);
    cfg.sim.seed = 361;
    cfg.sim.agents = 1_000;
    cfg.sim.peak_per_agent_hour = 36.6;
    cfg.sim.bursts = vec![Burst {
        start: local(12, 14),
        duration: chrono::Duration::minutes(5),
        records: 61_000,
    }];
    cfg.clock = clock.sim_clock();
    let fake = Wolkvox::start(cfg);
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&dir.path().join("state.json"))
        .op(Operation::fake("op", &fake).reports(&["agent_13"]))
        .max_agents(2_000)
        .config();

    // The first day, read once: the exporter learns how many records each hour holds.
    let first = fake.truth_between::<TransfersTruth>(start, down);
    let exporter = InProc::start(config.clone(), &clock).await;
    exporter
        .wait_for("the first day read", Duration::from_secs(120), |m| {
            total(m, "op") == first.total()
        })
        .await;
    exporter.stop().await;

    // Thirty hours later it starts again: [cursor - overlap, now] is read.
    clock.set(end);
    let before = fake.requests();
    let overlap = chrono::Duration::minutes(30);
    let read = fake
        .truth_between::<TransfersTruth>(down - overlap, end)
        .total();
    let truth = fake.truth::<TransfersTruth>();
    let exporter = InProc::start(config, &clock).await;
    let m = exporter
        .wait_for("the catch-up", Duration::from_secs(180), |m| {
            total(m, "op") == truth.total()
        })
        .await;
    // The catch-up's requests: up to the one that reached the end (later ones are the
    // next cycles).
    let log = fake.served_log();
    let last = clock
        .now()
        .with_timezone(&chrono_tz::America::Bogota)
        .naive_local();
    let catch_up: Vec<_> = log
        .iter()
        .skip(before as usize)
        .scan(false, |done, r| {
            let keep = !*done;
            *done |= r.request.end == Some(last) && r.status == Some(200) && !r.truncated;
            keep.then_some(r)
        })
        .collect();
    let requests = catch_up.len() as u64;
    for r in &catch_up {
        println!(
            "  {:?} .. {:?}: {} records{}",
            r.request.ini,
            r.request.end,
            r.records,
            if r.truncated { ", cut" } else { "" }
        );
    }
    exporter.stop().await;
    assert_exact(&m, "op", &truth, &BUCKETS);
    let floor = read.div_ceil(60_000);
    println!("catch-up of {read} records: {requests} requests, floor {floor}");
    assert!(read > 350_000, "{read} records");
    assert!(
        requests as f64 <= 1.25 * floor as f64,
        "{requests} requests for {read} records, floor {floor}"
    );
}
