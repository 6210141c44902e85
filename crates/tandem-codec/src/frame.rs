//! [`Frame`]: a BGRX pixel buffer, shared between clones until one of them
//! is written, with the few drawing helpers the capture, codec, tests and
//! benches need.

use std::fmt;
use std::sync::Arc;

use crate::{CodecError, CopyRect, Rect};

/// Largest accepted width or height, in pixels.
pub const MAX_DIMENSION: u32 = 16384;

/// One frame: `width * height` pixels, row-major, no padding; each `u32` is
/// `0x00RRGGBB` (BGRX bytes in memory on little-endian).
///
/// Zero-sized frames (width or height 0) are allowed and hold no pixels.
/// The codec is lossless on all 32 bits, including the unused top byte.
///
/// Cloning is cheap: clones share one buffer until one of them is written,
/// which then copies it (copy on write). A capture source keeps the frame
/// it hands to the encoder, and the encoder keeps it as its previous frame,
/// without either copying 8 MB of a 1080p screen per update.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    width: u32,
    height: u32,
    pixels: Arc<Vec<u32>>,
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("width", &self.width)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

fn check_dimensions(width: u32, height: u32) -> Result<usize, CodecError> {
    if width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(CodecError::BadDimensions { width, height });
    }
    Ok(width as usize * height as usize)
}

impl Frame {
    /// A black frame.
    ///
    /// # Panics
    ///
    /// If `width` or `height` exceeds [`MAX_DIMENSION`]; use [`Frame::try_new`]
    /// for sizes that come from outside.
    pub fn new(width: u32, height: u32) -> Frame {
        Frame::filled(width, height, 0)
    }

    /// A black frame, or an error when a dimension exceeds [`MAX_DIMENSION`].
    pub fn try_new(width: u32, height: u32) -> Result<Frame, CodecError> {
        let len = check_dimensions(width, height)?;
        Ok(Frame {
            width,
            height,
            pixels: Arc::new(vec![0; len]),
        })
    }

    /// A frame of one colour.
    ///
    /// # Panics
    ///
    /// If `width` or `height` exceeds [`MAX_DIMENSION`].
    pub fn filled(width: u32, height: u32, color: u32) -> Frame {
        let len = match check_dimensions(width, height) {
            Ok(len) => len,
            Err(e) => panic!("Frame::filled: {e}"),
        };
        Frame {
            width,
            height,
            pixels: Arc::new(vec![color; len]),
        }
    }

    /// Wraps a pixel buffer; its length must be `width * height` and both
    /// dimensions at most [`MAX_DIMENSION`].
    pub fn from_pixels(width: u32, height: u32, pixels: Vec<u32>) -> Result<Frame, CodecError> {
        let len = check_dimensions(width, height)?;
        if pixels.len() != len {
            return Err(CodecError::LengthMismatch {
                expected: len as u64,
                found: pixels.len() as u64,
            });
        }
        Ok(Frame {
            width,
            height,
            pixels: Arc::new(pixels),
        })
    }

    /// Builds a frame from RGBA bytes (4 per pixel, row-major); alpha is ignored.
    pub fn from_rgba8(width: u32, height: u32, data: &[u8]) -> Result<Frame, CodecError> {
        let len = check_dimensions(width, height)?;
        if data.len() != len * 4 {
            return Err(CodecError::LengthMismatch {
                expected: len as u64 * 4,
                found: data.len() as u64,
            });
        }
        let pixels = data
            .chunks_exact(4)
            .map(|c| (u32::from(c[0]) << 16) | (u32::from(c[1]) << 8) | u32::from(c[2]))
            .collect();
        Ok(Frame {
            width,
            height,
            pixels: Arc::new(pixels),
        })
    }

