//! Scenario 7: the transfer chains of a 10,000-agent operation over 7 days of agent_13_1
//! legs from the simulator, read an hour at a time and settled as the watermark moves:
//! the open chains' memory and their share of the state file at the busiest hour, and
//! the same at the `metrics.max_open_chains` bound of 200,000.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Duration as Span, NaiveDateTime};
use wolkvox_exporter::config::{Config, FileConfig, Overrides};
use wolkvox_exporter::engine::{ingest, Outcome};
use wolkvox_exporter::reports::agent_13_1::FlowCounters;
use wolkvox_exporter::state;
use wolkvox_exporter::store::Store;
use wolkvox_sim::reports::{agent_13_1::Legs, page};
use wolkvox_sim::{Format, SimConfig, Simulator};

use crate::common::{live_bytes, Goal, Report, MB};
use crate::fixtures::{spec, t};

const AGENTS: usize = 10_000;
const OVERLAP: Span = Span::minutes(30);

/// A store of one operation following agent_13_1 alone, as a first start builds it.
fn store() -> Arc<Store> {
    let yaml = format!(
        "metrics:\n  max_agents: {AGENTS}\nstate:\n  path: /nonexistent/bench-state.json\n\
         operations:\n  - name: bench\n    base_url: http://127.0.0.1:1\n    token: t\n    licenses: 100\n    reports:\n      agent_13_1:\n"
    );
    let config: Config =
        Config::build(FileConfig::parse(&yaml).unwrap(), &Overrides::default(), |_| None).unwrap();
    Arc::new(state::restore(&config, t("2025-03-01T00:00:00Z")))
}

/// One answer of agent_13_1 through the engine, the way a window read counts it.
fn read(store: &Store, body: &[u8], ini: NaiveDateTime, end: NaiveDateTime) -> u64 {
    let op = &store.operations()[0];
    match ingest(op, 0, 200, body, spec(ini, end), None) {
        Ok(Outcome::Counted(t)) => t.counted,
        other => panic!("the page counts: {other:?}"),
    }
}

/// What the engine does when the watermark moves: settle through `until`.
fn settle(store: &Store, until: NaiveDateTime) {
    let op = &store.operations()[0];
    let mut data = op.data();
    let data = &mut *data;
    let slot = &mut data.reports[0];
    slot.report.settle(&mut slot.counters, &mut data.agents, until);
}

/// Open chains.
fn open_chains(store: &Store) -> usize {
    let op = &store.operations()[0];
    let data = op.read();
    let c: &FlowCounters = data.reports[0].counters.downcast_ref().unwrap();
    c.chains.open()
}

/// Settled chains (1, 2, 3+ transfers together), as the state file has them.
fn settled_chains(store: &Store) -> u64 {
    let op = &store.operations()[0];
    let saved = state::snapshot(op);
    let counters: serde_json::Value =
        serde_json::from_str(saved.reports["agent_13_1"].counters.get()).unwrap();
    let settled = counters["chains"]["settled"].as_object();
    settled.map_or(0, |m| m.values().filter_map(|v| v.as_u64()).sum())
}

/// The state file's size, and the bytes the open chains hold (the heap freed when they
/// are all settled) with their share of the file. Settles everything.
fn measure(store: &Store, dir: &std::path::Path, far: NaiveDateTime) -> (u64, usize, u64) {
    let path = dir.join("state.json");
    let now = t("2025-03-20T00:00:00Z");
    let with_open = state::save(store, &path, now).unwrap();
    let before = live_bytes();
    settle(store, far);
    let held = before.saturating_sub(live_bytes());
    let without = state::save(store, &path, now).unwrap();
    (with_open, held, with_open.saturating_sub(without))
}

