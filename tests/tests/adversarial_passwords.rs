//! Passwords tried as an adversary would, against a real node over QUIC on
//! loopback: concurrent wrong guesses from one address are throttled (the
//! node's answer is "too many attempts"), another address is not slowed
//! down, and a right password from the guesser's own address (a NAT
//! neighbour) is still admitted. The address-block (IPv6 /64) and
//! per-invitation rules are tested on 1,000 addresses in the session core
//! (`crates/tandem-session/tests/book.rs`): the node binds loopback only.
//! Also the weak secrets the node refuses: invitation passwords shorter
//! than 8 characters (config, admin API) and a short `TANDEM_ADMIN_TOKEN`.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tandem_proto::{
    ClientMessage, ConnectionString, Hello, RejectReason, ServerMessage, PROTOCOL_VERSION,
};
use tandem_tests::{tandem_bin, NodeProcess};
use tandem_transport::{write_message, MessageReader, TransportConfig};

const TOKEN: &str = "passwords-test-token-0123456789";
const PASSWORD: &str = "right-password";

fn config(dir: &Path, password: &str, token: bool) -> String {
    format!(
        r#"data_dir = "{}"
quic_listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
{}
[source]
kind = "synthetic"
width = 64
height = 48
[invitation]
password = "{password}"
attendee_limit = 8
"#,
        dir.join("data").display(),
        if token {
            format!("admin_token = \"{TOKEN}\"")
        } else {
            String::new()
        }
    )
}

/// One join from `source`: the attendee id, or why it was refused.
async fn join(
    source: IpAddr,
    node: SocketAddr,
    ticket: &ConnectionString,
    password: &str,
) -> Result<u64, RejectReason> {
    let config = TransportConfig {
        connect_timeout: Duration::from_secs(30),
        ..TransportConfig::default()
    };
    let endpoint = tandem_transport::client_endpoint(SocketAddr::new(source, 0), &config).unwrap();
    let conn = tandem_transport::connect_with(&endpoint, node, ticket.fingerprint, &config)
        .await
        .unwrap();
    let (mut tx, rx) = conn.open_bi().await.unwrap();
    let hello = ClientMessage::Hello(Hello {
        version: PROTOCOL_VERSION,
        session: ticket.session.clone(),
        invitation: ticket.invitation.clone(),
        name: format!("guesser-{source}"),
        password: password.to_owned(),
    });
    write_message(&mut tx, &hello).await.unwrap();
    let mut reader = MessageReader::new(rx);
    let answer = match reader.next::<ServerMessage>().await {
        Ok(Some(ServerMessage::Welcome(w))) => Ok(w.attendee_id),
        Ok(Some(ServerMessage::Rejected { reason, .. })) => Err(reason),
        other => panic!("neither welcomed nor rejected: {other:?}"),
    };
    conn.close(0u32.into(), b"done");
    answer
}

#[test]
fn concurrent_wrong_passwords_are_throttled_and_a_right_one_still_gets_in() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &config(dir.path(), PASSWORD, true));
    let ticket: ConnectionString = node.ticket.parse().unwrap();
    let addr: SocketAddr = node.quic_addr.parse().unwrap();
    let guesser = IpAddr::from([127, 0, 0, 2]);
    let other = IpAddr::from([127, 0, 0, 3]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Twelve wrong guesses at once from one address: at most eight are
        // checked at a time (each after a longer delay), the rest are
        // refused at once.
        let guesses: Vec<_> = (0..12)
            .map(|i| {
                let ticket = ticket.clone();
                tokio::spawn(async move { join(guesser, addr, &ticket, &format!("wrong-{i:04}")).await })
            })
            .collect();
        // Meanwhile another address is not slowed down.
        let started = Instant::now();
        let admitted = join(other, addr, &ticket, PASSWORD).await;
        let other_took = started.elapsed();
        assert!(admitted.is_ok(), "{admitted:?}");
        let mut answers = Vec::new();
        for g in guesses {
            answers.push(g.await.unwrap());
        }
        let too_many = answers
            .iter()
            .filter(|a| **a == Err(RejectReason::TooManyAttempts))
            .count();
        let wrong = answers
            .iter()
            .filter(|a| **a == Err(RejectReason::WrongPassword))
            .count();
        assert_eq!(wrong + too_many, 12, "{answers:?}");
        assert!(too_many >= 1 && wrong >= 8, "{answers:?}");
        // The right password from the guesser's address: delayed, admitted.
        let started = Instant::now();
        let neighbour = join(guesser, addr, &ticket, PASSWORD).await;
        let neighbour_took = started.elapsed();
        assert!(neighbour.is_ok(), "a NAT neighbour is not locked out: {neighbour:?}");
        println!(
            "the other address was admitted in {other_took:?}; the guesser's neighbour after {neighbour_took:?}"
        );
    });
    rt.shutdown_timeout(Duration::from_secs(1));
}

#[test]
fn short_invitation_passwords_and_admin_tokens_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    // In the config: the node does not start.
    let path = dir.path().join("short.toml");
    std::fs::write(&path, config(dir.path(), "seven-7", true)).unwrap();
    let out = Command::new(tandem_bin())
        .args(["node", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("invitation.password must be at least 8 characters (it has 7)"),
        "{stderr}"
    );

    // A short TANDEM_ADMIN_TOKEN: the node does not start either.
    let path = dir.path().join("env.toml");
    std::fs::write(&path, config(dir.path(), PASSWORD, false)).unwrap();
    let out = Command::new(tandem_bin())
        .args(["node", "--config"])
        .arg(&path)
        .env("TANDEM_ADMIN_TOKEN", "short-token")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("TANDEM_ADMIN_TOKEN must be 16 to 256 printable ASCII characters"),
        "{stderr}"
    );

    // Through the admin API: 422 with the rule.
    let node = NodeProcess::start(dir.path(), &config(dir.path(), PASSWORD, true));
    let (status, body) = node.api(
        TOKEN,
        "POST",
        "/api/v1/invitations",
        Some(r#"{"password": "1234567"}"#),
    );
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("password must be at least 8 characters"),
        "{body}"
    );
    let (status, body) = node.api(
        TOKEN,
        "POST",
        "/api/v1/invitations",
        Some(r#"{"password": "12345678"}"#),
    );
    assert_eq!(status, 201, "{body}");
}
