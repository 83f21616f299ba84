//! Reading the shipped Grafana dashboards: their panels, their PromQL, their variables,
//! and the substitution of Grafana variables into PromQL.
//!
//! Used by the dashboards lint and the live Prometheus test.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;

pub fn dashboards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("grafana/dashboards")
}

/// Every `*.json` under `grafana/dashboards`, as (file name, parsed JSON), sorted by name.
pub fn load_dashboards() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dashboards_dir())
        .expect("read grafana/dashboards")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read dashboard");
            let json: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()));
            (path.file_name().unwrap().to_string_lossy().into_owned(), json)
        })
        .collect()
}

/// All panels, rows included, with the panels nested in collapsed rows.
pub fn all_panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in panels.as_array().into_iter().flatten() {
            out.push(panel);
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// One PromQL expression of a dashboard, with where it comes from.
#[derive(Debug, Clone)]
pub struct Query {
    pub dashboard: String,
    /// Panel title, or `variable NAME`.
    pub source: String,
    pub ref_id: String,
    pub expr: String,
    pub instant: bool,
}

impl Query {
    /// `dashboard / panel / refId`: the key of the live test's allow-list.
    pub fn key(&self) -> String {
        format!("{} / {} / {}", self.dashboard, self.source, self.ref_id)
    }
}

/// The `expr` of every target of every panel.
pub fn panel_queries(dashboard: &Value) -> Vec<Query> {
    let uid = dashboard["uid"].as_str().unwrap_or("?").to_string();
    all_panels(dashboard)
        .into_iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap_or("?").to_string();
            let uid = uid.clone();
            panel["targets"].as_array().into_iter().flatten().map(move |target| Query {
                dashboard: uid.clone(),
                source: title.clone(),
                ref_id: target["refId"].as_str().unwrap_or("?").to_string(),
                expr: target["expr"].as_str().unwrap_or_default().to_string(),
                instant: target["instant"].as_bool().unwrap_or(false),
            })
        })
        .collect()
}

/// The queries of the dashboard's own annotations (`annotations.list`; Grafana's built-in
/// "Annotations & Alerts" has none): the PromQL in each one's `target.expr`.
pub fn annotation_queries(dashboard: &Value) -> Vec<Query> {
    let uid = dashboard["uid"].as_str().unwrap_or("?").to_string();
    annotations(dashboard)
        .iter()
        .filter(|a| a["builtIn"].as_u64().unwrap_or(0) == 0)
        .map(|a| Query {
            dashboard: uid.clone(),
            source: format!("annotation {}", a["name"].as_str().unwrap_or("?")),
            ref_id: a["target"]["refId"].as_str().unwrap_or("?").to_string(),
            expr: a["target"]["expr"].as_str().unwrap_or_default().to_string(),
            instant: false,
        })
        .collect()
}

