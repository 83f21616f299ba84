//! How the report endpoint answers a query, apart from HTTP: parameter checks, row
//! selection in operation-local time for each report, the 60,000-row cap and the JSON
//! bodies in the vendor's shape.

mod rows;

use std::fmt::Write as _;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};

use super::simulator::{SimRecord, Simulator};
pub use rows::{agent_totals, AgentTotal};

/// Rows in one answer at most; the real API cuts the rest silently.
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

/// An HTTP status and JSON body, with the ids of the rows it carries so a fake can keep
/// the ground truth of what it served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    /// The conn_id (cdr_1, agent_13), leg id (agent_13_1) or agent id (agent_12) of
    /// each row.
    pub ids: Vec<String>,
    /// More rows matched than [`MAX_RECORDS`].
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

/// The reports the simulated server knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    Agent13,
    Cdr1,
    Agent13_1,
    Agent12,
}

impl Api {
    pub fn parse(name: &str) -> Option<Api> {
        Some(match name {
            "agent_13" => Api::Agent13,
            "cdr_1" => Api::Cdr1,
            "agent_13_1" => Api::Agent13_1,
            "agent_12" => Api::Agent12,
            _ => return None,
        })
    }
}

/// A valid query: both ends inclusive, operation-local.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    pub api: Api,
    pub ini: NaiveDateTime,
    pub end: NaiveDateTime,
}

impl Query {
    /// `None` for anything the API answers with 400: unknown api, missing or malformed
    /// dates, an end before the start, a range over 31 days.
    pub fn parse(query: &str) -> Option<Query> {
        let (api, ini, end) = params(query);
        let query = Query {
            api: Api::parse(api?)?,
            ini: parse_date(ini?)?,
            end: parse_date(end?)?,
        };
        let range = query.end - query.ini;
        (range >= Duration::zero() && range <= Duration::days(MAX_RANGE_DAYS)).then_some(query)
    }

    /// The 400 answer to a query [`Query::parse`] refuses.
    pub fn refusal(query: &str) -> Answer {
        match params(query).0.map(Api::parse) {
            Some(None) => error(400, UNKNOWN_API),
            _ => error(400, BAD_REQUEST),
        }
    }
}

/// `api`, `date_ini` and `date_end`, each its first occurrence.
fn params(query: &str) -> (Option<&str>, Option<&str>, Option<&str>) {
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
    (api, ini, end)
}

fn parse_date(value: &str) -> Option<NaiveDateTime> {
    if value.len() != 14 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDateTime::parse_from_str(value, "%Y%m%d%H%M%S").ok()
}

/// The answer to the query string at `now`: only rows already visible count.
pub fn respond(sim: &Simulator, query: &str, now: DateTime<Utc>, format: &Format) -> Answer {
    match Query::parse(query) {
        Some(q) => answer(sim, &q, now, format, |_| true),
        None => Query::refusal(query),
    }
}

/// The answer to a valid query, with agent_13 rows for which `keep` is false left out
/// (a fake can drop them while agent_12 still counts them).
pub fn answer(
    sim: &Simulator,
    q: &Query,
    now: DateTime<Utc>,
    format: &Format,
    keep: impl Fn(&SimRecord) -> bool,
) -> Answer {
    match q.api {
        Api::Agent13 => {
            let rows = sim.records_visible(q.ini, q.end, now, MAX_RECORDS, keep);
            let (rows, truncated) = cut(rows);
            let mut a = records_answer(rows, format);
            a.truncated = truncated;
            a
        }
        Api::Cdr1 => {
            let (rows, truncated) = cut(sim.calls_visible(q.ini, q.end, now, MAX_RECORDS));
            let ids = rows.iter().map(|c| c.conn_id.clone()).collect();
            envelope(&rows, ids, truncated, format, rows::push_call)
        }
        Api::Agent13_1 => {
            let (rows, truncated) = cut(sim.legs_visible(q.ini, q.end, now, MAX_RECORDS));
            let ids = rows.iter().map(|l| l.leg_id.clone()).collect();
            envelope(&rows, ids, truncated, format, rows::push_leg)
        }
        Api::Agent12 => {
            let records = sim.records_visible(q.ini, q.end, now, usize::MAX, |_| true);
            let totals = agent_totals(&records);
            let ids = totals.iter().map(|t| t.agent_id.clone()).collect();
            envelope(&totals, ids, false, format, rows::push_total)
        }
    }
}

