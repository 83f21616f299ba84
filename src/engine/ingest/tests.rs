use serde_json::{json, Value};

use super::*;
use crate::engine::testing::{self, day, local};
use crate::reports::agent_13::{self, Agent13Counters};
use crate::reports::labels::Interaction;

fn row(i: usize, date: &str) -> Value {
    json!({"agent_name": "Ana", "agent_id": "1", "conn_id": format!("c{i}"), "date": date,
           "type_interaction": "transfer", "time": "00:00:30"})
}

/// A full page in date order counts the rows before its last second and leaves those of
/// that second for the next page; read again, nothing counts twice.
#[test]
fn a_full_page_in_date_order_counts_up_to_its_last_second() {
    let op = testing::operation(&testing::metrics(&[60.0], 10), &[agent_13::NAME]);
    // 59,990 rows at 10:00:00..10:59:59, then 10 at 11:00:00.
    let mut rows: Vec<Value> = (0..RECORD_CAP - 10)
        .map(|i| row(i, &format!("2026-11-24 10:{:02}:{:02}", i % 3600 / 60, i % 60)))
        .collect();
    rows.sort_by(|a, b| a["date"].as_str().cmp(&b["date"].as_str()));
    rows.extend((0..10).map(|i| row(RECORD_CAP + i, "2026-11-24 11:00:00")));
    let t = testing::ingest(&op, agent_13::NAME, &rows, day());
    assert_eq!(t.before, Some(local("2026-11-24 11:00:00")));
    assert_eq!((t.counted, t.deferred, t.duplicate), (59_990, 10, 0));
    // The next page starts at the last second: its rows count now, the rest are known.
    let rest: Vec<Value> = rows[RECORD_CAP - 20..].to_vec();
    let t = testing::ingest(&op, agent_13::NAME, &rest, day());
    assert_eq!((t.before, t.counted, t.duplicate), (None, 10, 10));
    testing::with_counters(&op, agent_13::NAME, |c: &Agent13Counters| {
        assert_eq!(c.agents["1"][Interaction::transfer].as_ref().unwrap().count, 60_000);
    });
}

/// A full page out of date order counts nothing: the window is read again in parts.
#[test]
fn a_full_page_out_of_order_counts_nothing() {
    let op = testing::operation(&testing::metrics(&[60.0], 10), &[agent_13::NAME]);
    let mut rows: Vec<Value> = (0..RECORD_CAP)
        .map(|i| row(i, &format!("2026-11-24 10:{:02}:{:02}", i % 3600 / 60, i % 60)))
        .collect();
    rows.swap(0, RECORD_CAP - 1);
    let body = testing::page(&rows);
    let out = ingest(&op, 0, 200, &body, day(), None).unwrap();
    assert!(matches!(out, Outcome::Cut(d) if d.len() == RECORD_CAP));
    assert_eq!(op.read().reports[0].health.received, RECORD_CAP as u64);
    assert!(op.ledger().reports[0].seen.is_empty());
}

/// Rows counted more than two polls and the delay after their date are late, in the
/// report's health and per interaction.
#[test]
fn rows_dated_before_the_late_mark_count_as_late() {
    let op = testing::operation(&testing::metrics(&[60.0], 10), &[agent_13::NAME]);
    let mut spec = day();
    spec.late_before = Some(local("2026-11-24 12:00:00"));
    let rows = [row(1, "2026-11-24 11:59:59"), row(2, "2026-11-24 12:00:00")];
    let t = testing::ingest(&op, agent_13::NAME, &rows, spec);
    assert_eq!((t.counted, t.late), (2, 1));
    assert_eq!(op.read().reports[0].health.late, 1);
    testing::with_counters(&op, agent_13::NAME, |c: &Agent13Counters| {
        assert_eq!((c.late[Interaction::transfer], c.late[Interaction::conference]), (1, 0));
    });
}