    /// RGBA bytes (4 per pixel, row-major, alpha 255), e.g. for PNG writing.
    pub fn to_rgba8(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.pixels.len() * 4);
        for &p in self.pixels.iter() {
            out.extend_from_slice(&[(p >> 16) as u8, (p >> 8) as u8, p as u8, 255]);
        }
        out
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The whole frame as a rectangle at the origin.
    pub fn bounds(&self) -> Rect {
        Rect::new(0, 0, self.width, self.height)
    }

    /// All pixels, row-major.
    pub fn pixels(&self) -> &[u32] {
        &self.pixels
    }

    /// All pixels, row-major, for in-place drawing (copied first when a
    /// clone shares them).
    pub fn pixels_mut(&mut self) -> &mut [u32] {
        Arc::make_mut(&mut self.pixels).as_mut_slice()
    }

    /// Gives the pixel buffer back (a copy when a clone shares it).
    pub fn into_pixels(self) -> Vec<u32> {
        Arc::unwrap_or_clone(self.pixels)
    }

    /// Whether a clone shares this frame's pixels (writing them would copy
    /// them first).
    pub fn is_shared(&self) -> bool {
        Arc::strong_count(&self.pixels) > 1
    }

    /// Copies `area` of `src`, a frame of the same size, to the same place in
    /// this one; clipped to both frames.
    pub fn copy_area_from(&mut self, src: &Frame, area: Rect) {
        let Some(r) = area
            .intersect(&self.bounds())
            .and_then(|r| r.intersect(&src.bounds()))
        else {
            return;
        };
        let (dw, sw) = (self.width as usize, src.width as usize);
        let w = r.width as usize;
        let pixels = Arc::make_mut(&mut self.pixels);
        for y in r.y as usize..(r.y + r.height) as usize {
            let (d, s) = (y * dw + r.x as usize, y * sw + r.x as usize);
            pixels[d..d + w].copy_from_slice(&src.pixels[s..s + w]);
        }
    }

    /// One row of pixels.
    ///
    /// # Panics
    ///
    /// If `y` is outside the frame.
    pub fn row(&self, y: u32) -> &[u32] {
        let w = self.width as usize;
        let start = y as usize * w;
        &self.pixels[start..start + w]
    }

    /// The pixel at `(x, y)`.
    ///
    /// # Panics
    ///
    /// If the point is outside the frame.
    pub fn get(&self, x: u32, y: u32) -> u32 {
        assert!(x < self.width && y < self.height, "pixel out of range");
        self.pixels[self.index(x, y)]
    }

    /// Sets the pixel at `(x, y)`.
    ///
    /// # Panics
    ///
    /// If the point is outside the frame.
    pub fn set(&mut self, x: u32, y: u32, v: u32) {
        assert!(x < self.width && y < self.height, "pixel out of range");
        let i = self.index(x, y);
        Arc::make_mut(&mut self.pixels)[i] = v;
    }

    /// Fills a rectangle, clipped to the frame.
    pub fn fill_rect(&mut self, rect: Rect, color: u32) {
        let Some(r) = rect.intersect(&self.bounds()) else {
            return;
        };
        for y in r.y..r.y + r.height {
            let start = self.index(r.x, y);
            Arc::make_mut(&mut self.pixels)[start..start + r.width as usize].fill(color);
        }
    }

    /// A copy of a rectangle, clipped to the frame (possibly empty).
    pub fn crop(&self, rect: Rect) -> Frame {
        let Some(r) = rect.intersect(&self.bounds()) else {
            return Frame {
                width: 0,
                height: 0,
                pixels: Arc::new(Vec::new()),
            };
        };
        let mut pixels = Vec::with_capacity(r.area() as usize);
        for y in r.y..r.y + r.height {
            let start = self.index(r.x, y);
            pixels.extend_from_slice(&self.pixels[start..start + r.width as usize]);
        }
        Frame {
            width: r.width,
            height: r.height,
            pixels: Arc::new(pixels),
        }
    }

