//! The vendor's limits, the faults, the scripted mode, and starting and stopping.

use super::*;

#[tokio::test]
async fn tokens_are_checked() {
    let fake = Wolkvox::start(config());
    let q = query(MORNING.0, MORNING.1);
    let http = client(Duration::from_secs(5));
    let missing = get_with(&http, &fake, &q, None).await.unwrap();
    assert_eq!(missing, (401, error_body(401, text::TOKEN_MISSING)));
    let invalid = (403, error_body(403, text::INVALID_TOKEN));
    assert_eq!(get_with(&http, &fake, &q, Some("other")).await.unwrap(), invalid);
    fake.set_invalid_token(true);
    assert_eq!(get(&fake, &q).await.unwrap(), invalid);
    fake.set_invalid_token(false);
    assert_eq!(get(&fake, &q).await.unwrap().0, 200);
}

#[tokio::test]
async fn a_second_request_in_flight_is_refused_and_recorded() {
    let mut config = config();
    config.latency = Duration::from_millis(800);
    let fake = Wolkvox::start(config);
    let q = query(MORNING.0, MORNING.1);
    let (first, second) = tokio::join!(get(&fake, &q), async {
        // Sent once the first is being answered.
        wait_until("the first request in flight", || fake.in_flight() >= 1).await;
        get(&fake, &q).await
    });
    // Whichever arrived second was refused; the other was answered.
    let mut answers = [first.unwrap(), second.unwrap()];
    answers.sort();
    assert_eq!(answers[0].0, 200);
    assert_eq!(answers[1], (403, error_body(403, text::SIMULTANEOUS)));
    assert_eq!(fake.concurrent_violations(), 1);
    // One after the other is fine, even on fresh connections.
    fake.set_latency(Duration::ZERO);
    for _ in 0..5 {
        assert_eq!(get(&fake, &q).await.unwrap().0, 200);
    }
    assert_eq!(fake.concurrent_violations(), 1);
    assert_eq!(fake.served_log().iter().filter(|r| r.concurrent).count(), 1);
}

#[tokio::test]
async fn the_daily_quota_is_per_local_day() {
    let mut config = config();
    config.daily_limit = Some(2);
    // 02:00 UTC on the 11th is still the 10th in Bogota.
    let clock = TestClock::at(t("2025-03-11T02:00:00Z"));
    config.clock = clock.clock();
    let fake = Wolkvox::start(config);
    let q = query(MORNING.0, MORNING.1);
    assert_eq!(get(&fake, &q).await.unwrap().0, 200);
    assert_eq!(get(&fake, &q).await.unwrap().0, 200);
    assert_eq!(get(&fake, &q).await.unwrap(), (403, error_body(403, text::QUOTA_EXCEEDED)));
    let day = chrono::NaiveDate::from_ymd_opt(2025, 3, 10).unwrap();
    assert_eq!(fake.daily_used(day), 3);
    clock.set(t("2025-03-11T05:00:00Z"));
    assert_eq!(get(&fake, &q).await.unwrap().0, 200);
}

