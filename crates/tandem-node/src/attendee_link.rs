//! What the attendee-serving path needs from one attendee connection, as a
//! trait: [`AttendeeLink`], implemented here for a QUIC connection
//! (`quinn::Connection`) and for an attendee relayed to this node through a
//! relay link ([`RelayedLink`]); other transports (a WebTransport session)
//! implement it in their own module. The typed close codes live here too.

use std::time::Duration;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tandem_proto::DisconnectReason;
use tandem_transport::write_message;
use tokio::sync::mpsc;

/// Run once when an attendee is welcomed: the direct QUIC path gives the
/// connection's pre-authentication place back.
pub type OnWelcome = Box<dyn FnOnce() + Send>;

/// Once the manager has removed an attendee, time its `Bye` has to be
/// written before the connection is closed anyway (a jammed control stream
/// must not keep a disconnected attendee receiving graphics).
pub const BYE_GRACE: Duration = Duration::from_secs(2);

/// After writing a `Bye`, time the client has to read it and close the
/// connection itself before the node closes it (closing first would discard
/// a `Bye` the client has received but not read yet).
pub const BYE_DELIVERY: Duration = Duration::from_secs(3);

/// QUIC application error codes the node closes connections and streams with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum CloseCode {
    /// Normal end (bye, kick, shutdown, a relayed attendee leaving).
    Normal = 0,
    /// The join was rejected.
    Rejected = 1,
    /// The peer broke the protocol.
    Protocol = 2,
    /// A relay link refused for a wrong cluster secret.
    AuthFailed = 10,
}

impl CloseCode {
    /// The code on the wire.
    pub fn code(self) -> u32 {
        self as u32
    }
}

impl From<CloseCode> for quinn::VarInt {
    fn from(code: CloseCode) -> Self {
        quinn::VarInt::from_u32(code.code())
    }
}

/// A stream the node writes: graphics, channel data, the control stream's sending half.
pub trait LinkSend: tokio::io::AsyncWrite + Unpin + Send + 'static {
    /// Ends the stream cleanly after what was written.
    fn finish(&mut self);
    /// Abandons the stream: the peer sees a reset, never a truncated message.
    fn reset(&mut self, code: CloseCode);
    /// Higher goes first (channel priorities).
    fn set_priority(&self, priority: i32);
    /// Writes `chunks` in order. A transport that can keep a shared buffer
    /// by reference (quinn) does so: one update's payload is then held
    /// once for every attendee instead of copied into each stream. This
    /// default copies, as `write_all` does.
    fn write_shared(
        &mut self,
        chunks: &mut [bytes::Bytes],
    ) -> impl Future<Output = std::io::Result<()>> + Send {
        async move {
            for chunk in chunks.iter() {
                tokio::io::AsyncWriteExt::write_all(self, chunk).await?;
            }
            Ok(())
        }
    }
}

/// A stream the node reads: the control stream's receiving half, an attendee's channel stream.
pub trait LinkRecv: tokio::io::AsyncRead + Unpin + Send + 'static {
    /// Tells the peer to stop sending (a malformed stream).
    fn stop(&mut self, code: CloseCode);
}

/// What the serving path needs from one attendee connection. Cloning is
/// cheap (a handle).
pub trait AttendeeLink: Clone + Send + Sync + 'static {
    /// Streams the node writes.
    type Send: LinkSend;
    /// Streams the node reads.
    type Recv: LinkRecv;
    /// The control stream the attendee opens first (bidirectional).
    fn accept_control(&self) -> impl Future<Output = Option<(Self::Send, Self::Recv)>> + Send;
    /// A new node-to-attendee unidirectional stream (a graphics update, a channel).
    fn open_uni(&self) -> impl Future<Output = Option<Self::Send>> + Send;
    /// The next attendee-to-node unidirectional stream (channel data); `None` once closed.
    fn accept_uni(&self) -> impl Future<Output = Option<Self::Recv>> + Send;
    /// Sends one unreliable datagram (cursor positions); `false` if it was
    /// dropped (the peer takes none, too large, closed). Never blocks.
    fn send_datagram(&self, bytes: bytes::Bytes) -> bool;
    /// Closes the connection with a typed code and a short reason.
    fn close(&self, code: CloseCode, reason: &str);
    /// Resolves when the connection is closed, with why.
    fn closed(&self) -> impl Future<Output = DisconnectReason> + Send;
    /// Why it closed, if it has.
    fn close_reason(&self) -> Option<DisconnectReason>;
    /// The attendee's address as this node sees it.
    fn peer(&self) -> SocketAddr;
    /// The attendee was admitted: lift the limits its connection had before
    /// authentication (flow-control windows, stream counts, datagrams).
    fn admitted(&self) {}
    /// Whether this is an attendee relayed through another member: its
    /// graphics and pointer come from that relay's mirror (the serving path
    /// sends none), and the relay closes the attendee's connection.
    fn relayed(&self) -> bool {
        false
    }
}

