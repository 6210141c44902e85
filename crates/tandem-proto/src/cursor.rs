//! The shared pointer: its image travels once per distinct shape on the
//! control stream ([`CursorShape`]); its position travels as small QUIC
//! datagrams ([`CursorPosition`]), where only the newest value matters, so a
//! moving pointer costs no graphics update.

use serde::{Deserialize, Serialize};

use crate::ProtoError;

/// Largest cursor width or height, in pixels. A larger pointer image is
/// cropped around its hot spot by the sender; 96x96 ARGB fits well inside
/// one control message.
pub const MAX_CURSOR_SIDE: u16 = 96;

/// Largest datagram this protocol sends, in bytes.
pub const MAX_DATAGRAM_LEN: usize = 64;

/// First byte of a cursor-position datagram.
pub const DATAGRAM_KIND_CURSOR: u8 = 1;

/// A pointer image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorShape {
    /// Names this shape in [`CursorPosition::shape`]; a sender never reuses
    /// an id for another image within a connection.
    pub id: u32,
    /// Width in pixels, 1..=[`MAX_CURSOR_SIDE`].
    pub width: u16,
    /// Height in pixels, 1..=[`MAX_CURSOR_SIDE`].
    pub height: u16,
    /// Hot spot (the pixel that points), from the left.
    pub hot_x: u16,
    /// Hot spot, from the top.
    pub hot_y: u16,
    /// Row-major pixels, four bytes each in the order B, G, R, A, with
    /// premultiplied alpha (as X servers give them).
    pub bgra: Vec<u8>,
}

impl CursorShape {
    /// Checks sizes: both sides within 1..=[`MAX_CURSOR_SIDE`], the hot spot
    /// inside, and exactly `width * height * 4` bytes of pixels.
    pub fn validate(&self) -> Result<(), ProtoError> {
        let side_ok = |s: u16| (1..=MAX_CURSOR_SIDE).contains(&s);
        if !side_ok(self.width) || !side_ok(self.height) {
            return Err(ProtoError::InvalidCursor("size outside 1..=96"));
        }
        if self.hot_x >= self.width || self.hot_y >= self.height {
            return Err(ProtoError::InvalidCursor("hot spot outside the image"));
        }
        if self.bgra.len() != usize::from(self.width) * usize::from(self.height) * 4 {
            return Err(ProtoError::InvalidCursor(
                "pixel count does not match the size",
            ));
        }
        Ok(())
    }
}

/// Where the pointer is, in the coordinates of the shared rectangle (it may
/// lie outside it, then the viewer draws nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorPosition {
    /// Increases with every position sent on a connection; datagrams may
    /// arrive out of order and the receiver keeps the highest.
    pub seq: u32,
    /// Hot spot, from the left edge of the shared rectangle.
    pub x: i32,
    /// Hot spot, from the top edge of the shared rectangle.
    pub y: i32,
    /// The [`CursorShape::id`] to draw (0: none sent yet).
    pub shape: u32,
    /// Whether the pointer is shown at all.
    pub visible: bool,
}

impl CursorPosition {
    /// The datagram carrying this position: a kind byte, then postcard.
    pub fn to_datagram(&self) -> Vec<u8> {
        let mut out = vec![DATAGRAM_KIND_CURSOR];
        // Serializing plain integers into a Vec cannot fail.
        out.extend(postcard::to_allocvec(self).unwrap_or_default());
        out
    }

    /// Parses a datagram made by [`to_datagram`](Self::to_datagram).
    pub fn from_datagram(bytes: &[u8]) -> Result<Self, ProtoError> {
        if bytes.len() > MAX_DATAGRAM_LEN {
            return Err(ProtoError::MessageTooLarge {
                len: bytes.len(),
                max: MAX_DATAGRAM_LEN,
            });
        }
        match bytes.split_first() {
            None => Err(ProtoError::EmptyStream),
            Some((&DATAGRAM_KIND_CURSOR, body)) => {
                let (pos, rest) = postcard::take_from_bytes(body).map_err(ProtoError::Decode)?;
                if !rest.is_empty() {
                    return Err(ProtoError::TrailingBytes { count: rest.len() });
                }
                Ok(pos)
            }
            Some((&kind, _)) => Err(ProtoError::UnknownStreamKind(kind)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn shape(width: u16, height: u16) -> CursorShape {
        CursorShape {
            id: 3,
            width,
            height,
            hot_x: 0,
            hot_y: 0,
            bgra: vec![7; usize::from(width) * usize::from(height) * 4],
        }
    }

    #[test]
    fn shapes_are_bounded() {
        assert!(shape(16, 16).validate().is_ok());
        assert!(shape(MAX_CURSOR_SIDE, MAX_CURSOR_SIDE).validate().is_ok());
        assert!(shape(0, 16).validate().is_err());
        assert!(shape(MAX_CURSOR_SIDE + 1, 16).validate().is_err());
        let mut s = shape(16, 16);
        s.hot_x = 16;
        assert!(s.validate().is_err());
        let mut s = shape(16, 16);
        s.bgra.pop();
        assert!(s.validate().is_err());
        // The biggest shape fits in one control message.
        let msg = crate::ServerMessage::CursorShape(shape(MAX_CURSOR_SIDE, MAX_CURSOR_SIDE));
        assert!(crate::encode_message(&msg).is_ok());
    }

    proptest! {
        #[test]
        fn positions_round_trip(seq: u32, x: i32, y: i32, shape: u32, visible: bool) {
            let pos = CursorPosition { seq, x, y, shape, visible };
            let bytes = pos.to_datagram();
            prop_assert!(bytes.len() <= MAX_DATAGRAM_LEN);
            prop_assert_eq!(CursorPosition::from_datagram(&bytes), Ok(pos));
        }

        #[test]
        fn garbage_datagrams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = CursorPosition::from_datagram(&bytes);
        }
    }

    #[test]
    fn bad_datagrams_are_errors() {
        assert!(CursorPosition::from_datagram(&[]).is_err());
        assert!(CursorPosition::from_datagram(&[9, 0, 0]).is_err());
        let mut ok = CursorPosition {
            seq: 1,
            x: 2,
            y: 3,
            shape: 4,
            visible: true,
        }
        .to_datagram();
        ok.push(0);
        assert!(CursorPosition::from_datagram(&ok).is_err());
    }
}
