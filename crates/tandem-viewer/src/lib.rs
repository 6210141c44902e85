//! The attendee side: connect to a node with a connection string, say hello,
//! decode every graphics update, follow control messages, and optionally type
//! text once granted interactive control. Headless: the last frame can be
//! written as PNG. (A windowed front end builds on the same client.)

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tandem_codec::{Decoder, EncodedUpdate, Frame};
use tandem_proto::{
    ClientMessage, ConnectionString, ControlLevel, CursorPosition, CursorShape, DisconnectReason,
    Hello, InputEvent, RejectReason, ServerMessage, UniStream, Welcome, MAX_UPDATE_BYTES,
    PROTOCOL_VERSION,
};
use tandem_transport::{write_message, MessageReader, TransportConfig, TransportError};
use thiserror::Error;

/// Graphics updates the node may have in flight to this viewer at once.
pub const VIEWER_MAX_OPEN_UPDATES: u32 = 8;

/// What the viewer should do.
#[derive(Clone, Debug)]
pub struct ViewerOptions {
    /// Where and what to join.
    pub ticket: ConnectionString,
    /// Remote name shown to the sharer.
    pub name: String,
    /// The invitation's password.
    pub password: String,
    /// Stop after this many graphics updates.
    pub frames: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Ask for this control level after joining.
    pub request_control: Option<ControlLevel>,
    /// Type this text once interactive.
    pub type_text: Option<String>,
    /// Diagnostics: after this many updates, stop reading for this long.
    pub stall: Option<(u64, Duration)>,
    /// Diagnostics: send these input events right after joining, whatever
    /// the control level (the node drops input from non-interactive attendees).
    pub send_input: Vec<InputEvent>,
    /// Leave (saying `Bye`) once this becomes `true`.
    pub stop: Option<tokio::sync::watch::Receiver<bool>>,
}

/// Something worth one line to the user.
#[derive(Clone, Debug)]
pub enum ViewerEvent {
    /// Joined.
    Connected {
        /// Node address used.
        addr: SocketAddr,
        /// The node's answer.
        welcome: Welcome,
    },
    /// A notice from the node (level change, pause, ...), as one line.
    Notice(String),
    /// The pointer moved, changed shape or was shown or hidden.
    Cursor {
        /// Hot spot, in frame coordinates.
        x: i32,
        /// Hot spot, in frame coordinates.
        y: i32,
        /// Whether it is shown.
        visible: bool,
        /// Id of its shape (see [`ViewerOutcome::cursor_shapes`]).
        shape: u32,
    },
    /// A graphics update was applied.
    Update {
        /// Its sequence number.
        seq: u64,
        /// The state it applied to (0: a key frame).
        base_seq: u64,
        /// Size of the frame it produced.
        width: u32,
        /// Size of the frame it produced.
        height: u32,
        /// Whether it was a catch-up (self-contained, folding several updates).
        catch_up: bool,
    },
}

/// How the viewing ended, and what it saw.
#[derive(Debug, Default)]
pub struct ViewerOutcome {
    /// The last decoded frame.
    pub frame: Option<Frame>,
    /// Graphics updates applied.
    pub updates: u64,
    /// Of which key frames.
    pub key_frames: u64,
    /// Of which catch-ups (partial, self-contained).
    pub catch_ups: u64,
    /// Sequence number of the last update.
    pub last_seq: u64,
    /// Set when the node ended the connection.
    pub disconnected: Option<(DisconnectReason, String)>,
    /// The newest pointer position received, if any.
    pub cursor: Option<CursorPosition>,
    /// Pointer positions received (datagrams applied in order).
    pub cursor_moves: u64,
    /// Every pointer image received, by id.
    pub cursor_shapes: std::collections::BTreeMap<u32, CursorShape>,
}

/// Why viewing failed.
#[derive(Debug, Error)]
pub enum ViewerError {
    /// The node refused the join.
    #[error("{message}")]
    Rejected {
        /// Why.
        reason: RejectReason,
        /// The node's line.
        message: String,
    },
    /// The certificate does not match the connection string.
    #[error("the node's certificate fingerprint {found} does not match the connection string's {expected}: the ticket is for another node, or someone is in between")]
    FingerprintMismatch {
        /// From the ticket.
        expected: String,
        /// Presented.
        found: String,
    },
    /// No address in the connection string answered.
    #[error("cannot reach the node: {0}")]
    Unreachable(String),
    /// The node broke the protocol or sent undecodable graphics.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The connection failed after joining.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// Writing the snapshot failed.
    #[error("cannot write {path}: {detail}")]
    Snapshot {
        /// File.
        path: String,
        /// Why.
        detail: String,
    },
}

