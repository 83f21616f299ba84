//! Decodes an agent_13 response body straight from its bytes into records that borrow
//! their fields, without a generic JSON tree. Lenient on input: `code` as number or
//! string, `data` as list, single object or null, values as strings or numbers.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// One report row; a field is `None` when it is missing or null.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RawRecord<'a> {
    pub agent_name: Option<Cow<'a, str>>,
    pub agent_id: Option<Cow<'a, str>>,
    pub conn_id: Option<Cow<'a, str>>,
    pub date: Option<Cow<'a, str>>,
    pub type_interaction: Option<Cow<'a, str>>,
    pub time: Option<Cow<'a, str>>,
}

/// A `data` element: a record, or something that is not an object (counted as invalid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item<'a> {
    Record(RawRecord<'a>),
    NotAnObject,
}

/// The response envelope.
#[derive(Debug, Default)]
pub struct Envelope<'a> {
    pub code: Option<u16>,
    pub error: Option<Cow<'a, str>>,
    pub msg: Option<Cow<'a, str>>,
    pub items: Vec<Item<'a>>,
}

impl<'a> Envelope<'a> {
    /// The human text of an error answer, `error` first, then `msg`.
    pub fn text(&self) -> String {
        [self.error.as_deref(), self.msg.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" / ")
    }
}

/// Decodes a body; any syntax error (truncated JSON, an HTML page) is an error.
pub fn decode(body: &[u8]) -> Result<Envelope<'_>, serde_json::Error> {
    // The usual success body takes a scanner written for its shape, which checks UTF-8
    // as it goes; anything it is not sure of goes to serde whole, so results and error
    // texts are serde's.
    if let Some(env) = super::fast::decode(body) {
        return Ok(env);
    }
    // Checking UTF-8 once over the whole body is cheaper than string by string; a
    // body that is not UTF-8 takes the byte path, which reports the same error.
    match std::str::from_utf8(body) {
        Ok(text) => finish(serde_json::Deserializer::from_str(text)),
        Err(_) => finish(serde_json::Deserializer::from_slice(body)),
    }
}

/// [`decode`] with serde alone: the reference the fast scanner is tested against.
#[cfg(test)]
fn decode_serde(body: &[u8]) -> Result<Envelope<'_>, serde_json::Error> {
    match std::str::from_utf8(body) {
        Ok(text) => finish(serde_json::Deserializer::from_str(text)),
        Err(_) => finish(serde_json::Deserializer::from_slice(body)),
    }
}

fn finish<'a, R: serde_json::de::Read<'a>>(
    mut de: serde_json::Deserializer<R>,
) -> Result<Envelope<'a>, serde_json::Error> {
    let env = Envelope::deserialize(&mut de)?;
    de.end()?;
    Ok(env)
}

/// A string-valued field that also accepts numbers and booleans, as text.
struct Text<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v))))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(V)
            }
            // Objects and arrays where text is expected: not usable, but not fatal.
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A map key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Item<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Item<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a record object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut r = RawRecord::default();
                while let Some(Key(k)) = a.next_key::<Key>()? {
                    let slot = match k.as_ref() {
                        "agent_name" => &mut r.agent_name,
                        "agent_id" => &mut r.agent_id,
                        "conn_id" => &mut r.conn_id,
                        "date" => &mut r.date,
                        "type_interaction" => &mut r.type_interaction,
                        "time" => &mut r.time,
                        _ => {
                            a.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = a.next_value::<Text>()?.0;
                }
                Ok(Item::Record(r))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Item::NotAnObject)
            }
            fn visit_borrowed_str<E>(self, _: &'de str) -> Result<Self::Value, E> {
                Ok(Item::NotAnObject)
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Item::NotAnObject)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Item::NotAnObject)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Item::NotAnObject)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Item::NotAnObject)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Item::NotAnObject)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Item::NotAnObject)
            }
        }
        d.deserialize_any(V)
    }
}

/// `data`: a list of items, a single object, or null.
struct Data<'a>(Vec<Item<'a>>);

