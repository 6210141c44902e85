//! The one attendee-serving path, on the data-plane runtime: for a direct
//! QUIC connection, a relayed attendee arriving at the origin over a relay
//! link, and any other [`AttendeeLink`] (a browser's WebTransport session).
//!
//! The client opens a bidirectional control stream and sends `Hello`; the
//! AttendeeManager admits or rejects it (or, for a session another member
//! originates, the relay serves it: [`crate::cluster::relay`]). Once
//! admitted, these run until the first ends: the control reader (requests,
//! input, channel joins, bye), the control writer (commands from the
//! manager, channel notices, pointer images), the graphics sender, the
//! pointer sender and the channel streams (the clipboard among them).
//!
//! The graphics sender is *latest-wins*: it watches the session's newest
//! update and sends one update at a time, each on its own unidirectional
//! stream. While a send waits on a slow attendee's flow control, newer
//! updates are not queued; when it completes, the attendee gets the newest
//! update directly if it applies to what it has, or else a catch-up from its
//! last delivered sequence number. So a slow attendee never delays another
//! one and never makes the node buffer more than one update for it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use tandem_proto::{
    ClientMessage, ControlLevel, CursorPosition, CursorShape, DisconnectReason, Hello,
    ServerMessage,
};
use tandem_session::{
    Pick, ShapeMemory, Time, TokenBucket, UpdatePicker, CONTROL_REQUEST_RATE, INPUT_RATE,
};
use tandem_transport::{write_message, MessageReader};
use tokio::sync::watch;

pub use crate::attendee_link::{closed_reason, AttendeeLink, CloseCode, LinkSend};

use crate::attendee_manager::{
    Admitted, AttendeeCommand, AttendeeManager, FromAttendee, Join, Left,
};
use crate::capture_actor::CursorReceiver;
use crate::channels::{AttendeeChannels, ChannelHub};
use crate::encoder_actor::{CatchUp, EncoderActor, PublishedUpdate, UpdateReceiver};
use crate::metrics::Metrics;

/// Time a client has to open its control stream and say hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Once the manager has removed an attendee, time its `Bye` has to be
/// written before the connection is closed anyway (a jammed control stream
/// must not keep a disconnected attendee receiving graphics).
pub const BYE_GRACE: Duration = Duration::from_secs(2);

/// After writing a `Bye`, time the client has to read it and close the
/// connection itself before the node closes it (closing first would discard
/// a `Bye` the client has received but not read yet).
pub const BYE_DELIVERY: Duration = Duration::from_secs(3);

/// What every connection task shares.
pub struct ConnectionContext {
    /// The authority on joins and control.
    pub manager: Addr<AttendeeManager>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Becomes `true` when the node stops.
    pub shutdown: watch::Receiver<bool>,
    /// Virtual channels.
    pub channels: Arc<ChannelHub>,
    /// Relays sessions other cluster members originate (when clustered).
    pub relays: Option<Arc<crate::cluster::relay::Relays>>,
}

/// Run once when an attendee is welcomed: the direct QUIC path gives the
/// connection's pre-authentication place back.
pub type OnWelcome = Box<dyn FnOnce() + Send>;

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

/// Serves one attendee connection of any transport to its end.
pub async fn serve_attendee<L: AttendeeLink>(
    link: L,
    ctx: Arc<ConnectionContext>,
    on_welcome: Option<OnWelcome>,
) {
    let peer = link.peer();
    ctx.metrics.connections.inc();
    let _gauge = GaugeGuard(ctx.metrics.clone());
    if let Err(reason) = serve_control(&link, &ctx, on_welcome).await {
        tracing::info!(%peer, reason, "connection closed");
    }
}

struct GaugeGuard(Arc<Metrics>);
impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.connections.dec();
    }
}

/// Waits for the control stream and the hello, then serves them.
async fn serve_control<L: AttendeeLink>(
    link: &L,
    ctx: &ConnectionContext,
    on_welcome: Option<OnWelcome>,
) -> Result<(), &'static str> {
    let peer = link.peer();
    let (control_tx, control_rx) =
        match tokio::time::timeout(HELLO_TIMEOUT, link.accept_control()).await {
            Ok(Some(streams)) => streams,
            _ => {
                link.close(CloseCode::Protocol, "no control stream");
                return Err("no control stream");
            }
        };
    let mut reader = MessageReader::new(control_rx);
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, reader.next::<ClientMessage>()).await {
        Ok(Ok(Some(ClientMessage::Hello(hello)))) => hello,
        Ok(Err(error)) => {
            tracing::info!(%peer, %error, "malformed hello");
            link.close(CloseCode::Protocol, "malformed hello");
            return Err("malformed hello");
        }
        _ => {
            link.close(CloseCode::Protocol, "expected hello");
            return Err("expected hello");
        }
    };
    if let Some(relays) = &ctx.relays {
        if relays.should_relay(&hello.session).await {
            return relays
                .serve(link.clone(), control_tx, reader, hello, on_welcome)
                .await;
        }
    }
    serve_hello(link, control_tx, reader, hello, None, ctx, on_welcome).await
}

