//! Copy-rects: a scrolled terminal and a moved window become copy-rects and
//! few bytes, hints are checked against the pixels, malformed copy-rects are
//! refused, and catch-ups after moves are exact.

mod common;

use common::*;
use tandem_codec::{
    CodecError, CopyRect, Decoder, EncodedUpdate, Encoder, EncoderConfig, Frame, Rect, TileKind,
    MAX_MOVES, TILE_SIZE,
};

const CELL_W: u32 = 8;
const CELL_H: u32 = 15;

/// Line `n` of a deterministic text: lowercase words, ragged ends.
fn text_line(n: u64, cols: u32) -> Vec<u8> {
    let mut rng = XorShift::new(n.wrapping_mul(0x2545_f491) ^ 0x77);
    let len = (cols * (25 + rng.next_u32() % 75) / 100) as usize;
    (0..len)
        .map(|_| match rng.next_u32() % 7 {
            0 => b' ',
            _ => b'a' + (rng.next_u32() % 26) as u8,
        })
        .collect()
}

fn draw_char(f: &mut Frame, x: u32, y: u32, ch: u8) {
    f.fill_rect(Rect::new(x, y, CELL_W, CELL_H), 0xffffff);
    let glyph = font8x8::legacy::BASIC_LEGACY[usize::from(ch & 0x7f)];
    for (gy, bits) in glyph.iter().enumerate() {
        for gx in 0..8 {
            if bits >> gx & 1 == 1 {
                f.set(x + gx, y + 4 + gy as u32, 0x101010);
            }
        }
    }
}

/// A terminal of `cols` x `rows` cells at `(x, y)` showing lines
/// `first..first + rows`; returns its rectangle.
fn terminal(f: &mut Frame, x: u32, y: u32, cols: u32, rows: u32, first: u64) -> Rect {
    let r = Rect::new(x, y, cols * CELL_W + 4, rows * CELL_H + 4);
    f.fill_rect(r, 0x404a58);
    f.fill_rect(
        Rect::new(x + 2, y + 2, cols * CELL_W, rows * CELL_H),
        0xffffff,
    );
    for row in 0..rows {
        for (col, &ch) in text_line(first + u64::from(row), cols).iter().enumerate() {
            draw_char(f, x + 2 + col as u32 * CELL_W, y + 2 + row * CELL_H, ch);
        }
    }
    r
}

/// A textured desktop of text-like marks.
fn desktop(w: u32, h: u32) -> Frame {
    let mut f = Frame::new(w, h);
    let all = f.bounds();
    draw_text(&mut f, all, 99);
    f
}

fn no_motion() -> Encoder {
    Encoder::new(EncoderConfig {
        motion_search: false,
        ..EncoderConfig::default()
    })
}

/// Encodes `a` then `b`; returns the delta, checked to decode to `b` (also
/// through the wire format), and the encoder.
fn delta(mut enc: Encoder, a: &Frame, b: &Frame, hints: &[CopyRect]) -> (EncodedUpdate, Encoder) {
    let mut dec = Decoder::new();
    dec.apply(&enc.encode(a.clone(), None).unwrap()).unwrap();
    let u = enc.encode_with_moves(b.clone(), None, hints).unwrap();
    // Nothing unverified is sent: each copy, applied in order, writes
    // exactly the new frame's pixels.
    let mut moved = a.clone();
    for m in &u.moves {
        moved.copy_rect(m).unwrap();
        assert_eq!(moved.crop(m.dst()), b.crop(m.dst()), "{m:?}");
    }
    let wire = EncodedUpdate::from_bytes(&u.to_bytes()).unwrap();
    assert_eq!(wire, u);
    dec.apply(&wire).unwrap();
    assert!(
        dec.frame() == Some(b),
        "decoded frame differs from the source"
    );
    (u, enc)
}

