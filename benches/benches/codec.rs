//! Codec speed at 1920x1080 on one thread: comparing an unchanged frame,
//! encoding 1% changed tiles, a full redraw of text and photo-like frames,
//! a terminal scrolled by one line, a typed glyph, the motion search alone
//! in its worst cases, and decoding the text redraw. Prints bytes per
//! frame for each case.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use tandem_benches::{desktop, photo, terminal, text_screen, touch_tiles, XorShift, HEIGHT, WIDTH};
use tandem_codec::{Decoder, EncodedUpdate, Encoder, EncoderConfig, Frame, Rect, TILE_SIZE};

/// Tiles changed per frame in the "1%" case: 1% of the 510 tiles of 1080p.
const SMALL_CHANGE_TILES: u32 = 5;

fn one_percent_frames() -> Vec<Frame> {
    (0..2)
        .map(|phase| {
            let mut f = desktop(1, 0);
            touch_tiles(&mut f, SMALL_CHANGE_TILES, phase);
            f
        })
        .collect()
}

fn text_frames() -> Vec<Frame> {
    (0..6).map(|i| text_screen(1, i)).collect()
}

fn photo_frames() -> Vec<Frame> {
    (0..3).map(photo).collect()
}

/// Where the benched 100x30 terminal sits on the desktop.
const TERM: (u32, u32) = (300, 150);

/// The desktop with a 100x30 terminal scrolled one more line each frame.
fn scroll_frames() -> Vec<Frame> {
    (0..12)
        .map(|first| {
            let mut f = desktop(1, 0);
            terminal::draw(&mut f, TERM.0, TERM.1, 100, 30, 12, first);
            f
        })
        .collect()
}

/// The desktop with a terminal in which one more character is typed each
/// frame (the last frame wraps around to the first: a line cleared).
fn typing_frames() -> Vec<Frame> {
    let mut f = desktop(1, 0);
    terminal::draw(&mut f, TERM.0, TERM.1, 100, 30, 12, 0);
    let row = 29;
    let col0 = terminal::line(12, row, 100).len() as u32 + 1;
    (0..12)
        .map(|i| {
            if i > 0 {
                terminal::draw_char(&mut f, TERM.0, TERM.1, col0 + i - 1, row as u32, 'k');
            }
            f.clone()
        })
        .collect()
}

fn noise(seed: u64) -> Frame {
    let mut rng = XorShift::new(seed);
    let mut f = Frame::new(WIDTH, HEIGHT);
    f.pixels_mut()
        .iter_mut()
        .for_each(|p| *p = rng.next_u32() & 0x00ff_ffff);
    f
}

