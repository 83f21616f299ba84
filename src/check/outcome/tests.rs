use std::time::Duration;

use chrono::NaiveDate;

use super::*;
use crate::config::ReportConfig;
use crate::reports::ReportName;

fn report(name: ReportName, minutes: u64) -> ReportConfig {
    ReportConfig { name, interval: Duration::from_secs(minutes * 60) }
}

fn info(limit: u64, used: u64) -> TokenInfo {
    TokenInfo {
        limit: Some(limit),
        token_today: Some(used),
        all_today: Some(used + 10),
        available: Some(limit - used - 10),
    }
}

/// Two reports at 5 minutes on one licence: 576 of 900 a day.
fn healthy() -> OperationCheck {
    let day = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
    OperationCheck {
        config: OperationConfig {
            name: "bogota".into(),
            base_url: "https://wv0042.wolkvox.com".into(),
            token: crate::config::Token::new("t"),
            timezone: chrono_tz::America::Bogota,
            licenses: 1,
            reports: vec![report(crate::reports::agent_13::NAME, 5), report(crate::reports::cdr_1::NAME, 5)],
        },
        window: (day.and_hms_opt(10, 49, 0).unwrap(), day.and_hms_opt(10, 59, 0).unwrap()),
        reserve: 0.1,
        answers: vec![Some(Ok(Answered::Records(37))), Some(Ok(Answered::NoRecords))],
        info: Some(Ok(Some(info(1000, 120)))),
        rest_of_day: 13 * 3600 + 60,
    }
}

fn every_answer(op: &mut OperationCheck, e: ApiError) {
    for answer in &mut op.answers {
        *answer = Some(Err(e.clone()));
    }
    op.info = Some(Err(e));
}

