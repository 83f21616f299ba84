//! Transfer chains end to end against the simulated Wolkvox, compared exactly with the
//! chains its truth settles at the exporter's watermark: through late legs read in the
//! overlap, across SIGKILLs of the binary in the middle of a catch-up, and across a
//! backfill seam.

use std::path::Path;
use std::time::Duration;

use crate::support::clock::{anchored, reference_end, TestClock};
use crate::support::config::{Operation, TestConfig};
use crate::support::exporter::Exporter;
use crate::support::exposition::Exposition;
use crate::support::inproc::{assert_chains_exact, assert_flows_exact, settled_chains, InProc};
use crate::support::wait::{check, Wait};
use chrono::{DateTime, TimeZone, Utc};
use wolkvox_sim::{ChainsTruth, FlowsTruth, SimConfig, Wolkvox, WolkvoxConfig};

const OVERLAP: chrono::Duration = chrono::Duration::minutes(30);
const REPORTS: [&str; 2] = ["agent_13", "agent_13_1"];

fn watermark(m: &Exposition, op: &str) -> i64 {
    let labels = [("operation", op), ("report", "agent_13_1")];
    m.get("wolkvox_ingested_until_timestamp_seconds", &labels).unwrap_or(0.0) as i64
}

/// What the chains of a truth hold, so a test knows it exercised each case.
fn assert_every_kind(truth: &ChainsTruth) {
    assert!(truth.chains.iter().all(|n| *n >= 5), "chains of 1, 2 and 3+ transfers: {truth:?}");
    assert!(truth.returned.values().sum::<u64>() >= 5, "{truth:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chains_equal_the_truth_at_the_watermark_through_late_legs() {
    let end = reference_end();
    let start = end - chrono::Duration::days(1);
    let clock = TestClock::at(end);
    let mut sim = SimConfig::bounded(start, end);
    sim.agents = 30;
    sim.late_fraction = 0.2;
    sim.late_by = (Duration::from_secs(60), Duration::from_secs(600));
    let mut cfg = WolkvoxConfig::new(sim);
    cfg.clock = clock.sim_clock();
    let fake = Wolkvox::start(cfg);
    let legs = fake.simulator().legs_between(start, end);
    // Legs still hidden at the end of the history, passed on after their call's first.
    let hidden = legs.iter().filter(|l| l.visible_at > end && !l.leg_id.ends_with('T')).count();
    assert!(hidden > 0, "late legs of chains");
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&dir.path().join("state.json"))
        .op(Operation::fake("op", &fake).reports(&REPORTS))
        .catch_up("25h")
        .config();
    let exporter = InProc::start(config, &clock).await;
    let mut seen = Vec::new();
    // Caught up with the late legs hidden; an hour on, read in the overlap, they have
    // joined chains that settle now; three hours on, every chain is settled.
    for later in [0, 1, 3] {
        let at = end + chrono::Duration::hours(later);
        clock.set(at);
        let m = exporter
            .wait_for("the watermark at the clock", Duration::from_secs(120), |m| {
                watermark(m, "op") > at.timestamp()
            })
            .await;
        let truth = settled_chains(&m, "op", &fake, OVERLAP);
        assert_chains_exact(&m, "op", &truth);
        seen.push(truth.total());
    }
    assert!(seen[0] < seen[1] && seen[1] < seen[2], "{seen:?}");
    let m = exporter.metrics().await;
    assert_every_kind(&settled_chains(&m, "op", &fake, OVERLAP));
    assert_flows_exact(&m, "op", &fake.truth::<FlowsTruth>());
    exporter.stop().await;
}

