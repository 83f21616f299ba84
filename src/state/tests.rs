use std::path::Path;

use serde_json::json;

use super::*;
use crate::config::{Config, FileConfig, Overrides};
use crate::engine::testing::{day, ingest};
use crate::reports::agent_13::{Agent13Counters, NAME};
use crate::reports::labels::Interaction;

fn config(state: &Path) -> Config {
    let yaml = format!(
        "state:\n  path: {}\noperations:\n  - name: a\n    base_url: http://127.0.0.1:1\n    token: t\n",
        state.display()
    );
    Config::build(FileConfig::parse(&yaml).unwrap(), &Overrides::default(), |_| None).unwrap()
}

fn now() -> DateTime<Utc> {
    "2026-11-25T12:00:00Z".parse().unwrap()
}

fn rows() -> Vec<serde_json::Value> {
    (0..3)
        .map(|i| {
            json!({"agent_name": "Ana", "agent_id": format!("10{i}"), "conn_id": format!("c{i}"),
                   "date": "2026-11-24 10:00:00", "type_interaction": "transfer", "time": "00:01:00"})
        })
        .collect()
}

fn counters_json(store: &Store) -> String {
    let data = store.operations()[0].read();
    let slot = &data.reports[0];
    slot.report.save(&slot.counters).get().to_owned()
}

#[test]
fn round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/state.json");
    let config = config(&path);
    let store = restore(&config, now());
    let op = &store.operations()[0];
    ingest(op, NAME, &rows(), day());
    op.ledger().reports[0].cursor = Some(now());
    op.data().daily.used = 7;
    save(&store, &path, now()).unwrap();

    let again = restore(&config, now());
    let restored = &again.operations()[0];
    assert_eq!(counters_json(&again), counters_json(&store));
    assert_eq!(restored.read().agents.known, op.read().agents.known);
    assert_eq!(restored.read().daily, op.read().daily);
    let (a, b) = (restored.ledger(), op.ledger());
    let (a, b) = (&a.reports[0], &b.reports[0]);
    assert_eq!((a.cursor, &a.seen), (b.cursor, &b.seen));
    // The watermark shows at once, before the first cycle.
    let data = restored.read();
    let slot = &data.reports[0];
    assert_eq!(slot.health.watermark, Some(now()));
}

#[test]
fn corrupt_file_is_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    fs::write(&path, b"{\"version\":2,\"operations\":{\"a\":").unwrap();
    let Loaded::MovedAside { moved_to: Some(to), error } = load(&path, now()) else { panic!() };
    assert!(error.starts_with("corrupt"), "{error}");
    assert!(!path.exists());
    assert_eq!(to.file_name().unwrap().to_string_lossy(), "state.json.corrupt-20261125T120000Z");
    assert!(matches!(load(&path, now()), Loaded::Fresh));
}

#[test]
fn inconsistent_counters_are_discarded_with_their_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let config = config(&path);
    let store = restore(&config, now());
    ingest(&store.operations()[0], NAME, &rows(), day());
    store.operations()[0].ledger().reports[0].cursor = Some(now());
    save(&store, &path, now()).unwrap();
    // Break one histogram: its buckets no longer add up to its count.
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, text.replacen("\"count\":1", "\"count\":9", 1)).unwrap();

    let again = restore(&config, now());
    let op = &again.operations()[0];
    let l = op.ledger();
    assert_eq!(l.reports[0].cursor, None);
    assert!(l.reports[0].seen.is_empty());
    let data = op.read();
    let c: &Agent13Counters = data.reports[0].counters.downcast_ref().unwrap();
    assert!(c.agents.is_empty());
}

/// A state written by version 1 (before reports) keeps every counter, name, cursor and
/// remembered row.
#[test]
fn a_version_1_state_is_carried_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let v1 = json!({
        "version": 1,
        "saved_at": "2026-11-25T11:00:00Z",
        "operations": {"a": {
            "cursor": "2026-11-25T10:59:00Z",
            "daily": {"day": "2026-11-25", "used": 12, "exhausted": false},
            "bounds": [30.0, 60.0],
            "agents": [["1001", {"name": "Ana", "name_date": 1764064800,
                "series": [{"count": 2, "sum": 70.0, "buckets": [1, 0, 1]}, null,
                           {"count": 1, "sum": 5.0, "buckets": [1, 0, 0]}]}]],
            "overflow": {"name": "(agents past max_agents)", "name_date": i64::MIN,
                "series": [null, null, null]},
            "overflow_records": 0,
            "seen": [[1, 2, 1764064800]]
        }}
    });
    fs::write(&path, v1.to_string()).unwrap();
    let store = restore(&config(&path), now());
    let op = &store.operations()[0];
    let l = op.ledger();
    let l = &l.reports[0];
    assert_eq!(l.cursor, Some("2026-11-25T10:59:00Z".parse().unwrap()));
    assert_eq!(l.seen.get(&crate::reports::Identity(1, 2)), Some(&1764064800));
    let data = op.read();
    assert_eq!(data.daily.used, 12);
    assert_eq!(data.agents.known["1001"].name.as_ref(), "Ana");
    assert_eq!(data.agents.known["1001"].first_seen, 0);
    let c: &Agent13Counters = data.reports[0].counters.downcast_ref().unwrap();
    assert_eq!(c.bounds, vec![30.0, 60.0]);
    let transfer = c.agents["1001"][Interaction::transfer].as_ref().unwrap();
    assert_eq!((transfer.count, transfer.buckets.clone()), (2, vec![1, 0, 1]));
    assert_eq!(c.agents["1001"][Interaction::other].as_ref().unwrap().count, 1);
    assert!(c.agents["1001"][Interaction::conference].is_none());
}