impl<'de> Deserialize<'de> for Data<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Data<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of records or one record")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(a.size_hint().unwrap_or(0).min(65_536));
                while let Some(item) = a.next_element::<Item>()? {
                    items.push(item);
                }
                Ok(Data(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Self::Value, A::Error> {
                let item = Item::deserialize(de::value::MapAccessDeserializer::new(a))?;
                Ok(Data(vec![item]))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Data(Vec::new()))
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Data(Vec::new()))
            }
            fn visit_borrowed_str<E>(self, _: &'de str) -> Result<Self::Value, E> {
                Ok(Data(vec![Item::NotAnObject]))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Data(vec![Item::NotAnObject]))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Data(vec![Item::NotAnObject]))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Data(vec![Item::NotAnObject]))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Data(vec![Item::NotAnObject]))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Data(vec![Item::NotAnObject]))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Envelope<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Envelope<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object with code, error, msg and data")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut env = Envelope::default();
                while let Some(Key(k)) = a.next_key::<Key>()? {
                    match k.as_ref() {
                        "code" => env.code = a.next_value::<Text>()?.0.and_then(|c| parse_code(&c)),
                        "error" => env.error = a.next_value::<Text>()?.0,
                        "msg" => env.msg = a.next_value::<Text>()?.0,
                        "data" => env.items = a.next_value::<Data>()?.0,
                        _ => {
                            a.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(env)
            }
        }
        d.deserialize_map(V)
    }
}

