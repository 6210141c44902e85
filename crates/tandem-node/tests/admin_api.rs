//! The admin HTTP API over real HTTP: a node started in-process on loopback
//! (synthetic 160x100 desktop, ports chosen by the OS) and a blocking client.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tandem_node::{Node, NodeConfig};

const TOKEN: &str = "test-admin-token-0123456789";

/// A node running on its own thread with its own actix System.
struct TestNode {
    admin: SocketAddr,
    metrics: Option<SocketAddr>,
    session: String,
    ticket: String,
    password: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TestNode {
    fn start() -> Self {
        Self::start_with(|_| {})
    }

    fn start_with(tweak: impl FnOnce(&mut NodeConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = NodeConfig {
            data_dir: dir.path().to_path_buf(),
            quic_listen: "127.0.0.1:0".parse().unwrap(),
            admin_listen: "127.0.0.1:0".parse().unwrap(),
            admin_token: Some(TOKEN.into()),
            ..NodeConfig::default()
        };
        config.source.width = 160;
        config.source.height = 100;
        config.session.frame_interval_ms = 20;
        config.invitation.password = Some("secret-pw".into());
        tweak(&mut config);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let system = actix::System::new();
            system.block_on(async move {
                let (node, report) = match Node::start(config).await {
                    Ok(v) => v,
                    Err(e) => {
                        ready_tx.send(Err(e.to_string())).unwrap();
                        return;
                    }
                };
                let (inv, password) = report.invitation.clone().unwrap();
                ready_tx
                    .send(Ok((
                        report.admin_addr,
                        report.metrics_addr,
                        report.session.as_ref().unwrap().id.clone(),
                        inv.connection_string,
                        password,
                    )))
                    .unwrap();
                let _ = stop_rx.await;
                node.shutdown().await;
            });
        });
        let (admin, metrics, session, ticket, password) = ready_rx.recv().unwrap().unwrap();
        Self {
            admin,
            metrics,
            session,
            ticket,
            password,
            stop: Some(stop_tx),
            thread: Some(thread),
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }

    /// A request with the right token; returns status and body text.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
        self.call_with(method, path, Some(TOKEN), body.map(|b| b.to_string()))
    }

    fn call_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> (u16, String) {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(20))
            .build();
        let mut req = agent.request(method, &self.url(path));
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        let result = match body {
            Some(b) => req.set("Content-Type", "application/json").send_string(&b),
            None => req.call(),
        };
        match result {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }

    fn json(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, text) = self.call(method, path, body);
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {text}"
        );
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
    }

    /// Joins a viewer for `seconds` on a runtime of its own.
    fn viewer(
        &self,
        name: &str,
        seconds: u64,
        request_control: bool,
    ) -> std::thread::JoinHandle<()> {
        let options = tandem_viewer::ViewerOptions {
            ticket: self.ticket.parse().unwrap(),
            name: name.into(),
            password: self.password.clone(),
            frames: None,
            duration: Some(Duration::from_secs(seconds)),
            request_control: request_control.then_some(tandem_proto::ControlLevel::Interactive),
            type_text: None,
            hold_keys: Vec::new(),
            stall: None,
            send_input: Vec::new(),
            stop: None,
            latency: false,
        };
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let _ = rt.block_on(tandem_viewer::run(options, |_| {}));
        })
    }

    /// Waits until `f` holds for the JSON at `path`.
    fn wait_for(&self, path: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.json("GET", path, None);
            if f(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {v}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn error_of(text: &str) -> String {
    let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error field: {text}"))
        .to_owned()
}

#[test]
fn health_needs_no_token_and_api_needs_the_right_one() {
    let node = TestNode::start();
    let (status, text) = node.call_with("GET", "/healthz", None, None);
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"status": "ok"})
    );

    let (status, text) = node.call_with("GET", "/api/v1/sessions", None, None);
    assert_eq!(status, 401, "{text}");
    assert!(error_of(&text).contains("token"));
    let (status, text) = node.call_with("GET", "/api/v1/sessions", Some("wrong-token"), None);
    assert_eq!(status, 401, "{text}");
    error_of(&text);
    // Even unknown API routes hide behind the token.
    let (status, _) = node.call_with("GET", "/api/v1/nothing", None, None);
    assert_eq!(status, 401);
    let (status, text) = node.call("GET", "/api/v1/nothing", None);
    assert_eq!(status, 404);
    error_of(&text);
}

