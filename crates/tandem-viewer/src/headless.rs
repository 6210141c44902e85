//! The headless viewer: join, decode every update, follow control messages,
//! optionally type text once interactive, and stop on a frame count, a
//! deadline, a stop signal or the node's goodbye. Scripts and tests use it
//! through `tandem view --headless`; it never reconnects.

use std::time::Duration;

use tandem_codec::Decoder;
use tandem_proto::{ClientMessage, ControlLevel, InputEvent, ServerMessage};
use tandem_transport::{write_message, TransportError};

use crate::connection::{self, lost};
use crate::{keysym_of, ViewerError, ViewerEvent, ViewerOptions, ViewerOutcome};

/// Joins and views until a stop condition, the node's goodbye or an error.
pub async fn run(
    options: ViewerOptions,
    mut on_event: impl FnMut(ViewerEvent),
) -> Result<ViewerOutcome, ViewerError> {
    let config = connection::viewer_transport();
    let endpoint = connection::endpoint(&config)?;
    let (conn, addr) = connection::connect_any(&endpoint, &options.ticket, &config).await?;
    let result = view(&conn, addr, &options, &mut on_event).await;
    connection::close(&endpoint, &conn).await;
    result
}

async fn view(
    conn: &quinn::Connection,
    addr: std::net::SocketAddr,
    options: &ViewerOptions,
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
            stream = conn.accept_uni() => {
                let mut stream = stream.map_err(lost)?;
                let Some(bytes) = connection::read_update(&mut stream).await? else {
                    continue;
                };
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
