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
    // Checking UTF-8 once over the whole body is cheaper than string by string; a
    // body that is not UTF-8 takes the byte path, which reports the same error.
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

fn parse_code(text: &str) -> Option<u16> {
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
}
