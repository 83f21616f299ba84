//! Turns decoded records into counter and histogram updates, each record exactly once.
//! Pure: no I/O, no clock; the poller hands it a page and the window it asked for.

use std::collections::hash_map::Entry;

use chrono::NaiveDateTime;
use xxhash_rust::xxh3::{xxh3_128, Xxh3};

use crate::client::{Item, RawRecord};
use crate::store::{Agent, Data, Histogram, OVERFLOW_AGENT};

/// The API's record date format.
pub const DATE_FORMAT: &str = "%Y-%m-%d %H:%M:%S";
/// Longest agent id kept in a label; longer ids are cut (at a character boundary).
pub const MAX_ID_BYTES: usize = 128;
/// Longest agent name kept in a label.
pub const MAX_NAME_BYTES: usize = 256;
/// Durations above a year are not interactions but garbage.
pub const MAX_DURATION_SECS: u64 = 366 * 24 * 3600;

/// Why a record was rejected; index into `store::INVALID_REASONS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    BadTime = 0,
    BadDate = 1,
    MissingField = 2,
    OutsideWindow = 3,
}

/// What one page did to the store.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub received: u64,
    pub counted: u64,
    pub duplicate: u64,
    pub invalid: [u64; 4],
    pub overflowed: u64,
}

/// `HH:MM:SS` (hours may exceed 24) to seconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    // Hours up to six digits, minutes and seconds up to two, each at least one.
    const MAX_DIGITS: [u32; 3] = [6, 2, 2];
    let (mut parts, mut part, mut digits) = ([0u64; 3], 0, 0);
    for &b in trim(text).as_bytes() {
        if b == b':' {
            if digits == 0 || part == 2 {
                return None;
            }
            part += 1;
            digits = 0;
        } else if b.is_ascii_digit() && digits < MAX_DIGITS[part] {
            parts[part] = parts[part] * 10 + u64::from(b - b'0');
            digits += 1;
        } else {
            return None;
        }
    }
    let [h, m, s] = parts;
    if part != 2 || digits == 0 || m > 59 || s > 59 {
        return None;
    }
    let total = h * 3600 + m * 60 + s;
    (total <= MAX_DURATION_SECS).then_some(total)
}

pub fn parse_date(text: &str) -> Option<NaiveDateTime> {
    let text = trim(text);
    parse_date_exact(text).or_else(|| NaiveDateTime::parse_from_str(text, DATE_FORMAT).ok())
}

/// `YYYY-MM-DD HH:MM:SS` exactly as the API writes it, without the general parser;
/// anything else (or out of range) is left to `chrono`, so the result is the same.
fn parse_date_exact(text: &str) -> Option<NaiveDateTime> {
    let b: &[u8; 19] = text.as_bytes().try_into().ok()?;
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    if b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    let time = chrono::NaiveTime::from_hms_opt(num(11..13)?, num(14..16)?, num(17..19)?)?;
    Some(date.and_time(time))
}

/// `str::trim`, without the Unicode scan when both ends are visible ASCII (the usual
/// case: every field of every record goes through here).
fn trim(text: &str) -> &str {
    match text.as_bytes() {
        [first, .., last] if first.is_ascii_graphic() && last.is_ascii_graphic() => text,
        [only] if only.is_ascii_graphic() => text,
        _ => text.trim(),
    }
}

/// Seconds since the epoch of a wall-clock time read as UTC: an ordering key only.
pub fn local_secs(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp()
}

