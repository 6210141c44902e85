//! The headless viewer: join, decode every update, follow control messages,
//! optionally type text once interactive, and stop on a frame count, a
//! deadline, a stop signal or the node's goodbye. Scripts and tests use it
//! through `tandem view --headless`; it never reconnects.

use std::time::Duration;

use tandem_codec::Decoder;
use tandem_proto::{ClientMessage, ControlLevel, InputEvent, ServerMessage, STREAM_KIND_CHANNEL};
use tandem_transport::{write_message, TransportError};

use crate::channels::{self, ChannelLink, Outgoing};
use crate::connection::{self, lost};
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
    mut on_event: impl FnMut(ViewerEvent),
) -> Result<ViewerOutcome, ViewerError> {
    let config = connection::viewer_transport();
    let endpoint = connection::endpoint(&config)?;
    let (conn, addr) = connection::connect_any(&endpoint, &options.ticket, &config).await?;
    let result = view(&conn, addr, &options, link, &mut on_event).await;
    connection::close(&endpoint, &conn).await;
    result
}

async fn view(
    conn: &quinn::Connection,
    addr: std::net::SocketAddr,
    options: &ViewerOptions,
    link: Option<ChannelLink>,
    on_event: &mut impl FnMut(ViewerEvent),
) -> Result<ViewerOutcome, ViewerError> {
    let connection::Joined {
        mut control_tx,
        mut control,
        welcome,
    } = connection::join(conn, &options.ticket, &options.name, &options.password).await?;
    let mut level = welcome.control_level;
    on_event(ViewerEvent::Connected {
        addr,
        welcome: welcome.clone(),
    });
    if let Some(requested) = options.request_control {
        if requested != level {
            write_message(
                &mut control_tx,
                &ClientMessage::RequestControl { level: requested },
            )
            .await
            .map_err(lost)?;
        }
    }
    for event in &options.send_input {
        write_message(&mut control_tx, &ClientMessage::Input(*event))
            .await
            .map_err(lost)?;
    }
    let (channel_name, mut channel_out, channel_in) = match link {
        Some(ChannelLink {
            name,
            outgoing,
            incoming,
        }) => {
            write_message(
                &mut control_tx,
                &ClientMessage::ChannelJoin { name: name.clone() },
            )
            .await
            .map_err(lost)?;
            (Some(name), Some(outgoing), Some(incoming))
        }
        None => (None, None, None),
    };
    let mut joined: Option<Outgoing> = None;
    let mut stop = options.stop.clone();
    let mut pending_text = options.type_text.clone();
    let mut outcome = ViewerOutcome::default();
    let mut decoder = Decoder::new();
    let deadline = options.duration.map(|d| tokio::time::Instant::now() + d);
    let mut stalled = false;

    loop {
        if level == ControlLevel::Interactive {
            if let Some(text) = pending_text.take() {
                type_text(&mut control_tx, &text).await.map_err(lost)?;
                on_event(ViewerEvent::Notice(format!(
                    "typed {} characters",
                    text.chars().count()
                )));
            }
        }
        if options.frames.is_some_and(|n| outcome.updates >= n) {
            break;
        }
        if let Some((after, pause)) = options.stall {
            if !stalled && outcome.updates >= after {
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
                if let Some(out) = joined.as_mut() {
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
                if kind[0] == STREAM_KIND_CHANNEL {
                    let mut id = [0u8; 4];
                    stream.read_exact(&mut id).await.map_err(lost)?;
                    match &channel_in {
                        Some(tx) => {
                            tokio::spawn(channels::forward_incoming(stream, tx.clone()));
                        }
                        None => return Err(ViewerError::Protocol("a channel stream for no joined channel".into())),
                    }
                    continue;
                }
                let Some(rest) = connection::read_update(&mut stream).await? else {
                    continue;
                };
                let mut bytes = Vec::with_capacity(rest.len() + 1);
                bytes.push(kind[0]);
                bytes.extend_from_slice(&rest);
                let event = connection::apply_update(&mut decoder, &bytes, &mut outcome)?;
                on_event(event);
            }
            datagram = conn.read_datagram() => {
                let pos = connection::cursor_datagram(&datagram.map_err(lost)?)?;
                // Datagrams may arrive out of order: keep the newest.
                if outcome.cursor.is_none_or(|old| pos.seq > old.seq) {
                    outcome.cursor = Some(pos);
                    outcome.cursor_moves += 1;
                    on_event(ViewerEvent::Cursor { x: pos.x, y: pos.y, visible: pos.visible, shape: pos.shape });
                }
            }
            msg = control.next::<ServerMessage>() => {
                match msg {
                    Ok(Some(ServerMessage::Bye { reason, message })) => {
                        on_event(ViewerEvent::Notice(format!("disconnected: {}", connection::bye_line(reason, &message))));
                        outcome.disconnected = Some((reason, message));
                        break;
                    }
                    Ok(Some(ServerMessage::ControlLevelChanged { level: new })) => {
                        level = new;
                        on_event(ViewerEvent::Notice(format!("control level: {new}")));
                    }
                    Ok(Some(ServerMessage::ControlRequestAnswered { message, .. })) => {
                        on_event(ViewerEvent::Notice(format!("control request: {message}")));
                    }
                    Ok(Some(ServerMessage::GraphicsPaused)) => on_event(ViewerEvent::Notice("graphics paused by the sharer".into())),
                    Ok(Some(ServerMessage::GraphicsResumed)) => on_event(ViewerEvent::Notice("graphics resumed".into())),
                    Ok(Some(ServerMessage::SharedRectChanged { width, height })) => {
                        on_event(ViewerEvent::Notice(format!("shared area is now {width}x{height}")));
                    }
                    Ok(Some(ServerMessage::InputRefused { message })) => on_event(ViewerEvent::Notice(message)),
                    Ok(Some(ServerMessage::CursorShape(shape))) => {
                        shape.validate().map_err(|e| ViewerError::Protocol(e.to_string()))?;
                        outcome.cursor_shapes.insert(shape.id, shape);
                    }
                    Ok(Some(ServerMessage::ChannelJoined(info))) => {
                        info.validate().map_err(|e| ViewerError::Protocol(e.to_string()))?;
                        if channel_name.as_deref() != Some(info.name.as_str()) {
                            return Err(ViewerError::Protocol(format!("joined channel {} that was not asked for", info.name)));
                        }
                        on_event(ViewerEvent::Notice(format!("channel {} joined (access {})", info.name, info.access)));
                        joined = Some(Outgoing::new(info.id));
                    }
                    Ok(Some(ServerMessage::ChannelJoinRefused { name, message })) => {
                        return Err(ViewerError::Protocol(format!("cannot join channel {name}: {message}")));
                    }
                    Ok(Some(ServerMessage::ChannelAccessChanged { access, .. })) => {
                        on_event(ViewerEvent::Notice(format!("channel access: {access}")));
                    }
                    Ok(Some(ServerMessage::ChannelOverflow { .. })) => {
                        on_event(ViewerEvent::Notice("channel: messages dropped by the node (this viewer's queue was full)".into()));
                    }
                    Ok(Some(ServerMessage::ChannelWriteRefused { message, .. })) => {
                        on_event(ViewerEvent::Notice(format!("channel write refused: {message}")));
                    }
                    Ok(Some(other)) => return Err(ViewerError::Protocol(format!("unexpected {other:?}"))),
                    Ok(None) => return Err(lost("the node closed the control stream")),
                    Err(e) => return Err(lost(e)),
                }
            }
        }
    }
    if outcome.disconnected.is_none() {
        connection::say_bye(&mut control_tx).await;
    }
    outcome.frame = decoder.frame().cloned();
    Ok(outcome)
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
