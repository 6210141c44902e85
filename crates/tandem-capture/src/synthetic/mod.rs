//! A deterministic, desktop-like capture source for tests, demos and benches.
//!
//! The picture is a pure function of `(seed, width, height, tick)`: a
//! gradient wallpaper, an editor window, a terminal whose text scrolls up
//! one line every [`SCROLL_EVERY`] ticks, a clock window that changes every
//! tick, a small photo viewer that moves a few pixels every tick, and a
//! taskbar. Its changes are the ones a codec must handle well: scrolled
//! text, a moved window, small changing regions, and a static rest.
//!
//! Because the animation is known, the damage between consecutive ticks is
//! computed from the layout rather than by comparing pixels.

mod canvas;
mod font;

use tandem_codec::{Frame, Rect};

use crate::{CaptureError, CaptureSource, Captured};
use canvas::{Canvas, IRect};
use font::{ADVANCE, GLYPH_H};

/// Ticks between two one-line scrolls of the terminal.
pub const SCROLL_EVERY: u64 = 4;

/// Pixels between two text baselines.
const LINE_H: i64 = 10;
/// Height of a window title bar.
const TITLE_H: i64 = 18;
/// Padding inside window content areas.
const PAD: i64 = 4;
/// Simulated milliseconds per tick (about 30 frames a second).
const MS_PER_TICK: u64 = 33;
/// Mover speed in pixels per tick.
const MOVER_VX: i64 = 3;
const MOVER_VY: i64 = 2;

const BORDER: u32 = 0x0020_2830;
const TITLE_ACTIVE: u32 = 0x002f_5d9e;
const TITLE_INACTIVE: u32 = 0x005a_6470;
const TITLE_TEXT: u32 = 0x00ff_ffff;
const TERM_BG: u32 = 0x0010_1418;
const EDITOR_BG: u32 = 0x00fa_fafa;
const GUTTER_BG: u32 = 0x00ec_ecec;
const CLOCK_BG: u32 = 0x001b_1f24;
const TASKBAR_BG: u32 = 0x0015_181d;
const TASK_BUTTON: u32 = 0x002a_2f36;
const TASK_TEXT: u32 = 0x00e0_e0e0;

/// How much of the synthetic desktop changes per tick.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Motion {
    /// An office desktop: a clock, a scrolling terminal, a moving window.
    #[default]
    Desktop,
    /// Every pixel changes every tick (video-like): the desktop under a
    /// colour wave that moves each tick, for full-motion load figures.
    Full,
}

/// A deterministic desktop that animates one tick per capture.
pub struct SyntheticDesktop {
    seed: u64,
    motion: Motion,
    width: u32,
    height: u32,
    layout: Layout,
    freeze_at: Option<u64>,
    captures: u64,
    /// The last full render, reused while the animation is frozen.
    cache: Option<(u64, Frame)>,
    /// Animation tick and clipped rectangle of the previous capture.
    last: Option<(u64, Rect)>,
}

impl SyntheticDesktop {
    /// A desktop of `width`×`height` pixels (each at least 1; zero is
    /// raised to 1) whose content is derived from `seed`.
    pub fn new(seed: u64, width: u32, height: u32) -> Self {
        let width = width.max(1);
        let height = height.max(1);
        Self {
            seed,
            motion: Motion::Desktop,
            width,
            height,
            layout: Layout::new(seed, width, height),
            freeze_at: None,
            captures: 0,
            cache: None,
            last: None,
        }
    }

    /// Freeze the animation at `tick`: captures after that many show the
    /// same picture and report no damage.
    pub fn with_freeze_at(mut self, tick: u64) -> Self {
        self.freeze_at = Some(tick);
        self
    }

    /// Animate with `motion` instead of the office desktop's changes.
    pub fn with_motion(mut self, motion: Motion) -> Self {
        self.motion = motion;
        self
    }

    /// Number of captures so far.
    pub fn tick(&self) -> u64 {
        self.captures
    }

    /// The animation tick shown by the latest capture (0 before any).
    pub fn animation_tick(&self) -> u64 {
        self.freeze_at
            .map_or(self.captures, |f| self.captures.min(f))
    }

    /// The full desktop at animation tick `tick`.
    pub fn render(&self, tick: u64) -> Frame {
        let mut frame = Frame::new(self.width, self.height);
        let mut canvas = Canvas::new(frame.pixels_mut(), self.width, self.height);
        self.layout.draw(&mut canvas, tick);
        if self.motion == Motion::Full {
            full_motion_wave(&mut frame, tick);
        }
        frame
    }

