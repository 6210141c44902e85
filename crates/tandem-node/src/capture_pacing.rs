//! When the CaptureActor looks at its source next: the pacing rule, with
//! time passed in (no clock, no timers), so that it is tested without
//! waiting.
//!
//! A tick reads the source's news (damage, pointer, windows) and grabs what
//! changed. After it:
//! - a lost source is tried again after the retry period;
//! - a source with more to do (damage left because the encoder was busy,
//!   events read during the grab, a pointer to read again), or one that
//!   cannot wake the actor, is looked at one frame interval after the tick;
//! - a settled source that can wake the actor (X11 with XInput 2) is not
//!   looked at until it has news, or until the recheck period passed. The
//!   tick after news waits [`Pacer::settle`], because the first drawing of
//!   a change is usually one of several (a typed glyph, then the text
//!   cursor), and at least one frame interval after the previous tick, so
//!   that a flood of news costs at most one tick per interval.
//!
//! A typed character is then one wake-up for its news and one grab. Before,
//! the frame interval kept ticking after the grab until an idle tick put
//! the actor to sleep: four more wake-ups of the capture thread per
//! keystroke (`ARCHITECTURE.md`, "Capture pacing").

use std::time::{Duration, Instant};

/// What a tick left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterTick {
    /// The source failed for long enough to count as lost.
    Lost,
    /// There is more to do: look again one interval later.
    Busy,
    /// Nothing is pending: the source's news is the next thing to act on.
    Settled,
}

/// When to look at the source next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Tick at this instant.
    TickAt(Instant),
    /// Wait for the source's news (its wake descriptor turning readable),
    /// at most the recheck period.
    AwaitNews,
}

/// The pacing state of one capture loop.
#[derive(Debug, Clone)]
pub struct Pacer {
    interval: Duration,
    settle: Duration,
    retry: Duration,
    last_tick: Option<Instant>,
}

impl Pacer {
    /// Ticks at most every `interval`; waits `settle` after news; tries a
    /// lost source every `retry`.
    pub fn new(interval: Duration, settle: Duration, retry: Duration) -> Self {
        Self {
            interval,
            settle,
            retry,
            last_tick: None,
        }
    }

    /// The frame interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Changes the frame interval (from the next decision on).
    pub fn set_interval(&mut self, interval: Duration) {
        self.interval = interval;
    }

    /// How long a tick after news waits at least.
    pub fn settle(&self) -> Duration {
        self.settle
    }

    /// A tick that began at `now` left the source in `state`; `can_await_news`
    /// tells whether the source has a wake descriptor.
    pub fn after_tick(&mut self, now: Instant, state: AfterTick, can_await_news: bool) -> Next {
        self.last_tick = Some(now);
        match state {
            AfterTick::Lost => Next::TickAt(now + self.retry),
            AfterTick::Settled if can_await_news => Next::AwaitNews,
            AfterTick::Settled | AfterTick::Busy => Next::TickAt(now + self.interval),
        }
    }

    /// The source had news at `now`: when to tick.
    pub fn on_news(&self, now: Instant) -> Instant {
        let settled = now + self.settle;
        match self.last_tick {
            Some(last) => settled.max(last + self.interval),
            None => settled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn pacer() -> Pacer {
        Pacer::new(33 * MS, 4 * MS, 5000 * MS)
    }

    #[test]
    fn a_settled_source_that_can_wake_the_actor_is_awaited_and_one_that_cannot_is_ticked() {
        let t0 = Instant::now();
        let mut p = pacer();
        assert_eq!(p.after_tick(t0, AfterTick::Settled, true), Next::AwaitNews);
        assert_eq!(
            p.after_tick(t0, AfterTick::Settled, false),
            Next::TickAt(t0 + 33 * MS)
        );
    }

    #[test]
    fn a_busy_source_is_ticked_one_interval_later_and_a_lost_one_after_the_retry_period() {
        let t0 = Instant::now();
        let mut p = pacer();
        assert_eq!(
            p.after_tick(t0, AfterTick::Busy, true),
            Next::TickAt(t0 + 33 * MS)
        );
        assert_eq!(
            p.after_tick(t0, AfterTick::Lost, true),
            Next::TickAt(t0 + 5000 * MS)
        );
    }

    #[test]
    fn news_after_a_quiet_spell_is_grabbed_after_the_settle_time() {
        let t0 = Instant::now();
        let mut p = pacer();
        assert_eq!(p.on_news(t0), t0 + 4 * MS, "before any tick");
        p.after_tick(t0, AfterTick::Settled, true);
        let later = t0 + 500 * MS;
        assert_eq!(p.on_news(later), later + 4 * MS);
    }

    #[test]
    fn news_soon_after_a_tick_waits_for_the_frame_interval() {
        let t0 = Instant::now();
        let mut p = pacer();
        p.after_tick(t0, AfterTick::Settled, true);
        // News 10 ms after the tick: not before 33 ms after it.
        assert_eq!(p.on_news(t0 + 10 * MS), t0 + 33 * MS);
        // News 31 ms after: the settle time is the later bound.
        assert_eq!(p.on_news(t0 + 31 * MS), t0 + 35 * MS);
    }

    #[test]
    fn a_new_interval_applies_to_the_next_decision() {
        let t0 = Instant::now();
        let mut p = pacer();
        p.set_interval(100 * MS);
        assert_eq!(
            p.after_tick(t0, AfterTick::Busy, true),
            Next::TickAt(t0 + 100 * MS)
        );
        assert_eq!(p.on_news(t0 + MS), t0 + 100 * MS);
    }
}
