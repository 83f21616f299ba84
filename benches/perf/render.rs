//! Scenario 2: render `/metrics` for 1,000 and 10,000 agents, plain and gzip, fresh
//! (the store just changed) and cached, against copying a pre-built buffer of the
//! same size.

use std::hint::black_box;
use std::time::Duration;

use std::sync::Arc;

use wolkvox_exporter::metrics::{Format, Renderer};
use wolkvox_exporter::web::ReloadStats;

use crate::common::{median_time, ms, Goal, Report, MB};
use crate::fixtures;

/// Copies `body` into `out` as a socket write would copy it into the kernel.
fn deliver(out: &mut Vec<u8>, body: &[u8]) {
    out.clear();
    out.extend_from_slice(body);
    black_box(&out);
}

pub fn run(report: &mut Report) {
    for agents in [1_000, 10_000] {
        let store = fixtures::store(agents, 0);
        let renderer = Renderer::new(store.clone(), Arc::new(ReloadStats::default()), true);
        let fresh_runs = if agents > 1_000 { 9 } else { 25 };
        let label = |what: &str| format!("{agents:>6} agents: {what}");

        for (format, name) in [(Format::Text, "text"), (Format::OpenMetrics, "OpenMetrics")] {
            let plain = renderer.get(format, false);
            let gz = renderer.get(format, true);
            println!(
                "(2) {agents} agents, {name}: {:.1} MB plain, {:.2} MB gzip",
                plain.len() as f64 / MB,
                gz.len() as f64 / MB
            );
            let fresh = median_time(fresh_runs, || {
                store.touch();
                black_box(renderer.get(format, false));
            });
            let fresh_gz = median_time(fresh_runs, || {
                store.touch();
                black_box(renderer.get(format, true));
            });
            let goal = if agents == 10_000 { Goal::AtMost(150.0) } else { Goal::Info };
            report.add("2", &label(&format!("fresh render, {name}")), "ms", ms(fresh), goal);
            report.add("2", &label(&format!("fresh render, {name} + gzip")), "ms", ms(fresh_gz), Goal::Info);

            for (gzip, size) in [(false, plain.len()), (true, gz.len())] {
                let body = renderer.get(format, gzip);
                let prebuilt = vec![b'#'; size];
                let mut out = Vec::with_capacity(size);
                let runs = if size > 4 << 20 { 25 } else { 201 };
                let copy = median_time(runs, || deliver(&mut out, black_box(&prebuilt)));
                let cached = median_time(runs, || deliver(&mut out, &renderer.get(format, gzip)));
                assert_eq!(body.len(), size);
                let kind = if gzip { "gzip" } else { "plain" };
                report.add(
                    "2",
                    &label(&format!("cached scrape, {name} {kind} / copy floor")),
                    "x",
                    ratio(cached, copy),
                    Goal::AtMost(2.0),
                );
                if !gzip && format == Format::Text {
                    report.add("2", &label("copy floor, text plain"), "ms", ms(copy), Goal::Info);
                }
            }
        }
    }
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}
