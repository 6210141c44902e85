//! A cluster of three real `tandem node` processes on loopback: membership
//! by gossip, the directory of sessions, relays.

use std::path::Path;
use std::time::{Duration, Instant};

use tandem_capture::SyntheticDesktop;
use tandem_tests::xserver::XServer;
use tandem_tests::{
    differing_pixels, free_udp_port, http_request, metric, read_png, spawn_view, summary, text,
    NodeProcess, ViewerProcess,
};

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
    /// Gossip port of the member to relay through (a relay of a relay).
    upstream: Option<u16>,
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
password = "cluster-pw"
attendee_limit = {limit}
[cluster]
listen = "127.0.0.1:{gossip}"
seeds = [{seeds}]
secret = "{secret}"
cluster_id = "test"
dead_after_ms = {DEAD_AFTER_MS}
{upstream}
"#,
        data = m.dir.join("data").display(),
        limit = m.attendee_limit,
        gossip = m.gossip,
        seeds = seeds.join(", "),
        secret = m.secret,
        upstream = m
            .upstream
            .map(|p| format!("upstream = \"127.0.0.1:{p}\""))
            .unwrap_or_default(),
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
        upstream: None,
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
                upstream: None,
            })
        })
        .collect();
    let all: Vec<&NodeProcess> = std::iter::once(&origin).chain(&relays).collect();
    let session = origin.session_id();
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
        upstream: None,
    });
    let intruder = start_member(&Member {
        dir: &dir.path().join("x"),
        gossip: ports[1],
        seeds: &[ports[0]],
        secret: "another-secret-0123456789",
        origin: None,
        attendee_limit: 2,
        upstream: None,
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
    // Each one's datagrams reached the other and failed authentication.
    assert!(gossip_rejected(&a, "forged") > 0.0);
    assert!(gossip_rejected(&intruder, "forged") > 0.0);
    drop(intruder);
}

/// The origin's ticket with `node`'s address first: joining through `node`.
fn ticket_via(ticket: &str, node: &NodeProcess) -> String {
    let rest = ticket
        .strip_prefix("tandem://")
        .and_then(|t| t.split_once('/'))
        .map(|(_, rest)| rest)
        .expect("a tandem:// ticket");
    format!("tandem://{}/{rest}", node.quic_addr)
}

fn metrics_text(node: &NodeProcess) -> String {
    http_request("GET", &format!("{}/metrics", node.admin_url), None, None).1
}

/// Graphics bytes the origin sent: to its own attendees and over relay links.
fn origin_egress(node: &NodeProcess) -> f64 {
    let m = metrics_text(node);
    metric(&m, "tandem_bytes_sent_total")
        + metric(&m, "tandem_relayed_bytes_total{direction=\"sent\"}")
}

fn attendees(node: &NodeProcess) -> Vec<serde_json::Value> {
    let (status, body) = http_request(
        "GET",
        &format!("{}/api/v1/attendees", node.admin_url),
        Some(TOKEN),
        None,
    );
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<serde_json::Value>(&body)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn attendees_on_two_relays_see_the_origins_frames_bit_for_bit() {
    let (w, h, seed, freeze) = (333, 201, 11, 40);
    let cluster = start_cluster((w, h, seed, freeze), 8);
    let dir = tempfile::tempdir().unwrap();
    let expected = SyntheticDesktop::new(seed, w, h).render(freeze);
    let viewers: Vec<_> = cluster
        .relays
        .iter()
        .enumerate()
        .map(|(i, relay)| {
            let snap = dir.path().join(format!("via-{i}.png"));
            let child = spawn_view(&[
                &ticket_via(&cluster.origin.ticket, relay),
                "--name",
                &format!("relayed-{i}"),
                "--password",
                "cluster-pw",
                "--headless",
                "--seconds",
                "6",
                "--snapshot",
                snap.to_str().unwrap(),
            ]);
            (child, snap)
        })
        .collect();
    // While they view, the origin lists both, with the node each came through.
    let relay_ids: Vec<String> = cluster.relays.iter().map(node_id).collect();
    wait_for(
        "two relayed attendees at the origin",
        Duration::from_secs(20),
        || {
            let list = attendees(&cluster.origin);
            list.len() == 2
                && relay_ids
                    .iter()
                    .all(|id| list.iter().any(|a| a["via_node"] == id.as_str()))
        },
    );
    for (child, snap) in viewers {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let s = summary(&String::from_utf8_lossy(&out.stdout));
        assert!(s.updates >= 1, "{s:?}");
        assert_eq!(
            differing_pixels(&read_png(&snap), &expected),
            0,
            "a relayed viewer's frame differs from the origin's source"
        );
    }
    // The origin sent no graphics to attendees itself: only over the links.
    let m = metrics_text(&cluster.origin);
    assert_eq!(metric(&m, "tandem_bytes_sent_total"), 0.0);
    assert!(metric(&m, "tandem_relayed_bytes_total{direction=\"sent\"}") > 0.0);
    for relay in &cluster.relays {
        let m = metrics_text(relay);
        assert!(metric(&m, "tandem_relayed_bytes_total{direction=\"received\"}") > 0.0);
        assert!(metric(&m, "tandem_bytes_sent_total") > 0.0);
    }
}

/// Joins `n` headless attendees spread over the relays (round robin), each
/// until its first update, and returns the origin's egress afterwards.
fn egress_for(n: usize) -> (f64, usize) {
    // A still desktop: every attendee, and every link, needs one key frame.
    let cluster = start_cluster((640, 400, 5, 1), 64);
    // In batches: the origin slows down (and past 8, refuses) concurrent
    // password checks from one address, and every attendee here is 127.0.0.1.
    for batch in (0..n).collect::<Vec<_>>().chunks(4) {
        let viewers: Vec<_> = batch
            .iter()
            .map(|i| {
                let relay = &cluster.relays[i % 2];
                spawn_view(&[
                    &ticket_via(&cluster.origin.ticket, relay),
                    "--name",
                    &format!("a{i}"),
                    "--password",
                    "cluster-pw",
                    "--headless",
                    "--frames",
                    "1",
                ])
            })
            .collect();
        for child in viewers {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", text(&out));
            let s = summary(&String::from_utf8_lossy(&out.stdout));
            assert_eq!(s.updates, 1, "{s:?}");
        }
    }
    let links = metric(&metrics_text(&cluster.origin), "tandem_relay_links") as usize;
    (origin_egress(&cluster.origin), links)
}

#[test]
fn the_origins_egress_grows_with_relay_links_not_attendees() {
    let (two, links_two) = egress_for(2);
    let (forty, links_forty) = egress_for(40);
    eprintln!("origin egress: 2 attendees {two} bytes, 40 attendees {forty} bytes");
    assert_eq!(links_two, 2);
    assert_eq!(links_forty, 2);
    assert!(two > 0.0);
    // Direct attendees would cost 20 times more; through two relays the
    // origin sends the same two streams whatever the number of attendees.
    assert!(
        forty < two * 1.5,
        "origin egress grew with attendees: {two} for 2, {forty} for 40"
    );
}

/// Stops the origin (`kill -9` or SIGTERM) while two attendees view it
/// through the two relays; both are told "session closed".
fn origin_end_closes_the_session_for_relayed_attendees(kill: bool) {
    let cluster = start_cluster((160, 100, 2, 1_000_000), 8);
    let dir = tempfile::tempdir().unwrap();
    let mut viewers: Vec<ViewerProcess> = cluster
        .relays
        .iter()
        .enumerate()
        .map(|(i, relay)| {
            ViewerProcess::spawn(
                dir.path(),
                &[],
                &[
                    &ticket_via(&cluster.origin.ticket, relay),
                    "--name",
                    &format!("v{i}"),
                    "--password",
                    "cluster-pw",
                    "--headless",
                    "--seconds",
                    "120",
                ],
            )
        })
        .collect();
    wait_for(
        "both attendees at the origin",
        Duration::from_secs(20),
        || attendees(&cluster.origin).len() == 2,
    );
    let Cluster {
        origin,
        relays,
        _dir,
    } = cluster;
    if kill {
        origin.kill9();
    } else {
        assert!(origin.terminate(), "the origin did not stop cleanly");
    }
    for v in &mut viewers {
        let line = v.wait_line("session closed", Duration::from_secs(30));
        assert!(line.contains("disconnected"), "{line}");
        assert!(
            v.wait_exit(Duration::from_secs(15)).is_some(),
            "{}",
            v.report()
        );
    }
    drop(relays);
}

#[test]
fn killing_the_origin_closes_the_session_for_relayed_attendees() {
    origin_end_closes_the_session_for_relayed_attendees(true);
}

#[test]
fn stopping_the_origin_closes_the_session_for_relayed_attendees() {
    origin_end_closes_the_session_for_relayed_attendees(false);
}

#[test]
fn a_node_with_a_wrong_secret_gets_no_relay_link() {
    let dir = tempfile::tempdir().unwrap();
    let ports = [free_udp_port(), free_udp_port()];
    let origin = start_member(&Member {
        dir: &dir.path().join("a"),
        gossip: ports[0],
        seeds: &[ports[1]],
        secret: SECRET,
        origin: Some((64, 64, 1, 1)),
        attendee_limit: 2,
        upstream: None,
    });
    let intruder = start_member(&Member {
        dir: &dir.path().join("x"),
        gossip: ports[1],
        seeds: &[ports[0]],
        secret: "another-secret-0123456789",
        origin: None,
        attendee_limit: 2,
        upstream: None,
    });
    let out = tandem_tests::view(&[
        &ticket_via(&origin.ticket, &intruder),
        "--name",
        "eve",
        "--password",
        "cluster-pw",
        "--headless",
        "--frames",
        "1",
    ]);
    assert!(!out.status.success(), "{}", text(&out));
    for node in [&origin, &intruder] {
        let m = metrics_text(node);
        assert_eq!(metric(&m, "tandem_relay_links"), 0.0);
        assert_eq!(
            metric(&m, "tandem_relayed_bytes_total{direction=\"sent\"}")
                + metric(&m, "tandem_relayed_bytes_total{direction=\"received\"}"),
            0.0
        );
    }
    assert!(attendees(&origin).is_empty());
}

#[test]
fn a_killed_relays_attendee_reconnects_through_another_node_and_keeps_viewing() {
    // An animated desktop that never freezes: frames keep coming.
    let cluster = start_cluster((200, 120, 9, 1_000_000), 8);
    let dir = tempfile::tempdir().unwrap();
    let (b, c) = (&cluster.relays[0], &cluster.relays[1]);
    let (b_id, c_id) = (node_id(b), node_id(c));
    // The ticket lists relay b, then relay c.
    let via_b = ticket_via(&cluster.origin.ticket, b);
    let ticket = via_b.replacen(&b.quic_addr, &format!("{},{}", b.quic_addr, c.quic_addr), 1);
    let mut viewer = ViewerProcess::spawn(
        dir.path(),
        &[],
        &[
            &ticket,
            "--name",
            "roaming",
            "--password",
            "cluster-pw",
            "--headless",
            "--reconnect",
            // Notice the killed relay within seconds, not the default minute.
            "--idle-timeout",
            "6",
            "--seconds",
            "40",
        ],
    );
    let via = |id: &str| {
        attendees(&cluster.origin)
            .iter()
            .any(|a| a["user"] == "roaming" && a["via_node"] == id)
    };
    wait_for(
        "the attendee at the origin through b",
        Duration::from_secs(20),
        || via(&b_id),
    );
    // The cluster-wide list shows it too, attached to the origin.
    let (status, body) = http_request(
        "GET",
        &format!("{}/api/v1/attendees?scope=cluster", c.admin_url),
        Some(TOKEN),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let origin_id = node_id(&cluster.origin);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|a| a["user"] == "roaming"
                && a["node"] == origin_id.as_str()
                && a["via_node"] == b_id.as_str()),
        "{list}"
    );
    let cli = tandem_tests::tandem(&[
        "attendees",
        "--cluster",
        "--admin",
        &c.admin_url,
        "--token",
        TOKEN,
    ]);
    assert!(cli.status.success(), "{}", text(&cli));
    let table = String::from_utf8_lossy(&cli.stdout);
    assert!(
        table.contains("roaming") && table.contains(&b_id) && table.contains("VIA"),
        "{table}"
    );

    let Cluster {
        origin,
        mut relays,
        _dir,
    } = cluster;
    let c = relays.pop().unwrap();
    let b = relays.pop().unwrap();
    b.kill9();
    // It comes back through c and is admitted by the origin again.
    wait_for(
        "the attendee back through c",
        Duration::from_secs(60),
        || {
            attendees(&origin)
                .iter()
                .any(|a| a["user"] == "roaming" && a["via_node"] == c_id.as_str())
        },
    );
    viewer.wait_line(
        &format!("connected to {}", c.quic_addr),
        Duration::from_secs(10),
    );
    assert_eq!(
        viewer.wait_exit(Duration::from_secs(60)),
        Some(0),
        "{}",
        viewer.report()
    );
    let out = viewer.lines().join("\n");
    let s = summary(&out);
    // One key frame per connection: it kept viewing after the failover.
    assert!(s.key_frames >= 2, "{s:?}\n{out}");
    drop(c);
}

#[test]
fn a_relay_of_a_relay_serves_the_origins_frames_bit_for_bit() {
    let (w, h, seed, freeze) = (200, 150, 21, 30);
    let dir = tempfile::tempdir().unwrap();
    let ports = [free_udp_port(), free_udp_port(), free_udp_port()];
    let member = |name: &str, i: usize, origin, upstream| {
        start_member(&Member {
            dir: &dir.path().join(name),
            gossip: ports[i],
            seeds: &[ports[(i + 1) % 3], ports[(i + 2) % 3]],
            secret: SECRET,
            origin,
            attendee_limit: 8,
            upstream,
        })
    };
    let a = member("a", 0, Some((w, h, seed, freeze)), None);
    let b = member("b", 1, None, None);
    // c relays through b, which relays from a.
    let c = member("c", 2, None, Some(ports[1]));
    let session = a.session_id();
    let a_id = node_id(&a);
    for node in [&a, &b, &c] {
        wait_for(
            "three members and the session",
            Duration::from_secs(30),
            || {
                member_ids(node).len() == 3
                    && sessions_of(node, &a_id).is_some_and(|s| s.contains(&session))
            },
        );
    }
    let snap = dir.path().join("chained.png");
    let out = tandem_tests::view(&[
        &ticket_via(&a.ticket, &c),
        "--name",
        "far",
        "--password",
        "cluster-pw",
        "--headless",
        "--seconds",
        "5",
        "--snapshot",
        snap.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let expected = SyntheticDesktop::new(seed, w, h).render(freeze);
    assert_eq!(differing_pixels(&read_png(&snap), &expected), 0);
    // The origin has one link (from b), b has two (to a, from c).
    assert_eq!(metric(&metrics_text(&a), "tandem_relay_links"), 1.0);
    assert_eq!(metric(&metrics_text(&b), "tandem_relay_links"), 2.0);
    assert_eq!(metric(&metrics_text(&c), "tandem_relay_links"), 1.0);
    // The origin admitted it, naming the node it joined through.
    let (status, body) = http_request(
        "GET",
        &format!("{}/api/v1/attendees?state=all", a.admin_url),
        Some(TOKEN),
        None,
    );
    assert_eq!(status, 200);
    let c_id = node_id(&c);
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|x| x["user"] == "far" && x["via_node"] == c_id.as_str()),
        "{list}"
    );
}

/// An X11 origin's pointer reaches attendees through a relay and through a
/// relay of a relay: its shape on the control stream, its moves as datagrams.
#[test]
fn relayed_attendees_see_the_origins_pointer() {
    let x = XServer::start(320, 240);
    x.xdotool(&["mousemove", "100", "100"]);
    let dir = tempfile::tempdir().unwrap();
    let ports = [free_udp_port(), free_udp_port(), free_udp_port()];
    let member = |name: &str, i: usize, upstream| {
        let m = Member {
            dir: &dir.path().join(name),
            gossip: ports[i],
            seeds: &[ports[(i + 1) % 3], ports[(i + 2) % 3]],
            secret: SECRET,
            origin: None,
            attendee_limit: 8,
            upstream,
        };
        if i != 0 {
            return start_member(&m);
        }
        std::fs::create_dir_all(m.dir).unwrap();
        let config = member_config(&m).replace(
            "[source]\nkind = \"none\"\n",
            &format!("[source]\nkind = \"x11\"\ndisplay = \"{}\"\n", x.display()),
        );
        NodeProcess::start_until(m.dir, &config, "join with:")
    };
    let a = member("a", 0, None);
    let b = member("b", 1, None);
    // c relays through b, which relays from a.
    let c = member("c", 2, Some(ports[1]));
    let session = a.session_id();
    let a_id = node_id(&a);
    for node in [&a, &b, &c] {
        wait_for(
            "three members and the session",
            Duration::from_secs(30),
            || {
                member_ids(node).len() == 3
                    && sessions_of(node, &a_id).is_some_and(|s| s.contains(&session))
            },
        );
    }
    let viewers: Vec<_> = [&b, &c]
        .iter()
        .enumerate()
        .map(|(i, relay)| {
            spawn_view(&[
                &ticket_via(&a.ticket, relay),
                "--name",
                &format!("pointer-{i}"),
                "--password",
                "cluster-pw",
                "--headless",
                "--seconds",
                "12",
            ])
        })
        .collect();
    wait_for(
        "both relayed attendees at the origin",
        Duration::from_secs(20),
        || attendees(&a).len() == 2,
    );
    for (px, py) in [(150, 120), (200, 60), (250, 200), (211, 123)] {
        x.xdotool(&["mousemove", &px.to_string(), &py.to_string()]);
        std::thread::sleep(Duration::from_millis(150));
    }
    for viewer in viewers {
        let out = viewer.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("cursor at 211,123 shown after "))
            .unwrap_or_else(|| panic!("the relayed pointer followed the display's: {stdout}"));
        let moves: u64 = line.split_whitespace().next().unwrap().parse().unwrap();
        assert!(moves >= 2, "moves were relayed: {stdout}");
        assert!(
            !line.ends_with("(0 shapes)"),
            "the shape was relayed: {stdout}"
        );
    }
    // The origin sent its pointer only over the link; the relays sent it on.
    let m = metrics_text(&a);
    assert_eq!(metric(&m, "tandem_cursor_positions_sent_total"), 0.0);
    for relay in [&b, &c] {
        let m = metrics_text(relay);
        assert!(metric(&m, "tandem_cursor_positions_sent_total") >= 2.0);
        assert!(metric(&m, "tandem_cursor_shapes_sent_total") >= 1.0);
    }
}