fn mtime(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

#[test]
fn chains_are_exact_after_sigkills_in_the_middle_of_a_catch_up() {
    // Eight months of history ending three hours ago, so every chain is settled once the
    // exporter has caught up (the binary reads the real clock): the open chains of each
    // life must reach the next through the state file, neither lost nor counted twice.
    let (mut sim, now) = anchored(chrono::Duration::days(240));
    let end = now - chrono::Duration::hours(3);
    sim.end = Some(end);
    sim.seed = 17;
    sim.agents = 60;
    sim.peak_per_agent_hour = 0.8;
    let mut cfg = WolkvoxConfig::new(sim);
    cfg.latency = Duration::from_millis(500);
    // Failing requests end cycles early, so the catch-up saves its progress often.
    cfg.fault_probability = 0.3;
    cfg.fault_kinds = vec![wolkvox_sim::Fault::ServerError(503)];
    let fake = Wolkvox::start(cfg);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let config = TestConfig::new(&state)
        .op(Operation::fake("crash", &fake).reports(&REPORTS))
        .catch_up("241d")
        .retry_attempts(0)
        .write(dir.path());
    let args = [config.as_str()];
    let mut open_at_kill = Vec::new();
    for kill in 0..6u64 {
        let saved = mtime(&state);
        let mut exporter = Exporter::start_listening(&args);
        let _ =
            Wait::new("a state save", Duration::from_secs(30)).poll(|| check(mtime(&state) != saved, || ()));
        std::thread::sleep(Duration::from_millis(97 * kill));
        exporter.kill();
        let Ok(text) = std::fs::read_to_string(&state) else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let report = &v["operations"]["crash"]["reports"]["agent_13_1"];
        let cursor = report["cursor"].as_str().and_then(|c| c.parse::<DateTime<Utc>>().ok());
        let open = report["counters"]["chains"]["starts"].as_array().map_or(0, Vec::len);
        open_at_kill.push((cursor, open));
    }
    let mid_catch_up = open_at_kill.iter().filter(|(cursor, _)| cursor.is_some_and(|c| c < end)).count();
    assert!(
        mid_catch_up >= 3 && open_at_kill.iter().any(|(_, open)| *open > 0),
        "kills in the catch-up, with open chains saved: {open_at_kill:?}"
    );
    let exporter = Exporter::start(&args);
    let settled = (end + chrono::Duration::hours(2) + OVERLAP).timestamp();
    let text = exporter
        .wait_for_metrics(Duration::from_secs(180), |t| watermark(&Exposition::parse(t), "crash") > settled);
    let m = Exposition::parse(&text);
    let truth = settled_chains(&m, "crash", &fake, OVERLAP);
    let legs = fake.simulator().legs_between(fake.simulator().config().start, end);
    let all = ChainsTruth::settled(&legs, fake.simulator().local(now), chrono::Duration::hours(2));
    assert_eq!(truth, all, "every chain of the history is settled");
    assert_every_kind(&truth);
    assert_chains_exact(&m, "crash", &truth);
    assert_flows_exact(&m, "crash", &fake.truth::<FlowsTruth>());
    println!("chains after 6 SIGKILLs: {truth:?}; cursor and open chains at each kill: {open_at_kill:?}");
}

/// Bogota, 2025-03-`d` at `h`:00.
fn local(d: u32, h: u32) -> DateTime<Utc> {
    chrono_tz::America::Bogota.with_ymd_and_hms(2025, 3, d, h, 0, 0).unwrap().with_timezone(&Utc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_writes_the_chains_and_the_exporter_continues_them() {
    use wolkvox_exporter::backfill::{self, Bars, Bound, Options};
    let clock = TestClock::at(local(13, 9));
    let mut cfg = WolkvoxConfig::bounded(local(10, 0), local(13, 8));
    cfg.sim.agents = 20;
    cfg.clock = clock.sim_clock();
    let fake = Wolkvox::start(cfg);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let config = TestConfig::new(&state).op(Operation::fake("main", &fake).reports(&REPORTS)).config();
    let day = |d| Bound::Day(chrono::NaiveDate::from_ymd_opt(2025, 3, d).unwrap());
    let options = Options {
        from: day(10),
        to: Some(day(12)),
        step: Duration::from_secs(300),
        output: dir.path().join("history.om"),
        overwrite: false,
        labels: vec![("job".into(), "wolkvox".into()), ("instance".into(), "exporter:9798".into())],
        spread: false,
    };
    let summary = backfill::run(&config, &options, clock.shared(), &Bars::default(), std::future::pending())
        .await
        .unwrap();
    assert!(summary.done(), "{summary:?}");

    // The written history: at each step boundary, the chains settled by then, and the
    // transfers each agent had sent back in them.
    let sim = fake.simulator();
    let legs = sim.legs_between(local(10, 0), local(13, 8));
    let history = crate::backfill::read_history(&options.output);
    let horizon = chrono::Duration::hours(2);
    let mut truths = std::collections::BTreeMap::new();
    let mut truth_at = |t: i64| -> ChainsTruth {
        let until = sim.local(DateTime::from_timestamp(t, 0).unwrap() - OVERLAP);
        truths.entry(t).or_insert_with(|| ChainsTruth::settled(&legs, until, horizon)).clone()
    };
    let (mut samples, mut off) = (0, Vec::new());
    for series in history.values() {
        let (name, labels) = (&series[0].1.name, &series[0].1.labels);
        for (t, s) in series {
            let truth = truth_at(*t);
            let want = match name.as_str() {
                "wolkvox_transfer_chains_total" => {
                    let k = ["1", "2", "3+"].iter().position(|k| *k == labels["transfers"]);
                    truth.chains[k.unwrap()]
                }
                "wolkvox_agent_transfers_returned_total" => {
                    truth.returned.get(&labels["agent_id"]).copied().unwrap_or(0)
                }
                _ => continue,
            };
            samples += 1;
            if s.value != want as f64 {
                off.push((name.clone(), labels.clone(), *t, s.value, want));
            }
        }
    }
    assert!(
        off.is_empty(),
        "{} of {samples} samples off the truth: {:?}",
        off.len(),
        &off[..off.len().min(10)]
    );
    let at_end = truth_at(local(13, 0).timestamp());
    assert_every_kind(&at_end);
    let returned =
        history.values().filter(|s| s[0].1.name == "wolkvox_agent_transfers_returned_total").count();
    assert_eq!(returned, at_end.returned.len(), "an agent's series with its first return");
    assert!(samples > 3 * 864, "every boundary of three days at 5 minutes: {samples}");

    // The exporter on the written state reads on: the chains open at the seam settle
    // once, with those of the rest of the history.
    let exporter = InProc::start(config.clone(), &clock).await;
    let m = exporter
        .wait_for("the rest of the history", Duration::from_secs(60), |m| {
            watermark(m, "main") > local(13, 9).timestamp()
        })
        .await;
    let truth = settled_chains(&m, "main", &fake, OVERLAP);
    assert!(truth.total() > at_end.total());
    assert_chains_exact(&m, "main", &truth);
    assert_flows_exact(&m, "main", &fake.truth::<FlowsTruth>());
    exporter.stop().await;
}