/// Rows cut at [`MAX_RECORDS`], and whether anything was cut.
fn cut<T>(mut rows: Vec<T>) -> (Vec<T>, bool) {
    let truncated = rows.len() > MAX_RECORDS;
    rows.truncate(MAX_RECORDS);
    (rows, truncated)
}

/// The agent_13 records the API returns for `query` at `now`.
pub fn select(sim: &Simulator, query: &Query, now: DateTime<Utc>) -> (Vec<SimRecord>, bool) {
    cut(sim.records_visible(query.ini, query.end, now, MAX_RECORDS, |_| true))
}

/// 200 with the agent_13 records, or 404 `Validate dates entered` when there are none.
pub fn records_answer(records: Vec<SimRecord>, format: &Format) -> Answer {
    let ids = records.iter().map(|r| r.conn_id.clone()).collect();
    envelope(&records, ids, false, format, rows::push_record)
}

/// 200 with the rows in the vendor's envelope, or the 404 when there are none.
fn envelope<T>(
    rows: &[T],
    ids: Vec<String>,
    truncated: bool,
    format: &Format,
    push: fn(&mut String, &T, i64),
) -> Answer {
    if rows.is_empty() {
        return Answer {
            body: error_body(404, NO_RECORDS, format.code_as_string),
            ..no_records()
        };
    }
    let mut body = String::with_capacity(128 + rows.len() * 240);
    body.push_str("{\"code\":");
    body.push_str(if format.code_as_string {
        "\"200\""
    } else {
        "200"
    });
    let _ = write!(
        body,
        ",\"error\":null,\"msg\":\"{} records were found\",\"data\":",
        rows.len()
    );
    if format.single_object_data && rows.len() == 1 {
        push(&mut body, &rows[0], format.shift_hours);
    } else {
        body.push('[');
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            push(&mut body, row, format.shift_hours);
        }
        body.push(']');
    }
    body.push('}');
    Answer {
        status: 200,
        body,
        ids,
        truncated,
    }
}

/// An error answer in the vendor's shape: `{"code":S,"error":T,"msg":T,"data":[]}`.
pub fn error(status: u16, text: &str) -> Answer {
    Answer {
        status,
        body: error_body(status, text, false),
        ids: Vec::new(),
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

/// The `token_info` answer (`information.php?api=token_info`): the day's limit and use,
/// every value a string, `available_consumption_options` what is left of the limit.
pub fn token_info(limit: u64, token_today: u64, all_today: u64, format: &Format) -> Answer {
    let row = format!(
        "{{\"token_limit\":\"{limit}\",\"token_use_today\":\"{token_today}\",\
         \"all_token_today\":\"{all_today}\",\"available_consumption_options\":\"{}\"}}",
        limit.saturating_sub(all_today)
    );
    let code = if format.code_as_string {
        "\"200\""
    } else {
        "200"
    };
    let data = if format.single_object_data {
        row
    } else {
        format!("[{row}]")
    };
    Answer {
        status: 200,
        body: format!(
            "{{\"code\":{code},\"error\":null,\"msg\":\"Token information\",\"data\":{data}}}"
        ),
        ids: Vec::new(),
        truncated: false,
    }
}

fn error_body(status: u16, text: &str, code_as_string: bool) -> String {
    let mut body = String::with_capacity(64 + 2 * text.len());
    if code_as_string {
        let _ = write!(body, "{{\"code\":\"{status}\",\"error\":");
    } else {
        let _ = write!(body, "{{\"code\":{status},\"error\":");
    }
    rows::push_str(&mut body, text);
    body.push_str(",\"msg\":");
    rows::push_str(&mut body, text);
    body.push_str(",\"data\":[]}");
    body
}

#[cfg(test)]
mod tests;
