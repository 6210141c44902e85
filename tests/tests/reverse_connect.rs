//! Reverse connect with real processes: `tandem view --listen` prints a
//! reverse connection string, `tandem connect-to` makes the node dial it,
//! and the join is the normal one (invitation, password, the picture bit
//! for bit). Each side pins the other: the node refuses a listener whose
//! certificate is not the string's, the viewer refuses a node whose
//! certificate is not its connection string's.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use tandem_capture::SyntheticDesktop;
use tandem_tests::{differing_pixels, read_png, summary, tandem, text, NodeProcess, ViewerProcess};

const TOKEN: &str = "reverse-connect-test-token-0123456789";
const PASSWORD: &str = "support-desk";
const WAIT: Duration = Duration::from_secs(30);

fn start(dir: &Path, seed: u64, freeze: u64) -> NodeProcess {
    let config = format!(
        r#"data_dir = "{}"
quic_listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
admin_token = "{TOKEN}"
[source]
kind = "synthetic"
width = 160
height = 100
seed = {seed}
freeze_after_frames = {freeze}
[invitation]
password = "{PASSWORD}"
"#,
        dir.join("data").display()
    );
    NodeProcess::start(dir, &config)
}

/// `tandem connect-to STRING` against `node`.
fn connect_to(node: &NodeProcess, string: &str) -> Output {
    tandem(&[
        "connect-to",
        string,
        "--admin",
        &node.admin_url,
        "--token",
        TOKEN,
    ])
}

/// A listening viewer for `ticket`, and the reverse string it printed.
fn listen(dir: &Path, ticket: &str, password: &str, extra: &[&str]) -> (ViewerProcess, String) {
    let mut args = vec![
        ticket,
        "--listen",
        "127.0.0.1:0",
        "--listen-wait",
        "60",
        "--name",
        "desk",
        "--password",
        password,
        "--headless",
    ];
    args.extend_from_slice(extra);
    let mut viewer = ViewerProcess::spawn(dir, &[], &args);
    let line = viewer.wait_line("reverse connection string:", WAIT);
    let string = line
        .split_whitespace()
        .last()
        .expect("the string ends the line")
        .to_owned();
    assert!(string.starts_with("tandem-reverse://127.0.0.1:"), "{line}");
    (viewer, string)
}

#[test]
fn the_node_dials_a_listening_viewer_which_sees_the_source_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let (seed, freeze) = (21, 30);
    let node = start(dir.path(), seed, freeze);

    // Not a reverse string: refused by the CLI (usage) and the API (422).
    let out = connect_to(&node, &node.ticket);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("tandem-reverse://"), "{}", text(&out));
    let (status, body) = node.api(
        TOKEN,
        "POST",
        "/api/v1/connect-to",
        Some(r#"{"connection_string": "tandem-reverse://127.0.0.1:9/"}"#),
    );
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("fp="), "{body}");

    // A wrong password: the viewer listens, the node dials, the join is refused
    // exactly as a normal one, and both sides say so.
    let (mut wrong, string) = listen(dir.path(), &node.ticket, "not-the-password", &[]);
    let out = connect_to(&node, &string);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("403"), "{}", text(&out));
    assert!(text(&out).contains("not admitted"), "{}", text(&out));
    assert_eq!(wrong.wait_exit(WAIT), Some(1), "{}", wrong.report());
    assert!(
        wrong.report().to_lowercase().contains("password"),
        "{}",
        wrong.report()
    );

    // The right password, and the listener's string with the right fingerprint.
    let snap = dir.path().join("reverse.png");
    let snap_arg = snap.to_str().unwrap();
    let (mut viewer, string) = listen(
        dir.path(),
        &node.ticket,
        PASSWORD,
        &["--seconds", "3", "--snapshot", snap_arg],
    );
    // First a string whose fingerprint is not the listener's: the node
    // refuses the listener, which goes on waiting.
    let (head, _) = string.split_once("fp=").unwrap();
    let forged = format!("{head}fp={}", "ab".repeat(32));
    let out = connect_to(&node, &forged);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("502"), "{}", text(&out));
    assert!(
        text(&out).contains("is not the reverse connection string's"),
        "{}",
        text(&out)
    );

    let out = connect_to(&node, &string);
    assert!(out.status.success(), "{}\n{}", text(&out), viewer.report());
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.starts_with("connected to 127.0.0.1:"), "{said}");
    assert!(said.contains("(desk) in session"), "{said}");

    assert_eq!(viewer.wait_exit(WAIT), Some(0), "{}", viewer.report());
    let s = summary(&viewer.lines().join("\n"));
    assert!(s.updates >= 1, "{s:?}");
    let expected = SyntheticDesktop::new(seed, 160, 100).render(freeze);
    assert_eq!(
        differing_pixels(&read_png(&snap), &expected),
        0,
        "the listening viewer's frame differs from the source"
    );
    // The node saw an ordinary attendee.
    let log = node.log();
    assert!(log.contains("reverse connect: attendee welcomed"), "{log}");
}

#[test]
fn a_listening_viewer_refuses_a_node_it_was_not_invited_by() {
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let a = start(dir_a.path(), 5, 10);
    let b = start(dir_b.path(), 6, 10);

    // The reconnecting client (the window's) in listen mode.
    let (mut viewer, string) = listen(
        dir_a.path(),
        &a.ticket,
        PASSWORD,
        &["--reconnect", "--frames", "1"],
    );
    // Node B's certificate is not the one A's connection string pins.
    let out = connect_to(&b, &string);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("502"), "{}", text(&out));
    assert!(
        text(&out).contains("refused this node's certificate"),
        "{}",
        text(&out)
    );
    viewer.wait_line("refused a node at", WAIT);

    // The listener waits on, and node A gets in.
    let out = connect_to(&a, &string);
    assert!(out.status.success(), "{}\n{}", text(&out), viewer.report());
    assert_eq!(viewer.wait_exit(WAIT), Some(0), "{}", viewer.report());
    assert!(
        viewer
            .lines()
            .iter()
            .any(|l| l.starts_with("connected to 127.0.0.1:")),
        "{}",
        viewer.report()
    );
}
