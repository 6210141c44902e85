//! A real X11 desktop shared end to end: Xvfb with real X clients (xterm,
//! xclock, xdotool), a `tandem node --source x11` process and `tandem view`
//! processes over QUIC on loopback.

use std::path::Path;
use std::time::{Duration, Instant};

use tandem_capture::FILTER_BACKGROUND;
use tandem_codec::Frame;
use tandem_tests::xserver::XServer;
use tandem_tests::{
    decode_png, differing_pixels, http_get, http_request_bytes, metric, read_png, spawn_view,
    summary, text, view, NodeProcess,
};

const TOKEN: &str = "x11-desktop-test-token-0123456789";
const PASSWORD: &str = "x11-test";

fn start_node(dir: &Path, display: &str, extra_source: &str) -> NodeProcess {
    let config = format!(
        r#"data_dir = "{}"
quic_listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
admin_token = "{TOKEN}"
[source]
kind = "x11"
display = "{display}"
{extra_source}
[session]
control_policy = "grant-all"
[invitation]
password = "{PASSWORD}"
"#,
        dir.join("data").display()
    );
    NodeProcess::start(dir, &config)
}

fn view_args<'a>(node: &'a NodeProcess, name: &'a str) -> Vec<&'a str> {
    vec![
        &node.ticket,
        "--name",
        name,
        "--password",
        PASSWORD,
        "--headless",
    ]
}

fn api(node: &NodeProcess, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    node.api(TOKEN, method, path, body)
}

