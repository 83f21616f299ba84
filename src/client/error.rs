//! Why a request failed. Each variant maps to one `reason` label, here and nowhere else;
//! error texts never hold the token.

use crate::vocab::ErrorReason;

/// A failed request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("request timed out")]
    Timeout,
    #[error("connection failed: {0}")]
    Connect(String),
    /// No connection was made (name lookup, TCP connect or TLS handshake failed), so
    /// the request was never sent and cost nothing of the day's quota.
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
    pub fn reason(&self) -> ErrorReason {
        match self {
            ApiError::Timeout => ErrorReason::timeout,
            ApiError::Connect(_) | ApiError::Unreachable(_) => ErrorReason::connect,
            ApiError::Http5xx(_) => ErrorReason::http_5xx,
            ApiError::BadRequest(_) => ErrorReason::bad_request,
            ApiError::Unauthorized(_) => ErrorReason::unauthorized,
            ApiError::InvalidToken(_) => ErrorReason::invalid_token,
            ApiError::QuotaExceeded(_) => ErrorReason::quota_exceeded,
            ApiError::ConcurrencyLimit(_) => ErrorReason::concurrency_limit,
            ApiError::Maintenance(_) => ErrorReason::maintenance,
            ApiError::Forbidden(_) => ErrorReason::forbidden,
            ApiError::BadResponse(_) => ErrorReason::bad_response,
            ApiError::TooLarge(_) => ErrorReason::too_large,
        }
    }

    /// The same error with `secret` cut out of its text: a server may echo the caller's
    /// token in an error message, and these texts reach logs and the landing page.
    pub fn redact(mut self, secret: &str) -> ApiError {
        if let ApiError::Connect(text)
        | ApiError::Unreachable(text)
        | ApiError::BadRequest(text)
        | ApiError::Unauthorized(text)
        | ApiError::InvalidToken(text)
        | ApiError::QuotaExceeded(text)
        | ApiError::ConcurrencyLimit(text)
        | ApiError::Maintenance(text)
        | ApiError::Forbidden(text)
        | ApiError::BadResponse(text) = &mut self
        {
            if !secret.is_empty() && text.contains(secret) {
                *text = text.replace(secret, "<redacted>");
            }
        }
        self
    }

    /// Errors that retrying soon cannot fix: the configuration or the token is wrong.
    pub fn is_configuration(&self) -> bool {
        matches!(self, ApiError::BadRequest(_) | ApiError::Unauthorized(_) | ApiError::InvalidToken(_))
    }

    /// Whether the request went out, and so cost one unit of the day's quota.
    pub fn was_sent(&self) -> bool {
        !matches!(self, ApiError::Unreachable(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_variant_has_its_reason_and_every_reason_a_variant() {
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
        assert_eq!(reasons, crate::vocab::all::<ErrorReason>().collect::<Vec<_>>());
        assert!(all.iter().all(ApiError::was_sent));
        let unreachable = ApiError::Unreachable(String::new());
        assert_eq!(unreachable.reason(), ErrorReason::connect);
        assert!(!unreachable.was_sent());
    }

    #[test]
    fn echoed_tokens_are_cut_out() {
        let e = ApiError::InvalidToken("token s3cr3t, s3cr3t expired".into()).redact("s3cr3t");
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        assert!(e.to_string().contains("<redacted>"));
        assert_eq!(ApiError::Timeout.redact("s3cr3t"), ApiError::Timeout);
    }
}
