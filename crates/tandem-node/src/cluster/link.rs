//! Relay links between nodes, origin side: QUIC with ALPN `tandem-link/1`,
//! authenticated with an HMAC of the cluster secret over a challenge.
//!
//! A relay opens one connection per origin and authenticates on its first
//! bidirectional stream (`Hello` → `Challenge` → `Auth` → `Accepted`); a
//! wrong answer closes the connection. Then every further bidirectional
//! stream starts with one [`LinkRequest`]:
//! - `Subscribe { session }`: the origin answers `Subscribed` and sends the
//!   session's graphics on unidirectional streams of the link, latest wins
//!   (catch-ups when the link lags), *once per link* whatever the number of
//!   attendees behind it, until the relay finishes that stream; the
//!   session's pointer follows on the subscription stream itself
//!   (`CursorShape` once per shape, then `CursorAt`, latest wins);
//! - `Attendee { peer, via_node, route }`: an attendee's control stream,
//!   carried through: the relay forwards its `Hello`, and the origin serves
//!   it on the same path as a direct attendee ([`crate::connection`]:
//!   admission, levels, virtual channels and the clipboard), except that
//!   graphics and the pointer come from the relay's mirror;
//! - `AttendeeStream { route }`: a channel stream the relayed attendee
//!   opened, carried through byte for byte after this one frame. The origin
//!   carries the attendee's channel streams the other way on bidirectional
//!   streams it opens, each starting with one [`LinkPush::AttendeeStream`];
//!   `route` is the relay's handle for the attendee;
//! - `ListAttendees`: the member answers its live attendees as JSON (as its
//!   admin API lists them) and finishes the stream. This is how a node
//!   answers `GET /api/v1/attendees?scope=cluster` without sending its admin
//!   token anywhere: the link is authenticated both ways by the secret.
//!
//! A graphics stream on a link is `[u16 BE header length][postcard
//! LinkUpdate][the graphics stream bytes attendees receive]`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;

use actix::Addr;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tandem_proto::{ClientMessage, CursorShape};
use tandem_session::{Pick, ShapeMemory, UpdatePicker};
use tandem_transport::{write_message, MessageReader};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{mpsc, watch};

use super::secret::hmac_tag;
pub use crate::attendee_link::{open_attendee_stream, LinkPush};
use crate::attendee_link::{CloseCode, RelayedLink};
use crate::attendee_manager::{AttendeeManager, FeedOf};
use crate::capture_actor::CursorReceiver;
use crate::channels::ChannelHub;
use crate::connection::ConnectionContext;
use crate::encoder_actor::{CatchUp, PublishedUpdate};
use crate::metrics::Metrics;

/// ALPN of relay links.
pub const LINK_ALPN: &[u8] = b"tandem-link/1";
/// Time a relay has to authenticate.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest graphics stream on a link (as for attendees).
pub const MAX_LINK_UPDATE: usize = 64 * 1024 * 1024;
/// Channel streams a relayed attendee may have opened and not yet served.
const ATTENDEE_STREAM_QUEUE: usize = 64;

/// First message of each bidirectional stream a relay opens on a link.
#[derive(Debug, Serialize, Deserialize)]
pub enum LinkRequest {
    /// Opens the authentication: who is asking.
    Hello {
        /// The relay's node id.
        node_id: String,
    },
    /// Answer to the challenge: HMAC-SHA256 of the secret over
    /// `tandem-link/1 || nonce || node_id`.
    Auth {
        /// The tag.
        mac: [u8; 32],
    },
    /// Send me this session's graphics.
    Subscribe {
        /// Session id.
        session: String,
    },
    /// An attendee's control stream, relayed; its `Hello` follows.
    Attendee {
        /// The attendee's address as the relay sees it.
        peer: String,
        /// The relay's node id.
        via_node: String,
        /// The relay's handle for this attendee on this link.
        route: u64,
    },
    /// A cluster-wide admin query: list your live attendees (JSON, then
    /// the stream is finished).
    ListAttendees,
    /// A channel stream of the relayed attendee `route`; its bytes follow.
    AttendeeStream {
        /// The relay's handle for the attendee.
        route: u64,
    },
}

