//! Cluster fan-out figures, printed: attendees served at the default frame
//! interval (33 ms) on a scripted workload (the synthetic desktop, animated
//! every frame) by one node alone, then by an origin with two relays, each
//! node's CPU and the origin's graphics egress.
//!
//! An attendee counts as served at the default interval when it received at
//! least 90 % of the frames the source produced while it viewed. Everything
//! runs on this machine, attendees included (headless `tandem view`
//! processes decode every update), so the figures compare the two layouts
//! on one machine rather than measure a node's ceiling.
//!
//! `make cluster-load` builds and runs it (release). `TANDEM_BIN` overrides
//! where the binary is looked for; `CLUSTER_LOAD_COUNTS` (e.g. `10,20,40`)
//! and `CLUSTER_LOAD_SECONDS` change the ramp.

use std::path::Path;
use std::time::{Duration, Instant};

use tandem_tests::{
    cpu_seconds, free_udp_port, http_get, metric, spawn_view, summary, NodeProcess,
};

const TOKEN: &str = "cluster-load-token-0123456789";
const SECRET: &str = "cluster-load-secret-0123456789";
const WIDTH: u32 = 640;
const HEIGHT: u32 = 400;
const FRAME_INTERVAL_MS: f64 = 33.0;

fn config(dir: &Path, origin: bool, gossip: Option<(u16, Vec<u16>)>) -> String {
    let source = if origin {
        format!("[source]\nkind = \"synthetic\"\nwidth = {WIDTH}\nheight = {HEIGHT}\nseed = 4\n")
    } else {
        "[source]\nkind = \"none\"\n".to_owned()
    };
    let cluster = match gossip {
        Some((port, seeds)) => format!(
            "[cluster]\nlisten = \"127.0.0.1:{port}\"\nseeds = [{}]\nsecret = \"{SECRET}\"\ndead_after_ms = 3000\n",
            seeds
                .iter()
                .map(|p| format!("\"127.0.0.1:{p}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => String::new(),
    };
    format!(
        "data_dir = \"{}\"\nquic_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nadmin_token = \"{TOKEN}\"\n{source}[invitation]\npassword = \"cluster-pw\"\nattendee_limit = 1000\n{cluster}",
        dir.join("data").display()
    )
}

fn start(dir: &Path, origin: bool, gossip: Option<(u16, Vec<u16>)>) -> NodeProcess {
    std::fs::create_dir_all(dir).expect("node dir");
    let ready = if origin { "join with:" } else { "admin API on" };
    NodeProcess::start_until(dir, &config(dir, origin, gossip), ready)
}

fn ticket_via(ticket: &str, node: &NodeProcess) -> String {
    let rest = ticket
        .strip_prefix("tandem://")
        .and_then(|t| t.split_once('/'))
        .map(|(_, r)| r)
        .expect("a tandem:// ticket");
    format!("tandem://{}/{rest}", node.quic_addr)
}

fn egress(node: &NodeProcess) -> f64 {
    let (_, m) = http_get(&format!("{}/metrics", node.admin_url));
    metric(&m, "tandem_bytes_sent_total")
        + m.lines()
            .find_map(|l| l.strip_prefix("tandem_relayed_bytes_total{direction=\"sent\"} "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
}

/// Joins the node admitted so far (the origin admits relayed attendees too).
fn admitted(node: &NodeProcess) -> f64 {
    let (_, m) = http_get(&format!("{}/metrics", node.admin_url));
    // Absent until the first join.
    m.lines()
        .find_map(|l| l.strip_prefix("tandem_joins_total{result=\"admitted\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn frames_captured(node: &NodeProcess) -> f64 {
    let (_, m) = http_get(&format!("{}/metrics", node.admin_url));
    metric(&m, "tandem_frames_captured_total")
}

/// Runs `n` attendees for `seconds` on the given entry tickets (round
/// robin) and prints one line.
fn run(
    label: &str,
    origin: &NodeProcess,
    nodes: &[&NodeProcess],
    tickets: &[String],
    n: usize,
    seconds: u64,
) {
    let pids: Vec<u32> = nodes.iter().map(|p| p.pid()).collect();
    let cpu0: Vec<f64> = pids.iter().map(|p| cpu_seconds(*p)).collect();
    let (egress0, frames0, t0) = (egress(origin), frames_captured(origin), Instant::now());
    let admitted0 = admitted(origin);
    // Joined in groups of four, each group admitted before the next starts:
    // the origin slows down (and past eight, refuses) concurrent password
    // checks from one address, and every attendee here is 127.0.0.1.
    let mut viewers = Vec::new();
    for i in 0..n {
        viewers.push(spawn_view(&[
            &tickets[i % tickets.len()],
            "--name",
            &format!("load{i}"),
            "--password",
            "pw",
            "--headless",
            "--seconds",
            &seconds.to_string(),
        ]));
        if i % 4 == 3 || i + 1 == n {
            let deadline = Instant::now() + Duration::from_secs(30);
            while admitted(origin) - admitted0 < (i + 1) as f64 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    let mut rates = Vec::new();
    let mut failed = 0;
    for v in viewers {
        let out = v.wait_with_output().expect("viewer");
        let text = String::from_utf8_lossy(&out.stdout);
        if out.status.success() && text.contains("received ") {
            rates.push(summary(&text).updates as f64 / seconds as f64);
        } else {
            failed += 1;
            rates.push(0.0);
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let source_fps = (frames_captured(origin) - frames0) / wall;
    let target = source_fps.min(1000.0 / FRAME_INTERVAL_MS) * 0.9;
    let served = rates.iter().filter(|r| **r >= target).count();
    let mean = rates.iter().sum::<f64>() / rates.len().max(1) as f64;
    let cpu: Vec<String> = pids
        .iter()
        .zip(&cpu0)
        .map(|(p, c0)| format!("{:.0}%", (cpu_seconds(*p) - c0) / wall * 100.0))
        .collect();
    println!(
        "{label:<18} {n:>3} attendees: {served:>3} served at the frame interval ({failed} failed to join; source {source_fps:4.1} fps, mean {mean:4.1} updates/s), node CPU [{}], origin egress {:7.1} kB/s",
        cpu.join(", "),
        (egress(origin) - egress0) / wall / 1000.0
    );
}

fn main() {
    tandem_benches::use_tandem_beside_this_binary();
    let counts: Vec<usize> = std::env::var("CLUSTER_LOAD_COUNTS")
        .unwrap_or_else(|_| "10,20,40".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let seconds: u64 = std::env::var("CLUSTER_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().expect("tempdir");
    println!(
        "synthetic {WIDTH}x{HEIGHT} desktop animated every frame, default interval {FRAME_INTERVAL_MS} ms, {seconds} s per run, all on this machine ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    {
        let single = start(&dir.path().join("single"), true, None);
        let tickets = vec![single.ticket.clone()];
        for &n in &counts {
            run("one node", &single, &[&single], &tickets, n, seconds);
        }
    }

    let ports = [free_udp_port(), free_udp_port(), free_udp_port()];
    let origin = start(
        &dir.path().join("a"),
        true,
        Some((ports[0], vec![ports[1], ports[2]])),
    );
    let relays: Vec<NodeProcess> = [("b", 1), ("c", 2)]
        .iter()
        .map(|(name, i)| {
            start(
                &dir.path().join(name),
                false,
                Some((ports[*i], vec![ports[0]])),
            )
        })
        .collect();
    // Wait until both relays know the origin's session.
    let deadline = Instant::now() + Duration::from_secs(30);
    for r in &relays {
        loop {
            let (status, body) = tandem_tests::http_request(
                "GET",
                &format!("{}/api/v1/cluster/nodes", r.admin_url),
                Some(TOKEN),
                None,
            );
            if status == 200
                && body.matches("\"id\"").count() == 3
                && body.contains("\"sessions\":[\"")
            {
                break;
            }
            assert!(Instant::now() < deadline, "the cluster did not form");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let tickets: Vec<String> = relays
        .iter()
        .map(|r| ticket_via(&origin.ticket, r))
        .collect();
    let nodes: Vec<&NodeProcess> = std::iter::once(&origin).chain(&relays).collect();
    for &n in &counts {
        run("origin + 2 relays", &origin, &nodes, &tickets, n, seconds);
    }
}
