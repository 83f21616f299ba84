//! What the server answers for each report and query, and the truth it reports.

use super::*;

#[tokio::test]
async fn same_seed_gives_the_same_answers() {
    let a = Wolkvox::start(config());
    let b = Wolkvox::start(config());
    let mut other = config();
    other.sim.seed = 2;
    let c = Wolkvox::start(other);
    let q = query(MORNING.0, MORNING.1);
    let (sa, body_a) = get(&a, &q).await.unwrap();
    let (_, body_b) = get(&b, &q).await.unwrap();
    let (_, body_c) = get(&c, &q).await.unwrap();
    assert_eq!(sa, 200);
    assert!(data(&body_a).len() > 100);
    assert_eq!(body_a, body_b);
    assert_ne!(body_a, body_c);
}

#[tokio::test]
async fn whole_history_matches_the_truth() {
    let fake = Wolkvox::start(config());
    let (status, body) = get(&fake, &query(MORNING.0, MORNING.1)).await.unwrap();
    assert_eq!(status, 200);
    let rows = data(&body);
    let truth = fake.truth::<TransfersTruth>();
    assert_eq!(rows.len() as u64, truth.total());
    for row in &rows {
        for field in ["agent_name", "agent_id", "conn_id", "date", "telephone", "type_interaction", "time"] {
            assert!(row[field].is_string(), "{field} in {row}");
        }
    }
    let count = |agent: &str, kind: &str| {
        rows.iter().filter(|r| r["agent_id"] == agent && r["type_interaction"] == kind).count() as u64
    };
    for ((agent, kind), series) in &truth.series {
        assert_eq!(count(agent, kind), series.count, "{agent} {kind}");
        assert_eq!(series.durations.len() as u64, series.count);
        assert_eq!(series.durations.iter().sum::<u64>(), series.sum_secs);
        let buckets = series.cumulative_buckets(&[60.0, 300.0]);
        assert_eq!(buckets.len(), 3);
        assert!(buckets[0] <= buckets[1] && buckets[1] <= buckets[2]);
        assert_eq!(buckets[2], series.count);
    }
    assert_eq!(truth.names.len(), 10);
    assert_eq!(fake.served_ids("agent_13").len(), rows.len());
    let log = fake.served_log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].records, rows.len());
    assert_eq!(fake.max_range_seconds(), 4 * 3600 - 1);
}

#[tokio::test]
async fn an_empty_window_is_404() {
    let fake = Wolkvox::start(config());
    let (status, body) = get(&fake, &query("20250309080000", "20250309100000")).await.unwrap();
    assert_eq!(status, 404);
    assert_eq!(body, error_body(404, "Validate dates entered"));
}

#[tokio::test]
async fn bad_queries_are_400() {
    let fake = Wolkvox::start(config());
    let bad = error_body(400, text::BAD_REQUEST);
    for q in [
        query("20250201000000", "20250310000000"),
        query("2025031008000", "20250310115959"),
        query("20250310120000", "20250310080000"),
        "api=agent_13&date_ini=20250310080000".to_string(),
    ] {
        assert_eq!(get(&fake, &q).await.unwrap(), (400, bad.clone()), "{q}");
    }
    let unknown = "api=agent_99&date_ini=20250310080000&date_end=20250310115959";
    let refused = (400, error_body(400, text::UNKNOWN_API));
    assert_eq!(get(&fake, unknown).await.unwrap(), refused);
    let exactly_31_days = query("20250207090000", "20250310090000");
    assert_eq!(get(&fake, &exactly_31_days).await.unwrap().0, 200);
    let log = fake.served_log();
    assert!(log[0].request.range_days().unwrap() > 31.0);
    assert_eq!(fake.max_range_seconds(), 37 * 86_400);
}

#[tokio::test]
async fn answers_stop_at_60000_records() {
    let mut config = config();
    config.sim.bursts.push(Burst {
        start: t("2025-03-10T14:00:00Z"),
        duration: chrono::Duration::minutes(5),
        records: 61_000,
    });
    let fake = Wolkvox::start(config);
    let (status, body) = get(&fake, &query("20250310090000", "20250310090459")).await.unwrap();
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["msg"], "60000 records were found");
    assert_eq!(v["data"].as_array().unwrap().len(), 60_000);
    let log = fake.served_log();
    assert!(log[0].truncated);
    assert_eq!(log[0].records, 60_000);
    assert!(fake.truth::<TransfersTruth>().total() > 61_000);
}

