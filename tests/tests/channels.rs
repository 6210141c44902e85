//! Virtual channels end to end: a `tandem node` process, the admin API as
//! the sharer's application, and `tandem view --channel` processes bridging
//! the channel to their stdin and stdout, over QUIC on loopback.

use std::path::Path;
use std::time::Duration;

use tandem_tests::channel_viewer::{ChannelViewer, SseReader};
use tandem_tests::NodeProcess;

const TOKEN: &str = "channels-test-token-0123456789abcdef";
const PASSWORD: &str = "channels";
const PATIENCE: Duration = Duration::from_secs(30);

fn start_node(dir: &Path) -> NodeProcess {
    let config = format!(
        r#"data_dir = "{}"
quic_listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
admin_token = "{TOKEN}"
[source]
kind = "synthetic"
width = 160
height = 100
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

#[test]
fn view_channel_refuses_a_bad_name_as_a_usage_error() {
    let out = tandem_tests::tandem(&[
        "view",
        "tandem://127.0.0.1:9/s/s?inv=i&fp=0000000000000000000000000000000000000000000000000000000000000000",
        "--name",
        "n",
        "--channel",
        "bad name",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--channel must be 1 to 64 characters"),
        "{out:?}"
    );
}

#[test]
fn view_channel_bridges_stdin_and_stdout_to_the_sharer() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path());
    let session = node.session_id();
    let base = format!("/api/v1/sessions/{session}/channels");

    // The routes are documented.
    let (status, doc) = api(&node, "GET", "/api/v1/openapi.json", None);
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
    for path in [
        "/api/v1/sessions/{id}/channels",
        "/api/v1/sessions/{id}/channels/{name}/access/{attendee}",
        "/api/v1/sessions/{id}/channels/{name}/messages",
        "/api/v1/sessions/{id}/clipboard",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }

    // The sharer creates the channel; bad names and unknown channels are clear errors.
    let (status, body) = api(&node, "POST", &base, Some(r#"{"name": "bad name"}"#));
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("invalid channel name"), "{body}");
    let (status, body) = api(
        &node,
        "POST",
        &base,
        Some(r#"{"name": "chat", "priority": "high"}"#),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = api(&node, "POST", &format!("{base}/nope/messages"), Some("x"));
    assert_eq!(status, 404, "{body}");

    let args = |name: &'static str| {
        vec![
            node.ticket.clone(),
            "--name".into(),
            name.to_owned(),
            "--password".into(),
            PASSWORD.into(),
            "--channel".into(),
            "chat".into(),
            "--seconds".into(),
            "120".into(),
        ]
    };
    let script_args = args("script");
    let script_refs: Vec<&str> = script_args.iter().map(String::as_str).collect();
    let mut script = ChannelViewer::spawn(dir.path(), &script_refs);
    let lurker_args = args("lurker");
    let lurker_refs: Vec<&str> = lurker_args.iter().map(String::as_str).collect();
    let mut lurker = ChannelViewer::spawn(dir.path(), &lurker_refs);
    let script_id = script.attendee_id(PATIENCE);
    let lurker_id = lurker.attendee_id(PATIENCE);
    script.wait_stderr("channel chat joined (access none)", PATIENCE);
    lurker.wait_stderr("channel chat joined (access none)", PATIENCE);

    let (status, body) = api(
        &node,
        "PUT",
        &format!("{base}/chat/access/{script_id}"),
        Some(r#"{"access": "read-write"}"#),
    );
    assert_eq!(status, 204, "{body}");
    script.wait_stderr("channel access: read-write", PATIENCE);

    // What the script writes on stdin reaches the sharer's stream.
    let arrivals = SseReader::open(&format!("{}{base}/chat/messages", node.admin_url), TOKEN);
    // The stream is open once the node answers; a message sent before
    // would not be in it, so send until one arrives.
    let mut sent = 0;
    let first = loop {
        sent += 1;
        script.send_line(&format!("hello sharer {sent}"));
        let got = arrivals.all();
        if let Some(v) = got.into_iter().next() {
            break v;
        }
        assert!(sent < 300, "nothing arrived\n{}", script.report());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(first["attendee"], script_id);
    assert_eq!(first["channel"], "chat");
    assert!(first["text"].as_str().unwrap().starts_with("hello sharer "));
    script.send_line("second line");
    arrivals.wait(PATIENCE, |v| v["text"] == "second line");

    // The lurker has no access: its write is refused and never arrives.
    lurker.send_line("let me in");
    lurker.wait_stderr(
        "channel write refused: no write access to channel chat",
        PATIENCE,
    );
    assert!(arrivals.all().iter().all(|v| v["attendee"] == script_id));

    // Sharer -> every reader, then -> one: lines on the script's stdout only.
    let (status, body) = api(
        &node,
        "POST",
        &format!("{base}/chat/messages"),
        Some("to everyone"),
    );
    assert_eq!(status, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["queued"], 1, "{body}");
    let (status, body) = api(
        &node,
        "POST",
        &format!("{base}/chat/messages?attendee={script_id}"),
        Some("just for you"),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = api(
        &node,
        "POST",
        &format!("{base}/chat/messages?attendee={lurker_id}"),
        Some("no"),
    );
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        script.wait_stdout(2, PATIENCE),
        vec!["to everyone".to_owned(), "just for you".to_owned()]
    );

    // Access changed at run time: the lurker reads from now on.
    let (status, _) = api(
        &node,
        "PUT",
        &format!("{base}/chat/access/{lurker_id}"),
        Some(r#"{"access": "read"}"#),
    );
    assert_eq!(status, 204);
    lurker.wait_stderr("channel access: read", PATIENCE);
    api(
        &node,
        "POST",
        &format!("{base}/chat/messages"),
        Some("welcome"),
    );
    assert_eq!(lurker.wait_stdout(1, PATIENCE), vec!["welcome".to_owned()]);
    assert_eq!(script.wait_stdout(3, PATIENCE)[2], "welcome");

    // Bounded sizes, with clear errors: the sharer's message over the limit
    // is refused; an over-long stdin line is skipped and said so, and the
    // bridge carries on.
    let big = "y".repeat(65_521);
    let (status, body) = api(&node, "POST", &format!("{base}/chat/messages"), Some(&big));
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("65520-byte limit"), "{body}");
    script.send_line(&big);
    script.wait_stderr("stdin line longer than 65520 bytes: skipped", PATIENCE);
    script.send_line("still here");
    arrivals.wait(PATIENCE, |v| v["text"] == "still here");

    // The listing shows access and who joined; events say what was sent.
    let (_, body) = api(&node, "GET", &base, None);
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let chat = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "chat")
        .unwrap();
    assert_eq!(
        chat["access"][script_id.to_string()],
        "read-write",
        "{body}"
    );
    assert_eq!(chat["joined"].as_array().unwrap().len(), 2, "{body}");
    let events = SseReader::open(
        &format!("{}/api/v1/events?history=1000", node.admin_url),
        TOKEN,
    );
    events.wait(PATIENCE, |e| {
        e["kind"] == "channel_data_received" && e["attendee"] == script_id && e["channel"] == "chat"
    });
    events.wait(PATIENCE, |e| {
        e["kind"] == "channel_data_sent" && e["attendee"] == script_id && e["queued"] == 1
    });
}
