//! [`EncodedUpdate`], its copy-rects, tile records and shared pixel stream,
//! their compact wire format, and the structural checks applied to every
//! untrusted update.
//!
//! Layout (varint: unsigned LEB128, canonical, at most 10 bytes; zigzag:
//! signed as a varint; u32: 4 bytes little-endian):
//!
//! ```text
//! magic u8 = 0x54 ('T')   version u8 = 2
//! flags u8: bit 0 copy-rects follow, bit 1 shared stream is zstd,
//!           bit 2 shared stream holds 3 bytes per value (top bytes all zero),
//!           bit 3 shared stream is palette-coded
//! seq varint (>= 1)   gap varint (seq - base_seq, 1..=seq; gap == seq is a key frame)
//! width varint   height varint
//! [flags bit 0] move_count varint (1..=256), move_count x
//!     { src_x src_y src_w src_h varint   dx zigzag   dy zigzag }   (dst = src + (dx, dy))
//! record_count varint, record_count x { tile varint (row * tiles_x + column)  kind u8  payload }
//!   kind 0 Solid     colour u32
//!   kind 1 Raw       len varint, len bytes: the tile's pixels, LE u32 each
//!   kind 2 Zstd      len varint, len bytes: zstd (magic-less) of the Raw bytes
//!   kind 3 CopyTile  source tile varint (a tile of the same size of the moved picture)
//!   kind 4 Pixels    area: x y w h u8 (inside the tile); values from the shared stream
//!   kind 5 Xor       area; values XORed onto the moved picture's pixels
//!   kind | 0x10 for Pixels and Xor: the area is the whole tile (no area bytes)
//! [any Pixels or Xor record] stream_len varint, stream_len bytes: the values
//!     of every Pixels and Xor record in record order, row by row, little-endian,
//!     4 or 3 bytes each (flags bit 2); with flags bit 3 instead
//!     { n-1 u8, n palette values (4 or 3 bytes each), one index u8 per value };
//!     zstd (magic-less) of that when flags bit 1
//! ```
//!
//! A delta applies, in order: the copy-rects to the attendee's picture
//! (each reads the picture as it was just before it), then the tile records
//! (CopyTile and Xor read the picture with the copies applied, before any
//! record is written). One shared stream per update lets zstd code a glyph
//! repeated across tiles once; key frames and catch-ups use only the
//! self-contained whole-tile kinds (Solid, Raw, Zstd) and no copy-rects.

use crate::tile::Grid;
use crate::{CodecError, CopyRect, Rect, MAX_DIMENSION, MAX_MOVES};

/// First byte of every serialized update.
pub const UPDATE_MAGIC: u8 = 0x54;
/// Format version written after the magic.
pub const UPDATE_VERSION: u8 = 2;

const FLAG_MOVES: u8 = 1;
const FLAG_STREAM_ZSTD: u8 = 2;
const FLAG_PACKED24: u8 = 4;
const FLAG_PALETTE: u8 = 8;
const KNOWN_FLAGS: u8 = FLAG_MOVES | FLAG_STREAM_ZSTD | FLAG_PACKED24 | FLAG_PALETTE;
/// Most colours of a palette-coded stream (one index byte each).
pub(crate) const MAX_PALETTE: usize = 256;

/// The smallest possible record (a whole-tile Pixels record of tile 0).
const MIN_RECORD_LEN: usize = 2;
/// The smallest possible copy-rect.
const MIN_MOVE_LEN: usize = 6;

const KIND_SOLID: u8 = 0;
const KIND_RAW: u8 = 1;
const KIND_ZSTD: u8 = 2;
const KIND_COPY: u8 = 3;
const KIND_PIXELS: u8 = 4;
const KIND_XOR: u8 = 5;
const WHOLE_TILE: u8 = 0x10;

/// One graphics update. `seq` is the encoder state after applying it.
/// `base_seq` is the state it applies to: 0 means a key frame
/// (self-contained, covers every tile, no copy-rects, replaces everything,
/// may change the size); otherwise the decoder must currently be at exactly
/// `base_seq` and have the same width/height.
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
    /// Copy-rects applied, in order, before the records (at most
    /// [`MAX_MOVES`]; none in a key frame).
    pub moves: Vec<CopyRect>,
    /// Changed tiles, at most one record per tile.
    pub records: Vec<TileRecord>,
    /// The values of the Pixels and Xor records.
    pub stream: SharedStream,
}

