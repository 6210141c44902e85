//! WebTransport sessions on the node's QUIC port: a connection that
//! negotiated `h3` does the HTTP/3 handshake (web-transport-quinn), must
//! ask for [`WEB_PATH`], and is then served as an attendee connection.

use std::sync::Arc;

use tandem_transport::{negotiated_alpn, H3_ALPN};

use super::WEB_PATH;
use crate::connection::{serve_quic, ConnectionContext, HELLO_TIMEOUT};

/// Serves one incoming QUIC connection to its end: a browser's (ALPN `h3`)
/// when `browsers` is set, else a native viewer's.
pub async fn serve_incoming(
    incoming: quinn::Incoming,
    ctx: Arc<ConnectionContext>,
    browsers: Option<Arc<super::link::Bridge>>,
) {
    let peer = incoming.remote_address();
    let conn = match incoming.await {
        Ok(c) => c,
        Err(error) => {
            tracing::debug!(%peer, %error, "handshake failed");
            return;
        }
    };
    match browsers {
        Some(bridge) if negotiated_alpn(&conn).as_deref() == Some(H3_ALPN) => {
            serve_browser(conn, bridge).await;
        }
        _ => serve_quic(conn, ctx).await,
    }
}

/// The HTTP/3 and WebTransport handshakes, then the attendee session.
async fn serve_browser(conn: quinn::Connection, bridge: Arc<super::link::Bridge>) {
    let peer = conn.remote_address();
    let request = match tokio::time::timeout(
        HELLO_TIMEOUT,
        web_transport_quinn::Request::accept(conn.clone()),
    )
    .await
    {
        Ok(Ok(request)) => request,
        Ok(Err(error)) => {
            tracing::info!(%peer, %error, "webtransport handshake failed");
            return;
        }
        Err(_) => {
            conn.close(quinn::VarInt::from_u32(2), b"no webtransport request");
            return;
        }
    };
    if request.url.path() != WEB_PATH {
        tracing::info!(%peer, path = request.url.path(), "webtransport request for an unknown path");
        let _ = request
            .reject(web_transport_quinn::http::StatusCode::NOT_FOUND)
            .await;
        return;
    }
    let session = match request.ok().await {
        Ok(session) => session,
        Err(error) => {
            tracing::info!(%peer, %error, "webtransport session not established");
            return;
        }
    };
    tracing::debug!(%peer, "webtransport session established");
    super::link::serve(session, peer, bridge).await;
}
