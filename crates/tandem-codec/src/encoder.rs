//! The [`Encoder`]: turns a stream of frames into [`EncodedUpdate`]s, keeps
//! what each tile last looked like and when it changed, and answers
//! catch-up and key-frame requests from a lazily filled per-tile cache of
//! self-contained records.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use zstd::bulk::Compressor;

use crate::tile::{self, Grid, TILE_BYTES};
use crate::{EncodedUpdate, Frame, Rect, TileKind, TileRecord};

/// Encoder settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncoderConfig {
    /// zstd compression level (clamped to zstd's range). Default 1.
    pub zstd_level: i32,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self { zstd_level: 1 }
    }
}

/// Figures about the last [`Encoder::encode`] call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EncodeStats {
    /// Tiles in the frame.
    pub tiles_total: u32,
    /// Tiles sent (all of them for a key frame).
    pub tiles_changed: u32,
    /// Uncompressed size of the tiles sent.
    pub raw_bytes: u64,
    /// Serialized size of the update (0 when nothing changed).
    pub encoded_bytes: u64,
}

/// What the encoder remembers about one tile of the current frame.
#[derive(Clone, Debug, Default)]
struct TileState {
    /// Seq of the update that last changed it.
    last_change: u64,
    /// [`tile::tile_hash`] of its current content.
    hash: u64,
    /// A self-contained record of its current content, once computed.
    cached: Option<TileKind>,
}

/// Encodes frames into updates. Holds one zstd context, the previous frame
/// and per-tile state; does no I/O.
pub struct Encoder {
    compressor: Compressor<'static>,
    frame: Option<Frame>,
    grid: Grid,
    seq: u64,
    /// Seq of the last key frame forced by the first frame or a size change.
    size_seq: u64,
    tiles: Vec<TileState>,
    stats: EncodeStats,
    cache_fills: u64,
    scratch: Scratch,
}

