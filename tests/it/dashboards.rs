//! Static lint of the shipped Grafana dashboards: identity, panel metadata, variables,
//! links, and every PromQL expression (parsed with promql-parser after substituting
//! Grafana variables, with rate/increase windows and counter use checked on the AST).

use crate::support::grafana;

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::time::Duration;

use promql_parser::parser::{self, Expr};
use serde_json::{json, Value};

/// The metrics of the contract (docs: metrics.md). Histograms are listed by base name.
const CONTRACT_METRICS: &[&str] = &[
    "wolkvox_agent_interactions_total",
    "wolkvox_agent_info",
    "wolkvox_up",
    "wolkvox_last_success_timestamp_seconds",
    "wolkvox_ingested_until_timestamp_seconds",
    "wolkvox_api_requests_total",
    "wolkvox_api_request_errors_total",
    "wolkvox_api_empty_responses_total",
    "wolkvox_api_daily_requests",
    "wolkvox_api_daily_request_limit",
    "wolkvox_records_received_total",
    "wolkvox_records_duplicate_total",
    "wolkvox_records_invalid_total",
    "wolkvox_window_splits_total",
    "wolkvox_exporter_build_info",
    "wolkvox_agent_overflow_records_total",
    "wolkvox_state_save_failures_total",
    // Added: more reports, reconciliation, API cost.
    "wolkvox_agent_calls_total",
    "wolkvox_agent_call_seconds_total",
    "wolkvox_transfer_flows_total",
    "wolkvox_agent_first_seen_timestamp_seconds",
    "wolkvox_api_planned_daily_requests",
    "wolkvox_report_paused",
    "wolkvox_poller_restarts_total",
    "wolkvox_web_config_reload_failures_total",
    "wolkvox_web_config_last_reload_successful",
    "wolkvox_reconciliation_difference",
    "wolkvox_reconciliation_day_timestamp_seconds",
    "wolkvox_reconciliation_agents_mismatched",
    // Added: late records and poll intervals (issue 19), for catch-ups and current reports.
    "wolkvox_agent_interactions_late_total",
    "wolkvox_records_late_total",
    "wolkvox_poll_interval_seconds",
    // Added: transfer chains (issue 17).
    "wolkvox_transfer_chains_total",
    "wolkvox_agent_transfers_returned_total",
    "wolkvox_transfer_chains_evicted_total",
    // Prometheus' own per-target series.
    "up",
];

/// Histogram series whose buckets carry exemplars (`conn_id`): every range query of them
/// asks Grafana for the exemplars (`exemplar: true`), so a long interaction on a duration
/// panel leads to its call.
const EXEMPLAR_SERIES: &[&str] = &["wolkvox_agent_interaction_duration_seconds_bucket"];
const CONTRACT_HISTOGRAMS: &[&str] =
    &["wolkvox_agent_interaction_duration_seconds", "wolkvox_api_request_duration_seconds"];

/// Stand-ins for Grafana's interval variables: distinctive durations, so that the AST
/// shows which variable a range came from.
const RATE_INTERVAL: Duration = Duration::from_secs(7777);
const RANGE: Duration = Duration::from_secs(8888);
const INTERVAL: Duration = Duration::from_secs(6666);

/// The variables every dashboard must define, multi-select with an `.+` "All".
const FILTER_VARIABLES: &[&str] = &["job", "operation", "agent"];

/// Metric names a dashboard may use: the contract's and the recording rules'.
fn known_metrics() -> HashSet<String> {
    let mut known: HashSet<String> = CONTRACT_METRICS.iter().map(|s| s.to_string()).collect();
    for base in CONTRACT_HISTOGRAMS {
        for suffix in ["_bucket", "_sum", "_count"] {
            known.insert(format!("{base}{suffix}"));
        }
    }
    let rules_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts/wolkvox.rules.yml");
    let rules: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(rules_path).expect("read rules"))
        .expect("rules file is YAML");
    for group in rules["groups"].as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            if let Some(record) = rule["record"].as_str() {
                known.insert(record.to_string());
            }
        }
    }
    known
}