/// Serves an attendee whose hello has been read: admission by the manager,
/// then everything an admitted attendee gets. `via_node` is the relay it
/// came through, if any.
pub(crate) async fn serve_hello<L: AttendeeLink>(
    link: &L,
    mut control_tx: L::Send,
    mut reader: MessageReader<L::Recv>,
    hello: Hello,
    via_node: Option<String>,
    ctx: &ConnectionContext,
    on_welcome: Option<OnWelcome>,
) -> Result<(), &'static str> {
    let peer = link.peer();
    let user = hello.name.clone();
    let admitted = match ctx
        .manager
        .send(Join {
            hello,
            peer,
            via_node,
        })
        .await
    {
        Ok(Ok(admitted)) => admitted,
        Ok(Err(rejection)) => {
            tracing::info!(%peer, %user, reason = ?rejection.reason, "join rejected");
            let _ = write_message(
                &mut control_tx,
                &ServerMessage::Rejected {
                    reason: rejection.reason,
                    message: rejection.message,
                },
            )
            .await;
            control_tx.finish();
            // Let the rejection reach the client before closing.
            if !link.relayed() {
                let _ = tokio::time::timeout(Duration::from_secs(2), link.closed()).await;
            }
            link.close(CloseCode::Rejected, "rejected");
            return Err("rejected");
        }
        Err(_) => {
            link.close(CloseCode::Normal, "node shutting down");
            return Err("node shutting down");
        }
    };
    let Admitted {
        welcome,
        updates,
        cursor,
        encoder,
        level,
        mut commands,
        channels: channel_defaults,
        mut removed,
    } = admitted;
    let attendee = welcome.attendee_id;
    tracing::info!(%peer, %user, attendee, "attendee admitted");
    // Before the welcome: the attendee may use the larger limits at once.
    link.admitted();
    let AttendeeChannels {
        notices: mut channel_notices,
        streams: mut channel_streams,
    } = ctx
        .channels
        .attach(&welcome.session, attendee, level.clone(), channel_defaults);
    let _detach = DetachOnDrop(ctx.channels.clone(), attendee);
    let mut level_seen = level.clone();
    if write_message(&mut control_tx, &ServerMessage::Welcome(welcome))
        .await
        .is_err()
    {
        ctx.manager.do_send(Left {
            attendee,
            reason: DisconnectReason::Error,
            bytes_sent: 0,
        });
        return Err("welcome not delivered");
    }
    if let Some(welcomed) = on_welcome {
        welcomed();
    }

    // A relayed attendee gets graphics and the pointer from its relay's mirror.
    let relayed = link.relayed();
    let mut pointer = CursorSender::new(link.clone(), cursor, level.clone(), ctx.metrics.clone());
    let sender = GraphicsSender::new(link.clone(), updates, level, encoder, ctx.metrics.clone());
    let stamps = sender.stamps();
    let (bytes_tx, mut bytes_rx) = watch::channel(0u64);
    let graphics = async move {
        if relayed {
            return std::future::pending().await;
        }
        sender.run(bytes_tx).await
    };

    let manager = ctx.manager.clone();
    let hub = ctx.channels.clone();
    let metrics = ctx.metrics.clone();
    let control_in = async move {
        // The attendee's budget (ARCHITECTURE.md, "Resource budgets"):
        // requests and channel joins over their rate are dropped here; input
        // over its rate waits, so the attendee's own flow control pushes
        // back; and what passes goes to the manager one message at a time
        // (`send().await`), so its mailbox holds at most one message per
        // attendee however fast the attendee writes.
        let epoch = std::time::Instant::now();
        let now = move || Time(epoch.elapsed());
        let mut requests = TokenBucket::new(CONTROL_REQUEST_RATE, now());
        let mut inputs = TokenBucket::new(INPUT_RATE, now());
        let limited = |kind: &str| metrics.rate_limited.with_label_values(&[kind]).inc();
        loop {
            let msg = match reader.next::<ClientMessage>().await {
                Ok(Some(ClientMessage::Bye { .. })) => return DisconnectReason::ByAttendee,
                Ok(Some(ClientMessage::ChannelJoin { name })) => {
                    if requests.try_take(now()) {
                        hub.join(attendee, &name);
                    } else {
                        limited("channel_join");
                    }
                    continue;
                }
                Ok(Some(msg @ ClientMessage::RequestControl { .. })) => {
                    if !requests.try_take(now()) {
                        limited("control_request");
                        continue;
                    }
                    msg
                }
                Ok(Some(msg @ ClientMessage::Input(_))) => {
                    let wait = inputs.wait(now());
                    if !wait.is_zero() {
                        limited("input_deferred");
                        tokio::time::sleep(wait).await;
                    }
                    inputs.try_take(now());
                    msg
                }
                Ok(Some(ClientMessage::StampGraphics)) => {
                    tracing::debug!(
                        attendee,
                        "graphics stamped with the capture time from now on"
                    );
                    stamps.store(true, Ordering::Relaxed);
                    continue;
                }
                Ok(Some(msg)) => msg,
                Ok(None) => return DisconnectReason::ByAttendee,
                Err(error) => {
                    tracing::info!(attendee, %error, "control stream ended");
                    return link.close_reason().unwrap_or(DisconnectReason::Error);
                }
            };
            if manager.send(FromAttendee { attendee, msg }).await.is_err() {
                // The manager is gone: the node is stopping.
                return DisconnectReason::NodeShutdown;
            }
        }
    };

    let control_out = async {
        loop {
            let cmd = tokio::select! {
                cmd = commands.recv() => cmd,
                Some(notice) = channel_notices.recv() => {
                    if write_message(&mut control_tx, &notice).await.is_err() {
                        return (DisconnectReason::Error, true);
                    }
                    continue;
                }
                shape = pointer.next(), if !relayed => {
                    if let Some(shape) = shape {
                        let msg = ServerMessage::CursorShape(shape);
                        if write_message(&mut control_tx, &msg).await.is_err() {
                            return (DisconnectReason::Error, true);
                        }
                    }
                    pointer.send_position();
                    continue;
                }
            };
            let Some(cmd) = cmd else { break };
            match cmd {
                AttendeeCommand::Send(msg) => {
                    if write_message(&mut control_tx, &msg).await.is_err() {
                        return (DisconnectReason::Error, true);
                    }
                }
                AttendeeCommand::Close(reason, message) => {
                    let _ = write_message(&mut control_tx, &ServerMessage::Bye { reason, message })
                        .await;
                    control_tx.finish();
                    // The manager already recorded this disconnect.
                    return (reason, false);
                }
            }
        }
        (DisconnectReason::Error, false)
    };

    // Channel streams: one writer task per joined channel, one reader task
    // per stream the attendee opens; each blocks only on its own stream.
    let channel_out = async {
        let follow_level = async {
            // The clipboard channel's access follows the control level.
            while level_seen.changed().await.is_ok() {
                ctx.channels.level_changed(attendee);
            }
            std::future::pending::<()>().await
        };
        tokio::pin!(follow_level);
        loop {
            let out = tokio::select! {
                out = channel_streams.recv() => out,
                () = &mut follow_level => None,
            };
            let Some(out) = out else { break };
            tokio::spawn(crate::channel_streams::write_channel(
                link.clone(),
                out,
                attendee,
            ));
        }
        std::future::pending::<()>().await
    };
    let channel_in = async {
        while let Some(recv) = link.accept_uni().await {
            tokio::spawn(crate::channel_streams::read_channel(
                recv,
                ctx.channels.clone(),
                attendee,
            ));
        }
        std::future::pending::<()>().await
    };

    let mut shutdown = ctx.shutdown.clone();
    let (reason, tell_manager) = tokio::select! {
        // Neither ends: they wait forever once their source is done.
        () = channel_out => (DisconnectReason::Error, true),
        () = channel_in => (DisconnectReason::Error, true),
        reason = control_in => (reason, true),
        (reason, tell) = control_out => (reason, tell),
        _ = graphics => (DisconnectReason::Error, true),
        // The manager's `Bye` (NodeShutdown) is queued before the flag flips:
        // give control_out the grace to write it rather than racing it.
        () = async {
            let _ = shutdown.wait_for(|s| *s).await;
            tokio::time::sleep(BYE_GRACE).await;
        } => (DisconnectReason::NodeShutdown, true),
        reason = link.closed() => (reason, true),
        reason = async {
            match (&mut removed).await {
                Ok(reason) => {
                    tokio::time::sleep(BYE_GRACE).await;
                    tracing::info!(attendee, "the goodbye could not be delivered; closing");
                    reason
                }
                // Never removed (the manager is gone): other branches end the connection.
                Err(_) => std::future::pending().await,
            }
        } => (reason, false),
    };
    let bytes_sent = *bytes_rx.borrow_and_update();
    if tell_manager {
        ctx.manager.do_send(Left {
            attendee,
            reason,
            bytes_sent,
        });
    }
    if reason == DisconnectReason::ByAttendee {
        link.close(CloseCode::Normal, "bye");
    } else if !relayed {
        // Give the Bye a moment to be delivered before tearing the connection down.
        let _ = tokio::time::timeout(BYE_DELIVERY, link.closed()).await;
        link.close(CloseCode::Normal, "closed");
    }
    Ok(())
}

