//! Before authentication, tried as an adversary would: 500 QUIC connections
//! from one tool process (this test, over eight loopback source addresses)
//! that never say a valid `Hello` but open every stream they may, fill them
//! and send datagrams. The node's memory stays within the pre-auth budget
//! of ARCHITECTURE.md ("Resource budgets") and an admitted attendee keeps
//! receiving updates meanwhile.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tandem_proto::Fingerprint;
use tandem_tests::{summary, view, NodeProcess};
use tandem_transport::quinn;
use tandem_transport::TransportConfig;

const CONNECTIONS: usize = 500;
/// Source addresses the connections come from (127.0.0.2 ...).
const SOURCES: usize = 8;
/// ARCHITECTURE.md: each connection not yet admitted costs the node at
/// most this much (its 128 KiB receive window, a partial Hello of up to
/// 64 KiB in the node's frame decoder, quinn's and the task's state).
const BUDGET_PER_CONNECTION_KIB: u64 = 384;
/// Bytes each connection tries to push before saying anything useful.
const PUSH_PER_STREAM: usize = 1 << 20;

fn config(dir: &std::path::Path) -> String {
    format!(
        r#"data_dir = "{}"
quic_listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[source]
kind = "synthetic"
width = 320
height = 200
seed = 3
[invitation]
password = "right-password"
attendee_limit = 4
"#,
        dir.join("data").display()
    )
}

/// Opens one connection from `source` and holds it: the control stream
/// gets a length prefix announcing a 64 KiB frame and never its end, each
/// allowed unidirectional stream is filled, datagrams are sent. Returns the
/// connection (kept open by the caller) once everything is under way.
async fn hostile(source: IpAddr, node: SocketAddr, fp: Fingerprint) -> Option<quinn::Connection> {
    // Patient: 500 handshakes at once on a loaded 2-core machine.
    let config = TransportConfig {
        connect_timeout: Duration::from_secs(30),
        ..TransportConfig::default()
    };
    let endpoint = tandem_transport::client_endpoint(SocketAddr::new(source, 0), &config).ok()?;
    let mut conn = None;
    for _ in 0..3 {
        if let Ok(c) = tandem_transport::connect_with(&endpoint, node, fp, &config).await {
            conn = Some(c);
            break;
        }
    }
    let conn = conn?;
    // A Hello announced at the largest size and never finished: the node
    // waits for the rest (until its Hello timeout) instead of refusing it.
    if let Ok((mut tx, rx)) = conn.open_bi().await {
        let _ = tx.write_all(&(65_536u32).to_be_bytes()).await;
        let _ = tx.write_all(&[0x55; 60 << 10]).await;
        tokio::spawn(async move {
            let _keep = (tx, rx);
            std::future::pending::<()>().await
        });
    }
    for _ in 0..16 {
        let Ok(Ok(stream)) =
            tokio::time::timeout(Duration::from_millis(200), conn.open_uni()).await
        else {
            break;
        };
        tokio::spawn(push(stream));
    }
    for _ in 0..64 {
        let _ = conn.send_datagram(vec![0xAB; 1000].into());
    }
    // The endpoint lives as long as its connection.
    tokio::spawn(async move {
        endpoint.wait_idle().await;
    });
    Some(conn)
}

async fn push(mut stream: quinn::SendStream) {
    let chunk = vec![0x55u8; 16 << 10];
    let mut sent = 0;
    while sent < PUSH_PER_STREAM {
        if stream.write_all(&chunk).await.is_err() {
            return;
        }
        sent += chunk.len();
    }
}

#[test]
fn five_hundred_connections_before_authentication_stay_within_budget() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &config(dir.path()));
    let ticket: tandem_proto::ConnectionString = node.ticket.parse().unwrap();
    let addr: SocketAddr = node.quic_addr.parse().unwrap();
    // A watching attendee first, so the node's steady state is measured.
    let watch = |seconds: &str| {
        view(&[
            &node.ticket,
            "--headless",
            "--password",
            "right-password",
            "--seconds",
            seconds,
        ])
    };
    let warm = watch("2");
    assert!(warm.status.success(), "{}", tandem_tests::text(&warm));
    let before = node.rss_kib();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let opened = Arc::new(AtomicUsize::new(0));
    let conns = rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..CONNECTIONS {
            let source = IpAddr::from([127, 0, 0, 2 + (i % SOURCES) as u8]);
            let fp = ticket.fingerprint;
            let opened = opened.clone();
            tasks.push(tokio::spawn(async move {
                let c = hostile(source, addr, fp).await;
                if c.is_some() {
                    opened.fetch_add(1, Ordering::Relaxed);
                }
                c
            }));
        }
        let mut conns = Vec::new();
        for t in tasks {
            if let Ok(Some(c)) = t.await {
                conns.push(c);
            }
        }
        conns
    });
    // The caps (64 per address, 1024 in all) let every one of these in:
    // what is bounded here is what each may make the node hold.
    assert!(
        opened.load(Ordering::Relaxed) >= CONNECTIONS * 9 / 10,
        "only {} of {CONNECTIONS} hostile connections were accepted",
        opened.load(Ordering::Relaxed)
    );
    // An admitted attendee keeps being served while they hold on.
    let during = watch("4");
    assert!(during.status.success(), "{}", tandem_tests::text(&during));
    let seen = summary(&String::from_utf8_lossy(&during.stdout));
    assert!(
        seen.key_frames >= 1 && seen.updates >= 2,
        "updates {} key frames {}",
        seen.updates,
        seen.key_frames
    );
    let after = node.rss_kib();
    let grown = after.saturating_sub(before);
    let budget = CONNECTIONS as u64 * BUDGET_PER_CONNECTION_KIB;
    println!(
        "node RSS {before} KiB before, {after} KiB with {} pre-auth connections (+{grown} KiB, budget {budget} KiB)",
        conns.len()
    );
    assert!(
        grown <= budget,
        "the node grew by {grown} KiB for {} pre-auth connections (budget {budget} KiB)\n{}",
        conns.len(),
        node.log()
    );
    drop(conns);
    rt.shutdown_timeout(Duration::from_secs(1));
}