pub(super) fn parse_code(text: &str) -> Option<u16> {
    let t = text.trim();
    t.parse::<u16>().ok().or_else(|| {
        t.parse::<f64>()
            .ok()
            .filter(|f| f.fract() == 0.0 && (0.0..65536.0).contains(f))
            .map(|f| f as u16)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_vendor_example_borrowing_fields() {
        let body = br#"{"code": 200, "error": null, "msg": "1 records were found", "data": [
            {"agent_name": "Ana", "agent_id": "1001", "conn_id": "12462.0277.1782402643.44005",
             "date": "2026-11-24 10:00:00", "telephone": "3001234567",
             "type_interaction": "transfer", "time": "00:02:05"}]}"#;
        let env = decode(body).unwrap();
        assert_eq!(env.code, Some(200));
        assert_eq!(env.items.len(), 1);
        let Item::Record(r) = &env.items[0] else {
            panic!()
        };
        assert!(matches!(r.agent_id, Some(Cow::Borrowed("1001"))));
        assert_eq!(r.time.as_deref(), Some("00:02:05"));
        assert_eq!(r.type_interaction.as_deref(), Some("transfer"));
    }

    #[test]
    fn lenient_shapes() {
        let env = decode(br#"{"code":"200","data":{"agent_id":1001,"time":"00:00:01"}}"#).unwrap();
        assert_eq!(env.code, Some(200));
        let Item::Record(r) = &env.items[0] else {
            panic!()
        };
        assert_eq!(r.agent_id.as_deref(), Some("1001"));
        assert_eq!(r.date, None);

        let env = decode(br#"{"code":404,"error":"Validate dates entered","data":null}"#).unwrap();
        assert_eq!(env.code, Some(404));
        assert!(env.items.is_empty());
        assert_eq!(env.text(), "Validate dates entered");

        let env = decode(br#"{"data":[1,"x",[2],{"agent_id":"a\"b"}],"extra":{"k":[1]}}"#).unwrap();
        assert_eq!(env.items.len(), 4);
        assert_eq!(env.items[0], Item::NotAnObject);
        let Item::Record(r) = &env.items[3] else {
            panic!()
        };
        assert_eq!(r.agent_id.as_deref(), Some("a\"b"));
    }

    #[test]
    fn broken_bodies_are_errors() {
        for body in [
            &b"<html>502 Bad Gateway</html>"[..],
            br#"{"code":200,"data":[{"agent_id":"1"#,
            br#"{"code":200} trailing"#,
            b"",
            b"[]",
        ] {
            assert!(decode(body).is_err(), "{:?}", String::from_utf8_lossy(body));
        }
    }

    /// A view of an envelope that also tells borrowed text from owned text.
    type View<'x> = (
        Option<u16>,
        Option<(bool, &'x str)>,
        Option<(bool, &'x str)>,
        Vec<Option<[Option<(bool, &'x str)>; 6]>>,
    );

    fn cow<'x>(c: &'x Option<Cow<'_, str>>) -> Option<(bool, &'x str)> {
        c.as_ref()
            .map(|c| (matches!(c, Cow::Borrowed(_)), c.as_ref()))
    }

    fn view<'x>(env: &'x Envelope<'_>) -> View<'x> {
        let items = env
            .items
            .iter()
            .map(|item| match item {
                Item::Record(r) => Some(
                    [
                        &r.agent_name,
                        &r.agent_id,
                        &r.conn_id,
                        &r.date,
                        &r.type_interaction,
                        &r.time,
                    ]
                    .map(cow),
                ),
                Item::NotAnObject => None,
            })
            .collect();
        (env.code, cow(&env.error), cow(&env.msg), items)
    }

    /// `decode` (fast scanner first) and serde alone agree: both errors (with the same
    /// text, since the fast path never makes an error), or the same values, borrowed
    /// where serde borrows.
    fn check(body: &[u8]) {
        let fast = decode(body);
        let reference = decode_serde(body);
        match (&fast, &reference) {
            (Ok(a), Ok(b)) => assert_eq!(view(a), view(b), "{:?}", String::from_utf8_lossy(body)),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            _ => panic!(
                "fast {:?} but serde {:?} for {:?}",
                fast.as_ref().map(view),
                reference.as_ref().map(view),
                String::from_utf8_lossy(body)
            ),
        }
    }

    /// The scanner took `body` itself (it did not hand it to serde).
    fn fast_path(body: &[u8]) -> bool {
        super::super::fast::decode(body).is_some()
    }

    #[test]
    fn simulator_pages_take_the_fast_path_with_serdes_result() {
        use crate::demo::answer::{records_answer, Format};
        use crate::demo::simulator::{SimConfig, Simulator};
        let start = chrono::DateTime::parse_from_rfc3339("2025-03-10T15:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let end = start + chrono::Duration::minutes(30);
        let mut config = SimConfig::bounded(start, end);
        config.agents = 200;
        let sim = Simulator::new(config);
        let records = sim.records_local(sim.local(start), sim.local(end), None);
        assert!(records.len() > 10);
        for format in [
            Format::default(),
            Format {
                code_as_string: true,
                ..Format::default()
            },
        ] {
            let body = records_answer(records.clone(), &format).body.into_bytes();
            assert!(fast_path(&body));
            check(&body);
            let env = decode(&body).unwrap();
            assert_eq!(env.items.len(), records.len());
        }
    }

    #[test]
    fn every_truncation_and_byte_change_of_a_small_body_agrees() {
        let body = br#" {"code": 200, "error": null, "msg": "2 records were found",
            "data": [{"agent_name": "Jos\u00e9 P\u00e9rez", "agent_id": "1001", "conn_id": "1.2.3",
             "date": "2026-11-24 10:00:00", "telephone": "3001234567",
             "type_interaction": "transfer", "time": "00:02:05"},
             {"time":"1:00:00","agent_id":"x","agent_id":null,"x":"y"}, {}]}
"#;
        // Raw accented text too, not only escapes.
        let raw = r#"{"code":"200","data":[{"agent_name":"José Pérez","agent_id":"1","time":"00:00:01"}]}"#;
        for body in [&body[..], raw.as_bytes()] {
            check(body);
            for cut in 0..=body.len() {
                check(&body[..cut]);
            }
            for at in 0..body.len() {
                for b in [
                    b'"', b'\\', b'{', b'}', b'[', b']', b',', b':', b' ', b'\n', b'0', b'1', b'-',
                    b'.', b'e', b'n', b'a', 0x00, 0x1f, 0x7f, 0x80, 0xc3, 0xff,
                ] {
                    let mut changed = body.to_vec();
                    changed[at] = b;
                    check(&changed);
                    changed.insert(at, b);
                    check(&changed);
                }
                let mut cut = body.to_vec();
                cut.remove(at);
                check(&cut);
            }
        }
    }

    #[test]
    fn every_value_form_in_every_place_agrees() {
        let values = [
            "0",
            "00",
            "01",
            "070",
            "200",
            "0200",
            "200.0",
            "200.5",
            "2e2",
            "2E2",
            "1e400",
            "-200",
            "-0",
            "65535",
            "65536",
            "4294967296",
            "999999999",
            "9999999999",
            "99999999999999999999999",
            "true",
            "false",
            "null",
            "nul",
            "nulll",
            "\"\"",
            "\"200\"",
            "\" 200 \"",
            "\"2e2\"",
            "\"x\\\"y\"",
            "\"\\u00e9\"",
            "\"\\ud800\"",
            "\"é\"",
            "\"\u{1}\"",
            "\"\u{7f}\"",
            "[]",
            "{}",
            "[1]",
            "{\"a\":\"b\"}",
            "\"a\"\"b\"",
            "200 200",
            "",
        ];
        let bodies = [
            "{\"code\":V,\"data\":[{\"agent_id\":\"1\"}]}",
            "{\"code\":200,\"error\":V,\"msg\":\"m\",\"data\":[]}",
            "{\"code\":200,\"msg\":V,\"data\":[]}",
            "{\"code\":200,\"data\":V}",
            "{\"code\":200,\"data\":[V]}",
            "{\"code\":200,\"data\":[{\"agent_id\":\"1\"},V]}",
            "{\"code\":200,\"data\":[{\"agent_id\":V,\"time\":\"1\"}]}",
            "{\"code\":200,\"data\":[{\"telephone\":V,\"time\":\"1\"}]}",
            "{\"code\":200,\"other\":V,\"data\":[]}",
            "{\"code\":200,\"data\":[{\"time\":\"1\"}]}V",
            "V{\"code\":200,\"data\":[]}",
        ];
        for body in bodies {
            for v in values {
                check(body.replace('V', v).as_bytes());
            }
        }
        // Repeated keys: the last one counts, in the envelope and in records.
        for body in [
            r#"{"code":200,"code":404,"data":[]}"#,
            r#"{"data":[{"agent_id":"1"}],"data":[]}"#,
            r#"{"error":"a","error":null,"data":[]}"#,
            r#"{"data":[{"agent_id":"1","agent_id":"2","time":null,"time":"3"}]}"#,
        ] {
            check(body.as_bytes());
        }
    }

    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let key = prop_oneof![
            prop::sample::select(vec![
                "code",
                "error",
                "msg",
                "data",
                "agent_name",
                "agent_id",
                "conn_id",
                "date",
                "type_interaction",
                "time",
                "telephone",
            ])
            .prop_map(str::to_owned),
            ".{0,6}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::String),
            "[a-zA-Z0-9 :.-]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 8, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..8)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    /// A JSON token as text, most of them the usual kind.
    fn token() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => "[a-zA-Z0-9 :._-]{0,20}".prop_map(|s| format!("\"{s}\"")),
            2 => "[a-zA-Z0-9 áéíóúñÑ€😀:-]{0,12}".prop_map(|s| format!("\"{s}\"")),
            1 => Just("null".to_owned()),
            1 => ".{0,8}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            1 => "[a-z]{0,3}\\\\[\"\\\\/bfnrt][a-z]{0,3}".prop_map(|s| format!("\"{s}\"")),
            1 => "[a-z]{0,3}\\\\u[0-9a-fA-F]{4}".prop_map(|s| format!("\"{s}\"")),
            1 => prop::sample::select(vec![
                "0", "1", "200", "-1", "1.5", "1e3", "070", "65536", "99999999999", "true",
                "false", "[]", "{}", "[\"a\"]", "{\"a\":1}", "\"\u{1}\"", "nul", "\"",
            ])
            .prop_map(str::to_owned),
        ]
    }

    fn ws() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "", "", "", " ", "\n", "\t", "\r\n  ", " \u{a0}", "\u{c}",
        ])
    }

    fn record_key() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => prop::sample::select(vec![
                "agent_name",
                "agent_id",
                "conn_id",
                "date",
                "type_interaction",
                "time",
                "telephone",
            ])
            .prop_map(str::to_owned),
            1 => prop::sample::select(vec![
                "agent_id ", "Agent_id", "agent\\u005fid", "tim", "", "x", "agent_namé",
            ])
            .prop_map(str::to_owned),
        ]
    }

    /// A record in the vendor's shape, with random order, values, whitespace and keys.
    fn record() -> impl Strategy<Value = String> {
        prop_oneof![
            12 => prop::collection::vec((record_key(), token(), ws(), ws(), ws(), ws()), 0..9)
                .prop_map(|fields| {
                    let body = fields
                        .iter()
                        .map(|(k, v, a, b, c, d)| format!("{a}\"{k}\"{b}:{c}{v}{d}"))
                        .collect::<Vec<_>>()
                        .join(",");
                    format!("{{{body}}}")
                }),
            1 => token(),
        ]
    }

    fn envelope() -> impl Strategy<Value = String> {
        let data = prop_oneof![
            8 => (prop::collection::vec((record(), ws()), 0..5), ws()).prop_map(|(items, w)| {
                let items = items
                    .iter()
                    .map(|(r, w)| format!("{w}{r}"))
                    .collect::<Vec<_>>()
                    .join(",");
                format!("[{items}{w}]")
            }),
            1 => record(),
            1 => Just("null".to_owned()),
        ];
        let entry = prop_oneof![
            3 => (token(), ws()).prop_map(|(v, w)| format!("\"code\"{w}:{v}")),
            2 => token().prop_map(|v| format!("\"error\":{v}")),
            2 => token().prop_map(|v| format!("\"msg\":{v}")),
            6 => (data, ws()).prop_map(|(v, w)| format!("\"data\":{w}{v}")),
            1 => (record_key(), token()).prop_map(|(k, v)| format!("\"{k}\":{v}")),
        ];
        (
            prop::collection::vec((entry, ws(), ws()), 0..6),
            ws(),
            ws(),
            prop::sample::select(vec!["", "", "", "", "x", "}", ",", "{}", "\u{0}"]),
        )
            .prop_map(|(entries, w0, w1, tail)| {
                let body = entries
                    .iter()
                    .map(|(e, a, b)| format!("{a}{e}{b}"))
                    .collect::<Vec<_>>()
                    .join(",");
                format!("{w0}{{{body}}}{w1}{tail}")
            })
    }

    /// A change to a body: none, a cut, or one byte replaced, inserted or removed.
    #[derive(Debug, Clone)]
    enum Mutation {
        None,
        Cut(prop::sample::Index),
        Set(prop::sample::Index, u8),
        Insert(prop::sample::Index, u8),
        Remove(prop::sample::Index),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        let byte = prop_oneof![
            prop::sample::select(b"\"\\{}[],: \n0-.enu\x00\x1f".to_vec()),
            any::<u8>(),
        ];
        prop_oneof![
            4 => Just(Mutation::None),
            2 => any::<prop::sample::Index>().prop_map(Mutation::Cut),
            1 => (any::<prop::sample::Index>(), byte.clone()).prop_map(|(i, b)| Mutation::Set(i, b)),
            1 => (any::<prop::sample::Index>(), byte).prop_map(|(i, b)| Mutation::Insert(i, b)),
            1 => any::<prop::sample::Index>().prop_map(Mutation::Remove),
        ]
    }

    fn apply(body: &str, m: &Mutation) -> Vec<u8> {
        let mut b = body.as_bytes().to_vec();
        if b.is_empty() {
            return b;
        }
        match m {
            Mutation::None => {}
            Mutation::Cut(i) => b.truncate(i.index(b.len() + 1)),
            Mutation::Set(i, x) => {
                let i = i.index(b.len());
                b[i] = *x;
            }
            Mutation::Insert(i, x) => b.insert(i.index(b.len() + 1), *x),
            Mutation::Remove(i) => {
                b.remove(i.index(b.len()));
            }
        }
        b
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_agree(body in prop::collection::vec(any::<u8>(), 0..200)) {
            check(&body);
        }

        #[test]
        fn json_alphabet_agrees(body in "[{}\\[\\]\":, \t\n\r\\\\0-9a-z._eE+-]{0,120}") {
            check(body.as_bytes());
            let wrapped = format!("{{\"data\":[{{\"agent_id\":{body}}}]}}");
            check(wrapped.as_bytes());
        }

        #[test]
        fn arbitrary_json_values_agree(value in json_value()) {
            let compact = serde_json::to_string(&value).unwrap();
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            check(compact.as_bytes());
            check(pretty.as_bytes());
            for body in [
                format!("{{\"code\":200,\"data\":[{compact}]}}"),
                format!("{{\"code\":200,\"data\":[{{\"agent_id\":{compact},\"time\":\"1\"}}]}}"),
                format!("{{\"code\":200,\"error\":{compact},\"data\":{compact}}}"),
            ] {
                check(body.as_bytes());
            }
        }

        #[test]
        fn vendor_shaped_bodies_agree(body in envelope(), m in mutation()) {
            check(&apply(&body, &m));
        }
    }

    #[test]
    fn the_usual_bodies_do_take_the_fast_path() {
        use proptest::strategy::ValueTree;
        // Without this the property tests could pass with a scanner that never answers.
        let ws = || prop::sample::select(vec!["", "", " ", "\n", "\t", "\r\n  "]);
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let usual = (
            prop::collection::vec(
                prop::collection::vec((record_key(), "[a-zA-Z0-9 é:-]{0,12}", ws()), 0..8),
                0..5,
            ),
            ws(),
        );
        let mut fast = 0;
        for _ in 0..500 {
            let (records, w) = usual.new_tree(&mut runner).unwrap().current();
            let items = records
                .iter()
                .map(|fields| {
                    let f = fields
                        .iter()
                        .filter(|(k, _, _)| !k.contains('\\'))
                        .map(|(k, v, w)| format!("{w}\"{k}\"{w}:{w}\"{v}\"{w}"))
                        .collect::<Vec<_>>()
                        .join(",");
                    format!("{{{f}}}")
                })
                .collect::<Vec<_>>()
                .join(",");
            let body = format!(
                "{w}{{\"code\":200,{w}\"error\":null,\"msg\":\"ok\",\"data\":[{items}]}}{w}"
            );
            check(body.as_bytes());
            if fast_path(body.as_bytes()) {
                fast += 1;
            }
        }
        assert_eq!(fast, 500);
    }
}
