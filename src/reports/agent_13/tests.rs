use serde_json::{json, Value};

use super::*;
use crate::engine::testing::{self, day, local};
use crate::engine::Tally;
use crate::reports::histogram::Histogram;
use crate::store::OperationStore;

fn rec(id: &str, conn: &str, kind: &str, date: &str, time: &str, name: &str) -> Value {
    json!({"agent_name": name, "agent_id": id, "conn_id": conn, "date": date,
           "telephone": "3001234567", "type_interaction": kind, "time": time})
}

fn setup(max_agents: usize) -> Arc<OperationStore> {
    let metrics = testing::metrics(&[60.0, 120.0], max_agents);
    testing::operation(&metrics, &[NAME])
}

fn ingest(op: &OperationStore, rows: &[Value], spec: crate::engine::PageSpec) -> Tally {
    testing::ingest(op, NAME, rows, spec)
}

fn with_counters<T>(op: &OperationStore, f: impl FnOnce(&Agent13Counters) -> T) -> T {
    testing::with_counters(op, NAME, f)
}

#[test]
fn each_record_counts_once_and_rejects_are_reasoned() {
    let op = setup(10);
    let page = vec![
        rec("1", "c1", "transfer", "2026-11-24 10:00:00", "00:00:30", "Ana"),
        rec("1", "c2", "conference", "2026-11-24 10:05:00", "00:01:30", "Ana"),
        rec("2", "c3", "TRANSFER", "2026-11-24 10:06:00", "00:05:00", "Bo"),
        rec("2", "c4", "parked", "2026-11-24 10:07:00", "00:00:10", "Bo"),
        rec("2", "c5", "transfer", "2026-11-24 10:07:00", "1:2", "Bo"),
        rec("2", "c6", "transfer", "24/11/2026", "00:00:01", "Bo"),
        rec("2", "c7", "transfer", "2026-11-25 00:00:00", "00:00:01", "Bo"),
        rec("", "c8", "transfer", "2026-11-24 10:07:00", "00:00:01", "Bo"),
        json!(7),
    ];
    let out = ingest(&op, &page, day());
    assert_eq!((out.received, out.counted), (9, 4));
    let invalid: Vec<u64> = out.invalid.values().copied().collect();
    assert_eq!(invalid, [1, 1, 2, 1]);
    with_counters(&op, |c| {
        let ana = &c.agents["1"];
        assert_eq!(ana[Interaction::transfer].as_ref().unwrap().buckets, vec![1, 0, 0]);
        assert_eq!(ana[Interaction::conference].as_ref().unwrap().sum, 90.0);
        let bo = &c.agents["2"];
        assert_eq!(bo[Interaction::transfer].as_ref().unwrap().buckets, vec![0, 0, 1]);
        assert_eq!(bo[Interaction::other].as_ref().unwrap().count, 1);
    });

    // The same page again: everything already seen, nothing counted or rejected twice,
    // but for the item that is not an object (it has nothing to remember it by).
    let again = ingest(&op, &page, day());
    assert_eq!((again.counted, again.duplicate), (0, 8));
    assert_eq!(again.invalid[InvalidReason::missing_field], 1);
    assert_eq!(again.invalid.values().sum::<u64>(), 1);
    with_counters(&op, |c| assert_eq!(c.agents["1"][Interaction::transfer].as_ref().unwrap().count, 1));
    let data = op.read();
    let h = &data.reports[0].health;
    assert_eq!((h.received, h.duplicate), (18, 8));
}

#[test]
fn a_record_twice_on_one_page_counts_once() {
    let op = setup(10);
    let r = rec("1", "c1", "transfer", "2026-11-24 10:00:00", "00:00:30", "Ana");
    let out = ingest(&op, &[r.clone(), r], day());
    assert_eq!((out.counted, out.duplicate), (1, 1));
}

#[test]
fn newest_name_wins_and_is_cleaned() {
    let op = setup(10);
    let page = vec![
        rec("1", "c2", "transfer", "2026-11-24 11:00:00", "00:00:30", "Ana María\nR."),
        rec("1", "c1", "transfer", "2026-11-24 10:00:00", "00:00:30", "Old Name"),
    ];
    ingest(&op, &page, day());
    assert_eq!(op.read().agents.known["1"].name.as_ref(), "Ana María R.");
    let long = "é".repeat(100_000);
    let page = [rec("2", "c3", "transfer", "2026-11-24 11:00:00", "00:00:30", &long)];
    ingest(&op, &page, day());
    assert!(op.read().agents.known["2"].name.len() <= crate::reports::fields::MAX_NAME_BYTES);
}

