//! Basic authentication against `basic_auth_users` bcrypt hashes, with a cache of
//! successful verifications so repeated scrapes do not pay bcrypt's cost each time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hyper::header::HeaderValue;
use sha2::{Digest, Sha256};

use super::config::{Secret, WebConfigError};

/// The outcome of checking a request's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthResult {
    /// No users are configured: every request is let in.
    NotRequired,
    Allowed {
        user: String,
    },
    Denied(AuthDenied),
}

impl AuthResult {
    pub fn is_allowed(&self) -> bool {
        !matches!(self, Self::Denied(_))
    }
}

/// Why a request was refused; a fixed set, usable as a log field or metric label.
/// Unknown user and wrong password are one variant so neither logs nor metrics tell
/// an attacker which user names exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthDenied {
    /// No `Authorization` header.
    Missing,
    /// Not `Basic <base64 of user:password>`.
    Malformed,
    InvalidCredentials,
}

impl AuthDenied {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::InvalidCredentials => "invalid_credentials",
        }
    }
}

/// Beyond this many remembered credentials (only correct ones are) the cache is emptied.
const CACHE_LIMIT: usize = 1024;

/// bcrypt's limit: longer passwords would be silently truncated, so they are refused.
const MAX_PASSWORD_BYTES: usize = 72;

/// The decoy hash's cost when no configured hash costs less: loading stays fast.
const MAX_DECOY_COST: u32 = 12;

#[derive(Default)]
pub(crate) struct BasicAuth {
    users: HashMap<String, String>,
    /// Verified for unknown users so that they take as long as known ones.
    decoy_hash: String,
    /// SHA-256 of (salt, user, password) for credentials that verified. Never the
    /// password itself; the per-load random salt keeps the digests useless elsewhere.
    cache: Mutex<HashSet<Vec<u8>>>,
    salt: [u8; 32],
    /// One bcrypt at a time, as in exporter-toolkit: a flood of wrong passwords queues
    /// up instead of taking every core.
    bcrypt_lock: Mutex<()>,
}

