//! Errors are events: a node sharing a real Xvfb whose X server is killed
//! under it reports `capture_failed` then `source_lost` on the event stream
//! and in `tandem_errors_total{code}`, and keeps serving what it can: the
//! admin API, the last picture to a new attendee, other sessions. A node
//! whose data directory fills up (a tmpfs of the test's own) reports
//! `registry_write_failed`, fails the write it could not store, and keeps
//! answering.

use std::process::Command;
use std::time::Duration;

use tandem_tests::channel_viewer::SseReader;
use tandem_tests::xserver::XServer;
use tandem_tests::{http_get, summary, tandem, text, view, NodeProcess};

const TOKEN: &str = "errors-test-token-0123456789";
const PASSWORD: &str = "errors-pw";

/// The sample of `tandem_errors_total{code="CODE"}`.
fn errors_total(node: &NodeProcess, code: &str) -> f64 {
    let (status, body) = http_get(&format!("{}/metrics", node.admin_url));
    assert_eq!(status, 200);
    let prefix = format!("tandem_errors_total{{code=\"{code}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {prefix:?} sample in /metrics"))
}

#[test]
fn a_killed_x_server_is_a_source_lost_event_and_the_node_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut x = XServer::start(320, 240);
    x.spawn("xterm", &["-geometry", "30x8+10+10"]);
    x.wait_window("xterm");
    let config = format!(
        r#"data_dir = "{}"
quic_listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
admin_token = "{TOKEN}"
[source]
kind = "x11"
display = "{}"
[invitation]
password = "{PASSWORD}"
"#,
        dir.path().join("data").display(),
        x.display()
    );
    let node = NodeProcess::start(dir.path(), &config);
    let session = node.session_id();
    for code in [
        "capture_failed",
        "source_lost",
        "encoder_failed",
        "registry_write_failed",
    ] {
        assert_eq!(
            errors_total(&node, code),
            0.0,
            "{code} before anything failed"
        );
    }
    // A first attendee sees the desktop.
    let out = view(&[
        &node.ticket,
        "--name",
        "before",
        "--password",
        PASSWORD,
        "--headless",
        "--frames",
        "1",
    ]);
    assert!(out.status.success(), "{}", text(&out));

    // The CLI's window filter on a real X display (the synthetic desktop
    // has no windows): set, shown, removed.
    let cli = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--admin", &node.admin_url, "--token", TOKEN]);
        let out = tandem(&all);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let set = cli(&["sessions", "filter", &session, "--class", "XTerm"]);
    assert!(set.contains("classes XTerm"), "{set}");
    let shown = cli(&["sessions", "filter", &session, "--json"]);
    assert!(shown.contains("\"XTerm\""), "{shown}");
    cli(&["sessions", "filter", &session, "--clear"]);

    let events = SseReader::open(
        &format!("{}/api/v1/events?history=0", node.admin_url),
        TOKEN,
    );
    // Let the stream attach before the failure.
    std::thread::sleep(Duration::from_millis(300));
    let killed = Command::new("kill")
        .args(["-KILL", &x.server_pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    let failed = events.wait(Duration::from_secs(20), |e| {
        e["kind"] == "error" && e["code"] == "capture_failed"
    });
    assert_eq!(failed["session"], session.as_str(), "{failed}");
    let lost = events.wait(Duration::from_secs(20), |e| {
        e["kind"] == "error" && e["code"] == "source_lost"
    });
    assert_eq!(lost["session"], session.as_str(), "{lost}");
    assert!(lost["message"].as_str().unwrap().contains("lost"), "{lost}");
    assert!(
        lost["seq"].as_u64().unwrap() > 0,
        "stored in the event log: {lost}"
    );
    // Once each: a dead source does not flood the stream.
    std::thread::sleep(Duration::from_secs(1));
    let errors: Vec<_> = events
        .all()
        .into_iter()
        .filter(|e| e["kind"] == "error")
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors_total(&node, "capture_failed"), 1.0);
    assert_eq!(errors_total(&node, "source_lost"), 1.0);

    // The node keeps serving: health, the admin API...
    let (status, _) = http_get(&format!("{}/healthz", node.admin_url));
    assert_eq!(status, 200);
    let (status, body) = node.api(TOKEN, "GET", "/api/v1/sessions", None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&session), "{body}");
    // ...the last picture to a new attendee...
    let out = view(&[
        &node.ticket,
        "--name",
        "after",
        "--password",
        PASSWORD,
        "--headless",
        "--frames",
        "1",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(summary(&String::from_utf8_lossy(&out.stdout)).key_frames, 1);
    // ...and a new session on another source.
    let (status, body) = node.api(
        TOKEN,
        "POST",
        "/api/v1/sessions",
        Some(r#"{"source": "synthetic", "width": 64, "height": 48}"#),
    );
    assert_eq!(status, 201, "{body}");
    assert!(node.log().contains("capture source lost"), "{}", node.log());
}

/// A tmpfs of its own, unmounted on drop (the test runs as root, as CI does).
struct SmallDisk {
    path: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(path: std::path::PathBuf, size: &str) -> SmallDisk {
        std::fs::create_dir_all(&path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mounting a small tmpfs for the full-disk test (needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { path }
    }

    /// Fills what is left with one file, until the disk says it is full.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.path.join("filler")).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

#[test]
fn a_full_disk_is_a_registry_write_failed_event_and_the_node_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(dir.path().join("disk"), "32m");
    let config = format!(
        r#"data_dir = "{}"
quic_listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
admin_token = "{TOKEN}"
[source]
kind = "synthetic"
width = 160
height = 120
[invitation]
password = "{PASSWORD}"
[registry]
cache_mib = 8
"#,
        disk.path.join("data").display(),
    );
    let node = NodeProcess::start(dir.path(), &config);
    let session = node.session_id();
    assert_eq!(errors_total(&node, "registry_write_failed"), 0.0);
    let events = SseReader::open(
        &format!("{}/api/v1/events?history=0", node.admin_url),
        TOKEN,
    );
    std::thread::sleep(Duration::from_millis(300));

    disk.fill();
    // Writes that must be durable now fail: invitations until one does.
    let mut refused = None;
    for i in 0..50 {
        let body = format!(r#"{{"password": "full-disk-{i:04}", "attendee_limit": 2}}"#);
        let (status, answer) = node.api(TOKEN, "POST", "/api/v1/invitations", Some(&body));
        if status >= 500 {
            refused = Some((status, answer));
            break;
        }
    }
    let (status, answer) = refused.expect("a write to a full disk fails");
    assert!(answer.contains("error"), "{status} {answer}");
    let failed = events.wait(Duration::from_secs(20), |e| {
        e["kind"] == "error" && e["code"] == "registry_write_failed"
    });
    assert!(
        !failed["message"].as_str().unwrap_or_default().is_empty(),
        "{failed}"
    );
    assert!(errors_total(&node, "registry_write_failed") >= 1.0);

    // The node keeps serving what it can: health and reads.
    let (status, _) = http_get(&format!("{}/healthz", node.admin_url));
    assert_eq!(status, 200);
    let (status, body) = node.api(TOKEN, "GET", "/api/v1/sessions", None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&session), "{body}");
    drop(node);
}