// ---- The cluster's trust boundary (issue 13) ----

/// Dropped gossip datagrams of `node`, by reason.
fn gossip_rejected(node: &NodeProcess, reason: &str) -> f64 {
    metric(
        &metrics_text(node),
        &format!("tandem_cluster_gossip_rejected_total{{reason=\"{reason}\"}}"),
    )
}

fn all_gossip_rejected(node: &NodeProcess) -> f64 {
    ["malformed", "stale", "replayed", "forged"]
        .iter()
        .map(|r| gossip_rejected(node, r))
        .sum()
}

/// The chitchat cluster id as gossip used to carry it in clear:
/// `cluster_id/` and the first 16 hex digits of an HMAC of the secret.
fn clear_gossip_cluster_id(secret: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(b"tandem-gossip-cluster-id");
    let tag = hex::encode(mac.finalize().into_bytes());
    format!("test/{}", &tag[..16])
}

/// A rogue process's output lines, collected by a thread.
struct Rogue {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Rogue {
    fn spawn(args: &[&str]) -> Rogue {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rogue_member"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the rogue member");
        let stdout = child.stdout.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                sink.lock().unwrap().push(line);
            }
        });
        Rogue { child, lines }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn has(&self, prefix: &str) -> bool {
        self.lines().iter().any(|l| l.starts_with(prefix))
    }
}

