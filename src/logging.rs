//! Log set-up: `--log.level` and `--log.format=logfmt|json`, as Prometheus exporters do.
//! The level applies to the exporter's own logs; libraries log warnings and errors
//! only, unless the level is a full filter directive (it contains `=`).

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Logfmt,
    Json,
}

pub fn filter(level: &str) -> Result<EnvFilter, String> {
    let directive = if level.contains('=') {
        level.to_owned()
    } else {
        match level {
            "trace" | "debug" | "info" | "warn" | "error" => {
                format!("warn,wolkvox_exporter={level}")
            }
            other => {
                return Err(format!("--log.level: unknown level {other:?} (trace, debug, info, warn, error)"))
            }
        }
    };
    EnvFilter::try_new(&directive).map_err(|e| format!("--log.level: {e}"))
}

/// Installs the global subscriber writing to `writer`: stderr, or the backfill's, which
/// keeps its progress bars below the log.
pub fn init<W>(level: &str, format: LogFormat, writer: W) -> Result<(), String>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = filter(level)?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    let result = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Logfmt => builder.event_format(Logfmt).try_init(),
    };
    result.map_err(|e| e.to_string())
}

/// `ts=... level=info target=... msg="..." key=value` lines, as Prometheus exporters
/// write them. Not tracing-logfmt 0.3.7: it writes the message as `message=` with no
/// way to rename it to `msg=`, and escapes with Rust's `escape_debug` (`\0`, `\u{1f}`),
/// which the Go logfmt decoder (go-logfmt) refuses.
#[derive(Debug, Clone, Copy, Default)]
pub struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        write!(
            w,
            "ts={} level={} target={}",
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            meta.level().as_str().to_lowercase(),
            meta.target()
        )?;
        let mut v = LogfmtVisitor { out: String::new(), msg: None };
        event.record(&mut v);
        if let Some(msg) = v.msg {
            w.write_str(" msg=")?;
            w.write_str(&quote(&msg))?;
        }
        w.write_str(&v.out)?;
        writeln!(w)
    }
}

struct LogfmtVisitor {
    out: String,
    msg: Option<String>,
}

impl Visit for LogfmtVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, format!("{value:?}"));
    }
}

impl LogfmtVisitor {
    fn push(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.msg = Some(value);
        } else {
            self.out.push(' ');
            self.out.push_str(field.name());
            self.out.push('=');
            self.out.push_str(&quote(&value));
        }
    }
}

/// Writes one logfmt error line to stderr without a subscriber (before logging is set up).
pub fn error(msg: &str, fields: &[(&str, &str)]) {
    let ts = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
    let mut out = format!("ts={ts} level=error target=wolkvox_exporter msg={}", quote(msg));
    for (k, v) in fields {
        out.push_str(&format!(" {k}={}", quote(v)));
    }
    eprintln!("{out}");
}

/// Quotes a logfmt value when it needs it, with the escapes Go's logfmt decoder reads.
pub fn quote(v: &str) -> String {
    let plain = !v.is_empty()
        && v.chars().all(|c| !c.is_whitespace() && !c.is_control() && c != '"' && c != '=' && c != '\\');
    if plain {
        return v.to_owned();
    }
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            // Control characters are all below U+00A0: four hex digits suffice.
            c if c.is_control() => s.push_str(&format!("\\u{:04x}", c as u32)),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("listening"), "listening");
        assert_eq!(quote("127.0.0.1:9798"), "127.0.0.1:9798");
        assert_eq!(quote("a b"), "\"a b\"");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("x=\"y\"\n"), "\"x=\\\"y\\\"\\n\"");
        assert_eq!(quote("a\\b"), "\"a\\\\b\"");
        assert_eq!(quote("bell\u{7}"), "\"bell\\u0007\"");
        assert_eq!(quote("it's"), "it's");
    }

    /// A `MakeWriter` collecting every line in memory.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Lines {
        type Writer = Lines;
        fn make_writer(&'a self) -> Lines {
            self.clone()
        }
    }

    #[test]
    fn an_event_is_one_logfmt_line() {
        let lines = Lines::default();
        let subscriber = tracing_subscriber::fmt().with_writer(lines.clone()).event_format(Logfmt).finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(
                address = "127.0.0.1:9798",
                operations = 2,
                error = %"cannot read \"x\"",
                "token file is readable"
            );
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let (ts, rest) = text.strip_prefix("ts=").and_then(|t| t.split_once(' ')).expect(&text);
        assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok() && ts.ends_with('Z'), "{ts}");
        assert_eq!(
            rest,
            "level=warn target=wolkvox_exporter::logging::tests msg=\"token file is readable\" \
             address=127.0.0.1:9798 operations=2 error=\"cannot read \\\"x\\\"\"\n"
        );
    }

    #[test]
    fn levels() {
        assert!(filter("debug").is_ok());
        assert!(filter("wolkvox_exporter=trace").is_ok());
        assert!(filter("loud").unwrap_err().starts_with("--log.level"));
    }
}
