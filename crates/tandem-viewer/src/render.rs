//! Drawing into the window's pixel buffer (0x00RRGGBB, row-major, like
//! [`Frame`]): the desktop scaled as the [`Viewport`] says, the shared
//! pointer, and text panels (status overlay, what the viewer is doing while
//! disconnected). Pure functions over slices, so they are tested without a
//! window.

use tandem_codec::Frame;
use tandem_proto::CursorShape;

use crate::geometry::{Area, Placement, Viewport};

/// Colour around the desktop when its aspect ratio differs from the window's.
pub const BACKGROUND: u32 = 0x0020_2020;

/// A destination buffer.
pub struct Canvas<'a> {
    /// Pixels, `width * height`.
    pub pixels: &'a mut [u32],
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// For one axis: the source span `[start, end)` each destination pixel averages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct AxisMap {
    spans: Vec<(u32, u32)>,
}

impl AxisMap {
    fn new(src_start: u32, src_len: u32, dst_len: u32) -> AxisMap {
        let spans = (0..dst_len)
            .map(|d| {
                let a = u64::from(d) * u64::from(src_len) / u64::from(dst_len);
                let b = (u64::from(d) + 1) * u64::from(src_len) / u64::from(dst_len);
                let a = a as u32;
                let b = (b as u32).max(a + 1);
                (src_start + a, src_start + b)
            })
            .collect();
        AxisMap { spans }
    }
}

/// Scales the desktop into the window: a box filter when shrinking (each
/// window pixel is the average of the desktop pixels it covers, which keeps
/// text legible), nearest pixel when enlarging, a plain copy at 1:1. The
/// column and row maps are kept until the placement changes.
#[derive(Default)]
pub struct Scaler {
    placement: Option<Placement>,
    cols: AxisMap,
    rows: AxisMap,
    /// Per destination column: sums of r, g, b and the count, for one row.
    acc: Vec<[u32; 4]>,
}

impl Scaler {
    /// A scaler with no maps yet.
    pub fn new() -> Scaler {
        Scaler::default()
    }

    fn prepare(&mut self, p: Placement) {
        if self.placement != Some(p) {
            self.cols = AxisMap::new(p.src.x, p.src.w, p.dst.w);
            self.rows = AxisMap::new(p.src.y, p.src.h, p.dst.h);
            self.acc = vec![[0; 4]; p.dst.w as usize];
            self.placement = Some(p);
        }
    }

    /// Draws `frame` as `viewport` places it and fills the rest with
    /// [`BACKGROUND`]. The viewport's desktop size must be the frame's.
    pub fn draw(&mut self, canvas: &mut Canvas<'_>, frame: &Frame, viewport: &Viewport) {
        let p = viewport.placement();
        fill_outside(canvas, p.dst, BACKGROUND);
        if p.dst.w == 0
            || p.dst.h == 0
            || viewport.frame_w != frame.width()
            || viewport.frame_h != frame.height()
            || p.dst.x + p.dst.w > canvas.width
            || p.dst.y + p.dst.h > canvas.height
        {
            return;
        }
        let cw = canvas.width as usize;
        if p.src.w == p.dst.w && p.src.h == p.dst.h {
            for row in 0..p.dst.h {
                let src = &frame.row(p.src.y + row)[p.src.x as usize..(p.src.x + p.src.w) as usize];
                let start = (p.dst.y + row) as usize * cw + p.dst.x as usize;
                canvas.pixels[start..start + src.len()].copy_from_slice(src);
            }
            return;
        }
        self.prepare(p);
        for (dy, &(r0, r1)) in self.rows.spans.iter().enumerate() {
            let out_start = (p.dst.y as usize + dy) * cw + p.dst.x as usize;
            let out = &mut canvas.pixels[out_start..out_start + p.dst.w as usize];
            if r1 - r0 == 1 && self.cols.spans.iter().all(|&(a, b)| b - a == 1) {
                // Enlarging: nearest pixel.
                let src = frame.row(r0);
                for (o, &(c0, _)) in out.iter_mut().zip(&self.cols.spans) {
                    *o = src[c0 as usize];
                }
                continue;
            }
            self.acc.iter_mut().for_each(|a| *a = [0; 4]);
            for r in r0..r1 {
                let src = frame.row(r);
                for (a, &(c0, c1)) in self.acc.iter_mut().zip(&self.cols.spans) {
                    for &px in &src[c0 as usize..c1 as usize] {
                        a[0] += (px >> 16) & 0xff;
                        a[1] += (px >> 8) & 0xff;
                        a[2] += px & 0xff;
                        a[3] += 1;
                    }
                }
            }
            for (o, a) in out.iter_mut().zip(&self.acc) {
                let n = a[3].max(1);
                let round = |s: u32| (s + n / 2) / n;
                *o = (round(a[0]) << 16) | (round(a[1]) << 8) | round(a[2]);
            }
        }
    }
}

