//! The exporter binary as users run it (configured by environment), scraped by a real
//! Prometheus: the target is up, PromQL returns the ground truth for every data
//! metric, `promtool check metrics` accepts the exposition, and SIGTERM saves state
//! and exits 0 in time. Also the flag and environment interface of `metrics.md`.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::clock::anchored;
use crate::support::exporter::{exporter_bin, Exporter};
use crate::support::exposition::Exposition;
use crate::support::prometheus::Prometheus;
use serde_json::Value;
use wolkvox_exporter::config::defaults::BUCKETS;
use wolkvox_sim::{TransfersTruth, Wolkvox, WolkvoxConfig};

/// Every `(labels, value)` of an instant vector, labels as `agent_id/interaction[/le]`.
fn vector(data: &Value, keys: &[&str]) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = data["result"]
        .as_array()
        .expect("a vector")
        .iter()
        .map(|s| {
            let key = keys
                .iter()
                .map(|k| s["metric"][*k].as_str().unwrap_or("").to_owned())
                .collect::<Vec<_>>()
                .join("/");
            (key, s["value"][1].as_str().unwrap().parse().unwrap())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn real_prometheus_scrapes_exact_values() {
    // The binary reads the real clock: the history is placed before it, anchored.
    let (sim, _) = anchored(chrono::Duration::hours(12));
    let fake = Wolkvox::start(WolkvoxConfig::new(sim));
    let truth = fake.truth::<TransfersTruth>();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, fake.token()).unwrap();
    let state = dir.path().join("state.json");
    let mut exporter = Exporter::start_with_env(
        &[
            "--poll.interval=1s",
            "--poll.allow-fast",
            "--poll.delay=0s",
            &format!("--state.path={}", state.display()),
        ],
        &[
            ("WOLKVOX_BASE_URL", fake.base_url()),
            ("WOLKVOX_TOKEN_FILE", token_file.to_str().unwrap()),
            ("WOLKVOX_OPERATION", "main"),
            ("WOLKVOX_TIMEZONE", "America/Bogota"),
            // 1 s cycles of two reports: 172,800 requests a day.
            ("WOLKVOX_LICENSES", "200"),
        ],
    );
    let text = exporter.wait_for_metrics(Duration::from_secs(30), |t| {
        Exposition::parse(t).sum("wolkvox_agent_interactions_total", &[]) as u64 >= truth.total()
    });

    // promtool accepts the exposition as served.
    crate::support::prometheus::check_metrics(&text);

    let prom = Prometheus::builder()
        .scrape("wolkvox", &[exporter.addr().to_string()], Duration::from_secs(1))
        .start();
    prom.wait_until("up{job=\"wolkvox\"}", Duration::from_secs(30), |d| {
        d["result"].as_array().is_some_and(|r| r.len() == 1 && r[0]["value"][1] == "1")
    });
    prom.wait_until("count(wolkvox_agent_interactions_total)", Duration::from_secs(30), |d| {
        d["result"].as_array().is_some_and(|r| !r.is_empty())
    });

    let expected_counts: Vec<(String, f64)> =
        truth.series.iter().map(|((a, i), t)| (format!("{a}/{i}"), t.count as f64)).collect();
    let counts = prom.query("wolkvox_agent_interactions_total{operation=\"main\"}").unwrap();
    assert_eq!(vector(&counts, &["agent_id", "interaction"]), expected_counts);
    let hcounts = prom.query("wolkvox_agent_interaction_duration_seconds_count{operation=\"main\"}").unwrap();
    assert_eq!(vector(&hcounts, &["agent_id", "interaction"]), expected_counts);

    let sums = prom.query("wolkvox_agent_interaction_duration_seconds_sum{operation=\"main\"}").unwrap();
    let expected_sums: Vec<(String, f64)> =
        truth.series.iter().map(|((a, i), t)| (format!("{a}/{i}"), t.sum_secs as f64)).collect();
    assert_eq!(vector(&sums, &["agent_id", "interaction"]), expected_sums);

    let le = "300";
    let idx = BUCKETS.iter().position(|b| b.to_string() == le).unwrap();
    // Prometheus 2 scrapes OpenMetrics, where `le` is written `300.0`; Prometheus 3
    // normalizes it. Match both.
    let buckets = prom
        .query(&format!(
            "wolkvox_agent_interaction_duration_seconds_bucket{{operation=\"main\",le=~\"{le}(\\\\.0)?\"}}"
        ))
        .unwrap();
    let expected_buckets: Vec<(String, f64)> = truth
        .series
        .iter()
        .map(|((a, i), t)| (format!("{a}/{i}"), t.cumulative_buckets(&BUCKETS)[idx] as f64))
        .collect();
    assert_eq!(vector(&buckets, &["agent_id", "interaction"]), expected_buckets);

    let mut names: Vec<(String, f64)> = fake
        .truth::<TransfersTruth>()
        .names
        .into_iter()
        .map(|(id, name)| (format!("{id}/{name}"), 1.0))
        .collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    let info = prom.query("wolkvox_agent_info{operation=\"main\"}").unwrap();
    assert_eq!(vector(&info, &["agent_id", "agent_name"]), names);

    let joined = prom
        .query("sum by (agent_name) (wolkvox_agent_interactions_total * on(operation, agent_id) group_left(agent_name) wolkvox_agent_info)")
        .unwrap();
    assert_eq!(vector(&joined, &["agent_name"]).iter().map(|x| x.1).sum::<f64>(), truth.total() as f64);
    let up = prom.query("wolkvox_up{operation=\"main\"}").unwrap();
    assert_eq!(vector(&up, &[]), vec![(String::new(), 1.0)]);
    let limit = prom.query("wolkvox_api_daily_request_limit{operation=\"main\"}").unwrap();
    assert_eq!(vector(&limit, &[]), vec![(String::new(), 200_000.0)]);

    // SIGTERM: state saved, exit 0, within 10 seconds.
    let started = Instant::now();
    let status = exporter.terminate();
    assert!(status.success(), "exit status {status:?}\n{}", exporter.logs());
    assert!(started.elapsed() < Duration::from_secs(10));
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert!(saved["operations"]["main"]["reports"]["agent_13"]["cursor"].is_string(), "{saved}");
}

#[test]
fn openmetrics_and_gzip_are_negotiated() {
    let (sim, _) = anchored(chrono::Duration::hours(2));
    let fake = Wolkvox::start(WolkvoxConfig::new(sim));
    let dir = tempfile::tempdir().unwrap();
    let exporter = Exporter::start_with_env(
        &[
            "--poll.interval=1s",
            "--poll.allow-fast",
            &format!("--state.path={}", dir.path().join("s.json").display()),
            "--web.telemetry-path=/custom",
        ],
        &[
            ("WOLKVOX_BASE_URL", fake.base_url()),
            ("WOLKVOX_TOKEN", fake.token()),
            ("WOLKVOX_LICENSES", "200"),
        ],
    );
    exporter.wait_for_metrics(Duration::from_secs(30), |t| {
        Exposition::parse(t).get("wolkvox_up", &[]) == Some(1.0)
    });
    let om = crate::support::http::get_with_headers(
        &exporter.url("/custom"),
        &[("Accept", "application/openmetrics-text;version=1.0.0,text/plain;q=0.5")],
    )
    .unwrap();
    assert_eq!(om.status, 200);
    assert!(om.header("content-type").unwrap().starts_with("application/openmetrics-text"));
    let body = om.text();
    assert!(body.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    assert!(body.contains("# TYPE wolkvox_agent_interactions counter"));

    let gz = crate::support::http::get_with_headers(&exporter.url("/custom"), &[("Accept-Encoding", "gzip")])
        .unwrap();
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    let mut plain = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz.body[..]), &mut plain).unwrap();
    assert!(plain.contains("# TYPE wolkvox_agent_interactions_total counter"));

    for (path, status) in
        [("/-/healthy", 200), ("/-/ready", 200), ("/", 200), ("/nope", 404), ("/metrics", 404)]
    {
        assert_eq!(crate::support::http::get(&exporter.url(path)).unwrap().status, status, "{path}");
    }
}

