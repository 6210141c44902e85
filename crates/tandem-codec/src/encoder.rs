//! The [`Encoder`]: turns a stream of frames into [`EncodedUpdate`]s, keeps
//! what each tile last looked like and when it changed, and answers
//! catch-up and key-frame requests from a lazily filled per-tile cache of
//! self-contained records.
//!
//! A delta is built in three steps: copy-rects (verified hints, then
//! content search, see `motion`) are applied to the previous frame, giving
//! the picture the attendee will have before the records; tiles are
//! compared against that moved picture; each changed tile becomes Solid,
//! CopyTile, or the exact changed sub-rectangle as Pixels or Xor values in
//! the update's one shared stream, compressed once (so content repeated
//! across tiles is coded once).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use zstd::bulk::Compressor;

use crate::motion::{self, MotionScratch};
use crate::tile::{self, Grid, TILE_BYTES};
use crate::update::SharedStream;
use crate::{zst, CopyRect, EncodedUpdate, Frame, Rect, TileKind, TileRecord};

/// Encoder settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncoderConfig {
    /// zstd compression level (clamped to zstd's range). Default 1.
    pub zstd_level: i32,
    /// Search the content for moved and scrolled areas (hints given to
    /// [`Encoder::encode_with_moves`] are used either way). Default on.
    pub motion_search: bool,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self {
            zstd_level: 1,
            motion_search: true,
        }
    }
}

/// Figures about the last [`Encoder::encode`] call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EncodeStats {
    /// Tiles in the frame.
    pub tiles_total: u32,
    /// Tiles sent (all of them for a key frame).
    pub tiles_changed: u32,
    /// Uncompressed size of the pixels sent (whole tiles, or the changed
    /// parts coded in the shared stream).
    pub raw_bytes: u64,
    /// Serialized size of the update (0 when nothing changed).
    pub encoded_bytes: u64,
    /// Copy-rects sent.
    pub moves: u32,
    /// Pixels covered by those copy-rects.
    pub moved_pixels: u64,
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
    /// For self-contained tiles (key frames, the catch-up cache).
    compressor: Compressor<'static>,
    /// For the shared stream of deltas, at a level chosen by its size.
    stream_compressor: StreamCompressor,
    motion_search: bool,
    frame: Option<Frame>,
    /// A picture of the encoder's own, equal to `frame` in every tile whose
    /// `last_change` is at most the seq beside it: the copy-rects of a delta
    /// are applied to it when `frame` is shared (the capture source keeps
    /// the frames it hands out), which then costs a copy of the tiles
    /// changed since, not of the whole frame.
    mirror: Option<(Frame, u64)>,
    grid: Grid,
    seq: u64,
    /// Seq of the last key frame forced by the first frame or a size change.
    size_seq: u64,
    tiles: Vec<TileState>,
    stats: EncodeStats,
    cache_fills: u64,
    scratch: Scratch,
    motion: MotionScratch,
}

