//! A cluster of three real `tandem node` processes on loopback: membership
//! by gossip, the directory of sessions, relays.

use std::path::Path;
use std::time::{Duration, Instant};

use tandem_tests::{free_udp_port, http_request, NodeProcess};

const TOKEN: &str = "cluster-test-token-0123456789";
const SECRET: &str = "cluster-test-secret-0123456789";
/// The failure detection time the nodes are configured with.
const DEAD_AFTER_MS: u64 = 1500;

/// One member's config. `origin` nodes share a synthetic desktop; the
/// others have no session of their own (relay-only).
struct Member<'a> {
    dir: &'a Path,
    gossip: u16,
    seeds: &'a [u16],
    secret: &'a str,
    origin: Option<(u32, u32, u64, u64)>,
    attendee_limit: u32,
}

fn member_config(m: &Member) -> String {
    let seeds: Vec<String> = m
        .seeds
        .iter()
        .map(|p| format!("\"127.0.0.1:{p}\""))
        .collect();
    let source = match m.origin {
        Some((w, h, seed, freeze)) => format!(
            "[source]\nkind = \"synthetic\"\nwidth = {w}\nheight = {h}\nseed = {seed}\nfreeze_after_frames = {freeze}\n"
        ),
        None => "[source]\nkind = \"none\"\n".to_owned(),
    };
    format!(
        r#"data_dir = "{data}"
quic_listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
admin_token = "{TOKEN}"
{source}
[invitation]
password = "pw"
attendee_limit = {limit}
[cluster]
listen = "127.0.0.1:{gossip}"
seeds = [{seeds}]
secret = "{secret}"
cluster_id = "test"
dead_after_ms = {DEAD_AFTER_MS}
"#,
        data = m.dir.join("data").display(),
        limit = m.attendee_limit,
        gossip = m.gossip,
        seeds = seeds.join(", "),
        secret = m.secret,
    )
}

fn start_member(m: &Member) -> NodeProcess {
    std::fs::create_dir_all(m.dir).unwrap();
    let ready = if m.origin.is_some() {
        "join with:"
    } else {
        "admin API on"
    };
    NodeProcess::start_until(m.dir, &member_config(m), ready)
}

fn cluster_nodes(node: &NodeProcess) -> serde_json::Value {
    let (status, body) = http_request(
        "GET",
        &format!("{}/api/v1/cluster/nodes", node.admin_url),
        Some(TOKEN),
        None,
    );
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn member_ids(node: &NodeProcess) -> Vec<String> {
    let v = cluster_nodes(node);
    v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect()
}

fn node_id(node: &NodeProcess) -> String {
    cluster_nodes(node)["self_id"].as_str().unwrap().to_owned()
}

/// Sessions the directory of `node` says member `id` originates.
fn sessions_of(node: &NodeProcess, id: &str) -> Option<Vec<String>> {
    let v = cluster_nodes(node);
    v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == id)
        .map(|n| {
            n["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_owned())
                .collect()
        })
}

/// Polls `check` until it holds or `timeout` passes; returns how long it took.
fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if check() {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// The session id in a node's banner (`sharing session ID (...)`).
fn session_id(node: &NodeProcess) -> String {
    node.banner
        .iter()
        .find_map(|l| l.strip_prefix("sharing session "))
        .and_then(|l| l.split_whitespace().next())
        .expect("a sharing session line")
        .to_owned()
}

struct Cluster {
    _dir: tempfile::TempDir,
    origin: NodeProcess,
    relays: Vec<NodeProcess>,
}

fn start_cluster(size: (u32, u32, u64, u64), attendee_limit: u32) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let ports = [free_udp_port(), free_udp_port(), free_udp_port()];
    let origin = start_member(&Member {
        dir: &dir.path().join("a"),
        gossip: ports[0],
        seeds: &[ports[1], ports[2]],
        secret: SECRET,
        origin: Some(size),
        attendee_limit,
    });
    let relays: Vec<NodeProcess> = ["b", "c"]
        .iter()
        .zip(&ports[1..])
        .map(|(name, port)| {
            start_member(&Member {
                dir: &dir.path().join(name),
                gossip: *port,
                seeds: &[ports[0]],
                secret: SECRET,
                origin: None,
                attendee_limit,
            })
        })
        .collect();
    let all: Vec<&NodeProcess> = std::iter::once(&origin).chain(&relays).collect();
    let session = session_id(&origin);
    let origin_id = node_id(&origin);
    for node in &all {
        wait_for("three members everywhere", Duration::from_secs(30), || {
            member_ids(node).len() == 3
        });
        wait_for(
            "the origin's session in every directory",
            Duration::from_secs(30),
            || sessions_of(node, &origin_id).is_some_and(|s| s.contains(&session)),
        );
    }
    Cluster {
        _dir: dir,
        origin,
        relays,
    }
}

#[test]
fn membership_reflects_a_stopped_node_and_a_dead_nodes_sessions_leave_the_directory() {
    let Cluster {
        _dir,
        origin,
        mut relays,
    } = start_cluster((160, 100, 3, 10), 8);
    let c = relays.pop().unwrap();
    let b = relays.pop().unwrap();
    let c_id = node_id(&c);
    let origin_id = node_id(&origin);
    assert!(member_ids(&origin).contains(&c_id));

    // A stopped member leaves everyone's member list within the configured
    // time (plus gossip rounds and this loop's polling, generously on a
    // loaded machine).
    let bound = Duration::from_millis(DEAD_AFTER_MS) + Duration::from_secs(5);
    assert!(c.terminate(), "node c did not stop cleanly");
    let took = wait_for("c to leave a's members", bound, || {
        !member_ids(&origin).contains(&c_id)
    });
    wait_for("c to leave b's members", bound, || {
        !member_ids(&b).contains(&c_id)
    });
    eprintln!("a stopped member left a's list after {took:?} (dead_after_ms {DEAD_AFTER_MS})");
    assert_eq!(member_ids(&b).len(), 2);

    // A killed origin: its session leaves the directory of the survivors.
    origin.kill9();
    wait_for(
        "the dead origin's sessions to leave b's directory",
        bound,
        || sessions_of(&b, &origin_id).is_none(),
    );
    let v = cluster_nodes(&b);
    let nodes = v["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "{v}");
    assert!(
        nodes
            .iter()
            .all(|n| n["sessions"].as_array().unwrap().is_empty()),
        "{v}"
    );
}

#[test]
fn a_node_with_another_secret_does_not_join() {
    let dir = tempfile::tempdir().unwrap();
    let ports = [free_udp_port(), free_udp_port()];
    let a = start_member(&Member {
        dir: &dir.path().join("a"),
        gossip: ports[0],
        seeds: &[ports[1]],
        secret: SECRET,
        origin: Some((64, 64, 1, 1)),
        attendee_limit: 2,
    });
    let intruder = start_member(&Member {
        dir: &dir.path().join("x"),
        gossip: ports[1],
        seeds: &[ports[0]],
        secret: "another-secret-0123456789",
        origin: None,
        attendee_limit: 2,
    });
    // Both gossip at each other for several detection periods; neither ever
    // lists the other. (Waiting is needed to show an absence: the wait is a
    // number of gossip rounds, not a timing assertion.)
    let until = Instant::now() + Duration::from_millis(DEAD_AFTER_MS * 2);
    while Instant::now() < until {
        assert_eq!(member_ids(&a).len(), 1);
        assert_eq!(member_ids(&intruder).len(), 1);
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(intruder);
}
