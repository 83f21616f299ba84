//! OpenMetrics exemplars on the bucket lines prometheus-client writes (it writes them only
//! for its own `HistogramWithExemplars`): a report hands a series' exemplars over just
//! before its buckets are encoded, and the writer appends each to its line as it goes by.

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::sync::{Mutex, MutexGuard};

/// The exemplars waiting for the bucket lines about to be written. prometheus-client
/// passes its text on in chunks of a few kilobytes, so the writer sees a series' lines
/// after later series were handed over: they wait in order.
#[derive(Debug, Default)]
pub struct Exemplars(Mutex<Pending>);

#[derive(Debug, Default)]
struct Pending {
    /// Whether an OpenMetrics rendering with exemplars is under way.
    on: bool,
    /// How the bucket lines of each family with exemplars begin (`name_unit_bucket{`).
    prefixes: Vec<String>,
    /// The series handed over whose bucket lines were not all written yet, oldest first.
    series: VecDeque<Waiting>,
    /// Their exemplars, oldest first: bucket and length of its text.
    calls: VecDeque<(usize, usize)>,
    /// That text (` # {conn_id="..."} value timestamp` each), from `consumed` on.
    text: String,
    consumed: usize,
}

/// A series whose bucket lines are still to come.
#[derive(Debug)]
struct Waiting {
    prefix: usize,
    buckets: usize,
    /// Its bucket lines written so far, and its exemplars not written yet.
    lines: usize,
    calls: usize,
}

impl Exemplars {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn turn(&self, on: bool) {
        let mut p = self.lock();
        debug_assert!(p.series.is_empty(), "a series' bucket lines were not written");
        *p = Pending { on, ..Pending::default() };
    }

    pub(crate) fn is_on(&self) -> bool {
        self.lock().on
    }

    /// The series handed over from now on are those of the family whose bucket lines
    /// begin with `prefix`.
    pub(crate) fn family(&self, prefix: String) {
        let mut p = self.lock();
        if p.prefixes.last() != Some(&prefix) {
            p.prefixes.push(prefix);
        }
    }

    /// The exemplars of the next series' `buckets` bucket lines, in bucket order: `(bucket,
    /// conn_id, value, Unix time)`. Called for every series of the family, before it is
    /// encoded.
    pub fn series<'a>(&self, buckets: usize, calls: impl Iterator<Item = (usize, &'a str, u64, i64)>) {
        let mut p = self.lock();
        let prefix = p.prefixes.len().saturating_sub(1);
        let mut waiting = Waiting { prefix, buckets, lines: 0, calls: 0 };
        for (bucket, conn_id, value, timestamp) in calls {
            waiting.calls += 1;
            let start = p.text.len();
            let text = &mut p.text;
            text.push_str(" # {conn_id=\"");
            for c in conn_id.chars() {
                match c {
                    '\\' => text.push_str("\\\\"),
                    '"' => text.push_str("\\\""),
                    '\n' => text.push_str("\\n"),
                    c => text.push(c),
                }
            }
            let _ = write!(text, "\"}} {value} {timestamp}");
            let len = p.text.len() - start;
            p.calls.push_back((bucket, len));
        }
        p.series.push_back(waiting);
    }

    /// Appends to `out` the exemplar of its last line (from `start`), when that is the
    /// bucket line of a series handed over and has one.
    fn append(&self, out: &mut String, start: usize) {
        let mut p = self.lock();
        let p = &mut *p;
        let Some(front) = p.series.front_mut() else {
            return;
        };
        if !out[start..].starts_with(p.prefixes[front.prefix].as_str()) {
            return;
        }
        let bucket = front.lines;
        front.lines += 1;
        let call = p.calls.front().filter(|(b, _)| front.calls > 0 && *b == bucket);
        let len = call.map(|(_, len)| *len);
        front.calls -= usize::from(len.is_some());
        if front.lines == front.buckets {
            p.series.pop_front();
        }
        if let Some(len) = len {
            p.calls.pop_front();
            out.push_str(&p.text[p.consumed..p.consumed + len]);
            p.consumed += len;
            if p.consumed > 64 * 1024 {
                p.text.drain(..p.consumed);
                p.consumed = 0;
            }
        }
    }
}

/// Writes an exposition into `out`, appending to each bucket line the exemplar waiting
/// for it.
pub(crate) struct ExemplarWriter<'a> {
    pub out: &'a mut String,
    pub exemplars: &'a Exemplars,
    /// Where the line being written began.
    pub line: usize,
}

impl fmt::Write for ExemplarWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(i) = rest.find('\n') {
            self.out.push_str(&rest[..i]);
            self.exemplars.append(self.out, self.line);
            self.out.push('\n');
            self.line = self.out.len();
            rest = &rest[i + 1..];
        }
        self.out.push_str(rest);
        Ok(())
    }
}
