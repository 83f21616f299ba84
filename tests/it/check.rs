//! `wolkvox-exporter check` against the fake Wolkvox over loopback: a healthy operation,
//! a bad token, a refused caller address, a report that answers 404 on every window,
//! token_info answering 404, a spent quota, a server that never answers, and `--shard`;
//! the words printed, the progress on stderr, the exit status, and no token anywhere.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::clock::anchored;
use crate::support::config::{Operation, TestConfig};
use crate::support::exporter::{run_to_exit, Finished};
use std::sync::Arc;

use chrono::TimeDelta;
use wolkvox_exporter::shard::Shard;
use wolkvox_sim::{Reply, Request, Wolkvox, WolkvoxConfig, CALLER_REFUSED};

const DEADLINE: Duration = Duration::from_secs(60);
const ALL_REPORTS: [&str; 3] = ["agent_13", "cdr_1", "agent_13_1"];

/// A fake with two hours of a working morning's records, ending a minute before now.
fn fake(tweak: impl FnOnce(&mut WolkvoxConfig)) -> Wolkvox {
    let (sim, _) = anchored(TimeDelta::hours(2));
    let mut config = WolkvoxConfig::new(sim);
    config.daily_limit = Some(1000);
    tweak(&mut config);
    Wolkvox::start(config)
}

/// One licence and every report every 5 minutes: 864 of the 900 a day allowed.
fn config(dir: &std::path::Path, ops: Vec<Operation>) -> TestConfig {
    let mut config = TestConfig::new(&dir.join("state.json"));
    config.interval = "5m".to_owned();
    for op in ops {
        config = config.op(op.licenses(1).reports(&ALL_REPORTS));
    }
    config
}

fn check(config: &TestConfig, dir: &std::path::Path, extra: &[&str]) -> Finished {
    let file = config.write(dir);
    let mut args = vec!["check", file.as_str(), "--log.level=trace"];
    args.extend_from_slice(extra);
    run_to_exit(&args, &[], DEADLINE)
}

fn assert_no_secret(out: &Finished, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !out.stdout.contains(secret) && !out.stderr.contains(secret),
            "the token {secret:?} was printed:\n{}",
            out.text()
        );
    }
}

fn assert_lines(out: &Finished, lines: &[&str]) {
    for line in lines {
        assert!(out.stdout.lines().any(|l| l == *line), "no line {line:?} in:\n{}", out.text());
    }
}

#[test]
fn a_healthy_operation_passes_with_one_request_per_report() {
    let fake = fake(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), vec![Operation::fake("main", &fake)]);
    let out = check(&config, dir.path(), &[]);

    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    assert_lines(
        &out,
        &[
            "  token: valid",
            "  caller: allowed (no request was refused as forbidden)",
            "  token_info: answered 200",
            "  allowance: 1000 requests a day (token_info); the exporter may use 900 (10% kept in reserve)",
            "  use today: 4 requests by all the operation's tokens, 4 by this token, 996 available (token_info)",
            "  requests spent: 4 (each costs one unit of the operation's daily quota)",
            "  result: OK",
            "summary: 1 operation checked, all OK; 4 requests spent",
        ],
    );
    assert!(out.stdout.starts_with("operation main (America/Bogota), window "));
    // The plan against the day and against what token_info says is left of today (896
    // of the 900): polling until midnight needs up to 3 x 288, whatever the hour.
    let plan = out.stdout.lines().find(|l| l.starts_with("  plan: ")).unwrap();
    let (day, today) = plan.split_once("; today ").unwrap();
    assert_eq!(day, "  plan: 864 requests a day (agent_13 every 5m: 288, cdr_1 every 5m: 288, agent_13_1 every 5m: 288), within the allowance of 900: fits");
    let needed: u64 = today
        .strip_prefix("896 are left to it (token_info) and polling until the operation's midnight needs ")
        .and_then(|t| t.strip_suffix(": fits"))
        .unwrap_or_else(|| panic!("{plan}"))
        .parse()
        .unwrap();
    assert!((3..=864).contains(&needed), "{plan}");
    // Progress on stderr: the bounds, then each request as it goes.
    assert!(out.stderr.contains("request_timeout=2s total_timeout=6s"), "{}", out.text());
    for request in ["agent_13", "cdr_1", "agent_13_1", "token_info"] {
        assert!(
            out.stderr.contains(&format!("msg=\"asking the API\" operation=main request={request}")),
            "{request}: {}",
            out.text()
        );
    }
    for report in ALL_REPORTS {
        let prefix = format!("  report {report}: answered 200 (");
        assert!(
            out.stdout.lines().any(|l| l.starts_with(&prefix)),
            "{report} did not answer records:\n{}",
            out.text()
        );
        assert_eq!(fake.requests_for(report), 1);
    }
    assert_eq!(fake.requests_for("token_info"), 1);
    assert_eq!(fake.requests(), 4);
    assert_eq!(fake.concurrent_violations(), 0);
    // One window for every report: 10 minutes ending a minute before the request, in
    // the operation's wall-clock time.
    let asked: Vec<_> =
        fake.served_log().into_iter().filter(|r| r.request.api.as_deref() != Some("token_info")).collect();
    for r in &asked {
        let (ini, end) = (r.request.ini.unwrap(), r.request.end.unwrap());
        assert_eq!((ini, end), (asked[0].request.ini.unwrap(), asked[0].request.end.unwrap()));
        assert_eq!(end - ini, TimeDelta::minutes(10));
        let expected_end = (r.request.received_at - TimeDelta::minutes(1))
            .with_timezone(&chrono_tz::America::Bogota)
            .naive_local();
        let off = (expected_end - end).num_seconds();
        assert!((0..30).contains(&off), "window ends {end}, {off}s off");
    }
    assert_no_secret(&out, &[fake.token()]);
}

