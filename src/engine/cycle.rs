//! Planning a report's cycle from its schedule: the windows from its cursor to now, or
//! the days a daily report may read; the parts of a window cut at the cap; and what a
//! window read teaches: the row density and the cursor's next position.

use chrono::{DateTime, DurationRound, Utc};
use tokio::time::Instant;

use super::ingest::{settle, Tally};
use super::{span, Engine};
use crate::calendar::{self, Window};
use crate::reports::{ReportName, Schedule};

/// One pass of a report from its cursor up to now.
#[derive(Debug)]
pub(super) struct Cycle {
    pub(super) started: Instant,
    /// Windows still to read, the next one last.
    pub(super) pending: Vec<Window>,
    pub(super) cursor_before: Option<DateTime<Utc>>,
    /// Whether a window was read whole: a cycle that read none changed nothing to save.
    pub(super) read: bool,
}

impl Engine {
    /// Plans a cycle of report `i`: `[cursor - overlap, now - delay]`, or the catch-up
    /// period before now when the report has no cursor yet.
    pub(super) fn start_cycle(&mut self, i: usize) {
        let now = self
            .shared
            .clock
            .now()
            .duration_trunc(chrono::Duration::seconds(1))
            .expect("truncating to seconds");
        let cursor = self.op.ledger().reports[i].cursor;
        let pending = match self.reports[i].schedule {
            Schedule::DailyAfter { source } => self.days_due(i, source, now),
            Schedule::Windowed => {
                let end = now - span(self.poll.delay);
                let start = match cursor {
                    Some(c) => c - span(self.poll.overlap),
                    None => now - span(self.poll.catch_up),
                };
                self.planned_windows(i, start, end)
            }
        };
        self.begin_cycle(i, pending, cursor);
    }

    /// The windows of `[start, end]` for report `i`, oldest first: as long as the API
    /// allows, since a full page in date order is read on from its last second; cut to
    /// the rows per hour learned where the API sent a full page out of order.
    pub(super) fn planned_windows(&self, i: usize, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<Window> {
        let tz = self.op.timezone;
        let density = self.op.ledger().reports[i].density.clone();
        calendar::plan(start, end, tz)
            .into_iter()
            .flat_map(|w| match density.unordered {
                true => density.cut(w, tz),
                false => vec![w],
            })
            .collect()
    }

    /// Starts a cycle of report `i` over `windows`, oldest first.
    pub(super) fn begin_cycle(
        &mut self,
        i: usize,
        mut windows: Vec<Window>,
        cursor_before: Option<DateTime<Utc>>,
    ) {
        windows.reverse();
        self.reports[i].cycle =
            Some(Cycle { started: Instant::now(), pending: windows, cursor_before, read: false });
    }

    /// The local days daily report `i` may read now, oldest first, each one window:
    /// after the one it read last (from the first day its source read whole), each whose
    /// end lies `reconcile_delay` in the past and before the source's cursor, and whose
    /// tallies the source still keeps (an answer for any other day could not be used).
    fn days_due(&self, i: usize, source: ReportName, now: DateTime<Utc>) -> Vec<Window> {
        let tz = self.op.timezone;
        let Some(s) = self.reports.iter().position(|r| r.report.name() == source) else {
            return Vec::new();
        };
        let (since, through, done) = {
            let ledger = self.op.ledger();
            let source = &ledger.reports[s];
            (source.since, source.cursor, ledger.reports[i].cursor)
        };
        let (Some(since), Some(through)) = (since, through) else {
            return Vec::new();
        };
        let delay = span(self.poll.reconcile_delay);
        let mut day = match done {
            Some(next) => calendar::local_day(next, tz),
            // The first day that begins at or after the first catch-up (`since` is whole
            // seconds: the day after the one holding the second before it).
            None => calendar::local_day(since - chrono::Duration::seconds(1), tz) + chrono::Days::new(1),
        };
        let mut data = self.op.data();
        let slot = &mut data.reports[s];
        let Some(tallies) = slot.report.day_tallies(&mut slot.counters) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        loop {
            let w = calendar::day_window(day, tz);
            if w.end + delay > now || w.end >= through {
                return out;
            }
            if tallies.kept(day) {
                out.push(w);
            }
            day = day + chrono::Days::new(1);
        }
    }

    /// The rows of `w` dated before `until` are all counted: learn from their `dates`,
    /// move the cursor to `until`, and plan the windows still to read with what was learned.
    pub(super) fn read(
        &mut self,
        i: usize,
        w: Window,
        until: DateTime<Utc>,
        dates: &[chrono::NaiveDateTime],
    ) {
        let (tz, overlap) = (self.op.timezone, span(self.poll.overlap));
        self.op.ledger().reports[i].density.learn(w, until, dates, tz);
        let mut settled = Tally::default();
        if let Some(timeline) = &self.timeline {
            // A backfill records the boundaries its rows are now read to, each as it stood.
            let mut t = timeline.lock().unwrap_or_else(|p| p.into_inner());
            let step = t.step_of(calendar::local(until, tz));
            t.next_step(step, &mut |at| settled.add(settle(&mut self.op.data(), i, at - overlap)));
        }
        let unordered = {
            let mut ledger = self.op.ledger();
            let l = &mut ledger.reports[i];
            if l.cursor.is_none() && l.since.is_none() {
                l.since = Some(w.start);
            }
            if l.cursor.is_none_or(|c| c < until) {
                l.cursor = Some(until);
                let mut data = self.op.data();
                data.reports[i].health.watermark = Some(until);
                settled.add(settle(&mut data, i, calendar::local(until - overlap, tz)));
            }
            l.density.unordered
        };
        self.log_notices(self.name(i), &settled.notices);
        let Some(c) = self.reports[i].cycle.as_mut() else {
            return;
        };
        c.read = true;
        // Pending windows are contiguous, the next one last.
        let rest = c.pending.last().zip(c.pending.first()).map(|(next, last)| (next.start, last.end));
        if let (true, Some((start, end))) = (unordered, rest) {
            let again = self.planned_windows(i, start, end).into_iter().rev().collect();
            self.reports[i].cycle.as_mut().expect("a cycle under way").pending = again;
        }
    }
}
