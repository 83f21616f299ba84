//! Reads an answer of any report: the envelope (`code`, `error`, `msg`, `data`) and its
//! rows, typed by the report. Lenient on input, as the vendor's reports vary: `code` as
//! number or string, `data` as a list, a single object or null, values as text or numbers.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::error::ApiError;

/// What a successful request returned.
#[derive(Debug)]
pub enum Answer<R> {
    Records(Vec<Item<R>>),
    /// The 404 "no records" answer.
    Empty,
}

/// A `data` element: a row, or something that is not an object (counted as invalid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item<R> {
    Record(R),
    NotAnObject,
}

/// A text field that also accepts numbers and booleans; `None` when missing, null, or
/// an object or list (not usable, but not fatal to the page).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text<'a>(pub Option<Cow<'a, str>>);

impl Text<'_> {
    pub fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// Interprets a status and body for rows of type `R`. Pure, so every answer is
/// unit-tested; the caller cuts the token out of error texts.
pub fn interpret<'de, R: Deserialize<'de>>(status: u16, body: &'de [u8]) -> Result<Answer<R>, ApiError> {
    let envelope = decode::<R>(body);
    match status {
        200..=299 => {
            let env = envelope.map_err(|e| ApiError::BadResponse(describe_json_error(body, &e)))?;
            match env.code {
                None | Some(200..=299) => Ok(Answer::Records(env.items)),
                Some(code) => classify(code, &env.text()),
            }
        }
        404 => match envelope {
            Ok(_) => Ok(Answer::Empty),
            Err(_) if body.iter().all(u8::is_ascii_whitespace) => Ok(Answer::Empty),
            Err(e) => Err(ApiError::BadResponse(format!(
                "HTTP 404 without the API's JSON answer ({})",
                describe_json_error(body, &e)
            ))),
        },
        _ => classify(status, &envelope.map_or_else(|_| snippet(body), |env| env.text())),
    }
}

/// Maps an error status and the answer's text to one error, by the vendor's texts
/// ("API response codes"), matched case-insensitively. The 403 answers differ only in
/// their text; "forbidden" is the fallback.
fn classify<R>(status: u16, text: &str) -> Result<Answer<R>, ApiError> {
    let t = text.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| t.contains(w));
    let text = text.to_owned();
    Err(match status {
        404 => return Ok(Answer::Empty),
        400 => ApiError::BadRequest(text),
        401 => ApiError::Unauthorized(text),
        // "EXCEEDS THE LIMIT OF SIMULTANEOUS REQUESTS PER TOKEN (2)"
        403 if has(&["simultaneous", "concurren"]) => ApiError::ConcurrencyLimit(text),
        403 if has(&["maintenance", "backup"]) => ApiError::Maintenance(text),
        // "PLEASE VALIDATE TOKEN", and the invalid, expired or malformed token texts.
        403 if has(&["validate token", "invalid", "expired", "malformed"]) => ApiError::InvalidToken(text),
        // "TOKEN LIMIT EXCEEDED"
        403 if has(&["limit", "quota"]) => ApiError::QuotaExceeded(text),
        403 => ApiError::Forbidden(text),
        500..=599 => ApiError::Http5xx(status),
        _ => ApiError::BadResponse(format!("unexpected HTTP {status}: {text}")),
    })
}

fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(200)]);
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

fn describe_json_error(body: &[u8], e: &serde_json::Error) -> String {
    if body.first().is_some_and(|b| *b == b'<') {
        "HTML instead of JSON".to_owned()
    } else if e.is_eof() {
        format!("truncated JSON after {} bytes", body.len())
    } else {
        format!("invalid JSON: {e}")
    }
}

/// The response envelope.
#[derive(Debug)]
struct Envelope<'a, R> {
    code: Option<u16>,
    error: Option<Cow<'a, str>>,
    msg: Option<Cow<'a, str>>,
    items: Vec<Item<R>>,
}

impl<R> Envelope<'_, R> {
    /// The human text of an error answer, `error` first, then `msg`.
    fn text(&self) -> String {
        [self.error.as_deref(), self.msg.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" / ")
    }
}

/// Decodes a body; any syntax error (truncated JSON, an HTML page) is an error. UTF-8 is
/// checked once over the whole body, which is cheaper than string by string.
fn decode<'de, R: Deserialize<'de>>(body: &'de [u8]) -> Result<Envelope<'de, R>, serde_json::Error> {
    match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(body),
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_owned()))))
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
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

impl<'de, R: Deserialize<'de>> Deserialize<'de> for Item<R> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<R>(PhantomData<R>);
        impl<'de, R: Deserialize<'de>> Visitor<'de> for V<R> {
            type Value = Item<R>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a record object")
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Self::Value, A::Error> {
                R::deserialize(de::value::MapAccessDeserializer::new(a)).map(Item::Record)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
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
        d.deserialize_any(V(PhantomData))
    }
}

/// `data`: a list of items, a single object, or null.
struct Data<R>(Vec<Item<R>>);

impl<'de, R: Deserialize<'de>> Deserialize<'de> for Data<R> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<R>(PhantomData<R>);
        impl<'de, R: Deserialize<'de>> Visitor<'de> for V<R> {
            type Value = Data<R>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of records or one record")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(a.size_hint().unwrap_or(0).min(65_536));
                while let Some(item) = a.next_element::<Item<R>>()? {
                    items.push(item);
                }
                Ok(Data(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Self::Value, A::Error> {
                let item = R::deserialize(de::value::MapAccessDeserializer::new(a))?;
                Ok(Data(vec![Item::Record(item)]))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Data(Vec::new()))
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
        d.deserialize_any(V(PhantomData))
    }
}

impl<'de, R: Deserialize<'de>> Deserialize<'de> for Envelope<'de, R> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<R>(PhantomData<R>);
        impl<'de, R: Deserialize<'de>> Visitor<'de> for V<R> {
            type Value = Envelope<'de, R>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object with code, error, msg and data")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut env = Envelope { code: None, error: None, msg: None, items: Vec::new() };
                while let Some(key) = a.next_key::<Cow<'de, str>>()? {
                    match key.as_ref() {
                        "code" => env.code = a.next_value::<Text>()?.get().and_then(parse_code),
                        "error" => env.error = a.next_value::<Text>()?.0,
                        "msg" => env.msg = a.next_value::<Text>()?.0,
                        "data" => env.items = a.next_value::<Data<R>>()?.0,
                        _ => {
                            a.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(env)
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

fn parse_code(text: &str) -> Option<u16> {
    let t = text.trim();
    t.parse::<u16>().ok().or_else(|| {
        t.parse::<f64>().ok().filter(|f| f.fract() == 0.0 && (0.0..65536.0).contains(f)).map(|f| f as u16)
    })
}

#[cfg(test)]
mod tests;
