//! Relays, relay side: serving attendees of a session another member
//! originates.
//!
//! When an attendee's hello names a session the directory places on another
//! live member, its connection task hands it here. The relay opens (or
//! reuses) one authenticated link to the origin ([`super::link`]), subscribes
//! once per session to its graphics and keeps a *mirror* of the session: a
//! decoder fed by the link's updates and a local EncoderActor fed by the
//! decoded frames, so local attendees are served by the same latest-wins
//! sender as direct ones, catch-ups included, and the origin sends each
//! update once per link. The attendee's control stream is carried through a
//! link stream to the origin, which admits it and stays the authority; the
//! relay only watches the level changes it forwards (no graphics at `none`).
//! The attendee's channel streams (virtual channels, the clipboard) are
//! carried through link streams byte for byte, both ways, so the origin
//! serves it channels exactly as a direct attendee (see [`super::link`]).
//! The mirror also keeps the session's pointer, sent by the origin on the
//! subscription stream, and local attendees get it from the same
//! [`CursorSender`] as direct ones.
//! When the link dies (the origin stopped or was killed), every attendee
//! relayed through it is told "session closed".
//!
//! A mirror's budget: it is subscribed only once the origin has admitted an
//! attendee (a wrong password costs the relay no mirror), it holds at most
//! two decoded frames besides its decoder's (one being encoded, one waiting;
//! a newer frame replaces the waiting one, latest-wins like a direct
//! attendee's sender), and it is torn down (subscription finished, encoder
//! stopped) 30 s after the last attendee relayed through it left (short
//! visits one after another share one subscription) or when its link ends. Mirrors fed to a relay below (`feed_of`) live as long as the link.
//!
//! Links are opened by a task of their own, never under a lock: joins for
//! one origin wait for the same opening, joins for others are not delayed.
//! Opening (connect and authenticate) has a deadline, and a member that
//! fails is not tried again before a back-off (0.5 s doubling to 30 s).
//! A session this node shares itself is never relayed, whatever the
//! directory says.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tandem_capture::Captured;
use tandem_codec::{Decoder, EncodedUpdate};
use tandem_proto::{
    ClientMessage, CursorShape, DisconnectReason, Fingerprint, Hello, RejectReason, ServerMessage,
};
use tandem_transport::{write_message, MessageReader};
use tokio::sync::{watch, Mutex};

/// Time to connect to a member and authenticate a link.
pub const LINK_OPEN_TIMEOUT: Duration = Duration::from_secs(5);
/// First wait before trying a member whose link failed again (doubles).
const RETRY_FIRST: Duration = Duration::from_millis(500);
/// Longest wait before trying a failed member again.
const RETRY_MAX: Duration = Duration::from_secs(30);
/// Largest cluster-wide admin answer read from one member.
pub const MAX_MEMBER_ANSWER: usize = 16 * 1024 * 1024;

/// A member's link as the relay knows it.
enum LinkSlot {
    /// Open.
    Up(Arc<Link>),
    /// Being opened by a task; its result arrives here.
    Opening(watch::Receiver<Option<Result<Arc<Link>, String>>>),
    /// The last opening failed; not tried again before `retry_at`.
    Failed {
        addr: SocketAddr,
        failures: u32,
        retry_at: Instant,
        error: String,
    },
}

/// Wait before the next try after `failures` failed openings in a row.
fn retry_after(failures: u32) -> Duration {
    RETRY_FIRST
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(RETRY_MAX)
}

use super::wire::{
    parse_link_stream, read_one, LinkPush, LinkReply, LinkRequest, LINK_ALPN, MAX_LINK_UPDATE,
};
use super::{Directory, MemberInfo};
use crate::attendee_link::BYE_DELIVERY;
use crate::attendee_link::{AttendeeLink, CloseCode, LinkSend};
use crate::attendee_manager::{AttendeeInfo, AttendeeManager, ListSessions};
use crate::capture_actor::SharedCursor;
use crate::encoder_actor::{EncoderActor, FrameCaptured, UpdateReceiver};
use crate::metrics::Metrics;
use crate::senders::{CursorSender, GraphicsSender};
use tandem_session::MAX_SHAPES_REMEMBERED;

/// How the relay reaches origins and serves their sessions.
pub struct Relays {
    node_id: String,
    secret: String,
    /// Every member presents the cluster identity: one fingerprint pins all.
    fingerprint: Fingerprint,
    directory: watch::Receiver<Arc<Directory>>,
    metrics: Arc<Metrics>,
    relayed_attendees: Arc<AtomicU64>,
    /// Where mirror encoders are started (they are actix actors).
    arbiter: actix::ArbiterHandle,
    endpoint: std::sync::Mutex<Option<quinn::Endpoint>>,
    /// Gossip address of the member to relay through (`cluster.upstream`).
    upstream: Option<SocketAddr>,
    /// Links by member id; never held across an await.
    links: std::sync::Mutex<HashMap<String, LinkSlot>>,
    /// The authority on local sessions: those are never relayed.
    manager: Addr<AttendeeManager>,
    /// The data-plane runtime: link endpoints and tasks run there.
    data_plane: std::sync::OnceLock<tokio::runtime::Handle>,
}

