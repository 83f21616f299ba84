//! Property tests: the window planner over any range, split depth and zone (DST ones
//! included); the decoder and `client::interpret` over arbitrary bytes and JSON; label
//! values with hostile text through our parser, `promtool check metrics` and a real
//! Prometheus scrape.

use std::collections::BTreeSet;

use std::sync::Arc;
use std::time::Duration;

use crate::support::config::{Operation, TestConfig};
use crate::support::exporter::Exporter;
use crate::support::exposition::Exposition;
use crate::support::prometheus::{check_metrics, Prometheus};
use chrono::{DateTime, Duration as Span, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{json, Value};
use wolkvox_exporter::calendar::{self as windows, Window, MAX_SPAN};
use wolkvox_exporter::client::ErrorReason;
use wolkvox_exporter::engine::{Outcome, PageSpec};
use wolkvox_exporter::metrics::{Format, Renderer};
use wolkvox_exporter::reports::agent_13::Agent13Counters;
use wolkvox_exporter::reports::fields::{clean_label, MAX_ID_BYTES, MAX_NAME_BYTES};
use wolkvox_exporter::store::Store;
use wolkvox_exporter::web::ReloadStats;
use wolkvox_sim::{Schedule, Wolkvox, WolkvoxConfig};

// ---------------------------------------------------------------- window planner

/// Zones with every kind of clock change: none, DST both hemispheres, half-hour DST
/// (Lord Howe), odd offsets (Kathmandu, Chatham), a skipped day (Apia, 2011) and
/// several changes a year (Casablanca around Ramadan).
const ZONES: [Tz; 14] = [
    chrono_tz::UTC,
    chrono_tz::America::Bogota,
    chrono_tz::America::New_York,
    chrono_tz::America::Santiago,
    chrono_tz::America::Havana,
    chrono_tz::Europe::London,
    chrono_tz::Europe::Dublin,
    chrono_tz::Australia::Sydney,
    chrono_tz::Australia::Lord_Howe,
    chrono_tz::Pacific::Chatham,
    chrono_tz::Pacific::Apia,
    chrono_tz::Asia::Kathmandu,
    chrono_tz::Africa::Casablanca,
    chrono_tz::America::Mexico_City,
];

fn offset(t: DateTime<Utc>, tz: Tz) -> i32 {
    tz.offset_from_utc_datetime(&t.naive_utc()).fix().local_minus_utc()
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

/// Checks that `ws` tiles `[start, end]` and that every window is a valid request.
fn check_tiling(ws: &[Window], start: DateTime<Utc>, end: DateTime<Utc>, tz: Tz) {
    if end < start {
        assert!(ws.is_empty());
        return;
    }
    assert_eq!(ws.first().unwrap().start, start, "first window starts the range");
    assert_eq!(ws.last().unwrap().end, end, "last window ends the range");
    for pair in ws.windows(2) {
        assert_eq!(
            pair[0].end + Span::seconds(1),
            pair[1].start,
            "gap or overlap between {:?} and {:?}",
            pair[0],
            pair[1]
        );
    }
    let covered: i64 = ws.iter().map(Window::seconds).sum();
    assert_eq!(covered, (end - start).num_seconds() + 1, "seconds covered");
    for w in ws {
        assert!(w.start <= w.end, "{w:?}");
        assert!(w.seconds() <= MAX_SPAN.num_seconds(), "{w:?} over 31 days");
        let (ini, fin) = w.local_bounds(tz);
        assert!(fin - ini <= Span::days(31), "{w:?} local span over 31 days");
        // One UTC offset throughout: the local bounds cover exactly the window's instants.
        assert_eq!((fin - ini).num_seconds() + 1, w.seconds(), "{w:?} in {tz}");
        let base = offset(w.start, tz);
        let mut probe = w.start;
        while probe <= w.end {
            assert_eq!(offset(probe, tz), base, "offset changes inside {w:?} ({tz})");
            probe += Span::hours(3);
        }
        assert_eq!(offset(w.end, tz), base, "offset changes inside {w:?} ({tz})");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn planner_tiles_any_range_in_any_zone(
        zone in 0..ZONES.len(),
        // 1990 to 2045.
        start in 631_152_000i64..2_366_841_600,
        len in prop_oneof![0i64..7200, 0i64..(40 * 86_400), 0i64..(240 * 86_400)],
        backwards in proptest::bool::weighted(0.05),
        splits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..4), 0..24),
    ) {
        let tz = ZONES[zone];
        let (s, e) = if backwards { (at(start), at(start - 1 - len)) } else { (at(start), at(start + len)) };
        let mut ws = windows::plan(s, e, tz);
        check_tiling(&ws, s, e, tz);
        // Cap hits: any window may be halved, to any depth.
        for (index, depth) in splits {
            if ws.is_empty() {
                break;
            }
            let mut i = index.index(ws.len());
            for _ in 0..=depth {
                match ws[i].split() {
                    Some((l, r)) => {
                        assert_eq!(l.seconds() + r.seconds(), ws[i].seconds());
                        ws.splice(i..=i, [l, r]);
                    }
                    None => {
                        assert_eq!(ws[i].seconds(), 1, "only one-second windows cannot split");
                        break;
                    }
                }
                i += usize::from(index.index(2) == 1).min(ws.len() - 1 - i);
            }
        }
        check_tiling(&ws, s, e, tz);
    }
}

#[test]
fn planner_cuts_at_every_transition_of_a_year() {
    // Deterministic companion: a whole year in each zone, every clock change a boundary.
    for tz in ZONES {
        let s = at(1_767_225_600); // 2026-01-01T00:00:00Z
        let e = s + Span::days(366);
        let ws = windows::plan(s, e, tz);
        check_tiling(&ws, s, e, tz);
        for w in &ws[1..] {
            let changed = offset(w.start - Span::seconds(1), tz) != offset(w.start, tz);
            let cut_for_length = ws
                .iter()
                .any(|p| p.end + Span::seconds(1) == w.start && p.seconds() == MAX_SPAN.num_seconds());
            assert!(changed || cut_for_length, "needless cut before {w:?} in {tz}");
        }
    }
}

// ---------------------------------------------------------------- decoder

fn local(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
}

/// A store with one agent_13 operation named `name`, as the exporter builds it.
fn store(name: &str, max_agents: usize) -> Arc<Store> {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "metrics:\n  duration_buckets: [30, 60]\n  max_agents: {max_agents}\nstate:\n  path: {}\n\
         operations:\n  - name: {name}\n    base_url: http://127.0.0.1:1\n    token: t\n",
        dir.path().join("none.json").display()
    );
    let config = wolkvox_exporter::config::Config::build(
        wolkvox_exporter::config::FileConfig::parse(&yaml).unwrap(),
        &wolkvox_exporter::config::Overrides::default(),
        |_| None,
    )
    .unwrap();
    let restored_at = "2026-11-25T00:00:00Z".parse().unwrap();
    Arc::new(wolkvox_exporter::state::restore(&config, restored_at))
}

