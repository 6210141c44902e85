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

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use tandem_proto::{ClientMessage, DisconnectReason, Hello, ServerMessage};
use tandem_session::{Time, TokenBucket, CONTROL_REQUEST_RATE, INPUT_RATE};
use tandem_transport::{write_message, MessageReader};
use tokio::sync::watch;

pub use crate::attendee_link::{
    closed_reason, AttendeeLink, CloseCode, LinkSend, OnWelcome, BYE_DELIVERY, BYE_GRACE,
};
pub(crate) use crate::senders::{CursorSender, GraphicsSender};

use crate::attendee_manager::{
    Admitted, AttendeeCommand, AttendeeManager, FromAttendee, Join, Left,
};
use crate::channels::{AttendeeChannels, ChannelHub};
use crate::metrics::Metrics;

/// Time a client has to open its control stream and say hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

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
