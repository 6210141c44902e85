//! Motion: the copy-rects of a delta, found between the attendee's picture
//! (the encoder's previous frame) and the new frame.
//!
//! Two sources, both checked against the pixels so that a wrong candidate
//! costs only bytes, never correctness:
//! - **hints** from the capture source (X11 knows a top-level window's old
//!   and new geometry): clipped to the frame, then cropped to the longest
//!   run of rows whose moved pixels really match;
//! - **content search** for everything else, above all vertical scrolling
//!   inside a sub-region of the screen (a terminal, an editor, a browser):
//!   changed tiles are grouped into 8-connected regions; in each, the exact
//!   bounds of the changed pixels are found; the rows of a column window of
//!   those bounds are hashed in both pictures and every new row votes for
//!   the offsets at which the previous picture had the same row; the best
//!   offsets are verified on the full width of the bounds and the longest
//!   matching band of rows becomes a copy-rect.
//!
//! - **glyphs**: a small changed area (a typed character and the block
//!   cursor that moved on, a few terminal cells) whose every part already
//!   shows elsewhere in the attendee's picture, on the same pixel rows (the
//!   same character earlier on the line, the cursor one cell back) or the
//!   same columns (the line above), becomes one copy-rect per part: about
//!   ten bytes each instead of a palette and coded pixels.
//!
//! The search runs in two passes: the second regroups the tiles that still
//! differ in the regions where the first found a move (two neighbouring
//! changes make one region, and the move of one hides the other).
//!
//! Every accepted copy-rect is applied to the working picture at once, so a
//! later candidate is checked against exactly what the decoder will have at
//! that point (copy-rects apply in order). The work is bounded: at most
//! [`MAX_HINTS`] hints and two frame areas of hint rows compared, at most
//! [`MAX_REGIONS`] regions searched, a window of [`WINDOW`] columns hashed
//! per row (the vote stops after 64 rows without any match), two offsets verified per region; regions too small for a band
//! to pay are skipped, and an offset none of 16 spread rows confirms is
//! not verified further.

use std::cmp::Reverse;

use crate::tile::{self, Grid};
use crate::{CopyRect, Frame, Rect, MAX_MOVES};

/// Hints looked at per frame.
pub(crate) const MAX_HINTS: usize = 32;
/// Regions of changed tiles searched per frame, largest first.
pub(crate) const MAX_REGIONS: usize = 16;
/// Columns of a row hashed for the vote (16 terminal cells).
pub(crate) const WINDOW: u32 = 128;
/// New rows that may vote without a single match before the vote stops
/// (noise, replaced content).
const BARREN_ROWS: u32 = 64;
/// Fewest rows of a copy-rect.
const MIN_BAND_ROWS: u32 = 4;
/// Fewest pixels of a copy-rect: below this, coding the pixels costs
/// about as little as the copy-rect itself.
const MIN_BAND_AREA: u64 = 2048;
/// Fewest changed rows in a region worth searching.
const MIN_REGION_ROWS: u32 = 24;
/// Previous rows with the same hash one new row votes for.
const MATCHES_PER_ROW: usize = 4;
/// Fewest votes for an offset to be verified; also at least an eighth of
/// the rows that voted, so periodic content (every row alike) whose votes
/// scatter over many offsets costs no verification.
const MIN_VOTES: u32 = 3;
/// Offsets verified per region.
const OFFSETS_TRIED: usize = 2;
/// Largest changed bounds searched for 2D motion: a quarter of 1080p.
const MAX_2D_AREA: u64 = 1920 * 1080 / 4;
/// Rows probed before an offset is verified on every row.
const PROBES: u32 = 16;
/// Largest changed bounds searched for glyphs: a few terminal cells.
const GLYPH_MAX_W: u32 = 64;
const GLYPH_MAX_H: u32 = 40;
/// Fewest pixels of a glyph part: a copy-rect costs about ten bytes, a few
/// coded pixels cost less.
const GLYPH_MIN_AREA: u64 = 32;
/// Pixels compared per frame by the glyph search, all regions together
/// (each part is looked for at most once per column and once per row of
/// the frame, nearest first).
const GLYPH_BUDGET: u64 = 1920 * 1080 / 4;

/// Pixels compared per frame by growing copies from a segment (the 2D
/// search's and the second pass's), all regions together.
const GROW_BUDGET: u64 = 1920 * 1080 / 2;
/// Offsets of earlier copies tried per region in the second pass.
const KNOWN_OFFSETS: usize = 4;