pub fn interaction_index(text: &str) -> usize {
    let t = trim(text);
    if t.eq_ignore_ascii_case("transfer") {
        0
    } else if t.eq_ignore_ascii_case("conference") {
        1
    } else {
        2
    }
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

/// The record's identity: xxh3-128 of its length-prefixed key fields. Persisted in the
/// state, so it must never change; hashed in one call from a stack buffer when the
/// fields fit (the same digest as the streaming hasher).
fn identity(r: &RawRecord) -> Option<u128> {
    let fields =
        [&r.conn_id, &r.agent_id, &r.type_interaction, &r.date].map(|f| f.as_deref().map(trim));
    let mut buf = [0u8; 256];
    let mut len = 0;
    for f in fields {
        let f = f?;
        let end = len + 8 + f.len();
        if end > buf.len() {
            let mut h = Xxh3::new();
            for f in fields.into_iter().flatten() {
                h.update(&(f.len() as u64).to_le_bytes());
                h.update(f.as_bytes());
            }
            return Some(h.digest128());
        }
        buf[len..len + 8].copy_from_slice(&(f.len() as u64).to_le_bytes());
        buf[len + 8..end].copy_from_slice(f.as_bytes());
        len = end;
    }
    Some(xxh3_128(&buf[..len]))
}

/// The identity of a record missing a field: all six fields, a missing one marked by a
/// length no text can have, behind a tag that keeps it apart from complete identities.
fn incomplete_identity(r: &RawRecord) -> u128 {
    let mut h = Xxh3::new();
    h.update(b"incomplete");
    for f in [
        &r.conn_id,
        &r.agent_id,
        &r.type_interaction,
        &r.date,
        &r.time,
        &r.agent_name,
    ] {
        match f.as_deref() {
            Some(text) => {
                h.update(&(text.len() as u64).to_le_bytes());
                h.update(text.as_bytes());
            }
            None => h.update(&u64::MAX.to_le_bytes()),
        }
    }
    h.digest128()
}

fn present<'r>(field: &'r Option<std::borrow::Cow<'_, str>>) -> Option<&'r str> {
    field.as_deref().map(trim).filter(|s| !s.is_empty())
}

/// Ingests one page read for the local window `[ini, end]`.
///
/// Takes the page by value so each record is freed right after its turn, while it is
/// still in the cache, rather than in a second pass over the whole page.
pub fn ingest(
    data: &mut Data,
    items: Vec<Item>,
    ini: NaiveDateTime,
    end: NaiveDateTime,
) -> Outcome {
    let mut out = Outcome {
        received: items.len() as u64,
        ..Outcome::default()
    };
    let (ini_s, end_s) = (local_secs(ini), local_secs(end));
    for item in items {
        let Item::Record(r) = &item else {
            out.invalid[Invalid::MissingField as usize] += 1;
            continue;
        };
        match ingest_one(data, r, ini_s, end_s, &mut out) {
            Ok(()) => {}
            Err(reason) => out.invalid[reason as usize] += 1,
        }
    }
    out
}

/// One counted record's update of its agent.
struct Count<'r> {
    name: &'r str,
    date_s: i64,
    interaction: usize,
    bucket: usize,
    buckets: usize,
    seconds: f64,
}

impl Count<'_> {
    /// Observes the record; a named agent also takes the newest name.
    fn apply(self, agent: &mut Agent, named: bool) {
        if named && self.date_s >= agent.name_date {
            if agent.name.as_ref() != self.name {
                let cleaned = clean_label(self.name, MAX_NAME_BYTES);
                if agent.name.as_ref() != cleaned {
                    agent.name = cleaned.into();
                }
            }
            agent.name_date = self.date_s;
        }
        agent.series[self.interaction]
            .get_or_insert_with(|| Histogram {
                count: 0,
                sum: 0.0,
                buckets: vec![0; self.buckets],
            })
            .observe_in(self.bucket, self.seconds);
    }
}

