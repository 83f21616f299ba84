//! End to end against the fake Wolkvox: three operations, two days of history with a
//! window above the record cap, late records and injected faults; restarts; a corrupt
//! state file; an invalid token; the daily quota. Every comparison is exact against
//! ground truth. Histories end at a fixed date and the exporter and the fakes share a
//! test clock, so the result is the same on any day at any hour.

use std::time::Duration;

use crate::support::clock::{reference_end, TestClock};
use crate::support::config::{Operation, TestConfig};
use crate::support::inproc::{
    assert_calls_exact, assert_exact, assert_flows_exact, calls_total, flows_total, total, InProc,
};
use crate::support::wait::{check, Wait};
use chrono::{DateTime, Utc};
use wolkvox_exporter::client::RECORD_CAP;
use wolkvox_exporter::config::defaults::BUCKETS;
use wolkvox_sim::{Burst, Rename, SimConfig};
use wolkvox_sim::{CallsTruth, Fault, FlowsTruth, TransfersTruth, Wolkvox, WolkvoxConfig};

/// A closed history of `span` up to the reference end, on the test clock.
fn fake_until_reference(span: chrono::Duration, clock: &TestClock) -> WolkvoxConfig {
    let end = reference_end();
    let mut cfg = WolkvoxConfig::bounded(end - span, end);
    cfg.clock = clock.sim_clock();
    cfg
}

/// Waits until `tick`, polled by the same exporter in each of its cycles, has answered
/// `cycles` more requests: the exporter has gone on cycling that long, so an operation
/// that should stay quiet has had every chance to send something.
async fn wait_cycles(tick: &Wolkvox, cycles: u64) {
    let from = tick.requests();
    Wait::new(format!("{cycles} more cycles"), Duration::from_secs(30))
        .until_async(|| async {
            let seen = tick.requests();
            check(seen >= from + cycles, || format!("{} cycles", seen - from))
        })
        .await;
}

