//! What `check` found for one operation, the verdicts drawn from it and the lines it
//! prints. Pure: the requests are made in the parent module.

use std::fmt::Write as _;

use chrono::NaiveDateTime;
use chrono_tz::Tz;

use super::info::TokenInfo;
use crate::client::{ApiError, ErrorReason};
use crate::config::{plan, ReportConfig};

/// How a report answered a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    /// 200, with this many rows.
    Records(usize),
    /// 404 "no records".
    NoRecords,
}

#[derive(Debug, Clone)]
pub struct ReportCheck {
    pub report: ReportConfig,
    pub answer: Result<Answered, ApiError>,
}

/// One operation's answers; error texts are already cut of the token.
#[derive(Debug, Clone)]
pub struct OperationCheck {
    pub name: String,
    pub timezone: Tz,
    /// The operation-local window asked of every report, both ends inclusive.
    pub window: (NaiveDateTime, NaiveDateTime),
    pub licenses: u32,
    /// `api.daily_reserve`.
    pub reserve: f64,
    pub reports: Vec<ReportCheck>,
    pub info: Result<TokenInfo, ApiError>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TokenVerdict {
    Valid,
    /// The first answer that refused the token.
    Invalid(ApiError),
    /// No answer told either way (every request refused before the token, or unreachable).
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CallerVerdict {
    Allowed,
    /// `forbidden` of the `answered` requests the API answered were refused as forbidden.
    Refused {
        forbidden: usize,
        answered: usize,
    },
    /// The API answered none of the requests; the first error.
    Unreachable(ApiError),
}

/// The plan against the allowance that binds: the smaller of the configured limit and
/// the API's, less the reserve.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanVerdict {
    pub planned: u64,
    pub allowance: u64,
    pub fits: bool,
}

/// Errors that say the API saw the request and recognised the token.
fn token_recognised(e: &ApiError) -> bool {
    matches!(
        e.reason(),
        ErrorReason::quota_exceeded | ErrorReason::concurrency_limit
    )
}

/// Errors that come from the API rather than from the way to it.
fn from_the_api(e: &ApiError) -> bool {
    !matches!(
        e.reason(),
        ErrorReason::timeout | ErrorReason::connect | ErrorReason::http_5xx
    )
}

impl OperationCheck {
    /// Every request's outcome: the reports', then token_info's.
    fn outcomes(&self) -> impl Iterator<Item = Result<(), &ApiError>> {
        let reports = self.reports.iter().map(|r| r.answer.as_ref().map(drop));
        reports.chain(std::iter::once(self.info.as_ref().map(drop)))
    }

    /// Requests that went out, each one unit of the operation's daily quota.
    pub fn spent(&self) -> u64 {
        self.outcomes()
            .filter(|o| o.map_or_else(ApiError::was_sent, |()| true))
            .count() as u64
    }

    pub fn token(&self) -> TokenVerdict {
        let refused = self.outcomes().find_map(|o| {
            o.err().filter(|e| {
                matches!(
                    e.reason(),
                    ErrorReason::invalid_token | ErrorReason::unauthorized
                )
            })
        });
        if let Some(e) = refused {
            return TokenVerdict::Invalid(e.clone());
        }
        let recognised = self
            .outcomes()
            .any(|o| o.map_or_else(token_recognised, |()| true));
        if recognised {
            TokenVerdict::Valid
        } else {
            TokenVerdict::Unknown
        }
    }

    pub fn caller(&self) -> CallerVerdict {
        let answered = self
            .outcomes()
            .filter(|o| o.map_or_else(from_the_api, |()| true))
            .count();
        let forbidden = self
            .outcomes()
            .filter(|o| o.is_err_and(|e| e.reason() == ErrorReason::forbidden))
            .count();
        if forbidden > 0 {
            return CallerVerdict::Refused {
                forbidden,
                answered,
            };
        }
        match self.outcomes().find_map(Result::err) {
            Some(e) if answered == 0 => CallerVerdict::Unreachable(e.clone()),
            _ => CallerVerdict::Allowed,
        }
    }

