//! Percentiles of latency samples.

use std::time::Duration;

/// Summary of a set of durations, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Number of samples.
    pub count: usize,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Smallest sample.
    pub min_us: f64,
    /// Largest sample.
    pub max_us: f64,
}

/// The nearest-rank percentile `p` (0..=100) of sorted samples; 0 for none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // The small epsilon keeps 0.99 * 1000 at rank 990 despite float rounding.
    let rank = (p * sorted.len() as f64 / 100.0 - 1e-9).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Summarises samples (sorting them).
pub fn summarize(samples: &mut [Duration]) -> Summary {
    samples.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    Summary {
        count: samples.len(),
        p50_us: us(percentile(samples, 50.0)),
        p99_us: us(percentile(samples, 99.0)),
        p999_us: us(percentile(samples, 99.9)),
        min_us: us(samples.first().copied().unwrap_or_default()),
        max_us: us(samples.last().copied().unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut v: Vec<Duration> = (1..=1000).map(Duration::from_micros).collect();
        let s = summarize(&mut v);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        assert!(close(s.p50_us, 500.0), "{s:?}");
        assert!(close(s.p99_us, 990.0), "{s:?}");
        assert!(close(s.p999_us, 999.0), "{s:?}");
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }
}
