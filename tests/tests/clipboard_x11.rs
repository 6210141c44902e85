//! Clipboard sharing on a real X display: Xvfb, `xclip` as the desktop's
//! applications, a `tandem node --source x11` process and `tandem view
//! --channel clipboard` processes as attendees, over QUIC on loopback.

use std::path::Path;
use std::time::{Duration, Instant};

use tandem_tests::channel_viewer::{ChannelViewer, SseReader};
use tandem_tests::xserver::{which, XServer};
use tandem_tests::NodeProcess;

const TOKEN: &str = "clipboard-test-token-0123456789abcdef";
const PASSWORD: &str = "clip-password";
const PATIENCE: Duration = Duration::from_secs(30);

fn start_node(dir: &Path, display: &str) -> NodeProcess {
    let config = format!(
        r#"data_dir = "{}"
quic_listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
admin_token = "{TOKEN}"
[source]
kind = "x11"
display = "{display}"
[session]
control_policy = "grant-all"
clipboard = true
clipboard_max_bytes = 1000
[invitation]
password = "{PASSWORD}"
"#,
        dir.join("data").display()
    );
    NodeProcess::start(dir, &config)
}

fn api(node: &NodeProcess, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    node.api(TOKEN, method, path, body)
}

/// Copies `text` on the display the way an application does: `xclip` takes
/// the CLIPBOARD selection and stays in the background to serve it.
fn copy_on_display(x: &XServer, text: &str) {
    let out = x.run(
        "sh",
        &[
            "-c",
            &format!("printf '%s' '{text}' | xclip -selection clipboard >/dev/null 2>&1"),
        ],
    );
    assert!(out.status.success(), "xclip failed: {out:?}");
    // xclip forks before it takes the selection: wait until it owns it, so
    // the copy happens now and not during a later step of the test.
    let deadline = Instant::now() + PATIENCE;
    while display_clipboard(x) != text {
        assert!(Instant::now() < deadline, "xclip never took the clipboard");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn display_clipboard(x: &XServer) -> String {
    let out = x.run("xclip", &["-o", "-selection", "clipboard"]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn viewer(dir: &Path, node: &NodeProcess, name: &str, interactive: bool) -> ChannelViewer {
    let mut args = vec![
        node.ticket.as_str(),
        "--name",
        name,
        "--password",
        PASSWORD,
        "--channel",
        "clipboard",
        "--seconds",
        "120",
    ];
    if interactive {
        args.push("--request-control");
    }
    ChannelViewer::spawn(dir, &args)
}

/// Waits until `n` status lines of the viewer contain `needle`.
fn wait_count(v: &ChannelViewer, needle: &str, n: usize) {
    let deadline = Instant::now() + PATIENCE;
    while v.stderr().lines().filter(|l| l.contains(needle)).count() < n {
        assert!(
            Instant::now() < deadline,
            "fewer than {n} lines with {needle:?}\n{}",
            v.report()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn copies_reach_interactive_attendees_only_and_their_pastes_land_on_the_display() {
    if !which("xclip") {
        panic!("xclip is needed (apt-get install xclip; make test installs it)");
    }
    let dir = tempfile::tempdir().unwrap();
    let x = XServer::start(320, 200);
    let node = start_node(dir.path(), x.display());
    let session = node.session_id();
    let (status, body) = api(
        &node,
        "GET",
        &format!("/api/v1/sessions/{session}/clipboard"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""enabled":true"#), "{body}");

    let mut driver = viewer(dir.path(), &node, "driver", true);
    let mut watcher = viewer(dir.path(), &node, "watcher", false);
    driver.wait_stderr("control level: interactive", PATIENCE);
    // Joined before or after the grant: either way it ends up read-write.
    wait_count(&driver, "read-write", 1);
    watcher.wait_stderr("channel clipboard joined (access none)", PATIENCE);
    let events = SseReader::open(
        &format!("{}/api/v1/events?history=0", node.admin_url),
        TOKEN,
    );

    // A copy on the display reaches the interactive attendee...
    copy_on_display(&x, "copied on the display");
    assert_eq!(
        driver.wait_stdout(1, PATIENCE),
        vec!["copied on the display".to_owned()]
    );
    events.wait(PATIENCE, |e| {
        e["kind"] == "clipboard_transferred"
            && e["direction"] == "to_attendees"
            && e["delivered"] == true
    });
    // ... and not the view-only one (it was sent to readers at the same time).
    assert!(watcher.stdout().is_empty(), "{}", watcher.report());

    // A paste from the interactive attendee lands on the display.
    driver.send_line("pasted by the driver");
    let deadline = Instant::now() + PATIENCE;
    while display_clipboard(&x) != "pasted by the driver" {
        assert!(
            Instant::now() < deadline,
            "display clipboard is {:?}\n{}",
            display_clipboard(&x),
            driver.report()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    events.wait(PATIENCE, |e| {
        e["kind"] == "clipboard_transferred" && e["direction"] == "to_desktop"
    });
    // The view-only attendee's paste is refused.
    watcher.send_line("not allowed");
    watcher.wait_stderr(
        "clipboard not sent: this attendee is not interactive",
        PATIENCE,
    );
    assert_eq!(display_clipboard(&x), "pasted by the driver");

    // Above the size limit: refused with an event, not sent.
    copy_on_display(&x, &"x".repeat(1500));
    events.wait(PATIENCE, |e| {
        e["kind"] == "clipboard_transferred" && e["delivered"] == false
    });

    // Switched off: copies stay on the display.
    let (status, body) = api(
        &node,
        "PUT",
        &format!("/api/v1/sessions/{session}/clipboard"),
        Some(r#"{"enabled": false}"#),
    );
    assert_eq!(status, 200, "{body}");
    driver.wait_stderr("channel access: none", PATIENCE);
    copy_on_display(&x, "private");
    driver.send_line("after switch off");
    driver.wait_stderr(
        "clipboard not sent: the node gives this attendee no write access",
        PATIENCE,
    );
    // Switched back on, the next copy arrives, and it is the first since the
    // first one: nothing copied while off (nor the oversized one) was sent.
    api(
        &node,
        "PUT",
        &format!("/api/v1/sessions/{session}/clipboard"),
        Some(r#"{"enabled": true}"#),
    );
    wait_count(&driver, "read-write", 2);
    copy_on_display(&x, "back on");
    assert_eq!(
        driver.wait_stdout(2, PATIENCE),
        vec!["copied on the display".to_owned(), "back on".to_owned()]
    );
    assert!(watcher.stdout().is_empty(), "{}", watcher.report());
}
