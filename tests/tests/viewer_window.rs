//! The attendee's window, end to end: a real `tandem node`, the `tandem
//! view` window on a private Xvfb (the attendee's display), read back with
//! `GetImage` and driven with xdotool (XTEST), as a person would.

use std::path::Path;
use std::time::{Duration, Instant};

use tandem_capture::SyntheticDesktop;
use tandem_codec::Frame;
use tandem_tests::xserver::XServer;
use tandem_tests::{
    differing_pixels, http_get, http_request, read_png, text, view, NodeProcess, ViewerProcess,
};

const LONG: Duration = Duration::from_secs(60);

fn config(
    dir: &Path,
    (w, h, seed, freeze): (u32, u32, u64, u64),
    port: u16,
    extra: &str,
) -> String {
    format!(
        r#"data_dir = "{data}"
quic_listen = "127.0.0.1:{port}"
admin_listen = "127.0.0.1:0"
{extra}
[source]
kind = "synthetic"
width = {w}
height = {h}
seed = {seed}
freeze_after_frames = {freeze}
input_log = "{log}"
[session]
control_policy = "grant-all"
[invitation]
attendee_limit = 8
"#,
        data = dir.join("data").display(),
        log = dir.join("input.jsonl").display(),
    )
}

/// Starts the window viewer on `x` with these extra arguments.
fn window_viewer(dir: &Path, x: &XServer, node: &NodeProcess, extra: &[&str]) -> ViewerProcess {
    let mut args = vec![
        node.ticket.as_str(),
        "--name",
        "win",
        "--password",
        &node.password,
    ];
    args.extend_from_slice(extra);
    ViewerProcess::spawn(
        dir,
        &[
            ("DISPLAY", x.display()),
            // No Wayland here: the X11 backend, whatever the caller's session.
            ("WAYLAND_DISPLAY", ""),
            ("WINIT_X11_SCALE_FACTOR", "1"),
        ],
        &args,
    )
}

