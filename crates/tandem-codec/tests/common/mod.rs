//! Frame generators and scripted changes shared by the codec's property tests.

#![allow(dead_code)]

use proptest::prelude::*;
use tandem_codec::{CopyRect, Frame, Rect, TILE_SIZE};

/// A small deterministic generator, so big frames need few proptest values.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u32(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 16) as u32
    }
}

/// One change to a frame.
#[derive(Clone, Debug)]
pub enum Op {
    /// Solid rectangle.
    Fill(Rect, u32),
    /// Random pixels (all 32 bits) in a rectangle.
    Noise(Rect, u64),
    /// Dark glyph-like marks on a light background in a rectangle.
    Text(Rect, u64),
    /// Content moves up by this many rows; the bottom is cleared.
    ScrollUp(u32),
    /// A tile-aligned 64x64 block is copied to another tile position.
    CopyTile { src: (u32, u32), dst: (u32, u32) },
    /// The frame is replaced by one of another size (keeps what fits).
    Resize(u32, u32),
    /// A window moves: a rectangle (position and size taken modulo the
    /// frame) is copied by (dx, dy), clamped inside the frame, and what it
    /// uncovers becomes background.
    Move { rect: Rect, dx: i32, dy: i32 },
    /// The content of a rectangle scrolls by `dy` rows (up when negative)
    /// and the rows it exposes get new text.
    ScrollRegion { rect: Rect, dy: i32, seed: u64 },
}

/// `rect` taken modulo the frame size so that it is inside and not empty
/// (`None` for an empty frame).
fn inside(f: &Frame, r: Rect) -> Option<Rect> {
    let (w, h) = (f.width(), f.height());
    if w == 0 || h == 0 {
        return None;
    }
    let (x, y) = (r.x % w, r.y % h);
    Some(Rect::new(
        x,
        y,
        1 + r.width % (w - x),
        1 + r.height % (h - y),
    ))
}

fn clamp_to(v: i64, max: u32) -> u32 {
    v.clamp(0, i64::from(max)) as u32
}

impl Op {
    /// The copy-rect a window move makes, as a capture source would hint it.
    pub fn hint(&self, f: &Frame) -> Option<CopyRect> {
        let Op::Move { rect, dx, dy } = *self else {
            return None;
        };
        let src = inside(f, rect)?;
        Some(CopyRect {
            src,
            dst_x: clamp_to(i64::from(src.x) + i64::from(dx), f.width() - src.width),
            dst_y: clamp_to(i64::from(src.y) + i64::from(dy), f.height() - src.height),
        })
    }
}

impl Op {
    /// Applies the change; returns the damaged area (None for a resize).
    pub fn apply(&self, f: &mut Frame) -> Option<Rect> {
        match *self {
            Op::Fill(r, c) => {
                f.fill_rect(r, c);
                Some(r)
            }
            Op::Noise(r, seed) => {
                let mut rng = XorShift::new(seed);
                let r = r.intersect(&f.bounds())?;
                for y in r.y..r.y + r.height {
                    for x in r.x..r.x + r.width {
                        f.set(x, y, rng.next_u32());
                    }
                }
                Some(r)
            }
            Op::Text(r, seed) => {
                let r = r.intersect(&f.bounds())?;
                draw_text(f, r, seed);
                Some(r)
            }
            Op::ScrollUp(dy) => {
                let (w, h) = (f.width(), f.height());
                let dy = dy.min(h);
                let moved = f.crop(Rect::new(0, dy, w, h - dy));
                f.blit(&moved, 0, 0);
                f.fill_rect(Rect::new(0, h - dy, w, dy), 0xffffff);
                Some(f.bounds())
            }
            Op::CopyTile { src, dst } => {
                let block = f.crop(Rect::new(
                    src.0 * TILE_SIZE,
                    src.1 * TILE_SIZE,
                    TILE_SIZE,
                    TILE_SIZE,
                ));
                f.blit(&block, dst.0 * TILE_SIZE, dst.1 * TILE_SIZE);
                Some(Rect::new(
                    dst.0 * TILE_SIZE,
                    dst.1 * TILE_SIZE,
                    TILE_SIZE,
                    TILE_SIZE,
                ))
            }
            Op::Resize(w, h) => {
                let mut g = Frame::filled(w, h, 0x336699);
                g.blit(f, 0, 0);
                *f = g;
                None
            }
            Op::Move { .. } => {
                let m = self.hint(f)?;
                f.copy_rect(&m).expect("a clamped move fits");
                let (src, dst) = (m.src, m.dst());
                for y in src.y..src.y + src.height {
                    for x in src.x..src.x + src.width {
                        if dst.intersect(&Rect::new(x, y, 1, 1)).is_none() {
                            f.set(x, y, 0x2b303b);
                        }
                    }
                }
                Some(bounding(src, dst))
            }
            Op::ScrollRegion { rect, dy, seed } => {
                let r = inside(f, rect)?;
                let d = (dy.unsigned_abs()).min(r.height);
                if d == 0 || d == r.height {
                    draw_text(f, r, seed);
                    return Some(r);
                }
                let keep = r.height - d;
                let (src_y, dst_y, exposed_y) = if dy < 0 {
                    (r.y + d, r.y, r.y + keep)
                } else {
                    (r.y, r.y + d, r.y)
                };
                f.copy_rect(&CopyRect {
                    src: Rect::new(r.x, src_y, r.width, keep),
                    dst_x: r.x,
                    dst_y,
                })
                .expect("inside the frame");
                draw_text(f, Rect::new(r.x, exposed_y, r.width, d), seed);
                Some(r)
            }
        }
    }
}

