//! `wolkvox-exporter backfill`, end to end against the fake Wolkvox: every sample of the
//! written history holds what the fake dated before its instant; the exporter started on
//! the written state continues the same counters, with nothing counted twice or lost;
//! an interrupted backfill resumes; and a real Prometheus, given the history as blocks
//! by a real `promtool`, sees one series across the seam.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::support::clock::{anchored, TestClock};
use crate::support::config::{Operation, TestConfig};
use crate::support::exporter::{run_to_exit, Exporter};
use crate::support::exposition::{parse_sample, Sample};
use crate::support::inproc::{assert_calls_exact, assert_exact, assert_flows_exact, total, InProc};
use crate::support::prometheus::Prometheus;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use wolkvox_exporter::backfill::{self, BackfillError, Bars, Bound, Options};
use wolkvox_exporter::config::defaults::BUCKETS;
use wolkvox_exporter::engine::Stop;
use wolkvox_sim::direction;
use wolkvox_sim::{CallsTruth, FlowsTruth, TransfersTruth, Wolkvox, WolkvoxConfig};

const TZ: chrono_tz::Tz = chrono_tz::America::Bogota;
const STEP: i64 = 300;

fn local(d: u32, h: u32) -> DateTime<Utc> {
    TZ.with_ymd_and_hms(2025, 3, d, h, 0, 0).unwrap().with_timezone(&Utc)
}

fn day(d: u32) -> Bound {
    Bound::Day(NaiveDate::from_ymd_opt(2025, 3, d).unwrap())
}

fn options(dir: &Path, from: Bound, to: Bound) -> Options {
    Options {
        from,
        to: Some(to),
        step: Duration::from_secs(STEP as u64),
        output: dir.join("history.om"),
        overwrite: false,
        labels: vec![("job".into(), "wolkvox".into()), ("instance".into(), "exporter:9798".into())],
        spread: false,
    }
}

/// The written samples, per series (as written, with the target labels), in order.
pub(crate) fn read_history(path: &Path) -> BTreeMap<String, Vec<(i64, Sample)>> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.ends_with("# EOF\n"), "the file ends with # EOF");
    let mut out: BTreeMap<String, Vec<(i64, Sample)>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (head, ts) = line.rsplit_once(' ').unwrap();
        let sample = parse_sample(head).unwrap_or_else(|| panic!("unparsable {line:?}"));
        assert_eq!(sample.labels["job"], "wolkvox", "{line}");
        assert_eq!(sample.labels["instance"], "exporter:9798", "{line}");
        let key = head.rsplit_once(' ').unwrap().0.to_owned();
        out.entry(key).or_default().push((ts.parse().unwrap(), sample));
    }
    out
}

/// The instants of the truth's events, per series key, sorted.
type Events = BTreeMap<Vec<String>, Vec<i64>>;

fn count_before(events: &Events, key: &[String], t: i64) -> f64 {
    events.get(key).map_or(0, |at| at.partition_point(|&a| a < t)) as f64
}

/// Checks every sample of `name` against the events dated before its instant, that
/// samples come every step (the last at the range's end) and start at 0.
fn assert_every_step(
    history: &BTreeMap<String, Vec<(i64, Sample)>>,
    name: &str,
    labels: &[&str],
    events: &Events,
    end: i64,
) -> usize {
    let mut series = 0;
    for samples in history.values().filter(|s| s[0].1.name == name) {
        series += 1;
        let key: Vec<String> = labels.iter().map(|l| samples[0].1.labels[*l].clone()).collect();
        assert_eq!(samples[0].1.value, 0.0, "{name} {key:?} starts at 0");
        for pair in samples.windows(2) {
            let gap = pair[1].0 - pair[0].0;
            assert!(
                gap == STEP || (pair[1].0 == end && gap <= STEP),
                "{name} {key:?}: samples {} and {} are not a step apart",
                pair[0].0,
                pair[1].0
            );
        }
        assert_eq!(samples.last().unwrap().0, end, "{name} {key:?} runs to the end");
        for (t, s) in samples {
            assert_eq!(
                s.value,
                count_before(events, &key, *t),
                "{name} {key:?} at {t}: the records dated before it"
            );
        }
    }
    series
}

fn events_of(pairs: impl IntoIterator<Item = (Vec<String>, i64)>) -> Events {
    let mut events = Events::new();
    for (k, at) in pairs {
        events.entry(k).or_default().push(at);
    }
    for at in events.values_mut() {
        at.sort_unstable();
    }
    events
}