#[test]
fn a_healthy_operation_reads_plainly() {
    let op = healthy();
    assert_eq!(
        op.render(),
        "operation bogota (America/Bogota), window 2026-11-26 10:49:00 to 2026-11-26 10:59:00 local time
  token: valid
  caller: allowed (no request was refused as forbidden)
  report agent_13: answered 200 (37 records)
  report cdr_1: answered 404 (no records, or not enabled on this server)
  token_info: answered 200
  allowance: 1000 requests a day (token_info); the exporter may use 900 (10% kept in reserve)
  use today: 130 requests by all the operation's tokens, 120 by this token, 870 available (token_info)
  plan: 576 requests a day (agent_13 every 5m: 288, cdr_1 every 5m: 288), within the allowance of 900: fits; today 770 are left to it (token_info) and polling until the operation's midnight needs 314: fits
  requests spent: 3 (each costs one unit of the operation's daily quota)
  result: OK
"
    );
    assert!(op.problems().is_empty());
}

#[test]
fn an_invalid_token_is_named_with_the_api_text() {
    let mut op = healthy();
    every_answer(&mut op, ApiError::InvalidToken("PLEASE VALIDATE TOKEN / PLEASE VALIDATE TOKEN".into()));
    let text = op.render();
    assert!(text.contains("  token: INVALID: the API answered invalid, expired or malformed token: PLEASE VALIDATE TOKEN (reason=invalid_token); replace the token"), "{text}");
    assert!(text.contains("  report cdr_1: failed: invalid, expired or malformed token: PLEASE VALIDATE TOKEN (reason=invalid_token)\n"), "{text}");
    assert!(text.contains("  allowance: 1000 requests a day (licenses: 1 x 1000; token_info did not answer); the exporter may use 900 (10% kept in reserve)\n"), "{text}");
    assert!(text.contains("  use today: unknown (token_info did not answer)\n"), "{text}");
    assert!(text.ends_with("  result: FAILED: token invalid; agent_13 failed (invalid_token); cdr_1 failed (invalid_token); token_info failed (invalid_token)\n"), "{text}");
    assert_eq!(op.caller(), ("caller: allowed (no request was refused as forbidden)".to_owned(), None));
    assert_eq!(op.spent(), 3);
}

#[test]
fn forbidden_everywhere_points_at_the_callers_address() {
    let mut op = healthy();
    every_answer(&mut op, ApiError::Forbidden("ACCESS DENIED".into()));
    assert_eq!(op.token().1, Some("token not confirmed"));
    let (caller, problem) = op.caller();
    assert!(
        caller.starts_with("caller: NOT allowed: every request was refused with 403 forbidden;"),
        "{caller}"
    );
    assert_eq!(problem, Some("caller refused"));
    let text = op.render();
    assert!(text.contains("  caller: NOT allowed: every request was refused with 403 forbidden; this usually means the caller's public IP address is not registered in the operation"), "{text}");
    assert!(text.contains("(see Troubleshooting in the README)"), "{text}");
    assert!(text.contains("result: FAILED: token not confirmed; caller refused;"), "{text}");

    // One forbidden answer among others is still a refusal, said as such.
    let mut op = healthy();
    op.answers[1] = Some(Err(ApiError::Forbidden("ACCESS DENIED".into())));
    assert_eq!(op.token(), ("token: valid".to_owned(), None));
    assert!(op.render().contains("caller: NOT allowed: 1 of 3 requests were refused with 403 forbidden;"));
}

#[test]
fn an_unreachable_api_is_neither_valid_nor_refused_and_costs_nothing() {
    let mut op = healthy();
    every_answer(&mut op, ApiError::Unreachable("connection refused".into()));
    assert_eq!(op.token().1, Some("token not confirmed"));
    assert_eq!(op.caller().1, Some("API unreachable"));
    assert_eq!(op.spent(), 0);
    assert!(op.render().contains(
        "  caller: unknown: the API answered no request: could not connect: connection refused (reason=connect)\n"
    ));
    // A spent quota still says the token is known to the API.
    let mut op = healthy();
    every_answer(&mut op, ApiError::QuotaExceeded("TOKEN LIMIT EXCEEDED".into()));
    assert_eq!(op.token(), ("token: valid".to_owned(), None));
    assert_eq!(op.caller(), ("caller: allowed (no request was refused as forbidden)".to_owned(), None));
    assert_eq!(op.spent(), 3);
}

#[test]
fn the_plan_is_held_against_the_smaller_of_the_two_limits() {
    // The configuration says 5 licences, the API 1000 a day: the API's limit binds.
    let mut op = healthy();
    op.config.licenses = 5;
    op.config.reports.push(report(crate::reports::agent_13_1::NAME, 5));
    op.answers.push(Some(Ok(Answered::Records(1))));
    let plan = op.plan();
    assert_eq!(plan, PlanVerdict { planned: 864, allowance: 900, today: Some((770, 3 * 157)), fits: true });
    let text = op.render();
    assert!(text.contains("  note: licenses: 5 in the configuration means 5000 a day, but the API says 1000: set licenses: 1\n"), "{text}");
    assert!(text.contains("report agent_13_1: answered 200 (1 record)\n"), "{text}");

    op.info = Some(Ok(Some(info(800, 0))));
    assert!(!op.plan().fits);
    let text = op.render();
    assert!(text.contains("  plan: 864 requests a day (agent_13 every 5m: 288, cdr_1 every 5m: 288, agent_13_1 every 5m: 288), over the allowance of 720: does NOT fit; every report at an interval of 6m or longer fits; today 710 are left to it (token_info) and polling until the operation's midnight needs 471: fits\n"), "{text}");
    assert!(text.ends_with("  result: FAILED: plan does not fit\n"), "{text}");
}

#[test]
fn server_texts_are_cut_and_cleaned() {
    let mut op = healthy();
    let long = format!("\u{1b}[31mred{}", "x".repeat(500));
    op.answers[0] = Some(Err(ApiError::BadRequest(long)));
    let text = op.render();
    let line = text.lines().find(|l| l.contains("report agent_13:")).unwrap();
    assert!(!line.contains('\u{1b}'), "{line}");
    assert!(line.ends_with("x... (reason=bad_request)"), "{line}");
    assert!(line.len() < 300, "{}", line.len());
}

#[test]
fn what_is_left_today_binds_the_plan_too() {
    // 900 a day fit the plan, but 860 are used: 40 left, and 13 hours of polling need 314.
    let mut op = healthy();
    op.info = Some(Ok(Some(info(1000, 850))));
    let plan = op.plan();
    assert_eq!((plan.today, plan.fits), (Some((40, 314)), false));
    let text = op.render();
    assert!(text.contains("today 40 are left to it (token_info) and polling until the operation's midnight needs 314: does NOT fit today: the later reports pause until midnight\n"), "{text}");
    assert!(text.ends_with("  result: FAILED: plan does not fit\n"), "{text}");
}

#[test]
fn token_info_answering_404_is_not_available_and_no_failure() {
    let mut op = healthy();
    op.info = Some(Ok(None));
    assert!(op.problems().is_empty(), "{:?}", op.problems());
    assert_eq!(op.spent(), 3);
    let text = op.render();
    assert!(text.contains("  token_info: not available (answered 404); warning: the allowance and today's use below come from the configuration\n"), "{text}");
    assert!(
        text.contains("  allowance: 1000 requests a day (licenses: 1 x 1000; token_info did not answer)"),
        "{text}"
    );
    assert!(text.ends_with("  result: OK\n"), "{text}");
}

#[test]
fn a_spent_quota_and_a_bad_token_get_advice() {
    let mut op = healthy();
    every_answer(&mut op, ApiError::QuotaExceeded("TOKEN LIMIT EXCEEDED".into()));
    let text = op.render();
    let advice: Vec<&str> = text.lines().filter(|l| l.starts_with("  advice: ")).collect();
    assert_eq!(advice.len(), 1, "{text}");
    assert!(advice[0].contains("daily request quota is spent (403 token limit exceeded): the API refuses every request until the operation's midnight, in 13h 1m"), "{text}");

    let mut op = healthy();
    every_answer(&mut op, ApiError::InvalidToken("PLEASE VALIDATE TOKEN".into()));
    assert!(op
        .render()
        .contains("  advice: put the operation's current token where the configuration reads it"));
}

#[test]
fn what_was_not_asked_in_time_is_a_failure_that_costs_nothing() {
    let mut op = healthy();
    op.answers[1] = None;
    op.info = None;
    assert_eq!(op.spent(), 1);
    let text = op.render();
    assert!(text.contains("  report cdr_1: not asked (check's time limit ran out)\n"), "{text}");
    assert!(text.contains("  token_info: not asked (check's time limit ran out)\n"), "{text}");
    assert!(text.ends_with("  result: FAILED: cdr_1 not asked; token_info not asked\n"), "{text}");
}