struct Link {
    conn: quinn::Connection,
    addr: SocketAddr,
    mirrors: Mutex<HashMap<String, Arc<Mirror>>>,
    /// Attendees relayed through this link, by route: where the origin's
    /// streams for each go (its connection's serving task opens them there).
    routes: std::sync::Mutex<HashMap<u64, tokio::sync::mpsc::Sender<quinn::RecvStream>>>,
}

/// How long a mirror without attendees is kept: attendees coming one after
/// another (each for a moment) reuse it instead of each costing the origin a
/// new subscription and key frame.
const MIRROR_LINGER: Duration = Duration::from_secs(30);

/// Channel streams from the origin waiting for a relayed attendee's connection.
const ROUTE_QUEUE: usize = 64;

impl Link {
    fn routes(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u64, tokio::sync::mpsc::Sender<quinn::RecvStream>>> {
        self.routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Hands the streams the origin opens for relayed attendees to them.
    async fn route_streams(&self) {
        while let Ok((_tx, mut rx)) = self.conn.accept_bi().await {
            let Some(LinkPush::AttendeeStream { route }) = read_one(&mut rx).await else {
                continue;
            };
            let target = self.routes().get(&route).cloned();
            if target.is_none_or(|t| t.try_send(rx).is_err()) {
                tracing::debug!(route, "stream for no relayed attendee here");
            }
        }
    }
}

/// Copies one stream through to the other end, then finishes it.
async fn pipe<S: LinkSend, R: tokio::io::AsyncRead + Unpin>(mut from: R, mut to: S) {
    match tokio::io::copy(&mut from, &mut to).await {
        Ok(_) => to.finish(),
        Err(_) => to.reset(CloseCode::Normal),
    }
}

struct Mirror {
    /// Shared rectangle size, from the origin's answer to the subscription.
    size: std::sync::Mutex<(u32, u32)>,
    /// Attendees served from it here; changed under the link's `mirrors`
    /// lock, and the mirror leaves the map when it falls to 0.
    users: std::sync::atomic::AtomicUsize,
    /// The newest decoded frame not yet handed to the encoder.
    pending: LatestFrame,
    /// Wakes the task that hands `pending` to the encoder (also on drop).
    wake: Arc<tokio::sync::Notify>,
    metrics: Arc<Metrics>,
    updates: UpdateReceiver,
    encoder: Addr<EncoderActor>,
    decoder: std::sync::Mutex<Decoder>,
    /// The session's pointer, as the origin last sent it.
    cursor: watch::Sender<Option<SharedCursor>>,
    /// Kept open: finishing it ends the subscription.
    _subscription: quinn::SendStream,
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.metrics.cluster.relay_mirrors.dec();
        // The feeding task sees the mirror gone and ends.
        self.wake.notify_one();
    }
}

/// The one decoded frame a mirror keeps for its encoder, latest-wins: the
/// link's feed never queues frames behind a busy encoder, so a mirror holds
/// at most this frame and the one being encoded (its budget in
/// ARCHITECTURE.md).
#[derive(Default)]
struct LatestFrame(std::sync::Mutex<Option<FrameCaptured>>);

impl LatestFrame {
    /// Keeps `frame`, replacing a frame still waiting. The replaced frame's
    /// step is lost, so the move hints of the newer one (relative to the
    /// replaced frame) no longer describe its step from the encoder's
    /// previous frame: they are dropped.
    fn offer(&self, mut frame: FrameCaptured) {
        let mut slot = self.lock();
        if slot.is_some() {
            frame.captured.moves.clear();
        }
        *slot = Some(frame);
    }

