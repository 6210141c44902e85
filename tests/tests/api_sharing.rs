//! The rest of the Desktop Sharing API (issue 19), driven as a user would:
//! a real node process, its admin HTTP API, the `tandem` CLI and headless
//! viewers. Connect time as elapsed seconds, the frame interval at run
//! time, one attendee's open resources and one invitation, request-pending
//! control levels, and group permissions.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;
use tandem_tests::channel_viewer::{ChannelViewer, SseReader};
use tandem_tests::{summary, tandem, text, NodeProcess, ViewerProcess};

const TOKEN: &str = "api-sharing-test-token-0123456789";
const PASSWORD: &str = "api-sharing";

fn start(dir: &Path, extra: &str) -> NodeProcess {
    let config = format!(
        r#"data_dir = "{}"
quic_listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
admin_token = "{TOKEN}"
[source]
width = 320
height = 200
seed = 19
[session]
frame_interval_ms = 50
control_policy = "ask"
[invitation]
password = "{PASSWORD}"
{extra}
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

/// Succeeds; its stdout.
fn ok(node: &NodeProcess, args: &[&str]) -> String {
    let out = cli(node, args);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Succeeds with `--json`; the parsed answer.
fn ok_json(node: &NodeProcess, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = ok(node, &all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
}

/// An admin call that must answer `status`; the parsed body (`null` when empty).
fn api(node: &NodeProcess, method: &str, path: &str, body: Option<&str>, status: u16) -> Value {
    let (code, text) = node.api(TOKEN, method, path, body);
    assert_eq!(code, status, "{method} {path}: {text}");
    if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The live attendee named `user`, once it is listed.
fn wait_attendee(node: &NodeProcess, user: &str) -> Value {
    let mut found = Value::Null;
    wait_for(&format!("attendee {user}"), || {
        let list = api(node, "GET", "/api/v1/attendees", None, 200);
        if let Some(a) = list
            .as_array()
            .and_then(|l| l.iter().find(|a| a["user"] == user))
        {
            found = a.clone();
        }
        !found.is_null()
    });
    found
}

fn viewer(dir: &Path, ticket: &str, name: &str, seconds: &str, extra: &[&str]) -> ViewerProcess {
    let mut args = vec![
        ticket,
        "--name",
        name,
        "--password",
        PASSWORD,
        "--headless",
        "--seconds",
        seconds,
    ];
    args.extend_from_slice(extra);
    ViewerProcess::spawn(dir, &[], &args)
}

#[test]
fn connect_time_is_shown_as_elapsed_seconds_live_and_in_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), "");
    let mut v = viewer(dir.path(), &node.ticket, "erin", "60", &[]);
    let first = wait_attendee(&node, "erin");
    let id = first["id"].as_u64().unwrap();
    // Two seconds later it has been connected at least two more.
    std::thread::sleep(Duration::from_secs(2));
    let list = ok_json(&node, &["attendees"]);
    let a = &list[0];
    assert_eq!(a["id"], id, "{list}");
    let secs = a["connected_seconds"].as_u64().expect("connected_seconds");
    assert!(
        secs >= first["connected_seconds"].as_u64().unwrap() + 2,
        "{first} then {a}"
    );
    // A headless viewer sends no input: idle as long as connected.
    assert!(a["idle_seconds"].as_u64().unwrap() <= secs, "{a}");
    // The table shows it as hh:mm:ss in its own column.
    let table = ok(&node, &["attendees"]);
    let header = table.lines().next().unwrap();
    assert!(
        header.contains("CONNECTED") && header.contains("TIME"),
        "{table}"
    );
    let row = table.lines().find(|l| l.contains("erin")).unwrap();
    // ID USER COMPUTER CONNECTED(date time) TIME IDLE LEVEL
    let cells: Vec<&str> = row.split_whitespace().collect();
    let hms: Vec<u64> = cells[5].split(':').map(|p| p.parse().unwrap()).collect();
    assert_eq!(hms.len(), 3, "{row}");
    assert!(hms[0] * 3600 + hms[1] * 60 + hms[2] >= secs, "{row}");

    // After it left, the history keeps how long it was connected.
    ok(&node, &["attendees", "disconnect", &id.to_string()]);
    v.wait_exit(Duration::from_secs(20));
    let all = ok_json(&node, &["attendees", "--all"]);
    let gone = all
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("{all}"));
    assert_eq!(gone["state"], "disconnected", "{gone}");
    assert!(
        gone["connected_seconds"].as_u64().unwrap() >= secs,
        "{gone}"
    );
}

/// Updates a fresh headless viewer receives in `seconds`.
fn updates_in(dir: &Path, node: &NodeProcess, name: &str, seconds: &str) -> u64 {
    let out = tandem(&[
        "view",
        &node.ticket,
        "--name",
        name,
        "--password",
        PASSWORD,
        "--headless",
        "--seconds",
        seconds,
    ]);
    let _ = dir;
    assert!(out.status.success(), "{}", text(&out));
    summary(&String::from_utf8_lossy(&out.stdout)).updates
}

#[test]
fn the_frame_interval_changes_at_run_time_and_the_update_rate_follows() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), "");
    let session = node.session_id();

    // Slowest: no capture at all within the viewer's three seconds, so it
    // gets only the picture it joins with.
    let line = ok(&node, &["sessions", "frame-interval", &session, "60000"]);
    assert_eq!(
        line.trim(),
        format!("session {session} captures every 60000 ms")
    );
    let sessions = ok_json(&node, &["sessions"]);
    assert_eq!(sessions[0]["frame_interval_ms"], 60000, "{sessions}");
    let slow = updates_in(dir.path(), &node, "slow", "3");

    // Back to 50 ms: the synthetic desktop changes every capture.
    let s = ok_json(&node, &["sessions", "frame-interval", &session, "50"]);
    assert_eq!(s["frame_interval_ms"], 50, "{s}");
    let fast = updates_in(dir.path(), &node, "fast", "3");
    assert!(slow <= 2, "{slow} updates at one capture a minute");
    assert!(fast >= 10, "{fast} updates at 50 ms (slow: {slow})");

    // Bounded: a clear 422 from the API, a usage error from the CLI.
    for bad in ["4", "60001"] {
        let body = format!(r#"{{"frame_interval_ms": {bad}}}"#);
        let path = format!("/api/v1/sessions/{session}/frame-interval");
        let err = api(&node, "PUT", &path, Some(&body), 422);
        let msg = err["error"].as_str().unwrap();
        assert!(msg.contains("between 5 and 60000"), "{msg}");
    }
    let out = cli(&node, &["sessions", "frame-interval", &session, "1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = cli(
        &node,
        &["sessions", "frame-interval", "no-such-session", "100"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("404"), "{}", text(&out));
}

/// The resource rows of `tandem attendees show ID`, as (RESOURCE NAME STATE) lines squeezed.
fn resource_rows(node: &NodeProcess, id: u64) -> Vec<String> {
    let out = ok(node, &["attendees", "show", &id.to_string()]);
    out.lines()
        .skip_while(|l| !l.starts_with("RESOURCE"))
        .skip(2)
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn an_attendee_shows_what_it_holds_open_and_an_invitation_shows_alone() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), "");
    let session = node.session_id();
    ok(&node, &["channels", "create", &session, "notes"]);
    ok(&node, &["sessions", "clipboard", &session, "on"]);
    let mut v = ChannelViewer::spawn(
        dir.path(),
        &[
            &node.ticket,
            "--name",
            "frank",
            "--password",
            PASSWORD,
            "--channel",
            "notes",
            "--request-control",
            "--hold-key",
            "0xffe1",
            "--seconds",
            "60",
        ],
    );
    let id = v.attendee_id(Duration::from_secs(30));
    let path = format!("/api/v1/attendees/{id}");
    // Joined, asking for interactive control: the request is a resource.
    let mut d = Value::Null;
    wait_for("the channel join and the request", || {
        d = api(&node, "GET", &path, None, 200);
        let r = &d["resources"];
        r["pending_request"] == "interactive"
            && r["channels"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["name"] == "notes" && c["joined"] == true)
            })
    });
    let r = &d["resources"];
    assert_eq!(d["attendee"]["user"], "frank", "{d}");
    assert_eq!(r["graphics"]["state"], "streaming", "{d}");
    assert_eq!(r["clipboard"]["enabled"], true, "{d}");
    assert_eq!(
        r["clipboard"]["access"], "none",
        "view attendees have no clipboard: {d}"
    );
    assert_eq!(r["held_keys"], serde_json::json!([]), "{d}");
    let notes = r["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "notes")
        .unwrap();
    assert_eq!(notes["access"], "none", "{d}");
    let rows = resource_rows(&node, id);
    assert!(
        rows.contains(&"request control interactive".to_owned()),
        "{rows:?}"
    );
    assert!(
        rows.contains(&"channel notes none, joined".to_owned()),
        "{rows:?}"
    );

    // Granted: the viewer presses its key and holds it; the clipboard opens.
    ok(&node, &["requests", "grant", &id.to_string()]);
    ok(
        &node,
        &[
            "channels",
            "access",
            &session,
            "notes",
            &id.to_string(),
            "read",
        ],
    );
    wait_for("the held key", || {
        d = api(&node, "GET", &path, None, 200);
        d["resources"]["held_keys"] == serde_json::json!([0xffe1])
    });
    let r = &d["resources"];
    assert!(r["pending_request"].is_null(), "{d}");
    assert_eq!(d["attendee"]["control_level"], "interactive", "{d}");
    assert_eq!(r["clipboard"]["access"], "read-write", "{d}");
    let rows = resource_rows(&node, id);
    for want in [
        "graphics stream streaming",
        "channel notes read, joined",
        "clipboard on read-write",
        "key 0xffe1 held",
    ] {
        assert!(rows.contains(&want.to_owned()), "no {want:?} in {rows:?}");
    }

    // Paused graphics; back to view: the node released the held key.
    ok(&node, &["sessions", "pause", &session]);
    ok(&node, &["attendees", "level", &id.to_string(), "view"]);
    let d = api(&node, "GET", &path, None, 200);
    let r = &d["resources"];
    assert_eq!(r["graphics"]["state"], "paused", "{d}");
    assert_eq!(r["held_keys"], serde_json::json!([]), "{d}");
    assert_eq!(r["clipboard"]["access"], "none", "{d}");

    // Gone: the history keeps the attendee, without resources.
    ok(&node, &["attendees", "disconnect", &id.to_string()]);
    wait_for("the disconnect", || {
        api(&node, "GET", &path, None, 200)["attendee"]["state"] == "disconnected"
    });
    let d = api(&node, "GET", &path, None, 200);
    assert!(d["resources"].is_null(), "{d}");
    let out = ok(&node, &["attendees", "show", &id.to_string()]);
    assert!(
        out.contains("No resources: the attendee is not connected."),
        "{out}"
    );
    drop(v.report());
    api(&node, "GET", "/api/v1/attendees/999999", None, 404);
    api(&node, "GET", "/api/v1/attendees/not-a-number", None, 404);

    // One invitation, by id.
    let list = api(&node, "GET", "/api/v1/invitations", None, 200);
    let inv = &list[0];
    let inv_id = inv["id"].as_str().unwrap();
    let one = api(
        &node,
        "GET",
        &format!("/api/v1/invitations/{inv_id}"),
        None,
        200,
    );
    assert_eq!(&one, inv, "the list and the one agree");
    let out = ok(&node, &["invitations", "show", inv_id]);
    assert!(out.lines().next().unwrap().ends_with(inv_id), "{out}");
    assert!(
        out.contains(inv["connection_string"].as_str().unwrap()),
        "{out}"
    );
    let err = api(&node, "GET", "/api/v1/invitations/nope", None, 404);
    assert!(err["error"].as_str().unwrap().contains("nope"), "{err}");
}

