//! [`EncodedUpdate`] and its tile records, their compact little-endian wire
//! format, and the structural checks applied to every untrusted update.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! magic u8 = 0x54 ('T')   version u8 = 1
//! seq u64   base_seq u64   width u32   height u32   record_count u32
//! record_count x { tile_x u16  tile_y u16  kind u8  payload }
//!   kind 0 Solid     payload: colour u32
//!   kind 1 Raw       payload: len u32, len bytes (the tile's pixels, LE u32 each)
//!   kind 2 Zstd      payload: len u32, len bytes (zstd of the Raw bytes)
//!   kind 3 XorZstd   payload: len u32, len bytes (zstd of pixels XOR previous pixels)
//!   kind 4 CopyTile  payload: src_x u16, src_y u16
//! ```

use crate::tile::Grid;
use crate::{CodecError, MAX_DIMENSION};

/// First byte of every serialized update.
pub const UPDATE_MAGIC: u8 = 0x54;
/// Format version written after the magic.
pub const UPDATE_VERSION: u8 = 1;

const HEADER_LEN: usize = 2 + 8 + 8 + 4 + 4 + 4;
const RECORD_HEADER_LEN: usize = 2 + 2 + 1;
/// The smallest possible record (Solid or CopyTile).
const MIN_RECORD_LEN: usize = RECORD_HEADER_LEN + 4;

const KIND_SOLID: u8 = 0;
const KIND_RAW: u8 = 1;
const KIND_ZSTD: u8 = 2;
const KIND_XOR_ZSTD: u8 = 3;
const KIND_COPY: u8 = 4;

/// One graphics update. `seq` is the encoder state after applying it.
/// `base_seq` is the state it applies to: 0 means a key frame
/// (self-contained, covers every tile, replaces everything, may change the
/// size); otherwise the decoder must currently be at exactly `base_seq` and
/// have the same width/height.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedUpdate {
    /// Encoder state after this update (never 0).
    pub seq: u64,
    /// State this update applies to; 0 for a key frame.
    pub base_seq: u64,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Changed tiles, at most one record per tile.
    pub records: Vec<TileRecord>,
}

/// The new content of one tile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TileRecord {
    /// Tile column (pixel x / [`crate::TILE_SIZE`]).
    pub tile_x: u16,
    /// Tile row (pixel y / [`crate::TILE_SIZE`]).
    pub tile_y: u16,
    /// How the content is coded.
    pub kind: TileKind,
}

/// How a tile's content is coded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TileKind {
    /// The whole tile is one colour.
    Solid(u32),
    /// Uncompressed pixels, little-endian `u32` each, row after row.
    Raw(Vec<u8>),
    /// zstd of the Raw bytes.
    Zstd(Vec<u8>),
    /// zstd of (pixels XOR previous content of the same tile); not self-contained.
    XorZstd(Vec<u8>),
    /// A copy of another tile (of the same size) of the previous frame; not self-contained.
    CopyTile {
        /// Source tile column.
        src_x: u16,
        /// Source tile row.
        src_y: u16,
    },
}

impl TileKind {
    /// True when the record does not depend on the previous frame.
    pub fn is_self_contained(&self) -> bool {
        matches!(
            self,
            TileKind::Solid(_) | TileKind::Raw(_) | TileKind::Zstd(_)
        )
    }

    fn encoded_len(&self) -> usize {
        match self {
            TileKind::Solid(_) | TileKind::CopyTile { .. } => 4,
            TileKind::Raw(b) | TileKind::Zstd(b) | TileKind::XorZstd(b) => 4 + b.len(),
        }
    }
}

impl EncodedUpdate {
    /// True for a key frame (`base_seq == 0`).
    pub fn is_key_frame(&self) -> bool {
        self.base_seq == 0
    }

    /// True when every record is self-contained.
    pub fn is_self_contained(&self) -> bool {
        self.records.iter().all(|r| r.kind.is_self_contained())
    }

