//! Reaching a node and joining its session, and the per-connection steps
//! both front ends share: try an address with the pinned fingerprint, say
//! hello, read a graphics stream (what is read is decoded and followed by
//! the [`state`](crate::state) machine).

use std::net::SocketAddr;
use std::time::Duration;

use tandem_proto::{
    ClientMessage, ConnectionString, Hello, NodeAddr, ServerMessage, Welcome, MAX_UPDATE_BYTES,
    PROTOCOL_VERSION,
};
use tandem_transport::{write_message, MessageReader, TransportConfig, TransportError};

use crate::{ViewerError, VIEWER_MAX_OPEN_UPDATES};

/// Transport settings of a viewer: few open graphics streams, so that a slow
/// reader pushes back on the node (which then coalesces updates into
/// catch-ups) instead of piling up hundreds of streams here.
pub(crate) fn viewer_transport() -> TransportConfig {
    TransportConfig {
        max_concurrent_uni_streams: VIEWER_MAX_OPEN_UPDATES,
        ..TransportConfig::default()
    }
}

/// A client endpoint on an ephemeral port.
pub(crate) fn endpoint(config: &TransportConfig) -> Result<quinn::Endpoint, ViewerError> {
    tandem_transport::client_endpoint(SocketAddr::from(([0, 0, 0, 0], 0)), config)
        .map_err(|e| ViewerError::Unreachable(e.to_string()))
}

/// Connects to one address of a ticket. A fingerprint mismatch is reported
/// as [`ViewerError::FingerprintMismatch`], anything else as
/// [`ViewerError::Unreachable`] naming the address.
pub(crate) async fn connect_one(
    endpoint: &quinn::Endpoint,
    node: &NodeAddr,
    ticket: &ConnectionString,
    config: &TransportConfig,
) -> Result<(quinn::Connection, SocketAddr), ViewerError> {
    let resolved = match tokio::net::lookup_host((node.host.as_str(), node.port)).await {
        Ok(mut addrs) => addrs.next(),
        Err(e) => return Err(ViewerError::Unreachable(format!("{node}: {e}"))),
    };
    let Some(addr) = resolved else {
        return Err(ViewerError::Unreachable(format!("{node}: no address")));
    };
    match tandem_transport::connect_with(endpoint, addr, ticket.fingerprint, config).await {
        Ok(conn) => Ok((conn, addr)),
        Err(TransportError::FingerprintMismatch { expected, found }) => {
            Err(ViewerError::FingerprintMismatch {
                expected: expected.to_string(),
                found: found.to_string(),
            })
        }
        Err(e) => Err(ViewerError::Unreachable(format!("{node}: {e}"))),
    }
}

/// Tries the ticket's addresses in order; the first that answers wins.
/// When none does, a fingerprint mismatch (the more telling failure) is
/// reported in preference to the list of unreachable addresses.
pub(crate) async fn connect_any(
    endpoint: &quinn::Endpoint,
    ticket: &ConnectionString,
    config: &TransportConfig,
) -> Result<(quinn::Connection, SocketAddr), ViewerError> {
    let mut failures = Vec::new();
    let mut mismatch = None;
    for node in &ticket.addrs {
        match connect_one(endpoint, node, ticket, config).await {
            Ok(found) => return Ok(found),
            Err(e @ ViewerError::FingerprintMismatch { .. }) => mismatch = Some(e),
            Err(ViewerError::Unreachable(line)) => failures.push(line),
            Err(other) => failures.push(other.to_string()),
        }
    }
    Err(mismatch.unwrap_or_else(|| ViewerError::Unreachable(failures.join("; "))))
}

pub(crate) fn lost(e: impl std::fmt::Display) -> ViewerError {
    ViewerError::ConnectionLost(e.to_string())
}

/// A connection whose hello was accepted.
pub(crate) struct Joined {
    /// Client half of the control stream.
    pub control_tx: quinn::SendStream,
    /// Server half of the control stream.
    pub control: MessageReader,
    /// The node's answer.
    pub welcome: Welcome,
}

/// Opens the control stream and says hello; returns once the node welcomed
/// or refused the attendee.
pub(crate) async fn join(
    conn: &quinn::Connection,
    ticket: &ConnectionString,
    name: &str,
    password: &str,
) -> Result<Joined, ViewerError> {
    let (mut control_tx, control_rx) = conn.open_bi().await.map_err(lost)?;
    let mut control = MessageReader::new(control_rx);
    let hello = Hello {
        version: PROTOCOL_VERSION,
        session: ticket.session.clone(),
        invitation: ticket.invitation.clone(),
        name: name.to_owned(),
        password: password.to_owned(),
    };
    write_message(&mut control_tx, &ClientMessage::Hello(hello))
        .await
        .map_err(lost)?;
    let welcome = match control.next::<ServerMessage>().await {
        Ok(Some(ServerMessage::Welcome(w))) => w,
        Ok(Some(ServerMessage::Rejected { reason, message })) => {
            return Err(ViewerError::Rejected {
                reason,
                message: crate::printable(&message),
            })
        }
        Ok(Some(other)) => {
            return Err(ViewerError::Protocol(format!(
                "expected welcome, got {other:?}"
            )))
        }
        Ok(None) => return Err(lost("the node closed the control stream")),
        Err(e) => return Err(lost(e)),
    };
    Ok(Joined {
        control_tx,
        control,
        welcome,
    })
}

/// Reads one graphics stream to its end. `Ok(None)`: the node abandoned this
/// update (it is ending the connection; its `Bye` follows on the control stream).
pub(crate) async fn read_update(
    stream: &mut quinn::RecvStream,
) -> Result<Option<Vec<u8>>, ViewerError> {
    match stream.read_to_end(MAX_UPDATE_BYTES + 1).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(quinn::ReadToEndError::Read(quinn::ReadError::Reset(_))) => Ok(None),
        Err(e) => Err(lost(e)),
    }
}

/// Reads the capture time after a stamped graphics stream's kind byte.
/// `Ok(None)`: the node abandoned this update before the stamp was whole.
pub(crate) async fn read_stamp(stream: &mut quinn::RecvStream) -> Result<Option<u64>, ViewerError> {
    let mut stamp = [0u8; tandem_proto::STAMPED_GRAPHICS_HEADER_LEN - 1];
    match stream.read_exact(&mut stamp).await {
        Ok(()) => Ok(Some(u64::from_be_bytes(stamp))),
        Err(quinn::ReadExactError::ReadError(quinn::ReadError::Reset(_))) => Ok(None),
        Err(quinn::ReadExactError::FinishedEarly(len)) => Err(ViewerError::Protocol(
            tandem_proto::ProtoError::TruncatedStamp { len }.to_string(),
        )),
        Err(e) => Err(lost(e)),
    }
}

/// Says goodbye on the control stream and finishes it (best effort: the
/// connection may already be gone).
pub(crate) async fn say_bye(control_tx: &mut quinn::SendStream) {
    let _ = write_message(
        control_tx,
        &ClientMessage::Bye {
            reason: "done".into(),
        },
    )
    .await;
    let _ = control_tx.finish();
}

/// Closes the connection and lets the close reach the node.
pub(crate) async fn close(endpoint: &quinn::Endpoint, conn: &quinn::Connection) {
    conn.close(0u32.into(), b"bye");
    let _ = tokio::time::timeout(Duration::from_millis(300), endpoint.wait_idle()).await;
}
