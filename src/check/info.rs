//! The `token_info` answer: the day's limit and use as the API counts them. Only the
//! four documented fields are read, as numbers; nothing else of the answer is kept.

use serde::{Deserialize, Deserializer};

use crate::client::{interpret, Answer, ApiError, Item, Text};

/// The token's figures for the operation-local day (requests a day; today's of this
/// token, of all the operation's tokens; what is left); `None` when missing or not a number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct TokenInfo {
    #[serde(rename = "token_limit", deserialize_with = "number")]
    pub limit: Option<u64>,
    #[serde(rename = "token_use_today", deserialize_with = "number")]
    pub token_today: Option<u64>,
    #[serde(rename = "all_token_today", deserialize_with = "number")]
    pub all_today: Option<u64>,
    #[serde(rename = "available_consumption_options", deserialize_with = "number")]
    pub available: Option<u64>,
}

/// Reads a `token_info` answer, as leniently as a report's: `code` as number or string,
/// `data` as one object or a list (the first object counts), numbers as text or not.
/// `None`: it answered 404 (with any body), as where the endpoint is not available.
pub fn read(status: u16, body: &[u8]) -> Result<Option<TokenInfo>, ApiError> {
    if status == 404 {
        return Ok(None);
    }
    let Answer::Records(rows) = interpret::<TokenInfo>(status, body)? else { return Ok(None) };
    let row = rows.into_iter().find_map(|item| if let Item::Record(row) = item { Some(row) } else { None });
    row.map(Some).ok_or_else(|| ApiError::BadResponse("token_info answered no figures".to_owned()))
}

/// A count written as digits (`"1000"`, `" 1000 "`, `1000`, `"1,000"`, `"1000.0"`).
fn number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let Some(text) = Text::deserialize(d)?.0 else { return Ok(None) };
    let digits: String = text.trim().chars().filter(|c| *c != ',').collect();
    Ok(digits.parse::<u64>().ok().or_else(|| {
        digits
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0 && *f < 1e18)
            .map(|f| f as u64)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ErrorReason;

    #[test]
    fn reads_the_vendor_shape_and_its_variants() {
        let list = br#"{"code":200,"error":null,"msg":"ok","data":[{"token_limit":"5000","token_use_today":"120","all_token_today":"132","available_consumption_options":"4868","token":"should-not-matter"}]}"#;
        let expected = TokenInfo {
            limit: Some(5000),
            token_today: Some(120),
            all_today: Some(132),
            available: Some(4868),
        };
        assert_eq!(read(200, list).unwrap(), Some(expected.clone()));
        let object = br#"{"code":"200","data":{"token_limit":5000,"token_use_today":" 120 ","all_token_today":"132","available_consumption_options":"4,868"}}"#;
        assert_eq!(read(200, object).unwrap(), Some(expected));
        let partial = br#"{"code":200,"data":{"token_limit":"1000.0","token_use_today":"many"}}"#;
        assert_eq!(
            read(200, partial).unwrap(),
            Some(TokenInfo { limit: Some(1000), ..TokenInfo::default() })
        );
    }

    #[test]
    fn errors_are_the_api_errors() {
        let refused =
            br#"{"code":403,"error":"PLEASE VALIDATE TOKEN","msg":"PLEASE VALIDATE TOKEN","data":[]}"#;
        assert_eq!(read(403, refused).unwrap_err().reason(), ErrorReason::invalid_token);
        for body in [&br#"{"code":200,"data":[]}"#[..], b"{\"code\":200,\"data\":[1]}"] {
            assert_eq!(read(200, body).unwrap_err().reason(), ErrorReason::bad_response);
        }
        let not_available = br#"{"code":404,"error":"Validate dates entered","data":[]}"#;
        assert_eq!(read(404, not_available), Ok(None));
        assert_eq!(read(404, b"<html>Not Found</html>"), Ok(None));
        assert_eq!(read(200, b"<html>").unwrap_err().reason(), ErrorReason::bad_response);
    }
}
