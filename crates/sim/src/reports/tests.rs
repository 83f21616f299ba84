use super::agent_13::Transfers;
use super::*;
use crate::model::{Burst, SimConfig, SimRecord};
use wolkvox_api::text::{BAD_REQUEST, UNKNOWN_API};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn sim() -> Simulator {
    Simulator::new(SimConfig::bounded(t("2025-03-10T13:00:00Z"), t("2025-03-10T17:00:00Z")))
}

#[test]
fn parses_only_what_the_api_accepts() {
    let ok = "api=agent_13&date_ini=20250310080000&date_end=20250310085959";
    let q = Query::parse(ok).unwrap();
    assert_eq!(q.end - q.ini, Duration::seconds(3599));
    for bad in [
        "",
        "api=agent_99&date_ini=20250310080000&date_end=20250310085959",
        "api=agent_13&date_ini=2025031008000&date_end=20250310085959",
        "api=agent_13&date_ini=20251310080000&date_end=20251310085959",
        "api=agent_13&date_ini=2025-03-10T0800&date_end=20250310085959",
        "api=agent_13&date_ini=20250310080000",
        "api=agent_13&date_ini=20250310090000&date_end=20250310085959",
        "api=agent_13&date_ini=20250101000000&date_end=20250201000001",
    ] {
        assert_eq!(Query::parse(bad), None, "{bad}");
    }
    let month = "api=agent_13&date_ini=20250101000000&date_end=20250201000000";
    assert!(Query::parse(month).is_some());
}

#[test]
fn body_matches_the_vendor_shape() {
    let sim = sim();
    let now = t("2025-03-11T00:00:00Z");
    let q = "api=agent_13&date_ini=20250310080000&date_end=20250310100000";
    let answer = respond(&sim, q, now, &Format::default());
    assert_eq!(answer.status, 200);
    let v: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(v["code"], 200);
    assert!(v["error"].is_null());
    let data = v["data"].as_array().unwrap();
    let records = Transfers::rows(&sim, &Query::parse(q).unwrap(), now, RECORD_CAP);
    assert_eq!(data.len(), records.len());
    assert_eq!(answer.ids.len(), records.len());
    assert_eq!(v["msg"].as_str().unwrap(), format!("{} records were found", data.len()));
    for (row, record) in data.iter().zip(&records) {
        let row = row.as_object().unwrap();
        assert_eq!(row.len(), 7);
        assert!(row.values().all(|v| v.is_string()));
        assert_eq!(row["conn_id"], record.conn_id.as_str());
        let d = record.duration_secs;
        let time = format!("{:02}:{:02}:{:02}", d / 3600, d % 3600 / 60, d % 60);
        assert_eq!(row["time"], time.as_str());
        let date = record.local_date.format("%Y-%m-%d %H:%M:%S").to_string();
        assert_eq!(row["date"], date.as_str());
    }
}

#[test]
fn empty_window_is_404_with_the_vendor_body() {
    let q = "api=agent_13&date_ini=20240310080000&date_end=20240310100000";
    let answer = respond(&sim(), q, t("2025-03-11T00:00:00Z"), &Format::default());
    assert_eq!(answer.status, 404);
    assert_eq!(
        answer.body,
        r#"{"code":404,"error":"Validate dates entered","msg":"Validate dates entered","data":[]}"#
    );
}

#[test]
fn variants_and_escaping() {
    let mut record = sim().records_between(t("2025-03-10T13:00:00Z"), t("2025-03-10T17:00:00Z"))[0].clone();
    record.agent_name = "Ana \"la\" O'Connor\\\n".to_string();
    record.duration_secs = 26 * 3600 + 61;
    let format = Format { code_as_string: true, single_object_data: true, shift_hours: 1 };
    let answer = page::<Transfers>(&[record.clone()], &format);
    let v: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(v["code"], "200");
    assert_eq!(v["data"]["agent_name"], record.agent_name.as_str());
    assert_eq!(v["data"]["time"], "26:01:01");
    let shifted = (record.local_date + Duration::hours(1)).format("%Y-%m-%d %H:%M:%S").to_string();
    assert_eq!(v["data"]["date"], shifted.as_str());
}