/// Asserts that `u`, the delta from `a` to `b`, is more than `factor` times
/// smaller than the same delta encoded without motion.
fn assert_motion_pays(u: &EncodedUpdate, a: &Frame, b: &Frame, factor: usize) {
    let (plain, _) = delta(no_motion(), a, b, &[]);
    assert!(
        u.encoded_len() * factor < plain.encoded_len(),
        "{} bytes with motion, {} without",
        u.encoded_len(),
        plain.encoded_len()
    );
}

#[test]
fn terminal_scroll_is_a_copy_rect_and_few_bytes() {
    let base = desktop(1024, 640);
    let (mut f0, mut f1) = (base.clone(), base.clone());
    let term = terminal(&mut f0, 60, 80, 100, 30, 0);
    terminal(&mut f1, 60, 80, 100, 30, 1);
    let (u, mut enc) = delta(Encoder::new(EncoderConfig::default()), &f0, &f1, &[]);
    let scroll = u
        .moves
        .iter()
        .find(|m| m.src.y == m.dst_y + CELL_H && m.src.x == m.dst_x)
        .unwrap_or_else(|| panic!("no scroll by one line in {:?}", u.moves));
    assert!(scroll.src.height >= 28 * CELL_H, "{scroll:?}");
    assert!(scroll.src.width >= 60 * CELL_W, "{scroll:?}");
    // Every record is inside the terminal, and only the exposed line and
    // what the copy could not explain are coded.
    for r in &u.records {
        let t = Rect::new(
            u32::from(r.tile_x) * TILE_SIZE,
            u32::from(r.tile_y) * TILE_SIZE,
            TILE_SIZE,
            TILE_SIZE,
        );
        assert!(t.intersect(&term).is_some(), "{r:?}");
        assert!(!matches!(r.kind, TileKind::Raw(_) | TileKind::Zstd(_)));
    }
    assert_motion_pays(&u, &f0, &f1, 8);
    // Tiles the copy wrote count as changed for catch-ups, which stay exact.
    let c = enc.catch_up(1).unwrap();
    assert!(c.is_self_contained());
    let touched = |m: &CopyRect| {
        let d = m.dst();
        c.records.iter().any(|r| {
            u32::from(r.tile_x) == d.x / TILE_SIZE && u32::from(r.tile_y) == d.y / TILE_SIZE
        })
    };
    assert!(u.moves.iter().all(touched));
    let mut dec = Decoder::new();
    dec.apply(
        &Encoder::new(EncoderConfig::default())
            .encode(f0.clone(), None)
            .unwrap(),
    )
    .unwrap();
    dec.apply(&c).unwrap();
    assert_eq!(dec.frame(), Some(&f1));
}

/// A window of noise-like pixels (a photo) with its top-left corner at (x, y).
fn photo(f: &mut Frame, x: u32, y: u32, w: u32, h: u32) -> Rect {
    let mut rng = XorShift::new(7);
    for py in 0..h {
        for px in 0..w {
            f.set(x + px, y + py, rng.next_u32() & 0x00ff_ffff);
        }
    }
    Rect::new(x, y, w, h)
}

/// A 60x20 terminal on a 1024x768 patterned desktop, before and after it
/// scrolled by one line, and the row 20 pixels below it.
fn scrolled_terminal() -> (Frame, Frame, Rect, u32) {
    let base = desktop(1024, 768);
    let (mut f0, mut f1) = (base.clone(), base);
    let term = terminal(&mut f0, 60, 80, 60, 20, 0);
    terminal(&mut f1, 60, 80, 60, 20, 1);
    let below = term.y + term.height + 20;
    (f0, f1, term, below)
}

/// The copy of `u` that moves by (3, -2), which must be at least 90 % of
/// `win` (the window dragged by that much).
fn assert_dragged(u: &EncodedUpdate, win: Rect, what: &str) {
    let drag = u
        .moves
        .iter()
        .find(|m| (m.dst_x, m.dst_y) == (m.src.x + 3, m.src.y - 2))
        .unwrap_or_else(|| panic!("{what}: no (3, -2) copy in {:?}", u.moves));
    assert!(drag.src.area() * 10 >= win.area() * 9, "{what}: {drag:?}");
}

