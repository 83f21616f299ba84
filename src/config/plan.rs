//! The API cost plan: how many requests a day an operation's reports spend at steady
//! state, what the exporter may spend of the limit, and how the day's allowance is shared
//! when it runs short (earlier reports in priority order keep what they need).

use std::time::Duration;

use super::ReportConfig;
use crate::reports::{kind, Schedule};

const DAY_SECS: u64 = 86_400;

/// Requests this exporter may spend in a day: the limit less the reserve.
pub fn daily_allowance(limit: u64, reserve: f64) -> u64 {
    ((limit as f64) * (1.0 - reserve)).floor() as u64
}

/// Requests a report spends in `secs` seconds: one a cycle for a windowed report (a
/// cycle reads the interval since the last one, plus the overlap, in one window), one a
/// day for a daily one.
fn spent(schedule: Schedule, interval: Duration, secs: u64) -> u64 {
    match schedule {
        Schedule::DailyAfter { .. } => u64::from(secs > 0),
        Schedule::Windowed => {
            let interval = interval.as_secs_f64().max(0.001);
            (secs as f64 / interval).ceil() as u64
        }
    }
}

fn schedule(r: &ReportConfig) -> Schedule {
    kind(r.name).schedule
}

/// Requests a local day the reports spend at steady state.
pub fn daily_requests(reports: &[ReportConfig]) -> u64 {
    reports.iter().map(|r| spent(schedule(r), r.interval, DAY_SECS)).sum()
}

/// The shortest interval that, given to every windowed report, keeps the plan within
/// `allowance`; `None` when not even a day per report fits.
pub fn fitting_interval(reports: &[ReportConfig], allowance: u64) -> Option<Duration> {
    let windowed = reports.iter().filter(|r| schedule(r) == Schedule::Windowed).count() as u64;
    let allowance = allowance.checked_sub(reports.len() as u64 - windowed)?;
    let per_report = allowance / windowed.max(1);
    (per_report > 0).then(|| Duration::from_secs(DAY_SECS.div_ceil(per_report)))
}

/// Each report's share of the plan, as people read it: `agent_13 every 5m: 288, ...`.
pub fn describe(reports: &[ReportConfig]) -> String {
    let each: Vec<String> = reports
        .iter()
        .map(|r| {
            let daily = spent(schedule(r), r.interval, DAY_SECS);
            match schedule(r) {
                Schedule::DailyAfter { .. } => format!("{} once a day: {daily}", r.name),
                Schedule::Windowed => {
                    format!("{} every {}: {daily}", r.name, humantime::format_duration(r.interval))
                }
            }
        })
        .collect();
    each.join(", ")
}

/// What would fit `allowance`, as people read it.
pub fn fitting_hint(reports: &[ReportConfig], allowance: u64) -> String {
    match fitting_interval(reports, allowance) {
        Some(i) => format!("every report at an interval of {} or longer fits", humantime::format_duration(i)),
        None => "no interval fits".to_owned(),
    }
}

/// What `reports` (those before the one asking, in priority order) need for the `secs`
/// seconds left of the local day: a report may spend only what leaves them that.
pub fn reserved(reports: &[(Schedule, Duration)], secs: u64) -> u64 {
    reports.iter().map(|&(s, i)| spent(s, i, secs)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::{agent_13, agent_13_1, cdr_1, ReportName, KINDS};

    /// The report read once a day.
    fn daily() -> ReportName {
        let daily = KINDS.iter().find(|k| k.schedule != Schedule::Windowed);
        daily.expect("a daily report is registered").name
    }

    fn report(name: crate::reports::ReportName, minutes: u64) -> ReportConfig {
        ReportConfig { name, interval: Duration::from_secs(minutes * 60) }
    }

    #[test]
    fn the_plan_counts_one_request_a_cycle() {
        let five = [report(agent_13::NAME, 5), report(cdr_1::NAME, 5)];
        assert_eq!(daily_requests(&five), 576);
        let mixed = [
            report(agent_13::NAME, 5),
            report(cdr_1::NAME, 15),
            report(agent_13_1::NAME, 60),
            report(daily(), 5),
        ];
        assert_eq!(daily_requests(&mixed), 288 + 96 + 24 + 1);
        // 7 minutes do not divide a day: the last cycle still costs a request.
        assert_eq!(daily_requests(&[report(agent_13::NAME, 7)]), 206);
        assert_eq!(daily_allowance(1000, 0.1), 900);
        assert_eq!(daily_allowance(3000, 0.25), 2250);
    }

    #[test]
    fn the_fitting_interval_keeps_every_report_within_the_allowance() {
        let mut reports: Vec<_> = [agent_13::NAME, cdr_1::NAME, agent_13_1::NAME, daily()]
            .into_iter()
            .map(|name| report(name, 5))
            .collect();
        // One licence, 10% kept for others: 900 a day; 1 for the daily report's day,
        // and 899 for three windowed reports, 299 each.
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
        let w = Schedule::Windowed;
        let min = |m: u64| Duration::from_secs(m * 60);
        assert_eq!(reserved(&[], 3600), 0);
        assert_eq!(reserved(&[(w, min(5))], 3600), 12);
        assert_eq!(reserved(&[(w, min(5)), (w, min(15))], 3600), 12 + 4);
        assert_eq!(reserved(&[(w, min(5)), (w, min(15))], 0), 0);
    }
}
