//! Scenario 1: decode and ingest one 60,000-record page, new and then duplicate,
//! against `serde_json` skimming the same bytes into `IgnoredAny`.

use std::hint::black_box;
use std::time::Instant;

use serde::de::IgnoredAny;
use wolkvox_exporter::client::{interpret, Answer};
use wolkvox_exporter::engine::Tally;
use wolkvox_exporter::reports::agent_13::Record;
use wolkvox_exporter::store::Store;

use crate::common::{median, median_ratio, peak_extra, rounds, Goal, Report, MB};
use crate::fixtures::{self, Page};

const RUNS: usize = 15;

/// The agent_13 report's whole page step: decode, set aside duplicates, count outside
/// the lock and apply under it.
fn decode_and_count(store: &Store, page: &Page, body: &[u8]) -> Tally {
    fixtures::ingest(store, body, page.window)
}

pub fn run(report: &mut Report) {
    let page = fixtures::busy_page();
    let n = page.records;
    println!("(1) one page: {n} records, {:.1} MB of JSON", page.body.len() as f64 / MB);
    let fresh = || fixtures::empty_store(10_000);

    let seen = fresh();
    decode_and_count(&seen, &page, &page.body);
    // Timed round by round, side by side, so the ratios hold on a noisy machine.
    let times = rounds(
        RUNS,
        &mut [
            &mut || {
                let t = Instant::now();
                black_box(serde_json::from_slice::<IgnoredAny>(black_box(&page.body)).unwrap());
                t.elapsed()
            },
            &mut || {
                let t = Instant::now();
                let Ok(Answer::Records(items)) = interpret::<Record>(200, black_box(&page.body)) else {
                    panic!("the page decodes");
                };
                assert_eq!(items.len(), n);
                drop(black_box(items));
                t.elapsed()
            },
            &mut || {
                let store = fresh();
                let t = Instant::now();
                let out = decode_and_count(&store, &page, black_box(&page.body));
                let elapsed = t.elapsed();
                assert_eq!(out.counted as usize, n, "every record of the page counts");
                elapsed
            },
            &mut || {
                let t = Instant::now();
                let out = decode_and_count(&seen, &page, black_box(&page.body));
                let elapsed = t.elapsed();
                assert_eq!(out.duplicate as usize, n, "every record is a duplicate");
                elapsed
            },
        ],
    );
    let [skim, decode_only, new, dup] = [0, 1, 2, 3].map(|i| median(&times[i]));
    let (_, peak) = peak_extra(|| {
        // The body as the client receives it, the decoded page and the new state.
        let body = page.body.clone();
        let store = fresh();
        decode_and_count(&store, &page, &body);
        (body, store)
    });

    let rate = |d: std::time::Duration| n as f64 / d.as_secs_f64();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    report.add("1", "IgnoredAny skim of the page (floor)", "rec/s", rate(skim), Goal::Info);
    report.add("1", "decode alone (interpret, no counting)", "rec/s", rate(decode_only), Goal::Info);
    report.add("1", "decode+count one full page, all new", "ms", ms(new), Goal::AtMost(150.0));
    report.add("1", "decode+count, all new", "rec/s", rate(new), Goal::Info);
    report.add(
        "1",
        "decode+count, all new: speed / skim speed",
        "x",
        median_ratio(&times[0], &times[2]),
        Goal::Info,
    );
    report.add("1", "decode+count one full page, all duplicates", "ms", ms(dup), Goal::AtMost(150.0));
    report.add(
        "1",
        "decode+count, all duplicates: speed / skim speed",
        "x",
        median_ratio(&times[0], &times[3]),
        Goal::Info,
    );
    report.add(
        "1",
        "peak extra heap for the page (body copy included)",
        "MB",
        peak as f64 / MB,
        Goal::AtMost(page.body.len() as f64 / MB + 32.0),
    );
}