    /// Copies `src` with its top-left corner at `(x, y)`, clipped to this frame.
    pub fn blit(&mut self, src: &Frame, x: u32, y: u32) {
        let dest = Rect::new(x, y, src.width, src.height);
        let Some(r) = dest.intersect(&self.bounds()) else {
            return;
        };
        // The clipped area starts at (x, y) since x, y are inside the frame.
        let w = r.width as usize;
        for row in 0..r.height {
            let s = src.index(0, row);
            let d = self.index(r.x, r.y + row);
            Arc::make_mut(&mut self.pixels)[d..d + w].copy_from_slice(&src.pixels[s..s + w]);
        }
    }

    /// Applies a copy-rect (memmove semantics: the copy reads the picture
    /// as it was just before it, so source and destination may overlap).
    /// Refuses, changing nothing, a copy that is empty or does not lie
    /// entirely inside the frame (`BadMove` with index 0).
    pub fn copy_rect(&mut self, m: &CopyRect) -> Result<(), CodecError> {
        if let Some(reason) = m.problem(self.width, self.height) {
            return Err(CodecError::BadMove { index: 0, reason });
        }
        self.copy_rect_unchecked(m);
        Ok(())
    }

    /// [`Frame::copy_rect`] for a copy already checked to fit.
    pub(crate) fn copy_rect_unchecked(&mut self, m: &CopyRect) {
        let (w, cw) = (self.width as usize, m.src.width as usize);
        let (sx, sy) = (m.src.x as usize, m.src.y as usize);
        let (dx, dy) = (m.dst_x as usize, m.dst_y as usize);
        let pixels = Arc::make_mut(&mut self.pixels);
        let mut row = |r: usize| {
            let s = (sy + r) * w + sx;
            pixels.copy_within(s..s + cw, (dy + r) * w + dx);
        };
        // Moving down: copy the bottom row first so no source row is
        // overwritten before it is read (and the reverse moving up); rows
        // at the same height are handled by copy_within itself.
        if dy > sy {
            (0..m.src.height as usize).rev().for_each(&mut row);
        } else {
            (0..m.src.height as usize).for_each(&mut row);
        }
    }