#[test]
fn agents_past_the_limit_overflow_but_totals_hold() {
    let op = setup(2);
    let page: Vec<_> = (0..5)
        .map(|i| rec(&i.to_string(), &format!("c{i}"), "transfer", "2026-11-24 10:00:00", "00:00:30", "x"))
        .collect();
    let out = ingest(&op, &page, day());
    assert_eq!((out.counted, out.overflowed), (5, 3));
    assert_eq!(op.read().agents.overflow_records, 3);
    with_counters(&op, |c| {
        assert_eq!(c.agents.len(), 2);
        assert_eq!(c.overflow[Interaction::transfer].as_ref().unwrap().count, 3);
    });
}

#[test]
fn rejected_dates_are_remembered_until_the_window_ends() {
    let op = setup(10);
    let page = vec![
        rec("1", "c1", "transfer", "2026-11-23 21:00:00", "00:00:30", "A"),
        rec("1", "c2", "transfer", "garbage", "00:00:30", "A"),
    ];
    let out = ingest(&op, &page, day());
    assert_eq!(out.invalid[InvalidReason::outside_window], 1);
    assert_eq!(out.invalid[InvalidReason::bad_date], 1);
    // The overlap's start has moved past the window's start, not past its end.
    op.ledger().reports[0].prune(crate::calendar::local_secs(local("2026-11-24 23:30:00")));
    let again = ingest(&op, &page, day());
    assert_eq!((again.duplicate, again.invalid.values().sum::<u64>()), (2, 0));
}

#[test]
fn pruning_forgets_only_old_identities() {
    let op = setup(10);
    let r1 = rec("1", "c1", "transfer", "2026-11-24 10:00:00", "00:00:30", "A");
    let r2 = rec("1", "c2", "transfer", "2026-11-24 12:00:00", "00:00:30", "A");
    ingest(&op, &[r1, r2.clone()], day());
    op.ledger().reports[0].prune(crate::calendar::local_secs(local("2026-11-24 11:00:00")));
    assert_eq!(op.ledger().reports[0].seen.len(), 1);
    assert_eq!(ingest(&op, &[r2], day()).duplicate, 1);
}

#[test]
fn each_bucket_keeps_its_newest_call_and_first_seen_its_earliest() {
    let op = setup(10);
    let page = vec![
        rec("1", "new-short", "transfer", "2026-11-24 12:00:00", "00:00:10", "A"),
        rec("1", "old-short", "transfer", "2026-11-24 09:00:00", "00:00:20", "A"),
        rec("1", "long", "transfer", "2026-11-24 10:00:00", "01:00:00", "A"),
    ];
    ingest(&op, &page, day());
    ingest(&op, &[rec("1", "older", "transfer", "2026-11-24 08:00:00", "00:00:05", "A")], day());
    with_counters(&op, |c| {
        let calls = &c.calls["1"][Interaction::transfer];
        let ids: Vec<_> = calls.iter().map(|(bucket, id, ..)| (bucket, id)).collect();
        assert_eq!(ids, [(0, "new-short"), (2, "long")]);
    });
    // 08:00 in Bogota is 13:00 UTC.
    let first = op.read().agents.known["1"].first_seen;
    assert_eq!(first, local("2026-11-24 13:00:00").and_utc().timestamp());
}

#[test]
fn no_calls_are_kept_when_exemplars_are_off() {
    let mut metrics = testing::metrics(&[60.0, 120.0], 10);
    metrics.exemplars = false;
    let op = testing::operation(&metrics, &[NAME]);
    let page = [
        rec("1", "a", "transfer", "2026-11-24 10:00:00", "00:00:30", "A"),
        rec("2", "b", "conference", "2026-11-24 10:01:00", "00:05:00", "B"),
    ];
    ingest(&op, &page, day());
    with_counters(&op, |c| {
        assert!(c.calls.is_empty());
        assert_eq!(c.agents.len(), 2);
        let h = c.agents["2"][Interaction::conference].as_ref().unwrap();
        assert_eq!((h.count, h.sum), (1, 300.0));
    });
}

#[test]
fn restored_counters_keep_their_buckets_or_are_refused() {
    let metrics = testing::metrics(&[60.0, 120.0], 10);
    let report = Agent13::new(&metrics.settings());
    let mut saved = report.new_counters();
    saved.bounds = vec![30.0];
    let mut h = Histogram::new(&[30.0]);
    h.observe(&[30.0], 10.0);
    saved.agents.insert("1".into(), Series::from_fn(|i| (i == Interaction::transfer).then(|| h.clone())));
    assert!(report.check_restored(&saved).unwrap().unwrap().contains("buckets differ"));
    saved.agents.get_mut("1").unwrap()[Interaction::transfer].as_mut().unwrap().count = 5;
    assert!(report.check_restored(&saved).is_err());
}
