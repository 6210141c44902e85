//! The crate's error type: everything that can go wrong building frames,
//! parsing updates and applying them.

/// Errors from frame construction, update parsing and decoding.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The input ended before the update was complete.
    #[error("update truncated: input ended early")]
    Truncated,
    /// The first byte is not the update magic.
    #[error("bad magic byte {0:#04x}: not a tandem graphics update")]
    BadMagic(u8),
    /// The format version is not one this build understands.
    #[error("unsupported update format version {0}")]
    UnsupportedVersion(u8),
    /// Bytes were left over after the last record.
    #[error("{0} trailing bytes after the last record")]
    TrailingBytes(usize),
    /// A width or height is larger than [`crate::MAX_DIMENSION`].
    #[error("dimensions {width}x{height} exceed the maximum of {max}", max = crate::MAX_DIMENSION)]
    BadDimensions {
        /// Width given.
        width: u32,
        /// Height given.
        height: u32,
    },
    /// A pixel buffer does not hold exactly width*height pixels.
    #[error("pixel buffer holds {found} elements, expected {expected}")]
    LengthMismatch {
        /// Elements needed for the dimensions.
        expected: u64,
        /// Elements given.
        found: u64,
    },
    /// An update holds more records than the frame has tiles.
    #[error("{count} records for a frame of {max} tiles")]
    TooManyRecords {
        /// Records in the update.
        count: u64,
        /// Tiles in the frame.
        max: u64,
    },
    /// A record names a tile outside the frame.
    #[error("tile ({tile_x}, {tile_y}) is outside the frame")]
    TileOutOfRange {
        /// Column of the tile.
        tile_x: u16,
        /// Row of the tile.
        tile_y: u16,
    },
    /// Two records name the same tile.
    #[error("tile ({tile_x}, {tile_y}) appears twice in one update")]
    DuplicateTile {
        /// Column of the tile.
        tile_x: u16,
        /// Row of the tile.
        tile_y: u16,
    },
    /// A key frame does not cover every tile.
    #[error("key frame misses {missing} tiles")]
    IncompleteKeyFrame {
        /// Tiles without a record.
        missing: u64,
    },
    /// A key frame holds a record that depends on the previous frame or on
    /// the shared stream.
    #[error("key frame record for tile ({tile_x}, {tile_y}) is not self-contained")]
    NotSelfContained {
        /// Column of the tile.
        tile_x: u16,
        /// Row of the tile.
        tile_y: u16,
    },
    /// An unknown record kind tag.
    #[error("unknown tile record kind {0}")]
    UnknownTileKind(u8),
    /// The sequence numbers are inconsistent (seq 0, or a delta whose seq is not after its base).
    #[error("bad sequence numbers: seq {seq}, base {base_seq}")]
    BadSeq {
        /// Sequence number after the update.
        seq: u64,
        /// Sequence number the update applies to.
        base_seq: u64,
    },
    /// A delta update was given before any key frame.
    #[error("no key frame applied yet: request a key frame")]
    NeedKeyFrame,
    /// A delta update applies to another state than the decoder's.
    #[error(
        "update applies to seq {found} but the decoder is at seq {expected}: request a catch-up"
    )]
    BaseMismatch {
        /// The decoder's current seq.
        expected: u64,
        /// The update's base seq.
        found: u64,
    },
    /// A delta update has other dimensions than the decoder's frame.
    #[error("update is {found_width}x{found_height} but the frame is {expected_width}x{expected_height}")]
    SizeMismatch {
        /// Width of the decoder's frame.
        expected_width: u32,
        /// Height of the decoder's frame.
        expected_height: u32,
        /// Width in the update.
        found_width: u32,
        /// Height in the update.
        found_height: u32,
    },
    /// The flags byte has bits this version does not define.
    #[error("unknown update flags {0:#04x}")]
    BadFlags(u8),
    /// A variable-length integer is over-long or does not fit its field.
    #[error("malformed varint in update header or record")]
    BadVarint,
    /// An update carries more copy-rects than [`crate::MAX_MOVES`].
    #[error("{count} copy-rects in one update, at most {max} allowed")]
    TooManyMoves {
        /// Copy-rects given.
        count: u64,
        /// The limit.
        max: usize,
    },
    /// A key frame carries copy-rects (it must not depend on any earlier picture).
    #[error("key frame carries copy-rects")]
    MovesInKeyFrame,
    /// A copy-rect is empty or reaches outside the frame.
    #[error("copy-rect {index} is invalid: {reason}")]
    BadMove {
        /// Position of the copy-rect in the update (0 when applied alone).
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The update's shared pixel stream is malformed or of the wrong size.
    #[error("bad shared pixel stream: {reason}")]
    BadStream {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A record's payload is malformed (bad length, bad zstd data, bad copy source).
    #[error("bad payload for tile ({tile_x}, {tile_y}): {reason}")]
    BadPayload {
        /// Column of the tile.
        tile_x: u16,
        /// Row of the tile.
        tile_y: u16,
        /// What is wrong with it.
        reason: &'static str,
    },
}