#[test]
fn a_pending_request_shows_as_reqctrl_in_the_list_the_events_and_the_viewer() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), "");
    let events = SseReader::open(
        &format!("{}/api/v1/events?history=0", node.admin_url),
        TOKEN,
    );
    let mut v = viewer(
        dir.path(),
        &node.ticket,
        "gina",
        "60",
        &["--request-control"],
    );
    // The viewer shows its level as the sharer sees it while it waits.
    v.wait_line(
        "control level: reqctrl-interactive",
        Duration::from_secs(30),
    );
    let a = wait_attendee(&node, "gina");
    let id = a["id"].as_u64().unwrap();
    assert_eq!(
        a["control_level"], "view",
        "the level itself is unchanged: {a}"
    );
    assert_eq!(a["level_state"], "reqctrl-interactive", "{a}");
    let table = ok(&node, &["attendees"]);
    let row = table.lines().find(|l| l.contains("gina")).unwrap();
    assert!(row.ends_with("reqctrl-interactive"), "{table}");
    let requested = events.wait(Duration::from_secs(20), |e| {
        e["kind"] == "control_level_change_requested" && e["attendee"] == id
    });
    assert_eq!(
        requested["level_state"], "reqctrl-interactive",
        "{requested}"
    );

    // Denied: the level shows as itself again, everywhere.
    ok(&node, &["requests", "deny", &id.to_string()]);
    let answered = events.wait(Duration::from_secs(20), |e| {
        e["kind"] == "control_level_change_answered" && e["attendee"] == id
    });
    assert_eq!(answered["level_state"], "view", "{answered}");
    let list = ok_json(&node, &["attendees"]);
    assert_eq!(list[0]["level_state"], "view", "{list}");
    assert!(list[0]["pending_request"].is_null(), "{list}");
    v.wait_line(
        "request for interactive control denied",
        Duration::from_secs(20),
    );

    // The sharer sets the level itself: shown as the level, in the event too.
    ok(
        &node,
        &["attendees", "level", &id.to_string(), "interactive"],
    );
    let updated = events.wait(Duration::from_secs(20), |e| {
        e["kind"] == "attendee_updated" && e["attendee"] == id
    });
    assert_eq!(updated["level_state"], "interactive", "{updated}");
    let shown = ok(&node, &["attendees", "show", &id.to_string()]);
    assert!(shown.contains("Control level       interactive"), "{shown}");
}

