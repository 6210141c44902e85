//! Limits on connections that have not been admitted yet (no `Welcome`):
//! a per-address and a total cap, stateless Retry for unvalidated
//! addresses once the node holds many such connections, and [`admit`] to
//! raise a connection's windows once its attendee is welcomed (it starts
//! with [`TransportConfig::server`](crate::TransportConfig::server)'s small
//! ones).
//!
//! The decision is a pure function of the counts ([`PreAuthState::decide`]),
//! so it is tested without sockets; [`PreAuthGate`] holds the counts behind a
//! mutex for the accept loop, and each accepted connection holds a
//! [`PreAuthPermit`] until it is admitted or gone.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use quinn::VarInt;

/// Caps on connections not yet admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreAuthLimits {
    /// From one IP address (IPv6: one /64, which one subscriber holds).
    pub per_address: usize,
    /// In all.
    pub total: usize,
    /// Above this many, a new connection from an address QUIC has not
    /// validated is sent a stateless Retry first (one round trip; a spoofed
    /// source address never completes it, and the node keeps no state).
    pub retry_above: usize,
}

impl Default for PreAuthLimits {
    fn default() -> Self {
        PreAuthLimits {
            per_address: 64,
            total: 1024,
            retry_above: 128,
        }
    }
}

/// What to do with an incoming connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Accept it (it counts until admitted or closed).
    Accept,
    /// Ask the client to prove its address first (stateless Retry).
    Retry,
    /// Refuse it: too many from this address.
    RefuseAddress,
    /// Refuse it: too many in all.
    RefuseTotal,
}

/// The counts of connections not yet admitted.
#[derive(Debug, Default)]
pub struct PreAuthState {
    limits: PreAuthLimits,
    per_address: HashMap<IpAddr, usize>,
    total: usize,
}

/// The address a cap counts: IPv4 as is, IPv6 by its /64.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut seg = v6.segments();
                seg[4..].fill(0);
                IpAddr::V6(seg.into())
            }
        },
    }
}

impl PreAuthState {
    /// Counts under `limits`.
    pub fn new(limits: PreAuthLimits) -> Self {
        PreAuthState {
            limits,
            per_address: HashMap::new(),
            total: 0,
        }
    }

    /// Decides on a connection from `ip`; `Accept` counts it.
    /// `validated`: QUIC has validated the address (a Retry came back);
    /// `may_retry`: a Retry can still be sent.
    pub fn decide(&mut self, ip: IpAddr, validated: bool, may_retry: bool) -> Decision {
        let key = address_key(ip);
        let from_here = self.per_address.get(&key).copied().unwrap_or(0);
        if from_here >= self.limits.per_address {
            return Decision::RefuseAddress;
        }
        if self.total >= self.limits.total {
            return Decision::RefuseTotal;
        }
        if !validated && may_retry && self.total >= self.limits.retry_above {
            return Decision::Retry;
        }
        *self.per_address.entry(key).or_insert(0) += 1;
        self.total += 1;
        Decision::Accept
    }

    /// A counted connection was admitted or closed.
    pub fn release(&mut self, ip: IpAddr) {
        let key = address_key(ip);
        if let Some(n) = self.per_address.get_mut(&key) {
            *n -= 1;
            self.total -= 1;
            if *n == 0 {
                self.per_address.remove(&key);
            }
        }
    }

    /// Connections counted now.
    pub fn pending(&self) -> usize {
        self.total
    }
}

/// The accept loop's gate.
#[derive(Clone, Debug)]
pub struct PreAuthGate {
    state: Arc<Mutex<PreAuthState>>,
}

/// One accepted connection's place under the caps, given back when it is
/// admitted ([`PreAuthPermit::admit`]) or dropped.
#[derive(Debug)]
pub struct PreAuthPermit {
    state: Option<Arc<Mutex<PreAuthState>>>,
    ip: IpAddr,
}

