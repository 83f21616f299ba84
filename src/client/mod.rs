//! Talks to the Wolkvox report API: a report's request in operation-local time, the body
//! read under a size cap, every answer mapped to rows, "no records" or one error reason.

mod answer;
mod error;

use std::time::Duration;

use chrono::NaiveDateTime;

pub use crate::vocab::ErrorReason;
use crate::vocab::Token;
pub use answer::{interpret, Answer, Item, Text};
pub use error::ApiError;

pub use wolkvox_api::{INFO_PATH, PARAM_FORMAT, RECORD_CAP, REPORT_PATH};
use wolkvox_api::{TOKEN_HEADER, TOKEN_INFO};
/// Error bodies are short; more than this is not read.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// One operation's HTTP client. Holds the token; never prints it.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    token: Token,
    max_body_bytes: u64,
}

impl Client {
    pub fn new(base_url: &str, token: Token, timeout: Duration, max_body_bytes: u64) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            // A redirect could carry the token header to another host.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("wolkvox-exporter/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("TLS backend and client settings are static");
        Client { http, base_url: base_url.to_owned(), token, max_body_bytes }
    }

    /// The error with this client's token cut out of its text.
    pub fn redact(&self, e: ApiError) -> ApiError {
        e.redact(self.token.expose())
    }

    /// The URL of report `api` for a window of operation-local times, both ends inclusive.
    pub fn report_url(&self, api: &str, ini: NaiveDateTime, end: NaiveDateTime) -> String {
        format!(
            "{}{REPORT_PATH}?api={api}&date_ini={}&date_end={}",
            self.base_url,
            ini.format(PARAM_FORMAT),
            end.format(PARAM_FORMAT)
        )
    }

    /// Requests one window of a report; the status and the body, read under the cap.
    pub async fn fetch(
        &self,
        api: &str,
        ini: NaiveDateTime,
        end: NaiveDateTime,
    ) -> Result<(u16, Vec<u8>), ApiError> {
        self.get(self.report_url(api, ini, end)).await
    }

    /// Asks for the token's information (`token_info`): limit and use today.
    pub async fn token_info(&self) -> Result<(u16, Vec<u8>), ApiError> {
        self.get(format!("{}{INFO_PATH}?api={TOKEN_INFO}", self.base_url)).await
    }

    async fn get(&self, url: String) -> Result<(u16, Vec<u8>), ApiError> {
        let mut resp = self
            .http
            .get(url)
            .header(TOKEN_HEADER, self.token.expose())
            .send()
            .await
            .map_err(transport_error)?;
        let status = resp.status().as_u16();
        let limit = if status == 200 { self.max_body_bytes } else { ERROR_BODY_LIMIT };
        if status == 200 && resp.content_length().is_some_and(|n| n > limit) {
            return Err(ApiError::TooLarge(limit));
        }
        let mut body = Vec::with_capacity(
            resp.content_length().unwrap_or(16 * 1024).min(limit).min(64 * 1024 * 1024) as usize,
        );
        while let Some(chunk) = resp.chunk().await.map_err(transport_error)? {
            if (body.len() + chunk.len()) as u64 > limit {
                if status == 200 {
                    return Err(ApiError::TooLarge(limit));
                }
                body.extend_from_slice(&chunk[..(limit as usize - body.len())]);
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, body))
    }
}

fn transport_error(e: reqwest::Error) -> ApiError {
    // A timeout while connecting stays a timeout (and is charged to the quota): the
    // reason must not depend on how far a slow server got.
    if e.is_timeout() {
        return ApiError::Timeout;
    }
    let connect_only = e.is_connect();
    // Neither the URL nor the error chain holds the token (it is a header).
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    if connect_only {
        ApiError::Unreachable(msg)
    } else {
        ApiError::Connect(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base_url: String) -> Client {
        Client::new(&base_url, Token::new("t"), Duration::from_secs(5), 1 << 20)
    }

    #[tokio::test]
    async fn a_refused_connection_is_unreachable() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let day = chrono::NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
        let e = client(base_url)
            .fetch("agent_13", day.and_hms_opt(0, 0, 0).unwrap(), day.and_hms_opt(0, 5, 0).unwrap())
            .await
            .unwrap_err();
        assert!(matches!(e, ApiError::Unreachable(_)), "{e:?}");
    }

    #[test]
    fn url_uses_local_wall_clock() {
        let ini = chrono::NaiveDate::from_ymd_opt(2026, 1, 2).unwrap().and_hms_opt(3, 4, 5).unwrap();
        assert_eq!(
            client("http://127.0.0.1:1".into()).report_url("cdr_1", ini, ini),
            "http://127.0.0.1:1/api/v2/reports_manager.php?api=cdr_1&date_ini=20260102030405&date_end=20260102030405"
        );
    }
}