#[test]
fn a_scroll_beside_a_dragged_window_is_two_copy_rects() {
    // A terminal scrolls by one line while a photo viewer right below it
    // (in the same tiles, so one changed region) is dragged by (3, -2)
    // without a hint, over a patterned desktop (which matches itself at
    // its period: only what changed may say how it moved).
    let (mut f0, mut f1, _, below) = scrolled_terminal();
    photo(&mut f0, 200, below, 200, 120);
    let win = photo(&mut f1, 203, below - 2, 200, 120);
    let (u, _) = delta(Encoder::new(EncoderConfig::default()), &f0, &f1, &[]);
    let offsets: Vec<(i64, i64)> = u.moves.iter().map(CopyRect::offset).collect();
    assert!(offsets.contains(&(0, -i64::from(CELL_H))), "{:?}", u.moves);
    assert_dragged(&u, win, "photo at 200");
    // The photo's pixels are not coded again: only the exposed strips and
    // the terminal's new line are.
    assert_motion_pays(&u, &f0, &f1, 10);
}

#[test]
fn a_window_dragged_below_a_scrolled_terminal_is_found_wherever_its_left_edge_falls() {
    // As above, with the window's right edge under the terminal's and its
    // left edge anywhere around the middle of the changed bounds: a probe
    // segment across that edge (part window, part desktop that stayed)
    // matches nowhere, so the 2D search must try other columns too.
    let (f0, f1, term, below) = scrolled_terminal();
    let middle = term.x + term.width / 2;
    for left in (middle - 24..middle + 24).step_by(3) {
        let (mut a, mut b) = (f0.clone(), f1.clone());
        let width = term.x + term.width - 3 - left;
        photo(&mut a, left, below, width, 120);
        let win = photo(&mut b, left + 3, below - 2, width, 120);
        let (u, _) = delta(Encoder::new(EncoderConfig::default()), &a, &b, &[]);
        assert_dragged(&u, win, &format!("left edge at {left}"));
        assert_motion_pays(&u, &a, &b, 10);
    }
}

#[test]
fn a_terminal_scrolled_under_a_window_is_copied_beside_it() {
    // A window sits still over the middle of a terminal that scrolls: no
    // full-width band of rows moved, but the text left and right of the
    // window did, by the offset the rows below it prove.
    let base = desktop(1024, 640);
    let (mut f0, mut f1) = (base.clone(), base.clone());
    let term = terminal(&mut f0, 60, 80, 100, 30, 0);
    terminal(&mut f1, 60, 80, 100, 30, 1);
    photo(&mut f0, 300, 120, 240, 200);
    let win = photo(&mut f1, 300, 120, 240, 200);
    let (u, _) = delta(Encoder::new(EncoderConfig::default()), &f0, &f1, &[]);
    let scrolled: u64 = u
        .moves
        .iter()
        .filter(|m| (m.dst_x, m.dst_y + CELL_H) == (m.src.x, m.src.y))
        .map(|m| m.src.area())
        .sum();
    assert!(
        scrolled * 10 >= (term.area() - win.area()) * 8,
        "{scrolled} pixels scrolled by copies {:?}",
        u.moves
    );
    assert_motion_pays(&u, &f0, &f1, 8);
}

#[test]
fn scroll_down_and_two_panes() {
    // Two terminals side by side, one scrolled up by two lines and the
    // other down by one, in the same frame.
    let base = desktop(1280, 560);
    let (mut f0, mut f1) = (base.clone(), base.clone());
    terminal(&mut f0, 10, 20, 60, 30, 10);
    terminal(&mut f1, 10, 20, 60, 30, 12);
    terminal(&mut f0, 660, 30, 60, 30, 50);
    terminal(&mut f1, 660, 30, 60, 30, 49);
    let (u, _) = delta(Encoder::new(EncoderConfig::default()), &f0, &f1, &[]);
    let offsets: Vec<i64> = u
        .moves
        .iter()
        .map(|m| i64::from(m.dst_y) - i64::from(m.src.y))
        .collect();
    assert!(offsets.contains(&(-2 * CELL_H as i64)), "{:?}", u.moves);
    assert!(offsets.contains(&(CELL_H as i64)), "{:?}", u.moves);
}

