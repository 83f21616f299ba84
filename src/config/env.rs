//! The single-operation environment (`WOLKVOX_SERVER`, `WOLKVOX_TOKEN`...), read when no
//! file names an operation; an error names the variable, and its value unless a token.

use std::path::PathBuf;

use super::operation::{Address, Given, RawOperation, TokenSource};
use super::reports::RawReport;
use super::{invalid, ConfigError, Token};

pub const SERVER: &str = "WOLKVOX_SERVER";
pub const BASE_URL: &str = "WOLKVOX_BASE_URL";
pub const TOKEN: &str = "WOLKVOX_TOKEN";
pub const TOKEN_FILE: &str = "WOLKVOX_TOKEN_FILE";
pub const TIMEZONE: &str = "WOLKVOX_TIMEZONE";
pub const OPERATION: &str = "WOLKVOX_OPERATION";
pub const LICENSES: &str = "WOLKVOX_LICENSES";
pub const REPORTS: &str = "WOLKVOX_REPORTS";

/// The operation the environment describes, or `None` when neither `WOLKVOX_SERVER`
/// nor `WOLKVOX_BASE_URL` is set.
pub(super) fn operation(get: &impl Fn(&str) -> Option<String>) -> Result<Option<RawOperation>, ConfigError> {
    let address = match (get(SERVER), get(BASE_URL)) {
        (None, None) => return Ok(None),
        (Some(server), None) => Given::new(SERVER, Address::Server(server)),
        (None, Some(url)) => Given::new(BASE_URL, Address::BaseUrl(url)),
        (Some(_), Some(_)) => {
            return Err(invalid(BASE_URL, format!("set either {SERVER} or {BASE_URL}, not both")))
        }
    };
    let token = match (get(TOKEN), get(TOKEN_FILE)) {
        (Some(token), None) => Given::new(TOKEN, TokenSource::Inline(Token::new(token))),
        (None, Some(path)) => Given::new(TOKEN_FILE, TokenSource::File(PathBuf::from(path))),
        (None, None) => {
            return Err(invalid(TOKEN, format!("missing: set {TOKEN} or {TOKEN_FILE} (preferred)")))
        }
        (Some(_), Some(_)) => {
            return Err(invalid(TOKEN_FILE, format!("set either {TOKEN} or {TOKEN_FILE}, not both")))
        }
    };
    let licenses = match get(LICENSES) {
        None => None,
        Some(text) => {
            let value = text.trim().parse::<u32>().map_err(|_| {
                invalid(LICENSES, format!("must be a whole number between 1 and 1000000, got {text:?}"))
            })?;
            Some(Given::new(LICENSES, value))
        }
    };
    Ok(Some(RawOperation {
        name: get(OPERATION).map(|v| Given::new(OPERATION, v)),
        address,
        token,
        timezone: get(TIMEZONE).map(|v| Given::new(TIMEZONE, v)),
        licenses,
        reports: get(REPORTS).map(|list| {
            let named = list
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(|name| {
                    let report = RawReport { name: name.to_owned(), interval: None };
                    Given::new(REPORTS, report)
                })
                .collect();
            Given::new(REPORTS, named)
        }),
    }))
}

#[cfg(test)]
mod tests {
    use super::super::{Config, FileConfig, Overrides};
    use super::*;

    const SECRET: &str = "s3cret-token";

    /// Builds from an empty file and the given environment.
    fn build(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let env = move |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        Config::build(FileConfig::default(), &Overrides::default(), env)
    }

    fn error(vars: &[(&str, &str)]) -> String {
        let message = build(vars).expect_err("should be refused").to_string();
        assert!(!message.contains(SECRET), "{message}");
        message
    }

    #[test]
    fn environment_builds_one_operation() {
        let c = build(&[
            (BASE_URL, "http://127.0.0.1:9/"),
            (TOKEN, SECRET),
            (OPERATION, "local"),
            (TIMEZONE, "America/Mexico_City"),
            (LICENSES, "7"),
        ])
        .unwrap();
        let op = &c.operations[0];
        assert_eq!(op.name, "local");
        assert_eq!(op.base_url, "http://127.0.0.1:9");
        assert_eq!(op.licenses, 7);
        assert_eq!(op.timezone, chrono_tz::America::Mexico_City);
        assert_eq!(op.token.expose(), SECRET);

        let c = build(&[(SERVER, "0042"), (TOKEN, SECRET)]).unwrap();
        assert_eq!(c.operations[0].name, "0042");
        assert_eq!(c.operations[0].base_url, "https://wv0042.wolkvox.com");
    }