#[test]
fn sessions_list_pause_resume_rect_and_close() {
    let node = TestNode::start();
    let list = node.json("GET", "/api/v1/sessions", None);
    let sessions = list.as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["id"], node.session.as_str());
    assert_eq!(sessions[0]["state"], "open");
    assert_eq!(sessions[0]["shared_rect"], json!([0, 0, 160, 100]));

    let id = &node.session;
    let s = node.json("POST", &format!("/api/v1/sessions/{id}/pause"), None);
    assert_eq!(s["state"], "paused");
    let s = node.json("POST", &format!("/api/v1/sessions/{id}/resume"), None);
    assert_eq!(s["state"], "open");

    let r = node.json(
        "PUT",
        &format!("/api/v1/sessions/{id}/shared-rect"),
        Some(json!({"x": 10, "y": 20, "width": 50, "height": 40})),
    );
    assert_eq!(r["shared_rect"], json!([10, 20, 50, 40]));
    let r = node.json(
        "PUT",
        &format!("/api/v1/sessions/{id}/shared-rect"),
        Some(json!({"full": true})),
    );
    assert_eq!(r["shared_rect"], json!([0, 0, 160, 100]));

    // Invalid values: 422; malformed JSON: 400; unknown session: 404.
    let (status, text) = node.call(
        "PUT",
        &format!("/api/v1/sessions/{id}/shared-rect"),
        Some(json!({"x": 0, "y": 0, "width": 0, "height": 10})),
    );
    assert_eq!(status, 422, "{text}");
    error_of(&text);
    let (status, text) = node.call(
        "PUT",
        &format!("/api/v1/sessions/{id}/shared-rect"),
        Some(json!({"x": 1})),
    );
    assert_eq!(status, 422, "{text}");
    let (status, text) = node.call_with(
        "PUT",
        &format!("/api/v1/sessions/{id}/shared-rect"),
        Some(TOKEN),
        Some("{\"full\": tru".into()),
    );
    assert_eq!(status, 400, "{text}");
    assert!(error_of(&text).contains("malformed"), "{text}");
    let (status, text) = node.call("POST", "/api/v1/sessions/nosuchsession/pause", None);
    assert_eq!(status, 404, "{text}");
    error_of(&text);

    let (status, _) = node.call("DELETE", &format!("/api/v1/sessions/{id}"), None);
    assert_eq!(status, 204);
    assert_eq!(node.json("GET", "/api/v1/sessions", None), json!([]));
    let (status, _) = node.call("DELETE", &format!("/api/v1/sessions/{id}"), None);
    assert_eq!(status, 404);
}

#[test]
fn framebuffer_is_a_png_of_the_session_size() {
    let node = TestNode::start();
    let path = format!("/api/v1/sessions/{}/framebuffer.png", node.session);
    let deadline = Instant::now() + Duration::from_secs(20);
    let bytes = loop {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(20))
            .build();
        match agent
            .get(&node.url(&path))
            .set("Authorization", &format!("Bearer {TOKEN}"))
            .call()
        {
            Ok(r) => {
                assert_eq!(r.content_type(), "image/png");
                let mut bytes = Vec::new();
                r.into_reader().read_to_end(&mut bytes).unwrap();
                break bytes;
            }
            // No frame captured yet.
            Err(ureq::Error::Status(409, _)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("{e}"),
        }
    };
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let reader = decoder.read_info().unwrap();
    assert_eq!((reader.info().width, reader.info().height), (160, 100));
    let (status, _) = node.call("GET", "/api/v1/sessions/nope/framebuffer.png", None);
    assert_eq!(status, 404);
}