/// Fills everything but `keep` with `color`.
pub fn fill_outside(canvas: &mut Canvas<'_>, keep: Area, color: u32) {
    let (w, h) = (canvas.width as usize, canvas.height as usize);
    for y in 0..h {
        let row = &mut canvas.pixels[y * w..(y + 1) * w];
        let inside_rows = (y as u32) >= keep.y && (y as u32) < keep.y + keep.h;
        if !inside_rows || keep.w == 0 {
            row.fill(color);
        } else {
            let x0 = (keep.x as usize).min(w);
            let x1 = ((keep.x + keep.w) as usize).min(w);
            row[..x0].fill(color);
            row[x1..].fill(color);
        }
    }
}

/// Halves the brightness of everything (a picture that is no longer live).
pub fn dim(canvas: &mut Canvas<'_>) {
    for p in canvas.pixels.iter_mut() {
        *p = (*p >> 1) & 0x007f_7f7f;
    }
}

/// Draws the pointer with its hot spot at desktop point `(x, y)`, scaled
/// like the desktop, clipped to the drawn desktop. The image is BGRA with
/// premultiplied alpha.
pub fn draw_cursor(
    canvas: &mut Canvas<'_>,
    viewport: &Viewport,
    shape: &CursorShape,
    x: i32,
    y: i32,
) {
    let p = viewport.placement();
    if p.dst.w == 0 || shape.validate().is_err() {
        return;
    }
    let scale = viewport.scale();
    let left = f64::from(x) - f64::from(shape.hot_x);
    let top = f64::from(y) - f64::from(shape.hot_y);
    let (wx0, wy0) = viewport.frame_to_window(left, top);
    let (wx1, wy1) =
        viewport.frame_to_window(left + f64::from(shape.width), top + f64::from(shape.height));
    // Clip to the drawn desktop (and so to the canvas).
    let cx0 = wx0.floor().max(f64::from(p.dst.x));
    let cy0 = wy0.floor().max(f64::from(p.dst.y));
    let cx1 = wx1
        .ceil()
        .min(f64::from(p.dst.x + p.dst.w))
        .min(f64::from(canvas.width));
    let cy1 = wy1
        .ceil()
        .min(f64::from(p.dst.y + p.dst.h))
        .min(f64::from(canvas.height));
    if cx0 >= cx1 || cy0 >= cy1 {
        return;
    }
    let cw = canvas.width as usize;
    for wy in cy0 as u32..cy1 as u32 {
        let sy = ((f64::from(wy) + 0.5 - wy0) / scale).floor();
        if sy < 0.0 || sy >= f64::from(shape.height) {
            continue;
        }
        for wx in cx0 as u32..cx1 as u32 {
            let sx = ((f64::from(wx) + 0.5 - wx0) / scale).floor();
            if sx < 0.0 || sx >= f64::from(shape.width) {
                continue;
            }
            let i = (sy as usize * usize::from(shape.width) + sx as usize) * 4;
            let [b, g, r, a] = [
                shape.bgra[i],
                shape.bgra[i + 1],
                shape.bgra[i + 2],
                shape.bgra[i + 3],
            ];
            if a == 0 && r == 0 && g == 0 && b == 0 {
                continue;
            }
            let o = &mut canvas.pixels[wy as usize * cw + wx as usize];
            *o = blend_premultiplied(*o, r, g, b, a);
        }
    }
}

