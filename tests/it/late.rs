//! The late counters against the simulator's records: what a first start, an API outage
//! and a restart catch up is counted late, record for record; what each poll reads in
//! its usual cycle is not. The clock is the test's (a fixed date); the lateness threshold
//! is `--poll.delay` (0 here) plus two polls, at least two minutes.

use std::time::Duration;

use chrono::{DateTime, Duration as Span, Utc};
use wolkvox_sim::{Fault, Wolkvox, WolkvoxConfig};

use crate::support::clock::{reference_end, TestClock};
use crate::support::config::{Operation, TestConfig};
use crate::support::exposition::Exposition;
use crate::support::inproc::InProc;

const OP: &str = "late";
const INTERACTIONS: [&str; 2] = ["transfer", "conference"];

/// The least time past the delay (0 here) after which a counted record is late.
fn slack() -> Span {
    Span::from_std(wolkvox_exporter::engine::LATE_SLACK).unwrap()
}

/// The simulator's records of one interaction dated in `[from, to]`.
fn records(fake: &Wolkvox, interaction: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    let all = fake.simulator().records_between(from, to);
    all.iter().filter(|r| r.interaction == interaction).count() as u64
}

/// Counted and counted-late interactions of one kind, and the records counted late.
fn counts(m: &Exposition, interaction: &str) -> (u64, u64) {
    let labels = [("operation", OP), ("interaction", interaction)];
    let counted = m.sum("wolkvox_agent_interactions_total", &labels);
    let late = m.sum("wolkvox_agent_interactions_late_total", &labels);
    (counted as u64, late as u64)
}

fn records_late(m: &Exposition) -> u64 {
    m.sum("wolkvox_records_late_total", &[("operation", OP), ("report", "agent_13")]) as u64
}

/// Waits until agent_13 has read up to `at` with no failure pending.
async fn caught_up(exporter: &InProc, at: DateTime<Utc>, what: &str) -> Exposition {
    exporter
        .wait_for(what, Duration::from_secs(60), |m| {
            let labels = [("operation", OP), ("report", "agent_13")];
            m.get("wolkvox_ingested_until_timestamp_seconds", &labels) >= Some(at.timestamp() as f64)
                && m.get("wolkvox_up", &[("operation", OP)]) == Some(1.0)
        })
        .await
}

/// Checks what was counted between two expositions: for each interaction, every record
/// dated in `(from, to]` counted, and those dated before `now - slack()` counted late. The
/// interaction counters are kept in the state; the records' health counters start again
/// with the process (`restarted`).
fn assert_step(
    before: &Exposition,
    after: &Exposition,
    fake: &Wolkvox,
    span: [DateTime<Utc>; 3],
    restarted: bool,
    what: &str,
) {
    let [from, to, now] = span;
    let first = from + Span::seconds(1);
    let mut late_records = 0;
    for interaction in INTERACTIONS {
        let (c0, l0) = counts(before, interaction);
        let (c1, l1) = counts(after, interaction);
        let expected = records(fake, interaction, first, to);
        let expected_late = records(fake, interaction, first, now - slack() - Span::seconds(1));
        assert_eq!(c1 - c0, expected, "{what}: {interaction}s counted");
        assert_eq!(l1 - l0, expected_late, "{what}: {interaction}s counted late");
        late_records += expected_late;
    }
    let since = if restarted { 0 } else { records_late(before) };
    assert_eq!(records_late(after) - since, late_records, "{what}: records counted late");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_ups_are_counted_late_and_polls_on_time_are_not() {
    let c0 = reference_end();
    let start = c0 - Span::hours(6);
    let end = c0 + Span::hours(6);
    let clock = TestClock::at(c0);
    let mut cfg = WolkvoxConfig::bounded(start, end);
    cfg.sim.agents = 30;
    cfg.fault_kinds = vec![Fault::ServerError(503)];
    cfg.clock = clock.sim_clock();
    let fake = Wolkvox::start(cfg);
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&dir.path().join("state.json"))
        .op(Operation::fake(OP, &fake).reports(&["agent_13"]))
        .catch_up("4h")
        .config();

    // A first start: the 4 hours before the clock are a catch-up, all late but the
    // last two minutes.
    let exporter = InProc::start(config.clone(), &clock).await;
    let m0 = caught_up(&exporter, c0, "the first catch-up").await;
    let mut all_late = 0;
    for interaction in INTERACTIONS {
        let (counted, late) = counts(&m0, interaction);
        let on_time = records(&fake, interaction, c0 - slack(), c0);
        assert!(on_time > 0 && counted > 10 * on_time, "{interaction}: {counted} counted, {on_time} on time");
        assert_eq!(late, counted - on_time, "first start: {interaction}s counted late");
        all_late += late;
    }
    assert_eq!(records_late(&m0), all_late);

    // Polls a minute apart: nothing is late.
    let mut before = m0;
    let mut at = c0;
    for _ in 0..5 {
        clock.set(at + Span::minutes(1));
        let m = caught_up(&exporter, at + Span::minutes(1), "a poll a minute later").await;
        assert_step(&before, &m, &fake, [at, at + Span::minutes(1), at + Span::minutes(1)], false, "on time");
        (before, at) = (m, at + Span::minutes(1));
    }

    // Three hours of an API answering 503: the catch-up after it is late but for its
    // last two minutes.
    fake.set_fault_probability(1.0);
    let errors = |m: &Exposition| m.sum("wolkvox_api_request_errors_total", &[("operation", OP)]);
    let failed = errors(&before);
    let outage_end = at + Span::hours(3);
    clock.set(outage_end);
    exporter
        .wait_for("requests failing", Duration::from_secs(30), |m| {
            errors(m) >= failed + 3.0 && m.get("wolkvox_up", &[("operation", OP)]) == Some(0.0)
        })
        .await;
    fake.set_fault_probability(0.0);
    let m = caught_up(&exporter, outage_end, "the catch-up after the outage").await;
    assert_step(&before, &m, &fake, [at, outage_end, outage_end], false, "after a 3-hour outage");
    exporter.stop().await;

    // The exporter down for an hour, then restarted on its state: the same.
    let restart = outage_end + Span::hours(1);
    clock.set(restart);
    let exporter = InProc::start(config, &clock).await;
    let after = caught_up(&exporter, restart, "the catch-up after a restart").await;
    assert_step(&m, &after, &fake, [outage_end, restart, restart], true, "after a restart");
    exporter.stop().await;
}
