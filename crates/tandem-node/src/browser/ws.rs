//! The WebSocket fallback for browser attendees on networks that drop UDP:
//! `GET /api/web/v1/ws` on the page's HTTP server upgrades to a WebSocket
//! that carries the same control and graphics framing as WebTransport,
//! multiplexed in binary messages, and [`WsLink`] makes it one more
//! [`AttendeeLink`] on the one serving path
//! ([`crate::connection::serve_attendee`]).
//!
//! Each binary message starts with a type byte:
//! - `0` data: stream id (u32 LE), bytes. Stream 0 is the control stream
//!   (both ways); the node's unidirectional streams (graphics updates,
//!   channels) get ids from 1 up, in the order it opens them;
//! - `1` fin / `2` reset: stream id (the stream ends / is abandoned);
//! - `3` datagram (node to page: pointer positions);
//! - `4` close (node to page): code (u32 LE), reason (UTF-8);
//! - `5` keep-alive (page to node, every 15 s).
//!
//! The page's own unidirectional streams (channel uploads: the clipboard)
//! have ids with the top bit set ([`PAGE_STREAM_BIT`]), from
//! `PAGE_STREAM_BIT + 1` up: the first data message with a new, higher id
//! opens one, fin ends it.
//!
//! The page may send only data and fin on stream 0 and on its own
//! streams, and keep-alives; anything else closes the link. Bounded: a page
//! message's size, its message rate, the control bytes and each page
//! stream's bytes queued towards the serving path (reading the socket
//! waits), the page streams open at once, the node's bytes queued towards
//! the socket (writers wait, datagrams are dropped), the open WebSockets,
//! and a page's silence.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::StreamExt;
use tandem_proto::DisconnectReason;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, watch};

use crate::attendee_link::{AttendeeLink, CloseCode, LinkRecv, LinkSend};

/// The WebSocket endpoint's path on the page's server.
pub const WS_PATH: &str = "/api/web/v1/ws";
/// Largest WebSocket message the page may send (control messages are small).
pub const MAX_PAGE_MESSAGE: usize = 64 * 1024;
/// Messages a page may send per second (input events are a few hundred).
pub const MAX_PAGE_RATE: u32 = 2000;
/// Largest data chunk the node puts in one message.
const MAX_CHUNK: usize = 64 * 1024;
/// Node bytes queued for the socket before writers wait.
const OUT_BUDGET: usize = 4 * 1024 * 1024;
/// Control-stream messages from the page queued before reading the socket pauses.
const CONTROL_QUEUE: usize = 64;
/// A page silent this long (no message, no keep-alive) is gone.
const PAGE_IDLE: Duration = Duration::from_secs(45);
/// Open WebSocket attendees at once.
pub const MAX_WEBSOCKETS: usize = 512;
/// The id bit of streams the page opens (the node's count up from 1 without it).
pub const PAGE_STREAM_BIT: u32 = 0x8000_0000;
/// Page streams open at once (the page opens one per channel it writes on).
pub const MAX_PAGE_STREAMS: usize = 8;
/// Messages of one page stream queued towards its reader before reading the socket pauses.
const PAGE_STREAM_QUEUE: usize = 16;

const T_DATA: u8 = 0;
const T_FIN: u8 = 1;
const T_RESET: u8 = 2;
const T_DATAGRAM: u8 = 3;
const T_CLOSE: u8 = 4;
const T_KEEPALIVE: u8 = 5;

/// What the socket writer sends next.
pub enum Out {
    /// One mux message (a binary WebSocket message).
    Message(Bytes),
    /// A pong for the page's ping.
    Pong(Bytes),
    /// The close frame; nothing follows.
    End,
}

struct Shared {
    out: mpsc::UnboundedSender<Out>,
    /// Bytes of `Message`s not yet taken by the socket writer.
    queued: AtomicUsize,
    /// Writers waiting for `queued` to fall under the budget.
    waiting: Mutex<Vec<Waker>>,
    next_stream: AtomicU32,
    control: Mutex<Option<mpsc::Receiver<Bytes>>>,
    /// Page streams just opened, for `accept_uni`.
    opened: mpsc::Sender<WsRecv>,
    accepted: tokio::sync::Mutex<mpsc::Receiver<WsRecv>>,
    closed: watch::Sender<Option<DisconnectReason>>,
    ended: AtomicBool,
    peer: SocketAddr,
}