/// Reusable buffers of the search.
#[derive(Debug, Default)]
pub(crate) struct MotionScratch {
    marks: Vec<u8>,
    stack: Vec<usize>,
    /// Changed-tile regions: (tile count, pixel bounds of its tiles).
    regions: Vec<(usize, Rect)>,
    rows: Vec<(u64, u32)>,
    votes: Vec<u32>,
    covered: Vec<(u32, u32)>,
    /// Changed tiles still to search (the second pass's input).
    residual: Vec<usize>,
    /// Tile bounds of the regions where a move was found.
    moved: Vec<Rect>,
}

/// Finds copy-rects turning `work` towards `new` and applies each to `work`
/// as it is accepted. `changed` lists the tiles that differ between them.
pub(crate) fn find_moves(
    work: &mut Frame,
    new: &Frame,
    grid: Grid,
    changed: &[usize],
    hints: &[CopyRect],
    search: bool,
    s: &mut MotionScratch,
) -> Vec<CopyRect> {
    let mut moves = Vec::new();
    let (w, h) = (new.width(), new.height());
    let mut budget = 2 * u64::from(w) * u64::from(h);
    for hint in hints.iter().take(MAX_HINTS) {
        let Some(m) = clip(hint, w, h) else {
            continue;
        };
        if (m.src.x, m.src.y) == (m.dst_x, m.dst_y) || m.src.area() > budget {
            continue;
        }
        budget -= m.src.area();
        if let Some(m) = matching_rows(work, new, &m) {
            accept(work, &mut moves, m);
        }
    }
    if !search {
        return moves;
    }
    // Pixels of 2D candidates checked per frame, all regions together.
    let mut budget_2d = MAX_2D_AREA;
    let mut budget_glyphs = GLYPH_BUDGET;
    let mut budget_grow = GROW_BUDGET;
    let mut residual = std::mem::take(&mut s.residual);
    residual.clear();
    residual.extend_from_slice(changed);
    // Pass 0 searches the changed regions; pass 1 what still differs in the
    // regions where pass 0 found a move: two neighbouring changes make one
    // region (a terminal scrolled beside a window dragged a few pixels), and
    // the move of one leaves the other to be searched on its own.
    for pass in 0..2 {
        regions(grid, &residual, s);
        let mut moved = std::mem::take(&mut s.moved);
        moved.clear();
        for k in 0..s.regions.len().min(MAX_REGIONS) {
            if moves.len() >= MAX_MOVES {
                break;
            }
            let Some(mut b) = diff_bounds(work, new, s.regions[k].1) else {
                continue;
            };
            if pass == 1 {
                // First the offsets this frame already proved (a scroll
                // seen beside a window over the terminal), then the rest.
                known_offsets(work, new, b, &mut moves, &mut budget_grow);
                let Some(rest) = diff_bounds(work, new, b) else {
                    continue;
                };
                b = rest;
            }
            if b.width <= GLYPH_MAX_W && b.height <= GLYPH_MAX_H && b.area() >= GLYPH_MIN_AREA {
                glyphs(work, new, b, &mut moves, &mut budget_glyphs);
                continue;
            }
            if b.height < MIN_REGION_ROWS || b.area() < 2 * MIN_BAND_AREA {
                continue;
            }
            let before = moves.len();
            vertical(work, new, b, s, &mut moves);
            if moves.len() == before && b.area() <= MAX_2D_AREA {
                two_d(work, new, b, &mut moves, &mut budget_2d, &mut budget_grow);
            }
            if moves.len() > before {
                moved.push(s.regions[k].1);
            }
        }
        if pass == 0 {
            residual.retain(|&i| {
                let (tx, ty) = grid.coords(i);
                let r = grid.tile_rect(tx, ty);
                moved.iter().any(|m| m.intersect(&r).is_some()) && differs(work, new, r)
            });
        }
        s.moved = moved;
        if residual.is_empty() {
            break;
        }
    }
    s.residual = residual;
    moves
}

/// Whether `a` and `b` differ anywhere inside `r`.
fn differs(a: &Frame, b: &Frame, r: Rect) -> bool {
    let (x0, x1) = (r.x as usize, r.right() as usize);
    (r.y..r.bottom() as u32).any(|y| a.row(y)[x0..x1] != b.row(y)[x0..x1])
}

