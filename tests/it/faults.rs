//! Fault tests against the fake Wolkvox, each ending in totals compared with ground
//! truth: chaos through window splits with every failure reconciled, a crash loop of
//! SIGKILLs (some landing inside a state save), an unusable and a full state
//! directory, a DST zone across both transitions, and a server answering in another
//! zone.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::clock::{self, anchored, reference_end, TestClock};
use crate::support::config::{Operation, TestConfig};
use crate::support::exporter::Exporter;
use crate::support::exposition::Exposition;
use crate::support::inproc::{
    assert_calls_exact, assert_exact, assert_exact_indexed, assert_flows_exact, total, InProc,
};
use crate::support::wait::{self, check, Wait};
use chrono::{DateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use wolkvox_exporter::client::RECORD_CAP;
use wolkvox_exporter::config::defaults::BUCKETS;
use wolkvox_sim::{Burst, SimConfig};
use wolkvox_sim::{CallsTruth, Fault, FlowsTruth, TransfersTruth, Wolkvox, WolkvoxConfig};

fn minute_floor(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp() / 60 * 60, 0).unwrap()
}

/// The sum over every series matching `labels` (every report, for the health metrics).
fn metric(m: &Exposition, name: &str, labels: &[(&str, &str)]) -> f64 {
    m.sum(name, labels)
}

/// The watermark of the operation's report that is furthest behind (agent_12 reads
/// whole days once, and its watermark is the next day it will read).
fn watermark(m: &Exposition, op: &str) -> f64 {
    m.select("wolkvox_ingested_until_timestamp_seconds", &[("operation", op)])
        .filter(|s| s.labels.get("report").is_none_or(|r| r != "agent_12"))
        .map(|s| s.value)
        .reduce(f64::min)
        .unwrap_or(0.0)
}

/// Every report that has data metrics.
const REPORTS: [&str; 3] = ["agent_13", "cdr_1", "agent_13_1"];

