//! What `check` found for one operation, the verdicts drawn from it and the lines it
//! prints. Pure: the requests are made in the parent module.

use std::fmt::Write as _;

use chrono::NaiveDateTime;

use super::info::TokenInfo;
use crate::client::{ApiError, ErrorReason};
use crate::config::{plan, OperationConfig};
use crate::reports::kind;

/// How a report answered a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    /// 200, with this many rows.
    Records(usize),
    /// 404 "no records".
    NoRecords,
}

/// One operation's answers; error texts are already cut of the token.
#[derive(Debug, Clone)]
pub struct OperationCheck {
    pub config: OperationConfig,
    /// The operation-local window asked of every report, both ends inclusive.
    pub window: (NaiveDateTime, NaiveDateTime),
    /// `api.daily_reserve`.
    pub reserve: f64,
    /// Each configured report's answer; `None`: not asked, the command's time ran out first.
    pub answers: Vec<Option<Result<Answered, ApiError>>>,
    /// `token_info`'s answer, `Ok(None)` for a 404 (not available there); `None`: not
    /// asked.
    pub info: Option<Result<Option<TokenInfo>, ApiError>>,
    /// Seconds from the check to the operation's next midnight.
    pub rest_of_day: u64,
}

/// The plan against the allowance that binds: the smaller of the configured limit and
/// the API's, less the reserve; and, when token_info told, against what is left today.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanVerdict {
    pub planned: u64,
    pub allowance: u64,
    /// What the exporter may still spend today (token_info), and what the plan needs
    /// until the operation's midnight.
    pub today: Option<(u64, u64)>,
    pub fits: bool,
}

