//! The slow-down of wrong passwords, per address block and per invitation,
//! on the caller's time.
//!
//! Two tallies of recent failures and checks under way:
//!
//! - **per address block** ([`throttle_key`]: an IPv4 address, or the /64
//!   of an IPv6 address, which one host may rotate through freely): each
//!   failure doubles the delay of the block's next check, from
//!   [`FIRST_FAILURE_DELAY`] up to [`MAX_FAILURE_DELAY`]; past
//!   [`MAX_FAILURES`] the block is checked one attempt at a time, each
//!   after the longest delay;
//! - **per invitation** (the budget): past [`INVITATION_FAILURE_BUDGET`]
//!   failures from all addresses within [`FAILURE_WINDOW`], the invitation
//!   is checked one attempt at a time, each after the longest delay, so
//!   guesses spread over any number of addresses stay at about one per
//!   [`MAX_FAILURE_DELAY`].
//!
//! Decision (a NAT neighbour, or a host sharing an IPv6 /64 with a guesser):
//! others' failures never refuse a right password outright. They can delay
//! it (at most [`MAX_FAILURE_DELAY`]) and make it wait its turn: while a
//! check of a throttled block or invitation is under way, a second attempt
//! is refused as too many attempts ("try again"), and the next one after
//! the answer is checked. The price is that a guesser keeps one guess per
//! [`MAX_FAILURE_DELAY`] (about 10,800 a day) instead of none: the minimum
//! password length and argon2 keep that from mattering. Failures are
//! forgotten after [`FAILURE_WINDOW`] without a new one.

use core::net::{IpAddr, Ipv6Addr};
use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use tandem_proto::RejectReason;

use crate::Time;

/// A wrong password from an address block delays its next attempts by
/// this much, doubling per failure up to [`MAX_FAILURE_DELAY`].
pub const FIRST_FAILURE_DELAY: Duration = Duration::from_millis(250);
/// Ceiling of the delay.
pub const MAX_FAILURE_DELAY: Duration = Duration::from_secs(8);
/// Failures from one address block after which it is checked one attempt
/// at a time, each after [`MAX_FAILURE_DELAY`], until it has been quiet for
/// [`FAILURE_WINDOW`].
pub const MAX_FAILURES: u32 = 30;
/// Failures on one invitation (from all addresses) after which it is
/// checked one attempt at a time, each after [`MAX_FAILURE_DELAY`], until
/// it has been quiet for [`FAILURE_WINDOW`].
pub const INVITATION_FAILURE_BUDGET: u32 = 100;
/// Failures are forgotten after this long without a new one.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(600);
/// Address blocks (and invitations) remembered for slowing down; the oldest
/// are forgotten first.
pub const MAX_TRACKED_ADDRESSES: usize = 10_000;
/// Password checks one address block may have under way at once; more are
/// refused as too many attempts. Each check under way also counts as a
/// failure when computing the delay of the next attempt, so attempts sent
/// all at once are slowed down like attempts in a row.
pub const MAX_CONCURRENT_CHECKS: u32 = 8;

/// The throttle's key of an address: IPv4 as it is, IPv6 by its /64 (the
/// lower 64 bits zeroed). An IPv4-mapped IPv6 address counts as its IPv4.
pub fn throttle_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(
                u128::from(v6) & 0xffff_ffff_ffff_ffff_0000_0000_0000_0000,
            )),
        },
    }
}

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    last: Time,
}

/// Recent failures and checks under way per key, bounded in keys.
#[derive(Clone, Debug)]
struct Tally<K> {
    failures: HashMap<K, Failures>,
    checking: HashMap<K, u32>,
}

