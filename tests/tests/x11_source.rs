//! The X11 backend as a library, against Xvfb: both grab paths read what
//! `xwd` reads, damage says exactly what changed, input keys are released.

use std::time::{Duration, Instant};

use tandem_capture::x11::{GrabMode, X11InputSink, X11Source};
use tandem_capture::{CaptureSource, Frame, InputEvent, InputSink, Rect};
use tandem_tests::differing_pixels;
use tandem_tests::xserver::XServer;

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn shared_memory_and_get_image_read_what_xwd_reads() {
    let mut x = XServer::start(1024, 768);
    x.spawn(
        "xterm",
        &[
            "-geometry",
            "80x24+17+33",
            "-e",
            "sh",
            "-c",
            "ls -la /; exec sleep 600",
        ],
    );
    x.spawn("xclock", &["-geometry", "150x150+600+300"]);
    x.wait_window("xterm");
    x.wait_window("xclock");
    let mut shm = X11Source::connect(Some(x.display()), GrabMode::Auto).unwrap();
    let mut plain = X11Source::connect(Some(x.display()), GrabMode::GetImage).unwrap();
    assert!(shm.uses_shm(), "Xvfb is local: MIT-SHM is used");
    assert!(!plain.uses_shm());
    assert_eq!(shm.desktop_size(), (1024, 768));
    let desktop = Rect::new(0, 0, 1024, 768);
    for _ in 0..3 {
        let screen = x.still_screen();
        let a = shm.capture(desktop).unwrap();
        let b = plain.capture(desktop).unwrap();
        if x.xwd_root() != screen {
            continue; // the clock ticked in between
        }
        assert_eq!(a.damage, None, "a first grab compares everything");
        assert_eq!(differing_pixels(&a.frame, &screen), 0, "MIT-SHM grab");
        assert_eq!(differing_pixels(&b.frame, &screen), 0, "GetImage grab");
        // A sub-rectangle at odd offsets.
        let part = Rect::new(13, 29, 301, 177);
        let c = plain.capture(part).unwrap();
        assert_eq!(c.frame, screen.crop(part));
        return;
    }
    panic!("the display never stayed still");
}

/// An 800x600 display with a focused 60x10 xterm at (100, 100) and a
/// source that has grabbed it once and read what was queued meanwhile;
/// with that first grab.
fn typing_xterm() -> (XServer, X11Source, Rect, Frame) {
    let mut x = XServer::start(800, 600);
    // No shell: a prompt drawn late (a loaded machine) would be damage
    // after the display looked still. The terminal still echoes typing.
    x.spawn(
        "xterm",
        &[
            "-geometry",
            "60x10+100+100",
            "-e",
            "sh",
            "-c",
            "exec sleep 600",
        ],
    );
    x.wait_window("xterm");
    x.xdotool(&["mousemove", "200", "150"]);
    let mut source = X11Source::connect(Some(x.display()), GrabMode::Auto).unwrap();
    let desktop = Rect::new(0, 0, 800, 600);
    x.still_screen();
    let first = source.capture(desktop).unwrap();
    // Anything queued while the display settled is read now.
    while source.poll_damage(desktop).unwrap() {
        source.capture(desktop).unwrap();
    }
    (x, source, desktop, first.frame)
}

#[test]
fn damage_reports_what_changed_and_nothing_when_idle() {
    let (x, mut source, desktop, first) = typing_xterm();
    let grabs = source.grabs();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !source.poll_damage(desktop).unwrap(),
        "an idle display reports no damage"
    );
    assert_eq!(source.grabs(), grabs);

    x.xdotool(&["type", "--delay", "20", "hello damage"]);
    wait_for("damage", || source.poll_damage(desktop).unwrap());
    let screen = x.still_screen();
    // Every damaged rectangle is read; what lies outside them is unchanged.
    let mut previous = first;
    let mut damaged: Vec<Rect> = Vec::new();
    while source.poll_damage(desktop).unwrap() {
        let captured = source.capture(desktop).unwrap();
        let rects = captured.damage.expect("known damage after the first grab");
        assert!(!rects.is_empty());
        for y in 0..600 {
            for x in 0..800 {
                let inside = rects
                    .iter()
                    .any(|r| x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height);
                if !inside {
                    assert_eq!(
                        captured.frame.get(x, y),
                        previous.get(x, y),
                        "pixel {x},{y} changed outside the damage"
                    );
                }
            }
        }
        damaged.extend(rects);
        previous = captured.frame;
    }
    assert_eq!(differing_pixels(&previous, &screen), 0);
    let xterm_area = Rect::new(100, 100, 400, 200);
    assert!(
        damaged.iter().all(|r| r.intersect(&xterm_area).is_some()),
        "typing damages only the xterm: {damaged:?}"
    );
}

