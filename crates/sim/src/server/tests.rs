//! The simulated Wolkvox seen through a plain HTTP client: the limits it enforces, the
//! faults it injects, the truth it reports, and how it starts and stops.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;
use wolkvox_api::text;

use super::*;
use crate::model::Burst;
use crate::reports::agent_13::TransfersTruth;
use crate::reports::cdr_1::CallsTruth;

/// A clock the test sets.
#[derive(Clone)]
struct TestClock(Arc<Mutex<DateTime<Utc>>>);

impl TestClock {
    fn at(now: DateTime<Utc>) -> TestClock {
        TestClock(Arc::new(Mutex::new(now)))
    }

    fn set(&self, now: DateTime<Utc>) {
        *self.0.lock().unwrap() = now;
    }

    fn clock(&self) -> Clock {
        let now = self.0.clone();
        Arc::new(move || *now.lock().unwrap())
    }
}

/// Waits until `reached` holds, for five seconds at most.
async fn wait_until(what: &str, reached: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !reached() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Monday 2025-03-10, 08:00-12:00 Colombia time.
fn config() -> WolkvoxConfig {
    WolkvoxConfig::bounded(t("2025-03-10T13:00:00Z"), t("2025-03-10T17:00:00Z"))
}

fn query(ini: &str, end: &str) -> String {
    format!("api=agent_13&date_ini={ini}&date_end={end}")
}

const MORNING: (&str, &str) = ("20250310080000", "20250310115959");

fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .unwrap()
}

/// GET with the fake's token; the status and body, or the transport error.
async fn get(fake: &Wolkvox, query: &str) -> Result<(u16, String), reqwest::Error> {
    get_with(
        &client(Duration::from_secs(5)),
        fake,
        query,
        Some(fake.token()),
    )
    .await
}

