//! Unidirectional streams: each starts with one kind byte saying what it
//! carries. A graphics update travels alone on its own stream, server →
//! client, so a superseded update can be reset without touching the others.
//!
//! A graphics stream comes in two forms: plain ([`STREAM_KIND_GRAPHICS`]),
//! and stamped ([`STREAM_KIND_STAMPED_GRAPHICS`]), whose kind byte is
//! followed by the update's capture time (unix microseconds, `u64`
//! big-endian) before the payload. A node sends stamped streams only to a
//! viewer that asked with [`ClientMessage::StampGraphics`](crate::ClientMessage::StampGraphics),
//! so viewers that predate stamps never see the new kind.

use crate::{ProtoError, MAX_UPDATE_BYTES};

/// Kind byte of a unidirectional stream carrying one graphics update.
pub const STREAM_KIND_GRAPHICS: u8 = 1;

/// Kind byte of a graphics stream whose update carries its capture time.
pub const STREAM_KIND_STAMPED_GRAPHICS: u8 = 3;

/// Length of a stamped graphics stream's header: kind byte, then the
/// capture time in unix microseconds (`u64` big-endian).
pub const STAMPED_GRAPHICS_HEADER_LEN: usize = 9;

/// Largest graphics update payload: [`MAX_UPDATE_BYTES`] minus the kind byte.
pub const MAX_GRAPHICS_PAYLOAD: usize = MAX_UPDATE_BYTES - 1;

/// The content of a whole unidirectional stream, borrowed from its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UniStream<'a> {
    /// One graphics update; its payload is for the codec to decode.
    Graphics(&'a [u8]),
    /// One graphics update with the time its frame was captured.
    StampedGraphics {
        /// When the node captured the frame, in unix microseconds (the
        /// node's clock: meaningful against the viewer's own clock only
        /// when both share one, or are synchronised).
        captured_unix_us: u64,
        /// The update, for the codec to decode.
        payload: &'a [u8],
    },
}

impl<'a> UniStream<'a> {
    /// The kind byte of this stream.
    pub fn kind(&self) -> u8 {
        match self {
            UniStream::Graphics(_) => STREAM_KIND_GRAPHICS,
            UniStream::StampedGraphics { .. } => STREAM_KIND_STAMPED_GRAPHICS,
        }
    }

    /// The graphics update payload of either form.
    pub fn payload(&self) -> &'a [u8] {
        match *self {
            UniStream::Graphics(payload) | UniStream::StampedGraphics { payload, .. } => payload,
        }
    }

    /// The capture time of a stamped update (unix microseconds).
    pub fn captured_unix_us(&self) -> Option<u64> {
        match *self {
            UniStream::Graphics(_) => None,
            UniStream::StampedGraphics {
                captured_unix_us, ..
            } => Some(captured_unix_us),
        }
    }
}

/// The bytes a graphics stream starts with, before the update payload.
pub fn graphics_stream_header() -> [u8; 1] {
    [STREAM_KIND_GRAPHICS]
}

/// The bytes a stamped graphics stream starts with, before the update
/// payload: the kind byte and the capture time in unix microseconds.
pub fn stamped_graphics_stream_header(captured_unix_us: u64) -> [u8; STAMPED_GRAPHICS_HEADER_LEN] {
    let mut header = [0u8; STAMPED_GRAPHICS_HEADER_LEN];
    header[0] = STREAM_KIND_STAMPED_GRAPHICS;
    header[1..].copy_from_slice(&captured_unix_us.to_be_bytes());
    header
}

/// The capture time after a stamped stream's kind byte: the first 8 bytes
/// of `rest`, or [`ProtoError::TruncatedStamp`] when fewer arrived.
pub fn parse_stamp(rest: &[u8]) -> Result<u64, ProtoError> {
    let Some(stamp) = rest.get(..STAMPED_GRAPHICS_HEADER_LEN - 1) else {
        return Err(ProtoError::TruncatedStamp { len: rest.len() });
    };
    let mut be = [0u8; 8];
    be.copy_from_slice(stamp);
    Ok(u64::from_be_bytes(be))
}

