//! Writes the three per-agent families straight into the output, byte for byte as
//! prometheus-client encodes them (the tests compare both), because they are nearly all
//! of the exposition: each agent's label text is built once and reused on every line.

use std::fmt::Write as _;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::{Format, AGENT_DURATION_HELP, AGENT_INFO_HELP, AGENT_INTERACTIONS_HELP};
use crate::store::{Operation, Store, INTERACTIONS};

/// Appends the per-agent families of every operation, in the Collector's order.
pub(super) fn write(out: &mut String, store: &Store, format: Format) {
    let om = format == Format::OpenMetrics;
    let mut labels = String::with_capacity(256);

    descriptor(
        out,
        format,
        "wolkvox_agent_interactions",
        AGENT_INTERACTIONS_HELP,
        "counter",
        None,
    );
    for i in 0..store.len() {
        let op = store.read(i);
        for (id, agent) in super::sorted_agents(&op) {
            agent_labels(&mut labels, &op, id);
            for (k, h) in agent.series.iter().enumerate() {
                if let Some(h) = h {
                    out.push_str("wolkvox_agent_interactions_total{");
                    out.push_str(&labels);
                    out.push_str(",interaction=\"");
                    out.push_str(INTERACTIONS[k]);
                    out.push_str("\"} ");
                    push_u64(out, h.count);
                    out.push('\n');
                }
            }
        }
    }

    const NAME: &str = "wolkvox_agent_interaction_duration_seconds";
    descriptor(
        out,
        format,
        "wolkvox_agent_interaction_duration",
        AGENT_DURATION_HELP,
        "histogram",
        Some("seconds"),
    );
    for i in 0..store.len() {
        let op = store.read(i);
        let (les, _) = client_formatted(format, &op.data.bounds, 0.0);
        for (id, agent) in super::sorted_agents(&op) {
            agent_labels(&mut labels, &op, id);
            for (k, h) in agent.series.iter().enumerate() {
                let Some(h) = h else { continue };
                let series_end = |out: &mut String| {
                    out.push_str(",interaction=\"");
                    out.push_str(INTERACTIONS[k]);
                    out.push('"');
                };
                let sum_count = |out: &mut String| {
                    out.push_str(NAME);
                    out.push_str("_sum{");
                    out.push_str(&labels);
                    series_end(out);
                    out.push_str("} ");
                    push_f64(out, format, h.sum);
                    out.push('\n');
                    out.push_str(NAME);
                    out.push_str("_count{");
                    out.push_str(&labels);
                    series_end(out);
                    out.push_str("} ");
                    push_u64(out, h.count);
                    out.push('\n');
                };
                if om {
                    sum_count(out);
                }
                let mut cumulative = 0;
                for (le, n) in les.iter().zip(&h.buckets) {
                    cumulative += n;
                    out.push_str(NAME);
                    if om {
                        out.push_str("_bucket{le=\"");
                        out.push_str(le);
                        out.push_str("\",");
                        out.push_str(&labels);
                        series_end(out);
                    } else {
                        out.push_str("_bucket{");
                        out.push_str(&labels);
                        series_end(out);
                        out.push_str(",le=\"");
                        out.push_str(le);
                        out.push('"');
                    }
                    out.push_str("} ");
                    push_u64(out, cumulative);
                    out.push('\n');
                }
                if !om {
                    sum_count(out);
                }
            }
        }
    }

    descriptor(
        out,
        format,
        "wolkvox_agent_info",
        AGENT_INFO_HELP,
        "gauge",
        None,
    );
    for i in 0..store.len() {
        let op = store.read(i);
        for (id, agent) in super::sorted_agents(&op) {
            agent_labels(&mut labels, &op, id);
            out.push_str("wolkvox_agent_info{");
            out.push_str(&labels);
            out.push_str(",agent_name=\"");
            push_escaped(out, &agent.name);
            out.push_str("\"} 1\n");
        }
    }
}

/// `operation="...",agent_id="..."`, shared by every line of the agent.
fn agent_labels(labels: &mut String, op: &Operation, id: &str) {
    labels.clear();
    labels.push_str("operation=\"");
    push_escaped(labels, &op.name);
    labels.push_str("\",agent_id=\"");
    push_escaped(labels, id);
    labels.push('"');
}

fn descriptor(
    out: &mut String,
    format: Format,
    name: &str,
    help: &str,
    kind: &str,
    unit: Option<&str>,
) {
    let full = match unit {
        Some(u) => format!("{name}_{u}"),
        None => name.to_owned(),
    };
    match format {
        Format::Text => {
            let exposed = if kind == "counter" {
                format!("{full}_total")
            } else {
                full
            };
            let _ = write!(out, "# HELP {exposed} ");
            for c in help.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
            let _ = write!(out, "\n# TYPE {exposed} {kind}\n");
        }
        Format::OpenMetrics => {
            let _ = write!(out, "# HELP {full} {help}\n# TYPE {full} {kind}\n");
            if let Some(u) = unit {
                let _ = writeln!(out, "# UNIT {full} {u}");
            }
        }
    }
}

