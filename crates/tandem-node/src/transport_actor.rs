//! The TransportActor: owns the QUIC endpoint and the data plane that drives it.
//!
//! QUIC encryption and packetisation bound fan-out, so the data plane runs on
//! threads of its own ([`DataPlane`], one single-threaded runtime per
//! thread, held by this actor) rather than on the single-threaded arbiter:
//! fan-out uses every core, and encoding (on its own thread) never delays
//! packet sending. Each connection is one task on one shard (see
//! [`crate::connection`]); tasks reach the actors by message.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tandem_transport::{Identity, PreAuthGate, PreAuthLimits, TransportConfig};
use tokio::sync::watch;

use crate::attendee_manager::AttendeeManager;
use crate::connection::{serve_attendee, ConnectionContext, OnWelcome};
use crate::data_plane::DataPlane;
use crate::error::NodeError;
use crate::metrics::Metrics;

/// How long shutdown waits for connections to say goodbye.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The actor.
pub struct TransportActor {
    data_plane: Arc<DataPlane>,
    endpoint: quinn::Endpoint,
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    reverse: Arc<crate::reverse::ReverseDialer>,
    attendees: crate::browser::http::AttendeeEntry,
}

impl TransportActor {
    /// Binds the endpoint (`quic_listen`) on a new data-plane runtime of
    /// `data_plane_threads()` threads and starts accepting.
    pub fn bind(
        config: &crate::config::NodeConfig,
        identity: &Identity,
        manager: Addr<AttendeeManager>,
        metrics: Arc<Metrics>,
        channels: Arc<crate::channels::ChannelHub>,
        relays: Option<Arc<crate::cluster::relay::Relays>>,
        web: Option<Arc<tandem_transport::WebCertificates>>,
    ) -> Result<Self, NodeError> {
        let data_plane =
            DataPlane::start(config.data_plane_threads()).map_err(|source| NodeError::Io {
                context: "starting the QUIC data plane".into(),
                source,
            })?;
        if let Some(relays) = &relays {
            // Relay links are driven by the data plane too, whoever opens them.
            relays.set_data_plane(data_plane.last_shard().clone());
        }
        let listen = config.quic_listen;
        // Attendees send the keep-alives: the node sends none of its own.
        let config = TransportConfig::server();
        let endpoint = {
            // The endpoint's socket and driver belong to shard 0.
            let _guard = data_plane.endpoint_shard().enter();
            match &web {
                // Browsers too: `h3` beside `tandem/1` on the same port.
                Some(certs) => tandem_transport::dual_server_endpoint(
                    listen,
                    identity,
                    certs.clone(),
                    &config,
                )?,
                None => tandem_transport::server_endpoint(listen, identity, &config)?,
            }
        };
        let browsers = web.is_some();
        let local_addr = endpoint.local_addr().map_err(|source| NodeError::Io {
            context: "reading the QUIC address".into(),
            source,
        })?;
        let gso = max_gso_segments(local_addr);
        metrics.udp_max_gso_segments.set(gso as i64);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let ctx = Arc::new(ConnectionContext {
            manager,
            metrics,
            shutdown: shutdown_rx,
            channels,
            relays,
        });
        let data_plane = Arc::new(data_plane);
        let attendees = crate::browser::http::AttendeeEntry {
            data_plane: data_plane.clone(),
            ctx: ctx.clone(),
        };
        let accept_endpoint = endpoint.clone();
        // Connections not yet admitted are capped per address and in all
        // (ARCHITECTURE.md, "Resource budgets"); past `retry_above` an
        // unvalidated address gets a stateless Retry first.
        let gate = PreAuthGate::new(PreAuthLimits::default());
        // Reverse connects dial from this endpoint and count under its caps.
        let reverse = Arc::new(crate::reverse::ReverseDialer::new(
            endpoint.clone(),
            data_plane.clone(),
            identity.clone(),
            ctx.clone(),
            gate.clone(),
        ));
        // Weak: the data plane ends with the actor's last handle, not with
        // this loop (which runs on it).
        let shards = Arc::downgrade(&data_plane);
        data_plane.endpoint_shard().spawn(async move {
            while let Some(incoming) = accept_endpoint.accept().await {
                let Some(shards) = shards.upgrade() else {
                    break;
                };
                let Some((incoming, permit)) = gate.check(incoming) else {
                    continue;
                };
                // The permit counts the connection until its attendee is
                // welcomed or the connection ends (a connection that says no
                // Hello is closed after HELLO_TIMEOUT). Accepted on its
                // shard, the connection's driver runs there too.
                shards.spawn_balanced(serve_connection(incoming, ctx.clone(), permit, browsers));
            }
        });
        tracing::info!(addr = %local_addr, max_gso_segments = gso, "quic endpoint listening");
        Ok(Self {
            data_plane,
            endpoint,
            local_addr,
            shutdown,
            reverse,
            attendees,
        })
    }