/// The `reason` a fault must be counted under.
fn reason_of(fault: Fault) -> &'static str {
    match fault {
        Fault::ServerError(_) | Fault::Html(502) => "http_5xx",
        Fault::Timeout => "timeout",
        Fault::Reset => "connect",
        Fault::Html(_) | Fault::TruncatedJson => "bad_response",
        Fault::Maintenance => "maintenance",
        Fault::Simultaneous => "concurrency_limit",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_through_window_splits_is_exact_and_every_failure_is_counted() {
    let end = reference_end();
    let start = end - chrono::Duration::days(40);
    let clock = TestClock::at(end + chrono::Duration::minutes(1));
    let mut sim = SimConfig::bounded(start, end);
    sim.seed = 30;
    sim.agents = 25;
    sim.peak_per_agent_hour = 1.0;
    // Over the cap: the window must be split while requests keep failing.
    sim.bursts = vec![Burst {
        start: start + chrono::Duration::days(20),
        duration: chrono::Duration::minutes(10),
        records: 61_000,
    }];
    let mut cfg = WolkvoxConfig::new(sim);
    cfg.fault_probability = 0.3;
    cfg.fault_kinds = Fault::ALL.to_vec();
    cfg.fault_kinds.push(Fault::Simultaneous);
    cfg.fault_seed = 2026;
    // Every kind at least once early in the catch-up (two failures, then an answer:
    // 15 requests, fewer than the catch-up makes however its cycles fall), then 30% at
    // random.
    cfg.script =
        cfg.fault_kinds.chunks(2).flat_map(|pair| pair.iter().map(|f| Some(*f)).chain([None])).collect();
    // Far above the client's timeout, which is far above a loaded machine's slowest
    // answer: only injected timeouts may count as timeouts.
    cfg.timeout_delay = Duration::from_secs(9);
    cfg.clock = clock.sim_clock();
    let fake = Wolkvox::start(cfg);
    let (truth, calls, flows) =
        (fake.truth::<TransfersTruth>(), fake.truth::<CallsTruth>(), fake.truth::<FlowsTruth>());
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&dir.path().join("state.json"))
        .op(Operation::fake("chaos", &fake).reports(&REPORTS))
        .catch_up("41d")
        .timeout("6s")
        .config();
    let exporter = InProc::start(config, &clock).await;
    let m = exporter
        .wait_for("a full catch-up through chaos", Duration::from_secs(240), |m| {
            watermark(m, "chaos") > end.timestamp() as f64
                    && metric(m, "wolkvox_up", &[("operation", "chaos")]) == 1.0
                    // A moment with no request in flight, so the fake's log matches.
                    && metric(m, "wolkvox_api_requests_total", &[("operation", "chaos")])
                        == fake.served_log().len() as f64
        })
        .await;
    exporter.stop().await;
    assert_exact(&m, "chaos", &truth, &BUCKETS);
    assert_calls_exact(&m, "chaos", &calls);
    assert_flows_exact(&m, "chaos", &flows);

    // Every request the fake saw was counted, and every failure under its reason.
    // One request at a time: the first N answers logged are the N counted.
    let counted = metric(&m, "wolkvox_api_requests_total", &[("operation", "chaos")]);
    let mut log = fake.served_log();
    log.truncate(counted as usize);
    // Each answer at the cap split its window, once.
    for report in REPORTS {
        let labels = [("operation", "chaos"), ("report", report)];
        let full = log
            .iter()
            .filter(|r| r.request.api.as_deref() == Some(report))
            .filter(|r| r.status == Some(200) && r.records >= RECORD_CAP)
            .count();
        assert!(full >= 1, "{report}");
        assert_eq!(metric(&m, "wolkvox_window_splits_total", &labels), full as f64, "{report}");
    }
    let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &log {
        if let Some(f) = r.fault {
            *expected.entry(reason_of(f)).or_default() += 1;
        }
    }
    let faults: u64 = expected.values().sum();
    assert!(faults as f64 >= 0.2 * log.len() as f64, "{faults} faults in {} requests", log.len());
    assert_eq!(expected.len(), 6, "fault kinds hit: {expected:?}");
    assert_eq!(
        metric(&m, "wolkvox_api_requests_total", &[("operation", "chaos")]),
        log.len() as f64,
        "requests counted"
    );
    for reason in wolkvox_exporter::vocab::all().map(|r: wolkvox_exporter::client::ErrorReason| r.as_str()) {
        assert_eq!(
            metric(&m, "wolkvox_api_request_errors_total", &[("operation", "chaos"), ("reason", reason)]),
            expected.get(reason).copied().unwrap_or(0) as f64,
            "errors counted under reason={reason}; faults served: {expected:?}"
        );
    }
    assert_eq!(fake.concurrent_violations(), 0);
    println!(
        "chaos: {} requests, {faults} failed ({expected:?}), {} records exact",
        log.len(),
        truth.total()
    );
}

fn corrupt_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".corrupt-"))
        .collect()
}

/// A small deterministic generator for kill moments.
fn next_rand(state: &mut u64) -> u64 {
    *state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    *state >> 33
}

