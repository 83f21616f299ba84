//! What every report does with a row's text: dates, durations, bounded label values and
//! record identities.

use chrono::NaiveDateTime;
use xxhash_rust::xxh3::Xxh3;

use crate::client::Text;

pub use wolkvox_api::DATE_FORMAT;
/// Longest id kept in a label; longer ids are cut (at a character boundary).
pub const MAX_ID_BYTES: usize = 128;
/// Longest name kept in a label.
pub const MAX_NAME_BYTES: usize = 256;
/// Durations above a year are not calls but garbage.
pub const MAX_DURATION_SECS: u64 = 366 * 24 * 3600;

/// A field's trimmed text, `None` when missing or blank.
pub fn present<'r>(field: &'r Text<'_>) -> Option<&'r str> {
    field.get().map(str::trim).filter(|s| !s.is_empty())
}

/// An id field's text, `None` when missing, blank or `-` (the vendor's "none").
pub fn id<'r>(field: &'r Text<'_>) -> Option<&'r str> {
    present(field).filter(|s| *s != "-")
}

/// `YYYY-MM-DD HH:MM:SS`, surrounding blanks allowed.
pub fn parse_date(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text.trim(), DATE_FORMAT).ok()
}

/// `HH:MM:SS` to seconds; hours may exceed 24 (up to six digits), minutes and seconds
/// are one or two digits below 60.
pub fn parse_duration(text: &str) -> Option<u64> {
    let mut parts = text.trim().split(':');
    let mut field = |max_digits| parts.next().and_then(|p| digits(p, max_digits));
    let (h, m, s) = (field(6)?, field(2)?, field(2)?);
    if parts.next().is_some() || m > 59 || s > 59 {
        return None;
    }
    let total = h * 3600 + m * 60 + s;
    (total <= MAX_DURATION_SECS).then_some(total)
}

/// A whole number of seconds (`time_seg`), bounded like a duration.
pub fn parse_seconds(text: &str) -> Option<u64> {
    digits(text.trim(), 9).filter(|s| *s <= MAX_DURATION_SECS)
}

/// A number of one to `max` digits, no sign.
fn digits(text: &str, max: usize) -> Option<u64> {
    let ok = (1..=max).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| text.parse().ok()).flatten()
}

/// Makes free text safe and bounded as a label value: control characters become
/// spaces, and the text is cut at a character boundary.
pub fn clean_label(text: &str, max_bytes: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_bytes));
    for c in text.trim().chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > max_bytes {
            break;
        }
        out.push(c);
    }
    out
}

/// A record's identity: 128 bits of xxh3, kept as two words so that an entry of the
/// table of remembered identities is 24 bytes rather than 32. Persisted: the digest of
/// a given record must never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity(pub u64, pub u64);

impl Identity {
    /// The identity of a complete record: its key fields, trimmed and length-prefixed.
    pub fn of(key: &[&str]) -> Identity {
        let mut h = Xxh3::new();
        for f in key {
            let f = f.trim();
            h.update(&(f.len() as u64).to_le_bytes());
            h.update(f.as_bytes());
        }
        h.digest128().into()
    }

    /// The identity of a record missing a key field: every field it has, a missing one
    /// marked by a length no text can have, behind a tag that keeps it apart from
    /// complete identities. Such a record is rejected once, not on every re-read.
    pub fn of_incomplete(fields: &[&Text<'_>]) -> Identity {
        let mut h = Xxh3::new();
        h.update(b"incomplete");
        for f in fields {
            match f.get() {
                Some(text) => {
                    h.update(&(text.len() as u64).to_le_bytes());
                    h.update(text.as_bytes());
                }
                None => h.update(&u64::MAX.to_le_bytes()),
            }
        }
        h.digest128().into()
    }
}

impl From<u128> for Identity {
    fn from(v: u128) -> Self {
        Identity((v >> 64) as u64, v as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("00:02:05"), Some(125));
        assert_eq!(parse_duration(" 1:0:0 "), Some(3600));
        assert_eq!(parse_duration("26:00:00"), Some(93600));
        assert_eq!(parse_duration("8783:59:59"), Some(8783 * 3600 + 3599));
        for bad in [
            "",
            "-1",
            "1:2",
            "00:60:00",
            "00:00:60",
            "a:b:c",
            "1:2:3:4",
            "99999:59:59",
            "1234567:00:00",
            " : : ",
            "+1:00:00",
            "1:+2:03",
            "1:002:03",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn seconds_and_dates() {
        assert_eq!(parse_seconds("125"), Some(125));
        assert_eq!(parse_seconds(" 0 "), Some(0));
        for bad in ["", "-1", "1.5", "1e3", "+5", "99999999999"] {
            assert_eq!(parse_seconds(bad), None, "{bad:?}");
        }
        assert!(parse_date(" 2024-02-29 23:59:59 ").is_some());
        for bad in ["2023-02-29 10:00:00", "2026-11-24 24:00:00", "2026-11-24T10:00:00", "24/11/2026"] {
            assert_eq!(parse_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn labels_are_bounded_and_clean() {
        assert_eq!(clean_label(" Ana María\nR. ", 256), "Ana María R.");
        let long = "é".repeat(1000);
        let cut = clean_label(&long, 5);
        assert_eq!(cut, "éé");
    }

    /// The identity is the one-shot digest of the length-prefixed trimmed fields, as
    /// states saved by earlier versions hold it.
    #[test]
    fn identities_are_stable() {
        let fields = ["c1", "1001", "transfer", "2026-11-24 10:00:00"];
        let mut buf = Vec::new();
        for f in fields {
            buf.extend_from_slice(&(f.len() as u64).to_le_bytes());
            buf.extend_from_slice(f.as_bytes());
        }
        let expected: Identity = xxhash_rust::xxh3::xxh3_128(&buf).into();
        assert_eq!(Identity::of(&fields), expected);
        assert_eq!(Identity::of(&[" c1 ", "1001", "transfer", "2026-11-24 10:00:00"]), expected);
        let missing = Text(None);
        let some = Text(Some("c1".into()));
        assert_ne!(Identity::of_incomplete(&[&some, &missing]), Identity::of_incomplete(&[&missing, &some]));
    }
}
