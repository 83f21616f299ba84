//! A small parser of the Prometheus text exposition, for exact comparisons in tests.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Clone, Default)]
pub struct Exposition {
    pub samples: Vec<Sample>,
    /// `# TYPE` lines: metric family name to type.
    pub types: BTreeMap<String, String>,
}

impl Exposition {
    pub fn parse(text: &str) -> Exposition {
        let mut out = Exposition::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut it = rest.split_whitespace();
                if let (Some(n), Some(t)) = (it.next(), it.next()) {
                    out.types.insert(n.to_owned(), t.to_owned());
                }
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            out.samples.push(parse_sample(line).unwrap_or_else(|| panic!("unparsable line {line:?}")));
        }
        out
    }

    /// Samples of `name` whose labels include every pair of `filter`.
    pub fn select<'a>(
        &'a self,
        name: &'a str,
        filter: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name && filter.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// The single value of `name` with exactly these labels (plus any others absent).
    pub fn get(&self, name: &str, filter: &[(&str, &str)]) -> Option<f64> {
        let mut it = self.select(name, filter);
        let first = it.next()?;
        assert!(it.next().is_none(), "{name} {filter:?} matches more than one sample");
        Some(first.value)
    }

    pub fn sum(&self, name: &str, filter: &[(&str, &str)]) -> f64 {
        self.select(name, filter).map(|s| s.value).sum()
    }
}

pub fn parse_sample(line: &str) -> Option<Sample> {
    let (name_end, mut labels) = match line.find('{') {
        Some(i) if line[..i].chars().all(|c| !c.is_whitespace()) => (i, BTreeMap::new()),
        _ => (line.find(' ')?, BTreeMap::new()),
    };
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    if rest.starts_with('{') {
        let mut chars = rest[1..].char_indices();
        loop {
            // key
            let start = chars.clone().next()?.0;
            let mut key_end = start;
            for (i, c) in chars.by_ref() {
                if c == '=' {
                    key_end = i;
                    break;
                }
                if c == '}' {
                    rest = &rest[1 + i + 1..];
                    return finish(name, labels, rest);
                }
            }
            let key = rest[1 + start..1 + key_end].trim_start_matches(',').trim().to_owned();
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            let mut escaped = false;
            for (_, c) in chars.by_ref() {
                if escaped {
                    value.push(match c {
                        'n' => '\n',
                        other => other,
                    });
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    break;
                } else {
                    value.push(c);
                }
            }
            labels.insert(key, value);
            match chars.next()? {
                (_, ',') => {
                    if let Some((i, '}')) = chars.clone().next() {
                        rest = &rest[1 + i + 1..];
                        return finish(name, labels, rest);
                    }
                }
                (i, '}') => {
                    rest = &rest[1 + i + 1..];
                    return finish(name, labels, rest);
                }
                _ => return None,
            }
        }
    }
    finish(name, labels, rest)
}

fn finish(name: String, labels: BTreeMap<String, String>, rest: &str) -> Option<Sample> {
    let v = rest.split_whitespace().next()?;
    let value = match v {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().ok()?,
    };
    Some(Sample { name, labels, value })
}