#[test]
fn a_bad_token_fails_and_is_never_printed() {
    let fake = fake(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let bad = "bad-token-7f3a9c-MARKER";
    let op = Operation::new("main", fake.base_url(), bad, "America/Bogota");
    let out = check(&config(dir.path(), vec![op]), dir.path(), &[]);

    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    let invalid = "failed: invalid, expired or malformed token: PLEASE VALIDATE TOKEN (reason=invalid_token)";
    assert_lines(
        &out,
        &[
            "  token: INVALID: the API answered invalid, expired or malformed token: PLEASE VALIDATE TOKEN (reason=invalid_token); replace the token (see Troubleshooting in the README)",
            &format!("  report agent_13: {invalid}"),
            &format!("  token_info: {invalid}"),
            "  use today: unknown (token_info did not answer)",
            "summary: 1 operation checked, 1 FAILED (main); 4 requests spent",
        ],
    );
    assert!(
        out.stdout.contains("  result: FAILED: token invalid; agent_13 failed (invalid_token);"),
        "{}",
        out.text()
    );
    assert_no_secret(&out, &[bad, "MARKER", fake.token()]);
}

#[test]
fn a_refused_caller_address_is_pointed_out() {
    let fake = fake(|c| c.refuse_caller = true);
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), vec![Operation::fake("main", &fake)]);
    let out = check(&config, dir.path(), &[]);

    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    assert_lines(
        &out,
        &[
            "  token: unknown (no answer said whether the API accepts it)",
            "  caller: NOT allowed: every request was refused with 403 forbidden; this usually \
             means the caller's public IP address is not registered in the operation (up to 5 \
             addresses): register the address this host's traffic leaves from (see \
             Troubleshooting in the README)",
            &format!("  report cdr_1: failed: forbidden: {CALLER_REFUSED} (reason=forbidden)"),
        ],
    );
    assert!(out.stdout.contains("result: FAILED: token not confirmed; caller refused;"));
    assert_eq!(fake.requests(), 4);
    assert_no_secret(&out, &[fake.token()]);
}

#[test]
fn a_report_answering_404_on_every_window_is_not_a_failure() {
    let fake = fake(|c| c.not_enabled = vec!["agent_13_1".to_owned()]);
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), vec![Operation::fake("main", &fake)]);
    let out = check(&config, dir.path(), &[]);

    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    assert_lines(
        &out,
        &["  report agent_13_1: answered 404 (no records, or not enabled on this server)", "  result: OK"],
    );
    assert!(out.stdout.contains("  report agent_13: answered 200 ("));
    assert_eq!(fake.requests_for("agent_13_1"), 1);
    assert_no_secret(&out, &[fake.token()]);
}

/// Each shard checks its own operations only, the shards together check every one, and
/// operations sharing a token never have two requests in flight, even on a slow API.
#[test]
fn check_follows_the_shard_and_one_request_at_a_time_per_token() {
    let fake = fake(|c| {
        c.latency = Duration::from_millis(40);
        c.daily_limit = None;
    });
    let names = ["bogota", "cdmx", "lima", "santiago"];
    let dir = tempfile::tempdir().unwrap();
    let ops = names.iter().map(|n| Operation::fake(n, &fake)).collect();
    let mut config = config(dir.path(), ops);
    for op in &mut config.operations {
        op.licenses = 1000;
    }
    let mut checked = BTreeSet::new();
    for index in 0..2 {
        let shard = format!("--shard={index}/2");
        let out = check(&config, dir.path(), &[&shard]);
        assert_eq!(out.status.code(), Some(0), "{}", out.text());
        let here: BTreeSet<&str> =
            names.iter().copied().filter(|n| out.stdout.contains(&format!("operation {n} ("))).collect();
        let expected: BTreeSet<&str> = names.iter().copied().filter(|n| Shard::of(n, 2) == index).collect();
        assert_eq!(here, expected, "{}", out.text());
        assert!(!here.is_empty(), "shard {index} of these names is empty");
        assert!(out.stdout.contains(&format!("checked (shard {index}/2), all OK")));
        for n in here {
            assert!(checked.insert(n), "{n} checked twice");
        }
    }
    assert_eq!(checked.len(), names.len());
    assert_eq!(fake.requests(), 4 * names.len() as u64);
    assert_eq!(fake.concurrent_violations(), 0);
}

