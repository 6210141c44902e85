//! The admin commands of the `tandem` CLI against a real node process:
//! `invite`, `sessions` (pause, resume, shared rectangle, filter,
//! clipboard), `invitations [revoke]`, `attendees` (disconnect, level),
//! `requests` (grant, deny) and `channels`, with `--json`, exit statuses
//! 0/1/2 and one-line errors.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;
use tandem_tests::channel_viewer::ChannelViewer;
use tandem_tests::{tandem, text, NodeProcess, ViewerProcess};

const TOKEN: &str = "cli-admin-test-token-0123456789";
const PASSWORD: &str = "cli-admin";

fn start(dir: &Path, policy: &str) -> NodeProcess {
    let config = format!(
        r#"data_dir = "{}"
quic_listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
admin_token = "{TOKEN}"
[source]
width = 320
height = 200
seed = 8
[session]
frame_interval_ms = 50
control_policy = "{policy}"
[invitation]
password = "{PASSWORD}"
"#,
        dir.join("data").display()
    );
    NodeProcess::start(dir, &config)
}

/// `tandem ARGS... --admin URL --token TOKEN`.
fn cli(node: &NodeProcess, args: &[&str]) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--admin", &node.admin_url, "--token", TOKEN]);
    tandem(&all)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Succeeds; its stdout.
fn ok(node: &NodeProcess, args: &[&str]) -> String {
    let out = cli(node, args);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
    stdout(&out)
}

/// Succeeds with `--json`; the parsed answer.
fn ok_json(node: &NodeProcess, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = ok(node, &all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
}

/// Fails with `code` and exactly one line on stderr; that line.
fn fails(node: &NodeProcess, args: &[&str], code: i32) -> String {
    let out = cli(node, args);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: {}",
        text(&out)
    );
    err.trim_end().to_owned()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn attendee<'a>(list: &'a Value, user: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|a| a["user"] == user)
}

fn spawn_viewer(
    dir: &Path,
    node: &NodeProcess,
    ticket: &str,
    name: &str,
    extra: &[&str],
) -> ViewerProcess {
    let mut args = vec![
        ticket,
        "--name",
        name,
        "--password",
        PASSWORD,
        "--headless",
        "--seconds",
        "60",
    ];
    args.extend_from_slice(extra);
    let _ = node;
    ViewerProcess::spawn(dir, &[], &args)
}

