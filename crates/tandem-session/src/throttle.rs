//! The slow-down of wrong passwords, per address, on the caller's time.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use tandem_proto::RejectReason;

use crate::Time;

/// A wrong password from an address delays that address's next attempts by
/// this much, doubling per failure up to [`MAX_FAILURE_DELAY`].
pub const FIRST_FAILURE_DELAY: Duration = Duration::from_millis(250);
/// Ceiling of the delay.
pub const MAX_FAILURE_DELAY: Duration = Duration::from_secs(8);
/// Failures from one address after which it is refused outright until it
/// has been quiet for [`FAILURE_WINDOW`].
pub const MAX_FAILURES: u32 = 30;
/// Failures are forgotten after this long without a new one.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(600);
/// Addresses remembered for slowing down; the oldest are forgotten first.
pub const MAX_TRACKED_ADDRESSES: usize = 10_000;
/// Password checks one address may have under way at once; more are
/// refused as too many attempts. Each check under way also counts as a
/// failure when computing the delay of the next attempt, so attempts sent
/// all at once are slowed down like attempts in a row.
pub const MAX_CONCURRENT_CHECKS: u32 = 8;

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    last: Time,
}

/// Recent failures and checks under way, per address (`K`: an IP address in
/// the node, anything hashable in tests). Bounded by
/// [`MAX_TRACKED_ADDRESSES`].
#[derive(Clone, Debug)]
pub struct PasswordThrottle<K> {
    failures: HashMap<K, Failures>,
    checking: HashMap<K, u32>,
}

impl<K> Default for PasswordThrottle<K> {
    fn default() -> Self {
        Self {
            failures: HashMap::new(),
            checking: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq + Copy + Ord> PasswordThrottle<K> {
    /// No failures yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The delay before checking a password from `from` at `now`: it doubles
    /// with every recent failure and every check still under way from that
    /// address (an attempt not yet answered may be one more failure; without
    /// counting it, a burst of concurrent guesses would all skip the
    /// slow-down). Refused as too many attempts past the bounds.
    pub fn delay(&mut self, now: Time, from: K) -> Result<Duration, RejectReason> {
        let checking = self.checking.get(&from).copied().unwrap_or(0);
        if checking >= MAX_CONCURRENT_CHECKS {
            return Err(RejectReason::TooManyAttempts);
        }
        let mut failures = 0;
        if let Some(f) = self.failures.get(&from) {
            if now.since(f.last) > FAILURE_WINDOW {
                self.failures.remove(&from);
            } else {
                failures = f.count;
            }
        }
        let count = failures + checking;
        if count >= MAX_FAILURES {
            return Err(RejectReason::TooManyAttempts);
        }
        if count == 0 {
            return Ok(Duration::ZERO);
        }
        Ok(FIRST_FAILURE_DELAY
            .saturating_mul(1u32 << (count - 1).min(16))
            .min(MAX_FAILURE_DELAY))
    }

    /// A check from `from` started.
    pub fn start_check(&mut self, from: K) {
        *self.checking.entry(from).or_insert(0) += 1;
    }

    /// A check from `from` ended (right or wrong).
    pub fn end_check(&mut self, from: K) {
        if let Some(n) = self.checking.get_mut(&from) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.checking.remove(&from);
            }
        }
    }

    /// A wrong password from `from` at `now`.
    pub fn record_failure(&mut self, now: Time, from: K) {
        if self.failures.len() >= MAX_TRACKED_ADDRESSES && !self.failures.contains_key(&from) {
            self.failures
                .retain(|_, f| now.since(f.last) <= FAILURE_WINDOW);
            if self.failures.len() >= MAX_TRACKED_ADDRESSES {
                // The oldest goes (ties by address, so the choice is deterministic).
                if let Some(oldest) = self
                    .failures
                    .iter()
                    .min_by_key(|(k, f)| (f.last, **k))
                    .map(|(k, _)| *k)
                {
                    self.failures.remove(&oldest);
                }
            }
        }
        let f = self.failures.entry(from).or_insert(Failures {
            count: 0,
            last: now,
        });
        f.count += 1;
        f.last = now;
    }

    /// Addresses remembered (for tests and gauges).
    pub fn tracked(&self) -> usize {
        self.failures.len()
    }
}
