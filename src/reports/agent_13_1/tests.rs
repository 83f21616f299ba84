use serde_json::{json, Value};

use super::*;
use crate::engine::testing::{self, day};

#[allow(clippy::too_many_arguments)]
fn leg(leg: &str, date: &str, origin: &str, dest: &str, dest_name: &str, skill: &str, kind: &str) -> Value {
    json!({"conn_id_transfer": leg, "id_call_origin": format!("call-{leg}"), "date": date,
           "origin_agent_id": origin, "origin_agent_name": format!("Agent {origin}"),
           "destiny_agent_id": dest, "destiny_agent_name": dest_name, "skill_id": skill,
           "ani": "3001234567", "dnis": "6011234567", "time": "00:01:00", "type_call": kind})
}

fn flows(op: &crate::store::OperationStore) -> Vec<(String, String, Interaction, u64)> {
    testing::with_counters(op, NAME, |c: &FlowCounters| {
        with_overflow(&c.origins, &c.overflow)
            .flat_map(|(o, dests)| {
                dests.iter().flat_map(move |(d, types)| {
                    types
                        .iter()
                        .filter(|(_, n)| **n > 0)
                        .map(move |(t, n)| (o.to_owned(), d.to_string(), t, *n))
                })
            })
            .collect()
    })
}

#[test]
fn destinations_are_an_agent_a_skill_or_outside() {
    let metrics = testing::metrics(&[60.0], 10);
    let op = testing::operation(&metrics, &[NAME]);
    let page = vec![
        leg("t1", "2026-11-24 10:00:00", "1", "2", "Bea", "-", "transfer"),
        leg("t2", "2026-11-24 10:01:00", "1", "2", "Bea", "7", "transfer"),
        leg("t3", "2026-11-24 10:02:00", "1", "-", "", "7", "transfer"),
        leg("t4", "2026-11-24 10:03:00", "1", "", "", "-", "conference"),
        leg("t5", "2026-11-24 10:04:00", "1", "-", "-", "", "internal call"),
        leg("t6", "2026-11-24 10:05:00", "-", "2", "Bea", "7", "transfer"),
    ];
    let out = testing::ingest(&op, NAME, &page, day());
    assert_eq!((out.counted, out.invalid[InvalidReason::missing_field]), (5, 1));
    assert_eq!(
        flows(&op),
        vec![
            ("1".into(), "2".into(), Interaction::transfer, 2),
            ("1".into(), "external".into(), Interaction::conference, 1),
            ("1".into(), "external".into(), Interaction::other, 1),
            ("1".into(), "skill:7".into(), Interaction::transfer, 1),
        ]
    );
    // The agent who received the transfers is an agent of the operation too.
    assert_eq!(op.read().agents.known["2"].name.as_ref(), "Bea");
    let again = testing::ingest(&op, NAME, &page, day());
    assert_eq!((again.counted, again.duplicate), (0, 6));
}

#[test]
fn flows_past_the_limit_go_to_the_overflow_destination() {
    let mut metrics = testing::metrics(&[60.0], 100);
    metrics.max_flows = 3;
    let op = testing::operation(&metrics, &[NAME]);
    let page: Vec<_> = (0..6)
        .map(|i| leg(&format!("t{i}"), "2026-11-24 10:00:00", "1", &format!("9{i}"), "", "-", "transfer"))
        .collect();
    let out = testing::ingest(&op, NAME, &page, day());
    assert_eq!(out.counted, 6);
    let got = flows(&op);
    let total: u64 = got.iter().map(|f| f.3).sum();
    assert_eq!(total, 6, "every leg counts somewhere: {got:?}");
    assert_eq!(got.iter().filter(|f| f.1 == OVERFLOW_DESTINATION).map(|f| f.3).sum::<u64>(), 3);
    // A known flow keeps growing after the limit.
    let more = [leg("t9", "2026-11-24 11:00:00", "1", "90", "", "-", "transfer")];
    testing::ingest(&op, NAME, &more, day());
    assert!(flows(&op).contains(&("1".into(), "90".into(), Interaction::transfer, 2)));
}