/// An xterm draws a typed character as three or four rectangles over two
/// cells (the glyph's cell twice, the text cursor, the next cell): the
/// source keeps them as one area, so the grab is one round trip to the
/// server, and it still reads exactly what the screen shows.
#[test]
fn a_typed_character_is_one_damaged_area() {
    let (x, mut source, desktop, _) = typing_xterm();
    for key in ["a", "W", "space", "7"] {
        x.xdotool(&["key", key]);
        wait_for("damage", || source.poll_damage(desktop).unwrap());
        let screen = x.still_screen();
        let captured = source.capture(desktop).unwrap();
        let areas = captured.damage.expect("known damage after the first grab");
        assert_eq!(areas.len(), 1, "key {key}: {areas:?}");
        assert!(
            areas[0].area() <= 64 * 64,
            "key {key}: a small area, {areas:?}"
        );
        assert_eq!(differing_pixels(&captured.frame, &screen), 0, "key {key}");
    }
}

/// The source writes each grab into the frame it handed out two grabs ago
/// once nobody else holds it (bringing the areas changed since up to date),
/// and copies otherwise: both ways every grab equals the screen, and a frame
/// the caller keeps never changes under it.
#[test]
fn grabs_equal_the_screen_whether_or_not_earlier_frames_are_kept() {
    let mut x = XServer::start(640, 480);
    x.spawn(
        "xterm",
        &[
            "-geometry",
            "40x8+50+50",
            "-e",
            "sh",
            "-c",
            "exec sleep 600",
        ],
    );
    x.wait_window("xterm");
    // Without a window manager the keyboard follows the pointer.
    x.xdotool(&["mousemove", "100", "70"]);
    let mut source = X11Source::connect(Some(x.display()), GrabMode::Auto).unwrap();
    let desktop = Rect::new(0, 0, 640, 480);
    x.still_screen();
    source.capture(desktop).unwrap();
    while source.poll_damage(desktop).unwrap() {
        source.capture(desktop).unwrap();
    }
    let mut kept: Vec<(Frame, Frame)> = Vec::new();
    for (round, word) in ["a", "bc", "def", "g", "hi", "jkl", "m"].iter().enumerate() {
        x.xdotool(&["type", "--delay", "30", word]);
        wait_for("damage", || source.poll_damage(desktop).unwrap());
        let screen = x.still_screen();
        let mut last = None;
        while source.poll_damage(desktop).unwrap() {
            let captured = source.capture(desktop).unwrap();
            assert!(
                captured.damage.is_some(),
                "known damage after the first grab"
            );
            // The previous grab is dropped here: its buffer is free again.
            last = Some(captured.frame);
        }
        let frame = last.expect("a grab of the typed text");
        assert_eq!(differing_pixels(&frame, &screen), 0, "round {round}");
        if round % 2 == 0 {
            kept.push((frame, screen));
        }
    }
    for (i, (frame, screen)) in kept.iter().enumerate() {
        assert_eq!(
            differing_pixels(frame, screen),
            0,
            "kept frame {i} changed after later grabs"
        );
    }
}

#[test]
fn held_keys_are_released_and_shifted_characters_typed() {
    let mut x = XServer::start(800, 600);
    let dir = tempfile::tempdir().unwrap();
    x.spawn("xterm", &["-geometry", "80x24+0+0", "-e", "sh"]);
    x.wait_window("xterm");
    let mut sink = X11InputSink::connect(Some(x.display())).unwrap();
    sink.inject(&InputEvent::MouseMove { x: 200, y: 150 })
        .unwrap();
    // An attendee leaves with Shift held down: release_all lets it go, so
    // what is typed next is not shifted.
    sink.inject(&InputEvent::Key {
        keysym: 0xffe1,
        pressed: true,
    })
    .unwrap();
    sink.release_all().unwrap();
    let file = dir.path().join("typed.txt");
    let command = format!("echo Released_OK:~ > {}\n", file.display());
    for c in command.chars() {
        let keysym = match c {
            '\n' => 0xff0d,
            c => c as u32,
        };
        for pressed in [true, false] {
            sink.inject(&InputEvent::Key { keysym, pressed }).unwrap();
        }
    }
    wait_for("the typed file", || {
        std::fs::read_to_string(&file).is_ok_and(|t| t == "Released_OK:~\n")
    });
}