/// Any (dx, dy) motion inside the changed bounds `b` (a window dragged
/// without a hint): textured, changed 32-pixel segments (up to six: at two
/// rows, three columns each) are looked for in the previous picture within
/// 48 rows and 64 columns, nearest rows first (larger moves need a hint),
/// and the offsets found are
/// checked like hints (cropped to the rows and columns that match) and
/// grown from the segment (see [`grow`], within `grow_budget`); the largest
/// copy found is accepted (one that explains half of `b` ends the search).
/// Only for bounds of at most
/// [`MAX_2D_AREA`] pixels, four candidates at most, [`MAX_2D_AREA`]
/// candidate pixels per frame over all regions (`budget`), and only a band
/// of at least a quarter of the rows of `b` is kept.
fn two_d(
    work: &mut Frame,
    new: &Frame,
    b: Rect,
    moves: &mut Vec<CopyRect>,
    budget: &mut u64,
    grow_budget: &mut u64,
) {
    const SEG: u32 = 32;
    const REACH_X: u32 = 64;
    const REACH_Y: i64 = 48;
    const CANDIDATES: usize = 4;
    if b.width < 2 * SEG || b.height < MIN_BAND_ROWS {
        return;
    }
    let (w, h) = (new.width(), new.height());
    let mut tried: Vec<(i64, i64)> = Vec::with_capacity(CANDIDATES);
    // At the middle, then the quarter row, and at the middle, left and
    // right quarter column: each the first segment with some texture at
    // or below that row (text has blank rows between its lines). Several
    // columns, since a segment across the edge of what moved (part window,
    // part background that stayed) matches nowhere.
    let frame: &Frame = work;
    let mut probes: Vec<(u32, u32, u32)> = [2, 1]
        .into_iter()
        .flat_map(|quarter| {
            [2, 1, 3].into_iter().filter_map(move |q| {
                let x = b.x + (b.width - SEG) * q / 4;
                let y0 = b.y + b.height * quarter / 4;
                (y0..(y0 + 16).min(b.bottom() as u32))
                    .find(|&y| {
                        let span = x as usize..(x + SEG) as usize;
                        let seg = &new.row(y)[span.clone()];
                        // Only what changed says how it moved (an unchanged
                        // segment of a patterned background matches at its
                        // period).
                        tile::count_ne(seg, seg[0]) >= SEG as usize / 4
                            && *seg != frame.row(y)[span]
                    })
                    .map(|y| (quarter, x, y))
            })
        })
        .collect();
    // Per row of probes, the highest segment first (the middle column
    // among equals): the first is then what a single probe would be.
    probes.sort_by_key(|&(quarter, _, y)| (Reverse(quarter), y));
    // The largest copy found; one that explains half of `b` ends the search.
    let mut best: Option<CopyRect> = None;
    'search: for (_, xs, ys) in probes {
        let seg = &new.row(ys)[xs as usize..(xs + SEG) as usize];
        let x_lo = xs.saturating_sub(REACH_X).max(b.x);
        let x_hi = (xs + REACH_X).min(b.right() as u32 - SEG);
        // Nearest rows first: most moves are small.
        let rows = (0..=REACH_Y)
            .flat_map(|k| [i64::from(ys) - k, i64::from(ys) + k])
            .skip(1)
            .filter(|&y| y >= i64::from(b.y) && y < b.bottom() as i64);
        for y in rows {
            let row = work.row(y as u32);
            for x in x_lo..=x_hi {
                let x0 = x as usize;
                if row[x0] != seg[0] || row[x0..x0 + SEG as usize] != *seg {
                    continue;
                }
                let d = (i64::from(xs) - i64::from(x), i64::from(ys) - y);
                if d == (0, 0) {
                    continue;
                }
                // An offset another probe already tried is only grown from
                // this one (that probe may have lain across an edge of what
                // moved); its crop below does not depend on the probe.
                let cropped = if tried.contains(&d) {
                    None
                } else {
                    tried.push(d);
                    // What moved lies in `b` before and after: try `b`
                    // moved back.
                    let src = Rect::new(
                        (i64::from(b.x) - d.0).max(0) as u32,
                        (i64::from(b.y) - d.1).max(0) as u32,
                        b.width,
                        b.height,
                    );
                    let cand = CopyRect {
                        src,
                        dst_x: (i64::from(src.x) + d.0).max(0) as u32,
                        dst_y: (i64::from(src.y) + d.1).max(0) as u32,
                    };
                    match clip(&cand, w, h) {
                        Some(cand) if cand.src.area() > *budget => break 'search,
                        Some(cand) => {
                            *budget -= cand.src.area();
                            matching_rows(work, new, &cand)
                        }
                        None => None,
                    }
                };
                // Cropped from `b` moved back, or grown from the segment
                // when `b` also holds other changes (which the crop can
                // take for the move): the larger, the crop on a tie.
                let grown = grow(work, new, b, (xs, ys), SEG, d, grow_budget);
                let found = [grown, cropped]
                    .into_iter()
                    .flatten()
                    .max_by_key(|m| m.src.area());
                // Text repeats: a band that explains little of `b` (a few
                // blank rows between lines) is a coincidence, not the move.
                if let Some(m) = found.filter(|m| 4 * m.src.height >= b.height) {
                    if best.is_none_or(|k| m.src.area() > k.src.area()) {
                        best = Some(m);
                    }
                    if 2 * m.src.area() >= b.area() {
                        break 'search;
                    }
                }
                if tried.len() == CANDIDATES {
                    break 'search;
                }
            }
        }
    }
    if let Some(m) = best {
        accept(work, moves, m);
    }
}

