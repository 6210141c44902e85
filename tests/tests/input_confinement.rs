//! An interactive attendee's keys and buttons on a real X display (Xvfb,
//! `xev` windows reporting what reaches them, a `tandem node --source x11`
//! process and a raw QUIC attendee): they count only inside the shared
//! rectangle and on windows the filter shares, as pointer moves do; and a
//! stalled X server (SIGSTOP) holds up neither joins nor the admin API,
//! its input waiting in a bounded queue (ARCHITECTURE.md, "Input").

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tandem_proto::{
    ClientMessage, ConnectionString, ControlLevel, Hello, InputEvent, MouseButton, ServerMessage,
    PROTOCOL_VERSION,
};
use tandem_tests::xserver::XServer;
use tandem_tests::{http_get, spawn_view, summary, text, NodeProcess};
use tandem_transport::{write_message, MessageReader, TransportConfig};

const TOKEN: &str = "input-confinement-token-0123456789";
const PASSWORD: &str = "confined-input";
const PATIENCE: Duration = Duration::from_secs(30);

fn start_node(dir: &Path, display: &str, extra_source: &str) -> NodeProcess {
    let config = format!(
        r#"data_dir = "{}"
quic_listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
admin_token = "{TOKEN}"
[source]
kind = "x11"
display = "{display}"
{extra_source}
[session]
control_policy = "grant-all"
[invitation]
password = "{PASSWORD}"
attendee_limit = 4
"#,
        dir.join("data").display()
    );
    NodeProcess::start(dir, &config)
}

