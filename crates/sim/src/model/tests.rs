use super::*;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[test]
fn minutes_are_independent_of_the_range_asked() {
    let sim = Simulator::new(SimConfig::bounded(t("2025-03-10T12:00:00Z"), t("2025-03-10T20:00:00Z")));
    let whole = sim.records_between(t("2025-03-10T13:00:00Z"), t("2025-03-10T15:00:00Z"));
    let other = Simulator::new(sim.config().clone());
    let mut parts = other.records_between(t("2025-03-10T14:00:00Z"), t("2025-03-10T15:00:00Z"));
    let mut first = other.records_between(t("2025-03-10T13:00:00Z"), t("2025-03-10T13:59:59Z"));
    first.append(&mut parts);
    assert!(whole.len() > 50, "{} records", whole.len());
    assert_eq!(whole, first);
}

#[test]
fn conn_ids_are_unique_even_in_a_burst() {
    let mut config = SimConfig::bounded(t("2025-03-10T12:00:00Z"), t("2025-03-10T13:00:00Z"));
    config.bursts.push(Burst {
        start: t("2025-03-10T12:10:00Z"),
        duration: Duration::minutes(2),
        records: 5_000,
    });
    let sim = Simulator::new(config);
    let records = sim.records_between(t("2025-03-10T12:00:00Z"), t("2025-03-10T13:00:00Z"));
    let bursty = records
        .iter()
        .filter(|r| r.at >= t("2025-03-10T12:10:00Z") && r.at < t("2025-03-10T12:12:00Z"))
        .count();
    assert!(bursty >= 5_000);
    let ids: std::collections::HashSet<_> = records.iter().map(|r| &r.conn_id).collect();
    assert_eq!(ids.len(), records.len());
}

#[test]
fn the_day_has_a_shape() {
    let sim = Simulator::new(SimConfig::bounded(t("2025-03-10T00:00:00Z"), t("2025-03-12T00:00:00Z")));
    // Bogota is UTC-5: 15:30 UTC is 10:30 local, 08:00 UTC is 03:00 local.
    let peak = sim.expected_per_minute(t("2025-03-11T15:30:00Z"));
    let night = sim.expected_per_minute(t("2025-03-11T08:00:00Z"));
    assert!((peak - 10.0 * 12.0 / 60.0).abs() < 0.01, "peak {peak}");
    assert!(night < peak / 10.0, "night {night}");
}