fn metrics(node: &NodeProcess) -> String {
    let (status, body) = http_get(&format!("{}/metrics", node.admin_url));
    assert_eq!(status, 200);
    body
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn crop(frame: &Frame, (x, y, w, h): (i64, i64, u32, u32)) -> Frame {
    frame.crop(tandem_codec::Rect::new(x as u32, y as u32, w, h))
}

/// Bounding box of the pixels that differ, with one sample (seen, expected).
fn diff_box(a: &Frame, b: &Frame) -> Option<(u32, u32, u32, u32, u32, u32)> {
    let mut bbox: Option<(u32, u32, u32, u32, u32, u32)> = None;
    for y in 0..a.height() {
        for x in 0..a.width() {
            if a.get(x, y) != b.get(x, y) {
                let (x0, y0, x1, y1, _, _) = bbox.unwrap_or((x, y, x, y, a.get(x, y), b.get(x, y)));
                bbox = Some((
                    x0.min(x),
                    y0.min(y),
                    x1.max(x),
                    y1.max(y),
                    a.get(x, y),
                    b.get(x, y),
                ));
            }
        }
    }
    bbox
}

#[test]
fn a_viewer_sees_the_display_bit_for_bit_once_it_is_still() {
    let dir = tempfile::tempdir().unwrap();
    let mut x = XServer::start(1024, 768);
    x.spawn(
        "xterm",
        &[
            "-geometry",
            "80x24+30+40",
            "-e",
            "sh",
            "-c",
            "ls -la /usr/bin | head -20; echo tandem lossless check; exec sleep 600",
        ],
    );
    x.spawn("xclock", &["-geometry", "160x160+700+60"]);
    let xterm = x.wait_window("xterm");
    x.wait_window("xclock");
    let node = start_node(dir.path(), x.display(), "");
    let snapshot = dir.path().join("view.png");

    for attempt in 1..=3 {
        let mut args = view_args(&node, "lossless");
        let png = snapshot.to_str().unwrap();
        args.extend(["--seconds", "7", "--snapshot", png]);
        let viewer = spawn_view(&args);
        // Changes while the viewer watches: damage-driven updates, not just
        // the key frame, must add up to the display's content.
        std::thread::sleep(Duration::from_millis(1500));
        x.xdotool(&["windowmove", &xterm.to_string(), "120", "200"]);
        // Without a window manager, focus follows the pointer.
        x.xdotool(&["mousemove", "300", "300"]);
        x.xdotool(&["type", "--delay", "30", "typed while shared"]);
        let still = x.still_screen();
        let out = viewer.wait_with_output().unwrap();
        assert!(out.status.success(), "viewer failed: {}", text(&out));
        let after = x.xwd_root();
        if still != after {
            // The display changed after it looked still (the clock ticked):
            // the snapshot may legitimately differ; try again.
            eprintln!("attempt {attempt}: the display changed during the check; again");
            continue;
        }
        let seen = read_png(&snapshot);
        assert_eq!(
            differing_pixels(&seen, &after),
            0,
            "the viewer's frame differs from the display's"
        );
        let s = summary(&String::from_utf8_lossy(&out.stdout));
        assert!(
            s.updates > 1,
            "the changes arrived as updates after the key frame: {s:?}"
        );
        return;
    }
    panic!("the display never stayed still for a whole check");
}

#[test]
fn an_interactive_attendee_types_into_xterm_and_a_viewing_one_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let mut x = XServer::start(800, 600);
    x.spawn("xterm", &["-geometry", "80x24+0+0", "-e", "sh"]);
    let xterm = x.wait_window("xterm");
    x.xdotool(&["mousemove", "200", "150"]);
    x.xdotool(&["windowfocus", "--sync", &xterm.to_string()]);
    let node = start_node(dir.path(), x.display(), "");

    // A viewing attendee's keys are refused and change nothing.
    let refused = dir.path().join("refused.txt");
    let command = format!("echo tandem-bad > {}\n", refused.display());
    let mut args = view_args(&node, "watcher");
    args.extend(["--seconds", "3", "--send-text", &command]);
    let out = view(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("input ignored"),
        "the viewing attendee was told its input was ignored: {}",
        text(&out)
    );
    let dropped = metrics(&node)
        .lines()
        .find(|l| l.starts_with("tandem_input_events_total{result=\"dropped\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(dropped >= 1.0, "dropped input is counted");

    // An interactive attendee types a command; the shell runs it.
    let typed = dir.path().join("typed.txt");
    let command = format!("echo tandem-ok > {}\n", typed.display());
    let mut args = view_args(&node, "typist");
    args.extend(["--seconds", "4", "--request-control", "--type", &command]);
    let out = view(&args);
    assert!(out.status.success(), "{}", text(&out));
    wait_for("the typed command's file", Duration::from_secs(20), || {
        std::fs::read_to_string(&typed).is_ok_and(|t| t == "tandem-ok\n")
    });
    // By now the refused command would long have run had it been typed.
    assert!(
        !refused.exists(),
        "input from an attendee at view level reached the display"
    );
}

#[test]
fn pointer_moves_reach_the_viewer_without_tile_updates() {
    let dir = tempfile::tempdir().unwrap();
    let mut x = XServer::start(640, 480);
    x.spawn("xterm", &["-geometry", "40x10+10+10"]);
    x.wait_window("xterm");
    x.xdotool(&["mousemove", "500", "400"]);
    let node = start_node(dir.path(), x.display(), "");
    x.still_screen();

    let mut args = view_args(&node, "pointer");
    args.extend(["--seconds", "6"]);
    let viewer = spawn_view(&args);
    std::thread::sleep(Duration::from_millis(2000));
    let published = metric(&metrics(&node), "tandem_updates_published_total");
    // Moves over the bare root window: no window draws anything.
    for (px, py) in [(450, 300), (400, 350), (350, 380), (333, 444)] {
        x.xdotool(&["mousemove", &px.to_string(), &py.to_string()]);
        std::thread::sleep(Duration::from_millis(150));
    }
    let out = viewer.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout.contains("cursor at 333,444 shown"),
        "the viewer's pointer followed the display's: {stdout}"
    );
    let moves: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("cursor at 333,444 shown after "))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .expect("move count");
    assert!(moves >= 4, "every move was sent: {moves}");
    assert_eq!(
        metric(&metrics(&node), "tandem_updates_published_total"),
        published,
        "pointer moves cost no graphics update"
    );
    // The viewer ends on the last update published before the moves (its
    // sequence number is the count published: one encoder, from 1); how
    // many updates it took to get there depends on when it joined (a
    // catch-up, or a catch-up and an update the display drew meanwhile).
    assert_eq!(
        summary(&stdout).last_seq as f64,
        published,
        "the viewer's picture is the last one published before the moves: {stdout}"
    );
}

