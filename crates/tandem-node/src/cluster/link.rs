//! Relay links between nodes, origin side: accepts links, checks the
//! relay's answer to the challenge, and serves what each stream asks for
//! (the protocol is in [`super::wire`]): subscriptions to a session's
//! graphics, relayed attendees on the one serving path
//! ([`crate::connection`]), their channel streams, and cluster-wide
//! attendee listings.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use actix::Addr;
use subtle::ConstantTimeEq;
use tandem_proto::ClientMessage;
use tandem_session::{Pick, ShapeMemory, UpdatePicker};
use tandem_transport::{write_message, MessageReader};
use tokio::sync::{mpsc, watch};

use super::wire::{
    link_mac, link_stream_bytes, link_transport_config, read_one, LinkReply, LinkRequest,
    LinkUpdate, AUTH_TIMEOUT, LINK_ALPN,
};
use crate::attendee_link::{CloseCode, RelayedLink};
use crate::attendee_manager::{AttendeeManager, FeedOf};
use crate::capture_actor::CursorReceiver;
use crate::channels::ChannelHub;
use crate::connection::ConnectionContext;
use crate::encoder_actor::{CatchUp, PublishedUpdate};
use crate::metrics::Metrics;

/// Channel streams a relayed attendee may have opened and not yet served.
const ATTENDEE_STREAM_QUEUE: usize = 64;

/// Relayed attendees of one link: where their channel streams go.
type Routes = Arc<std::sync::Mutex<HashMap<u64, mpsc::Sender<quinn::RecvStream>>>>;

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

/// Answers a cluster-wide admin query: this node's live attendees.
async fn serve_attendee_list(mut tx: quinn::SendStream, ctx: &LinkServerContext) {
    let Ok(list) = ctx
        .manager
        .send(crate::attendee_manager::ListAttendees { session: None })
        .await
    else {
        return;
    };
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
    use std::time::Duration;

    use super::super::wire::{client_authenticate, parse_link_stream};
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
