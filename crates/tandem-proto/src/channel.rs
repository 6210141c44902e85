//! Virtual channels (the Desktop Sharing API's `IRDPSRAPIVirtualChannel`):
//! named application data channels between the sharer and attendees.
//!
//! The sharer creates channels; an attendee joins one by name with
//! [`ClientMessage::ChannelJoin`](crate::ClientMessage) and learns its id,
//! priority, flags and its own access. Data never travels on the control
//! stream: each direction of each joined channel has a unidirectional stream
//! of its own, starting with [`channel_stream_header`] (kind byte, channel
//! id) and carrying [`ChannelFrame`]s framed like control messages. So a
//! slow reader on one channel holds up neither graphics, nor control, nor
//! another channel.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{ProtoError, MAX_CONTROL_MESSAGE};

/// Kind byte of a unidirectional stream carrying one channel's data.
pub const STREAM_KIND_CHANNEL: u8 = 2;

/// Length of a channel stream header: kind byte and big-endian `u32` id.
pub const CHANNEL_HEADER_LEN: usize = 5;

/// Longest channel name, in bytes.
pub const MAX_CHANNEL_NAME_LEN: usize = 64;

/// Largest message on a channel, in bytes: a [`ChannelFrame::Data`] then
/// fits one control frame ([`MAX_CONTROL_MESSAGE`]) with room for its tag
/// and length.
pub const MAX_CHANNEL_MESSAGE: usize = MAX_CONTROL_MESSAGE - 16;

/// Name of the built-in clipboard channel of every session.
pub const CLIPBOARD_CHANNEL: &str = "clipboard";

/// Whether `name` is a valid channel name: 1 to [`MAX_CHANNEL_NAME_LEN`]
/// bytes from `A-Z a-z 0-9 . _ -`.
pub fn is_valid_channel_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_CHANNEL_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Checks a channel name, with the error to show.
pub fn check_channel_name(name: &str) -> Result<(), ProtoError> {
    if is_valid_channel_name(name) {
        Ok(())
    } else {
        Err(ProtoError::InvalidChannelName)
    }
}

/// Packet priority of a channel (`CHANNEL_PRIORITY`): the QUIC stream
/// priority of its data streams.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelPriority {
    /// Below graphics.
    Low,
    /// Default.
    #[default]
    Normal,
    /// Same as graphics.
    High,
}

impl ChannelPriority {
    /// The QUIC send-stream priority (graphics and control use 0).
    pub fn stream_priority(self) -> i32 {
        match self {
            ChannelPriority::Low => -2,
            ChannelPriority::Normal => -1,
            ChannelPriority::High => 0,
        }
    }
}

/// Channel flags (`ChannelFlags`); a bit set, unknown bits are refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChannelFlags(pub u32);

impl ChannelFlags {
    /// `CHANNEL_FLAGS_UNCOMPRESSED`: the data is already compressed.
    pub const UNCOMPRESSED: u32 = 1;
    /// Every bit this version knows.
    pub const KNOWN: u32 = Self::UNCOMPRESSED;

    /// Whether only known bits are set.
    pub fn is_valid(self) -> bool {
        self.0 & !Self::KNOWN == 0
    }
}

/// What an attendee may do on a channel (`CHANNEL_ACCESS_ENUM`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum ChannelAccess {
    /// Receives nothing, sends nothing (the default).
    #[default]
    None,
    /// Receives what the sharer sends.
    Read,
    /// Receives, and may send to the sharer.
    ReadWrite,
}

impl ChannelAccess {
    /// Every access, least first.
    pub const ALL: [ChannelAccess; 3] = [
        ChannelAccess::None,
        ChannelAccess::Read,
        ChannelAccess::ReadWrite,
    ];

    /// The text form: `none`, `read`, `read-write`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelAccess::None => "none",
            ChannelAccess::Read => "read",
            ChannelAccess::ReadWrite => "read-write",
        }
    }

    /// Whether data from the sharer reaches this attendee.
    pub fn can_read(self) -> bool {
        self >= ChannelAccess::Read
    }

    /// Whether this attendee may send to the sharer.
    pub fn can_write(self) -> bool {
        self == ChannelAccess::ReadWrite
    }
}

