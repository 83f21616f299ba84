//! The Prometheus rules: `promtool check rules`, the `promtool test rules` unit tests,
//! and the conventions of every alert (severity, summary, description, runbook link).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::prometheus::promtool;
use serde_json::Value;

const RULES: &str = "alerts/wolkvox.rules.yml";
const RUNBOOK: &str = "docs/runbook.md";
const ALERTS_PAGE: &str = "docs/dashboards.md";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn rules() -> Vec<Value> {
    yaml(&root().join(RULES))["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").clone())
        .collect()
}

fn alerts() -> Vec<Value> {
    rules().into_iter().filter(|r| r["alert"].is_string()).collect()
}

fn unit_test_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("alerts/tests"))
        .expect("alerts/tests")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    files
}

fn run(command: &mut Command) -> String {
    let output =
        command.current_dir(root()).output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{command:?} failed ({}):\n{text}", output.status);
    text
}

#[test]
fn promtool_check_rules_passes() {
    let out = run(Command::new(promtool()).args(["check", "rules", RULES]));
    let expected = format!("SUCCESS: {} rules found", rules().len());
    assert!(out.contains(&expected), "expected {expected:?} in:\n{out}");
}

#[test]
fn promtool_unit_tests_pass() {
    let files = unit_test_files();
    assert!(files.len() >= 3, "unit test files: {files:?}");
    // One promtool a file, side by side: the two-week histories take most of a minute
    // of one core each, and the files are independent.
    let outs: Vec<String> = std::thread::scope(|s| {
        let runs: Vec<_> = files
            .iter()
            .map(|file| s.spawn(move || run(Command::new(promtool()).args(["test", "rules"]).arg(file))))
            .collect();
        runs.into_iter().map(|r| r.join().expect("promtool thread")).collect()
    });
    for (file, out) in files.iter().zip(&outs) {
        assert!(!out.contains("FAILED"), "{}:\n{out}", file.display());
        assert_eq!(out.matches("SUCCESS").count(), 1, "{}:\n{out}", file.display());
    }
}

/// The two-week histories of the spike alert's tests are what their script writes, so a
/// change to the script cannot leave a stale test behind.
#[test]
fn generated_spike_histories_are_current() {
    run(Command::new("python3").args(["alerts/tests/spike_histories.py", "--check"]));
}

/// Every alert is tested both firing and silent by `alert_rule_test` cases.
#[test]
fn unit_tests_cover_every_alert_firing_and_silent() {
    let mut firing: BTreeMap<String, usize> = BTreeMap::new();
    let mut silent: BTreeMap<String, usize> = BTreeMap::new();
    for file in unit_test_files() {
        let doc = yaml(&file);
        assert!(
            doc["rule_files"].as_array().is_some_and(|f| f
                .iter()
                .any(|f| f.as_str().is_some_and(|f| f.ends_with("wolkvox.rules.yml")))),
            "{} does not load wolkvox.rules.yml",
            file.display()
        );
        for test in doc["tests"].as_array().expect("tests") {
            for case in test["alert_rule_test"].as_array().into_iter().flatten() {
                let name = case["alertname"].as_str().expect("alertname").to_string();
                let fires = case["exp_alerts"].as_array().is_some_and(|a| !a.is_empty());
                *(if fires { &mut firing } else { &mut silent }).entry(name).or_default() += 1;
            }
        }
    }
    let names: BTreeSet<String> = alerts().iter().map(|a| a["alert"].as_str().unwrap().to_string()).collect();
    assert!(names.len() >= 8, "alerts: {names:?}");
    let missing: Vec<String> = names
        .iter()
        .flat_map(|n| {
            let mut m = Vec::new();
            if !firing.contains_key(n) {
                m.push(format!("{n} is never tested firing"));
            }
            if !silent.contains_key(n) {
                m.push(format!("{n} is never tested silent"));
            }
            m
        })
        .collect();
    assert!(missing.is_empty(), "{missing:#?}");
    let unknown: Vec<&String> = firing.keys().chain(silent.keys()).filter(|n| !names.contains(*n)).collect();
    assert!(unknown.is_empty(), "tests for alerts that do not exist: {unknown:?}");
}

