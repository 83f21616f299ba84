//! The simulated Wolkvox seen through a plain HTTP client: what it answers and the
//! truth it reports, the limits it enforces, the faults it injects, and how it starts
//! and stops. The helpers are here, the tests in the two modules.

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
    reqwest::Client::builder().no_proxy().timeout(timeout).build().unwrap()
}

/// GET with the fake's token; the status and body, or the transport error.
async fn get(fake: &Wolkvox, query: &str) -> Result<(u16, String), reqwest::Error> {
    get_with(&client(Duration::from_secs(5)), fake, query, Some(fake.token())).await
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

mod answers;
mod limits;
