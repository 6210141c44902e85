//! Bytes per graphics update for the workloads of issue 12, printed: one
//! glyph typed into a terminal (the cursor moves on), a 100x30 terminal
//! scrolled by one line, an 80x24 terminal window moved by (12, 3), each on
//! a 1920x1080 desktop, encoded by the codec alone (no network, no capture).
//! The move is encoded twice: with the window's old and new geometry as a
//! hint (what the X11 source knows) and by content search alone. Last, the
//! mean delta of the synthetic office desktop that `make fanout` serves.
//!
//! `cargo run --release -p tandem-benches --bin codec-figures`

use tandem_benches::{desktop, terminal};
use tandem_codec::{CopyRect, EncodedUpdate, Encoder, EncoderConfig, Frame, Rect, TileKind};

const SEED: u64 = 12;

/// Encodes `prev` (a key frame) then `next` with `hints`; the delta.
fn delta(prev: &Frame, next: &Frame, hints: &[CopyRect]) -> EncodedUpdate {
    let mut enc = Encoder::new(EncoderConfig::default());
    enc.encode(prev.clone(), None).expect("key frame");
    enc.encode_with_moves(next.clone(), None, hints)
        .expect("the frames differ")
}

fn report(name: &str, per_second: u32, u: &EncodedUpdate) {
    let kinds = |f: fn(&TileKind) -> bool| u.records.iter().filter(|r| f(&r.kind)).count();
    println!(
        "{name:<44} {:>8} B/update {:>10} B/s at {per_second}/s  moves {:>2}  records {:>3} (pixels {}, xor {}, copy {}, solid {})",
        u.encoded_len(),
        u.encoded_len() as u64 * u64::from(per_second),
        u.moves.len(),
        u.records.len(),
        kinds(|k| matches!(k, TileKind::Pixels(_))),
        kinds(|k| matches!(k, TileKind::Xor(_))),
        kinds(|k| matches!(k, TileKind::CopyTile { .. })),
        kinds(|k| matches!(k, TileKind::Solid(_))),
    );
}

fn main() {
    let screen = desktop(1, 0);

    // Typing: a character appears in the cursor's cell, the cursor moves on.
    let (tx, ty, cols, rows) = (300, 150, 100, 30);
    let mut typed0 = screen.clone();
    terminal::draw(&mut typed0, tx, ty, cols, rows, SEED, 0);
    let row = rows - 1;
    let col = (terminal::line(SEED, u64::from(row), cols).len() as u32 + 1).min(cols - 2);
    let cursor = |f: &mut Frame, col: u32| {
        f.fill_rect(
            Rect::new(
                tx + terminal::BORDER + col * terminal::CELL_W,
                ty + terminal::BORDER + row * terminal::CELL_H,
                terminal::CELL_W,
                terminal::CELL_H,
            ),
            0x0010_1010,
        )
    };
    cursor(&mut typed0, col);
    let mut typed1 = typed0.clone();
    terminal::draw_char(&mut typed1, tx, ty, col, row, 'k');
    cursor(&mut typed1, col + 1);
    report(
        "one glyph typed (100x30 terminal)",
        10,
        &delta(&typed0, &typed1, &[]),
    );

    // Scrolling: the same terminal shows the document one line further.
    let mut scroll1 = screen.clone();
    terminal::draw(&mut scroll1, tx, ty, cols, rows, SEED, 1);
    let mut scroll0 = screen.clone();
    terminal::draw(&mut scroll0, tx, ty, cols, rows, SEED, 0);
    report(
        "100x30 terminal scrolled by one line",
        20,
        &delta(&scroll0, &scroll1, &[]),
    );

    // Moving: an 80x24 terminal window moved by (12, 3) over the desktop.
    let (mx, my) = (500, 300);
    let mut moved0 = screen.clone();
    let win = terminal::draw(&mut moved0, mx, my, 80, 24, SEED + 1, 0);
    let mut moved1 = screen.clone();
    terminal::draw(&mut moved1, mx + 12, my + 3, 80, 24, SEED + 1, 0);
    let hint = CopyRect {
        src: win,
        dst_x: mx + 12,
        dst_y: my + 3,
    };
    report(
        "80x24 window moved by (12, 3), with hint",
        20,
        &delta(&moved0, &moved1, &[hint]),
    );
    report(
        "80x24 window moved by (12, 3), no hint",
        20,
        &delta(&moved0, &moved1, &[]),
    );

    office();
}

/// The synthetic office desktop (`make fanout`'s `office` workload) at
/// 1920x1080: bytes of the updates of 100 s of its animation (3,000 ticks)
/// and where they go, and the largest update.
fn office() {
    let desktop = tandem_capture::SyntheticDesktop::new(1, 1920, 1080);
    let mut enc = Encoder::new(EncoderConfig::default());
    enc.encode(desktop.render(0), None).expect("key frame");
    let (mut total, mut stream, mut moves, mut records, mut largest) = (0, 0, 0, 0, (0, 0));
    let ticks = 1..3001u64;
    let n = (ticks.end - ticks.start) as usize;
    for tick in ticks {
        let Some(u) = enc.encode(desktop.render(tick), None) else {
            continue;
        };
        total += u.encoded_len();
        stream += u.stream.data.len();
        moves += u.moves.len();
        records += u.records.len();
        largest = largest.max((u.encoded_len(), tick));
    }
    println!(
        "{:<44} {:>8} B/update {:>10} B/s at 30/s  moves {:.1}  records {:.1}  shared stream {} B/update  largest {} B (tick {})",
        "synthetic office desktop (1920x1080)",
        total / n,
        total * 30 / n,
        moves as f64 / n as f64,
        records as f64 / n as f64,
        stream / n,
        largest.0,
        largest.1,
    );
}
