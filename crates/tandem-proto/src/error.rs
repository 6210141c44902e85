//! The error type of message framing, decoding and validation.

use thiserror::Error;

/// What went wrong while encoding, framing, decoding or validating a message
/// or a unidirectional stream.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtoError {
    /// A message could not be serialized.
    #[error("failed to encode message: {0}")]
    Encode(#[source] postcard::Error),
    /// A frame's payload is not a valid message of the expected type.
    #[error("malformed message: {0}")]
    Decode(#[source] postcard::Error),
    /// A frame's payload holds a valid message followed by extra bytes.
    #[error("malformed message: {count} unexpected trailing bytes")]
    TrailingBytes {
        /// Number of bytes left after the message.
        count: usize,
    },
    /// A control frame is larger than the limit (announced by a peer, or about to be sent).
    #[error("control message of {len} bytes exceeds the {max}-byte limit")]
    MessageTooLarge {
        /// Size of the payload in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The frame decoder was fed more bytes while already holding a whole frame; drain it with `next_message` after every `push`.
    #[error("control stream buffer overflow: the receiver fell more than one frame behind")]
    BufferOverflow,
    /// The frame decoder already failed; the control stream cannot be resynchronised.
    #[error("control stream unusable after an earlier framing error")]
    Poisoned,
    /// A unidirectional stream ended before its kind byte.
    #[error("empty unidirectional stream: missing the stream kind byte")]
    EmptyStream,
    /// A unidirectional stream starts with a kind byte this version does not know.
    #[error("unknown unidirectional stream kind {0}")]
    UnknownStreamKind(u8),
    /// A stamped graphics stream ended inside its 8-byte capture time.
    #[error(
        "stamped graphics stream of {len} bytes after its kind byte: the capture time needs 8"
    )]
    TruncatedStamp {
        /// Bytes after the kind byte.
        len: usize,
    },
    /// A graphics stream is larger than [`crate::MAX_UPDATE_BYTES`].
    #[error("graphics update of {len} bytes exceeds the {max}-byte limit")]
    UpdateTooLarge {
        /// Size of the stream in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// A session or invitation id is empty, too long or uses characters outside `A-Z a-z 0-9 _ -`.
    #[error("invalid {field}: expected 1 to 64 characters from A-Z a-z 0-9 _ -")]
    InvalidId {
        /// Which field.
        field: &'static str,
    },
    /// A text field is longer than its limit.
    #[error("{field} too long: {len} bytes, at most {max} allowed")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// A text field contains a control character.
    #[error("{field} contains a control character")]
    ControlCharacter {
        /// Which field.
        field: &'static str,
    },
    /// A cursor shape is malformed.
    #[error("invalid cursor shape: {0}")]
    InvalidCursor(&'static str),
    /// A channel name is empty, too long or uses characters outside `A-Z a-z 0-9 . _ -`.
    #[error("invalid channel name: expected 1 to 64 characters from A-Z a-z 0-9 . _ -")]
    InvalidChannelName,
    /// Channel flags with bits this version does not know.
    #[error("invalid channel flags {0:#x}: only 0x1 (uncompressed) is known")]
    InvalidChannelFlags(u32),
    /// A channel message is larger than [`crate::MAX_CHANNEL_MESSAGE`].
    #[error("channel message of {len} bytes exceeds the {max}-byte limit")]
    ChannelMessageTooLarge {
        /// Size in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// A channel stream header is cut short.
    #[error("channel stream header cut short: expected a kind byte and a 4-byte channel id")]
    InvalidChannelHeader,
}
