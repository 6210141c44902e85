//! Loopback tests of endpoints, pinning and control-stream framing.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tandem_proto::{Fingerprint, MAX_CONTROL_MESSAGE};
use tandem_transport::{
    client_endpoint, connect, connect_with, server_endpoint, write_message, Identity,
    MessageReader, TransportConfig, TransportError,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum TestMsg {
    Hello { name: String },
    Welcome { id: u32 },
    Bye,
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn identity() -> Identity {
    Identity::generate(&["tandem".to_owned(), "localhost".to_owned()]).unwrap()
}

fn server() -> (quinn::Endpoint, Identity, SocketAddr) {
    let id = identity();
    let ep = server_endpoint(loopback(), &id, &TransportConfig::default()).unwrap();
    let addr = ep.local_addr().unwrap();
    (ep, id, addr)
}

/// Accept and handshake every incoming connection, ignoring failures:
/// quinn sends its certificate only once the server accepts.
fn accept_forever(ep: quinn::Endpoint) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(incoming) = ep.accept().await {
            let _ = incoming.await;
        }
    })
}

fn client() -> quinn::Endpoint {
    client_endpoint(loopback(), &TransportConfig::default()).unwrap()
}

#[tokio::test]
async fn pinned_connect_and_round_trip() {
    let (server_ep, id, addr) = server();
    let server_task = tokio::spawn(async move {
        let conn = server_ep.accept().await.unwrap().await.unwrap();
        assert_eq!(
            conn.handshake_data()
                .unwrap()
                .downcast::<quinn::crypto::rustls::HandshakeData>()
                .unwrap()
                .protocol
                .as_deref(),
            Some(&b"tandem/1"[..])
        );
        let (mut send, recv) = conn.accept_bi().await.unwrap();
        let mut reader = MessageReader::new(recv);
        let got: TestMsg = reader.next().await.unwrap().unwrap();
        assert_eq!(got, TestMsg::Hello { name: "ada".into() });
        write_message(&mut send, &TestMsg::Welcome { id: 7 })
            .await
            .unwrap();
        let bye: TestMsg = reader.next().await.unwrap().unwrap();
        assert_eq!(bye, TestMsg::Bye);
        assert_eq!(reader.next::<TestMsg>().await.unwrap(), None);
        send.finish().unwrap();
        conn.closed().await;
    });

    let ep = client();
    let conn = connect(&ep, addr, id.fingerprint()).await.unwrap();
    let (mut send, recv) = conn.open_bi().await.unwrap();
    let mut reader = MessageReader::new(recv);
    write_message(&mut send, &TestMsg::Hello { name: "ada".into() })
        .await
        .unwrap();
    let got: TestMsg = reader.next().await.unwrap().unwrap();
    assert_eq!(got, TestMsg::Welcome { id: 7 });
    write_message(&mut send, &TestMsg::Bye).await.unwrap();
    send.finish().unwrap();
    assert_eq!(reader.next::<TestMsg>().await.unwrap(), None);
    conn.close(0u32.into(), b"done");
    server_task.await.unwrap();
}