    /// The configured limit (licenses x 1000) and, when token_info answered, the API's.
    fn limits(&self) -> (u64, Option<u64>) {
        let configured = u64::from(self.licenses) * 1000;
        (configured, self.info.as_ref().ok().and_then(|i| i.limit))
    }

    pub fn plan(&self) -> PlanVerdict {
        let reports: Vec<ReportConfig> = self.reports.iter().map(|r| r.report.clone()).collect();
        let planned = plan::daily_requests(&reports);
        let (configured, api) = self.limits();
        let limit = api.map_or(configured, |api| api.min(configured));
        let allowance = plan::daily_allowance(limit, self.reserve);
        PlanVerdict {
            planned,
            allowance,
            fits: planned <= allowance,
        }
    }

    /// What does not work; empty when everything the exporter needs does.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        match self.token() {
            TokenVerdict::Valid => {}
            TokenVerdict::Invalid(_) => problems.push("token invalid".to_owned()),
            TokenVerdict::Unknown => problems.push("token not confirmed".to_owned()),
        }
        match self.caller() {
            CallerVerdict::Allowed => {}
            CallerVerdict::Refused { .. } => problems.push("caller refused".to_owned()),
            CallerVerdict::Unreachable(_) => problems.push("API unreachable".to_owned()),
        }
        for r in &self.reports {
            if let Err(e) = &r.answer {
                problems.push(format!(
                    "{} failed ({})",
                    r.report.name,
                    e.reason().as_str()
                ));
            }
        }
        if let Err(e) = &self.info {
            problems.push(format!("token_info failed ({})", e.reason().as_str()));
        }
        if !self.plan().fits {
            problems.push("plan does not fit".to_owned());
        }
        problems
    }

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
            TokenVerdict::Unknown => {
                "token: unknown (no answer said whether the API accepts it)".to_owned()
            }
        });
        line(match self.caller() {
            CallerVerdict::Allowed => {
                "caller: allowed (no request was refused as forbidden)".to_owned()
            }
            CallerVerdict::Refused {
                forbidden,
                answered,
            } => {
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
            CallerVerdict::Unreachable(e) => format!(
                "caller: unknown: the API answered no request: {}",
                described(&e)
            ),
        });
        for r in &self.reports {
            line(format!(
                "report {}: {}",
                r.report.name,
                match &r.answer {
                    Ok(Answered::Records(n)) => format!(
                        "answered 200 ({n} record{})",
                        if *n == 1 { "" } else { "s" }
                    ),
                    Ok(Answered::NoRecords) => {
                        "answered 404 (no records, or not enabled on this server)".to_owned()
                    }
                    Err(e) => failed(e),
                }
            ));
        }
        line(match &self.info {
            Ok(_) => "token_info: answered 200".to_owned(),
            Err(e) => format!("token_info: {}", failed(e)),
        });
        self.render_allowance(&mut line);
        let plan = self.plan();
        let reports: Vec<ReportConfig> = self.reports.iter().map(|r| r.report.clone()).collect();
        let verdict = if plan.fits {
            format!("within the allowance of {}: fits", plan.allowance)
        } else {
            let hint = plan::fitting_hint(&reports, plan.allowance);
            format!(
                "over the allowance of {}: does NOT fit; {hint}",
                plan.allowance
            )
        };
        line(format!(
            "plan: {} requests a day ({}), {verdict}",
            plan.planned,
            plan::describe(&reports)
        ));
        line(format!(
            "requests spent: {} (each costs one unit of the operation's daily quota)",
            self.spent()
        ));
        let problems = self.problems();
        line(if problems.is_empty() {
            "result: OK".to_owned()
        } else {
            format!("result: FAILED: {}", problems.join("; "))
        });
        out
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
        line(match &self.info {
            Ok(info) => format!(
                "use today: {} requests by all the operation's tokens, {} by this token, {} \
                 available (token_info)",
                count(info.all_today),
                count(info.token_today),
                count(info.available)
            ),
            Err(_) => "use today: unknown (token_info did not answer)".to_owned(),
        });
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
    let mut text: String = e
        .to_string()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
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
