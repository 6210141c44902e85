//! A slow attendee never holds back a fast one, converges once the desktop
//! stops changing, and costs the node no more than its budget.
//!
//! One attendee sits behind a 2 Mbit/s link: its own network namespace,
//! reached through a router namespace whose interface towards it is shaped
//! with `tbf` (this kernel has no netem). Shaping in the router, not on the
//! node's interface, is the real case: a slow access link somewhere on the
//! path, while the node's socket (shared by every connection) drains at
//! once. Another attendee watches on loopback. The node runs in the root
//! namespace (the test reaches its admin API there) with a 1920x1080
//! synthetic office desktop changing every frame, then frozen.
//!
//! Asserted: the slow attendee's last picture is the node's frame buffer
//! bit for bit (it converges), and the node's RSS grows by no more than
//! the per-attendee budget while both watch. Printed, not asserted (no
//! timing assertions): the fast attendee's updates, catch-ups and
//! capture-to-decoded p50/p99 with and without the slow one, and the slow
//! one's time to converge (the latency of its last update, a catch-up
//! stamped with the last capture).
//!
//! Needs root (network namespaces): as non-root it says so and passes
//! without measuring, like the X tests without Xvfb.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tandem_proto::{ConnectionString, NodeAddr};
use tandem_tests::{differing_pixels, read_png, summary, tandem_bin, NodeProcess};

const TOKEN: &str = "slow-link-admin-token-0123456789";
/// Frames the desktop changes for (30 per second): then it is still.
const MOTION_FRAMES: u64 = 180;
/// How long each viewer watches: the motion, then time to converge.
const VIEW_SECONDS: u64 = 20;
/// What one attendee may make the node hold beyond its steady state: one
/// update in flight (latest-wins: a 1080p key frame of this desktop is
/// well under 1 MiB), its connection's send buffer (bounded by the
/// attendee's 2 MiB receive window) and quinn's per-connection state.
const PER_ATTENDEE_BUDGET_KIB: u64 = 8 * 1024;

/// The namespaces, veth pair addresses and shaping of one run.
struct SlowLink {
    router: String,
    attendee: String,
    root_veth: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    run("ip", args)
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The node's side of the path, and the slow attendee's.
const ROOT_ADDR: &str = "10.231.1.1";
const ATTENDEE_NET: &str = "10.231.2.0/30";

impl SlowLink {
    /// root (10.231.1.1) -- router (10.231.1.2 | 10.231.2.1, shaped
    /// towards the attendee) -- attendee (10.231.2.2).
    fn create(rate: &str) -> Result<SlowLink, String> {
        let id = std::process::id() % 100_000;
        let link = SlowLink {
            router: format!("tdm-slow-r{id}"),
            attendee: format!("tdm-slow-a{id}"),
            root_veth: format!("tsl0-{id}"),
        };
        let (r, a) = (link.router.clone(), link.attendee.clone());
        let (v0, v0r, v1, v1r) = (
            link.root_veth.clone(),
            format!("tsl0r{id}"),
            format!("tsl1-{id}"),
            format!("tsl1r{id}"),
        );
        ip(&["netns", "add", &r])?;
        ip(&["netns", "add", &a])?;
        ip(&["link", "add", &v0, "type", "veth", "peer", "name", &v0r])?;
        ip(&["link", "add", &v1, "type", "veth", "peer", "name", &v1r])?;
        ip(&["link", "set", &v0r, "netns", &r])?;
        ip(&["link", "set", &v1r, "netns", &r])?;
        ip(&["link", "set", &v1, "netns", &a])?;
        ip(&["addr", "add", "10.231.1.1/30", "dev", &v0])?;
        ip(&["link", "set", &v0, "up"])?;
        ip(&["route", "add", ATTENDEE_NET, "via", "10.231.1.2"])?;
        for (dev, addr) in [(&v0r, "10.231.1.2/30"), (&v1r, "10.231.2.1/30")] {
            ip(&["-n", &r, "addr", "add", addr, "dev", dev])?;
            ip(&["-n", &r, "link", "set", dev, "up"])?;
        }
        ip(&[
            "netns",
            "exec",
            &r,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ])?;
        ip(&["-n", &a, "addr", "add", "10.231.2.2/30", "dev", &v1])?;
        ip(&["-n", &a, "link", "set", &v1, "up"])?;
        ip(&["-n", &a, "link", "set", "lo", "up"])?;
        ip(&["-n", &a, "route", "add", "default", "via", "10.231.2.1"])?;
        // Towards the attendee: the slow access link.
        ip(&[
            "netns", "exec", &r, "tc", "qdisc", "add", "dev", &v1r, "root", "tbf", "rate", rate,
            "burst", "32kbit", "latency", "400ms",
        ])?;
        Ok(link)
    }
}

impl Drop for SlowLink {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of each veth pair, and with
        // it the other end and the root namespace's route.
        let _ = ip(&["netns", "del", &self.attendee]);
        let _ = ip(&["netns", "del", &self.router]);
        let _ = ip(&["link", "del", &self.root_veth]);
    }
}

fn config(dir: &std::path::Path) -> String {
    format!(
        "data_dir = \"{}\"\nquic_listen = \"0.0.0.0:0\"\nadmin_listen = \"127.0.0.1:0\"\n\
         admin_token = \"{TOKEN}\"\n[source]\nkind = \"synthetic\"\nwidth = 1920\n\
         height = 1080\nseed = 5\nmotion = \"desktop\"\nfreeze_after_frames = {MOTION_FRAMES}\n\
         [session]\nframe_interval_ms = 33\n[invitation]\npassword = \"slow-password\"\n\
         attendee_limit = 8\n",
        dir.join("data").display()
    )
}

