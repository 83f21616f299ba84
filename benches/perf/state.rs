//! Scenario 6: save and load (with restore) of the state of 10,000 agents and the
//! identities of a full 60,000-record page.

use std::hint::black_box;

use wolkvox_exporter::config::defaults::BUCKETS;
use wolkvox_exporter::state::{self, Loaded};
use wolkvox_exporter::store::Data;

use crate::common::{median_time, median_time_with, ms, Goal, Report, MB};
use crate::fixtures;

const RUNS: usize = 7;

pub fn run(report: &mut Report) {
    let store = fixtures::store(10_000, 60_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let save = median_time(RUNS, || {
        black_box(state::save(&store, &path).unwrap());
    });
    let size = std::fs::metadata(&path).unwrap().len();
    let load = median_time_with(
        RUNS,
        || fixtures::operation("bench", Data::new(&BUCKETS, 10_000)),
        |mut op| {
            let Loaded::Restored(mut file) = state::load(&path) else {
                panic!("the state loads");
            };
            let saved = file
                .operations
                .remove("bench")
                .expect("the operation is saved");
            assert!(state::restore(&mut op, saved).is_none());
            assert_eq!(op.data.agents.len(), 10_000);
            op
        },
    );
    report.add(
        "6",
        "state save, 10000 agents + 60000 identities (fsync)",
        "ms",
        ms(save),
        Goal::AtMost(100.0),
    );
    report.add(
        "6",
        "state load and restore",
        "ms",
        ms(load),
        Goal::AtMost(100.0),
    );
    report.add(
        "6",
        "state file size",
        "MB",
        size as f64 / MB,
        Goal::AtMost(10.0),
    );
}