#[test]
fn invitations_create_list_patch_revoke() {
    let node = TestNode::start();
    let inv = node.json(
        "POST",
        "/api/v1/invitations",
        Some(json!({"password": "password-1", "attendee_limit": 3, "group": "team"})),
    );
    assert_eq!(inv["session"], node.session.as_str());
    assert_eq!(inv["attendee_limit"], 3);
    assert_eq!(inv["group"], "team");
    assert!(
        inv["connection_string"]
            .as_str()
            .unwrap()
            .starts_with("tandem"),
        "{inv}"
    );
    assert!(inv.get("password").is_none());
    let id = inv["id"].as_str().unwrap().to_owned();

    let list = node.json("GET", "/api/v1/invitations", None);
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}"); // plus the startup one

    // Duplicate group: 409.
    let (status, text) = node.call(
        "POST",
        "/api/v1/invitations",
        Some(json!({"password": "password-2", "attendee_limit": 3, "group": "team"})),
    );
    assert_eq!(status, 409, "{text}");
    assert!(error_of(&text).contains("team"));
    // Invalid limit: 422; unknown session: 404; wrong type: 422.
    let (status, text) = node.call(
        "POST",
        "/api/v1/invitations",
        Some(json!({"password": "password-p", "attendee_limit": 0})),
    );
    assert_eq!(status, 422, "{text}");
    let (status, text) = node.call(
        "POST",
        "/api/v1/invitations",
        Some(json!({"password": "password-p", "session": "nosuch"})),
    );
    assert_eq!(status, 404, "{text}");
    let (status, text) = node.call("POST", "/api/v1/invitations", Some(json!({"password": 5})));
    assert_eq!(status, 422, "{text}");
    // Too large a body: 413, still the JSON error shape.
    let big = format!("{{\"password\": \"{}\"}}", "x".repeat(80 * 1024));
    let (status, text) = node.call_with("POST", "/api/v1/invitations", Some(TOKEN), Some(big));
    assert_eq!(status, 413, "{text}");
    error_of(&text);

    let patched = node.json(
        "PATCH",
        &format!("/api/v1/invitations/{id}"),
        Some(json!({"attendee_limit": 7})),
    );
    assert_eq!(patched["attendee_limit"], 7);
    assert_eq!(patched["revoked"], false);
    let revoked = node.json("POST", &format!("/api/v1/invitations/{id}/revoke"), None);
    assert_eq!(revoked["revoked"], true);
    let (status, text) = node.call(
        "PATCH",
        &format!("/api/v1/invitations/{id}"),
        Some(json!({"revoked": false})),
    );
    assert_eq!(status, 409, "{text}");
    let (status, _) = node.call("POST", "/api/v1/invitations/nosuch/revoke", None);
    assert_eq!(status, 404);
    let (status, _) = node.call(
        "PATCH",
        "/api/v1/invitations/nosuch",
        Some(json!({"revoked": true})),
    );
    assert_eq!(status, 404);
}