#[tokio::test]
async fn each_fault_is_observable() {
    let mut config = config();
    config.timeout_delay = Duration::from_secs(2);
    config.script = vec![
        Some(Fault::ServerError(503)),
        Some(Fault::Timeout),
        Some(Fault::Reset),
        Some(Fault::Html(200)),
        Some(Fault::Html(502)),
        Some(Fault::TruncatedJson),
        Some(Fault::Maintenance),
        Some(Fault::Simultaneous),
        None,
    ];
    let fake = Wolkvox::start(config);
    let q = query(MORNING.0, MORNING.1);
    let http = client(Duration::from_millis(500));
    let mut results = Vec::new();
    for sent in 1..=9 {
        results.push(get_with(&http, &fake, &q, Some(fake.token())).await);
        // A client that gave up (the timeout) leaves the fake still holding the
        // request until it sees the hang-up; wait for that, or the next request
        // would rightly be refused as simultaneous.
        wait_until(&format!("request {sent} to finish"), || fake.served_log().len() >= sent).await;
    }
    let (status, body) = results[0].as_ref().unwrap();
    assert_eq!(*status, 503);
    assert!(body.contains("<html>"));
    assert!(results[1].as_ref().unwrap_err().is_timeout());
    let reset = results[2].as_ref().unwrap_err();
    assert!(!reset.is_timeout(), "{reset:?}");
    let (status, body) = results[3].as_ref().unwrap();
    assert_eq!(*status, 200);
    assert!(body.starts_with("<!DOCTYPE html>"));
    assert_eq!(results[4].as_ref().unwrap().0, 502);
    let (status, body) = results[5].as_ref().unwrap();
    assert_eq!(*status, 200);
    assert!(body.starts_with("{\"code\":200"));
    assert!(serde_json::from_str::<Value>(body).is_err());
    assert_eq!(
        results[6].as_ref().unwrap(),
        &(403, error_body(403, "Server under maintenance (backups), try again later"))
    );
    assert_eq!(results[7].as_ref().unwrap(), &(403, error_body(403, text::SIMULTANEOUS)));
    assert_eq!(results[8].as_ref().unwrap().0, 200);

    // The timed-out request left the token free: nothing was counted as concurrent.
    assert_eq!(fake.concurrent_violations(), 0);
    let log = fake.served_log();
    let faults: Vec<_> = log.iter().map(|r| r.fault).collect();
    assert_eq!(faults[2], Some(Fault::Reset));
    assert_eq!(log.iter().filter(|r| r.status.is_none()).count(), 2);
    assert_eq!(log.iter().filter(|r| r.records > 0).count(), 1);
}

#[tokio::test]
async fn random_faults_are_repeatable() {
    let run = || async {
        let mut config = config();
        config.fault_probability = 0.5;
        config.fault_kinds =
            vec![Fault::ServerError(500), Fault::Maintenance, Fault::Html(502), Fault::TruncatedJson];
        let fake = Wolkvox::start(config);
        for _ in 0..30 {
            let _ = get(&fake, &query(MORNING.0, MORNING.1)).await;
        }
        fake.served_log().into_iter().map(|r| (r.fault, r.status)).collect::<Vec<_>>()
    };
    let first = run().await;
    assert_eq!(first, run().await);
    let faulty = first.iter().filter(|(f, _)| f.is_some()).count();
    assert!((5..=25).contains(&faulty), "{faulty} faults in 30");
}

#[test]
fn works_from_a_blocking_test_and_stops_on_drop() {
    use std::io::{Read, Write};
    let fake = Wolkvox::start(config());
    let address = fake.base_url().trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        stream,
        "GET /api/v2/reports_manager.php?{} HTTP/1.1\r\nHost: x\r\nwolkvox-token: {}\r\nConnection: close\r\n\r\n",
        query("20250309080000", "20250309100000"),
        fake.token()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 404 Not Found\r\n"), "{response}");
    assert!(response.ends_with(&error_body(404, "Validate dates entered")));
    drop(fake);
    assert!(std::net::TcpStream::connect(&address).is_err());
}

/// Started on the caller's runtime: token_info counts every request the token got
/// through on the operation's day, itself included; it stops when dropped.
#[tokio::test]
async fn token_info_counts_the_day_and_spawn_serves_on_this_runtime() {
    let fake = Wolkvox::spawn(config()).unwrap();
    let q = query(MORNING.0, MORNING.1);
    assert_eq!(get(&fake, &q).await.unwrap().0, 200);
    assert_eq!(get(&fake, "api=agent_13").await.unwrap().0, 400);
    let http = client(Duration::from_secs(5));
    let info = |token: &str| {
        http.get(format!("{}{}?api=token_info", fake.base_url(), wolkvox_api::INFO_PATH))
            .header(wolkvox_api::TOKEN_HEADER, token.to_owned())
            .send()
    };
    let answer = info(fake.token()).await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.text().await.unwrap(),
        r#"{"code":200,"error":null,"msg":"Token information","data":[{"token_limit":"1000000","token_use_today":"3","all_token_today":"3","available_consumption_options":"999997"}]}"#
    );
    assert_eq!(info("nope").await.unwrap().status(), 403);
    let other = http
        .get(format!("{}{}?api=other", fake.base_url(), wolkvox_api::INFO_PATH))
        .header(wolkvox_api::TOKEN_HEADER, fake.token())
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 400);
    let post = http.post(fake.report_url(&q)).send().await.unwrap();
    assert_eq!(post.status(), 405);
    let address = fake.base_url().trim_start_matches("http://").to_string();
    drop(fake);
    wait_until("the port closed", || std::net::TcpStream::connect(&address).is_err()).await;
}

