//! The lines `check` prints for one operation: each answer, the allowance, the plan, the
//! requests spent, the verdict and advice for what failed.

use std::fmt::Write as _;

use super::outcome::{Answered, CallerVerdict, OperationCheck, TokenVerdict};
use crate::client::{ApiError, ErrorReason};
use crate::config::plan;

impl OperationCheck {
    /// The operation's lines, indented under its name.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let (ini, end) = self.window;
        let _ = writeln!(
            out,
            "operation {} ({}), window {} to {} local time",
            self.name,
            self.timezone,
            ini.format(wolkvox_api::DATE_FORMAT),
            end.format(wolkvox_api::DATE_FORMAT)
        );
        let mut line = |text: String| {
            out.push_str("  ");
            out.push_str(&text);
            out.push('\n');
        };
        line(match self.token() {
            TokenVerdict::Valid => "token: valid".to_owned(),
            TokenVerdict::Invalid(e) => format!(
                "token: INVALID: the API answered {}; replace the token (see Troubleshooting \
                 in the README)",
                described(&e)
            ),
            TokenVerdict::Unknown => "token: unknown (no answer said whether the API accepts it)".to_owned(),
        });
        line(match self.caller() {
            CallerVerdict::Allowed => "caller: allowed (no request was refused as forbidden)".to_owned(),
            CallerVerdict::Refused { forbidden, answered } => {
                let how = if forbidden == answered {
                    "every request was refused with 403 forbidden".to_owned()
                } else {
                    format!("{forbidden} of {answered} requests were refused with 403 forbidden")
                };
                format!(
                    "caller: NOT allowed: {how}; this usually means the caller's public IP \
                     address is not registered in the operation (up to 5 addresses): register \
                     the address this host's traffic leaves from (see Troubleshooting in the \
                     README)"
                )
            }
            CallerVerdict::Unreachable(e) => {
                format!("caller: unknown: the API answered no request: {}", described(&e))
            }
        });
        for r in &self.reports {
            let answer = match &r.answer {
                None => NOT_ASKED.to_owned(),
                Some(Ok(Answered::Records(n))) => {
                    format!("answered 200 ({n} record{})", if *n == 1 { "" } else { "s" })
                }
                Some(Ok(Answered::NoRecords)) => {
                    "answered 404 (no records, or not enabled on this server)".to_owned()
                }
                Some(Err(e)) => failed(e),
            };
            line(format!("report {}: {answer}", r.report.name));
        }
        line(match &self.info {
            None => format!("token_info: {NOT_ASKED}"),
            Some(Ok(Some(_))) => "token_info: answered 200".to_owned(),
            Some(Ok(None)) => "token_info: not available (answered 404); warning: the \
                               allowance and today's use below come from the configuration"
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
        line(if problems.is_empty() {
            "result: OK".to_owned()
        } else {
            format!("result: FAILED: {}", problems.join("; "))
        });
        out
    }

    fn plan_line(&self) -> String {
        let plan = self.plan();
        let reports = self.configured_reports();
        let mut text = format!("plan: {} requests a day ({}), ", plan.planned, plan::describe(&reports));
        if plan.planned <= plan.allowance {
            let _ = write!(text, "within the allowance of {}: fits", plan.allowance);
        } else {
            let hint = plan::fitting_hint(&reports, plan.allowance);
            let _ = write!(text, "over the allowance of {}: does NOT fit; {hint}", plan.allowance);
        }
        if let Some((left, needed)) = plan.today {
            let verdict = if needed <= left {
                "fits"
            } else {
                "does NOT fit today: the later reports pause until midnight"
            };
            let _ = write!(
                text,
                "; today {left} are left to it (token_info) and polling until the \
                 operation's midnight needs {needed}: {verdict}"
            );
        }
        text
    }

    fn render_allowance(&self, line: &mut impl FnMut(String)) {
        let (configured, api) = self.limits();
        let reserve = self.reserve * 100.0;
        let allowance = self.plan().allowance;
        match api {
            Some(limit) => {
                line(format!(
                    "allowance: {limit} requests a day (token_info); the exporter may use \
                     {allowance} ({reserve}% kept in reserve)"
                ));
                if limit != configured {
                    let fix = if limit % 1000 == 0 && limit > 0 {
                        format!("set licenses: {}", limit / 1000)
                    } else {
                        "set licenses to match".to_owned()
                    };
                    line(format!(
                        "note: licenses: {} in the configuration means {configured} a day, but \
                         the API says {limit}: {fix}",
                        self.licenses
                    ));
                }
            }
            None => line(format!(
                "allowance: {configured} requests a day (licenses: {} x 1000; token_info did \
                 not answer); the exporter may use {allowance} ({reserve}% kept in reserve)",
                self.licenses
            )),
        }
        let count = |n: Option<u64>| n.map_or_else(|| "unknown".to_owned(), |n| n.to_string());
        line(match self.info() {
            Some(info) => format!(
                "use today: {} requests by all the operation's tokens, {} by this token, {} \
                 available (token_info)",
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
                    "the operation's daily request quota is spent (403 token limit exceeded): \
                     the API refuses every request until the operation's midnight, in {hours}h \
                     {minutes}m; the exporter pauses and resumes by itself. If it happens \
                     often, lengthen the reports' intervals or raise licenses if the operation \
                     has more, and look for other clients of the same operation"
                ),
                ErrorReason::invalid_token | ErrorReason::unauthorized => {
                    "put the operation's current token where the configuration reads it \
                     (token_file, token_env or token; WOLKVOX_TOKEN_FILE or WOLKVOX_TOKEN), \
                     then run check again"
                        .to_owned()
                }
                ErrorReason::concurrency_limit => "another client had a request in flight on \
                     this token (a running exporter?): run check again"
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

const NOT_ASKED: &str = "not asked (check's time limit ran out)";

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
