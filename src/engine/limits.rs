//! The API's limits: request pacing (governor), one request in flight per token, and
//! the daily quota counted per operation-local day with a reserve for other clients.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use xxhash_rust::xxh3::xxh3_128;

use crate::config::Token;

/// A pacer allowing `per_second` requests a second (fractions allowed), no bursts.
pub fn pacer(per_second: f64) -> DefaultDirectRateLimiter {
    let quota = if per_second >= 1.0 {
        Quota::per_second(NonZeroU32::new(per_second.round() as u32).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::MIN)
    } else {
        Quota::with_period(Duration::from_secs_f64(1.0 / per_second))
            .expect("period is positive")
            .allow_burst(NonZeroU32::MIN)
    };
    RateLimiter::direct(quota)
}

/// One lock per distinct token, shared by every operation configured with it, so the
/// same token is never used by two requests at once.
#[derive(Debug, Default)]
pub struct TokenLocks {
    locks: HashMap<u128, Arc<tokio::sync::Mutex<()>>>,
}

impl TokenLocks {
    pub fn get(&mut self, token: &Token) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .entry(xxh3_128(token.expose().as_bytes()))
            .or_default()
            .clone()
    }
}

/// Requests this exporter may spend in a day: the limit less the reserve.
pub fn daily_allowance(limit: u64, reserve: f64) -> u64 {
    ((limit as f64) * (1.0 - reserve)).floor() as u64
}

pub fn local_day(now: DateTime<Utc>, tz: Tz) -> NaiveDate {
    now.with_timezone(&tz).date_naive()
}

/// The instant the operation's next local day begins.
pub fn next_local_midnight(now: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    day_start(local_day(now, tz) + Days::new(1), tz)
}

/// The first instant of a local day (a zone may skip its midnight: DST).
pub fn day_start(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
    (0..4)
        .find_map(|h| {
            tz.from_local_datetime(&(midnight + chrono::Duration::hours(h)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowance_keeps_the_reserve() {
        assert_eq!(daily_allowance(1000, 0.1), 900);
        assert_eq!(daily_allowance(1000, 0.0), 1000);
        assert_eq!(daily_allowance(3000, 0.25), 2250);
    }

    #[test]
    fn day_rolls_over_in_local_time() {
        let tz = chrono_tz::America::Bogota;
        // 04:59 UTC is still the previous day in Bogota (UTC-5).
        let t = DateTime::parse_from_rfc3339("2026-11-25T04:59:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            local_day(t, tz),
            NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
        );
        assert_eq!(
            next_local_midnight(t, tz).to_rfc3339(),
            "2026-11-25T05:00:00+00:00"
        );
        let mut d = crate::store::DailyUse::new(NaiveDate::from_ymd_opt(2026, 11, 24).unwrap());
        d.used = 900;
        assert!(!d.may_request(local_day(t, tz), 900));
        d.used = 10;
        d.exhausted = true;
        assert!(!d.may_request(local_day(t, tz), 900));
        assert!(d.may_request(NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(), 900));
        assert_eq!(d.used, 0);
    }

    #[test]
    fn same_token_same_lock() {
        let mut locks = TokenLocks::default();
        let a = locks.get(&Token::new("x"));
        let b = locks.get(&Token::new("x"));
        let c = locks.get(&Token::new("y"));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
    }
}
