//! Reverse connect (the Desktop Sharing API's `ConnectToClient`): the node
//! dials a viewer that listens, for an attendee whose machine can accept
//! connections while the sharer's cannot (a support desk).
//!
//! `POST /api/v1/connect-to {"connection_string": "tandem-reverse://..."}`
//! makes the node dial the listener from its QUIC endpoint, pinning the
//! listener's certificate by the string's fingerprint and presenting its
//! node identity as the TLS client certificate (the viewer pins it by the
//! fingerprint of its normal connection string). Once the handshake is
//! done nothing differs from a normal join: the viewer opens the control
//! stream and says `Hello` with its invitation and password, and the
//! connection is served by [`serve_attendee`] (wrapped so it remembers why it was lost), so invitation, password,
//! attendee limit, levels, the join throttle and events all apply.
//!
//! Bounded: at most [`MAX_CONCURRENT_DIALS`] dials in flight (each until its
//! attendee is welcomed or the attempt fails), at most [`DIALS_PER_MINUTE`]
//! started per minute, each holding a pre-authentication place of the
//! node's QUIC endpoint (the same caps as incoming connections), with a
//! [`DIAL_TIMEOUT`] for the handshake and [`WELCOME_TIMEOUT`] for the hello
//! and admission. The answer says what failed: the listener unreachable, a
//! listener certificate other than the string's, the listener refusing the
//! node's certificate, or the attendee not admitted.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use serde::{Deserialize, Serialize};
use tandem_proto::{Fingerprint, ReverseConnectionString};
use tandem_transport::{Identity, PreAuthGate, TransportConfig, TransportError};
use thiserror::Error;
use utoipa::ToSchema;

use crate::attendee_manager::ListAttendees;
use crate::connection::{
    serve_attendee, AttendeeLink, CloseCode, ConnectionContext, OnWelcome, HELLO_TIMEOUT,
};
use crate::data_plane::DataPlane;
use tandem_proto::DisconnectReason;

/// Dials in flight at once (from the request to the welcome or the failure).
pub const MAX_CONCURRENT_DIALS: usize = 4;
/// Dials started in any minute.
pub const DIALS_PER_MINUTE: usize = 20;
/// Time the listener has to complete the QUIC handshake.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Time the listener's name has to resolve.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Time, after the handshake, for the viewer's hello and its admission.
pub const WELCOME_TIMEOUT: Duration = Duration::from_secs(HELLO_TIMEOUT.as_secs() + 5);

/// Why a dial did not give a welcomed attendee.
#[derive(Debug, Error)]
pub enum DialError {
    /// [`MAX_CONCURRENT_DIALS`] are in flight.
    #[error("{MAX_CONCURRENT_DIALS} reverse connects are in progress; try again when one ends")]
    Busy,
    /// [`DIALS_PER_MINUTE`] were started in the last minute.
    #[error("more than {DIALS_PER_MINUTE} reverse connects a minute; try again in {0} s")]
    RateLimited(u64),
    /// The endpoint's pre-authentication caps are full.
    #[error("too many connections are waiting for authentication; try again later")]
    PreAuthFull,
    /// The listener's name does not resolve, or nothing answered in time.
    #[error("the listener {addr} is unreachable: {detail}")]
    Unreachable {
        /// As the string gave it.
        addr: String,
        /// Why.
        detail: String,
    },
    /// The listener presented another certificate than the string names.
    #[error("the listener's certificate fingerprint {found} is not the reverse connection string's {expected}: the string is stale or someone is in between")]
    WrongListener {
        /// From the string.
        expected: Fingerprint,
        /// Presented.
        found: Fingerprint,
    },
    /// The listener refused this node's certificate.
    #[error("the listener refused this node's certificate ({0}): it was started with another node's connection string")]
    Refused(String),
    /// The connection was made but no attendee was admitted.
    #[error("the listener connected but was not admitted: {0}")]
    NotAdmitted(String),
    /// The node is stopping.
    #[error("the node is shutting down")]
    Stopped,
}

