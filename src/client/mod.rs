//! The agent_13 client: builds the request in operation-local time, reads the body
//! under a size cap, and maps every answer to records, "no records" or one error reason.

pub mod decode;
mod fast;

use std::time::Duration;

use chrono::NaiveDateTime;

use crate::config::{OperationConfig, Token};
pub use decode::{Envelope, Item, RawRecord};

/// The report path appended to an operation's base URL.
pub const REPORT_PATH: &str = "/api/v2/reports_manager.php";
/// The API's date parameter format (`YYYYmmddHHiiss`).
pub const PARAM_FORMAT: &str = "%Y%m%d%H%M%S";
/// Error bodies are short; more than this is not read.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// A failed request. Each variant is one `reason` label; texts never hold the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("request timed out")]
    Timeout,
    #[error("connection failed: {0}")]
    Connect(String),
    /// No connection was made (name lookup, TCP connect or TLS handshake failed), so
    /// the request was never sent and cost nothing of the day's quota. Counted under
    /// the `connect` reason, like a connection that failed after the request went out.
    #[error("could not connect: {0}")]
    Unreachable(String),
    #[error("server error: HTTP {0}")]
    Http5xx(u16),
    #[error("bad request (API missing or parameters wrong): {0}")]
    BadRequest(String),
    #[error("unauthorized (token missing): {0}")]
    Unauthorized(String),
    #[error("invalid, expired or malformed token: {0}")]
    InvalidToken(String),
    #[error("daily token quota exceeded: {0}")]
    QuotaExceeded(String),
    #[error("simultaneous requests on this token refused: {0}")]
    ConcurrencyLimit(String),
    #[error("server under maintenance: {0}")]
    Maintenance(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("unreadable response: {0}")]
    BadResponse(String),
    #[error("response larger than the {0} byte limit")]
    TooLarge(u64),
}

impl ApiError {
    /// Every reason, so each series exists from the start.
    pub const REASONS: [&'static str; 12] = [
        "timeout",
        "connect",
        "http_5xx",
        "bad_request",
        "unauthorized",
        "invalid_token",
        "quota_exceeded",
        "concurrency_limit",
        "maintenance",
        "forbidden",
        "bad_response",
        "too_large",
    ];

    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::Timeout => "timeout",
            ApiError::Connect(_) | ApiError::Unreachable(_) => "connect",
            ApiError::Http5xx(_) => "http_5xx",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::InvalidToken(_) => "invalid_token",
            ApiError::QuotaExceeded(_) => "quota_exceeded",
            ApiError::ConcurrencyLimit(_) => "concurrency_limit",
            ApiError::Maintenance(_) => "maintenance",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::BadResponse(_) => "bad_response",
            ApiError::TooLarge(_) => "too_large",
        }
    }

    /// The same error with `secret` cut out of its text: a server may echo the caller's
    /// token in an error message, and these texts reach logs and the landing page.
    pub fn redact(self, secret: &str) -> ApiError {
        let cut = |text: String| {
            if secret.is_empty() || !text.contains(secret) {
                text
            } else {
                text.replace(secret, "<redacted>")
            }
        };
        match self {
            ApiError::Connect(t) => ApiError::Connect(cut(t)),
            ApiError::Unreachable(t) => ApiError::Unreachable(cut(t)),
            ApiError::BadRequest(t) => ApiError::BadRequest(cut(t)),
            ApiError::Unauthorized(t) => ApiError::Unauthorized(cut(t)),
            ApiError::InvalidToken(t) => ApiError::InvalidToken(cut(t)),
            ApiError::QuotaExceeded(t) => ApiError::QuotaExceeded(cut(t)),
            ApiError::ConcurrencyLimit(t) => ApiError::ConcurrencyLimit(cut(t)),
            ApiError::Maintenance(t) => ApiError::Maintenance(cut(t)),
            ApiError::Forbidden(t) => ApiError::Forbidden(cut(t)),
            ApiError::BadResponse(t) => ApiError::BadResponse(cut(t)),
            e @ (ApiError::Timeout | ApiError::Http5xx(_) | ApiError::TooLarge(_)) => e,
        }
    }

    /// Errors that retrying soon cannot fix: the configuration or the token is wrong.
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            ApiError::BadRequest(_) | ApiError::Unauthorized(_) | ApiError::InvalidToken(_)
        )
    }

    /// Whether the request went out, and so cost one unit of the day's quota.
    pub fn was_sent(&self) -> bool {
        !matches!(self, ApiError::Unreachable(_))
    }
}

/// What a successful request returned.
#[derive(Debug)]
pub enum Answer<'a> {
    Records(Vec<Item<'a>>),
    /// The 404 "no records" answer.
    Empty,
}