#[test]
fn sigkill_ten_times_during_catch_up_then_exact() {
    // Sixteen months: seventeen 31-day windows, slow answers, so the catch-up spans
    // several lives of the exporter (the binary, on the real clock: the history is
    // anchored).
    let (mut sim, end) = anchored(chrono::Duration::days(500));
    sim.seed = 77;
    // Many agents make a large state, so saves take long enough to be hit.
    sim.agents = 4_000;
    sim.peak_per_agent_hour = 0.004;
    let mut cfg = WolkvoxConfig::new(sim);
    cfg.latency = Duration::from_millis(350);
    // Failing requests end cycles early, so a catch-up saves its progress many times.
    cfg.fault_probability = 0.35;
    cfg.fault_kinds = vec![Fault::ServerError(503), Fault::Maintenance];
    let fake = Wolkvox::start(cfg);
    let (truth, calls, flows) =
        (fake.truth::<TransfersTruth>(), fake.truth::<CallsTruth>(), fake.truth::<FlowsTruth>());
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let tmp = dir.path().join("state.json.tmp");
    let config = TestConfig::new(&state)
        .op(Operation::fake("crash", &fake).reports(&REPORTS))
        // Every flow of 4,000 agents its own series, as the ground truth has them.
        .max_flows(1_000_000)
        .catch_up("501d")
        .retry_attempts(0)
        .write(dir.path());
    let args = [config.as_str(), "--log.level=debug"];

    let mut seed = 0x5EED_u64;
    let (mut during_save, mut saves_seen) = (0, 0);
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut cursors = Vec::new();
    for kill in 0..10 {
        let leftover = mtime(&tmp);
        // Not `start`: it waits for /-/ready, that is for the end of the first cycle,
        // which would let each life run far into the catch-up.
        let mut exporter = Exporter::start_listening(&args);
        if kill % 2 == 1 {
            // Wait for a save to begin, then kill at once (or at the deadline).
            let _ = Wait::new("a state save to begin", Duration::from_secs(15))
                .every(Duration::ZERO)
                .poll(|| check(mtime(&tmp) != leftover, || ()));
        } else {
            // Let this life keep some progress: a save completes, then a random moment.
            let saved = mtime(&state);
            let _ = Wait::new("a state save to complete", Duration::from_secs(30))
                .poll(|| check(mtime(&state) != saved, || ()));
            let ms = next_rand(&mut seed) % 800;
            std::thread::sleep(Duration::from_millis(ms));
        }
        exporter.kill();
        // A temporary file written by this run means the kill cut a save short.
        if mtime(&tmp).is_some() && mtime(&tmp) != leftover {
            during_save += 1;
        }
        if state.exists() {
            saves_seen += 1;
            // Whatever the moment, the state file is whole.
            let text = std::fs::read_to_string(&state).unwrap();
            let v: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("state unreadable after kill {kill}: {e}"));
            assert_eq!(v["version"], wolkvox_exporter::state::VERSION);
            // The catch-up goes on while any report's cursor is behind.
            let cursor = |r: &str| v["operations"]["crash"]["reports"][r]["cursor"].as_str();
            cursors.push(
                REPORTS
                    .iter()
                    .map(|r| cursor(r))
                    .collect::<Option<Vec<_>>>()
                    .and_then(|c| c.into_iter().min())
                    .map(str::to_owned),
            );
        }
        assert!(corrupt_files(dir.path()).is_empty(), "kill {kill}");
    }
    let exporter = Exporter::start(&args);
    let text = exporter.wait_for_metrics(Duration::from_secs(180), |t| {
        watermark(&Exposition::parse(t), "crash") > end.timestamp() as f64
    });
    let m = Exposition::parse(&text);
    assert_exact_indexed(&m, "crash", &truth, &BUCKETS);
    assert_calls_exact(&m, "crash", &calls);
    assert_flows_exact(&m, "crash", &flows);
    assert!(corrupt_files(dir.path()).is_empty());
    let logs = exporter.logs();
    assert!(!logs.contains("state file unreadable"), "{logs}");
    println!(
        "crash loop: 10 SIGKILLs, {during_save} while a state save was in progress, state present after {saves_seen}; \
         {} records exact, state {} bytes; watermark after each kill: {cursors:?}",
        truth.total(),
        std::fs::metadata(&state).unwrap().len()
    );
    // The kills fell during the catch-up, not after it.
    let during_catch_up = cursors
        .iter()
        .filter(|c| c.as_deref().and_then(|c| c.parse::<DateTime<Utc>>().ok()).is_none_or(|c| c <= end))
        .count()
        + (10 - cursors.len());
    assert!(during_catch_up >= 7, "only {during_catch_up} kills fell in the catch-up");
    assert!(during_save >= 1, "no kill landed inside a state save");
    assert!(saves_seen >= 3, "the catch-up saved progress between kills");
}

fn save_failures(e: &Exporter) -> f64 {
    metric(&Exposition::parse(&e.metrics()), "wolkvox_state_save_failures_total", &[])
}

fn saved_at(state: &Path) -> Option<DateTime<Utc>> {
    let text = std::fs::read_to_string(state).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["saved_at"].as_str()?.parse().ok()
}