    /// The rectangles (desktop coordinates) that may differ between the
    /// pictures at ticks `from` and `to`; `None` when not cheaply known.
    fn damage_between(&self, from: u64, to: u64) -> Option<Vec<IRect>> {
        if from == to {
            return Some(Vec::new());
        }
        if to != from + 1 || self.motion == Motion::Full {
            return None;
        }
        let l = &self.layout;
        let mut rects = vec![l.clock_content()];
        if to % SCROLL_EVERY == 0 {
            rects.push(l.terminal_content());
        }
        if taskbar_time(l.start_ms, from) != taskbar_time(l.start_ms, to) {
            rects.push(l.taskbar_clock());
        }
        let (a, b) = (l.mover(from), l.mover(to));
        if a != b {
            rects.push(a);
            rects.push(b);
        }
        let desktop = IRect::new(0, 0, i64::from(self.width), i64::from(self.height));
        Some(
            rects
                .into_iter()
                .map(|r| r.intersect(&desktop))
                .filter(|r| !r.is_empty())
                .collect(),
        )
    }
}

impl CaptureSource for SyntheticDesktop {
    fn describe(&self) -> String {
        match self.freeze_at {
            Some(f) => format!(
                "synthetic {}x{} seed {} frozen at tick {f}",
                self.width, self.height, self.seed
            ),
            None => format!(
                "synthetic {}x{} seed {}",
                self.width, self.height, self.seed
            ),
        }
    }

    fn desktop_size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn capture(&mut self, rect: Rect) -> Result<Captured, CaptureError> {
        let desktop = Rect::new(0, 0, self.width, self.height);
        let clipped = rect
            .intersect(&desktop)
            .ok_or(CaptureError::OutsideDesktop {
                x: rect.x,
                y: rect.y,
                width: rect.width,
                height: rect.height,
                desktop_width: self.width,
                desktop_height: self.height,
            })?;
        self.captures += 1;
        let tick = self.animation_tick();

        let full = match self.cache.take() {
            Some((t, frame)) if t == tick => frame,
            _ => self.render(tick),
        };
        let frame = if clipped == desktop {
            full.clone()
        } else {
            full.crop(clipped)
        };
        self.cache = Some((tick, full));

        let damage = match self.last {
            Some((prev_tick, prev_rect)) if prev_rect == clipped => self
                .damage_between(prev_tick, tick)
                .map(|rects| relative_to(&rects, clipped)),
            _ => None,
        };
        self.last = Some((tick, clipped));
        tracing::trace!(
            tick,
            capture = self.captures,
            width = clipped.width,
            height = clipped.height,
            damaged = damage.as_ref().map(Vec::len),
            "synthetic capture"
        );
        Ok(Captured {
            frame,
            damage,
            moves: Vec::new(),
        })
    }
}

/// Tints every pixel by a diagonal colour wave that moves 5 pixels a tick,
/// so each pixel differs from the previous tick's (a 64-step wave, no two
/// neighbouring steps equal) and no copy of the previous frame matches.
fn full_motion_wave(frame: &mut Frame, tick: u64) {
    let width = frame.width() as usize;
    let shift = (tick % 64) as usize * 5;
    for (i, p) in frame.pixels_mut().iter_mut().enumerate() {
        let (x, y) = (i % width, i / width);
        let phase = ((x + 2 * y + shift) / 5 % 64) as u32;
        // Odd steps: consecutive phases always differ in the low bit.
        let tint = (phase * 3 + 1) & 0x3f;
        *p ^= tint | (tint << 9) | (tint << 17);
    }
}

/// Clip desktop rectangles to `area` and express them relative to its origin.
fn relative_to(rects: &[IRect], area: Rect) -> Vec<Rect> {
    let a = IRect::new(
        i64::from(area.x),
        i64::from(area.y),
        i64::from(area.width),
        i64::from(area.height),
    );
    rects
        .iter()
        .map(|r| r.intersect(&a))
        .filter(|r| !r.is_empty())
        // Inside `area`, so every value fits in u32.
        .map(|r| {
            Rect::new(
                (r.x - a.x) as u32,
                (r.y - a.y) as u32,
                r.w as u32,
                r.h as u32,
            )
        })
        .collect()
}

/// A window: its outer rectangle, title and whether it has the focus.
#[derive(Clone, Copy, Debug)]
struct Window {
    frame: IRect,
    title: &'static str,
    active: bool,
}

