//! End to end against a real Prometheus: the exporter in demo mode is scraped every
//! second with the rules loaded, then every dashboard query (panels, variables and
//! annotations, Grafana variables substituted) and every rule expression runs through
//! the Prometheus HTTP API.

use crate::support::grafana;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::clock::real_now;
use crate::support::exporter::Exporter;
use crate::support::exposition::Exposition;
use crate::support::prometheus::{result_len, Prometheus};
use serde_json::Value;

const JOB: &str = "wolkvox";
const SCRAPE_EVERY: Duration = Duration::from_secs(1);

/// Queries allowed to return nothing on a freshly started, healthy demo: the key
/// (`dashboard uid / panel title / refId`, or `rule NAME`), the reason, and a PromQL
/// condition that must itself return data for the emptiness to be accepted, so that an
/// entry cannot excuse a query that is empty for another reason.
const ALLOWED_EMPTY: &[(&str, &str, &str)] = &[
    (
        "wolkvox-transfers / Transfers against a week earlier / A",
        "compares with the same range a week earlier; a new Prometheus has no such history",
        NO_WEEK_OF_HISTORY,
    ),
    (
        "wolkvox-transfers / Conferences against a week earlier / A",
        "compares with the same range a week earlier; a new Prometheus has no such history",
        NO_WEEK_OF_HISTORY,
    ),
    (
        "wolkvox-transfers / On-time interactions in 15 minutes against the baseline / A",
        "the difference of the counters 15 minutes apart; Prometheus has run for a minute",
        NO_15_MINUTES_OF_HISTORY,
    ),
    (
        "rule operation_interaction:wolkvox_agent_interactions:ontime_increase15m",
        "the difference of the counters 15 minutes apart; Prometheus has run for a minute",
        NO_15_MINUTES_OF_HISTORY,
    ),
    (
        "wolkvox-transfers / On-time interactions in 15 minutes against the baseline / B",
        "the baseline needs a day (or a week) of history",
        NO_DAY_OF_HISTORY,
    ),
    (
        "wolkvox-transfers / On-time interactions in 15 minutes against the baseline / C",
        "the baseline needs a day (or a week) of history",
        NO_DAY_OF_HISTORY,
    ),
    (
        "rule operation_interaction:wolkvox_agent_interactions:increase15m_baseline",
        "the baseline needs a day (or a week) of history",
        NO_DAY_OF_HISTORY,
    ),
    (
        "wolkvox-transfers / annotation Catch-ups (counted late) / Anno",
        "marks catch-ups; a healthy demo has none",
        NO_INTERACTION_LATE,
    ),
    (
        "wolkvox-exporter / annotation Catch-ups (counted late) / Anno",
        "marks catch-ups; a healthy demo has none",
        NO_RECORD_LATE,
    ),
    (
        "rule operation_interaction:wolkvox_agent_interactions:median_increase1h",
        "the median counts only agents with an interaction in the last hour; in the minute \
         Prometheus has run there may be none (the demo is quiet at night, Bogota time)",
        NO_AGENT_ACTIVE,
    ),
    (
        "wolkvox-transfers / Agents far above the operation's median / A",
        "divides by the median of the active agents, which is empty (or 0) until the rule \
         has seen an agent active",
        NO_MEDIAN_YET,
    ),
    (
        "wolkvox-transfers / Transfer rate of agents first seen in the last 30 days / A",
        "a rate over the calls Prometheus has seen; in its first minute the demo's new \
         consultant may have taken none",
        NO_NEW_AGENT_CALLS,
    ),
    (
        "wolkvox-transfers / Agents far above the operation's transfer rate / A",
        "needs an agent with 20 calls in Prometheus' last hour; it has run for a minute",
        NO_AGENT_WITH_20_CALLS,
    ),
    (
        "wolkvox-transfers / Calls transferred more than once / A",
        "a share of the chains settled in Prometheus' last hour; in the minute it has run \
         none may have settled (chains settle 2.5 hours after a call's first transfer)",
        NO_CHAIN_SETTLED,
    ),
    (
        "wolkvox-transfers / Calls transferred more than once / B",
        "a share of the chains settled in Prometheus' last day, which is its first minute",
        NO_CHAIN_SETTLED,
    ),
    (
        "wolkvox-transfers / Calls transferred more than once / C",
        "the count of the last hour's chains times their share, which has no series yet",
        NO_CHAIN_SETTLED,
    ),
    (
        "rule operation:wolkvox_transfer_chains:repeated_ratio_rate1h",
        "a share of the chains settled in Prometheus' last hour: none in its first minute",
        NO_CHAIN_SETTLED,
    ),
    (
        "rule operation:wolkvox_transfer_chains:repeated_ratio_rate1d",
        "a share of the chains settled in Prometheus' last day: none in its first minute",
        NO_CHAIN_SETTLED,
    ),
    (
        "rule operation:wolkvox_transfer_chains:increase1h_baseline",
        "the chains settled in the same hour a week earlier; a new Prometheus has no such history",
        NO_WEEK_OF_HISTORY,
    ),
    (
        "rule operation:wolkvox_transfer_chains:repeated_ratio_rate1h_baseline",
        "the share of the same hour a week earlier; a new Prometheus has no such history",
        NO_WEEK_OF_HISTORY,
    ),
    (
        "wolkvox-transfers / Agents who send calls back / A",
        "calls sent back in chains settled over the panel's range; in the minutes Prometheus \
         has run none may have settled",
        NO_CALL_SENT_BACK,
    ),
    (
        "wolkvox-transfers / Agents who send calls back / B",
        "only agents who sent a call back over the panel's range",
        NO_CALL_SENT_BACK,
    ),
    (
        "wolkvox-transfers / Agents who send calls back / C",
        "a share of the agent's transfers over the panel's range: a call sent back counts \
         when its chain settles, hours after the transfers, so over minutes the agents who \
         sent one back may have transferred nothing",
        NO_RETURN_WITH_TRANSFERS,
    ),
];
// The chain counters exist from the start at 0: the conditions hold only where they do.
const NO_CHAIN_SETTLED: &str = "sum(increase(wolkvox_transfer_chains_total{job=\"wolkvox\"}[1h])) == 0";
const NO_CALL_SENT_BACK: &str = "sum(increase(wolkvox_agent_transfers_returned_total{job=\"wolkvox\"}[5m])) == 0 or absent(wolkvox_agent_transfers_returned_total{job=\"wolkvox\"})";
const NO_RETURN_WITH_TRANSFERS: &str = "absent(sum by (operation, agent_id) (increase(wolkvox_agent_transfers_returned_total{job=\"wolkvox\"}[5m])) > 0 and on (operation, agent_id) label_replace(sum by (operation, origin_agent_id) (increase(wolkvox_transfer_flows_total{job=\"wolkvox\",type=\"transfer\"}[5m])), \"agent_id\", \"$1\", \"origin_agent_id\", \"(.*)\") > 0)";
const NO_NEW_AGENT_CALLS: &str = "absent(sum by (operation, agent_id) (increase(wolkvox_agent_calls_total{job=\"wolkvox\",direction=~\"inbound|outbound\"}[1d])) > 0 and on (operation, agent_id) (time() - wolkvox_agent_first_seen_timestamp_seconds{job=\"wolkvox\"} < 30 * 86400))";
const NO_AGENT_WITH_20_CALLS: &str =
    "absent(operation_agent:wolkvox_agent_calls:increase1h{job=\"wolkvox\"} >= 20)";
