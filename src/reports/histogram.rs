//! A histogram as the store keeps it: bucket counts that are not cumulative (the last
//! one is `+Inf`), so merging two is adding them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub count: u64,
    pub sum: f64,
    pub buckets: Vec<u64>,
}

impl Histogram {
    pub fn new(bounds: &[f64]) -> Self {
        Histogram { count: 0, sum: 0.0, buckets: vec![0; bounds.len() + 1] }
    }

    /// The bucket of `value`: the first bound at or above it, or `+Inf`.
    pub fn bucket(bounds: &[f64], value: f64) -> usize {
        bounds.partition_point(|b| *b < value)
    }

    pub fn observe(&mut self, bounds: &[f64], value: f64) {
        self.buckets[Self::bucket(bounds, value)] += 1;
        self.count += 1;
        self.sum += value;
    }

    pub fn merge(&mut self, other: &Histogram) {
        self.count += other.count;
        self.sum += other.sum;
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
    }

    /// Whether the counts agree with each other and with `bounds` (a saved state may not).
    pub fn is_consistent(&self, bounds: &[f64]) -> bool {
        self.buckets.len() == bounds.len() + 1 && self.buckets.iter().sum::<u64>() == self.count
    }

    /// `(upper bound, count in that bucket alone)` pairs, `+Inf` last, as
    /// prometheus-client's encoders take them (they add them up).
    pub fn encoder_buckets(&self, bounds: &[f64]) -> Vec<(f64, u64)> {
        bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.buckets.iter().copied())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_upper_inclusive_and_merge_adds() {
        let b = [30.0, 60.0];
        let mut h = Histogram::new(&b);
        for v in [0.0, 30.0, 31.0, 60.0, 61.0, 1e9] {
            h.observe(&b, v);
        }
        assert_eq!(h.buckets, vec![2, 2, 2]);
        assert_eq!(h.count, 6);
        assert_eq!(h.sum, 0.0 + 30.0 + 31.0 + 60.0 + 61.0 + 1e9);
        assert_eq!(h.encoder_buckets(&b), vec![(30.0, 2), (60.0, 2), (f64::INFINITY, 2)]);
        let mut twice = h.clone();
        twice.merge(&h);
        assert_eq!(twice.buckets, vec![4, 4, 4]);
        assert!(twice.is_consistent(&b));
        assert!(!twice.is_consistent(&[30.0]));
    }
}
