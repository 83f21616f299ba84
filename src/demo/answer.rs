//! How the agent_13 endpoint answers a query, apart from HTTP: parameter checks, record
//! selection in operation-local time, the 60,000-record cap and the JSON bodies.

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, Timelike, Utc};

use super::simulator::{SimRecord, Simulator};

/// Records in one answer at most; the real API cuts the rest silently.
pub const MAX_RECORDS: usize = 60_000;
/// Longest `date_end - date_ini` accepted.
pub const MAX_RANGE_DAYS: i64 = 31;

// The texts of the vendor's "API response codes" page.
pub const NO_RECORDS: &str = "Validate dates entered";
pub const UNKNOWN_API: &str = "THE API YOU WANT TO CONSULT DOES NOT EXIST";
pub const BAD_REQUEST: &str = "SOME PARAMETERS ARE REQUIRED";
pub const TOKEN_MISSING: &str = "PLEASE ENTER THE WOLKVOX-TOKEN";
pub const QUOTA_EXCEEDED: &str = "TOKEN LIMIT EXCEEDED";
pub const SIMULTANEOUS: &str = "EXCEEDS THE LIMIT OF SIMULTANEOUS REQUESTS PER TOKEN (2)";
pub const INVALID_TOKEN: &str = "PLEASE VALIDATE TOKEN";
pub const MAINTENANCE: &str = "Server under maintenance (backups), try again later";

/// An HTTP status and JSON body, with the records it carries so a fake can keep the
/// ground truth of what it served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub records: Vec<SimRecord>,
    /// More records matched than [`MAX_RECORDS`].
    pub truncated: bool,
}

/// The variations seen across the vendor's reports, which a client must accept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Format {
    /// `"code":"200"` instead of `"code":200`.
    pub code_as_string: bool,
    /// `"data":{...}` instead of a one-element list.
    pub single_object_data: bool,
    /// Dates written this many hours off, as a server set to another zone would; the
    /// selection itself stays in operation-local time.
    pub shift_hours: i64,
}

/// A valid agent_13 query: both ends inclusive, operation-local.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    pub ini: NaiveDateTime,
    pub end: NaiveDateTime,
}

impl Query {
    /// `None` for anything the API answers with 400: unknown api, missing or malformed
    /// dates, an end before the start, a range over 31 days.
    pub fn parse(query: &str) -> Option<Query> {
        let (mut api, mut ini, mut end) = (None, None, None);
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match key {
                "api" => &mut api,
                "date_ini" => &mut ini,
                "date_end" => &mut end,
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        if api? != "agent_13" {
            return None;
        }
        let query = Query {
            ini: parse_date(ini?)?,
            end: parse_date(end?)?,
        };
        let range = query.end - query.ini;
        (range >= Duration::zero() && range <= Duration::days(MAX_RANGE_DAYS)).then_some(query)
    }
}

fn parse_date(value: &str) -> Option<NaiveDateTime> {
    if value.len() != 14 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDateTime::parse_from_str(value, "%Y%m%d%H%M%S").ok()
}

/// The answer to the query string at `now`: only records already visible count.
pub fn respond(sim: &Simulator, query: &str, now: DateTime<Utc>, format: &Format) -> Answer {
    match Query::parse(query) {
        Some(query) => {
            let (records, truncated) = select(sim, &query, now);
            let mut answer = records_answer(records, format);
            answer.truncated = truncated;
            answer
        }
        None => bad_request(),
    }
}

/// The records the API returns for `query` at `now`, sorted by date and cut at
/// [`MAX_RECORDS`]; the flag says whether anything was cut.
pub fn select(sim: &Simulator, query: &Query, now: DateTime<Utc>) -> (Vec<SimRecord>, bool) {
    let mut records = sim.records_local(query.ini, query.end, Some(now));
    records.retain(|r| r.visible_at <= now);
    let truncated = records.len() > MAX_RECORDS;
    records.truncate(MAX_RECORDS);
    (records, truncated)
}

/// 200 with the records, or 404 `Validate dates entered` when there are none.
pub fn records_answer(records: Vec<SimRecord>, format: &Format) -> Answer {
    if records.is_empty() {
        return Answer {
            body: error_body(404, NO_RECORDS, format.code_as_string),
            ..no_records()
        };
    }
    let mut body = String::with_capacity(128 + records.len() * 230);
    body.push_str("{\"code\":");
    body.push_str(if format.code_as_string {
        "\"200\""
    } else {
        "200"
    });
    let _ = write!(
        body,
        ",\"error\":null,\"msg\":\"{} records were found\",\"data\":",
        records.len()
    );
    if format.single_object_data && records.len() == 1 {
        push_record(&mut body, &records[0], format.shift_hours);
    } else {
        body.push('[');
        for (i, record) in records.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            push_record(&mut body, record, format.shift_hours);
        }
        body.push(']');
    }
    body.push('}');
    Answer {
        status: 200,
        body,
        records,
        truncated: false,
    }
}