/// An 80x24 terminal at (100, 60) on `base` in the first frame and moved
/// by (12, 3) in the second; the frames and the move's hint.
fn moved_terminal(base: &Frame) -> (Frame, Frame, CopyRect) {
    let (mut f0, mut f1) = (base.clone(), base.clone());
    let win = terminal(&mut f0, 100, 60, 80, 24, 3);
    terminal(&mut f1, 112, 63, 80, 24, 3);
    let hint = CopyRect {
        src: win,
        dst_x: 112,
        dst_y: 63,
    };
    (f0, f1, hint)
}

#[test]
fn moved_window_with_hint() {
    let (f0, f1, hint) = moved_terminal(&desktop(800, 600));
    let win = hint.src;
    let (u, _) = delta(Encoder::new(EncoderConfig::default()), &f0, &f1, &[hint]);
    assert_eq!(u.moves.len(), 1, "{:?}", u.moves);
    let m = u.moves[0];
    assert_eq!((m.dst_x - m.src.x, m.dst_y - m.src.y), (12, 3));
    assert!(m.src.area() * 10 >= win.area() * 9, "{m:?}");
    let (plain, _) = delta(no_motion(), &f0, &f1, &[]);
    assert!(
        u.encoded_len() * 5 < plain.encoded_len(),
        "{} bytes with the hint, {} without",
        u.encoded_len(),
        plain.encoded_len()
    );
    // A hint wider than the window (its shadow, a wrong geometry) is
    // cropped to what really moved.
    let wide = CopyRect {
        src: Rect::new(win.x - 10, win.y - 6, win.width + 20, win.height + 12),
        dst_x: 102,
        dst_y: 57,
    };
    let (w, _) = delta(Encoder::new(EncoderConfig::default()), &f0, &f1, &[wide]);
    let m = w
        .moves
        .first()
        .copied()
        .unwrap_or_else(|| panic!("no move"));
    assert_eq!((m.dst_x - m.src.x, m.dst_y - m.src.y), (12, 3));
    assert!(m.src.area() * 10 >= win.area() * 8, "{m:?}");
}

#[test]
fn wrong_hints_cost_only_bytes() {
    let base = desktop(640, 480);
    let (mut f0, mut f1) = (base.clone(), base.clone());
    let win = terminal(&mut f0, 100, 60, 50, 20, 3);
    terminal(&mut f1, 140, 90, 50, 20, 8);
    let hints = [
        // The right geometry but the content changed too.
        CopyRect {
            src: win,
            dst_x: 140,
            dst_y: 90,
        },
        // A wrong offset.
        CopyRect {
            src: win,
            dst_x: 141,
            dst_y: 90,
        },
        // Partly and wholly outside the frame.
        CopyRect {
            src: Rect::new(600, 400, 100, 100),
            dst_x: 0,
            dst_y: 0,
        },
        CopyRect {
            src: Rect::new(5000, 5000, 10, 10),
            dst_x: u32::MAX,
            dst_y: 3,
        },
        CopyRect {
            src: Rect::new(0, 0, 0, 0),
            dst_x: 1,
            dst_y: 1,
        },
    ];
    // `delta` checks the decoded frame.
    // `delta` checks every copy-rect against the pixels and the decoded frame.
    let (u, _) = delta(Encoder::new(EncoderConfig::default()), &f0, &f1, &hints);
    let (plain, _) = delta(no_motion(), &f0, &f1, &[]);
    assert!(
        u.encoded_len() * 20 < plain.encoded_len() * 21,
        "{} B with the hints, {} B without motion, moves {:?}",
        u.encoded_len(),
        plain.encoded_len(),
        u.moves
    );
    let _ = delta(Encoder::new(EncoderConfig::default()), &f1, &f0, &hints);
}

