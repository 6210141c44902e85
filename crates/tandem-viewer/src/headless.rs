//! The headless viewer: join, decode every update, follow control messages,
//! optionally type text once interactive, and stop on a frame count, a
//! deadline, a stop signal or the node's goodbye. Scripts and tests use it
//! through `tandem view --headless`; it never reconnects.

use std::time::Duration;

use tandem_proto::{
    ClientMessage, ControlLevel, InputEvent, ServerMessage, STREAM_KIND_CHANNEL,
    STREAM_KIND_GRAPHICS, STREAM_KIND_STAMPED_GRAPHICS,
};
use tandem_transport::{write_message, TransportError};

use crate::channels::{self, ChannelLink, Outgoing};
use crate::connection::{self, lost};
use crate::latency::{now_unix_us, LatencyStats};
use crate::state::{Effect, ViewerCore, ViewerLimits};
use crate::{keysym_of, ViewerError, ViewerEvent, ViewerOptions, ViewerOutcome};

/// Joins and views until a stop condition, the node's goodbye or an error.
pub async fn run(
    options: ViewerOptions,
    on_event: impl FnMut(ViewerEvent),
) -> Result<ViewerOutcome, ViewerError> {
    run_with_channel(options, None, on_event).await
}

/// Like [`run`], and also joins a virtual channel: `link.outgoing` is sent
/// to the sharer, the sharer's messages go to `link.incoming`. A channel the
/// node refuses to join ends viewing with [`ViewerError::Protocol`].
pub async fn run_with_channel(
    options: ViewerOptions,
    link: Option<ChannelLink>,
    on_event: impl FnMut(ViewerEvent),
) -> Result<ViewerOutcome, ViewerError> {
    run_with_limits(options, link, ViewerLimits::default(), on_event).await
}

/// Like [`run_with_channel`], with what the viewer accepts from the node.
pub async fn run_with_limits(
    options: ViewerOptions,
    link: Option<ChannelLink>,
    limits: ViewerLimits,
    mut on_event: impl FnMut(ViewerEvent),
) -> Result<ViewerOutcome, ViewerError> {
    let config = connection::viewer_transport();
    let endpoint = connection::endpoint(&config)?;
    let (conn, addr) = connection::connect_any(&endpoint, &options.ticket, &config).await?;
    let result = view_to_end(&conn, addr, &options, link, limits, &mut on_event).await;
    connection::close(&endpoint, &conn).await;
    result
}

/// Like [`run_with_limits`] over a connection the node opens: waits for it
/// on `listener` (reverse connect), then joins the same way.
pub async fn run_listening(
    options: ViewerOptions,
    listener: &crate::reverse::ReverseListener,
    link: Option<ChannelLink>,
    limits: ViewerLimits,
    mut on_event: impl FnMut(ViewerEvent),
) -> Result<ViewerOutcome, ViewerError> {
    let (conn, addr) = listener.accept(&mut on_event).await?;
    let result = view_to_end(&conn, addr, &options, link, limits, &mut on_event).await;
    connection::close(listener.endpoint(), &conn).await;
    result
}

/// Views over an open connection until it ends; the outcome with its latency figures.
async fn view_to_end(
    conn: &quinn::Connection,
    addr: std::net::SocketAddr,
    options: &ViewerOptions,
    link: Option<ChannelLink>,
    limits: ViewerLimits,
    on_event: &mut impl FnMut(ViewerEvent),
) -> Result<ViewerOutcome, ViewerError> {
    let mut core = ViewerCore::new(limits);
    let mut latency = LatencyStats::new();
    view(conn, addr, options, link, &mut core, &mut latency, on_event).await?;
    let mut outcome = core.finish();
    outcome.latency = latency;
    Ok(outcome)
}

