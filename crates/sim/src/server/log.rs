//! What the server keeps of the requests it gets: each request and what became of it,
//! the ids of the rows it served per report, and the requests counted per
//! operation-local day.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use super::config::Fault;
use crate::answer::Answer;
use crate::reports::{params, parse_date};

/// One request as it arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// 0 for the first request.
    pub number: u64,
    /// The server's clock when it arrived.
    pub received_at: DateTime<Utc>,
    pub path: String,
    pub query: String,
    /// The `api=` asked for, when given.
    pub api: Option<String>,
    /// `date_ini` and `date_end`, when they parse (even in a refused query).
    pub ini: Option<NaiveDateTime>,
    pub end: Option<NaiveDateTime>,
    /// The `wolkvox-token` header, when sent.
    pub token: Option<String>,
}

impl Request {
    pub(crate) fn new(
        number: u64,
        received_at: DateTime<Utc>,
        path: &str,
        query: &str,
        token: Option<String>,
    ) -> Request {
        let (api, ini, end) = params(query);
        Request {
            number,
            received_at,
            path: path.to_owned(),
            query: query.to_owned(),
            api: api.map(str::to_owned),
            ini: ini.and_then(parse_date),
            end: end.and_then(parse_date),
            token,
        }
    }

    /// `date_end - date_ini` in days, when both parse.
    pub fn range_days(&self) -> Option<f64> {
        Some((self.end? - self.ini?).num_seconds() as f64 / 86_400.0)
    }
}

/// A request and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Served {
    pub request: Request,
    /// `None` when no answer was written (a reset, or the client left first).
    pub status: Option<u16>,
    pub fault: Option<Fault>,
    /// Rows in a complete, parseable 200 answer.
    pub records: usize,
    /// More rows matched than the answer holds (the cap).
    pub truncated: bool,
    /// In a truncated answer, the rows of its last second.
    pub last_second: usize,
    /// It arrived while another request on the token was in flight.
    pub concurrent: bool,
}

impl Served {
    pub(crate) fn new(request: Request) -> Served {
        Served {
            request,
            status: None,
            fault: None,
            records: 0,
            truncated: false,
            last_second: 0,
            concurrent: false,
        }
    }

    /// Whether a client got no usable answer: none at all, an HTML or cut body, or any
    /// error status but the 404 "no records".
    pub fn failed(&self) -> bool {
        !matches!(self.status, Some(200 | 404))
            || matches!(self.fault, Some(Fault::Html(_) | Fault::TruncatedJson))
    }
}

/// The log, the served ids and the day counts.
#[derive(Debug, Default)]
pub(crate) struct Records {
    keep: bool,
    log: Mutex<Vec<Served>>,
    /// Ids of the rows sent in complete 200 answers, per `api`.
    served: Mutex<HashMap<String, HashSet<String>>>,
    daily: Mutex<HashMap<NaiveDate, u64>>,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Records {
    pub fn new(keep: bool) -> Records {
        Records { keep, ..Records::default() }
    }

    pub fn push(&self, entry: Served) {
        if self.keep {
            lock(&self.log).push(entry);
        }
    }

    /// Notes a complete 200 answer's rows in `entry` and in the served ids.
    pub fn served(&self, entry: &mut Served, answer: &Answer) {
        if answer.status != 200 {
            return;
        }
        entry.records = answer.ids.len();
        entry.truncated = answer.truncated;
        entry.last_second = answer.last_second;
        if self.keep {
            let api = entry.request.api.clone().unwrap_or_default();
            lock(&self.served).entry(api).or_default().extend(answer.ids.iter().cloned());
        }
    }

    /// Counts a request on its operation-local day; the day's count with it.
    pub fn count_day(&self, day: NaiveDate) -> u64 {
        let mut daily = lock(&self.daily);
        let used = daily.entry(day).or_insert(0);
        *used += 1;
        *used
    }

    pub fn day(&self, day: NaiveDate) -> u64 {
        lock(&self.daily).get(&day).copied().unwrap_or(0)
    }

    pub fn log(&self) -> Vec<Served> {
        lock(&self.log).clone()
    }

    /// Applies `f` to the log without copying it.
    pub fn with_log<T>(&self, f: impl FnOnce(&[Served]) -> T) -> T {
        f(&lock(&self.log))
    }

    pub fn served_ids(&self, api: &str) -> HashSet<String> {
        lock(&self.served).get(api).cloned().unwrap_or_default()
    }
}