/// Second pass: copies inside the changed bounds `b` at the offsets of the
/// copies found so far, each grown (see [`grow`]) from a changed, textured
/// 32-pixel segment of `new` that `work` shows at that offset (segments
/// every 32 columns of every 8th row). This finds what a full-width band
/// cannot: the parts of a scrolled terminal left and right of a window
/// over it. At most `budget` pixels compared, all regions together.
fn known_offsets(
    work: &mut Frame,
    new: &Frame,
    b: Rect,
    moves: &mut Vec<CopyRect>,
    budget: &mut u64,
) {
    const SEG: u32 = 32;
    const ROW_STEP: usize = 8;
    if b.width < SEG || b.height < MIN_BAND_ROWS {
        return;
    }
    let mut offsets: Vec<(i64, i64)> = Vec::with_capacity(KNOWN_OFFSETS);
    for d in moves.iter().map(CopyRect::offset) {
        if !offsets.contains(&d) && offsets.len() < KNOWN_OFFSETS {
            offsets.push(d);
        }
    }
    let (w, h) = (i64::from(new.width()), i64::from(new.height()));
    let seg = SEG as usize;
    for d in offsets {
        for y in (b.y..b.bottom() as u32).step_by(ROW_STEP) {
            let sy = i64::from(y) - d.1;
            if sy < 0 || sy >= h {
                continue;
            }
            for x in (b.x..=b.right() as u32 - SEG).step_by(seg) {
                let sx = i64::from(x) - d.0;
                if sx < 0 || sx + i64::from(SEG) > w {
                    continue;
                }
                if moves.len() >= MAX_MOVES || *budget < 2 * u64::from(SEG) {
                    return;
                }
                *budget -= 2 * u64::from(SEG);
                let x0 = x as usize;
                let part = &new.row(y)[x0..x0 + seg];
                if *part == work.row(y)[x0..x0 + seg]
                    || tile::count_ne(part, part[0]) < seg / 4
                    || *part != work.row(sy as u32)[sx as usize..sx as usize + seg]
                {
                    continue;
                }
                if let Some(m) = grow(work, new, b, (x, y), SEG, d, budget) {
                    accept(work, moves, m);
                }
            }
        }
    }
}

/// The copy-rect of offset `d` grown from a segment of `seg` pixels at
/// `seed` in `new` that `work` shows at `seed - d`: the run of rows around
/// the seed's row that match on the segment's columns, then the columns
/// that match on every one of those rows, then the rows again on those
/// columns; all inside `b` and with the source inside the frame. `None`
/// when too small to pay. The pixels it compares (about three times the
/// area it grew to) are taken from `budget`, failed growths too.
fn grow(
    work: &Frame,
    new: &Frame,
    b: Rect,
    seed: (u32, u32),
    seg: u32,
    d: (i64, i64),
    budget: &mut u64,
) -> Option<CopyRect> {
    let (w, h) = (i64::from(new.width()), i64::from(new.height()));
    // Destination columns and rows whose source lies in the frame, inside `b`.
    let x_lo = i64::from(b.x).max(d.0);
    let x_hi = (b.right() as i64).min(w + d.0);
    let y_lo = i64::from(b.y).max(d.1);
    let y_hi = (b.bottom() as i64).min(h + d.1);
    let (xs, ys) = (i64::from(seed.0), i64::from(seed.1));
    if xs < x_lo || xs + i64::from(seg) > x_hi || ys < y_lo || ys >= y_hi {
        return None;
    }
    // The segment's columns are certainly part of what moved.
    let rows_matching = |c0: i64, c1: i64, r0: &mut i64, r1: &mut i64| {
        let (a, e) = (c0 as usize, c1 as usize);
        let (sa, se) = ((c0 - d.0) as usize, (c1 - d.0) as usize);
        let row_matches = |y: i64| new.row(y as u32)[a..e] == work.row((y - d.1) as u32)[sa..se];
        while *r0 > y_lo && row_matches(*r0 - 1) {
            *r0 -= 1;
        }
        while *r1 < y_hi && row_matches(*r1) {
            *r1 += 1;
        }
    };
    let (mut c0, mut c1) = (xs, xs + i64::from(seg));
    let (mut r0, mut r1) = (ys, ys + 1);
    rows_matching(c0, c1, &mut r0, &mut r1);
    let column_matches = |x: i64| {
        (r0..r1).all(|y| {
            new.row(y as u32)[x as usize] == work.row((y - d.1) as u32)[(x - d.0) as usize]
        })
    };
    while c0 > x_lo && column_matches(c0 - 1) {
        c0 -= 1;
    }
    while c1 < x_hi && column_matches(c1) {
        c1 += 1;
    }
    rows_matching(c0, c1, &mut r0, &mut r1);
    let grown = u64::try_from((r1 - r0 + 2) * (c1 - c0 + 2)).unwrap_or(u64::MAX);
    *budget = budget.saturating_sub(grown.saturating_mul(3));
    // Inside the frame (checked above), so every value fits in u32.
    band(
        (c0 - d.0) as u32,
        (r0 - d.1) as u32,
        (c1 - c0) as u32,
        (r1 - r0) as u32,
        c0 as u32,
        r0 as u32,
    )
}

