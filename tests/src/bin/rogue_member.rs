//! A rogue cluster member for the trust-boundary tests: a plain chitchat
//! 0.13 instance that does not hold the cluster secret.
//!
//! It does what an attacker on the gossip network would: it tries to read
//! the cluster id off the wire (from datagrams members send to its gossip
//! port), else uses the one it is given; it gossips to a seed under a node
//! id that sorts first, advertises its own QUIC, admin and link addresses,
//! the cluster's fingerprint and a session it wants to claim; and it
//! listens on those addresses. It prints one line per thing it learns or
//! receives, for the test to read:
//!
//! - `rogue gossiping on ADDR as ID`
//! - `wire cluster id: ID` / `wire cluster id: unreadable (N bytes)`
//! - `learned member ID` (a node its chitchat came to know)
//! - `admin request: LINE` plus `admin authorization: VALUE` if one came
//! - `link datagram: N bytes` / `quic datagram: N bytes`
//!
//! Usage: `rogue_member --listen ADDR --seed ADDR --cluster-id ID
//! --session ID --fingerprint HEX [--node-id ID]`; runs until killed.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::time::Duration;

use chitchat::transport::UdpTransport;
use chitchat::{spawn_chitchat, ChitchatConfig, ChitchatId, FailureDetectorConfig};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// A cluster id as the old wire format showed it: `name/` and 16 hex digits.
fn cluster_id_in(bytes: &[u8]) -> Option<String> {
    let text: String = bytes
        .iter()
        .map(|b| {
            if b.is_ascii_graphic() {
                *b as char
            } else {
                ' '
            }
        })
        .collect();
    text.split_whitespace().find_map(|word| {
        let slash = word.rfind('/')?;
        let tag = word.get(slash + 1..slash + 17)?;
        (slash > 0 && tag.len() == 16 && tag.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| format!("{}/{tag}", &word[..slash]))
    })
}

/// Logs every HTTP request head sent to the fake admin address.
fn serve_admin(listener: std::net::TcpListener) {
    for stream in listener.incoming().map_while(Result::ok) {
        std::thread::spawn(move || {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(&stream);
            let mut first = true;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                let l = line.trim_end().to_owned();
                line.clear();
                if l.is_empty() {
                    break;
                }
                if first {
                    say(&format!("admin request: {l}"));
                    first = false;
                } else if let Some((name, value)) = l.split_once(':') {
                    if name.eq_ignore_ascii_case("authorization") {
                        say(&format!("admin authorization: {}", value.trim()));
                    }
                }
            }
            let _ = (&stream).write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]");
        });
    }
}

fn log_datagrams(socket: std::net::UdpSocket, what: &'static str) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, _)) = socket.recv_from(&mut buf) {
            say(&format!("{what} datagram: {n} bytes"));
        }
    });
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let need = |name: &str| arg(&args, name).unwrap_or_else(|| panic!("{name} is required"));
    let listen: SocketAddr = need("--listen").parse().expect("--listen ADDR");
    let seed = need("--seed");
    let given_cluster_id = need("--cluster-id");
    let session = need("--session");
    let fingerprint = need("--fingerprint");
    let node_id = arg(&args, "--node-id").unwrap_or_else(|| "000-rogue".into());

    // First listen on the gossip port for what members send it: in clear
    // gossip, every Syn carries the cluster id.
    let wire_id = {
        let sniff = tokio::net::UdpSocket::bind(listen)
            .await
            .expect("bind gossip port");
        let mut buf = vec![0u8; 65536];
        match tokio::time::timeout(Duration::from_secs(5), sniff.recv_from(&mut buf)).await {
            Ok(Ok((n, _))) => match cluster_id_in(&buf[..n]) {
                Some(id) => {
                    say(&format!("wire cluster id: {id}"));
                    Some(id)
                }
                None => {
                    say(&format!("wire cluster id: unreadable ({n} bytes)"));
                    None
                }
            },
            _ => {
                say("wire cluster id: nothing received");
                None
            }
        }
    };
    let cluster_id = wire_id.unwrap_or(given_cluster_id);

    let admin = std::net::TcpListener::bind("127.0.0.1:0").expect("bind admin");
    let admin_addr = admin.local_addr().unwrap();
    std::thread::spawn(move || serve_admin(admin));
    let link = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind link");
    let quic = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind quic");
    let (link_addr, quic_addr) = (link.local_addr().unwrap(), quic.local_addr().unwrap());
    log_datagrams(link, "link");
    log_datagrams(quic, "quic");

    let interval = Duration::from_millis(150);
    let self_id = ChitchatId::new(node_id.clone(), 1, listen);
    let config = ChitchatConfig {
        chitchat_id: self_id,
        cluster_id,
        gossip_interval: interval,
        listen_addr: listen,
        seed_nodes: vec![seed],
        failure_detector_config: FailureDetectorConfig {
            initial_interval: interval,
            ..Default::default()
        },
        marked_for_deletion_grace_period: Duration::from_secs(60),
        catchup_callback: None,
        extra_liveness_predicate: None,
        protocol_version: chitchat::ProtocolVersion::V0,
    };
    let initial = vec![
        ("quic".to_owned(), quic_addr.to_string()),
        ("admin".to_owned(), admin_addr.to_string()),
        ("link".to_owned(), link_addr.to_string()),
        ("fp".to_owned(), fingerprint),
        ("sessions".to_owned(), session),
        ("attendees".to_owned(), "0".to_owned()),
        ("relay_links".to_owned(), "0".to_owned()),
    ];
    let handle = spawn_chitchat(config, initial, &UdpTransport)
        .await
        .expect("start chitchat");
    say(&format!("rogue gossiping on {listen} as {node_id}"));
    let mut learned: HashSet<String> = HashSet::new();
    loop {
        tokio::time::sleep(interval).await;
        let chitchat = handle.chitchat();
        let guard = chitchat.lock().await;
        for id in guard.node_states().keys() {
            if *id.node_id != *node_id && learned.insert(id.node_id.to_string()) {
                say(&format!("learned member {}", id.node_id));
            }
        }
    }
}
