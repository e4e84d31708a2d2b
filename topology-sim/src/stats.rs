//! Distributions: [`Counts`] for integer samples (exact histogram, any number of samples in
//! little memory) and [`Samples`] for real-valued ones; both summarize to a [`Dist`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Summary of a distribution. All zero when there are no samples.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Dist {
    /// Number of samples.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Smallest.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// Rounds to 4 decimals so reports stay readable (and identical across runs).
pub fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// An exact histogram of non-negative integers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    counts: BTreeMap<u64, u64>,
    n: u64,
    sum: u128,
}

impl Counts {
    /// Adds one sample.
    pub fn add(&mut self, v: u64) {
        self.add_n(v, 1);
    }

    /// Adds `n` samples of value `v`.
    pub fn add_n(&mut self, v: u64, n: u64) {
        if n == 0 {
            return;
        }
        *self.counts.entry(v).or_insert(0) += n;
        self.n += n;
        self.sum += u128::from(v) * u128::from(n);
    }

    /// Number of samples.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// (value, count) in increasing value order.
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.counts.iter().map(|(v, n)| (*v, *n))
    }

    /// The value at quantile `q` in 0..=1 (nearest rank).
    pub fn quantile(&self, q: f64) -> u64 {
        if self.n == 0 {
            return 0;
        }
        let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (v, c) in &self.counts {
            seen += c;
            if seen >= rank {
                return *v;
            }
        }
        *self.counts.keys().next_back().expect("non-empty")
    }

    /// The summary.
    pub fn dist(&self) -> Dist {
        if self.n == 0 {
            return Dist::default();
        }
        Dist {
            count: self.n,
            mean: round(self.sum as f64 / self.n as f64),
            min: *self.counts.keys().next().expect("non-empty") as f64,
            p50: self.quantile(0.5) as f64,
            p90: self.quantile(0.9) as f64,
            p99: self.quantile(0.99) as f64,
            max: *self.counts.keys().next_back().expect("non-empty") as f64,
        }
    }
}

/// Real-valued samples, kept whole (sorted when summarized).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Samples {
    v: Vec<f64>,
}

impl Samples {
    /// Adds one sample.
    pub fn add(&mut self, x: f64) {
        self.v.push(x);
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.v.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.v.is_empty()
    }

    /// The samples sorted ascending.
    pub fn sorted(&self) -> Vec<f64> {
        let mut v = self.v.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    /// The summary.
    pub fn dist(&self) -> Dist {
        let v = self.sorted();
        dist_of_sorted(&v)
    }
}

/// Nearest-rank quantile of sorted values.
pub fn quantile_sorted(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// The summary of sorted values.
pub fn dist_of_sorted(v: &[f64]) -> Dist {
    if v.is_empty() {
        return Dist::default();
    }
    let sum: f64 = v.iter().sum();
    Dist {
        count: v.len() as u64,
        mean: round(sum / v.len() as f64),
        min: round(v[0]),
        p50: round(quantile_sorted(v, 0.5)),
        p90: round(quantile_sorted(v, 0.9)),
        p99: round(quantile_sorted(v, 0.99)),
        max: round(v[v.len() - 1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_quantiles() {
        let mut c = Counts::default();
        for v in 1..=100 {
            c.add(v);
        }
        let d = c.dist();
        assert_eq!((d.count, d.min, d.max), (100, 1.0, 100.0));
        assert_eq!((d.p50, d.p90, d.p99), (50.0, 90.0, 99.0));
        assert!((d.mean - 50.5).abs() < 1e-9);
        c.add_n(7, 0);
        assert_eq!(c.len(), 100);
        assert_eq!(Counts::default().dist(), Dist::default());
    }

    #[test]
    fn samples_quantiles() {
        let mut s = Samples::default();
        for x in [3.0, 1.0, 2.0, 4.0] {
            s.add(x);
        }
        let d = s.dist();
        assert_eq!((d.min, d.p50, d.max, d.mean), (1.0, 2.0, 4.0, 2.5));
        assert_eq!(Samples::default().dist(), Dist::default());
    }
}
