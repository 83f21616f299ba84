//! Every report the simulated Wolkvox answers, one module each: which rows a window
//! holds, how a row is written and identified, and the ground truth a correct exporter
//! counts from those rows. A new report is one module here and one line in [`REPORTS`].

pub mod agent_12;
pub mod agent_13;
pub mod agent_13_1;
pub mod cdr_1;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use wolkvox_api::{text, MAX_RANGE_DAYS, PARAM_FORMAT, RECORD_CAP};

use crate::answer::{self, envelope, Answer, Format};
use crate::model::Simulator;

/// One report's answer: the rows of a window, how each is written and what identifies
/// it. The envelope, the cap and the errors are the same for every report.
pub trait Report {
    /// The report's `api=`.
    const API: &'static str;
    type Row;
    /// The first `cap + 1` rows, by local date, of those whose operation-local date is in
    /// `[query.ini, query.end]` and that the API shows at `now`.
    fn rows(model: &Simulator, query: &Query, now: DateTime<Utc>, cap: usize) -> Vec<Self::Row>;
    /// What identifies a row in the served-ids log (a conn_id, a leg id, an agent id).
    fn id(row: &Self::Row) -> &str;
    /// The row's operation-local date, when it has one.
    fn date(_row: &Self::Row) -> Option<chrono::NaiveDateTime> {
        None
    }
    /// Writes the row as the vendor does, every value a string, dates `shift_hours` off.
    fn write(body: &mut String, row: &Self::Row, shift_hours: i64);
}

/// A report's ground truth: what a correct exporter counts from the rows of the
/// instants `[from, to]`, worked out here apart from the exporter's code.
pub trait Truth: Sized {
    fn between(model: &Simulator, from: DateTime<Utc>, to: DateTime<Utc>) -> Self;
}

type Answerer = fn(&Simulator, &Query, DateTime<Utc>, &Format) -> Answer;

/// The registry: every report the server answers, by `api=`.
const REPORTS: [(&str, Answerer); 4] = [
    (<agent_13::Transfers as Report>::API, answer_of::<agent_13::Transfers>),
    (<cdr_1::Calls as Report>::API, answer_of::<cdr_1::Calls>),
    (<agent_13_1::Legs as Report>::API, answer_of::<agent_13_1::Legs>),
    (<agent_12::Totals as Report>::API, answer_of::<agent_12::Totals>),
];

/// The `api=` of every report the server answers.
pub fn names() -> impl Iterator<Item = &'static str> {
    REPORTS.iter().map(|r| r.0)
}

/// A valid report query: both ends inclusive, operation-local.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    /// A registered report's `api=`.
    pub api: &'static str,
    pub ini: NaiveDateTime,
    pub end: NaiveDateTime,
}

impl Query {
    /// `None` for anything the API answers with 400: an unknown report, missing or
    /// malformed dates, an end before the start, a range over 31 days.
    pub fn parse(query: &str) -> Option<Query> {
        let (api, ini, end) = params(query);
        let api = api?;
        let query = Query {
            api: REPORTS.iter().find(|r| r.0 == api)?.0,
            ini: parse_date(ini?)?,
            end: parse_date(end?)?,
        };
        let range = query.end - query.ini;
        (range >= Duration::zero() && range <= Duration::days(MAX_RANGE_DAYS)).then_some(query)
    }

    /// The 400 answer to a query [`Query::parse`] refuses.
    pub fn refusal(query: &str) -> Answer {
        match params(query).0 {
            Some(api) if !names().any(|known| known == api) => answer::error(400, text::UNKNOWN_API),
            _ => answer::error(400, text::BAD_REQUEST),
        }
    }
}

/// `api`, `date_ini` and `date_end`, each its first occurrence.
pub(crate) fn params(query: &str) -> (Option<&str>, Option<&str>, Option<&str>) {
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

/// A `date_ini`/`date_end` value: exactly 14 digits of a valid date.
pub(crate) fn parse_date(value: &str) -> Option<NaiveDateTime> {
    if value.len() != 14 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDateTime::parse_from_str(value, PARAM_FORMAT).ok()
}

/// The answer to a report's query string at `now`: only rows already visible count.
pub fn respond(model: &Simulator, query: &str, now: DateTime<Utc>, format: &Format) -> Answer {
    match Query::parse(query) {
        Some(q) => answer(model, &q, now, format),
        None => Query::refusal(query),
    }
}

/// The answer to a valid query at `now`.
pub fn answer(model: &Simulator, query: &Query, now: DateTime<Utc>, format: &Format) -> Answer {
    match REPORTS.iter().find(|r| r.0 == query.api) {
        Some((_, answer)) => answer(model, query, now, format),
        None => answer::error(400, text::UNKNOWN_API),
    }
}

/// A report's answer: its rows cut at the cap, in the envelope.
fn answer_of<R: Report>(model: &Simulator, query: &Query, now: DateTime<Utc>, format: &Format) -> Answer {
    let mut rows = R::rows(model, query, now, RECORD_CAP);
    let truncated = rows.len() > RECORD_CAP;
    rows.truncate(RECORD_CAP);
    let mut answer = page::<R>(&rows, format);
    answer.truncated = truncated;
    if truncated {
        let last = rows.last().and_then(R::date);
        answer.last_second = rows.iter().rev().take_while(|r| R::date(r) == last).count();
    }
    answer
}

/// These rows of report `R` as one answer (200, or the 404 when there are none),
/// whatever their number: for fixtures that need a body without a server.
pub fn page<R: Report>(rows: &[R::Row], format: &Format) -> Answer {
    let ids = rows.iter().map(|r| R::id(r).to_owned()).collect();
    envelope(rows, ids, false, format, R::write)
}

#[cfg(test)]
mod tests;
