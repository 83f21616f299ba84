//! How many rows a report holds per hour of the operation's local day, learned from
//! every page read and kept in the state. Where the API sends full pages out of date
//! order (so that a page cannot be read on from its last second), a catch-up asks for
//! windows expected to carry about [`TARGET_ROWS`] each instead of hitting the cap.

use chrono::{DateTime, Duration, NaiveDateTime, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::calendar::{local, Window};

/// Rows a planned window is expected to carry at most: 13% under the cap, room for the
/// estimate's error (a history's hours vary by a few percent from one day to the next).
const TARGET_ROWS: f64 = 52_000.0;
/// Weight of a new observation of an hour of the day.
const LEARNING: f64 = 0.3;

/// Rows per hour for each local hour of the day, `None` until seen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Density {
    pub per_hour: Vec<Option<f64>>,
    /// The API sent a full page out of date order: windows are planned from the rows per
    /// hour, since they cannot be read on from a page's last second.
    #[serde(default)]
    pub unordered: bool,
}

impl Density {
    /// Learns from the rows' local `dates` of `[w.start, until)`: a window read whole, or
    /// the prefix of one that a cut page in date order covers.
    pub fn learn(&mut self, w: Window, until: DateTime<Utc>, dates: &[NaiveDateTime], tz: Tz) {
        self.per_hour.resize(24, None);
        let mut covered = [0f64; 24];
        for (t, stop, h) in hours(w.start, until.min(w.end + Duration::seconds(1)), tz) {
            covered[h] += (stop - t).num_seconds() as f64;
        }
        let mut rows = [0f64; 24];
        for d in dates {
            rows[d.hour() as usize] += 1.0;
        }
        for h in 0..24 {
            // Whole hours teach the most; a few minutes of an hour teach little.
            if covered[h] < 60.0 {
                continue;
            }
            let seen = rows[h] * 3600.0 / covered[h];
            let weight = LEARNING * (covered[h] / 3600.0).min(1.0);
            let slot = &mut self.per_hour[h];
            *slot = Some(slot.map_or(seen, |old| old + weight * (seen - old)));
        }
    }

    /// Rows an hour at local hour `h`: as learned, or while `h` has not been seen the
    /// mean of the hours that have (a first catch-up learns from its first cut page,
    /// which rarely spans a whole day); `None` while no hour is known.
    fn rate(&self, h: usize) -> Option<f64> {
        if let Some(Some(rate)) = self.per_hour.get(h) {
            return Some(*rate);
        }
        let known: Vec<f64> = self.per_hour.iter().flatten().copied().collect();
        (!known.is_empty()).then(|| known.iter().sum::<f64>() / known.len() as f64)
    }

    /// The rows expected in `[from, to]`; `None` while no hour of the day is known.
    pub fn expected(&self, from: DateTime<Utc>, to: DateTime<Utc>, tz: Tz) -> Option<f64> {
        hours(from, to + Duration::seconds(1), tz)
            .map(|(t, stop, h)| Some(self.rate(h)? * (stop - t).num_seconds() as f64 / 3600.0))
            .sum()
    }

    /// Cuts `w` into the fewest consecutive windows each expected to carry at most
    /// [`TARGET_ROWS`], all expected to carry the same; `w` whole while no hour's
    /// density is known.
    pub fn cut(&self, w: Window, tz: Tz) -> Vec<Window> {
        let Some(total) = self.expected(w.start, w.end, tz) else {
            return vec![w];
        };
        let parts = (total / TARGET_ROWS).ceil().max(1.0) as usize;
        if parts == 1 {
            return vec![w];
        }
        let share = total / parts as f64;
        let mut out = Vec::with_capacity(parts);
        let mut start = w.start;
        let mut carried = 0.0;
        let mut stretches = hours(w.start, w.end + Duration::seconds(1), tz);
        while out.len() + 1 < parts {
            let Some((t, stop, h)) = stretches.next() else { break };
            let rate = self.rate(h).unwrap_or(0.0);
            let here = rate * (stop - t).num_seconds() as f64 / 3600.0;
            if carried + here >= share && rate > 0.0 {
                // The second inside this stretch where the share is reached.
                let secs = ((share - carried) / rate * 3600.0).ceil() as i64;
                let end = (t + Duration::seconds(secs.max(1)) - Duration::seconds(1)).min(w.end);
                out.push(Window { start, end });
                start = end + Duration::seconds(1);
                carried = 0.0;
                stretches = hours(start, w.end + Duration::seconds(1), tz);
                continue;
            }
            carried += here;
        }
        if start <= w.end {
            out.push(Window { start, end: w.end });
        }
        out
    }
}