/// Why a connection the node did not close ended: the attendee closed it,
/// or it stopped answering (timeout), or something broke.
pub fn closed_reason(error: &quinn::ConnectionError) -> DisconnectReason {
    match error {
        quinn::ConnectionError::TimedOut => DisconnectReason::Timeout,
        quinn::ConnectionError::ApplicationClosed(_)
        | quinn::ConnectionError::ConnectionClosed(_) => DisconnectReason::ByAttendee,
        _ => DisconnectReason::Error,
    }
}

impl LinkSend for quinn::SendStream {
    fn finish(&mut self) {
        let _ = quinn::SendStream::finish(self);
    }
    fn reset(&mut self, code: CloseCode) {
        let _ = quinn::SendStream::reset(self, code.into());
    }
    fn set_priority(&self, priority: i32) {
        let _ = quinn::SendStream::set_priority(self, priority);
    }
    async fn write_shared(&mut self, chunks: &mut [bytes::Bytes]) -> std::io::Result<()> {
        // quinn queues the `Bytes` themselves (a reference count each).
        quinn::SendStream::write_all_chunks(self, chunks)
            .await
            .map_err(std::io::Error::from)
    }
}

impl LinkRecv for quinn::RecvStream {
    fn stop(&mut self, code: CloseCode) {
        let _ = quinn::RecvStream::stop(self, code.into());
    }
}

impl AttendeeLink for quinn::Connection {
    type Send = quinn::SendStream;
    type Recv = quinn::RecvStream;

    async fn accept_control(&self) -> Option<(Self::Send, Self::Recv)> {
        self.accept_bi().await.ok()
    }
    async fn open_uni(&self) -> Option<Self::Send> {
        quinn::Connection::open_uni(self).await.ok()
    }
    async fn accept_uni(&self) -> Option<Self::Recv> {
        quinn::Connection::accept_uni(self).await.ok()
    }
    fn send_datagram(&self, bytes: bytes::Bytes) -> bool {
        self.max_datagram_size().is_some() && quinn::Connection::send_datagram(self, bytes).is_ok()
    }
    fn close(&self, code: CloseCode, reason: &str) {
        quinn::Connection::close(self, code.into(), reason.as_bytes());
    }
    async fn closed(&self) -> DisconnectReason {
        closed_reason(&quinn::Connection::closed(self).await)
    }
    fn close_reason(&self) -> Option<DisconnectReason> {
        quinn::Connection::close_reason(self).map(|e| closed_reason(&e))
    }
    fn peer(&self) -> SocketAddr {
        self.remote_address()
    }
    fn admitted(&self) {
        tandem_transport::admit(self);
    }
}

/// An attendee relayed to this node (the origin) through a relay link: its
/// control stream is a stream of the link, its channel streams travel as
/// link streams too (opened by either side, each starting with its route:
/// [`crate::cluster::link`]), and its graphics and pointer come from the
/// relay's mirror.
#[derive(Clone)]
pub struct RelayedLink {
    /// The relay link.
    pub(crate) conn: quinn::Connection,
    /// The relay's handle for this attendee, first on every stream opened for it.
    pub(crate) route: u64,
    /// The attendee's address as the relay saw it.
    pub(crate) peer: SocketAddr,
    /// Channel streams the relay opened for this attendee.
    pub(crate) incoming: Arc<tokio::sync::Mutex<mpsc::Receiver<quinn::RecvStream>>>,
}

impl AttendeeLink for RelayedLink {
    type Send = quinn::SendStream;
    type Recv = quinn::RecvStream;

    async fn accept_control(&self) -> Option<(Self::Send, Self::Recv)> {
        // Its control stream is the link stream it arrived on, already read.
        None
    }
    async fn open_uni(&self) -> Option<Self::Send> {
        open_attendee_stream(&self.conn, self.route).await
    }
    async fn accept_uni(&self) -> Option<Self::Recv> {
        self.incoming.lock().await.recv().await
    }
    fn send_datagram(&self, _: bytes::Bytes) -> bool {
        // The relay sends the pointer from its mirror.
        false
    }
    fn close(&self, _: CloseCode, _: &str) {
        // The relay closes the attendee's connection when the control
        // stream ends; the link itself serves others.
    }
    async fn closed(&self) -> DisconnectReason {
        closed_reason(&self.conn.closed().await)
    }
    fn close_reason(&self) -> Option<DisconnectReason> {
        self.conn.close_reason().map(|e| closed_reason(&e))
    }
    fn peer(&self) -> SocketAddr {
        self.peer
    }
    fn relayed(&self) -> bool {
        true
    }
}

/// First frame of each bidirectional stream the origin opens on a relay
/// link (the link's own requests are `cluster::link::LinkRequest`).
#[derive(Debug, Serialize, Deserialize)]
pub enum LinkPush {
    /// A channel stream for the relayed attendee `route`; its bytes follow.
    AttendeeStream {
        /// The relay's handle for the attendee.
        route: u64,
    },
}

/// Opens a stream to the relayed attendee `route` on `conn` (a channel
/// stream of the attendee's, carried by the relay to its connection).
pub async fn open_attendee_stream(
    conn: &quinn::Connection,
    route: u64,
) -> Option<quinn::SendStream> {
    let (mut tx, _rx) = conn.open_bi().await.ok()?;
    write_message(&mut tx, &LinkPush::AttendeeStream { route })
        .await
        .ok()?;
    Some(tx)
}
