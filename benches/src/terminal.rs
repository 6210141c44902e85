//! A terminal-like window drawn with the `font8x8` bitmap font: lines of
//! deterministic text in 8x15 cells (about xterm's DejaVu Sans Mono 10),
//! with a lighter shade beside each stroke like anti-aliased glyphs. The
//! codec benches and figures use it for typing, scrolling and moving.

use tandem_codec::{Frame, Rect};

/// Cell width in pixels.
pub const CELL_W: u32 = 8;
/// Cell height in pixels (one text line).
pub const CELL_H: u32 = 15;
/// Border around the text area, in pixels.
pub const BORDER: u32 = 2;

const BACKGROUND: u32 = 0x00ff_ffff;
const FOREGROUND: u32 = 0x0010_1010;
const SHADE: u32 = 0x00a8_a8a8;
const FRAME_COLOR: u32 = 0x0040_4a58;

/// Line `n` of a deterministic document: words of lowercase letters and
/// digits, ragged ends, some empty lines (like a log or source code).
pub fn line(seed: u64, n: u64, cols: u32) -> String {
    let mut rng = crate::XorShift::new(seed.wrapping_mul(1_000_003).wrapping_add(n));
    if rng.next_u32() % 9 == 0 {
        return String::new();
    }
    let len = (cols * (20 + rng.next_u32() % 80) / 100) as usize;
    let mut s = String::with_capacity(len);
    while s.len() < len {
        let word = 1 + rng.next_u32() % 9;
        for _ in 0..word {
            let c = rng.next_u32() % 36;
            s.push(if c < 26 {
                char::from(b'a' + c as u8)
            } else {
                char::from(b'0' + (c - 26) as u8)
            });
        }
        s.push(' ');
    }
    s.truncate(len);
    s
}

/// Outer size in pixels of a terminal of `cols` x `rows` cells.
pub fn size(cols: u32, rows: u32) -> (u32, u32) {
    (cols * CELL_W + 2 * BORDER, rows * CELL_H + 2 * BORDER)
}

/// Draws a terminal of `cols` x `rows` cells at `(x, y)` showing document
/// lines `first..first + rows` of `seed`; returns its outer rectangle.
pub fn draw(
    frame: &mut Frame,
    x: u32,
    y: u32,
    cols: u32,
    rows: u32,
    seed: u64,
    first: u64,
) -> Rect {
    let (w, h) = size(cols, rows);
    let outer = Rect::new(x, y, w, h);
    frame.fill_rect(outer, FRAME_COLOR);
    frame.fill_rect(
        Rect::new(x + BORDER, y + BORDER, cols * CELL_W, rows * CELL_H),
        BACKGROUND,
    );
    for row in 0..rows {
        let text = line(seed, first + u64::from(row), cols);
        for (col, ch) in text.chars().enumerate().take(cols as usize) {
            draw_char(frame, x, y, col as u32, row, ch);
        }
    }
    outer
}

/// Draws one character into cell `(col, row)` of the terminal at `(x, y)`.
pub fn draw_char(frame: &mut Frame, x: u32, y: u32, col: u32, row: u32, ch: char) {
    let cx = x + BORDER + col * CELL_W;
    let cy = y + BORDER + row * CELL_H;
    frame.fill_rect(Rect::new(cx, cy, CELL_W, CELL_H), BACKGROUND);
    let glyph = font8x8::legacy::BASIC_LEGACY[(ch as usize) & 0x7f];
    for (gy, bits) in glyph.iter().enumerate() {
        for gx in 0..8u32 {
            let (px, py) = (cx + gx, cy + 3 + gy as u32);
            if px >= frame.width() || py >= frame.height() {
                continue;
            }
            if bits >> gx & 1 == 1 {
                frame.set(px, py, FOREGROUND);
            } else if gx > 0 && bits >> (gx - 1) & 1 == 1 {
                frame.set(px, py, SHADE);
            }
        }
    }
}