    #[test]
    fn token_file_is_read_and_its_errors_name_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tok");
        std::fs::write(&path, format!("{SECRET}\n")).unwrap();
        let path = path.to_str().unwrap();
        let c = build(&[(SERVER, "0042"), (TOKEN_FILE, path)]).unwrap();
        assert_eq!(c.operations[0].token.expose(), SECRET);

        let missing = dir.path().join("none");
        let err = error(&[(SERVER, "0042"), (TOKEN_FILE, missing.to_str().unwrap())]);
        assert!(err.starts_with("WOLKVOX_TOKEN_FILE: cannot read "), "{err}");
        std::fs::write(dir.path().join("empty"), "\n").unwrap();
        let empty = dir.path().join("empty");
        let err = error(&[(SERVER, "0042"), (TOKEN_FILE, empty.to_str().unwrap())]);
        assert_eq!(err, "WOLKVOX_TOKEN_FILE: the token is empty");
    }

    #[test]
    fn each_variable_names_itself_and_its_value() {
        let base = [(SERVER, "0042"), (TOKEN, SECRET)];
        let with = |extra: (&'static str, &'static str)| {
            let mut vars = base.to_vec();
            vars.retain(|(k, _)| *k != extra.0);
            vars.push(extra);
            error(&vars)
        };
        let cases = [
            (
                (LICENSES, "abc"),
                "WOLKVOX_LICENSES: must be a whole number between 1 and 1000000, got \"abc\"",
            ),
            ((LICENSES, "0"), "WOLKVOX_LICENSES: must be a whole number between 1 and 1000000, got 0"),
            (
                (SERVER, "42"),
                "WOLKVOX_SERVER: must be the four-digit server code (e.g. \"0042\"), got \"42\"",
            ),
            (
                (TIMEZONE, "Mars/Base"),
                "WOLKVOX_TIMEZONE: unknown IANA time zone \"Mars/Base\" (e.g. America/Bogota)",
            ),
            ((OPERATION, "a b"), "WOLKVOX_OPERATION: must be 1-64 characters of [A-Za-z0-9_.-], got \"a b\""),
            ((TOKEN, "  "), "WOLKVOX_TOKEN: the token is empty"),
        ];
        for (var, expected) in cases {
            assert_eq!(with(var), expected);
        }
        let err = error(&[(BASE_URL, "ftp://proxy"), (TOKEN, SECRET)]);
        assert_eq!(err, "WOLKVOX_BASE_URL: must be an http(s) URL with a host, got \"ftp://proxy\"");
        let err = error(&[(BASE_URL, "not a url"), (TOKEN, SECRET)]);
        assert!(err.starts_with("WOLKVOX_BASE_URL: invalid URL \"not a url\""), "{err}");
    }

    #[test]
    fn missing_or_doubled_variables_are_named() {
        assert_eq!(
            error(&[(SERVER, "0042")]),
            "WOLKVOX_TOKEN: missing: set WOLKVOX_TOKEN or WOLKVOX_TOKEN_FILE (preferred)"
        );
        assert_eq!(
            error(&[(SERVER, "0042"), (TOKEN, SECRET), (TOKEN_FILE, "/x")]),
            "WOLKVOX_TOKEN_FILE: set either WOLKVOX_TOKEN or WOLKVOX_TOKEN_FILE, not both"
        );
        assert_eq!(
            error(&[(SERVER, "0042"), (BASE_URL, "http://x"), (TOKEN, SECRET)]),
            "WOLKVOX_BASE_URL: set either WOLKVOX_SERVER or WOLKVOX_BASE_URL, not both"
        );
        // Neither address: no operation at all, and the error says how to give one.
        assert!(error(&[(TOKEN, SECRET)]).starts_with("operations: no operation configured"));
    }

    #[test]
    fn a_token_with_control_characters_is_refused_without_echo() {
        let err = error(&[(SERVER, "0042"), (TOKEN, "s3cret-token\u{7}")]);
        assert_eq!(err, "WOLKVOX_TOKEN: the token contains control characters");
    }

    #[test]
    fn the_environment_is_ignored_when_the_file_names_operations() {
        let file = FileConfig::parse("operations:\n  - server: \"0107\"\n    token: t\n").unwrap();
        let env = |k: &str| (k == LICENSES).then(|| "abc".to_owned());
        let c = Config::build(file, &Overrides::default(), env).unwrap();
        assert_eq!(c.operations[0].name, "0107");
    }
}