/// Reusable buffers, so encoding allocates only the records it returns.
struct Scratch {
    px: Vec<u32>,
    input: Vec<u8>,
    output: Vec<u8>,
    candidates: Vec<bool>,
    dirty: Vec<bool>,
    changed: Vec<usize>,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("seq", &self.seq)
            .field("size_seq", &self.size_seq)
            .field("frame", &self.frame)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Encoder {
    /// A new encoder; the first [`Encoder::encode`] gives a key frame.
    pub fn new(config: EncoderConfig) -> Encoder {
        let range = zstd::compression_level_range();
        let level = config.zstd_level.clamp(*range.start(), *range.end());
        // Only fails for an out-of-range level, which the clamp rules out.
        let compressor = Compressor::new(level).expect("zstd accepts a clamped level");
        Encoder {
            compressor,
            frame: None,
            grid: Grid::new(0, 0),
            seq: 0,
            size_seq: 0,
            tiles: Vec::new(),
            stats: EncodeStats::default(),
            cache_fills: 0,
            scratch: Scratch {
                px: Vec::with_capacity(TILE_BYTES / 4),
                input: vec![0; TILE_BYTES],
                output: vec![0; TILE_BYTES],
                candidates: Vec::new(),
                dirty: Vec::new(),
                changed: Vec::new(),
            },
        }
    }

    /// Encodes a new frame, which the encoder keeps as the previous frame.
    ///
    /// `damage` is a hint of the changed areas: when `Some`, only tiles
    /// intersecting it are compared and the others are assumed unchanged
    /// (the caller promises that; pixels changed outside it may never reach
    /// a decoder). `None` compares every tile.
    ///
    /// Returns `None` when nothing changed (seq does not advance). The first
    /// frame or a size change gives a key frame (`base_seq` 0); otherwise
    /// `base_seq` is the previous seq, seq is one more, and there is one
    /// record per changed tile (of any kind).
    pub fn encode(&mut self, frame: Frame, damage: Option<&[Rect]>) -> Option<EncodedUpdate> {
        let same_size = self
            .frame
            .as_ref()
            .is_some_and(|p| p.width() == frame.width() && p.height() == frame.height());
        if !same_size {
            let update = self.encode_size_change(frame);
            return Some(update);
        }
        let Some(prev) = self.frame.take() else {
            unreachable!("same_size implies a previous frame")
        };
        let grid = self.grid;
        let mut changed = std::mem::take(&mut self.scratch.changed);
        find_changed(&prev, &frame, grid, damage, &mut self.scratch, &mut changed);
        self.stats = EncodeStats {
            tiles_total: grid.count() as u32,
            ..EncodeStats::default()
        };
        if changed.is_empty() {
            self.frame = Some(frame);
            self.scratch.changed = changed;
            return None;
        }
        let seq = self.seq + 1;
        let mut copies: Option<HashMap<u64, usize, IdentityBuild>> = None;
        let mut records = Vec::with_capacity(changed.len());
        let mut new_state = Vec::with_capacity(changed.len());
        let mut raw_bytes = 0u64;
        for &i in &changed {
            let (tile_x, tile_y) = grid.coords(i);
            let r = grid.tile_rect(tile_x, tile_y);
            raw_bytes += r.area() * 4;
            let px = &mut self.scratch.px;
            tile::gather(&frame, r, px);
            let hash = tile::tile_hash(px, r.width, r.height);
            // Pixels that differ from the first one: 0 means a solid tile,
            // and it estimates what plain zstd has to code.
            let background = px[0];
            let foreground = tile::count_ne(px, background);
            let kind = if foreground == 0 {
                TileKind::Solid(background)
            } else if let Some(j) = find_copy(&mut copies, &self.tiles, &prev, grid, i, r, hash, px)
            {
                let (src_x, src_y) = grid.coords(j);
                TileKind::CopyTile { src_x, src_y }
            } else {
                // One compression per tile: XOR when fewer pixels changed
                // than the tile has non-background pixels (small edits),
                // plain zstd otherwise (scrolled or replaced content).
                let n = px.len() * 4;
                let input = &mut self.scratch.input[..n];
                let mut changed_px = 0;
                let mut off = 0;
                for row in tile::tile_rows(&prev, r) {
                    let w = row.len();
                    changed_px += tile::xor_to_bytes(
                        &px[off..off + w],
                        row,
                        &mut input[off * 4..(off + w) * 4],
                    );
                    off += w;
                }
                let xor = changed_px < foreground;
                if !xor {
                    tile::pixels_to_bytes(px, input);
                }
                match compress(&mut self.compressor, input, &mut self.scratch.output) {
                    Some(z) if xor => TileKind::XorZstd(z),
                    Some(z) => TileKind::Zstd(z),
                    None => {
                        if xor {
                            tile::pixels_to_bytes(px, input);
                        }
                        TileKind::Raw(input.to_vec())
                    }
                }
            };
            let cached = kind.is_self_contained().then(|| kind.clone());
            records.push(TileRecord {
                tile_x,
                tile_y,
                kind,
            });
            new_state.push((hash, cached));
        }
        for (&i, (hash, cached)) in changed.iter().zip(new_state) {
            self.tiles[i] = TileState {
                last_change: seq,
                hash,
                cached,
            };
        }
        self.seq = seq;
        self.frame = Some(frame);
        self.scratch.changed = changed;
        let update = EncodedUpdate {
            seq,
            base_seq: seq - 1,
            width: grid.width,
            height: grid.height,
            records,
        };
        self.stats.tiles_changed = update.records.len() as u32;
        self.stats.raw_bytes = raw_bytes;
        self.stats.encoded_bytes = update.encoded_len() as u64;
        Some(update)
    }

    /// Everything changed since `since`, as self-contained records only,
    /// with seq = current seq and base_seq = `since`.
    ///
    /// `since` 0, `since` newer than the current seq, or older than the last
    /// size change gives a key frame instead. Returns `None` when no frame
    /// was ever encoded or `since` is the current seq. Tiles whose cached
    /// self-contained record is still valid are not re-encoded.
    pub fn catch_up(&mut self, since: u64) -> Option<EncodedUpdate> {
        self.frame.as_ref()?;
        if since == self.seq {
            return None;
        }
        if since == 0 || since > self.seq || since < self.size_seq {
            return self.key_frame();
        }
        let stale: Vec<usize> = (0..self.tiles.len())
            .filter(|&i| self.tiles[i].last_change > since)
            .collect();
        let records = stale.into_iter().map(|i| self.self_contained(i)).collect();
        Some(EncodedUpdate {
            seq: self.seq,
            base_seq: since,
            width: self.grid.width,
            height: self.grid.height,
            records,
        })
    }

    /// A key frame of the current frame at the current seq, or `None` when
    /// no frame was ever encoded. Uses the per-tile cache.
    pub fn key_frame(&mut self) -> Option<EncodedUpdate> {
        self.frame.as_ref()?;
        let records = (0..self.tiles.len())
            .map(|i| self.self_contained(i))
            .collect();
        Some(EncodedUpdate {
            seq: self.seq,
            base_seq: 0,
            width: self.grid.width,
            height: self.grid.height,
            records,
        })
    }

    /// The seq of the last update produced (0 before the first frame).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The frame given to the last [`Encoder::encode`].
    pub fn current_frame(&self) -> Option<&Frame> {
        self.frame.as_ref()
    }

    /// Figures about the last [`Encoder::encode`].
    pub fn last_stats(&self) -> &EncodeStats {
        &self.stats
    }

    /// How many tiles were compressed to fill the self-contained cache
    /// (for tests: catch-ups must not re-encode unchanged tiles).
    #[doc(hidden)]
    pub fn cache_fills(&self) -> u64 {
        self.cache_fills
    }

    /// Key frame for the first frame or a new size; fills the whole cache.
    fn encode_size_change(&mut self, frame: Frame) -> EncodedUpdate {
        let grid = Grid::new(frame.width(), frame.height());
        let seq = self.seq + 1;
        let mut records = Vec::with_capacity(grid.count());
        let mut tiles = Vec::with_capacity(grid.count());
        for i in 0..grid.count() {
            let (tile_x, tile_y) = grid.coords(i);
            let r = grid.tile_rect(tile_x, tile_y);
            let (kind, hash) =
                self_contained_record(&mut self.compressor, &mut self.scratch, &frame, r);
            tiles.push(TileState {
                last_change: seq,
                hash,
                cached: Some(kind.clone()),
            });
            records.push(TileRecord {
                tile_x,
                tile_y,
                kind,
            });
        }
        self.grid = grid;
        self.tiles = tiles;
        self.seq = seq;
        self.size_seq = seq;
        self.frame = Some(frame);
        let update = EncodedUpdate {
            seq,
            base_seq: 0,
            width: grid.width,
            height: grid.height,
            records,
        };
        self.stats = EncodeStats {
            tiles_total: grid.count() as u32,
            tiles_changed: grid.count() as u32,
            raw_bytes: u64::from(grid.width) * u64::from(grid.height) * 4,
            encoded_bytes: update.encoded_len() as u64,
        };
        update
    }

    /// The self-contained record of tile `i`, from the cache or computed
    /// now and cached.
    fn self_contained(&mut self, i: usize) -> TileRecord {
        let (tile_x, tile_y) = self.grid.coords(i);
        let kind = match &self.tiles[i].cached {
            Some(kind) => kind.clone(),
            None => {
                let Some(frame) = self.frame.as_ref() else {
                    unreachable!("tiles exist only with a frame")
                };
                let r = self.grid.tile_rect(tile_x, tile_y);
                let (kind, _) =
                    self_contained_record(&mut self.compressor, &mut self.scratch, frame, r);
                self.cache_fills += 1;
                self.tiles[i].cached = Some(kind.clone());
                kind
            }
        };
        TileRecord {
            tile_x,
            tile_y,
            kind,
        }
    }
}

/// The index of a tile of the previous frame equal to the new content
/// `px` of tile `i`, looked up by hash and verified. The hash map of the
/// previous frame's tiles is built on first use.
#[allow(clippy::too_many_arguments)]
fn find_copy(
    copies: &mut Option<HashMap<u64, usize, IdentityBuild>>,
    tiles: &[TileState],
    prev: &Frame,
    grid: Grid,
    i: usize,
    r: Rect,
    hash: u64,
    px: &[u32],
) -> Option<usize> {
    let map = copies.get_or_insert_with(|| {
        let mut m = HashMap::with_capacity_and_hasher(tiles.len(), IdentityBuild::default());
        // Lowest index wins among equal tiles.
        for (j, t) in tiles.iter().enumerate().rev() {
            m.insert(t.hash, j);
        }
        m
    });
    let j = *map.get(&hash)?;
    let (sx, sy) = grid.coords(j);
    let sr = grid.tile_rect(sx, sy);
    let equal = j != i
        && (sr.width, sr.height) == (r.width, r.height)
        && tile::tile_rows(prev, sr)
            .zip(px.chunks_exact(r.width as usize))
            .all(|(a, b)| a == b);
    equal.then_some(j)
}

/// Solid, else zstd of the pixels, else raw; and the tile's hash.
fn self_contained_record(
    compressor: &mut Compressor<'static>,
    scratch: &mut Scratch,
    frame: &Frame,
    r: Rect,
) -> (TileKind, u64) {
    tile::gather(frame, r, &mut scratch.px);
    let hash = tile::tile_hash(&scratch.px, r.width, r.height);
    if tile::count_ne(&scratch.px, scratch.px[0]) == 0 {
        return (TileKind::Solid(scratch.px[0]), hash);
    }
    let n = scratch.px.len() * 4;
    tile::pixels_to_bytes(&scratch.px, &mut scratch.input[..n]);
    let kind = match compress(compressor, &scratch.input[..n], &mut scratch.output) {
        Some(z) => TileKind::Zstd(z),
        None => TileKind::Raw(scratch.input[..n].to_vec()),
    };
    (kind, hash)
}

/// zstd of `input` if it is strictly smaller than `input`, else `None`.
/// The output buffer is capped so incompressible data fails fast.
fn compress(
    compressor: &mut Compressor<'static>,
    input: &[u8],
    output: &mut [u8],
) -> Option<Vec<u8>> {
    let cap = input.len().checked_sub(1)?;
    let out = &mut output[..cap];
    match compressor.compress_to_buffer(input, out) {
        Ok(len) => Some(out[..len].to_vec()),
        Err(_) => None,
    }
}

/// Finds tiles that differ between two frames of the same size, in
/// row-major order. With a damage hint only tiles intersecting it are
/// compared. Unchanged rows are skipped with one whole-row comparison.
fn find_changed(
    prev: &Frame,
    new: &Frame,
    grid: Grid,
    damage: Option<&[Rect]>,
    scratch: &mut Scratch,
    changed: &mut Vec<usize>,
) {
    changed.clear();
    let tiles_x = grid.tiles_x as usize;
    let candidates = &mut scratch.candidates;
    candidates.clear();
    let all = damage.is_none();
    if let Some(rects) = damage {
        candidates.resize(grid.count(), false);
        let bounds = new.bounds();
        for rect in rects {
            let Some(r) = rect.intersect(&bounds) else {
                continue;
            };
            let (x0, x1) = (
                r.x / crate::TILE_SIZE,
                (r.x + r.width - 1) / crate::TILE_SIZE,
            );
            let (y0, y1) = (
                r.y / crate::TILE_SIZE,
                (r.y + r.height - 1) / crate::TILE_SIZE,
            );
            for ty in y0..=y1 {
                let row = ty as usize * tiles_x;
                candidates[row + x0 as usize..=row + x1 as usize].fill(true);
            }
        }
    }
    let dirty = &mut scratch.dirty;
    let w = grid.width as usize;
    let (p, n) = (prev.pixels(), new.pixels());
    for ty in 0..grid.tiles_y as usize {
        let band = ty * tiles_x..(ty + 1) * tiles_x;
        let mut remaining = if all {
            tiles_x
        } else {
            candidates[band.clone()].iter().filter(|&&c| c).count()
        };
        if remaining == 0 {
            continue;
        }
        dirty.clear();
        dirty.resize(tiles_x, false);
        let y0 = ty * crate::TILE_SIZE as usize;
        let y1 = (y0 + crate::TILE_SIZE as usize).min(grid.height as usize);
        for y in y0..y1 {
            let row = y * w..(y + 1) * w;
            let (pr, nr) = (&p[row.clone()], &n[row]);
            if remaining == tiles_x && pr == nr {
                continue;
            }
            for tx in 0..tiles_x {
                if dirty[tx] || !(all || candidates[band.start + tx]) {
                    continue;
                }
                let seg =
                    tx * crate::TILE_SIZE as usize..((tx + 1) * crate::TILE_SIZE as usize).min(w);
                if pr[seg.clone()] != nr[seg] {
                    dirty[tx] = true;
                    remaining -= 1;
                }
            }
            if remaining == 0 {
                break;
            }
        }
        changed.extend(
            dirty
                .iter()
                .enumerate()
                .filter(|(_, &d)| d)
                .map(|(tx, _)| band.start + tx),
        );
    }
}

/// Hasher for keys that already are hashes.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type IdentityBuild = BuildHasherDefault<IdentityHasher>;