#[test]
fn the_whole_screen_is_a_monitor_and_windows_are_listed() {
    let mut x = XServer::start(640, 480);
    x.spawn("xterm", &["-name", "listed", "-geometry", "20x5+30+40"]);
    let id = x.wait_window("listed");
    let mut source = X11Source::connect(Some(x.display()), GrabMode::Auto).unwrap();
    let monitors = source.monitors().unwrap();
    assert!(
        monitors.iter().any(|m| m.rect == Rect::new(0, 0, 640, 480)),
        "{monitors:?}"
    );
    let windows = source.windows().unwrap();
    let w = windows
        .iter()
        .find(|w| w.id == id)
        .expect("the xterm is listed");
    assert_eq!((w.instance.as_str(), w.class.as_str()), ("listed", "XTerm"));
    assert_eq!((w.x, w.y), (30, 40));
    assert!(w.pid.is_some(), "xterm sets _NET_WM_PID");
    // Opening and closing a window are events.
    let pid = x.spawn(
        "xterm",
        &["-name", "transient", "-geometry", "20x5+300+300"],
    );
    x.wait_window("transient");
    wait_for("the open event", || {
        source.windows().unwrap();
        source.take_window_events().iter().any(|e| {
            matches!(e, tandem_capture::WindowEvent::WindowOpened(w) if w.instance == "transient")
        })
    });
    let _ = std::process::Command::new("kill")
        .arg(pid.to_string())
        .status();
    wait_for("the close event", || {
        source.windows().unwrap();
        source.take_window_events().iter().any(|e| {
            matches!(e, tandem_capture::WindowEvent::WindowClosed(w) if w.instance == "transient")
        })
    });
}

#[test]
fn without_shared_memory_get_image_takes_over() {
    let mut x = XServer::start_with(640, 480, &["-extension", "MIT-SHM"]);
    x.spawn(
        "xterm",
        &[
            "-geometry",
            "40x10+20+20",
            "-e",
            "sh",
            "-c",
            "ls /; exec sleep 600",
        ],
    );
    x.wait_window("xterm");
    let mut source = X11Source::connect(Some(x.display()), GrabMode::Auto).unwrap();
    assert!(
        !source.uses_shm(),
        "no MIT-SHM on this server: GetImage is used"
    );
    let screen = x.still_screen();
    let captured = source.capture(Rect::new(0, 0, 640, 480)).unwrap();
    assert_eq!(differing_pixels(&captured.frame, &screen), 0);
}

#[test]
fn keysyms_missing_from_the_keymap_are_typed() {
    let mut x = XServer::start(800, 600);
    let dir = tempfile::tempdir().unwrap();
    x.spawn_env(
        "xterm",
        &["-u8", "-geometry", "80x24+0+0", "-e", "sh"],
        &[("LC_ALL", "C.UTF-8")],
    );
    x.wait_window("xterm");
    let mut sink = X11InputSink::connect(Some(x.display())).unwrap();
    sink.inject(&InputEvent::MouseMove { x: 200, y: 150 })
        .unwrap();
    let file = dir.path().join("accents.txt");
    // é and ü are Latin-1 keysyms, € a Unicode one (0x100_0000 + U+20AC);
    // a US keymap has none of them.
    let command = format!("echo \u{e9}\u{20ac}\u{fc}\u{e9} > {}\n", file.display());
    for c in command.chars() {
        let keysym = match c {
            '\n' => 0xff0d,
            ' '..='~' | '\u{a0}'..='\u{ff}' => c as u32,
            other => 0x0100_0000 + other as u32,
        };
        for pressed in [true, false] {
            sink.inject(&InputEvent::Key { keysym, pressed }).unwrap();
        }
    }
    wait_for("the typed file", || {
        std::fs::read_to_string(&file).is_ok_and(|t| t == "\u{e9}\u{20ac}\u{fc}\u{e9}\n")
    });
}

#[test]
fn a_moved_window_is_reported_as_a_move_hint_of_its_visible_part() {
    let mut x = XServer::start(640, 480);
    x.spawn(
        "xterm",
        &[
            "-geometry",
            "40x10+50+60",
            "-e",
            "sh",
            "-c",
            "exec sleep 600",
        ],
    );
    let xterm = x.wait_window("xterm");
    let mut source = X11Source::connect(Some(x.display()), GrabMode::Auto).unwrap();
    let shared = Rect::new(20, 20, 600, 440);
    let window = source
        .windows()
        .unwrap()
        .into_iter()
        .find(|w| w.id == xterm)
        .expect("the xterm is listed");
    let first = source.capture(shared).unwrap();
    assert!(first.moves.is_empty(), "a first grab has nothing to move");

    x.xdotool(&["windowmove", &xterm.to_string(), "62", "63"]);
    let mut moves = Vec::new();
    wait_for("the move to be reported", || {
        let c = source.capture(shared).unwrap();
        moves.extend(c.moves);
        !moves.is_empty()
    });
    // Exactly the move, in the shared rectangle's coordinates.
    assert_eq!(
        moves,
        vec![tandem_capture::MoveHint {
            src: Rect::new(
                (window.x - 20) as u32,
                (window.y - 20) as u32,
                window.width,
                window.height
            ),
            dst_x: 62 - 20,
            dst_y: 63 - 20,
        }]
    );
    // Nothing more once it rests.
    std::thread::sleep(Duration::from_millis(300));
    assert!(source.capture(shared).unwrap().moves.is_empty());
}