#[test]
fn fall_back_repeats_local_times() {
    let mut config = SimConfig::bounded(t("2025-11-02T04:00:00Z"), t("2025-11-02T08:00:00Z"));
    config.timezone = chrono_tz::America::New_York;
    config.peak_per_agent_hour = 600.0;
    let sim = Simulator::new(config);
    let ini = NaiveDateTime::parse_from_str("2025-11-02 01:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
    let end = NaiveDateTime::parse_from_str("2025-11-02 01:59:59", "%Y-%m-%d %H:%M:%S").unwrap();
    let local = sim.records_local(ini, end, None);
    // 01:00-01:59 local happens at 05:00-05:59 UTC (EDT) and again at 06:00-06:59 (EST).
    let utc = sim.records_between(t("2025-11-02T05:00:00Z"), t("2025-11-02T06:59:59Z"));
    assert!(!local.is_empty());
    assert_eq!(local.len(), utc.len());
    assert!(local.windows(2).all(|w| w[0].local_date <= w[1].local_date));
}

/// What a record is, apart from where in real time it was placed.
fn shape(sim: &Simulator, r: &SimRecord) -> (i64, String, &'static str, u64, String) {
    (
        (r.at - sim.config().start).num_seconds(),
        r.agent_id.clone(),
        r.interaction,
        r.duration_secs,
        r.telephone.clone(),
    )
}

#[test]
fn an_anchored_history_is_the_same_wherever_it_is_placed() {
    // Two days before a Monday are a quiet weekend; anchored to a Tuesday they are
    // the Tuesday's and Wednesday's records, whatever real days they are placed on.
    let anchor = t("2025-03-11T00:00:00Z");
    let reference = Simulator::new(SimConfig::bounded(anchor, anchor + Duration::days(2)));
    let placed = |start: DateTime<Utc>| {
        let mut config = SimConfig::bounded(start, start + Duration::days(2));
        config.anchor = anchor;
        Simulator::new(config)
    };
    let all = |sim: &Simulator| {
        let c = sim.config();
        sim.records_between(c.start, c.end.unwrap()).iter().map(|r| shape(sim, r)).collect::<Vec<_>>()
    };
    let want = all(&reference);
    assert!(want.len() > 1_500, "{} records", want.len());
    for start in [t("2026-11-28T05:30:00Z"), t("2031-07-05T17:07:00Z")] {
        let sim = placed(start);
        assert_eq!(all(&sim), want, "placed at {start}");
        assert_eq!(
            sim.expected_per_minute(start + Duration::hours(15)),
            reference.expected_per_minute(anchor + Duration::hours(15))
        );
    }
    // Unanchored, the same weekend is another, quieter history.
    let weekend = SimConfig::bounded(t("2026-11-28T05:30:00Z"), t("2026-11-30T05:30:00Z"));
    assert!(all(&Simulator::new(weekend)).len() < want.len() / 2);
}

#[test]
fn renames_apply_from_their_instant() {
    let now = t("2025-03-12T00:00:00Z");
    let sim = Simulator::new(SimConfig::demo(now));
    let index = 6;
    assert_eq!(sim.agents()[index].id, "1007");
    let at = sim.config().renames[0].at;
    assert_eq!(sim.name_at(index, at - Duration::seconds(1)), sim.agents()[index].name);
    assert_eq!(sim.name_at(index, at), "María Fernanda Gómez de Ruiz");
}

/// The demo's story: the new consultant transfers far more than the others at first and
/// as often once settled; skill 7 takes most escalations; the burst comes later.
#[test]
fn the_demo_tells_its_story() {
    let now = t("2025-03-12T00:00:00Z");
    let sim = Simulator::new(SimConfig::demo(now));
    let new = sim.config().newcomer.clone().unwrap();
    let id = &sim.agents()[new.index].id;
    let rate = |from: DateTime<Utc>, to: DateTime<Utc>, mine: bool| {
        let of = |agent: &String| (agent == id) == mine;
        let transfers = sim.records_between(from, to).iter().filter(|r| of(&r.agent_id)).count();
        let calls = sim.calls_between(from, to).iter().filter(|c| of(&c.agent_id)).count();
        transfers as f64 / calls as f64
    };
    assert!(sim
        .records_between(new.joined - Duration::days(30), new.joined)
        .iter()
        .all(|r| &r.agent_id != id));
    let early = (new.joined, new.joined + Duration::hours(2));
    let late = (new.settled, new.settled + Duration::hours(6));
    assert!(rate(early.0, early.1, true) > 2.0 * rate(early.0, early.1, false));
    let settled = rate(late.0, late.1, true) / rate(late.0, late.1, false);
    assert!((0.6..1.6).contains(&settled), "settled at {settled}x the others");

    let legs = sim.legs_between(now - Duration::days(7), now);
    let to_skill =
        |s: &str| legs.iter().filter(|l| l.destination == super::SimDestination::Skill(s.to_owned())).count();
    assert!(to_skill("7") > to_skill("12") + to_skill("15") + to_skill("21"));
    assert!(sim.config().bursts.iter().all(|b| b.start > now));
}

#[test]
fn calls_are_passed_on_in_chains_with_returns_late_legs_and_legs_past_the_horizon() {
    use crate::reports::agent_13_1::ChainsTruth;
    let (start, end) = (t("2025-03-10T12:00:00Z"), t("2025-03-11T00:00:00Z"));
    let mut config = SimConfig::bounded(start, end);
    config.late_fraction = 0.2;
    let sim = Simulator::new(config);
    let legs = sim.legs_between(start, end);
    // Minute by minute, in any order, the same legs.
    let other = Simulator::new(sim.config().clone());
    let mut later = other.legs_between(t("2025-03-10T18:00:00Z"), end);
    let mut parts = other.legs_between(start, t("2025-03-10T17:59:59Z"));
    parts.append(&mut later);
    assert_eq!(legs, parts);
    let ids: std::collections::HashSet<_> = legs.iter().map(|l| &l.leg_id).collect();
    assert_eq!(ids.len(), legs.len());
    // Each call's first leg is its agent_13 record's; the legs passed on are transfers
    // after it, each reaching an agent with that agent's internal leg in cdr_1.
    let records = sim.records_between(start, end);
    let calls = sim.calls_between(start, end);
    let internal: std::collections::HashSet<_> = calls.iter().map(|c| &c.conn_id).collect();
    let mut by_call: std::collections::BTreeMap<&str, Vec<&SimLeg>> = Default::default();
    for l in &legs {
        by_call.entry(&l.call_id).or_default().push(l);
    }
    assert_eq!(by_call.len(), records.len());
    let (mut passed, mut late, mut past_open, mut past_settled) = (0, 0, 0, 0);
    for r in &records {
        let chain = &by_call[r.conn_id.as_str()];
        assert_eq!(chain[0].leg_id, format!("{}T", r.conn_id));
        assert_eq!(chain[0].at, r.at);
        for l in &chain[1..] {
            assert!(l.at > r.at && l.kind == "transfer" && r.interaction == "transfer");
            if let SimDestination::Agent { .. } = l.destination {
                assert!(internal.contains(&format!("{}I", l.leg_id)), "{}", l.leg_id);
            }
            passed += 1;
            late += usize::from(l.visible_at > l.at);
            let after = l.at - r.at;
            past_open += usize::from(after > Duration::hours(2) && after < Duration::minutes(150));
            past_settled += usize::from(after > Duration::minutes(150));
        }
    }
    assert!(passed > 100 && late > 10, "{passed} legs passed on, {late} late");
    assert!(past_open > 0 && past_settled > 0, "{past_open} {past_settled}");
    // Chains of every length, calls sent back; the settled ones only grow.
    let horizon = Duration::hours(2);
    let at = |s: &str| sim.local(t(s));
    let all = ChainsTruth::settled(&legs, at("2025-03-12T00:00:00Z"), horizon);
    assert!(all.chains.iter().all(|n| *n > 10), "{all:?}");
    assert!(all.returned.values().sum::<u64>() > 10, "{all:?}");
    let transfers = legs.iter().filter(|l| l.kind == "transfer").count() as u64;
    assert!(all.total() > records.iter().filter(|r| r.interaction == "transfer").count() as u64);
    assert!(all.total() < transfers);
    let part = ChainsTruth::settled(&legs, at("2025-03-10T20:00:00Z"), horizon);
    assert!(part.total() > 0 && (0..3).all(|i| part.chains[i] <= all.chains[i]));
}