    /// Length of [`EncodedUpdate::to_bytes`], computed without allocating.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN
            + self
                .records
                .iter()
                .map(|r| RECORD_HEADER_LEN + r.kind.encoded_len())
                .sum::<usize>()
    }

    /// Serializes the update (see the module documentation for the layout).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.push(UPDATE_MAGIC);
        out.push(UPDATE_VERSION);
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.base_seq.to_le_bytes());
        out.extend_from_slice(&self.width.to_le_bytes());
        out.extend_from_slice(&self.height.to_le_bytes());
        out.extend_from_slice(&(self.records.len() as u32).to_le_bytes());
        for r in &self.records {
            out.extend_from_slice(&r.tile_x.to_le_bytes());
            out.extend_from_slice(&r.tile_y.to_le_bytes());
            match &r.kind {
                TileKind::Solid(c) => {
                    out.push(KIND_SOLID);
                    out.extend_from_slice(&c.to_le_bytes());
                }
                TileKind::Raw(b) => push_blob(&mut out, KIND_RAW, b),
                TileKind::Zstd(b) => push_blob(&mut out, KIND_ZSTD, b),
                TileKind::XorZstd(b) => push_blob(&mut out, KIND_XOR_ZSTD, b),
                TileKind::CopyTile { src_x, src_y } => {
                    out.push(KIND_COPY);
                    out.extend_from_slice(&src_x.to_le_bytes());
                    out.extend_from_slice(&src_y.to_le_bytes());
                }
            }
        }
        out
    }

    /// Parses an update from untrusted bytes. Never panics; memory use is
    /// bounded by the input length; the result passes the same structural
    /// checks as [`crate::Decoder::apply`] (dimensions, tile ranges, one
    /// record per tile, payload sizes, complete self-contained key frames).
    pub fn from_bytes(bytes: &[u8]) -> Result<EncodedUpdate, CodecError> {
        let mut r = Reader { bytes };
        let magic = r.u8()?;
        if magic != UPDATE_MAGIC {
            return Err(CodecError::BadMagic(magic));
        }
        let version = r.u8()?;
        if version != UPDATE_VERSION {
            return Err(CodecError::UnsupportedVersion(version));
        }
        let seq = r.u64()?;
        let base_seq = r.u64()?;
        let width = r.u32()?;
        let height = r.u32()?;
        let count = r.u32()?;
        if width > MAX_DIMENSION || height > MAX_DIMENSION {
            return Err(CodecError::BadDimensions { width, height });
        }
        let grid = Grid::new(width, height);
        if count as usize > grid.count() {
            return Err(CodecError::TooManyRecords {
                count: u64::from(count),
                max: grid.count() as u64,
            });
        }
        if count as usize > r.bytes.len() / MIN_RECORD_LEN {
            return Err(CodecError::Truncated);
        }
        let mut records = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let tile_x = r.u16()?;
            let tile_y = r.u16()?;
            let kind = match r.u8()? {
                KIND_SOLID => TileKind::Solid(r.u32()?),
                KIND_RAW => TileKind::Raw(r.blob()?),
                KIND_ZSTD => TileKind::Zstd(r.blob()?),
                KIND_XOR_ZSTD => TileKind::XorZstd(r.blob()?),
                KIND_COPY => TileKind::CopyTile {
                    src_x: r.u16()?,
                    src_y: r.u16()?,
                },
                other => return Err(CodecError::UnknownTileKind(other)),
            };
            records.push(TileRecord {
                tile_x,
                tile_y,
                kind,
            });
        }
        if !r.bytes.is_empty() {
            return Err(CodecError::TrailingBytes(r.bytes.len()));
        }
        let update = EncodedUpdate {
            seq,
            base_seq,
            width,
            height,
            records,
        };
        let mut seen = Vec::new();
        validate(&update, &mut seen)?;
        Ok(update)
    }
}

fn push_blob(out: &mut Vec<u8>, kind: u8, b: &[u8]) {
    out.push(kind);
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// Checks everything about an update that does not depend on decoder
/// state; returns its tile grid. `seen` is scratch space.
pub(crate) fn validate(update: &EncodedUpdate, seen: &mut Vec<bool>) -> Result<Grid, CodecError> {
    let (width, height) = (update.width, update.height);
    if width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(CodecError::BadDimensions { width, height });
    }
    if update.seq == 0 || (!update.is_key_frame() && update.seq <= update.base_seq) {
        return Err(CodecError::BadSeq {
            seq: update.seq,
            base_seq: update.base_seq,
        });
    }
    let grid = Grid::new(width, height);
    if update.records.len() > grid.count() {
        return Err(CodecError::TooManyRecords {
            count: update.records.len() as u64,
            max: grid.count() as u64,
        });
    }
    seen.clear();
    seen.resize(grid.count(), false);
    for r in &update.records {
        let (tile_x, tile_y) = (r.tile_x, r.tile_y);
        if !grid.contains(tile_x, tile_y) {
            return Err(CodecError::TileOutOfRange { tile_x, tile_y });
        }
        let i = grid.index(tile_x, tile_y);
        if std::mem::replace(&mut seen[i], true) {
            return Err(CodecError::DuplicateTile { tile_x, tile_y });
        }
        if update.is_key_frame() && !r.kind.is_self_contained() {
            return Err(CodecError::NotSelfContained { tile_x, tile_y });
        }
        let raw_len = grid.tile_bytes(tile_x, tile_y);
        let bad = |reason| CodecError::BadPayload {
            tile_x,
            tile_y,
            reason,
        };
        match &r.kind {
            TileKind::Solid(_) => {}
            TileKind::Raw(b) => {
                if b.len() != raw_len {
                    return Err(bad("raw payload length does not match the tile size"));
                }
            }
            TileKind::Zstd(b) | TileKind::XorZstd(b) => {
                if b.is_empty() || b.len() >= raw_len {
                    return Err(bad(
                        "compressed payload is empty or not smaller than the tile",
                    ));
                }
            }
            TileKind::CopyTile { src_x, src_y } => {
                if !grid.contains(*src_x, *src_y) {
                    return Err(bad("copy source is outside the frame"));
                }
                let src = grid.tile_rect(*src_x, *src_y);
                let dst = grid.tile_rect(tile_x, tile_y);
                if (src.width, src.height) != (dst.width, dst.height) {
                    return Err(bad("copy source has another size"));
                }
            }
        }
    }
    if update.is_key_frame() && update.records.len() != grid.count() {
        return Err(CodecError::IncompleteKeyFrame {
            missing: (grid.count() - update.records.len()) as u64,
        });
    }
    Ok(grid)
}

