//! Which reports an operation follows, and how often: `operations[].reports` in the
//! file, `WOLKVOX_REPORTS` in the environment. Names are checked against the registry.

use std::time::Duration;

use super::operation::Given;
use super::{check_interval, invalid, ConfigError, PollConfig};
use crate::reports::{self, ReportName, Schedule, KINDS};

/// A report as a source named it; the interval defaults to the poll interval.
#[derive(Debug)]
pub(super) struct RawReport {
    pub name: String,
    pub interval: Option<Duration>,
}

/// One report an operation follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportConfig {
    pub name: ReportName,
    /// How often its cycle starts.
    pub interval: Duration,
}

/// The reports of an operation, in priority order; the defaults when none are named.
pub(super) fn validate(
    given: Option<Given<Vec<Given<RawReport>>>>,
    poll: &PollConfig,
) -> Result<Vec<ReportConfig>, ConfigError> {
    let Some(Given { key, value }) = given else {
        let defaults =
            reports::defaults().into_iter().map(|name| ReportConfig { name, interval: poll.interval });
        return Ok(defaults.collect());
    };
    if value.is_empty() {
        return Err(invalid(key, format!("names no report; known reports: {}", known())));
    }
    let mut out: Vec<ReportConfig> = Vec::with_capacity(value.len());
    for Given { key, value } in value {
        let name = reports::find(&value.name).map(|k| k.name).ok_or_else(|| {
            invalid(&key, format!("unknown report {:?}; known reports: {}", value.name, known()))
        })?;
        if out.iter().any(|r| r.name == name) {
            return Err(invalid(key, format!("report {name} is named twice")));
        }
        if let Some(interval) = value.interval {
            check_interval(&format!("{key}.interval"), interval, poll.allow_fast)?;
        }
        out.push(ReportConfig { name, interval: value.interval.unwrap_or(poll.interval) });
    }
    out.sort_by_key(|r| reports::priority(r.name));
    for r in &out {
        if let Schedule::DailyAfter { source } = reports::kind(r.name).schedule {
            if !out.iter().any(|o| o.name == source) {
                return Err(invalid(
                    key,
                    format!("{} is compared with the {source} records counted: follow {source} too", r.name),
                ));
            }
        }
    }
    Ok(out)
}

fn known() -> String {
    KINDS.iter().map(|k| k.name.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::super::{Config, FileConfig, Overrides};
    use super::*;

    fn build(yaml: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let env = move |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        Config::build(FileConfig::parse(yaml).unwrap(), &Overrides::default(), env)
    }

    const OP: &str = "operations:\n  - name: bog\n    server: \"0042\"\n    token: abc\n";

    #[test]
    fn the_defaults_follow_the_registry_at_the_poll_interval() {
        let c = build(OP, &[]).unwrap();
        let names = c.operations[0].report_names();
        assert_eq!(names, crate::reports::defaults());
        assert!(c.operations[0].reports.iter().all(|r| r.interval == PollConfig::default().interval));
    }

    #[test]
    fn the_file_names_reports_and_their_intervals() {
        let yaml = format!("{OP}    reports:\n      agent_13_1:\n        interval: 1h\n      agent_13:\n");
        let c = build(&yaml, &[]).unwrap();
        assert_eq!(
            c.operations[0].reports,
            vec![
                ReportConfig {
                    name: crate::reports::agent_13::NAME,
                    interval: PollConfig::default().interval
                },
                ReportConfig { name: crate::reports::agent_13_1::NAME, interval: Duration::from_secs(3600) },
            ]
        );
    }

    #[test]
    fn mistakes_are_refused_by_name() {
        let cases = [
            (
                format!("{OP}    reports:\n      agent_99:\n"),
                "operations[0].reports.agent_99: unknown report \"agent_99\"; known reports: agent_13",
            ),
            (format!("{OP}    reports: {{}}\n"), "operations[0].reports: names no report"),
            (
                format!("{OP}    reports:\n      cdr_1:\n        interval: 1m\n"),
                "operations[0].reports.cdr_1.interval: 1m is shorter than the API's 5m cadence",
            ),
        ];
        for (yaml, expected) in cases {
            let err = build(&yaml, &[]).unwrap_err().to_string();
            assert!(err.starts_with(expected), "{err}");
        }
        let err = FileConfig::parse(&format!("{OP}    reports:\n      cdr_1:\n        intervall: 1h\n"))
            .unwrap_err();
        assert!(err.to_string().contains("intervall"), "{err}");
    }

    #[test]
    fn the_environment_names_reports_in_one_variable() {
        let base = [("WOLKVOX_SERVER", "0042"), ("WOLKVOX_TOKEN", "t")];
        let c = build("", &[base[0], base[1], ("WOLKVOX_REPORTS", " agent_13_1 , agent_13 ")]).unwrap();
        assert_eq!(
            c.operations[0].report_names(),
            vec![crate::reports::agent_13::NAME, crate::reports::agent_13_1::NAME]
        );
        for (value, expected) in [
            ("agent_13,cdr1", "WOLKVOX_REPORTS: unknown report \"cdr1\""),
            ("agent_13,agent_13", "WOLKVOX_REPORTS: report agent_13 is named twice"),
            (" , ", "WOLKVOX_REPORTS: names no report"),
        ] {
            let err = build("", &[base[0], base[1], ("WOLKVOX_REPORTS", value)]).unwrap_err().to_string();
            assert!(err.starts_with(expected), "{value:?}: {err}");
        }
    }
}
