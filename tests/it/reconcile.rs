//! Reconciliation against agent_12, end to end: the fake leaves some agent_13 records out
//! of agent_13's answers while agent_12 still counts them, and the exporter reports,
//! for each reconciled local day, exactly what was left out.

use std::time::Duration;

use crate::support::clock::TestClock;
use crate::support::config::{Operation, TestConfig};
use crate::support::exposition::Exposition;
use crate::support::inproc::InProc;
use chrono::{DateTime, TimeZone, Utc};
use wolkvox_sim::{Difference, TotalsTruth, TransfersTruth, Wolkvox, WolkvoxConfig};

const TZ: chrono_tz::Tz = chrono_tz::America::Bogota;

fn local(d: u32, h: u32) -> DateTime<Utc> {
    TZ.with_ymd_and_hms(2025, 3, d, h, 0, 0).unwrap().with_timezone(&Utc)
}

/// The day `day` of March 2025, local: its first and last second.
fn day_span(day: u32) -> (DateTime<Utc>, DateTime<Utc>) {
    (local(day, 0), local(day + 1, 0) - chrono::Duration::seconds(1))
}

/// What agent_12 counts and agent_13 did not show on local day `day`, by the
/// simulator's truth: per interaction, and the agents concerned.
fn dropped(fake: &Wolkvox, day: u32) -> Difference {
    let (from, to) = day_span(day);
    let shown: TransfersTruth = fake.truth_between(from, to);
    let counted: TotalsTruth = fake.truth_between(from, to);
    counted.beyond(&shown)
}

/// The records of local day `day` that no agent_13 answer carried, per interaction.
fn never_served(fake: &Wolkvox, day: u32) -> [u64; 2] {
    let (from, to) = day_span(day);
    let served = fake.served_ids("agent_13");
    let mut n = [0u64; 2];
    for r in fake.simulator().records_between(from, to) {
        if !served.contains(&r.conn_id) {
            n[usize::from(r.interaction == "conference")] += 1;
        }
    }
    n
}

fn reconciled(m: &Exposition, op: &str) -> Option<(f64, [f64; 2], f64)> {
    let get = |name: &str, extra: &[(&str, &str)]| {
        let mut labels = vec![("operation", op)];
        labels.extend_from_slice(extra);
        m.get(name, &labels)
    };
    Some((
        get("wolkvox_reconciliation_day_timestamp_seconds", &[])?,
        [
            get("wolkvox_reconciliation_difference", &[("interaction", "transfer")])?,
            get("wolkvox_reconciliation_difference", &[("interaction", "conference")])?,
        ],
        get("wolkvox_reconciliation_agents_mismatched", &[])?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_difference_is_what_agent_13_left_out_per_day_and_interaction() {
    // Monday 10 to Thursday 13 March 2025, Bogota time; the first catch-up begins on
    // Monday afternoon, so Tuesday is the first whole day.
    let clock = TestClock::at(local(12, 3));
    let share = 0.05;
    let fake = |hide: f64| {
        let mut cfg = WolkvoxConfig::bounded(local(10, 0), local(13, 3));
        cfg.sim.seed = 12;
        cfg.sim.hidden_share = hide;
        cfg.clock = clock.sim_clock();
        Wolkvox::start(cfg)
    };
    let (lossy, whole) = (fake(share), fake(0.0));
    let dir = tempfile::tempdir().unwrap();
    let reports = ["agent_13", "agent_12"];
    let config = TestConfig::new(&dir.path().join("state.json"))
        .op(Operation::fake("lossy", &lossy).reports(&reports))
        .op(Operation::fake("whole", &whole).reports(&reports))
        .catch_up("36h")
        .config();
    let exporter = InProc::start(config, &clock).await;

    // Wednesday 03:00: Tuesday ended three hours ago, past the 2 h delay.
    for (day, now) in [(11, local(12, 3)), (12, local(13, 3))] {
        clock.set(now);
        let start = local(day, 0).timestamp() as f64;
        let m = exporter
            .wait_for("the day reconciled", Duration::from_secs(60), |m| {
                ["lossy", "whole"].iter().all(|op| reconciled(m, op).is_some_and(|r| r.0 == start))
            })
            .await;
        let d = dropped(&lossy, day);
        let n = [d.transfers, d.conferences];
        assert!(n[0] > 0 && n[1] > 0, "records were left out: {n:?}");
        // Exactly the records agent_13 never served that day were left out.
        assert_eq!(n, never_served(&lossy, day), "March {day}");
        assert_eq!(never_served(&whole, day), [0, 0], "March {day}");
        assert_eq!(
            reconciled(&m, "lossy"),
            Some((start, [n[0] as f64, n[1] as f64], d.agents as f64)),
            "March {day}"
        );
        assert_eq!(reconciled(&m, "whole"), Some((start, [0.0, 0.0], 0.0)));
    }
    // Monday began before the first catch-up: it is never reconciled, and each day is
    // asked once.
    let asked: Vec<_> = lossy
        .served_log()
        .into_iter()
        .filter(|r| r.request.api.as_deref() == Some("agent_12"))
        .map(|r| r.request.ini.map(|d| d.to_string()))
        .collect();
    assert_eq!(asked, vec![Some("2025-03-11 00:00:00".to_owned()), Some("2025-03-12 00:00:00".to_owned())]);
    exporter.stop().await;
}