#[test]
fn invite_sessions_and_invitations_with_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), "ask");
    let session = node.session_id();

    // invite: the connection string alone on stdout.
    let out = ok(
        &node,
        &[
            "invite",
            "--password",
            "cli-pw-1",
            "--limit",
            "3",
            "--group",
            "cli-group",
        ],
    );
    let ticket = out.trim();
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(ticket.starts_with("tandem://"), "{out}");
    assert!(ticket.contains(&format!("/s/{session}?")), "{out}");
    let created = ok_json(
        &node,
        &[
            "invite",
            "--password",
            "password-2",
            "--group",
            "json-group",
        ],
    );
    assert_eq!(created["group"], "json-group");
    assert_eq!(created["attendee_limit"], 16);

    // sessions: a table and the JSON.
    let table = ok(&node, &["sessions"]);
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table.contains(&session) && table.contains("open"),
        "{table}"
    );
    let sessions = ok_json(&node, &["sessions"]);
    assert_eq!(sessions[0]["id"], session.as_str());

    // invitations: the new one with its limit, then revoked.
    let list = ok_json(&node, &["invitations"]);
    let inv = list
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["group"] == "cli-group")
        .unwrap_or_else(|| panic!("no cli-group in {list}"))
        .clone();
    let id = inv["id"].as_str().unwrap();
    let table = ok(&node, &["invitations"]);
    let row = table
        .lines()
        .find(|l| l.contains("cli-group"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("0/3") && row.contains("active"), "{row}");
    let line = ok(&node, &["invitations", "revoke", id]);
    assert_eq!(line.trim(), format!("invitation {id} revoked"));
    let table = ok(&node, &["invitations"]);
    let row = table.lines().find(|l| l.contains("cli-group")).unwrap();
    assert!(row.contains("revoked"), "{row}");
    // A revoked invitation admits nobody.
    let out = tandem(&[
        "view",
        ticket,
        "--name",
        "late",
        "--password",
        "cli-pw-1",
        "--headless",
        "--seconds",
        "5",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("revoked"), "{}", text(&out));

    // Errors: one line, 1 for what the node refuses, 2 for usage.
    let err = fails(&node, &["invitations", "revoke", "no-such-invitation"], 1);
    assert!(err.contains("404"), "{err}");
    let err = fails(&node, &["invite", "--limit", "0"], 2);
    assert!(err.contains("--limit"), "{err}");
    let err = fails(&node, &["invite", "--password", "short"], 2);
    assert!(
        err.contains("--password must be at least 8 characters"),
        "{err}"
    );
    let out = tandem(&[
        "sessions",
        "--admin",
        "https://127.0.0.1:1",
        "--token",
        TOKEN,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = tandem(&[
        "sessions",
        "--admin",
        &node.admin_url,
        "--token",
        "wrong-token-0123456789",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("401"), "{}", text(&out));
}

#[test]
fn attendee_actions_requests_levels_and_disconnect() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), "ask");
    let mut carol = spawn_viewer(
        dir.path(),
        &node,
        &node.ticket,
        "carol",
        &["--request-control"],
    );
    let mut id = 0;
    wait_for("carol's pending request", || {
        let list = ok_json(&node, &["requests"]);
        match attendee(&list, "carol") {
            Some(a) => {
                id = a["id"].as_u64().unwrap();
                a["pending_request"] == "interactive"
            }
            None => false,
        }
    });
    let table = ok(&node, &["requests"]);
    let row = table
        .lines()
        .find(|l| l.contains("carol"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("interactive"), "{row}");

    // Grant: carol is interactive and told so.
    let answer = ok_json(&node, &["requests", "grant", &id.to_string()]);
    assert_eq!(answer["granted"], true);
    let list = ok_json(&node, &["attendees"]);
    assert_eq!(
        attendee(&list, "carol").unwrap()["control_level"],
        "interactive"
    );
    carol.wait_line("interactive", Duration::from_secs(10));
    // Nothing pending any more: denying is a conflict.
    let err = fails(&node, &["requests", "deny", &id.to_string()], 1);
    assert!(err.contains("409"), "{err}");

    // Level: back to view; an unknown level is a usage error.
    let line = ok(&node, &["attendees", "level", &id.to_string(), "view"]);
    assert_eq!(line.trim(), format!("attendee {id} control level view"));
    let list = ok_json(&node, &["attendees"]);
    assert_eq!(attendee(&list, "carol").unwrap()["control_level"], "view");
    fails(
        &node,
        &["attendees", "level", &id.to_string(), "superuser"],
        2,
    );
    let err = fails(&node, &["attendees", "level", "999999", "view"], 1);
    assert!(err.contains("404"), "{err}");

    // A second request, denied.
    let mut dave = spawn_viewer(
        dir.path(),
        &node,
        &node.ticket,
        "dave",
        &["--request-control"],
    );
    let mut dave_id = 0;
    wait_for("dave's pending request", || {
        let list = ok_json(&node, &["requests"]);
        attendee(&list, "dave").is_some_and(|a| {
            dave_id = a["id"].as_u64().unwrap();
            true
        })
    });
    let line = ok(&node, &["requests", "deny", &dave_id.to_string()]);
    assert_eq!(
        line.trim(),
        format!("control request of attendee {dave_id} denied")
    );
    dave.wait_line("denied", Duration::from_secs(10));
    let list = ok_json(&node, &["attendees"]);
    assert_eq!(attendee(&list, "dave").unwrap()["control_level"], "view");

    // Disconnect with a reason: carol is told and leaves; the history says why.
    let line = ok(
        &node,
        &[
            "attendees",
            "disconnect",
            &id.to_string(),
            "--reason",
            "meeting over",
        ],
    );
    assert_eq!(line.trim(), format!("attendee {id} disconnected"));
    assert_eq!(
        carol.wait_exit(Duration::from_secs(15)),
        Some(1),
        "{}",
        carol.report()
    );
    assert!(
        carol.report().contains("meeting over"),
        "{}",
        carol.report()
    );
    let all = ok_json(&node, &["attendees", "--all"]);
    let gone = attendee(&all, "carol").unwrap();
    assert_eq!(gone["state"], "disconnected");
    assert_eq!(gone["reason"], "by sharer");
    let table = ok(&node, &["attendees", "--all"]);
    let row = table
        .lines()
        .find(|l| l.contains("carol"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        row.contains("disconnected") && row.contains("by sharer"),
        "{row}"
    );
    let err = fails(&node, &["attendees", "disconnect", &id.to_string()], 1);
    assert!(err.contains("404"), "{err}");
}

#[test]
fn session_actions_and_channels() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), "grant-all");
    let session = node.session_id();

    // Pause and resume.
    let line = ok(&node, &["sessions", "pause", &session]);
    assert_eq!(line.trim(), format!("session {session} paused"));
    assert_eq!(ok_json(&node, &["sessions"])[0]["state"], "paused");
    let resumed = ok_json(&node, &["sessions", "resume", &session]);
    assert_eq!(resumed["state"], "open");
    fails(&node, &["sessions", "pause", "no-such-session"], 1);

    // The shared rectangle: a rectangle, the whole desktop, a monitor.
    let line = ok(
        &node,
        &[
            "sessions",
            "shared-rect",
            &session,
            "--rect",
            "10,20,100,50",
        ],
    );
    assert_eq!(
        line.trim(),
        format!("session {session} shares 100x50 at 10,20")
    );
    assert_eq!(
        ok_json(&node, &["sessions"])[0]["shared_rect"],
        serde_json::json!([10, 20, 100, 50])
    );
    let full = ok_json(&node, &["sessions", "shared-rect", &session, "--full"]);
    assert_eq!(full["shared_rect"], serde_json::json!([0, 0, 320, 200]));
    ok(
        &node,
        &["sessions", "shared-rect", &session, "--monitor", "screen"],
    );
    fails(
        &node,
        &["sessions", "shared-rect", &session, "--rect", "1,2,0,3"],
        2,
    );
    fails(&node, &["sessions", "shared-rect", &session], 2);
    let err = fails(
        &node,
        &[
            "sessions",
            "shared-rect",
            &session,
            "--rect",
            "5000,5000,10,10",
        ],
        1,
    );
    assert!(err.contains("outside"), "{err}");

    // The synthetic desktop has no windows to filter: said in one line.
    let err = fails(
        &node,
        &["sessions", "filter", &session, "--class", "XTerm"],
        1,
    );
    assert!(err.contains("window filters"), "{err}");
    let err = fails(&node, &["sessions", "filter", &session], 1);
    assert!(err.contains("no filter"), "{err}");
    ok(&node, &["sessions", "filter", &session, "--clear"]);

    // Clipboard sharing switch.
    let on = ok_json(&node, &["sessions", "clipboard", &session, "on"]);
    assert_eq!(on["enabled"], true);
    let line = ok(&node, &["sessions", "clipboard", &session]);
    assert!(line.contains("clipboard sharing on"), "{line}");
    ok(&node, &["sessions", "clipboard", &session, "off"]);
    fails(&node, &["sessions", "clipboard", &session, "maybe"], 2);

    // Channels: create, an attendee joins, access, send, list.
    let created = ok_json(
        &node,
        &["channels", "create", &session, "chat", "--priority", "high"],
    );
    assert_eq!(created["name"], "chat");
    assert_eq!(created["priority"], "high");
    let err = fails(&node, &["channels", "create", &session, "chat"], 1);
    assert!(err.contains("409"), "{err}");
    fails(&node, &["channels", "create", &session, "bad name!"], 1);
    let mut viewer = ChannelViewer::spawn(
        dir.path(),
        &[
            &node.ticket,
            "--name",
            "erin",
            "--password",
            PASSWORD,
            "--channel",
            "chat",
            "--seconds",
            "60",
        ],
    );
    let erin = viewer.attendee_id(Duration::from_secs(20));
    let line = ok(
        &node,
        &[
            "channels",
            "access",
            &session,
            "chat",
            &erin.to_string(),
            "read-write",
        ],
    );
    assert_eq!(
        line.trim(),
        format!("attendee {erin} has read-write access to channel chat")
    );
    wait_for("erin joined chat", || {
        let list = ok_json(&node, &["channels", "list", &session]);
        list.as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "chat" && c["joined"].as_array().unwrap().contains(&erin.into()))
    });
    let report = ok_json(
        &node,
        &[
            "channels",
            "send",
            &session,
            "chat",
            "hello erin",
            "--attendee",
            &erin.to_string(),
        ],
    );
    assert_eq!(report["queued"], 1, "{report}");
    assert_eq!(
        viewer.wait_stdout(1, Duration::from_secs(10)),
        vec!["hello erin".to_owned()]
    );
    let table = ok(&node, &["channels", "list", &session]);
    let row = table
        .lines()
        .find(|l| l.contains("chat"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains(&format!("{erin}:read-write")), "{row}");
    fails(
        &node,
        &[
            "channels",
            "access",
            &session,
            "chat",
            &erin.to_string(),
            "write",
        ],
        2,
    );
    let err = fails(&node, &["channels", "list", "no-such-session"], 1);
    assert!(err.contains("404"), "{err}");
}