impl PreAuthGate {
    /// A gate with these caps.
    pub fn new(limits: PreAuthLimits) -> Self {
        PreAuthGate {
            state: Arc::new(Mutex::new(PreAuthState::new(limits))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PreAuthState> {
        // Counts stay consistent: every change is one statement.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Decides on `incoming` and acts on a Retry or a refusal itself:
    /// `Some(permit)` means accept it and keep the permit while it is not
    /// admitted.
    pub fn check(&self, incoming: quinn::Incoming) -> Option<(quinn::Incoming, PreAuthPermit)> {
        let ip = incoming.remote_address().ip();
        let decision = self.lock().decide(
            ip,
            incoming.remote_address_validated(),
            incoming.may_retry(),
        );
        match decision {
            Decision::Accept => Some((
                incoming,
                PreAuthPermit {
                    state: Some(self.state.clone()),
                    ip,
                },
            )),
            Decision::Retry => {
                if let Err(error) = incoming.retry() {
                    tracing::debug!(%ip, %error, "retry not sent");
                }
                None
            }
            Decision::RefuseAddress | Decision::RefuseTotal => {
                tracing::debug!(%ip, ?decision, "connection refused before authentication");
                incoming.refuse();
                None
            }
        }
    }

    /// Connections accepted and not yet admitted.
    pub fn pending(&self) -> usize {
        self.lock().pending()
    }

    /// A place for a connection the node opens itself (a reverse connect
    /// to a listening viewer), counted under the same caps as incoming
    /// ones until its attendee is welcomed; `None` when a cap is reached.
    pub fn outgoing(&self, ip: IpAddr) -> Option<PreAuthPermit> {
        match self.lock().decide(ip, true, false) {
            Decision::Accept => Some(PreAuthPermit {
                state: Some(self.state.clone()),
                ip,
            }),
            _ => None,
        }
    }
}

impl PreAuthPermit {
    /// The attendee was welcomed: raises the connection's windows
    /// ([`admit`]) and gives its place under the caps back.
    pub fn admit(mut self, conn: &quinn::Connection) {
        admit(conn);
        self.give_back();
    }

    fn give_back(&mut self) {
        if let Some(state) = self.state.take() {
            state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .release(self.ip);
        }
    }
}

impl Drop for PreAuthPermit {
    fn drop(&mut self) {
        self.give_back();
    }
}

/// Receive window of an admitted attendee connection.
pub const ADMITTED_RECEIVE_WINDOW: u32 = 2 << 20;
/// Unidirectional streams an admitted attendee may open (one per joined
/// channel, and room for streams being replaced).
pub const ADMITTED_UNI_STREAMS: u32 = 64;

/// Raises the windows of a connection whose attendee was welcomed (it
/// started with those of a connection not yet admitted).
pub fn admit(conn: &quinn::Connection) {
    conn.set_receive_window(VarInt::from_u32(ADMITTED_RECEIVE_WINDOW));
    conn.set_max_concurrent_uni_streams(VarInt::from_u32(ADMITTED_UNI_STREAMS));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn caps_per_address_and_in_all() {
        let mut s = PreAuthState::new(PreAuthLimits {
            per_address: 2,
            total: 3,
            retry_above: 100,
        });
        assert_eq!(s.decide(v4(1), false, true), Decision::Accept);
        assert_eq!(s.decide(v4(1), false, true), Decision::Accept);
        assert_eq!(s.decide(v4(1), true, false), Decision::RefuseAddress);
        assert_eq!(s.decide(v4(2), false, true), Decision::Accept);
        assert_eq!(s.decide(v4(3), false, true), Decision::RefuseTotal);
        s.release(v4(1));
        assert_eq!(s.pending(), 2);
        assert_eq!(s.decide(v4(3), false, true), Decision::Accept);
        // Releasing what was never counted changes nothing.
        s.release(v4(9));
        assert_eq!(s.pending(), 3);
    }

    #[test]
    fn retry_when_loaded_for_unvalidated_addresses() {
        let mut s = PreAuthState::new(PreAuthLimits {
            per_address: 10,
            total: 10,
            retry_above: 1,
        });
        assert_eq!(s.decide(v4(1), false, true), Decision::Accept);
        assert_eq!(s.decide(v4(2), false, true), Decision::Retry);
        // Came back through the Retry: validated.
        assert_eq!(s.decide(v4(2), true, false), Decision::Accept);
        assert_eq!(s.pending(), 2);
    }

    #[test]
    fn an_ipv6_slash_64_is_one_address() {
        let mut s = PreAuthState::new(PreAuthLimits {
            per_address: 2,
            total: 100,
            retry_above: 100,
        });
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(s.decide(a, true, false), Decision::Accept);
        assert_eq!(s.decide(b, true, false), Decision::Accept);
        assert_eq!(s.decide(a, true, false), Decision::RefuseAddress);
        assert_eq!(s.decide(other, true, false), Decision::Accept);
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(address_key(mapped), v4(1));
    }
}