/// GitHub's anchor for a Markdown heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn runbook_sections() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(root().join(RUNBOOK)).expect("docs/runbook.md");
    let mut sections = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            if let Some((a, body)) = current.take() {
                sections.insert(a, body);
            }
            current = Some((anchor(heading), String::new()));
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some((a, body)) = current {
        sections.insert(a, body);
    }
    sections
}

#[test]
fn every_alert_has_severity_summary_description_and_runbook() {
    let sections = runbook_sections();
    let mut problems = Vec::new();
    for alert in alerts() {
        let name = alert["alert"].as_str().unwrap();
        let severity = alert["labels"]["severity"].as_str().unwrap_or_default();
        if !["critical", "warning", "info"].contains(&severity) {
            problems.push(format!("{name}: severity {severity:?} is not critical, warning or info"));
        }
        let annotations = &alert["annotations"];
        let summary = annotations["summary"].as_str().unwrap_or_default();
        if summary.trim().is_empty() || summary.contains("{{") || summary.contains('$') {
            problems.push(format!("{name}: the summary must be set and must not be templated: {summary:?}"));
        }
        let description = annotations["description"].as_str().unwrap_or_default();
        if !description.contains("{{") || !description.contains("$labels") {
            problems.push(format!("{name}: the description must be templated with $labels: {description:?}"));
        }
        let url = annotations["runbook_url"].as_str().unwrap_or_default();
        match url.split_once("docs/runbook.md#") {
            Some((_, a)) => match sections.get(a) {
                Some(body) if body.trim().len() > 200 => {}
                Some(_) => problems.push(format!("{name}: runbook section #{a} is nearly empty")),
                None => {
                    problems.push(format!("{name}: runbook_url anchor #{a} is not a section of {RUNBOOK}"))
                }
            },
            None => problems.push(format!("{name}: runbook_url {url:?} does not point at {RUNBOOK}#section")),
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn every_runbook_section_belongs_to_an_alert() {
    let alerts: BTreeSet<String> = alerts().iter().map(|a| anchor(a["alert"].as_str().unwrap())).collect();
    let sections: BTreeSet<String> = runbook_sections().into_keys().collect();
    assert_eq!(sections, alerts, "runbook sections against alerts");
}

/// `level:metric:operations`, the metric part taken from the expression. A ratio follows
/// Prometheus' `a_per_b:ratio...` form (`request_failures_per_requests:ratio_rate5m`):
/// both `a` and `b` appear in the expression, which divides.
#[test]
fn recording_rules_follow_the_naming_convention() {
    let mut ratios = 0;
    for rule in rules().iter().filter(|r| r["record"].is_string()) {
        let name = rule["record"].as_str().unwrap();
        let parts: Vec<&str> = name.split(':').collect();
        assert!(
            parts.len() == 3 && parts.iter().all(|p| !p.is_empty()) && parts[1].starts_with("wolkvox_"),
            "{name} is not level:metric:operations"
        );
        let expr = rule["expr"].as_str().unwrap();
        if let Some((numerator, denominator)) = parts[1].split_once("_per_") {
            ratios += 1;
            assert!(
                parts[2].starts_with("ratio") && expr.contains('/'),
                "{name}: a `_per_` metric is a ratio: operations `ratio...` and a division"
            );
            for side in [numerator, denominator] {
                assert!(
                    expr.contains(side),
                    "{name}: {side} (of the ratio {}) does not appear in its expression",
                    parts[1]
                );
            }
        } else {
            assert!(
                expr.contains(parts[1]),
                "{name}: the metric part {} does not appear in its expression",
                parts[1]
            );
        }
    }
    assert!(ratios > 0, "the ratio branch checked nothing");
}

#[test]
fn the_alerts_page_lists_every_alert() {
    let text = std::fs::read_to_string(root().join(ALERTS_PAGE)).expect(ALERTS_PAGE);
    let alerts = alerts();
    assert!(!alerts.is_empty(), "no alert read from the rules");
    for alert in alerts {
        let name = alert["alert"].as_str().unwrap();
        assert!(
            text.contains(&format!("| `{name}` |")),
            "{name} is not listed in the table of {ALERTS_PAGE}"
        );
    }
}