/// A verdict's line and, when it is a failure, the problem as the result names it.
pub type Verdict = (String, Option<&'static str>);

const NOT_ASKED: &str = "not asked (check's time limit ran out)";

impl OperationCheck {
    /// Every asked request's outcome: the reports', then token_info's.
    fn outcomes(&self) -> impl Iterator<Item = Result<(), &ApiError>> {
        let reports = self.answers.iter().filter_map(|a| a.as_ref().map(|a| a.as_ref().map(drop)));
        reports.chain(self.info.as_ref().map(|i| i.as_ref().map(drop)))
    }

    /// What token_info told, if it answered with figures.
    pub fn info(&self) -> Option<&TokenInfo> {
        self.info.as_ref()?.as_ref().ok()?.as_ref()
    }

    /// Requests that went out, each one unit of the operation's daily quota.
    pub fn spent(&self) -> u64 {
        self.outcomes().filter(|o| o.map_or_else(ApiError::was_sent, |()| true)).count() as u64
    }

    /// Invalid when an answer refused the token; valid when one showed the API knows it
    /// (a spent quota or a request in flight on it say so too); unknown otherwise.
    pub fn token(&self) -> Verdict {
        let refused =
            |e: &&ApiError| matches!(e.reason(), ErrorReason::invalid_token | ErrorReason::unauthorized);
        if let Some(e) = self.outcomes().find_map(|o| o.err().filter(refused)) {
            let text = format!(
                "token: INVALID: the API answered {}; replace the token (see Troubleshooting in the README)",
                described(e)
            );
            return (text, Some("token invalid"));
        }
        let recognised =
            |e: &ApiError| matches!(e.reason(), ErrorReason::quota_exceeded | ErrorReason::concurrency_limit);
        match self.outcomes().any(|o| o.map_or_else(recognised, |()| true)) {
            true => ("token: valid".to_owned(), None),
            false => (
                "token: unknown (no answer said whether the API accepts it)".to_owned(),
                Some("token not confirmed"),
            ),
        }
    }

    /// Refused when any request was refused as forbidden; unknown when the API itself
    /// (not the way to it) answered none.
    pub fn caller(&self) -> Verdict {
        let from_the_api = |e: &ApiError| {
            !matches!(e.reason(), ErrorReason::timeout | ErrorReason::connect | ErrorReason::http_5xx)
        };
        let answered = self.outcomes().filter(|o| o.map_or_else(from_the_api, |()| true)).count();
        let forbidden =
            self.outcomes().filter(|o| o.is_err_and(|e| e.reason() == ErrorReason::forbidden)).count();
        if forbidden > 0 {
            let how = match forbidden == answered {
                true => "every request was refused with 403 forbidden".to_owned(),
                false => format!("{forbidden} of {answered} requests were refused with 403 forbidden"),
            };
            let text = format!(
                "caller: NOT allowed: {how}; this usually means the caller's public IP address is not \
                 registered in the operation (up to 5 addresses): register the address this host's \
                 traffic leaves from (see Troubleshooting in the README)"
            );
            return (text, Some("caller refused"));
        }
        match self.outcomes().find_map(Result::err) {
            Some(e) if answered == 0 => (
                format!("caller: unknown: the API answered no request: {}", described(e)),
                Some("API unreachable"),
            ),
            _ => ("caller: allowed (no request was refused as forbidden)".to_owned(), None),
        }
    }

    /// The configured limit (licenses x 1000) and, when token_info told, the API's.
    fn limits(&self) -> (u64, Option<u64>) {
        (self.config.daily_limit(), self.info().and_then(|i| i.limit))
    }

    pub fn plan(&self) -> PlanVerdict {
        let reports = &self.config.reports;
        let planned = plan::daily_requests(reports);
        let (configured, api) = self.limits();
        let limit = api.map_or(configured, |api| api.min(configured));
        let allowance = plan::daily_allowance(limit, self.reserve);
        let used =
            self.info().and_then(|i| i.all_today.or_else(|| Some(i.limit?.saturating_sub(i.available?))));
        let today = used.map(|used| {
            let polled: Vec<_> = reports.iter().map(|r| (kind(r.name).schedule, r.interval)).collect();
            let needed = plan::reserved(&polled, self.rest_of_day);
            (allowance.saturating_sub(used), needed)
        });
        PlanVerdict {
            planned,
            allowance,
            today,
            fits: planned <= allowance && today.is_none_or(|(left, needed)| needed <= left),
        }
    }

    /// What does not work; empty when everything the exporter needs does.
    pub fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> =
            [self.token().1, self.caller().1].into_iter().flatten().map(str::to_owned).collect();
        let answers = (self.config.reports.iter().zip(&self.answers))
            .map(|(r, a)| (r.name.as_str(), a.as_ref().map(|a| a.as_ref().map(drop))));
        let info = self.info.as_ref().map(|i| i.as_ref().map(drop));
        for (name, answer) in answers.chain([("token_info", info)]) {
            match answer {
                None => problems.push(format!("{name} not asked")),
                Some(Err(e)) => problems.push(format!("{name} failed ({})", e.reason().as_str())),
                Some(Ok(())) => {}
            }
        }
        if !self.plan().fits {
            problems.push("plan does not fit".to_owned());
        }
        problems
    }

    /// The operation's lines, indented under its name.
    pub fn render(&self) -> String {
        let (ini, end) = self.window;
        let mut out = format!(
            "operation {} ({}), window {} to {} local time\n",
            self.config.name,
            self.config.timezone,
            ini.format(wolkvox_api::DATE_FORMAT),
            end.format(wolkvox_api::DATE_FORMAT)
        );
        let mut line = |text: String| {
            let _ = writeln!(out, "  {text}");
        };
        line(self.token().0);
        line(self.caller().0);
        for (report, answer) in self.config.reports.iter().zip(&self.answers) {
            let answer = match answer {
                None => NOT_ASKED.to_owned(),
                Some(Ok(Answered::Records(n))) => format!("answered 200 ({n} record{})", super::plural(*n)),
                Some(Ok(Answered::NoRecords)) => {
                    "answered 404 (no records, or not enabled on this server)".to_owned()
                }
                Some(Err(e)) => failed(e),
            };
            line(format!("report {}: {answer}", report.name));
        }
        line(match &self.info {
            None => format!("token_info: {NOT_ASKED}"),
            Some(Ok(Some(_))) => "token_info: answered 200".to_owned(),
            Some(Ok(None)) => "token_info: not available (answered 404); warning: the allowance and today's \
                               use below come from the configuration"
                .to_owned(),
            Some(Err(e)) => format!("token_info: {}", failed(e)),
        });
        self.render_allowance(&mut line);
        line(self.plan_line());
        line(format!(
            "requests spent: {} (each costs one unit of the operation's daily quota)",
            self.spent()
        ));
        for advice in self.advice() {
            line(format!("advice: {advice}"));
        }
        let problems = self.problems();
        line(match problems.is_empty() {
            true => "result: OK".to_owned(),
            false => format!("result: FAILED: {}", problems.join("; ")),
        });
        out
    }

    fn plan_line(&self) -> String {
        let plan = self.plan();
        let reports = &self.config.reports;
        let mut text = format!("plan: {} requests a day ({}), ", plan.planned, plan::describe(reports));
        let _ = match plan.planned <= plan.allowance {
            true => write!(text, "within the allowance of {}: fits", plan.allowance),
            false => {
                let hint = plan::fitting_hint(reports, plan.allowance);
                write!(text, "over the allowance of {}: does NOT fit; {hint}", plan.allowance)
            }
        };
        if let Some((left, needed)) = plan.today {
            let verdict = match needed <= left {
                true => "fits",
                false => "does NOT fit today: the later reports pause until midnight",
            };
            let _ = write!(
                text,
                "; today {left} are left to it (token_info) and polling until the operation's midnight \
                 needs {needed}: {verdict}"
            );
        }
        text
    }

    fn render_allowance(&self, line: &mut impl FnMut(String)) {
        let (configured, api) = self.limits();
        let (reserve, allowance) = (self.reserve * 100.0, self.plan().allowance);
        match api {
            Some(limit) => {
                line(format!(
                    "allowance: {limit} requests a day (token_info); the exporter may use {allowance} \
                     ({reserve}% kept in reserve)"
                ));
                if limit != configured {
                    let fix = match limit % 1000 == 0 && limit > 0 {
                        true => format!("set licenses: {}", limit / 1000),
                        false => "set licenses to match".to_owned(),
                    };
                    line(format!(
                        "note: licenses: {} in the configuration means {configured} a day, but the API \
                         says {limit}: {fix}",
                        self.config.licenses
                    ));
                }
            }
            None => line(format!(
                "allowance: {configured} requests a day (licenses: {} x 1000; token_info did not answer); \
                 the exporter may use {allowance} ({reserve}% kept in reserve)",
                self.config.licenses
            )),
        }
        let count = |n: Option<u64>| n.map_or_else(|| "unknown".to_owned(), |n| n.to_string());
        line(match self.info() {
            Some(info) => format!(
                "use today: {} requests by all the operation's tokens, {} by this token, {} available \
                 (token_info)",
                count(info.all_today),
                count(info.token_today),
                count(info.available)
            ),
            None => "use today: unknown (token_info did not answer)".to_owned(),
        });
    }

    /// What to do about the failures that have a remedy, each said once.
    fn advice(&self) -> Vec<String> {
        let (hours, minutes) = (self.rest_of_day / 3600, self.rest_of_day / 60 % 60);
        let mut advice: Vec<String> = Vec::new();
        for e in self.outcomes().filter_map(Result::err) {
            let text = match e.reason() {
                ErrorReason::quota_exceeded => format!(
                    "the operation's daily request quota is spent (403 token limit exceeded): the API \
                     refuses every request until the operation's midnight, in {hours}h {minutes}m; the \
                     exporter pauses and resumes by itself. If it happens often, lengthen the reports' \
                     intervals or raise licenses if the operation has more, and look for other clients \
                     of the same operation"
                ),
                ErrorReason::invalid_token | ErrorReason::unauthorized => {
                    "put the operation's current token where the configuration reads it (token_file, \
                     token_env or token; WOLKVOX_TOKEN_FILE or WOLKVOX_TOKEN), then run check again"
                        .to_owned()
                }
                ErrorReason::concurrency_limit => "another client had a request in flight on this token \
                                                   (a running exporter?): run check again"
                    .to_owned(),
                _ => continue,
            };
            if !advice.contains(&text) {
                advice.push(text);
            }
        }
        advice
    }
}

fn failed(e: &ApiError) -> String {
    format!("failed: {}", described(e))
}

/// An error as printed, with its `reason` label: control characters (a terminal's
/// escapes) become spaces, an answer's `error / msg` pair of equal texts shows once, and
/// a long server text is cut.
fn described(e: &ApiError) -> String {
    const MAX: usize = 200;
    let mut text: String = e.to_string().chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if let Some((head, tail)) = text.rsplit_once(" / ") {
        if !tail.is_empty() && head.ends_with(tail) {
            text.truncate(head.len());
        }
    }
    if let Some((at, _)) = text.char_indices().nth(MAX) {
        text.truncate(at);
        text.push_str("...");
    }
    format!("{text} (reason={})", e.reason().as_str())
}

#[cfg(test)]
mod tests;
