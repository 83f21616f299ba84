//! Blocking GETs for the tests, on reqwest: loopback only, no proxy, a timeout, and a
//! fresh connection per request (as a scraper's would be, and so no pooled connection
//! outlives a server under test). Tests that must send malformed or half-sent HTTP use
//! a raw socket instead.

use std::sync::OnceLock;
use std::time::Duration;

/// Connect and whole-request timeout.
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text (lossy: test output should still show something).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A new client; threads that each want their own (a load test's scrapers) build one.
/// Bodies come as sent: a gzip body stays compressed.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .pool_max_idle_per_host(0)
        .user_agent("wolkvox-exporter-tests")
        .build()
        .expect("build the test HTTP client")
}

fn shared() -> &'static reqwest::blocking::Client {
    static CLIENT: OnceLock<reqwest::blocking::Client> = OnceLock::new();
    CLIENT.get_or_init(client)
}

pub fn get(url: &str) -> reqwest::Result<Response> {
    get_with_headers(url, &[])
}

/// GET `url` with extra request headers, on the shared client.
pub fn get_with_headers(url: &str, headers: &[(&str, &str)]) -> reqwest::Result<Response> {
    get_on(shared(), url, headers)
}

/// GET on a given client.
pub fn get_on(
    client: &reqwest::blocking::Client,
    url: &str,
    headers: &[(&str, &str)],
) -> reqwest::Result<Response> {
    let parsed = reqwest::Url::parse(url).expect("a valid URL");
    let host = parsed.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    assert!(loopback, "tests only talk to loopback, not {url}");
    let mut request = client.get(parsed);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send()?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = response.bytes()?.to_vec();
    Ok(Response { status, headers, body })
}