async fn get_with(
    client: &reqwest::Client,
    fake: &Wolkvox,
    query: &str,
    token: Option<&str>,
) -> Result<(u16, String), reqwest::Error> {
    let mut request = client.get(fake.report_url(query));
    if let Some(token) = token {
        request = request.header("wolkvox-token", token);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

fn error_body(status: u16, text: &str) -> String {
    format!(r#"{{"code":{status},"error":"{text}","msg":"{text}","data":[]}}"#)
}

fn data(body: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(body).unwrap();
    match &v["data"] {
        Value::Array(rows) => rows.clone(),
        Value::Object(_) => vec![v["data"].clone()],
        other => panic!("data is {other}"),
    }
}

#[tokio::test]
async fn same_seed_gives_the_same_answers() {
    let a = Wolkvox::start(config());
    let b = Wolkvox::start(config());
    let mut other = config();
    other.sim.seed = 2;
    let c = Wolkvox::start(other);
    let q = query(MORNING.0, MORNING.1);
    let (sa, body_a) = get(&a, &q).await.unwrap();
    let (_, body_b) = get(&b, &q).await.unwrap();
    let (_, body_c) = get(&c, &q).await.unwrap();
    assert_eq!(sa, 200);
    assert!(data(&body_a).len() > 100);
    assert_eq!(body_a, body_b);
    assert_ne!(body_a, body_c);
}

#[tokio::test]
async fn whole_history_matches_the_truth() {
    let fake = Wolkvox::start(config());
    let (status, body) = get(&fake, &query(MORNING.0, MORNING.1)).await.unwrap();
    assert_eq!(status, 200);
    let rows = data(&body);
    let truth = fake.truth::<TransfersTruth>();
    assert_eq!(rows.len() as u64, truth.total());
    for row in &rows {
        for field in [
            "agent_name",
            "agent_id",
            "conn_id",
            "date",
            "telephone",
            "type_interaction",
            "time",
        ] {
            assert!(row[field].is_string(), "{field} in {row}");
        }
    }
    let count = |agent: &str, kind: &str| {
        rows.iter()
            .filter(|r| r["agent_id"] == agent && r["type_interaction"] == kind)
            .count() as u64
    };
    for ((agent, kind), series) in &truth.series {
        assert_eq!(count(agent, kind), series.count, "{agent} {kind}");
        assert_eq!(series.durations.len() as u64, series.count);
        assert_eq!(series.durations.iter().sum::<u64>(), series.sum_secs);
        let buckets = series.cumulative_buckets(&[60.0, 300.0]);
        assert_eq!(buckets.len(), 3);
        assert!(buckets[0] <= buckets[1] && buckets[1] <= buckets[2]);
        assert_eq!(buckets[2], series.count);
    }
    assert_eq!(truth.names.len(), 10);
    assert_eq!(fake.served_ids("agent_13").len(), rows.len());
    let log = fake.served_log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].records, rows.len());
    assert_eq!(fake.max_range_seconds(), 4 * 3600 - 1);
}

#[tokio::test]
async fn an_empty_window_is_404() {
    let fake = Wolkvox::start(config());
    let (status, body) = get(&fake, &query("20250309080000", "20250309100000"))
        .await
        .unwrap();
    assert_eq!(status, 404);
    assert_eq!(body, error_body(404, "Validate dates entered"));
}

#[tokio::test]
async fn bad_queries_are_400() {
    let fake = Wolkvox::start(config());
    let bad = error_body(400, text::BAD_REQUEST);
    for q in [
        query("20250201000000", "20250310000000"),
        query("2025031008000", "20250310115959"),
        query("20250310120000", "20250310080000"),
        "api=agent_13&date_ini=20250310080000".to_string(),
    ] {
        assert_eq!(get(&fake, &q).await.unwrap(), (400, bad.clone()), "{q}");
    }
    let unknown = "api=agent_99&date_ini=20250310080000&date_end=20250310115959";
    let refused = (400, error_body(400, text::UNKNOWN_API));
    assert_eq!(get(&fake, unknown).await.unwrap(), refused);
    let exactly_31_days = query("20250207090000", "20250310090000");
    assert_eq!(get(&fake, &exactly_31_days).await.unwrap().0, 200);
    let log = fake.served_log();
    assert!(log[0].request.range_days().unwrap() > 31.0);
    assert_eq!(fake.max_range_seconds(), 37 * 86_400);
}

#[tokio::test]
async fn tokens_are_checked() {
    let fake = Wolkvox::start(config());
    let q = query(MORNING.0, MORNING.1);
    let http = client(Duration::from_secs(5));
    let missing = get_with(&http, &fake, &q, None).await.unwrap();
    assert_eq!(missing, (401, error_body(401, text::TOKEN_MISSING)));
    let invalid = (403, error_body(403, text::INVALID_TOKEN));
    assert_eq!(
        get_with(&http, &fake, &q, Some("other")).await.unwrap(),
        invalid
    );
    fake.set_invalid_token(true);
    assert_eq!(get(&fake, &q).await.unwrap(), invalid);
    fake.set_invalid_token(false);
    assert_eq!(get(&fake, &q).await.unwrap().0, 200);
}

#[tokio::test]
async fn answers_stop_at_60000_records() {
    let mut config = config();
    config.sim.bursts.push(Burst {
        start: t("2025-03-10T14:00:00Z"),
        duration: chrono::Duration::minutes(5),
        records: 61_000,
    });
    let fake = Wolkvox::start(config);
    let (status, body) = get(&fake, &query("20250310090000", "20250310090459"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["msg"], "60000 records were found");
    assert_eq!(v["data"].as_array().unwrap().len(), 60_000);
    let log = fake.served_log();
    assert!(log[0].truncated);
    assert_eq!(log[0].records, 60_000);
    assert!(fake.truth::<TransfersTruth>().total() > 61_000);
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
    assert_eq!(
        get(&fake, &q).await.unwrap(),
        (403, error_body(403, text::QUOTA_EXCEEDED))
    );
    let day = chrono::NaiveDate::from_ymd_opt(2025, 3, 10).unwrap();
    assert_eq!(fake.daily_used(day), 3);
    clock.set(t("2025-03-11T05:00:00Z"));
    assert_eq!(get(&fake, &q).await.unwrap().0, 200);
}

#[tokio::test]
async fn late_records_show_up_only_once_visible() {
    let mut config = config();
    config.sim.late_fraction = 1.0;
    config.sim.late_by = (Duration::from_secs(180), Duration::from_secs(180));
    // 10:00 local; the last three minutes are not visible yet.
    let clock = TestClock::at(t("2025-03-10T15:00:00Z"));
    config.clock = clock.clock();
    let fake = Wolkvox::start(config);
    let q = query("20250310093000", "20250310095959");
    let early = data(&get(&fake, &q).await.unwrap().1);
    let visible = fake
        .truth_between::<TransfersTruth>(t("2025-03-10T14:30:00Z"), t("2025-03-10T14:57:00Z"))
        .total();
    assert_eq!(early.len() as u64, visible);
    clock.set(t("2025-03-10T15:03:00Z"));
    let later = data(&get(&fake, &q).await.unwrap().1);
    let all = fake
        .truth_between::<TransfersTruth>(t("2025-03-10T14:30:00Z"), t("2025-03-10T14:59:59Z"))
        .total();
    assert_eq!(later.len() as u64, all);
    assert!(all > visible, "{all} > {visible}");
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
        wait_until(&format!("request {sent} to finish"), || {
            fake.served_log().len() >= sent
        })
        .await;
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
        &(
            403,
            error_body(403, "Server under maintenance (backups), try again later")
        )
    );
    assert_eq!(
        results[7].as_ref().unwrap(),
        &(403, error_body(403, text::SIMULTANEOUS))
    );
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
        config.fault_kinds = vec![
            Fault::ServerError(500),
            Fault::Maintenance,
            Fault::Html(502),
            Fault::TruncatedJson,
        ];
        let fake = Wolkvox::start(config);
        for _ in 0..30 {
            let _ = get(&fake, &query(MORNING.0, MORNING.1)).await;
        }
        fake.served_log()
            .into_iter()
            .map(|r| (r.fault, r.status))
            .collect::<Vec<_>>()
    };
    let first = run().await;
    assert_eq!(first, run().await);
    let faulty = first.iter().filter(|(f, _)| f.is_some()).count();
    assert!((5..=25).contains(&faulty), "{faulty} faults in 30");
}