/// Where token_info answers 404 (not available there) the operation still passes: a
/// warning, and the allowance from the configuration.
#[test]
fn token_info_answering_404_is_a_warning_not_a_failure() {
    let fake = fake(|c| {
        c.responder = Some(Arc::new(|request: &Request| {
            (request.api.as_deref() == Some("token_info")).then(|| Reply::html(404, "Not Found"))
        }))
    });
    let dir = tempfile::tempdir().unwrap();
    let out = check(&config(dir.path(), vec![Operation::fake("main", &fake)]), dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", out.text());
    assert_lines(
        &out,
        &[
            "  token_info: not available (answered 404); warning: the allowance and today's use below come from the configuration",
            "  allowance: 1000 requests a day (licenses: 1 x 1000; token_info did not answer); the exporter may use 900 (10% kept in reserve)",
            "  plan: 864 requests a day (agent_13 every 5m: 288, cdr_1 every 5m: 288, agent_13_1 every 5m: 288), within the allowance of 900: fits",
            "  result: OK",
        ],
    );
    assert!(
        out.stderr.contains("level=warn") && out.stderr.contains("token_info is not available"),
        "{}",
        out.text()
    );
    assert_eq!(fake.requests(), 4);
}

/// The day's quota spent: the reports fail as such, with advice on what to do.
#[test]
fn a_spent_quota_gets_advice() {
    let fake = fake(|c| c.daily_limit = Some(0));
    let dir = tempfile::tempdir().unwrap();
    let out = check(&config(dir.path(), vec![Operation::fake("main", &fake)]), dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    assert!(out.stdout.contains("  report cdr_1: failed: daily token quota exceeded"), "{}", out.text());
    let advice: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with("  advice: ")).collect();
    assert_eq!(advice.len(), 1, "{}", out.text());
    assert!(
        advice[0].starts_with("  advice: the operation's daily request quota is spent (403 token limit exceeded): the API refuses every request until the operation's midnight, in "),
        "{}",
        out.text()
    );
}

/// A server that accepts connections and never answers: each request is cut at
/// api.timeout (here 1s; 20s at most), the whole check at three times that, and stderr
/// says what is asked as it goes. What the time did not allow is said, not asked.
#[test]
fn a_server_that_never_answers_is_bounded_and_not_silent() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hold = std::thread::spawn(move || {
        listener.set_nonblocking(true).unwrap();
        let mut held = Vec::new();
        let until = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < until {
            match listener.accept() {
                Ok((conn, _)) => held.push(conn),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), vec![Operation::new("main", &url, "tok", "America/Bogota")]);
    config.timeout = "1s".to_owned();
    let started = std::time::Instant::now();
    let out = check(&config, dir.path(), &[]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(out.stderr.contains("request_timeout=1s total_timeout=3s"), "{}", out.text());
    assert!(out.stderr.contains("msg=\"asking the API\" operation=main request=agent_13"), "{}", out.text());
    assert_lines(
        &out,
        &[
            "  report agent_13: failed: request timed out (reason=timeout)",
            "  token_info: not asked (check's time limit ran out)",
        ],
    );
    drop(hold);
}

#[test]
fn configuration_errors_exit_2_naming_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yml");
    let out = run_to_exit(&["check", &format!("--config.file={}", missing.display())], &[], DEADLINE);
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    assert!(out.stderr.contains("cannot read config file"), "{}", out.text());

    let env = [("WOLKVOX_SERVER", "0042"), ("WOLKVOX_TOKEN", "x")];
    for (shard, says) in [
        ("--shard=2/2", "the shard index 2 is not below the shard count 2"),
        ("--shard=0/0", "the shard count must be at least 1"),
        ("--shard=one/2", "expected I/N"),
    ] {
        let out = run_to_exit(&["check", shard], &env, DEADLINE);
        assert_eq!(out.status.code(), Some(2), "{}", out.text());
        assert!(out.stderr.contains("--shard") && out.stderr.contains(says), "{}", out.text());
        assert!(out.stdout.is_empty(), "{}", out.text());
    }
}

/// A shard that follows none of the operations is a failure (a typo in --shard, or in
/// a name), and each operation's shard is printed.
#[test]
fn a_shard_that_follows_nothing_fails_and_says_where_each_operation_is() {
    let fake = fake(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let names = ["bogota", "cdmx"];
    let config = config(dir.path(), names.iter().map(|n| Operation::fake(n, &fake)).collect());
    let empty = (0..3)
        .find(|&i| names.iter().all(|n| Shard::of(n, 3) != i))
        .expect("three shards for two names leave one empty");
    let out = check(&config, dir.path(), &[&format!("--shard={empty}/3")]);
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    let each: Vec<String> = names.iter().map(|n| format!("{n}: shard {}/3", Shard::of(n, 3))).collect();
    assert_eq!(
        out.stdout,
        format!(
            "summary: FAILED: shard {empty}/3 follows none of the configured operations ({}); check --shard\n",
            each.join(", ")
        )
    );
    assert_eq!(fake.requests(), 0);
}
