use serde_json::{json, Value};

use super::*;
use crate::config::MetricsConfig;
use crate::engine::testing;
use crate::metrics::{render_data, DataPart};
use crate::reports::agent_13_1::{FlowCounters, NAME};
use crate::store::OperationStore;

/// A transfer leg of call `call` from agent `from` to `to` (an agent id, or `-` for
/// skill 7).
fn leg(id: &str, call: &str, date: &str, from: &str, to: &str) -> Value {
    json!({"conn_id_transfer": id, "id_call_origin": call, "date": date,
           "origin_agent_id": from, "origin_agent_name": format!("Agent {from}"),
           "destiny_agent_id": to, "destiny_agent_name": "", "skill_id": "7",
           "ani": "3001234567", "dnis": "6011234567", "time": "00:01:00",
           "type_call": "transfer"})
}

/// The day 2026-11-24 read with a 30-minute overlap.
fn read(op: &OperationStore, rows: &[Value]) {
    let tally = testing::ingest(op, NAME, rows, testing::day());
    assert_eq!(tally.counted, rows.len() as u64, "{tally:?}");
}

fn operation(metrics: &MetricsConfig) -> std::sync::Arc<OperationStore> {
    testing::operation(metrics, &[NAME])
}

/// (chains with 1, 2, 3+ transfers, evicted, returned by agent, open chains)
type Counts = ([u64; 3], u64, Vec<(String, u64)>, usize);

fn counts(op: &OperationStore) -> Counts {
    testing::with_counters(op, NAME, |c: &FlowCounters| {
        let c = &c.chains;
        (
            [c.settled[Transfers::One], c.settled[Transfers::Two], c.settled[Transfers::ThreeOrMore]],
            c.evicted,
            c.returned.iter().map(|(a, n)| (a.to_string(), *n)).collect(),
            c.starts.len(),
        )
    })
}

fn settle(op: &OperationStore, until: &str) {
    let applied = testing::settle(op, NAME, &format!("2026-11-24 {until}"));
    assert_eq!(applied, crate::reports::Applied::default());
}

fn d(time: &str) -> String {
    format!("2026-11-24 {time}")
}

#[test]
fn a_chain_settles_once_when_the_watermark_less_the_overlap_passes_its_horizon() {
    let op = operation(&testing::metrics(&[60.0], 100));
    read(
        &op,
        &[
            leg("a1", "A", &d("10:00:00"), "1", "2"),
            leg("a2", "A", &d("10:30:00"), "2", "-"),
            // Exactly the horizon after the first leg: still the same chain.
            leg("a3", "A", &d("12:00:00"), "3", "-"),
            leg("b1", "B", &d("10:10:00"), "1", "-"),
            // A conference and a leg without its call's id belong to no chain.
            json!({"conn_id_transfer": "c1", "id_call_origin": "C", "date": d("10:20:00"),
                   "origin_agent_id": "1", "destiny_agent_id": "2", "type_call": "conference"}),
            json!({"conn_id_transfer": "n1", "id_call_origin": "-", "date": d("10:20:00"),
                   "origin_agent_id": "1", "destiny_agent_id": "2", "type_call": "transfer"}),
        ],
    );
    assert_eq!(counts(&op), ([0, 0, 0], 0, vec![], 2));
    settle(&op, "11:59:59");
    assert_eq!(counts(&op).0, [0, 0, 0]);
    settle(&op, "12:00:00");
    assert_eq!(counts(&op), ([0, 0, 1], 0, vec![], 1));
    settle(&op, "12:09:59");
    assert_eq!(counts(&op).3, 1);
    settle(&op, "12:10:00");
    // An earlier watermark (a backfill's step) settles nothing and nothing twice.
    settle(&op, "11:00:00");
    settle(&op, "18:00:00");
    assert_eq!(counts(&op), ([1, 0, 1], 0, vec![], 0));
}

#[test]
fn returns_are_counted_by_the_agent_who_sends_the_call_back() {
    let op = operation(&testing::metrics(&[60.0], 100));
    // Read out of order: the chain is taken in date order.
    read(
        &op,
        &[
            leg("a3", "A", &d("10:20:00"), "3", "1"),
            leg("a1", "A", &d("10:00:00"), "1", "2"),
            leg("a2", "A", &d("10:10:00"), "2", "3"),
            leg("a4", "A", &d("10:30:00"), "1", "2"),
            // To a skill: never a return, even from an agent who held the call.
            leg("a5", "A", &d("10:40:00"), "2", "-"),
            // Back to its own sender's first agent in another call: not this chain's.
            leg("b1", "B", &d("10:00:00"), "2", "1"),
        ],
    );
    settle(&op, "13:00:00");
    assert_eq!(counts(&op), ([1, 0, 1], 0, vec![("1".into(), 1), ("3".into(), 1)], 0));
}