/// An error answer in the vendor's shape: `{"code":S,"error":T,"msg":T,"data":[]}`.
pub fn error(status: u16, text: &str) -> Answer {
    Answer {
        status,
        body: error_body(status, text, false),
        records: Vec::new(),
        truncated: false,
    }
}

pub fn no_records() -> Answer {
    error(404, NO_RECORDS)
}

pub fn bad_request() -> Answer {
    error(400, BAD_REQUEST)
}

pub fn token_missing() -> Answer {
    error(401, TOKEN_MISSING)
}

pub fn quota_exceeded() -> Answer {
    error(403, QUOTA_EXCEEDED)
}

pub fn simultaneous() -> Answer {
    error(403, SIMULTANEOUS)
}

pub fn invalid_token() -> Answer {
    error(403, INVALID_TOKEN)
}

pub fn maintenance() -> Answer {
    error(403, MAINTENANCE)
}

fn error_body(status: u16, text: &str, code_as_string: bool) -> String {
    let mut body = String::with_capacity(64 + 2 * text.len());
    if code_as_string {
        let _ = write!(body, "{{\"code\":\"{status}\",\"error\":");
    } else {
        let _ = write!(body, "{{\"code\":{status},\"error\":");
    }
    push_str(&mut body, text);
    body.push_str(",\"msg\":");
    push_str(&mut body, text);
    body.push_str(",\"data\":[]}");
    body
}

fn push_record(body: &mut String, r: &SimRecord, shift_hours: i64) {
    body.push_str("{\"agent_name\":");
    push_str(body, &r.agent_name);
    body.push_str(",\"agent_id\":");
    push_str(body, &r.agent_id);
    body.push_str(",\"conn_id\":");
    push_str(body, &r.conn_id);
    let date = r
        .local_date
        .checked_add_signed(Duration::hours(shift_hours))
        .unwrap_or(r.local_date);
    let _ = write!(
        body,
        ",\"date\":\"{:04}-{:02}-{:02} {:02}:{:02}:{:02}\",\"telephone\":",
        date.year(),
        date.month(),
        date.day(),
        date.hour(),
        date.minute(),
        date.second()
    );
    push_str(body, &r.telephone);
    body.push_str(",\"type_interaction\":");
    push_str(body, r.interaction);
    let d = r.duration_secs;
    let _ = write!(
        body,
        ",\"time\":\"{:02}:{:02}:{:02}\"}}",
        d / 3600,
        d % 3600 / 60,
        d % 60
    );
}

