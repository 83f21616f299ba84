//! The API's answers as bytes, apart from HTTP and from any report: the vendor's
//! envelope around rows, its error answers, `token_info`, and the JSON writers every
//! report's rows use (every value a string).

use std::fmt::Write as _;

use chrono::{Datelike, Duration, NaiveDateTime, Timelike};
use wolkvox_api::text;

/// An HTTP status and JSON body, with the ids of the rows it carries so the server can
/// keep the ground truth of what it served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    /// The id of each row (see [`Report::id`](crate::reports::Report::id)).
    pub ids: Vec<String>,
    /// More rows matched than [`RECORD_CAP`](wolkvox_api::RECORD_CAP).
    pub truncated: bool,
    /// In a truncated answer, the rows of its last second: a client reading on from
    /// that second gets them again.
    pub last_second: usize,
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

/// Writes one row of a report, its dates `shift_hours` off.
pub type WriteRow<T> = fn(&mut String, &T, i64);

/// 200 with the rows in the vendor's envelope, or the 404 "no records" when there are
/// none.
pub fn envelope<T>(
    rows: &[T],
    ids: Vec<String>,
    truncated: bool,
    format: &Format,
    write: WriteRow<T>,
) -> Answer {
    if rows.is_empty() {
        return Answer { body: error_body(404, text::NO_RECORDS, format.code_as_string), ..no_records() };
    }
    let mut body = String::with_capacity(128 + rows.len() * 240);
    body.push_str("{\"code\":");
    body.push_str(code_200(format));
    let _ = write!(body, ",\"error\":null,\"msg\":\"{} records were found\",\"data\":", rows.len());
    if format.single_object_data && rows.len() == 1 {
        write(&mut body, &rows[0], format.shift_hours);
    } else {
        body.push('[');
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            write(&mut body, row, format.shift_hours);
        }
        body.push(']');
    }
    body.push('}');
    Answer { status: 200, body, ids, truncated, last_second: 0 }
}

fn code_200(format: &Format) -> &'static str {
    if format.code_as_string {
        "\"200\""
    } else {
        "200"
    }
}

/// An error answer in the vendor's shape: `{"code":S,"error":T,"msg":T,"data":[]}`.
pub fn error(status: u16, text: &str) -> Answer {
    Answer {
        status,
        body: error_body(status, text, false),
        ids: Vec::new(),
        truncated: false,
        last_second: 0,
    }
}

pub fn no_records() -> Answer {
    error(404, text::NO_RECORDS)
}

/// The `token_info` answer: the day's limit and use, every value a string,
/// `available_consumption_options` what is left of the limit.
pub fn token_info(limit: u64, token_today: u64, all_today: u64, format: &Format) -> Answer {
    let row = format!(
        "{{\"token_limit\":\"{limit}\",\"token_use_today\":\"{token_today}\",\
         \"all_token_today\":\"{all_today}\",\"available_consumption_options\":\"{}\"}}",
        limit.saturating_sub(all_today)
    );
    let data = if format.single_object_data { row } else { format!("[{row}]") };
    Answer {
        status: 200,
        body: format!(
            "{{\"code\":{},\"error\":null,\"msg\":\"Token information\",\"data\":{data}}}",
            code_200(format)
        ),
        ids: Vec::new(),
        truncated: false,
        last_second: 0,
    }
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

/// Writes `"key":` then the value through `value`, after a comma unless `first`.
pub fn field(body: &mut String, first: bool, key: &str, value: impl FnOnce(&mut String)) {
    if !first {
        body.push(',');
    }
    push_str(body, key);
    body.push(':');
    value(body);
}

/// A date as the API writes it (`YYYY-MM-DD HH:MM:SS`), `shift_hours` off.
pub fn push_date(body: &mut String, date: NaiveDateTime, shift_hours: i64) {
    let date = date.checked_add_signed(Duration::hours(shift_hours)).unwrap_or(date);
    let _ = write!(
        body,
        "\"{:04}-{:02}-{:02} {:02}:{:02}:{:02}\"",
        date.year(),
        date.month(),
        date.day(),
        date.hour(),
        date.minute(),
        date.second()
    );
}

/// A duration as the API writes it (`HH:MM:SS`; hours may pass 24).
pub fn push_hms(body: &mut String, secs: u64) {
    let _ = write!(body, "\"{:02}:{:02}:{:02}\"", secs / 3600, secs % 3600 / 60, secs % 60);
}

/// Appends `text` as a JSON string literal.
pub fn push_str(body: &mut String, text: &str) {
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