    /// The waiting frame, if any, leaving the slot empty.
    fn take(&self) -> Option<FrameCaptured> {
        self.lock().take()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<FrameCaptured>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Mirror {
    /// Offers a decoded frame to the encoder: it replaces a frame still
    /// waiting, whose move hints then no longer describe the step from the
    /// encoder's previous frame, so the newer frame goes without hints.
    fn offer(&self, frame: FrameCaptured) {
        self.pending.offer(frame);
        self.wake.notify_one();
    }

    /// Hands waiting frames to the encoder one at a time, waiting for each
    /// to be encoded, until the mirror is dropped.
    async fn feed_encoder(weak: std::sync::Weak<Mirror>, wake: Arc<tokio::sync::Notify>) {
        loop {
            wake.notified().await;
            let Some(mirror) = weak.upgrade() else { return };
            let frame = mirror.pending.take();
            let encoder = mirror.encoder.clone();
            drop(mirror);
            if let Some(frame) = frame {
                if encoder.send(frame).await.is_err() {
                    return;
                }
            }
        }
    }

    /// Applies a pointer message of the subscription stream; `shapes` are
    /// the images received so far (the newest few, as the origin remembers).
    fn cursor_from_link(&self, reply: LinkReply, shapes: &mut Vec<Arc<CursorShape>>) {
        match reply {
            LinkReply::CursorShape(shape) => {
                if let Err(error) = shape.validate() {
                    tracing::warn!(%error, "malformed pointer image on a relay link");
                    return;
                }
                shapes.retain(|s| s.id != shape.id);
                if shapes.len() == MAX_SHAPES_REMEMBERED {
                    shapes.remove(0);
                }
                shapes.push(Arc::new(shape));
            }
            LinkReply::CursorAt {
                x,
                y,
                visible,
                shape,
            } => {
                let Some(shape) = shapes.iter().find(|s| s.id == shape).cloned() else {
                    return;
                };
                let shared = SharedCursor {
                    x,
                    y,
                    visible,
                    shape,
                };
                self.cursor.send_if_modified(|current| {
                    if current.as_ref() == Some(&shared) {
                        return false;
                    }
                    *current = Some(shared);
                    true
                });
            }
            _ => {}
        }
    }
}

/// Counts an attendee served here through a link while it lives.
struct RelayedGuard(Arc<AtomicU64>);
impl Drop for RelayedGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Relays {
    /// Relays for this node; must be created inside the actix System.
    #[allow(clippy::too_many_arguments)] // one call site, in Node::start
    pub fn new(
        node_id: String,
        secret: String,
        fingerprint: Fingerprint,
        directory: watch::Receiver<Arc<Directory>>,
        metrics: Arc<Metrics>,
        relayed_attendees: Arc<AtomicU64>,
        upstream: Option<SocketAddr>,
        manager: Addr<AttendeeManager>,
    ) -> Self {
        Self {
            node_id,
            secret,
            fingerprint,
            directory,
            metrics,
            relayed_attendees,
            arbiter: actix::System::current().arbiter().clone(),
            endpoint: std::sync::Mutex::new(None),
            upstream,
            links: std::sync::Mutex::new(HashMap::new()),
            manager,
            data_plane: std::sync::OnceLock::new(),
        }
    }

    /// The runtime that drives link endpoints and tasks (set once).
    pub fn set_data_plane(&self, handle: tokio::runtime::Handle) {
        let _ = self.data_plane.set(handle);
    }

    fn spawn<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        match self.data_plane.get() {
            Some(handle) => {
                handle.spawn(task);
            }
            None => {
                tokio::spawn(task);
            }
        }
    }

    fn links(&self) -> std::sync::MutexGuard<'_, HashMap<String, LinkSlot>> {
        self.links
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Closes every link (node shutdown): origins see the relayed attendees
    /// leave at once instead of after the link's idle timeout.
    pub fn close(&self) {
        let endpoint = self
            .endpoint
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(endpoint) = endpoint {
            endpoint.close(CloseCode::Normal.into(), b"relay shutting down");
        }
    }

    /// Whether `session` is originated by another live member: never for
    /// a session this node shares (asked of the manager, which is the
    /// authority, not the directory, which may lag or be claimed).
    pub async fn should_relay(&self, session: &str) -> bool {
        let elsewhere = self
            .directory
            .borrow()
            .origin_of(session)
            .is_some_and(|m| !m.is_self);
        if !elsewhere {
            return false;
        }
        match self.manager.send(ListSessions).await {
            Ok(local) => !local.iter().any(|s| s.id == session),
            Err(_) => false,
        }
    }

    /// The member to link to for `session`: the configured upstream while it
    /// is live (unless `direct`), else the origin.
    fn upstream_of(&self, session: &str, direct: bool) -> Option<(String, SocketAddr)> {
        let dir = self.directory.borrow();
        let origin = dir.origin_of(session)?;
        let via = self.upstream.filter(|_| !direct).and_then(|gossip| {
            dir.nodes
                .iter()
                .find(|m| !m.is_self && m.gossip_addr == gossip.to_string())
        });
        let m = via.unwrap_or(origin);
        Some((m.id.clone(), m.link_addr.as_deref()?.parse().ok()?))
    }

    fn client_endpoint(&self) -> Result<quinn::Endpoint, String> {
        let mut slot = self
            .endpoint
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(e) = slot.as_ref() {
            return Ok(e.clone());
        }
        let _runtime = self.data_plane.get().map(|h| h.enter());
        let e = tandem_transport::client_endpoint(
            SocketAddr::from(([0, 0, 0, 0], 0)),
            &tandem_transport::TransportConfig::default(),
        )
        .map_err(|e| e.to_string())?;
        *slot = Some(e.clone());
        Ok(e)
    }

    /// The link to the origin of `session` (or the configured upstream),
    /// opened and authenticated if needed.
    async fn link_for(self: &Arc<Self>, session: &str, direct: bool) -> Result<Arc<Link>, String> {
        let (member, addr) = self
            .upstream_of(session, direct)
            .ok_or_else(|| "no live member originates this session".to_owned())?;
        self.link_to(&member, addr).await
    }

    /// The link to `member` at `addr`: the open one, the one being opened,
    /// or a new opening (unless the member failed and is backing off).
    async fn link_to(
        self: &Arc<Self>,
        member: &str,
        addr: SocketAddr,
    ) -> Result<Arc<Link>, String> {
        let mut opening = {
            let mut links = self.links();
            let failures = match links.get(member) {
                Some(LinkSlot::Up(link))
                    if link.addr == addr && link.conn.close_reason().is_none() =>
                {
                    return Ok(link.clone());
                }
                Some(LinkSlot::Opening(rx)) => Err(rx.clone()),
                Some(LinkSlot::Failed {
                    addr: failed,
                    failures,
                    retry_at,
                    error,
                }) if *failed == addr => {
                    let wait = retry_at.saturating_duration_since(Instant::now());
                    if !wait.is_zero() {
                        return Err(format!("{error} (next try in {} ms)", wait.as_millis()));
                    }
                    Ok(*failures)
                }
                _ => Ok(0),
            };
            match failures {
                Err(rx) => rx,
                Ok(failures) => {
                    let (tx, rx) = watch::channel(None);
                    links.insert(member.to_owned(), LinkSlot::Opening(rx.clone()));
                    let relays = self.clone();
                    let member = member.to_owned();
                    self.spawn(async move { relays.open_link(member, addr, failures, tx).await });
                    rx
                }
            }
        };
        let result = opening
            .wait_for(Option::is_some)
            .await
            .map_err(|_| "the link opening was abandoned".to_owned())?
            .clone();
        result.unwrap_or_else(|| Err("the link opening was abandoned".into()))
    }

    /// Connects to `member` and authenticates within [`LINK_OPEN_TIMEOUT`],
    /// records the outcome (the link, or the failure and when to retry) and
    /// tells whoever waits on `done`.
    async fn open_link(
        self: Arc<Self>,
        member: String,
        addr: SocketAddr,
        failures: u32,
        done: watch::Sender<Option<Result<Arc<Link>, String>>>,
    ) {
        let opened = tokio::time::timeout(LINK_OPEN_TIMEOUT, self.connect(&member, addr))
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "the member {member} at {addr} did not open a link within {} s",
                    LINK_OPEN_TIMEOUT.as_secs()
                ))
            });
        let result = match opened {
            Ok(conn) => {
                tracing::info!(%member, %addr, "relay link opened");
                let link = Arc::new(Link {
                    conn,
                    addr,
                    mirrors: Mutex::new(HashMap::new()),
                    routes: std::sync::Mutex::new(HashMap::new()),
                });
                let routing = link.clone();
                self.spawn(async move { routing.route_streams().await });
                self.links()
                    .insert(member.clone(), LinkSlot::Up(link.clone()));
                let (relays, feeding) = (self.clone(), link.clone());
                self.spawn(async move {
                    relays.metrics.cluster.relay_links.inc();
                    relays.feed(&feeding).await;
                    relays.metrics.cluster.relay_links.dec();
                    let mut links = relays.links();
                    if matches!(links.get(&member), Some(LinkSlot::Up(l)) if Arc::ptr_eq(l, &feeding)) {
                        links.remove(&member);
                    }
                    tracing::info!(%member, "relay link closed");
                });
                Ok(link)
            }
            Err(error) => {
                let failures = failures.saturating_add(1);
                let wait = retry_after(failures);
                tracing::warn!(%member, %addr, %error, failures, retry_in_ms = wait.as_millis() as u64, "relay link failed");
                self.links().insert(
                    member,
                    LinkSlot::Failed {
                        addr,
                        failures,
                        retry_at: Instant::now() + wait,
                        error: error.clone(),
                    },
                );
                Err(error)
            }
        };
        done.send_replace(Some(result));
    }

    /// A new authenticated link connection to `member` (no deadline of its own).
    async fn connect(&self, member: &str, addr: SocketAddr) -> Result<quinn::Connection, String> {
        let endpoint = self.client_endpoint()?;
        let conn = tandem_transport::connect_alpn(
            &endpoint,
            addr,
            self.fingerprint,
            &super::wire::link_transport_config(),
            LINK_ALPN,
        )
        .await
        .map_err(|e| format!("cannot reach the member {member} at {addr}: {e}"))?;
        if let Err(error) =
            super::wire::client_authenticate(&conn, &self.node_id, &self.secret).await
        {
            conn.close(CloseCode::AuthFailed.into(), b"authentication failed");
            return Err(error);
        }
        Ok(conn)
    }

    /// Asks `member`, over a link of its own (authenticated both ways: the
    /// member proves the cluster identity, this node the secret), for its
    /// live attendees as the admin API lists them. No deadline of its own.
    pub async fn member_attendees(&self, member: &MemberInfo) -> Result<Vec<AttendeeInfo>, String> {
        let addr: SocketAddr = member
            .link_addr
            .as_deref()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("the member {} has no link address", member.id))?;
        let conn = self.connect(&member.id, addr).await?;
        let asked = async {
            let (mut tx, mut rx) = conn.open_bi().await.map_err(|e| e.to_string())?;
            write_message(&mut tx, &LinkRequest::ListAttendees)
                .await
                .map_err(|e| e.to_string())?;
            let _ = tx.finish();
            let body = rx
                .read_to_end(MAX_MEMBER_ANSWER)
                .await
                .map_err(|e| e.to_string())?;
            serde_json::from_slice::<Vec<AttendeeInfo>>(&body).map_err(|e| e.to_string())
        };
        let answer = asked.await;
        conn.close(CloseCode::Normal.into(), b"done");
        answer
    }

    /// The mirror of `session` on `link`, subscribed if needed; counted as
    /// used until [`Self::release_mirror`].
    async fn mirror(&self, link: &Link, session: &str) -> Result<Arc<Mirror>, String> {
        let mut mirrors = link.mirrors.lock().await;
        if let Some(m) = mirrors.get(session) {
            m.users.fetch_add(1, Ordering::Relaxed);
            return Ok(m.clone());
        }
        let (publish, updates) = watch::channel(None);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let metrics = self.metrics.clone();
        self.arbiter.spawn_fn(move || {
            let encoder = EncoderActor::new(publish, metrics).start_on_own_thread();
            let _ = tx.send(encoder);
        });
        let encoder = rx.await.map_err(|_| "node shutting down".to_owned())?;
        let (mut sub, sub_rx) = link.conn.open_bi().await.map_err(|e| e.to_string())?;
        let mut reader = MessageReader::new(sub_rx);
        write_message(
            &mut sub,
            &LinkRequest::Subscribe {
                session: session.to_owned(),
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        // Registered before the answer: the first update may come at once
        // (the feed holds the map's lock while it looks the mirror up).
        let wake = Arc::new(tokio::sync::Notify::new());
        self.metrics.cluster.relay_mirrors.inc();
        let mirror = Arc::new(Mirror {
            size: std::sync::Mutex::new((0, 0)),
            users: std::sync::atomic::AtomicUsize::new(1),
            pending: LatestFrame::default(),
            wake: wake.clone(),
            metrics: self.metrics.clone(),
            updates,
            encoder,
            decoder: std::sync::Mutex::new(Decoder::new()),
            cursor: watch::Sender::new(None),
            _subscription: sub,
        });
        tokio::spawn(Mirror::feed_encoder(Arc::downgrade(&mirror), wake));
        mirrors.insert(session.to_owned(), mirror.clone());
        drop(mirrors);
        match reader.next::<LinkReply>().await {
            Ok(Some(LinkReply::Subscribed { width, height })) => {
                // The pointer follows on the subscription stream.
                let weak = Arc::downgrade(&mirror);
                tokio::spawn(async move {
                    let mut shapes = Vec::new();
                    while let Ok(Some(reply)) = reader.next::<LinkReply>().await {
                        let Some(mirror) = weak.upgrade() else { return };
                        mirror.cursor_from_link(reply, &mut shapes);
                    }
                });
                *mirror
                    .size
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = (width, height);
                Ok(mirror)
            }
            other => {
                link.mirrors.lock().await.remove(session);
                Err(match other {
                    Ok(Some(LinkReply::Refused { message })) => message,
                    _ => "the origin did not answer the subscription".into(),
                })
            }
        }
    }

    /// One attendee less on `mirror`: if none joined it within
    /// [`MIRROR_LINGER`] after the last left, it is torn down (the map holds
    /// the only other reference, so dropping it there ends the subscription,
    /// the encoder and the feeding task).
    fn release_mirror(&self, link: Arc<Link>, session: String, mirror: Arc<Mirror>) {
        if mirror.users.fetch_sub(1, Ordering::Relaxed) != 1 {
            return;
        }
        let weak = Arc::downgrade(&mirror);
        drop(mirror);
        tokio::spawn(async move {
            tokio::time::sleep(MIRROR_LINGER).await;
            let mut mirrors = link.mirrors.lock().await;
            let Some(mirror) = weak.upgrade() else { return };
            // Users change under this lock, so none can join meanwhile.
            if mirror.users.load(Ordering::Relaxed) == 0
                && mirrors
                    .get(&session)
                    .is_some_and(|m| Arc::ptr_eq(m, &mirror))
            {
                mirrors.remove(&session);
                tracing::debug!(%session, "relay mirror torn down: no attendee left");
            }
        });
    }

    /// The feed of a session this node relays, for a link below it: its
    /// mirror (subscribed to the origin directly).
    pub async fn feed_of(
        self: &Arc<Self>,
        session: &str,
    ) -> Result<crate::attendee_manager::SessionFeed, String> {
        let link = self.link_for(session, true).await?;
        let mirror = self.mirror(&link, session).await?;
        let (width, height) = *mirror
            .size
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(crate::attendee_manager::SessionFeed {
            updates: mirror.updates.clone(),
            encoder: mirror.encoder.clone(),
            cursor: mirror.cursor.subscribe(),
            width,
            height,
        })
    }

    /// Carries a relayed attendee's control stream, arrived on a link from a
    /// relay below, on to the origin (directly), message by message.
    pub async fn forward_attendee(
        self: &Arc<Self>,
        mut down_tx: quinn::SendStream,
        mut down_rx: MessageReader,
        peer: String,
        via_node: String,
        hello: Hello,
    ) {
        let session = hello.session.clone();
        let opened = async {
            let link = self.link_for(&session, true).await?;
            let (mut tx, rx) = link.conn.open_bi().await.map_err(|e| e.to_string())?;
            // Channel streams of a chained relay's attendees are not carried
            // (no route is registered here for them).
            let route = rand::random();
            write_message(
                &mut tx,
                &LinkRequest::Attendee {
                    peer,
                    via_node,
                    route,
                },
            )
            .await
            .map_err(|e| e.to_string())?;
            write_message(&mut tx, &ClientMessage::Hello(hello))
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((tx, MessageReader::new(rx)))
        };
        let (mut up_tx, mut up_rx) = match opened.await {
            Ok(v) => v,
            Err(message) => {
                let _ = write_message(
                    &mut down_tx,
                    &ServerMessage::Rejected {
                        reason: RejectReason::UnknownSession,
                        message,
                    },
                )
                .await;
                let _ = down_tx.finish();
                return;
            }
        };
        let up = async {
            while let Ok(Some(msg)) = down_rx.next::<ClientMessage>().await {
                if write_message(&mut up_tx, &msg).await.is_err() {
                    break;
                }
            }
        };
        let down = async {
            loop {
                let (msg, last) = match up_rx.next::<ServerMessage>().await {
                    Ok(Some(msg)) => {
                        let bye = matches!(msg, ServerMessage::Bye { .. });
                        (msg, bye)
                    }
                    _ => (
                        ServerMessage::Bye {
                            reason: DisconnectReason::SessionClosed,
                            message: "the origin of the session is gone".into(),
                        },
                        true,
                    ),
                };
                if write_message(&mut down_tx, &msg).await.is_err() || last {
                    let _ = down_tx.finish();
                    return;
                }
            }
        };
        tokio::select! {
            () = up => {}
            () = down => {}
        }
        let _ = up_tx.finish();
    }

    /// Reads the link's graphics streams in order and feeds the mirrors.
    async fn feed(&self, link: &Link) {
        while let Ok(mut recv) = link.conn.accept_uni().await {
            let bytes = match recv.read_to_end(MAX_LINK_UPDATE).await {
                Ok(b) => b,
                Err(_) => continue,
            };
            let Some((header, stream)) = parse_link_stream(&bytes) else {
                tracing::warn!("malformed graphics stream on a relay link");
                continue;
            };
            self.metrics
                .cluster
                .relayed_bytes
                .with_label_values(&["received"])
                .inc_by(bytes.len() as u64);
            let age_ms = (crate::clock::now_ms() - header.captured_unix_ms).max(0);
            self.metrics
                .cluster
                .relay_latency_seconds
                .observe(age_ms as f64 / 1000.0);
            let Some(mirror) = link.mirrors.lock().await.get(&header.session).cloned() else {
                continue;
            };
            let frame = {
                let Ok(stream) = tandem_proto::parse_uni_stream(stream) else {
                    continue;
                };
                let Ok(update) = EncodedUpdate::from_bytes(stream.payload()) else {
                    continue;
                };
                let mut decoder = mirror
                    .decoder
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Err(error) = decoder.apply(&update) {
                    tracing::warn!(session = %header.session, %error, "relayed update does not apply");
                    continue;
                }
                // The origin's copy-rects are hints for the mirror's encoder,
                // whose previous frame is the one they applied to.
                let moves = update
                    .moves
                    .iter()
                    .map(|m| tandem_capture::MoveHint {
                        src: m.src,
                        dst_x: m.dst_x,
                        dst_y: m.dst_y,
                    })
                    .collect::<Vec<_>>();
                decoder.frame().cloned().map(|frame| (frame, moves))
            };
            let Some((frame, moves)) = frame else {
                continue;
            };
            let captured_at = Instant::now()
                .checked_sub(Duration::from_millis(age_ms as u64))
                .unwrap_or_else(Instant::now);
            mirror.offer(FrameCaptured {
                captured: Captured {
                    frame,
                    damage: None,
                    moves,
                },
                captured_at,
                busy: None,
            });
        }
        // The link ended: its mirrors go now, not when the last relayed
        // attendee has heard of it.
        link.mirrors.lock().await.clear();
    }

    /// Serves one attendee whose hello names a session another member originates.
    pub async fn serve<L: AttendeeLink>(
        self: &Arc<Self>,
        conn: L,
        mut control_tx: L::Send,
        mut reader: MessageReader<L::Recv>,
        hello: Hello,
        on_welcome: Option<crate::attendee_link::OnWelcome>,
    ) -> Result<(), &'static str> {
        let peer = conn.peer();
        let session = hello.session.clone();
        let route: u64 = rand::random();
        let (streams_tx, mut streams_rx) = tokio::sync::mpsc::channel(ROUTE_QUEUE);
        let started = async {
            let link = self.link_for(&session, false).await?;
            // Registered before the hello goes up: the origin may open the
            // attendee's channel streams as soon as it is admitted.
            link.routes().insert(route, streams_tx);
            let (mut ltx, lrx) = link.conn.open_bi().await.map_err(|e| e.to_string())?;
            write_message(
                &mut ltx,
                &LinkRequest::Attendee {
                    peer: peer.to_string(),
                    via_node: self.node_id.clone(),
                    route,
                },
            )
            .await
            .map_err(|e| e.to_string())?;
            write_message(&mut ltx, &ClientMessage::Hello(hello))
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((link, ltx, MessageReader::new(lrx)))
        };
        let (link, mut ltx, mut lreader) = match started.await {
            Ok(v) => v,
            Err(message) => {
                tracing::info!(%peer, %session, %message, "cannot relay");
                let msg = ServerMessage::Rejected {
                    reason: RejectReason::UnknownSession,
                    message,
                };
                let _ = write_message(&mut control_tx, &msg).await;
                control_tx.finish();
                let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
                conn.close(CloseCode::Rejected, "rejected");
                return Err("cannot relay");
            }
        };
        let level = match lreader.next::<ServerMessage>().await {
            Ok(Some(ServerMessage::Welcome(welcome))) => {
                let level = welcome.control_level;
                // Admitted by the origin: the attendee's connection here
                // leaves its pre-authentication limits.
                conn.admitted();
                if write_message(&mut control_tx, &ServerMessage::Welcome(welcome))
                    .await
                    .is_err()
                {
                    return Err("welcome not delivered");
                }
                if let Some(welcomed) = on_welcome {
                    welcomed();
                }
                level
            }
            Ok(Some(msg @ ServerMessage::Rejected { .. })) => {
                link.routes().remove(&route);
                let _ = write_message(&mut control_tx, &msg).await;
                control_tx.finish();
                let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
                conn.close(CloseCode::Rejected, "rejected");
                return Err("rejected by the origin");
            }
            _ => {
                link.routes().remove(&route);
                conn.close(CloseCode::Normal, "origin gone");
                return Err("the origin did not answer");
            }
        };
        // Only now, with the attendee admitted by the origin, is the
        // session mirrored here.
        let mirror = match self.mirror(&link, &session).await {
            Ok(mirror) => mirror,
            Err(message) => {
                tracing::info!(%peer, %session, %message, "cannot mirror");
                link.routes().remove(&route);
                let bye = ServerMessage::Bye {
                    reason: DisconnectReason::SessionClosed,
                    message,
                };
                let _ = write_message(&mut control_tx, &bye).await;
                control_tx.finish();
                let _ = ltx.finish();
                let _ = tokio::time::timeout(BYE_DELIVERY, conn.closed()).await;
                conn.close(CloseCode::Normal, "closed");
                return Err("cannot mirror");
            }
        };
        self.relayed_attendees.fetch_add(1, Ordering::Relaxed);
        let _guard = RelayedGuard(self.relayed_attendees.clone());
        tracing::info!(%peer, session = %session, "attendee relayed");
        let (level_tx, level_rx) = watch::channel(level);
        let mut cursor = mirror.cursor.subscribe();
        // The current pointer goes first, even if it does not move.
        cursor.mark_changed();
        let mut pointer =
            CursorSender::new(conn.clone(), cursor, level_rx.clone(), self.metrics.clone());
        let (bytes_tx, _bytes_rx) = watch::channel(0u64);
        let graphics = GraphicsSender::new(
            conn.clone(),
            mirror.updates.clone(),
            level_rx,
            mirror.encoder.clone(),
            self.metrics.clone(),
        );
        // Graphics come from this relay's mirror, so stamps are its to add.
        let stamps = graphics.stamps();
        let graphics = graphics.run(bytes_tx);
        // Channel streams, carried through both ways, each on its own.
        let channels_down = async {
            while let Some(from_origin) = streams_rx.recv().await {
                let conn = conn.clone();
                tokio::spawn(async move {
                    if let Some(to_attendee) = conn.open_uni().await {
                        pipe(from_origin, to_attendee).await;
                    }
                });
            }
            std::future::pending::<()>().await
        };
        let channels_up = async {
            while let Some(from_attendee) = conn.accept_uni().await {
                let link_conn = link.conn.clone();
                tokio::spawn(async move {
                    let Ok((mut to_origin, _)) = link_conn.open_bi().await else {
                        return;
                    };
                    let head = LinkRequest::AttendeeStream { route };
                    if write_message(&mut to_origin, &head).await.is_ok() {
                        pipe(from_attendee, to_origin).await;
                    }
                });
            }
            std::future::pending::<()>().await
        };
        let up = async {
            loop {
                match reader.next::<ClientMessage>().await {
                    Ok(Some(ClientMessage::StampGraphics)) => {
                        stamps.store(true, Ordering::Relaxed);
                    }
                    Ok(Some(msg)) => {
                        let bye = matches!(msg, ClientMessage::Bye { .. });
                        if write_message(&mut ltx, &msg).await.is_err() || bye {
                            return;
                        }
                    }
                    _ => return,
                }
            }
        };
        // The origin leaving the directory (dead for `dead_after_ms`) ends the
        // session here even before the link itself times out.
        let mut directory = self.directory.clone();
        let gone_session = session.clone();
        let origin_gone = async move {
            let session = gone_session;
            let _ = directory
                .wait_for(|d| d.origin_of(&session).is_none_or(|m| m.is_self))
                .await;
        };
        let down = async {
            tokio::pin!(origin_gone);
            loop {
                let next = tokio::select! {
                    m = lreader.next::<ServerMessage>() => m.ok().flatten(),
                    () = &mut origin_gone => None,
                    shape = pointer.next() => {
                        if let Some(shape) = shape {
                            let msg = ServerMessage::CursorShape(shape);
                            if write_message(&mut control_tx, &msg).await.is_err() {
                                control_tx.finish();
                                return;
                            }
                        }
                        pointer.send_position();
                        continue;
                    }
                };
                let msg = match next {
                    Some(msg) => msg,
                    None => ServerMessage::Bye {
                        reason: DisconnectReason::SessionClosed,
                        message: "the origin of the session is gone".into(),
                    },
                };
                let msg = match msg {
                    ServerMessage::ControlLevelChanged { level } => {
                        level_tx.send_replace(level);
                        msg
                    }
                    // The origin stopping ends its session for every relay.
                    ServerMessage::Bye {
                        reason: DisconnectReason::NodeShutdown | DisconnectReason::NodeRestarted,
                        ..
                    } => ServerMessage::Bye {
                        reason: DisconnectReason::SessionClosed,
                        message: "the origin of the session stopped".into(),
                    },
                    other => other,
                };
                let bye = matches!(msg, ServerMessage::Bye { .. });
                if write_message(&mut control_tx, &msg).await.is_err() || bye {
                    control_tx.finish();
                    return;
                }
            }
        };
        tokio::select! {
            () = up => {}
            () = down => {}
            () = graphics => {}
            () = channels_down => {}
            () = channels_up => {}
            _ = conn.closed() => {}
        }
        link.routes().remove(&route);
        drop(level_tx);
        let _ = ltx.finish();
        self.release_mirror(link.clone(), session, mirror);
        let _ = tokio::time::timeout(BYE_DELIVERY, conn.closed()).await;
        conn.close(CloseCode::Normal, "closed");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_with_move(color: u32) -> FrameCaptured {
        let frame = tandem_codec::Frame::filled(64, 32, color);
        FrameCaptured {
            captured: Captured {
                frame,
                damage: None,
                moves: vec![tandem_capture::MoveHint {
                    src: tandem_codec::Rect {
                        x: 0,
                        y: 0,
                        width: 16,
                        height: 16,
                    },
                    dst_x: 8,
                    dst_y: 4,
                }],
            },
            captured_at: Instant::now(),
            busy: None,
        }
    }

    #[test]
    fn a_mirror_keeps_one_waiting_frame_the_newest_and_drops_stale_move_hints() {
        let slot = LatestFrame::default();
        assert!(slot.take().is_none());

        // A frame alone keeps its hints: they describe its step.
        slot.offer(frame_with_move(1));
        let alone = slot.take().expect("the offered frame waits");
        assert_eq!(alone.captured.moves.len(), 1);
        assert!(slot.take().is_none(), "taken frames do not come back");

        // Offers faster than the encoder takes them: only the newest stays.
        for color in 2..=1000 {
            slot.offer(frame_with_move(color));
        }
        let newest = slot.take().expect("the newest frame waits");
        assert!(newest.captured.frame == tandem_codec::Frame::filled(64, 32, 1000));
        assert!(
            newest.captured.moves.is_empty(),
            "hints relative to a replaced frame are dropped"
        );
        assert!(slot.take().is_none(), "one frame waits, never more");
    }

    #[test]
    fn a_failing_member_is_retried_ever_later_up_to_a_bound() {
        let waits: Vec<Duration> = (1..=10).map(retry_after).collect();
        assert_eq!(waits[0], RETRY_FIRST);
        assert_eq!(waits[1], RETRY_FIRST * 2);
        assert!(waits.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*waits.last().unwrap(), RETRY_MAX);
        assert_eq!(retry_after(u32::MAX), RETRY_MAX);
    }
}
