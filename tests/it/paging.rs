//! Paging by date across restarts, and a daily report that asks only for days it can
//! use: a binary stopped (gracefully, then with SIGKILL) after a cut page still counts
//! every record once; a first start that catches up 35 days asks agent_12 only for the
//! days whose agent_13 tallies are kept.

use std::time::Duration;

use crate::support::clock::{anchored, TestClock};
use crate::support::config::{Operation, TestConfig};
use crate::support::exporter::Exporter;
use crate::support::exposition::Exposition;
use crate::support::inproc::{assert_exact_indexed, total, InProc};
use crate::support::wait::{check, Wait};
use chrono::{NaiveDate, TimeZone, Utc};
use wolkvox_exporter::config::defaults::BUCKETS;
use wolkvox_exporter::reports::days::KEPT_DAYS;
use wolkvox_sim::{Burst, TransfersTruth, Wolkvox, WolkvoxConfig};

/// Answers cut at the cap that the fake has served.
fn cut(fake: &Wolkvox) -> usize {
    fake.served_log().iter().filter(|r| r.truncated).count()
}

#[test]
fn a_stop_or_a_kill_in_the_middle_of_date_paging_stays_exact() {
    // Six hours of 1,000 agents with 150,000 records in ten minutes: one window, read
    // by date in pages of 60,000; slow answers, so each life ends between two pages.
    let (mut sim, _) = anchored(chrono::Duration::hours(6));
    sim.seed = 16;
    sim.agents = 1_000;
    sim.peak_per_agent_hour = 4.0;
    sim.bursts = vec![Burst {
        start: sim.start + chrono::Duration::hours(2),
        duration: chrono::Duration::minutes(10),
        records: 150_000,
    }];
    let mut cfg = WolkvoxConfig::new(sim);
    cfg.latency = Duration::from_millis(700);
    let fake = Wolkvox::start(cfg);
    let truth = fake.truth::<TransfersTruth>();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&dir.path().join("state.json"))
        .op(Operation::fake("paging", &fake).reports(&["agent_13"]))
        .max_agents(2_000)
        .catch_up("7h")
        .write(dir.path());
    let args = [config.as_str()];

    for graceful in [true, false] {
        let before = cut(&fake);
        let mut exporter = Exporter::start_listening(&args);
        Wait::new("a cut page served", Duration::from_secs(120))
            .poll(|| check(cut(&fake) > before, || cut(&fake)))
            .unwrap();
        if graceful {
            exporter.terminate();
        } else {
            exporter.kill();
        }
    }
    let exporter = Exporter::start(&args);
    let text = exporter.wait_for_metrics(Duration::from_secs(180), |t| {
        total(&Exposition::parse(t), "paging") >= truth.total()
    });
    let m = Exposition::parse(&text);
    assert_exact_indexed(&m, "paging", &truth, &BUCKETS);
    // Each life read at least one cut page: the stops fell in the middle of paging.
    assert!(cut(&fake) >= 3, "{} cut pages", cut(&fake));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_35_day_first_catch_up_asks_agent_12_only_for_days_it_can_reconcile() {
    let tz = chrono_tz::America::Bogota;
    let local = |d: u32, h: u32| tz.with_ymd_and_hms(2025, 3, d, h, 0, 0).unwrap().with_timezone(&Utc);
    // Five weeks up to Thursday 13 March 2025, 05:00 in Bogota: Wednesday ended five
    // hours ago, past the reconciliation delay.
    let now = local(13, 5);
    let clock = TestClock::at(now);
    let mut cfg = WolkvoxConfig::bounded(now - chrono::Duration::days(35), now);
    cfg.sim.seed = 35;
    cfg.clock = clock.sim_clock();
    let fake = Wolkvox::start(cfg);
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&dir.path().join("state.json"))
        .op(Operation::fake("month", &fake).reports(&["agent_13", "agent_12"]))
        .catch_up("35d")
        .config();
    let exporter = InProc::start(config, &clock).await;
    let yesterday = local(12, 0).timestamp() as f64;
    exporter
        .wait_for("Wednesday reconciled", Duration::from_secs(120), |m| {
            m.get("wolkvox_reconciliation_day_timestamp_seconds", &[("operation", "month")])
                == Some(yesterday)
        })
        .await;
    exporter.stop().await;

    let asked: Vec<NaiveDate> = fake
        .served_log()
        .into_iter()
        .filter(|r| r.request.api.as_deref() == Some("agent_12"))
        .filter_map(|r| r.request.ini.map(|d| d.date()))
        .collect();
    // agent_13 reads the 35 days in two windows (31 days at most each). After the
    // first, which ends on Sunday 9 March, agent_12 asks for the days before it whose
    // tallies agent_13 still keeps (the newest KEPT_DAYS, Sunday included); after the
    // second, for the days up to Wednesday. Each day once, none of the 27 older days
    // whose answer could not be used.
    let sunday = NaiveDate::from_ymd_opt(2025, 3, 9).unwrap();
    let first = sunday - chrono::Days::new(KEPT_DAYS as u64 - 1);
    let wednesday = NaiveDate::from_ymd_opt(2025, 3, 12).unwrap();
    let expected: Vec<NaiveDate> = first.iter_days().take_while(|d| *d <= wednesday).collect();
    assert_eq!(asked, expected);
}