fn is_counter_series(name: &str) -> bool {
    ["_total", "_bucket", "_count", "_sum"].iter().any(|suffix| name.ends_with(suffix))
}

/// Values for the lint's substitution: interval variables become the sentinels above,
/// every defined variable a regex that matches anything.
fn lint_value(defined: &HashSet<String>, name: &str) -> Option<String> {
    let secs = |d: Duration| format!("{}s", d.as_secs());
    match name {
        "__rate_interval" => Some(secs(RATE_INTERVAL)),
        "__range" => Some(secs(RANGE)),
        "__interval" => Some(secs(INTERVAL)),
        "__range_s" => Some(RANGE.as_secs().to_string()),
        "__range_ms" => Some((RANGE.as_millis()).to_string()),
        "__interval_ms" => Some((INTERVAL.as_millis()).to_string()),
        _ if defined.contains(name) => Some(".+".to_string()),
        _ => None,
    }
}

/// Every problem of one PromQL expression, as sentences naming the expression's origin.
fn check_expr(origin: &str, expr: &str, defined: &HashSet<String>, known: &HashSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    if expr.trim().is_empty() {
        return vec![format!("{origin}: empty query")];
    }
    let (substituted, unknown) = grafana::substitute(expr, |name| lint_value(defined, name));
    for name in unknown {
        problems.push(format!("{origin}: variable ${name} is not defined"));
    }
    match parser::parse(&substituted) {
        Ok(ast) => walk(&ast, None, origin, known, &mut problems),
        Err(e) => {
            problems.push(format!("{origin}: query does not parse ({e}) after substitution: {substituted}"))
        }
    }
    problems
}

const COUNTER_FUNCTIONS: &[&str] = &["rate", "irate", "increase", "resets"];

