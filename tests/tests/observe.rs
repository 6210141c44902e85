//! Observing a running node: Prometheus metrics checked by promtool, and the
//! `net session`-style attendee table of the CLI.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use tandem_tests::{http_get, metric, spawn_view, tandem, text, NodeProcess};

const TOKEN: &str = "observe-test-token-0123456789";

fn start(dir: &std::path::Path) -> NodeProcess {
    let config = format!(
        r#"data_dir = "{}"
quic_listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
admin_token = "{TOKEN}"
[source]
width = 256
height = 160
seed = 5
[invitation]
password = "observe-pw"
"#,
        dir.join("data").display()
    );
    NodeProcess::start(dir, &config)
}

fn promtool_check(exposition: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed by `make test` (Debian package prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool rejected /metrics: {}",
        text(&out)
    );
}

#[test]
fn metrics_parse_with_promtool_and_move_when_frames_are_sent() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let (status, before) = http_get(&format!("{}/metrics", node.admin_url));
    assert_eq!(status, 200);
    promtool_check(&before);
    let sent_before = metric(&before, "tandem_bytes_sent_total");

    let out = tandem(&[
        "view",
        &node.ticket,
        "--name",
        "m",
        "--password",
        "observe-pw",
        "--headless",
        "--seconds",
        "2",
    ]);
    assert!(out.status.success(), "{}", text(&out));

    let (_, after) = http_get(&format!("{}/metrics", node.admin_url));
    promtool_check(&after);
    assert!(
        metric(&after, "tandem_bytes_sent_total") > sent_before,
        "bytes sent did not move"
    );
    assert!(
        metric(&after, "tandem_frames_captured_total")
            > metric(&before, "tandem_frames_captured_total")
    );
    assert!(
        after.contains("tandem_joins_total{result=\"admitted\"} 1"),
        "{after}"
    );
    assert!(after.contains("tandem_encode_duration_seconds_bucket"));
    assert!(after.contains("process_resident_memory_bytes"));
}

#[test]
fn attendee_table_lists_live_attendees_like_net_session() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let viewer = spawn_view(&[
        &node.ticket,
        "--name",
        "dana",
        "--password",
        "observe-pw",
        "--headless",
        "--seconds",
        "6",
    ]);
    let admin = node.admin_url.clone();
    let mut table = String::new();
    for _ in 0..50 {
        let out = tandem(&["attendees", "--admin", &admin, "--token", TOKEN]);
        assert!(out.status.success(), "{}", text(&out));
        table = String::from_utf8_lossy(&out.stdout).into_owned();
        if table.contains("dana") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let header = table.lines().next().unwrap_or_default();
    for column in ["USER", "COMPUTER", "CONNECTED", "IDLE", "LEVEL"] {
        assert!(header.contains(column), "missing {column} in {table}");
    }
    let row = table
        .lines()
        .find(|l| l.contains("dana"))
        .unwrap_or_else(|| panic!("dana not listed:\n{table}"));
    assert!(row.contains("127.0.0.1:") && row.contains("view"), "{row}");

    let json = tandem(&["attendees", "--admin", &admin, "--token", TOKEN, "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");

    let bad = tandem(&[
        "attendees",
        "--admin",
        &admin,
        "--token",
        "wrong-token-wrong-token",
    ]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    let _ = viewer.wait_with_output();
}

#[test]
fn attendees_live_at_a_kill_9_are_recorded_as_node_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path());
    let mut viewer = spawn_view(&[
        &node.ticket,
        "--name",
        "erin",
        "--password",
        "observe-pw",
        "--headless",
        "--seconds",
        "30",
    ]);
    let mut listed = false;
    for _ in 0..100 {
        let out = tandem(&["attendees", "--admin", &node.admin_url, "--token", TOKEN]);
        if String::from_utf8_lossy(&out.stdout).contains("erin") {
            listed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(listed, "erin never appeared in the attendee list");
    node.kill9();
    let _ = viewer.kill();
    let _ = viewer.wait();

    let node = start(dir.path());
    assert!(
        node.banner
            .iter()
            .any(|l| l.contains("as disconnected (node restarted)")),
        "{:?}",
        node.banner
    );
    let out = tandem(&[
        "attendees",
        "--all",
        "--json",
        "--admin",
        &node.admin_url,
        "--token",
        TOKEN,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let erin = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["user"] == "erin")
        .unwrap_or_else(|| panic!("erin missing from history: {list}"));
    assert_eq!(erin["reason"], "node restarted", "{erin}");
    assert!(erin["disconnected_at"].is_string(), "{erin}");
}