#[tokio::test]
async fn vendor_variants_can_be_switched_on() {
    let mut config = config();
    config.format.code_as_string = true;
    config.format.single_object_data = true;
    let fake = Wolkvox::start(config);
    let records = fake.simulator().records_local(
        NaiveDateTime::parse_from_str("2025-03-10 08:00:00", "%Y-%m-%d %H:%M:%S").unwrap(),
        NaiveDateTime::parse_from_str("2025-03-10 11:59:59", "%Y-%m-%d %H:%M:%S").unwrap(),
        None,
    );
    let lonely = records
        .iter()
        .find(|r| {
            records
                .iter()
                .filter(|o| o.local_date == r.local_date)
                .count()
                == 1
        })
        .unwrap();
    let second = lonely.local_date.format("%Y%m%d%H%M%S").to_string();
    let (status, body) = get(&fake, &query(&second, &second)).await.unwrap();
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["code"], "200");
    assert_eq!(v["data"]["conn_id"], lonely.conn_id.as_str());
    let (_, many) = get(&fake, &query(MORNING.0, MORNING.1)).await.unwrap();
    assert!(data(&many).len() > 1);
}

#[tokio::test]
async fn a_shifted_zone_writes_dates_outside_the_window() {
    let mut config = config();
    config.format.shift_hours = 2;
    let fake = Wolkvox::start(config);
    let (_, body) = get(&fake, &query("20250310090000", "20250310095959"))
        .await
        .unwrap();
    let rows = data(&body);
    assert!(!rows.is_empty());
    assert!(rows
        .iter()
        .all(|r| r["date"].as_str().unwrap().starts_with("2025-03-10 11:")));
}

#[tokio::test]
async fn fall_back_serves_both_passes_of_the_hour() {
    let mut config = WolkvoxConfig::bounded(t("2025-11-02T04:00:00Z"), t("2025-11-02T08:00:00Z"));
    config.sim.timezone = chrono_tz::America::New_York;
    config.sim.peak_per_agent_hour = 200.0;
    let fake = Wolkvox::start(config);
    let (_, body) = get(&fake, &query("20251102010000", "20251102015959"))
        .await
        .unwrap();
    let both = fake
        .truth_between::<TransfersTruth>(t("2025-11-02T05:00:00Z"), t("2025-11-02T06:59:59Z"))
        .total();
    assert!(both > 0);
    assert_eq!(data(&body).len() as u64, both);
}