impl fmt::Display for ChannelAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string naming no [`ChannelAccess`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown channel access {input:?}: expected none, read or read-write")]
pub struct ParseChannelAccessError {
    /// The rejected text (cut to 32 characters).
    pub input: String,
}

impl FromStr for ChannelAccess {
    type Err = ParseChannelAccessError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        ChannelAccess::ALL
            .into_iter()
            .find(|a| t.eq_ignore_ascii_case(a.as_str()))
            .ok_or_else(|| ParseChannelAccessError {
                input: s.chars().take(32).collect(),
            })
    }
}

/// A channel as an attendee sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelInfo {
    /// Id in this session; names the channel on its data streams.
    pub id: u32,
    /// Name.
    pub name: String,
    /// Priority.
    pub priority: ChannelPriority,
    /// Flags.
    pub flags: ChannelFlags,
    /// This attendee's access.
    pub access: ChannelAccess,
}

impl ChannelInfo {
    /// Checks the name and flags.
    pub fn validate(&self) -> Result<(), ProtoError> {
        check_channel_name(&self.name)?;
        if !self.flags.is_valid() {
            return Err(ProtoError::InvalidChannelFlags(self.flags.0));
        }
        Ok(())
    }
}

/// One frame on a channel data stream (framed by `encode_message`).
/// Variant order is the wire format: only ever append. Decoding enforces
/// [`MAX_CHANNEL_MESSAGE`] (a control frame could carry 12 bytes more), so
/// every reader of a channel stream gets the documented limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WireChannelFrame")]
pub enum ChannelFrame {
    /// One message, at most [`MAX_CHANNEL_MESSAGE`] bytes.
    Data(Vec<u8>),
    /// Server → attendee: this many messages were dropped here because the
    /// attendee's queue for this channel was full.
    Dropped(u64),
}

/// [`ChannelFrame`] as decoded, before its size is checked; the same
/// variants in the same order.
#[derive(Deserialize)]
enum WireChannelFrame {
    Data(Vec<u8>),
    Dropped(u64),
}

impl TryFrom<WireChannelFrame> for ChannelFrame {
    type Error = ProtoError;

    fn try_from(wire: WireChannelFrame) -> Result<Self, ProtoError> {
        let frame = match wire {
            WireChannelFrame::Data(d) => ChannelFrame::Data(d),
            WireChannelFrame::Dropped(n) => ChannelFrame::Dropped(n),
        };
        frame.validate()?;
        Ok(frame)
    }
}

impl ChannelFrame {
    /// Checks the message size.
    pub fn validate(&self) -> Result<(), ProtoError> {
        match self {
            ChannelFrame::Data(d) if d.len() > MAX_CHANNEL_MESSAGE => {
                Err(ProtoError::ChannelMessageTooLarge {
                    len: d.len(),
                    max: MAX_CHANNEL_MESSAGE,
                })
            }
            _ => Ok(()),
        }
    }

    /// One whole frame (length prefix included) ready to write on a data stream.
    pub fn encode(&self) -> Result<Vec<u8>, ProtoError> {
        self.validate()?;
        crate::encode_message(self)
    }
}

/// The bytes a channel data stream starts with.
pub fn channel_stream_header(channel: u32) -> [u8; CHANNEL_HEADER_LEN] {
    let id = channel.to_be_bytes();
    [STREAM_KIND_CHANNEL, id[0], id[1], id[2], id[3]]
}