/// `src over dst` with a premultiplied source.
fn blend_premultiplied(dst: u32, r: u8, g: u8, b: u8, a: u8) -> u32 {
    let inv = 255 - u32::from(a);
    let ch = |shift: u32, s: u8| {
        let d = (dst >> shift) & 0xff;
        (u32::from(s) + (d * inv + 127) / 255).min(255)
    };
    (ch(16, r) << 16) | (ch(8, g) << 8) | ch(0, b)
}

/// Glyph cell size of the built-in font, before scaling.
pub const GLYPH: u32 = 8;

fn glyph(c: char) -> [u8; 8] {
    use font8x8::legacy::{BASIC_LEGACY, LATIN_LEGACY};
    match c as u32 {
        n @ 0x20..=0x7e => BASIC_LEGACY[n as usize],
        n @ 0xa0..=0xff => LATIN_LEGACY[(n - 0xa0) as usize],
        _ => BASIC_LEGACY[usize::from(b'?')],
    }
}

/// Text lines on a darkened panel. `scale` multiplies the 8x8 font (for
/// high-DPI windows).
pub struct Panel<'a> {
    /// Lines of text.
    pub lines: &'a [String],
    /// Font scale (1, 2, ...).
    pub scale: u32,
    /// Text colour.
    pub color: u32,
}

impl Panel<'_> {
    /// Size of the panel in pixels (text plus a margin).
    pub fn size(&self) -> (u32, u32) {
        let cell = GLYPH * self.scale;
        let cols = self
            .lines
            .iter()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0) as u32;
        let pad = 2 * self.margin();
        (
            cols * cell + pad,
            self.lines.len() as u32 * (cell + self.scale) + pad,
        )
    }

    fn margin(&self) -> u32 {
        4 * self.scale
    }

    /// Draws the panel with its top-left corner at `(x, y)`, clipped to the canvas.
    pub fn draw(&self, canvas: &mut Canvas<'_>, x: u32, y: u32) {
        let (w, h) = self.size();
        let x1 = (x + w).min(canvas.width);
        let y1 = (y + h).min(canvas.height);
        let cw = canvas.width as usize;
        for py in y.min(y1)..y1 {
            for px in x.min(x1)..x1 {
                let o = &mut canvas.pixels[py as usize * cw + px as usize];
                // A quarter of the brightness, so text stays readable on any picture.
                *o = (*o >> 2) & 0x003f_3f3f;
            }
        }
        let cell = GLYPH * self.scale;
        for (i, line) in self.lines.iter().enumerate() {
            let ty = y + self.margin() + i as u32 * (cell + self.scale);
            for (j, c) in line.chars().enumerate() {
                let tx = x + self.margin() + j as u32 * cell;
                draw_glyph(canvas, tx, ty, glyph(c), self.scale, self.color);
            }
        }
    }
}