#[test]
fn typed_glyph_is_a_few_dozen_bytes() {
    let base = desktop(1024, 640);
    let mut f0 = base.clone();
    terminal(&mut f0, 60, 80, 100, 30, 0);
    let (cx, cy) = (60 + 2 + 70 * CELL_W, 80 + 2 + 29 * CELL_H);
    f0.fill_rect(Rect::new(cx, cy, CELL_W, CELL_H), 0x101010);
    let mut f1 = f0.clone();
    draw_char(&mut f1, cx, cy, b'k');
    f1.fill_rect(Rect::new(cx + CELL_W, cy, CELL_W, CELL_H), 0x101010);
    let (u, _) = delta(Encoder::new(EncoderConfig::default()), &f0, &f1, &[]);
    assert!(u.moves.is_empty());
    assert!(u.records.len() <= 2, "{:?}", u.records);
    let coded: u64 = u
        .records
        .iter()
        .map(|r| match r.kind {
            TileKind::Pixels(a) | TileKind::Xor(a) => a.area(),
            _ => panic!("not a sub-tile record: {r:?}"),
        })
        .sum();
    assert_eq!(coded, u64::from(2 * CELL_W * CELL_H));
    assert!(u.encoded_len() < 80, "{} bytes", u.encoded_len());
    eprintln!("one glyph and the cursor: {} bytes", u.encoded_len());
}

#[test]
fn a_typed_glyph_shown_elsewhere_on_its_rows_or_columns_is_copied() {
    let base = desktop(1024, 640);
    let mut f0 = base.clone();
    terminal(&mut f0, 60, 80, 100, 30, 0);
    let (cx, cy) = (60 + 2 + 70 * CELL_W, 80 + 2 + 29 * CELL_H);
    let cursor = Rect::new(cx, cy, CELL_W, CELL_H);
    let blank = Rect::new(cx, cy, 30 * CELL_W, CELL_H);
    f0.fill_rect(blank, 0xffffff);
    f0.fill_rect(cursor, 0x101010);
    // The same character earlier on the line, and on the line above in
    // the cursor's column.
    let mut on_line = f0.clone();
    on_line.fill_rect(Rect::new(cx - 20 * CELL_W, cy, CELL_W, CELL_H), 0xffffff);
    draw_char(&mut on_line, cx - 20 * CELL_W, cy, b'k');
    let mut above = f0.clone();
    above.fill_rect(Rect::new(cx, cy - CELL_H, CELL_W, CELL_H), 0xffffff);
    draw_char(&mut above, cx, cy - CELL_H, b'k');
    for (name, f0) in [("on its line", on_line), ("on the line above", above)] {
        let mut f1 = f0.clone();
        f1.fill_rect(cursor, 0xffffff);
        draw_char(&mut f1, cx, cy, b'k');
        f1.fill_rect(Rect::new(cx + CELL_W, cy, CELL_W, CELL_H), 0x101010);
        let (u, _) = delta(Encoder::new(EncoderConfig::default()), &f0, &f1, &[]);
        assert_eq!(
            u.moves.len(),
            2,
            "{name}: the cursor and the glyph: {:?}",
            u.moves
        );
        assert!(u.records.is_empty(), "{name}: {:?}", u.records);
        assert!(u.encoded_len() < 40, "{name}: {} bytes", u.encoded_len());
    }
    // A glyph shown nowhere on its rows or columns is coded as before.
    let mut f1 = f0.clone();
    f1.fill_rect(cursor, 0xffffff);
    draw_char(&mut f1, cx, cy, b'k');
    f1.fill_rect(Rect::new(cx + CELL_W, cy, CELL_W, CELL_H), 0x101010);
    let (u, _) = delta(Encoder::new(EncoderConfig::default()), &f0, &f1, &[]);
    assert!(!u.records.is_empty());
}