impl Shared {
    fn is_closed(&self) -> bool {
        self.closed.borrow().is_some()
    }

    fn queue(&self, msg: Bytes) {
        if self.ended.load(Ordering::Acquire) {
            return;
        }
        self.queued.fetch_add(msg.len(), Ordering::AcqRel);
        let _ = self.out.send(Out::Message(msg));
    }

    fn over_budget(&self) -> bool {
        self.queued.load(Ordering::Acquire) > OUT_BUDGET
    }

    /// The socket writer took `n` bytes: wake the writers that waited.
    fn taken(&self, n: usize) {
        self.queued.fetch_sub(n, Ordering::AcqRel);
        if !self.over_budget() {
            let wakers = std::mem::take(&mut *self.waiting.lock().expect("waker list"));
            wakers.into_iter().for_each(Waker::wake);
        }
    }

    fn set_closed(&self, reason: DisconnectReason) {
        self.closed.send_if_modified(|r| {
            if r.is_some() {
                return false;
            }
            *r = Some(reason);
            true
        });
        // Closed writers see the error on their next poll.
        let wakers = std::mem::take(&mut *self.waiting.lock().expect("waker list"));
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Ends the socket after what is queued (a close message first when `why` is set).
    fn end(&self, why: Option<(CloseCode, &str)>) {
        if self.ended.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some((code, reason)) = why {
            let mut m = BytesMut::with_capacity(5 + reason.len());
            m.put_u8(T_CLOSE);
            m.put_u32_le(code.code());
            m.put_slice(&reason.as_bytes()[..reason.len().min(120)]);
            self.queued.fetch_add(m.len(), Ordering::AcqRel);
            let _ = self.out.send(Out::Message(m.freeze()));
        }
        let _ = self.out.send(Out::End);
    }
}

fn stream_message(kind: u8, id: u32, data: &[u8]) -> Bytes {
    let mut m = BytesMut::with_capacity(5 + data.len());
    m.put_u8(kind);
    m.put_u32_le(id);
    m.put_slice(data);
    m.freeze()
}

/// One browser attendee's WebSocket.
#[derive(Clone)]
pub struct WsLink(Arc<Shared>);

/// The page side of a new link: what the socket reader feeds and the writer drains.
pub struct WsEnds {
    /// Control bytes from the page, towards the serving path.
    pub control: mpsc::Sender<Bytes>,
    /// Messages towards the page.
    pub out: mpsc::UnboundedReceiver<Out>,
}

impl WsLink {
    /// A link for the page at `peer`.
    pub fn new(peer: SocketAddr) -> (WsLink, WsEnds) {
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let (control_tx, control_rx) = mpsc::channel(CONTROL_QUEUE);
        let (opened, accepted) = mpsc::channel(MAX_PAGE_STREAMS);
        let link = WsLink(Arc::new(Shared {
            out: out_tx,
            queued: AtomicUsize::new(0),
            waiting: Mutex::new(Vec::new()),
            next_stream: AtomicU32::new(1),
            control: Mutex::new(Some(control_rx)),
            opened,
            accepted: tokio::sync::Mutex::new(accepted),
            closed: watch::channel(None).0,
            ended: AtomicBool::new(false),
            peer,
        }));
        (
            link,
            WsEnds {
                control: control_tx,
                out: out_rx,
            },
        )
    }