/// Appends `text` as a JSON string literal.
fn push_str(body: &mut String, text: &str) {
    body.push('"');
    if !text.chars().any(|c| c == '"' || c == '\\' || c < ' ') {
        body.push_str(text);
    } else {
        for c in text.chars() {
            match c {
                '"' => body.push_str("\\\""),
                '\\' => body.push_str("\\\\"),
                '\n' => body.push_str("\\n"),
                '\r' => body.push_str("\\r"),
                '\t' => body.push_str("\\t"),
                c if c < ' ' => {
                    let _ = write!(body, "\\u{:04x}", c as u32);
                }
                c => body.push(c),
            }
        }
    }
    body.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::simulator::{Burst, SimConfig};

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn sim() -> Simulator {
        Simulator::new(SimConfig::bounded(
            t("2025-03-10T13:00:00Z"),
            t("2025-03-10T17:00:00Z"),
        ))
    }

    #[test]
    fn parses_only_what_the_api_accepts() {
        let ok = "api=agent_13&date_ini=20250310080000&date_end=20250310085959";
        let q = Query::parse(ok).unwrap();
        assert_eq!(q.end - q.ini, Duration::seconds(3599));
        for bad in [
            "",
            "api=agent_12&date_ini=20250310080000&date_end=20250310085959",
            "api=agent_13&date_ini=2025031008000&date_end=20250310085959",
            "api=agent_13&date_ini=20251310080000&date_end=20251310085959",
            "api=agent_13&date_ini=2025-03-10T0800&date_end=20250310085959",
            "api=agent_13&date_ini=20250310080000",
            "api=agent_13&date_ini=20250310090000&date_end=20250310085959",
            "api=agent_13&date_ini=20250101000000&date_end=20250201000001",
        ] {
            assert_eq!(Query::parse(bad), None, "{bad}");
        }
        let month = "api=agent_13&date_ini=20250101000000&date_end=20250201000000";
        assert!(Query::parse(month).is_some());
    }

    #[test]
    fn body_matches_the_vendor_shape() {
        let sim = sim();
        let now = t("2025-03-11T00:00:00Z");
        let q = "api=agent_13&date_ini=20250310080000&date_end=20250310100000";
        let answer = respond(&sim, q, now, &Format::default());
        assert_eq!(answer.status, 200);
        let v: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(v["code"], 200);
        assert!(v["error"].is_null());
        let data = v["data"].as_array().unwrap();
        assert_eq!(data.len(), answer.records.len());
        assert_eq!(
            v["msg"].as_str().unwrap(),
            format!("{} records were found", data.len())
        );
        for (row, record) in data.iter().zip(&answer.records) {
            let row = row.as_object().unwrap();
            assert_eq!(row.len(), 7);
            assert!(row.values().all(|v| v.is_string()));
            assert_eq!(row["conn_id"], record.conn_id.as_str());
            let d = record.duration_secs;
            let time = format!("{:02}:{:02}:{:02}", d / 3600, d % 3600 / 60, d % 60);
            assert_eq!(row["time"], time.as_str());
            let date = record.local_date.format("%Y-%m-%d %H:%M:%S").to_string();
            assert_eq!(row["date"], date.as_str());
        }
    }

    #[test]
    fn empty_window_is_404_with_the_vendor_body() {
        let q = "api=agent_13&date_ini=20240310080000&date_end=20240310100000";
        let answer = respond(&sim(), q, t("2025-03-11T00:00:00Z"), &Format::default());
        assert_eq!(answer.status, 404);
        assert_eq!(
            answer.body,
            r#"{"code":404,"error":"Validate dates entered","msg":"Validate dates entered","data":[]}"#
        );
    }

    #[test]
    fn variants_and_escaping() {
        let mut record =
            sim().records_between(t("2025-03-10T13:00:00Z"), t("2025-03-10T17:00:00Z"))[0].clone();
        record.agent_name = "Ana \"la\" O'Connor\\\n".to_string();
        record.duration_secs = 26 * 3600 + 61;
        let format = Format {
            code_as_string: true,
            single_object_data: true,
            shift_hours: 1,
        };
        let answer = records_answer(vec![record.clone()], &format);
        let v: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(v["code"], "200");
        assert_eq!(v["data"]["agent_name"], record.agent_name.as_str());
        assert_eq!(v["data"]["time"], "26:01:01");
        let shifted = (record.local_date + Duration::hours(1))
            .format("%Y-%m-%d %H:%M:%S")
            .to_string();
        assert_eq!(v["data"]["date"], shifted.as_str());
    }

    #[test]
    fn cuts_at_sixty_thousand() {
        let mut config = SimConfig::bounded(t("2025-03-10T13:00:00Z"), t("2025-03-10T14:00:00Z"));
        config.bursts.push(Burst {
            start: t("2025-03-10T13:20:00Z"),
            duration: Duration::minutes(5),
            records: MAX_RECORDS + 500,
        });
        let sim = Simulator::new(config);
        let query =
            Query::parse("api=agent_13&date_ini=20250310082000&date_end=20250310082459").unwrap();
        let (records, truncated) = select(&sim, &query, t("2025-03-11T00:00:00Z"));
        assert!(truncated);
        assert_eq!(records.len(), MAX_RECORDS);
        assert!(records
            .windows(2)
            .all(|w| w[0].local_date <= w[1].local_date));
    }
}