/// The smallest rectangle holding both.
pub fn bounding(a: Rect, b: Rect) -> Rect {
    let x = a.x.min(b.x);
    let y = a.y.min(b.y);
    let r = (a.x + a.width).max(b.x + b.width);
    let bt = (a.y + a.height).max(b.y + b.height);
    Rect::new(x, y, r - x, bt - y)
}

/// Light background with dark 5x7 "glyphs" in lines of 12 pixels.
pub fn draw_text(f: &mut Frame, r: Rect, seed: u64) {
    let mut rng = XorShift::new(seed);
    f.fill_rect(r, 0xf0f0f0);
    let mut y = r.y + 2;
    while y + 7 <= r.y + r.height {
        let mut x = r.x + 1;
        while x + 5 <= r.x + r.width {
            let bits = rng.next_u32();
            if bits % 7 != 0 {
                for gy in 0..7 {
                    for gx in 0..5 {
                        if bits >> ((gy * 5 + gx) % 31) & 1 == 1 {
                            f.set(x + gx, y + gy, 0x202020);
                        }
                    }
                }
            }
            x += 6;
        }
        y += 12;
    }
}

pub fn dim() -> impl Strategy<Value = u32> {
    prop_oneof![
        2 => 1u32..=9,
        1 => Just(0u32),
        1 => Just(64u32),
        1 => prop::sample::select(vec![63u32, 65, 127, 128, 129]),
        4 => 10u32..=200,
    ]
}

fn rect() -> impl Strategy<Value = Rect> {
    (0u32..220, 0u32..220, 0u32..160, 0u32..160).prop_map(|(x, y, w, h)| Rect::new(x, y, w, h))
}

pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (rect(), any::<u32>()).prop_map(|(r, c)| Op::Fill(r, c)),
        2 => (rect(), any::<u64>()).prop_map(|(r, s)| Op::Noise(r, s)),
        3 => (rect(), any::<u64>()).prop_map(|(r, s)| Op::Text(r, s)),
        1 => prop_oneof![Just(64u32), 1u32..130].prop_map(Op::ScrollUp),
        2 => ((0u32..4, 0u32..4), (0u32..4, 0u32..4)).prop_map(|(src, dst)| Op::CopyTile { src, dst }),
        1 => (dim(), dim()).prop_map(|(w, h)| Op::Resize(w, h)),
        2 => (rect(), -40i32..40, -40i32..40).prop_map(|(rect, dx, dy)| Op::Move { rect, dx, dy }),
        2 => (rect(), -30i32..30, any::<u64>())
            .prop_map(|(rect, dy, seed)| Op::ScrollRegion { rect, dy, seed }),
    ]
}

/// A copy-rect anywhere, even outside any frame: a wrong hint.
pub fn junk_hint() -> impl Strategy<Value = CopyRect> {
    (rect(), 0u32..300, 0u32..300).prop_map(|(src, dst_x, dst_y)| CopyRect { src, dst_x, dst_y })
}

/// One step: a few changes, and whether to pass their damage as a hint.
pub fn step() -> impl Strategy<Value = (Vec<Op>, bool)> {
    (prop::collection::vec(op(), 0..3), any::<bool>())
}

/// A starting frame with some content.
pub fn initial() -> impl Strategy<Value = (u32, u32, u64)> {
    (dim(), dim(), any::<u64>())
}

pub fn start_frame(w: u32, h: u32, seed: u64) -> Frame {
    let mut f = Frame::filled(w, h, 0xffffff);
    draw_text(&mut f, Rect::new(0, 0, w, h / 2), seed);
    f
}

/// Applies a step; returns the new frame and the damage hint to pass.
pub fn next_frame(cur: &Frame, ops: &[Op], use_damage: bool) -> (Frame, Option<Vec<Rect>>) {
    let (f, damage, _) = next_frame_with_hints(cur, ops, use_damage);
    (f, damage)
}

/// Like [`next_frame`], also returning the window moves as hints (right
/// only for the first move of a step: later ops may change what it moved).
pub fn next_frame_with_hints(
    cur: &Frame,
    ops: &[Op],
    use_damage: bool,
) -> (Frame, Option<Vec<Rect>>, Vec<CopyRect>) {
    let mut f = cur.clone();
    let mut damage = Vec::new();
    let mut hints = Vec::new();
    for op in ops {
        hints.extend(op.hint(&f));
        match op.apply(&mut f) {
            Some(r) => damage.push(r),
            None => damage.push(f.bounds()),
        }
    }
    (f, use_damage.then_some(damage), hints)
}
