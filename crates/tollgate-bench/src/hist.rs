//! A fixed-size log-linear latency histogram (nanoseconds).
//!
//! Values below 256 are counted exactly; above, each power-of-two range `[2^k, 2^(k+1))` is split
//! into 128 equal buckets, so a reported value is within 1/256 (0.4 %) of the recorded one. The
//! table has a fixed 7,424 slots whatever the count, so a soak of millions of requests costs the
//! same memory as ten. Percentiles use the nearest-rank definition.

/// Slots counted exactly (values `0..EXACT`).
const EXACT: u64 = 256;
/// Buckets per power-of-two range above `EXACT`.
const SUB: u64 = 128;
/// Power-of-two ranges above `EXACT` (up to `u64::MAX`).
const GROUPS: usize = 56;
const SLOTS: usize = EXACT as usize + GROUPS * SUB as usize;

/// Counts of latencies in nanoseconds, plus exact count, min, max and sum.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    count: u64,
    min: u64,
    max: u64,
    sum: u128,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("min", &self.min)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

/// The slot of a value.
fn index(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let msb = 63 - u64::from(v.leading_zeros());
    let g = msb - 7; // >= 1 because v >= 256
    (EXACT + (g - 1) * SUB + ((v >> g) - SUB)) as usize
}

/// The lowest value and the width of a slot.
fn bounds(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < EXACT {
        return (i, 1);
    }
    let g = (i - EXACT) / SUB + 1;
    let off = (i - EXACT) % SUB;
    ((SUB + off) << g, 1 << g)
}

impl Histogram {
    pub fn new() -> Self {
        Histogram { counts: vec![0; SLOTS].into_boxed_slice(), count: 0, min: u64::MAX, max: 0, sum: 0 }
    }

    /// Records one value (nanoseconds).
    pub fn record(&mut self, v: u64) {
        self.counts[index(v)] += 1;
        self.count += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += u128::from(v);
    }

    /// Adds every value of `other` to this histogram.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The smallest value recorded (0 when empty).
    pub fn min(&self) -> u64 {
        if self.count == 0 { 0 } else { self.min }
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The mean (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.sum as f64 / self.count as f64 }
    }

    /// The `p`-th percentile (0–100) by nearest rank: the smallest recorded value such that at
    /// least `p` % of the values are at or below it, reported as its slot's midpoint (exact below
    /// 256 ns), clamped to the recorded min and max; the last rank is the exact max. 0 when empty.
    pub fn percentile(&self, p: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let p = p.clamp(0.0, 100.0);
        let rank = ((p / 100.0) * self.count as f64).ceil().max(1.0) as u64;
        if rank >= self.count {
            return self.max;
        }
        let mut seen = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, width) = bounds(i);
                let mid = lo + (width - 1) / 2;
                return mid.clamp(self.min, self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_contiguous_and_cover_their_values() {
        for i in 0..SLOTS {
            let (lo, width) = bounds(i);
            assert_eq!(index(lo), i, "lowest value of slot {i}");
            assert_eq!(index(lo + (width - 1)), i, "highest value of slot {i}");
            if i + 1 < SLOTS {
                assert_eq!(bounds(i + 1).0, lo + width, "slot {} starts where {i} ends", i + 1);
            }
        }
        assert_eq!(index(u64::MAX), SLOTS - 1);
        assert_eq!(index(255), 255);
        assert_eq!(index(256), 256);
        assert_eq!(index(512), 256 + 128);
    }

    #[test]
    fn exact_percentiles_for_small_values() {
        let mut h = Histogram::new();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.percentile(50.0), 50);
        assert_eq!(h.percentile(99.0), 99);
        assert_eq!(h.percentile(100.0), 100);
        assert_eq!(h.percentile(0.0), 1);
        assert_eq!(h.percentile(1.0), 1);
        assert_eq!(h.percentile(1.5), 2);
        assert_eq!(h.min(), 1);
        assert_eq!(h.max(), 100);
        assert!((h.mean() - 50.5).abs() < 1e-9);
    }

    #[test]
    fn nearest_rank_with_few_values() {
        let mut h = Histogram::new();
        for v in [10, 20, 30, 40] {
            h.record(v);
        }
        // ranks: p50 -> ceil(2.0) = 2nd value, p51 -> 3rd, p99 -> 4th.
        assert_eq!(h.percentile(50.0), 20);
        assert_eq!(h.percentile(51.0), 30);
        assert_eq!(h.percentile(99.0), 40);
    }

    #[test]
    fn large_values_within_relative_error() {
        let mut h = Histogram::new();
        // 1 µs .. 10 ms, one value per 1 µs step: percentile k% is about k% of 10 ms.
        for us in 1..=10_000u64 {
            h.record(us * 1_000);
        }
        for (p, expect) in [(50.0, 5_000_000f64), (90.0, 9_000_000.0), (99.0, 9_900_000.0)] {
            let got = h.percentile(p) as f64;
            assert!((got - expect).abs() / expect < 1.0 / 200.0, "p{p}: {got} vs {expect}");
        }
        assert_eq!(h.percentile(100.0), 10_000_000);
        assert_eq!(h.max(), 10_000_000);
        assert_eq!(h.min(), 1_000);
    }

    #[test]
    fn skewed_distribution_p99_sees_the_tail() {
        let mut h = Histogram::new();
        for _ in 0..980 {
            h.record(100_000); // 100 µs
        }
        for _ in 0..20 {
            h.record(50_000_000); // 50 ms
        }
        let p50 = h.percentile(50.0) as f64;
        let p99 = h.percentile(99.0) as f64;
        assert!((p50 - 100_000.0).abs() / 100_000.0 < 0.005, "{p50}");
        assert!((p99 - 50_000_000.0).abs() / 50_000_000.0 < 0.005, "{p99}");
        assert_eq!(h.percentile(98.0) as f64, p50, "rank 980 is still the fast value");
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let (mut a, mut b, mut all) = (Histogram::new(), Histogram::new(), Histogram::new());
        for v in 0..5_000u64 {
            let x = v * 7_919 % 3_000_000;
            if v % 3 == 0 {
                a.record(x)
            } else {
                b.record(x)
            }
            all.record(x);
        }
        a.merge(&b);
        assert_eq!(a.count(), all.count());
        assert_eq!(a.min(), all.min());
        assert_eq!(a.max(), all.max());
        for p in [1.0, 25.0, 50.0, 90.0, 99.0, 99.9] {
            assert_eq!(a.percentile(p), all.percentile(p), "p{p}");
        }
    }

    #[test]
    fn empty_histogram_reports_zero() {
        let h = Histogram::new();
        assert_eq!(h.percentile(50.0), 0);
        assert_eq!(h.min(), 0);
        assert_eq!(h.mean(), 0.0);
    }
}
