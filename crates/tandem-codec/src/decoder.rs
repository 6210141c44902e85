//! The [`Decoder`]: applies [`EncodedUpdate`]s in order to rebuild the
//! frame, checking sequence numbers, sizes, copy-rects and every payload; a
//! failed update leaves the decoder as it was.

use zstd::bulk::Decompressor;

use crate::tile::{self, TILE_BYTES};
use crate::update::{validate, SharedStream, MAX_PALETTE};
use crate::{zst, CodecError, EncodedUpdate, Frame, Rect, TileKind, TileRecord};

/// Rebuilds frames from updates. Holds one zstd context; does no I/O.
/// Its memory is bounded by the frame size: the shared stream and the
/// staged pixels of one update never exceed one frame's pixels.
pub struct Decoder {
    frame: Option<Frame>,
    seq: u64,
    decompressor: Decompressor<'static>,
    /// One tile's bytes, for Raw and Zstd records.
    bytes: Vec<u8>,
    /// A magic-prefixed copy of a zstd payload.
    framed: Vec<u8>,
    /// The decompressed shared stream.
    stream: Vec<u8>,
    /// Its values.
    values: Vec<u32>,
    staging: Vec<u32>,
    seen: Vec<bool>,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("seq", &self.seq)
            .field("frame", &self.frame)
            .finish_non_exhaustive()
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder waiting for its first key frame.
    pub fn new() -> Decoder {
        Decoder {
            frame: None,
            seq: 0,
            // Fails only when zstd cannot allocate a context.
            decompressor: Decompressor::new().expect("zstd decompression context"),
            bytes: vec![0; TILE_BYTES],
            framed: Vec::new(),
            stream: Vec::new(),
            values: Vec::new(),
            staging: Vec::new(),
            seen: Vec::new(),
        }
    }

    /// Applies an update. A key frame replaces everything; a delta needs the
    /// decoder at exactly its `base_seq` with the same size, and applies its
    /// copy-rects in order, then its records. Every payload is checked
    /// (decompression is capped at the exact size the records declare). On
    /// error the decoder is unchanged.
    pub fn apply(&mut self, update: &EncodedUpdate) -> Result<(), CodecError> {
        let checked = validate(update, &mut self.seen)?;
        let grid = checked.grid;
        if update.is_key_frame() {
            let mut frame = Frame::try_new(update.width, update.height)?;
            for r in &update.records {
                let rect = grid.tile_rect(r.tile_x, r.tile_y);
                self.staging.resize(rect.area() as usize, 0);
                self.self_contained(r, 0)?;
                tile::scatter(&mut frame, rect, &self.staging);
            }
            self.frame = Some(frame);
            self.seq = update.seq;
            return Ok(());
        }
        let Some((fw, fh)) = self.frame.as_ref().map(|f| (f.width(), f.height())) else {
            return Err(CodecError::NeedKeyFrame);
        };
        if update.base_seq != self.seq {
            return Err(CodecError::BaseMismatch {
                expected: self.seq,
                found: update.base_seq,
            });
        }
        if (fw, fh) != (update.width, update.height) {
            return Err(CodecError::SizeMismatch {
                expected_width: fw,
                expected_height: fh,
                found_width: update.width,
                found_height: update.height,
            });
        }
        // 1. Everything that can fail and reads no picture: the shared
        //    stream and every record's payload, staged.
        if checked.stream_values > 0 {
            self.unpack_stream(&update.stream, checked.stream_values)?;
        }
        self.staging.clear();
        let mut at_stream = 0;
        for r in &update.records {
            let area = record_area(grid.tile_rect(r.tile_x, r.tile_y), &r.kind);
            let start = self.staging.len();
            self.staging.resize(start + area.area() as usize, 0);
            match &r.kind {
                TileKind::Pixels(_) | TileKind::Xor(_) => {
                    let n = area.area() as usize;
                    self.staging[start..].copy_from_slice(&self.values[at_stream..at_stream + n]);
                    at_stream += n;
                }
                TileKind::CopyTile { .. } => {}
                _ => self.self_contained(r, start)?,
            }
        }
        // 2. Nothing fails from here on: the copy-rects (checked by
        //    `validate`), then the records reading the moved picture, then
        //    the writes.
        let Some(frame) = self.frame.as_mut() else {
            unreachable!("checked above")
        };
        for m in &update.moves {
            frame.copy_rect_unchecked(m);
        }
        let mut start = 0;
        for r in &update.records {
            let tile_rect = grid.tile_rect(r.tile_x, r.tile_y);
            let area = record_area(tile_rect, &r.kind);
            let out = &mut self.staging[start..start + area.area() as usize];
            let w = area.width as usize;
            match &r.kind {
                TileKind::Xor(_) => {
                    for (o, prev) in out.chunks_exact_mut(w).zip(tile::tile_rows(frame, area)) {
                        for (p, q) in o.iter_mut().zip(prev) {
                            *p ^= q;
                        }
                    }
                }
                TileKind::CopyTile { src_x, src_y } => {
                    // Same size as the tile: checked by `validate`.
                    let src = grid.tile_rect(*src_x, *src_y);
                    for (o, row) in out.chunks_exact_mut(w).zip(tile::tile_rows(frame, src)) {
                        o.copy_from_slice(row);
                    }
                }
                _ => {}
            }
            start += area.area() as usize;
        }
        let mut start = 0;
        for r in &update.records {
            let area = record_area(grid.tile_rect(r.tile_x, r.tile_y), &r.kind);
            let end = start + area.area() as usize;
            match r.kind {
                TileKind::Solid(c) => tile::fill(frame, area, c),
                _ => tile::scatter(frame, area, &self.staging[start..end]),
            }
            start = end;
        }
        self.seq = update.seq;
        Ok(())
    }

