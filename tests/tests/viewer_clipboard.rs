//! Clipboard sharing between the shared display and the attendee's own
//! display through the `tandem view` window: two (or more) private Xvfb
//! servers, `xclip` as the applications on each, a `tandem node --source
//! x11` on the shared one and window viewers on the attendees' ones, over
//! QUIC on loopback.

use std::path::Path;
use std::time::{Duration, Instant};

use tandem_tests::channel_viewer::SseReader;
use tandem_tests::xserver::{which, XServer};
use tandem_tests::{NodeProcess, ViewerProcess};

const TOKEN: &str = "viewer-clipboard-token-0123456789abcdef";
const PASSWORD: &str = "clip-password";
const PATIENCE: Duration = Duration::from_secs(60);

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
attendee_limit = 8
"#,
        dir.join("data").display()
    );
    NodeProcess::start(dir, &config)
}

/// A window viewer on `x` (the attendee's display).
fn window_viewer(
    dir: &Path,
    x: &XServer,
    node: &NodeProcess,
    name: &str,
    extra: &[&str],
) -> ViewerProcess {
    let mut args = vec![node.ticket.as_str(), "--name", name, "--password", PASSWORD];
    args.extend_from_slice(extra);
    ViewerProcess::spawn(
        dir,
        &[
            ("DISPLAY", x.display()),
            ("WAYLAND_DISPLAY", ""),
            ("WINIT_X11_SCALE_FACTOR", "1"),
        ],
        &args,
    )
}

/// Copies `text` on a display the way an application does: `xclip` takes
/// the CLIPBOARD selection and stays in the background to serve it.
fn copy_on(x: &XServer, text: &str) {
    let out = x.run(
        "sh",
        &[
            "-c",
            &format!("printf '%s' '{text}' | xclip -selection clipboard >/dev/null 2>&1"),
        ],
    );
    assert!(out.status.success(), "xclip failed: {out:?}");
}