#[test]
fn an_idle_display_costs_no_grabs_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut x = XServer::start(1024, 768);
    x.spawn("xterm", &["-geometry", "80x24+40+40"]);
    x.wait_window("xterm");
    let node = start_node(dir.path(), x.display(), "");
    x.still_screen();
    let mut args = view_args(&node, "idle");
    args.extend(["--seconds", "6"]);
    let viewer = spawn_view(&args);
    std::thread::sleep(Duration::from_millis(2000));

    let before = metrics(&node);
    std::thread::sleep(Duration::from_secs(3));
    let after = metrics(&node);
    let delta = |name: &str| metric(&after, name) - metric(&before, name);
    assert_eq!(
        delta("tandem_frames_captured_total"),
        0.0,
        "no grab while idle"
    );
    assert_eq!(delta("tandem_updates_published_total"), 0.0);
    assert_eq!(
        delta("tandem_bytes_sent_total"),
        0.0,
        "nothing sent while idle"
    );
    // The capture loop did not poll every frame interval (3 s at 33 ms
    // would be about 90 ticks): it slept on the display's socket, waking
    // only to check the pointer (twice a second) and finding nothing.
    let idle_ticks = delta("tandem_capture_idle_ticks_total");
    let sleeps = delta("tandem_capture_sleeps_total");
    assert!(
        (2.0..30.0).contains(&idle_ticks) && sleeps >= 2.0,
        "idle ticks {idle_ticks}, sleeps {sleeps} in 3 s"
    );
    let out = viewer.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));

    // A change wakes the sleeping loop.
    let before = metrics(&node);
    x.xdotool(&["mousemove", "100", "100"]);
    x.xdotool(&["type", "--delay", "20", "wake"]);
    wait_for("a grab after a change", Duration::from_secs(10), || {
        metric(&metrics(&node), "tandem_frames_captured_total")
            > metric(&before, "tandem_frames_captured_total")
    });

    // Keys typed slower than the frame interval: each is grabbed, and the
    // loop goes back to waiting on the display after the grab instead of
    // ticking on until an idle tick (which cost one idle tick per key).
    x.still_screen();
    let before = metrics(&node);
    let keys = 12;
    for _ in 0..keys {
        x.xdotool(&["key", "x"]);
        std::thread::sleep(Duration::from_millis(150));
    }
    x.still_screen();
    let after = metrics(&node);
    let delta = |name: &str| metric(&after, name) - metric(&before, name);
    let grabs = delta("tandem_frames_captured_total");
    let idle_ticks = delta("tandem_capture_idle_ticks_total");
    assert!(grabs >= f64::from(keys), "{grabs} grabs for {keys} keys");
    assert!(
        idle_ticks < f64::from(keys) / 2.0,
        "{idle_ticks} idle ticks for {keys} keys"
    );
}

