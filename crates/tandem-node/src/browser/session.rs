//! WebTransport sessions on the node's QUIC port: a connection that
//! negotiated `h3` does the HTTP/3 handshake (web-transport-quinn), must
//! ask for [`WEB_PATH`], and is then served by the attendee-serving path
//! like any other connection ([`crate::connection::serve_attendee`]).

use std::sync::Arc;

use tandem_transport::{negotiated_alpn, H3_ALPN};

use super::link::BrowserLink;
use super::WEB_PATH;
use crate::attendee_link::CloseCode;
use crate::connection::{serve_attendee, ConnectionContext, OnWelcome, HELLO_TIMEOUT};

/// Whether a connection negotiated HTTP/3 (a browser's).
pub fn is_browser(conn: &quinn::Connection) -> bool {
    negotiated_alpn(conn).as_deref() == Some(H3_ALPN)
}

/// The HTTP/3 and WebTransport handshakes, then the attendee session.
pub async fn serve_browser(
    conn: quinn::Connection,
    ctx: Arc<ConnectionContext>,
    on_welcome: OnWelcome,
) {
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
            conn.close(CloseCode::Protocol.into(), b"no webtransport request");
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
    serve_attendee(BrowserLink { session, peer }, ctx, Some(on_welcome)).await;
}