    fn send_stream(&self, id: u32) -> WsSend {
        WsSend {
            link: self.0.clone(),
            id,
            done: false,
        }
    }
}

/// A stream the node writes, as data messages.
pub struct WsSend {
    link: Arc<Shared>,
    id: u32,
    done: bool,
}

impl AsyncWrite for WsSend {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.done || this.link.is_closed() {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if this.link.over_budget() {
            this.link
                .waiting
                .lock()
                .expect("waker list")
                .push(cx.waker().clone());
            // The writer may have drained meanwhile.
            if this.link.over_budget() {
                return Poll::Pending;
            }
        }
        let n = buf.len().min(MAX_CHUNK);
        this.link.queue(stream_message(T_DATA, this.id, &buf[..n]));
        Poll::Ready(Ok(n))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        LinkSend::finish(self.get_mut());
        Poll::Ready(Ok(()))
    }
}

impl LinkSend for WsSend {
    fn finish(&mut self) {
        if !std::mem::replace(&mut self.done, true) {
            self.link.queue(stream_message(T_FIN, self.id, &[]));
        }
    }
    fn reset(&mut self, _code: CloseCode) {
        if !std::mem::replace(&mut self.done, true) {
            self.link.queue(stream_message(T_RESET, self.id, &[]));
        }
    }
    /// One ordered socket: no priorities.
    fn set_priority(&self, _priority: i32) {}
}

impl Drop for WsSend {
    /// Like a QUIC stream, a dropped stream is finished.
    fn drop(&mut self) {
        self.finish();
    }
}

/// The receiving half of the control stream or of a page stream.
pub struct WsRecv {
    rx: mpsc::Receiver<Bytes>,
    buf: Bytes,
}

impl AsyncRead for WsRecv {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.buf.is_empty() {
            match this.rx.poll_recv(cx) {
                Poll::Ready(Some(b)) => this.buf = b,
                // The page finished the stream or the socket is gone: end of stream.
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = this.buf.len().min(out.remaining());
        out.put_slice(&this.buf[..n]);
        this.buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl LinkRecv for WsRecv {
    fn stop(&mut self, _code: CloseCode) {
        self.rx.close();
    }
}

impl AttendeeLink for WsLink {
    type Send = WsSend;
    type Recv = WsRecv;

    async fn accept_control(&self) -> Option<(Self::Send, Self::Recv)> {
        let rx = self.0.control.lock().expect("control receiver").take()?;
        Some((
            self.send_stream(0),
            WsRecv {
                rx,
                buf: Bytes::new(),
            },
        ))
    }
    async fn open_uni(&self) -> Option<Self::Send> {
        if self.0.is_closed() {
            return None;
        }
        let id = self.0.next_stream.fetch_add(1, Ordering::Relaxed);
        // Ids are u32 and never reused: 4 billion streams end the link.
        (id != 0).then(|| self.send_stream(id))
    }
    /// The page's next stream (a channel upload); `None` once the link is closed.
    async fn accept_uni(&self) -> Option<Self::Recv> {
        let mut closed = self.0.closed.subscribe();
        let mut accepted = self.0.accepted.lock().await;
        tokio::select! {
            r = accepted.recv() => r,
            _ = closed.wait_for(Option::is_some) => None,
        }
    }
    fn send_datagram(&self, bytes: Bytes) -> bool {
        if self.0.is_closed() || self.0.over_budget() {
            return false;
        }
        let mut m = BytesMut::with_capacity(1 + bytes.len());
        m.put_u8(T_DATAGRAM);
        m.put_slice(&bytes);
        self.0.queue(m.freeze());
        true
    }
    fn close(&self, code: CloseCode, reason: &str) {
        self.0.end(Some((code, reason)));
        // As for a QUIC connection this node closed.
        self.0.set_closed(DisconnectReason::Error);
    }
    async fn closed(&self) -> DisconnectReason {
        let mut rx = self.0.closed.subscribe();
        let reason = match rx.wait_for(Option::is_some).await {
            Ok(r) => r.unwrap_or(DisconnectReason::Error),
            Err(_) => DisconnectReason::Error,
        };
        reason
    }
    fn close_reason(&self) -> Option<DisconnectReason> {
        *self.0.closed.borrow()
    }
    fn peer(&self) -> SocketAddr {
        self.0.peer
    }
}

/// The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key` (RFC 6455).
pub fn accept_key(key: &str) -> String {
    const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("{key}{GUID}").as_bytes(),
    );
    base64(digest.as_ref())
}

fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                ABC[(n >> (18 - 6 * i)) as usize & 63] as char
            } else {
                '='
            });
        }
    }
    out
}

