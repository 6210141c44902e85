//! Content generators shared by the benches: text-like desktops, small
//! localized changes and photo-like images, all deterministic; and the
//! bytes bench ([`bytes`]: Tandem against VNC servers on the wire) and the
//! fan-out load tool ([`fanout`]: many attendees in one process).

pub mod bytes;
pub mod fanout;

use tandem_codec::{Frame, Rect, TILE_SIZE};

pub mod terminal;

/// Makes the test harness start the `tandem` binary that sits beside this
/// tool in target/<profile>/ (the harness itself looks beside test binaries,
/// in deps/), unless `TANDEM_BIN` already says where it is.
pub fn use_tandem_beside_this_binary() {
    if std::env::var_os("TANDEM_BIN").is_none() {
        let exe = std::env::current_exe().expect("own path");
        std::env::set_var("TANDEM_BIN", exe.with_file_name("tandem"));
    }
}

/// Width of the benched screen.
pub const WIDTH: u32 = 1920;
/// Height of the benched screen.
pub const HEIGHT: u32 = 1080;

/// A small deterministic pseudo-random generator.
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator; any seed works.
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 16) as u32
    }
}

/// A 5x7 bitmap for each of 64 pseudo-glyphs (bit `y * 5 + x`).
fn glyphs() -> Vec<u64> {
    let mut rng = XorShift::new(42);
    (0..64)
        .map(|_| {
            // Thin strokes: about a third of the cells set, like real glyphs.
            let a = u64::from(rng.next_u32()) | (u64::from(rng.next_u32()) << 32);
            let b = u64::from(rng.next_u32()) | (u64::from(rng.next_u32()) << 32);
            a & b & ((1 << 35) - 1)
        })
        .collect()
}

/// A vocabulary of 400 words of 2-9 pseudo-letters (glyph indices).
fn words() -> Vec<Vec<usize>> {
    let mut rng = XorShift::new(7);
    (0..400)
        .map(|_| {
            let letters = 2 + rng.next_u32() % 8;
            (0..letters)
                .map(|_| (rng.next_u32() % 64) as usize)
                .collect()
        })
        .collect()
}

/// Horizontal distance between letters, in pixels (a 5-pixel glyph and
/// spacing, like an 8x16 console font).
pub const LETTER_PITCH: u32 = 7;
/// Distance between text lines, in pixels.
pub const LINE_HEIGHT: u32 = 16;

/// Draws lines of dark glyph-like text on a light background into `area`,
/// starting with line number `first_line` of the document picked by `seed`
/// (so `first_line + 1` is the same text scrolled up by one line).
pub fn draw_text(frame: &mut Frame, area: Rect, seed: u64, first_line: u32) {
    let glyphs = glyphs();
    let words = words();
    let Some(area) = area.intersect(&frame.bounds()) else {
        return;
    };
    frame.fill_rect(area, 0x00f4_f4f2);
    let mut y = area.y + 4;
    let mut line = u64::from(first_line);
    while y + 7 <= area.y + area.height {
        let mut rng = XorShift::new(seed.wrapping_mul(1_000_003).wrapping_add(line));
        // Ragged line ends and a few empty lines, like source code or prose.
        let line_end = area.x + area.width * (30 + rng.next_u32() % 70) / 100;
        let mut x = area.x + 8 + LETTER_PITCH * (rng.next_u32() % 4) * 4;
        if rng.next_u32() % 8 == 0 {
            x = line_end;
        }
        loop {
            let word = &words[(rng.next_u32() % words.len() as u32) as usize];
            if x + LETTER_PITCH * word.len() as u32 > line_end {
                break;
            }
            for &g in word {
                let g = glyphs[g];
                for gy in 0..7 {
                    for gx in 0..5 {
                        if g >> (gy * 5 + gx) & 1 == 1 {
                            frame.set(x + gx, y + gy, 0x0020_2428);
                        }
                    }
                }
                x += LETTER_PITCH;
            }
            x += LETTER_PITCH;
        }
        y += LINE_HEIGHT;
        line += 1;
    }
}

/// A 1080p desktop: a title bar, a sidebar and a text editor area whose
/// text is scrolled down by `scroll` lines (16 pixels each).
pub fn desktop(seed: u64, scroll: u32) -> Frame {
    let mut f = Frame::filled(WIDTH, HEIGHT, 0x002b_303b);
    f.fill_rect(Rect::new(0, 0, WIDTH, 32), 0x0033_3842);
    f.fill_rect(Rect::new(0, 32, 240, HEIGHT - 32), 0x00e0_e2e6);
    draw_text(&mut f, Rect::new(8, 40, 224, HEIGHT - 48), seed ^ 0x55, 0);
    draw_text(
        &mut f,
        Rect::new(248, 40, WIDTH - 256, HEIGHT - 48),
        seed,
        scroll,
    );
    f
}

/// A full redraw: the whole screen is text, scrolled by `scroll` lines
/// (16 pixels, so no tile-aligned copy exists) and shifted right by
/// `scroll % 8` pixels.
pub fn text_screen(seed: u64, scroll: u32) -> Frame {
    let mut f = Frame::new(WIDTH, HEIGHT);
    let area = Rect::new(scroll % 8, 0, WIDTH, HEIGHT);
    draw_text(&mut f, area, seed, scroll);
    f
}

/// Changes `count` tiles spread over the frame (a cursor, a clock, typed
/// letters): small marks whose colour depends on `phase`.
pub fn touch_tiles(frame: &mut Frame, count: u32, phase: u32) {
    let (tx, ty) = tandem_codec::tile_grid(frame.width(), frame.height());
    let total = tx * ty;
    for i in 0..count {
        let t = (i * 7919 + 13) % total;
        let x = (t % tx) * TILE_SIZE + 10;
        let y = (t / tx) * TILE_SIZE + 20;
        let color = if phase % 2 == 0 {
            0x0010_1010
        } else {
            0x00f0_f0f0
        };
        frame.fill_rect(Rect::new(x, y, 8, 14), color);
        frame.fill_rect(Rect::new(x + 12, y, 2, 14), color ^ 0x00ff_0000);
    }
}

/// Photo-like content: smooth gradients and shapes with sensor-like noise
/// in the low bits, different for every `seed`.
pub fn photo(seed: u64) -> Frame {
    let mut rng = XorShift::new(seed);
    let mut f = Frame::new(WIDTH, HEIGHT);
    let (cx, cy) = (
        (rng.next_u32() % WIDTH) as i64,
        (rng.next_u32() % HEIGHT) as i64,
    );
    for (i, p) in f.pixels_mut().iter_mut().enumerate() {
        let x = (i % WIDTH as usize) as i64;
        let y = (i / WIDTH as usize) as i64;
        let d = ((x - cx).pow(2) + (y - cy).pow(2)) >> 10;
        let n = rng.next_u32();
        let r = ((x * 255 / WIDTH as i64 + d) & 0xff) as u32 ^ (n & 7);
        let g = ((y * 255 / HEIGHT as i64 + d / 2) & 0xff) as u32 ^ ((n >> 3) & 7);
        let b = ((128 + d) & 0xff) as u32 ^ ((n >> 6) & 7);
        *p = (r << 16) | (g << 8) | b;
    }
    f
}