    fn index(&self, x: u32, y: u32) -> usize {
        y as usize * self.width as usize + x as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_sized_frames_are_allowed() {
        let f = Frame::new(0, 7);
        assert!(f.pixels().is_empty());
        assert_eq!(f.crop(Rect::new(0, 0, 5, 5)).pixels().len(), 0);
    }

    #[test]
    fn from_pixels_checks_length_and_dimensions() {
        assert!(Frame::from_pixels(2, 2, vec![0; 4]).is_ok());
        assert_eq!(
            Frame::from_pixels(2, 2, vec![0; 3]),
            Err(CodecError::LengthMismatch {
                expected: 4,
                found: 3
            })
        );
        assert!(matches!(
            Frame::from_pixels(MAX_DIMENSION + 1, 0, vec![]),
            Err(CodecError::BadDimensions { .. })
        ));
        assert!(Frame::try_new(1, MAX_DIMENSION + 1).is_err());
    }

    #[test]
    fn fill_crop_blit_clip() {
        let mut f = Frame::new(4, 3);
        f.fill_rect(Rect::new(2, 1, 10, 10), 7);
        assert_eq!(f.get(1, 1), 0);
        assert_eq!(f.get(3, 2), 7);
        let c = f.crop(Rect::new(1, 1, 100, 1));
        assert_eq!((c.width(), c.height()), (3, 1));
        assert_eq!(c.pixels(), &[0, 7, 7]);
        let mut g = Frame::new(3, 3);
        g.blit(&Frame::filled(2, 2, 9), 2, 2);
        assert_eq!(g.pixels(), &[0, 0, 0, 0, 0, 0, 0, 0, 9]);
        g.blit(&Frame::filled(2, 2, 9), 3, 0);
        assert_eq!(g.get(2, 0), 0);
    }

    #[test]
    fn rgba_round_trip_ignores_alpha() {
        let f = Frame::from_rgba8(2, 1, &[1, 2, 3, 0, 4, 5, 6, 77]).unwrap();
        assert_eq!(f.pixels(), &[0x010203, 0x040506]);
        assert_eq!(f.to_rgba8(), vec![1, 2, 3, 255, 4, 5, 6, 255]);
        assert!(Frame::from_rgba8(2, 1, &[0; 7]).is_err());
    }

    #[test]
    fn copy_rect_overlapping_reads_the_old_picture() {
        let mut f = Frame::new(4, 4);
        for (i, p) in f.pixels_mut().iter_mut().enumerate() {
            *p = i as u32;
        }
        let orig = f.clone();
        let m = CopyRect {
            src: Rect::new(0, 0, 3, 3),
            dst_x: 1,
            dst_y: 1,
        };
        f.copy_rect(&m).unwrap();
        for y in 1..4 {
            for x in 1..4 {
                assert_eq!(f.get(x, y), orig.get(x - 1, y - 1));
            }
        }
        let back = CopyRect {
            src: Rect::new(1, 1, 3, 3),
            dst_x: 0,
            dst_y: 0,
        };
        let mut g = orig.clone();
        g.copy_rect(&back).unwrap();
        assert_eq!(g.get(0, 0), orig.get(1, 1));
        assert_eq!(g.get(2, 2), orig.get(3, 3));
        let out = CopyRect {
            src: Rect::new(2, 0, 3, 1),
            dst_x: 0,
            dst_y: 0,
        };
        assert!(matches!(g.copy_rect(&out), Err(CodecError::BadMove { .. })));
        let empty = CopyRect {
            src: Rect::new(0, 0, 0, 1),
            dst_x: 0,
            dst_y: 0,
        };
        assert!(g.copy_rect(&empty).is_err());
    }

    #[test]
    fn clones_share_pixels_until_one_is_written() {
        let mut a = Frame::filled(3, 2, 5);
        let b = a.clone();
        assert!(a.is_shared() && b.is_shared());
        a.set(1, 1, 9);
        assert!(!a.is_shared() && !b.is_shared());
        assert_eq!(b, Frame::filled(3, 2, 5), "the clone keeps its picture");
        assert_eq!(a.get(1, 1), 9);
        let mut c = a.clone();
        c.fill_rect(Rect::new(0, 0, 1, 1), 4);
        c.copy_rect(&CopyRect {
            src: Rect::new(0, 0, 1, 1),
            dst_x: 2,
            dst_y: 0,
        })
        .unwrap();
        let mut d = a.clone();
        d.pixels_mut()[0] = 1;
        assert_eq!(a.get(0, 0), 5, "writes through pixels_mut copy too");
        assert_eq!(a.get(2, 0), 5);
        assert_eq!(c.get(2, 0), 4);
        assert_eq!(a.clone().into_pixels(), a.pixels());
    }

    #[test]
    fn copy_area_from_copies_only_the_clipped_area() {
        let mut src = Frame::new(4, 3);
        for (i, p) in src.pixels_mut().iter_mut().enumerate() {
            *p = i as u32 + 1;
        }
        let mut dst = Frame::new(4, 3);
        let before = dst.clone();
        dst.copy_area_from(&src, Rect::new(2, 1, 10, 10));
        for y in 0..3 {
            for x in 0..4 {
                let want = if x >= 2 && y >= 1 { src.get(x, y) } else { 0 };
                assert_eq!(dst.get(x, y), want, "pixel {x},{y}");
            }
        }
        assert_eq!(
            before,
            Frame::new(4, 3),
            "a clone of the destination is untouched"
        );
        dst.copy_area_from(&src, Rect::new(5, 5, 2, 2));
        assert_eq!(dst.get(0, 0), 0);
    }

    #[test]
    fn debug_does_not_print_pixels() {
        let s = format!("{:?}", Frame::filled(2, 2, 0xabcdef));
        assert!(s.contains("width: 2") && !s.contains("11259375"));
    }
}