/// Parses a whole unidirectional stream (kind byte, then payload).
///
/// Fails on an empty stream, an unknown kind, a stamped stream too short
/// for its stamp, or more than [`MAX_UPDATE_BYTES`] bytes in all (the
/// stamp counts).
pub fn parse_uni_stream(bytes: &[u8]) -> Result<UniStream<'_>, ProtoError> {
    if bytes.len() > MAX_UPDATE_BYTES {
        return Err(ProtoError::UpdateTooLarge {
            len: bytes.len(),
            max: MAX_UPDATE_BYTES,
        });
    }
    match bytes.split_first() {
        None => Err(ProtoError::EmptyStream),
        Some((&STREAM_KIND_GRAPHICS, payload)) => Ok(UniStream::Graphics(payload)),
        Some((&STREAM_KIND_STAMPED_GRAPHICS, rest)) => {
            let captured_unix_us = parse_stamp(rest)?;
            Ok(UniStream::StampedGraphics {
                captured_unix_us,
                payload: &rest[STAMPED_GRAPHICS_HEADER_LEN - 1..],
            })
        }
        Some((&kind, _)) => Err(ProtoError::UnknownStreamKind(kind)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn graphics_stream_round_trips() {
        let mut stream = graphics_stream_header().to_vec();
        stream.extend_from_slice(b"tiles");
        let parsed = parse_uni_stream(&stream).unwrap();
        assert_eq!(parsed, UniStream::Graphics(b"tiles"));
        assert_eq!(parsed.kind(), STREAM_KIND_GRAPHICS);
        assert_eq!(
            parse_uni_stream(&[STREAM_KIND_GRAPHICS]).unwrap(),
            UniStream::Graphics(&[])
        );
    }

    #[test]
    fn stamped_graphics_stream_round_trips() {
        let stamp = 1_764_654_000_123_456u64;
        let mut stream = stamped_graphics_stream_header(stamp).to_vec();
        assert_eq!(stream.len(), STAMPED_GRAPHICS_HEADER_LEN);
        stream.extend_from_slice(b"tiles");
        let parsed = parse_uni_stream(&stream).unwrap();
        assert_eq!(
            parsed,
            UniStream::StampedGraphics {
                captured_unix_us: stamp,
                payload: b"tiles"
            }
        );
        assert_eq!(parsed.kind(), STREAM_KIND_STAMPED_GRAPHICS);
        assert_eq!(parsed.payload(), b"tiles");
        assert_eq!(parsed.captured_unix_us(), Some(stamp));
        let plain = parse_uni_stream(&[STREAM_KIND_GRAPHICS, 7]).unwrap();
        assert_eq!(
            (plain.payload(), plain.captured_unix_us()),
            (&[7u8][..], None)
        );
        // An empty payload after a whole stamp is the codec's to judge.
        assert_eq!(
            parse_uni_stream(&stamped_graphics_stream_header(0)).unwrap(),
            UniStream::StampedGraphics {
                captured_unix_us: 0,
                payload: &[]
            }
        );
    }

    #[test]
    fn a_truncated_stamp_is_an_error() {
        let header = stamped_graphics_stream_header(u64::MAX);
        for cut in 1..STAMPED_GRAPHICS_HEADER_LEN {
            assert_eq!(
                parse_uni_stream(&header[..cut]),
                Err(ProtoError::TruncatedStamp { len: cut - 1 })
            );
        }
        assert_eq!(parse_stamp(&header[1..]), Ok(u64::MAX));
        assert!(ProtoError::TruncatedStamp { len: 3 }
            .to_string()
            .starts_with("stamped graphics stream of 3 bytes"));
    }

    #[test]
    fn empty_and_unknown_kinds_are_errors() {
        assert_eq!(parse_uni_stream(&[]), Err(ProtoError::EmptyStream));
        assert_eq!(
            parse_uni_stream(&[0, 1, 2]),
            Err(ProtoError::UnknownStreamKind(0))
        );
        assert_eq!(
            parse_uni_stream(&[0xff]),
            Err(ProtoError::UnknownStreamKind(0xff))
        );
    }

    #[test]
    fn size_cap_counts_the_kind_byte() {
        let mut stream = vec![0u8; MAX_UPDATE_BYTES + 1];
        stream[0] = STREAM_KIND_GRAPHICS;
        assert_eq!(
            parse_uni_stream(&stream),
            Err(ProtoError::UpdateTooLarge {
                len: MAX_UPDATE_BYTES + 1,
                max: MAX_UPDATE_BYTES
            })
        );
        match parse_uni_stream(&stream[..MAX_UPDATE_BYTES]) {
            Ok(UniStream::Graphics(p)) => assert_eq!(p.len(), MAX_GRAPHICS_PAYLOAD),
            other => panic!("unexpected {other:?}"),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64).prop_map(|mut b| { if let Some(k) = b.first_mut() { *k %= 4; } b })) {
            match parse_uni_stream(&bytes) {
                Ok(UniStream::Graphics(p)) => {
                    prop_assert_eq!(bytes[0], STREAM_KIND_GRAPHICS);
                    prop_assert_eq!(p, &bytes[1..]);
                }
                Ok(UniStream::StampedGraphics { captured_unix_us, payload }) => {
                    prop_assert_eq!(bytes[0], STREAM_KIND_STAMPED_GRAPHICS);
                    prop_assert_eq!(&bytes[1..9], &captured_unix_us.to_be_bytes()[..]);
                    prop_assert_eq!(payload, &bytes[9..]);
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }
    }
}