/// Interprets a status and body. Pure, so every API answer is unit-tested.
pub fn interpret(status: u16, body: &[u8]) -> Result<Answer<'_>, ApiError> {
    let envelope = decode::decode(body);
    match status {
        200..=299 => {
            let env = envelope.map_err(|e| ApiError::BadResponse(describe_json_error(body, &e)))?;
            match env.code {
                None | Some(200..=299) => Ok(Answer::Records(env.items)),
                Some(code) => classify(code, &env.text()),
            }
        }
        404 => match envelope {
            Ok(_) => Ok(Answer::Empty),
            Err(_) if body.iter().all(u8::is_ascii_whitespace) => Ok(Answer::Empty),
            Err(e) => Err(ApiError::BadResponse(format!(
                "HTTP 404 without the API's JSON answer ({})",
                describe_json_error(body, &e)
            ))),
        },
        _ => {
            let text = match &envelope {
                Ok(env) => env.text(),
                Err(_) => snippet(body),
            };
            classify(status, &text)
        }
    }
}

/// Maps an error status and the answer's text to one reason. The 403 variants differ
/// only in their text, matched case-insensitively, with "forbidden" as the fallback.
fn classify<'a>(status: u16, text: &str) -> Result<Answer<'a>, ApiError> {
    let t = text.to_lowercase();
    let text = text.to_owned();
    Err(match status {
        404 => return Ok(Answer::Empty),
        400 => ApiError::BadRequest(text),
        401 => ApiError::Unauthorized(text),
        403 if t.contains("simultaneous") || t.contains("concurren") => {
            ApiError::ConcurrencyLimit(text)
        }
        403 if t.contains("maintenance") || t.contains("backup") => ApiError::Maintenance(text),
        403 if t.contains("invalid") || t.contains("expired") || t.contains("malformed") => {
            ApiError::InvalidToken(text)
        }
        403 if t.contains("limit") || t.contains("quota") => ApiError::QuotaExceeded(text),
        403 => ApiError::Forbidden(text),
        500..=599 => ApiError::Http5xx(status),
        _ => ApiError::BadResponse(format!("unexpected HTTP {status}: {text}")),
    })
}

fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(200)]);
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn describe_json_error(body: &[u8], e: &serde_json::Error) -> String {
    if body.first().is_some_and(|b| *b == b'<') {
        "HTML instead of JSON".to_owned()
    } else if e.is_eof() {
        format!("truncated JSON after {} bytes", body.len())
    } else {
        format!("invalid JSON: {e}")
    }
}

/// One operation's HTTP client. Holds the token; never prints it.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    url: String,
    token: Token,
    max_body_bytes: u64,
}

