//! A scanner for the usual agent_13 success body: an envelope of `code`, `error`, `msg`
//! and `data`, where `data` is a list of objects whose values are strings without
//! escapes (or null). It builds exactly the values the serde decoder builds, borrowing
//! every string from the body. It gives up (`None`) on anything else: escapes, numbers
//! or booleans as field values, nested values, a repeated or unknown envelope key, a
//! syntax error, trailing bytes, bytes that are not UTF-8. The caller then decodes the
//! whole body with serde, so the result and any error text are serde's. A repeated
//! record field keeps its last value, as serde's visitor does. The proptests in
//! `decode.rs` check that every body this scanner accepts decodes the same with serde.

use std::borrow::Cow;

use super::decode::{parse_code, Envelope, Item, RawRecord};

/// Decodes a body, or `None` when it is not the usual shape (or not UTF-8). Every byte
/// of an accepted body is either ASCII syntax or inside a string checked here to be
/// UTF-8, so an accepted body is valid UTF-8, as serde's `from_str` path needs.
pub(super) fn decode(body: &[u8]) -> Option<Envelope<'_>> {
    let mut s = Scan { b: body, i: 0 };
    let env = s.envelope(body.len())?;
    s.ws();
    (s.i == s.b.len()).then_some(env)
}

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

/// The record field a key names.
#[derive(Clone, Copy)]
enum Field {
    AgentName,
    AgentId,
    ConnId,
    Date,
    TypeInteraction,
    Time,
    Other,
}

/// 0x0101…01: one in every byte of a word.
const ONES: u64 = u64::MAX / 255;

impl<'a> Scan<'a> {
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Skips JSON whitespace: space, tab, line feed, carriage return.
    #[inline(always)]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    #[inline(always)]
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// After a member of an object or list: whitespace, then `,` (more follow: true,
    /// with the whitespace after it eaten) or `close` (the end: false). Anything else
    /// gives up.
    #[inline(always)]
    fn more(&mut self, close: u8) -> Option<bool> {
        self.ws();
        match self.peek()? {
            b',' => {
                self.i += 1;
                self.ws();
                Some(true)
            }
            c if c == close => {
                self.i += 1;
                Some(false)
            }
            _ => None,
        }
    }