impl Window {
    fn content(&self) -> IRect {
        let f = self.frame;
        IRect::new(
            f.x + 1,
            f.y + 1 + TITLE_H,
            (f.w - 2).max(0),
            (f.h - 2 - TITLE_H).max(0),
        )
    }

    /// Border, title bar, title and buttons; returns the content rectangle.
    fn draw_chrome(&self, c: &mut Canvas<'_>) -> IRect {
        let f = self.frame;
        let clip = f.intersect(&c.bounds());
        c.outline(f, clip, BORDER);
        let bar = IRect::new(f.x + 1, f.y + 1, f.w - 2, TITLE_H);
        let bar_color = if self.active {
            TITLE_ACTIVE
        } else {
            TITLE_INACTIVE
        };
        c.fill(bar, clip, bar_color);
        let buttons = [0x00d9_534f, 0x00f0_ad4e, 0x005c_b85c];
        let mut bx = bar.right() - 14;
        for color in buttons {
            c.fill(IRect::new(bx, bar.y + 4, 10, 10), clip, color);
            bx -= 14;
        }
        let title_clip = IRect::new(bar.x, bar.y, (bx + 10 - bar.x).max(0), bar.h).intersect(&clip);
        c.text(
            bar.x + 6,
            bar.y + (TITLE_H - GLYPH_H) / 2,
            self.title,
            1,
            title_clip,
            TITLE_TEXT,
        );
        self.content()
    }
}

/// Where everything is, derived from the seed and the desktop size.
struct Layout {
    seed: u64,
    width: i64,
    height: i64,
    taskbar_h: i64,
    editor: Window,
    terminal: Window,
    clock: Window,
    mover_w: i64,
    mover_h: i64,
    mover_phase: (i64, i64),
    start_ms: u64,
}

impl Layout {
    fn new(seed: u64, width: u32, height: u32) -> Self {
        let (w, h) = (i64::from(width), i64::from(height));
        let taskbar_h = (h / 24).min(28);
        let avail = h - taskbar_h;
        let clock_w = (w * 15 / 100).min(280);
        let clock_h = (h * 9 / 100).min(96);
        let r = mix(seed);
        Self {
            seed,
            width: w,
            height: h,
            taskbar_h,
            editor: Window {
                frame: IRect::new(
                    w * 44 / 100,
                    avail * 16 / 100,
                    w * 46 / 100,
                    avail * 62 / 100,
                ),
                title: "notes.md - Editor",
                active: false,
            },
            terminal: Window {
                frame: IRect::new(w * 3 / 100, avail * 6 / 100, w * 52 / 100, avail * 64 / 100),
                title: "user@tandem: ~/src - Terminal",
                active: true,
            },
            clock: Window {
                frame: IRect::new(w - clock_w - w * 2 / 100, avail * 3 / 100, clock_w, clock_h),
                title: "Clock",
                active: false,
            },
            mover_w: (w * 12 / 100).min(240),
            mover_h: (h * 14 / 100).min(160),
            mover_phase: ((r & 0xffff) as i64, ((r >> 16) & 0xffff) as i64),
            start_ms: (r >> 32) % 86_400_000,
        }
    }

    fn terminal_content(&self) -> IRect {
        self.terminal.content()
    }

    fn clock_content(&self) -> IRect {
        self.clock.content()
    }

    fn taskbar(&self) -> IRect {
        IRect::new(0, self.height - self.taskbar_h, self.width, self.taskbar_h)
    }

    fn taskbar_clock(&self) -> IRect {
        let bar = self.taskbar();
        let w = 8 * ADVANCE + 12;
        IRect::new(bar.right() - w, bar.y, w, bar.h)
    }

    /// The moving window's outer rectangle at `tick`.
    fn mover(&self, tick: u64) -> IRect {
        let range_x = (self.width - self.mover_w).max(0);
        let range_y = (self.height - self.taskbar_h - self.mover_h).max(0);
        // Ticks beyond any realistic run are folded so the product cannot overflow.
        let t = (tick % (1 << 40)) as i64;
        IRect::new(
            bounce(self.mover_phase.0 + t * MOVER_VX, range_x),
            bounce(self.mover_phase.1 + t * MOVER_VY, range_y),
            self.mover_w,
            self.mover_h,
        )
    }

    fn draw(&self, c: &mut Canvas<'_>, tick: u64) {
        self.draw_wallpaper(c);
        self.draw_editor(c);
        self.draw_terminal(c, tick);
        self.draw_clock(c, tick);
        self.draw_mover(c, tick);
        self.draw_taskbar(c, tick);
    }