/// The channel id of a stream header (whose kind byte must be [`STREAM_KIND_CHANNEL`]).
pub fn parse_channel_header(bytes: &[u8]) -> Result<u32, ProtoError> {
    match bytes {
        [] => Err(ProtoError::EmptyStream),
        [STREAM_KIND_CHANNEL, a, b, c, d] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        [STREAM_KIND_CHANNEL, ..] => Err(ProtoError::InvalidChannelHeader),
        [kind, ..] => Err(ProtoError::UnknownStreamKind(*kind)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClientMessage, FrameDecoder, ServerMessage};
    use proptest::prelude::*;

    #[test]
    fn names() {
        assert!(is_valid_channel_name("clipboard"));
        assert!(is_valid_channel_name("com.example_chat-2"));
        assert!(is_valid_channel_name(&"x".repeat(MAX_CHANNEL_NAME_LEN)));
        assert!(!is_valid_channel_name(
            &"x".repeat(MAX_CHANNEL_NAME_LEN + 1)
        ));
        assert!(!is_valid_channel_name(""));
        assert!(!is_valid_channel_name("a b"));
        assert!(!is_valid_channel_name("é"));
        assert!(!is_valid_channel_name("a/b"));
        assert_eq!(
            check_channel_name("no way"),
            Err(ProtoError::InvalidChannelName)
        );
    }

    #[test]
    fn access_text_and_order() {
        for a in ChannelAccess::ALL {
            assert_eq!(a.to_string().parse::<ChannelAccess>(), Ok(a));
        }
        assert!("write".parse::<ChannelAccess>().is_err());
        assert!(!ChannelAccess::None.can_read());
        assert!(ChannelAccess::Read.can_read() && !ChannelAccess::Read.can_write());
        assert!(ChannelAccess::ReadWrite.can_write());
        assert_eq!(ChannelAccess::default(), ChannelAccess::None);
    }

    #[test]
    fn flags_and_info_validation() {
        let mut info = ChannelInfo {
            id: 3,
            name: "chat".into(),
            priority: ChannelPriority::High,
            flags: ChannelFlags(ChannelFlags::UNCOMPRESSED),
            access: ChannelAccess::Read,
        };
        assert_eq!(info.validate(), Ok(()));
        info.flags = ChannelFlags(4);
        assert_eq!(info.validate(), Err(ProtoError::InvalidChannelFlags(4)));
        info.flags = ChannelFlags(0);
        info.name = "bad name".into();
        assert_eq!(info.validate(), Err(ProtoError::InvalidChannelName));
    }

    #[test]
    fn frame_size_limit() {
        let max = ChannelFrame::Data(vec![7; MAX_CHANNEL_MESSAGE]);
        let bytes = max.encode().unwrap();
        let mut d = FrameDecoder::new();
        d.push(&bytes);
        assert_eq!(d.next_message::<ChannelFrame>().unwrap(), Some(max));
        let over = ChannelFrame::Data(vec![7; MAX_CHANNEL_MESSAGE + 1]);
        assert_eq!(
            over.encode(),
            Err(ProtoError::ChannelMessageTooLarge {
                len: MAX_CHANNEL_MESSAGE + 1,
                max: MAX_CHANNEL_MESSAGE
            })
        );
    }

    #[test]
    fn frames_over_the_documented_limit_are_refused_when_read() {
        assert_eq!(MAX_CHANNEL_MESSAGE, 65_520);
        // What a peer that skips `encode`'s check can put in one control
        // frame: up to 65,532 bytes. Every size above the limit is refused
        // by the decoder itself, whoever reads the stream.
        let mut largest_fitting = 0;
        for len in MAX_CHANNEL_MESSAGE + 1..MAX_CONTROL_MESSAGE {
            let Ok(bytes) = crate::encode_message(&ChannelFrame::Data(vec![1; len])) else {
                break;
            };
            largest_fitting = len;
            let mut d = FrameDecoder::new();
            d.push(&bytes);
            assert!(
                d.next_message::<ChannelFrame>().is_err(),
                "{len} bytes accepted"
            );
        }
        assert_eq!(largest_fitting, 65_532);
        let mut d = FrameDecoder::new();
        d.push(&crate::encode_message(&ChannelFrame::Dropped(3)).unwrap());
        assert_eq!(
            d.next_message::<ChannelFrame>().unwrap(),
            Some(ChannelFrame::Dropped(3))
        );
    }

    #[test]
    fn headers() {
        assert_eq!(channel_stream_header(0x0102_0304), [2, 1, 2, 3, 4]);
        assert_eq!(parse_channel_header(&[2, 0, 0, 0, 9]), Ok(9));
        assert_eq!(parse_channel_header(&[]), Err(ProtoError::EmptyStream));
        assert_eq!(
            parse_channel_header(&[2, 0]),
            Err(ProtoError::InvalidChannelHeader)
        );
        assert_eq!(
            parse_channel_header(&[1, 0, 0, 0, 0]),
            Err(ProtoError::UnknownStreamKind(1))
        );
    }

    #[test]
    fn channel_messages_are_appended() {
        // Existing variants keep their indices; the channel ones come after.
        let join = postcard::to_allocvec(&ClientMessage::ChannelJoin { name: "c".into() }).unwrap();
        assert_eq!(join[0], 4);
        let joined = postcard::to_allocvec(&ServerMessage::ChannelJoined(ChannelInfo {
            id: 1,
            name: "c".into(),
            priority: ChannelPriority::Normal,
            flags: ChannelFlags(0),
            access: ChannelAccess::None,
        }))
        .unwrap();
        assert_eq!(joined[0], 10);
    }

    fn arb_access() -> impl Strategy<Value = ChannelAccess> {
        prop_oneof![
            Just(ChannelAccess::None),
            Just(ChannelAccess::Read),
            Just(ChannelAccess::ReadWrite)
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn frames_round_trip(data in proptest::collection::vec(any::<u8>(), 0..2048), dropped in any::<u64>()) {
            let frames = [ChannelFrame::Data(data), ChannelFrame::Dropped(dropped)];
            let mut d = FrameDecoder::new();
            for f in &frames {
                d.push(&f.encode().unwrap());
            }
            for f in &frames {
                let got = d.next_message::<ChannelFrame>().unwrap();
                prop_assert_eq!(got.as_ref(), Some(f));
            }
        }

        #[test]
        fn server_channel_messages_round_trip(id in any::<u32>(), name in "[a-z0-9._-]{1,64}", access in arb_access(), dropped in any::<u64>()) {
            let msgs = [
                ServerMessage::ChannelJoined(ChannelInfo { id, name: name.clone(), priority: ChannelPriority::Low, flags: ChannelFlags(1), access }),
                ServerMessage::ChannelJoinRefused { name: name.clone(), message: "no".into() },
                ServerMessage::ChannelAccessChanged { channel: id, access },
                ServerMessage::ChannelOverflow { channel: id, dropped },
                ServerMessage::ChannelWriteRefused { channel: id, message: "read only".into() },
            ];
            for m in msgs {
                let bytes = crate::encode_message(&m).unwrap();
                let back: ServerMessage = crate::decode_payload(&bytes[4..]).unwrap();
                prop_assert_eq!(back, m);
            }
            let m = ClientMessage::ChannelJoin { name };
            let bytes = crate::encode_message(&m).unwrap();
            prop_assert_eq!(crate::decode_payload::<ClientMessage>(&bytes[4..]).unwrap(), m);
        }

        #[test]
        fn malformed_frames_are_errors(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            // Never panics; anything decoded re-encodes to the same value.
            if let Ok(f) = crate::decode_payload::<ChannelFrame>(&bytes) {
                let again = crate::encode_message(&f).unwrap();
                prop_assert_eq!(crate::decode_payload::<ChannelFrame>(&again[4..]).unwrap(), f);
            }
            let _ = parse_channel_header(&bytes);
        }
    }

    #[test]
    fn malformed_bytes_are_errors() {
        assert!(crate::decode_payload::<ChannelFrame>(&[9]).is_err());
        assert!(crate::decode_payload::<ChannelFrame>(&[0, 5, 1]).is_err());
        assert!(crate::decode_payload::<ChannelFrame>(&[]).is_err());
    }
}