/// A label value with `\`, `"` and newlines escaped, as both encoders write it.
fn push_escaped(out: &mut String, value: &str) {
    if !value.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn push_u64(out: &mut String, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&buf[i..]).expect("ASCII digits"));
}

fn push_f64(out: &mut String, format: Format, v: f64) {
    // Sums of whole seconds: the common case, without the float formatter.
    if v.fract() == 0.0 && v.abs() < 1e15 && !(v == 0.0 && v.is_sign_negative()) {
        if v < 0.0 {
            out.push('-');
        }
        push_u64(out, v.abs() as u64);
        out.push_str(".0");
    } else {
        out.push_str(&client_formatted(format, &[], v).1);
    }
}

/// Bucket bounds and a sum formatted by prometheus-client itself, through a one-series
/// histogram: exact for any value, and only needed once per operation (or for a sum
/// that is not whole seconds, which ingest never produces).
fn client_formatted(format: Format, bounds: &[f64], sum: f64) -> (Vec<String>, String) {
    #[derive(Debug)]
    struct One(Vec<(f64, u64)>, f64);
    impl Collector for One {
        fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
            e.encode_descriptor("x", "", None, MetricType::Histogram)?
                .encode_histogram::<NoLabelSet>(self.1, 0, &self.0, None)
        }
    }
    let buckets = bounds
        .iter()
        .map(|b| (*b, 0))
        .chain(std::iter::once((f64::INFINITY, 0)))
        .collect();
    let mut registry = Registry::default();
    registry.register_collector(Box::new(One(buckets, sum)));
    let mut text = String::new();
    super::encode(&mut text, &registry, format);
    let les = text
        .lines()
        .filter_map(|l| l.strip_prefix("x_bucket{le=\""))
        .map(|l| l[..l.find('"').unwrap_or(l.len())].to_owned())
        .collect();
    let sum = text
        .lines()
        .find_map(|l| l.strip_prefix("x_sum "))
        .unwrap_or_default()
        .to_owned();
    (les, sum)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::metrics::{Format, Renderer};
    use crate::store::{Agent, DailyUse, Data, Health, Histogram, Operation, Store};

    fn op(name: &str, bounds: &[f64], agents: &[(&str, &str)]) -> Operation {
        let mut data = Data::new(bounds, 100);
        for (i, (id, agent_name)) in agents.iter().enumerate() {
            let mut agent = Agent::new(agent_name, i as i64);
            for k in 0..3 {
                if (i + k) % 3 == 2 {
                    continue;
                }
                let mut h = Histogram::new(bounds);
                for v in [0.0, 0.5, 1.0, 29.0, 30.0, 31.0, 125.0, 7200.0, 1e6, 3e7] {
                    for _ in 0..=(i + k) % 3 {
                        h.observe(bounds, v);
                    }
                }
                if i % 2 == 1 {
                    h.sum += 0.25;
                }
                agent.series[k] = Some(h);
            }
            data.agents.insert((*id).into(), agent);
        }
        Operation {
            name: name.into(),
            daily_limit: 1000,
            cursor: None,
            daily: DailyUse {
                day: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                used: 3,
                exhausted: false,
            },
            data,
            health: Health::default(),
        }
    }

    fn assert_same(store: Store) {
        let r = Renderer::new(Arc::new(store));
        for format in [Format::Text, Format::OpenMetrics] {
            let fast = r.render(format);
            let reference = r.render_reference(format);
            if fast != reference {
                let line = fast
                    .lines()
                    .zip(reference.lines())
                    .find(|(a, b)| a != b)
                    .map(|(a, b)| format!("\n  direct:    {a}\n  reference: {b}"));
                panic!(
                    "{format:?} differs from prometheus-client{}",
                    line.unwrap_or_default()
                );
            }
        }
    }

    #[test]
    fn same_bytes_as_prometheus_client() {
        let names = [
            ("1001", "Ana María Gómez"),
            ("1002", "O'Connor \"the\" \\ backslash"),
            ("a\"b\\c", "line\nbreak"),
            ("1000", ""),
        ];
        let mut a = op("main", &crate::config::defaults::BUCKETS, &names);
        a.data.overflow_records = 2;
        let mut h = Histogram::new(&a.data.bounds);
        h.observe(&a.data.bounds, 45.0);
        a.data.overflow.series[0] = Some(h);
        let b = op("other \"op\"", &[1e-5, 0.5, 2.5, 1e6, 1.5e7], &names[..2]);
        assert_same(Store::new(vec![a, b]));
    }

    #[test]
    fn same_bytes_when_empty() {
        assert_same(Store::new(vec![op("empty", &[60.0], &[])]));
        assert_same(Store::new(Vec::new()));
    }
}