/// Reads exactly one control frame from `recv` and nothing past it (the
/// first frame of a link stream whose rest is carried through raw).
pub async fn read_one<T: DeserializeOwned, R: AsyncRead + Unpin>(recv: &mut R) -> Option<T> {
    let mut head = [0u8; tandem_proto::FRAME_HEADER_LEN];
    recv.read_exact(&mut head).await.ok()?;
    let len = u32::from_be_bytes(head) as usize;
    if len > tandem_proto::MAX_CONTROL_MESSAGE {
        return None;
    }
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body).await.ok()?;
    tandem_proto::decode_payload(&body).ok()
}

/// Relayed attendees of one link: where their channel streams go.
type Routes = Arc<std::sync::Mutex<HashMap<u64, mpsc::Sender<quinn::RecvStream>>>>;

/// What the origin answers on a link stream.
#[derive(Debug, Serialize, Deserialize)]
pub enum LinkReply {
    /// Prove you know the secret.
    Challenge {
        /// Random bytes.
        nonce: [u8; 32],
    },
    /// Authenticated.
    Accepted,
    /// Refused, and why.
    Refused {
        /// One line.
        message: String,
    },
    /// Subscribed; graphics follow on unidirectional streams.
    Subscribed {
        /// Shared rectangle size.
        width: u32,
        /// Shared rectangle size.
        height: u32,
    },
    /// A pointer image of the subscribed session, sent before the first
    /// `CursorAt` naming it (and again if it comes back after many others).
    CursorShape(CursorShape),
    /// Where the subscribed session's pointer is now; only the newest is
    /// sent once the previous one is written.
    CursorAt {
        /// Hot spot, from the left edge of the shared rectangle.
        x: i32,
        /// Hot spot, from the top edge of the shared rectangle.
        y: i32,
        /// Whether it is shown.
        visible: bool,
        /// Id of its `CursorShape`.
        shape: u32,
    },
}

/// Header of each graphics stream on a link.
#[derive(Debug, Serialize, Deserialize)]
pub struct LinkUpdate {
    /// Session id.
    pub session: String,
    /// When the origin captured the frame (unix milliseconds).
    pub captured_unix_ms: i64,
}

/// Transport settings of links: a dead peer is noticed within seconds (the
/// directory usually notices first, after `dead_after_ms`).
pub fn link_transport_config() -> tandem_transport::TransportConfig {
    tandem_transport::TransportConfig {
        idle_timeout: Duration::from_secs(10),
        keep_alive: Some(Duration::from_secs(1)),
        ..Default::default()
    }
}

/// The answer to a link challenge.
pub fn link_mac(secret: &str, nonce: &[u8; 32], node_id: &str) -> [u8; 32] {
    let mut message = LINK_ALPN.to_vec();
    message.extend_from_slice(nonce);
    message.extend_from_slice(node_id.as_bytes());
    hmac_tag(secret.as_bytes(), &message)
}

/// Encodes one graphics stream of a link.
pub fn link_stream_bytes(header: &LinkUpdate, stream_bytes: &[u8]) -> Vec<u8> {
    let head = postcard::to_allocvec(header).unwrap_or_default();
    let mut out = Vec::with_capacity(2 + head.len() + stream_bytes.len());
    out.extend_from_slice(&(head.len() as u16).to_be_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(stream_bytes);
    out
}

/// Splits one graphics stream of a link into its header and graphics bytes.
pub fn parse_link_stream(bytes: &[u8]) -> Option<(LinkUpdate, &[u8])> {
    let len = u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]) as usize;
    let head = bytes.get(2..2 + len)?;
    let header = postcard::from_bytes(head).ok()?;
    Some((header, &bytes[2 + len..]))
}