/// Joins and views until a stop condition, the node's goodbye or an error.
pub async fn run(
    options: ViewerOptions,
    mut on_event: impl FnMut(ViewerEvent),
) -> Result<ViewerOutcome, ViewerError> {
    let config = TransportConfig {
        // Graphics are read one stream at a time; a small allowance of open
        // streams makes a slow reader push back on the node (which then
        // coalesces updates) instead of piling up hundreds of streams here.
        max_concurrent_uni_streams: VIEWER_MAX_OPEN_UPDATES,
        ..TransportConfig::default()
    };
    let endpoint = tandem_transport::client_endpoint(SocketAddr::from(([0, 0, 0, 0], 0)), &config)
        .map_err(|e| ViewerError::Unreachable(e.to_string()))?;
    let (conn, addr) = connect_any(&endpoint, &options.ticket, &config).await?;
    let result = view(&conn, addr, &options, &mut on_event).await;
    conn.close(0u32.into(), b"bye");
    // Let the close reach the node.
    let _ = tokio::time::timeout(Duration::from_millis(300), endpoint.wait_idle()).await;
    result
}

async fn connect_any(
    endpoint: &quinn::Endpoint,
    ticket: &ConnectionString,
    config: &TransportConfig,
) -> Result<(quinn::Connection, SocketAddr), ViewerError> {
    let mut failures = Vec::new();
    let mut mismatch = None;
    for node in &ticket.addrs {
        let resolved = match tokio::net::lookup_host((node.host.as_str(), node.port)).await {
            Ok(mut addrs) => addrs.next(),
            Err(e) => {
                failures.push(format!("{node}: {e}"));
                continue;
            }
        };
        let Some(addr) = resolved else {
            failures.push(format!("{node}: no address"));
            continue;
        };
        match tandem_transport::connect_with(endpoint, addr, ticket.fingerprint, config).await {
            Ok(conn) => return Ok((conn, addr)),
            Err(TransportError::FingerprintMismatch { expected, found }) => {
                mismatch = Some(ViewerError::FingerprintMismatch {
                    expected: expected.to_string(),
                    found: found.to_string(),
                });
            }
            Err(e) => failures.push(format!("{node}: {e}")),
        }
    }
    Err(mismatch.unwrap_or_else(|| ViewerError::Unreachable(failures.join("; "))))
}

fn lost(e: impl std::fmt::Display) -> ViewerError {
    ViewerError::ConnectionLost(e.to_string())
}