/// A WebSocket frame header for a server (unmasked) frame.
fn frame_header(opcode: u8, len: usize) -> BytesMut {
    let mut h = BytesMut::with_capacity(10 + len);
    h.put_u8(0x80 | opcode);
    if len < 126 {
        h.put_u8(len as u8);
    } else if len <= 0xffff {
        h.put_u8(126);
        h.put_u16(len as u16);
    } else {
        h.put_u8(127);
        h.put_u64(len as u64);
    }
    h
}

/// The socket writer: mux messages as binary frames, for the HTTP response body.
pub fn outgoing(
    link: WsLink,
    out: mpsc::UnboundedReceiver<Out>,
) -> impl futures::Stream<Item = Result<Bytes, io::Error>> + 'static {
    futures::stream::unfold((link, out, false), |(link, mut out, ended)| async move {
        if ended {
            return None;
        }
        let next = out.recv().await;
        let (frame, ended) = match next {
            Some(Out::Message(m)) => {
                link.0.taken(m.len());
                let mut f = frame_header(0x2, m.len());
                f.put_slice(&m);
                (f.freeze(), false)
            }
            Some(Out::Pong(p)) => {
                let mut f = frame_header(0xA, p.len());
                f.put_slice(&p);
                (f.freeze(), false)
            }
            Some(Out::End) | None => {
                let mut f = frame_header(0x8, 2);
                f.put_u16(1000);
                (f.freeze(), true)
            }
        };
        Some((Ok(frame), (link, out, ended)))
    })
}

/// Why the page's side of the socket broke the rules.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// A frame from the page was not masked.
    Unmasked,
    /// A message over [`MAX_PAGE_MESSAGE`].
    TooLarge,
    /// An opcode or sequence of frames RFC 6455 does not allow (or text).
    Bad(&'static str),
}

/// A complete frame from the page.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    /// FIN bit.
    pub fin: bool,
    /// Opcode.
    pub opcode: u8,
    /// Unmasked payload.
    pub payload: Bytes,
}