const NO_WEEK_OF_HISTORY: &str = "absent_over_time(up{job=\"wolkvox\"}[1h] offset 1w)";
const NO_DAY_OF_HISTORY: &str = "absent_over_time(up{job=\"wolkvox\"}[1h] offset 1d)";
const NO_15_MINUTES_OF_HISTORY: &str = "absent_over_time(up{job=\"wolkvox\"}[5m] offset 15m)";
// The late counters exist from the start at 0: the condition holds only where they do.
const NO_INTERACTION_LATE: &str =
    "sum(increase(wolkvox_agent_interactions_late_total{job=\"wolkvox\"}[1h])) == 0";
const NO_RECORD_LATE: &str = "sum(increase(wolkvox_records_late_total{job=\"wolkvox\"}[1h])) == 0";
const NO_MEDIAN_YET: &str = "absent(operation_interaction:wolkvox_agent_interactions:median_increase1h{job=\"wolkvox\",interaction=\"transfer\"} > 0)";
// The median's own input, recorded in the same evaluation.
const NO_AGENT_ACTIVE: &str =
    "absent(operation_agent_interaction:wolkvox_agent_interactions:increase1h{job=\"wolkvox\"} > 0)";
/// The rules that divide one report by another yield nothing while either is not current
/// (behind its usual lag, or more than a tenth of the hour's records counted late: with a
/// handful of records in Prometheus' first minute, one record the demo shows late is a
/// tenth). A query empty for that reason is accepted where it reads those rules.
const NOT_CURRENT: &str = "operation_report:wolkvox_records_late_per_records:ratio_rate1h{job=\"wolkvox\",report=~\"agent_13|cdr_1\"} > 0.1 or operation_report:wolkvox_ingested_until_timestamp_seconds:lag_excess_polls{job=\"wolkvox\",report=~\"agent_13|cdr_1\"} > 3";
const GATED: &[&str] = &["_per_calls:ratio_rate1", "wolkvox_agent_call_seconds:mean1", "lag_excess_polls"];

