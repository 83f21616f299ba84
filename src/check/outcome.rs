//! What `check` found for one operation and the verdicts drawn from it; the lines it
//! prints are in `render`. Pure: the requests are made in the parent module.

use chrono::NaiveDateTime;
use chrono_tz::Tz;

use super::info::TokenInfo;
use crate::client::{ApiError, ErrorReason};
use crate::config::{plan, ReportConfig};
use crate::reports::kind;

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
    /// `None`: not asked, the command's time ran out first.
    pub answer: Option<Result<Answered, ApiError>>,
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
    /// `token_info`'s answer, `Ok(None)` for a 404 (not available there); `None`: not
    /// asked.
    pub info: Option<Result<Option<TokenInfo>, ApiError>>,
    /// Seconds from the check to the operation's next midnight.
    pub rest_of_day: u64,
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

/// Errors that say the API saw the request and recognised the token.
fn token_recognised(e: &ApiError) -> bool {
    matches!(e.reason(), ErrorReason::quota_exceeded | ErrorReason::concurrency_limit)
}

/// Errors that come from the API rather than from the way to it.
fn from_the_api(e: &ApiError) -> bool {
    !matches!(e.reason(), ErrorReason::timeout | ErrorReason::connect | ErrorReason::http_5xx)
}

impl OperationCheck {
    /// Every asked request's outcome: the reports', then token_info's.
    pub(super) fn outcomes(&self) -> impl Iterator<Item = Result<(), &ApiError>> {
        let reports = self.reports.iter().filter_map(|r| r.answer.as_ref());
        let reports = reports.map(|a| a.as_ref().map(drop));
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

    pub fn token(&self) -> TokenVerdict {
        let refused = self.outcomes().find_map(|o| {
            o.err().filter(|e| matches!(e.reason(), ErrorReason::invalid_token | ErrorReason::unauthorized))
        });
        if let Some(e) = refused {
            return TokenVerdict::Invalid(e.clone());
        }
        let recognised = self.outcomes().any(|o| o.map_or_else(token_recognised, |()| true));
        if recognised {
            TokenVerdict::Valid
        } else {
            TokenVerdict::Unknown
        }
    }

    pub fn caller(&self) -> CallerVerdict {
        let answered = self.outcomes().filter(|o| o.map_or_else(from_the_api, |()| true)).count();
        let forbidden =
            self.outcomes().filter(|o| o.is_err_and(|e| e.reason() == ErrorReason::forbidden)).count();
        if forbidden > 0 {
            return CallerVerdict::Refused { forbidden, answered };
        }
        match self.outcomes().find_map(Result::err) {
            Some(e) if answered == 0 => CallerVerdict::Unreachable(e.clone()),
            _ => CallerVerdict::Allowed,
        }
    }

    /// The configured limit (licenses x 1000) and, when token_info told, the API's.
    pub(super) fn limits(&self) -> (u64, Option<u64>) {
        let configured = u64::from(self.licenses) * 1000;
        (configured, self.info().and_then(|i| i.limit))
    }

    pub(super) fn configured_reports(&self) -> Vec<ReportConfig> {
        self.reports.iter().map(|r| r.report.clone()).collect()
    }

    pub fn plan(&self) -> PlanVerdict {
        let reports = self.configured_reports();
        let planned = plan::daily_requests(&reports);
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
            match &r.answer {
                None => problems.push(format!("{} not asked", r.report.name)),
                Some(Err(e)) => problems.push(format!("{} failed ({})", r.report.name, e.reason().as_str())),
                Some(Ok(_)) => {}
            }
        }
        match &self.info {
            None => problems.push("token_info not asked".to_owned()),
            Some(Err(e)) => problems.push(format!("token_info failed ({})", e.reason().as_str())),
            Some(Ok(_)) => {}
        }
        if !self.plan().fits {
            problems.push("plan does not fit".to_owned());
        }
        problems
    }
}

#[cfg(test)]
mod tests;
