//! Codec speed at 1920x1080 on one thread: comparing an unchanged frame,
//! encoding 1% changed tiles, a full redraw of text and photo-like frames,
//! and decoding the text redraw. Prints bytes per frame for each case.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use tandem_benches::{desktop, photo, text_screen, touch_tiles};
use tandem_codec::{Decoder, EncodedUpdate, Encoder, EncoderConfig, Frame};

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
    let same = desktop(1, 0);
    let mut enc = Encoder::new(EncoderConfig::default());
    enc.encode(same.clone(), None);
    c.bench_function("compare_unchanged_1080p", |b| {
        b.iter_batched(
            || same.clone(),
            |f| assert!(enc.encode(f, None).is_none()),
            BatchSize::PerIteration,
        )
    });
    bench_encode(c, "encode_1pct_tiles_1080p", &one_percent_frames());
    bench_encode(c, "encode_text_redraw_1080p", &text_frames());
    bench_encode(c, "encode_photo_1080p", &photo_frames());
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
    targets = report_sizes, encode_benches, decode_benches
}
criterion_main!(benches);
