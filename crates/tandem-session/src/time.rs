//! Time as the caller gives it: no clock is read in this crate.

use std::time::Duration;

/// A point in time: the duration since an epoch the caller chooses (the
/// node uses the moment its manager started; tests start at zero). Only
/// differences between two `Time`s given by the same caller mean anything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub Duration);

impl Time {
    /// The epoch itself.
    pub const ZERO: Time = Time(Duration::ZERO);

    /// `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Time {
        Time(Duration::from_millis(ms))
    }

    /// How long after `earlier` this is (zero if it is not later).
    pub fn since(self, earlier: Time) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl std::ops::Add<Duration> for Time {
    type Output = Time;
    fn add(self, d: Duration) -> Time {
        Time(self.0.saturating_add(d))
    }
}
