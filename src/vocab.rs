//! The words every layer shares and none owns: report names, why a request failed, why a
//! row was rejected, and the token. Imports nothing from the crate.

use std::fmt;

use enum_map::Enum;
use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};

/// A report's name: its `api=` parameter and its `report` label. The names that exist are
/// the registry's (`reports::KINDS`); each report module holds its own as a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ReportName(&'static str);

impl ReportName {
    pub const fn new(name: &'static str) -> Self {
        ReportName(name)
    }

    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for ReportName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl EncodeLabelValue for ReportName {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> fmt::Result {
        fmt::Write::write_str(encoder, self.0)
    }
}

/// Why a row was rejected: the `reason` label of `wolkvox_records_invalid_total`.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Enum, EncodeLabelValue)]
pub enum InvalidReason {
    bad_time,
    bad_date,
    missing_field,
    outside_window,
}

/// Why a request failed: the `reason` label of `wolkvox_api_request_errors_total`.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Enum, EncodeLabelValue, strum::IntoStaticStr)]
pub enum ErrorReason {
    timeout,
    connect,
    http_5xx,
    bad_request,
    unauthorized,
    invalid_token,
    quota_exceeded,
    concurrency_limit,
    maintenance,
    forbidden,
    bad_response,
    too_large,
}

/// Every value of a reason enum, in label order.
pub fn all<T: Enum>() -> impl Iterator<Item = T> {
    (0..T::LENGTH).map(T::from_usize)
}

impl ErrorReason {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A Wolkvox token. It never prints itself.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Token(String);

impl Token {
    pub fn new(secret: impl Into<String>) -> Self {
        Token(secret.into())
    }

    /// The secret itself, for the request header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_print_as_their_labels_and_tokens_never_print() {
        for r in all::<ErrorReason>() {
            assert_eq!(r.as_str(), format!("{r:?}"));
        }
        let t = Token::new("SUPERSECRET");
        assert!(!format!("{t:?} {t}").contains("SUPERSECRET"));
        assert_eq!(t.expose(), "SUPERSECRET");
    }
}