impl Client {
    pub fn new(op: &OperationConfig, timeout: Duration, max_body_bytes: u64) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            // A redirect could carry the token header to another host.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("wolkvox-exporter/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("TLS backend and client settings are static");
        Client {
            http,
            url: format!("{}{}", op.base_url, REPORT_PATH),
            token: op.token.clone(),
            max_body_bytes,
        }
    }

    /// [`interpret`], with this client's token cut out of any error text.
    pub fn interpret<'b>(&self, status: u16, body: &'b [u8]) -> Result<Answer<'b>, ApiError> {
        interpret(status, body).map_err(|e| e.redact(self.token.expose()))
    }

    /// The request URL for a window of operation-local times, both ends inclusive.
    pub fn request_url(&self, ini: NaiveDateTime, end: NaiveDateTime) -> String {
        format!(
            "{}?api=agent_13&date_ini={}&date_end={}",
            self.url,
            ini.format(PARAM_FORMAT),
            end.format(PARAM_FORMAT)
        )
    }

    /// Sends one request and returns the status and body, read under the size cap.
    pub async fn fetch(
        &self,
        ini: NaiveDateTime,
        end: NaiveDateTime,
    ) -> Result<(u16, Vec<u8>), ApiError> {
        let mut resp = self
            .http
            .get(self.request_url(ini, end))
            .header("wolkvox-token", self.token.expose())
            .send()
            .await
            .map_err(transport_error)?;
        let status = resp.status().as_u16();
        let limit = if status == 200 {
            self.max_body_bytes
        } else {
            ERROR_BODY_LIMIT as u64
        };
        if status == 200 && resp.content_length().is_some_and(|n| n > limit) {
            return Err(ApiError::TooLarge(limit));
        }
        let mut body = Vec::with_capacity(
            resp.content_length()
                .unwrap_or(16 * 1024)
                .min(limit)
                .min(64 * 1024 * 1024) as usize,
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
        ApiError::Timeout
    } else {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(status: u16, body: &str) -> &'static str {
        match interpret(status, body.as_bytes()) {
            Ok(Answer::Empty) => "empty",
            Ok(Answer::Records(_)) => "records",
            Err(e) => e.reason(),
        }
    }

    fn err(code: u16, text: &str) -> String {
        format!(r#"{{"code":{code},"error":"{text}","msg":"{text}","data":[]}}"#)
    }

    #[test]
    fn every_documented_answer_has_one_reason() {
        assert_eq!(reason(200, r#"{"code":200,"data":[]}"#), "records");
        assert_eq!(reason(200, r#"{"code":"200","data":{}}"#), "records");
        assert_eq!(reason(404, &err(404, "Validate dates entered")), "empty");
        assert_eq!(reason(404, ""), "empty");
        assert_eq!(reason(200, &err(404, "Validate dates entered")), "empty");
        assert_eq!(reason(404, "<html>not found</html>"), "bad_response");
        assert_eq!(
            reason(400, &err(400, "The API does not exist")),
            "bad_request"
        );
        assert_eq!(reason(401, &err(401, "Token missing")), "unauthorized");
        assert_eq!(
            reason(403, &err(403, "Token limit exceeded")),
            "quota_exceeded"
        );
        assert_eq!(
            reason(
                403,
                &err(403, "Exceeds the limit of simultaneous requests per token")
            ),
            "concurrency_limit"
        );
        assert_eq!(
            reason(403, &err(403, "Invalid, expired or malformed token")),
            "invalid_token"
        );
        assert_eq!(
            reason(
                403,
                &err(403, "Server under MAINTENANCE (backups), try again later")
            ),
            "maintenance"
        );
        assert_eq!(reason(403, &err(403, "Nope")), "forbidden");
        assert_eq!(reason(403, "<html>Forbidden</html>"), "forbidden");
        assert_eq!(reason(502, "<html>Bad gateway</html>"), "http_5xx");
        assert_eq!(reason(500, ""), "http_5xx");
        assert_eq!(reason(200, "<html>oops</html>"), "bad_response");
        assert_eq!(
            reason(200, r#"{"code":200,"data":[{"agent_id":"1"#),
            "bad_response"
        );
        assert_eq!(reason(302, ""), "bad_response");
        assert_eq!(
            reason(200, &err(403, "Token limit exceeded")),
            "quota_exceeded"
        );
    }

    #[test]
    fn echoed_tokens_are_cut_out() {
        let body = err(403, "Invalid token s3cr3t, s3cr3t expired");
        let e = interpret(403, body.as_bytes())
            .unwrap_err()
            .redact("s3cr3t");
        assert_eq!(e.reason(), "invalid_token");
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        assert!(e.to_string().contains("<redacted>"));
        assert_eq!(ApiError::Timeout.redact("s3cr3t"), ApiError::Timeout);
    }

    #[test]
    fn reasons_are_the_fixed_set() {
        let all = [
            ApiError::Timeout,
            ApiError::Connect(String::new()),
            ApiError::Http5xx(500),
            ApiError::BadRequest(String::new()),
            ApiError::Unauthorized(String::new()),
            ApiError::InvalidToken(String::new()),
            ApiError::QuotaExceeded(String::new()),
            ApiError::ConcurrencyLimit(String::new()),
            ApiError::Maintenance(String::new()),
            ApiError::Forbidden(String::new()),
            ApiError::BadResponse(String::new()),
            ApiError::TooLarge(1),
        ];
        let reasons: Vec<_> = all.iter().map(ApiError::reason).collect();
        assert_eq!(reasons, ApiError::REASONS.to_vec());
        assert!(all.iter().all(ApiError::was_sent));
        let unreachable = ApiError::Unreachable(String::new());
        assert_eq!(unreachable.reason(), "connect");
        assert!(!unreachable.was_sent());
    }

    #[tokio::test]
    async fn a_refused_connection_is_unreachable() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let op = OperationConfig {
            name: "x".into(),
            base_url,
            token: Token::new("t"),
            timezone: chrono_tz::America::Bogota,
            licenses: 1,
        };
        let c = Client::new(&op, Duration::from_secs(5), 1 << 20);
        let day = chrono::NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
        let e = c
            .fetch(
                day.and_hms_opt(0, 0, 0).unwrap(),
                day.and_hms_opt(0, 5, 0).unwrap(),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, ApiError::Unreachable(_)), "{e:?}");
    }

    #[test]
    fn url_uses_local_wall_clock() {
        let op = OperationConfig {
            name: "x".into(),
            base_url: "http://127.0.0.1:1".into(),
            token: Token::new("t"),
            timezone: chrono_tz::America::Bogota,
            licenses: 1,
        };
        let c = Client::new(&op, Duration::from_secs(1), 1 << 20);
        let ini = chrono::NaiveDate::from_ymd_opt(2026, 1, 2)
            .unwrap()
            .and_hms_opt(3, 4, 5)
            .unwrap();
        assert_eq!(
            c.request_url(ini, ini),
            "http://127.0.0.1:1/api/v2/reports_manager.php?api=agent_13&date_ini=20260102030405&date_end=20260102030405"
        );
    }
}