async fn view(
    conn: &quinn::Connection,
    addr: std::net::SocketAddr,
    options: &ViewerOptions,
    link: Option<ChannelLink>,
    core: &mut ViewerCore,
    latency: &mut LatencyStats,
    on_event: &mut impl FnMut(ViewerEvent),
) -> Result<(), ViewerError> {
    let connection::Joined {
        mut control_tx,
        mut control,
        welcome,
    } = connection::join(conn, &options.ticket, &options.name, &options.password).await?;
    if let Some(l) = &link {
        core.want_channel(&l.name);
    }
    let welcome = core.connected(&welcome)?;
    on_event(ViewerEvent::Connected { addr, welcome });
    if options.latency {
        write_message(&mut control_tx, &ClientMessage::StampGraphics)
            .await
            .map_err(lost)?;
    }
    if let Some(requested) = options.request_control {
        if requested != core.level() {
            write_message(
                &mut control_tx,
                &ClientMessage::RequestControl { level: requested },
            )
            .await
            .map_err(lost)?;
            for effect in core.requested(requested) {
                if let Effect::Show(line) = effect {
                    on_event(ViewerEvent::Notice(line));
                }
            }
        }
    }
    for event in &options.send_input {
        write_message(&mut control_tx, &ClientMessage::Input(*event))
            .await
            .map_err(lost)?;
    }
    let (mut channel_out, channel_in) = match link {
        Some(ChannelLink {
            name,
            outgoing,
            incoming,
        }) => {
            write_message(&mut control_tx, &ClientMessage::ChannelJoin { name })
                .await
                .map_err(lost)?;
            (Some(outgoing), Some(incoming))
        }
        None => (None, None),
    };
    let mut joined: Option<Outgoing> = None;
    let mut stop = options.stop.clone();
    let mut pending_text = options.type_text.clone();
    let mut hold_keys = options.hold_keys.clone();
    let deadline = options.duration.map(|d| tokio::time::Instant::now() + d);
    let mut stalled = false;

    loop {
        if core.level() == ControlLevel::Interactive {
            if let Some(text) = pending_text.take() {
                type_text(&mut control_tx, &text).await.map_err(lost)?;
                on_event(ViewerEvent::Notice(format!(
                    "typed {} characters",
                    text.chars().count()
                )));
            }
            for keysym in std::mem::take(&mut hold_keys) {
                let event = InputEvent::Key {
                    keysym,
                    pressed: true,
                };
                write_message(&mut control_tx, &ClientMessage::Input(event))
                    .await
                    .map_err(lost)?;
                on_event(ViewerEvent::Notice(format!("holding key 0x{keysym:x}")));
            }
        }
        let updates = core.outcome().updates;
        if options.frames.is_some_and(|n| updates >= n) {
            break;
        }
        if let Some((after, pause)) = options.stall {
            if !stalled && updates >= after {
                stalled = true;
                on_event(ViewerEvent::Notice(format!(
                    "stalling for {:.1} s",
                    pause.as_secs_f64()
                )));
                tokio::time::sleep(pause).await;
                on_event(ViewerEvent::Notice("reading again".into()));
            }
        }
        let sleep_until =
            deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        // Every branch below is cancel safe; reading a graphics stream to its
        // end happens in a branch's body, never raced against the others.
        tokio::select! {
            _ = tokio::time::sleep_until(sleep_until), if deadline.is_some() => break,
            _ = wait_stop(&mut stop) => break,
            Some(data) = async {
                match channel_out.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            }, if joined.is_some() => {
                // The clipboard goes out only while the viewer's own rule
                // allows it (`interactive`); on other channels the node judges.
                if let Some(why) = core.is_clipboard().then(|| core.clipboard_refusal()).flatten() {
                    on_event(ViewerEvent::Notice(format!("clipboard not sent: {why}")));
                } else if let Some(out) = joined.as_mut() {
                    out.send(conn, data).await?;
                }
            }
            stream = conn.accept_uni() => {
                let mut stream = stream.map_err(lost)?;
                let mut kind = [0u8; 1];
                match stream.read_exact(&mut kind).await {
                    Ok(()) => {}
                    // Abandoned before its first byte (the node is ending the connection).
                    Err(quinn::ReadExactError::ReadError(quinn::ReadError::Reset(_))) => continue,
                    Err(e) => return Err(lost(e)),
                }
                let mut stamp = None;
                match kind[0] {
                    STREAM_KIND_GRAPHICS => {}
                    STREAM_KIND_STAMPED_GRAPHICS => {
                        match connection::read_stamp(&mut stream).await? {
                            Some(captured) => stamp = Some(captured),
                            // Abandoned (the node is ending the connection).
                            None => continue,
                        }
                    }
                    STREAM_KIND_CHANNEL => {
                        let mut id = [0u8; 4];
                        stream.read_exact(&mut id).await.map_err(lost)?;
                        core.check_channel_stream(u32::from_be_bytes(id))?;
                        if let Some(tx) = &channel_in {
                            tokio::spawn(channels::forward_incoming(stream, tx.clone()));
                        }
                        continue;
                    }
                    other => return Err(ViewerError::Protocol(format!("unknown stream kind {other}"))),
                }
                let Some(payload) = connection::read_update(&mut stream).await? else {
                    continue;
                };
                let event = core.graphics(&payload)?;
                if let Some(captured) = stamp {
                    latency.record(captured, now_unix_us());
                }
                on_event(event);
            }
            datagram = conn.read_datagram() => {
                if let Some(pos) = core.datagram(&datagram.map_err(lost)?)? {
                    on_event(ViewerEvent::Cursor { x: pos.x, y: pos.y, visible: pos.visible, shape: pos.shape });
                }
            }
            msg = control.next::<ServerMessage>() => {
                let msg = match msg {
                    Ok(Some(msg)) => msg,
                    Ok(None) => return Err(lost("the node closed the control stream")),
                    Err(e) => return Err(lost(e)),
                };
                for effect in core.message(msg)? {
                    match effect {
                        Effect::Notice(line) | Effect::Show(line) => on_event(ViewerEvent::Notice(line)),
                        Effect::ChannelJoined(id) => joined = Some(Outgoing::new(id)),
                        Effect::ChannelRefused { name, message } => {
                            return Err(ViewerError::Protocol(format!("cannot join channel {name}: {message}")));
                        }
                        Effect::Bye { reason, message } => {
                            core.set_disconnected(reason, message);
                            return Ok(());
                        }
                        Effect::Level { .. }
                        | Effect::Answered { .. }
                        | Effect::Paused(_)
                        | Effect::Desktop(..)
                        | Effect::Shapes
                        | Effect::Access(_) => {}
                    }
                }
            }
        }
    }
    connection::say_bye(&mut control_tx).await;
    Ok(())
}

/// Resolves once `stop` turns `true`; never when there is no stop signal.
async fn wait_stop(stop: &mut Option<tokio::sync::watch::Receiver<bool>>) {
    match stop {
        Some(rx) => {
            if rx.wait_for(|s| *s).await.is_err() {
                // The sender is gone: no stop will ever come.
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

async fn type_text(control: &mut quinn::SendStream, text: &str) -> Result<(), TransportError> {
    for c in text.chars() {
        let keysym = keysym_of(c);
        for pressed in [true, false] {
            write_message(
                control,
                &ClientMessage::Input(InputEvent::Key { keysym, pressed }),
            )
            .await?;
        }
    }
    Ok(())
}