#[test]
fn repeated_glyphs_are_coded_once() {
    // The same word typed in eight tiles costs far less than eight times one.
    let base = Frame::filled(1024, 128, 0xffffff);
    let word = b"tandem";
    let write = |f: &mut Frame, x: u32| {
        for (i, &ch) in word.iter().enumerate() {
            draw_char(f, x + i as u32 * CELL_W, 20, ch);
        }
    };
    let mut one = base.clone();
    write(&mut one, 70);
    let mut eight = base.clone();
    for t in 0..8 {
        write(&mut eight, 6 + t * 128);
    }
    let (u1, _) = delta(Encoder::new(EncoderConfig::default()), &base, &one, &[]);
    let (u8, _) = delta(Encoder::new(EncoderConfig::default()), &base, &eight, &[]);
    assert_eq!(u8.records.len(), 8);
    assert!(
        u8.encoded_len() * 3 < u1.encoded_len() * 8,
        "one: {} B, eight: {} B",
        u1.encoded_len(),
        u8.encoded_len()
    );
}

/// A decoder at seq 1 with `f`, and a valid delta of seq 2 with one move.
fn state_and_delta(f: &Frame) -> (Decoder, EncodedUpdate) {
    let mut enc = Encoder::new(EncoderConfig::default());
    let mut dec = Decoder::new();
    dec.apply(&enc.encode(f.clone(), None).unwrap()).unwrap();
    let mut g = f.clone();
    g.fill_rect(Rect::new(3, 3, 10, 10), 0x123456);
    let mut u = enc.encode(g, None).unwrap();
    u.moves = vec![CopyRect {
        src: Rect::new(0, 0, 50, 40),
        dst_x: 10,
        dst_y: 20,
    }];
    (dec, u)
}

#[test]
fn malformed_copy_rects_are_refused_and_change_nothing() {
    let f = desktop(200, 120);
    let (mut dec, good) = state_and_delta(&f);
    let bad_moves = [
        (Rect::new(0, 0, 0, 10), 5, 5),
        (Rect::new(0, 0, 10, 0), 5, 5),
        (Rect::new(190, 0, 11, 10), 0, 0),
        (Rect::new(0, 111, 10, 10), 0, 0),
        (Rect::new(0, 0, 10, 10), 191, 0),
        (Rect::new(0, 0, 10, 10), 0, 111),
        (Rect::new(0, 0, 200, 120), 1, 1),
        (Rect::new(u32::MAX, u32::MAX, 2, 2), 0, 0),
    ];
    for (src, dst_x, dst_y) in bad_moves {
        let mut u = good.clone();
        u.moves.push(CopyRect { src, dst_x, dst_y });
        assert!(
            matches!(dec.apply(&u), Err(CodecError::BadMove { index: 1, .. })),
            "{src:?} -> ({dst_x}, {dst_y})"
        );
        assert!(matches!(
            EncodedUpdate::from_bytes(&u.to_bytes()),
            Err(CodecError::BadMove { index: 1, .. })
        ));
        assert_eq!((dec.seq(), dec.frame()), (1, Some(&f)));
    }
    let mut u = good.clone();
    u.moves = vec![good.moves[0]; MAX_MOVES + 1];
    assert!(matches!(
        dec.apply(&u),
        Err(CodecError::TooManyMoves { .. })
    ));
    assert!(matches!(
        EncodedUpdate::from_bytes(&u.to_bytes()),
        Err(CodecError::TooManyMoves { .. })
    ));
    assert_eq!((dec.seq(), dec.frame()), (1, Some(&f)));
    // The bound itself is allowed.
    u.moves.truncate(MAX_MOVES);
    let parsed = EncodedUpdate::from_bytes(&u.to_bytes()).unwrap();
    dec.apply(&parsed).unwrap();
    let mut expected = f.clone();
    for m in &u.moves {
        expected.copy_rect(m).unwrap();
    }
    expected.fill_rect(Rect::new(3, 3, 10, 10), 0x123456);
    assert_eq!(dec.frame(), Some(&expected));
}

