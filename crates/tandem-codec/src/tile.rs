//! Tile geometry (the 64x64 grid, smaller edge tiles) and the per-tile pixel
//! helpers shared by the encoder and the decoder.

use crate::{Frame, Rect};

/// Side of a full tile, in pixels. Tiles on the right and bottom edges are
/// smaller when the frame size is not a multiple of it.
pub const TILE_SIZE: u32 = 64;

/// Bytes in a full tile's raw payload.
pub(crate) const TILE_BYTES: usize = (TILE_SIZE * TILE_SIZE * 4) as usize;

/// Number of tile columns and rows covering a `width` x `height` frame.
pub fn tile_grid(width: u32, height: u32) -> (u32, u32) {
    (width.div_ceil(TILE_SIZE), height.div_ceil(TILE_SIZE))
}

/// The tile grid of one frame size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Grid {
    pub width: u32,
    pub height: u32,
    pub tiles_x: u32,
    pub tiles_y: u32,
}

impl Grid {
    pub fn new(width: u32, height: u32) -> Grid {
        let (tiles_x, tiles_y) = tile_grid(width, height);
        Grid {
            width,
            height,
            tiles_x,
            tiles_y,
        }
    }

    pub fn count(&self) -> usize {
        self.tiles_x as usize * self.tiles_y as usize
    }

    pub fn contains(&self, tile_x: u16, tile_y: u16) -> bool {
        u32::from(tile_x) < self.tiles_x && u32::from(tile_y) < self.tiles_y
    }

    pub fn index(&self, tile_x: u16, tile_y: u16) -> usize {
        usize::from(tile_y) * self.tiles_x as usize + usize::from(tile_x)
    }

    /// Tile coordinates of a tile index.
    pub fn coords(&self, index: usize) -> (u16, u16) {
        let tx = index % self.tiles_x as usize;
        let ty = index / self.tiles_x as usize;
        // At most MAX_DIMENSION / TILE_SIZE = 256 per axis.
        (tx as u16, ty as u16)
    }

    /// Pixel bounds of a tile (which must be in range).
    pub fn tile_rect(&self, tile_x: u16, tile_y: u16) -> Rect {
        let x = u32::from(tile_x) * TILE_SIZE;
        let y = u32::from(tile_y) * TILE_SIZE;
        Rect::new(
            x,
            y,
            TILE_SIZE.min(self.width - x),
            TILE_SIZE.min(self.height - y),
        )
    }
}

/// Row slices of a tile (the rectangle must lie inside the frame).
pub(crate) fn tile_rows(frame: &Frame, r: Rect) -> impl Iterator<Item = &[u32]> + '_ {
    let w = frame.width() as usize;
    let pixels = frame.pixels();
    (r.y..r.y + r.height).map(move |y| {
        let start = y as usize * w + r.x as usize;
        &pixels[start..start + r.width as usize]
    })
}

/// Copies a tile's pixels, row after row, into `out`.
pub(crate) fn gather(frame: &Frame, r: Rect, out: &mut Vec<u32>) {
    out.clear();
    for row in tile_rows(frame, r) {
        out.extend_from_slice(row);
    }
}

/// Writes tile pixels (contiguous, as from [`gather`]) into the frame.
pub(crate) fn scatter(frame: &mut Frame, r: Rect, src: &[u32]) {
    let w = frame.width() as usize;
    let tw = r.width as usize;
    let pixels = frame.pixels_mut();
    for (row, chunk) in src.chunks_exact(tw).enumerate() {
        let start = (r.y as usize + row) * w + r.x as usize;
        pixels[start..start + tw].copy_from_slice(chunk);
    }
}

/// Fills a tile with one colour.
pub(crate) fn fill(frame: &mut Frame, r: Rect, color: u32) {
    frame.fill_rect(r, color);
}

/// Little-endian bytes of pixels, into `out` (whose length must be 4 per pixel).
pub(crate) fn pixels_to_bytes(px: &[u32], out: &mut [u8]) {
    for (p, o) in px.iter().zip(out.chunks_exact_mut(4)) {
        o.copy_from_slice(&p.to_le_bytes());
    }
}

/// Pixels from little-endian bytes, into `out`.
pub(crate) fn bytes_to_pixels(bytes: &[u8], out: &mut [u32]) {
    for (c, o) in bytes.chunks_exact(4).zip(out.iter_mut()) {
        *o = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
}

/// How many pixels differ from `v`.
pub(crate) fn count_ne(px: &[u32], v: u32) -> usize {
    // u32 lanes vectorize better than usize ones; a tile has at most 4096 pixels.
    px.iter().map(|&p| u32::from(p != v)).sum::<u32>() as usize
}

const K: u64 = 0x9e37_79b9_7f4a_7c15;

/// A fast non-cryptographic hash of tile pixels and the tile's size, used to
/// find copies of tiles; matches are always verified.
pub(crate) fn tile_hash(px: &[u32], width: u32, height: u32) -> u64 {
    let seed = (u64::from(width) << 32) | u64::from(height);
    let mut lanes = [
        seed ^ K,
        seed.wrapping_add(0x2545_f491_4f6c_dd1d),
        seed.rotate_left(17) ^ 0x6a09_e667_f3bc_c909,
        !seed,
    ];
    let mut chunks = px.chunks_exact(8);
    for c in &mut chunks {
        for (i, lane) in lanes.iter_mut().enumerate() {
            let w = u64::from(c[2 * i]) | (u64::from(c[2 * i + 1]) << 32);
            *lane = (*lane ^ w).wrapping_mul(K).rotate_left(29);
        }
    }
    let mut h =
        lanes[0] ^ lanes[1].rotate_left(13) ^ lanes[2].rotate_left(27) ^ lanes[3].rotate_left(41);
    for &p in chunks.remainder() {
        h = (h ^ u64::from(p)).wrapping_mul(K).rotate_left(29);
    }
    h ^= h >> 32;
    h = h.wrapping_mul(0xd6e8_feb8_6659_fd93);
    h ^ (h >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_tiles_are_smaller() {
        let g = Grid::new(65, 63);
        assert_eq!((g.tiles_x, g.tiles_y), (2, 1));
        assert_eq!(g.tile_rect(1, 0), Rect::new(64, 0, 1, 63));
        assert_eq!(g.tile_rect(0, 0).area(), 64 * 63);
        assert_eq!(Grid::new(0, 10).count(), 0);
        assert_eq!(g.coords(1), (1, 0));
    }

    #[test]
    fn hash_depends_on_content_and_size() {
        let a = vec![1u32; 64];
        let mut b = a.clone();
        b[63] = 2;
        assert_ne!(tile_hash(&a, 8, 8), tile_hash(&b, 8, 8));
        assert_ne!(tile_hash(&a, 8, 8), tile_hash(&a, 4, 16));
        assert_eq!(tile_hash(&a, 8, 8), tile_hash(&a.clone(), 8, 8));
    }
}
