//! Tandem's wire protocol: control messages, their framing, the graphics
//! stream header, certificate fingerprints and the connection-string format.
//!
//! This crate is pure: it does no I/O, spawns no threads, reads no clock and
//! has no async code. Bytes go in, typed values come out (and back). Every
//! decoder here takes untrusted input: it is bounded in size and returns a
//! typed error instead of panicking.
//!
//! Layout on a QUIC connection (ALPN [`ALPN`]):
//!
//! - one bidirectional *control stream*, opened by the client, carrying
//!   frames made by [`encode_message`] and read back with [`FrameDecoder`]:
//!   [`ClientMessage`] client → server, [`ServerMessage`] server → client;
//! - one unidirectional stream per graphics update, server → client,
//!   starting with [`graphics_stream_header`] (or, for a viewer that sent
//!   [`ClientMessage::StampGraphics`], [`stamped_graphics_stream_header`]
//!   with the capture time) and read with [`parse_uni_stream`];
//! - one unidirectional stream per joined virtual channel and direction,
//!   starting with [`channel_stream_header`] and carrying [`ChannelFrame`]s
//!   (see the `channel` module);
//! - QUIC datagrams, server → client, carrying the pointer position
//!   ([`CursorPosition`]); the pointer image is a control message.
//!
//! A viewer learns where to connect from a [`ConnectionString`].

mod channel;
mod cursor;
mod error;
mod fingerprint;
mod frame;
mod message;
mod reverse;
mod stream;
mod ticket;

pub use channel::{
    channel_stream_header, check_channel_name, is_valid_channel_name, parse_channel_header,
    ChannelAccess, ChannelFlags, ChannelFrame, ChannelInfo, ChannelPriority,
    ParseChannelAccessError, CHANNEL_HEADER_LEN, CLIPBOARD_CHANNEL, MAX_CHANNEL_MESSAGE,
    MAX_CHANNEL_NAME_LEN, STREAM_KIND_CHANNEL,
};
pub use cursor::{
    CursorPosition, CursorShape, DATAGRAM_KIND_CURSOR, MAX_CURSOR_SIDE, MAX_DATAGRAM_LEN,
};
pub use error::ProtoError;
pub use fingerprint::{Fingerprint, FingerprintError};
pub use frame::{decode_payload, encode_message, FrameDecoder, FRAME_HEADER_LEN, MAX_FRAME_LEN};
pub use message::{
    is_valid_id, ClientMessage, ControlLevel, DisconnectReason, Hello, InputEvent, MouseButton,
    ParseControlLevelError, RejectReason, ServerMessage, Welcome,
};
pub use reverse::{ReverseConnectionString, ReverseStringError, REVERSE_SCHEME};
pub use stream::{
    graphics_stream_header, parse_stamp, parse_uni_stream, stamped_graphics_stream_header,
    UniStream, MAX_GRAPHICS_PAYLOAD, STAMPED_GRAPHICS_HEADER_LEN, STREAM_KIND_GRAPHICS,
    STREAM_KIND_STAMPED_GRAPHICS,
};
pub use ticket::{
    ticket_addrs, AddrError, ConnectionString, ConnectionStringError, NodeAddr,
    MAX_CONNECTION_STRING_LEN, MAX_NODE_ADDRS, SCHEME,
};

/// Version of the protocol spoken by this crate, sent in [`Hello::version`].
pub const PROTOCOL_VERSION: u16 = 1;

/// TLS application-layer protocol name negotiated on every Tandem QUIC connection.
pub const ALPN: &[u8] = b"tandem/1";

/// Largest payload of one control-stream frame, in bytes (the length prefix excluded).
pub const MAX_CONTROL_MESSAGE: usize = 64 * 1024;

/// Largest graphics stream, in bytes: the kind byte plus the update payload.
pub const MAX_UPDATE_BYTES: usize = 64 * 1024 * 1024;

/// Largest attendee name in a [`Hello`], in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 255;

/// Largest password in a [`Hello`], in bytes of UTF-8.
pub const MAX_PASSWORD_LEN: usize = 255;

/// Largest session or invitation id, in characters (ids are ASCII).
pub const MAX_ID_LEN: usize = 64;
