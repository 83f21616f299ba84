//! The exporter's own store: per operation, the data counters and histograms, the
//! remembered record identities, the cursor, and the health figures. Metrics are
//! rendered from it at scrape time; the state file is a snapshot of it.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::client::ApiError;

/// The `interaction` label values, in index order.
pub const INTERACTIONS: [&str; 3] = ["transfer", "conference", "other"];
/// The `reason` values of `wolkvox_records_invalid_total`, in index order.
pub const INVALID_REASONS: [&str; 4] = ["bad_time", "bad_date", "missing_field", "outside_window"];
/// The agent id under which agents past `max_agents` are counted.
pub const OVERFLOW_AGENT: &str = "_overflow";
/// Buckets of `wolkvox_api_request_duration_seconds`.
pub const API_LATENCY_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// A histogram with non-cumulative bucket counts (the last one is `+Inf`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub count: u64,
    pub sum: f64,
    pub buckets: Vec<u64>,
}

impl Histogram {
    pub fn new(bounds: &[f64]) -> Self {
        Histogram {
            count: 0,
            sum: 0.0,
            buckets: vec![0; bounds.len() + 1],
        }
    }

    pub fn observe(&mut self, bounds: &[f64], value: f64) {
        self.observe_in(bounds.partition_point(|b| *b < value), value);
    }

    /// Observes `value` into a bucket already found (the first bound `>= value`).
    pub fn observe_in(&mut self, bucket: usize, value: f64) {
        self.buckets[bucket] += 1;
        self.count += 1;
        self.sum += value;
    }
}

/// One agent's series; `None` until the agent has a record of that interaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    pub name: Box<str>,
    /// Record date (local, unix-style seconds) of the name, so the newest name wins.
    pub name_date: i64,
    pub series: [Option<Histogram>; 3],
}

impl Agent {
    pub fn new(name: &str, name_date: i64) -> Self {
        Agent {
            name: name.into(),
            name_date,
            series: [None, None, None],
        }
    }
}

/// A record's identity, 128 bits of xxh3 as two words (high, low): as a `u128` it would
/// align to 16 and make every entry of the identity table 32 bytes instead of 24, and
/// that table is read once per record, mostly from outside the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity(pub u64, pub u64);

impl From<u128> for Identity {
    fn from(v: u128) -> Self {
        Identity((v >> 64) as u64, v as u64)
    }
}

impl std::hash::Hash for Identity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u128((u128::from(self.0) << 64) | u128::from(self.1));
    }
}

/// What is counted from records, and persisted.
#[derive(Debug, Clone)]
pub struct Data {
    pub bounds: Arc<[f64]>,
    pub max_agents: usize,
    pub agents: HashMap<Box<str>, Agent, FastHash>,
    pub overflow: Agent,
    pub overflow_records: u64,
    /// Identities of records already counted → their local date (seconds), for pruning.
    pub seen: HashMap<Identity, i64, FastHash>,
}

impl Data {
    pub fn new(bounds: &[f64], max_agents: usize) -> Self {
        Data {
            bounds: bounds.into(),
            max_agents,
            agents: HashMap::default(),
            overflow: Agent::new("(agents past max_agents)", i64::MIN),
            overflow_records: 0,
            seen: HashMap::default(),
        }
    }

    /// Agents in label order.
    pub fn sorted_agents(&self) -> Vec<(&str, &Agent)> {
        let mut agents: Vec<_> = self.agents.iter().map(|(k, v)| (k.as_ref(), v)).collect();
        agents.sort_unstable_by(|a, b| a.0.cmp(b.0));
        agents
    }

    /// Forgets identities dated before `keep_from` (local seconds).
    pub fn prune(&mut self, keep_from: i64) {
        self.seen.retain(|_, date| *date >= keep_from);
        // After a catch-up the map has room for every record of it; give that back.
        if self.seen.capacity() > 4 * self.seen.len() + 4096 {
            self.seen.shrink_to(2 * self.seen.len());
        }
    }
}

/// A keyed multiply-fold hash for the store's maps, several times cheaper than SipHash
/// on agent ids and record identities (every record looks both up). The key is random
/// per process, so crafted ids cannot aim at one bucket.
#[derive(Debug, Clone, Copy)]
pub struct FastHash {
    key: [u64; 2],
}

impl Default for FastHash {
    fn default() -> Self {
        let s = std::collections::hash_map::RandomState::new();
        FastHash {
            key: [s.hash_one(0x5eed_u64), s.hash_one(0xfeed_u64) | 1],
        }
    }
}

impl BuildHasher for FastHash {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher {
            state: self.key[0],
            key: self.key[1],
        }
    }
}

pub struct FastHasher {
    state: u64,
    key: u64,
}

fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a).wrapping_mul(u128::from(b));
    (p as u64) ^ ((p >> 64) as u64)
}