fn ingest_one(
    data: &mut Data,
    r: &RawRecord,
    ini_s: i64,
    end_s: i64,
    out: &mut Outcome,
) -> Result<(), Invalid> {
    let (
        Some(agent_id),
        Some(_conn_id),
        Some(type_interaction),
        Some(date_text),
        Some(time_text),
        Some(name),
    ) = (
        present(&r.agent_id),
        present(&r.conn_id),
        present(&r.type_interaction),
        r.date.as_deref(),
        r.time.as_deref(),
        r.agent_name.as_deref(),
    )
    else {
        // Remembered under an identity of every field it has, so a re-read of the
        // overlap does not reject it again.
        if data
            .seen
            .insert(incomplete_identity(r).into(), end_s)
            .is_some()
        {
            out.duplicate += 1;
            return Ok(());
        }
        return Err(Invalid::MissingField);
    };
    let key = identity(r).ok_or(Invalid::MissingField)?;
    let Entry::Vacant(slot) = data.seen.entry(key.into()) else {
        out.duplicate += 1;
        return Ok(());
    };
    let date = parse_date(date_text);
    // A record's identity is remembered even when it is rejected, so a re-read of the
    // overlap neither counts it twice nor rejects it twice. It is pruned by its date when
    // that lies in the window; otherwise (no date, or a server writing another zone) by
    // the window's end, since any later read overlapping this window may return it again.
    slot.insert(match date.map(local_secs) {
        Some(d) if (ini_s..=end_s).contains(&d) => d,
        _ => end_s,
    });
    let date = date.ok_or(Invalid::BadDate)?;
    let seconds = parse_duration(time_text).ok_or(Invalid::BadTime)?;
    let date_s = local_secs(date);
    if date_s < ini_s || date_s > end_s {
        return Err(Invalid::OutsideWindow);
    }

    let bucket = data.bounds.partition_point(|b| *b < seconds as f64);
    let buckets = data.bounds.len() + 1;
    let count = Count {
        name,
        date_s,
        interaction: interaction_index(type_interaction),
        bucket,
        buckets,
        seconds: seconds as f64,
    };
    // One lookup for the agents already known, the common case.
    if let Some(agent) = data.agents.get_mut(agent_id) {
        count.apply(agent, true);
    } else {
        let id = clean_label(agent_id, MAX_ID_BYTES);
        if id != OVERFLOW_AGENT
            && (data.agents.contains_key(id.as_str()) || data.agents.len() < data.max_agents)
        {
            let agent = data
                .agents
                .entry(id.into_boxed_str())
                .or_insert_with(|| Agent::new(&clean_label(name, MAX_NAME_BYTES), date_s));
            count.apply(agent, true);
        } else {
            out.overflowed += 1;
            data.overflow_records += 1;
            count.apply(&mut data.overflow, false);
        }
    }
    out.counted += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn rec(id: &str, conn: &str, kind: &str, date: &str, time: &str, name: &str) -> Item<'static> {
        let s = |v: &str| Some(Cow::Owned(v.to_owned()));
        Item::Record(RawRecord {
            agent_name: s(name),
            agent_id: s(id),
            conn_id: s(conn),
            date: s(date),
            type_interaction: s(kind),
            time: s(time),
        })
    }

    fn window() -> (NaiveDateTime, NaiveDateTime) {
        (
            parse_date("2026-11-24 00:00:00").unwrap(),
            parse_date("2026-11-24 23:59:59").unwrap(),
        )
    }

    #[test]
    fn identity_is_the_streaming_digest_and_dates_parse_as_chrono() {
        for conn in ["c1", &"x".repeat(300)] {
            let Item::Record(r) = rec(
                "1001",
                conn,
                "transfer",
                "2026-11-24 10:00:00",
                "1:0:0",
                "A",
            ) else {
                panic!()
            };
            let mut h = Xxh3::new();
            for f in [conn, "1001", "transfer", "2026-11-24 10:00:00"] {
                h.update(&(f.len() as u64).to_le_bytes());
                h.update(f.as_bytes());
            }
            assert_eq!(identity(&r), Some(h.digest128()));
        }
        for text in [
            "2026-11-24 10:00:00",
            " 2024-02-29 23:59:59 ",
            "2023-02-29 10:00:00",
            "2026-11-24 24:00:00",
            "2026-11-24 23:59:60",
            "2026-11-24T10:00:00",
            "2026-1-24 10:00:00",
            "0000-01-01 00:00:00",
        ] {
            let chrono = NaiveDateTime::parse_from_str(text.trim(), DATE_FORMAT).ok();
            assert_eq!(parse_date(text), chrono, "{text:?}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("00:02:05"), Some(125));
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
            " : : ",
            "+1:00:00",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn each_record_counts_once_and_rejects_are_reasoned() {
        let mut d = Data::new(&[60.0, 120.0], 10);
        let (a, b) = window();
        let page = vec![
            rec(
                "1",
                "c1",
                "transfer",
                "2026-11-24 10:00:00",
                "00:00:30",
                "Ana",
            ),
            rec(
                "1",
                "c2",
                "conference",
                "2026-11-24 10:05:00",
                "00:01:30",
                "Ana",
            ),
            rec(
                "2",
                "c3",
                "TRANSFER",
                "2026-11-24 10:06:00",
                "00:05:00",
                "Bo",
            ),
            rec("2", "c4", "parked", "2026-11-24 10:07:00", "00:00:10", "Bo"),
            rec("2", "c5", "transfer", "2026-11-24 10:07:00", "1:2", "Bo"),
            rec("2", "c6", "transfer", "24/11/2026", "00:00:01", "Bo"),
            rec(
                "2",
                "c7",
                "transfer",
                "2026-11-25 00:00:00",
                "00:00:01",
                "Bo",
            ),
            rec(
                "",
                "c8",
                "transfer",
                "2026-11-24 10:07:00",
                "00:00:01",
                "Bo",
            ),
            Item::NotAnObject,
        ];
        let out = ingest(&mut d, page.clone(), a, b);
        assert_eq!(out.received, 9);
        assert_eq!(out.counted, 4);
        assert_eq!(out.invalid, [1, 1, 2, 1]);
        let ana = &d.agents["1"];
        assert_eq!(ana.series[0].as_ref().unwrap().buckets, vec![1, 0, 0]);
        assert_eq!(ana.series[1].as_ref().unwrap().sum, 90.0);
        let bo = &d.agents["2"];
        assert_eq!(bo.series[0].as_ref().unwrap().buckets, vec![0, 0, 1]);
        assert_eq!(bo.series[2].as_ref().unwrap().count, 1);

        // The same page again: everything already seen, nothing counted or rejected
        // twice, but for the item that is not an object (it has nothing to remember).
        let again = ingest(&mut d, page.clone(), a, b);
        assert_eq!(again.counted, 0);
        assert_eq!(again.duplicate, 8);
        assert_eq!(again.invalid, [0, 0, 1, 0]);
        assert_eq!(d.agents["1"].series[0].as_ref().unwrap().count, 1);
    }

    #[test]
    fn newest_name_wins_and_is_cleaned() {
        let mut d = Data::new(&[60.0], 10);
        let (a, b) = window();
        let page = vec![
            rec(
                "1",
                "c2",
                "transfer",
                "2026-11-24 11:00:00",
                "00:00:30",
                "Ana María\nR.",
            ),
            rec(
                "1",
                "c1",
                "transfer",
                "2026-11-24 10:00:00",
                "00:00:30",
                "Old Name",
            ),
        ];
        ingest(&mut d, page.clone(), a, b);
        assert_eq!(d.agents["1"].name.as_ref(), "Ana María R.");
        let long = "é".repeat(1_000_000);
        ingest(
            &mut d,
            vec![rec(
                "2",
                "c3",
                "transfer",
                "2026-11-24 11:00:00",
                "00:00:30",
                &long,
            )],
            a,
            b,
        );
        assert!(d.agents["2"].name.len() <= MAX_NAME_BYTES);
    }

    #[test]
    fn agents_past_the_limit_overflow_but_totals_hold() {
        let mut d = Data::new(&[60.0], 2);
        let (a, b) = window();
        let page: Vec<_> = (0..5)
            .map(|i| {
                rec(
                    &i.to_string(),
                    &format!("c{i}"),
                    "transfer",
                    "2026-11-24 10:00:00",
                    "00:00:30",
                    "x",
                )
            })
            .collect();
        let out = ingest(&mut d, page.clone(), a, b);
        assert_eq!(out.counted, 5);
        assert_eq!(out.overflowed, 3);
        assert_eq!(d.agents.len(), 2);
        assert_eq!(d.overflow.series[0].as_ref().unwrap().count, 3);
    }

    #[test]
    fn rejected_dates_are_remembered_until_the_window_ends() {
        let mut d = Data::new(&[60.0], 10);
        let (a, b) = window();
        let page = vec![
            rec(
                "1",
                "c1",
                "transfer",
                "2026-11-23 21:00:00",
                "00:00:30",
                "A",
            ),
            rec("1", "c2", "transfer", "garbage", "00:00:30", "A"),
        ];
        assert_eq!(ingest(&mut d, page.clone(), a, b).invalid, [0, 1, 0, 1]);
        // The overlap's start has moved past the window's start, not past its end.
        d.prune(local_secs(parse_date("2026-11-24 23:30:00").unwrap()));
        let again = ingest(&mut d, page.clone(), a, b);
        assert_eq!((again.duplicate, again.invalid), (2, [0; 4]));
    }

    #[test]
    fn pruning_forgets_only_old_identities() {
        let mut d = Data::new(&[60.0], 10);
        let (a, b) = window();
        let r1 = rec(
            "1",
            "c1",
            "transfer",
            "2026-11-24 10:00:00",
            "00:00:30",
            "A",
        );
        let r2 = rec(
            "1",
            "c2",
            "transfer",
            "2026-11-24 12:00:00",
            "00:00:30",
            "A",
        );
        ingest(&mut d, vec![r1, r2.clone()], a, b);
        d.prune(local_secs(parse_date("2026-11-24 11:00:00").unwrap()));
        assert_eq!(d.seen.len(), 1);
        assert_eq!(ingest(&mut d, vec![r2], a, b).duplicate, 1);
    }
}
