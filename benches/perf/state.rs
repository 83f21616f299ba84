//! Scenario 6: save and load (with restore) of the state of 10,000 agents and the
//! identities of a full 60,000-record page.

use std::hint::black_box;

use wolkvox_exporter::state;

use crate::common::{median_time, ms, Goal, Report, MB};
use crate::fixtures;

const RUNS: usize = 7;

pub fn run(report: &mut Report) {
    let store = fixtures::store(10_000, 60_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let now = fixtures::t("2025-03-11T00:00:00Z");
    let save = median_time(RUNS, || {
        black_box(state::save(&store, &path, now).unwrap());
    });
    let size = std::fs::metadata(&path).unwrap().len();
    let mut config = fixtures::config(10_000);
    config.state_path = path.clone();
    let load = median_time(RUNS, || {
        let restored = state::restore(&config, now);
        let op = &restored.operations()[0];
        assert_eq!(op.read().agents.known.len(), 10_000);
        assert_eq!(op.ledger().reports[0].seen.len(), 60_000);
        black_box(restored);
    });
    report.add(
        "6",
        "state save, 10000 agents + 60000 identities (fsync)",
        "ms",
        ms(save),
        Goal::AtMost(100.0),
    );
    report.add("6", "state load and restore", "ms", ms(load), Goal::AtMost(100.0));
    report.add("6", "state file size", "MB", size as f64 / MB, Goal::AtMost(10.0));
}