fn day() -> PageSpec {
    PageSpec {
        ini: local("2026-11-24 00:00:00"),
        end: local("2026-11-24 23:59:59"),
        may_split: false,
        late_before: None,
        overlap: chrono::Duration::minutes(30),
    }
}

/// Feeds an answer to the operation's first report (agent_13).
fn ingest(
    op: &wolkvox_exporter::store::OperationStore,
    status: u16,
    body: &[u8],
) -> Result<Outcome, wolkvox_exporter::client::ApiError> {
    wolkvox_exporter::engine::ingest(op, 0, status, body, day(), None)
}

/// Feeds an answer to a fresh store through the agent_13 report and checks the
/// accounting: every row ends counted, duplicate or rejected with a reason, and the
/// store stays bounded. The rows received, or `None` for an error.
fn check_answer(status: u16, body: &[u8]) -> Option<u64> {
    let store = store("op", 50);
    let op = &store.operations()[0];
    let out = match ingest(op, status, body) {
        Ok(Outcome::Counted(out)) if out.empty => return Some(0),
        Ok(Outcome::Counted(out)) => out,
        Ok(Outcome::Cut(_)) => panic!("a page that may not be split is counted"),
        Err(e) => {
            assert!(wolkvox_exporter::vocab::all::<ErrorReason>().any(|r| r == e.reason()), "{e:?}");
            return None;
        }
    };
    assert_eq!(out.counted + out.duplicate + out.invalid.values().sum::<u64>(), out.received, "{out:?}");
    let data = op.read();
    for (id, agent) in &data.agents.known {
        assert!(id.len() <= MAX_ID_BYTES && !id.chars().any(char::is_control));
        assert!(agent.name.len() <= MAX_NAME_BYTES && !agent.name.chars().any(char::is_control));
    }
    let counters: &Agent13Counters = data.reports[0].counters.downcast_ref().unwrap();
    let mut counted = 0;
    for series in counters.agents.values().chain([&counters.overflow]) {
        for h in series.values().flatten() {
            assert_eq!(h.buckets.iter().sum::<u64>(), h.count);
            counted += h.count;
        }
    }
    assert_eq!(counted, out.counted);
    Some(out.received)
}

