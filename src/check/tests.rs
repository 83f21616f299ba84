use chrono::NaiveDate;

use super::*;
use crate::config::{FileConfig, Overrides};

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().with_timezone(&Utc)
}

#[test]
fn the_window_is_ten_minutes_ending_a_minute_ago_in_local_time() {
    let day = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
    let (ini, end) = window(at("2026-11-26T16:00:30.750Z"), chrono_tz::America::Bogota);
    assert_eq!(ini, day.and_hms_opt(10, 49, 30).unwrap());
    assert_eq!(end, day.and_hms_opt(10, 59, 30).unwrap());
    // In the repeated hour of a DST change the window still runs forwards.
    let (ini, end) = window(at("2026-11-01T06:05:00Z"), chrono_tz::America::New_York);
    let day = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    assert_eq!((ini, end), (day.and_hms_opt(0, 54, 0).unwrap(), day.and_hms_opt(1, 4, 0).unwrap()));
}

/// The demo's simulated Wolkvox answers every report and token_info, so `check --demo`
/// shows a working operation.
#[tokio::test]
async fn the_demo_operation_checks_out() {
    let now = Utc::now();
    let api = wolkvox_sim::Wolkvox::spawn(wolkvox_sim::WolkvoxConfig::demo(now)).unwrap();
    let file = FileConfig {
        operations: vec![crate::cli::demo_operation(api.base_url(), api.token())],
        ..FileConfig::default()
    };
    let config = Config::build(file, &Overrides::default(), |_| None).unwrap();
    let checked = run(&config, Shard::ALL, now).await;

    let text = checked.render();
    assert!(checked.ok(), "{text}");
    let op = &checked.operations[0];
    assert_eq!(op.answers.len(), crate::reports::KINDS.len());
    for answer in &op.answers {
        assert!(matches!(answer, Some(Ok(Answered::Records(n))) if *n > 0), "{text}");
    }
    let reports = op.answers.len() as u64;
    let info = op.info().unwrap().clone();
    assert_eq!(info.limit, Some(wolkvox_sim::UNLIMITED_TOKEN_LIMIT));
    assert_eq!(
        info.limit,
        Some(u64::from(crate::cli::DEMO_LICENSES) * 1000),
        "the demo operation's licenses match its API's limit"
    );
    assert_eq!(info.token_today, Some(reports + 1), "{text}");
    assert_eq!(checked.spent(), reports + 1);
    assert!(
        text.ends_with(&format!("summary: 1 operation checked, all OK; {} requests spent\n", reports + 1)),
        "{text}"
    );
    assert!(!text.contains(api.token()), "{text}");
}

#[test]
fn an_empty_shard_says_so() {
    let checked = Checked {
        shard: Shard::new(2, 3).unwrap(),
        operations: Vec::new(),
        elsewhere: "bogota: shard 0/3".into(),
    };
    assert!(!checked.ok(), "a shard that follows nothing is a failure");
    assert_eq!(
        checked.render(),
        "summary: FAILED: shard 2/3 follows none of the configured operations (bogota: shard 0/3); check --shard\n"
    );
}
