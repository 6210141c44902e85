//! A WebTransport session as an attendee connection: [`AttendeeLink`] for
//! web-transport-quinn's `Session` and its streams, so a browser attendee
//! goes through the same serving path as a native viewer (admission, the
//! attendee limit, control levels, latest-wins graphics, the pointer).

use std::net::SocketAddr;

use tandem_proto::DisconnectReason;
use web_transport_quinn::{RecvStream, SendStream, Session, SessionError};

use crate::attendee_link::{closed_reason, AttendeeLink, CloseCode, LinkRecv, LinkSend};

impl LinkSend for SendStream {
    fn finish(&mut self) {
        let _ = SendStream::finish(self);
    }
    fn reset(&mut self, code: CloseCode) {
        let _ = SendStream::reset(self, code.code());
    }
    fn set_priority(&self, priority: i32) {
        let _ = SendStream::set_priority(self, priority);
    }
}

impl LinkRecv for RecvStream {
    fn stop(&mut self, code: CloseCode) {
        let _ = RecvStream::stop(self, code.code());
    }
}

/// One browser attendee's WebTransport session.
#[derive(Clone)]
pub struct BrowserLink {
    /// The session.
    pub session: Session,
    /// The browser's address.
    pub peer: SocketAddr,
}

/// Why a session ended, in the serving path's terms.
fn reason(error: &SessionError) -> DisconnectReason {
    match error {
        SessionError::ConnectionError(e) => closed_reason(e),
        // The browser closed the session (or the page went away).
        SessionError::WebTransportError(_) => DisconnectReason::ByAttendee,
        SessionError::SendDatagramError(_) => DisconnectReason::Error,
    }
}

impl AttendeeLink for BrowserLink {
    type Send = SendStream;
    type Recv = RecvStream;

    async fn accept_control(&self) -> Option<(Self::Send, Self::Recv)> {
        self.session.accept_bi().await.ok()
    }
    async fn open_uni(&self) -> Option<Self::Send> {
        self.session.open_uni().await.ok()
    }
    async fn accept_uni(&self) -> Option<Self::Recv> {
        self.session.accept_uni().await.ok()
    }
    fn send_datagram(&self, bytes: bytes::Bytes) -> bool {
        self.session.send_datagram(bytes).is_ok()
    }
    fn close(&self, code: CloseCode, reason: &str) {
        self.session.close(code.code(), reason.as_bytes());
    }
    async fn closed(&self) -> DisconnectReason {
        reason(&self.session.closed().await)
    }
    fn close_reason(&self) -> Option<DisconnectReason> {
        self.session.close_reason().map(|e| reason(&e))
    }
    fn peer(&self) -> SocketAddr {
        self.peer
    }
}