impl DialError {
    pub fn status(&self) -> StatusCode {
        match self {
            DialError::Busy | DialError::RateLimited(_) | DialError::PreAuthFull => {
                StatusCode::TOO_MANY_REQUESTS
            }
            DialError::Unreachable { .. } => StatusCode::GATEWAY_TIMEOUT,
            DialError::WrongListener { .. } | DialError::Refused(_) => StatusCode::BAD_GATEWAY,
            DialError::NotAdmitted(_) => StatusCode::FORBIDDEN,
            DialError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// A dial that gave a welcomed attendee.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Connected {
    /// The listener's address as dialed.
    pub peer: String,
    /// The attendee admitted over it, when it is served by this node (a
    /// session another cluster member originates is served there).
    pub attendee: Option<u64>,
    /// Its session.
    pub session: Option<String>,
    /// Its name.
    pub user: Option<String>,
}

/// The dials started in the last minute.
#[derive(Debug, Default)]
struct DialRate {
    started: VecDeque<Instant>,
}

impl DialRate {
    /// Counts a dial started at `now`, unless [`DIALS_PER_MINUTE`] were
    /// started in the minute before: then the seconds until one may be.
    fn take(&mut self, now: Instant) -> Result<(), u64> {
        const MINUTE: Duration = Duration::from_secs(60);
        while let Some(first) = self.started.front() {
            if now.saturating_duration_since(*first) < MINUTE {
                break;
            }
            self.started.pop_front();
        }
        if self.started.len() >= DIALS_PER_MINUTE {
            let oldest = self.started.front().copied().unwrap_or(now);
            let wait = MINUTE.saturating_sub(now.saturating_duration_since(oldest));
            return Err(wait.as_secs().max(1));
        }
        self.started.push_back(now);
        Ok(())
    }
}

/// The dialer: the node's QUIC endpoint and what serving an attendee needs.
pub struct ReverseDialer {
    endpoint: quinn::Endpoint,
    data_plane: Arc<DataPlane>,
    identity: Identity,
    ctx: Arc<ConnectionContext>,
    gate: PreAuthGate,
    slots: Arc<tokio::sync::Semaphore>,
    started: Mutex<DialRate>,
}

impl ReverseDialer {
    /// A dialer from `endpoint` (driven by `data_plane`) presenting `identity`.
    pub(crate) fn new(
        endpoint: quinn::Endpoint,
        data_plane: Arc<DataPlane>,
        identity: Identity,
        ctx: Arc<ConnectionContext>,
        gate: PreAuthGate,
    ) -> Self {
        Self {
            endpoint,
            data_plane,
            identity,
            ctx,
            gate,
            slots: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_DIALS)),
            started: Mutex::new(DialRate::default()),
        }
    }

    fn take_rate(&self, now: Instant) -> Result<(), DialError> {
        self.started
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(now)
            .map_err(DialError::RateLimited)
    }

    /// Dials `target` and serves the attendee that joins over it; returns
    /// once it is welcomed (it is served on), or with why not.
    pub async fn dial(&self, target: ReverseConnectionString) -> Result<Connected, DialError> {
        let slot = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| DialError::Busy)?;
        self.take_rate(Instant::now())?;
        if *self.ctx.shutdown.borrow() {
            return Err(DialError::Stopped);
        }
        let (endpoint, identity, ctx, gate) = (
            self.endpoint.clone(),
            self.identity.clone(),
            self.ctx.clone(),
            self.gate.clone(),
        );
        // Dialled from its shard, the connection's driver runs there too.
        let task = self.data_plane.spawn_balanced(async move {
            let _slot = slot;
            dial_and_serve(endpoint, identity, ctx, gate, target).await
        });
        let peer = task.await.map_err(|_| DialError::Stopped)??;
        let attendee = self
            .ctx
            .manager
            .send(ListAttendees { session: None })
            .await
            .map_err(|_| DialError::Stopped)?
            .into_iter()
            .find(|a| a.computer == peer.to_string());
        Ok(Connected {
            peer: peer.to_string(),
            attendee: attendee.as_ref().map(|a| a.id),
            session: attendee.as_ref().map(|a| a.session.clone()),
            user: attendee.map(|a| a.user),
        })
    }
}

/// On the data-plane runtime: resolve, take a pre-authentication place,
/// dial, and serve the connection until its attendee is welcomed.
async fn dial_and_serve(
    endpoint: quinn::Endpoint,
    identity: Identity,
    ctx: Arc<ConnectionContext>,
    gate: PreAuthGate,
    target: ReverseConnectionString,
) -> Result<SocketAddr, DialError> {
    let unreachable = |detail: String| DialError::Unreachable {
        addr: target.addr.to_string(),
        detail,
    };
    let lookup = tokio::net::lookup_host((target.addr.host.as_str(), target.addr.port));
    let addr = match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
        Ok(Ok(mut addrs)) => addrs
            .next()
            .ok_or_else(|| unreachable("no address".into()))?,
        Ok(Err(e)) => return Err(unreachable(e.to_string())),
        Err(_) => return Err(unreachable("the name did not resolve in time".into())),
    };
    let permit = gate.outgoing(addr.ip()).ok_or(DialError::PreAuthFull)?;
    // The node's server-side settings: pre-authentication windows until the
    // attendee is admitted, no keep-alives of its own.
    let config = TransportConfig {
        connect_timeout: DIAL_TIMEOUT,
        ..TransportConfig::server()
    };
    tracing::info!(%addr, listener = %target.fingerprint, "reverse connect: dialing");
    let conn =
        match tandem_transport::connect_as(&endpoint, addr, target.fingerprint, &identity, &config)
            .await
        {
            Ok(conn) => conn,
            Err(TransportError::FingerprintMismatch { expected, found }) => {
                return Err(DialError::WrongListener { expected, found })
            }
            Err(TransportError::Connection(error)) => return Err(closed_error(&error)),
            Err(TransportError::Unreachable { detail, .. }) => return Err(unreachable(detail)),
            Err(other) => return Err(unreachable(other.to_string())),
        };
    let (welcomed_tx, welcomed_rx) = tokio::sync::oneshot::channel();
    let on_welcome: OnWelcome = Box::new(move || {
        drop(permit);
        let _ = welcomed_tx.send(());
    });
    let link = DialedLink {
        conn: conn.clone(),
        lost: Arc::default(),
    };
    tokio::spawn(serve_attendee(link.clone(), ctx, Some(on_welcome)));
    match tokio::time::timeout(WELCOME_TIMEOUT, welcomed_rx).await {
        Ok(Ok(())) => {
            tracing::info!(%addr, "reverse connect: attendee welcomed");
            Ok(addr)
        }
        // The serving path ended without a welcome (it dropped the callback).
        Ok(Err(_)) => {
            let why = link.lost().unwrap_or(conn.closed().await);
            let error = closed_error(&why);
            tracing::info!(%addr, %error, "reverse connect failed");
            Err(error)
        }
        Err(_) => {
            conn.close(CloseCode::Protocol.into(), b"no hello");
            Err(DialError::NotAdmitted(format!(
                "no welcome within {} s",
                WELCOME_TIMEOUT.as_secs()
            )))
        }
    }
}