    /// The current frame, once a key frame was applied.
    pub fn frame(&self) -> Option<&Frame> {
        self.frame.as_ref()
    }

    /// The seq of the last applied update (0 before the first key frame).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Decodes a self-contained record into `staging[start..]` (the tile's pixels).
    fn self_contained(&mut self, r: &TileRecord, start: usize) -> Result<(), CodecError> {
        let out = &mut self.staging[start..];
        match &r.kind {
            TileKind::Solid(c) => out.fill(*c),
            // Length checked by `validate`.
            TileKind::Raw(b) => tile::bytes_to_pixels(b, out),
            TileKind::Zstd(z) => {
                let bytes = &mut self.bytes[..out.len() * 4];
                zst::decompress(&mut self.decompressor, &mut self.framed, z, bytes).map_err(
                    |reason| CodecError::BadPayload {
                        tile_x: r.tile_x,
                        tile_y: r.tile_y,
                        reason,
                    },
                )?;
                tile::bytes_to_pixels(bytes, out);
            }
            _ => {
                return Err(CodecError::NotSelfContained {
                    tile_x: r.tile_x,
                    tile_y: r.tile_y,
                })
            }
        }
        Ok(())
    }

    /// The shared stream's `count` values into `self.values`.
    fn unpack_stream(&mut self, s: &SharedStream, count: usize) -> Result<(), CodecError> {
        let raw: &[u8] = if s.compressed {
            // At most 4 bytes per pixel of the frame (one area per tile)
            // plus a palette.
            let cap = s.unpacked_len(count, if s.palette { MAX_PALETTE } else { 0 });
            self.stream.resize(cap, 0);
            let n = zst::decompress_upto(
                &mut self.decompressor,
                &mut self.framed,
                &s.data,
                &mut self.stream,
            )
            .map_err(|reason| CodecError::BadStream { reason })?;
            &self.stream[..n]
        } else {
            &s.data
        };
        unpack(raw, s, count, &mut self.values)
    }
}

/// Parses a stream's bytes into exactly `count` values.
fn unpack(
    raw: &[u8],
    s: &SharedStream,
    count: usize,
    values: &mut Vec<u32>,
) -> Result<(), CodecError> {
    let bad = |reason| CodecError::BadStream { reason };
    let bpv = s.bytes_per_value();
    values.clear();
    if !s.palette {
        if raw.len() != count * bpv {
            return Err(bad("stream length does not match the records' areas"));
        }
        values.resize(count, 0);
        unpack_values(raw, bpv, values);
        return Ok(());
    }
    let colours = usize::from(*raw.first().ok_or(bad("palette stream is empty"))?) + 1;
    if raw.len() != s.unpacked_len(count, colours) {
        return Err(bad("stream length does not match the records' areas"));
    }
    let mut palette = [0u32; MAX_PALETTE];
    unpack_values(&raw[1..1 + colours * bpv], bpv, &mut palette[..colours]);
    for &i in &raw[1 + colours * bpv..] {
        let i = usize::from(i);
        if i >= colours {
            return Err(bad("palette index out of range"));
        }
        values.push(palette[i]);
    }
    Ok(())
}

/// The frame area a record writes: its own area for Pixels and Xor, else the tile.
fn record_area(tile_rect: Rect, kind: &TileKind) -> Rect {
    match kind.stream_area() {
        Some(a) => Rect::new(tile_rect.x + a.x, tile_rect.y + a.y, a.width, a.height),
        None => tile_rect,
    }
}

/// Values of 3 or 4 little-endian bytes each into `out`.
fn unpack_values(src: &[u8], bytes_per_value: usize, out: &mut [u32]) {
    if bytes_per_value == 4 {
        tile::bytes_to_pixels(src, out);
    } else {
        for (c, o) in src.chunks_exact(3).zip(out.iter_mut()) {
            *o = u32::from_le_bytes([c[0], c[1], c[2], 0]);
        }
    }
}