impl Drop for Rogue {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_rogue_member_without_the_secret_stays_out_gets_no_token_and_claims_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let [pa, pb, progue] = [free_udp_port(), free_udp_port(), free_udp_port()];
    // The origin also gossips to the rogue's port (as to any seed): the
    // rogue sees real datagrams and tries to read the cluster id off them.
    let a = start_member(&Member {
        dir: &dir.path().join("a"),
        gossip: pa,
        seeds: &[pb, progue],
        secret: SECRET,
        origin: Some((96, 64, 4, 5)),
        attendee_limit: 8,
        upstream: None,
    });
    let b = start_member(&Member {
        dir: &dir.path().join("b"),
        gossip: pb,
        seeds: &[pa],
        secret: SECRET,
        origin: None,
        attendee_limit: 8,
        upstream: None,
    });
    let session = a.session_id();
    let a_id = node_id(&a);
    for node in [&a, &b] {
        wait_for(
            "two members and the session",
            Duration::from_secs(30),
            || {
                member_ids(node).len() == 2
                    && sessions_of(node, &a_id).is_some_and(|s| s.contains(&session))
            },
        );
    }
    let fingerprint = cluster_nodes(&a)["nodes"][0]["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    let rejected_before = gossip_rejected(&a, "malformed");
    // The strongest rogue without the secret: it knows the cluster id as it
    // used to travel in clear, the cluster's fingerprint and the session.
    let rogue = Rogue::spawn(&[
        "--listen",
        &format!("127.0.0.1:{progue}"),
        "--seed",
        &format!("127.0.0.1:{pa}"),
        "--cluster-id",
        &clear_gossip_cluster_id(SECRET),
        "--session",
        &session,
        "--fingerprint",
        &fingerprint,
        "--node-id",
        "000-rogue",
    ]);
    wait_for("the rogue to gossip", Duration::from_secs(20), || {
        rogue.has("rogue gossiping on")
    });
    let lines = rogue.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("wire cluster id: unreadable")),
        "the origin's datagrams reached the rogue, sealed: {lines:?}"
    );
    // Its datagrams arrive and are dropped unparsed.
    wait_for(
        "the rogue's gossip to be dropped",
        Duration::from_secs(20),
        || gossip_rejected(&a, "malformed") > rejected_before,
    );
    // For several detection periods it is in no directory, its claim on the
    // session is nowhere, and it learns nothing of the members. (Waiting
    // shows an absence: a number of gossip rounds, not a timing assertion.)
    let until = Instant::now() + Duration::from_millis(DEAD_AFTER_MS * 3);
    while Instant::now() < until {
        for node in [&a, &b] {
            let ids = member_ids(node);
            assert!(!ids.iter().any(|id| id == "000-rogue"), "{ids:?}");
            assert_eq!(ids.len(), 2, "{ids:?}");
            assert!(sessions_of(node, &a_id).is_some_and(|s| s.contains(&session)));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(gossip_rejected(&a, "malformed") > rejected_before);
    // Cluster-wide queries on both members: both answer, nothing reaches
    // the rogue's admin or link addresses.
    for node in [&a, &b] {
        let (status, body) = http_request(
            "GET",
            &format!("{}/api/v1/attendees?scope=cluster", node.admin_url),
            Some(TOKEN),
            None,
        );
        assert_eq!(status, 200, "{body}");
    }
    // Direct and relayed joins keep working.
    for (via, name) in [(&a, "direct"), (&b, "relayed")] {
        let out = tandem_tests::view(&[
            &ticket_via(&a.ticket, via),
            "--name",
            name,
            "--password",
            "cluster-pw",
            "--headless",
            "--frames",
            "1",
        ]);
        assert!(out.status.success(), "{name}: {}", text(&out));
    }
    std::thread::sleep(Duration::from_millis(500));
    let lines = rogue.lines();
    for forbidden in [
        "admin request",
        "admin authorization",
        "link datagram",
        "quic datagram",
        "learned member",
    ] {
        assert!(
            !lines.iter().any(|l| l.starts_with(forbidden)),
            "the rogue got `{forbidden}`: {lines:?}"
        );
    }
    let log = a.log();
    assert!(!log.contains(TOKEN), "the token was logged");
}

/// Datagrams with the time they passed.
type Captured = std::sync::Arc<std::sync::Mutex<Vec<(Instant, Vec<u8>)>>>;

/// A UDP proxy between member a and member b that records what a sends b.
struct Proxy {
    addr: u16,
    captured: Captured,
    recording: std::sync::Arc<std::sync::atomic::AtomicBool>,
    socket: std::net::UdpSocket,
}

impl Proxy {
    fn start(a: u16, b: u16) -> Proxy {
        use std::sync::atomic::{AtomicBool, Ordering};
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap().port();
        let captured: Captured = Default::default();
        let recording = std::sync::Arc::new(AtomicBool::new(false));
        let (rx, sink, on) = (
            socket.try_clone().unwrap(),
            captured.clone(),
            recording.clone(),
        );
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            let b_addr: std::net::SocketAddr = format!("127.0.0.1:{b}").parse().unwrap();
            let a_addr: std::net::SocketAddr = format!("127.0.0.1:{a}").parse().unwrap();
            while let Ok((n, from)) = rx.recv_from(&mut buf) {
                if from == b_addr {
                    let _ = rx.send_to(&buf[..n], a_addr);
                } else if from == a_addr {
                    if on.load(Ordering::SeqCst) {
                        sink.lock()
                            .unwrap()
                            .push((Instant::now(), buf[..n].to_vec()));
                    }
                    let _ = rx.send_to(&buf[..n], b_addr);
                }
            }
        });
        Proxy {
            addr,
            captured,
            recording,
            socket,
        }
    }

    fn captured(&self) -> Vec<(Instant, Vec<u8>)> {
        self.captured.lock().unwrap().clone()
    }

    /// Sends the captured datagrams to `port` again, from the proxy's address.
    fn replay(&self, datagrams: &[(Instant, Vec<u8>)], port: u16) {
        for (_, d) in datagrams {
            self.socket.send_to(d, ("127.0.0.1", port)).unwrap();
        }
    }
}