/// The small changed bounds `b` copied from elsewhere in `work`, part by
/// part, when every part is found there (else nothing is copied: a region
/// that needs coded pixels anyway gains little from copies). The parts:
/// a run of columns of one colour at either edge of `b` in `new` (a block
/// cursor that moved on), copied first, and the rest (the character typed
/// where the cursor was). Each part is looked for on its own rows, then in
/// its own columns, nearest first, within `budget` pixels compared.
fn glyphs(work: &mut Frame, new: &Frame, b: Rect, moves: &mut Vec<CopyRect>, budget: &mut u64) {
    let (first, rest) = match solid_edge(new, b) {
        Some((solid, rest)) if rest.area().min(solid.area()) >= GLYPH_MIN_AREA => {
            (solid, Some(rest))
        }
        _ => (b, None),
    };
    let Some(copy) = find_glyph(work, new, first, None, budget) else {
        return;
    };
    // The rest is copied second, so its source must not be what the first
    // copy writes (the cursor's copy may read the cell the rest goes to:
    // that is read before it is written).
    let then = match rest {
        Some(r) => match find_glyph(work, new, r, Some(copy.dst()), budget) {
            Some(m) => Some(m),
            None => return,
        },
        None => None,
    };
    if moves.len() + 1 + usize::from(then.is_some()) > MAX_MOVES {
        return;
    }
    accept(work, moves, copy);
    if let Some(m) = then {
        accept(work, moves, m);
    }
}

/// `b` split into (a run of at least two columns at its left or right edge
/// whose pixels in `new` are all one colour, the rest), when there is one.
fn solid_edge(new: &Frame, b: Rect) -> Option<(Rect, Rect)> {
    let colour_of = |x: u32| {
        let c = new.row(b.y)[x as usize];
        (b.y..b.bottom() as u32)
            .all(|y| new.row(y)[x as usize] == c)
            .then_some(c)
    };
    let run = |xs: &mut dyn Iterator<Item = u32>| {
        let mut colour = None;
        let mut n = 0;
        for x in xs {
            match (colour_of(x), colour) {
                (Some(c), None) => colour = Some(c),
                (Some(c), Some(k)) if c == k => {}
                _ => break,
            }
            n += 1;
        }
        n
    };
    let right = run(&mut (b.x..b.right() as u32).rev());
    if right >= 2 && right < b.width {
        let w = b.width - right;
        return Some((
            Rect::new(b.x + w, b.y, right, b.height),
            Rect::new(b.x, b.y, w, b.height),
        ));
    }
    let left = run(&mut (b.x..b.right() as u32));
    (left >= 2 && left < b.width).then(|| {
        (
            Rect::new(b.x, b.y, left, b.height),
            Rect::new(b.x + left, b.y, b.width - left, b.height),
        )
    })
}

