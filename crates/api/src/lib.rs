//! The Wolkvox report API's contract, stated once: its paths, the token header, the date
//! formats, the vendor's limits and the texts of its answers. The exporter's client and
//! the simulated Wolkvox both read it from here.
#![forbid(unsafe_code)]
#![no_std]

/// The report endpoint, appended to an operation's base URL (`?api=agent_13&...`).
pub const REPORT_PATH: &str = "/api/v2/reports_manager.php";
/// The token information endpoint, asked with `?api=` [`TOKEN_INFO`].
pub const INFO_PATH: &str = "/api/v2/information.php";
/// The `api=` of the token information endpoint.
pub const TOKEN_INFO: &str = "token_info";
/// The request header that carries the operation's token.
pub const TOKEN_HEADER: &str = "wolkvox-token";

/// The format of `date_ini` and `date_end` (`YYYYmmddHHiiss`, operation-local).
pub const PARAM_FORMAT: &str = "%Y%m%d%H%M%S";
/// The format of a record's `date` (operation-local).
pub const DATE_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// Records in one answer at most; the API cuts the rest silently, so an answer this
/// long may be incomplete.
pub const RECORD_CAP: usize = 60_000;
/// Longest `date_end - date_ini` the API accepts, in days.
pub const MAX_RANGE_DAYS: i64 = 31;

/// The texts of the vendor's "API response codes" page, as the API sends them in
/// `error` and `msg` (a client matches them case-insensitively).
pub mod text {
    /// 404: the window has no records (also when the report is not enabled).
    pub const NO_RECORDS: &str = "Validate dates entered";
    /// 400: the `api=` asked for does not exist.
    pub const UNKNOWN_API: &str = "THE API YOU WANT TO CONSULT DOES NOT EXIST";
    /// 400: a parameter is missing or malformed.
    pub const BAD_REQUEST: &str = "SOME PARAMETERS ARE REQUIRED";
    /// 401: no token header.
    pub const TOKEN_MISSING: &str = "PLEASE ENTER THE WOLKVOX-TOKEN";
    /// 403: the operation's daily requests are spent.
    pub const QUOTA_EXCEEDED: &str = "TOKEN LIMIT EXCEEDED";
    /// 403: another request on the token is in flight.
    pub const SIMULTANEOUS: &str = "EXCEEDS THE LIMIT OF SIMULTANEOUS REQUESTS PER TOKEN (2)";
    /// 403: the token is invalid, expired or malformed.
    pub const INVALID_TOKEN: &str = "PLEASE VALIDATE TOKEN";
    /// 403: the server is under maintenance (backups); the wording is the simulator's,
    /// the real texts vary.
    pub const MAINTENANCE: &str = "Server under maintenance (backups), try again later";
}