#[test]
fn a_leg_past_the_horizon_starts_a_new_chain_of_the_same_call() {
    let op = operation(&testing::metrics(&[60.0], 100));
    read(
        &op,
        &[
            leg("a1", "A", &d("10:00:00"), "1", "2"),
            leg("a2", "A", &d("11:00:00"), "2", "1"),
            leg("a3", "A", &d("12:00:01"), "1", "2"),
            leg("a4", "A", &d("13:00:00"), "2", "1"),
        ],
    );
    assert_eq!(counts(&op).3, 2, "two chains of one call open at once");
    settle(&op, "12:00:00");
    assert_eq!(counts(&op), ([0, 1, 0], 0, vec![("2".into(), 1)], 1));
    settle(&op, "14:00:01");
    // The second chain starts afresh: agent 2 sending back to 1 is a return in it only
    // because 1 held the call in that chain.
    assert_eq!(counts(&op), ([0, 2, 0], 0, vec![("2".into(), 2)], 0));
}

#[test]
fn late_legs_join_their_open_chain_and_cut_it_again_from_its_new_first_leg() {
    let op = operation(&testing::metrics(&[60.0], 100));
    read(
        &op,
        &[
            leg("a2", "A", &d("10:05:00"), "2", "3"),
            leg("a3", "A", &d("12:03:00"), "3", "4"),
            leg("a4", "A", &d("12:04:00"), "4", "2"),
        ],
    );
    settle(&op, "09:30:00");
    // Read again in the overlap, a leg the API showed late: the call's first.
    read(&op, &[leg("a1", "A", &d("10:00:00"), "1", "2")]);
    assert_eq!(counts(&op).3, 2, "cut into 10:00-10:05 and 12:03-12:04");
    settle(&op, "12:00:00");
    assert_eq!(counts(&op), ([0, 1, 0], 0, vec![], 1));
    // A leg the API showed only after the watermark passed it (beyond the overlap)
    // belongs to no open chain: a chain of its own, counted at once.
    read(&op, &[leg("a0", "A", &d("09:59:00"), "1", "2")]);
    assert_eq!(counts(&op), ([1, 1, 0], 0, vec![], 1));
    // One that falls in an open chain joins it.
    read(&op, &[leg("a5", "A", &d("12:05:00"), "2", "3")]);
    settle(&op, "15:00:00");
    assert_eq!(counts(&op), ([1, 1, 1], 0, vec![("2".into(), 1)], 0));
}

#[test]
fn past_max_open_chains_the_oldest_settle_early_with_one_notice() {
    let mut metrics = testing::metrics(&[60.0], 100);
    metrics.max_open_chains = 2;
    let op = operation(&metrics);
    let tally = testing::ingest(
        &op,
        NAME,
        &[
            leg("a1", "A", &d("10:00:00"), "1", "2"),
            leg("b1", "B", &d("10:01:00"), "1", "2"),
            leg("c1", "C", &d("10:02:00"), "1", "2"),
            leg("d1", "D", &d("10:03:00"), "1", "2"),
        ],
        testing::day(),
    );
    assert_eq!(tally.notices.len(), 1, "{:?}", tally.notices);
    assert!(tally.notices[0].message.contains("max_open_chains (2)"));
    assert_eq!(counts(&op), ([2, 0, 0], 2, vec![], 2));
    // A later leg of an evicted call opens a new chain; the eviction is counted again.
    let tally = testing::ingest(&op, NAME, &[leg("a2", "A", &d("10:30:00"), "2", "1")], testing::day());
    assert_eq!(tally.notices.len(), 1);
    settle(&op, "13:00:00");
    assert_eq!(counts(&op), ([5, 0, 0], 3, vec![], 0));
}