/// Takes one complete client frame off `buf`, if there is one.
pub fn parse_frame(buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    if b0 & 0x70 != 0 {
        return Err(FrameError::Bad("reserved bits set"));
    }
    if b1 & 0x80 == 0 {
        return Err(FrameError::Unmasked);
    }
    let (len, at) = match b1 & 0x7f {
        126 if buf.len() >= 4 => (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => (
            u64::from_be_bytes(buf[2..10].try_into().expect("8 bytes")),
            10,
        ),
        126 | 127 => return Ok(None),
        n => (u64::from(n), 2),
    };
    if len > MAX_PAGE_MESSAGE as u64 {
        return Err(FrameError::TooLarge);
    }
    let len = len as usize;
    if buf.len() < at + 4 + len {
        return Ok(None);
    }
    let mut frame = buf.split_to(at + 4 + len);
    let mask: [u8; 4] = frame[at..at + 4].try_into().expect("4 bytes");
    frame.advance(at + 4);
    for (i, b) in frame.iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
    Ok(Some(Frame {
        fin: b0 & 0x80 != 0,
        opcode: b0 & 0x0f,
        payload: frame.freeze(),
    }))
}

/// Reads the page's side of the socket until it ends, feeding the link.
pub async fn incoming<S>(mut payload: S, link: WsLink, ends_control: mpsc::Sender<Bytes>)
where
    S: futures::Stream<Item = Result<Bytes, actix_web::error::PayloadError>> + Unpin,
{
    let reason = read_page(&mut payload, &link, ends_control).await;
    match reason {
        Ok(()) => link.0.end(None),
        Err(why) => {
            tracing::info!(peer = %link.0.peer, why, "websocket attendee broke the protocol");
            link.0.end(Some((CloseCode::Protocol, why)));
        }
    }
    link.0.set_closed(match reason {
        Err("idle") => DisconnectReason::Timeout,
        Err(_) => DisconnectReason::Error,
        Ok(()) => DisconnectReason::ByAttendee,
    });
}

async fn read_page<S>(
    payload: &mut S,
    link: &WsLink,
    control: mpsc::Sender<Bytes>,
) -> Result<(), &'static str>
where
    S: futures::Stream<Item = Result<Bytes, actix_web::error::PayloadError>> + Unpin,
{
    let mut control = Some(control);
    let mut buf = BytesMut::new();
    let mut message = BytesMut::new();
    let mut in_message = false;
    let mut window = tokio::time::Instant::now();
    let mut count = 0u32;
    let mut closed = link.0.closed.subscribe();
    let mut uploads = PageStreams::default();
    loop {
        let chunk = tokio::select! {
            c = tokio::time::timeout(PAGE_IDLE, payload.next()) => c,
            // The node closed the link: stop reading.
            _ = closed.wait_for(Option::is_some) => return Ok(()),
        };
        let chunk = match chunk {
            Err(_) => return Err("idle"),
            Ok(None) | Ok(Some(Err(_))) => return Ok(()),
            Ok(Some(Ok(c))) => c,
        };
        if buf.len() + chunk.len() > 2 * MAX_PAGE_MESSAGE + 16 {
            return Err("message too large");
        }
        buf.extend_from_slice(&chunk);
        loop {
            let frame = match parse_frame(&mut buf) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(FrameError::Unmasked) => return Err("unmasked frame"),
                Err(FrameError::TooLarge) => return Err("message too large"),
                Err(FrameError::Bad(why)) => return Err(why),
            };
            match frame.opcode {
                0x8 => return Ok(()),
                0x9 => {
                    let _ = link.0.out.send(Out::Pong(frame.payload));
                    continue;
                }
                0xA => continue,
                0x2 if !in_message => {}
                0x0 if in_message => {}
                _ => return Err("unexpected websocket opcode"),
            }
            if message.len() + frame.payload.len() > MAX_PAGE_MESSAGE {
                return Err("message too large");
            }
            message.extend_from_slice(&frame.payload);
            in_message = !frame.fin;
            if in_message {
                continue;
            }
            let now = tokio::time::Instant::now();
            if now.duration_since(window) >= Duration::from_secs(1) {
                window = now;
                count = 0;
            }
            count += 1;
            if count > MAX_PAGE_RATE {
                return Err("too many messages");
            }
            let m = message.split().freeze();
            let id = m
                .get(1..5)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            match (m.first().copied(), id) {
                (Some(T_KEEPALIVE), _) if m.len() == 1 => {}
                (Some(T_DATA), Some(id)) if id & PAGE_STREAM_BIT != 0 => {
                    uploads.data(link, id, m.slice(5..)).await?;
                }
                (Some(T_FIN), Some(id)) if id & PAGE_STREAM_BIT != 0 && m.len() == 5 => {
                    uploads.fin(id);
                }
                (Some(T_DATA), Some(0)) => {
                    let Some(tx) = &control else {
                        return Err("data after the control stream's end");
                    };
                    // Waits while the serving path is behind: the socket is not read meanwhile.
                    if tx.send(m.slice(5..)).await.is_err() {
                        control = None;
                    }
                }
                (Some(T_FIN), Some(0)) if m.len() == 5 => control = None,
                _ => return Err("unexpected message from the page"),
            }
        }
    }
}

/// The page's open streams, as the socket reader routes their data.
#[derive(Default)]
struct PageStreams {
    open: HashMap<u32, mpsc::Sender<Bytes>>,
    /// The highest id opened so far (a new stream's is higher).
    last: u32,
}

