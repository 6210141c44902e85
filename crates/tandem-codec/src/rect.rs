//! Pixel rectangles (damage hints, tile bounds and clipping arithmetic) and
//! copy-rects (a rectangle of the picture moved elsewhere in it).

use serde::{Deserialize, Serialize};

/// A rectangle in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl Rect {
    /// A rectangle with its top-left corner at `(x, y)`.
    pub fn new(x: u32, y: u32, width: u32, height: u32) -> Self {
        Self {
            x,
            y,
            width,
            height,
        }
    }

    /// The overlap of two rectangles, or `None` when they do not overlap
    /// (an empty rectangle overlaps nothing).
    pub fn intersect(&self, other: &Rect) -> Option<Rect> {
        let x0 = self.x.max(other.x);
        let y0 = self.y.max(other.y);
        let x1 = self.right().min(other.right());
        let y1 = self.bottom().min(other.bottom());
        if u64::from(x0) >= x1 || u64::from(y0) >= y1 {
            return None;
        }
        // Both ends are bounded by an existing rectangle, so they fit in u32.
        Some(Rect::new(
            x0,
            y0,
            (x1 - u64::from(x0)) as u32,
            (y1 - u64::from(y0)) as u32,
        ))
    }

    /// True when the rectangle covers no pixel.
    pub fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    /// Number of pixels covered.
    pub fn area(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    /// One past the right edge (no overflow).
    pub(crate) fn right(&self) -> u64 {
        u64::from(self.x) + u64::from(self.width)
    }

    /// One past the bottom edge (no overflow).
    pub(crate) fn bottom(&self) -> u64 {
        u64::from(self.y) + u64::from(self.height)
    }
}

/// Most copy-rects one update may carry; more is refused as malformed.
/// Real screens need a handful (a scrolled pane, a moved window); the
/// bound keeps a hostile update's copying work to 256 frame areas.
pub const MAX_MOVES: usize = 256;

/// A copy-rect: the pixels of `src` in the picture are copied so that its
/// top-left corner lands at `(dst_x, dst_y)`. Source and destination may
/// overlap; the copy reads the picture as it was just before it (memmove
/// semantics). Both rectangles must lie entirely inside the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CopyRect {
    /// The rectangle read.
    pub src: Rect,
    /// Left edge of the rectangle written.
    pub dst_x: u32,
    /// Top edge of the rectangle written.
    pub dst_y: u32,
}

impl CopyRect {
    /// The rectangle written (the size of `src` at `(dst_x, dst_y)`).
    pub fn dst(&self) -> Rect {
        Rect::new(self.dst_x, self.dst_y, self.src.width, self.src.height)
    }

    /// How far the copy moves its pixels: (dx, dy), destination minus source.
    pub fn offset(&self) -> (i64, i64) {
        (
            i64::from(self.dst_x) - i64::from(self.src.x),
            i64::from(self.dst_y) - i64::from(self.src.y),
        )
    }

    /// Why this copy cannot apply to a `width` x `height` picture, if it cannot.
    pub(crate) fn problem(&self, width: u32, height: u32) -> Option<&'static str> {
        let inside = |r: Rect| r.right() <= u64::from(width) && r.bottom() <= u64::from(height);
        if self.src.is_empty() {
            Some("zero-area rectangle")
        } else if !inside(self.src) {
            Some("source is not inside the frame")
        } else if !inside(self.dst()) {
            Some("destination is not inside the frame")
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intersect_overlapping_and_disjoint() {
        let a = Rect::new(0, 0, 10, 10);
        assert_eq!(
            a.intersect(&Rect::new(5, 5, 10, 10)),
            Some(Rect::new(5, 5, 5, 5))
        );
        assert_eq!(a.intersect(&Rect::new(10, 0, 5, 5)), None);
        assert_eq!(a.intersect(&Rect::new(3, 3, 0, 4)), None);
    }

    #[test]
    fn intersect_does_not_overflow() {
        let a = Rect::new(u32::MAX - 1, u32::MAX - 1, u32::MAX, u32::MAX);
        let b = Rect::new(0, 0, u32::MAX, u32::MAX);
        assert_eq!(
            a.intersect(&b),
            Some(Rect::new(u32::MAX - 1, u32::MAX - 1, 1, 1))
        );
    }

    #[test]
    fn area_and_empty() {
        assert_eq!(
            Rect::new(0, 0, u32::MAX, u32::MAX).area(),
            u64::from(u32::MAX) * u64::from(u32::MAX)
        );
        assert!(Rect::new(1, 1, 0, 5).is_empty());
        assert!(!Rect::new(1, 1, 1, 1).is_empty());
    }
}
