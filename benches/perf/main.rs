//! The performance suite of issue #5 (`cargo bench`): each scenario measures its floor
//! in the same run and prints its target, the measured value, the ratio and PASS/MISS.
//! `cargo bench -- NAME...` runs only the named scenarios (ingest, render, serve,
//! catchup, idle, state, chains).

mod chains;
mod common;
mod fixtures;
mod ingest;
mod process;
mod render;
mod serve;
mod state;

use std::time::Instant;

type Scenario = (&'static str, fn(&mut common::Report));

const SCENARIOS: [Scenario; 7] = [
    ("ingest", ingest::run),
    ("render", render::run),
    ("serve", serve::run),
    ("catchup", process::run_catch_up),
    ("idle", process::run_idle),
    ("state", state::run),
    ("chains", chains::run),
];

fn main() {
    let wanted: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let started = Instant::now();
    let mut report = common::Report::default();
    for (name, run) in SCENARIOS {
        if wanted.is_empty() || wanted.iter().any(|w| w == name) {
            let t = Instant::now();
            run(&mut report);
            println!("    ({name}: {:.1} s)", t.elapsed().as_secs_f64());
        }
    }
    report.print();
    println!("suite time: {:.1} s", started.elapsed().as_secs_f64());
}