impl PageStreams {
    /// Data for page stream `id`: opens it when its id is new. Waits while
    /// the stream's reader is behind. Data for a stream the node stopped
    /// reading is dropped.
    async fn data(&mut self, link: &WsLink, id: u32, bytes: Bytes) -> Result<(), &'static str> {
        if id > self.last.max(PAGE_STREAM_BIT) {
            if self.open.len() >= MAX_PAGE_STREAMS {
                return Err("too many page streams");
            }
            let (tx, rx) = mpsc::channel(PAGE_STREAM_QUEUE);
            let recv = WsRecv {
                rx,
                buf: Bytes::new(),
            };
            // Full: the serving path is not taking the page's streams.
            if link.0.opened.try_send(recv).is_err() {
                return Err("too many page streams");
            }
            self.last = id;
            self.open.insert(id, tx);
        }
        if let Some(tx) = self.open.get(&id) {
            if tx.send(bytes).await.is_err() {
                self.open.remove(&id);
            }
        }
        Ok(())
    }

    /// The page finished stream `id`: its reader sees the end.
    fn fin(&mut self, id: u32) {
        self.open.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn page_streams_open_by_a_new_id_carry_data_end_at_fin_and_are_bounded() {
        let (link, _ends) = WsLink::new("127.0.0.1:9".parse().unwrap());
        let mut streams = PageStreams::default();
        let first = PAGE_STREAM_BIT + 1;
        streams
            .data(&link, first, Bytes::from_static(b"clip"))
            .await
            .unwrap();
        streams
            .data(&link, first, Bytes::from_static(b"board"))
            .await
            .unwrap();
        streams.fin(first);
        let mut recv = link.accept_uni().await.expect("the page's stream");
        let mut got = Vec::new();
        recv.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"clipboard");
        // An old id opens nothing again.
        streams
            .data(&link, first, Bytes::from_static(b"late"))
            .await
            .unwrap();
        assert!(streams.open.is_empty());

        // At most MAX_PAGE_STREAMS open at once.
        for i in 0..MAX_PAGE_STREAMS as u32 {
            streams
                .data(&link, first + 1 + i, Bytes::from_static(b"x"))
                .await
                .unwrap();
            drop(link.accept_uni().await.expect("accepted"));
        }
        let over = first + 1 + MAX_PAGE_STREAMS as u32;
        assert_eq!(
            streams.data(&link, over, Bytes::new()).await,
            Err("too many page streams")
        );
        // A stream whose reader stopped drops its data and frees its place.
        streams
            .data(&link, first + 1, Bytes::from_static(b"y"))
            .await
            .unwrap();
        assert_eq!(streams.open.len(), MAX_PAGE_STREAMS - 1);

        // A closed link accepts no more.
        link.close(CloseCode::Protocol, "test");
        assert!(link.accept_uni().await.is_none());
    }

    #[test]
    fn accept_key_of_rfc_6455() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    fn masked(opcode: u8, fin: bool, payload: &[u8]) -> BytesMut {
        let mask = [1u8, 2, 3, 4];
        let mut f = BytesMut::new();
        f.put_u8(if fin { 0x80 } else { 0 } | opcode);
        if payload.len() < 126 {
            f.put_u8(0x80 | payload.len() as u8);
        } else {
            f.put_u8(0x80 | 126);
            f.put_u16(payload.len() as u16);
        }
        f.put_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        f
    }

    #[test]
    fn frames_are_unmasked_bounded_and_taken_whole() {
        let mut buf = masked(0x2, true, &[9; 300]);
        let whole = buf.clone();
        let mut part = whole.clone();
        part.truncate(100);
        assert_eq!(parse_frame(&mut part), Ok(None));
        let f = parse_frame(&mut buf).unwrap().unwrap();
        assert_eq!((f.fin, f.opcode, f.payload.len()), (true, 2, 300));
        assert!(f.payload.iter().all(|&b| b == 9));
        assert!(buf.is_empty());

        let mut unmasked = BytesMut::from(&[0x82u8, 1, 7][..]);
        assert_eq!(parse_frame(&mut unmasked), Err(FrameError::Unmasked));
        let mut huge = BytesMut::from(&[0x82u8, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 1][..]);
        assert_eq!(parse_frame(&mut huge), Err(FrameError::TooLarge));
    }
}