/// A scripted server answers every request with the test's function, before any token
/// check, and logs what it answered.
#[tokio::test]
async fn a_scripted_server_answers_with_the_function() {
    let records = [
        (
            NaiveDateTime::parse_from_str("2025-03-10 08:00:00", "%Y-%m-%d %H:%M:%S").unwrap(),
            r#"{"conn_id":"a","date":"not a date"}"#.to_owned(),
        ),
        (
            NaiveDateTime::parse_from_str("2025-03-10 09:00:00", "%Y-%m-%d %H:%M:%S").unwrap(),
            r#"{"conn_id":"b"}"#.to_owned(),
        ),
    ];
    let schedule = Schedule::new(records.to_vec());
    let fake = Wolkvox::start(WolkvoxConfig::scripted(move |request| {
        if request.token.as_deref() == Some("echo") {
            Reply::error(403, "token echo refused")
        } else {
            schedule.reply(request)
        }
    }));
    let http = client(Duration::from_secs(5));
    let (status, body) =
        get_with(&http, &fake, &query("20250310073000", "20250310083000"), None).await.unwrap();
    assert_eq!(
        (status, body.as_str()),
        (
            200,
            r#"{"code":200,"error":null,"msg":"1 records were found","data":[{"conn_id":"a","date":"not a date"}]}"#
        )
    );
    let both = get_with(&http, &fake, &query(MORNING.0, MORNING.1), None).await.unwrap();
    assert_eq!(data(&both.1).len(), 2);
    let none = get_with(&http, &fake, &query("20250311000000", "20250311010000"), None).await.unwrap();
    assert_eq!(none, (404, error_body(404, text::NO_RECORDS)));
    let echoed = get_with(&http, &fake, "api=agent_13", Some("echo")).await.unwrap();
    assert_eq!(echoed, (403, error_body(403, "token echo refused")));
    let bad = get_with(&http, &fake, "api=agent_13", None).await.unwrap();
    assert_eq!(bad, (400, error_body(400, text::BAD_REQUEST)));
    let statuses: Vec<_> = fake.served_log().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 404, 403, 400].map(Some));
    assert_eq!(fake.requests(), 5);
}

/// The caller refused, a report not enabled, and the calls' truth with its names.
#[tokio::test]
async fn refused_callers_and_reports_not_enabled() {
    let mut config = config();
    config.not_enabled = vec!["cdr_1".to_owned()];
    let fake = Wolkvox::start(config);
    let calls = format!("api=cdr_1&date_ini={}&date_end={}", MORNING.0, MORNING.1);
    assert_eq!(get(&fake, &calls).await.unwrap(), (404, error_body(404, text::NO_RECORDS)));
    let legs = format!("api=agent_13_1&date_ini={}&date_end={}", MORNING.0, MORNING.1);
    assert_eq!(get(&fake, &legs).await.unwrap().0, 200);
    fake.set_refuse_caller(true);
    assert_eq!(get(&fake, &legs).await.unwrap(), (403, error_body(403, CALLER_REFUSED)));
    let truth: CallsTruth = fake.truth();
    assert!(truth.total() > fake.truth::<TransfersTruth>().total());
    assert_eq!(truth.names.len(), 10);
}