#[tokio::test]
async fn late_records_show_up_only_once_visible() {
    let mut config = config();
    config.sim.late_fraction = 1.0;
    config.sim.late_by = (Duration::from_secs(180), Duration::from_secs(180));
    // 10:00 local; the last three minutes are not visible yet.
    let clock = TestClock::at(t("2025-03-10T15:00:00Z"));
    config.clock = clock.clock();
    let fake = Wolkvox::start(config);
    let q = query("20250310093000", "20250310095959");
    let early = data(&get(&fake, &q).await.unwrap().1);
    let visible =
        fake.truth_between::<TransfersTruth>(t("2025-03-10T14:30:00Z"), t("2025-03-10T14:57:00Z")).total();
    assert_eq!(early.len() as u64, visible);
    clock.set(t("2025-03-10T15:03:00Z"));
    let later = data(&get(&fake, &q).await.unwrap().1);
    let all =
        fake.truth_between::<TransfersTruth>(t("2025-03-10T14:30:00Z"), t("2025-03-10T14:59:59Z")).total();
    assert_eq!(later.len() as u64, all);
    assert!(all > visible, "{all} > {visible}");
}

#[tokio::test]
async fn vendor_variants_can_be_switched_on() {
    let mut config = config();
    config.format.code_as_string = true;
    config.format.single_object_data = true;
    let fake = Wolkvox::start(config);
    let records = fake.simulator().records_local(
        NaiveDateTime::parse_from_str("2025-03-10 08:00:00", "%Y-%m-%d %H:%M:%S").unwrap(),
        NaiveDateTime::parse_from_str("2025-03-10 11:59:59", "%Y-%m-%d %H:%M:%S").unwrap(),
        None,
    );
    let lonely = records
        .iter()
        .find(|r| records.iter().filter(|o| o.local_date == r.local_date).count() == 1)
        .unwrap();
    let second = lonely.local_date.format("%Y%m%d%H%M%S").to_string();
    let (status, body) = get(&fake, &query(&second, &second)).await.unwrap();
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["code"], "200");
    assert_eq!(v["data"]["conn_id"], lonely.conn_id.as_str());
    let (_, many) = get(&fake, &query(MORNING.0, MORNING.1)).await.unwrap();
    assert!(data(&many).len() > 1);
}

#[tokio::test]
async fn a_shifted_zone_writes_dates_outside_the_window() {
    let mut config = config();
    config.format.shift_hours = 2;
    let fake = Wolkvox::start(config);
    let (_, body) = get(&fake, &query("20250310090000", "20250310095959")).await.unwrap();
    let rows = data(&body);
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r["date"].as_str().unwrap().starts_with("2025-03-10 11:")));
}

#[tokio::test]
async fn fall_back_serves_both_passes_of_the_hour() {
    let mut config = WolkvoxConfig::bounded(t("2025-11-02T04:00:00Z"), t("2025-11-02T08:00:00Z"));
    config.sim.timezone = chrono_tz::America::New_York;
    config.sim.peak_per_agent_hour = 200.0;
    let fake = Wolkvox::start(config);
    let (_, body) = get(&fake, &query("20251102010000", "20251102015959")).await.unwrap();
    let both =
        fake.truth_between::<TransfersTruth>(t("2025-11-02T05:00:00Z"), t("2025-11-02T06:59:59Z")).total();
    assert!(both > 0);
    assert_eq!(data(&body).len() as u64, both);
}

/// agent_13 leaves the hidden share out; agent_12 counts it, and its truth says by how
/// much.
#[tokio::test]
async fn agent_12_counts_what_agent_13_hides() {
    let mut config = config();
    config.sim.hidden_share = 0.1;
    let fake = Wolkvox::start(config);
    let transfers = data(&get(&fake, &query(MORNING.0, MORNING.1)).await.unwrap().1);
    let totals_query = format!("api=agent_12&date_ini={}&date_end={}", MORNING.0, MORNING.1);
    let totals = data(&get(&fake, &totals_query).await.unwrap().1);
    let counted = |field: &str| -> u64 {
        totals.iter().map(|t| t[field].as_str().unwrap().parse::<u64>().unwrap()).sum()
    };
    let shown: TransfersTruth = fake.truth();
    let all: crate::TotalsTruth = fake.truth();
    let difference = all.beyond(&shown);
    assert_eq!(transfers.len() as u64, shown.total());
    assert_eq!(
        counted("transfer_calls") + counted("conference_calls"),
        shown.total() + difference.transfers + difference.conferences
    );
    assert!(difference.transfers > 0 && difference.conferences > 0, "{difference:?}");
    let hidden = fake
        .simulator()
        .records_between(t("2025-03-10T13:00:00Z"), t("2025-03-10T17:00:00Z"))
        .into_iter()
        .filter(|r| fake.simulator().hidden(r))
        .collect::<Vec<_>>();
    assert_eq!(hidden.len() as u64, difference.transfers + difference.conferences);
    let served = fake.served_ids("agent_13");
    assert!(hidden.iter().all(|r| !served.contains(&r.conn_id)));
}