#[test]
fn cuts_at_sixty_thousand() {
    let mut config = SimConfig::bounded(t("2025-03-10T13:00:00Z"), t("2025-03-10T14:00:00Z"));
    config.bursts.push(Burst {
        start: t("2025-03-10T13:20:00Z"),
        duration: Duration::minutes(5),
        records: RECORD_CAP + 500,
    });
    let sim = Simulator::new(config);
    let query = Query::parse("api=agent_13&date_ini=20250310082000&date_end=20250310082459").unwrap();
    let answer = answer(&sim, &query, t("2025-03-11T00:00:00Z"), &Format::default());
    assert!(answer.truncated);
    assert_eq!(answer.ids.len(), RECORD_CAP);
    let records: Vec<SimRecord> = Transfers::rows(&sim, &query, t("2025-03-11T00:00:00Z"), RECORD_CAP);
    assert_eq!(records.len(), RECORD_CAP + 1);
    assert!(answer.ids.iter().zip(&records).all(|(id, r)| *id == r.conn_id));
    assert!(records.windows(2).all(|w| w[0].local_date <= w[1].local_date));
}

#[test]
fn refusals_say_which_parameter_is_wrong() {
    let unknown = Query::refusal("api=agent_99&date_ini=20250310080000&date_end=20250310085959");
    assert_eq!((unknown.status, unknown.body.contains(UNKNOWN_API)), (400, true));
    let missing = Query::refusal("api=cdr_1&date_ini=20250310080000");
    assert_eq!((missing.status, missing.body.contains(BAD_REQUEST)), (400, true));
}

/// One call model behind every report: each transfer or conference is a call of its
/// agent in cdr_1 and a leg in agent_13_1 (which may be passed on in more legs), and
/// agent_12 adds them up.
#[test]
fn every_report_answers_from_one_call_model() {
    let sim = sim();
    let now = t("2025-03-11T00:00:00Z");
    let window = "date_ini=20250310080000&date_end=20250310115959";
    let get = |api: &str| {
        let a = respond(&sim, &format!("api={api}&{window}"), now, &Format::default());
        assert_eq!(a.status, 200, "{api}");
        let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
        v["data"].as_array().unwrap().clone()
    };
    let transfers = get("agent_13");
    let calls = get("cdr_1");
    let legs = get("agent_13_1");
    let totals = get("agent_12");
    assert!(calls.len() > 2 * transfers.len(), "{} calls for {} transfers", calls.len(), transfers.len());
    assert!(legs.len() > transfers.len(), "some calls are passed on");
    for t in &transfers {
        let conn = t["conn_id"].as_str().unwrap();
        let call = calls.iter().find(|c| c["conn_id"] == conn).expect("the transfer's call");
        assert_eq!(call["agent_id"], t["agent_id"]);
        assert_eq!(call["date"], t["date"]);
        let leg =
            legs.iter().find(|l| l["conn_id_transfer"] == format!("{conn}T")).expect("the transfer's leg");
        assert_eq!(leg["id_call_origin"], conn);
        assert_eq!(leg["origin_agent_id"], t["agent_id"]);
        assert_eq!(leg["type_call"], t["type_interaction"]);
    }
    for row in calls.iter().chain(&legs).chain(&totals) {
        assert!(row.as_object().unwrap().values().all(|v| v.is_string()), "{row}");
    }
    let summed: u64 = totals
        .iter()
        .map(|t| {
            t["transfer_calls"].as_str().unwrap().parse::<u64>().unwrap()
                + t["conference_calls"].as_str().unwrap().parse::<u64>().unwrap()
        })
        .sum();
    assert_eq!(summed, transfers.len() as u64);
    let kinds: std::collections::BTreeSet<_> = legs
        .iter()
        .map(|l| match (l["destiny_agent_id"].as_str().unwrap(), l["skill_id"].as_str().unwrap()) {
            ("-", "-") => "external",
            ("-", _) => "skill",
            _ => "agent",
        })
        .collect();
    assert_eq!(kinds.len(), 3, "legs go to agents, skills and outside");
}