/// What the origin's link server shares.
pub struct LinkServerContext {
    /// The cluster secret.
    pub secret: String,
    /// The authority on sessions and attendees.
    pub manager: Addr<AttendeeManager>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Becomes `true` when the node stops.
    pub shutdown: watch::Receiver<bool>,
    /// This node's relays: a link from a relay below may ask for a session
    /// this node itself relays (chained relays).
    pub relays: Option<Arc<super::relay::Relays>>,
    /// Virtual channels: relayed attendees have them like direct ones.
    pub channels: Arc<ChannelHub>,
}

/// Binds the link endpoint and accepts links on the current runtime.
pub fn start_link_server(
    listen: SocketAddr,
    identity: &tandem_transport::Identity,
    ctx: Arc<LinkServerContext>,
) -> Result<quinn::Endpoint, crate::NodeError> {
    let endpoint = tandem_transport::server_endpoint_alpn(
        listen,
        identity,
        &link_transport_config(),
        LINK_ALPN,
    )?;
    let accept = endpoint.clone();
    tokio::spawn(async move {
        while let Some(incoming) = accept.accept().await {
            tokio::spawn(serve_link(incoming, ctx.clone()));
        }
    });
    Ok(endpoint)
}

struct LinkGauge(Arc<Metrics>);
impl LinkGauge {
    fn new(metrics: &Arc<Metrics>) -> Self {
        metrics.cluster.relay_links.inc();
        Self(metrics.clone())
    }
}
impl Drop for LinkGauge {
    fn drop(&mut self) {
        self.0.cluster.relay_links.dec();
    }
}

async fn serve_link(incoming: quinn::Incoming, ctx: Arc<LinkServerContext>) {
    let peer = incoming.remote_address();
    let Ok(conn) = incoming.await else { return };
    let relay = match tokio::time::timeout(AUTH_TIMEOUT, authenticate(&conn, &ctx.secret)).await {
        Ok(Ok(node)) => node,
        Ok(Err(reason)) => {
            tracing::warn!(%peer, reason, "relay link refused");
            conn.close(CloseCode::AuthFailed.into(), reason.as_bytes());
            return;
        }
        Err(_) => {
            conn.close(CloseCode::AuthFailed.into(), b"authentication timed out");
            return;
        }
    };
    tracing::info!(%peer, relay = %relay, "relay link accepted");
    let _gauge = LinkGauge::new(&ctx.metrics);
    let mut shutdown = ctx.shutdown.clone();
    let routes = Routes::default();
    loop {
        let (tx, mut rx) = tokio::select! {
            s = conn.accept_bi() => match s { Ok(s) => s, Err(_) => break },
            _ = shutdown.wait_for(|s| *s) => break,
        };
        let (ctx, conn, routes) = (ctx.clone(), conn.clone(), routes.clone());
        tokio::spawn(async move {
            // Exactly one frame: an attendee stream's raw bytes follow it.
            match read_one::<LinkRequest, _>(&mut rx).await {
                Some(LinkRequest::Subscribe { session }) => {
                    serve_subscription(conn, tx, MessageReader::new(rx), session, ctx).await
                }
                Some(LinkRequest::Attendee {
                    peer,
                    via_node,
                    route,
                }) => {
                    let peer = peer.parse().unwrap_or(conn.remote_address());
                    let reader = MessageReader::new(rx);
                    serve_link_attendee(conn, tx, reader, peer, via_node, route, routes, ctx).await
                }
                Some(LinkRequest::AttendeeStream { route }) => {
                    let target = routes
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .get(&route)
                        .cloned();
                    // A stream for an attendee gone, or too many waiting: refused.
                    if target.is_none_or(|t| t.try_send(rx).is_err()) {
                        tracing::debug!(route, "stream for no relayed attendee here");
                    }
                }
                Some(LinkRequest::ListAttendees) => serve_attendee_list(tx, &ctx).await,
                _ => {}
            }
        });
    }
    tracing::info!(%peer, relay = %relay, "relay link closed");
}