/// The display's clipboard text (empty when nobody owns it).
fn clipboard_of(x: &XServer) -> String {
    let out = x.run("xclip", &["-o", "-selection", "clipboard"]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_clipboard(x: &XServer, expected: &str, what: &str, viewer: &ViewerProcess) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let got = clipboard_of(x);
        if got == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: clipboard is {got:?}, expected {expected:?}\n{}",
            viewer.report()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn count(v: &ViewerProcess, needle: &str) -> usize {
    v.lines().iter().filter(|l| l.contains(needle)).count()
}

/// Waits until `n` lines of the viewer contain `needle`.
fn wait_count(v: &ViewerProcess, needle: &str, n: usize) {
    let deadline = Instant::now() + PATIENCE;
    while count(v, needle) < n {
        assert!(
            Instant::now() < deadline,
            "fewer than {n} lines with {needle:?}\n{}",
            v.report()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The attendee id from the viewer's "connected … as attendee N" line.
fn attendee_id(v: &mut ViewerProcess) -> u64 {
    v.wait_line("as attendee", PATIENCE);
    // The newest connection's (a reconnection is a new attendee).
    let line = v
        .lines()
        .into_iter()
        .rfind(|l| l.contains("as attendee"))
        .expect("a connected line");
    line.split("as attendee ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no attendee id in {line:?}"))
}

fn set_level(node: &NodeProcess, attendee: u64, level: &str, viewer: &ViewerProcess) {
    let (status, body) = node.api(
        TOKEN,
        "PUT",
        &format!("/api/v1/attendees/{attendee}/control-level"),
        Some(&format!(r#"{{"level": "{level}"}}"#)),
    );
    assert_eq!(status, 200, "{body}\n{}", viewer.report());
}

fn need_xclip() {
    if !which("xclip") {
        panic!("xclip is needed (apt-get install xclip; make test installs it)");
    }
}

#[test]
fn the_window_shares_the_attendees_clipboard_both_ways_while_interactive() {
    need_xclip();
    let dir = tempfile::tempdir().unwrap();
    let shared = XServer::start(320, 200);
    let mine = XServer::start(400, 300);
    let theirs = XServer::start(400, 300);
    let node = start_node(dir.path(), shared.display());

    let mut driver = window_viewer(dir.path(), &mine, &node, "driver", &["--request-control"]);
    let mut watcher = window_viewer(dir.path(), &theirs, &node, "watcher", &[]);
    driver.wait_line("clipboard sharing on", PATIENCE);
    let driver_id = attendee_id(&mut driver);
    let events = SseReader::open(
        &format!("{}/api/v1/events?history=0", node.admin_url),
        TOKEN,
    );
    watcher.wait_line("channel clipboard joined (access none)", PATIENCE);

    // A copy on the shared display lands on the interactive attendee's display.
    copy_on(&shared, "from the shared desktop");
    wait_clipboard(
        &mine,
        "from the shared desktop",
        "attendee display",
        &driver,
    );
    // ... and not on the view-only attendee's (sent to readers at the same time).
    assert_eq!(clipboard_of(&theirs), "", "{}", watcher.report());
    assert_eq!(count(&watcher, "clipboard: received"), 0);

    // A copy on the attendee's display lands on the shared display.
    copy_on(&mine, "from the attendee");
    wait_clipboard(&shared, "from the attendee", "shared display", &driver);
    // The text received first was put on the attendee's clipboard without
    // being sent back: the only send is the attendee's own copy.
    let sent: Vec<String> = driver
        .lines()
        .into_iter()
        .filter(|l| l.contains("clipboard: sent"))
        .collect();
    assert_eq!(
        sent,
        vec![format!(
            "clipboard: sent {} bytes",
            "from the attendee".len()
        )],
        "{}",
        driver.report()
    );
    // The view-only attendee's copies go nowhere.
    copy_on(&theirs, "view only");
    assert_eq!(count(&watcher, "clipboard: sent"), 0);

    // Control taken back: sharing stops on both sides.
    set_level(&node, driver_id, "view", &driver);
    wait_count(&driver, "clipboard sharing off", 1);
    copy_on(&mine, "while viewing");
    copy_on(&shared, "shared while viewing");
    // The node has read the shared copy (and found no reader) before control
    // is given again; the attendee's display told the viewer of its copy
    // before that (one event, where the node's path takes several round
    // trips and started later), while sharing was off.
    events.wait(PATIENCE, |e| {
        e["kind"] == "clipboard_transferred"
            && e["direction"] == "to_attendees"
            && e["bytes"] == "shared while viewing".len()
    });
    // Control given again: sharing resumes, and the next copies travel.
    set_level(&node, driver_id, "interactive", &driver);
    wait_count(&driver, "clipboard sharing on", 2);
    copy_on(&shared, "after the grant");
    wait_clipboard(
        &mine,
        "after the grant",
        "attendee display after the grant",
        &driver,
    );
    copy_on(&mine, "mine after the grant");
    wait_clipboard(
        &shared,
        "mine after the grant",
        "shared display after the grant",
        &driver,
    );
    // Nothing copied while view-only was sent or received.
    wait_count(&driver, "clipboard: received", 2);
    assert_eq!(count(&driver, "clipboard: sent"), 2, "{}", driver.report());
    assert_eq!(
        count(&driver, "clipboard: received"),
        2,
        "{}",
        driver.report()
    );
    assert!(
        !driver.report().contains("while viewing"),
        "{}",
        driver.report()
    );

    // The view-only attendee's display never got anything.
    assert_eq!(clipboard_of(&theirs), "view only");
    assert_eq!(count(&watcher, "clipboard: received"), 0);
    // Size limits: the node's (1000 bytes here) refuses the copy, which the
    // viewer reports; one over a channel message is not even read.
    copy_on(&mine, &"y".repeat(1500));
    driver.wait_line("clipboard not sent: clipboard text too large", PATIENCE);
    copy_on(&mine, &"z".repeat(70_000));
    driver.wait_line(
        "clipboard: a copy over 65520 bytes was not shared",
        PATIENCE,
    );
    assert_eq!(clipboard_of(&shared), "mine after the grant");
    assert_eq!(count(&driver, "clipboard: sent"), 3, "{}", driver.report());

    // Joining the channel never cost a connection.
    for v in [&driver, &watcher] {
        assert_eq!(count(v, "connection lost"), 0, "{}", v.report());
    }
    driver.terminate();
    watcher.terminate();
}

#[test]
fn no_clipboard_keeps_the_attendees_clipboard_to_itself() {
    need_xclip();
    let dir = tempfile::tempdir().unwrap();
    let shared = XServer::start(320, 200);
    let mine = XServer::start(400, 300);
    let node = start_node(dir.path(), shared.display());
    let mut viewer = window_viewer(
        dir.path(),
        &mine,
        &node,
        "private",
        &["--request-control", "--no-clipboard"],
    );
    viewer.wait_line("control level: interactive", PATIENCE);
    // A clipboard-sharing attendee beside it shows the copy did travel.
    let other_display = XServer::start(400, 300);
    let mut other = window_viewer(
        dir.path(),
        &other_display,
        &node,
        "sharing",
        &["--request-control"],
    );
    other.wait_line("clipboard sharing on", PATIENCE);
    copy_on(&shared, "not for the private one");
    wait_clipboard(
        &other_display,
        "not for the private one",
        "sharing attendee",
        &other,
    );
    assert_eq!(clipboard_of(&mine), "", "{}", viewer.report());
    assert_eq!(count(&viewer, "clipboard"), 0, "{}", viewer.report());
    viewer.terminate();
    other.terminate();
}

/// What the fake node of the test below saw and what the test tells it.
enum FakeNode {
    /// The viewer joined the clipboard channel and was told `read-write`.
    Announced,
    /// The first clipboard text the viewer sent.
    Received(Vec<u8>),
}

/// A node that lies: it welcomes the viewer at `view` and still announces
/// `read-write` on the clipboard channel. After `grant` it makes the
/// attendee interactive, then reports the first text the viewer sends.
fn lying_node(
    events: std::sync::mpsc::Sender<FakeNode>,
    grant: std::sync::mpsc::Receiver<()>,
) -> String {
    use tandem_proto::{
        ChannelAccess, ChannelFlags, ChannelFrame, ChannelInfo, ChannelPriority, ClientMessage,
        ControlLevel, ServerMessage, Welcome, CLIPBOARD_CHANNEL,
    };
    use tandem_transport::{write_message, Identity, MessageReader, TransportConfig};

    let (ticket_tx, ticket_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let identity = Identity::generate(&["localhost".into()]).unwrap();
            let endpoint = tandem_transport::server_endpoint(
                "127.0.0.1:0".parse().unwrap(),
                &identity,
                &TransportConfig::server(),
            )
            .unwrap();
            let port = endpoint.local_addr().unwrap().port();
            ticket_tx
                .send(format!(
                    "tandem://127.0.0.1:{port}/s/fake?inv=lie&fp={}",
                    identity.fingerprint()
                ))
                .unwrap();
            let conn = endpoint.accept().await.unwrap().await.unwrap();
            let (mut tx, rx) = conn.accept_bi().await.unwrap();
            let mut control = MessageReader::new(rx);
            let Some(ClientMessage::Hello(_)) = control.next().await.unwrap() else {
                panic!("no hello");
            };
            let welcome = Welcome {
                attendee_id: 1,
                session: "fake".into(),
                control_level: ControlLevel::View,
                width: 64,
                height: 48,
                paused: false,
            };
            write_message(&mut tx, &ServerMessage::Welcome(welcome))
                .await
                .unwrap();
            loop {
                match control.next::<ClientMessage>().await.unwrap() {
                    Some(ClientMessage::ChannelJoin { name }) if name == CLIPBOARD_CHANNEL => break,
                    Some(_) => {}
                    None => panic!("the viewer closed its control stream"),
                }
            }
            let info = ChannelInfo {
                id: 1,
                name: CLIPBOARD_CHANNEL.into(),
                priority: ChannelPriority::Normal,
                flags: ChannelFlags(0),
                access: ChannelAccess::ReadWrite,
            };
            write_message(&mut tx, &ServerMessage::ChannelJoined(info))
                .await
                .unwrap();
            events.send(FakeNode::Announced).unwrap();
            tokio::task::spawn_blocking(move || grant.recv())
                .await
                .unwrap()
                .unwrap();
            let level = ServerMessage::ControlLevelChanged {
                level: ControlLevel::Interactive,
            };
            write_message(&mut tx, &level).await.unwrap();
            let mut stream = conn.accept_uni().await.unwrap();
            let mut header = [0u8; tandem_proto::CHANNEL_HEADER_LEN];
            stream.read_exact(&mut header).await.unwrap();
            let mut reader = MessageReader::new(stream);
            let Some(ChannelFrame::Data(text)) = reader.next().await.unwrap() else {
                panic!("no clipboard text");
            };
            events.send(FakeNode::Received(text)).unwrap();
            // Keep the connection until the test is done with the viewer.
            let _ = control.next::<ClientMessage>().await;
        });
    });
    ticket_rx
        .recv_timeout(PATIENCE)
        .expect("the fake node's ticket")
}

#[test]
fn a_node_announcing_read_write_to_a_view_level_attendee_gets_no_clipboard() {
    need_xclip();
    let dir = tempfile::tempdir().unwrap();
    let mine = XServer::start(400, 300);
    let (events_tx, events) = std::sync::mpsc::channel();
    let (grant_tx, grant) = std::sync::mpsc::channel();
    let ticket = lying_node(events_tx, grant);
    let mut viewer = ViewerProcess::spawn(
        dir.path(),
        &[
            ("DISPLAY", mine.display()),
            ("WAYLAND_DISPLAY", ""),
            ("WINIT_X11_SCALE_FACTOR", "1"),
        ],
        &[ticket.as_str(), "--name", "victim"],
    );
    assert!(matches!(
        events.recv_timeout(PATIENCE),
        Ok(FakeNode::Announced)
    ));
    viewer.wait_line("channel clipboard joined (access read-write)", PATIENCE);
    // Copied while the attendee is view-only: not even read.
    copy_on(&mine, "secret while viewing");
    // The viewer's clipboard thread sees that copy's owner change a moment
    // later; granted before it did, the thread would read the copy as one
    // made while interactive (a known race of the window's clipboard
    // watcher, see the closing note), so the grant waits a little.
    std::thread::sleep(Duration::from_millis(1500));
    // Interactive now: the node's read-write holds, and the next copy travels.
    grant_tx.send(()).unwrap();
    viewer.wait_line("clipboard sharing on", PATIENCE);
    copy_on(&mine, "after the grant");
    match events.recv_timeout(PATIENCE) {
        Ok(FakeNode::Received(text)) => assert_eq!(
            String::from_utf8_lossy(&text),
            "after the grant",
            "{}",
            viewer.report()
        ),
        _ => panic!("the fake node received nothing\n{}", viewer.report()),
    }
    viewer.wait_line("clipboard: sent", PATIENCE);
    assert_eq!(count(&viewer, "clipboard: sent"), 1, "{}", viewer.report());
    viewer.terminate();
}