fn statuses() -> impl Strategy<Value = u16> {
    prop_oneof![
        4 => Just(200u16),
        1 => Just(404u16),
        1 => Just(403u16),
        1 => Just(400u16),
        1 => Just(401u16),
        1 => Just(502u16),
        1 => 100u16..600,
    ]
}

/// Text with the characters that break naive encoders.
fn hostile_text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            3 => any::<char>(),
            2 => proptest::char::range('a', 'z'),
            1 => prop::sample::select(vec![
                '"', '\\', '\n', '\r', '\t', '\u{0}', '\u{1b}', '\u{7f}', '\u{85}', '\u{a0}',
                '\u{200b}', '\u{200d}', '\u{202e}', '\u{2028}', '\u{feff}', '\u{fffd}', 'Ã',
                '©', 'é', '🙂', '{', '}', '=', ',', ' ', '#',
            ]),
        ],
        0..max,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        hostile_text(24).prop_map(Value::String),
        prop::sample::select(vec![
            "00:02:05",
            "99999:59:59",
            "-1",
            "1:2",
            "",
            "2026-11-24 10:00:00",
            "0000-01-01 00:00:00",
            "9999-12-31 23:59:59",
            "transfer",
            "conference",
            "200",
        ])
        .prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    const KEYS: [&str; 12] = [
        "code",
        "error",
        "msg",
        "data",
        "agent_name",
        "agent_id",
        "conn_id",
        "date",
        "telephone",
        "type_interaction",
        "time",
        "other",
    ];
    json_leaf().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::vec((prop::sample::select(KEYS.to_vec()), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

fn record_value() -> impl Strategy<Value = Value> {
    let field = prop_oneof![4 => json_leaf(), 1 => json_value()];
    proptest::collection::vec(
        (
            prop::sample::select(vec![
                "agent_name",
                "agent_id",
                "conn_id",
                "date",
                "telephone",
                "type_interaction",
                "time",
                "extra",
            ]),
            field,
        ),
        0..9,
    )
    .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
}

/// An envelope in the vendor's shape, with anything inside, and the record count a
/// 200 answer must yield (`None` when the `code` makes it something else).
fn envelope() -> impl Strategy<Value = (Value, Option<usize>)> {
    let code = prop_oneof![
        Just((None, Some(true))),
        Just((Some(json!(200)), Some(true))),
        Just((Some(json!("200")), Some(true))),
        Just((Some(json!(200.0)), Some(true))),
        Just((Some(json!(404)), Some(false))),
        Just((Some(json!("403")), None)),
        Just((Some(json!(500)), None)),
        Just((Some(json!("abc")), Some(true))),
        Just((Some(json!(null)), Some(true))),
    ];
    let data = prop_oneof![
        proptest::collection::vec(prop_oneof![4 => record_value(), 1 => json_leaf()], 0..12).prop_map(|v| {
            let n = v.len();
            (Some(Value::Array(v)), n)
        }),
        record_value().prop_map(|v| (Some(v), 1)),
        Just((Some(Value::Null), 0)),
        Just((None, 0)),
        hostile_text(8).prop_map(|s| (Some(Value::String(s)), 1)),
    ];
    (code, data, json_leaf()).prop_map(|((code, records), (data, n), error)| {
        let mut env = serde_json::Map::new();
        if let Some(c) = code {
            env.insert("code".into(), c);
        }
        env.insert("error".into(), error);
        if let Some(d) = data {
            env.insert("data".into(), d);
        }
        let expect = match records {
            Some(true) => Some(n),
            Some(false) => Some(0),
            None => None,
        };
        (Value::Object(env), expect)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(status in statuses(), body in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_answer(status, &body);
    }

    #[test]
    fn arbitrary_json_never_panics(status in statuses(), value in json_value()) {
        let body = serde_json::to_vec(&value).unwrap();
        let outcome = check_answer(status, &body);
        // A 200 whose body is not a JSON object is never taken for records.
        if status == 200 && !value.is_object() {
            prop_assert_eq!(outcome, None);
        }
    }

    #[test]
    fn envelopes_yield_every_record(status in prop_oneof![3 => Just(200u16), 1 => statuses()], (value, expect) in envelope()) {
        let body = serde_json::to_vec(&value).unwrap();
        let outcome = check_answer(status, &body);
        if status == 200 {
            prop_assert_eq!(outcome, expect.map(|n| n as u64), "{}", value);
        }
    }

    #[test]
    fn damaged_bodies_are_errors_or_records(
        cut in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        status in statuses(),
    ) {
        let mut body = br#"{"code":200,"error":null,"msg":"2 records were found","data":[
            {"agent_name":"Ana \"La Jefa\" P\u00e9rez","agent_id":"1001","conn_id":"12462.0277.1782402643.44005","date":"2026-11-24 10:00:00","telephone":"3001234567","type_interaction":"transfer","time":"00:02:05"},
            {"agent_name":"Bo","agent_id":1002,"conn_id":"x","date":"2026-11-24 10:00:01","type_interaction":"conference","time":"26:00:00"}]}"#.to_vec();
        for (i, b) in flips {
            let i = i.index(body.len());
            body[i] = b;
        }
        body.truncate(cut.index(body.len() + 1));
        check_answer(status, &body);
    }
}

// ---------------------------------------------------------------- label values

const NAME_PREFIX: &str = "agent";

/// A store whose agents carry `names` (agent ids `"{i}-{name}"`), one transfer each.
fn store_with_names(names: &[String]) -> (Arc<Store>, Vec<(String, String)>) {
    let store = store(NAME_PREFIX, names.len() + 1);
    let records: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            json!({"agent_name": n, "agent_id": format!("{i}-{n}"), "conn_id": format!("c{i}"),
                   "date": "2026-11-24 10:00:00", "type_interaction": "transfer", "time": "00:00:45"})
        })
        .collect();
    let body = serde_json::to_vec(&json!({"code": 200, "data": records})).unwrap();
    let Ok(Outcome::Counted(out)) = ingest(&store.operations()[0], 200, &body) else {
        panic!("records expected")
    };
    assert_eq!(out.counted, names.len() as u64);
    let expected = names
        .iter()
        .enumerate()
        .map(|(i, n)| (clean_label(&format!("{i}-{n}"), MAX_ID_BYTES), clean_label(n, MAX_NAME_BYTES)))
        .collect();
    (store, expected)
}