/// Worst cases of the motion search, as (name, previous, new) frames.
fn search_worst_cases() -> Vec<(&'static str, Frame, Frame)> {
    // Every pixel changed with noise: one region of the whole frame.
    let all = (noise(1), noise(2));
    // Many small regions: a 40x40 noise patch in every other tile of every
    // other tile row (135 regions, each worth searching).
    let prev = desktop(1, 0);
    let mut patches = prev.clone();
    let mut rng = XorShift::new(3);
    let (tx, ty) = tandem_codec::tile_grid(WIDTH, HEIGHT);
    for y in (0..ty).step_by(2) {
        for x in (0..tx).step_by(2) {
            for py in 0..40.min(HEIGHT - y * TILE_SIZE) {
                for px in 0..40 {
                    patches.set(x * TILE_SIZE + px, y * TILE_SIZE + py, rng.next_u32());
                }
            }
        }
    }
    // Every row alike (vertical stripes), changed at the far right of every
    // row and in the last column of every tile of the first tile row (so
    // the whole frame is one region whose changed bounds start at x = 0):
    // the hashed rows all match each other and vote for scattered offsets.
    let mut stripes = Frame::new(WIDTH, HEIGHT);
    for (i, p) in stripes.pixels_mut().iter_mut().enumerate() {
        *p = ((i % WIDTH as usize) as u32).wrapping_mul(2_654_435_761) >> 8;
    }
    let mut changed = stripes.clone();
    changed.fill_rect(Rect::new(WIDTH - 1, 0, 1, HEIGHT), 0x00ff_0000);
    for x in (0..WIDTH).step_by(TILE_SIZE as usize) {
        changed.set(x, 0, 0x0000_ff00);
    }
    // Everything scrolled by 5 rows but the last column of every row
    // changed: one offset gets nearly every vote and its verification
    // reads every row to its end before failing.
    let scrolled_prev = noise(4);
    let mut scrolled = Frame::new(WIDTH, HEIGHT);
    scrolled.blit(&scrolled_prev, 0, 5);
    scrolled.fill_rect(Rect::new(WIDTH - 1, 0, 1, HEIGHT), 0x0012_3456);
    // Four separate noise regions of just under a quarter of the frame
    // each: every one goes through the vertical vote and the 2D search.
    let quiet = desktop(1, 0);
    let mut quarters = quiet.clone();
    let mut rng = XorShift::new(5);
    for (qx, qy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
        let r = Rect::new(qx * 1024, qy * 576, 896, 448);
        for y in r.y..r.y + r.height {
            for x in r.x..(r.x + r.width).min(WIDTH) {
                quarters.set(x, y, rng.next_u32() & 0x00ff_ffff);
            }
        }
    }
    // The same four regions of vertical stripes shifted by one pixel: the
    // 2D probe segment is found at every stripe period.
    let mut striped_quiet = quiet.clone();
    let mut striped = quiet.clone();
    for (qx, qy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
        let r = Rect::new(qx * 1024, qy * 576, 896, 448);
        for y in r.y..r.y + r.height {
            for x in r.x..(r.x + r.width).min(WIDTH) {
                let stripe = |x: u32| (x % 16) * 0x0010_0f0e;
                striped_quiet.set(x, y, stripe(x));
                striped.set(x, y, stripe(x + 1) ^ u32::from(y % 97 == 0));
            }
        }
    }
    // A band of rows scrolled at the top of a frame of new noise: the first
    // pass finds the band, the second searches the rest all over again.
    let band_prev = noise(6);
    let mut band = noise(7);
    band.blit(&band_prev.crop(Rect::new(0, 200, WIDTH, 160)), 0, 0);
    let frames = scroll_frames();
    vec![
        ("band_then_noise", band_prev, band),
        ("quarter_noise_regions", quiet, quarters),
        ("quarter_stripe_regions", striped_quiet, striped),
        ("noise", all.0, all.1),
        ("many_regions", prev, patches),
        ("repeated_rows", stripes, changed),
        ("scroll_failing_at_row_ends", scrolled_prev, scrolled),
        ("terminal_scroll", frames[0].clone(), frames[1].clone()),
    ]
}

/// Encodes `frames` round-robin, after a first key frame, and returns the
/// encoder and the first delta.
fn primed(frames: &[Frame]) -> (Encoder, EncodedUpdate) {
    let mut enc = Encoder::new(EncoderConfig::default());
    enc.encode(frames[0].clone(), None);
    let delta = enc.encode(frames[1 % frames.len()].clone(), None).unwrap();
    (enc, delta)
}

/// Mean encoded bytes per delta over a dozen frames, and the key frame size.
fn sizes(frames: &[Frame]) -> (usize, f64, f64) {
    let mut enc = Encoder::new(EncoderConfig::default());
    let key = enc.encode(frames[0].clone(), None).unwrap().encoded_len();
    let n = 12;
    let mut total = 0;
    let mut changed = 0;
    for i in 1..=n {
        if let Some(u) = enc.encode(frames[i % frames.len()].clone(), None) {
            total += u.encoded_len();
            changed += u.records.len();
        }
    }
    (key, total as f64 / n as f64, changed as f64 / n as f64)
}

