//! What a catch-up costs: windows as long as the API allows, read on from a cut page's
//! last date, take the fewest requests the history allows, even on a first start.

use std::time::Duration;

use crate::support::clock::TestClock;
use crate::support::config::{Operation, TestConfig};
use crate::support::inproc::{assert_exact, total, InProc};
use chrono::{DateTime, TimeZone, Utc};
use wolkvox_exporter::config::defaults::BUCKETS;
use wolkvox_sim::Burst;
use wolkvox_sim::{TransfersTruth, Wolkvox, WolkvoxConfig};

fn local(d: u32, h: u32) -> DateTime<Utc> {
    chrono_tz::America::Bogota.with_ymd_and_hms(2025, 3, d, h, 0, 0).unwrap().with_timezone(&Utc)
}

/// The history of issue 16: a first start (nothing learned) catching up 30 hours of
/// about 360,000 records with a burst of 61,000 in five minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thirty_hour_burst_catch_up_costs_the_floor_on_a_first_start() {
    let (start, end) = (local(12, 0), local(13, 6));
    let clock = TestClock::at(end);
    let mut cfg = WolkvoxConfig::bounded(start, end);
    cfg.sim.seed = 361;
    cfg.sim.agents = 1_000;
    cfg.sim.peak_per_agent_hour = 37.0;
    cfg.sim.bursts =
        vec![Burst { start: local(12, 14), duration: chrono::Duration::minutes(5), records: 61_000 }];
    cfg.clock = clock.sim_clock();
    let fake = Wolkvox::start(cfg);
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&dir.path().join("state.json"))
        .op(Operation::fake("op", &fake).reports(&["agent_13"]))
        .max_agents(2_000)
        .catch_up("30h")
        .config();
    let truth = fake.truth::<TransfersTruth>();
    let exporter = InProc::start(config, &clock).await;
    let m = exporter
        .wait_for("the catch-up", Duration::from_secs(180), |m| total(m, "op") == truth.total())
        .await;
    // The catch-up's requests: up to the one that reached the end (later ones are the
    // next cycles).
    let log = fake.served_log();
    let last = end.with_timezone(&chrono_tz::America::Bogota).naive_local();
    let catch_up: Vec<_> = log
        .iter()
        .scan(false, |done, r| {
            let keep = !*done;
            *done |= r.request.end == Some(last) && r.status == Some(200) && !r.truncated;
            keep.then_some(r)
        })
        .collect();
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
    let read = truth.total();
    let empty = catch_up.iter().filter(|r| r.status == Some(404)).count() as u64;
    let floor = read.div_ceil(60_000) + empty;
    println!("catch-up of {read} records: {} requests, floor {floor}", catch_up.len());
    assert!(read > 360_000, "{read} records");
    assert_eq!(catch_up.len() as u64, floor, "requests for {read} records");
}