/// `tandem invite --group GROUP`: the connection string.
fn invite(node: &NodeProcess, group: &str) -> String {
    ok(node, &["invite", "--password", PASSWORD, "--group", group])
        .trim()
        .to_owned()
}

#[test]
fn a_group_is_an_authorization_class_set_in_the_config_and_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(
        dir.path(),
        r#"[groups.helpdesk]
auto_grant = "interactive"
channels = { notes = "read" }
"#,
    );
    let session = node.session_id();
    ok(&node, &["channels", "create", &session, "notes"]);
    let listed = ok_json(&node, &["groups"]);
    assert_eq!(listed[0]["name"], "helpdesk", "{listed}");
    assert_eq!(listed[0]["auto_grant"], "interactive", "{listed}");
    let table = ok(&node, &["groups"]);
    assert!(
        table.contains("helpdesk") && table.contains("notes=read"),
        "{table}"
    );

    // The help desk's request is granted at once, by its group, under `ask`.
    let helpdesk = invite(&node, "helpdesk");
    let plain = invite(&node, "plain");
    let events = SseReader::open(
        &format!("{}/api/v1/events?history=0", node.admin_url),
        TOKEN,
    );
    let mut h = viewer(dir.path(), &helpdesk, "hana", "60", &["--request-control"]);
    h.wait_line("control level: interactive", Duration::from_secs(30));
    let a = wait_attendee(&node, "hana");
    let hana = a["id"].as_u64().unwrap();
    assert_eq!(a["control_level"], "interactive", "{a}");
    let answered = events.wait(Duration::from_secs(20), |e| {
        e["kind"] == "control_level_change_answered" && e["attendee"] == hana
    });
    assert_eq!(answered["by"], "group", "{answered}");
    // It starts with the group's channel access.
    let d = api(
        &node,
        "GET",
        &format!("/api/v1/attendees/{hana}"),
        None,
        200,
    );
    let notes = d["resources"]["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "notes")
        .unwrap_or_else(|| panic!("{d}"))
        .clone();
    assert_eq!(notes["access"], "read", "{d}");
    assert_eq!(notes["joined"], false, "{d}");
    // The sharer may still take a default away, per attendee.
    let hana_id = hana.to_string();
    ok(
        &node,
        &["channels", "access", &session, "notes", &hana_id, "none"],
    );
    let d = api(
        &node,
        "GET",
        &format!("/api/v1/attendees/{hana}"),
        None,
        200,
    );
    assert_eq!(d["resources"]["channels"], serde_json::json!([]), "{d}");

    // Another group without rules: the session's `ask`, no channels.
    let mut p = viewer(dir.path(), &plain, "pia", "60", &["--request-control"]);
    p.wait_line(
        "control level: reqctrl-interactive",
        Duration::from_secs(30),
    );
    let a = wait_attendee(&node, "pia");
    assert_eq!(a["level_state"], "reqctrl-interactive", "{a}");
    let pia = a["id"].as_u64().unwrap();
    let d = api(&node, "GET", &format!("/api/v1/attendees/{pia}"), None, 200);
    assert_eq!(d["resources"]["channels"], serde_json::json!([]), "{d}");

    // Set at run time through the CLI: joins of `plain` start at none, and
    // their requests are granted up to view only.
    let line = ok(
        &node,
        &[
            "groups",
            "set",
            "plain",
            "--default-level",
            "none",
            "--auto-grant",
            "view",
        ],
    );
    assert_eq!(
        line.trim(),
        "group plain: default level none, auto grant up to view, channels -"
    );
    let mut q = viewer(dir.path(), &plain, "quinn", "60", &["--request-control"]);
    q.wait_line(
        "control level: reqctrl-interactive",
        Duration::from_secs(30),
    );
    let a = wait_attendee(&node, "quinn");
    assert_eq!(a["control_level"], "none", "{a}");
    assert_eq!(
        a["level_state"], "reqctrl-interactive",
        "above the ceiling: {a}"
    );
    // Pia, admitted before, still waits for the sharer (the ceiling is view).
    let one = api(&node, "GET", &format!("/api/v1/attendees/{pia}"), None, 200);
    assert_eq!(
        one["attendee"]["level_state"], "reqctrl-interactive",
        "{one}"
    );

    // Bounded, with clear errors; removed, the session's rules hold again.
    let err = api(
        &node,
        "PUT",
        "/api/v1/groups/plain",
        Some(r#"{"default_level": "interactive"}"#),
        422,
    );
    assert!(
        err["error"].as_str().unwrap().contains("invalid value"),
        "{err}"
    );
    let err = api(
        &node,
        "PUT",
        "/api/v1/groups/plain",
        Some(r#"{"channels": {"no spaces": "read"}}"#),
        422,
    );
    assert!(
        err["error"].as_str().unwrap().contains("no spaces"),
        "{err}"
    );
    let out = cli(
        &node,
        &["groups", "set", "plain", "--channel", "notes=write"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    ok(&node, &["groups", "remove", "plain"]);
    api(&node, "GET", "/api/v1/groups/plain", None, 404);
    let out = cli(&node, &["groups", "remove", "plain"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("404"), "{}", text(&out));
    drop((h, p, q));
}
