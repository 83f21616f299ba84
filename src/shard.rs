//! `--shard=I/N`: which operations one of N replicas follows. An operation belongs to
//! the shard its name hashes to, the same on every machine and in every version.

use std::fmt;
use std::str::FromStr;

use xxhash_rust::xxh3::xxh3_64;

use crate::config::Config;

/// One of `count` replicas sharing a configuration file; `index` counts from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("expected I/N (shard I of N replicas, 0 <= I < N, e.g. 0/3), got {0:?}")]
    Syntax(String),
    #[error("the shard count must be at least 1, got {0:?}")]
    NoShards(String),
    #[error("the shard index {index} is not below the shard count {count} (I/N with 0 <= I < N; shards are numbered from 0)")]
    OutOfRange { index: u32, count: u32 },
}

impl Shard {
    /// One replica follows every operation: the default, `0/1`.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    pub fn new(index: u32, count: u32) -> Result<Shard, ShardError> {
        if count == 0 {
            return Err(ShardError::NoShards(format!("{index}/{count}")));
        }
        if index >= count {
            return Err(ShardError::OutOfRange { index, count });
        }
        Ok(Shard { index, count })
    }

    /// The shard (of `count`) that follows the operation `name`: Lamping and Veach's
    /// jump consistent hash, in integer arithmetic, of the name's xxh3-64 (seed 0). When
    /// the count grows by one, only the operations that move to the new shard move.
    pub fn of(name: &str, count: u32) -> u32 {
        let mut key = xxh3_64(name.as_bytes());
        let (mut bucket, mut next) = (0u64, 0u64);
        while next < u64::from(count) {
            bucket = next;
            key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
            next = ((bucket + 1) << 31) / ((key >> 33) + 1);
        }
        bucket as u32
    }

    pub fn follows(&self, name: &str) -> bool {
        Shard::of(name, self.count) == self.index
    }

    /// Every operation of `config` and the shard of this count that follows it, as
    /// people read it: `bogota: shard 0/3, cdmx: shard 2/3`.
    pub fn assignments(&self, config: &Config) -> String {
        let each: Vec<String> = config
            .operations
            .iter()
            .map(|op| format!("{}: shard {}/{}", op.name, Shard::of(&op.name, self.count), self.count))
            .collect();
        match each.is_empty() {
            true => "no operation is configured".to_owned(),
            false => each.join(", "),
        }
    }

    /// Keeps only this shard's operations, and says in the log which they are.
    pub fn select(&self, config: &mut Config) {
        let configured = config.operations.len();
        config.operations.retain(|op| self.follows(&op.name));
        let followed: Vec<&str> = config.operations.iter().map(|op| op.name.as_str()).collect();
        if followed.is_empty() {
            tracing::info!(
                shard = %self,
                configured,
                "this shard follows no operation; it serves the exporter's own metrics only"
            );
        } else if *self != Shard::ALL {
            tracing::info!(shard = %self, configured, operations = ?followed, "following this shard's operations");
        }
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(text: &str) -> Result<Shard, ShardError> {
        let syntax = || ShardError::Syntax(text.to_owned());
        let (index, count) = text.trim().split_once('/').ok_or_else(syntax)?;
        let number = |s: &str| {
            let s = s.trim();
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(syntax());
            }
            s.parse::<u32>().map_err(|_| syntax())
        };
        Shard::new(number(index)?, number(count)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 8] = ["bogota", "cdmx", "lima", "0042", "0107", "santiago", "demo", "main"];

    /// Pinned: a replica of another version or on another machine must pick the same
    /// operations, or two replicas would follow one operation (or none would). The
    /// figures come from an independent implementation (Python's `xxhash` and the
    /// paper's loop), not from this one.
    #[test]
    fn assignments_are_fixed() {
        let expected: [(&str, [u32; 4]); 8] = [
            ("bogota", [1, 1, 3, 3]),
            ("cdmx", [0, 0, 0, 4]),
            ("lima", [1, 1, 1, 1]),
            ("0042", [1, 2, 3, 3]),
            ("0107", [1, 1, 1, 1]),
            ("santiago", [0, 0, 0, 0]),
            ("demo", [0, 0, 0, 0]),
            ("main", [1, 1, 1, 1]),
        ];
        let got: Vec<(&str, [u32; 4])> =
            NAMES.iter().map(|&name| (name, [2, 3, 4, 5].map(|n| Shard::of(name, n)))).collect();
        assert_eq!(got, expected.to_vec());
        assert_eq!(xxh3_64(b"bogota"), 0x4f21_4d7c_54c1_89e7);
    }

    #[test]
    fn shards_are_disjoint_and_cover_every_operation() {
        let names: Vec<String> = (0..500).map(|i| format!("operation-{i}")).collect();
        for count in 1..=12 {
            let shards: Vec<Shard> = (0..count).map(|i| Shard::new(i, count).unwrap()).collect();
            for name in &names {
                let owners = shards.iter().filter(|s| s.follows(name)).count();
                assert_eq!(owners, 1, "{name} in {count} shards has {owners} owners");
            }
            // Reasonably even: no shard holds more than twice its share.
            for shard in &shards {
                let held = names.iter().filter(|n| shard.follows(n)).count();
                assert!(held <= 2 * names.len() / count as usize, "{shard}: {held}");
            }
        }
    }

    #[test]
    fn a_new_shard_takes_operations_only_from_the_others() {
        for name in (0..500).map(|i| format!("operation-{i}")) {
            for count in 1..12 {
                let (before, after) = (Shard::of(&name, count), Shard::of(&name, count + 1));
                assert!(after == before || after == count, "{name}: {before} -> {after}");
            }
        }
    }

    #[test]
    fn parsing_accepts_i_of_n_and_names_the_mistake() {
        assert_eq!("0/1".parse(), Ok(Shard::ALL));
        assert_eq!(" 2/3 ".parse::<Shard>().unwrap().to_string(), "2/3");
        let err = |s: &str| s.parse::<Shard>().unwrap_err().to_string();
        assert_eq!(
            err("3/3"),
            "the shard index 3 is not below the shard count 3 (I/N with 0 <= I < N; shards are numbered from 0)"
        );
        assert_eq!(err("0/0"), "the shard count must be at least 1, got \"0/0\"");
        for bad in ["", "1", "a/3", "1/b", "-1/3", "1/+3", "1/3/5", "99999999999/3"] {
            assert!(err(bad).starts_with("expected I/N"), "{bad:?}: {}", err(bad));
        }
    }
}
