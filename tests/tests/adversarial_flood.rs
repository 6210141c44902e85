//! An admitted attendee floods the node, tried as an adversary would: one
//! raw QUIC attendee (this test) sends 10^6 control frames (control
//! requests alternating between levels, under the `grant-view` policy that
//! turns every other one into a level change) and 200,000 channel messages.
//! The node reads them all, its memory stays bounded, the sharer's admin
//! calls are answered, another attendee keeps receiving updates, level
//! changes are not written once per request, and the audit events from
//! before the flood are still in the event log (ARCHITECTURE.md, "Resource
//! budgets", per attendee).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tandem_proto::{
    channel_stream_header, encode_message, ChannelFrame, ClientMessage, ConnectionString,
    ControlLevel, Hello, ServerMessage, PROTOCOL_VERSION,
};
use tandem_tests::channel_viewer::SseReader;
use tandem_tests::{metric, spawn_view, summary, NodeProcess};
use tandem_transport::{write_message, MessageReader, TransportConfig};

const TOKEN: &str = "flood-test-token-0123456789abcdef";
const PASSWORD: &str = "flood-password";
const CONTROL_FRAMES: usize = 1_000_000;
const CHANNEL_MESSAGES: usize = 200_000;
/// What the flood may add to the node's resident memory. Before the
/// per-attendee budget, every frame queued in the manager's unbounded
/// mailbox and every request became an event queued for the registry.
const FLOOD_BUDGET_KIB: u64 = 48 * 1024;
const PATIENCE: Duration = Duration::from_secs(120);

fn config(dir: &std::path::Path) -> String {
    format!(
        r#"data_dir = "{}"
quic_listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
admin_token = "{TOKEN}"
[source]
kind = "synthetic"
width = 320
height = 200
seed = 5
[session]
control_policy = "grant-view"
[invitation]
password = "{PASSWORD}"
attendee_limit = 4
"#,
        dir.join("data").display()
    )
}

fn counter(node: &NodeProcess, sample: &str) -> f64 {
    let (status, text) = tandem_tests::http_get(&format!("{}/metrics", node.admin_url));
    assert_eq!(status, 200);
    metric(&text, sample)
}

/// Frames encoded back to back, written in large chunks.
fn frames(encoded: impl Iterator<Item = Vec<u8>>) -> Vec<u8> {
    encoded.flatten().collect()
}