/// A sample of `tandem_input_events_total`, 0 before the first event of its kind.
fn input_events(node: &NodeProcess, result: &str) -> u64 {
    let (status, body) = http_get(&format!("{}/metrics", node.admin_url));
    assert_eq!(status, 200);
    let name = format!("tandem_input_events_total{{result=\"{result}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&name))
        .map(|v| v.trim().parse::<f64>().unwrap() as u64)
        .unwrap_or(0)
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An `xev` window named `name` at `geometry`, its report written to a file.
fn xev(x: &mut XServer, dir: &Path, name: &str, geometry: &str) -> (u32, PathBuf) {
    let log = dir.join(format!("{name}.xev"));
    x.spawn(
        "sh",
        &[
            "-c",
            &format!(
                "exec xev -name {name} -geometry {geometry} > {}",
                log.display()
            ),
        ],
    );
    let deadline = Instant::now() + PATIENCE;
    loop {
        let out = x.run("xdotool", &["search", "--onlyvisible", "--name", name]);
        if let Some(id) = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.trim().parse().ok())
        {
            return (id, log);
        }
        assert!(Instant::now() < deadline, "no xev window {name}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How many `kind` events (`ButtonPress`, `KeyPress`) `xev` reported.
fn reported(log: &Path, kind: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .matches(&format!("{kind} event"))
        .count()
}

/// A raw attendee: joined, interactive, sending input events.
struct Attendee {
    rt: tokio::runtime::Runtime,
    control: quinn::SendStream,
    _conn: quinn::Connection,
}

impl Attendee {
    fn join(node: &NodeProcess) -> Attendee {
        let ticket: ConnectionString = node.ticket.parse().unwrap();
        let addr: SocketAddr = node.quic_addr.parse().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (conn, control) = rt.block_on(async {
            let config = TransportConfig::default();
            let endpoint =
                tandem_transport::client_endpoint("127.0.0.1:0".parse().unwrap(), &config).unwrap();
            let conn = tandem_transport::connect_with(&endpoint, addr, ticket.fingerprint, &config)
                .await
                .unwrap();
            let (mut tx, rx) = conn.open_bi().await.unwrap();
            let hello = ClientMessage::Hello(Hello {
                version: PROTOCOL_VERSION,
                session: ticket.session.clone(),
                invitation: ticket.invitation.clone(),
                name: "clicker".into(),
                password: PASSWORD.into(),
            });
            write_message(&mut tx, &hello).await.unwrap();
            let mut reader = MessageReader::new(rx);
            match reader.next::<ServerMessage>().await.unwrap() {
                Some(ServerMessage::Welcome(_)) => {}
                other => panic!("not welcomed: {other:?}"),
            }
            let ask = ClientMessage::RequestControl {
                level: ControlLevel::Interactive,
            };
            write_message(&mut tx, &ask).await.unwrap();
            loop {
                match reader.next::<ServerMessage>().await.unwrap() {
                    Some(ServerMessage::ControlLevelChanged {
                        level: ControlLevel::Interactive,
                    }) => break,
                    Some(_) => {}
                    None => panic!("control stream closed before the grant"),
                }
            }
            // Read and drop the rest: an attendee must read its control stream.
            tokio::spawn(
                async move { while let Ok(Some(_)) = reader.next::<ServerMessage>().await {} },
            );
            (conn, tx)
        });
        Attendee {
            rt,
            control,
            _conn: conn,
        }
    }

    fn send(&mut self, events: &[InputEvent]) {
        let control = &mut self.control;
        self.rt.block_on(async {
            for e in events {
                write_message(control, &ClientMessage::Input(*e))
                    .await
                    .unwrap();
            }
        });
    }
}

fn button(pressed: bool) -> InputEvent {
    InputEvent::MouseButton {
        button: MouseButton::Left,
        pressed,
    }
}

fn click() -> [InputEvent; 2] {
    [button(true), button(false)]
}

fn key(keysym: u32) -> [InputEvent; 2] {
    [
        InputEvent::Key {
            keysym,
            pressed: true,
        },
        InputEvent::Key {
            keysym,
            pressed: false,
        },
    ]
}

/// Every event the node was sent has been judged (injected or dropped).
fn settle(node: &NodeProcess, sent: u64) {
    wait_for("the node to judge the input", PATIENCE, || {
        input_events(node, "accepted") + input_events(node, "dropped") >= sent
    });
}

#[test]
fn clicks_and_keys_count_only_on_shared_windows_inside_the_shared_rectangle() {
    let dir = tempfile::tempdir().unwrap();
    let mut x = XServer::start(640, 400);
    // alpha: shared; beta: inside the rectangle, not shared; gamma: shared,
    // outside the rectangle.
    let (alpha, alpha_log) = xev(&mut x, dir.path(), "alpha", "160x120+20+20");
    let (beta, beta_log) = xev(&mut x, dir.path(), "beta", "160x120+220+20");
    let (gamma, gamma_log) = xev(&mut x, dir.path(), "gamma", "160x120+460+20");
    let node = start_node(
        dir.path(),
        x.display(),
        &format!("filter = {{ windows = [{alpha}, {gamma}] }}"),
    );
    let session = node.session_id();
    let (status, body) = node.api(
        TOKEN,
        "PUT",
        &format!("/api/v1/sessions/{session}/shared-rect"),
        Some(r#"{"x": 0, "y": 0, "width": 420, "height": 300}"#),
    );
    assert_eq!(status, 200, "{body}");
    let mut attendee = Attendee::join(&node);
    let mut sent = 0;
    let mut send = |attendee: &mut Attendee, events: &[InputEvent]| {
        attendee.send(events);
        sent += events.len() as u64;
        settle(&node, sent);
    };

    // A click on the shared window arrives.
    send(&mut attendee, &[InputEvent::MouseMove { x: 80, y: 60 }]);
    send(&mut attendee, &click());
    wait_for("alpha's click", PATIENCE, || {
        reported(&alpha_log, "ButtonPress") == 1
    });
    // On the window the filter leaves out, inside the rectangle: dropped.
    send(&mut attendee, &[InputEvent::MouseMove { x: 280, y: 60 }]);
    send(&mut attendee, &click());
    // The sharer moves the pointer onto gamma, outside the rectangle: a
    // click there (the attendee cannot move it out) is dropped too.
    x.xdotool(&["mousemove", "520", "60"]);
    send(&mut attendee, &click());
    // Keys go to a shared focused window only.
    x.xdotool(&["windowfocus", "--sync", &beta.to_string()]);
    send(&mut attendee, &key(0x78)); // x, into beta: dropped
    x.xdotool(&["windowfocus", "--sync", &alpha.to_string()]);
    send(&mut attendee, &key(0x79)); // y, into alpha
    wait_for("alpha's key", PATIENCE, || {
        reported(&alpha_log, "KeyPress") == 1
    });
    assert_eq!(
        input_events(&node, "dropped"),
        3,
        "beta's click, the click outside and the key into beta"
    );

    // Shared now, beta takes a key and a click; gamma, inside the whole
    // desktop, a click. Each window reports exactly that one: the earlier
    // ones, injected before these if at all, never reached it.
    let (status, body) = node.api(
        TOKEN,
        "PUT",
        &format!("/api/v1/sessions/{session}/filter"),
        Some(&format!(r#"{{"windows": [{alpha}, {beta}, {gamma}]}}"#)),
    );
    assert_eq!(status, 200, "{body}");
    x.xdotool(&["windowfocus", "--sync", &beta.to_string()]);
    send(&mut attendee, &key(0x7a)); // z, into beta
    send(&mut attendee, &[InputEvent::MouseMove { x: 280, y: 70 }]);
    send(&mut attendee, &click());
    let (status, body) = node.api(
        TOKEN,
        "PUT",
        &format!("/api/v1/sessions/{session}/shared-rect"),
        Some(r#"{"full": true}"#),
    );
    assert_eq!(status, 200, "{body}");
    x.xdotool(&["mousemove", "530", "70"]);
    send(&mut attendee, &click());
    wait_for("beta's and gamma's input", PATIENCE, || {
        reported(&beta_log, "ButtonPress") == 1
            && reported(&beta_log, "KeyPress") == 1
            && reported(&gamma_log, "ButtonPress") == 1
    });
    let beta_report = std::fs::read_to_string(&beta_log).unwrap();
    assert!(beta_report.contains("keysym 0x7a, z"), "{beta_report}");
    assert!(!beta_report.contains("keysym 0x78"), "{beta_report}");
    let alpha_report = std::fs::read_to_string(&alpha_log).unwrap();
    assert!(alpha_report.contains("keysym 0x79, y"), "{alpha_report}");
    assert_eq!(reported(&alpha_log, "ButtonPress"), 1, "{alpha_report}");
    assert_eq!(input_events(&node, "dropped"), 3);
}

/// A viewer's output once it ended; killed (and the test failed) if it
/// does not end in time.
fn finish(mut viewer: std::process::Child) -> std::process::Output {
    let deadline = Instant::now() + PATIENCE;
    while viewer.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = viewer.kill();
            panic!(
                "the viewer did not end: {}",
                text(&viewer.wait_with_output().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    viewer.wait_with_output().unwrap()
}

#[test]
fn a_stalled_x_server_holds_up_neither_joins_nor_the_admin_api() {
    const BURST: u64 = 2000;
    let dir = tempfile::tempdir().unwrap();
    let x = XServer::start(320, 240);
    let node = start_node(dir.path(), x.display(), "");
    let mut attendee = Attendee::join(&node);
    // A first viewer has the desktop before the stall.
    let first = spawn_view(&[
        &node.ticket,
        "--headless",
        "--password",
        PASSWORD,
        "--frames",
        "1",
    ]);
    let out = finish(first);
    assert!(out.status.success(), "{}", text(&out));

    let stop = |signal: &str| {
        let status = Command::new("kill")
            .args([signal, &x.server_pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    stop("-STOP");
    // A keysym the keymap lacks needs a round trip (rebinding a spare
    // keycode): the injection blocks in the stopped server. The moves behind
    // it fill the queue; the rest overflow.
    let mut events = vec![InputEvent::Key {
        keysym: 0x20ac,
        pressed: true,
    }];
    events.extend((0..BURST).map(|i| InputEvent::MouseMove {
        x: (i % 300) as u32,
        y: 10,
    }));
    attendee.send(&events);
    let queue = 256;
    wait_for("the overflow", PATIENCE, || {
        input_events(&node, "overflow") >= BURST - queue
    });

    // Meanwhile the manager answers: the sharer's calls and a new join.
    for path in ["/api/v1/sessions", "/api/v1/attendees"] {
        let (status, body) = node.api(TOKEN, "GET", path, None);
        assert_eq!(status, 200, "{path}: {body}");
        assert!(body.contains("\"id\""), "{path}: {body}");
    }
    let (status, body) = node.api(TOKEN, "GET", "/api/v1/attendees", None);
    assert_eq!(status, 200);
    assert!(body.contains("clicker"), "{body}");
    let joined = spawn_view(&[
        &node.ticket,
        "--headless",
        "--password",
        PASSWORD,
        "--name",
        "latecomer",
        "--frames",
        "1",
    ]);
    let out = finish(joined);
    assert!(out.status.success(), "{}", text(&out));
    let s = summary(&String::from_utf8_lossy(&out.stdout));
    assert!(s.updates >= 1, "the late viewer got the picture: {s:?}");
    let overflow = input_events(&node, "overflow");
    assert!(
        (BURST - queue..=BURST + 1 - queue).contains(&overflow),
        "one in the sink, {queue} queued, the rest dropped: {overflow}"
    );

    // Resumed, the server gets the queued input in order.
    stop("-CONT");
    wait_for("the queued input", PATIENCE, || {
        input_events(&node, "accepted") + overflow == BURST + 1
    });
    let (status, _) = node.api(TOKEN, "GET", "/api/v1/sessions", None);
    assert_eq!(status, 200);
}

#[test]
fn a_key_held_when_the_node_stops_is_released_on_the_display() {
    let dir = tempfile::tempdir().unwrap();
    let mut x = XServer::start(320, 240);
    let (alpha, log) = xev(&mut x, dir.path(), "alpha", "200x150+10+10");
    x.xdotool(&["windowfocus", "--sync", &alpha.to_string()]);
    let node = start_node(dir.path(), x.display(), "");
    let mut attendee = Attendee::join(&node);
    attendee.send(&[InputEvent::Key {
        keysym: 0xffe1,
        pressed: true,
    }]);
    wait_for("the Shift press", PATIENCE, || {
        reported(&log, "KeyPress") == 1
    });
    assert_eq!(reported(&log, "KeyRelease"), 0, "held");
    // The node releases what its attendees hold before it exits.
    assert!(node.terminate(), "the node exits cleanly");
    wait_for("the Shift release", PATIENCE, || {
        reported(&log, "KeyRelease") == 1
    });
    let report = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        report.matches("keysym 0xffe1, Shift_L").count(),
        2,
        "{report}"
    );
}