/// Where `work` shows what `new` shows in `p`, on `p`'s rows or columns,
/// nearest first, not overlapping `avoid`; within `budget` pixels compared.
fn find_glyph(
    work: &Frame,
    new: &Frame,
    p: Rect,
    avoid: Option<Rect>,
    budget: &mut u64,
) -> Option<CopyRect> {
    let (w, h) = (work.width(), work.height());
    let (pw, ph) = (p.width as usize, p.height as usize);
    let first = &new.row(p.y)[p.x as usize..p.x as usize + pw];
    // A pixel of `p` unlike its first, read before any row is compared: on
    // a terminal's plain background nearly every candidate has the first
    // pixel right and fails on this one, at the cost of one read instead of
    // a row comparison.
    let key = (0..p.height)
        .flat_map(|r| (0..p.width).map(move |c| (c, r)))
        .map(|(c, r)| (c, r, new.row(p.y + r)[(p.x + c) as usize]))
        .find(|&(_, _, v)| v != first[0]);
    let matches_at = |sx: u32, sy: u32, budget: &mut u64| {
        let row = &work.row(sy)[sx as usize..sx as usize + pw];
        let key_differs = key.is_some_and(|(c, r, v)| work.row(sy + r)[(sx + c) as usize] != v);
        if row[0] != first[0] || key_differs {
            *budget = budget.saturating_sub(1);
            return false;
        }
        let mut compared = 0;
        let equal = (0..ph as u32).all(|r| {
            compared += pw as u64;
            work.row(sy + r)[sx as usize..sx as usize + pw]
                == new.row(p.y + r)[p.x as usize..p.x as usize + pw]
        });
        *budget = budget.saturating_sub(compared);
        equal
    };
    let offsets = |at: u32, len: u32, limit: u32| {
        let at = i64::from(at);
        let limit = i64::from(limit) - i64::from(len);
        (1..=limit.max(0))
            .flat_map(move |k| [at - k, at + k])
            .filter(move |&v| v >= 0 && v <= limit)
            .map(|v| v as u32)
    };
    let found = offsets(p.x, p.width, w)
        .map(|sx| (sx, p.y))
        .chain(offsets(p.y, p.height, h).map(|sy| (p.x, sy)))
        .filter(|&(sx, sy)| {
            avoid.is_none_or(|r| Rect::new(sx, sy, p.width, p.height).intersect(&r).is_none())
        })
        .find(|&(sx, sy)| *budget == 0 || matches_at(sx, sy, budget))
        .filter(|_| *budget > 0)?;
    Some(CopyRect {
        src: Rect::new(found.0, found.1, p.width, p.height),
        dst_x: p.x,
        dst_y: p.y,
    })
}

fn accept(work: &mut Frame, moves: &mut Vec<CopyRect>, m: CopyRect) {
    if moves.len() < MAX_MOVES {
        work.copy_rect_unchecked(&m);
        moves.push(m);
    }
}

/// The part of a hint whose source and destination both lie in a
/// `w` x `h` frame, or `None` when nothing is left.
fn clip(m: &CopyRect, w: u32, h: u32) -> Option<CopyRect> {
    let (dx, dy) = m.offset();
    let (w, h) = (i64::from(w), i64::from(h));
    let x0 = i64::from(m.src.x).max(-dx).max(0);
    let y0 = i64::from(m.src.y).max(-dy).max(0);
    let x1 = (m.src.right() as i64).min(w).min(w - dx);
    let y1 = (m.src.bottom() as i64).min(h).min(h - dy);
    if x0 >= x1 || y0 >= y1 {
        return None;
    }
    // All four are inside the frame, so they fit in u32.
    Some(CopyRect {
        src: Rect::new(x0 as u32, y0 as u32, (x1 - x0) as u32, (y1 - y0) as u32),
        dst_x: (x0 + dx) as u32,
        dst_y: (y0 + dy) as u32,
    })
}

/// `m` cropped to what really moved: its longest run of rows whose pixels
/// match exactly (`new` at the destination equals `work` at the source);
/// when that is less than half of it, also tried on the columns that match
/// in the rows crossing what moved (a hint that includes a shadow or frame
/// that did not move). `None` when nothing big enough matches. Costs at
/// most two comparisons of `m`'s area and one of 64 of its rows.
fn matching_rows(work: &Frame, new: &Frame, m: &CopyRect) -> Option<CopyRect> {
    let rows = |c0: u32, c1: u32| {
        let (sx, dx, wd) = (
            (m.src.x + c0) as usize,
            (m.dst_x + c0) as usize,
            (c1 - c0) as usize,
        );
        let row_matches =
            |r: u32| work.row(m.src.y + r)[sx..sx + wd] == new.row(m.dst_y + r)[dx..dx + wd];
        let (a, b) = longest_run(0..m.src.height, row_matches)?;
        band(
            m.src.x + c0,
            m.src.y + a,
            c1 - c0,
            b - a,
            m.dst_x + c0,
            m.dst_y + a,
        )
    };
    let whole = rows(0, m.src.width);
    if whole.is_some_and(|w| 2 * w.src.height >= m.src.height) {
        return whole;
    }
    // The columns that match in the rows that cross what moved: the
    // widest run of matching columns of a sampled row, narrowed to the latest
    // start and the earliest end among the rows whose run covers three
    // quarters of it (coincidences beside what moved differ row by row).
    let (sx, dx) = (m.src.x as usize, m.dst_x as usize);
    let run_of = |r: u32| {
        let (a, b) = (work.row(m.src.y + r), new.row(m.dst_y + r));
        longest_run(0..m.src.width, |c| a[sx + c as usize] == b[dx + c as usize])
    };
    // About 64 rows spread over `m` are enough to see what moved.
    let step = (m.src.height / 64).max(1) as usize;
    let runs: Vec<(u32, u32)> = (0..m.src.height).step_by(step).filter_map(run_of).collect();
    let widest = runs
        .iter()
        .copied()
        .max_by_key(|&(c0, c1)| c1 - c0)
        .and_then(|(w0, w1)| {
            let need = 3 * (w1 - w0) / 4;
            runs.iter()
                .copied()
                .filter(|&(p, q)| q.min(w1).saturating_sub(p.max(w0)) >= need)
                .fold(None, |acc: Option<(u32, u32)>, (p, q)| match acc {
                    None => Some((p, q)),
                    Some((c0, c1)) => Some((c0.max(p), c1.min(q))),
                })
                .filter(|&(c0, c1)| c1 > c0)
        });
    let cropped = widest.and_then(|(c0, c1)| rows(c0, c1));
    match (whole, cropped) {
        (Some(w), Some(c)) if w.src.area() >= c.src.area() => Some(w),
        (w, None) => w,
        (_, c) => c,
    }
}

