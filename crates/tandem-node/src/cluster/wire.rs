//! The relay link protocol between nodes, both sides' shared part: QUIC
//! with ALPN `tandem-link/1`, authenticated with an HMAC of the cluster
//! secret over a challenge; the messages, the graphics stream framing, and
//! the relay's half of the handshake. No node state here: the origin's
//! server is [`super::link`], the relay's client [`super::relay`].
//!
//! A relay opens one connection per origin and authenticates on its first
//! bidirectional stream (`Hello` → `Challenge` → `Auth` → `Accepted`); a
//! wrong answer closes the connection. Then every further bidirectional
//! stream starts with one [`LinkRequest`]:
//! - `Subscribe { session }`: the origin answers `Subscribed` and sends the
//!   session's graphics on unidirectional streams of the link, latest wins
//!   (catch-ups when the link lags), *once per link* whatever the number of
//!   attendees behind it, until the relay finishes that stream; the
//!   session's pointer follows on the subscription stream itself
//!   (`CursorShape` once per shape, then `CursorAt`, latest wins);
//! - `Attendee { peer, via_node, route }`: an attendee's control stream,
//!   carried through: the relay forwards its `Hello`, and the origin serves
//!   it on the same path as a direct attendee (`crate::connection`:
//!   admission, levels, virtual channels and the clipboard), except that
//!   graphics and the pointer come from the relay's mirror;
//! - `AttendeeStream { route }`: a channel stream the relayed attendee
//!   opened, carried through byte for byte after this one frame. The origin
//!   carries the attendee's channel streams the other way on bidirectional
//!   streams it opens, each starting with one [`LinkPush::AttendeeStream`];
//!   `route` is the relay's handle for the attendee;
//! - `ListAttendees`: the member answers its live attendees as JSON (as its
//!   admin API lists them) and finishes the stream. This is how a node
//!   answers `GET /api/v1/attendees?scope=cluster` without sending its admin
//!   token anywhere: the link is authenticated both ways by the secret.
//!
//! A graphics stream on a link is `[u16 BE header length][postcard
//! LinkUpdate][the graphics stream bytes attendees receive]`.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tandem_proto::CursorShape;
use tandem_transport::{write_message, MessageReader};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::secret::hmac_tag;
pub use crate::attendee_link::{open_attendee_stream, LinkPush};

/// ALPN of relay links.
pub const LINK_ALPN: &[u8] = b"tandem-link/1";
/// Time a relay has to authenticate.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest graphics stream on a link (as for attendees).
pub const MAX_LINK_UPDATE: usize = 64 * 1024 * 1024;
/// First message of each bidirectional stream a relay opens on a link.
#[derive(Debug, Serialize, Deserialize)]
pub enum LinkRequest {
    /// Opens the authentication: who is asking.
    Hello {
        /// The relay's node id.
        node_id: String,
    },
    /// Answer to the challenge: HMAC-SHA256 of the secret over
    /// `tandem-link/1 || nonce || node_id`.
    Auth {
        /// The tag.
        mac: [u8; 32],
    },
    /// Send me this session's graphics.
    Subscribe {
        /// Session id.
        session: String,
    },
    /// An attendee's control stream, relayed; its `Hello` follows.
    Attendee {
        /// The attendee's address as the relay sees it.
        peer: String,
        /// The relay's node id.
        via_node: String,
        /// The relay's handle for this attendee on this link.
        route: u64,
    },
    /// A cluster-wide admin query: list your live attendees (JSON, then
    /// the stream is finished).
    ListAttendees,
    /// A channel stream of the relayed attendee `route`; its bytes follow.
    AttendeeStream {
        /// The relay's handle for the attendee.
        route: u64,
    },
}

/// Reads exactly one control frame from `recv` and nothing past it (the
/// first frame of a link stream whose rest is carried through raw).
pub async fn read_one<T: DeserializeOwned, R: AsyncRead + Unpin>(recv: &mut R) -> Option<T> {
    let mut head = [0u8; tandem_proto::FRAME_HEADER_LEN];
    recv.read_exact(&mut head).await.ok()?;
    let len = u32::from_be_bytes(head) as usize;
    if len > tandem_proto::MAX_CONTROL_MESSAGE {
        return None;
    }
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body).await.ok()?;
    tandem_proto::decode_payload(&body).ok()
}