pub fn run(report: &mut Report) {
    // Thursday 11:00 in Bogota to the next: the week ends at the late-morning peak, when
    // the most chains are open.
    let start = t("2025-03-06T16:00:00Z");
    let end = start + Span::days(7);
    let mut config = SimConfig::bounded(start, end);
    config.agents = AGENTS;
    config.peak_per_agent_hour = 5.0;
    config.seed = 7;
    let sim = Simulator::new(config);
    let week = store();
    let (mut legs, mut counting, mut peak_open) = (0u64, Duration::ZERO, 0);
    let mut hour = start;
    while hour < end {
        let next = hour + Span::hours(1);
        let (ini, fin) = (sim.local(hour), sim.local(next - Span::seconds(1)));
        let rows = sim.legs_local(ini, fin, None);
        let body = page::<Legs>(&rows, &Format::default()).body;
        let timer = Instant::now();
        legs += read(&week, body.as_bytes(), ini, fin);
        let until = sim.local(next - OVERLAP);
        settle(&week, until);
        // And, once a window is read, forget the identities of the rows before the overlap.
        let forget = wolkvox_exporter::calendar::local_secs(until);
        week.operations()[0].ledger().reports[0].prune(forget);
        counting += timer.elapsed();
        peak_open = peak_open.max(open_chains(&week));
        hour = next;
    }
    let (open, settled) = (open_chains(&week), settled_chains(&week));
    println!("(7) a week of 10,000 agents: {legs} legs, {settled} chains settled, {open} open at the end, at most {peak_open}");
    let dir = tempfile::tempdir().unwrap();
    let far = sim.local(end + Span::days(1));
    let (file, held, share) = measure(&week, dir.path(), far);
    report.add("7", "week of 10,000 agents: legs counted", "legs", legs as f64, Goal::Info);
    report.add(
        "7",
        "week: counting and settling, per leg",
        "us",
        counting.as_secs_f64() * 1e6 / legs as f64,
        Goal::Info,
    );
    report.add("7", "open chains at the week's busiest hour", "chains", open as f64, Goal::Info);
    report.add("7", "heap held by those open chains", "MB", held as f64 / MB, Goal::AtMost(20.0));
    report.add("7", "heap per open chain", "B", held as f64 / open.max(1) as f64, Goal::Info);
    report.add("7", "state file with them", "MB", file as f64 / MB, Goal::Info);
    report.add("7", "of which the open chains", "MB", share as f64 / MB, Goal::AtMost(10.0));

    // The bound: 200,000 calls transferred once in the same hour, none settled yet, and
    // 10,000 more, so the oldest settle early.
    let bound = store();
    let at = |i: usize| format!("2025-03-10 10:{:02}:{:02}", i / 4000 % 60, i / 80 % 50);
    let mut rows = Vec::new();
    let mut counted = 0;
    for i in 0..210_000 {
        rows.push(
            serde_json::json!({"conn_id_transfer": format!("{i}T"), "id_call_origin": format!("88123.{i:07}"),
            "date": at(i), "origin_agent_id": (1001 + i % AGENTS).to_string(), "origin_agent_name": "Agent",
            "destiny_agent_id": (1001 + (i * 7 + 1) % AGENTS).to_string(), "destiny_agent_name": "Agent",
            "skill_id": "-", "time": "00:02:00", "type_call": "transfer"}),
        );
        if rows.len() == 30_000 {
            let body = serde_json::json!({"code": 200, "data": rows}).to_string();
            let day = |s| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
            counted += read(&bound, body.as_bytes(), day("2025-03-10 00:00:00"), day("2025-03-10 23:59:59"));
            rows.clear();
        }
    }
    assert_eq!(counted, 210_000);
    let (open, early) = (open_chains(&bound), settled_chains(&bound));
    assert_eq!((open, early), (200_000, 10_000), "the oldest settle early past the bound");
    let far = NaiveDateTime::parse_from_str("2025-03-12 00:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
    let (file, held, share) = measure(&bound, dir.path(), far);
    report.add(
        "7",
        "heap held by 200,000 open chains (the bound)",
        "MB",
        held as f64 / MB,
        Goal::AtMost(40.0),
    );
    report.add("7", "state file with them", "MB", file as f64 / MB, Goal::Info);
    report.add("7", "of which the open chains", "MB", share as f64 / MB, Goal::Info);
}