/// A copy-rect of a band, if it is big enough to pay.
fn band(sx: u32, sy: u32, w: u32, rows: u32, dx: u32, dy: u32) -> Option<CopyRect> {
    (rows >= MIN_BAND_ROWS && u64::from(rows) * u64::from(w) >= MIN_BAND_AREA).then_some(CopyRect {
        src: Rect::new(sx, sy, w, rows),
        dst_x: dx,
        dst_y: dy,
    })
}

/// The longest run `[a, b)` of consecutive values for which `ok` holds.
fn longest_run(range: std::ops::Range<u32>, mut ok: impl FnMut(u32) -> bool) -> Option<(u32, u32)> {
    let mut best: Option<(u32, u32)> = None;
    let mut start = None;
    let end = range.end;
    for y in range {
        if ok(y) {
            start.get_or_insert(y);
        } else if let Some(a) = start.take() {
            if best.is_none_or(|(p, q)| y - a > q - p) {
                best = Some((a, y));
            }
        }
    }
    if let Some(a) = start {
        if best.is_none_or(|(p, q)| end - a > q - p) {
            best = Some((a, end));
        }
    }
    best
}

/// Groups changed tiles into 8-connected regions, largest first.
fn regions(grid: Grid, changed: &[usize], s: &mut MotionScratch) {
    s.marks.clear();
    s.marks.resize(grid.count(), 0);
    for &i in changed {
        s.marks[i] = 1;
    }
    s.regions.clear();
    let (tw, th) = (grid.tiles_x as i64, grid.tiles_y as i64);
    for &i in changed {
        if s.marks[i] != 1 {
            continue;
        }
        s.marks[i] = 2;
        s.stack.push(i);
        let mut count = 0;
        let (tx, ty) = grid.coords(i);
        let (mut x0, mut y0, mut x1, mut y1) = (tx, ty, tx, ty);
        while let Some(j) = s.stack.pop() {
            count += 1;
            let (tx, ty) = grid.coords(j);
            (x0, y0, x1, y1) = (x0.min(tx), y0.min(ty), x1.max(tx), y1.max(ty));
            for (ox, oy) in [
                (-1, -1),
                (0, -1),
                (1, -1),
                (-1, 0),
                (1, 0),
                (-1, 1),
                (0, 1),
                (1, 1),
            ] {
                let (nx, ny) = (i64::from(tx) + ox, i64::from(ty) + oy);
                if nx < 0 || ny < 0 || nx >= tw || ny >= th {
                    continue;
                }
                let n = (ny * tw + nx) as usize;
                if s.marks[n] == 1 {
                    s.marks[n] = 2;
                    s.stack.push(n);
                }
            }
        }
        let (a, b) = (grid.tile_rect(x0, y0), grid.tile_rect(x1, y1));
        let rect = Rect::new(
            a.x,
            a.y,
            (b.right() - u64::from(a.x)) as u32,
            (b.bottom() - u64::from(a.y)) as u32,
        );
        s.regions.push((count, rect));
    }
    s.regions.sort_by_key(|&(count, _)| Reverse(count));
}

/// The exact bounds of the pixels that differ between `a` and `b` inside `r`.
pub(crate) fn diff_bounds(a: &Frame, b: &Frame, r: Rect) -> Option<Rect> {
    let (x0, x1) = (r.x as usize, r.right() as usize);
    let differs = |y: u32| a.row(y)[x0..x1] != b.row(y)[x0..x1];
    let top = (r.y..r.bottom() as u32).find(|&y| differs(y))?;
    let bottom = (top..r.bottom() as u32).rev().find(|&y| differs(y))? + 1;
    // Each row only searches outside the bounds found so far.
    let (mut left, mut right) = (x1, x0);
    for y in top..bottom {
        let (pa, pb) = (&a.row(y)[x0..x1], &b.row(y)[x0..x1]);
        let l = left - x0;
        if let Some(p) = first_diff(&pa[..l], &pb[..l]) {
            left = x0 + p;
        }
        let from = right.max(left) - x0;
        if let Some(q) = last_diff(&pa[from..], &pb[from..]) {
            right = x0 + from + q + 1;
        }
    }
    Some(Rect::new(
        left as u32,
        top,
        (right - left) as u32,
        bottom - top,
    ))
}