/// The values of every [`TileKind::Pixels`] and [`TileKind::Xor`] record of
/// an update, in record order, each area row by row: one buffer (and one
/// zstd frame) for the whole update. Empty when no record uses it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SharedStream {
    /// Each value is 3 bytes (its top byte, zero in every value, dropped)
    /// instead of 4.
    pub packed24: bool,
    /// `data` is a zstd frame without its magic number (else the bytes
    /// themselves, exactly as many as the records need).
    pub compressed: bool,
    /// The values are coded as a palette (a count byte, up to 256 values)
    /// and one index byte per value: text and flat content have few colours.
    pub palette: bool,
    /// The bytes.
    pub data: Vec<u8>,
}

impl SharedStream {
    /// Bytes per value (per palette entry when palette-coded).
    pub fn bytes_per_value(&self) -> usize {
        if self.packed24 {
            3
        } else {
            4
        }
    }

    /// Uncompressed length for `values` values and `colours` palette entries.
    pub(crate) fn unpacked_len(&self, values: usize, colours: usize) -> usize {
        if self.palette {
            1 + colours * self.bytes_per_value() + values
        } else {
            values * self.bytes_per_value()
        }
    }
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
    /// Uncompressed pixels of the whole tile, little-endian `u32` each, row after row.
    Raw(Vec<u8>),
    /// zstd (without its magic number) of the Raw bytes.
    Zstd(Vec<u8>),
    /// A copy of another tile (of the same size) of the picture after the
    /// copy-rects; not self-contained.
    CopyTile {
        /// Source tile column.
        src_x: u16,
        /// Source tile row.
        src_y: u16,
    },
    /// New pixels of an area of the tile (tile-relative), taken from the
    /// update's shared stream; the rest of the tile is kept.
    Pixels(Rect),
    /// An area of the tile (tile-relative) whose pixels are XORed with
    /// values from the shared stream; not self-contained.
    Xor(Rect),
}

impl TileKind {
    /// True when the record depends neither on the previous picture nor on
    /// the update's shared stream (what key frames and catch-ups use).
    pub fn is_self_contained(&self) -> bool {
        matches!(
            self,
            TileKind::Solid(_) | TileKind::Raw(_) | TileKind::Zstd(_)
        )
    }

    /// The tile-relative area a Pixels or Xor record takes from the stream.
    pub(crate) fn stream_area(&self) -> Option<Rect> {
        match self {
            TileKind::Pixels(a) | TileKind::Xor(a) => Some(*a),
            _ => None,
        }
    }
}