/// The last `rest.len() < 8` bytes of `bytes` as a little-endian number padded with
/// zeros; without copying them to a buffer, which costs a call and a stalled load on
/// every short agent id.
fn tail(bytes: &[u8], rest: &[u8]) -> u64 {
    match (bytes.len(), rest.len()) {
        (_, 0) => 0,
        (len, r) if len >= 8 => {
            let last: [u8; 8] = bytes[len - 8..].try_into().expect("eight bytes");
            u64::from_le_bytes(last) >> (64 - 8 * r)
        }
        _ => rest
            .iter()
            .rev()
            .fold(0, |acc, &b| (acc << 8) | u64::from(b)),
    }
}

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        fold(self.state, self.key)
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let v = u64::from_le_bytes(c.try_into().expect("eight bytes"));
            self.state = fold(self.state ^ v, self.key);
        }
        let rest = chunks.remainder();
        self.state = fold(self.state ^ tail(bytes, rest), self.key ^ rest.len() as u64);
    }

    fn write_u8(&mut self, v: u8) {
        self.state = fold(self.state ^ u64::from(v), self.key);
    }

    fn write_u64(&mut self, v: u64) {
        self.state = fold(self.state ^ v, self.key);
    }

    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }

    fn write_u128(&mut self, v: u128) {
        self.state = fold(self.state ^ v as u64, self.key ^ (v >> 64) as u64);
    }
}

/// Exporter self-metrics of one operation.
#[derive(Debug, Clone)]
pub struct Health {
    pub up: bool,
    pub last_success: Option<DateTime<Utc>>,
    pub requests: u64,
    pub errors: [u64; ApiError::REASONS.len()],
    pub empty_responses: u64,
    pub latency: Histogram,
    pub received: u64,
    pub duplicate: u64,
    pub invalid: [u64; INVALID_REASONS.len()],
    pub splits: u64,
    pub last_error: Option<String>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            up: false,
            last_success: None,
            requests: 0,
            errors: [0; ApiError::REASONS.len()],
            empty_responses: 0,
            latency: Histogram::new(&API_LATENCY_BUCKETS),
            received: 0,
            duplicate: 0,
            invalid: [0; INVALID_REASONS.len()],
            splits: 0,
            last_error: None,
        }
    }
}

impl Health {
    pub fn count_error(&mut self, e: &ApiError) {
        let i = ApiError::REASONS
            .iter()
            .position(|r| *r == e.reason())
            .expect("reason() returns a member of REASONS");
        self.errors[i] += 1;
        self.last_error = Some(e.to_string());
    }
}

/// Requests spent in the operation's current local day; persisted so a restart does
/// not forget what the day already cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyUse {
    pub day: NaiveDate,
    pub used: u64,
    /// Set when the API answered "token limit exceeded": nothing more today.
    pub exhausted: bool,
}

/// Everything about one operation.
#[derive(Debug)]
pub struct Operation {
    pub name: String,
    pub daily_limit: u64,
    /// Every record dated before this instant has been fetched at least once.
    pub cursor: Option<DateTime<Utc>>,
    pub daily: DailyUse,
    pub data: Data,
    pub health: Health,
}

/// All operations, with a generation number that changes whenever anything does, so
/// the rendered exposition can be cached until then.
#[derive(Debug)]
pub struct Store {
    ops: Vec<Mutex<Operation>>,
    generation: AtomicU64,
    pub save_failures: AtomicU64,
}

impl Store {
    pub fn new(ops: Vec<Operation>) -> Self {
        Store {
            ops: ops.into_iter().map(Mutex::new).collect(),
            generation: AtomicU64::new(1),
            save_failures: AtomicU64::new(0),
        }
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Locks one operation; the change bumps the generation when the guard drops.
    pub fn lock(&self, i: usize) -> OpGuard<'_> {
        OpGuard {
            guard: self.ops[i].lock().unwrap_or_else(|p| p.into_inner()),
            generation: &self.generation,
        }
    }

    /// Reads one operation without marking a change.
    pub fn read(&self, i: usize) -> MutexGuard<'_, Operation> {
        self.ops[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn touch(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

pub struct OpGuard<'a> {
    guard: MutexGuard<'a, Operation>,
    generation: &'a AtomicU64,
}

impl std::ops::Deref for OpGuard<'_> {
    type Target = Operation;
    fn deref(&self) -> &Operation {
        &self.guard
    }
}

impl std::ops::DerefMut for OpGuard<'_> {
    fn deref_mut(&mut self) -> &mut Operation {
        &mut self.guard
    }
}

impl Drop for OpGuard<'_> {
    fn drop(&mut self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_is_the_remainder_padded_with_zeros() {
        let text: Vec<u8> = (1..=40).collect();
        for len in 0..=text.len() {
            let bytes = &text[..len];
            let rest = bytes.chunks_exact(8).remainder();
            let mut padded = [0u8; 8];
            padded[..rest.len()].copy_from_slice(rest);
            assert_eq!(
                tail(bytes, rest),
                u64::from_le_bytes(padded),
                "length {len}"
            );
        }
    }

    #[test]
    fn histogram_buckets_are_upper_inclusive() {
        let b = [30.0, 60.0];
        let mut h = Histogram::new(&b);
        for v in [0.0, 30.0, 31.0, 60.0, 61.0, 1e9] {
            h.observe(&b, v);
        }
        assert_eq!(h.buckets, vec![2, 2, 2]);
        assert_eq!(h.count, 6);
        assert_eq!(h.sum, 0.0 + 30.0 + 31.0 + 60.0 + 61.0 + 1e9);
    }
}
