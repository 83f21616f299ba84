//! Scenario 1: decode and ingest one 60,000-record page, new and then duplicate,
//! against `serde_json` skimming the same bytes into `IgnoredAny`.

use std::hint::black_box;
use std::time::Instant;

use serde::de::IgnoredAny;
use wolkvox_exporter::client::{interpret, Answer};
use wolkvox_exporter::config::defaults::BUCKETS;
use wolkvox_exporter::ingest::{ingest, Outcome};
use wolkvox_exporter::store::Data;

use crate::common::{median, median_ratio, peak_extra, rounds, Goal, Report, MB};
use crate::fixtures::{self, Page};

const RUNS: usize = 15;

fn decode_and_ingest(data: &mut Data, page: &Page, body: &[u8]) -> Outcome {
    let Ok(Answer::Records(items)) = interpret(200, body) else {
        panic!("the page decodes");
    };
    ingest(data, items, page.ini, page.end)
}

pub fn run(report: &mut Report) {
    let page = fixtures::busy_page();
    let n = page.records;
    println!(
        "(1) one page: {n} records, {:.1} MB of JSON",
        page.body.len() as f64 / MB
    );
    let fresh = || Data::new(&BUCKETS, 10_000);

    let mut seen = fresh();
    decode_and_ingest(&mut seen, &page, &page.body);
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
                let Ok(Answer::Records(items)) = interpret(200, black_box(&page.body)) else {
                    panic!("the page decodes");
                };
                assert_eq!(items.len(), n);
                drop(black_box(items));
                t.elapsed()
            },
            &mut || {
                let mut data = fresh();
                let t = Instant::now();
                let out = decode_and_ingest(&mut data, &page, black_box(&page.body));
                let elapsed = t.elapsed();
                assert_eq!(out.counted as usize, n, "every record of the page counts");
                elapsed
            },
            &mut || {
                let mut data = seen.clone();
                let t = Instant::now();
                let out = decode_and_ingest(&mut data, &page, black_box(&page.body));
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
        let mut data = fresh();
        decode_and_ingest(&mut data, &page, &body);
        (body, data)
    });

    let rate = |d: std::time::Duration| n as f64 / d.as_secs_f64();
    report.add(
        "1",
        "IgnoredAny skim of the page (floor)",
        "rec/s",
        rate(skim),
        Goal::Info,
    );
    report.add(
        "1",
        "decode alone (interpret, no ingest)",
        "rec/s",
        rate(decode_only),
        Goal::Info,
    );
    report.add(
        "1",
        "decode+ingest, all new",
        "rec/s",
        rate(new),
        Goal::AtLeast(2e6),
    );
    report.add(
        "1",
        "decode+ingest, all new: speed / skim speed",
        "x",
        median_ratio(&times[0], &times[2]),
        Goal::AtLeast(0.5),
    );
    report.add(
        "1",
        "decode+ingest, all duplicates",
        "rec/s",
        rate(dup),
        Goal::AtLeast(2e6),
    );
    report.add(
        "1",
        "decode+ingest, all duplicates: speed / skim speed",
        "x",
        median_ratio(&times[0], &times[3]),
        Goal::AtLeast(0.5),
    );
    report.add(
        "1",
        "peak extra heap for the page (body copy included)",
        "MB",
        peak as f64 / MB,
        Goal::AtMost(page.body.len() as f64 / MB + 32.0),
    );
}