/// Where serialized bytes go: a buffer, or a counter for the length.
trait Sink {
    fn put(&mut self, b: &[u8]);
    fn byte(&mut self, b: u8) {
        self.put(&[b]);
    }
    fn varint(&mut self, mut v: u64) {
        let mut buf = [0u8; 10];
        let mut n = 0;
        while v >= 0x80 {
            buf[n] = (v as u8) | 0x80;
            v >>= 7;
            n += 1;
        }
        buf[n] = v as u8;
        self.put(&buf[..=n]);
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
}

struct Counter(usize);

impl Sink for Counter {
    fn put(&mut self, b: &[u8]) {
        self.0 += b.len();
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

impl EncodedUpdate {
    /// True for a key frame (`base_seq == 0`).
    pub fn is_key_frame(&self) -> bool {
        self.base_seq == 0
    }

    /// True when there are no copy-rects and every record is self-contained.
    pub fn is_self_contained(&self) -> bool {
        self.moves.is_empty() && self.records.iter().all(|r| r.kind.is_self_contained())
    }

    /// Length of [`EncodedUpdate::to_bytes`], computed without allocating.
    pub fn encoded_len(&self) -> usize {
        let mut c = Counter(0);
        self.write(&mut c);
        c.0
    }

    /// Serializes the update (see the module documentation for the layout).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.write(&mut out);
        out
    }

    fn write<S: Sink>(&self, out: &mut S) {
        out.byte(UPDATE_MAGIC);
        out.byte(UPDATE_VERSION);
        let mut flags = 0;
        if !self.moves.is_empty() {
            flags |= FLAG_MOVES;
        }
        let uses_stream = self.records.iter().any(|r| r.kind.stream_area().is_some());
        if uses_stream && self.stream.compressed {
            flags |= FLAG_STREAM_ZSTD;
        }
        if uses_stream && self.stream.packed24 {
            flags |= FLAG_PACKED24;
        }
        if uses_stream && self.stream.palette {
            flags |= FLAG_PALETTE;
        }
        out.byte(flags);
        out.varint(self.seq);
        out.varint(self.seq.wrapping_sub(self.base_seq));
        out.varint(self.width.into());
        out.varint(self.height.into());
        if !self.moves.is_empty() {
            out.varint(self.moves.len() as u64);
            for m in &self.moves {
                out.varint(m.src.x.into());
                out.varint(m.src.y.into());
                out.varint(m.src.width.into());
                out.varint(m.src.height.into());
                let (dx, dy) = m.offset();
                out.varint(zigzag(dx));
                out.varint(zigzag(dy));
            }
        }
        let grid = Grid::new(self.width, self.height);
        out.varint(self.records.len() as u64);
        for r in &self.records {
            out.varint(tile_index(grid, r.tile_x, r.tile_y));
            match &r.kind {
                TileKind::Solid(c) => {
                    out.byte(KIND_SOLID);
                    out.put(&c.to_le_bytes());
                }
                TileKind::Raw(b) | TileKind::Zstd(b) => {
                    out.byte(if matches!(r.kind, TileKind::Raw(_)) {
                        KIND_RAW
                    } else {
                        KIND_ZSTD
                    });
                    out.varint(b.len() as u64);
                    out.put(b);
                }
                TileKind::CopyTile { src_x, src_y } => {
                    out.byte(KIND_COPY);
                    out.varint(tile_index(grid, *src_x, *src_y));
                }
                TileKind::Pixels(a) | TileKind::Xor(a) => {
                    let kind = if matches!(r.kind, TileKind::Pixels(_)) {
                        KIND_PIXELS
                    } else {
                        KIND_XOR
                    };
                    let whole = grid.contains(r.tile_x, r.tile_y) && {
                        let t = grid.tile_rect(r.tile_x, r.tile_y);
                        *a == Rect::new(0, 0, t.width, t.height)
                    };
                    if whole {
                        out.byte(kind | WHOLE_TILE);
                    } else {
                        out.byte(kind);
                        // Areas of valid updates fit a tile (at most 64).
                        for v in [a.x, a.y, a.width, a.height] {
                            out.byte(v.min(255) as u8);
                        }
                    }
                }
            }
        }
        if uses_stream {
            out.varint(self.stream.data.len() as u64);
            out.put(&self.stream.data);
        }
    }

    /// Parses an update from untrusted bytes. Never panics; memory use is
    /// bounded by the input length; the result passes the same structural
    /// checks as [`crate::Decoder::apply`] (dimensions, copy-rects inside
    /// the frame, tile ranges, one record per tile, areas inside their
    /// tiles, payload and stream sizes, complete self-contained key frames).
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
        let flags = r.u8()?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(CodecError::BadFlags(flags));
        }
        let seq = r.varint()?;
        let gap = r.varint()?;
        if seq == 0 || gap == 0 || gap > seq {
            return Err(CodecError::BadSeq {
                seq,
                base_seq: seq.wrapping_sub(gap),
            });
        }
        let base_seq = seq - gap;
        let (w, h) = (r.varint()?, r.varint()?);
        if w > u64::from(MAX_DIMENSION) || h > u64::from(MAX_DIMENSION) {
            let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
            return Err(CodecError::BadDimensions {
                width: clamp(w),
                height: clamp(h),
            });
        }
        let (width, height) = (w as u32, h as u32);
        let mut moves = Vec::new();
        if flags & FLAG_MOVES != 0 {
            let count = r.varint()?;
            if count == 0 || count > MAX_MOVES as u64 {
                return Err(CodecError::TooManyMoves {
                    count,
                    max: MAX_MOVES,
                });
            }
            if count as usize > r.bytes.len() / MIN_MOVE_LEN {
                return Err(CodecError::Truncated);
            }
            for index in 0..count as usize {
                let mut field = || -> Result<u32, CodecError> {
                    u32::try_from(r.varint()?).map_err(|_| CodecError::BadMove {
                        index,
                        reason: "coordinate does not fit 32 bits",
                    })
                };
                let src = Rect::new(field()?, field()?, field()?, field()?);
                let (dx, dy) = (unzigzag(r.varint()?), unzigzag(r.varint()?));
                // `d` is any i64 the sender chose: checked, never wrapped.
                let to = |base: u32, d: i64| {
                    i64::from(base)
                        .checked_add(d)
                        .and_then(|v| u32::try_from(v).ok())
                        .ok_or(CodecError::BadMove {
                            index,
                            reason: "destination is not inside the frame",
                        })
                };
                moves.push(CopyRect {
                    src,
                    dst_x: to(src.x, dx)?,
                    dst_y: to(src.y, dy)?,
                });
            }
        }
        let grid = Grid::new(width, height);
        let count = r.varint()?;
        if count > grid.count() as u64 {
            return Err(CodecError::TooManyRecords {
                count,
                max: grid.count() as u64,
            });
        }
        if count as usize > r.bytes.len() / MIN_RECORD_LEN {
            return Err(CodecError::Truncated);
        }
        let mut records = Vec::with_capacity(count as usize);
        let mut uses_stream = false;
        for _ in 0..count {
            let (tile_x, tile_y) = r.tile(grid)?;
            let tag = r.u8()?;
            let kind = match tag & !WHOLE_TILE {
                _ if tag & WHOLE_TILE != 0
                    && !matches!(tag & !WHOLE_TILE, KIND_PIXELS | KIND_XOR) =>
                {
                    return Err(CodecError::UnknownTileKind(tag))
                }
                KIND_SOLID => TileKind::Solid(u32::from_le_bytes(r.take()?)),
                KIND_RAW => TileKind::Raw(r.blob()?),
                KIND_ZSTD => TileKind::Zstd(r.blob()?),
                KIND_COPY => {
                    let (src_x, src_y) = r.tile(grid)?;
                    TileKind::CopyTile { src_x, src_y }
                }
                k @ (KIND_PIXELS | KIND_XOR) => {
                    uses_stream = true;
                    let area = if tag & WHOLE_TILE != 0 {
                        let t = grid.tile_rect(tile_x, tile_y);
                        Rect::new(0, 0, t.width, t.height)
                    } else {
                        let [x, y, w, h] = r.take::<4>()?.map(u32::from);
                        Rect::new(x, y, w, h)
                    };
                    if k == KIND_PIXELS {
                        TileKind::Pixels(area)
                    } else {
                        TileKind::Xor(area)
                    }
                }
                _ => return Err(CodecError::UnknownTileKind(tag)),
            };
            records.push(TileRecord {
                tile_x,
                tile_y,
                kind,
            });
        }
        let mut stream = SharedStream::default();
        if uses_stream {
            stream.compressed = flags & FLAG_STREAM_ZSTD != 0;
            stream.packed24 = flags & FLAG_PACKED24 != 0;
            stream.palette = flags & FLAG_PALETTE != 0;
            stream.data = r.blob()?;
        } else if flags & (FLAG_STREAM_ZSTD | FLAG_PACKED24 | FLAG_PALETTE) != 0 {
            return Err(CodecError::BadStream {
                reason: "stream flags set but no record uses the stream",
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
            moves,
            records,
            stream,
        };
        let mut seen = Vec::new();
        validate(&update, &mut seen)?;
        Ok(update)
    }
}

fn tile_index(grid: Grid, tile_x: u16, tile_y: u16) -> u64 {
    u64::from(tile_y) * u64::from(grid.tiles_x) + u64::from(tile_x)
}

/// What [`validate`] found: the grid and how many values the shared stream holds.
pub(crate) struct Checked {
    pub grid: Grid,
    pub stream_values: usize,
}

/// Checks everything about an update that does not depend on decoder
/// state. `seen` is scratch space.
pub(crate) fn validate(
    update: &EncodedUpdate,
    seen: &mut Vec<bool>,
) -> Result<Checked, CodecError> {
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
    if update.moves.len() > MAX_MOVES {
        return Err(CodecError::TooManyMoves {
            count: update.moves.len() as u64,
            max: MAX_MOVES,
        });
    }
    if update.is_key_frame() && !update.moves.is_empty() {
        return Err(CodecError::MovesInKeyFrame);
    }
    for (index, m) in update.moves.iter().enumerate() {
        if let Some(reason) = m.problem(width, height) {
            return Err(CodecError::BadMove { index, reason });
        }
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
    let mut stream_values = 0usize;
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
        let dst = grid.tile_rect(tile_x, tile_y);
        let raw_len = dst.area() as usize * 4;
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
            TileKind::Zstd(b) => {
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
                if (src.width, src.height) != (dst.width, dst.height) {
                    return Err(bad("copy source has another size"));
                }
            }
            TileKind::Pixels(a) | TileKind::Xor(a) => {
                if a.is_empty()
                    || a.right() > u64::from(dst.width)
                    || a.bottom() > u64::from(dst.height)
                {
                    return Err(bad("area is empty or not inside the tile"));
                }
                stream_values += a.area() as usize;
            }
        }
    }
    if update.is_key_frame() && update.records.len() != grid.count() {
        return Err(CodecError::IncompleteKeyFrame {
            missing: (grid.count() - update.records.len()) as u64,
        });
    }
    let s = &update.stream;
    let bad = |reason| CodecError::BadStream { reason };
    if stream_values == 0 {
        if s.compressed || s.packed24 || s.palette || !s.data.is_empty() {
            return Err(bad("stream present but no record uses it"));
        }
    } else if s.compressed {
        if s.data.is_empty() || s.data.len() >= s.unpacked_len(stream_values, MAX_PALETTE) {
            return Err(bad(
                "compressed stream is empty or not smaller than its values",
            ));
        }
    } else {
        let colours = if s.palette {
            usize::from(*s.data.first().ok_or(bad("palette stream is empty"))?) + 1
        } else {
            0
        };
        if s.data.len() != s.unpacked_len(stream_values, colours) {
            return Err(bad("stream length does not match the records' areas"));
        }
    }
    Ok(Checked {
        grid,
        stream_values,
    })
}

/// A bounds-checked cursor.
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

