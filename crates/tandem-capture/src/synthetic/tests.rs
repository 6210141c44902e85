//! Tests of the synthetic desktop: determinism, animation, damage, crop, sizes.

use super::*;

fn full(d: &SyntheticDesktop) -> Rect {
    let (w, h) = d.desktop_size();
    Rect::new(0, 0, w, h)
}

fn differing(a: &Frame, b: &Frame) -> Vec<(u32, u32)> {
    assert_eq!((a.width(), a.height()), (b.width(), b.height()));
    let w = a.width();
    a.pixels()
        .iter()
        .zip(b.pixels())
        .enumerate()
        .filter(|(_, (p, q))| p != q)
        .map(|(i, _)| (i as u32 % w, i as u32 / w))
        .collect()
}

fn covered(rects: &[Rect], x: u32, y: u32) -> bool {
    rects
        .iter()
        .any(|r| x >= r.x && y >= r.y && x - r.x < r.width && y - r.y < r.height)
}

#[test]
fn same_inputs_same_frame() {
    let a = SyntheticDesktop::new(7, 640, 400);
    let b = SyntheticDesktop::new(7, 640, 400);
    for tick in [0, 1, 5, 123] {
        assert!(a.render(tick) == b.render(tick), "tick {tick} differs");
    }
}

#[test]
fn different_tick_or_seed_different_frame() {
    let a = SyntheticDesktop::new(7, 640, 400);
    let f1 = a.render(1);
    assert!(a.render(2) != f1);
    assert!(SyntheticDesktop::new(8, 640, 400).render(1) != f1);
}

#[test]
fn frame_has_the_desktop_size_and_is_not_blank() {
    let d = SyntheticDesktop::new(1, 320, 200);
    let f = d.render(0);
    assert_eq!((f.width(), f.height()), (320, 200));
    let distinct: std::collections::HashSet<u32> = f.pixels().iter().copied().collect();
    assert!(distinct.len() > 20, "only {} colours", distinct.len());
    assert!(
        f.pixels().iter().all(|p| p >> 24 == 0),
        "pixels are 0x00RRGGBB"
    );
}