/// A bounds-checked little-endian cursor.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let (head, rest) = self
            .bytes
            .split_first_chunk::<N>()
            .ok_or(CodecError::Truncated)?;
        self.bytes = rest;
        Ok(*head)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, CodecError> {
        Ok(u16::from_le_bytes(self.take()?))
    }

    fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(self.take()?))
    }

    fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(self.take()?))
    }

    fn blob(&mut self) -> Result<Vec<u8>, CodecError> {
        let len = self.u32()? as usize;
        if len > self.bytes.len() {
            return Err(CodecError::Truncated);
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> EncodedUpdate {
        EncodedUpdate {
            seq: 7,
            base_seq: 6,
            width: 130,
            height: 70,
            records: vec![
                TileRecord {
                    tile_x: 2,
                    tile_y: 1,
                    kind: TileKind::Raw(vec![9; 2 * 6 * 4]),
                },
                TileRecord {
                    tile_x: 0,
                    tile_y: 0,
                    kind: TileKind::Solid(0x123456),
                },
                TileRecord {
                    tile_x: 1,
                    tile_y: 0,
                    kind: TileKind::CopyTile { src_x: 0, src_y: 0 },
                },
                TileRecord {
                    tile_x: 0,
                    tile_y: 1,
                    kind: TileKind::XorZstd(vec![1, 2, 3]),
                },
            ],
        }
    }

    #[test]
    fn round_trip_and_len() {
        let u = sample();
        let b = u.to_bytes();
        assert_eq!(b.len(), u.encoded_len());
        assert_eq!(EncodedUpdate::from_bytes(&b), Ok(u));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let b = sample().to_bytes();
        for n in 0..b.len() {
            assert!(EncodedUpdate::from_bytes(&b[..n]).is_err(), "prefix {n}");
        }
        let mut long = b.clone();
        long.push(0);
        assert_eq!(
            EncodedUpdate::from_bytes(&long),
            Err(CodecError::TrailingBytes(1))
        );
    }

    #[test]
    fn rejects_bad_structure() {
        let mut u = sample();
        u.records[1].tile_x = 3;
        assert!(matches!(
            validate(&u, &mut Vec::new()),
            Err(CodecError::TileOutOfRange { .. })
        ));
        let mut u = sample();
        u.records[1].tile_x = 2;
        u.records[1].tile_y = 1;
        assert!(matches!(
            validate(&u, &mut Vec::new()),
            Err(CodecError::DuplicateTile { .. })
        ));
        let mut u = sample();
        u.base_seq = 0;
        assert!(matches!(
            validate(&u, &mut Vec::new()),
            Err(CodecError::NotSelfContained { .. })
        ));
        let mut u = sample();
        u.records[2].kind = TileKind::CopyTile { src_x: 2, src_y: 0 };
        assert!(matches!(
            validate(&u, &mut Vec::new()),
            Err(CodecError::BadPayload { .. })
        ));
        let mut b = sample().to_bytes();
        b[0] = 0;
        assert_eq!(EncodedUpdate::from_bytes(&b), Err(CodecError::BadMagic(0)));
    }

    #[test]
    fn huge_record_count_is_rejected_before_allocating() {
        let mut u = sample();
        u.width = MAX_DIMENSION;
        u.height = MAX_DIMENSION;
        u.records.clear();
        let mut b = u.to_bytes();
        b[26..30].copy_from_slice(&60_000u32.to_le_bytes());
        assert_eq!(EncodedUpdate::from_bytes(&b), Err(CodecError::Truncated));
    }
}
