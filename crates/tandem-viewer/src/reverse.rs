//! Listen mode (`tandem view --listen`, the Desktop Sharing API's
//! `StartReverseConnectListener`): the viewer binds a QUIC server endpoint
//! with a fresh self-signed certificate, prints a reverse connection string
//! naming it, and waits for the sharer's node to dial in
//! (`tandem connect-to`).
//!
//! Only a node presenting the certificate pinned by the viewer's normal
//! connection string completes the handshake; any other is refused and
//! reported, and the wait goes on until its deadline. Once a node is in,
//! the viewer joins exactly as over a connection it opened: it opens the
//! control stream and says `Hello` with the invitation and password.

use std::net::SocketAddr;
use std::time::Duration;

use tandem_proto::{ConnectionString, Fingerprint, NodeAddr, ReverseConnectionString};
use tandem_transport::{Identity, RefusedClients, TransportConfig};

use crate::{ViewerError, ViewerEvent};

/// Longest wait for a node to dial in that can be asked for.
pub const MAX_LISTEN_WAIT: Duration = Duration::from_secs(3600);

/// Time a node that started a handshake has to complete it.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound listener waiting for the node of one connection string.
#[derive(Debug)]
pub struct ReverseListener {
    endpoint: quinn::Endpoint,
    refused: RefusedClients,
    string: ReverseConnectionString,
    node: Fingerprint,
    wait: Duration,
}

impl ReverseListener {
    /// Binds `listen` for the node `ticket` names. The reverse connection
    /// string gives `advertise` (where the node is to dial), else the bound
    /// address, which must then be a specific one. Must be called inside a
    /// tokio runtime.
    pub fn bind(
        listen: SocketAddr,
        advertise: Option<NodeAddr>,
        ticket: &ConnectionString,
        wait: Duration,
    ) -> Result<ReverseListener, ViewerError> {
        let fail = |e: String| ViewerError::Listen(e);
        if wait.is_zero() || wait > MAX_LISTEN_WAIT {
            return Err(fail(format!(
                "the wait must be 1 s to {} s",
                MAX_LISTEN_WAIT.as_secs()
            )));
        }
        let identity = Identity::generate(&[tandem_transport::SERVER_NAME.to_owned()])
            .map_err(|e| fail(e.to_string()))?;
        let config: TransportConfig = crate::connection::viewer_transport();
        let (endpoint, refused) = tandem_transport::pinned_client_server_endpoint(
            listen,
            &identity,
            ticket.fingerprint,
            &config,
        )
        .map_err(|e| fail(e.to_string()))?;
        let bound = endpoint
            .local_addr()
            .map_err(|e| fail(format!("reading the bound address: {e}")))?;
        let addr = match advertise {
            Some(addr) => addr,
            None if bound.ip().is_unspecified() => {
                return Err(fail(format!(
                    "listening on {bound}: give the address the node is to dial with --advertise HOST:PORT"
                )))
            }
            None => NodeAddr::from(bound),
        };
        Ok(ReverseListener {
            endpoint,
            refused,
            string: ReverseConnectionString {
                addr,
                fingerprint: identity.fingerprint(),
            },
            node: ticket.fingerprint,
            wait,
        })
    }

    /// What to hand the sharer (`tandem connect-to STRING`).
    pub fn connection_string(&self) -> &ReverseConnectionString {
        &self.string
    }

    /// The bound address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.endpoint.local_addr().ok()
    }

    pub(crate) fn endpoint(&self) -> &quinn::Endpoint {
        &self.endpoint
    }

    /// Waits (at most the listener's wait) for the pinned node to dial in
    /// and complete the handshake. Refused nodes and failed handshakes are
    /// told to `on_event` and the wait goes on.
    pub(crate) async fn accept(
        &self,
        on_event: &mut impl FnMut(ViewerEvent),
    ) -> Result<(quinn::Connection, SocketAddr), ViewerError> {
        let deadline = tokio::time::Instant::now() + self.wait;
        let mut refused = 0usize;
        loop {
            let incoming = match tokio::time::timeout_at(deadline, self.endpoint.accept()).await {
                Ok(Some(incoming)) => incoming,
                Ok(None) => return Err(ViewerError::Listen("the listener was closed".into())),
                Err(_) => {
                    return Err(ViewerError::Listen(format!(
                        "no node dialed in within {} s{}",
                        self.wait.as_secs(),
                        match refused {
                            0 => String::new(),
                            n => format!(" ({n} refused)"),
                        }
                    )))
                }
            };
            let from = incoming.remote_address();
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, incoming).await {
                Ok(Ok(conn)) => {
                    tracing::info!(%from, "the node dialed in");
                    return Ok((conn, from));
                }
                Ok(Err(error)) => {
                    refused += 1;
                    let line = match self.refused.take().pop() {
                        Some(found) => format!(
                            "refused a node at {from}: its certificate fingerprint {found} does not match the connection string's {}",
                            self.node
                        ),
                        None => format!("a connection from {from} failed: {error}"),
                    };
                    on_event(ViewerEvent::Notice(line));
                }
                Err(_) => {
                    refused += 1;
                    on_event(ViewerEvent::Notice(format!(
                        "a connection from {from} did not complete its handshake in time"
                    )));
                }
            }
        }
    }
}
