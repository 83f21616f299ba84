//! The exporter's own figures: per report (requests, errors by reason, pages, rows,
//! splits, the watermark) and per operation (the day's request count).

use chrono::{DateTime, NaiveDate, Utc};
use enum_map::EnumMap;
use serde::{Deserialize, Serialize};

use crate::reports::histogram::Histogram;
use crate::vocab::{ErrorReason, InvalidReason};

/// Buckets of `wolkvox_api_request_duration_seconds`.
pub const API_LATENCY_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// One report's health within an operation.
#[derive(Debug, Clone)]
pub struct ReportHealth {
    /// Whether the report's last cycle succeeded.
    pub up: bool,
    /// Whether the report has finished a first cycle since the start, either way.
    pub cycled: bool,
    /// Whether it waits because what is left of today's allowance is kept for the
    /// reports before it.
    pub paused: bool,
    pub last_success: Option<DateTime<Utc>>,
    /// Every row dated before this instant has been fetched at least once.
    pub watermark: Option<DateTime<Utc>>,
    pub requests: u64,
    pub errors: EnumMap<ErrorReason, u64>,
    pub empty_responses: u64,
    pub latency: Histogram,
    pub received: u64,
    pub duplicate: u64,
    pub invalid: EnumMap<InvalidReason, u64>,
    /// Rows counted more than two polls and the delay after their date.
    pub late: u64,
    pub splits: u64,
}

impl Default for ReportHealth {
    fn default() -> Self {
        ReportHealth {
            up: false,
            cycled: false,
            paused: false,
            last_success: None,
            watermark: None,
            requests: 0,
            errors: EnumMap::default(),
            empty_responses: 0,
            latency: Histogram::new(&API_LATENCY_BUCKETS),
            received: 0,
            duplicate: 0,
            invalid: EnumMap::default(),
            late: 0,
            splits: 0,
        }
    }
}

/// Requests spent in the operation's current local day; persisted so a restart does
/// not forget what the day already cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyUse {
    pub day: NaiveDate,
    pub used: u64,
    /// Set when the API answered "token limit exceeded": nothing more today.
    pub exhausted: bool,
}

impl DailyUse {
    pub fn new(day: NaiveDate) -> Self {
        DailyUse { day, used: 0, exhausted: false }
    }

    /// Today's count: a new one when `today` is another day.
    pub fn on(&mut self, today: NaiveDate) -> &mut Self {
        if self.day != today {
            *self = DailyUse::new(today);
        }
        self
    }

    /// Whether another request fits in today's allowance.
    pub fn may_request(&mut self, today: NaiveDate, allowance: u64) -> bool {
        let today = self.on(today);
        !today.exhausted && today.used < allowance
    }
}
