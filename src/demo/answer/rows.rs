//! Each report's rows as the vendor writes them: every value a JSON string, the personal
//! fields (telephones, customer ids) filled in as the real reports carry them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{Datelike, Duration, NaiveDateTime, Timelike};

use crate::demo::simulator::{SimCall, SimDestination, SimLeg, SimRecord};

/// One agent's agent_12 totals over a range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentTotal {
    pub agent_id: String,
    pub agent_name: String,
    pub transfers: u64,
    pub conferences: u64,
    pub seconds: u64,
}

/// agent_12's per-agent totals of the given agent_13 records, by agent id.
pub fn agent_totals(records: &[SimRecord]) -> Vec<AgentTotal> {
    let mut by_agent: BTreeMap<&str, AgentTotal> = BTreeMap::new();
    for r in records {
        let t = by_agent.entry(&r.agent_id).or_insert_with(|| AgentTotal {
            agent_id: r.agent_id.clone(),
            ..AgentTotal::default()
        });
        t.agent_name.clone_from(&r.agent_name);
        match r.interaction {
            "transfer" => t.transfers += 1,
            "conference" => t.conferences += 1,
            _ => {}
        }
        t.seconds += r.duration_secs;
    }
    by_agent.into_values().collect()
}

fn push_date(body: &mut String, date: NaiveDateTime, shift_hours: i64) {
    let date = date
        .checked_add_signed(Duration::hours(shift_hours))
        .unwrap_or(date);
    let _ = write!(
        body,
        "\"{:04}-{:02}-{:02} {:02}:{:02}:{:02}\"",
        date.year(),
        date.month(),
        date.day(),
        date.hour(),
        date.minute(),
        date.second()
    );
}

fn push_hms(body: &mut String, secs: u64) {
    let _ = write!(
        body,
        "\"{:02}:{:02}:{:02}\"",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    );
}

/// Writes `"key":` then the value through `value`.
fn field(body: &mut String, first: bool, key: &str, value: impl FnOnce(&mut String)) {
    if !first {
        body.push(',');
    }
    push_str(body, key);
    body.push(':');
    value(body);
}

pub(super) fn push_record(body: &mut String, r: &SimRecord, shift_hours: i64) {
    body.push('{');
    field(body, true, "agent_name", |b| push_str(b, &r.agent_name));
    field(body, false, "agent_id", |b| push_str(b, &r.agent_id));
    field(body, false, "conn_id", |b| push_str(b, &r.conn_id));
    field(body, false, "date", |b| {
        push_date(b, r.local_date, shift_hours)
    });
    field(body, false, "telephone", |b| push_str(b, &r.telephone));
    field(body, false, "type_interaction", |b| {
        push_str(b, r.interaction)
    });
    field(body, false, "time", |b| push_hms(b, r.duration_secs));
    body.push('}');
}

pub(super) fn push_call(body: &mut String, c: &SimCall, shift_hours: i64) {
    let skill = c.skill_id.as_deref().unwrap_or("-");
    body.push('{');
    field(body, true, "agent_id", |b| push_str(b, &c.agent_id));
    field(body, false, "agent_name", |b| push_str(b, &c.agent_name));
    field(body, false, "conn_id", |b| push_str(b, &c.conn_id));
    field(body, false, "date", |b| {
        push_date(b, c.local_date, shift_hours)
    });
    field(body, false, "type_interaction", |b| push_str(b, c.kind));
    field(body, false, "skill_id", |b| push_str(b, skill));
    field(body, false, "skill_name", |b| {
        push_str(
            b,
            if skill == "-" {
                "-"
            } else {
                "Servicio al cliente"
            },
        )
    });
    field(body, false, "campaign_id", |b| push_str(b, "-"));
    field(body, false, "telephone", |b| push_str(b, &c.telephone));
    field(body, false, "customer_id", |b| push_str(b, &c.customer_id));
    field(body, false, "destiny", |b| push_str(b, &c.telephone));
    field(body, false, "time_seg", |b| {
        push_str(b, &c.seconds.to_string())
    });
    field(body, false, "time_min", |b| {
        push_str(b, &format!("{:.2}", c.seconds as f64 / 60.0))
    });
    field(body, false, "comment", |b| {
        push_str(b, "cliente pide \"devolución\"")
    });
    field(body, false, "cost", |b| push_str(b, "0"));
    field(body, false, "hang_up", |b| push_str(b, "agent"));
    body.push('}');
}

pub(super) fn push_leg(body: &mut String, l: &SimLeg, shift_hours: i64) {
    let (dest_id, dest_name, skill) = match &l.destination {
        SimDestination::Agent { id, name } => (id.as_str(), name.as_str(), "-"),
        SimDestination::Skill(skill) => ("-", "", skill.as_str()),
        SimDestination::External => ("-", "", "-"),
    };
    body.push('{');
    field(body, true, "conn_id_transfer", |b| push_str(b, &l.leg_id));
    field(body, false, "id_call_origin", |b| push_str(b, &l.call_id));
    field(body, false, "date", |b| {
        push_date(b, l.local_date, shift_hours)
    });
    field(body, false, "origin_agent_id", |b| {
        push_str(b, &l.origin_id)
    });
    field(body, false, "origin_agent_name", |b| {
        push_str(b, &l.origin_name)
    });
    field(body, false, "destiny_agent_id", |b| push_str(b, dest_id));
    field(body, false, "destiny_agent_name", |b| {
        push_str(b, dest_name)
    });
    field(body, false, "skill_id", |b| push_str(b, skill));
    field(body, false, "ani", |b| push_str(b, &l.ani));
    field(body, false, "dnis", |b| push_str(b, "6015550100"));
    field(body, false, "time", |b| push_hms(b, l.seconds));
    field(body, false, "type_call", |b| push_str(b, l.kind));
    body.push('}');
}

pub(super) fn push_total(body: &mut String, t: &AgentTotal, _: i64) {
    body.push('{');
    field(body, true, "agent_id", |b| push_str(b, &t.agent_id));
    field(body, false, "agent_name", |b| push_str(b, &t.agent_name));
    field(body, false, "transfer_calls", |b| {
        push_str(b, &t.transfers.to_string())
    });
    field(body, false, "conference_calls", |b| {
        push_str(b, &t.conferences.to_string())
    });
    field(body, false, "total_time", |b| push_hms(b, t.seconds));
    body.push('}');
}

/// Appends `text` as a JSON string literal.
pub(super) fn push_str(body: &mut String, text: &str) {
    body.push('"');
    if !text.chars().any(|c| c == '"' || c == '\\' || c < ' ') {
        body.push_str(text);
    } else {
        for c in text.chars() {
            match c {
                '"' => body.push_str("\\\""),
                '\\' => body.push_str("\\\\"),
                '\n' => body.push_str("\\n"),
                '\r' => body.push_str("\\r"),
                '\t' => body.push_str("\\t"),
                c if c < ' ' => {
                    let _ = write!(body, "\\u{:04x}", c as u32);
                }
                c => body.push(c),
            }
        }
    }
    body.push('"');
}