/// The node's connection string with only `host` as its address.
fn ticket_via(node: &NodeProcess, host: &str) -> String {
    let mut ticket: ConnectionString = node.ticket.parse().expect("the node's connection string");
    let port = node
        .quic_addr
        .parse::<SocketAddr>()
        .expect("the node's QUIC address")
        .port();
    ticket.addrs = vec![NodeAddr {
        host: host.to_owned(),
        port,
    }];
    ticket.to_string()
}

/// `tandem view --headless --latency`, run inside `netns` when given.
fn viewer(netns: Option<&str>, ticket: &str, name: &str, snapshot: &std::path::Path) -> Command {
    let bin = tandem_bin();
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(&bin);
            c
        }
        None => Command::new(&bin),
    };
    cmd.args([
        "view",
        ticket,
        "--name",
        name,
        "--password",
        "slow-password",
        "--headless",
        "--latency",
        "--seconds",
        &VIEW_SECONDS.to_string(),
        "--snapshot",
    ])
    .arg(snapshot)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

/// From the summary line `capture-to-decoded latency over N updates: p50
/// X ms, p99 Y ms, max Z ms, last W ms`: (p50, p99, last) in ms.
fn latency(stdout: &str) -> (f64, f64, f64) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("capture-to-decoded latency"))
        .unwrap_or_else(|| panic!("no latency summary in:\n{stdout}"));
    let figure = |key: &str| -> f64 {
        let at = line
            .find(key)
            .unwrap_or_else(|| panic!("no {key} in {line}"))
            + key.len();
        line[at..]
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no figure after {key} in {line}"))
    };
    (figure("p50 "), figure("p99 "), figure("last "))
}

struct Watched {
    stdout: String,
    snapshot: std::path::PathBuf,
}

fn finish(child: std::process::Child, snapshot: std::path::PathBuf, who: &str) -> Watched {
    let out = child.wait_with_output().expect("viewer output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{who} viewer failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Watched { stdout, snapshot }
}

/// One run: a fresh node, the fast attendee, and the slow one if `slow`.
/// Returns the fast and slow viewers' results and (baseline, peak) RSS.
fn watch(slow: Option<&SlowLink>) -> (Watched, Option<Watched>, (u64, u64)) {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &config(dir.path()));
    let fast_snap = dir.path().join("fast.png");
    let slow_snap = dir.path().join("slow.png");
    let fast = viewer(None, &ticket_via(&node, "127.0.0.1"), "fast", &fast_snap)
        .spawn()
        .expect("start the fast viewer");
    let slow_child = slow.map(|link| {
        viewer(
            Some(&link.attendee),
            &ticket_via(&node, ROOT_ADDR),
            "slow",
            &slow_snap,
        )
        .spawn()
        .expect("start the slow viewer")
    });
    // The node's memory while both watch: baseline once both joined and a
    // second of updates went out, then the peak of samples every 200 ms.
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let baseline = node.rss_kib();
    let mut peak = baseline;
    while start.elapsed() < Duration::from_secs(VIEW_SECONDS) {
        std::thread::sleep(Duration::from_millis(200));
        peak = peak.max(node.rss_kib());
    }
    let fast = finish(fast, fast_snap, "fast");
    let slow = slow_child.map(|c| finish(c, slow_snap, "slow"));
    let session = node.session_id();
    let expected = node.framebuffer(TOKEN, &session);
    for w in std::iter::once(&fast).chain(slow.as_ref()) {
        let picture = read_png(&w.snapshot);
        assert_eq!(
            differing_pixels(&picture, &expected),
            0,
            "{} did not converge to the node's frame buffer:\n{}",
            w.snapshot.display(),
            w.stdout
        );
    }
    (fast, slow, (baseline, peak))
}

#[test]
fn a_slow_attendee_converges_and_holds_back_no_one() {
    if !nix_is_root() {
        eprintln!("slow_link: needs root for network namespaces; not measured");
        return;
    }
    let link = match SlowLink::create("2mbit") {
        Ok(link) => link,
        Err(e) => panic!("setting up the shaped namespaces failed: {e}"),
    };

    let (alone, _, _) = watch(None);
    let (fast, slow, (baseline, peak)) = watch(Some(&link));
    let slow = slow.expect("the slow viewer ran");

    let row = |who: &str, w: &Watched| {
        let s = summary(&w.stdout);
        let (p50, p99, last) = latency(&w.stdout);
        println!(
            "slow_link: {who:<22} {:>4} updates {:>3} catch-ups {:>2} key frames  p50 {p50:>7.1} ms  p99 {p99:>7.1} ms  last {last:>7.1} ms",
            s.updates, s.catch_ups, s.key_frames
        );
        (s, last)
    };
    let (alone_s, _) = row("fast alone", &alone);
    let (fast_s, _) = row("fast beside the slow", &fast);
    let (_, converge_ms) = row("slow (2 Mbit/s)", &slow);
    println!(
        "slow_link: the fast attendee got {} updates alone and {} beside the slow one; the slow one converged {converge_ms:.0} ms after the last capture",
        alone_s.updates, fast_s.updates
    );
    let grown = peak.saturating_sub(baseline);
    println!(
        "slow_link: node RSS {baseline} KiB once both watched, peak {peak} KiB (+{grown} KiB; budget {} KiB for two attendees)",
        2 * PER_ATTENDEE_BUDGET_KIB
    );
    assert!(
        grown <= 2 * PER_ATTENDEE_BUDGET_KIB,
        "the node grew by {grown} KiB while two attendees watched, over the budget of {} KiB",
        2 * PER_ATTENDEE_BUDGET_KIB
    );
}

/// Whether this process runs as root (namespaces need it).
fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().next().map(|u| u == "0"))
        })
        .unwrap_or(false)
}