#[tokio::test]
async fn wrong_pin_reports_the_real_fingerprint() {
    let (server_ep, id, addr) = server();
    let _acceptor = accept_forever(server_ep);
    let wrong = Fingerprint([0xab; 32]);
    let ep = client();
    match connect(&ep, addr, Fingerprint(wrong.0)).await {
        Err(TransportError::FingerprintMismatch { expected, found }) => {
            assert_eq!(expected.0, wrong.0);
            assert_eq!(found.0, id.fingerprint().0);
        }
        other => panic!("expected a fingerprint mismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn another_servers_certificate_is_refused() {
    let (server_ep, _id, addr) = server();
    let _acceptor = accept_forever(server_ep);
    let other = identity();
    let ep = client();
    let result = connect(&ep, addr, other.fingerprint()).await;
    assert!(matches!(
        result,
        Err(TransportError::FingerprintMismatch { .. })
    ));
}

#[tokio::test]
async fn nobody_listening_is_unreachable() {
    // Bind a UDP socket to learn a free port, then close it.
    let port = std::net::UdpSocket::bind(loopback())
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let config = TransportConfig {
        connect_timeout: Duration::from_millis(500),
        ..TransportConfig::default()
    };
    let ep = client();
    let outcome = tokio::time::timeout(
        Duration::from_secs(10),
        connect_with(&ep, addr, Fingerprint([0; 32]), &config),
    )
    .await
    .expect("connect must give up by itself");
    match outcome {
        Err(TransportError::Unreachable { addr: a, .. }) => assert_eq!(a, addr),
        other => panic!("expected unreachable, got {other:?}"),
    }
}

#[tokio::test]
async fn oversized_frame_is_an_error() {
    let (server_ep, id, addr) = server();
    let server_task = tokio::spawn(async move {
        let conn = server_ep.accept().await.unwrap().await.unwrap();
        let (_send, recv) = conn.accept_bi().await.unwrap();
        let mut reader = MessageReader::new(recv);
        let first: TestMsg = reader.next().await.unwrap().unwrap();
        assert_eq!(first, TestMsg::Bye);
        let second = reader.next::<TestMsg>().await;
        assert!(
            matches!(second, Err(TransportError::Protocol(_))),
            "got {second:?}"
        );
    });

    let ep = client();
    let conn = connect(&ep, addr, id.fingerprint()).await.unwrap();
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    write_message(&mut send, &TestMsg::Bye).await.unwrap();
    // A header announcing one byte more than allowed, then some payload.
    let len = u32::try_from(MAX_CONTROL_MESSAGE + 1).unwrap();
    send.write_all(&len.to_be_bytes()).await.unwrap();
    send.write_all(&[0u8; 1024]).await.unwrap();
    server_task.await.unwrap();
}

#[tokio::test]
async fn truncated_frame_and_malformed_payload_are_errors() {
    let (server_ep, id, addr) = server();
    let server_task = tokio::spawn(async move {
        let conn = server_ep.accept().await.unwrap().await.unwrap();
        // First stream: garbage payload inside a valid frame.
        let (_send, recv) = conn.accept_bi().await.unwrap();
        let mut reader = MessageReader::new(recv);
        let bad = reader.next::<TestMsg>().await;
        assert!(
            matches!(bad, Err(TransportError::Protocol(_))),
            "got {bad:?}"
        );
        // Second stream: the stream ends in the middle of a frame.
        let (_send, recv) = conn.accept_bi().await.unwrap();
        let mut reader = MessageReader::new(recv);
        let cut = reader.next::<TestMsg>().await;
        assert!(
            matches!(cut, Err(TransportError::Truncated { .. })),
            "got {cut:?}"
        );
    });

    let ep = client();
    let conn = connect(&ep, addr, id.fingerprint()).await.unwrap();
    let (mut send, _recv1) = conn.open_bi().await.unwrap();
    send.write_all(&[0, 0, 0, 2, 0xff, 0xff]).await.unwrap();
    send.finish().unwrap();
    let (mut send, _recv2) = conn.open_bi().await.unwrap();
    send.write_all(&[0, 0, 0, 9, 1, 2]).await.unwrap();
    send.finish().unwrap();
    server_task.await.unwrap();
}

#[tokio::test]
async fn oversized_message_is_refused_before_sending() {
    let (server_ep, id, addr) = server();
    let accept = tokio::spawn(async move { server_ep.accept().await.unwrap().await.unwrap() });
    let ep = client();
    let conn = connect(&ep, addr, id.fingerprint()).await.unwrap();
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    let huge = vec![7u8; MAX_CONTROL_MESSAGE + 1];
    assert!(matches!(
        write_message(&mut send, &huge).await,
        Err(TransportError::Protocol(_))
    ));
    drop(accept.await.unwrap());
}

#[test]
fn identity_from_garbage_is_rejected() {
    assert!(matches!(
        Identity::from_der(b"not a cert".to_vec(), b"not a key".to_vec()),
        Err(TransportError::InvalidIdentity { .. })
    ));
}

#[test]
fn identity_round_trip_keeps_fingerprint() {
    let id = identity();
    let back = Identity::from_der(id.cert_der().to_vec(), id.key_der().to_vec()).unwrap();
    assert_eq!(back.fingerprint().0, id.fingerprint().0);
    assert_eq!(back.fingerprint().to_string(), id.fingerprint().to_string());
}

#[test]
fn server_endpoint_outside_a_runtime_is_an_error_not_a_panic() {
    let result = server_endpoint(loopback(), &identity(), &TransportConfig::default());
    assert!(matches!(result, Err(TransportError::Bind { .. })));
}

/// A peer asked to acknowledge rarely (every 1,001 packets, or after 5 s)
/// would leave a sender whose congestion window holds fewer packets than
/// that waiting the whole delay every round trip: slow start, a window cut
/// by a loss, a slow link. The packet that fills the window asks for an
/// immediate ACK (vendor/quinn-proto/TANDEM-PATCH.md), so 1 MiB sent from
/// the initial window arrives before a single ACK delay could have passed.
#[tokio::test]
async fn a_full_congestion_window_asks_for_an_ack_instead_of_waiting_for_the_ack_timer() {
    const DELAY: Duration = Duration::from_secs(5);
    const LEN: usize = 1 << 20;
    let config = TransportConfig {
        ack_frequency: Some(tandem_transport::AckFrequency {
            ack_eliciting_threshold: 1000,
            max_ack_delay: DELAY,
        }),
        ..TransportConfig::default()
    };
    let id = identity();
    let server_ep = server_endpoint(loopback(), &id, &config).unwrap();
    let addr = server_ep.local_addr().unwrap();
    let server_task = tokio::spawn(async move {
        let conn = server_ep.accept().await.unwrap().await.unwrap();
        let mut send = conn.open_uni().await.unwrap();
        send.write_all(&vec![7u8; LEN]).await.unwrap();
        send.finish().unwrap();
        conn.closed().await;
        conn.stats().frame_tx.immediate_ack
    });
    let ep = client_endpoint(loopback(), &config).unwrap();
    let conn = connect_with(&ep, addr, id.fingerprint(), &config)
        .await
        .unwrap();
    let start = std::time::Instant::now();
    let mut recv = conn.accept_uni().await.unwrap();
    let bytes = recv.read_to_end(2 * LEN).await.unwrap();
    let took = start.elapsed();
    assert_eq!(bytes.len(), LEN);
    assert!(
        took < DELAY,
        "1 MiB took {took:?}: a round trip waited for the peer's {DELAY:?} ACK timer"
    );
    conn.close(0u32.into(), b"done");
    let immediate_acks = server_task.await.unwrap();
    assert!(immediate_acks > 0, "the sender asked for no immediate ACK");
}