    /// The rest of a string whose opening quote was just eaten, when it holds no escape
    /// and no control character (serde rejects those raw, and decodes escapes into owned
    /// text) and is UTF-8: the bytes up to the closing quote, which is eaten.
    #[inline(always)]
    fn string(&mut self) -> Option<&'a str> {
        let start = self.i;
        let mut i = start;
        // Eight bytes at a time: find the first quote, backslash or byte below 0x20, and
        // note any byte of 0x80 or more before it.
        let mut high = 0u64;
        while let Some(chunk) = self.b.get(i..i + 8) {
            let w = u64::from_le_bytes(chunk.try_into().ok()?);
            let quote = w ^ (ONES * u64::from(b'"'));
            let backslash = w ^ (ONES * u64::from(b'\\'));
            let hits = (quote.wrapping_sub(ONES) & !quote)
                | (backslash.wrapping_sub(ONES) & !backslash)
                | (w.wrapping_sub(ONES * 0x20) & !w);
            let hits = hits & (ONES << 7);
            if hits != 0 {
                // The lowest flagged byte is exact (false flags only follow a true one).
                let at = hits.trailing_zeros();
                // High bits of the bytes before it (`at` is 7, 15, …, 63).
                high |= w & (ONES << 7) & ((1u64 << at) - 1);
                i += (at / 8) as usize;
                return self.close(start, i, high != 0);
            }
            high |= w & (ONES << 7);
            i += 8;
        }
        while let Some(&c) = self.b.get(i) {
            if c == b'"' || c == b'\\' || c < 0x20 {
                return self.close(start, i, high != 0);
            }
            high |= u64::from(c & 0x80);
            i += 1;
        }
        None
    }

    /// Ends a string at `end` if the byte there is its closing quote; `non_ascii` says
    /// whether a byte before it may be 0x80 or more.
    #[inline(always)]
    fn close(&mut self, start: usize, end: usize, non_ascii: bool) -> Option<&'a str> {
        if self.b[end] != b'"' {
            return None;
        }
        self.i = end + 1;
        let bytes = &self.b[start..end];
        if non_ascii {
            std::str::from_utf8(bytes).ok()
        } else {
            debug_assert!(bytes.is_ascii());
            // SAFETY: no byte of `bytes` has its high bit set (checked above), so it
            // is ASCII, which is UTF-8.
            Some(unsafe { std::str::from_utf8_unchecked(bytes) })
        }
    }

    /// A string or null, after whitespace; anything else gives up.
    #[inline(always)]
    fn text_value(&mut self) -> Option<Option<Cow<'a, str>>> {
        match self.peek()? {
            b'"' => {
                self.i += 1;
                Some(Some(Cow::Borrowed(self.string()?)))
            }
            b'n' => self.null().map(|()| None),
            _ => None,
        }
    }

    fn null(&mut self) -> Option<()> {
        if self.b.get(self.i..self.i + 4)? == b"null" {
            self.i += 4;
            Some(())
        } else {
            None
        }
    }

    /// `code`: an unsigned integer as JSON writes it, a string, or null.
    fn code(&mut self) -> Option<Option<u16>> {
        match self.peek()? {
            b'0'..=b'9' => {
                let start = self.i;
                while let Some(b'0'..=b'9') = self.peek() {
                    self.i += 1;
                }
                let digits = &self.b[start..self.i];
                // A leading zero, a fraction or an exponent, or a long number: serde.
                if (digits.len() > 1 && digits[0] == b'0')
                    || digits.len() > 9
                    || matches!(self.peek(), Some(b'.' | b'e' | b'E'))
                {
                    return None;
                }
                let n = digits
                    .iter()
                    .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
                Some(u16::try_from(n).ok())
            }
            _ => Some(self.text_value()?.and_then(|c| parse_code(&c))),
        }
    }

    fn envelope(&mut self, len: usize) -> Option<Envelope<'a>> {
        let mut env = Envelope::default();
        self.ws();
        self.eat(b'{')?;
        self.ws();
        if self.eat(b'}').is_some() {
            return Some(env);
        }
        let mut seen = 0u8;
        loop {
            self.eat(b'"')?;
            let key = self.string()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            let bit = match key {
                "code" => {
                    env.code = self.code()?;
                    1
                }
                "error" => {
                    env.error = self.text_value()?;
                    2
                }
                "msg" => {
                    env.msg = self.text_value()?;
                    4
                }
                "data" => {
                    env.items = self.data(len)?;
                    8
                }
                _ => return None,
            };
            if seen & bit != 0 {
                return None;
            }
            seen |= bit;
            if !self.more(b'}')? {
                return Some(env);
            }
        }
    }

    /// `data` as a list of objects; a single object, null or anything else gives up.
    /// `len`, the body's length, sizes the list: a usual record takes about 180 bytes,
    /// so the list rarely grows (a grown list of 60,000 would be copied several times).
    fn data(&mut self, len: usize) -> Option<Vec<Item<'a>>> {
        self.eat(b'[')?;
        self.ws();
        if self.eat(b']').is_some() {
            return Some(Vec::new());
        }
        let mut items = Vec::with_capacity(len / 160);
        loop {
            self.eat(b'{')?;
            items.push(Item::Record(self.record()?));
            if !self.more(b']')? {
                return Some(items);
            }
        }
    }

    /// The key the vendor writes, compared in place with its closing quote (so it has
    /// no escape and ends there), which is eaten with it; `None` leaves the key unread.
    #[inline(always)]
    fn usual_key(&mut self) -> Option<Field> {
        let rest = self.b.get(self.i..)?;
        let (field, len) = match rest.first()? {
            b'a' if rest.starts_with(b"agent_name\"") => (Field::AgentName, 11),
            b'a' if rest.starts_with(b"agent_id\"") => (Field::AgentId, 9),
            b'c' if rest.starts_with(b"conn_id\"") => (Field::ConnId, 8),
            b'd' if rest.starts_with(b"date\"") => (Field::Date, 5),
            b't' if rest.starts_with(b"type_interaction\"") => (Field::TypeInteraction, 17),
            b't' if rest.starts_with(b"time\"") => (Field::Time, 5),
            b't' if rest.starts_with(b"telephone\"") => (Field::Other, 10),
            _ => return None,
        };
        self.i += len;
        Some(field)
    }

    /// One record, its opening brace eaten. A repeated field keeps its last value, as
    /// serde's visitor does; unknown fields are skipped when their value is a string
    /// or null.
    #[inline(always)]
    fn record(&mut self) -> Option<RawRecord<'a>> {
        let mut r = RawRecord::default();
        self.ws();
        if self.eat(b'}').is_some() {
            return Some(r);
        }
        loop {
            self.eat(b'"')?;
            let field = match self.usual_key() {
                Some(field) => field,
                None => match self.string()?.as_bytes() {
                    b"agent_name" => Field::AgentName,
                    b"agent_id" => Field::AgentId,
                    b"conn_id" => Field::ConnId,
                    b"date" => Field::Date,
                    b"type_interaction" => Field::TypeInteraction,
                    b"time" => Field::Time,
                    _ => Field::Other,
                },
            };
            self.ws();
            self.eat(b':')?;
            self.ws();
            let value = self.text_value()?;
            match field {
                Field::AgentName => r.agent_name = value,
                Field::AgentId => r.agent_id = value,
                Field::ConnId => r.conn_id = value,
                Field::Date => r.date = value,
                Field::TypeInteraction => r.type_interaction = value,
                Field::Time => r.time = value,
                Field::Other => {}
            }
            if !self.more(b'}')? {
                return Some(r);
            }
        }
    }
}
