//! The landing page at `/`: links to the endpoints and a table of where each report of
//! each operation stands, every value from the API escaped.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::Response;

use super::Site;
use crate::metrics::VERSION;

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(super) fn landing(site: &Site) -> Response<Full<Bytes>> {
    let when = |t: Option<chrono::DateTime<chrono::Utc>>, none: &str| {
        t.map_or(none.to_owned(), |c| c.format("%Y-%m-%d %H:%M:%S UTC").to_string())
    };
    let mut rows = String::new();
    for op in site.store.operations() {
        let data = op.read();
        for slot in &data.reports {
            let report = slot.name();
            let h = &slot.health;
            rows.push_str(&format!(
                "<tr><td>{}</td><td>{report}</td><td>{}</td><td>{}</td><td>{}</td><td>{}/{}</td><td>{}</td><td>{}</td></tr>\n",
                escape_html(&op.name),
                if h.up { "up" } else { "down" },
                when(h.watermark, "not yet"),
                when(h.last_success, "never"),
                data.daily.used,
                op.daily_limit,
                data.agents.known.len(),
                escape_html(data.last_error.as_deref().unwrap_or("")),
            ));
        }
    }
    let page = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Wolkvox exporter</title></head>\n<body>\n\
         <h1>Wolkvox exporter</h1>\n<p>Version {VERSION}. Per-agent transfers, conferences and calls from the Wolkvox report API.</p>\n\
         <p><a href=\"{path}\">Metrics</a> &middot; <a href=\"/-/healthy\">Health</a> &middot; <a href=\"/-/ready\">Readiness</a></p>\n\
         <table border=\"1\" cellpadding=\"4\">\n<tr><th>Operation</th><th>Report</th><th>Status</th><th>Watermark</th><th>Last success</th><th>Requests today / limit</th><th>Agents</th><th>Last error</th></tr>\n{rows}</table>\n</body></html>\n",
        path = escape_html(&site.telemetry_path),
    );
    let mut r = Response::new(Full::new(Bytes::from(page)));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(escape_html("<a href=\"x\">&</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;");
    }
}
