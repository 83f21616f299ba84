//! Hostile input from the API, served by a scripted loopback server: a 1 MB agent name,
//! control characters, absurd durations, empty strings, dates far away, non-records,
//! an oversized body, and 200,000 distinct agent ids against the `max_agents` guard.
//! Every record ends counted or rejected under a reason, exactly, re-reads included.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::support::clock::wall_second;
use crate::support::config::{Operation, TestConfig};
use crate::support::exporter::{rss_kib, Exporter};
use crate::support::exposition::Exposition;
use crate::support::wait;
use chrono::NaiveDateTime;
use serde_json::{json, Value};
use wolkvox_exporter::reports::fields::{clean_label, MAX_ID_BYTES, MAX_NAME_BYTES};
use wolkvox_sim::{Reply, Schedule, Wolkvox, WolkvoxConfig};

const TZ: chrono_tz::Tz = chrono_tz::America::Bogota;

/// What must become of one record.
#[derive(Debug, Clone)]
enum Expect {
    Counted { agent: String, interaction: &'static str, secs: u64 },
    Invalid(&'static str),
}

use Expect::{Counted, Invalid};

fn counted(agent: &str, interaction: &'static str, secs: u64) -> Expect {
    Counted { agent: agent.to_owned(), interaction, secs }
}

/// The operation's wall clock now, in whole seconds as the API's windows are: the
/// exporter binary reads the real clock, and records are served minutes to hours
/// before it (only the offset matters, never the date or hour).
fn now_local() -> NaiveDateTime {
    wall_second().with_timezone(&TZ).naive_local()
}

fn fmt(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A well-formed record with one field replaced (or removed, with `Value::Null` under
/// the key `"-field"`).
fn record(n: usize, date: &str, changes: &[(&str, Value)]) -> Value {
    let mut r = json!({
        "agent_name": format!("Agent {n}"),
        "agent_id": format!("{}", 7000 + n),
        "conn_id": format!("12462.0277.{n}.44005"),
        "date": date,
        "telephone": "3001234567",
        "type_interaction": "transfer",
        "time": "00:01:00",
    });
    for (k, v) in changes {
        match k.strip_prefix('-') {
            Some(field) => {
                r.as_object_mut().unwrap().remove(field);
            }
            None => r[*k] = v.clone(),
        }
    }
    r
}

#[test]
fn hostile_records_end_counted_or_rejected_exactly() {
    // Served by the window holding `serve_at`, ten minutes ago: inside the overlap, so
    // every cycle reads them again and nothing may be counted or rejected twice.
    let serve_at = now_local() - chrono::Duration::minutes(10);
    let d = fmt(serve_at);
    let big_name = "Ñ".repeat(512 * 1024); // 1 MiB of UTF-8
    let long_id = format!("7{}", "9".repeat(299));
    let cases: Vec<(Value, Expect)> = vec![
        (record(1, &d, &[("agent_name", json!(big_name))]), counted("7001", "transfer", 60)),
        (
            record(2, &d, &[("agent_name", json!("Ana\u{0}\u{1b}[31m\r\nRuiz\t\u{7f}"))]),
            counted("7002", "transfer", 60),
        ),
        (record(3, &d, &[("agent_id", json!("70\u{7}03\n"))]), counted("70 03", "transfer", 60)),
        (record(4, &d, &[("time", json!("99999:59:59"))]), Invalid("bad_time")),
        (record(5, &d, &[("time", json!("-1"))]), Invalid("bad_time")),
        (record(6, &d, &[("time", json!("1:2"))]), Invalid("bad_time")),
        (record(7, &d, &[("time", json!(""))]), Invalid("bad_time")),
        (record(8, &d, &[("time", json!("00:60:00"))]), Invalid("bad_time")),
        (record(9, &d, &[("time", json!(125))]), Invalid("bad_time")),
        (record(10, &d, &[("time", json!(" 00:00:07 "))]), counted("7010", "transfer", 7)),
        (record(11, &d, &[("time", json!("8783:59:59"))]), counted("7011", "transfer", 8783 * 3600 + 3599)),
        (record(12, &d, &[("time", Value::Null)]), Invalid("missing_field")),
        (record(13, &d, &[("agent_id", json!(""))]), Invalid("missing_field")),
        (record(14, &d, &[("conn_id", json!(""))]), Invalid("missing_field")),
        (record(15, &d, &[("type_interaction", json!("  "))]), Invalid("missing_field")),
        (record(16, &d, &[("-agent_name", Value::Null)]), Invalid("missing_field")),
        (record(17, &d, &[("agent_name", json!(""))]), counted("7017", "transfer", 60)),
        (record(18, &d, &[("date", json!(""))]), Invalid("bad_date")),
        (record(19, &d, &[("date", json!("0001-01-01 00:00:00"))]), Invalid("outside_window")),
        (record(20, &d, &[("date", json!("9999-12-31 23:59:59"))]), Invalid("outside_window")),
        (record(21, &d, &[("date", json!("1969-12-31 23:59:59"))]), Invalid("outside_window")),
        (record(22, &d, &[("date", json!("2026-02-30 10:00:00"))]), Invalid("bad_date")),
        (record(23, &d, &[("date", json!("24/11/2026 10:00"))]), Invalid("bad_date")),
        (record(24, &d, &[("date", json!(20261124))]), Invalid("bad_date")),
        (record(25, &d, &[("type_interaction", json!("TRANSFER"))]), counted("7025", "transfer", 60)),
        (record(26, &d, &[("type_interaction", json!(" conference "))]), counted("7026", "conference", 60)),
        (record(27, &d, &[("type_interaction", json!("parked\u{0}"))]), counted("7027", "other", 60)),
        (record(28, &d, &[("agent_id", json!(7028))]), counted("7028", "transfer", 60)),
        (record(29, &d, &[("agent_id", json!(long_id))]), counted(&long_id[..MAX_ID_BYTES], "transfer", 60)),
        (record(30, &d, &[("agent_id", json!({"nested": [1]}))]), Invalid("missing_field")),
        (json!(42), Invalid("missing_field")),
        (json!("a string"), Invalid("missing_field")),
        (Value::Null, Invalid("missing_field")),
        (json!([record(31, &d, &[])]), Invalid("missing_field")),
    ];
    // The same record twice in one answer counts once.
    let twice = record(40, &d, &[]);
    let mut entries: Vec<(NaiveDateTime, String)> =
        cases.iter().map(|(r, _)| (serve_at, r.to_string())).collect();
    entries.push((serve_at, twice.to_string()));
    entries.push((serve_at, twice.to_string()));
    let non_objects = cases.iter().filter(|(v, _)| !v.is_object()).count() as u64;
    let mut expected = cases.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>();
    expected.push(counted("7040", "transfer", 60));
    let schedule = Schedule::new(entries);
    let api = Wolkvox::start(WolkvoxConfig::scripted(move |req| schedule.reply(req)));

    // A second operation whose every answer is over the body cap.
    let huge = Wolkvox::start(WolkvoxConfig::scripted(|_| {
        let name = "x".repeat(3 * 1024 * 1024);
        Reply::records([record(1, "2026-11-24 10:00:00", &[("agent_name", json!(name))])
            .to_string()
            .as_str()])
    }));

    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&dir.path().join("s.json"))
        // The scripted answers are agent_13's rows.
        .op(Operation::new("hostile", api.base_url(), "tok", "America/Bogota").reports(&["agent_13"]))
        // The scripted answers are agent_13's rows.
        .op(Operation::new("huge", huge.base_url(), "tok", "America/Bogota").reports(&["agent_13"]))
        .max_body_bytes(2 * 1024 * 1024)
        .write(dir.path());
    let exporter = Exporter::start(&[&config]);

    let mut series: BTreeMap<(String, &str), (u64, u64)> = BTreeMap::new();
    let mut invalid: BTreeMap<&str, u64> = BTreeMap::new();
    for e in &expected {
        match e {
            Counted { agent, interaction, secs } => {
                let s = series.entry((agent.clone(), *interaction)).or_default();
                s.0 += 1;
                s.1 += secs;
            }
            Invalid(reason) => *invalid.entry(reason).or_default() += 1,
        }
    }
    let check = |m: &Exposition| {
        for ((agent, interaction), (count, sum)) in &series {
            let labels =
                [("operation", "hostile"), ("agent_id", agent.as_str()), ("interaction", *interaction)];
            assert_eq!(
                m.get("wolkvox_agent_interactions_total", &labels),
                Some(*count as f64),
                "{agent:?}/{interaction}"
            );
            assert_eq!(
                m.get("wolkvox_agent_interaction_duration_seconds_sum", &labels),
                Some(*sum as f64),
                "{agent:?}/{interaction}"
            );
        }
        assert_eq!(
            m.select("wolkvox_agent_interactions_total", &[("operation", "hostile")]).count(),
            series.len(),
            "no series beyond the expected ones"
        );
        for reason in ["bad_time", "bad_date", "outside_window"] {
            assert_eq!(
                m.get("wolkvox_records_invalid_total", &[("operation", "hostile"), ("reason", reason)]),
                Some(invalid.get(reason).copied().unwrap_or(0) as f64),
                "invalid reason={reason}"
            );
        }
        // A record missing a field is remembered and rejected once; a `data` item that
        // is not an object has no fields to remember, so every read rejects it again.
        let reads = m.get("wolkvox_api_requests_total", &[("operation", "hostile")]).unwrap();
        assert_eq!(
            m.get("wolkvox_records_invalid_total", &[("operation", "hostile"), ("reason", "missing_field")]),
            Some((invalid["missing_field"] - non_objects) as f64 + non_objects as f64 * reads),
            "invalid reason=missing_field"
        );
    };
    // A read is counted before its rows are: a moment between the two would show the
    // read without its rejections, so the checks wait for the rows of every read.
    let settled = |m: &Exposition| {
        let reads = m.get("wolkvox_api_requests_total", &[("operation", "hostile")]).unwrap_or(0.0);
        m.get("wolkvox_records_invalid_total", &[("operation", "hostile"), ("reason", "missing_field")])
            == Some((invalid["missing_field"] - non_objects) as f64 + non_objects as f64 * reads)
    };
    let counted_total: u64 = series.values().map(|s| s.0).sum();
    let text = exporter.wait_for_metrics(Duration::from_secs(30), |t| {
        let m = Exposition::parse(t);
        settled(&m)
            && m.sum("wolkvox_agent_interactions_total", &[("operation", "hostile")]) as u64 == counted_total
            && m.get("wolkvox_api_request_errors_total", &[("operation", "huge"), ("reason", "too_large")])
                .unwrap_or(0.0)
                >= 1.0
    });
    let m = Exposition::parse(&text);
    check(&m);
    // The 1 MB name is cut to a label-sized prefix; the exposition stays small.
    let info = |id: &str| {
        m.select("wolkvox_agent_info", &[("operation", "hostile"), ("agent_id", id)]).next().unwrap().labels
            ["agent_name"]
            .clone()
    };
    assert_eq!(info("7001"), clean_label(&"Ñ".repeat(1000), MAX_NAME_BYTES));
    let cleaned = info("7002");
    assert_eq!(cleaned, "Ana  [31m  Ruiz  ");
    assert!(!cleaned.chars().any(char::is_control));
    assert!(text.len() < 64 * 1024, "exposition of {} bytes", text.len());
    assert_eq!(m.get("wolkvox_up", &[("operation", "huge")]), Some(0.0));
    assert_eq!(m.get("wolkvox_up", &[("operation", "hostile")]), Some(1.0));

    // Several more cycles re-read the same answer: still exact.
    let requests = api.requests();
    wait::until("three more reads of the overlap", Duration::from_secs(30), || {
        let seen = api.requests();
        wait::check(seen >= requests + 3, || format!("{} more", seen - requests))
    });
    let text = exporter.wait_for_metrics(Duration::from_secs(30), |t| settled(&Exposition::parse(t)));
    let m = Exposition::parse(&text);
    check(&m);
    assert!(
        m.get("wolkvox_records_duplicate_total", &[("operation", "hostile")]).unwrap()
            >= expected.len() as f64,
        "re-read records are recognised"
    );
}

#[test]
fn two_hundred_thousand_agents_stay_within_max_agents() {
    const AGENTS: usize = 200_000;
    const MAX_AGENTS: usize = 10_000;
    // One record per agent, spread over the last twenty hours, in id order.
    let first = now_local() - chrono::Duration::hours(20);
    let entries: Vec<(NaiveDateTime, String)> = (0..AGENTS)
        .map(|i| {
            let at = first + chrono::Duration::seconds(i as i64 * 72_000 / AGENTS as i64);
            let r = json!({"agent_name": format!("Agent {i}"), "agent_id": format!("{}", 1_000_000 + i),
                "conn_id": format!("c{i}"), "date": fmt(at), "type_interaction": "transfer", "time": "00:00:40"});
            (at, r.to_string())
        })
        .collect();
    let schedule = Schedule::new(entries);
    assert_eq!(schedule.len(), AGENTS);
    let api = Wolkvox::start(WolkvoxConfig::scripted(move |req| schedule.reply(req)));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.json");
    let config = TestConfig::new(&state)
        // The scripted answers are agent_13's rows.
        .op(Operation::new("many", api.base_url(), "tok", "America/Bogota").reports(&["agent_13"]))
        .max_agents(MAX_AGENTS)
        .write(dir.path());
    let exporter = Exporter::start(&[&config]);
    let text = exporter.wait_for_metrics(Duration::from_secs(180), |t| {
        Exposition::parse(t).sum("wolkvox_agent_interactions_total", &[]) as usize == AGENTS
    });
    let m = Exposition::parse(&text);
    let (rss, hwm) = rss_kib(exporter.pid());
    let regular: BTreeSet<String> = m
        .select("wolkvox_agent_interactions_total", &[("operation", "many")])
        .map(|s| s.labels["agent_id"].clone())
        .filter(|id| id != "_overflow")
        .collect();
    // The first agents seen keep their own series; everyone after shares `_overflow`.
    let want: BTreeSet<String> = (0..MAX_AGENTS).map(|i| format!("{}", 1_000_000 + i)).collect();
    assert_eq!(regular, want);
    let overflow = (AGENTS - MAX_AGENTS) as f64;
    assert_eq!(
        m.get("wolkvox_agent_interactions_total", &[("operation", "many"), ("agent_id", "_overflow")]),
        Some(overflow)
    );
    assert_eq!(m.get("wolkvox_agent_overflow_records_total", &[("operation", "many")]), Some(overflow));
    assert_eq!(m.select("wolkvox_agent_info", &[("operation", "many")]).count(), MAX_AGENTS + 1);
    assert!(exporter.logs().contains("agents past max_agents"));
    assert!(m.get("wolkvox_window_splits_total", &[("operation", "many")]).unwrap() >= 2.0);
    // Memory and output are bounded by max_agents, not by the agents the API invents.
    let state_bytes = std::fs::metadata(&state).map(|m| m.len()).unwrap_or(0);
    println!(
        "200,000 agents: exposition {} KiB, state {} KiB, RSS {} MiB (peak {} MiB)",
        text.len() / 1024,
        state_bytes / 1024,
        rss / 1024,
        hwm / 1024
    );
    // About 1.6 KiB of series per agent kept: the exposition grows with max_agents only.
    assert!(text.len() < (MAX_AGENTS + 1) * 2048, "exposition {} bytes", text.len());
    assert!(hwm < 512 * 1024, "peak RSS {} MiB", hwm / 1024);
}
