//! The application filter as applications (issue 19): a private Xvfb with
//! xterms of two `-class`es, a `tandem node --source x11` process, its
//! admin API and CLI, and `tandem view` snapshots. Applications are listed
//! with their windows, shared and unshared by id, and a new window of a
//! shared application is shared without anyone asking.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;
use tandem_capture::FILTER_BACKGROUND;
use tandem_codec::Frame;
use tandem_tests::xserver::XServer;
use tandem_tests::{differing_pixels, read_png, tandem, text, view, NodeProcess};

const TOKEN: &str = "api-applications-token-0123456789";
const PASSWORD: &str = "api-apps";

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

fn cli(node: &NodeProcess, args: &[&str]) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--admin", &node.admin_url, "--token", TOKEN]);
    tandem(&all)
}

fn ok(node: &NodeProcess, args: &[&str]) -> String {
    let out = cli(node, args);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fails with exit status 1 and the API's `status` in its one line.
fn refused(node: &NodeProcess, args: &[&str], status: &str) -> String {
    let out = cli(node, args);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    assert!(err.contains(status), "{args:?}: {err}");
    err
}

fn applications(node: &NodeProcess, session: &str) -> Value {
    let out = ok(node, &["sessions", "applications", session, "--json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn app<'a>(apps: &'a Value, id: &str) -> &'a Value {
    apps.as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {apps}"))
}

fn crop(frame: &Frame, (x, y, w, h): (i64, i64, u32, u32)) -> Frame {
    frame.crop(tandem_codec::Rect::new(x as u32, y as u32, w, h))
}

fn xterm(x: &mut XServer, name: &str, class: &str, geometry: &str) -> u32 {
    let text = format!("echo {name}; exec sleep 600");
    x.spawn(
        "xterm",
        &[
            "-name",
            name,
            "-class",
            class,
            "-geometry",
            geometry,
            "-e",
            "sh",
            "-c",
            &text,
        ],
    );
    x.wait_window(name)
}

#[test]
fn applications_are_listed_shared_and_unshared_and_new_windows_follow() {
    let dir = tempfile::tempdir().unwrap();
    let mut x = XServer::start(800, 600);
    let alpha = xterm(&mut x, "alpha", "Alpha", "40x10+10+10");
    let beta = xterm(&mut x, "beta", "Beta", "40x10+400+300");
    let node = start_node(dir.path(), x.display());
    let session = node.session_id();

    // Listed with their windows; with no filter everything is shared.
    let apps = applications(&node, &session);
    for id in ["class:Alpha", "class:Beta"] {
        let a = app(&apps, id);
        assert_eq!(a["shared"], true, "{a}");
        assert_eq!(a["windows"].as_array().unwrap().len(), 1, "{a}");
        assert_eq!(a["windows"][0]["class"], &id[6..], "{a}");
    }
    refused(
        &node,
        &["sessions", "unshare-app", &session, "class:Alpha"],
        "409",
    );
    refused(
        &node,
        &["sessions", "share-app", &session, "class:Nope"],
        "404",
    );

    // Only Alpha.
    let line = ok(&node, &["sessions", "share-app", &session, "class:Alpha"]);
    assert_eq!(
        line.trim(),
        format!("session {session} shares application class:Alpha")
    );
    let apps = applications(&node, &session);
    assert_eq!(app(&apps, "class:Alpha")["shared"], true, "{apps}");
    assert_eq!(app(&apps, "class:Beta")["shared"], false, "{apps}");

    // A new window of the shared application is shared at once.
    let second = xterm(&mut x, "alpha2", "Alpha", "20x5+500+20");
    let mut apps = Value::Null;
    let deadline = Instant::now() + Duration::from_secs(20);
    while apps.is_null()
        || app(&apps, "class:Alpha")["windows"]
            .as_array()
            .unwrap()
            .len()
            < 2
    {
        assert!(
            Instant::now() < deadline,
            "the second window never listed: {apps}"
        );
        std::thread::sleep(Duration::from_millis(100));
        apps = applications(&node, &session);
    }
    let a = app(&apps, "class:Alpha");
    assert_eq!(a["shared"], true, "{a}");
    assert!(
        a["windows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["shared"] == true),
        "{a}"
    );
    let table = ok(&node, &["sessions", "applications", &session]);
    let row = table
        .lines()
        .find(|l| l.starts_with("class:Alpha"))
        .unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!((cells[2], cells[3]), ("2", "yes"), "{table}");

    // What an attendee sees: both Alpha windows as they are, Beta left out.
    let snapshot = dir.path().join("apps.png");
    let png = snapshot.to_str().unwrap().to_owned();
    let look = |name: &str| -> Frame {
        let out = view(&[
            &node.ticket,
            "--name",
            name,
            "--password",
            PASSWORD,
            "--headless",
            "--seconds",
            "2",
            "--snapshot",
            &png,
        ]);
        assert!(out.status.success(), "{}", text(&out));
        read_png(&snapshot)
    };
    let hidden = |f: &Frame| f.pixels().iter().all(|&p| p == FILTER_BACKGROUND);
    let screen = x.still_screen();
    let seen = look("apps-1");
    for w in [alpha, second] {
        let r = x.window_rect(w);
        assert_eq!(
            differing_pixels(&crop(&seen, r), &crop(&screen, r)),
            0,
            "window {w} of the shared application at {r:?}"
        );
    }
    assert!(
        hidden(&crop(&seen, x.window_rect(beta))),
        "Beta is left out"
    );

    // Swap: Beta in, Alpha out (its new window too); the last one stays.
    ok(&node, &["sessions", "share-app", &session, "class:Beta"]);
    let out = ok(
        &node,
        &["sessions", "unshare-app", &session, "class:Alpha", "--json"],
    );
    let filter: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(filter["classes"], serde_json::json!(["Beta"]), "{filter}");
    let screen = x.still_screen();
    let seen = look("apps-2");
    let r = x.window_rect(beta);
    assert_eq!(differing_pixels(&crop(&seen, r), &crop(&screen, r)), 0);
    for w in [alpha, second] {
        assert!(
            hidden(&crop(&seen, x.window_rect(w))),
            "window {w} left out"
        );
    }
    let err = refused(
        &node,
        &["sessions", "unshare-app", &session, "class:Beta"],
        "409",
    );
    assert!(err.contains("last application"), "{err}");
}
