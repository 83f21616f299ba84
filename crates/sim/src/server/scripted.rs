//! Scripted answers, for what the simulated operation cannot produce: a test-supplied
//! function of the request replies (hostile record bodies, error texts, echoed
//! secrets), and a schedule serves records by window whatever their own fields say.

use chrono::NaiveDateTime;
use wolkvox_api::{text, RECORD_CAP};

use super::log::Request;
use crate::answer;

/// A scripted answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply { status, content_type: "application/json; charset=utf-8", body: body.into() }
    }

    pub fn html(status: u16, body: &str) -> Reply {
        Reply { status, content_type: "text/html; charset=utf-8", body: body.as_bytes().to_vec() }
    }

    /// The vendor's error shape: `{"code":S,"error":T,"msg":T,"data":[]}`.
    pub fn error(status: u16, text: &str) -> Reply {
        Reply::json(status, answer::error(status, text).body)
    }

    /// 200 with these record objects (already JSON) in the vendor's envelope, or the
    /// 404 "no records" answer when there are none.
    pub fn records<'a>(records: impl IntoIterator<Item = &'a str>) -> Reply {
        let records: Vec<&str> = records.into_iter().collect();
        let ids = Vec::new();
        let write: answer::WriteRow<&str> = |body, record, _| body.push_str(record);
        let answer = answer::envelope(&records, ids, false, &Default::default(), write);
        Reply::json(answer.status, answer.body)
    }
}

/// Records served by window: each goes to every request whose local `[date_ini,
/// date_end]` holds its `serve_at`, whatever its own `date` field says.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    /// Sorted by `serve_at`.
    entries: Vec<(NaiveDateTime, String)>,
}

impl Schedule {
    pub fn new(mut entries: Vec<(NaiveDateTime, String)>) -> Schedule {
        entries.sort_by_key(|e| e.0);
        Schedule { entries }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The answer to a request: its records in `serve_at` order, cut at the API's cap.
    pub fn reply(&self, request: &Request) -> Reply {
        let (Some(ini), Some(end)) = (request.ini, request.end) else {
            return Reply::error(400, text::BAD_REQUEST);
        };
        let from = self.entries.partition_point(|e| e.0 < ini);
        let to = self.entries.partition_point(|e| e.0 <= end);
        let slice = &self.entries[from..to.max(from)];
        Reply::records(slice.iter().take(RECORD_CAP).map(|e| e.1.as_str()))
    }
}