/// The dialed connection as the serving path sees it: a QUIC connection
/// like any other, which also remembers why it was lost before the serving
/// path closed it (closing replaces quinn's reason by `LocallyClosed`, and
/// the listener's refusal of this node's certificate arrives as a close).
#[derive(Clone)]
struct DialedLink {
    conn: quinn::Connection,
    lost: Arc<Mutex<Option<quinn::ConnectionError>>>,
}

impl DialedLink {
    fn record(&self, error: quinn::ConnectionError) {
        self.lost
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(error);
    }

    fn lost(&self) -> Option<quinn::ConnectionError> {
        self.lost
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl AttendeeLink for DialedLink {
    type Send = quinn::SendStream;
    type Recv = quinn::RecvStream;

    async fn accept_control(&self) -> Option<(Self::Send, Self::Recv)> {
        match self.conn.accept_bi().await {
            Ok(streams) => Some(streams),
            Err(error) => {
                self.record(error);
                None
            }
        }
    }
    async fn open_uni(&self) -> Option<Self::Send> {
        AttendeeLink::open_uni(&self.conn).await
    }
    async fn accept_uni(&self) -> Option<Self::Recv> {
        AttendeeLink::accept_uni(&self.conn).await
    }
    fn send_datagram(&self, bytes: bytes::Bytes) -> bool {
        AttendeeLink::send_datagram(&self.conn, bytes)
    }
    fn close(&self, code: CloseCode, reason: &str) {
        if let Some(error) = self.conn.close_reason() {
            self.record(error);
        }
        AttendeeLink::close(&self.conn, code, reason);
    }
    async fn closed(&self) -> DisconnectReason {
        AttendeeLink::closed(&self.conn).await
    }
    fn close_reason(&self) -> Option<DisconnectReason> {
        AttendeeLink::close_reason(&self.conn)
    }
    fn peer(&self) -> SocketAddr {
        self.conn.remote_address()
    }
    fn admitted(&self) {
        AttendeeLink::admitted(&self.conn);
    }
}

/// What a closed connection says about the dial.
fn closed_error(error: &quinn::ConnectionError) -> DialError {
    match error {
        // A TLS alert (QUIC crypto error 0x100 + alert): the listener's
        // client-certificate check.
        quinn::ConnectionError::ConnectionClosed(close)
            if (0x100..0x200).contains(&u64::from(close.error_code)) =>
        {
            DialError::Refused(close.to_string())
        }
        quinn::ConnectionError::TimedOut => {
            DialError::NotAdmitted("the listener went silent".into())
        }
        quinn::ConnectionError::LocallyClosed => DialError::NotAdmitted(
            "this node refused its hello (wrong invitation or password, revoked, attendee limit, \
             no hello in time; the viewer shows the reason)"
                .into(),
        ),
        other => DialError::NotAdmitted(format!(
            "the viewer closed the connection ({other}); it shows the reason"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_bounded_per_minute() {
        let mut rate = DialRate::default();
        let t0 = Instant::now();
        for _ in 0..DIALS_PER_MINUTE {
            assert_eq!(rate.take(t0), Ok(()));
        }
        assert_eq!(rate.take(t0 + Duration::from_secs(45)), Err(15));
        assert_eq!(rate.take(t0 + Duration::from_secs(60)), Ok(()));
        assert!(rate.take(t0 + Duration::from_secs(60)).is_ok());
    }
}