#[test]
fn works_from_a_blocking_test_and_stops_on_drop() {
    use std::io::{Read, Write};
    let fake = Wolkvox::start(config());
    let address = fake.base_url().trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET /api/v2/reports_manager.php?{} HTTP/1.1\r\nHost: x\r\nwolkvox-token: {}\r\nConnection: close\r\n\r\n",
        query("20250309080000", "20250309100000"),
        fake.token()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 404 Not Found\r\n"),
        "{response}"
    );
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
        http.get(format!(
            "{}{}?api=token_info",
            fake.base_url(),
            wolkvox_api::INFO_PATH
        ))
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
        .get(format!(
            "{}{}?api=other",
            fake.base_url(),
            wolkvox_api::INFO_PATH
        ))
        .header(wolkvox_api::TOKEN_HEADER, fake.token())
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 400);
    let post = http.post(fake.report_url(&q)).send().await.unwrap();
    assert_eq!(post.status(), 405);
    let address = fake.base_url().trim_start_matches("http://").to_string();
    drop(fake);
    wait_until("the port closed", || {
        std::net::TcpStream::connect(&address).is_err()
    })
    .await;
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
    let (status, body) = get_with(
        &http,
        &fake,
        &query("20250310073000", "20250310083000"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        (status, body.as_str()),
        (
            200,
            r#"{"code":200,"error":null,"msg":"1 records were found","data":[{"conn_id":"a","date":"not a date"}]}"#
        )
    );
    let both = get_with(&http, &fake, &query(MORNING.0, MORNING.1), None)
        .await
        .unwrap();
    assert_eq!(data(&both.1).len(), 2);
    let none = get_with(
        &http,
        &fake,
        &query("20250311000000", "20250311010000"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(none, (404, error_body(404, text::NO_RECORDS)));
    let echoed = get_with(&http, &fake, "api=agent_13", Some("echo"))
        .await
        .unwrap();
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
    assert_eq!(
        get(&fake, &calls).await.unwrap(),
        (404, error_body(404, text::NO_RECORDS))
    );
    let legs = format!(
        "api=agent_13_1&date_ini={}&date_end={}",
        MORNING.0, MORNING.1
    );
    assert_eq!(get(&fake, &legs).await.unwrap().0, 200);
    fake.set_refuse_caller(true);
    assert_eq!(
        get(&fake, &legs).await.unwrap(),
        (403, error_body(403, CALLER_REFUSED))
    );
    let truth: CallsTruth = fake.truth();
    assert!(truth.total() > fake.truth::<TransfersTruth>().total());
    assert_eq!(truth.names.len(), 10);
}

/// agent_13 leaves the hidden share out; agent_12 counts it, and its truth says by how
/// much.
#[tokio::test]
async fn agent_12_counts_what_agent_13_hides() {
    let mut config = config();
    config.sim.hidden_share = 0.1;
    let fake = Wolkvox::start(config);
    let transfers = data(&get(&fake, &query(MORNING.0, MORNING.1)).await.unwrap().1);
    let totals_query = format!("api=agent_12&date_ini={}&date_end={}", MORNING.0, MORNING.1);
    let totals = data(&get(&fake, &totals_query).await.unwrap().1);
    let counted = |field: &str| -> u64 {
        totals
            .iter()
            .map(|t| t[field].as_str().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    let shown: TransfersTruth = fake.truth();
    let all: crate::TotalsTruth = fake.truth();
    let difference = all.beyond(&shown);
    assert_eq!(transfers.len() as u64, shown.total());
    assert_eq!(
        counted("transfer_calls") + counted("conference_calls"),
        shown.total() + difference.transfers + difference.conferences
    );
    assert!(
        difference.transfers > 0 && difference.conferences > 0,
        "{difference:?}"
    );
    let hidden = fake
        .simulator()
        .records_between(t("2025-03-10T13:00:00Z"), t("2025-03-10T17:00:00Z"))
        .into_iter()
        .filter(|r| fake.simulator().hidden(r))
        .collect::<Vec<_>>();
    assert_eq!(
        hidden.len() as u64,
        difference.transfers + difference.conferences
    );
    let served = fake.served_ids("agent_13");
    assert!(hidden.iter().all(|r| !served.contains(&r.conn_id)));
}