#[test]
fn truncated_and_padded_updates_with_moves_are_refused() {
    let f = desktop(200, 120);
    let (_, u) = state_and_delta(&f);
    let bytes = u.to_bytes();
    for n in 0..bytes.len() {
        assert!(
            EncodedUpdate::from_bytes(&bytes[..n]).is_err(),
            "prefix {n}"
        );
    }
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(
        EncodedUpdate::from_bytes(&long),
        Err(CodecError::TrailingBytes(1))
    );
}

#[test]
fn moves_apply_in_order_with_overlap() {
    // Hand-made delta: two overlapping moves, then an Xor record that reads
    // the moved picture.
    let f = desktop(128, 64);
    let mut dec = Decoder::new();
    let mut enc = Encoder::new(EncoderConfig::default());
    dec.apply(&enc.encode(f.clone(), None).unwrap()).unwrap();
    let moves = vec![
        CopyRect {
            src: Rect::new(0, 0, 100, 50),
            dst_x: 3,
            dst_y: 2,
        },
        CopyRect {
            src: Rect::new(10, 10, 40, 40),
            dst_x: 5,
            dst_y: 4,
        },
    ];
    let mut expected = f.clone();
    for m in &moves {
        expected.copy_rect(m).unwrap();
    }
    let u = EncodedUpdate {
        seq: 2,
        base_seq: 1,
        width: 128,
        height: 64,
        moves,
        records: vec![tandem_codec::TileRecord {
            tile_x: 1,
            tile_y: 0,
            kind: TileKind::Xor(Rect::new(0, 0, 1, 1)),
        }],
        stream: tandem_codec::SharedStream {
            packed24: false,
            compressed: false,
            palette: false,
            data: 0xff00_0000u32.to_le_bytes().to_vec(),
        },
    };
    let moved = expected.get(64, 0);
    expected.set(64, 0, moved ^ 0xff00_0000);
    dec.apply(&EncodedUpdate::from_bytes(&u.to_bytes()).unwrap())
        .unwrap();
    assert_eq!(dec.frame(), Some(&expected));
}

#[test]
fn moved_window_found_without_hint() {
    let base = desktop(800, 600);
    let (mut f0, mut f1) = (base.clone(), base.clone());
    let win = terminal(&mut f0, 100, 60, 80, 24, 3);
    terminal(&mut f1, 112, 63, 80, 24, 3);
    let (u, _) = delta(Encoder::new(EncoderConfig::default()), &f0, &f1, &[]);
    let m = u
        .moves
        .iter()
        .find(|m| (m.dst_x - m.src.x, m.dst_y - m.src.y) == (12, 3))
        .unwrap_or_else(|| panic!("no (12, 3) move in {:?}", u.moves));
    assert!(m.src.area() * 10 >= win.area() * 8, "{m:?}");
    let (plain, _) = delta(no_motion(), &f0, &f1, &[]);
    assert!(u.encoded_len() * 5 < plain.encoded_len());
}

#[test]
fn a_window_moved_over_a_plain_desktop_codes_the_uncovered_strips_as_plain_pixels() {
    // Xvfb's root is solid black: what a move uncovers is one colour, and
    // XOR against the old window content would re-send that content.
    let (f0, f1, hint) = moved_terminal(&Frame::new(800, 600));
    let (u, _) = delta(Encoder::new(EncoderConfig::default()), &f0, &f1, &[hint]);
    assert_eq!(u.moves.len(), 1, "{:?}", u.moves);
    let xors = u
        .records
        .iter()
        .filter(|r| matches!(r.kind, TileKind::Xor(_)))
        .count();
    assert_eq!(
        xors,
        0,
        "{:?}",
        u.records.iter().map(|r| &r.kind).collect::<Vec<_>>()
    );
    // The strips are one colour: the update is the copy and a few records.
    assert!(u.encoded_len() < 400, "{} bytes", u.encoded_len());
}