    fn draw_wallpaper(&self, c: &mut Canvas<'_>) {
        let h = self.height;
        let top = [0x1e_i64, 0x3a, 0x5f];
        let bottom = [0x3a_i64, 0x6e, 0x8c];
        // One row at a time: a vertical gradient with faint diagonal stripes.
        for y in 0..h {
            let ch = |i: usize| (top[i] + (bottom[i] - top[i]) * y / h.max(1)) as u32;
            let base = (ch(0) << 16) | (ch(1) << 8) | ch(2);
            let stripe = base + 0x0006_0606;
            for (x, p) in c.row_mut(y).iter_mut().enumerate() {
                *p = if ((x as i64 + y) >> 4) & 1 == 1 {
                    stripe
                } else {
                    base
                };
            }
        }
    }

    fn draw_editor(&self, c: &mut Canvas<'_>) {
        let content = self.editor.draw_chrome(c);
        let clip = content.intersect(&self.editor.frame);
        c.fill(content, clip, EDITOR_BG);
        let gutter = IRect::new(content.x, content.y, 4 * ADVANCE + 2 * PAD, content.h);
        c.fill(gutter, clip, GUTTER_BG);
        let text_clip =
            IRect::new(gutter.right(), content.y, content.w - gutter.w, content.h).intersect(&clip);
        let rows = ((content.h - 2 * PAD) / LINE_H).max(0);
        for row in 0..rows {
            let y = content.y + PAD + row * LINE_H;
            let number = format!("{:>4}", row + 1);
            c.text(gutter.x + PAD, y, &number, 1, clip, 0x0099_9999);
            let mut x = gutter.right() + PAD;
            for (word, color) in editor_line(self.seed, row as u64) {
                x = c.text(x, y, &word, 1, text_clip, color);
                x += ADVANCE;
            }
        }
    }

    fn draw_terminal(&self, c: &mut Canvas<'_>, tick: u64) {
        let content = self.terminal.draw_chrome(c);
        let clip = content.intersect(&self.terminal.frame);
        c.fill(content, clip, TERM_BG);
        let text_clip = content.inset(PAD);
        let rows = ((content.h - 2 * PAD) / LINE_H).max(0) as u64;
        let first = tick / SCROLL_EVERY;
        let mut end_x = text_clip.x;
        for row in 0..rows {
            let y = content.y + PAD + row as i64 * LINE_H;
            let (text, color) = terminal_line(self.seed, first + row);
            end_x = c.text(text_clip.x, y, &text, 1, text_clip, color);
        }
        if rows > 0 && (tick / (2 * SCROLL_EVERY)) % 2 == 0 {
            let y = content.y + PAD + (rows as i64 - 1) * LINE_H;
            c.fill(
                IRect::new(end_x + 1, y, ADVANCE - 1, GLYPH_H + 1),
                text_clip,
                0x00c8_d0d8,
            );
        }
    }

    fn draw_clock(&self, c: &mut Canvas<'_>, tick: u64) {
        let content = self.clock.draw_chrome(c);
        let clip = content.intersect(&self.clock.frame);
        c.fill(content, clip, CLOCK_BG);
        let ms = self.start_ms.wrapping_add(tick.wrapping_mul(MS_PER_TICK));
        let time = format!(
            "{:02}:{:02}:{:02}.{:02}",
            ms / 3_600_000 % 24,
            ms / 60_000 % 60,
            ms / 1000 % 60,
            ms / 10 % 100
        );
        c.text(
            content.x + PAD + 2,
            content.y + PAD + 2,
            &time,
            2,
            clip,
            0x007e_e7ff,
        );
        let label = format!("frame {tick:>8}");
        let label_y = content.y + PAD + 2 + GLYPH_H * 2 + 6;
        c.text(content.x + PAD + 2, label_y, &label, 1, clip, 0x0088_99aa);
        // A progress bar that grows every tick and wraps every 100 ticks.
        let bar = IRect::new(
            content.x + PAD + 2,
            label_y + LINE_H + 2,
            content.w - 2 * PAD - 4,
            6,
        );
        c.fill(bar, clip, 0x002a_3038);
        let done = bar.w * (tick % 100) as i64 / 100;
        c.fill(IRect::new(bar.x, bar.y, done, bar.h), clip, 0x004c_c38a);
    }