/// Reusable buffers, so encoding allocates only the records it returns.
struct Scratch {
    px: Vec<u32>,
    input: Vec<u8>,
    output: Vec<u8>,
    candidates: Vec<bool>,
    dirty: Vec<bool>,
    changed: Vec<usize>,
    changed_moved: Vec<usize>,
    touched: Vec<bool>,
    values: Vec<u32>,
    stream_bytes: Vec<u8>,
    indices: Vec<u8>,
    palette: Palette,
    rects: Vec<Rect>,
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
            stream_compressor: StreamCompressor {
                compressor: Compressor::new(level).expect("zstd accepts a clamped level"),
                base_level: level,
                level,
            },
            motion_search: config.motion_search,
            frame: None,
            mirror: None,
            grid: Grid::new(0, 0),
            seq: 0,
            size_seq: 0,
            tiles: Vec::new(),
            stats: EncodeStats::default(),
            cache_fills: 0,
            scratch: Scratch {
                px: Vec::with_capacity(TILE_BYTES / 4),
                input: vec![0; TILE_BYTES],
                output: Vec::new(),
                candidates: Vec::new(),
                dirty: Vec::new(),
                changed: Vec::new(),
                changed_moved: Vec::new(),
                touched: Vec::new(),
                values: Vec::new(),
                stream_bytes: Vec::new(),
                indices: Vec::new(),
                palette: Palette::new(),
                rects: Vec::new(),
            },
            motion: MotionScratch::default(),
        }
    }

    /// Encodes a new frame, which the encoder keeps as the previous frame:
    /// [`Encoder::encode_with_moves`] without hints (content search only).
    pub fn encode(&mut self, frame: Frame, damage: Option<&[Rect]>) -> Option<EncodedUpdate> {
        self.encode_with_moves(frame, damage, &[])
    }

    /// Encodes a new frame, which the encoder keeps as the previous frame.
    ///
    /// `damage` is a hint of the changed areas: when `Some`, only tiles
    /// intersecting it are compared and the others are assumed unchanged
    /// (the caller promises that; pixels changed outside it may never reach
    /// a decoder). `None` compares every tile.
    ///
    /// `hints` are candidate copy-rects from the source (a window's old
    /// and new geometry); they are never trusted: each is clipped to the
    /// frame and cropped to the rows whose moved pixels really match, or
    /// dropped. Content search (unless configured off) finds the rest.
    ///
    /// Returns `None` when nothing changed (seq does not advance). The first
    /// frame or a size change gives a key frame (`base_seq` 0); otherwise
    /// `base_seq` is the previous seq, seq is one more, and there are
    /// copy-rects and one record per tile that still differs after them.
    pub fn encode_with_moves(
        &mut self,
        frame: Frame,
        damage: Option<&[Rect]>,
        hints: &[CopyRect],
    ) -> Option<EncodedUpdate> {
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
        let mut work = self.working_copy(prev);
        let mut changed = std::mem::take(&mut self.scratch.changed);
        find_changed(&work, &frame, grid, damage, &mut self.scratch, &mut changed);
        self.stats = EncodeStats {
            tiles_total: grid.count() as u32,
            ..EncodeStats::default()
        };
        if changed.is_empty() {
            self.frame = Some(frame);
            self.scratch.changed = changed;
            self.keep_mirror(work, self.seq);
            return None;
        }
        let seq = self.seq + 1;
        // `work` becomes the attendee's picture with the copy-rects applied.
        let moves = motion::find_moves(
            &mut work,
            &frame,
            grid,
            &changed,
            hints,
            self.motion_search,
            &mut self.motion,
        );
        let mut touched = std::mem::take(&mut self.scratch.touched);
        touched.clear();
        touched.resize(grid.count(), false);
        let mut changed_moved = std::mem::take(&mut self.scratch.changed_moved);
        if moves.is_empty() {
            changed_moved.clone_from(&changed);
        } else {
            // Only tiles changed before the moves or written by them can
            // differ from the new frame now.
            let mut rects = std::mem::take(&mut self.scratch.rects);
            rects.clear();
            rects.extend(changed.iter().map(|&i| {
                let (tx, ty) = grid.coords(i);
                grid.tile_rect(tx, ty)
            }));
            for m in &moves {
                let d = m.dst();
                rects.push(d);
                let (tx0, ty0) = (d.x / crate::TILE_SIZE, d.y / crate::TILE_SIZE);
                let tx1 = (d.right() as u32 - 1) / crate::TILE_SIZE;
                let ty1 = (d.bottom() as u32 - 1) / crate::TILE_SIZE;
                for ty in ty0..=ty1 {
                    for tx in tx0..=tx1 {
                        touched[(ty * grid.tiles_x + tx) as usize] = true;
                    }
                }
            }
            find_changed(
                &work,
                &frame,
                grid,
                Some(rects.as_slice()),
                &mut self.scratch,
                &mut changed_moved,
            );
            self.scratch.rects = rects;
            // CopyTile reads the moved picture: rehash what the moves wrote.
            for (j, t) in self.tiles.iter_mut().enumerate() {
                if touched[j] {
                    let (tx, ty) = grid.coords(j);
                    let r = grid.tile_rect(tx, ty);
                    tile::gather(&work, r, &mut self.scratch.px);
                    t.hash = tile::tile_hash(&self.scratch.px, r.width, r.height);
                }
            }
        }
        let mut copies: Option<HashMap<u64, usize, IdentityBuild>> = None;
        let mut records = Vec::with_capacity(changed_moved.len());
        let mut new_state = Vec::with_capacity(changed_moved.len());
        let mut raw_bytes = 0u64;
        let values = &mut self.scratch.values;
        values.clear();
        for &i in &changed_moved {
            let (tile_x, tile_y) = grid.coords(i);
            let r = grid.tile_rect(tile_x, tile_y);
            let px = &mut self.scratch.px;
            tile::gather(&frame, r, px);
            raw_bytes += r.area() * 4;
            let hash = tile::tile_hash(px, r.width, r.height);
            let kind = if tile::count_ne(px, px[0]) == 0 {
                TileKind::Solid(px[0])
            } else if let Some(j) = find_copy(&mut copies, &self.tiles, &work, grid, i, r, hash, px)
            {
                let (src_x, src_y) = grid.coords(j);
                TileKind::CopyTile { src_x, src_y }
            } else {
                // Only the changed part of the tile, as new pixels or as
                // XOR against the moved picture: XOR when fewer pixels
                // changed than the part has non-background pixels (small
                // edits), pixels otherwise (new or replaced content).
                let Some(a) = motion::diff_bounds(&work, &frame, r) else {
                    unreachable!("the tile differs from the moved picture")
                };
                let start = values.len();
                let (mut changed_px, mut foreground) = (0, 0);
                // The tile's corner is background more often than the
                // part's (which a changed pixel bounds).
                let background = px[0];
                for (old, new) in tile::tile_rows(&work, a).zip(tile::tile_rows(&frame, a)) {
                    for (&p, &q) in old.iter().zip(new) {
                        changed_px += usize::from(p != q);
                        foreground += usize::from(q != background);
                        values.push(p ^ q);
                    }
                }
                let rel = Rect::new(a.x - r.x, a.y - r.y, a.width, a.height);
                if changed_px < foreground {
                    TileKind::Xor(rel)
                } else {
                    values.truncate(start);
                    for row in tile::tile_rows(&frame, a) {
                        values.extend_from_slice(row);
                    }
                    TileKind::Pixels(rel)
                }
            };
            let cached = matches!(kind, TileKind::Solid(_)).then(|| kind.clone());
            records.push(TileRecord {
                tile_x,
                tile_y,
                kind,
            });
            new_state.push((hash, cached));
        }
        let stream = pack_stream(&mut self.stream_compressor, &mut self.scratch);
        for (&i, (hash, cached)) in changed_moved.iter().zip(new_state) {
            touched[i] = false;
            self.tiles[i] = TileState {
                last_change: seq,
                hash,
                cached,
            };
        }
        // Tiles a move wrote that now equal the new frame changed too (for
        // catch-ups); their hash was recomputed from the moved picture.
        for (t, &touched) in self.tiles.iter_mut().zip(&touched) {
            if touched {
                t.last_change = seq;
                t.cached = None;
            }
        }
        self.scratch.touched = touched;
        self.seq = seq;
        self.frame = Some(frame);
        // Every pixel the copy-rects wrote lies in a tile changed at `seq`.
        self.keep_mirror(work, seq - 1);
        self.scratch.changed = changed;
        self.scratch.changed_moved = changed_moved;
        let update = EncodedUpdate {
            seq,
            base_seq: seq - 1,
            width: grid.width,
            height: grid.height,
            moves,
            records,
            stream,
        };
        self.stats.tiles_changed = update.records.len() as u32;
        self.stats.raw_bytes = raw_bytes;
        self.stats.moves = update.moves.len() as u32;
        self.stats.moved_pixels = update.moves.iter().map(|m| m.src.area()).sum();
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
            moves: Vec::new(),
            records,
            stream: SharedStream::default(),
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
            moves: Vec::new(),
            records,
            stream: SharedStream::default(),
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

    /// `prev` (the current frame) to write copy-rects into: itself when no
    /// one else holds it, else the mirror brought up to date (copying the
    /// tiles changed since it was last one), else a copy.
    fn working_copy(&mut self, prev: Frame) -> Frame {
        if !prev.is_shared() {
            return prev;
        }
        let Some((mut mirror, at)) = self.mirror.take() else {
            return prev;
        };
        if (mirror.width(), mirror.height()) != (prev.width(), prev.height()) || mirror.is_shared()
        {
            return prev;
        }
        for (i, t) in self.tiles.iter().enumerate() {
            if t.last_change > at {
                let (tx, ty) = self.grid.coords(i);
                mirror.copy_area_from(&prev, self.grid.tile_rect(tx, ty));
            }
        }
        mirror
    }

    /// Keeps `work` as the mirror, equal to the current frame in the tiles
    /// changed at most at `at`, unless it is a frame someone else holds
    /// (keeping it would make their next write copy it).
    fn keep_mirror(&mut self, work: Frame, at: u64) {
        self.mirror = (!work.is_shared()).then_some((work, at));
    }

    /// Key frame for the first frame or a new size; fills the whole cache.
    fn encode_size_change(&mut self, frame: Frame) -> EncodedUpdate {
        self.mirror = None;
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
            moves: Vec::new(),
            records,
            stream: SharedStream::default(),
        };
        self.stats = EncodeStats {
            tiles_total: grid.count() as u32,
            tiles_changed: grid.count() as u32,
            raw_bytes: u64::from(grid.width) * u64::from(grid.height) * 4,
            encoded_bytes: update.encoded_len() as u64,
            ..EncodeStats::default()
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

/// The tile of the moved picture equal to the new content
/// `px` of tile `i`, looked up by hash and verified. The hash map of the
/// moved picture's tiles is built on first use.
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
    let kind = match zst::compress(compressor, &scratch.input[..n], &mut scratch.output) {
        Some(z) => TileKind::Zstd(z),
        None => TileKind::Raw(scratch.input[..n].to_vec()),
    };
    (kind, hash)
}

/// The shared stream's zstd context and its current level.
struct StreamCompressor {
    compressor: Compressor<'static>,
    base_level: i32,
    level: i32,
}

/// Streams up to this many bytes are compressed at [`SMALL_STREAM_LEVEL`]
/// at least: on a few kilobytes (a typed word, an exposed text line) the
/// fast levels miss repeats that level 9 finds, for well under a
/// millisecond.
const SMALL_STREAM: usize = 64 * 1024;
const SMALL_STREAM_LEVEL: i32 = 9;
/// Streams of up to this many values are tried as a palette.
const PALETTE_VALUES: usize = 256 * 1024;

impl StreamCompressor {
    fn compress(&mut self, bytes: &[u8], scratch: &mut Vec<u8>) -> Option<Vec<u8>> {
        let level = if bytes.len() <= SMALL_STREAM {
            self.base_level.max(SMALL_STREAM_LEVEL)
        } else {
            self.base_level
        };
        if level != self.level && self.compressor.set_compression_level(level).is_ok() {
            self.level = level;
        }
        zst::compress(&mut self.compressor, bytes, scratch)
    }
}

/// Finds the colours of a stream while there are at most 256 of them
/// (open addressing over 1024 slots, so a lookup is a multiply and a
/// compare or two).
struct Palette {
    keys: Vec<u32>,
    /// 0: empty, else index + 1.
    slots: Vec<u16>,
    colours: Vec<u32>,
}

impl Palette {
    const SLOTS: usize = 1024;

    fn new() -> Palette {
        Palette {
            keys: vec![0; Self::SLOTS],
            slots: vec![0; Self::SLOTS],
            colours: Vec::with_capacity(crate::update::MAX_PALETTE),
        }
    }

    /// Indexes `values` into `out`; false when they have too many colours.
    fn index(&mut self, values: &[u32], out: &mut Vec<u8>) -> bool {
        self.slots.fill(0);
        self.colours.clear();
        out.clear();
        out.reserve(values.len());
        let mut last = None;
        for &v in values {
            // Runs of one colour are the common case.
            if let Some((lv, li)) = last {
                if lv == v {
                    out.push(li);
                    continue;
                }
            }
            let mut h = (v.wrapping_mul(0x9e37_79b1) >> 22) as usize;
            let i = loop {
                match self.slots[h] {
                    0 => {
                        if self.colours.len() == crate::update::MAX_PALETTE {
                            return false;
                        }
                        self.colours.push(v);
                        self.keys[h] = v;
                        self.slots[h] = self.colours.len() as u16;
                        break self.colours.len() - 1;
                    }
                    n if self.keys[h] == v => break usize::from(n) - 1,
                    _ => h = (h + 1) % Self::SLOTS,
                }
            };
            // At most 256 colours: the index fits a byte.
            out.push(i as u8);
            last = Some((v, i as u8));
        }
        true
    }
}

/// The shared stream of `scratch.values`: 3 bytes a value when every top
/// byte is zero (the usual 0x00RRGGBB pixels and their XORs), a palette and
/// index bytes when there are at most 256 colours (text), one zstd frame
/// when that is smaller, else the bytes themselves.
fn pack_stream(compressor: &mut StreamCompressor, scratch: &mut Scratch) -> SharedStream {
    let values = &scratch.values;
    if values.is_empty() {
        return SharedStream::default();
    }
    let packed24 = values.iter().fold(0, |acc, v| acc | v) >> 24 == 0;
    let bpv = if packed24 { 3 } else { 4 };
    let bytes = &mut scratch.stream_bytes;
    bytes.clear();
    let palette =
        values.len() <= PALETTE_VALUES && scratch.palette.index(values, &mut scratch.indices);
    let put = |bytes: &mut Vec<u8>, v: &u32| bytes.extend_from_slice(&v.to_le_bytes()[..bpv]);
    if palette {
        let colours = &scratch.palette.colours;
        bytes.reserve(1 + colours.len() * bpv + scratch.indices.len());
        bytes.push((colours.len() - 1) as u8);
        colours.iter().for_each(|v| put(bytes, v));
        bytes.extend_from_slice(&scratch.indices);
    } else {
        bytes.reserve(values.len() * bpv);
        values.iter().for_each(|v| put(bytes, v));
    }
    match compressor.compress(bytes, &mut scratch.output) {
        Some(data) => SharedStream {
            packed24,
            compressed: true,
            palette,
            data,
        },
        None => SharedStream {
            packed24,
            compressed: false,
            palette,
            data: bytes.clone(),
        },
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

/// The tiles that differ between two frames of the same size (for benches
/// of the motion search: its input).
///
/// # Panics
///
/// If the sizes differ.
#[doc(hidden)]
pub fn changed_tiles(prev: &Frame, new: &Frame) -> Vec<usize> {
    assert_eq!((prev.width(), prev.height()), (new.width(), new.height()));
    let mut enc = Encoder::new(EncoderConfig::default());
    let mut out = Vec::new();
    let grid = Grid::new(new.width(), new.height());
    find_changed(prev, new, grid, None, &mut enc.scratch, &mut out);
    out
}

/// The encoder's motion search alone (for benches): copy-rects from
/// `work` towards `new`, each applied to `work` as it is accepted.
///
/// # Panics
///
/// If the sizes differ.
#[doc(hidden)]
pub fn search_moves(
    work: &mut Frame,
    new: &Frame,
    changed: &[usize],
    hints: &[CopyRect],
) -> Vec<CopyRect> {
    assert_eq!((work.width(), work.height()), (new.width(), new.height()));
    let grid = Grid::new(new.width(), new.height());
    motion::find_moves(
        work,
        new,
        grid,
        changed,
        hints,
        true,
        &mut MotionScratch::default(),
    )
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
