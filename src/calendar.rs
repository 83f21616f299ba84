//! Operation-local time: windows of whole seconds cut into requests (at most 31 days, no
//! gap, no overlap, no UTC-offset change inside one, so that a window's local bounds cover
//! exactly its instants), local days and their starts, and how far DST steps back.

use chrono::{DateTime, Days, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// The longest span one request may cover, both ends inclusive.
pub const MAX_SPAN: Duration = Duration::days(wolkvox_api::MAX_RANGE_DAYS);

/// An inclusive range of whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    pub fn seconds(&self) -> i64 {
        (self.end - self.start).num_seconds() + 1
    }

    /// The request's `date_ini` and `date_end`, in the operation's wall-clock time.
    pub fn local_bounds(&self, tz: Tz) -> (NaiveDateTime, NaiveDateTime) {
        (local(self.start, tz), local(self.end, tz))
    }

    /// Halves a window whose answer hit the record cap; `None` at one second.
    pub fn split(&self) -> Option<(Window, Window)> {
        let n = self.seconds();
        if n < 2 {
            return None;
        }
        let left_end = self.start + Duration::seconds(n / 2 - 1);
        Some((
            Window { start: self.start, end: left_end },
            Window { start: left_end + Duration::seconds(1), end: self.end },
        ))
    }
}

pub fn local(t: DateTime<Utc>, tz: Tz) -> NaiveDateTime {
    t.with_timezone(&tz).naive_local()
}

/// A local wall-clock time as an instant (the earlier one of a repeated DST hour).
pub fn instant(local: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    tz.from_local_datetime(&local).earliest().map_or_else(|| local.and_utc(), |t| t.with_timezone(&Utc))
}

/// Seconds since the epoch of a wall-clock time read as UTC: an ordering key only.
pub fn local_secs(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp()
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
        .find_map(|h| tz.from_local_datetime(&(midnight + Duration::hours(h))).earliest())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
}

/// The local day `day` as one window, both ends inclusive.
pub fn day_window(day: NaiveDate, tz: Tz) -> Window {
    Window { start: day_start(day, tz), end: day_start(day + Days::new(1), tz) - Duration::seconds(1) }
}

fn offset_secs(t: DateTime<Utc>, tz: Tz) -> i32 {
    tz.offset_from_utc_datetime(&t.naive_utc()).fix().local_minus_utc()
}

/// Cuts `[start, end]` (inclusive, whole seconds) into request windows.
pub fn plan(start: DateTime<Utc>, end: DateTime<Utc>, tz: Tz) -> Vec<Window> {
    let mut out = Vec::new();
    let mut cursor = start;
    let max_end_offset = MAX_SPAN - Duration::seconds(1);
    while cursor <= end {
        let mut w_end = (cursor + max_end_offset).min(end);
        if let Some(change) = first_offset_change(cursor, w_end, tz) {
            w_end = change - Duration::seconds(1);
        }
        out.push(Window { start: cursor, end: w_end });
        cursor = w_end + Duration::seconds(1);
    }
    out
}

/// The first instant in `(from, to]` whose UTC offset differs from `from`'s.
fn first_offset_change(from: DateTime<Utc>, to: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
    let base = offset_secs(from, tz);
    // Transitions are months apart; probing daily finds the first one in a 31-day span.
    let mut lo = from;
    loop {
        let next = (lo + Duration::days(1)).min(to);
        if offset_secs(next, tz) != base {
            // Bisect (lo, next] down to the second.
            let mut hi = next;
            while (hi - lo).num_seconds() > 1 {
                let mid = lo + Duration::seconds((hi - lo).num_seconds() / 2);
                if offset_secs(mid, tz) == base {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            return Some(hi);
        }
        if next >= to {
            return None;
        }
        lo = next;
    }
}

/// How far a zone's wall clock can step back (DST), so that remembered records are
/// kept long enough for a re-read of a repeated local hour.
pub fn max_backward_step(tz: Tz, around: DateTime<Utc>) -> Duration {
    let now = offset_secs(around, tz);
    let spread = [-183, 183]
        .into_iter()
        .map(|d| (offset_secs(around + Duration::days(d), tz) - now).abs())
        .max()
        .unwrap_or(0);
    Duration::seconds(i64::from(spread))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::{Bogota, New_York};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn assert_tiles(ws: &[Window], start: DateTime<Utc>, end: DateTime<Utc>, tz: Tz) {
        assert_eq!(ws.first().unwrap().start, start);
        assert_eq!(ws.last().unwrap().end, end);
        for pair in ws.windows(2) {
            assert_eq!(pair[0].end + Duration::seconds(1), pair[1].start);
        }
        for w in ws {
            assert!(w.start <= w.end);
            let (a, b) = w.local_bounds(tz);
            assert!(b - a < MAX_SPAN, "{w:?}");
            assert_eq!((b - a).num_seconds() + 1, w.seconds(), "offset changes inside {w:?}");
        }
    }

    #[test]
    fn long_ranges_are_cut_at_31_days() {
        let s = at("2026-01-01T05:00:00Z");
        let e = at("2026-03-15T04:59:59Z");
        let ws = plan(s, e, Bogota);
        assert_eq!(ws.len(), 3);
        assert_eq!(ws[0].seconds(), 31 * 86400);
        assert_tiles(&ws, s, e, Bogota);
    }

    #[test]
    fn dst_transitions_cut_windows() {
        let s = at("2026-10-20T00:00:00Z");
        let e = at("2026-11-10T00:00:00Z");
        let ws = plan(s, e, New_York);
        assert_eq!(ws.len(), 2);
        // Fall back on 2026-11-01 06:00 UTC.
        assert_eq!(ws[1].start, at("2026-11-01T06:00:00Z"));
        assert_tiles(&ws, s, e, New_York);
    }

    #[test]
    fn single_second_and_split() {
        let s = at("2026-01-01T00:00:00Z");
        let ws = plan(s, s, Bogota);
        assert_eq!(ws, vec![Window { start: s, end: s }]);
        assert!(ws[0].split().is_none());
        let w = Window { start: s, end: s + Duration::seconds(4) };
        let (l, r) = w.split().unwrap();
        assert_eq!((l.seconds(), r.seconds()), (2, 3));
        assert_eq!(l.end + Duration::seconds(1), r.start);
        assert!(plan(s, s - Duration::seconds(1), Bogota).is_empty());
    }

    #[test]
    fn days_roll_over_in_local_time() {
        // 04:59 UTC is still the previous day in Bogota (UTC-5).
        let t = at("2026-11-25T04:59:00Z");
        assert_eq!(local_day(t, Bogota), NaiveDate::from_ymd_opt(2026, 11, 24).unwrap());
        assert_eq!(next_local_midnight(t, Bogota), at("2026-11-25T05:00:00Z"));
        let w = day_window(local_day(t, Bogota), Bogota);
        assert_eq!((w.start, w.seconds()), (at("2026-11-24T05:00:00Z"), 86_400));
    }

    #[test]
    fn backward_step() {
        assert_eq!(max_backward_step(Bogota, at("2026-06-01T00:00:00Z")), Duration::zero());
        assert_eq!(max_backward_step(New_York, at("2026-06-01T00:00:00Z")), Duration::hours(1));
    }
}