    fn draw_mover(&self, c: &mut Canvas<'_>, tick: u64) {
        let win = Window {
            frame: self.mover(tick),
            title: "photo.png - Viewer",
            active: false,
        };
        let content = win.draw_chrome(c);
        let clip = content.intersect(&win.frame);
        let seed = (self.seed as u32) ^ (self.seed >> 32) as u32;
        let (cw, ch) = (content.w.max(1), content.h.max(1));
        c.paint(content, clip, |x, y| photo_pixel(seed, x, y, cw, ch));
    }

    fn draw_taskbar(&self, c: &mut Canvas<'_>, tick: u64) {
        let bar = self.taskbar();
        let clip = bar.intersect(&c.bounds());
        if clip.is_empty() {
            return;
        }
        c.fill(bar, clip, TASKBAR_BG);
        c.fill(IRect::new(bar.x, bar.y, bar.w, 1), clip, 0x003a_4250);
        let text_y = bar.y + (bar.h - GLYPH_H) / 2;
        let mut x = bar.x + 4;
        for label in ["Tandem", "Terminal", "Editor", "Clock", "Viewer"] {
            let w = label.len() as i64 * ADVANCE + 12;
            let button = IRect::new(x, bar.y + 3, w, bar.h - 6);
            c.fill(
                button,
                clip,
                if label == "Tandem" {
                    TITLE_ACTIVE
                } else {
                    TASK_BUTTON
                },
            );
            c.text(x + 6, text_y, label, 1, clip, TASK_TEXT);
            x += w + 4;
        }
        let clock = self.taskbar_clock();
        c.text(
            clock.x + 6,
            text_y,
            &taskbar_time(self.start_ms, tick),
            1,
            clip,
            TASK_TEXT,
        );
    }
}

/// The `HH:MM:SS` shown in the taskbar at `tick`.
fn taskbar_time(start_ms: u64, tick: u64) -> String {
    let s = start_ms.wrapping_add(tick.wrapping_mul(MS_PER_TICK)) / 1000;
    format!("{:02}:{:02}:{:02}", s / 3600 % 24, s / 60 % 60, s % 60)
}

/// Position on a back-and-forth path over `0..=range`.
fn bounce(p: i64, range: i64) -> i64 {
    if range <= 0 {
        return 0;
    }
    let period = 2 * range;
    let q = p.rem_euclid(period);
    if q > range {
        period - q
    } else {
        q
    }
}

/// SplitMix64 finaliser: a well-mixed 64-bit hash.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A photo-like pixel: smooth colour fields with a little noise.
fn photo_pixel(seed: u32, x: i64, y: i64, w: i64, h: i64) -> u32 {
    let (xu, yu) = (x as u32, y as u32);
    let mut n = xu.wrapping_mul(0x9e37_79b1) ^ yu.wrapping_mul(0x85eb_ca77) ^ seed;
    n ^= n >> 15;
    n = n.wrapping_mul(0x2c1b_3c6d);
    n ^= n >> 12;
    let noise = (n & 0x0f) as i64;
    let fx = x * 255 / w;
    let fy = y * 255 / h;
    let dx = x - w / 3;
    let dy = y - h / 2;
    let sun = (255 - (dx * dx + dy * dy) * 4 / (w * w / 16 + 1)).clamp(0, 255);
    let r = (fx / 2 + sun / 2 + noise).clamp(0, 255) as u32;
    let g = (fy / 3 + sun / 3 + 60 + noise).clamp(0, 255) as u32;
    let b = (255 - fy / 2 + noise).clamp(0, 255) as u32;
    (r << 16) | (g << 8) | b
}

fn pick<'a>(h: u64, shift: u32, items: &[&'a str]) -> &'a str {
    items[((h >> shift) % items.len() as u64) as usize]
}