fn renderer(store: Arc<Store>) -> Renderer {
    Renderer::new(store, Arc::new(ReloadStats::default()), true)
}

/// Our parser reads back exactly the cleaned id and name of every agent.
fn check_round_trip(text: &str, expected: &[(String, String)]) {
    let m = Exposition::parse(text);
    let got: BTreeSet<(String, String)> = m
        .select("wolkvox_agent_info", &[])
        .map(|s| (s.labels["agent_id"].clone(), s.labels["agent_name"].clone()))
        .collect();
    let want: BTreeSet<(String, String)> = expected.iter().cloned().collect();
    assert_eq!(got, want);
    for (id, _) in expected {
        assert_eq!(
            m.get("wolkvox_agent_interactions_total", &[("agent_id", id.as_str())]),
            Some(1.0),
            "{id:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn hostile_label_values_round_trip(names in proptest::collection::vec(hostile_text(40), 1..8)) {
        let (store, expected) = store_with_names(&names);
        let renderer = renderer(store);
        check_round_trip(&renderer.render(Format::Text), &expected);
        let om = renderer.render(Format::OpenMetrics);
        prop_assert!(om.ends_with("# EOF\n"));
        check_round_trip(om.trim_end_matches("# EOF\n"), &expected);
    }
}

/// A fixed sample of hostile names drawn from the same generator, plus hand-picked ones.
fn sample_names(n: usize) -> Vec<String> {
    let mut runner = TestRunner::deterministic();
    let strategy = hostile_text(48);
    let mut names: Vec<String> = (0..n).map(|_| strategy.new_tree(&mut runner).unwrap().current()).collect();
    names.extend(
        [
            "Ana \"La Jefa\" Pérez",
            "back\\slash\\",
            "new\nline",
            "C:\\Users\\agent\\n",
            "\u{1b}[31mred\u{1b}[0m",
            "nul\u{0}byte",
            "\u{202e}desrever",
            "Ã©Ã¨ mojibake Ã±",
            "\\xff\\xfe not bytes",
            "# HELP fake",
            "} 1\nwolkvox_up 0",
            "",
            "   ",
            &"é".repeat(200),
        ]
        .map(str::to_owned),
    );
    names
}

#[test]
fn promtool_accepts_hostile_label_values() {
    let names = sample_names(300);
    let (store, expected) = store_with_names(&names);
    let text = renderer(store).render(Format::Text);
    check_round_trip(&text, &expected);
    check_metrics(&text);
}

#[test]
fn a_real_prometheus_scrapes_hostile_label_values() {
    let names = sample_names(60);
    let now = crate::support::clock::real_now();
    let tz = chrono_tz::America::Bogota;
    let serve_at = now.with_timezone(&tz).naive_local() - Span::hours(2);
    let entries = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let record = json!({"agent_name": n, "agent_id": format!("{i}-{n}"),
                "conn_id": format!("c{i}"), "date": serve_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                "type_interaction": "transfer", "time": "00:00:45"});
            (serve_at, record.to_string())
        })
        .collect();
    let schedule = Schedule::new(entries);
    let api = Wolkvox::start(WolkvoxConfig::scripted(move |req| schedule.reply(req)));
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(&dir.path().join("s.json"))
        .op(Operation::new("hostile", api.base_url(), "tok", "America/Bogota"))
        .write(dir.path());
    let exporter = Exporter::start(&[&config]);
    let text = exporter.wait_for_metrics(Duration::from_secs(30), |t| {
        Exposition::parse(t).select("wolkvox_agent_info", &[]).count() == names.len()
    });
    check_metrics(&text);

    let prometheus = Prometheus::builder()
        .scrape("wolkvox", &[exporter.addr().to_string()], Duration::from_secs(1))
        .start();
    let data =
        prometheus.wait_until("count(wolkvox_agent_info{job=\"wolkvox\"})", Duration::from_secs(30), |d| {
            d["result"][0]["value"][1] == names.len().to_string().as_str()
        });
    assert_eq!(data["resultType"], "vector");
    let up = prometheus.query("up{job=\"wolkvox\"}").unwrap();
    assert_eq!(up["result"][0]["value"][1], "1", "{up}");
    let info = prometheus.query("wolkvox_agent_info").unwrap();
    let got: BTreeSet<(String, String)> = info["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["metric"]["agent_id"].as_str().unwrap().to_owned(),
                s["metric"]["agent_name"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (clean_label(&format!("{i}-{n}"), MAX_ID_BYTES), clean_label(n, MAX_NAME_BYTES)))
        .collect();
    assert_eq!(got, want, "Prometheus stored every label value as the exporter meant it");
}