async fn authenticate(conn: &quinn::Connection, secret: &str) -> Result<String, &'static str> {
    let (mut tx, rx) = conn.accept_bi().await.map_err(|_| "no stream")?;
    let mut reader = MessageReader::new(rx);
    let Ok(Some(LinkRequest::Hello { node_id })) = reader.next::<LinkRequest>().await else {
        return Err("expected hello");
    };
    if node_id.is_empty() || node_id.len() > 255 {
        return Err("bad node id");
    }
    let nonce: [u8; 32] = rand::random();
    write_message(&mut tx, &LinkReply::Challenge { nonce })
        .await
        .map_err(|_| "challenge not sent")?;
    let Ok(Some(LinkRequest::Auth { mac })) = reader.next::<LinkRequest>().await else {
        return Err("expected auth");
    };
    let expected = link_mac(secret, &nonce, &node_id);
    if !bool::from(mac.ct_eq(&expected)) {
        let _ = write_message(
            &mut tx,
            &LinkReply::Refused {
                message: "wrong cluster secret".into(),
            },
        )
        .await;
        return Err("wrong cluster secret");
    }
    write_message(&mut tx, &LinkReply::Accepted)
        .await
        .map_err(|_| "accept not sent")?;
    let _ = tx.finish();
    Ok(node_id)
}

/// The relay's side of the authentication, on a fresh link.
pub async fn client_authenticate(
    conn: &quinn::Connection,
    node_id: &str,
    secret: &str,
) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| format!("relay link authentication failed: {e}");
    let (mut tx, rx) = conn.open_bi().await.map_err(|e| fail(&e))?;
    let mut reader = MessageReader::new(rx);
    write_message(
        &mut tx,
        &LinkRequest::Hello {
            node_id: node_id.to_owned(),
        },
    )
    .await
    .map_err(|e| fail(&e))?;
    let Ok(Some(LinkReply::Challenge { nonce })) = reader.next::<LinkReply>().await else {
        return Err(fail(&"no challenge"));
    };
    let mac = link_mac(secret, &nonce, node_id);
    write_message(&mut tx, &LinkRequest::Auth { mac })
        .await
        .map_err(|e| fail(&e))?;
    match reader.next::<LinkReply>().await {
        Ok(Some(LinkReply::Accepted)) => Ok(()),
        Ok(Some(LinkReply::Refused { message })) => Err(fail(&message)),
        _ => Err(fail(&"the origin closed the link (wrong cluster secret?)")),
    }
}

/// Answers a cluster-wide admin query: this node's live attendees.
async fn serve_attendee_list(mut tx: quinn::SendStream, ctx: &LinkServerContext) {
    let Ok(list) = ctx
        .manager
        .send(crate::attendee_manager::ListAttendees { session: None })
        .await
    else {
        return;
    };
    let list: Vec<crate::admin::Attendee> = list.into_iter().map(Into::into).collect();
    let body = serde_json::to_vec(&list).unwrap_or_else(|_| b"[]".to_vec());
    if tx.write_all(&body).await.is_ok() {
        let _ = tx.finish();
    }
}