/// Line `n` of the endless terminal transcript, with its colour.
fn terminal_line(seed: u64, n: u64) -> (String, u32) {
    const CMDS: &[&str] = &[
        "cargo test",
        "git status",
        "ls -la",
        "make check",
        "cargo build --release",
        "git log --oneline",
        "grep -rn TODO src",
        "du -sh target",
    ];
    const CRATES: &[&str] = &[
        "tandem-proto",
        "tandem-codec",
        "serde",
        "quinn",
        "rustls",
        "tokio",
        "zstd",
        "sled",
        "actix-web",
        "tracing",
    ];
    const FILES: &[&str] = &[
        "Cargo.toml",
        "README.md",
        "main.rs",
        "lib.rs",
        "notes.txt",
        "build.log",
        "config.toml",
        "frame.rs",
        "tile.rs",
    ];
    const MODS: &[&str] = &[
        "frame", "tile", "codec", "proto", "ticket", "registry", "damage", "session",
    ];
    const WORDS: &[&str] = &[
        "encode", "decode", "scroll", "copy", "solid", "palette", "delta", "join", "leave", "flush",
    ];
    const DIRS: &[&str] = &["tandem", "notes", "build", "tmp", "src"];
    let h = mix(seed ^ n.wrapping_mul(0xa076_1d64_78bd_642f));
    let a = (h >> 20) % 100;
    let b = (h >> 28) % 60;
    match h % 9 {
        0 | 1 => (
            format!("user@tandem:~/{}$ {}", pick(h, 8, DIRS), pick(h, 12, CMDS)),
            0x007f_d962,
        ),
        2 => (
            format!(
                "   Compiling {} v0.{}.{}",
                pick(h, 8, CRATES),
                a % 20,
                b % 10
            ),
            0x00c8_d0d8,
        ),
        3 => (
            format!(
                "-rw-r--r--  1 user user {:>7} Mar {:>2} {:02}:{:02} {}",
                (h >> 36) % 1_000_000,
                a % 28 + 1,
                a % 24,
                b,
                pick(h, 8, FILES)
            ),
            0x00c8_d0d8,
        ),
        4 => (
            format!(
                "test {}::{}_{} ... ok",
                pick(h, 8, MODS),
                pick(h, 12, WORDS),
                pick(h, 16, MODS)
            ),
            0x00a8_b4c0,
        ),
        5 => (
            format!(
                "[{:02}:{:02}:{:02}] INFO {} {} bytes={} tiles={}",
                a % 24,
                b,
                (h >> 40) % 60,
                pick(h, 8, MODS),
                pick(h, 12, WORDS),
                (h >> 44) % 65536,
                a
            ),
            0x008a_96a3,
        ),
        6 => (
            format!(
                "warning: unused variable `{}_{}`",
                pick(h, 8, WORDS),
                pick(h, 12, MODS)
            ),
            0x00e5_c07b,
        ),
        7 => (
            format!(
                "error[E0{:03}]: mismatched types in {}",
                a * 7 % 1000,
                pick(h, 8, FILES)
            ),
            0x00e0_6c75,
        ),
        _ => (
            format!(
                "    Finished `release` profile [optimized] target(s) in {}.{:02}s",
                a % 40,
                b
            ),
            0x007f_d962,
        ),
    }
}

/// Words of editor line `n`, each with its colour (a little syntax colouring).
fn editor_line(seed: u64, n: u64) -> Vec<(String, u32)> {
    const KEYWORDS: &[&str] = &[
        "fn", "let", "pub", "struct", "impl", "match", "return", "use", "mod", "if",
    ];
    const IDENTS: &[&str] = &[
        "frame", "tile", "rect", "width", "height", "damage", "encoder", "session", "attendee",
        "update", "seq", "pixels",
    ];
    const PROSE: &[&str] = &[
        "the",
        "desktop",
        "is",
        "shared",
        "with",
        "every",
        "attendee",
        "who",
        "holds",
        "an",
        "invitation",
        "and",
        "a",
        "password",
    ];
    let h = mix(seed.rotate_left(17) ^ n.wrapping_mul(0xe703_7ed1_a0b4_28db));
    let count = 3 + (h % 8) as usize;
    let indent = ((h >> 4) % 4) as usize * 4;
    let mut words = Vec::with_capacity(count + 1);
    if indent > 0 {
        words.push((" ".repeat(indent - 1), 0));
    }
    match (h >> 8) % 6 {
        0 => {
            words.push(("//".to_owned(), 0x0000_8000));
            for i in 0..count {
                words.push((pick(mix(h ^ i as u64), 3, PROSE).to_owned(), 0x0000_8000));
            }
        }
        1 => {}
        _ => {
            for i in 0..count {
                let wh = mix(h ^ (i as u64 + 1));
                let word = match wh % 5 {
                    0 => (pick(wh, 5, KEYWORDS).to_owned(), 0x0000_00aa),
                    1 => (format!("\"{}\"", pick(wh, 5, IDENTS)), 0x00a3_1515),
                    2 => (format!("{}", (wh >> 9) % 1000), 0x0009_8658),
                    _ => (pick(wh, 5, IDENTS).to_owned(), 0x0020_2020),
                };
                words.push(word);
            }
        }
    }
    words
}

#[cfg(test)]
mod tests;