impl<K> Default for Tally<K> {
    fn default() -> Self {
        Self {
            failures: HashMap::new(),
            checking: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq + Clone + Ord> Tally<K> {
    /// (recent failures, checks under way).
    fn get(&mut self, now: Time, key: &K) -> (u32, u32) {
        let checking = self.checking.get(key).copied().unwrap_or(0);
        let mut failures = 0;
        if let Some(f) = self.failures.get(key) {
            if now.since(f.last) > FAILURE_WINDOW {
                self.failures.remove(key);
            } else {
                failures = f.count;
            }
        }
        (failures, checking)
    }

    fn start(&mut self, key: K) {
        *self.checking.entry(key).or_insert(0) += 1;
    }

    fn end(&mut self, key: &K) {
        if let Some(n) = self.checking.get_mut(key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.checking.remove(key);
            }
        }
    }

    fn fail(&mut self, now: Time, key: K) {
        if self.failures.len() >= MAX_TRACKED_ADDRESSES && !self.failures.contains_key(&key) {
            self.failures
                .retain(|_, f| now.since(f.last) <= FAILURE_WINDOW);
            if self.failures.len() >= MAX_TRACKED_ADDRESSES {
                // The oldest goes (ties by key, so the choice is deterministic).
                if let Some(oldest) = self
                    .failures
                    .iter()
                    .min_by(|(ka, a), (kb, b)| (a.last, *ka).cmp(&(b.last, *kb)))
                    .map(|(k, _)| k.clone())
                {
                    self.failures.remove(&oldest);
                }
            }
        }
        let f = self.failures.entry(key).or_insert(Failures {
            count: 0,
            last: now,
        });
        f.count = f.count.saturating_add(1);
        f.last = now;
    }
}

/// Recent failures and checks under way, per address block (`K`: an IP
/// address in the node, passed through [`throttle_key`] here; anything
/// hashable in tests) and per invitation. Bounded by
/// [`MAX_TRACKED_ADDRESSES`] each.
#[derive(Clone, Debug)]
pub struct PasswordThrottle<K> {
    addresses: Tally<K>,
    invitations: Tally<String>,
}

impl<K> Default for PasswordThrottle<K> {
    fn default() -> Self {
        Self {
            addresses: Tally::default(),
            invitations: Tally::default(),
        }
    }
}

impl<K: Hash + Eq + Copy + Ord> PasswordThrottle<K> {
    /// No failures yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The delay before checking a password from `from` for `invitation` at
    /// `now`: it doubles with every recent failure and every check still
    /// under way from that block (an attempt not yet answered may be one
    /// more failure; without counting it, a burst of concurrent guesses
    /// would all skip the slow-down). Past the block's or the invitation's
    /// bound, the longest delay and one check at a time: a second attempt
    /// meanwhile is refused as too many attempts.
    pub fn delay(
        &mut self,
        now: Time,
        from: K,
        invitation: &str,
    ) -> Result<Duration, RejectReason> {
        let (failures, checking) = self.addresses.get(now, &from);
        if checking >= MAX_CONCURRENT_CHECKS {
            return Err(RejectReason::TooManyAttempts);
        }
        let (inv_failures, inv_checking) = self.invitations.get(now, &invitation.to_owned());
        let slow_lane = failures >= MAX_FAILURES || inv_failures >= INVITATION_FAILURE_BUDGET;
        if slow_lane {
            let busy = if inv_failures >= INVITATION_FAILURE_BUDGET {
                inv_checking
            } else {
                checking
            };
            if busy > 0 {
                return Err(RejectReason::TooManyAttempts);
            }
            return Ok(MAX_FAILURE_DELAY);
        }
        let count = failures + checking;
        if count == 0 {
            return Ok(Duration::ZERO);
        }
        Ok(FIRST_FAILURE_DELAY
            .saturating_mul(1u32 << (count - 1).min(16))
            .min(MAX_FAILURE_DELAY))
    }

    /// A check from `from` for `invitation` started.
    pub fn start_check(&mut self, from: K, invitation: &str) {
        self.addresses.start(from);
        self.invitations.start(invitation.to_owned());
    }

    /// A check from `from` for `invitation` ended (right or wrong).
    pub fn end_check(&mut self, from: K, invitation: &str) {
        self.addresses.end(&from);
        self.invitations.end(&invitation.to_owned());
    }

    /// A wrong password from `from` for `invitation` at `now`.
    pub fn record_failure(&mut self, now: Time, from: K, invitation: &str) {
        self.addresses.fail(now, from);
        self.invitations.fail(now, invitation.to_owned());
    }

    /// Address blocks remembered (for tests and gauges).
    pub fn tracked(&self) -> usize {
        self.addresses.failures.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_count_by_their_64_and_ipv4_as_they_are() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(throttle_key(a), throttle_key(b));
        assert_ne!(throttle_key(a), throttle_key(c));
        assert_eq!(throttle_key(a), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(throttle_key(v4), v4);
        assert_ne!(throttle_key(v4), throttle_key("192.0.2.8".parse().unwrap()));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(throttle_key(mapped), v4);
    }
}
