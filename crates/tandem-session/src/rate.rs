//! A token bucket on the caller's time: how many messages of one kind an
//! attendee may send per second, with a burst.
//!
//! The node keeps one per attendee and kind (control requests, input
//! events, logged channel messages). It is a value with `now` passed in, so
//! the same calls at the same times always give the same answers and the
//! tests need no clock.

use std::time::Duration;

use crate::Time;

/// What an attendee may send of one kind: `burst` at once, then `per_second`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Messages allowed at once after a quiet time (at least 1).
    pub burst: u32,
    /// Messages allowed per second in a steady flow (at least 1).
    pub per_second: u32,
}

/// Control requests (`RequestControl`) and channel joins per attendee: a
/// person asks a few times; more is a flood, dropped before the manager.
pub const CONTROL_REQUEST_RATE: Rate = Rate {
    burst: 8,
    per_second: 2,
};

/// Input events per attendee: pointer moves of a fast mouse and typing stay
/// well below; past it the attendee's control stream is read more slowly
/// (QUIC flow control pushes back), nothing is dropped.
pub const INPUT_RATE: Rate = Rate {
    burst: 1000,
    per_second: 2000,
};

/// Channel messages per attendee that become an event-log entry each; the
/// rest are delivered and counted in the metrics, not logged one by one.
pub const LOGGED_CHANNEL_RATE: Rate = Rate {
    burst: 32,
    per_second: 4,
};

/// The bucket: `tokens` of at most `burst`, refilled at `per_second`.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: Rate,
    /// Tokens in micro-tokens (so slow rates refill without rounding away).
    micro: u64,
    last: Time,
}

const MICRO: u64 = 1_000_000;

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(rate: Rate, now: Time) -> Self {
        let rate = Rate {
            burst: rate.burst.max(1),
            per_second: rate.per_second.max(1),
        };
        Self {
            rate,
            micro: u64::from(rate.burst) * MICRO,
            last: now,
        }
    }

    fn refill(&mut self, now: Time) {
        let elapsed = now.since(self.last);
        self.last = self.last.max(now);
        let added = (elapsed.as_micros() as u64).saturating_mul(u64::from(self.rate.per_second));
        self.micro = self
            .micro
            .saturating_add(added)
            .min(u64::from(self.rate.burst) * MICRO);
    }

    /// Takes one token at `now` if there is one: `false` means over the rate
    /// (the caller drops or defers the message).
    pub fn try_take(&mut self, now: Time) -> bool {
        self.refill(now);
        if self.micro >= MICRO {
            self.micro -= MICRO;
            true
        } else {
            false
        }
    }

    /// How long after `now` one token will be there (zero if it is now).
    pub fn wait(&mut self, now: Time) -> Duration {
        self.refill(now);
        if self.micro >= MICRO {
            return Duration::ZERO;
        }
        let missing = MICRO - self.micro;
        Duration::from_micros(missing.div_ceil(u64::from(self.rate.per_second)))
    }

    /// Whole tokens left at `now`.
    pub fn available(&mut self, now: Time) -> u32 {
        self.refill(now);
        (self.micro / MICRO) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: Rate = Rate {
        burst: 3,
        per_second: 2,
    };

    #[test]
    fn a_burst_then_the_steady_rate() {
        let mut b = TokenBucket::new(R, Time::ZERO);
        assert!(b.try_take(Time::ZERO));
        assert!(b.try_take(Time::ZERO));
        assert!(b.try_take(Time::ZERO));
        assert!(!b.try_take(Time::ZERO));
        assert_eq!(b.wait(Time::ZERO), Duration::from_millis(500));
        assert!(!b.try_take(Time::from_millis(499)));
        assert!(b.try_take(Time::from_millis(500)));
        assert!(!b.try_take(Time::from_millis(500)));
        assert_eq!(b.wait(Time::from_millis(750)), Duration::from_millis(250));
    }

    #[test]
    fn a_quiet_time_refills_no_more_than_the_burst() {
        let mut b = TokenBucket::new(R, Time::ZERO);
        for _ in 0..3 {
            assert!(b.try_take(Time::ZERO));
        }
        assert_eq!(b.available(Time::from_millis(3_600_000)), 3);
    }

    #[test]
    fn a_million_requests_in_a_second_pass_burst_plus_rate() {
        let rate = CONTROL_REQUEST_RATE;
        let mut b = TokenBucket::new(rate, Time::ZERO);
        // A million and one, over exactly one second.
        let passed = (0..=1_000_000u64)
            .filter(|i| b.try_take(Time(Duration::from_micros(*i))))
            .count() as u32;
        assert_eq!(passed, rate.burst + rate.per_second);
    }

    #[test]
    fn time_going_backwards_gives_nothing() {
        let mut b = TokenBucket::new(R, Time::from_millis(1000));
        for _ in 0..3 {
            assert!(b.try_take(Time::from_millis(1000)));
        }
        assert!(!b.try_take(Time::from_millis(10)));
        assert!(!b.try_take(Time::from_millis(1000)));
    }
}