/// Polls the window until it shows `expected` exactly (size and pixels).
fn wait_for_picture(x: &XServer, window: u32, expected: &Frame, dir: &Path, what: &str) {
    let deadline = Instant::now() + LONG;
    loop {
        let size = x.window_size(window);
        if size == (expected.width(), expected.height()) {
            let got = x.window_image(window);
            let diff = differing_pixels(&got, expected);
            if diff == 0 {
                return;
            }
            if Instant::now() > deadline {
                let path = dir.join("window.png");
                save_png(&got, &path);
                panic!(
                    "{what}: {diff} pixels differ from the expected frame (window saved to {})",
                    path.display()
                );
            }
        } else if Instant::now() > deadline {
            panic!(
                "{what}: window is {size:?}, expected {}x{}",
                expected.width(),
                expected.height()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Writes a frame as PNG (for looking at a failure).
fn save_png(frame: &Frame, path: &Path) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), frame.width(), frame.height());
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().unwrap();
    w.write_image_data(&frame.to_rgba8()).unwrap();
}

/// Doubles every pixel (what an exact 2x fit must show).
fn doubled(f: &Frame) -> Frame {
    let (w, h) = (f.width() * 2, f.height() * 2);
    let pixels = (0..w * h)
        .map(|i| f.get((i % w) / 2, (i / w) / 2))
        .collect();
    Frame::from_pixels(w, h, pixels).unwrap()
}

fn input_log(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("input.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Waits until the node's input log satisfies `pred`; on failure shows
/// the log and what the viewer printed.
fn wait_input(
    dir: &Path,
    viewer: &ViewerProcess,
    what: &str,
    pred: impl Fn(&[serde_json::Value]) -> bool,
) {
    let deadline = Instant::now() + LONG;
    while !pred(&input_log(dir)) {
        assert!(
            Instant::now() < deadline,
            "{what}: input log is {:?}\n{}",
            input_log(dir),
            viewer.report()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn mouse_move(x: u32, y: u32) -> serde_json::Value {
    serde_json::json!({"MouseMove": {"x": x, "y": y}})
}

fn left(pressed: bool) -> serde_json::Value {
    serde_json::json!({"MouseButton": {"button": "left", "pressed": pressed}})
}

fn key(keysym: u32, pressed: bool) -> serde_json::Value {
    serde_json::json!({"Key": {"keysym": keysym, "pressed": pressed}})
}

#[test]
fn the_window_shows_the_shared_frame_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    // Odd size: partial edge tiles; frozen after a few frames.
    let desktop = (333, 201, 7, 12);
    let node = NodeProcess::start(dir.path(), &config(dir.path(), desktop, 0, ""));

    // What a headless attendee of the same session decodes.
    let snap = dir.path().join("headless.png");
    let out = view(&[
        &node.ticket,
        "--name",
        "script",
        "--password",
        &node.password,
        "--headless",
        "--seconds",
        "3",
        "--snapshot",
        snap.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let shared = read_png(&snap);
    let (w, h, seed, freeze) = desktop;
    assert_eq!(
        differing_pixels(&shared, &SyntheticDesktop::new(seed, w, h).render(freeze)),
        0,
        "the headless snapshot is the source's frame"
    );

    let x = XServer::start(800, 600);
    // 1:1, window sized to the desktop by the viewer itself; no status
    // overlay, and the synthetic source has no pointer to draw.
    let mut viewer = window_viewer(dir.path(), &x, &node, &["--scale", "1:1"]);
    viewer.wait_line("connected to", LONG);
    let window = x.wait_window("tandem-viewer");
    wait_for_picture(&x, window, &shared, dir.path(), "1:1");
    let title = x.window_name(window);
    assert!(
        title.contains("session") && title.contains("view"),
        "title names the session and the control level: {title:?}"
    );
    viewer.terminate();
    let lines = viewer.lines();
    assert!(
        lines.iter().any(|l| l.starts_with("received ")),
        "summary after SIGTERM: {}",
        viewer.report()
    );

    // Scaled to a window twice the desktop's size: every pixel doubled.
    let mut viewer = window_viewer(
        dir.path(),
        &x,
        &node,
        &["--scale", "fit", "--geometry", "666x402"],
    );
    viewer.wait_line("connected to", LONG);
    let window = x.wait_window("tandem-viewer");
    wait_for_picture(&x, window, &doubled(&shared), dir.path(), "fit 2x");
    drop(viewer);
}

/// Where xev saw its first button press, in root (screen) coordinates.
fn xev_button_press(log: &Path) -> Option<(u32, u32, u32)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let event = text.split("ButtonPress event").nth(1)?;
    let root = event.split("root:(").nth(1)?.split(')').next()?;
    let (x, y) = root.split_once(',')?;
    let button = event.split("button ").nth(1)?.split(',').next()?;
    Some((
        x.trim().parse().ok()?,
        y.trim().parse().ok()?,
        button.trim().parse().ok()?,
    ))
}

#[test]
fn an_interactive_click_lands_at_the_right_place_on_a_real_shared_display() {
    let dir = tempfile::tempdir().unwrap();
    // The shared display: a real X server with an event tester (xev) and an xterm.
    let mut shared = XServer::start(640, 400);
    let xev_log = dir.path().join("xev.log");
    let mut xev = std::process::Command::new("xev")
        .args(["-geometry", "300x200+100+50", "-event", "button"])
        .env("DISPLAY", shared.display())
        .stdout(std::fs::File::create(&xev_log).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start xev (x11-utils)");
    shared.spawn("xterm", &["-geometry", "40x4+0+300", "-e", "sh"]);
    let xterm = shared.wait_window("xterm");
    let config = format!(
        r#"data_dir = "{}"
quic_listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[source]
kind = "x11"
display = "{}"
[session]
control_policy = "grant-all"
"#,
        dir.path().join("data").display(),
        shared.display()
    );
    let node = NodeProcess::start(dir.path(), &config);

    // The attendee's display: the window scales the 640x400 desktop 2x.
    let own = XServer::start(1400, 900);
    let mut viewer = window_viewer(
        dir.path(),
        &own,
        &node,
        &["--geometry", "1280x800", "--request-control"],
    );
    viewer.wait_line("control level: interactive", LONG);
    let window = own.wait_window("tandem-viewer");
    let win = window.to_string();
    own.xdotool(&["windowfocus", "--sync", &win]);
    // Window pixel (501, 301) shows desktop pixel (250, 150), inside xev's window.
    own.xdotool(&["mousemove", "--window", &win, "501", "301", "click", "1"]);
    let deadline = Instant::now() + LONG;
    let press = loop {
        if let Some(p) = xev_button_press(&xev_log) {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "xev saw no click: {}\n{}",
            std::fs::read_to_string(&xev_log).unwrap_or_default(),
            viewer.report()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(press, (250, 150, 1), "click at the mapped point, button 1");
    let location = shared.xdotool(&["getmouselocation"]);
    assert!(
        location.starts_with("x:250 y:150 "),
        "shared pointer: {location}"
    );

    // Keys typed in the window reach the focused xterm of the shared display.
    shared.xdotool(&["windowfocus", "--sync", &xterm.to_string()]);
    let typed = dir.path().join("typed.txt");
    own.xdotool(&[
        "type",
        &format!("echo tandem-window > {}\n", typed.display()),
    ]);
    let deadline = Instant::now() + LONG;
    while std::fs::read_to_string(&typed).map_or(true, |t| t != "tandem-window\n") {
        assert!(
            Instant::now() < deadline,
            "the typed command did not run\n{}",
            viewer.report()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = xev.kill();
    let _ = xev.wait();
}

#[test]
fn an_interactive_click_is_sent_at_the_mapped_desktop_pixel() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &config(dir.path(), (320, 200, 3, 5), 0, ""));
    let x = XServer::start(900, 700);
    // Scaled 2x: window pixel (2x+1, 2y+1) shows desktop pixel (x, y).
    let mut viewer = window_viewer(
        dir.path(),
        &x,
        &node,
        &["--geometry", "640x400", "--request-control"],
    );
    viewer.wait_line("control level: interactive", LONG);
    let window = x.wait_window("tandem-viewer");
    wait_title(&x, window, "interactive");
    let win = window.to_string();
    // The window may be mapped and titled before its first picture is laid
    // out (a pointer over no picture sends nothing): move again, as a
    // person would, until a move arrives; it must land at the mapped pixel.
    let deadline = Instant::now() + LONG;
    loop {
        x.xdotool(&["mousemove", "--window", &win, "21", "21"]);
        x.xdotool(&["mousemove", "--window", &win, "201", "101"]);
        std::thread::sleep(Duration::from_millis(300));
        if !input_log(dir.path()).is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pointer moved: nothing arrived\n{}",
            viewer.report()
        );
    }
    wait_input(dir.path(), &viewer, "pointer moved", |log| {
        log.last() == Some(&mouse_move(100, 50))
    });
    x.xdotool(&["click", "1"]);
    wait_input(dir.path(), &viewer, "click", |log| {
        log.ends_with(&[left(true), left(false)])
    });
    // Keyboard focus, as a window manager would give it: typed keys arrive
    // as keysyms.
    x.xdotool(&["windowfocus", "--sync", &win]);
    x.xdotool(&["type", "hi"]);
    wait_input(dir.path(), &viewer, "typed keys", |log| {
        log.ends_with(&[
            key(0x68, true),
            key(0x68, false),
            key(0x69, true),
            key(0x69, false),
        ])
    });
    let lines = viewer.lines();
    assert!(
        !lines.iter().any(|l| l.contains("input ignored")),
        "{}",
        viewer.report()
    );
}

#[test]
fn key_chords_ask_for_and_give_back_control_and_a_viewer_sends_no_input_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &config(dir.path(), (320, 200, 4, 5), 0, ""));
    let x = XServer::start(900, 700);
    let mut viewer = window_viewer(dir.path(), &x, &node, &["--geometry", "320x200"]);
    viewer.wait_line("control level view", LONG);
    let window = x.wait_window("tandem-viewer");
    let win = window.to_string();
    // Keyboard focus, as a window manager would give it.
    x.xdotool(&["windowfocus", "--sync", &win]);

    // A view-only attendee: clicks and keys are not sent at all. Had they
    // been, the node would count them as dropped and say so; the control
    // stream is ordered, so once a later interactive click has arrived,
    // anything sent before it has been counted.
    x.xdotool(&["mousemove", "--window", &win, "50", "60", "click", "1"]);
    x.xdotool(&["type", "no"]);

    // Ctrl+Alt+Shift+I asks; the policy grants; the answer is shown.
    x.xdotool(&["key", "ctrl+alt+shift+i"]);
    viewer.wait_line("control level: interactive", LONG);
    viewer.wait_line("control request:", LONG);
    wait_title(&x, window, "interactive");
    x.xdotool(&["mousemove", "--window", &win, "10", "20", "click", "1"]);
    wait_input(dir.path(), &viewer, "click once interactive", |log| {
        log.contains(&mouse_move(10, 20)) && log.ends_with(&[left(true), left(false)])
    });
    assert_eq!(dropped_input(&node), 0.0, "input sent while view-only");
    let log = input_log(dir.path());
    assert!(
        !log.contains(&mouse_move(50, 60)) && !log.contains(&key(u32::from(b'n'), true)),
        "{log:?}"
    );
    // The chord's own key never reaches the desktop, only its modifiers.
    assert!(
        !log.contains(&key(u32::from(b'i'), true)) && !log.contains(&key(u32::from(b'I'), true)),
        "{log:?}"
    );

    // Ctrl+Alt+Shift+V gives it back: nothing is sent any more...
    x.xdotool(&["key", "ctrl+alt+shift+v"]);
    viewer.wait_line("control level: view", LONG);
    wait_title(&x, window, "- view");
    x.xdotool(&["mousemove", "--window", &win, "30", "40", "click", "1"]);
    x.xdotool(&["type", "no"]);
    // ...as the next interactive click shows.
    x.xdotool(&["key", "ctrl+alt+shift+i"]);
    wait_title(&x, window, "interactive");
    x.xdotool(&["mousemove", "--window", &win, "70", "80", "click", "1"]);
    wait_input(dir.path(), &viewer, "click once interactive again", |log| {
        log.contains(&mouse_move(70, 80)) && log.ends_with(&[left(true), left(false)])
    });
    assert_eq!(
        dropped_input(&node),
        0.0,
        "input sent after giving control back"
    );
    assert!(
        !viewer.lines().iter().any(|l| l.contains("input ignored")),
        "{}",
        viewer.report()
    );
}

/// Input events the node received from non-interactive attendees.
fn dropped_input(node: &NodeProcess) -> f64 {
    let (_, metrics) = http_get(&format!("{}/metrics", node.admin_url));
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("tandem_input_events_total{result=\"dropped\"} "))
        .map_or(0.0, |v| v.trim().parse::<f64>().unwrap())
}

fn wait_title(x: &XServer, window: u32, needle: &str) {
    let deadline = Instant::now() + LONG;
    loop {
        let title = x.window_name(window);
        if title.contains(needle) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "title {title:?} never had {needle:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_viewer_fails_over_to_the_next_address_and_keeps_receiving() {
    let dir = tempfile::tempdir().unwrap();
    let (p1, p2) = (tandem_tests::free_udp_port(), tandem_tests::free_udp_port());
    let advertise = format!(r#"advertise = ["127.0.0.1:{p1}", "127.0.0.1:{p2}"]"#);
    let (w, h, seed) = (256, 160, 9);
    let first_cfg = config(dir.path(), (w, h, seed, 5), p1, &advertise);
    let first = NodeProcess::start(dir.path(), &first_cfg);
    assert!(
        first.ticket.contains(&format!("{p1},127.0.0.1:{p2}")),
        "{}",
        first.ticket
    );
    let ticket = first.ticket.clone();

    let x = XServer::start(800, 600);
    let mut viewer = window_viewer(
        dir.path(),
        &x,
        &first,
        &["--scale", "1:1", "--request-control"],
    );
    viewer.wait_line(&format!("connected to 127.0.0.1:{p1}"), LONG);
    viewer.wait_line("control level: interactive", LONG);
    let window = x.wait_window("tandem-viewer");
    let before = SyntheticDesktop::new(seed, w, h).render(5);
    wait_for_picture(&x, window, &before, dir.path(), "first node");

    // Stop the first node; the same registry comes back on the second
    // address (identity, session and invitation kept), with a desktop that
    // froze later, so its picture differs.
    assert!(first.terminate(), "first node did not stop cleanly");
    viewer.wait_line("disconnected: node shut down", LONG);
    let second_cfg = config(dir.path(), (w, h, seed, 40), p2, &advertise);
    let second = NodeProcess::start(dir.path(), &second_cfg);
    viewer.wait_line(&format!("reconnecting to 127.0.0.1:{p2}"), LONG);
    viewer.wait_line(&format!("connected to 127.0.0.1:{p2}"), LONG);
    // A new attendee on the new node, which asks again for the level it held.
    let deadline = Instant::now() + LONG;
    while viewer
        .lines()
        .iter()
        .filter(|l| l.as_str() == "control level: interactive")
        .count()
        < 2
    {
        assert!(
            Instant::now() < deadline,
            "interactive control not asked for again: {}",
            viewer.report()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let after = SyntheticDesktop::new(seed, w, h).render(40);
    assert_ne!(differing_pixels(&before, &after), 0);
    wait_for_picture(&x, window, &after, dir.path(), "after failover");

    // The sharer closes the session: the viewer ends, with the reason.
    let token = std::fs::read_to_string(dir.path().join("data/admin.token")).unwrap();
    let session = ticket
        .split("/s/")
        .nth(1)
        .and_then(|r| r.split('?').next())
        .unwrap();
    let (status, body) = http_request(
        "DELETE",
        &format!("{}/api/v1/sessions/{session}", second.admin_url),
        Some(token.trim()),
        None,
    );
    assert!((200..300).contains(&status), "{status} {body}");
    viewer.wait_line("disconnected: session closed", LONG);
    assert_eq!(viewer.wait_exit(LONG), Some(1), "{}", viewer.report());
}

#[test]
fn a_window_viewer_that_never_reaches_the_node_retries_then_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &config(dir.path(), (64, 64, 1, 5), 0, ""));
    let port = tandem_tests::free_udp_port();
    let dead = node
        .ticket
        .replacen(&node.quic_addr, &format!("127.0.0.1:{port}"), 1);
    let x = XServer::start(640, 480);
    let mut viewer = ViewerProcess::spawn(
        dir.path(),
        &[("DISPLAY", x.display()), ("WAYLAND_DISPLAY", "")],
        &[
            &dead,
            "--name",
            "lost",
            "--password",
            &node.password,
            "--seconds",
            "12",
        ],
    );
    // It keeps trying (with backoff) while the window is open...
    viewer.wait_line("retrying in", LONG);
    x.wait_window("tandem-viewer");
    // ...and a script's deadline ends it with the reason.
    assert_eq!(viewer.wait_exit(LONG), Some(1), "{}", viewer.report());
    assert!(
        viewer
            .report()
            .contains("tandem: error: cannot reach the node"),
        "{}",
        viewer.report()
    );
}
