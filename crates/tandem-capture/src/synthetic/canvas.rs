//! Clipped drawing primitives over a row-major `u32` pixel buffer.
//!
//! Coordinates are signed so layouts may hang off the desktop edges; every
//! primitive clips to both the buffer and an explicit clip rectangle.

use super::font::{glyph, ADVANCE, GLYPH_H, GLYPH_W};

/// A rectangle with signed coordinates, half-open on the right and bottom.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IRect {
    pub x: i64,
    pub y: i64,
    pub w: i64,
    pub h: i64,
}

impl IRect {
    pub(crate) const fn new(x: i64, y: i64, w: i64, h: i64) -> Self {
        Self { x, y, w, h }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.w <= 0 || self.h <= 0
    }

    pub(crate) fn right(&self) -> i64 {
        self.x + self.w
    }

    pub(crate) fn bottom(&self) -> i64 {
        self.y + self.h
    }

    /// The overlap, possibly empty (then with non-positive size).
    pub(crate) fn intersect(&self, other: &IRect) -> IRect {
        let x0 = self.x.max(other.x);
        let y0 = self.y.max(other.y);
        let x1 = self.right().min(other.right());
        let y1 = self.bottom().min(other.bottom());
        IRect::new(x0, y0, (x1 - x0).max(0), (y1 - y0).max(0))
    }

    /// Shrunk by `d` on every side.
    pub(crate) fn inset(&self, d: i64) -> IRect {
        IRect::new(
            self.x + d,
            self.y + d,
            (self.w - 2 * d).max(0),
            (self.h - 2 * d).max(0),
        )
    }
}

/// A mutable view of a frame's pixels.
pub(crate) struct Canvas<'a> {
    px: &'a mut [u32],
    width: i64,
    bounds: IRect,
}

impl<'a> Canvas<'a> {
    pub(crate) fn new(px: &'a mut [u32], width: u32, height: u32) -> Self {
        debug_assert_eq!(px.len() as u64, u64::from(width) * u64::from(height));
        Self {
            px,
            width: i64::from(width),
            bounds: IRect::new(0, 0, i64::from(width), i64::from(height)),
        }
    }

    pub(crate) fn bounds(&self) -> IRect {
        self.bounds
    }

    /// Index of an in-bounds pixel.
    fn index(&self, x: i64, y: i64) -> usize {
        (y * self.width + x) as usize
    }

    /// Row `y` (which must be inside the buffer) as a slice.
    pub(crate) fn row_mut(&mut self, y: i64) -> &mut [u32] {
        let start = self.index(0, y);
        &mut self.px[start..start + self.width as usize]
    }

    /// Fill `rect` ∩ `clip` with `color`.
    pub(crate) fn fill(&mut self, rect: IRect, clip: IRect, color: u32) {
        let r = rect.intersect(&clip).intersect(&self.bounds);
        if r.is_empty() {
            return;
        }
        for y in r.y..r.bottom() {
            let start = self.index(r.x, y);
            self.px[start..start + r.w as usize].fill(color);
        }
    }

    /// A one-pixel outline of `rect`, clipped.
    pub(crate) fn outline(&mut self, rect: IRect, clip: IRect, color: u32) {
        if rect.is_empty() {
            return;
        }
        self.fill(IRect::new(rect.x, rect.y, rect.w, 1), clip, color);
        self.fill(
            IRect::new(rect.x, rect.bottom() - 1, rect.w, 1),
            clip,
            color,
        );
        self.fill(IRect::new(rect.x, rect.y, 1, rect.h), clip, color);
        self.fill(IRect::new(rect.right() - 1, rect.y, 1, rect.h), clip, color);
    }

    /// Fill `rect` ∩ `clip` with `f(x, y)` given coordinates relative to `rect`.
    pub(crate) fn paint(&mut self, rect: IRect, clip: IRect, f: impl Fn(i64, i64) -> u32) {
        let r = rect.intersect(&clip).intersect(&self.bounds);
        if r.is_empty() {
            return;
        }
        for y in r.y..r.bottom() {
            let start = self.index(r.x, y);
            let row = &mut self.px[start..start + r.w as usize];
            let ry = y - rect.y;
            for (i, p) in row.iter_mut().enumerate() {
                *p = f(r.x - rect.x + i as i64, ry);
            }
        }
    }

    /// Draw `text` with its top-left corner at `(x, y)`, each glyph pixel
    /// a `scale`×`scale` block. Returns the x just past the last character.
    pub(crate) fn text(
        &mut self,
        x: i64,
        y: i64,
        text: &str,
        scale: i64,
        clip: IRect,
        color: u32,
    ) -> i64 {
        let clip = clip.intersect(&self.bounds);
        let mut cx = x;
        for c in text.chars() {
            let cell = IRect::new(cx, y, GLYPH_W * scale, GLYPH_H * scale);
            if c != ' ' && !cell.intersect(&clip).is_empty() {
                self.glyph(cx, y, c, scale, clip, color);
            }
            cx += ADVANCE * scale;
        }
        cx
    }

    fn glyph(&mut self, x: i64, y: i64, c: char, scale: i64, clip: IRect, color: u32) {
        let cols = glyph(c);
        let inside = clip.x <= x
            && clip.y <= y
            && x + GLYPH_W * scale <= clip.right()
            && y + GLYPH_H * scale <= clip.bottom();
        for (col, bits) in cols.iter().enumerate() {
            let mut bits = *bits;
            let mut row = 0;
            while bits != 0 {
                if bits & 1 != 0 {
                    let px = x + col as i64 * scale;
                    let py = y + row * scale;
                    if inside && scale == 1 {
                        let i = self.index(px, py);
                        self.px[i] = color;
                    } else {
                        self.fill(IRect::new(px, py, scale, scale), clip, color);
                    }
                }
                bits >>= 1;
                row += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_clips_to_buffer_and_clip() {
        let mut px = vec![0u32; 4 * 3];
        let mut c = Canvas::new(&mut px, 4, 3);
        let b = c.bounds();
        c.fill(IRect::new(-5, -5, 7, 7), b, 1);
        c.fill(IRect::new(3, 2, 10, 10), IRect::new(0, 0, 4, 3), 2);
        c.fill(IRect::new(0, 0, 4, 3), IRect::new(10, 10, 1, 1), 3);
        assert_eq!(px, vec![1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 2]);
    }

    #[test]
    fn text_clips_and_advances() {
        let mut px = vec![0u32; 8 * 8];
        let mut c = Canvas::new(&mut px, 8, 8);
        let b = c.bounds();
        let end = c.text(-3, 1, "AB", 1, b, 9);
        assert_eq!(end, -3 + 2 * ADVANCE);
        assert!(px.contains(&9));
        let mut px = vec![0u32; 2 * 2];
        let mut c = Canvas::new(&mut px, 2, 2);
        let b = c.bounds();
        c.text(0, 0, "W~é", 3, b, 5);
    }
}
