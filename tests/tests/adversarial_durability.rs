//! Durability as promised, tried as a crash would: the sharer narrows what
//! is shared (shared rectangle, pause, window filter), the admin API
//! answers 2xx, and the node is killed with SIGKILL at once. Restarted on
//! the same data directory, it shares no more than the sharer last chose:
//! the API shows the same state, an attendee is told the graphics are
//! paused and gets no picture, and once resumed gets only the rectangle,
//! with the filtered-out window left out. Also: closing sessions ends
//! their capture threads (per-session arbiters).

use std::path::Path;
use std::time::{Duration, Instant};

use tandem_capture::FILTER_BACKGROUND;
use tandem_tests::xserver::XServer;
use tandem_tests::{read_png, summary, text, view, NodeProcess};

const TOKEN: &str = "durability-test-token-0123456789";
const PASSWORD: &str = "durability-pw";

fn config(dir: &Path, source: &str) -> String {
    format!(
        r#"data_dir = "{}"
quic_listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
admin_token = "{TOKEN}"
[source]
{source}
[invitation]
password = "{PASSWORD}"
"#,
        dir.join("data").display()
    )
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn a_crash_right_after_narrowing_the_share_restarts_no_wider() {
    let dir = tempfile::tempdir().unwrap();
    let mut x = XServer::start(800, 600);
    for (name, at, line) in [
        ("keepme", "+10+10", "shared window"),
        ("hideme", "+300+200", "secret window"),
    ] {
        x.spawn(
            "xterm",
            &[
                "-name",
                name,
                "-geometry",
                &format!("40x10{at}"),
                "-e",
                "sh",
                "-c",
                &format!("echo {line}; exec sleep 600"),
            ],
        );
    }
    x.wait_window("keepme");
    let hide = x.wait_window("hideme");
    let source = format!("kind = \"x11\"\ndisplay = \"{}\"", x.display());
    let node = NodeProcess::start(dir.path(), &config(dir.path(), &source));
    let session = node.session_id();
    let api = |node: &NodeProcess, method: &str, path: &str, body: Option<&str>| {
        node.api(
            TOKEN,
            method,
            &format!("/api/v1/sessions/{session}{path}"),
            body,
        )
    };

    let (status, body) = api(
        &node,
        "PUT",
        "/shared-rect",
        Some(r#"{"x": 0, "y": 0, "width": 640, "height": 480}"#),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = api(&node, "POST", "/pause", None);
    assert!((200..300).contains(&status), "{status} {body}");
    let (status, body) = api(&node, "PUT", "/filter", Some(r#"{"classes": ["keepme"]}"#));
    assert_eq!(status, 200, "{body}");
    node.kill9();

    let node = NodeProcess::start(dir.path(), &config(dir.path(), &source));
    assert_eq!(node.session_id(), session, "the same session is reopened");
    let (status, body) = node.api(TOKEN, "GET", "/api/v1/sessions", None);
    assert_eq!(status, 200, "{body}");
    let sessions = json(&body);
    let info = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == session.as_str())
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(info["state"], "paused", "{body}");
    assert_eq!(
        info["shared_rect"],
        serde_json::json!([0, 0, 640, 480]),
        "{body}"
    );
    let (status, body) = api(&node, "GET", "/filter", None);
    assert_eq!(status, 200, "the filter survived: {body}");
    assert_eq!(json(&body)["classes"], serde_json::json!(["keepme"]));

    // An attendee is told the graphics are paused, and gets no picture.
    let watch = |seconds: &str, snapshot: Option<&Path>| {
        let mut args = vec![
            node.ticket.as_str(),
            "--password",
            PASSWORD,
            "--headless",
            "--seconds",
            seconds,
        ];
        let png;
        if let Some(p) = snapshot {
            png = p.to_str().unwrap().to_owned();
            args.extend(["--snapshot", png.as_str()]);
        }
        let out = view(&args);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let paused = watch("3", None);
    assert!(
        paused.contains("(640x480, control level") && paused.contains("graphics paused"),
        "{paused}"
    );
    assert_eq!(summary(&paused).updates, 0, "{paused}");

    // Resumed: the rectangle only, the other window left out.
    let (status, body) = api(&node, "POST", "/resume", None);
    assert!((200..300).contains(&status), "{status} {body}");
    let snapshot = dir.path().join("after-restart.png");
    let seen = watch("3", Some(&snapshot));
    assert!(summary(&seen).updates >= 1, "{seen}");
    let picture = read_png(&snapshot);
    assert_eq!((picture.width(), picture.height()), (640, 480));
    let (hx, hy, hw, hh) = x.window_rect(hide);
    let hidden = picture.crop(tandem_codec::Rect::new(
        hx as u32,
        hy as u32,
        hw.min(640 - hx as u32),
        hh.min(480 - hy as u32),
    ));
    assert!(
        hidden.pixels().iter().all(|&p| p == FILTER_BACKGROUND),
        "the filtered-out window is left out after the restart"
    );
}

fn threads(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn closed_sessions_leave_no_capture_threads_behind() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(
        dir.path(),
        &config(dir.path(), "kind = \"synthetic\"\nwidth = 64\nheight = 48"),
    );
    let open_close = |seed: u32| {
        let body =
            format!(r#"{{"source": "synthetic", "width": 32, "height": 24, "seed": {seed}}}"#);
        let (status, body) = node.api(TOKEN, "POST", "/api/v1/sessions", Some(&body));
        assert_eq!(status, 201, "{body}");
        let id = json(&body)["id"].as_str().unwrap().to_owned();
        let (status, body) = node.api(TOKEN, "DELETE", &format!("/api/v1/sessions/{id}"), None);
        assert!((200..300).contains(&status), "{status} {body}");
    };
    // One round first, so lazily started pools are counted in the baseline.
    open_close(1000);
    std::thread::sleep(Duration::from_secs(1));
    let before = threads(node.pid());
    for seed in 0..20 {
        open_close(seed);
    }
    // Threads end shortly after their session.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut after = threads(node.pid());
    while after > before + 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        after = threads(node.pid());
    }
    println!("node threads: {before} before, {after} after opening and closing 20 sessions");
    assert!(
        after <= before + 2,
        "20 closed sessions left {} threads behind",
        after - before
    );
}