async fn view(
    conn: &quinn::Connection,
    addr: SocketAddr,
    options: &ViewerOptions,
    on_event: &mut impl FnMut(ViewerEvent),
) -> Result<ViewerOutcome, ViewerError> {
    let (mut control_tx, control_rx) = conn.open_bi().await.map_err(lost)?;
    let mut control = MessageReader::new(control_rx);
    let hello = Hello {
        version: PROTOCOL_VERSION,
        session: options.ticket.session.clone(),
        invitation: options.ticket.invitation.clone(),
        name: options.name.clone(),
        password: options.password.clone(),
    };
    write_message(&mut control_tx, &ClientMessage::Hello(hello))
        .await
        .map_err(lost)?;
    let welcome = match control.next::<ServerMessage>().await {
        Ok(Some(ServerMessage::Welcome(w))) => w,
        Ok(Some(ServerMessage::Rejected { reason, message })) => {
            return Err(ViewerError::Rejected { reason, message })
        }
        Ok(Some(other)) => {
            return Err(ViewerError::Protocol(format!(
                "expected welcome, got {other:?}"
            )))
        }
        Ok(None) => return Err(lost("the node closed the control stream")),
        Err(e) => return Err(lost(e)),
    };
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
        tokio::select! {
            _ = tokio::time::sleep_until(sleep_until), if deadline.is_some() => break,
            _ = wait_stop(&mut stop) => break,
            stream = conn.accept_uni() => {
                let mut stream = stream.map_err(lost)?;
                let bytes = match stream.read_to_end(MAX_UPDATE_BYTES + 1).await {
                    Ok(bytes) => bytes,
                    // The node abandoned this update (it is ending the
                    // connection): its Bye follows on the control stream.
                    Err(quinn::ReadToEndError::Read(quinn::ReadError::Reset(_))) => continue,
                    Err(e) => return Err(lost(e)),
                };
                let event = apply_update(&mut decoder, &bytes, &mut outcome)?;
                on_event(event);
            }
            datagram = conn.read_datagram() => {
                let datagram = datagram.map_err(lost)?;
                let pos = CursorPosition::from_datagram(&datagram)
                    .map_err(|e| ViewerError::Protocol(format!("datagram: {e}")))?;
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
                        let line = if message.is_empty() { reason.to_string() } else { format!("{reason}: {message}") };
                        on_event(ViewerEvent::Notice(format!("disconnected: {line}")));
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
        let _ = write_message(
            &mut control_tx,
            &ClientMessage::Bye {
                reason: "done".into(),
            },
        )
        .await;
        let _ = control_tx.finish();
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

fn apply_update(
    decoder: &mut Decoder,
    bytes: &[u8],
    outcome: &mut ViewerOutcome,
) -> Result<ViewerEvent, ViewerError> {
    let UniStream::Graphics(payload) =
        tandem_proto::parse_uni_stream(bytes).map_err(|e| ViewerError::Protocol(e.to_string()))?;
    let update =
        EncodedUpdate::from_bytes(payload).map_err(|e| ViewerError::Protocol(e.to_string()))?;
    decoder
        .apply(&update)
        .map_err(|e| ViewerError::Protocol(format!("update {}: {e}", update.seq)))?;
    outcome.updates += 1;
    let catch_up =
        !update.is_key_frame() && update.is_self_contained() && update.base_seq + 1 != update.seq;
    if update.is_key_frame() {
        outcome.key_frames += 1;
    } else if catch_up {
        outcome.catch_ups += 1;
    }
    outcome.last_seq = update.seq;
    Ok(ViewerEvent::Update {
        seq: update.seq,
        base_seq: update.base_seq,
        width: update.width,
        height: update.height,
        catch_up,
    })
}

/// X keysym of a character: Latin-1 maps to itself, control keys to their
/// keysyms, anything else to the Unicode keysym range.
pub fn keysym_of(c: char) -> u32 {
    match c {
        '\n' | '\r' => 0xff0d,
        '\t' => 0xff09,
        '\u{8}' => 0xff08,
        '\u{1b}' => 0xff1b,
        ' '..='~' | '\u{a0}'..='\u{ff}' => c as u32,
        other => 0x0100_0000 + other as u32,
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

/// Writes a frame as an RGBA PNG.
pub fn write_png(frame: &Frame, path: &Path) -> Result<(), ViewerError> {
    let err = |detail: String| ViewerError::Snapshot {
        path: path.display().to_string(),
        detail,
    };
    let file = std::fs::File::create(path).map_err(|e| err(e.to_string()))?;
    let mut encoder =
        png::Encoder::new(std::io::BufWriter::new(file), frame.width(), frame.height());
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| err(e.to_string()))?;
    writer
        .write_image_data(&frame.to_rgba8())
        .map_err(|e| err(e.to_string()))?;
    writer.finish().map_err(|e| err(e.to_string()))
}

/// Reads an RGBA or RGB 8-bit PNG into a frame.
pub fn read_png(path: &Path) -> Result<Frame, ViewerError> {
    let err = |detail: String| ViewerError::Snapshot {
        path: path.display().to_string(),
        detail,
    };
    let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .map_err(|e| err(e.to_string()))?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| err(e.to_string()))?;
    let data = &buf[..info.buffer_size()];
    let rgba: Vec<u8> = match info.color_type {
        png::ColorType::Rgba => data.to_vec(),
        png::ColorType::Rgb => data
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        other => return Err(err(format!("unsupported colour type {other:?}"))),
    };
    Frame::from_rgba8(info.width, info.height, &rgba).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keysyms() {
        assert_eq!(keysym_of('a'), 0x61);
        assert_eq!(keysym_of('>'), 0x3e);
        assert_eq!(keysym_of('\n'), 0xff0d);
        assert_eq!(keysym_of('é'), 0xe9);
        assert_eq!(keysym_of('€'), 0x0100_20ac);
    }
}