fn draw_glyph(canvas: &mut Canvas<'_>, x: u32, y: u32, rows: [u8; 8], scale: u32, color: u32) {
    let cw = canvas.width as usize;
    for (gy, bits) in rows.iter().enumerate() {
        for gx in 0..8u32 {
            // Bit 0 is the leftmost pixel.
            if bits >> gx & 1 == 0 {
                continue;
            }
            for sy in 0..scale {
                let py = y + gy as u32 * scale + sy;
                if py >= canvas.height {
                    break;
                }
                for sx in 0..scale {
                    let px = x + gx * scale + sx;
                    if px >= canvas.width {
                        break;
                    }
                    canvas.pixels[py as usize * cw + px as usize] = color;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::ScaleMode;

    fn test_frame(w: u32, h: u32) -> Frame {
        let pixels = (0..w * h)
            .map(|i: u32| i.wrapping_mul(2_654_435_761) & 0x00ff_ffff)
            .collect();
        Frame::from_pixels(w, h, pixels).unwrap()
    }

    fn render(frame: &Frame, mode: ScaleMode, window: (u32, u32)) -> Vec<u32> {
        let mut buf = vec![0xdead_beef; (window.0 * window.1) as usize];
        let v = Viewport::new(mode, window, (frame.width(), frame.height()));
        let mut canvas = Canvas {
            pixels: &mut buf,
            width: window.0,
            height: window.1,
        };
        Scaler::new().draw(&mut canvas, frame, &v);
        buf
    }

    #[test]
    fn one_to_one_is_the_frame_bit_for_bit() {
        let f = test_frame(37, 23);
        assert_eq!(render(&f, ScaleMode::OneToOne, (37, 23)), f.pixels());
        assert_eq!(render(&f, ScaleMode::Fit, (37, 23)), f.pixels());
    }

    #[test]
    fn one_to_one_in_a_larger_window_is_centred_on_background() {
        let f = test_frame(4, 2);
        let out = render(&f, ScaleMode::OneToOne, (6, 4));
        for y in 0..4u32 {
            for x in 0..6u32 {
                let got = out[(y * 6 + x) as usize];
                if (1..5).contains(&x) && (1..3).contains(&y) {
                    assert_eq!(got, f.get(x - 1, y - 1));
                } else {
                    assert_eq!(got, BACKGROUND);
                }
            }
        }
    }

    #[test]
    fn doubling_repeats_pixels_and_halving_averages_them() {
        let f = test_frame(5, 3);
        let big = render(&f, ScaleMode::Fit, (10, 6));
        for y in 0..6u32 {
            for x in 0..10u32 {
                assert_eq!(big[(y * 10 + x) as usize], f.get(x / 2, y / 2));
            }
        }
        let px = |r: u32, g: u32, b: u32| (r << 16) | (g << 8) | b;
        let f = Frame::from_pixels(
            2,
            2,
            vec![
                px(0, 0, 0),
                px(100, 10, 255),
                px(200, 20, 255),
                px(100, 10, 255),
            ],
        )
        .unwrap();
        assert_eq!(render(&f, ScaleMode::Fit, (1, 1)), vec![px(100, 10, 191)]);
    }

    #[test]
    fn cursor_blends_premultiplied_and_clips() {
        let f = Frame::filled(4, 4, 0x0000_00ff);
        let mut buf = f.pixels().to_vec();
        let v = Viewport::new(ScaleMode::OneToOne, (4, 4), (4, 4));
        // 2x1: opaque red, then half-transparent white (premultiplied 128).
        let shape = CursorShape {
            id: 1,
            width: 2,
            height: 1,
            hot_x: 0,
            hot_y: 0,
            bgra: vec![0, 0, 255, 255, 128, 128, 128, 128],
        };
        let mut canvas = Canvas {
            pixels: &mut buf,
            width: 4,
            height: 4,
        };
        draw_cursor(&mut canvas, &v, &shape, 3, 1);
        assert_eq!(buf[4 + 3], 0x00ff_0000);
        assert_eq!(buf[4 + 2], 0x0000_00ff, "left of the hot spot untouched");
        let mut canvas = Canvas {
            pixels: &mut buf,
            width: 4,
            height: 4,
        };
        draw_cursor(&mut canvas, &v, &shape, 1, 2);
        assert_eq!(buf[8 + 1], 0x00ff_0000);
        assert_eq!(buf[8 + 2], 0x0080_80ff);
    }

    #[test]
    fn panel_text_is_drawn_inside_its_box() {
        let mut buf = vec![0x00ff_ffff; 200 * 40];
        let lines = vec!["fps 30".to_owned()];
        let panel = Panel {
            lines: &lines,
            scale: 1,
            color: 0x0000_ff00,
        };
        let (w, h) = panel.size();
        assert_eq!((w, h), (6 * 8 + 8, 9 + 8));
        let mut canvas = Canvas {
            pixels: &mut buf,
            width: 200,
            height: 40,
        };
        panel.draw(&mut canvas, 10, 5);
        let green = buf.iter().filter(|&&p| p == 0x0000_ff00).count();
        assert!(green > 20, "glyphs drawn: {green}");
        for (i, &p) in buf.iter().enumerate() {
            let (x, y) = (i as u32 % 200, i as u32 / 200);
            let inside = (10..10 + w).contains(&x) && (5..5 + h).contains(&y);
            if !inside {
                assert_eq!(p, 0x00ff_ffff, "outside the panel at {x},{y}");
            }
        }
    }
}