/// Walks the AST; `parent` is the function whose direct argument `expr` is.
fn walk(
    expr: &Expr,
    parent: Option<&str>,
    origin: &str,
    known: &HashSet<String>,
    problems: &mut Vec<String>,
) {
    let check_name = |name: &Option<String>, problems: &mut Vec<String>| {
        if let Some(name) = name {
            if !known.contains(name) {
                problems.push(format!(
                    "{origin}: unknown metric {name} (not in the metric contract nor a recording rule)"
                ));
            }
        }
    };
    match expr {
        Expr::VectorSelector(vs) => {
            check_name(&vs.name, problems);
            if let Some(name) = &vs.name {
                if is_counter_series(name) {
                    problems.push(format!(
                        "{origin}: counter {name} used outside rate/increase (a raw counter value means nothing)"
                    ));
                }
            }
        }
        Expr::MatrixSelector(ms) => {
            check_name(&ms.vs.name, problems);
            if let Some(name) = &ms.vs.name {
                if is_counter_series(name) && !parent.is_some_and(|p| COUNTER_FUNCTIONS.contains(&p)) {
                    problems.push(format!(
                        "{origin}: counter {name} used outside rate/increase (in {})",
                        parent.unwrap_or("a bare range selector")
                    ));
                }
            }
        }
        Expr::Call(call) => {
            let name = call.func.name;
            if matches!(name, "rate" | "irate" | "increase") {
                match call.args.args.first().map(|a| a.as_ref()) {
                    Some(Expr::MatrixSelector(ms)) => {
                        let ok = ms.range == RATE_INTERVAL || (name == "increase" && ms.range == RANGE);
                        if !ok {
                            problems.push(format!(
                                "{origin}: {name}() over [{}] instead of [$__rate_interval]{}",
                                describe_range(ms.range),
                                if name == "increase" {
                                    " (or [$__range] for a total over the selected range)"
                                } else {
                                    ""
                                }
                            ));
                        }
                    }
                    _ => {
                        problems.push(format!("{origin}: {name}() of something other than a range selector"))
                    }
                }
            }
            for arg in &call.args.args {
                walk(arg, Some(name), origin, known, problems);
            }
        }
        Expr::Aggregate(agg) => {
            walk(&agg.expr, None, origin, known, problems);
            if let Some(param) = &agg.param {
                walk(param, None, origin, known, problems);
            }
        }
        Expr::Binary(bin) => {
            walk(&bin.lhs, None, origin, known, problems);
            walk(&bin.rhs, None, origin, known, problems);
        }
        Expr::Paren(p) => walk(&p.expr, parent, origin, known, problems),
        Expr::Unary(u) => walk(&u.expr, None, origin, known, problems),
        Expr::Subquery(sq) => walk(&sq.expr, None, origin, known, problems),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

fn describe_range(range: Duration) -> String {
    match range {
        r if r == RATE_INTERVAL => "$__rate_interval".to_string(),
        r if r == RANGE => "$__range".to_string(),
        r if r == INTERVAL => "$__interval".to_string(),
        r => format!("{}s, hard-coded", r.as_secs()),
    }
}

/// Every string anywhere in `value`, with its JSON path.
fn strings<'a>(value: &'a Value, path: String, out: &mut Vec<(String, &'a str)>) {
    match value {
        Value::String(s) => out.push((path, s)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                strings(item, format!("{path}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                strings(v, format!("{path}.{k}"), out);
            }
        }
        _ => {}
    }
}

fn non_empty_str(value: &Value) -> bool {
    value.as_str().is_some_and(|s| !s.trim().is_empty())
}

fn uses_datasource_variable(value: &Value) -> bool {
    value["uid"] == "${datasource}" || value == "${datasource}"
}

/// Every problem of one dashboard. Empty means it passes.
fn check_dashboard(file: &str, d: &Value, known: &HashSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut problem = |p: String| problems.push(format!("{file}: {p}"));

    if !non_empty_str(&d["uid"]) {
        problem("the dashboard has no uid".into());
    }
    if !non_empty_str(&d["title"]) {
        problem("the dashboard has no title".into());
    }
    if !non_empty_str(&d["description"]) {
        problem("the dashboard has no description".into());
    }

    // Variables.
    let vars = grafana::variables(d);
    let defined: HashSet<String> =
        vars.iter().filter_map(|v| v["name"].as_str().map(str::to_string)).collect();
    let var = |name: &str| vars.iter().find(|v| v["name"] == name);
    match var("datasource") {
        Some(v) if v["type"] == "datasource" && v["query"] == "prometheus" => {}
        _ => problem("no `datasource` variable of type datasource for prometheus".into()),
    }
    for name in FILTER_VARIABLES {
        let Some(v) = var(name) else {
            problem(format!("variable `{name}` is not defined"));
            continue;
        };
        if v["type"] != "query" {
            problem(format!("variable `{name}` is not a query variable"));
        }
        if v["multi"] != true || v["includeAll"] != true || v["allValue"] != ".+" {
            problem(format!(
                "variable `{name}` must be multi-select with an All option whose allValue is `.+`"
            ));
        }
        if v["refresh"] != 2 {
            problem(format!("variable `{name}` must refresh on time range change (refresh: 2)"));
        }
        if !uses_datasource_variable(&v["datasource"]) {
            problem(format!("variable `{name}` does not query the `$datasource`"));
        }
    }
    for v in vars.iter().filter(|v| v["type"] == "query") {
        let name = v["name"].as_str().unwrap_or("?");
        let Some(text) = grafana::variable_query_text(v) else {
            problem(format!("variable `{name}` has no query"));
            continue;
        };
        if let Some(expr) = grafana::promql_of_variable_query(text) {
            for p in check_expr(&format!("variable `{name}`"), &expr, &defined, known) {
                problem(p);
            }
        } else if !text.trim_start().starts_with("label_values(") {
            problem(format!("variable `{name}`: unsupported query {text:?}"));
        }
    }

    // Panels.
    let mut ids = HashSet::new();
    for panel in grafana::all_panels(d) {
        let title = panel["title"].as_str().unwrap_or_default();
        let origin = format!("panel {:?}", if title.is_empty() { "<untitled>" } else { title });
        if !ids.insert(panel["id"].to_string()) || panel["id"].is_null() {
            problem(format!("{origin}: missing or duplicate panel id {}", panel["id"]));
        }
        if !non_empty_str(&panel["title"]) {
            problem(format!("{origin} (id {}): no title", panel["id"]));
        }
        if panel["gridPos"]["w"].as_u64().unwrap_or(0) == 0
            || panel["gridPos"]["h"].as_u64().unwrap_or(0) == 0
        {
            problem(format!("{origin}: no gridPos"));
        }
        if panel["type"] == "row" {
            continue;
        }
        if !non_empty_str(&panel["description"]) {
            problem(format!("{origin}: no description"));
        }
        if !non_empty_str(&panel["fieldConfig"]["defaults"]["unit"]) {
            problem(format!("{origin}: no unit (fieldConfig.defaults.unit)"));
        }
        if panel["type"] == "heatmap" && !non_empty_str(&panel["options"]["yAxis"]["unit"]) {
            problem(format!("{origin}: heatmap without a y-axis unit (options.yAxis.unit)"));
        }
        if !uses_datasource_variable(&panel["datasource"]) {
            problem(format!("{origin}: does not use the `$datasource` variable"));
        }
        let targets = panel["targets"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        if targets.is_empty() {
            problem(format!("{origin}: no queries"));
        }
        let mut ref_ids = HashSet::new();
        for target in targets {
            let ref_id = target["refId"].as_str().unwrap_or_default();
            let origin = format!("{origin} query {ref_id}");
            if ref_id.is_empty() || !ref_ids.insert(ref_id) {
                problem(format!("{origin}: missing or duplicate refId"));
            }
            if !uses_datasource_variable(&target["datasource"]) {
                problem(format!("{origin}: does not use the `$datasource` variable"));
            }
            let expr = target["expr"].as_str().unwrap_or_default();
            if target["instant"] != true
                && target["exemplar"] != true
                && EXEMPLAR_SERIES.iter().any(|series| expr.contains(series))
            {
                problem(format!(
                    "{origin}: a range query of a histogram with exemplars does not show them (exemplar: true)"
                ));
            }
            for p in check_expr(&origin, target["expr"].as_str().unwrap_or_default(), &defined, known) {
                problem(p);
            }
        }
    }

    // Annotations of the dashboard's own (the built-in one queries Grafana, not Prometheus).
    for a in grafana::annotations(d).iter().filter(|a| a["builtIn"].as_u64().unwrap_or(0) == 0) {
        let origin = format!("annotation {:?}", a["name"].as_str().unwrap_or("<unnamed>"));
        if !non_empty_str(&a["name"]) {
            problem(format!("{origin}: no name"));
        }
        if !uses_datasource_variable(&a["datasource"]) {
            problem(format!("{origin}: does not use the `$datasource` variable"));
        }
        if !non_empty_str(&a["target"]["refId"]) {
            problem(format!("{origin}: no target.refId"));
        }
        for p in check_expr(&origin, a["target"]["expr"].as_str().unwrap_or_default(), &defined, known) {
            problem(p);
        }
    }

    // Variables referenced anywhere else (titles, legends, links...).
    let mut all = Vec::new();
    strings(d, String::new(), &mut all);
    for (path, text) in all {
        if path.ends_with(".regex") || path.ends_with(".expr") || path.contains(".templating.list") {
            continue;
        }
        for r in grafana::variable_refs(text) {
            if !defined.contains(&r.name) && !grafana::BUILTIN_VARIABLES.contains(&r.name.as_str()) {
                problem(format!("{path}: variable ${} is not defined", r.name));
            }
        }
    }
    problems
}

/// Each dashboard must link to every other dashboard of the bundle, keeping time and variables.
fn check_links(dashboards: &[(String, Value)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (file, d) in dashboards {
        let links = d["links"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        for (_, other) in dashboards.iter().filter(|(f, _)| f != file) {
            let uid = other["uid"].as_str().unwrap_or("?");
            let linked = links.iter().any(|l| {
                l["url"].as_str().is_some_and(|u| u.contains(&format!("/d/{uid}")))
                    && l["keepTime"] == true
                    && l["includeVars"] == true
            });
            if !linked {
                problems.push(format!(
                    "{file}: no link to dashboard {uid} (url /d/{uid}, keepTime and includeVars)"
                ));
            }
        }
    }
    problems
}

#[test]
fn shipped_dashboards_pass_the_lint() {
    let dashboards = grafana::load_dashboards();
    let files: BTreeSet<&str> = dashboards.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        files,
        BTreeSet::from(["wolkvox-exporter.json", "wolkvox-transfers.json"]),
        "the dashboards of the bundle"
    );
    let known = known_metrics();
    let mut problems: Vec<String> =
        dashboards.iter().flat_map(|(file, d)| check_dashboard(file, d, &known)).collect();
    problems.extend(check_links(&dashboards));

    let uids: HashSet<&str> = dashboards.iter().filter_map(|(_, d)| d["uid"].as_str()).collect();
    if uids.len() != dashboards.len() {
        problems.push("two dashboards share a uid".into());
    }
    assert!(problems.is_empty(), "dashboard problems:\n  {}", problems.join("\n  "));

    // The lint looked at real content, not at nothing.
    let queries: usize = dashboards.iter().map(|(_, d)| grafana::panel_queries(d).len()).sum();
    assert!(queries >= 30, "only {queries} panel queries found");
}

#[test]
fn provisioning_points_at_the_dashboards() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("grafana/provisioning");
    let read = |p: &str| -> Value {
        serde_yaml_ng::from_str(&std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}")))
            .unwrap_or_else(|e| panic!("{p}: {e}"))
    };
    let ds = read("datasources/wolkvox.yml");
    let prom = &ds["datasources"][0];
    assert_eq!(prom["type"], "prometheus");
    assert_eq!(prom["uid"], "prometheus");
    assert_eq!(prom["url"], "http://prometheus:9090");
    let providers = read("dashboards/wolkvox.yml");
    let provider = &providers["providers"][0];
    assert_eq!(provider["type"], "file");
    assert!(
        provider["options"]["path"].as_str().is_some_and(|p| p.starts_with("/var/lib/grafana/dashboards")),
        "provider path: {}",
        provider["options"]["path"]
    );
}

/// The lint's verdict on the operator dashboard after `mutate`.
fn problems_after(mutate: impl FnOnce(&mut Value)) -> Vec<String> {
    let (file, mut d) = grafana::load_dashboards()
        .into_iter()
        .find(|(f, _)| f == "wolkvox-exporter.json")
        .expect("operator dashboard");
    mutate(&mut d);
    check_dashboard(&file, &d, &known_metrics())
}

/// The first non-row panel with a query.
fn first_query_panel(d: &mut Value) -> &mut Value {
    d["panels"].as_array_mut().unwrap().iter_mut().find(|p| p["type"] != "row").unwrap()
}

fn set_first_expr(d: &mut Value, expr: &str) {
    first_query_panel(d)["targets"][0]["expr"] = json!(expr);
}

#[track_caller]
fn assert_rejected(problems: &[String], needle: &str) {
    assert!(
        problems.iter().any(|p| p.contains(needle)),
        "expected a problem containing {needle:?}, got {problems:#?}"
    );
}

#[test]
fn the_lint_rejects_broken_dashboards() {
    assert_eq!(problems_after(|_| {}), Vec::<String>::new(), "the unmodified dashboard passes");

    assert_rejected(&problems_after(|d| d["uid"] = json!("")), "no uid");
    assert_rejected(
        &problems_after(|d| {
            first_query_panel(d).as_object_mut().unwrap().remove("description");
        }),
        "no description",
    );
    assert_rejected(&problems_after(|d| first_query_panel(d)["title"] = json!("")), "no title");
    assert_rejected(
        &problems_after(|d| first_query_panel(d)["fieldConfig"]["defaults"] = json!({})),
        "no unit",
    );
    assert_rejected(
        &problems_after(|d| set_first_expr(d, "sum(rate(wolkvox_api_requests_total[5m]))")),
        "rate() over [300s, hard-coded] instead of [$__rate_interval]",
    );
    assert_rejected(
        &problems_after(|d| set_first_expr(d, "sum(rate(wolkvox_api_requests_total[$__interval]))")),
        "rate() over [$__interval]",
    );
    assert_rejected(
        &problems_after(|d| set_first_expr(d, "rate(wolkvox_api_requests_total[$__range])")),
        "rate() over [$__range]",
    );
    assert_rejected(
        &problems_after(|d| {
            set_first_expr(d, "sum by (operation) (wolkvox_api_requests_total{job=~\"$job\"})")
        }),
        "counter wolkvox_api_requests_total used outside rate/increase",
    );
    assert_rejected(
        &problems_after(|d| {
            set_first_expr(d, "max_over_time(wolkvox_records_received_total[$__rate_interval])")
        }),
        "counter wolkvox_records_received_total used outside rate/increase (in max_over_time)",
    );
    assert_rejected(
        &problems_after(|d| {
            set_first_expr(d, "histogram_quantile(0.9, wolkvox_api_request_duration_seconds_bucket)")
        }),
        "counter wolkvox_api_request_duration_seconds_bucket used outside",
    );
    assert_rejected(
        &problems_after(|d| set_first_expr(d, "sum(rate(wolkvox_api_requests_total[$__rate_interval])")),
        "does not parse",
    );
    assert_rejected(
        &problems_after(|d| set_first_expr(d, "wolkvox_up{operation=~\"$tenant\"}")),
        "variable $tenant is not defined",
    );
    assert_rejected(
        &problems_after(|d| first_query_panel(d)["title"] = json!("Lag of ${region}")),
        "variable $region is not defined",
    );
    assert_rejected(
        &problems_after(|d| set_first_expr(d, "wolkvox_upp{job=~\"$job\"}")),
        "unknown metric wolkvox_upp",
    );
    assert_rejected(
        &problems_after(|d| {
            let vars = d["templating"]["list"].as_array_mut().unwrap();
            vars.retain(|v| v["name"] != "agent");
        }),
        "variable `agent` is not defined",
    );
    assert_rejected(
        &problems_after(|d| {
            for v in d["templating"]["list"].as_array_mut().unwrap() {
                if v["name"] == "operation" {
                    v["allValue"] = json!(null);
                }
            }
        }),
        "variable `operation` must be multi-select",
    );
    assert_rejected(
        &problems_after(|d| {
            for v in d["templating"]["list"].as_array_mut().unwrap() {
                if v["name"] == "job" {
                    v["refresh"] = json!(1);
                }
            }
        }),
        "variable `job` must refresh on time range change",
    );
    assert_rejected(
        &problems_after(|d| {
            for v in d["templating"]["list"].as_array_mut().unwrap() {
                if v["name"] == "operation" {
                    v["query"] = json!("label_values(wolkvox_upp{job=~\"$job\"}, operation)");
                }
            }
        }),
        "variable `operation`: unknown metric wolkvox_upp",
    );
    assert_rejected(
        &problems_after(|d| {
            first_query_panel(d)["datasource"] = json!({"type": "prometheus", "uid": "abc123"})
        }),
        "does not use the `$datasource` variable",
    );

    assert_rejected(
        &problems_after(|d| {
            let target = &mut first_query_panel(d)["targets"][0];
            target["expr"] = json!(
                "histogram_quantile(0.9, sum by (le) (rate(wolkvox_agent_interaction_duration_seconds_bucket{job=~\"$job\"}[$__rate_interval])))"
            );
            target["instant"] = json!(false);
            target["range"] = json!(true);
        }),
        "does not show them (exemplar: true)",
    );

    let annotation = |d: &mut Value| -> Value {
        d["annotations"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["builtIn"].as_u64().unwrap_or(0) == 0)
            .expect("an annotation of the dashboard's own")
            .clone()
    };
    assert_rejected(
        &problems_after(|d| {
            let mut a = annotation(d);
            a["target"]["expr"] = json!("increase(wolkvox_records_late_total[5m]) > 0");
            d["annotations"]["list"].as_array_mut().unwrap().push(a);
        }),
        "annotation \"Catch-ups (counted late)\": increase() over [300s, hard-coded]",
    );
    assert_rejected(
        &problems_after(|d| {
            let mut a = annotation(d);
            a["datasource"] = json!({"type": "prometheus", "uid": "abc123"});
            d["annotations"]["list"].as_array_mut().unwrap().push(a);
        }),
        "annotation \"Catch-ups (counted late)\": does not use the `$datasource` variable",
    );

    let mut dashboards = grafana::load_dashboards();
    dashboards[0].1["links"] = json!([]);
    assert_rejected(&check_links(&dashboards), "no link to dashboard");
}

#[test]
fn variable_references_are_found_in_every_form() {
    let names = |t: &str| -> Vec<String> { grafana::variable_refs(t).into_iter().map(|r| r.name).collect() };
    assert_eq!(
        names(r#"rate(x{a=~"$job",b=~"${operation:regex}"}[$__rate_interval]) [[agent]] $"#),
        ["job", "operation", "__rate_interval", "agent"]
    );
    assert_eq!(names(r#"x{a=~"foo$"}"#), Vec::<String>::new());
    // label_replace's capture references are PromQL, not Grafana variables (Grafana
    // leaves them alone: no variable is named by digits).
    assert_eq!(names(r#"label_replace(x, "agent_id", "$1", "destination", "(.+)") ${2} $job"#), ["job"]);
    assert_eq!(
        grafana::promql_of_variable_query(r#"label_values(wolkvox_up{job=~"$job", x=","}, operation)"#)
            .as_deref(),
        Some(r#"wolkvox_up{job=~"$job", x=","}"#)
    );
    assert_eq!(grafana::promql_of_variable_query("label_values(job)"), None);
}

/// `node scripts/check-dashboard-types.mjs` with `args`: its exit status and output.
/// Node and the packages of scripts/setup/30-grafana-schema.sh must be there: a missing
/// tool fails the test, it never skips it.
fn check_types(args: &[&Path]) -> (Option<i32>, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = std::process::Command::new("node")
        .arg(root.join("scripts/check-dashboard-types.mjs"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run node (install Node.js): {e}"));
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_ne!(
        output.status.code(),
        Some(2),
        "the type check's tools are missing (run scripts/setup/30-grafana-schema.sh):\n{text}"
    );
    (output.status.code(), text)
}

/// Both dashboards type-check against Grafana 12's published types (@grafana/schema):
/// the dashboard, every variable, annotation and panel, and each panel's options and
/// custom field config against its plugin's types.
#[test]
fn dashboards_match_grafana_12_published_types() {
    let (status, out) = check_types(&[]);
    assert_eq!(status, Some(0), "{out}");
    assert!(out.contains("@grafana/schema 12."), "not Grafana 12's types: {out}");
    assert!(out.contains("2 dashboard(s)"), "{out}");
}

/// The type check fails on what Grafana 12 no longer has: the heatmap's old
/// `tooltip.show`, an unknown panel key, an enum value that does not exist.
#[test]
fn the_type_check_rejects_what_grafana_12_does_not_know() {
    let (file, mut d) = grafana::load_dashboards()
        .into_iter()
        .find(|(f, _)| f == "wolkvox-transfers.json")
        .expect("supervisor dashboard");
    let panels = d["panels"].as_array_mut().unwrap();
    let heatmap = panels.iter_mut().find(|p| p["type"] == "heatmap").expect("a heatmap");
    heatmap["options"]["tooltip"]["show"] = json!(true);
    let timeseries = panels.iter_mut().find(|p| p["type"] == "timeseries").expect("a time series");
    timeseries["options"]["legend"]["displayMode"] = json!("lists");
    timeseries["colour"] = json!("red");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(&file);
    std::fs::write(&path, serde_json::to_string_pretty(&d).unwrap()).unwrap();

    let (status, out) = check_types(&[&path]);
    assert_eq!(status, Some(1), "{out}");
    for needle in [
        "\"Duration distribution\" (heatmap) options: TS2353",
        "'\"show\"' does not exist",
        "'\"lists\"' is not assignable",
        "'\"colour\"' does not exist",
    ] {
        assert!(out.contains(needle), "expected {needle:?} in:\n{out}");
    }
}