/// What the origin answers on a link stream.
#[derive(Debug, Serialize, Deserialize)]
pub enum LinkReply {
    /// Prove you know the secret.
    Challenge {
        /// Random bytes.
        nonce: [u8; 32],
    },
    /// Authenticated.
    Accepted,
    /// Refused, and why.
    Refused {
        /// One line.
        message: String,
    },
    /// Subscribed; graphics follow on unidirectional streams.
    Subscribed {
        /// Shared rectangle size.
        width: u32,
        /// Shared rectangle size.
        height: u32,
    },
    /// A pointer image of the subscribed session, sent before the first
    /// `CursorAt` naming it (and again if it comes back after many others).
    CursorShape(CursorShape),
    /// Where the subscribed session's pointer is now; only the newest is
    /// sent once the previous one is written.
    CursorAt {
        /// Hot spot, from the left edge of the shared rectangle.
        x: i32,
        /// Hot spot, from the top edge of the shared rectangle.
        y: i32,
        /// Whether it is shown.
        visible: bool,
        /// Id of its `CursorShape`.
        shape: u32,
    },
}

/// Header of each graphics stream on a link.
#[derive(Debug, Serialize, Deserialize)]
pub struct LinkUpdate {
    /// Session id.
    pub session: String,
    /// When the origin captured the frame (unix milliseconds).
    pub captured_unix_ms: i64,
}

/// Transport settings of links: a dead peer is noticed within seconds (the
/// directory usually notices first, after `dead_after_ms`).
pub fn link_transport_config() -> tandem_transport::TransportConfig {
    tandem_transport::TransportConfig {
        idle_timeout: Duration::from_secs(10),
        keep_alive: Some(Duration::from_secs(1)),
        ..Default::default()
    }
}

/// The answer to a link challenge.
pub fn link_mac(secret: &str, nonce: &[u8; 32], node_id: &str) -> [u8; 32] {
    let mut message = LINK_ALPN.to_vec();
    message.extend_from_slice(nonce);
    message.extend_from_slice(node_id.as_bytes());
    hmac_tag(secret.as_bytes(), &message)
}

/// Encodes one graphics stream of a link.
pub fn link_stream_bytes(header: &LinkUpdate, stream_bytes: &[u8]) -> Vec<u8> {
    let head = postcard::to_allocvec(header).unwrap_or_default();
    let mut out = Vec::with_capacity(2 + head.len() + stream_bytes.len());
    out.extend_from_slice(&(head.len() as u16).to_be_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(stream_bytes);
    out
}

/// Splits one graphics stream of a link into its header and graphics bytes.
pub fn parse_link_stream(bytes: &[u8]) -> Option<(LinkUpdate, &[u8])> {
    let len = u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]) as usize;
    let head = bytes.get(2..2 + len)?;
    let header = postcard::from_bytes(head).ok()?;
    Some((header, &bytes[2 + len..]))
}

/// The relay's side of the authentication, on a fresh link.
pub async fn client_authenticate(
    conn: &quinn::Connection,
    node_id: &str,
    secret: &str,
) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| format!("relay link authentication failed: {e}");
    let (mut tx, rx) = conn.open_bi().await.map_err(|e| fail(&e))?;
    let mut reader = MessageReader::new(rx);
    write_message(
        &mut tx,
        &LinkRequest::Hello {
            node_id: node_id.to_owned(),
        },
    )
    .await
    .map_err(|e| fail(&e))?;
    let Ok(Some(LinkReply::Challenge { nonce })) = reader.next::<LinkReply>().await else {
        return Err(fail(&"no challenge"));
    };
    let mac = link_mac(secret, &nonce, node_id);
    write_message(&mut tx, &LinkRequest::Auth { mac })
        .await
        .map_err(|e| fail(&e))?;
    match reader.next::<LinkReply>().await {
        Ok(Some(LinkReply::Accepted)) => Ok(()),
        Ok(Some(LinkReply::Refused { message })) => Err(fail(&message)),
        _ => Err(fail(&"the origin closed the link (wrong cluster secret?)")),
    }
}