#[test]
fn attendees_levels_control_requests_and_disconnect() {
    let node = TestNode::start();
    let viewer = node.viewer("alice", 30, true);
    let list = node.wait_for("/api/v1/control-requests", "a control request", |v| {
        v.as_array().is_some_and(|a| !a.is_empty())
    });
    let a = &list[0];
    assert_eq!(a["user"], "alice");
    assert_eq!(a["pending_request"], "interactive");
    let id = a["id"].as_u64().unwrap();

    let live = node.json("GET", "/api/v1/attendees", None);
    assert_eq!(live[0]["id"], id);
    assert_eq!(live[0]["state"], "connected");
    assert!(live[0]["idle_seconds"].is_u64());

    let (status, text) = node.call("POST", &format!("/api/v1/control-requests/{id}/deny"), None);
    assert_eq!(status, 204, "{text}");
    // Nothing pending any more: 409.
    let (status, text) = node.call(
        "POST",
        &format!("/api/v1/control-requests/{id}/grant"),
        None,
    );
    assert_eq!(status, 409, "{text}");
    error_of(&text);
    let (status, _) = node.call("POST", "/api/v1/control-requests/999999/grant", None);
    assert_eq!(status, 404);
    let (status, _) = node.call("POST", "/api/v1/control-requests/abc/grant", None);
    assert_eq!(status, 404);

    let a = node.json(
        "PUT",
        &format!("/api/v1/attendees/{id}/control-level"),
        Some(json!({"level": "interactive"})),
    );
    assert_eq!(a["control_level"], "interactive");
    let (status, text) = node.call(
        "PUT",
        &format!("/api/v1/attendees/{id}/control-level"),
        Some(json!({"level": "bogus"})),
    );
    assert_eq!(status, 422, "{text}");
    let (status, _) = node.call(
        "PUT",
        "/api/v1/attendees/999999/control-level",
        Some(json!({"level": "view"})),
    );
    assert_eq!(status, 404);

    let (status, text) = node.call(
        "DELETE",
        &format!("/api/v1/attendees/{id}"),
        Some(json!({"reason": "meeting over"})),
    );
    assert_eq!(status, 204, "{text}");
    let (status, _) = node.call("DELETE", &format!("/api/v1/attendees/{id}"), None);
    assert_eq!(status, 404);
    viewer.join().unwrap();

    assert_eq!(node.json("GET", "/api/v1/attendees", None), json!([]));
    let all = node.wait_for("/api/v1/attendees?state=all", "the history", |v| {
        v.as_array().is_some_and(|a| a.len() == 1)
    });
    assert_eq!(all[0]["id"], id);
    assert_eq!(all[0]["state"], "disconnected");
    assert!(all[0]["disconnected_at"].is_string(), "{all}");
    assert!(all[0]["reason"].is_string(), "{all}");
    let (status, _) = node.call("GET", "/api/v1/attendees?state=bogus", None);
    assert_eq!(status, 400);
}