#[test]
fn a_captured_gossip_datagram_replayed_later_changes_nothing() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let [pa, pb] = [free_udp_port(), free_udp_port()];
    let proxy = Proxy::start(pa, pb);
    // a reaches b through the proxy first (its only seed); b has no seed.
    let a = start_member(&Member {
        dir: &dir.path().join("a"),
        gossip: pa,
        seeds: &[proxy.addr],
        secret: SECRET,
        origin: Some((64, 64, 1, 1)),
        attendee_limit: 2,
        upstream: None,
    });
    let b_member = Member {
        dir: &dir.path().join("b"),
        gossip: pb,
        seeds: &[],
        secret: SECRET,
        origin: None,
        attendee_limit: 2,
        upstream: None,
    };
    let b = start_member(&b_member);
    let a_id = node_id(&a);
    wait_for("a and b to meet", Duration::from_secs(30), || {
        member_ids(&b).contains(&a_id) && member_ids(&a).len() == 2
    });
    // Only what b received: a datagram b never saw is not a replay to it.
    proxy.recording.store(true, Ordering::SeqCst);
    wait_for("a few datagrams captured", Duration::from_secs(30), || {
        proxy.captured().len() >= 4
    });
    proxy.recording.store(false, Ordering::SeqCst);
    let captured = proxy.captured();
    let n = captured.len() as f64;
    for (_, d) in &captured {
        assert!(d.starts_with(b"TGS1"), "gossip is sealed");
        assert!(
            !d.windows(5).any(|w| w == b"test/"),
            "the cluster id travels in clear"
        );
    }
    // Replayed at once to the member that received them: refused, counted.
    let before = all_gossip_rejected(&b);
    proxy.replay(&captured, pb);
    let refused = || all_gossip_rejected(&b) >= before + n;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !refused() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        refused(),
        "{n} replayed, {before} refused before, now {}: {}",
        all_gossip_rejected(&b),
        metrics_text(&b)
            .lines()
            .filter(|l| l.contains("gossip"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(all_gossip_rejected(&b), before + n);
    assert!(gossip_rejected(&b, "replayed") > 0.0);

    // Later, to a member that has no memory of them (b restarted) and with
    // their sender dead: they change nothing either.
    a.kill9();
    wait_for("a to leave b", Duration::from_secs(30), || {
        !member_ids(&b).contains(&a_id)
    });
    assert!(b.terminate());
    let newest = captured.iter().map(|(t, _)| *t).max().unwrap();
    // Past the replay window (twice dead_after, at least 5 s) since capture.
    while newest.elapsed() < Duration::from_millis(5_500) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let b = start_member(&b_member);
    assert_eq!(all_gossip_rejected(&b), 0.0);
    proxy.replay(&captured, pb);
    wait_for(
        "the old datagrams to be refused",
        Duration::from_secs(10),
        || gossip_rejected(&b, "stale") >= n,
    );
    let until = Instant::now() + Duration::from_millis(DEAD_AFTER_MS * 2);
    while Instant::now() < until {
        assert_eq!(member_ids(&b), [node_id(&b)]);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(all_gossip_rejected(&b), n);
}

#[test]
fn members_with_the_secret_from_config_file_or_environment_converge_within_dead_after() {
    let dir = tempfile::tempdir().unwrap();
    let ports = [free_udp_port(), free_udp_port(), free_udp_port()];
    let secret_file = dir.path().join("cluster.secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let start = |i: usize, how: &str| {
        let m = Member {
            dir: &dir.path().join(format!("m{i}")),
            gossip: ports[i],
            seeds: &[ports[(i + 1) % 3]],
            secret: SECRET,
            origin: None,
            attendee_limit: 2,
            upstream: None,
        };
        std::fs::create_dir_all(m.dir).unwrap();
        let in_config = format!("secret = \"{SECRET}\"");
        let config = member_config(&m);
        let (config, env): (String, Vec<(&str, &str)>) = match how {
            "file" => (
                config.replace(
                    &in_config,
                    &format!("secret_file = \"{}\"", secret_file.display()),
                ),
                vec![],
            ),
            "env" => (
                config.replace(&in_config, ""),
                vec![("TANDEM_CLUSTER_SECRET", SECRET)],
            ),
            _ => (config, vec![]),
        };
        NodeProcess::start_with_env(m.dir, &config, "admin API on", &env)
    };
    let members = [start(0, "config"), start(1, "file"), start(2, "env")];
    // From the last start, every member lists all three within the
    // configured time (plus this loop's polling and the HTTP round trips,
    // generously on a loaded machine).
    let bound = Duration::from_millis(DEAD_AFTER_MS) + Duration::from_secs(3);
    let took = wait_for("three members everywhere", bound, || {
        members.iter().all(|m| member_ids(m).len() == 3)
    });
    eprintln!(
        "three members converged {took:?} after the last start (dead_after_ms {DEAD_AFTER_MS})"
    );
    for m in &members {
        assert_eq!(all_gossip_rejected(m), 0.0);
    }
}

#[test]
fn a_cluster_secret_on_the_command_line_is_refused() {
    let out = tandem_tests::tandem(&[
        "node",
        "--cluster-listen",
        "127.0.0.1:0",
        "--cluster-secret",
        "a-secret-on-the-command-line",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--cluster-secret is refused") && stderr.contains("TANDEM_CLUSTER_SECRET"),
        "{stderr}"
    );
}

// ---- Relayed attendees get virtual channels and the clipboard (issue 14) ----

/// An attendee relayed through another member joins a channel, receives
/// what the sharer sends to every reader, and, once interactive, pastes
/// clipboard text onto the origin's display; a view-only relayed attendee's
/// paste is refused. Channel streams travel over the relay link both ways.
#[test]
fn a_relayed_attendee_gets_channels_and_shares_the_clipboard_when_interactive() {
    use tandem_tests::channel_viewer::ChannelViewer;
    use tandem_tests::xserver::which;
    if !which("xclip") {
        panic!("xclip is needed (apt-get install xclip; make test installs it)");
    }
    let patience = Duration::from_secs(60);
    let x = XServer::start(320, 200);
    let dir = tempfile::tempdir().unwrap();
    let ports = [free_udp_port(), free_udp_port()];
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    let (a_seeds, b_seeds) = ([ports[1]], [ports[0]]);
    fn member<'a>(dir: &'a Path, gossip: u16, seeds: &'a [u16]) -> Member<'a> {
        Member {
            dir,
            gossip,
            seeds,
            secret: SECRET,
            origin: None,
            attendee_limit: 8,
            upstream: None,
        }
    }
    let a = {
        let m = member(&a_dir, ports[0], &a_seeds);
        std::fs::create_dir_all(m.dir).unwrap();
        let config = member_config(&m).replace(
            "[source]\nkind = \"none\"\n",
            &format!(
                "[source]\nkind = \"x11\"\ndisplay = \"{}\"\n[session]\ncontrol_policy = \"grant-all\"\nclipboard = true\n",
                x.display()
            ),
        );
        NodeProcess::start_until(m.dir, &config, "join with:")
    };
    let b = start_member(&member(&b_dir, ports[1], &b_seeds));
    let session = a.session_id();
    let a_id = node_id(&a);
    wait_for("two members and the session", patience, || {
        member_ids(&b).len() == 2 && sessions_of(&b, &a_id).is_some_and(|s| s.contains(&session))
    });
    let api = |method: &str, path: &str, body: Option<&str>| a.api(TOKEN, method, path, body);
    let base = format!("/api/v1/sessions/{session}/channels");
    let (status, body) = api("POST", &base, Some(r#"{"name": "chat"}"#));
    assert_eq!(status, 201, "{body}");

    let ticket = ticket_via(&a.ticket, &b);
    let viewer = |name: &str, channel: &str, interactive: bool| {
        let mut args = vec![
            ticket.as_str(),
            "--name",
            name,
            "--password",
            "cluster-pw",
            "--channel",
            channel,
            "--seconds",
            "120",
        ];
        if interactive {
            args.push("--request-control");
        }
        ChannelViewer::spawn(dir.path(), &args)
    };

    // A channel through the relay: joined, given read access, and reached
    // by the sharer's message to every reader.
    let mut reader = viewer("reader", "chat", false);
    let reader_id = reader.attendee_id(patience);
    reader.wait_stderr("channel chat joined (access none)", patience);
    let listed = attendees(&a);
    assert!(
        listed
            .iter()
            .any(|v| v["id"] == reader_id && v["via_node"].is_string()),
        "the attendee is relayed: {listed:?}"
    );
    let (status, body) = api(
        "PUT",
        &format!("{base}/chat/access/{reader_id}"),
        Some(r#"{"access": "read"}"#),
    );
    assert_eq!(status, 204, "{body}");
    reader.wait_stderr("channel access: read", patience);
    let (status, body) = api(
        "POST",
        &format!("{base}/chat/messages"),
        Some("to everyone"),
    );
    assert_eq!(status, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["queued"], 1, "{body}");
    assert_eq!(
        reader.wait_stdout(1, patience),
        vec!["to everyone".to_owned()],
        "{}",
        reader.report()
    );

    // The clipboard through the relay: an interactive attendee's paste
    // lands on the origin's display; a view-only one's is refused.
    let mut driver = viewer("driver", "clipboard", true);
    driver.wait_stderr("control level: interactive", patience);
    let deadline = Instant::now() + patience;
    while !driver.stderr().contains("read-write") {
        assert!(Instant::now() < deadline, "{}", driver.report());
        std::thread::sleep(Duration::from_millis(50));
    }
    let display_clipboard = || {
        let out = x.run("xclip", &["-o", "-selection", "clipboard"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    driver.send_line("pasted through the relay");
    let deadline = Instant::now() + patience;
    while display_clipboard() != "pasted through the relay" {
        assert!(
            Instant::now() < deadline,
            "display clipboard is {:?}\n{}",
            display_clipboard(),
            driver.report()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut watcher = viewer("watcher", "clipboard", false);
    watcher.wait_stderr("channel clipboard joined (access none)", patience);
    watcher.send_line("not allowed");
    watcher.wait_stderr(
        "clipboard not sent: this attendee is not interactive",
        patience,
    );
    assert_eq!(display_clipboard(), "pasted through the relay");
}

/// A relay mirrors a session only for attendees the origin admitted, and
/// tears the mirror down after the last of them left.
#[test]
fn a_relay_mirrors_only_for_admitted_attendees_and_drops_the_mirror_after_the_last() {
    let cluster = start_cluster((160, 100, 2, 1_000_000), 8);
    let relay = &cluster.relays[0];
    let mirrors = || metric(&metrics_text(relay), "tandem_relay_mirrors");
    assert_eq!(mirrors(), 0.0);
    let ticket = ticket_via(&cluster.origin.ticket, relay);

    // A wrong password is refused by the origin; the relay mirrored nothing.
    let out = tandem_tests::view(&[
        &ticket,
        "--name",
        "mallory",
        "--password",
        "not-the-password",
        "--headless",
        "--frames",
        "1",
    ]);
    assert!(!out.status.success(), "{}", text(&out));
    assert_eq!(mirrors(), 0.0);
    assert!(metric(&metrics_text(relay), "tandem_relay_links") >= 1.0);

    // An admitted attendee has one mirror while it views...
    let viewer = spawn_view(&[
        &ticket,
        "--name",
        "alice",
        "--password",
        "cluster-pw",
        "--headless",
        "--seconds",
        "4",
    ]);
    wait_for(
        "a mirror for the admitted attendee",
        Duration::from_secs(20),
        || mirrors() == 1.0,
    );
    let out = viewer.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(summary(&String::from_utf8_lossy(&out.stdout)).updates >= 1);
    // ...and none once it left, though the link stays up.
    // (It lingers 30 s for a next attendee.)
    wait_for("the mirror torn down", Duration::from_secs(60), || {
        mirrors() == 0.0
    });
    assert!(metric(&metrics_text(relay), "tandem_relay_links") >= 1.0);
}