#[test]
fn an_attendee_flooding_control_and_channel_messages_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &config(dir.path()));
    let session = node.session_id();
    let (status, body) = node.api(
        TOKEN,
        "POST",
        &format!("/api/v1/sessions/{session}/channels"),
        Some(r#"{"name": "chat"}"#),
    );
    assert_eq!(status, 201, "{body}");
    let ticket: ConnectionString = node.ticket.parse().unwrap();
    let addr: SocketAddr = node.quic_addr.parse().unwrap();
    let events = SseReader::open(
        &format!("{}/api/v1/events?history=10000", node.admin_url),
        TOKEN,
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // The flooder joins like any attendee.
    let (conn, mut control_tx, attendee, channel) = rt.block_on(async {
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
            name: "flooder".into(),
            password: PASSWORD.into(),
        });
        write_message(&mut tx, &hello).await.unwrap();
        let mut reader = MessageReader::new(rx);
        let attendee = match reader.next::<ServerMessage>().await.unwrap() {
            Some(ServerMessage::Welcome(w)) => w.attendee_id,
            other => panic!("not welcomed: {other:?}"),
        };
        let join = ClientMessage::ChannelJoin {
            name: "chat".into(),
        };
        write_message(&mut tx, &join).await.unwrap();
        let channel = loop {
            match reader.next::<ServerMessage>().await.unwrap() {
                Some(ServerMessage::ChannelJoined(info)) => break info.id,
                Some(_) => {}
                None => panic!("control stream closed"),
            }
        };
        // Whatever the node says from now on is read and dropped: a flooder
        // that also stopped reading would be disconnected instead.
        tokio::spawn(
            async move { while let Ok(Some(_)) = reader.next::<ServerMessage>().await {} },
        );
        (conn, tx, attendee, channel)
    });
    let (status, body) = node.api(
        TOKEN,
        "PUT",
        &format!("/api/v1/sessions/{session}/channels/chat/access/{attendee}"),
        Some(r#"{"access": "read-write"}"#),
    );
    assert_eq!(status, 204, "{body}");
    // The audit trail before the flood.
    events.wait(PATIENCE, |e| {
        e["kind"] == "attendee_connected" && e["attendee"] == attendee
    });
    std::thread::sleep(Duration::from_secs(1));
    let before = node.rss_kib();
    let puts_before = counter(
        &node,
        r#"tandem_registry_operations_total{op="put_attendee"}"#,
    );

    // The flood, in the background.
    let levels = [
        ControlLevel::Interactive,
        ControlLevel::View,
        ControlLevel::None,
    ];
    let control = frames((0..CONTROL_FRAMES).map(|i| {
        encode_message(&ClientMessage::RequestControl {
            level: levels[i % levels.len()],
        })
        .unwrap()
    }));
    let data = {
        let mut d = channel_stream_header(channel).to_vec();
        d.extend(frames((0..CHANNEL_MESSAGES).map(|i| {
            encode_message(&ChannelFrame::Data(format!("flood {i:08}").into_bytes())).unwrap()
        })));
        d
    };
    let started = Instant::now();
    let flood = rt.spawn({
        let conn = conn.clone();
        async move {
            let channel = async {
                let mut uni = conn.open_uni().await.unwrap();
                uni.write_all(&data).await.unwrap();
                uni.finish().unwrap();
            };
            let control = async {
                for chunk in control.chunks(64 << 10) {
                    control_tx.write_all(chunk).await.unwrap();
                }
                control_tx
            };
            let ((), control_tx) = tokio::join!(channel, control);
            control_tx
        }
    });

    // Meanwhile: another attendee watches, and the sharer's calls are answered.
    let watcher = spawn_view(&[
        &node.ticket,
        "--headless",
        "--password",
        PASSWORD,
        "--seconds",
        "6",
    ]);
    let mut latencies = Vec::new();
    while !flood.is_finished() || latencies.len() < 10 {
        let t = Instant::now();
        let (status, body) = node.api(TOKEN, "GET", "/api/v1/attendees", None);
        latencies.push(t.elapsed());
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("flooder"), "{body}");
        assert!(
            started.elapsed() < PATIENCE,
            "the flood was not read in time"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let watched = watcher.wait_with_output().unwrap();
    assert!(watched.status.success(), "{}", tandem_tests::text(&watched));
    let seen = summary(&String::from_utf8_lossy(&watched.stdout));
    assert!(
        seen.key_frames >= 1 && seen.updates >= 2,
        "the other attendee got {} updates, {} key frames during the flood",
        seen.updates,
        seen.key_frames
    );
    let _control_tx = rt.block_on(flood).unwrap();
    let written = started.elapsed();

    // Every frame was read by the node (dropped over the rate, or handled).
    let deadline = Instant::now() + PATIENCE;
    let dropped = loop {
        let dropped = counter(
            &node,
            r#"tandem_rate_limited_total{kind="control_request"}"#,
        );
        let accepted = counter(
            &node,
            r#"tandem_channel_messages_total{direction="from_attendee",result="accepted"}"#,
        );
        if dropped as usize >= CONTROL_FRAMES - 1000 && accepted as usize >= CHANNEL_MESSAGES {
            break dropped;
        }
        assert!(
            Instant::now() < deadline,
            "the node read {dropped} requests over the rate and {accepted} channel messages\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let processed = started.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let after = node.rss_kib();
    let grown = after.saturating_sub(before);
    let puts = counter(
        &node,
        r#"tandem_registry_operations_total{op="put_attendee"}"#,
    ) - puts_before;
    latencies.sort();
    println!(
        "flood: {CONTROL_FRAMES} control frames and {CHANNEL_MESSAGES} channel messages written in {written:?}, read in {processed:?}; \
         {dropped} requests dropped over the rate; {puts} attendee record writes; \
         node RSS {before} KiB before, {after} KiB after (+{grown} KiB); \
         GET /api/v1/attendees during the flood: {} calls, median {:?}, max {:?}",
        latencies.len(),
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
    assert!(
        grown <= FLOOD_BUDGET_KIB,
        "the node grew by {grown} KiB under the flood (budget {FLOOD_BUDGET_KIB} KiB)"
    );
    // Level changes are rate-limited with the requests that cause them.
    assert!(
        puts < 1000.0,
        "{puts} attendee record writes for {CONTROL_FRAMES} control requests"
    );

    // The audit events from before the flood are still in the log, and the
    // flood left only a bounded number of its own.
    let (status, _) = node.api(TOKEN, "GET", "/api/v1/attendees", None);
    assert_eq!(status, 200);
    let log = SseReader::open(
        &format!("{}/api/v1/events?history=10000", node.admin_url),
        TOKEN,
    );
    log.wait(PATIENCE, |e| {
        e["kind"] == "attendee_connected" && e["attendee"] == attendee
    });
    // The rest of the history (it comes at once, oldest first).
    std::thread::sleep(Duration::from_secs(2));
    let flooder_events = log
        .all()
        .iter()
        .filter(|e| e["attendee"] == attendee)
        .count();
    assert!(
        flooder_events < 2000,
        "{flooder_events} events of the flooder in the log"
    );
    conn.close(0u32.into(), b"done");
    rt.shutdown_timeout(Duration::from_secs(1));
}
