//! Writes the histories as OpenMetrics for `promtool tsdb create-blocks-from
//! openmetrics`: each family once, each series with a sample at every boundary from its
//! first value to the range's end (a graph shows no gap where nothing changed), the
//! labels Prometheus attaches to the exporter's target added, and `# EOF`.

use std::io::{self, Write};

use super::timeline::{FamilyHistory, Grid, History, Point};

/// One operation's histories, each on its grid.
#[derive(Debug)]
pub struct Operation<'a> {
    pub grid: Grid,
    pub histories: Vec<&'a History>,
}

/// What was written.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub series: u64,
    pub samples: u64,
}

/// Writes every family of `ops`, in the order first seen; `labels` is the text added to
/// every series' label set (`job="...",instance="..."`).
pub fn write(out: &mut impl Write, ops: &[Operation], labels: &str) -> io::Result<Written> {
    let mut names: Vec<&str> = Vec::new();
    for op in ops {
        for h in &op.histories {
            for f in &h.families {
                if !names.contains(&f.name.as_str()) {
                    names.push(&f.name);
                }
            }
        }
    }
    let mut written = Written::default();
    for name in names {
        let mut meta_written = false;
        for op in ops {
            for f in op.histories.iter().flat_map(|h| &h.families) {
                if f.name != name {
                    continue;
                }
                if !meta_written {
                    for line in &f.meta {
                        writeln!(out, "{line}")?;
                    }
                    meta_written = true;
                }
                write_family(out, f, &op.grid, labels, &mut written)?;
            }
        }
    }
    writeln!(out, "# EOF")?;
    Ok(written)
}

fn write_family(
    out: &mut impl Write,
    family: &FamilyHistory,
    grid: &Grid,
    labels: &str,
    written: &mut Written,
) -> io::Result<()> {
    for (key, points) in &family.series {
        let series = with_labels(key, labels);
        written.series += 1;
        if let (true, Some(&(first, Some(_)))) = (family.counter, points.first()) {
            if first > 0 {
                writeln!(out, "{series} 0 {}", grid.time(first - 1))?;
                written.samples += 1;
            }
        }
        for (i, &(from, value)) in points.iter().enumerate() {
            let Some(value) = value else { continue };
            let until = points.get(i + 1).map_or(grid.last() + 1, |p: &Point| p.0);
            let value = format_value(value);
            for b in from..until {
                writeln!(out, "{series} {value} {}", grid.time(b))?;
                written.samples += 1;
            }
        }
    }
    Ok(())
}

/// `name{a="b"}` with `labels` first in the label set.
fn with_labels(key: &str, labels: &str) -> String {
    if labels.is_empty() {
        return key.to_owned();
    }
    match key.split_once('{') {
        Some((name, rest)) if rest.starts_with('}') => format!("{name}{{{labels}}}"),
        Some((name, rest)) => format!("{name}{{{labels},{rest}"),
        None => format!("{key}{{{labels}}}"),
    }
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        v.to_string()
    }
}

/// `job="a",instance="b"`, values escaped as OpenMetrics requires.
pub fn label_text(labels: &[(String, String)]) -> String {
    labels
        .iter()
        .map(|(name, value)| {
            let value = value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
            format!("{name}=\"{value}\"")
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    #[test]
    fn series_are_dense_from_their_first_value_and_counters_start_at_zero() {
        let start = DateTime::from_timestamp(1_000, 0).unwrap();
        let grid = Grid {
            start,
            end: start + chrono::Duration::seconds(40),
            step_secs: 10,
            timezone: chrono_tz::UTC,
        };
        let mut h = History::default();
        h.record(
            2,
            "# HELP c Things.\n# TYPE c counter\nc_total{a=\"x\"} 2\n# TYPE g gauge\ng{a=\"y\"} 1.5\n",
        );
        h.record(3, "# TYPE c counter\nc_total{a=\"x\"} 5\n");
        let mut out = Vec::new();
        let labels = label_text(&[("job".into(), "wolkvox".into()), ("instance".into(), "a \"b\"".into())]);
        let written = write(&mut out, &[Operation { grid, histories: vec![&h] }], &labels).unwrap();
        let text = String::from_utf8(out).unwrap();
        let l = r#"job="wolkvox",instance="a \"b\"""#;
        let expected = format!(
            "# HELP c Things.\n# TYPE c counter\n\
             c_total{{{l},a=\"x\"}} 0 1010\n\
             c_total{{{l},a=\"x\"}} 2 1020\n\
             c_total{{{l},a=\"x\"}} 5 1030\n\
             c_total{{{l},a=\"x\"}} 5 1040\n\
             # TYPE g gauge\n\
             g{{{l},a=\"y\"}} 1.5 1020\n\
             # EOF\n"
        );
        assert_eq!(text, expected);
        assert_eq!(written, Written { series: 2, samples: 5 });
    }

    #[test]
    fn labels_go_into_any_label_set() {
        assert_eq!(with_labels("x", "j=\"1\""), "x{j=\"1\"}");
        assert_eq!(with_labels("x{}", "j=\"1\""), "x{j=\"1\"}");
        assert_eq!(with_labels("x{a=\"{\"}", "j=\"1\""), "x{j=\"1\",a=\"{\"}");
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(0.25), "0.25");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
    }
}