    /// The dialer of reverse connects, on this endpoint.
    pub fn reverse(&self) -> Arc<crate::reverse::ReverseDialer> {
        self.reverse.clone()
    }

    /// Where attendees of other transports (the WebSocket fallback) are served.
    pub fn attendees(&self) -> crate::browser::http::AttendeeEntry {
        self.attendees.clone()
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Actor for TransportActor {
    type Context = Context<Self>;
}

/// How many UDP segments one send may carry on a socket like the
/// endpoint's (GSO: quinn batches that many datagrams of one connection per
/// system call; 1 when the OS has no GSO). Probed on a fresh socket of the
/// same address family: the capability is the kernel's, not the socket's.
fn max_gso_segments(local: std::net::SocketAddr) -> usize {
    let probe = std::net::UdpSocket::bind((local.ip(), 0))
        .and_then(|socket| quinn::udp::UdpSocketState::new((&socket).into()));
    match probe {
        Ok(state) => state.max_gso_segments(),
        Err(error) => {
            tracing::debug!(%error, "probing UDP segmentation offload failed");
            1
        }
    }
}

/// Closes the endpoint after letting connections say goodbye.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseEndpoint;

impl Handler<CloseEndpoint> for TransportActor {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, _: CloseEndpoint, _: &mut Self::Context) -> Self::Result {
        self.shutdown.send_replace(true);
        let endpoint = self.endpoint.clone();
        let handle = self.data_plane.endpoint_shard().clone();
        Box::pin(async move {
            let done = handle.spawn(async move {
                // Connections were told Bye by the manager and clients close
                // once they read it: wait for them (bounded) before closing
                // what is left, or a Bye still in flight would be discarded.
                let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
                while endpoint.open_connections() > 0 && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                endpoint.close(quinn::VarInt::from_u32(0), b"node shutting down");
                let _ = tokio::time::timeout(SHUTDOWN_GRACE, endpoint.wait_idle()).await;
            });
            let _ = done.await;
        })
    }
}

/// Serves one incoming QUIC connection to its end. `permit` counts it under
/// the pre-authentication caps until its attendee is welcomed (or it ends).
/// With `browsers` (`[web]` on), a connection that negotiated ALPN `h3` is a
/// browser's WebTransport session (`crate::browser::session`).
pub async fn serve_connection(
    incoming: quinn::Incoming,
    ctx: Arc<ConnectionContext>,
    permit: tandem_transport::PreAuthPermit,
    browsers: bool,
) {
    let peer = incoming.remote_address();
    let conn = match incoming.await {
        Ok(c) => c,
        Err(error) => {
            tracing::debug!(%peer, %error, "handshake failed");
            return;
        }
    };
    // The connection's limits are raised by `AttendeeLink::admitted` before
    // the welcome; after it, the pre-authentication place is given back.
    let on_welcome: OnWelcome = Box::new(move || drop(permit));
    if browsers && crate::browser::session::is_browser(&conn) {
        return crate::browser::session::serve_browser(conn, ctx, on_welcome).await;
    }
    let metrics = ctx.metrics.clone();
    serve_attendee(conn.clone(), ctx, Some(on_welcome)).await;
    // What GSO did for this connection: datagrams per send system call.
    let udp = conn.stats().udp_tx;
    metrics.udp_tx_datagrams.inc_by(udp.datagrams);
    metrics.udp_tx_ios.inc_by(udp.ios);
    tracing::debug!(%peer, datagrams = udp.datagrams, ios = udp.ios, "connection's udp sends");
}