#[test]
fn start_up_validation_names_the_bad_key() {
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 5] = [
        (&["--poll.interval=20s"], &[("WOLKVOX_SERVER", "0042"), ("WOLKVOX_TOKEN", "x")], "--poll.interval"),
        (&[], &[("WOLKVOX_SERVER", "42"), ("WOLKVOX_TOKEN", "x")], "WOLKVOX_SERVER"),
        (&[], &[("WOLKVOX_SERVER", "0042")], "WOLKVOX_TOKEN"),
        (
            &[],
            &[("WOLKVOX_SERVER", "0042"), ("WOLKVOX_TOKEN", "x"), ("WOLKVOX_TIMEZONE", "Nowhere/City")],
            "WOLKVOX_TIMEZONE",
        ),
        (&["--poll.overlap=later"], &[("WOLKVOX_SERVER", "0042"), ("WOLKVOX_TOKEN", "x")], "--poll.overlap"),
    ];
    for (args, env, key) in cases {
        let out = Command::new(exporter_bin())
            .args(args)
            .arg("--web.listen-address=127.0.0.1:0")
            .env_clear()
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}");
        // One logfmt line, naming the flag or variable.
        let err = String::from_utf8_lossy(&out.stderr);
        let errors: Vec<&str> = err.lines().filter(|l| l.contains("level=error")).collect();
        assert_eq!(errors.len(), 1, "{args:?} {env:?} -> {err}");
        assert!(
            errors[0].contains(&format!("{key}:")) || errors[0].contains(&format!("'{key} <")),
            "{args:?} {env:?} -> {err}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.yml");
    std::fs::write(&file, "poll:\n  intervall: 5m\n").unwrap();
    let out = Command::new(exporter_bin())
        .arg(format!("--config.file={}", file.display()))
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("intervall"));
}

