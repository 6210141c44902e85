//! The [`Decoder`]: applies [`EncodedUpdate`]s in order to rebuild the
//! frame, checking sequence numbers, sizes and every payload; a failed
//! update leaves the decoder as it was.

use zstd::bulk::Decompressor;

use crate::tile::{self, Grid, TILE_BYTES};
use crate::update::validate;
use crate::{CodecError, EncodedUpdate, Frame, Rect, TileKind, TileRecord};

/// Rebuilds frames from updates. Holds one zstd context; does no I/O.
pub struct Decoder {
    frame: Option<Frame>,
    seq: u64,
    decompressor: Decompressor<'static>,
    bytes: Vec<u8>,
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
            staging: Vec::new(),
            seen: Vec::new(),
        }
    }

    /// Applies an update. A key frame replaces everything; a delta needs the
    /// decoder at exactly its `base_seq` with the same size. Every payload
    /// is checked (decompression is capped at the tile's exact size). On
    /// error the decoder is unchanged.
    pub fn apply(&mut self, update: &EncodedUpdate) -> Result<(), CodecError> {
        let grid = validate(update, &mut self.seen)?;
        if update.is_key_frame() {
            let mut frame = Frame::try_new(update.width, update.height)?;
            for r in &update.records {
                let rect = grid.tile_rect(r.tile_x, r.tile_y);
                self.staging.resize(rect.area() as usize, 0);
                decode_self_contained(
                    &mut self.decompressor,
                    &mut self.bytes,
                    r,
                    &mut self.staging,
                )?;
                tile::scatter(&mut frame, rect, &self.staging);
            }
            self.frame = Some(frame);
            self.seq = update.seq;
            return Ok(());
        }
        let Some(frame) = self.frame.as_mut() else {
            return Err(CodecError::NeedKeyFrame);
        };
        if update.base_seq != self.seq {
            return Err(CodecError::BaseMismatch {
                expected: self.seq,
                found: update.base_seq,
            });
        }
        if (frame.width(), frame.height()) != (update.width, update.height) {
            return Err(CodecError::SizeMismatch {
                expected_width: frame.width(),
                expected_height: frame.height(),
                found_width: update.width,
                found_height: update.height,
            });
        }
        // Decode everything against the unchanged frame first (copies and
        // XORs read the previous content), then write.
        let staging = &mut self.staging;
        staging.clear();
        for r in &update.records {
            let rect = grid.tile_rect(r.tile_x, r.tile_y);
            let start = staging.len();
            staging.resize(start + rect.area() as usize, 0);
            decode_record(
                &mut self.decompressor,
                &mut self.bytes,
                frame,
                grid,
                rect,
                r,
                &mut staging[start..],
            )?;
        }
        let mut start = 0;
        for r in &update.records {
            let rect = grid.tile_rect(r.tile_x, r.tile_y);
            let end = start + rect.area() as usize;
            match r.kind {
                TileKind::Solid(c) => tile::fill(frame, rect, c),
                _ => tile::scatter(frame, rect, &staging[start..end]),
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
}

/// Decodes any record of a delta into `out` (the tile's pixels).
fn decode_record(
    dctx: &mut Decompressor<'static>,
    bytes: &mut [u8],
    frame: &Frame,
    grid: Grid,
    rect: Rect,
    r: &TileRecord,
    out: &mut [u32],
) -> Result<(), CodecError> {
    match &r.kind {
        TileKind::Solid(_) => {}
        TileKind::Raw(_) | TileKind::Zstd(_) => decode_self_contained(dctx, bytes, r, out)?,
        TileKind::XorZstd(z) => {
            let b = decompress(dctx, bytes, z, out.len() * 4, r)?;
            tile::bytes_to_pixels(b, out);
            let w = rect.width as usize;
            for (o, prev) in out.chunks_exact_mut(w).zip(tile::tile_rows(frame, rect)) {
                for (p, q) in o.iter_mut().zip(prev) {
                    *p ^= q;
                }
            }
        }
        TileKind::CopyTile { src_x, src_y } => {
            // Same size as `rect`: checked by `validate`.
            let src = grid.tile_rect(*src_x, *src_y);
            let w = rect.width as usize;
            for (o, row) in out.chunks_exact_mut(w).zip(tile::tile_rows(frame, src)) {
                o.copy_from_slice(row);
            }
        }
    }
    Ok(())
}

/// Decodes a self-contained record into `out` (the tile's pixels).
fn decode_self_contained(
    dctx: &mut Decompressor<'static>,
    bytes: &mut [u8],
    r: &TileRecord,
    out: &mut [u32],
) -> Result<(), CodecError> {
    match &r.kind {
        TileKind::Solid(c) => out.fill(*c),
        // Length checked by `validate`.
        TileKind::Raw(b) => tile::bytes_to_pixels(b, out),
        TileKind::Zstd(z) => {
            let b = decompress(dctx, bytes, z, out.len() * 4, r)?;
            tile::bytes_to_pixels(b, out);
        }
        TileKind::XorZstd(_) | TileKind::CopyTile { .. } => {
            return Err(CodecError::NotSelfContained {
                tile_x: r.tile_x,
                tile_y: r.tile_y,
            })
        }
    }
    Ok(())
}

/// Decompresses into `bytes[..len]`, requiring exactly `len` bytes.
fn decompress<'b>(
    dctx: &mut Decompressor<'static>,
    bytes: &'b mut [u8],
    z: &[u8],
    len: usize,
    r: &TileRecord,
) -> Result<&'b [u8], CodecError> {
    let bad = |reason| CodecError::BadPayload {
        tile_x: r.tile_x,
        tile_y: r.tile_y,
        reason,
    };
    let out = &mut bytes[..len];
    match dctx.decompress_to_buffer(z, out) {
        Ok(n) if n == len => Ok(out),
        Ok(_) => Err(bad("decompressed tile is too short")),
        Err(_) => Err(bad("invalid or oversized zstd data")),
    }
}
