//! Capture stamps on the wire: a node sends plain graphics streams (kind 1,
//! what viewers that predate stamps read) until the attendee asks with
//! `ClientMessage::StampGraphics`, and stamped ones (kind 3, the capture
//! time in unix microseconds) after; `tandem view --latency` reports
//! capture-to-decoded latency over every update it decoded.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tandem_codec::EncodedUpdate;
use tandem_proto::{
    parse_uni_stream, ClientMessage, ConnectionString, Hello, ServerMessage, UniStream,
    MAX_UPDATE_BYTES, STREAM_KIND_GRAPHICS, STREAM_KIND_STAMPED_GRAPHICS,
};
use tandem_tests::{summary, text, view, NodeProcess};
use tandem_transport::{write_message, MessageReader, TransportConfig};

fn config(dir: &std::path::Path) -> String {
    format!(
        "data_dir = \"{}\"\nquic_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\
         [source]\nkind = \"synthetic\"\nwidth = 320\nheight = 200\nseed = 3\n\
         [invitation]\npassword = \"stamp-password\"\nattendee_limit = 8\n",
        dir.join("data").display()
    )
}

fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// Reads whole uni streams until `n` graphics updates arrived.
async fn next_updates(conn: &quinn::Connection, n: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while out.len() < n {
        let mut stream = conn.accept_uni().await.expect("a graphics stream");
        // A reset stream is an update the node abandoned.
        if let Ok(bytes) = stream.read_to_end(MAX_UPDATE_BYTES + 1).await {
            out.push(bytes);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_plain_until_the_attendee_asks_then_stamped() {
    let dir = tempfile::tempdir().unwrap();
    let node = tokio::task::block_in_place(|| NodeProcess::start(dir.path(), &config(dir.path())));
    let started_us = unix_us();
    let ticket: ConnectionString = node.ticket.parse().unwrap();
    let addr: SocketAddr = node.quic_addr.parse().unwrap();
    let transport = TransportConfig::default();
    let endpoint =
        tandem_transport::client_endpoint(SocketAddr::from(([127, 0, 0, 1], 0)), &transport)
            .unwrap();
    let conn = tandem_transport::connect_with(&endpoint, addr, ticket.fingerprint, &transport)
        .await
        .unwrap();
    let (mut control_tx, control_rx) = conn.open_bi().await.unwrap();
    let mut control = MessageReader::new(control_rx);
    let hello = Hello::new(
        ticket.session.clone(),
        ticket.invitation.clone(),
        "stamps",
        "stamp-password",
    );
    write_message(&mut control_tx, &ClientMessage::Hello(hello))
        .await
        .unwrap();
    match control.next::<ServerMessage>().await {
        Ok(Some(ServerMessage::Welcome(_))) => {}
        other => panic!("expected a welcome, got {other:?}"),
    }

    // Not asked: plain streams, as every viewer before stamps reads them.
    for bytes in next_updates(&conn, 3).await {
        assert_eq!(bytes[0], STREAM_KIND_GRAPHICS);
        let UniStream::Graphics(payload) = parse_uni_stream(&bytes).unwrap() else {
            panic!("a plain stream parses as plain");
        };
        EncodedUpdate::from_bytes(payload).expect("a whole update");
    }

    write_message(&mut control_tx, &ClientMessage::StampGraphics)
        .await
        .unwrap();
    // Updates already on their way may still be plain; within a second of
    // updates every stream is stamped.
    let mut stamped = 0;
    let mut last_stamp = 0;
    for bytes in next_updates(&conn, 60).await {
        let received_us = unix_us();
        let stream = parse_uni_stream(&bytes).unwrap();
        EncodedUpdate::from_bytes(stream.payload()).expect("a whole update");
        match stream.captured_unix_us() {
            Some(captured) => {
                assert_eq!(bytes[0], STREAM_KIND_STAMPED_GRAPHICS);
                // One machine, one clock: captured after the node started
                // (less a frame interval of rounding) and before received.
                assert!(
                    captured + 100_000 >= started_us && captured <= received_us,
                    "capture stamp {captured} outside [{started_us}, {received_us}]"
                );
                assert!(captured >= last_stamp, "stamps go back in time");
                last_stamp = captured;
                stamped += 1;
            }
            None => assert_eq!(stamped, 0, "a plain stream after a stamped one"),
        }
    }
    assert!(stamped >= 30, "only {stamped} of 60 updates were stamped");
    conn.close(0u32.into(), b"done");
    let _ = tokio::time::timeout(Duration::from_millis(300), endpoint.wait_idle()).await;
}

#[test]
fn the_headless_viewer_reports_capture_to_decoded_latency() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &config(dir.path()));
    let base = [
        node.ticket.as_str(),
        "--password",
        "stamp-password",
        "--headless",
        "--frames",
        "40",
    ];
    let out = view(&[&base[..], &["--latency"][..]].concat());
    let stdout = text(&out);
    assert!(out.status.success(), "{stdout}");
    let updates = summary(&stdout).updates;
    let line = stdout
        .lines()
        .find(|l| l.starts_with("capture-to-decoded latency over "))
        .unwrap_or_else(|| panic!("no latency line:\n{stdout}"));
    // The first update or two may precede the ask; every later one counts.
    let counted: u64 = line
        .trim_start_matches("capture-to-decoded latency over ")
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line}"));
    assert!(
        counted + 5 >= updates && counted <= updates,
        "{counted} of {updates}: {line}"
    );
    assert!(line.contains(" p50 ") && line.contains(" p99 "), "{line}");
    assert!(!line.contains("before their capture"), "{line}");

    // Without --latency: no ask, no line.
    let out = view(&base);
    let stdout = text(&out);
    assert!(out.status.success(), "{stdout}");
    assert!(!stdout.contains("capture-to-decoded"), "{stdout}");
}