/// Credentials that need a bcrypt verification, with their cache key.
pub(crate) struct Unverified {
    user: String,
    password: String,
    key: Vec<u8>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl BasicAuth {
    pub(crate) fn new(
        config_path: &Path,
        configured: BTreeMap<String, Secret>,
    ) -> Result<Self, WebConfigError> {
        if configured.is_empty() {
            return Ok(Self::default());
        }
        let mut users = HashMap::with_capacity(configured.len());
        let mut decoy_cost = MAX_DECOY_COST;
        for (user, Secret(hash)) in configured {
            let key = format!("basic_auth_users.{user}");
            if user.contains(':') {
                return Err(WebConfigError::invalid(config_path, key, "a user name cannot contain ':'"));
            }
            let cost = check_hash(&hash).map_err(|reason| {
                WebConfigError::invalid(config_path, key, format!("not a valid bcrypt hash: {reason}"))
            })?;
            decoy_cost = decoy_cost.min(cost);
            users.insert(user, hash);
        }
        let invalid = |message: String| WebConfigError::invalid(config_path, "basic_auth_users", message);
        let mut salt = [0u8; 32];
        let random = rustls::crypto::ring::default_provider().secure_random;
        random.fill(&mut salt).map_err(|_| invalid("no system randomness".into()))?;
        let decoy_hash = bcrypt::hash(salt, decoy_cost).map_err(|e| invalid(e.to_string()))?;
        Ok(Self { users, decoy_hash, salt, ..Self::default() })
    }

    pub(crate) fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Answers without bcrypt when it can (no auth needed, bad header, cached
    /// credential); otherwise hands back the credentials for [`BasicAuth::verify`].
    pub(crate) fn check_cached(&self, header: Option<&HeaderValue>) -> Result<AuthResult, Unverified> {
        if self.users.is_empty() {
            return Ok(AuthResult::NotRequired);
        }
        let (user, password) = match parse_basic(header) {
            Ok(credentials) => credentials,
            Err(denied) => return Ok(AuthResult::Denied(denied)),
        };
        let key = self.cache_key(&user, &password);
        if lock(&self.cache).contains(&key) {
            return Ok(AuthResult::Allowed { user });
        }
        Err(Unverified { user, password, key })
    }

    /// The bcrypt verification (tens of milliseconds): blocking.
    pub(crate) fn verify(&self, Unverified { user, password, key }: Unverified) -> AuthResult {
        let _one_at_a_time = lock(&self.bcrypt_lock);
        // Another request may have verified the same credential while we waited.
        if lock(&self.cache).contains(&key) {
            return AuthResult::Allowed { user };
        }
        let (hash, known) = match self.users.get(&user) {
            Some(hash) => (hash.as_str(), true),
            None => (self.decoy_hash.as_str(), false),
        };
        let verified = password.len() <= MAX_PASSWORD_BYTES
            && bcrypt::verify(password.as_bytes(), hash).unwrap_or(false);
        if !(verified && known) {
            return AuthResult::Denied(AuthDenied::InvalidCredentials);
        }
        let mut cache = lock(&self.cache);
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key);
        AuthResult::Allowed { user }
    }

    fn cache_key(&self, user: &str, password: &str) -> Vec<u8> {
        let length = (user.len() as u64).to_be_bytes();
        let mut hasher = Sha256::new();
        for part in [&self.salt[..], &length, user.as_bytes(), password.as_bytes()] {
            hasher.update(part);
        }
        hasher.finalize().to_vec()
    }
}

/// Validates the shape of a bcrypt hash (`$2y$10$` + 53 characters) without echoing it,
/// returning its cost.
fn check_hash(hash: &str) -> Result<u32, String> {
    let parts: Vec<&str> = hash.split('$').collect();
    let ["", prefix, cost, rest] = parts.as_slice() else {
        return Err("expected the form $2y$<cost>$<53 characters>".to_string());
    };
    if !matches!(*prefix, "2a" | "2b" | "2x" | "2y") {
        return Err(format!("unknown bcrypt variant ${prefix}$ (expected $2a$, $2b$ or $2y$)"));
    }
    let cost: u32 = cost.parse().map_err(|_| format!("cost {cost:?} is not a number"))?;
    if !(4..=31).contains(&cost) {
        return Err(format!("cost {cost} is outside 4..=31"));
    }
    let valid_chars = rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/');
    if rest.len() != 53 || !valid_chars {
        return Err("the salt and hash must be 53 characters of [./A-Za-z0-9]".to_string());
    }
    Ok(cost)
}

/// Splits `Basic <base64(user:password)>` the way Go's `Request.BasicAuth` does: the
/// scheme is case-insensitive, the password is everything after the first ':'.
fn parse_basic(header: Option<&HeaderValue>) -> Result<(String, String), AuthDenied> {
    let header = header.ok_or(AuthDenied::Missing)?;
    let value = header.to_str().map_err(|_| AuthDenied::Malformed)?;
    let (scheme, encoded) = value.split_once(' ').ok_or(AuthDenied::Malformed)?;
    if !scheme.eq_ignore_ascii_case("Basic") {
        return Err(AuthDenied::Malformed);
    }
    // Standard alphabet with padding, as Go's `base64.StdEncoding`; stray bits after
    // the last byte are refused too (Go ignores them), so one credential has one form.
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| AuthDenied::Malformed)?;
    let text = String::from_utf8(decoded).map_err(|_| AuthDenied::Malformed)?;
    let (user, password) = text.split_once(':').ok_or(AuthDenied::Malformed)?;
    Ok((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_strict_standard_with_padding() {
        let parse = |encoded: &str| {
            let header = HeaderValue::from_str(&format!("Basic {encoded}")).unwrap();
            parse_basic(Some(&header))
        };
        let ok = |user: &str, password: &str| Ok((user.to_string(), password.to_string()));
        assert_eq!(parse("dXNlcjpwYXNz"), ok("user", "pass"));
        // "a:", "a:b", "a:bc": one, two and no padding characters.
        assert_eq!(parse("YTo="), ok("a", ""));
        assert_eq!(parse("YTpi"), ok("a", "b"));
        assert_eq!(parse("YTpiYw=="), ok("a", "bc"));
        // Not base64, unpadded, over-padded, stray bits in the last character ("YTo="
        // with its last bits set), data after padding, the URL-safe alphabet, and
        // whitespace inside.
        for bad in ["", "YTo", "YTo=====", "YTp=", "YTo=YTo=", "YTpi_w==", "!!!!", "dXNl cjpw"] {
            assert_eq!(parse(bad), Err(AuthDenied::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn basic_header_parsing() {
        let header = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(parse_basic(None), Err(AuthDenied::Missing));
        assert_eq!(
            parse_basic(Some(&header("basic dXNlcjpwYTpzcw=="))),
            Ok(("user".to_string(), "pa:ss".to_string()))
        );
        assert_eq!(parse_basic(Some(&header("Bearer dXNlcjpwYXNz"))), Err(AuthDenied::Malformed));
        assert_eq!(parse_basic(Some(&header("Basic bm9jb2xvbg=="))), Err(AuthDenied::Malformed));
    }

    #[test]
    fn hash_shape_errors_do_not_echo_the_hash() {
        let good = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";
        assert_eq!(check_hash(good), Ok(10));
        for bad in ["hunter2", "$2y$xx$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi", "$1$10$abc"] {
            let message = check_hash(bad).expect_err(bad);
            assert!(!message.contains("QOauh") && !message.contains("hunter2"), "{message}");
        }
    }

    #[test]
    fn cache_keys_depend_on_user_and_password_and_hide_them() {
        let auth = BasicAuth { salt: [7; 32], ..BasicAuth::default() };
        let a = auth.cache_key("alice", "secret");
        assert_eq!(a.len(), 32);
        assert_ne!(a, auth.cache_key("alice", "secreT"));
        assert_ne!(a, auth.cache_key("alic", "esecret"));
        assert!(!a.windows(6).any(|w| w == b"secret"));
    }
}