/// Sends a session's graphics and pointer once on this link until the relay
/// finishes the subscription stream or the link ends; latest wins, like an
/// attendee.
async fn serve_subscription(
    conn: quinn::Connection,
    mut tx: quinn::SendStream,
    mut reader: MessageReader,
    session: String,
    ctx: Arc<LinkServerContext>,
) {
    let local = ctx
        .manager
        .send(FeedOf {
            session: session.clone(),
        })
        .await;
    let feed = match (local, &ctx.relays) {
        (Ok(Ok(feed)), _) => Ok(feed),
        (Ok(Err(_)), Some(relays)) if relays.should_relay(&session).await => {
            relays.feed_of(&session).await
        }
        _ => Err(format!("no session {session} here")),
    };
    let feed = match feed {
        Ok(feed) => feed,
        Err(message) => {
            let _ = write_message(&mut tx, &LinkReply::Refused { message }).await;
            let _ = tx.finish();
            return;
        }
    };
    if write_message(
        &mut tx,
        &LinkReply::Subscribed {
            width: feed.width,
            height: feed.height,
        },
    )
    .await
    .is_err()
    {
        return;
    }
    let metrics = ctx.metrics.clone();
    let pointer = send_cursor(tx, feed.cursor.clone());
    let send = async move {
        let mut updates = feed.updates;
        updates.mark_changed();
        let mut picker = UpdatePicker::new();
        loop {
            let newest = updates.borrow_and_update().clone();
            if let Some(newest) = newest {
                let pick = picker.pick(newest.seq, newest.base_seq);
                if pick != Pick::Nothing {
                    let update: Arc<PublishedUpdate> = match pick {
                        Pick::CatchUp { since, .. } => {
                            match feed.encoder.send(CatchUp { since }).await {
                                Ok(Some(u)) => u,
                                _ => return,
                            }
                        }
                        _ => newest,
                    };
                    let header = LinkUpdate {
                        session: session.clone(),
                        captured_unix_ms: crate::clock::now_ms()
                            - update.captured_at.elapsed().as_millis() as i64,
                    };
                    let bytes = link_stream_bytes(&header, &update.plain_stream_bytes());
                    let Ok(mut stream) = conn.open_uni().await else {
                        return;
                    };
                    if stream.write_all(&bytes).await.is_err() || stream.finish().is_err() {
                        return;
                    }
                    picker.sent(update.seq);
                    metrics
                        .cluster
                        .relayed_bytes
                        .with_label_values(&["sent"])
                        .inc_by(bytes.len() as u64);
                    continue;
                }
            }
            if updates.changed().await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = send => {}
        () = pointer => {}
        // The relay ends the subscription by finishing (or resetting) its stream.
        _ = reader.next::<LinkRequest>() => {}
    }
}

/// Sends a session's pointer on the subscription stream: each shape once
/// (while remembered), then the newest position once the previous message
/// is written. Returns only when the stream fails.
async fn send_cursor(mut tx: quinn::SendStream, mut cursor: CursorReceiver) {
    // The current pointer goes first, even if it does not move.
    cursor.mark_changed();
    let mut shapes_sent = ShapeMemory::new();
    while cursor.changed().await.is_ok() {
        let Some(current) = cursor.borrow_and_update().clone() else {
            continue;
        };
        if shapes_sent.remember(current.shape.id) {
            let shape = LinkReply::CursorShape((*current.shape).clone());
            if write_message(&mut tx, &shape).await.is_err() {
                return;
            }
        }
        let at = LinkReply::CursorAt {
            x: current.x,
            y: current.y,
            visible: current.visible,
            shape: current.shape.id,
        };
        if write_message(&mut tx, &at).await.is_err() {
            return;
        }
    }
    // The session's capture is gone: no more pointer; graphics decide the end.
    std::future::pending().await
}

/// Serves a relayed attendee on the one serving path ([`crate::connection`]):
/// the same admission, control and channels as a direct attendee; no
/// graphics (those go once per link).
#[allow(clippy::too_many_arguments)] // one call site, the link's dispatch
async fn serve_link_attendee(
    conn: quinn::Connection,
    tx: quinn::SendStream,
    mut reader: MessageReader,
    peer: SocketAddr,
    via_node: String,
    route: u64,
    routes: Routes,
    ctx: Arc<LinkServerContext>,
) {
    let hello = match reader.next::<ClientMessage>().await {
        Ok(Some(ClientMessage::Hello(hello))) => hello,
        _ => return,
    };
    if let Some(relays) = &ctx.relays {
        if relays.should_relay(&hello.session).await {
            // A relay below relays through this one: carry it to the origin.
            let relays = relays.clone();
            relays
                .forward_attendee(tx, reader, peer.to_string(), via_node, hello)
                .await;
            return;
        }
    }
    let (streams_tx, streams_rx) = mpsc::channel(ATTENDEE_STREAM_QUEUE);
    routes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(route, streams_tx);
    let link = RelayedLink {
        conn,
        route,
        peer,
        incoming: Arc::new(tokio::sync::Mutex::new(streams_rx)),
    };
    let serve = ConnectionContext {
        manager: ctx.manager.clone(),
        metrics: ctx.metrics.clone(),
        shutdown: ctx.shutdown.clone(),
        channels: ctx.channels.clone(),
        relays: None,
    };
    if let Err(reason) =
        crate::connection::serve_hello(&link, tx, reader, hello, Some(via_node), &serve, None).await
    {
        tracing::info!(%peer, reason, "relayed attendee ended");
    }
    routes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&route);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_streams_round_trip_and_garbage_is_refused() {
        let header = LinkUpdate {
            session: "s1".into(),
            captured_unix_ms: 42,
        };
        let bytes = link_stream_bytes(&header, b"payload");
        let (h, rest) = parse_link_stream(&bytes).unwrap();
        assert_eq!(h.session, "s1");
        assert_eq!(h.captured_unix_ms, 42);
        assert_eq!(rest, b"payload");
        assert!(parse_link_stream(&[0xff, 0xff, 1]).is_none());
        assert!(parse_link_stream(&[]).is_none());
    }

    /// Real QUIC on loopback: a relay with the right secret is accepted,
    /// one with a wrong secret is refused and its link closed.
    #[tokio::test(flavor = "current_thread")]
    async fn only_the_right_secret_opens_a_link() {
        let identity = tandem_transport::Identity::from_seed(&[], [3; 32]).unwrap();
        let config = tandem_transport::TransportConfig::default();
        let server = tandem_transport::server_endpoint_alpn(
            "127.0.0.1:0".parse().unwrap(),
            &identity,
            &config,
            LINK_ALPN,
        )
        .unwrap();
        let addr = server.local_addr().unwrap();
        let accept = server.clone();
        let served = tokio::spawn(async move {
            let mut results = Vec::new();
            for _ in 0..2 {
                let conn = accept.accept().await.unwrap().await.unwrap();
                let result = authenticate(&conn, "the-right-secret-0123").await;
                if result.is_err() {
                    conn.close(CloseCode::AuthFailed.into(), b"refused");
                }
                results.push((result, conn));
            }
            results
        });
        let client =
            tandem_transport::client_endpoint("127.0.0.1:0".parse().unwrap(), &config).unwrap();
        let good = tandem_transport::connect_alpn(
            &client,
            addr,
            identity.fingerprint(),
            &config,
            LINK_ALPN,
        )
        .await
        .unwrap();
        client_authenticate(&good, "relay-1", "the-right-secret-0123")
            .await
            .unwrap();
        let bad = tandem_transport::connect_alpn(
            &client,
            addr,
            identity.fingerprint(),
            &config,
            LINK_ALPN,
        )
        .await
        .unwrap();
        let err = client_authenticate(&bad, "relay-2", "a-wrong-secret-012345")
            .await
            .unwrap_err();
        assert!(err.contains("wrong cluster secret"), "{err}");
        let results = served.await.unwrap();
        assert_eq!(results[0].0.as_deref(), Ok("relay-1"));
        assert_eq!(results[1].0, Err("wrong cluster secret"));
        let closed = tokio::time::timeout(Duration::from_secs(5), bad.closed())
            .await
            .unwrap();
        assert!(
            matches!(closed, quinn::ConnectionError::ApplicationClosed(ref c) if c.error_code == CloseCode::AuthFailed.into()),
            "{closed:?}"
        );
    }

    #[test]
    fn the_mac_depends_on_secret_nonce_and_node() {
        let a = link_mac("secret-one-0123456789", &[1; 32], "n1");
        assert_eq!(a, link_mac("secret-one-0123456789", &[1; 32], "n1"));
        assert_ne!(a, link_mac("secret-two-0123456789", &[1; 32], "n1"));
        assert_ne!(a, link_mac("secret-one-0123456789", &[2; 32], "n1"));
        assert_ne!(a, link_mac("secret-one-0123456789", &[1; 32], "n2"));
    }
}
