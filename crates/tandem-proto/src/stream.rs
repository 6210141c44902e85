//! Unidirectional streams: each starts with one kind byte saying what it
//! carries. Today the only kind is a graphics update, which travels alone on
//! its own stream, server → client, so a superseded update can be reset
//! without touching the others.

use crate::{ProtoError, MAX_UPDATE_BYTES};

/// Kind byte of a unidirectional stream carrying one graphics update.
pub const STREAM_KIND_GRAPHICS: u8 = 1;

/// Largest graphics update payload: [`MAX_UPDATE_BYTES`] minus the kind byte.
pub const MAX_GRAPHICS_PAYLOAD: usize = MAX_UPDATE_BYTES - 1;

/// The content of a whole unidirectional stream, borrowed from its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UniStream<'a> {
    /// One graphics update; its payload is for the codec to decode.
    Graphics(&'a [u8]),
}

impl UniStream<'_> {
    /// The kind byte of this stream.
    pub fn kind(&self) -> u8 {
        match self {
            UniStream::Graphics(_) => STREAM_KIND_GRAPHICS,
        }
    }
}

/// The bytes a graphics stream starts with, before the update payload.
pub fn graphics_stream_header() -> [u8; 1] {
    [STREAM_KIND_GRAPHICS]
}

/// Parses a whole unidirectional stream (kind byte, then payload).
///
/// Fails on an empty stream, an unknown kind, or more than
/// [`MAX_UPDATE_BYTES`] bytes in all.
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
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            match parse_uni_stream(&bytes) {
                Ok(UniStream::Graphics(p)) => {
                    prop_assert_eq!(bytes[0], STREAM_KIND_GRAPHICS);
                    prop_assert_eq!(p, &bytes[1..]);
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }
    }
}