/// Three local days of every report, backfilled, then the exporter on the state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_holds_what_was_dated_before_it_and_the_exporter_continues() {
    let clock = TestClock::at(local(13, 9));
    let mut cfg = WolkvoxConfig::bounded(local(10, 0), local(13, 6));
    cfg.clock = clock.sim_clock();
    let fake = Wolkvox::start(cfg);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let config = TestConfig::new(&state)
        .op(Operation::fake("main", &fake).reports(&["agent_13", "cdr_1", "agent_13_1", "agent_12"]))
        .config();
    let opts = options(dir.path(), day(10), day(12));
    let summary = backfill::run(&config, &opts, clock.shared(), &Bars::default(), std::future::pending())
        .await
        .unwrap();
    assert!(summary.done(), "{summary:?}");
    assert!(state.exists());
    assert!(!dir.path().join("state.json.backfill").exists(), "the progress is forgotten");

    let (start, end) = (local(10, 0), local(13, 0));
    let history = read_history(&opts.output);
    let sim = fake.simulator();
    let records = sim.records_between(start, end - chrono::Duration::seconds(1));
    let interactions = events_of(
        records.iter().map(|r| (vec![r.agent_id.clone(), r.interaction.to_owned()], r.at.timestamp())),
    );
    let n = assert_every_step(
        &history,
        "wolkvox_agent_interactions_total",
        &["agent_id", "interaction"],
        &interactions,
        end.timestamp(),
    );
    assert_eq!(n, interactions.len());
    let calls = sim.calls_between(start, end - chrono::Duration::seconds(1));
    let by_direction = events_of(
        calls.iter().map(|c| (vec![c.agent_id.clone(), direction(c.kind).to_owned()], c.at.timestamp())),
    );
    let n = assert_every_step(
        &history,
        "wolkvox_agent_calls_total",
        &["agent_id", "direction"],
        &by_direction,
        end.timestamp(),
    );
    assert_eq!(n, by_direction.len());
    // The histogram's count is the counter, at every step.
    for (key, samples) in
        history.iter().filter(|(_, s)| s[0].1.name == "wolkvox_agent_interaction_duration_seconds_count")
    {
        let l = &samples[0].1.labels;
        let events_key = vec![l["agent_id"].clone(), l["interaction"].clone()];
        for (t, s) in samples {
            assert_eq!(s.value, count_before(&interactions, &events_key, *t), "{key} at {t}");
        }
    }
    // Flows and call seconds: the whole range at its end.
    let legs = sim.legs_between(start, end - chrono::Duration::seconds(1));
    let at_end = |name: &str| -> f64 {
        history.values().filter(|s| s[0].1.name == name).map(|s| s.last().unwrap().1.value).sum()
    };
    assert_eq!(at_end("wolkvox_transfer_flows_total"), legs.len() as f64);
    assert_eq!(
        at_end("wolkvox_agent_call_seconds_total"),
        calls.iter().map(|c| c.seconds).sum::<u64>() as f64
    );
    // Agents: each from the step after its first record, in any report.
    let mut first: BTreeMap<String, i64> = BTreeMap::new();
    for (agent, at) in records
        .iter()
        .map(|r| (&r.agent_id, r.at))
        .chain(calls.iter().map(|c| (&c.agent_id, c.at)))
        .chain(legs.iter().map(|l| (&l.origin_id, l.at)))
    {
        let e = first.entry(agent.clone()).or_insert(at.timestamp());
        *e = (*e).min(at.timestamp());
    }
    let first_seen: BTreeMap<String, (i64, f64)> = history
        .values()
        .filter(|s| s[0].1.name == "wolkvox_agent_first_seen_timestamp_seconds")
        .map(|s| (s[0].1.labels["agent_id"].clone(), (s[0].0, s[0].1.value)))
        .collect();
    assert_eq!(first_seen.len(), first.len());
    for (agent, at) in &first {
        let boundary = start.timestamp() + ((at - start.timestamp()) / STEP + 1) * STEP;
        assert_eq!(first_seen[agent], (boundary, *at as f64), "agent {agent}");
    }
    let infos = history.values().filter(|s| s[0].1.name == "wolkvox_agent_info").count();
    assert_eq!(infos, first.len());

    // The exporter on the written state reads on from the range's end: with what it
    // reads, every counter equals the whole history, nothing twice.
    let exporter = InProc::start(config.clone(), &clock).await;
    let truth = fake.truth::<TransfersTruth>();
    let m = exporter
        .wait_for("the rest of the history", Duration::from_secs(60), |m| {
            total(m, "main") >= truth.total()
                && m.get("wolkvox_reconciliation_day_timestamp_seconds", &[("operation", "main")])
                    == Some(local(12, 0).timestamp() as f64)
        })
        .await;
    assert_exact(&m, "main", &truth, &BUCKETS);
    assert_calls_exact(&m, "main", &fake.truth::<CallsTruth>());
    assert_flows_exact(&m, "main", &fake.truth::<FlowsTruth>());
    // The backfill's day tallies carried over: agent_12 agrees with the days it read.
    for interaction in ["transfer", "conference"] {
        assert_eq!(
            m.get(
                "wolkvox_reconciliation_difference",
                &[("operation", "main"), ("interaction", interaction)]
            ),
            Some(0.0)
        );
    }
    exporter.stop().await;
}