/// A configuration whose reports would spend more than the day's allowance is refused at
/// start-up, exit status 2, with the figures and the intervals that would fit.
#[test]
fn a_plan_over_the_allowance_is_refused_at_start_up() {
    let out = Command::new(exporter_bin())
        .args(["--web.listen-address=127.0.0.1:0", "--poll.interval=4m", "--poll.allow-fast"])
        .env_clear()
        .envs([
            ("WOLKVOX_SERVER", "0042"),
            ("WOLKVOX_TOKEN", "x"),
            ("WOLKVOX_LICENSES", "1"),
            ("WOLKVOX_REPORTS", "agent_13,cdr_1,agent_13_1"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // The logfmt line's error, its quotes unescaped.
    let err = String::from_utf8_lossy(&out.stderr).replace("\\\"", "\"");
    assert!(
        err.contains(
            "operation \"0042\": its reports would spend 1080 requests a day (agent_13 every 4m: \
             360, cdr_1 every 4m: 360, agent_13_1 every 4m: 360), more than the 900 it may use \
             (1 licenses x 1000, less api.daily_reserve 10%); every report at an interval of \
             4m 48s or longer fits"
        ),
        "{err}"
    );
}

/// In OpenMetrics each bucket of the duration histogram carries the newest call in it as
/// an exemplar; a Prometheus with exemplar storage keeps them and answers with them.
#[test]
fn a_prometheus_with_exemplar_storage_returns_conn_id_exemplars() {
    let (sim, end) = anchored(chrono::Duration::hours(3));
    let fake = Wolkvox::start(WolkvoxConfig::new(sim));
    let dir = tempfile::tempdir().unwrap();
    let exporter = Exporter::start_with_env(
        &[
            "--poll.interval=1s",
            "--poll.allow-fast",
            &format!("--state.path={}", dir.path().join("s.json").display()),
        ],
        &[
            ("WOLKVOX_BASE_URL", fake.base_url()),
            ("WOLKVOX_TOKEN", fake.token()),
            ("WOLKVOX_LICENSES", "200"),
            ("WOLKVOX_REPORTS", "agent_13"),
        ],
    );
    exporter.wait_for_metrics(Duration::from_secs(30), |t| {
        Exposition::parse(t).get("wolkvox_up", &[]) == Some(1.0)
    });
    let prom = Prometheus::builder()
        .feature("exemplar-storage")
        .scrape("wolkvox", &[exporter.addr().to_string()], Duration::from_secs(1))
        .start();
    let query = crate::support::prometheus::percent_encode(
        "wolkvox_agent_interaction_duration_seconds_bucket{job=\"wolkvox\"}",
    );
    let (from, to) = ((end - chrono::Duration::days(1)).timestamp(), end.timestamp() + 3600);
    let served = fake.served_ids("agent_13");
    let durations: std::collections::HashMap<String, u64> = fake
        .simulator()
        .records_between(fake.simulator().config().start, end)
        .into_iter()
        .map(|r| (r.conn_id, r.duration_secs))
        .collect();
    let data = crate::support::wait::until("exemplars in Prometheus", Duration::from_secs(30), || {
        let data = prom
            .api(&format!("/api/v1/query_exemplars?query={query}&start={from}&end={to}"))
            .unwrap_or(Value::Null);
        let found = data.as_array().is_some_and(|series| !series.is_empty());
        crate::support::wait::check(found, || format!("no exemplars yet: {data}")).map(|()| data)
    });
    let exemplars: Vec<&Value> =
        data.as_array().unwrap().iter().flat_map(|s| s["exemplars"].as_array().unwrap()).collect();
    assert!(!exemplars.is_empty());
    for e in exemplars {
        let conn_id = e["labels"]["conn_id"].as_str().expect("a conn_id label");
        assert!(served.contains(conn_id), "{conn_id} is a call the API served");
        let value: f64 = e["value"].as_str().unwrap().parse().unwrap();
        assert!(value > 0.0, "{e}");
        assert_eq!(value, durations[conn_id] as f64, "the duration of {conn_id}");
    }
}