/// Index of the first differing element (compared in chunks first).
fn first_diff(a: &[u32], b: &[u32]) -> Option<usize> {
    let mut off = 0;
    for (ca, cb) in a.chunks(16).zip(b.chunks(16)) {
        if ca != cb {
            return ca.iter().zip(cb).position(|(p, q)| p != q).map(|p| off + p);
        }
        off += ca.len();
    }
    None
}

/// Index of the last differing element (compared in chunks first).
fn last_diff(a: &[u32], b: &[u32]) -> Option<usize> {
    let mut end = a.len();
    for (ca, cb) in a.rchunks(16).zip(b.rchunks(16)) {
        let start = end - ca.len();
        if ca != cb {
            return ca
                .iter()
                .zip(cb)
                .rposition(|(p, q)| p != q)
                .map(|p| start + p);
        }
        end = start;
    }
    None
}

fn uniform(seg: &[u32]) -> bool {
    seg.iter().all(|&p| p == seg[0])
}

/// Vertical motion inside the changed bounds `b`: vote, verify, accept.
fn vertical(
    work: &mut Frame,
    new: &Frame,
    b: Rect,
    s: &mut MotionScratch,
    moves: &mut Vec<CopyRect>,
) {
    let x0 = b.x as usize;
    let wn = b.width as usize;
    let win = wn.min(WINDOW as usize);
    let (y0, y1) = (b.y, b.bottom() as u32);
    let span = (y1 - y0) as i64;
    // Rows of one colour over the window match everything: they do not vote.
    s.rows.clear();
    for y in y0..y1 {
        let seg = &work.row(y)[x0..x0 + win];
        if !uniform(seg) {
            s.rows.push((tile::tile_hash(seg, win as u32, 1), y));
        }
    }
    if s.rows.is_empty() {
        return;
    }
    s.rows.sort_unstable();
    s.votes.clear();
    s.votes.resize(2 * span as usize, 0);
    let (mut voters, mut matched) = (0, 0u32);
    for y in y0..y1 {
        let seg = &new.row(y)[x0..x0 + win];
        if uniform(seg) {
            continue;
        }
        voters += 1;
        if voters > BARREN_ROWS && matched == 0 {
            return;
        }
        let hash = tile::tile_hash(seg, win as u32, 1);
        let first = s.rows.partition_point(|e| e.0 < hash);
        for &(_, py) in s.rows[first..]
            .iter()
            .take_while(|e| e.0 == hash)
            .take(MATCHES_PER_ROW)
        {
            // New row y shows what previous row py showed: moved by d.
            let d = i64::from(y) - i64::from(py);
            if d != 0 {
                s.votes[(d + span) as usize] += 1;
                matched += 1;
            }
        }
    }
    s.covered.clear();
    let height = i64::from(new.height());
    for _ in 0..OFFSETS_TRIED {
        // Most votes; among equals the smallest move.
        let Some((i, &v)) = s
            .votes
            .iter()
            .enumerate()
            .max_by_key(|&(i, &v)| (v, Reverse((i as i64 - span).abs())))
        else {
            return;
        };
        if v < MIN_VOTES.max(voters / 8) {
            return;
        }
        s.votes[i] = 0;
        let d = i as i64 - span;
        let covered = &s.covered;
        let frame: &Frame = work;
        let bw = b.width as usize;
        let row_matches = |y: u32| {
            let sy = i64::from(y) - d;
            (0..height).contains(&sy)
                && !covered.iter().any(|&(a, b)| (a..b).contains(&y))
                && new.row(y)[x0..x0 + bw] == frame.row(sy as u32)[x0..x0 + bw]
        };
        // Sixteen spread rows first: an offset that matches none of them
        // is not worth reading every row to its end (periodic or noisy
        // content can vote well for an offset that does not hold).
        let rows = y1 - y0;
        let step = rows.div_ceil(PROBES).max(1);
        if !(y0..y1).step_by(step as usize).any(row_matches) {
            continue;
        }
        let Some((ra, rb)) = longest_run(y0..y1, row_matches) else {
            continue;
        };
        // The source rows are inside the frame: checked per row above.
        let sy = (i64::from(ra) - d) as u32;
        if let Some(m) = band(b.x, sy, b.width, rb - ra, b.x, ra) {
            accept(work, moves, m);
            s.covered.push((ra, rb));
        }
    }
}