#[test]
fn a_window_filter_leaves_other_windows_out_of_every_frame() {
    let dir = tempfile::tempdir().unwrap();
    let mut x = XServer::start(800, 600);
    x.spawn(
        "xterm",
        &[
            "-name",
            "keepme",
            "-geometry",
            "40x10+10+10",
            "-e",
            "sh",
            "-c",
            "echo shared window; exec sleep 600",
        ],
    );
    x.spawn(
        "xterm",
        &[
            "-name",
            "hideme",
            "-geometry",
            "40x10+400+300",
            "-e",
            "sh",
            "-c",
            "echo secret window; exec sleep 600",
        ],
    );
    let keep = x.wait_window("keepme");
    let hide = x.wait_window("hideme");
    let node = start_node(
        dir.path(),
        x.display(),
        "filter = { classes = [\"keepme\"] }",
    );
    let snapshot = dir.path().join("filtered.png");
    let png = snapshot.to_str().unwrap().to_owned();
    let look = |name: &str| -> Frame {
        let mut args = view_args(&node, name);
        args.extend(["--seconds", "2", "--snapshot", &png]);
        let out = view(&args);
        assert!(out.status.success(), "{}", text(&out));
        read_png(&snapshot)
    };
    let all_background = |f: &Frame| f.pixels().iter().all(|&p| p == FILTER_BACKGROUND);

    let screen = x.still_screen();
    let seen = look("filtered-1");
    let keep_rect = x.window_rect(keep);
    let hide_rect = x.window_rect(hide);
    assert_eq!(
        differing_pixels(&crop(&seen, keep_rect), &crop(&screen, keep_rect)),
        0,
        "the shared window is sent as it is: {keep_rect:?} differs in {:?}",
        diff_box(&crop(&seen, keep_rect), &crop(&screen, keep_rect))
    );
    assert!(
        all_background(&crop(&seen, hide_rect)),
        "the other window is left out"
    );
    assert!(
        !all_background(&crop(&screen, hide_rect)),
        "(the hidden window does show on the display)"
    );
    assert!(
        all_background(&crop(&seen, (600, 20, 100, 100))),
        "so is the root window"
    );

    // Live: a new window of the shared application shows up; the hidden
    // one, moved over the shared one, hides what it covers.
    x.spawn(
        "xterm",
        &[
            "-name",
            "keepme",
            "-geometry",
            "20x5+500+20",
            "-e",
            "sh",
            "-c",
            "echo second; exec sleep 600",
        ],
    );
    wait_for("the new window's event", Duration::from_secs(20), || {
        node.log().contains("window_opened")
    });
    x.xdotool(&["windowmove", &hide.to_string(), "40", "40"]);
    x.xdotool(&["windowraise", &hide.to_string()]);
    let screen = x.still_screen();
    let seen = look("filtered-2");
    let hide_rect = x.window_rect(hide);
    assert!(
        all_background(&crop(&seen, hide_rect)),
        "the hidden window stays hidden where it moved, even over a shared one"
    );
    let second = x
        .run(
            "xdotool",
            &["search", "--onlyvisible", "--classname", "keepme"],
        )
        .stdout;
    let second: Vec<u32> = String::from_utf8_lossy(&second)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .filter(|&id| id != keep)
        .collect();
    let second_rect = x.window_rect(second[0]);
    assert_eq!(
        differing_pixels(&crop(&seen, second_rect), &crop(&screen, second_rect)),
        0,
        "a new window of the shared application is shared"
    );

    // The admin API lists the windows and changes the filter at run time.
    let session = node.session_id();
    let (status, windows) = api(
        &node,
        "GET",
        &format!("/api/v1/sessions/{session}/windows"),
        None,
    );
    assert_eq!(status, 200, "{windows}");
    let windows: serde_json::Value = serde_json::from_str(&windows).unwrap();
    let shared_of = |instance: &str| -> Vec<bool> {
        windows
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["instance"] == instance)
            .map(|w| w["shared"].as_bool().unwrap())
            .collect()
    };
    assert_eq!(shared_of("keepme"), vec![true, true]);
    assert_eq!(shared_of("hideme"), vec![false]);
    let (status, body) = api(
        &node,
        "PUT",
        &format!("/api/v1/sessions/{session}/filter"),
        Some(r#"{"classes": ["hideme"]}"#),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = api(
        &node,
        "PUT",
        &format!("/api/v1/sessions/{session}/filter"),
        Some(r#"{"classes": []}"#),
    );
    assert_eq!(status, 422, "an empty filter is refused: {body}");
    let screen = x.still_screen();
    let seen = look("filtered-3");
    assert_eq!(
        differing_pixels(&crop(&seen, hide_rect), &crop(&screen, hide_rect)),
        0,
        "the newly shared window is sent"
    );
    assert!(
        all_background(&crop(&seen, second_rect)),
        "the windows no longer shared are left out"
    );
}

#[test]
fn a_resized_screen_is_followed_and_a_monitor_can_be_shared() {
    let dir = tempfile::tempdir().unwrap();
    let mut x = XServer::start_xorg_dummy();
    x.spawn(
        "xterm",
        &[
            "-geometry",
            "60x20+700+500",
            "-e",
            "sh",
            "-c",
            "ls /; exec sleep 600",
        ],
    );
    x.wait_window("xterm");
    let node = start_node(dir.path(), x.display(), "");
    let snapshot = dir.path().join("resized.png");
    let png = snapshot.to_str().unwrap().to_owned();

    let mut args = view_args(&node, "resize");
    args.extend(["--seconds", "6", "--snapshot", &png]);
    let viewer = spawn_view(&args);
    std::thread::sleep(Duration::from_millis(1500));
    let out = x.run("xrandr", &["-s", "800x600"]);
    assert!(out.status.success(), "xrandr: {}", text(&out));
    let screen = x.still_screen();
    assert_eq!((screen.width(), screen.height()), (800, 600));
    let out = viewer.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout.contains("shared area is now 800x600"),
        "attendees are told the new size: {stdout}"
    );
    let seen = read_png(&snapshot);
    assert_eq!(
        differing_pixels(&seen, &x.xwd_root()),
        0,
        "and get its pixels"
    );

    // A RandR monitor, named by the admin API, becomes the shared rectangle.
    let out = x.run(
        "xrandr",
        &[
            "--setmonitor",
            "right-half",
            "400/100x600/150+400+0",
            "none",
        ],
    );
    assert!(out.status.success(), "xrandr: {}", text(&out));
    let session = node.session_id();
    let (status, monitors) = api(
        &node,
        "GET",
        &format!("/api/v1/sessions/{session}/monitors"),
        None,
    );
    assert_eq!(status, 200, "{monitors}");
    assert!(monitors.contains("\"right-half\""), "{monitors}");
    let (status, body) = api(
        &node,
        "PUT",
        &format!("/api/v1/sessions/{session}/shared-rect"),
        Some(r#"{"monitor": "right-half"}"#),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("[400,0,400,600]"), "{body}");
    let mut args = view_args(&node, "monitor");
    args.extend(["--seconds", "2", "--snapshot", &png]);
    let out = view(&args);
    assert!(out.status.success(), "{}", text(&out));
    let screen = x.still_screen();
    assert_eq!(
        read_png(&snapshot),
        screen.crop(tandem_codec::Rect::new(400, 0, 400, 600)),
        "the monitor's area is what is shared"
    );
    // The admin frame-buffer snapshot shows the same.
    let (status, png) = http_request_bytes(
        "GET",
        &format!(
            "{}/api/v1/sessions/{session}/framebuffer.png",
            node.admin_url
        ),
        Some(TOKEN),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(
        decode_png(&png),
        screen.crop(tandem_codec::Rect::new(400, 0, 400, 600)),
        "the frame-buffer snapshot is the shared area"
    );
}
