//! Motion on a real X11 desktop: a terminal scrolling and a window dragged
//! on Xvfb reach attendees as copy-rect records (the node's copy-rect
//! counters move), and every attendee's picture — one watching, one that
//! stalls and gets catch-ups, one that joins afterwards and gets a key
//! frame — still equals `xwd` of the display bit for bit.

use std::path::Path;
use std::time::{Duration, Instant};

use tandem_tests::xserver::XServer;
use tandem_tests::{differing_pixels, http_get, metric, read_png, spawn_view, text, NodeProcess};

const TOKEN: &str = "x11-motion-test-token-0123456789";
const PASSWORD: &str = "motion-test";

fn start_node(dir: &Path, display: &str) -> NodeProcess {
    let config = format!(
        r#"data_dir = "{}"
quic_listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
admin_token = "{TOKEN}"
[source]
kind = "x11"
display = "{display}"
[invitation]
password = "{PASSWORD}"
"#,
        dir.join("data").display()
    );
    NodeProcess::start(dir, &config)
}

fn counter(node: &NodeProcess, name: &str) -> f64 {
    let (status, body) = http_get(&format!("{}/metrics", node.admin_url));
    assert_eq!(status, 200);
    metric(&body, name)
}

/// Attendees connected now (the admin API lists live ones by default).
fn live_attendees(node: &NodeProcess) -> usize {
    let (status, body) = node.api(TOKEN, "GET", "/api/v1/attendees", None);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<serde_json::Value>(&body)
        .unwrap()
        .as_array()
        .map_or(0, Vec::len)
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A headless attendee that watches for `seconds` and leaves its last
/// frame in `png`; `extra` adds options.
fn viewer(
    node: &NodeProcess,
    name: &str,
    seconds: &str,
    png: &Path,
    extra: &[&str],
) -> std::process::Child {
    let mut args = vec![
        node.ticket.as_str(),
        "--name",
        name,
        "--password",
        PASSWORD,
        "--headless",
        "--seconds",
        seconds,
        "--snapshot",
        png.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    spawn_view(&args)
}

fn finish(child: std::process::Child, what: &str) {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{what} failed: {}", text(&out));
}

#[test]
fn a_scrolling_terminal_is_sent_as_copy_rects_and_stays_exact() {
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let mut x = XServer::start(1024, 768);
    // Lines are printed only once the attendee watches, each one scrolling
    // the whole terminal by a line.
    let script = format!(
        "while [ ! -e {} ]; do sleep 0.1; done; i=0; while [ $i -lt 120 ]; do i=$((i+1)); \
         echo \"line $i: the quick brown fox jumps over the lazy dog $((i * 7919))\"; sleep 0.04; done; \
         exec sleep 600",
        go.display()
    );
    x.spawn(
        "xterm",
        &["-geometry", "100x30+40+30", "-e", "sh", "-c", &script],
    );
    x.wait_window("xterm");
    let node = start_node(dir.path(), x.display());
    let png = dir.path().join("scroll.png");
    let watching = viewer(&node, "scroll", "25", &png, &[]);
    wait_for("the attendee to join", Duration::from_secs(20), || {
        live_attendees(&node) >= 1
    });
    std::thread::sleep(Duration::from_millis(500));
    let before = counter(&node, "tandem_copy_rects_total");
    std::fs::write(&go, b"").unwrap();
    wait_for(
        "scrolls sent as copy-rects",
        Duration::from_secs(20),
        || counter(&node, "tandem_copy_rects_total") >= before + 20.0,
    );
    let screen = x.still_screen();
    finish(watching, "the scroll attendee");
    assert!(
        counter(&node, "tandem_moved_pixels_total") > 20.0 * 600.0 * 300.0,
        "whole terminal bands were moved, not a few pixels"
    );
    assert_eq!(x.xwd_root(), screen, "the display stayed still");
    assert_eq!(
        differing_pixels(&read_png(&png), &screen),
        0,
        "the attendee's picture after scrolling differs from the display"
    );
}

#[test]
fn a_dragged_window_is_sent_as_copy_rects_and_every_attendee_stays_exact() {
    let dir = tempfile::tempdir().unwrap();
    let mut x = XServer::start(1024, 768);
    x.spawn(
        "xterm",
        &[
            "-geometry",
            "80x24+20+20",
            "-e",
            "sh",
            "-c",
            "ls -la /usr/bin | head -22; exec sleep 600",
        ],
    );
    let xterm = x.wait_window("xterm");
    let node = start_node(dir.path(), x.display());
    let (watched, stalled, late) = (
        dir.path().join("watched.png"),
        dir.path().join("stalled.png"),
        dir.path().join("late.png"),
    );
    let watching = viewer(&node, "watching", "20", &watched, &[]);
    // Stops reading for a while after its third update: it gets a catch-up
    // spanning several moves.
    let stalling = viewer(
        &node,
        "stalling",
        "20",
        &stalled,
        &["--stall-after", "3", "--stall-seconds", "3"],
    );
    wait_for("both attendees to join", Duration::from_secs(20), || {
        live_attendees(&node) >= 2
    });
    std::thread::sleep(Duration::from_millis(500));
    let before = counter(&node, "tandem_copy_rects_total");
    for step in 1..=20 {
        let (px, py) = (20 + 12 * step, 20 + 3 * step);
        x.xdotool(&[
            "windowmove",
            &xterm.to_string(),
            &px.to_string(),
            &py.to_string(),
        ]);
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_for("moves sent as copy-rects", Duration::from_secs(20), || {
        counter(&node, "tandem_copy_rects_total") >= before + 5.0
    });
    let screen = x.still_screen();
    let joining = viewer(&node, "late", "4", &late, &[]);
    finish(joining, "the late attendee");
    finish(watching, "the watching attendee");
    finish(stalling, "the stalling attendee");
    assert_eq!(x.xwd_root(), screen, "the display stayed still");
    for (png, who) in [
        (&watched, "watching"),
        (&stalled, "stalled"),
        (&late, "late"),
    ] {
        assert_eq!(
            differing_pixels(&read_png(png), &screen),
            0,
            "the {who} attendee's picture differs from the display"
        );
    }
}