/// The annotation definitions (`annotations.list`), the built-in one included.
pub fn annotations(dashboard: &Value) -> &[Value] {
    dashboard["annotations"]["list"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// The template variables (`templating.list`).
pub fn variables(dashboard: &Value) -> &[Value] {
    dashboard["templating"]["list"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// The text of a query variable's query (a string, or `{"query": ...}` in newer Grafana).
pub fn variable_query_text(variable: &Value) -> Option<&str> {
    variable["query"].as_str().or_else(|| variable["query"]["query"].as_str())
}

/// The PromQL inside the query variables: `label_values(EXPR, label)` and
/// `query_result(EXPR)`. Variables without PromQL (`label_values(label)`,
/// `label_names()`, `metrics(re)`) yield nothing.
pub fn variable_queries(dashboard: &Value) -> Vec<Query> {
    let uid = dashboard["uid"].as_str().unwrap_or("?").to_string();
    variables(dashboard)
        .iter()
        .filter(|v| v["type"] == "query")
        .filter_map(|v| {
            let text = variable_query_text(v)?;
            Some(Query {
                dashboard: uid.clone(),
                source: format!("variable {}", v["name"].as_str().unwrap_or("?")),
                ref_id: "query".to_string(),
                expr: promql_of_variable_query(text)?,
                instant: true,
            })
        })
        .collect()
}

/// The PromQL argument of a Grafana Prometheus variable query, if it has one.
pub fn promql_of_variable_query(text: &str) -> Option<String> {
    let text = text.trim();
    let inner = |prefix: &str| {
        text.strip_prefix(prefix)
            .and_then(|rest| rest.trim_start().strip_prefix('('))
            .and_then(|rest| rest.trim_end().strip_suffix(')'))
    };
    if let Some(args) = inner("label_values") {
        // The label is the last top-level argument; a lone label has no PromQL.
        let mut depth = 0i32;
        let mut in_string = false;
        let mut split = None;
        for (i, c) in args.char_indices() {
            match c {
                '"' => in_string = !in_string,
                '(' | '{' | '[' if !in_string => depth += 1,
                ')' | '}' | ']' if !in_string => depth -= 1,
                ',' if !in_string && depth == 0 => split = Some(i),
                _ => {}
            }
        }
        return split.map(|i| args[..i].trim().to_string());
    }
    if let Some(args) = inner("query_result") {
        return Some(args.trim().to_string());
    }
    None
}

/// A Grafana variable reference found in a text: `$name`, `${name}`, `${name:format}`
/// or `[[name]]`. `$1` and `${1}` are not: in PromQL they are `label_replace` capture
/// references, which Grafana leaves alone since no variable is named by digits.
#[derive(Debug, Clone, PartialEq)]
pub struct VarRef {
    pub name: String,
    pub start: usize,
    pub end: usize,
}

fn all_digits(name: &str) -> bool {
    name.bytes().all(|b| b.is_ascii_digit())
}

pub fn variable_refs(text: &str) -> Vec<VarRef> {
    let bytes = text.as_bytes();
    let is_name = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut refs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && i + 1 < bytes.len() {
            if bytes[i + 1] == b'{' {
                if let Some(close) = text[i..].find('}') {
                    let body = &text[i + 2..i + close];
                    let name = body.split(':').next().unwrap_or_default();
                    let name = name.split('.').next().unwrap_or_default();
                    if !name.is_empty() && name.bytes().all(is_name) && !all_digits(name) {
                        refs.push(VarRef { name: name.to_string(), start: i, end: i + close + 1 });
                        i += close + 1;
                        continue;
                    }
                }
            } else {
                let len = bytes[i + 1..].iter().take_while(|b| is_name(**b)).count();
                if len > 0 && !all_digits(&text[i + 1..i + 1 + len]) {
                    refs.push(VarRef {
                        name: text[i + 1..i + 1 + len].to_string(),
                        start: i,
                        end: i + 1 + len,
                    });
                    i += 1 + len;
                    continue;
                }
            }
        } else if bytes[i..].starts_with(b"[[") {
            if let Some(close) = text[i..].find("]]") {
                let name = text[i + 2..i + close].split(':').next().unwrap_or_default();
                if !name.is_empty() && name.bytes().all(is_name) {
                    refs.push(VarRef { name: name.to_string(), start: i, end: i + close + 2 });
                    i += close + 2;
                    continue;
                }
            }
        }
        i += 1;
    }
    refs
}

/// Replaces every variable reference by `value(name)`; references for which it returns
/// `None` are left as they are and their names returned.
pub fn substitute(text: &str, value: impl Fn(&str) -> Option<String>) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut unknown = Vec::new();
    let mut last = 0;
    for r in variable_refs(text) {
        out.push_str(&text[last..r.start]);
        match value(&r.name) {
            Some(v) => out.push_str(&v),
            None => {
                out.push_str(&text[r.start..r.end]);
                unknown.push(r.name);
            }
        }
        last = r.end;
    }
    out.push_str(&text[last..]);
    (out, unknown)
}

/// Grafana's global variables that may appear in a dashboard without being defined.
pub const BUILTIN_VARIABLES: &[&str] = &[
    "__rate_interval",
    "__interval",
    "__interval_ms",
    "__range",
    "__range_s",
    "__range_ms",
    "__from",
    "__to",
    "__all",
    "__dashboard",
    "__org",
    "__user",
    "__name",
    "__field",
    "__series",
    "__value",
    "__data",
    "timeFilter",
    "__timeFilter",
];