/// Removes the attendee from the channel hub when the connection task ends.
struct DetachOnDrop(Arc<ChannelHub>, u64);

impl Drop for DetachOnDrop {
    fn drop(&mut self) {
        self.0.detach(self.1);
    }
}

/// After the pointer stops, its last position is sent once more after this
/// long: datagrams can be lost, and the resting position is the one that
/// matters.
const CURSOR_REPEAT: Duration = Duration::from_millis(300);

/// Sends the session's pointer to one attendee: the image on the control
/// stream once per shape, positions as datagrams (latest wins, like graphics).
/// Also used by relays for their local attendees, fed from a relayed
/// session's mirror.
pub(crate) struct CursorSender<L> {
    link: L,
    cursor: CursorReceiver,
    level: watch::Receiver<ControlLevel>,
    metrics: Arc<Metrics>,
    /// The shapes this attendee has (a few: pointers cycle among a handful).
    shapes_sent: ShapeMemory,
    seq: u32,
    repeat_at: Option<tokio::time::Instant>,
    /// The position due is the repeat of the resting one.
    repeating: bool,
}

impl<L: AttendeeLink> CursorSender<L> {
    /// A sender of `cursor` to the attendee on `link`, silent while `level` is `none`.
    pub(crate) fn new(
        link: L,
        cursor: CursorReceiver,
        level: watch::Receiver<ControlLevel>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            link,
            cursor,
            level,
            metrics,
            shapes_sent: ShapeMemory::new(),
            seq: 0,
            repeat_at: None,
            repeating: false,
        }
    }

    /// Waits until a position is due; returns the shape to send first when
    /// the attendee does not have it yet.
    pub(crate) async fn next(&mut self) -> Option<CursorShape> {
        loop {
            let repeat = self.repeat_at;
            tokio::select! {
                changed = self.cursor.changed() => {
                    if changed.is_err() {
                        // The capture actor is gone: no more pointer.
                        return std::future::pending().await;
                    }
                }
                () = async {
                    match repeat {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {
                    self.repeat_at = None;
                    self.repeating = true;
                }
            }
            if *self.level.borrow() == ControlLevel::None {
                // No graphics, no pointer.
                continue;
            }
            let current = self.cursor.borrow().clone()?;
            if !self.shapes_sent.remember(current.shape.id) {
                return None;
            }
            self.metrics.cursor_shapes_sent.inc();
            return Some((*current.shape).clone());
        }
    }

    /// Sends the current position as a datagram (dropped if the peer takes none).
    pub(crate) fn send_position(&mut self) {
        let Some(current) = self.cursor.borrow().clone() else {
            return;
        };
        self.seq = self.seq.wrapping_add(1);
        let position = CursorPosition {
            seq: self.seq,
            x: current.x,
            y: current.y,
            shape: current.shape.id,
            visible: current.visible,
        };
        if self.link.send_datagram(position.to_datagram().into()) {
            self.metrics.cursor_positions_sent.inc();
        }
        // A repeat itself schedules no further repeat.
        if !std::mem::take(&mut self.repeating) {
            self.repeat_at = Some(tokio::time::Instant::now() + CURSOR_REPEAT);
        }
    }
}

/// Resets the stream it holds when dropped.
struct ResetOnDrop<S: LinkSend>(Option<S>);

impl<S: LinkSend> Drop for ResetOnDrop<S> {
    fn drop(&mut self) {
        if let Some(stream) = self.0.as_mut() {
            stream.reset(CloseCode::Normal);
        }
    }
}

/// The latest-wins graphics sender of one attendee (also used by relays for
/// their local attendees, fed from a relayed session's mirror).
pub(crate) struct GraphicsSender<L> {
    link: L,
    updates: UpdateReceiver,
    level: watch::Receiver<ControlLevel>,
    encoder: Addr<EncoderActor>,
    metrics: Arc<Metrics>,
    /// Where this attendee is in the session's updates.
    picker: UpdatePicker,
    bytes_sent: u64,
    /// The attendee asked for stamped graphics streams (capture time).
    stamped: Arc<AtomicBool>,
}

impl<L: AttendeeLink> GraphicsSender<L> {
    /// A sender of `updates` to the attendee on `link`, silent while `level` is `none`.
    pub(crate) fn new(
        link: L,
        updates: UpdateReceiver,
        level: watch::Receiver<ControlLevel>,
        encoder: Addr<EncoderActor>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            link,
            updates,
            level,
            encoder,
            metrics,
            picker: UpdatePicker::new(),
            bytes_sent: 0,
            stamped: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The switch to stamped streams: set it when the attendee asks
    /// (`ClientMessage::StampGraphics`); later updates carry the capture time.
    pub(crate) fn stamps(&self) -> Arc<AtomicBool> {
        self.stamped.clone()
    }

    /// Sends until the connection fails. Returns only on error: when the
    /// manager removes the attendee (its level sender is dropped) or the
    /// session's encoder is gone, it stops sending and waits for the control
    /// side to say goodbye and end the connection; returning then would race
    /// with the `Bye` and could end the connection without it.
    pub(crate) async fn run(mut self, bytes: watch::Sender<u64>) {
        self.updates.mark_changed();
        loop {
            if self.level.has_changed().is_err() {
                // The manager removed the attendee: no more graphics.
                return std::future::pending().await;
            }
            if *self.level.borrow_and_update() == ControlLevel::None {
                // An attendee at `none` receives no graphics until its level changes.
                let _ = self.level.changed().await;
                continue;
            }
            let newest = self.updates.borrow_and_update().clone();
            if let Some(newest) = newest {
                if newest.seq != self.picker.delivered() {
                    let Some(update) = self.choose(newest).await else {
                        return;
                    };
                    if self.send(&update).await.is_err() {
                        return;
                    }
                    bytes.send_replace(self.bytes_sent);
                    continue;
                }
            }
            tokio::select! {
                r = self.updates.changed() => if r.is_err() {
                    // The session's encoder is gone: nothing more to send.
                    return std::future::pending().await;
                },
                // An error here (the attendee removed) is seen at the top of the loop.
                _ = self.level.changed() => {},
            }
        }
    }

    /// The newest update if it applies to what the attendee has; else a catch-up.
    async fn choose(&mut self, newest: Arc<PublishedUpdate>) -> Option<Arc<PublishedUpdate>> {
        let (since, coalesced) = match self.picker.pick(newest.seq, newest.base_seq) {
            Pick::Nothing => return None,
            Pick::Newest(kind) => {
                self.metrics
                    .updates_sent
                    .with_label_values(&[kind.label()])
                    .inc();
                return Some(newest);
            }
            Pick::CatchUp { since, coalesced } => (since, coalesced),
        };
        // Updates between `delivered` and `newest` were folded into this catch-up.
        self.metrics.updates_coalesced.inc_by(coalesced);
        let update = self.encoder.send(CatchUp { since }).await.ok()??;
        let kind = if update.base_seq == 0 {
            "key"
        } else {
            "catch_up"
        };
        self.metrics.updates_sent.with_label_values(&[kind]).inc();
        Some(update)
    }

    async fn send(&mut self, update: &PublishedUpdate) -> Result<(), ()> {
        let stream = self.link.open_uni().await.ok_or(())?;
        // If this send is abandoned half way (the connection is ending), the
        // stream is reset, not finished: a finished stream would hand the
        // attendee a truncated update.
        let mut guard = ResetOnDrop(Some(stream));
        let stream = guard.0.as_mut().ok_or(())?;
        let stamped = self.stamped.load(Ordering::Relaxed);
        // The header and the update's shared payload: no copy per attendee.
        let mut chunks = update.stream_chunks(stamped);
        stream.write_shared(&mut chunks).await.map_err(|_| ())?;
        let mut stream = guard.0.take().ok_or(())?;
        stream.finish();
        self.picker.sent(update.seq);
        let len = update.stream_len(stamped) as u64;
        self.bytes_sent += len;
        self.metrics.bytes_sent.inc_by(len);
        self.metrics
            .update_latency_seconds
            .observe(update.captured_at.elapsed().as_secs_f64());
        Ok(())
    }
}