#[test]
fn agents_past_max_agents_send_calls_back_as_the_overflow_agent() {
    // Agents 1 and 2 are admitted (the page's destinations first); 9 is not.
    let op = operation(&testing::metrics(&[60.0], 2));
    read(&op, &[leg("a1", "A", &d("10:00:00"), "1", "2"), leg("a2", "A", &d("10:01:00"), "9", "1")]);
    settle(&op, "13:00:00");
    assert_eq!(counts(&op), ([0, 1, 0], 0, vec![(OVERFLOW_AGENT.into(), 1)], 0));
}

/// The report's counters saved and restored as the state file does.
fn restart(op: &OperationStore, metrics: &MetricsConfig) -> std::sync::Arc<OperationStore> {
    let saved = {
        let data = op.read();
        let slot = &data.reports[0];
        slot.report.save(&slot.counters)
    };
    let fresh = operation(metrics);
    {
        let mut data = fresh.data();
        let (counters, warning) = data.reports[0].report.restore(&saved).unwrap();
        assert_eq!(warning, None);
        data.reports[0].counters = counters;
        data.agents = op.read().agents.clone();
    }
    fresh
}

#[test]
fn open_chains_survive_a_restart_whole() {
    let metrics = testing::metrics(&[60.0], 100);
    let pages = [
        vec![
            leg("a1", "A", &d("10:00:00"), "1", "2"),
            leg("b1", "B", &d("10:00:00"), "1", "2"),
            leg("b2", "B", &d("10:00:30"), "2", "1"),
        ],
        vec![
            leg("a2", "A", &d("11:00:00"), "2", "1"),
            leg("a3", "A", &d("12:30:00"), "1", "3"),
            leg("c1", "C", &d("11:30:00"), "3", "-"),
        ],
        vec![leg("a4", "A", &d("12:40:00"), "3", "1")],
    ];
    let run = |restart_after: Option<usize>| {
        let mut op = operation(&metrics);
        for (i, page) in pages.iter().enumerate() {
            read(&op, page);
            settle(&op, ["10:30:00", "12:05:00", "14:00:00"][i]);
            if restart_after == Some(i) {
                op = restart(&op, &metrics);
            }
        }
        settle(&op, "16:00:00");
        counts(&op)
    };
    let whole = run(None);
    assert_eq!(whole, ([1, 3, 0], 0, vec![("2".into(), 2), ("3".into(), 1)], 0));
    for after in 0..3 {
        assert_eq!(run(Some(after)), whole, "restarted after page {after}");
    }
}

#[test]
fn a_state_saved_before_chains_loads_and_a_bad_one_is_refused() {
    let op = operation(&testing::metrics(&[60.0], 100));
    let data = op.read();
    let report = &data.reports[0].report;
    let old = serde_json::value::to_raw_value(&json!({"origins": {}, "overflow": {}})).unwrap();
    let (counters, _) = report.restore(&old).unwrap();
    let c: &FlowCounters = counters.downcast_ref().unwrap();
    assert_eq!((c.chains.starts.len(), c.chains.through), (0, None));
    let bad = json!({"origins": {}, "overflow": {},
                     "chains": {"agents": ["1"], "legs": [[7, 1, 2, 0, 5]], "starts": [[7, 1]]}});
    let err = report.restore(&serde_json::value::to_raw_value(&bad).unwrap()).unwrap_err();
    assert!(err.contains("names agent 5 of 1"), "{err}");
}

#[test]
fn chain_series_exist_from_the_start() {
    let op = operation(&testing::metrics(&[60.0], 100));
    let text = render_data(&op, DataPart::Report(NAME));
    for line in [
        "wolkvox_transfer_chains_total{operation=\"op\",transfers=\"1\"} 0",
        "wolkvox_transfer_chains_total{operation=\"op\",transfers=\"2\"} 0",
        "wolkvox_transfer_chains_total{operation=\"op\",transfers=\"3+\"} 0",
        "wolkvox_transfer_chains_evicted_total{operation=\"op\"} 0",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    assert!(!text.contains("wolkvox_agent_transfers_returned_total{"));
    read(&op, &[leg("a1", "A", &d("10:00:00"), "1", "2"), leg("a2", "A", &d("10:01:00"), "2", "1")]);
    settle(&op, "13:00:00");
    let text = render_data(&op, DataPart::Report(NAME));
    assert!(text.contains("wolkvox_agent_transfers_returned_total{operation=\"op\",agent_id=\"2\"} 1"));
    assert!(text.contains("wolkvox_transfer_chains_total{operation=\"op\",transfers=\"2\"} 1"));
}