/// A backfill stopped by the day's allowance, twice, resumes each time where it stopped
/// and writes the same history as if it had never stopped. The API's limit (token_info)
/// binds: 36 a day, 32 of them the exporter's, 30 kept for polling two reports hourly
/// until midnight, one spent on token_info: one a day for the backfill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_backfill_resumes_where_it_stopped() {
    let clock = TestClock::at(local(13, 9));
    let mut cfg = WolkvoxConfig::bounded(local(10, 0), local(13, 0));
    cfg.sim.agents = 90;
    cfg.daily_limit = Some(36);
    cfg.clock = clock.sim_clock();
    let fake = Wolkvox::start(cfg);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let mut config =
        TestConfig::new(&state).op(Operation::fake("main", &fake).reports(&["agent_13", "cdr_1"]));
    config.interval = "1h".to_owned();
    let config = config.config();
    let opts = Options { spread: true, ..options(dir.path(), day(10), day(12)) };
    let mut runs = 0;
    loop {
        runs += 1;
        assert!(runs <= 10, "the backfill does not finish");
        let summary = backfill::run(&config, &opts, clock.shared(), &Bars::default(), std::future::pending())
            .await
            .unwrap_or_else(|e| panic!("run {runs}: {e}"));
        if summary.done() {
            break;
        }
        let ended = &summary.operations[0].ended;
        assert!(matches!(ended, Err(Stop::Quota | Stop::Paused)), "{ended:?}");
        assert!(dir.path().join("state.json.backfill").exists(), "the progress is saved");
        assert!(!state.exists(), "no state until the backfill is done");
        let day = clock.now().with_timezone(&TZ).date_naive();
        assert_eq!(fake.daily_used(day), 2, "token_info and one report request");
        // The fake's allowance comes back on the operation's next day.
        clock.advance(chrono::Duration::days(1));
    }
    eprintln!("the backfill ran {runs} times, {} requests", fake.requests());
    assert!(runs >= 3, "the allowance stopped the backfill {} times", runs - 1);
    let (start, end) = (local(10, 0), local(13, 0));
    let history = read_history(&opts.output);
    let sim = fake.simulator();
    let records = sim.records_between(start, end - chrono::Duration::seconds(1));
    let interactions = events_of(
        records.iter().map(|r| (vec![r.agent_id.clone(), r.interaction.to_owned()], r.at.timestamp())),
    );
    assert_every_step(
        &history,
        "wolkvox_agent_interactions_total",
        &["agent_id", "interaction"],
        &interactions,
        end.timestamp(),
    );
    let calls = sim.calls_between(start, end - chrono::Duration::seconds(1));
    assert!(calls.len() > 60_000, "cdr_1 needs windows split at the cap: {}", calls.len());
    let by_direction = events_of(
        calls.iter().map(|c| (vec![c.agent_id.clone(), direction(c.kind).to_owned()], c.at.timestamp())),
    );
    assert_every_step(
        &history,
        "wolkvox_agent_calls_total",
        &["agent_id", "direction"],
        &by_direction,
        end.timestamp(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_refuses_an_existing_state_and_series_without_target_labels() {
    let clock = TestClock::at(local(13, 9));
    let mut cfg = WolkvoxConfig::bounded(local(10, 0), local(13, 0));
    cfg.clock = clock.sim_clock();
    let fake = Wolkvox::start(cfg);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let config = TestConfig::new(&state).op(Operation::fake("main", &fake)).config();
    let run = |opts: Options| {
        let (config, clock) = (config.clone(), clock.clone());
        async move {
            backfill::run(&config, &opts, clock.shared(), &Bars::default(), std::future::pending()).await
        }
    };
    let mut unlabelled = options(dir.path(), day(10), day(12));
    unlabelled.labels.retain(|(n, _)| n != "instance");
    let err = run(unlabelled).await.unwrap_err();
    assert!(matches!(err, BackfillError::Usage(_)), "{err}");
    assert!(err.to_string().contains("--label=instance"), "{err}");

    std::fs::write(&state, "{}").unwrap();
    let err = run(options(dir.path(), day(10), day(12))).await.unwrap_err();
    assert!(matches!(err, BackfillError::StateExists(_)), "{err}");
    assert!(err.to_string().contains("Point --state.path at a new file"), "{err}");
    assert_eq!(std::fs::read_to_string(&state).unwrap(), "{}", "the state is untouched");
    assert_eq!(fake.requests(), 0, "nothing was read");
}

/// The acceptance: three local days backfilled by the binary, turned into blocks
/// by promtool, the exporter started on the written state and scraped by Prometheus.
///
/// Tolerance of `increase()` over a past day: none beyond float rounding. Prometheus
/// 2.x selects `[T-1d, T]` with both ends included, the backfill writes a sample at every
/// step boundary (local midnights among them) and a 0 one step before each series'
/// first value, so the first and last samples sit on the range's ends and no
/// extrapolation applies. (Prometheus 3 leaves the range's start out: the first sample
/// is then a step late, and `increase()` extrapolates over that step, off by up to the
/// day's count over the steps in a day, 1/288 at 5m, plus that step's records.)
#[test]
fn prometheus_sees_one_series_across_the_seam() {
    let (mut sim, end) = anchored(chrono::Duration::days(4));
    sim.agents = 6;
    let fake = Wolkvox::start(WolkvoxConfig::new(sim));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let config = TestConfig::new(&state)
        .op(Operation::fake("main", &fake).reports(&["agent_13", "cdr_1", "agent_12"]))
        .write(dir.path());
    // Three whole local days before the one the history ends in.
    let today = end.with_timezone(&TZ).date_naive();
    let midnight = |days_before: u64| {
        let d = today - chrono::Days::new(days_before);
        TZ.from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap()).unwrap().with_timezone(&Utc)
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let instance = format!("127.0.0.1:{port}");
    let output = dir.path().join("history.om");
    let backfilled = run_to_exit(
        &[
            "backfill",
            &config,
            &format!("--from={}", today - chrono::Days::new(3)),
            &format!("--to={}", today - chrono::Days::new(1)),
            &format!("--output={}", output.display()),
            "--label=job=wolkvox",
            &format!("--label=instance={instance}"),
        ],
        &[],
        Duration::from_secs(120),
    );
    assert!(backfilled.status.success(), "{}", backfilled.text());
    assert!(backfilled.stdout.contains("wrote "), "{}", backfilled.text());

    let exporter = Exporter::start(&[&config, &format!("--web.listen-address={instance}")]);
    let prometheus = Prometheus::builder()
        .backfill(&output)
        .scrape("wolkvox", std::slice::from_ref(&instance), Duration::from_secs(1))
        .start();
    // The history begins a day before the backfill's first day: that day is not read.
    let truth = fake.truth_between::<TransfersTruth>(midnight(3), end);
    let latest = "sum(wolkvox_agent_interactions_total{job=\"wolkvox\"})";
    prometheus.wait_until(latest, Duration::from_secs(60), |d| scalar(d) == Some(truth.total() as f64));
    // One series across the seam. At the backfill's end, before Prometheus ran, only
    // backfilled samples exist; each of those series is scraped now under the same
    // labels, not lower, and no series of the family resets over the whole range.
    let seam = midnight(0);
    let before_seam = fake.truth_between::<TransfersTruth>(midnight(3), seam - chrono::Duration::seconds(1));
    let d = prometheus.query_at(latest, seam.timestamp()).unwrap();
    assert_eq!(scalar(&d), Some(before_seam.total() as f64), "at the seam: {d}");
    for family in [
        "wolkvox_agent_interactions_total",
        "wolkvox_agent_calls_total",
        "wolkvox_agent_interaction_duration_seconds_bucket",
    ] {
        let selector = format!("{family}{{job=\"wolkvox\"}}");
        let then = series_values(&prometheus.query_at(&selector, seam.timestamp()).unwrap());
        let now = series_values(&prometheus.query(&selector).unwrap());
        assert!(!then.is_empty(), "{family}: nothing backfilled");
        for (labels, value) in &then {
            let scraped = now.get(labels).unwrap_or_else(|| panic!("{family} {labels} is not scraped"));
            assert!(scraped >= value, "{family} {labels}: {value} backfilled, {scraped} scraped");
        }
        let resets = format!("sum(resets({selector}[5d]))");
        let d = prometheus.query(&resets).unwrap();
        assert_eq!(scalar(&d), Some(0.0), "{family}: {d}");
    }
    for days_before in [0, 1, 2] {
        let t = midnight(days_before);
        let day_truth = fake
            .truth_between::<TransfersTruth>(t - chrono::Duration::days(1), t - chrono::Duration::seconds(1));
        let d = prometheus
            .query_at("sum(increase(wolkvox_agent_interactions_total{job=\"wolkvox\"}[1d]))", t.timestamp())
            .unwrap();
        let got = scalar(&d).unwrap_or_else(|| panic!("no increase for the day ending {t}: {d}"));
        let want = day_truth.total() as f64;
        assert!((got - want).abs() <= 1e-6 * want.max(1.0), "day ending {t}: increase() {got}, truth {want}");
    }
    drop(exporter);
}

/// The binary stopped by SIGTERM saves its progress and says so (exit status 1); the
/// same command then finishes the backfill.
#[test]
fn sigterm_saves_the_progress_and_the_same_command_finishes() {
    let (sim, end) = anchored(chrono::Duration::days(2));
    let mut cfg = WolkvoxConfig::new(sim);
    cfg.latency = Duration::from_millis(300);
    let fake = Wolkvox::start(cfg);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let config = TestConfig::new(&state)
        .op(Operation::fake("main", &fake).reports(&["agent_13", "cdr_1", "agent_13_1"]))
        .write(dir.path());
    let (from, to) = (end - chrono::Duration::hours(36), end - chrono::Duration::hours(1));
    let output = dir.path().join("history.om");
    let args = [
        "backfill".to_owned(),
        config,
        format!("--from={}", from.to_rfc3339()),
        format!("--to={}", to.to_rfc3339()),
        format!("--output={}", output.display()),
        "--label=job=wolkvox".to_owned(),
        "--label=instance=exporter:9798".to_owned(),
    ];
    let mut child = std::process::Command::new(crate::support::exporter::exporter_bin())
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    crate::support::wait::Wait::new("the first request", Duration::from_secs(30)).until(|| {
        if fake.requests() >= 1 {
            Ok(())
        } else {
            Err("none yet")
        }
    });
    let sent = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let stopped = crate::support::wait::Wait::new("the backfill to stop", Duration::from_secs(30))
        .until(|| child.try_wait().unwrap().ok_or("running"));
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    assert_eq!(stopped.code(), Some(1), "{stdout}");
    assert!(stdout.contains("interrupted; run the same command to resume"), "{stdout}");
    assert!(dir.path().join("state.json.backfill").exists());
    assert!(!state.exists() && !output.exists());
    let before = fake.requests();
    assert!(before < 3, "stopped before the last report: {before} requests");

    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let finished = run_to_exit(&args, &[], Duration::from_secs(60));
    assert!(finished.status.success(), "{}", finished.text());
    assert!(state.exists() && output.exists());
    let history = read_history(&output);
    let last = |name: &str| -> f64 {
        history.values().filter(|s| s[0].1.name == name).map(|s| s.last().unwrap().1.value).sum()
    };
    let truth = fake.truth_between::<TransfersTruth>(from, to - chrono::Duration::seconds(1));
    assert_eq!(last("wolkvox_agent_interactions_total"), truth.total() as f64);
}

/// An instant vector's series (their labels as JSON text) and values.
fn series_values(data: &serde_json::Value) -> BTreeMap<String, f64> {
    data["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let value = s["value"][1].as_str().unwrap().parse().unwrap();
            (s["metric"].to_string(), value)
        })
        .collect()
}

fn scalar(data: &serde_json::Value) -> Option<f64> {
    data["result"][0]["value"][1].as_str()?.parse().ok()
}