/// Waits until the failures counter has grown by `by`, checking that the exporter
/// keeps polling and serving meanwhile.
fn wait_failures(e: &Exporter, from: f64, by: f64, fake: &Wolkvox) -> f64 {
    let requests = fake.requests();
    let failures = wait::until("state saves to fail", Duration::from_secs(30), || {
        let failures = save_failures(e);
        check(failures >= from + by, || e.logs()).map(|()| failures)
    });
    let m = Exposition::parse(&e.metrics());
    assert_eq!(metric(&m, "wolkvox_up", &[("operation", "op")]), 1.0);
    // Polling goes on (the failures may all have followed requests sent before).
    wait::until("polling to go on", Duration::from_secs(30), || {
        check(fake.requests() > requests, || fake.requests())
    });
    let health = crate::support::http::get(&e.url("/-/healthy")).unwrap();
    assert_eq!(health.status, 200);
    failures
}

fn wait_saved_after(e: &Exporter, state: &Path, after: DateTime<Utc>) {
    wait::until("a successful save after the fix", Duration::from_secs(30), || {
        let saved = saved_at(state).filter(|t| *t > after);
        saved.ok_or_else(|| e.logs())
    });
}

#[test]
fn unusable_then_full_state_directory_keeps_serving_and_recovers() {
    let (sim, end) = anchored(chrono::Duration::hours(6));
    let fake = Wolkvox::start(WolkvoxConfig::new(sim));
    let truth = fake.truth::<TransfersTruth>();
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    let state = state_dir.join("state.json");
    let config = TestConfig::new(&state).op(Operation::fake("op", &fake)).write(dir.path());
    let args = [config.as_str()];
    let exporter = Exporter::start(&args);
    exporter
        .wait_for_metrics(Duration::from_secs(30), |t| total(&Exposition::parse(t), "op") == truth.total());
    wait_saved_after(&exporter, &state, end);
    assert_eq!(save_failures(&exporter), 0.0);

    // 1. The directory becomes unusable. Tests run as root, which ignores permission
    //    bits, so the directory is replaced by a regular file: no one can create in it.
    let moved = dir.path().join("state.moved");
    std::fs::rename(&state_dir, &moved).unwrap();
    std::fs::write(&state_dir, b"not a directory").unwrap();
    let failures = wait_failures(&exporter, 0.0, 2.0, &fake);
    let logs = exporter.logs();
    assert!(logs.contains("level=error") && logs.contains("state save failed"), "{logs}");
    std::fs::remove_file(&state_dir).unwrap();
    std::fs::rename(&moved, &state_dir).unwrap();
    // The exporter stamps saves with the real clock.
    let fixed = clock::real_now();
    wait_saved_after(&exporter, &state, fixed);

    // 2. The disk is full: the temporary file is /dev/full, where every write fails
    //    with ENOSPC. The exporter removes its failed temporary file; a keeper puts the
    //    link back until the disk "has space" again.
    let tmp = state_dir.join("state.json.tmp");
    let keep = Arc::new(AtomicBool::new(true));
    let keeper = {
        let (keep, tmp) = (keep.clone(), tmp.clone());
        std::thread::spawn(move || {
            while keep.load(Ordering::SeqCst) {
                if std::fs::symlink_metadata(&tmp).is_err() {
                    let _ = std::os::unix::fs::symlink("/dev/full", &tmp);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = std::fs::remove_file(&tmp);
        })
    };
    let after_full = wait_failures(&exporter, failures, 2.0, &fake);
    assert!(exporter.logs().contains("No space left on device"), "{}", exporter.logs());
    keep.store(false, Ordering::SeqCst);
    keeper.join().unwrap();
    let fixed = clock::real_now();
    wait_saved_after(&exporter, &state, fixed);
    let settled = save_failures(&exporter);
    assert!(settled >= after_full);
    println!("state directory: {settled} failed saves counted and logged, then recovered");

    // The recovered state holds everything: a SIGKILL now loses nothing.
    drop(exporter);
    let restarted = Exporter::start(&args);
    let m = Exposition::parse(&restarted.metrics());
    assert_exact(&m, "op", &truth, &BUCKETS);
    assert_eq!(save_failures(&restarted), 0.0);
}

/// The last instant before `before` at which `tz`'s UTC offset changes in the given
/// direction (`forward`: clocks jump ahead).
fn last_transition(tz: Tz, before: DateTime<Utc>, forward: bool) -> DateTime<Utc> {
    let off = |t: DateTime<Utc>| tz.offset_from_utc_datetime(&t.naive_utc()).fix().local_minus_utc();
    let mut t = DateTime::from_timestamp(before.timestamp() / 3600 * 3600, 0).unwrap();
    loop {
        let prev = t - chrono::Duration::hours(1);
        let (a, b) = (off(prev), off(t));
        if a != b && (b > a) == forward {
            // Transitions in this zone fall on the hour.
            return t;
        }
        t = prev;
        assert!(before - t < chrono::Duration::days(400), "no transition in {tz}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_york_across_spring_forward_and_fall_back_is_exact() {
    let tz = chrono_tz::America::New_York;
    // A week after the 2025 fall-back, on the test clock.
    let now = clock::local(tz, 2025, 11, 9, 12, 0);
    let clock = TestClock::at(now);
    let fall = last_transition(tz, now - chrono::Duration::days(2), false);
    let spring = last_transition(tz, now - chrono::Duration::days(2), true);
    assert_eq!(fall.to_rfc3339(), "2025-11-02T06:00:00+00:00");
    assert_eq!(spring.to_rfc3339(), "2025-03-09T07:00:00+00:00");
    let fake_for = |at: DateTime<Utc>, seed: u64| {
        let start = minute_floor(at) - chrono::Duration::hours(36);
        let mut s = SimConfig::bounded(start, start + chrono::Duration::hours(72));
        s.seed = seed;
        s.timezone = tz;
        s.agents = 12;
        // Busy at night too, so the repeated and the skipped hour hold records.
        s.peak_per_agent_hour = 40.0;
        let mut cfg = WolkvoxConfig::new(s);
        cfg.clock = clock.sim_clock();
        Wolkvox::start(cfg)
    };
    let fall_fake = fake_for(fall, 41);
    let spring_fake = fake_for(spring, 42);
    let catch_up = (now - spring).num_hours() + 48;
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&dir.path().join("state.json"))
        .op(Operation::fake("fall", &fall_fake).timezone("America/New_York").reports(&["agent_13"]))
        .op(Operation::fake("spring", &spring_fake).timezone("America/New_York").reports(&["agent_13"]))
        .catch_up(&format!("{catch_up}h"))
        .config();
    let exporter = InProc::start(config, &clock).await;
    let truths = [fall_fake.truth::<TransfersTruth>(), spring_fake.truth::<TransfersTruth>()];
    let m = exporter
        .wait_for("both catch-ups", Duration::from_secs(120), |m| {
            ["fall", "spring"].iter().all(|op| watermark(m, op) >= now.timestamp() as f64)
        })
        .await;
    exporter.stop().await;
    assert_exact(&m, "fall", &truths[0], &BUCKETS);
    assert_exact(&m, "spring", &truths[1], &BUCKETS);

    // The repeated hour was asked twice (once per offset) and nothing counted twice.
    let local = |t: DateTime<Utc>| t.with_timezone(&tz).naive_local();
    let repeated_start = local(fall); // 01:00 EST, the second pass
    let log = fall_fake.served_log();
    assert!(
        log.iter().any(|r| r.request.end
            == Some(repeated_start + chrono::Duration::hours(1) - chrono::Duration::seconds(1))),
        "a window ends just before the clocks fall back"
    );
    assert!(log.iter().any(|r| r.request.ini == Some(repeated_start)));
    let first_pass = fall_fake
        .simulator()
        .records_between(fall - chrono::Duration::hours(1), fall - chrono::Duration::seconds(1))
        .len();
    assert!(first_pass > 0, "the repeated hour holds records");
    assert!(
        metric(&m, "wolkvox_records_duplicate_total", &[("operation", "fall")]) >= first_pass as f64,
        "the first pass of the repeated hour came back and was skipped"
    );
    // No request spans the skipped hour's non-existent local times.
    let skipped = local(spring - chrono::Duration::seconds(1));
    assert!(spring_fake.served_log().iter().any(|r| r.request.end == Some(skipped)));
    for fake in [&fall_fake, &spring_fake] {
        assert!(fake.max_range_seconds() <= 31 * 86_400);
        assert_eq!(fake.concurrent_violations(), 0);
    }
}

fn invalid(m: &Exposition, op: &str, reason: &str) -> f64 {
    metric(m, "wolkvox_records_invalid_total", &[("operation", op), ("reason", reason)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_answering_in_another_zone_is_counted_not_lost() {
    let end = reference_end();
    let start = end - chrono::Duration::hours(8);
    let clock = TestClock::at(end + chrono::Duration::minutes(1));
    let fake_with_shift = |hours: i64, seed: u64| {
        let mut cfg = WolkvoxConfig::bounded(start, end);
        cfg.clock = clock.sim_clock();
        cfg.sim.seed = seed;
        cfg.sim.peak_per_agent_hour = 30.0;
        cfg.format.shift_hours = hours;
        Wolkvox::start(cfg)
    };
    let ahead = fake_with_shift(3, 51);
    let behind = fake_with_shift(-3, 52);
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&dir.path().join("state.json"))
        .op(Operation::fake("ahead", &ahead).reports(&["agent_13"]))
        .op(Operation::fake("behind", &behind).reports(&["agent_13"]))
        .config();
    let exporter = InProc::start(config, &clock).await;
    let (n_ahead, n_behind) =
        (ahead.truth::<TransfersTruth>().total(), behind.truth::<TransfersTruth>().total());

    // Ahead: the newest three hours carry dates past the window's end. Each record is
    // either counted or reported once as outside the window.
    let m = exporter
        .wait_for("the ahead server's records accounted for", Duration::from_secs(60), |m| {
            total(m, "ahead") as f64 + invalid(m, "ahead", "outside_window") >= n_ahead as f64
        })
        .await;
    let (counted, outside) = (total(&m, "ahead"), invalid(&m, "ahead", "outside_window"));
    assert!(counted > 0 && outside > 0.0, "{counted} counted, {outside} outside");
    // A record counts when the first answer that carried it was for a window holding
    // the date written on it, three hours late; otherwise it is outside that window.
    let answers: Vec<_> = ahead
        .served_log()
        .into_iter()
        .filter(|r| r.request.api.as_deref() == Some("agent_13") && r.status == Some(200))
        .collect();
    let in_time = ahead
        .simulator()
        .records_between(start, end)
        .iter()
        .filter(|r| {
            let first = answers
                .iter()
                .find(|a| a.request.ini <= Some(r.local_date) && Some(r.local_date) <= a.request.end)
                .expect("every record was served");
            Some(r.local_date + chrono::Duration::hours(3)) <= first.request.end
        })
        .count() as u64;
    assert_eq!(counted, in_time, "counted: the records written inside their window");
    assert_eq!(outside, (n_ahead - in_time) as f64);
    assert_eq!(counted as f64 + outside, n_ahead as f64, "nothing lost or counted twice");
    let truth = ahead.truth::<TransfersTruth>();
    for s in m.select("wolkvox_agent_interactions_total", &[("operation", "ahead")]) {
        assert!(s.value <= truth.count(&s.labels["agent_id"], &s.labels["interaction"]) as f64);
    }

    // Behind: every record is counted once; the re-read overlap comes back with dates
    // before the window and is reported as outside it, once, not on every cycle.
    let m = exporter
        .wait_for("the behind server's records counted", Duration::from_secs(60), |m| {
            total(m, "behind") == n_behind && invalid(m, "behind", "outside_window") > 0.0
        })
        .await;
    assert_exact(&m, "behind", &behind.truth::<TransfersTruth>(), &BUCKETS);
    let outside_behind = invalid(&m, "behind", "outside_window");
    let requests = behind.requests();
    Wait::new("five more cycles", Duration::from_secs(30))
        .until_async(|| async {
            let seen = behind.requests();
            check(seen >= requests + 5, || format!("{} more", seen - requests))
        })
        .await;
    let m = exporter.metrics().await;
    assert_eq!(
        invalid(&m, "behind", "outside_window"),
        outside_behind,
        "re-reads of the overlap must not reject the same records again"
    );
    assert_eq!(counted as f64 + invalid(&m, "ahead", "outside_window"), n_ahead as f64);
    for op in ["ahead", "behind"] {
        for reason in ["bad_time", "bad_date", "missing_field"] {
            assert_eq!(invalid(&m, op, reason), 0.0);
        }
    }
    exporter.stop().await;
}