fn sim(
    seed: u64,
    agents: usize,
    base: u64,
    tz: chrono_tz::Tz,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> SimConfig {
    let mut s = SimConfig::bounded(start, end);
    s.seed = seed;
    s.agents = agents;
    s.agent_id_base = base;
    s.timezone = tz;
    // Few calls besides the transferred ones: cdr_1 then holds about 1.6 legs per
    // transfer (its call, the receiving agent's internal leg, a few others), which
    // keeps these long histories quick while every report still splits and retries.
    s.calls_per_transfer = 1.2;
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_operations_two_days_exact_through_cap_late_records_and_faults() {
    // Tuesday to Thursday 11:00 in Bogota: two working days, ending busy.
    let end = reference_end();
    let start = end - chrono::Duration::days(2);
    let clock = TestClock::at(end);

    // Operation A: 100 agents, one 5-minute window holding 65,000 extra records.
    let mut a = sim(11, 100, 1001, chrono_tz::America::Bogota, start, end);
    a.bursts = vec![Burst {
        start: start + chrono::Duration::hours(30),
        duration: chrono::Duration::minutes(5),
        records: 65_000,
    }];
    // An agent renamed half-way: the info metric must carry only the new name.
    a.renames = vec![Rename {
        agent_id: "1005".into(),
        at: start + chrono::Duration::hours(20),
        new_name: "Renamed \"Agent\" Five".into(),
    }];
    // Late records: hidden until the clock moves on, inside the overlap. The history
    // ends at the late-morning peak, so its last minutes hold some.
    a.late_fraction = 0.2;
    a.late_by = (Duration::from_secs(60), Duration::from_secs(600));
    let mut fa = WolkvoxConfig::new(a);
    fa.clock = clock.sim_clock();
    let fake_a = Wolkvox::start(fa);

    // Operation B: 60 agents in Mexico City, `code` as a string, some faults.
    let mut fb = WolkvoxConfig::new(sim(22, 60, 5001, chrono_tz::America::Mexico_City, start, end));
    fb.clock = clock.sim_clock();
    fb.format.code_as_string = true;
    fb.fault_probability = 0.15;
    let fake_b = Wolkvox::start(fb);

    // Operation C: 40 agents, 30% of requests fail in every way the fake knows.
    let mut fc = WolkvoxConfig::new(sim(33, 40, 9001, chrono_tz::America::Bogota, start, end));
    fc.clock = clock.sim_clock();
    fc.fault_probability = 0.3;
    fc.fault_kinds = Fault::ALL.to_vec();
    fc.fault_kinds.push(Fault::Simultaneous);
    fc.timeout_delay = Duration::from_secs(3);
    let fake_c = Wolkvox::start(fc);

    let truths = [
        fake_a.truth::<TransfersTruth>(),
        fake_b.truth::<TransfersTruth>(),
        fake_c.truth::<TransfersTruth>(),
    ];
    let all: u64 = truths.iter().map(|t| t.total()).sum();
    assert!(all > 100_000, "history holds {all} records");
    let agents: usize = truths
        .iter()
        .map(|t| t.series.keys().map(|k| &k.0).collect::<std::collections::HashSet<_>>().len())
        .sum();
    assert!(agents >= 190, "{agents} agents");
    let hidden =
        fake_a.simulator().records_between(start, end).iter().filter(|r| r.visible_at > end).count() as u64;
    assert!(hidden > 0, "some records must arrive late");

    let calls = [fake_a.truth::<CallsTruth>(), fake_b.truth::<CallsTruth>(), fake_c.truth::<CallsTruth>()];
    let flows = [fake_a.truth::<FlowsTruth>(), fake_b.truth::<FlowsTruth>(), fake_c.truth::<FlowsTruth>()];
    let reports = ["agent_13", "cdr_1", "agent_13_1"];
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&dir.path().join("state.json"))
        .op(Operation::fake("bogota", &fake_a).reports(&reports))
        .op(Operation::fake("mexico", &fake_b).timezone("America/Mexico_City").reports(&reports))
        .op(Operation::fake("flaky", &fake_c).reports(&reports))
        .catch_up("50h")
        .config();
    let exporter = InProc::start(config, &clock).await;

    // First the visible records, with the late ones still missing.
    let expect_a = truths[0].total() - hidden;
    exporter
        .wait_for("operation A without its late records", Duration::from_secs(180), |m| {
            total(m, "bogota") == expect_a
        })
        .await;
    // Then the late records appear and the overlap re-read picks them up.
    clock.set(end + chrono::Duration::hours(1));
    let names = ["bogota", "mexico", "flaky"];
    let m = exporter
        .wait_for("every operation complete", Duration::from_secs(240), |m| {
            (0..3).all(|i| {
                total(m, names[i]) >= truths[i].total()
                    && calls_total(m, names[i]) >= calls[i].total()
                    && flows_total(m, names[i]) >= flows[i].total()
            }) && names.iter().all(|n| m.get("wolkvox_up", &[("operation", n)]) == Some(1.0))
        })
        .await;
    for (i, name) in names.iter().enumerate() {
        assert_exact(&m, name, &truths[i], &BUCKETS);
        assert_calls_exact(&m, name, &calls[i]);
        assert_flows_exact(&m, name, &flows[i]);
        for report in reports {
            let watermark = m
                .get("wolkvox_ingested_until_timestamp_seconds", &[("operation", name), ("report", report)])
                .unwrap();
            assert!(watermark >= end.timestamp() as f64, "{name}/{report} watermark {watermark}");
        }
    }
    // A moment with no request in flight: each fake's log then holds exactly the
    // requests the exporter counted, and the figures below are exact.
    let fakes = [&fake_a, &fake_b, &fake_c];
    let (m, logs) = Wait::new("a moment between requests", Duration::from_secs(60))
        .every(Duration::from_millis(50))
        .until_async(|| async {
            let m = exporter.metrics().await;
            let logs = fakes.map(|f| f.served_log());
            let counted = names.map(|n| m.sum("wolkvox_api_requests_total", &[("operation", n)]));
            let seen = logs.each_ref().map(|l| l.len() as f64);
            check(counted == seen, || format!("counted {counted:?}, served {seen:?}")).map(|()| (m, logs))
        })
        .await;
    let from_log = |i: usize, report: &str, keep: &dyn Fn(&wolkvox_sim::Served) -> bool| {
        logs[i].iter().filter(|r| r.request.api.as_deref() == Some(report) && keep(r)).collect::<Vec<_>>()
    };
    // The burst fills a window past the cap in every report: one split per answer at
    // the cap.
    for report in reports {
        let labels = [("operation", "bogota"), ("report", report)];
        let full = from_log(0, report, &|r| r.status == Some(200) && r.records >= RECORD_CAP);
        assert!(!full.is_empty(), "{report} split its windows");
        assert_eq!(
            m.get("wolkvox_window_splits_total", &labels),
            Some(full.len() as f64),
            "{report} split once per answer at the cap"
        );
    }
    // The overlap's re-reads: every record served is counted once, but for those of a
    // full page's last second (read again with the rest of its window); the rest are
    // duplicates.
    let labels = [("operation", "bogota"), ("report", "agent_13")];
    let read: usize =
        from_log(0, "agent_13", &|r| r.status == Some(200)).iter().map(|r| r.records - r.last_second).sum();
    let duplicates = read as u64 - truths[0].total();
    assert!(duplicates > 0);
    assert_eq!(m.sum("wolkvox_records_invalid_total", &labels), 0.0);
    assert_eq!(m.get("wolkvox_records_duplicate_total", &labels), Some(duplicates as f64));
    // Every failed answer of the flaky operation is counted, once.
    let flaky_errors = m.sum("wolkvox_api_request_errors_total", &[("operation", "flaky")]);
    let failed = logs[2].iter().filter(|r| r.failed()).count();
    assert!(flaky_errors > 0.0, "faults were injected and counted");
    assert_eq!(flaky_errors, failed as f64, "flaky's failed answers");
    // The newest name of every agent, from any report, is on the info metric.
    for (id, name) in fake_a.truth::<CallsTruth>().names {
        assert_eq!(
            m.get("wolkvox_agent_info", &[("operation", "bogota"), ("agent_id", &id), ("agent_name", &name)]),
            Some(1.0),
            "name of {id}"
        );
    }

    assert_eq!(
        m.select("wolkvox_agent_info", &[("operation", "bogota"), ("agent_id", "1005")])
            .map(|s| s.labels["agent_name"].clone())
            .collect::<Vec<_>>(),
        vec!["Renamed \"Agent\" Five".to_owned()]
    );
    // Within the API's limits, always: one request in flight per token, across reports.
    for (i, fake) in fakes.iter().enumerate() {
        for report in reports {
            let asked = from_log(i, report, &|_| true).len();
            assert!(asked > 0);
            assert_eq!(
                m.get("wolkvox_api_requests_total", &[("operation", names[i]), ("report", report)]),
                Some(asked as f64),
                "{} {report}",
                names[i]
            );
        }
        assert_eq!(fake.concurrent_violations(), 0);
        assert!(fake.max_range_seconds() <= 31 * 86400, "{}", fake.max_range_seconds());
    }
    exporter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_mid_catch_up_then_restart_is_exact() {
    let end = reference_end();
    let start = end - chrono::Duration::days(70);
    let clock = TestClock::at(end + chrono::Duration::minutes(1));
    let mut s = sim(5, 8, 1001, chrono_tz::America::Bogota, start, end);
    s.peak_per_agent_hour = 2.0;
    let mut fc = WolkvoxConfig::new(s);
    fc.clock = clock.sim_clock();
    // Slow answers, so the stop lands in the middle of the three 31-day windows.
    fc.latency = Duration::from_millis(700);
    let fake = Wolkvox::start(fc);
    let truth = fake.truth::<TransfersTruth>();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let config = TestConfig::new(&state).op(Operation::fake("op", &fake)).catch_up("71d");

    let first = InProc::start(config.config(), &clock).await;
    let m = first.wait_for("the first window read", Duration::from_secs(30), |m| total(m, "op") > 0).await;
    assert!(total(&m, "op") < truth.total(), "stopped in the middle");
    first.stop().await;
    assert!(state.exists(), "state saved at shutdown");

    let second = InProc::start(config.config(), &clock).await;
    let m = second
        .wait_for("catch-up complete", Duration::from_secs(60), |m| {
            m.get("wolkvox_ingested_until_timestamp_seconds", &[("operation", "op"), ("report", "agent_13")])
                .unwrap_or(0.0)
                > end.timestamp() as f64
        })
        .await;
    assert_exact(&m, "op", &truth, &BUCKETS);
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_state_is_moved_aside_and_counting_starts_over() {
    let clock = TestClock::at(reference_end() + chrono::Duration::minutes(1));
    let fake = Wolkvox::start(fake_until_reference(chrono::Duration::hours(6), &clock));
    let truth = fake.truth::<TransfersTruth>();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    std::fs::write(&state, b"{\"version\":1,\"operations\":{\"op\":{\"cursor\":12").unwrap();
    let config = TestConfig::new(&state).op(Operation::fake("op", &fake));
    let exporter = InProc::start(config.config(), &clock).await;
    let m = exporter.wait_for("catch-up", Duration::from_secs(30), |m| total(m, "op") >= truth.total()).await;
    assert_exact(&m, "op", &truth, &BUCKETS);
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("state.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    exporter.stop().await;
    // The new state is readable.
    let text = std::fs::read_to_string(&state).unwrap();
    let _: serde_json::Value = serde_json::from_str(&text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_token_marks_its_operation_down_and_the_others_go_on() {
    let clock = TestClock::at(reference_end() + chrono::Duration::minutes(1));
    let good = Wolkvox::start(fake_until_reference(chrono::Duration::hours(6), &clock));
    let mut bad_cfg = fake_until_reference(chrono::Duration::hours(6), &clock);
    bad_cfg.invalid_token = true;
    let bad = Wolkvox::start(bad_cfg);
    let truth = good.truth::<TransfersTruth>();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&dir.path().join("state.json"))
        .op(Operation::fake("good", &good))
        .op(Operation::fake("bad", &bad))
        .config();
    let exporter = InProc::start(config, &clock).await;
    let invalid = |m: &crate::support::exposition::Exposition| {
        m.sum("wolkvox_api_request_errors_total", &[("operation", "bad"), ("reason", "invalid_token")])
    };
    let m = exporter
        .wait_for("the bad token refused", Duration::from_secs(30), |m| {
            invalid(m) >= 1.0
                && total(m, "good") >= truth.total()
                && m.get("wolkvox_up", &[("operation", "good")]) == Some(1.0)
        })
        .await;
    let first = invalid(&m);
    assert_eq!(m.get("wolkvox_up", &[("operation", "bad")]), Some(0.0));
    assert_eq!(m.get("wolkvox_up", &[("operation", "good")]), Some(1.0));
    assert_exact(&m, "good", &truth, &BUCKETS);
    // A configuration error is retried slowly, but it is retried and counted.
    let m =
        exporter.wait_for("the refusal counted again", Duration::from_secs(30), |m| invalid(m) > first).await;
    assert_eq!(m.get("wolkvox_up", &[("operation", "bad")]), Some(0.0));
    let (_, landing) = exporter.get("/").await;
    assert!(landing.contains("bad") && landing.contains("down"), "{landing}");
    exporter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_answer_stops_requests_for_the_day() {
    // 11:01 in Bogota on the test clock: the operation's day cannot end mid-test.
    let clock = TestClock::at(reference_end() + chrono::Duration::minutes(1));
    let mut cfg = fake_until_reference(chrono::Duration::hours(2), &clock);
    cfg.daily_limit = Some(3);
    let fake = Wolkvox::start(cfg);
    let tick = Wolkvox::start(fake_until_reference(chrono::Duration::hours(2), &clock));
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&dir.path().join("s.json"))
        .op(Operation::fake("op", &fake))
        .op(Operation::fake("tick", &tick))
        .config();
    let exporter = InProc::start(config, &clock).await;
    let m = exporter
        .wait_for("the quota answer", Duration::from_secs(30), |m| {
            // One answer pauses every report of the operation.
            m.sum("wolkvox_api_request_errors_total", &[("operation", "op"), ("reason", "quota_exceeded")])
                == 1.0
        })
        .await;
    assert_eq!(m.get("wolkvox_up", &[("operation", "op")]), Some(0.0));
    let requests = fake.requests();
    wait_cycles(&tick, 3).await;
    assert_eq!(fake.requests(), requests, "no request after the quota answer");
    exporter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_that_never_connect_cost_none_of_the_quota() {
    // The daily counts are read on the test clock, far from the operation's midnight.
    let clock = TestClock::at(reference_end() + chrono::Duration::minutes(1));
    let fake = Wolkvox::start(fake_until_reference(chrono::Duration::hours(2), &clock));
    // A port nothing listens on: every attempt is refused before a request goes out.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&dir.path().join("s.json"))
        .op(Operation::fake("op", &fake).base_url(&closed_url))
        .config();
    let exporter = InProc::start(config, &clock).await;
    let m = exporter
        .wait_for("two cycles of refused attempts", Duration::from_secs(30), |m| {
            m.sum("wolkvox_api_request_errors_total", &[("operation", "op"), ("reason", "connect")]) >= 14.0
        })
        .await;
    let refused = m.sum("wolkvox_api_request_errors_total", &[("operation", "op"), ("reason", "connect")]);
    assert_eq!(
        m.sum("wolkvox_api_requests_total", &[("operation", "op")]),
        refused,
        "every attempt is counted, and failed to connect"
    );
    assert_eq!(
        m.get("wolkvox_api_daily_requests", &[("operation", "op")]),
        Some(0.0),
        "none reached a server, so none was charged"
    );
    assert_eq!(m.get("wolkvox_up", &[("operation", "op")]), Some(0.0));
    exporter.stop().await;

    // Requests that reach the server are charged, whatever they return.
    fake.push_faults(&[Fault::Reset, Fault::ServerError(503)]);
    let config = TestConfig::new(&dir.path().join("s.json")).op(Operation::fake("op", &fake)).config();
    let exporter = InProc::start(config, &clock).await;
    let m = exporter
        .wait_for("the operation up, every request the fake saw charged", Duration::from_secs(30), |m| {
            m.get("wolkvox_up", &[("operation", "op")]) == Some(1.0)
                && m.get("wolkvox_api_daily_requests", &[("operation", "op")]) == Some(fake.requests() as f64)
        })
        .await;
    let charged = m.get("wolkvox_api_daily_requests", &[("operation", "op")]).unwrap();
    assert!(charged >= 3.0, "the reset, the 503 and the answer: {charged}");
    exporter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exporter_stops_at_its_share_of_the_daily_limit() {
    let clock = TestClock::at(reference_end() + chrono::Duration::minutes(1));
    // Twice past the cap: three requests read this history (the window, then twice on
    // from the last second of a full page).
    let mut history = fake_until_reference(chrono::Duration::hours(2), &clock);
    history.sim.bursts = vec![Burst {
        start: reference_end() - chrono::Duration::minutes(30),
        duration: chrono::Duration::minutes(10),
        records: 121_000,
    }];
    let fake = Wolkvox::start(history);
    let tick = Wolkvox::start(fake_until_reference(chrono::Duration::hours(2), &clock));
    let dir = tempfile::tempdir().unwrap();
    // 1 license = 1000 a day; keeping 99.8% for other clients leaves 2 requests, and a
    // report read once a day plans 1, so the configuration is accepted. The ticking
    // operation's million licenses leave it 2 million.
    let config = TestConfig::new(&dir.path().join("s.json"))
        .op(Operation::fake("op", &fake).licenses(1).report_every("agent_13", "24h"))
        .op(Operation::fake("tick", &tick).licenses(1_000_000))
        .daily_reserve(0.998)
        .config();
    let exporter = InProc::start(config, &clock).await;
    let m = exporter
        .wait_for("the allowance spent", Duration::from_secs(30), |m| {
            m.get("wolkvox_api_daily_requests", &[("operation", "op")]) == Some(2.0)
                && m.get("wolkvox_up", &[("operation", "op")]) == Some(0.0)
        })
        .await;
    assert_eq!(m.get("wolkvox_api_daily_request_limit", &[("operation", "op")]), Some(1000.0));
    assert_eq!(m.get("wolkvox_api_planned_daily_requests", &[("operation", "op")]), Some(1.0));
    assert_eq!(m.sum("wolkvox_api_request_errors_total", &[("operation", "op")]), 0.0);
    wait_cycles(&tick, 3).await;
    assert_eq!(fake.requests(), 2, "no request past the allowance");
    exporter.stop().await;
}

/// When the day's allowance runs short, the reports after agent_13 pause first: agent_13
/// keeps polling, the pause shows, and the next local day lifts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nearly_spent_allowance_pauses_the_later_reports_first() {
    // 11:01 in Bogota: 12 h 59 min, 46,740 s, are left of the day.
    let now = reference_end() + chrono::Duration::minutes(1);
    let clock = TestClock::at(now);
    let fake = Wolkvox::start(fake_until_reference(chrono::Duration::hours(2), &clock));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    // 300 licenses less 10%: 270,000 a day, and two reports at 1 s plan 172,800. The
    // day has spent all but what agent_13 needs for its 46,740 remaining cycles.
    let used = 270_000 - 46_740;
    let saved = serde_json::json!({
        "version": wolkvox_exporter::state::VERSION,
        "saved_at": now,
        "operations": {"op": {
            "daily": {"day": "2025-03-13", "used": used, "exhausted": false},
            "agents": [], "overflow_records": 0, "reports": {}
        }}
    });
    std::fs::write(&state, saved.to_string()).unwrap();
    let config = TestConfig::new(&state)
        .op(Operation::fake("op", &fake).licenses(300).reports(&["agent_13", "cdr_1"]))
        .config();
    let exporter = InProc::start(config, &clock).await;
    let paused = |m: &crate::support::exposition::Exposition, report: &str| {
        m.get("wolkvox_report_paused", &[("operation", "op"), ("report", report)])
    };
    let m = exporter
        .wait_for("agent_13 polling, cdr_1 paused", Duration::from_secs(30), |m| {
            paused(m, "cdr_1") == Some(1.0)
                && m.get("wolkvox_api_requests_total", &[("operation", "op"), ("report", "agent_13")])
                    >= Some(3.0)
        })
        .await;
    assert_eq!(paused(&m, "agent_13"), Some(0.0));
    assert_eq!(fake.requests_for("cdr_1"), 0, "cdr_1 never spent a request");
    assert_eq!(m.get("wolkvox_api_planned_daily_requests", &[("operation", "op")]), Some(172_800.0));
    // The pause is not a failure: the operation stays up.
    assert_eq!(m.get("wolkvox_up", &[("operation", "op")]), Some(1.0));

    // A new local day: the allowance is whole again and cdr_1 resumes.
    clock.set(now + chrono::Duration::hours(13));
    exporter
        .wait_for("cdr_1 resumed", Duration::from_secs(30), |m| {
            paused(m, "cdr_1") == Some(0.0) && fake.requests_for("cdr_1") > 0
        })
        .await;
    exporter.stop().await;
}