/// `[from, to)` in stretches that each lie within one local hour: (start, end, hour).
fn hours(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tz: Tz,
) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>, usize)> {
    let mut t = from;
    std::iter::from_fn(move || {
        let l = local(t, tz);
        let next_hour = t + Duration::seconds(3600 - i64::from(l.num_seconds_from_midnight() % 3600));
        let start = std::mem::replace(&mut t, next_hour.min(to));
        (start < to).then_some((start, t, l.hour() as usize))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    const TZ: Tz = chrono_tz::America::Bogota;

    /// A flat day of 10,000 rows an hour, learned from one window.
    fn flat() -> Density {
        let w = Window { start: at("2026-11-24T05:00:00Z"), end: at("2026-11-25T04:59:59Z") };
        let dates: Vec<_> =
            (0..240_000).map(|i| local(w.start + Duration::seconds(i * 86_400 / 240_000), TZ)).collect();
        let mut d = Density::default();
        d.learn(w, w.end + Duration::seconds(1), &dates, TZ);
        d
    }

    #[test]
    fn learned_hours_give_expected_rows() {
        let d = flat();
        assert!(d.per_hour.iter().all(|h| (h.unwrap() - 10_000.0).abs() < 1.0));
        let e = d.expected(at("2026-11-26T05:00:00Z"), at("2026-11-26T06:29:59Z"), TZ).unwrap();
        assert!((e - 15_000.0).abs() < 1.0, "{e}");
        assert_eq!(
            Density::default().expected(at("2026-11-26T05:00:00Z"), at("2026-11-26T06:00:00Z"), TZ),
            None
        );
    }

    #[test]
    fn windows_are_cut_to_the_target_and_tile() {
        let d = flat();
        // 30 hours of 10,000 rows: 300,000 rows, six windows of 50,000.
        let w = Window { start: at("2026-11-26T05:00:00Z"), end: at("2026-11-27T10:59:59Z") };
        let parts = d.cut(w, TZ);
        assert_eq!(parts.len(), 6);
        assert_eq!(parts[0].start, w.start);
        assert_eq!(parts.last().unwrap().end, w.end);
        for pair in parts.windows(2) {
            assert_eq!(pair[0].end + Duration::seconds(1), pair[1].start);
        }
        for p in &parts {
            let e = d.expected(p.start, p.end, TZ).unwrap();
            assert!((e - 50_000.0).abs() < 20.0, "{p:?}: {e}");
        }
        // Nothing known: the window is left whole.
        assert_eq!(Density::default().cut(w, TZ), vec![w]);
    }

    #[test]
    fn hours_not_yet_seen_count_at_the_mean_of_those_seen() {
        // Six hours learned at 10,000 rows, then a day of which they are a quarter.
        let w = Window { start: at("2026-11-24T05:00:00Z"), end: at("2026-11-24T10:59:59Z") };
        let dates: Vec<_> =
            (0..60_000).map(|i| local(w.start + Duration::seconds(i * 21_600 / 60_000), TZ)).collect();
        let mut d = Density::default();
        d.learn(w, w.end + Duration::seconds(1), &dates, TZ);
        let day = Window { start: at("2026-11-25T05:00:00Z"), end: at("2026-11-26T04:59:59Z") };
        let e = d.expected(day.start, day.end, TZ).unwrap();
        assert!((e - 240_000.0).abs() < 1.0, "{e}");
        assert_eq!(d.cut(day, TZ).len(), 5);
    }
}