    /// A canonical LEB128 varint of at most 64 bits.
    fn varint(&mut self) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.u8()?;
            if i == 9 && b > 1 {
                return Err(CodecError::BadVarint);
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if b == 0 && i > 0 {
                    return Err(CodecError::BadVarint);
                }
                return Ok(v);
            }
        }
        Err(CodecError::BadVarint)
    }

    /// A tile index, as coordinates in `grid`.
    fn tile(&mut self, grid: Grid) -> Result<(u16, u16), CodecError> {
        let i = self.varint()?;
        let tiles_x = u64::from(grid.tiles_x.max(1));
        let clamp = |v: u64| u16::try_from(v).unwrap_or(u16::MAX);
        let (tile_x, tile_y) = (clamp(i % tiles_x), clamp(i / tiles_x));
        if i >= grid.count() as u64 {
            return Err(CodecError::TileOutOfRange { tile_x, tile_y });
        }
        Ok((tile_x, tile_y))
    }

    fn blob(&mut self) -> Result<Vec<u8>, CodecError> {
        let len = self.varint()?;
        if len > self.bytes.len() as u64 {
            return Err(CodecError::Truncated);
        }
        let (head, rest) = self.bytes.split_at(len as usize);
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
            moves: vec![CopyRect {
                src: Rect::new(10, 20, 100, 40),
                dst_x: 4,
                dst_y: 25,
            }],
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
                    kind: TileKind::Xor(Rect::new(3, 1, 2, 2)),
                },
                TileRecord {
                    tile_x: 1,
                    tile_y: 1,
                    kind: TileKind::Pixels(Rect::new(0, 0, 64, 6)),
                },
            ],
            stream: SharedStream {
                packed24: true,
                compressed: false,
                palette: false,
                data: vec![5; (4 + 64 * 6) * 3],
            },
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
    fn varints_are_canonical() {
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            out.varint(v);
            let mut r = Reader { bytes: &out };
            assert_eq!(r.varint(), Ok(v));
            assert!(r.bytes.is_empty());
        }
        assert_eq!(
            Reader { bytes: &[0x80, 0] }.varint(),
            Err(CodecError::BadVarint)
        );
        assert_eq!(
            Reader { bytes: &[0xff; 10] }.varint(),
            Err(CodecError::BadVarint)
        );
        assert_eq!(
            Reader { bytes: &[0x80] }.varint(),
            Err(CodecError::Truncated)
        );
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, -12345] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
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
        u.moves.clear();
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
        // An area reaching past its (edge) tile.
        let mut u = sample();
        u.records[3].kind = TileKind::Xor(Rect::new(3, 5, 2, 2));
        assert!(matches!(
            validate(&u, &mut Vec::new()),
            Err(CodecError::BadPayload { .. })
        ));
        // A stream of the wrong size.
        let mut u = sample();
        u.stream.data.pop();
        assert!(matches!(
            validate(&u, &mut Vec::new()),
            Err(CodecError::BadStream { .. })
        ));
        let mut b = sample().to_bytes();
        b[0] = 0;
        assert_eq!(EncodedUpdate::from_bytes(&b), Err(CodecError::BadMagic(0)));
        let mut b = sample().to_bytes();
        b[2] |= 0x80;
        assert_eq!(
            EncodedUpdate::from_bytes(&b),
            Err(CodecError::BadFlags(0x85))
        );
    }

    #[test]
    fn bad_moves_are_refused() {
        let cases = [
            (Rect::new(0, 0, 0, 5), 1, 1),
            (Rect::new(0, 0, 5, 0), 1, 1),
            (Rect::new(100, 0, 31, 5), 0, 0),
            (Rect::new(0, 0, 130, 70), 1, 0),
            (Rect::new(0, 0, 10, 10), 0, 61),
            (Rect::new(u32::MAX, 0, 1, 1), 0, 0),
        ];
        for (src, dst_x, dst_y) in cases {
            let mut u = sample();
            u.moves.push(CopyRect { src, dst_x, dst_y });
            assert!(
                matches!(
                    validate(&u, &mut Vec::new()),
                    Err(CodecError::BadMove { index: 1, .. })
                ),
                "{src:?} -> ({dst_x}, {dst_y})"
            );
            // Through the wire too, where the check happens before use.
            let parsed = EncodedUpdate::from_bytes(&u.to_bytes());
            assert!(
                matches!(parsed, Err(CodecError::BadMove { index: 1, .. })),
                "{parsed:?}"
            );
        }
        let mut u = sample();
        u.moves = vec![u.moves[0]; MAX_MOVES + 1];
        assert!(matches!(
            validate(&u, &mut Vec::new()),
            Err(CodecError::TooManyMoves { .. })
        ));
        assert!(matches!(
            EncodedUpdate::from_bytes(&u.to_bytes()),
            Err(CodecError::TooManyMoves { .. })
        ));
        let mut key = sample();
        key.base_seq = 0;
        key.records = (0..6)
            .map(|i| TileRecord {
                tile_x: i % 3,
                tile_y: i / 3,
                kind: TileKind::Solid(1),
            })
            .collect();
        key.stream = SharedStream::default();
        assert_eq!(
            validate(&key, &mut Vec::new()).err(),
            Some(CodecError::MovesInKeyFrame)
        );
        assert_eq!(
            EncodedUpdate::from_bytes(&key.to_bytes()),
            Err(CodecError::MovesInKeyFrame)
        );
    }

    #[test]
    fn a_move_offset_near_the_i64_limits_is_refused_not_overflowed() {
        // The sample's move on the wire: src 10, 20, 100, 40 then dx -6 and
        // dy 5 as zigzag varints (11, 10). dx becomes i64::MAX, then i64::MIN
        // (found by the graphics fuzz target: it overflowed the addition).
        let bytes = sample().to_bytes();
        let at = bytes
            .windows(6)
            .position(|w| w == [10, 20, 100, 40, 11, 10])
            .expect("the sample's move on the wire")
            + 4;
        for huge in [i64::MAX, i64::MIN] {
            let mut varint = Vec::new();
            varint.varint(zigzag(huge));
            let mut b = bytes.clone();
            b.splice(at..at + 1, varint);
            assert!(
                matches!(
                    EncodedUpdate::from_bytes(&b),
                    Err(CodecError::BadMove { index: 0, .. })
                ),
                "dx {huge}"
            );
        }
    }

    #[test]
    fn huge_counts_are_rejected_before_allocating() {
        let mut u = sample();
        u.width = MAX_DIMENSION;
        u.height = MAX_DIMENSION;
        u.moves.clear();
        u.records.clear();
        u.stream = SharedStream::default();
        let mut b = u.to_bytes();
        assert_eq!(b.pop(), Some(0));
        b.extend_from_slice(&[0xe0, 0xd4, 0x03]); // 60000 records
        assert_eq!(EncodedUpdate::from_bytes(&b), Err(CodecError::Truncated));
        let mut b = u.to_bytes();
        b[2] |= FLAG_MOVES;
        b.pop();
        b.extend_from_slice(&[0xff, 0xff, 0x03]);
        assert!(matches!(
            EncodedUpdate::from_bytes(&b),
            Err(CodecError::TooManyMoves { .. })
        ));
        b.truncate(b.len() - 3);
        b.extend_from_slice(&[200, 1]);
        assert_eq!(EncodedUpdate::from_bytes(&b), Err(CodecError::Truncated));
    }
}
