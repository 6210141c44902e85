//! Capture-to-decoded latency: for every stamped graphics update (the node
//! stamps each with its capture time when the viewer asks, see
//! `ClientMessage::StampGraphics`), the time from the node's capture to the
//! end of this viewer's decode, kept in a bounded histogram for the
//! headless summary (p50/p99) and the window's status overlay.
//!
//! Both times are wall-clock unix microseconds, the node's and this
//! machine's: the figure is meaningful when both run on one machine (or on
//! synchronised clocks). An update that seems decoded before it was
//! captured (a clock behind the node's) counts as 0 and is also counted
//! apart, so a skewed clock shows instead of hiding in the percentiles.

use std::time::{Duration, SystemTime};

/// Exact buckets below this many microseconds; above, 64 per power of two.
const LINEAR: u64 = 64;
/// Sub-buckets per power of two above [`LINEAR`] (relative error < 1/64).
const SUB_BITS: u32 = 6;
/// Largest value kept apart from the top bucket: 2^36 µs, about 19 hours.
const MAX_EXPONENT: u32 = 36;
/// Buckets in all: the linear ones, then 64 per power of two up to the cap.
const BUCKETS: usize = (LINEAR as usize) + ((MAX_EXPONENT - SUB_BITS) as usize) * (LINEAR as usize);

/// Latencies of stamped updates, in a fixed-size log-linear histogram
/// (16 KiB however long the viewer runs).
#[derive(Clone, Debug, Default)]
pub struct LatencyStats {
    /// Allocated on the first sample, so an unstamped viewer pays nothing.
    buckets: Vec<u64>,
    count: u64,
    max_us: u64,
    last_us: u64,
    /// Samples whose decode seemed to come before their capture.
    before_capture: u64,
}

/// This machine's wall clock in unix microseconds.
pub fn now_unix_us() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn bucket_of(us: u64) -> usize {
    if us < LINEAR {
        return us as usize;
    }
    let exponent = (63 - us.leading_zeros()).min(MAX_EXPONENT - 1);
    let us = us.min((1u64 << (exponent + 1)) - 1);
    let sub = (us >> (exponent - SUB_BITS)) & (LINEAR - 1);
    LINEAR as usize + ((exponent - SUB_BITS) as usize) * LINEAR as usize + sub as usize
}

/// The middle of a bucket's range, in microseconds.
fn bucket_value(index: usize) -> u64 {
    if index < LINEAR as usize {
        return index as u64;
    }
    let k = (index - LINEAR as usize) as u64;
    let exponent = (k / LINEAR) as u32 + SUB_BITS;
    let sub = k % LINEAR;
    let width = 1u64 << (exponent - SUB_BITS);
    ((LINEAR + sub) << (exponent - SUB_BITS)) + width / 2
}

impl LatencyStats {
    /// No samples yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one update captured at `captured_unix_us` and decoded at
    /// `decoded_unix_us`.
    pub fn record(&mut self, captured_unix_us: u64, decoded_unix_us: u64) {
        let us = match decoded_unix_us.checked_sub(captured_unix_us) {
            Some(us) => us,
            None => {
                self.before_capture += 1;
                0
            }
        };
        if self.buckets.is_empty() {
            self.buckets = vec![0; BUCKETS];
        }
        self.buckets[bucket_of(us)] += 1;
        self.count += 1;
        self.max_us = self.max_us.max(us);
        self.last_us = us;
    }

    /// Updates recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Updates that seemed decoded before they were captured (counted as 0).
    pub fn before_capture(&self) -> u64 {
        self.before_capture
    }

    /// The latency of the newest update.
    pub fn last(&self) -> Option<Duration> {
        (self.count > 0).then(|| Duration::from_micros(self.last_us))
    }

    /// The largest latency recorded.
    pub fn max(&self) -> Option<Duration> {
        (self.count > 0).then(|| Duration::from_micros(self.max_us))
    }

    /// The `pct` percentile (0..=100), within the bucket's 1/64 precision
    /// (exact below 64 µs, and never above the largest value recorded).
    pub fn percentile(&self, pct: f64) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        let rank = ((pct.clamp(0.0, 100.0) / 100.0) * self.count as f64).ceil() as u64;
        let rank = rank.max(1);
        // The highest rank is the largest sample, which is kept exactly.
        if rank >= self.count {
            return self.max();
        }
        let mut seen = 0;
        for (index, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let us = bucket_value(index).min(self.max_us);
                return Some(Duration::from_micros(us));
            }
        }
        self.max()
    }

    /// One line for the headless summary; `None` when nothing was stamped.
    pub fn summary_line(&self) -> Option<String> {
        let ms = |d: Option<Duration>| d.unwrap_or_default().as_secs_f64() * 1000.0;
        if self.count == 0 {
            return None;
        }
        let mut line = format!(
            "capture-to-decoded latency over {} updates: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, last {:.1} ms",
            self.count,
            ms(self.percentile(50.0)),
            ms(self.percentile(99.0)),
            ms(self.max()),
            ms(self.last())
        );
        if self.before_capture > 0 {
            line.push_str(&format!(
                " ({} decoded before their capture time: is this clock behind the node's?)",
                self.before_capture
            ));
        }
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_within_a_sixty_fourth() {
        let mut previous = 0;
        for us in (0..5_000u64).chain((5_000..50_000_000).step_by(997)) {
            let b = bucket_of(us);
            assert!(b >= previous, "bucket of {us} went back");
            assert!(b < BUCKETS);
            previous = b;
            let mid = bucket_value(b);
            let error = mid.abs_diff(us) as f64;
            assert!(error <= (us as f64 / 64.0).max(0.0) + 0.5, "{us} -> {mid}");
        }
        // Values past the cap land in the top bucket instead of overflowing.
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles_of_known_samples() {
        let mut stats = LatencyStats::new();
        assert_eq!(stats.percentile(50.0), None);
        assert_eq!(stats.summary_line(), None);
        // 1..=100 ms, one each: p50 is 50 ms, p99 99 ms (to 1/64).
        for ms in 1..=100u64 {
            stats.record(1_000_000, 1_000_000 + ms * 1000);
        }
        assert_eq!(stats.count(), 100);
        let p50 = stats.percentile(50.0).unwrap().as_secs_f64() * 1000.0;
        let p99 = stats.percentile(99.0).unwrap().as_secs_f64() * 1000.0;
        assert!((p50 - 50.0).abs() <= 50.0 / 64.0, "{p50}");
        assert!((p99 - 99.0).abs() <= 99.0 / 64.0, "{p99}");
        assert_eq!(stats.max(), Some(Duration::from_millis(100)));
        assert_eq!(stats.percentile(100.0), Some(Duration::from_millis(100)));
        assert_eq!(stats.last(), Some(Duration::from_millis(100)));
        let line = stats.summary_line().unwrap();
        assert!(
            line.starts_with("capture-to-decoded latency over 100 updates: p50 "),
            "{line}"
        );
    }

    #[test]
    fn a_clock_behind_the_nodes_counts_zero_and_is_told() {
        let mut stats = LatencyStats::new();
        stats.record(2_000, 1_000);
        stats.record(1_000, 1_040);
        assert_eq!(stats.before_capture(), 1);
        assert_eq!(stats.percentile(50.0), Some(Duration::ZERO));
        assert_eq!(stats.max(), Some(Duration::from_micros(40)));
        assert!(stats.summary_line().unwrap().contains("1 decoded before"));
    }
}