fn report_sizes(_c: &mut Criterion) {
    let raw = 1920 * 1080 * 4;
    for (name, frames) in [
        ("a: 1% tiles changed", one_percent_frames()),
        ("b: text full redraw", text_frames()),
        ("c: photo-like", photo_frames()),
        ("d: terminal scrolled by a line", scroll_frames()),
        ("e: one glyph typed", typing_frames()),
    ] {
        let (key, delta, tiles) = sizes(&frames);
        eprintln!(
            "bytes/frame {name}: delta {delta:.0} B ({:.1}x, {tiles:.0} tiles), key frame {key} B ({:.1}x)",
            raw as f64 / delta,
            raw as f64 / key as f64,
        );
    }
}

/// Benches encoding `frames` in turn (each differs from the previous one).
fn bench_encode(c: &mut Criterion, name: &str, frames: &[Frame]) {
    let (mut enc, _) = primed(frames);
    let mut i = 2;
    c.bench_function(name, |b| {
        b.iter_batched(
            || {
                i += 1;
                frames[i % frames.len()].clone()
            },
            |f| enc.encode(f, None),
            BatchSize::PerIteration,
        )
    });
}

fn encode_benches(c: &mut Criterion) {
    // Two equal frames in two buffers, given in turn: comparing a buffer
    // with itself reads half the memory and is not what a node does (each
    // capture is a buffer of its own).
    let same = desktop(1, 0);
    let copy = Frame::from_pixels(WIDTH, HEIGHT, same.pixels().to_vec()).unwrap();
    let twins = [same, copy];
    let mut enc = Encoder::new(EncoderConfig::default());
    enc.encode(twins[0].clone(), None);
    let mut i = 0;
    c.bench_function("compare_unchanged_1080p", |b| {
        b.iter_batched(
            || {
                i += 1;
                twins[i % 2].clone()
            },
            |f| assert!(enc.encode(f, None).is_none()),
            BatchSize::PerIteration,
        )
    });
    bench_encode(c, "encode_1pct_tiles_1080p", &one_percent_frames());
    bench_encode(c, "encode_text_redraw_1080p", &text_frames());
    bench_encode(c, "encode_photo_1080p", &photo_frames());
    bench_encode(c, "encode_terminal_scroll_1080p", &scroll_frames());
    bench_encode(c, "encode_typed_glyph_1080p", &typing_frames());
}

/// The motion search alone (tile comparison excluded), on its worst cases
/// and on a real scroll; its budget is 3 ms per 1080p frame.
fn search_benches(c: &mut Criterion) {
    for (name, prev, new) in search_worst_cases() {
        let changed = tandem_codec::changed_tiles(&prev, &new);
        let found = tandem_codec::search_moves(&mut prev.clone(), &new, &changed, &[]);
        eprintln!(
            "motion search {name}: {} changed tiles, {} copy-rects",
            changed.len(),
            found.len()
        );
        c.bench_function(&format!("motion_search_{name}_1080p"), |b| {
            b.iter_batched(
                || prev.clone(),
                |mut work| tandem_codec::search_moves(&mut work, &new, &changed, &[]),
                BatchSize::PerIteration,
            )
        });
    }
}

fn decode_benches(c: &mut Criterion) {
    let frames = text_frames();
    let (enc, mut delta) = primed(&frames);
    let key = {
        let mut e = Encoder::new(EncoderConfig::default());
        e.encode(frames[0].clone(), None).unwrap()
    };
    drop(enc);
    let mut dec = Decoder::new();
    dec.apply(&key).unwrap();
    // The same delta, renumbered onto the decoder's state each time: the
    // pixels drift but the work (decompress, XOR, write) is the same.
    c.bench_function("decode_text_redraw_1080p", |b| {
        b.iter(|| {
            delta.base_seq = dec.seq();
            delta.seq = delta.base_seq + 1;
            dec.apply(&delta).unwrap();
        })
    });
    c.bench_function("decode_text_key_frame_1080p", |b| {
        b.iter(|| dec.apply(&key).unwrap())
    });
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = report_sizes, encode_benches, search_benches, decode_benches
}
criterion_main!(benches);