/// What Grafana would put in place of each variable, for a Prometheus scraping every second.
fn grafana_value(name: &str) -> Option<String> {
    Some(
        match name {
            "__rate_interval" => "1m",
            "__interval" => "15s",
            "__range" => "5m",
            "__range_s" => "300",
            "__range_ms" => "300000",
            "__interval_ms" => "15000",
            "job" => JOB,
            "operation" | "agent" => ".+",
            _ => return None,
        }
        .to_string(),
    )
}

fn substitute(expr: &str) -> String {
    let (text, unknown) = grafana::substitute(expr, grafana_value);
    assert!(unknown.is_empty(), "no value for variables {unknown:?} in {expr}");
    text
}

#[test]
fn every_dashboard_query_and_rule_works_against_a_real_prometheus() {
    let started = Instant::now();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let state = tempfile::tempdir().expect("temp dir for the exporter state");
    let state_path = format!("--state.path={}", state.path().join("state.json").display());
    // Three days of the demo's history, quicker to read than its 35: agent_12 reconciles
    // only local days read whole, at least --reconcile.delay (2h) after their end, so
    // whatever the hour the day before yesterday is one, for the reconciliation panels.
    let exporter = Exporter::start(&["--demo", "--poll.interval=1s", "--poll.catch-up=3d", &state_path]);

    // Prometheus attaches to an exporter that has caught up (agent_12 has reconciled a
    // day too), as it does to one running for a while: a catch-up inside its first hour silences the ratio rules for that
    // hour (the late-records gate), which a test started mid-catch-up would only race.
    let caught_up = |text: &str| {
        let now = real_now().timestamp() as f64;
        let m = Exposition::parse(text);
        ["agent_13", "cdr_1", "agent_13_1"].iter().all(|report| {
            let until = m.get("wolkvox_ingested_until_timestamp_seconds", &[("report", report)]);
            until.is_some_and(|t| now - t < 120.0)
        }) && m.get("wolkvox_reconciliation_day_timestamp_seconds", &[]).is_some()
    };
    exporter.wait_for_metrics(Duration::from_secs(60), caught_up);

    let prometheus = Prometheus::builder()
        .scrape(JOB, &[exporter.addr().to_string()], SCRAPE_EVERY)
        .rule_file(root.join("alerts/wolkvox.rules.yml"))
        .evaluation_interval(SCRAPE_EVERY)
        .start();

    // Enough samples for every rate over a minute, and the recording rules evaluated.
    let up = format!("up{{job=\"{JOB}\"}}");
    prometheus.wait_until(&up, Duration::from_secs(30), |d| d["result"][0]["value"][1] == "1");
    prometheus.wait_until(&format!("count_over_time({up}[1m]) >= 12"), Duration::from_secs(40), |d| {
        result_len(d) == 1
    });
    prometheus.wait_until(
        "operation_agent_interaction:wolkvox_agent_interactions:increase1h",
        Duration::from_secs(30),
        |d| result_len(d) >= 40,
    );
    // The demo's hour is always a busy Thursday's 11:00 (its history is anchored to
    // one), so calls and transfers reach Prometheus within seconds: the ratios have
    // agents to divide by.
    for counted in [
        "operation_agent:wolkvox_agent_calls:increase1h > 0",
        "operation_agent_interaction:wolkvox_agent_interactions:increase1h{interaction=\"transfer\"} > 0",
    ] {
        prometheus.wait_until(counted, Duration::from_secs(60), |d| result_len(d) >= 1);
    }

    // (key, PromQL, whether an empty result is a failure)
    let mut checks: Vec<(String, String, bool)> = Vec::new();
    let dashboards = grafana::load_dashboards();
    assert_eq!(dashboards.len(), 2, "dashboards found");
    for (_, dashboard) in &dashboards {
        for q in grafana::panel_queries(dashboard)
            .into_iter()
            .chain(grafana::variable_queries(dashboard))
            .chain(grafana::annotation_queries(dashboard))
        {
            checks.push((q.key(), q.expr, true));
        }
    }
    let rules: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root.join("alerts/wolkvox.rules.yml")).expect("read rules"),
    )
    .expect("rules YAML");
    let mut recorded = Vec::new();
    for group in rules["groups"].as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            let expr = rule["expr"].as_str().expect("expr").to_string();
            if let Some(record) = rule["record"].as_str() {
                // The expression itself, and the series the rule engine recorded.
                checks.push((format!("rule {record}"), expr, true));
                checks.push((format!("rule {record}"), record.to_string(), true));
                recorded.push(record.to_string());
            } else {
                // A healthy demo fires no alert: an alert expression only has to evaluate.
                let name = rule["alert"].as_str().expect("alert name");
                checks.push((format!("alert {name}"), expr, false));
            }
        }
    }

    let allowed: BTreeMap<&str, &str> =
        ALLOWED_EMPTY.iter().map(|(key, _reason, condition)| (*key, *condition)).collect();
    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    // Every query and its condition at one instant a moment ago, which the rules have
    // evaluated: a condition read later could see data the query did not.
    let at = real_now().timestamp() - 2;
    for (key, expr, must_have_data) in checks {
        let promql = substitute(&expr);
        let allowed = allowed
            .get(key.as_str())
            .copied()
            .or_else(|| GATED.iter().any(|g| promql.contains(g)).then_some(NOT_CURRENT));
        match prometheus.query_at(&promql, at) {
            Err(e) => failures.push(format!("{key}: error: {e}\n    query: {promql}")),
            Ok(data) => {
                let n = result_len(&data);
                if must_have_data && n == 0 {
                    match allowed {
                        None => failures.push(format!("{key}: empty result\n    query: {promql}")),
                        Some(condition) => match prometheus.query_at(condition, at) {
                            Ok(c) if result_len(&c) > 0 => {}
                            other => failures.push(format!(
                                "{key}: empty, and the allow-list condition `{condition}` does \
                                 not hold ({other:?})\n    query: {promql}"
                            )),
                        },
                    }
                }
                checked.insert(key, n);
            }
        }
    }

    // The rule manager itself evaluated everything without error.
    let groups = prometheus.rules();
    let mut rules_seen = 0;
    for group in groups["groups"].as_array().expect("rule groups") {
        for rule in group["rules"].as_array().expect("rules") {
            rules_seen += 1;
            if rule["health"] != "ok" {
                failures.push(format!(
                    "rule {}{}: health {} ({})",
                    rule["name"], rule["type"], rule["health"], rule["lastError"]
                ));
            }
        }
    }
    assert!(rules_seen >= 12, "Prometheus loaded {rules_seen} rules");

    // Every allow-list entry names a real query, so the list cannot rot.
    for key in allowed.keys() {
        assert!(checked.contains_key(*key), "ALLOWED_EMPTY names no query: {key}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} queries failed:\n  {}\nexporter logs:\n{}",
        failures.len(),
        checked.len(),
        failures.join("\n  "),
        exporter.logs()
    );
    assert!(checked.len() >= 35, "only {} queries ran", checked.len());

    // A few answers that must be right, not just present.
    let value = |promql: &str| -> Vec<(Value, f64)> {
        let data = prometheus.query(&substitute(promql)).unwrap();
        data["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["metric"].clone(), s["value"][1].as_str().unwrap().parse().unwrap()))
            .collect()
    };
    let ups = value("wolkvox_up{job=~\"$job\", operation=~\"$operation\"}");
    assert_eq!(ups.len(), 1, "{ups:?}");
    assert_eq!(ups[0].0["operation"], "demo");
    assert_eq!(ups[0].1, 1.0, "the demo operation polls successfully");

    let agents = grafana::variables(&dashboards[0].1)
        .iter()
        .find(|v| v["name"] == "agent")
        .and_then(grafana::variable_query_text)
        .and_then(grafana::promql_of_variable_query)
        .expect("agent variable query");
    let agents = value(&agents);
    assert_eq!(agents.len(), 40, "the demo's 40 agents: {agents:?}");
    assert!(
        agents.iter().all(|(m, _)| m["agent_id"].is_string() && m["agent_name"].is_string()),
        "the agent variable needs agent_id and agent_name: {agents:?}"
    );
    // Grafana renders each result as `{agent_id="...",agent_name="..."}` (labels in
    // Prometheus' order) before applying the variable's regex; that regex expects exactly
    // these two labels, in this order.
    for (metric, _) in &agents {
        let labels: Vec<&String> = metric.as_object().unwrap().keys().collect();
        assert_eq!(labels, ["agent_id", "agent_name"], "{metric}");
    }

    // Every report the demo follows has read up to a moment ago (agent_12 reads once a
    // day and has no watermark to speak of).
    let lag = value("time() - wolkvox_ingested_until_timestamp_seconds{job=~\"$job\",report!=\"agent_12\"}");
    assert!(
        lag.len() == 3 && lag.iter().all(|l| (0.0..1800.0).contains(&l.1)),
        "the demo's data lag is under the stale threshold for every report: {lag:?}"
    );

    let top = dashboards
        .iter()
        .flat_map(|(_, d)| grafana::panel_queries(d))
        .find(|q| q.source == "Top agents" && q.ref_id == "A")
        .expect("top agents table");
    let top = value(&top.expr);
    assert_eq!(top.len(), 40, "one row per agent in the top agents table");
    assert!(top.iter().all(|(m, _)| m["agent_name"].is_string()), "{top:?}");

    assert!(recorded.len() >= 4, "recording rules: {recorded:?}");
    assert!(started.elapsed() < Duration::from_secs(180), "the live test took {:?}", started.elapsed());
}
