//! The API's limits an engine keeps: request pacing (governor) and one request in flight
//! per token, shared by every operation configured with the same token.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use xxhash_rust::xxh3::xxh3_128;

use crate::vocab::Token;

/// A pacer allowing `per_second` requests a second (fractions allowed), no bursts.
pub fn pacer(per_second: f64) -> DefaultDirectRateLimiter {
    let quota = if per_second >= 1.0 {
        Quota::per_second(NonZeroU32::new(per_second.round() as u32).unwrap_or(NonZeroU32::MIN))
    } else {
        Quota::with_period(Duration::from_secs_f64(1.0 / per_second)).expect("period is positive")
    };
    RateLimiter::direct(quota.allow_burst(NonZeroU32::MIN))
}

/// One lock per distinct token, shared by every operation configured with it, so the
/// same token is never used by two requests at once.
#[derive(Debug, Default)]
pub struct TokenLocks {
    locks: HashMap<u128, Arc<tokio::sync::Mutex<()>>>,
}

impl TokenLocks {
    pub fn get(&mut self, token: &Token) -> Arc<tokio::sync::Mutex<()>> {
        self.locks.entry(xxh3_128(token.expose().as_bytes())).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_token_same_lock() {
        let mut locks = TokenLocks::default();
        let a = locks.get(&Token::new("x"));
        let b = locks.get(&Token::new("x"));
        let c = locks.get(&Token::new("y"));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
    }
}