#[test]
fn terminal_scrolls_by_one_line() {
    let d = SyntheticDesktop::new(3, 1280, 720);
    let content = d.layout.terminal_content();
    let before = d.render(SCROLL_EVERY - 1);
    let after = d.render(SCROLL_EVERY);
    // Below the first row and above the last row (which holds the cursor),
    // row y after the scroll equals row y + LINE_H before it.
    let x0 = content.x as u32;
    let x1 = content.right() as u32;
    let mover = [
        d.layout.mover(SCROLL_EVERY - 1),
        d.layout.mover(SCROLL_EVERY),
    ];
    let top = (content.y + PAD) as u32;
    let rows = (content.h - 2 * PAD) / LINE_H;
    // Rows whose successor is the last (cursor) row are excluded.
    let bottom = (content.y + PAD + (rows - 2) * LINE_H) as u32;
    let mut compared = 0;
    for y in top..bottom {
        for x in x0..x1 {
            let (xi, yi) = (i64::from(x), i64::from(y));
            let hidden = mover.iter().any(|m| {
                (xi >= m.x && xi < m.right())
                    && ((yi >= m.y && yi < m.bottom())
                        || (yi + LINE_H >= m.y && yi + LINE_H < m.bottom()))
            });
            if !hidden {
                assert_eq!(
                    after.get(x, y),
                    before.get(x, y + LINE_H as u32),
                    "at {x},{y}"
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 100_000);
}

#[test]
fn damage_covers_every_changed_pixel() {
    for (w, h) in [(640, 400), (1280, 720), (97, 61)] {
        let d = SyntheticDesktop::new(11, w, h);
        let desktop = full(&d);
        let mut prev = d.render(0);
        for tick in 1..=40 {
            let next = d.render(tick);
            let damage = relative_to(&d.damage_between(tick - 1, tick).unwrap(), desktop);
            for (x, y) in differing(&prev, &next) {
                assert!(
                    covered(&damage, x, y),
                    "{w}x{h} tick {tick}: {x},{y} changed outside {damage:?}"
                );
            }
            prev = next;
        }
    }
}

#[test]
fn capture_animates_then_freezes() {
    let mut d = SyntheticDesktop::new(5, 320, 240).with_freeze_at(3);
    assert!(d.describe().contains("320x240"));
    let rect = full(&d);
    let first = d.capture(rect).unwrap();
    assert!(first.damage.is_none(), "first capture has unknown damage");
    assert!(first.frame == d.render(1));
    let second = d.capture(rect).unwrap();
    assert!(second.frame == d.render(2));
    assert!(!second.damage.unwrap().is_empty());
    let third = d.capture(rect).unwrap();
    assert!(third.frame == d.render(3));
    for k in 4..8 {
        let c = d.capture(rect).unwrap();
        assert_eq!(d.tick(), k);
        assert_eq!(d.animation_tick(), 3);
        assert!(c.frame == third.frame);
        assert_eq!(c.damage, Some(vec![]));
    }
}

#[test]
fn capture_damage_is_relative_to_the_rect() {
    let mut whole = SyntheticDesktop::new(9, 640, 400);
    let mut part = SyntheticDesktop::new(9, 640, 400);
    let rect = Rect::new(100, 50, 300, 200);
    let mut prev_full = whole.capture(full(&whole)).unwrap().frame;
    let mut prev_part = part.capture(rect).unwrap().frame;
    for _ in 0..12 {
        let f = whole.capture(full(&whole)).unwrap().frame;
        let c = part.capture(rect).unwrap();
        assert!(c.frame == f.crop(rect));
        let damage = c.damage.expect("same rect: damage known");
        for r in &damage {
            assert!(r.x + r.width <= 300 && r.y + r.height <= 200);
        }
        for (x, y) in differing(&prev_part, &c.frame) {
            assert!(covered(&damage, x, y));
        }
        prev_part = c.frame;
        prev_full = f;
    }
    drop(prev_full);
}

#[test]
fn capture_clips_and_refuses_outside() {
    let mut d = SyntheticDesktop::new(2, 100, 80);
    let c = d.capture(Rect::new(60, 50, 100, 100)).unwrap();
    assert_eq!((c.frame.width(), c.frame.height()), (40, 30));
    assert!(c.frame == d.render(1).crop(Rect::new(60, 50, 40, 30)));
    // A different rectangle: damage unknown again.
    let c = d.capture(Rect::new(0, 0, 10, 10)).unwrap();
    assert!(c.damage.is_none());
    assert!(matches!(
        d.capture(Rect::new(100, 0, 5, 5)),
        Err(CaptureError::OutsideDesktop { .. })
    ));
    assert!(d.capture(Rect::new(0, 0, 0, 5)).is_err());
}

#[test]
fn tiny_and_odd_sizes_do_not_panic() {
    for (w, h) in [
        (0, 0),
        (1, 1),
        (1, 500),
        (500, 1),
        (2, 3),
        (17, 9),
        (33, 200),
        (4000, 30),
    ] {
        let mut d = SyntheticDesktop::new(w as u64, w, h);
        let (dw, dh) = d.desktop_size();
        assert_eq!((dw, dh), (w.max(1), h.max(1)));
        for tick in [0, 1, 4, 1000, u64::MAX] {
            let f = d.render(tick);
            assert_eq!((f.width(), f.height()), (dw, dh));
        }
        for _ in 0..5 {
            let c = d.capture(Rect::new(0, 0, u32::MAX, u32::MAX)).unwrap();
            assert_eq!((c.frame.width(), c.frame.height()), (dw, dh));
        }
    }
}

#[test]
fn bounce_stays_in_range() {
    for range in [0, 1, 5, 100] {
        for p in -300..300 {
            let b = bounce(p, range);
            assert!((0..=range).contains(&b));
        }
    }
    assert_eq!(bounce(7, 5), 3);
}

#[test]
fn the_mover_moves_every_tick() {
    let d = SyntheticDesktop::new(4, 1920, 1080);
    for t in 0..50 {
        assert_ne!(d.layout.mover(t), d.layout.mover(t + 1));
    }
}

#[test]
fn full_motion_changes_every_pixel_every_tick_and_reports_no_damage() {
    let office = SyntheticDesktop::new(3, 320, 200);
    let mut video = SyntheticDesktop::new(3, 320, 200).with_motion(Motion::Full);
    for tick in [0, 1, 62, 63, 64, 200] {
        let (a, b) = (video.render(tick), video.render(tick + 1));
        let changed = differing(&a, &b).len();
        assert_eq!(changed, 320 * 200, "tick {tick}: {changed} pixels changed");
        assert!(office.render(tick) != a, "the wave is drawn");
    }
    let area = full(&video);
    video.capture(area).unwrap();
    assert_eq!(video.capture(area).unwrap().damage, None);
}