#[test]
fn openapi_document_lists_every_route() {
    let node = TestNode::start();
    let doc = node.json("GET", "/api/v1/openapi.json", None);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/healthz", &["get"][..]),
        ("/metrics", &["get"]),
        ("/api/v1/openapi.json", &["get"]),
        ("/api/v1/sessions", &["get"]),
        ("/api/v1/sessions/{id}", &["delete"]),
        ("/api/v1/sessions/{id}/pause", &["post"]),
        ("/api/v1/sessions/{id}/resume", &["post"]),
        ("/api/v1/sessions/{id}/shared-rect", &["put"]),
        ("/api/v1/sessions/{id}/framebuffer.png", &["get"]),
        ("/api/v1/sessions/{id}/windows", &["get"]),
        ("/api/v1/sessions/{id}/monitors", &["get"]),
        ("/api/v1/sessions/{id}/filter", &["get", "put", "delete"]),
        ("/api/v1/invitations", &["get", "post"]),
        ("/api/v1/invitations/{id}", &["patch"]),
        ("/api/v1/invitations/{id}/revoke", &["post"]),
        ("/api/v1/attendees", &["get"]),
        ("/api/v1/attendees/{id}", &["delete"]),
        ("/api/v1/attendees/{id}/control-level", &["put"]),
        ("/api/v1/control-requests", &["get"]),
        ("/api/v1/control-requests/{id}/grant", &["post"]),
        ("/api/v1/control-requests/{id}/deny", &["post"]),
        ("/api/v1/events", &["get"]),
    ] {
        let entry = paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} missing from the document"));
        for m in methods {
            assert!(entry.get(*m).is_some(), "{m} {path} missing");
        }
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[test]
fn methods_a_path_lacks_answer_405_with_the_documented_allow() {
    let node = TestNode::start();
    let doc = node.json("GET", "/api/v1/openapi.json", None);
    let all = [
        "GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "TRACE", "HEAD",
    ];
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(20))
        .build();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let documented: Vec<&str> = all
            .iter()
            .copied()
            .filter(|m| item.get(m.to_ascii_lowercase()).is_some())
            .collect();
        assert!(!documented.is_empty(), "{path} has no operation");
        // Path parameters filled with something the router matches.
        let concrete = path
            .replace("{id}", &node.session)
            .replace("{name}", "clipboard")
            .replace("{attendee}", "1");
        for method in all.iter().filter(|m| !documented.contains(m)) {
            let req = agent
                .request(method, &node.url(&concrete))
                .set("Authorization", &format!("Bearer {TOKEN}"));
            let response = match req.call() {
                Ok(r) => r,
                Err(ureq::Error::Status(_, r)) => r,
                Err(e) => panic!("{method} {path}: {e}"),
            };
            assert_eq!(response.status(), 405, "{method} {concrete}");
            let allow = response.header("allow").unwrap_or_default().to_owned();
            let mut allowed: Vec<&str> = allow.split(", ").collect();
            allowed.sort_unstable();
            let mut expected = documented.clone();
            expected.sort_unstable();
            assert_eq!(allowed, expected, "Allow of {path}");
            if *method != "HEAD" {
                assert!(
                    error_of(&response.into_string().unwrap()).contains("not allowed"),
                    "{method} {path}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} method/path pairs checked");
    // Without a token an /api path answers 401 whatever the method.
    let (status, _) = node.call_with("TRACE", "/api/v1/sessions", None, None);
    assert_eq!(status, 401);
}

#[test]
fn metrics_are_prometheus_text_and_move() {
    let node = TestNode::start();
    let scrape = || {
        let (status, text) = node.call_with("GET", "/metrics", None, None);
        assert_eq!(status, 200);
        let line = text
            .lines()
            .find(|l| l.starts_with("tandem_frames_captured_total"))
            .unwrap_or_else(|| panic!("no tandem_frames_captured_total in {text}"))
            .to_owned();
        line.rsplit(' ').next().unwrap().parse::<f64>().unwrap()
    };
    let r = ureq::get(&node.url("/metrics")).call().unwrap();
    assert_eq!(r.header("content-type"), Some("text/plain; version=0.0.4"));
    let first = scrape();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if scrape() > first {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "frames captured stayed at {first}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn event_stream_replays_history_then_goes_live() {
    let node = TestNode::start();
    let agent = ureq::AgentBuilder::new()
        .timeout_read(Duration::from_secs(20))
        .build();
    let r = agent
        .get(&node.url("/api/v1/events?history=100"))
        .set("Authorization", &format!("Bearer {TOKEN}"))
        .call()
        .unwrap();
    assert!(r.content_type().starts_with("text/event-stream"));
    let mut lines = BufReader::new(r.into_reader()).lines();
    let mut next_event = || -> (u64, Value) {
        let mut id = None;
        loop {
            let line = lines.next().unwrap().unwrap();
            if let Some(v) = line.strip_prefix("id: ") {
                id = Some(v.parse::<u64>().unwrap());
            } else if let Some(d) = line.strip_prefix("data: ") {
                let v: Value = serde_json::from_str(d).unwrap();
                let id = id.expect("id before data");
                assert_eq!(v["seq"], id);
                return (id, v);
            }
        }
    };
    let (seq, first) = next_event();
    assert_eq!(first["kind"], "session_opened", "{first}");
    assert_eq!(first["session"], node.session.as_str());
    // A live event after the history.
    node.json(
        "POST",
        &format!("/api/v1/sessions/{}/pause", node.session),
        None,
    );
    loop {
        let (s, e) = next_event();
        assert!(s > seq);
        if e["kind"] == "graphics_paused" {
            break;
        }
    }
    let (status, _) = node.call_with("GET", "/api/v1/events", None, None);
    assert_eq!(status, 401);
}

#[test]
fn token_is_generated_into_the_data_directory_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let first = {
        let d = data.clone();
        let node = TestNode::start_with(move |c| {
            c.admin_token = None;
            c.data_dir = d;
        });
        let token = std::fs::read_to_string(data.join("admin.token")).unwrap();
        let token = token.trim().to_owned();
        assert!(token.len() >= 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(data.join("admin.token"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (status, _) = node.call_with("GET", "/api/v1/sessions", Some(&token), None);
        assert_eq!(status, 200);
        let (status, _) = node.call_with("GET", "/api/v1/sessions", Some(TOKEN), None);
        assert_eq!(status, 401);
        token
    };
    // The first node's registry threads release sled's lock a moment after
    // its System stops (a real restart is a new process); wait for that.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while tandem_registry::Registry::open(&data.join("registry"), Default::default()).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "registry still locked by the stopped node"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let d = data.clone();
    let node = TestNode::start_with(move |c| {
        c.admin_token = None;
        c.data_dir = d;
    });
    let (status, _) = node.call_with("GET", "/api/v1/sessions", Some(&first), None);
    assert_eq!(status, 200);
}

#[test]
fn separate_metrics_address_serves_only_metrics() {
    let node = TestNode::start_with(|c| c.metrics_listen = Some("127.0.0.1:0".parse().unwrap()));
    let addr = node.metrics.expect("metrics address reported");
    let text = ureq::get(&format!("http://{addr}/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(text.contains("tandem_frames_captured_total"));
    match ureq::get(&format!("http://{addr}/api/v1/sessions"))
        .set("Authorization", &format!("Bearer {TOKEN}"))
        .call()
    {
        Err(ureq::Error::Status(404, r)) => {
            error_of(&r.into_string().unwrap());
        }
        other => panic!("the API must not be served on the metrics address: {other:?}"),
    }
}

#[test]
fn open_a_session_on_a_new_source_and_refuse_a_shared_one() {
    let node = TestNode::start();
    let body = json!({"source": "synthetic", "width": 64, "height": 48, "seed": 9, "name": "second",
        "default_control_level": "none", "control_policy": "grant-all"});
    let (status, text) = node.call("POST", "/api/v1/sessions", Some(body.clone()));
    assert_eq!(status, 201, "{text}");
    let created: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(created["name"], "second");
    assert_eq!(created["shared_rect"], json!([0, 0, 64, 48]));
    assert_eq!(created["default_control_level"], "none");
    let id = created["id"].as_str().unwrap().to_owned();

    let list = node.json("GET", "/api/v1/sessions", None);
    assert_eq!(list.as_array().unwrap().len(), 2);

    // The same source again: like a second sharing session on one desktop.
    let (status, text) = node.call("POST", "/api/v1/sessions", Some(body));
    assert_eq!(status, 409, "{text}");
    assert!(error_of(&text).contains("already shared"), "{text}");

    for bad in [
        json!({"source": "vnc"}),
        json!({"source": "synthetic", "width": 0}),
        json!({"source": "synthetic", "seed": 10, "frame_interval_ms": 1}),
        json!({"source": "synthetic", "seed": 11, "default_control_level": "interactive"}),
        json!({"source": "synthetic", "seed": 12, "control_policy": "whatever"}),
    ] {
        let (status, text) = node.call("POST", "/api/v1/sessions", Some(bad.clone()));
        assert_eq!(status, 422, "{bad} -> {text}");
        assert!(!error_of(&text).is_empty());
    }
    let (status, _) = node.call(
        "POST",
        "/api/v1/sessions",
        Some(json!({"source": "synthetic", "colour": 1})),
    );
    assert!(
        status == 400 || status == 422,
        "unknown field accepted: {status}"
    );

    // The new session takes invitations; its connection string names it.
    let (status, text) = node.call(
        "POST",
        "/api/v1/invitations",
        Some(json!({"session": id, "password": "second-pw", "attendee_limit": 2})),
    );
    assert_eq!(status, 201, "{text}");
    let inv: Value = serde_json::from_str(&text).unwrap();
    assert!(inv["connection_string"]
        .as_str()
        .unwrap()
        .contains(&format!("/s/{id}?")));

    // Closing it frees the source for a new session.
    let (status, _) = node.call("DELETE", &format!("/api/v1/sessions/{id}"), None);
    assert_eq!(status, 204);
    let again = json!({"source": "synthetic", "width": 64, "height": 48, "seed": 9});
    let (status, text) = node.call("POST", "/api/v1/sessions", Some(again));
    assert_eq!(status, 201, "{text}");
}

#[test]
fn desktop_routes_on_a_source_without_windows() {
    let node = TestNode::start();
    let id = &node.session;
    // The synthetic desktop is one monitor and reports no windows.
    let monitors = node.json("GET", &format!("/api/v1/sessions/{id}/monitors"), None);
    assert_eq!(
        monitors,
        json!([{"name": "screen", "primary": true, "rect": [0, 0, 160, 100]}])
    );
    assert_eq!(
        node.json("GET", &format!("/api/v1/sessions/{id}/windows"), None),
        json!([])
    );
    // Sharing a monitor by name; an unknown one lists the known ones.
    node.json(
        "PUT",
        &format!("/api/v1/sessions/{id}/shared-rect"),
        Some(json!({"x": 0, "y": 0, "width": 20, "height": 20})),
    );
    let r = node.json(
        "PUT",
        &format!("/api/v1/sessions/{id}/shared-rect"),
        Some(json!({"monitor": "screen"})),
    );
    assert_eq!(r["shared_rect"], json!([0, 0, 160, 100]));
    let (status, text) = node.call(
        "PUT",
        &format!("/api/v1/sessions/{id}/shared-rect"),
        Some(json!({"monitor": "HDMI-9"})),
    );
    // Which monitors exist is the desktop's state: a conflict.
    assert_eq!(status, 409, "{text}");
    assert!(error_of(&text).contains("screen"), "{text}");
    let (status, text) = node.call(
        "PUT",
        &format!("/api/v1/sessions/{id}/shared-rect"),
        Some(json!({"monitor": "screen", "full": true})),
    );
    assert_eq!(status, 422, "{text}");
    // No filter yet; the synthetic desktop cannot filter windows; bounds hold.
    let (status, text) = node.call("GET", &format!("/api/v1/sessions/{id}/filter"), None);
    assert_eq!(status, 404, "{text}");
    let (status, text) = node.call(
        "PUT",
        &format!("/api/v1/sessions/{id}/filter"),
        Some(json!({"classes": ["XTerm"]})),
    );
    // A schema-valid filter this kind of source cannot apply: a conflict.
    assert_eq!(status, 409, "{text}");
    assert!(error_of(&text).contains("window filters"), "{text}");
    let too_many: Vec<u32> = (0..65).collect();
    let (status, text) = node.call(
        "PUT",
        &format!("/api/v1/sessions/{id}/filter"),
        Some(json!({"pids": too_many})),
    );
    assert_eq!(status, 422, "{text}");
    let (status, text) = node.call(
        "PUT",
        &format!("/api/v1/sessions/{id}/filter"),
        Some(json!({"classes": ["XTerm"], "colour": "red"})),
    );
    assert_eq!(status, 422, "{text}");
    assert!(error_of(&text).contains("unknown field"), "{text}");
    let (status, _) = node.call("DELETE", &format!("/api/v1/sessions/{id}/filter"), None);
    assert_eq!(status, 204, "removing no filter is fine");
    let (status, _) = node.call("GET", "/api/v1/sessions/nosuch/windows", None);
    assert_eq!(status, 404);
}
