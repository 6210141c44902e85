//! A WebTransport session as an attendee connection.
//!
//! Until the attendee-serving path is generic over its connection (the
//! session-core redesign), a browser session is accepted and then closed
//! with a clear reason.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::connection::ConnectionContext;

/// Serves one browser attendee to its end.
pub async fn serve(
    session: web_transport_quinn::Session,
    peer: SocketAddr,
    _ctx: Arc<ConnectionContext>,
) {
    tracing::info!(%peer, "browser attendees are not served by this build yet");
    session.close(2, b"browser attendees are not served by this build yet");
}
