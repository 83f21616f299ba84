//! The API cost plan: how many requests a day an operation's reports spend at steady
//! state, and how the day's allowance is shared when it runs short (earlier reports in
//! priority order keep what they need for the rest of the day).

use std::time::Duration;

use crate::config::ReportConfig;
use crate::reports::ReportName;

const DAY_SECS: u64 = 86_400;

/// Requests a report reading once per cycle spends in `secs` seconds.
fn cycles(interval: Duration, secs: u64) -> u64 {
    let interval = interval.as_secs_f64().max(0.001);
    (secs as f64 / interval).ceil() as u64
}

/// Requests a local day the reports spend at steady state: one a cycle each (a cycle
/// reads the interval since the last one, plus the overlap, in one window), and one for
/// the day agent_12 reconciles.
pub fn daily_requests(reports: &[ReportConfig]) -> u64 {
    reports.iter().map(report_daily_requests).sum()
}

fn report_daily_requests(r: &ReportConfig) -> u64 {
    match r.name {
        ReportName::agent_12 => 1,
        _ => cycles(r.interval, DAY_SECS),
    }
}

/// The shortest interval that, given to every report, keeps the plan within
/// `allowance`; `None` when not even a day per report fits.
pub fn fitting_interval(reports: &[ReportConfig], allowance: u64) -> Option<Duration> {
    let daily = reports
        .iter()
        .filter(|r| r.name == ReportName::agent_12)
        .count() as u64;
    let polled = reports.len() as u64 - daily;
    let allowance = allowance.checked_sub(daily)?;
    let per_report = allowance / polled.max(1);
    (per_report > 0).then(|| Duration::from_secs(DAY_SECS.div_ceil(per_report)))
}

/// Each report's share of the plan, as people read it: `agent_13 every 5m: 288, ...`.
pub fn describe(reports: &[ReportConfig]) -> String {
    let each: Vec<String> = reports
        .iter()
        .map(|r| {
            let daily = report_daily_requests(r);
            match r.name {
                ReportName::agent_12 => format!("{} once a day: {daily}", r.name),
                _ => format!(
                    "{} every {}: {daily}",
                    r.name,
                    humantime::format_duration(r.interval)
                ),
            }
        })
        .collect();
    each.join(", ")
}

/// What would fit `allowance`, as people read it.
pub fn fitting_hint(reports: &[ReportConfig], allowance: u64) -> String {
    match fitting_interval(reports, allowance) {
        Some(i) => format!(
            "every report at an interval of {} or longer fits",
            humantime::format_duration(i)
        ),
        None => "no interval fits".to_owned(),
    }
}

/// What the reports before report `index` (in priority order) need for the `secs`
/// seconds left of the local day: a report may spend only what leaves them that.
pub fn reserved_for_earlier(reports: &[ReportConfig], index: usize, secs: u64) -> u64 {
    reports[..index.min(reports.len())]
        .iter()
        .map(|r| match r.name {
            ReportName::agent_12 => u64::from(secs > 0),
            _ => cycles(r.interval, secs),
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(name: ReportName, minutes: u64) -> ReportConfig {
        ReportConfig {
            name,
            interval: Duration::from_secs(minutes * 60),
        }
    }

    #[test]
    fn the_plan_counts_one_request_a_cycle() {
        let five = [
            report(ReportName::agent_13, 5),
            report(ReportName::cdr_1, 5),
        ];
        assert_eq!(daily_requests(&five), 576);
        let mixed = [
            report(ReportName::agent_13, 5),
            report(ReportName::cdr_1, 15),
            report(ReportName::agent_13_1, 60),
        ];
        assert_eq!(daily_requests(&mixed), 288 + 96 + 24);
        // 7 minutes do not divide a day: the last cycle still costs a request.
        assert_eq!(daily_requests(&[report(ReportName::agent_13, 7)]), 206);
    }

    #[test]
    fn the_fitting_interval_keeps_every_report_within_the_allowance() {
        let mut reports: Vec<_> = [
            ReportName::agent_13,
            ReportName::cdr_1,
            ReportName::agent_13_1,
            ReportName::agent_12,
        ]
        .into_iter()
        .map(|name| report(name, 5))
        .collect();
        // One licence, 10% kept for others: 900 a day; 1 for agent_12's day, and 899
        // for three polled reports, 299 each.
        let i = fitting_interval(&reports, 900).unwrap();
        assert_eq!(i, Duration::from_secs(289));
        for r in &mut reports {
            r.interval = i;
        }
        assert!(daily_requests(&reports) <= 900);
        assert_eq!(fitting_interval(&reports, 3), None);
    }

    #[test]
    fn earlier_reports_keep_what_they_need_for_the_rest_of_the_day() {
        let reports = [
            report(ReportName::agent_13, 5),
            report(ReportName::cdr_1, 15),
            report(ReportName::agent_13_1, 60),
        ];
        assert_eq!(reserved_for_earlier(&reports, 0, 3600), 0);
        assert_eq!(reserved_for_earlier(&reports, 1, 3600), 12);
        assert_eq!(reserved_for_earlier(&reports, 2, 3600), 12 + 4);
        assert_eq!(reserved_for_earlier(&reports, 2, 0), 0);
    }
}
