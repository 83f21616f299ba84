//! The `token_info` answer: the day's limit and use as the API counts them. Only the
//! four documented fields are read, as numbers; nothing else of the answer is kept.

use serde::Deserialize;

use crate::client::{interpret, Answer, ApiError, Item, Text};

/// The token's figures for the operation-local day; `None` when missing or not a number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenInfo {
    /// `token_limit`: requests a day.
    pub limit: Option<u64>,
    /// `token_use_today`: requests of this token today.
    pub token_today: Option<u64>,
    /// `all_token_today`: requests of all the operation's tokens today.
    pub all_today: Option<u64>,
    /// `available_consumption_options`: what is left today.
    pub available: Option<u64>,
}

#[derive(Deserialize)]
struct Row<'a> {
    #[serde(borrow, default)]
    token_limit: Text<'a>,
    #[serde(borrow, default)]
    token_use_today: Text<'a>,
    #[serde(borrow, default)]
    all_token_today: Text<'a>,
    #[serde(borrow, default)]
    available_consumption_options: Text<'a>,
}

/// Reads a `token_info` answer, as leniently as a report's: `code` as number or string,
/// `data` as one object or a list (the first object counts), numbers as text or not.
/// `None`: it answered 404 (with any body), as where the endpoint is not available.
pub fn read(status: u16, body: &[u8]) -> Result<Option<TokenInfo>, ApiError> {
    if status == 404 {
        return Ok(None);
    }
    let rows = match interpret::<Row>(status, body)? {
        Answer::Records(rows) => rows,
        Answer::Empty => return Ok(None),
    };
    let row = rows
        .into_iter()
        .find_map(|item| match item {
            Item::Record(row) => Some(row),
            Item::NotAnObject => None,
        })
        .ok_or_else(|| ApiError::BadResponse("token_info answered no figures".to_owned()))?;
    Ok(Some(TokenInfo {
        limit: number(&row.token_limit),
        token_today: number(&row.token_use_today),
        all_today: number(&row.all_token_today),
        available: number(&row.available_consumption_options),
    }))
}

/// A count written as digits (`"1000"`, `" 1000 "`, `1000`, `"1,000"`, `"1000.0"`).
fn number(text: &Text) -> Option<u64> {
    let digits: String = text.get()?.trim().chars().filter(|c| *c != ',').collect();
    digits.parse::<u64>().ok().or_else(|| {
        digits
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0 && *f < 1e18)
            .map(|f| f as u64)
    })
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
