//! `make fanout`: how many attendees one node serves at the frame interval.
//!
//! For each attendee count of the ramp, a fresh node (release `tandem`,
//! synthetic 1920x1080 desktop at 30 frames a second, office or full-motion
//! workload) is started and pinned to `--node-cpus`; this tool pins itself
//! to `--tool-cpus`, pauses the session (the synthetic desktop's animation
//! stands still while paused), joins N real attendees from one process (see
//! `tandem_benches::fanout`), resumes, lets them watch for a warm-up (the
//! same ticks of the animation in every step, however long the joins
//! took), then measures a
//! window: the served fraction (the share of published updates each
//! attendee received as an update of its own), catch-ups, the node's CPU
//! (cores, from /proc), egress (the node's `tandem_bytes_sent_total`) and
//! RSS. The ramp stops after the first count whose served fraction is below
//! 99 %. Sampled attendees (one in `--sample-every`) decode everything and
//! their picture must be the synthetic desktop at a tick the node captured:
//! a mismatch is reported and makes the tool exit 1.
//!
//! Every attendee asks for stamped updates and records capture to received
//! (the node's capture stamp against this machine's clock once the stream
//! is read whole); p50/p99 are over every update of every attendee in the
//! window. That figure includes the tool's own delay in reading (one core
//! for all attendees), so it bounds the node's share from above.
//!
//! One more attendee, a real `tandem view --headless --latency`, watches
//! each warm-up and window and prints its capture-to-decoded latency (the
//! pixel as a user's viewer has it), on the tool's CPU.
//!
//! GSO: the node's `tandem_udp_max_gso_segments` is printed, and after the
//! attendees leave, its datagrams per send system call
//! (`tandem_udp_tx_datagrams_total` / `tandem_udp_tx_ios_total`).
//!
//! The tool's own cost stays out of the node's figures: the node's CPU is
//! read from its own /proc entry, and the two never share a core.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use tandem_benches::fanout::{self, Attendee, Tally, Workload};
use tandem_capture::{Motion, SyntheticDesktop};
use tandem_proto::ConnectionString;
use tandem_tests::{cpu_seconds, http_get, metric, NodeProcess};

const TOKEN: &str = "fanout-admin-token-0123456789";

#[derive(Parser, Debug)]
#[command(about = "Attendees per core: one node, many real attendees in one process")]
struct Args {
    /// office, full or both.
    #[arg(long, default_value = "both")]
    workload: String,
    /// Attendee counts of the ramp, in order.
    #[arg(long, default_value = "10,50,100,200,300,450,600,800")]
    counts: String,
    /// Seconds of each measured window.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds the attendees watch before the window starts.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// One attendee in this many decodes everything and is checked.
    #[arg(long, default_value_t = 50)]
    sample_every: usize,
    /// Desktop size.
    #[arg(long, default_value_t = 1920)]
    width: u32,
    /// Desktop size.
    #[arg(long, default_value_t = 1080)]
    height: u32,
    /// CPUs the node runs on (a taskset list).
    #[arg(long, default_value = "0")]
    node_cpus: String,
    /// CPUs this tool runs on (a taskset list).
    #[arg(long, default_value = "1")]
    tool_cpus: String,
    /// Print the rows as one JSON document as well.
    #[arg(long)]
    json: bool,
}

/// One measured step.
#[derive(Debug)]
struct Row {
    workload: Workload,
    attendees: usize,
    join_seconds: f64,
    /// Animation ticks: when the joins ended (the session resumed), and
    /// the measured window's first and last.
    tick_at_resume: u64,
    window_ticks: (u64, u64),
    /// The latency viewer's summary line, or why there is none.
    viewer_latency: String,
    served: f64,
    min_served: f64,
    catch_ups: u64,
    published_per_second: f64,
    node_cpu_cores: f64,
    tool_cpu_cores: f64,
    egress_mbit_per_second: f64,
    rss_mib: f64,
    sampled: usize,
    sample_mismatches: usize,
    failures: usize,
    latency_p50_ms: f64,
    latency_p99_ms: f64,
    latency_samples: usize,
    gso_segments: f64,
    datagrams_per_send: f64,
}

impl Row {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "workload": self.workload.label(),
            "attendees": self.attendees,
            "join_seconds": self.join_seconds,
            "tick_at_resume": self.tick_at_resume,
            "window_first_tick": self.window_ticks.0,
            "window_last_tick": self.window_ticks.1,
            "viewer_latency": self.viewer_latency,
            "served_fraction": self.served,
            "min_attendee_served_fraction": self.min_served,
            "catch_ups": self.catch_ups,
            "updates_published_per_second": self.published_per_second,
            "node_cpu_cores": self.node_cpu_cores,
            "tool_cpu_cores": self.tool_cpu_cores,
            "attendees_per_core": self.attendees as f64 / self.node_cpu_cores.max(1e-9),
            "egress_mbit_per_second": self.egress_mbit_per_second,
            "egress_mbit_per_core": self.egress_mbit_per_second / self.node_cpu_cores.max(1e-9),
            "node_rss_mib": self.rss_mib,
            "sampled_attendees": self.sampled,
            "sample_mismatches": self.sample_mismatches,
            "attendee_failures": self.failures,
            "capture_to_received_p50_ms": self.latency_p50_ms,
            "capture_to_received_p99_ms": self.latency_p99_ms,
            "latency_samples": self.latency_samples,
            "udp_max_gso_segments": self.gso_segments,
            "udp_datagrams_per_send": self.datagrams_per_send,
        })
    }
}

fn metrics(node: &NodeProcess) -> String {
    http_get(&format!("{}/metrics", node.admin_url)).1
}

/// One real `tandem view --headless --latency` beside the tool's
/// attendees for the warm-up and the measured window (on the tool's CPUs,
/// which it inherits): capture to *decoded* pixel, as a user's viewer sees it.
struct LatencyViewer(Option<std::process::Child>);

impl LatencyViewer {
    fn start(node: &NodeProcess, seconds: u64) -> LatencyViewer {
        let child = std::process::Command::new(tandem_tests::tandem_bin())
            .args(["view", &node.ticket, "--password", fanout::PASSWORD])
            .args(["--name", "latency-viewer", "--headless", "--latency"])
            .args(["--seconds", &seconds.to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| eprintln!("fanout: cannot start the latency viewer: {e}"))
            .ok();
        LatencyViewer(child)
    }

    /// Its latency line; waits at most `seconds` + 20 s for it to end.
    fn finish(self, seconds: u64) -> String {
        use std::io::Read;
        let Some(mut child) = self.0 else {
            return "not started".into();
        };
        let deadline = Instant::now() + Duration::from_secs(seconds + 20);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return "did not end in time".into();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut out = String::new();
        if let Some(mut stdout) = child.stdout.take() {
            let _ = stdout.read_to_string(&mut out);
        }
        out.lines()
            .find_map(|l| l.trim().strip_prefix("capture-to-decoded latency "))
            .map_or_else(|| "no latency line".into(), str::to_owned)
    }
}

/// The node's count of captured frames: the synthetic desktop's animation
/// tick (a paused session captures none).
const FRAMES_CAPTURED: &str = "tandem_frames_captured_total";

/// Frames the node has captured so far.
fn captured(node: &NodeProcess) -> u64 {
    metric(&metrics(node), FRAMES_CAPTURED) as u64
}

/// `POST /api/v1/sessions/{session}/{action}` (pause or resume); exits on failure.
fn session_call(node: &NodeProcess, session: &str, action: &str) {
    let path = format!("/api/v1/sessions/{session}/{action}");
    let (status, body) = node.api(TOKEN, "POST", &path, None);
    if !(200..300).contains(&status) {
        eprintln!("fanout: {action} the session: HTTP {status}: {body}");
        std::process::exit(2);
    }
}

fn main() {
    let args = Args::parse();
    tandem_benches::use_tandem_beside_this_binary();
    let workloads = match args.workload.as_str() {
        "office" => vec![Workload::Office],
        "full" => vec![Workload::FullMotion],
        "both" => vec![Workload::Office, Workload::FullMotion],
        other => {
            eprintln!("fanout: --workload must be office, full or both, not {other:?}");
            std::process::exit(2);
        }
    };
    let counts: Vec<usize> = match args
        .counts
        .split(',')
        .map(|c| c.trim().parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(c) if !c.is_empty() && c.iter().all(|&n| (1..=5000).contains(&n)) => c,
        _ => {
            eprintln!("fanout: --counts must be a comma-separated list of 1..=5000");
            std::process::exit(2);
        }
    };
    if let Err(e) = fanout::pin(std::process::id(), &args.tool_cpus) {
        eprintln!("fanout: {e}");
        std::process::exit(2);
    }
    let tool_threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(tool_threads)
        .enable_all()
        .build()
        .expect("tokio runtime");

    println!(
        "fanout: {}x{} synthetic desktop, 33 ms frame interval, node on CPU {}, tool on CPU {} ({tool_threads} threads), {} s windows after {} s warm-up",
        args.width, args.height, args.node_cpus, args.tool_cpus, args.seconds, args.warmup
    );
    println!(
        "{:<12} {:>9} {:>8} {:>9} {:>8} {:>9} {:>9} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7} {:>11}",
        "workload",
        "attendees",
        "served",
        "min-att",
        "catchup",
        "node-cpu",
        "tool-cpu",
        "att/core",
        "egress-Mb/s",
        "Mb/core",
        "rss-MiB",
        "p50-ms",
        "p99-ms",
        "dg/send",
        "ticks"
    );
    let mut rows = Vec::new();
    let mut failed = false;
    for &workload in &workloads {
        for &n in &counts {
            let row = runtime.block_on(step(&args, workload, n));
            println!(
                "{:<12} {:>9} {:>7.2}% {:>8.2}% {:>8} {:>9.2} {:>9.2} {:>9.0} {:>10.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>7.2} {:>11}",
                workload.label(),
                row.attendees,
                row.served * 100.0,
                row.min_served * 100.0,
                row.catch_ups,
                row.node_cpu_cores,
                row.tool_cpu_cores,
                row.attendees as f64 / row.node_cpu_cores.max(1e-9),
                row.egress_mbit_per_second,
                row.egress_mbit_per_second / row.node_cpu_cores.max(1e-9),
                row.rss_mib,
                row.latency_p50_ms,
                row.latency_p99_ms,
                row.datagrams_per_send,
                format!("{}-{}", row.window_ticks.0, row.window_ticks.1)
            );
            println!(
                "  one more attendee, tandem view --headless --latency: {}",
                row.viewer_latency
            );
            if row.sample_mismatches > 0 || row.failures > 0 {
                println!(
                    "  ! {} of {} sampled pictures differ from the desktop, {} attendees failed",
                    row.sample_mismatches, row.sampled, row.failures
                );
                failed = true;
            }
            let stop = row.served < 0.99;
            rows.push(row);
            if stop {
                break;
            }
        }
    }
    if let Some(last) = rows.last() {
        println!(
            "GSO: the node's UDP socket takes up to {} segments per send; {:.2} datagrams per send system call in the last step (dg/send)",
            last.gso_segments, last.datagrams_per_send
        );
        println!("p50-ms/p99-ms: capture (node stamp) to received whole (this tool), every update of every attendee in the window");
        println!("ticks: the desktop animation's ticks in the window (the session is paused while attendees join, so every step measures the same ticks)");
    }
    if args.json {
        let doc: Vec<_> = rows.iter().map(Row::json).collect();
        println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
    }
    if failed {
        std::process::exit(1);
    }
}

async fn step(args: &Args, workload: Workload, n: usize) -> Row {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = fanout::node_config(
        dir.path(),
        TOKEN,
        workload,
        args.width,
        args.height,
        u64::MAX / 2,
    );
    let node =
        tokio::task::block_in_place(|| NodeProcess::start_until(dir.path(), &config, "join with:"));
    if let Err(e) = fanout::pin(node.pid(), &args.node_cpus) {
        eprintln!("fanout: {e}");
        std::process::exit(2);
    }
    // The desktop's animation stands still while the attendees join (a
    // paused session captures nothing), so every step measures the same
    // ticks of it, however long its joins took.
    let session = node.session_id();
    session_call(&node, &session, "pause");
    let ticket: ConnectionString = node.ticket.parse().expect("the node's connection string");
    let addr: SocketAddr = node.quic_addr.parse().expect("the node's QUIC address");
    let transport = fanout::attendee_transport();
    let per_endpoint = 25;
    let endpoints = fanout::endpoints(n, per_endpoint, &transport).expect("client endpoints");

    // Each endpoint (source address) joins its attendees one after another;
    // the endpoints join in parallel, as a classroom would.
    let join_start = Instant::now();
    let ticket = Arc::new(ticket);
    let mut groups = Vec::new();
    for (e, endpoint) in endpoints.iter().enumerate() {
        let (endpoint, ticket, transport) = (endpoint.clone(), ticket.clone(), transport.clone());
        let first = e * per_endpoint;
        let last = (first + per_endpoint).min(n);
        let sample_every = args.sample_every.max(1);
        groups.push(tokio::spawn(async move {
            let mut joined = Vec::new();
            for i in first..last {
                let attendee = fanout::join(
                    &endpoint,
                    addr,
                    &ticket,
                    &transport,
                    format!("load{i}"),
                    fanout::PASSWORD,
                    i % sample_every == 0,
                )
                .await
                .unwrap_or_else(|e| panic!("attendee {i}: {e}"));
                joined.push(attendee);
            }
            joined
        }));
    }
    let mut attendees: Vec<Attendee> = Vec::new();
    for g in groups {
        attendees.extend(g.await.expect("join task"));
    }
    let join_seconds = join_start.elapsed().as_secs_f64();
    let tick_at_resume = captured(&node);
    session_call(&node, &session, "resume");
    // Joined now, so that its own join (a key frame of a frame captured
    // while it connected) is one update among hundreds.
    let viewer = LatencyViewer::start(&node, args.warmup + args.seconds);
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;

    for a in &attendees {
        a.counters.start_recording();
    }
    let before = Tally::of(&attendees);
    let m0 = metrics(&node);
    let first_tick = metric(&m0, FRAMES_CAPTURED) as u64;
    let cpu0 = cpu_seconds(node.pid());
    let tool0 = cpu_seconds(std::process::id());
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let after = Tally::of(&attendees);
    let mut latencies: Vec<f64> = attendees
        .iter()
        .flat_map(|a| a.counters.take_latencies())
        .map(|us| f64::from(us) / 1000.0)
        .collect();
    let m1 = metrics(&node);
    let last_tick = metric(&m1, FRAMES_CAPTURED) as u64;
    let cpu1 = cpu_seconds(node.pid());
    let tool1 = cpu_seconds(std::process::id());
    let window = t0.elapsed().as_secs_f64();
    let rss_mib = node.rss_kib() as f64 / 1024.0;
    let viewer_latency = tokio::task::block_in_place(|| viewer.finish(args.warmup + args.seconds));

    let published = (metric(&m1, "tandem_updates_published_total")
        - metric(&m0, "tandem_updates_published_total")) as u64;
    let egress = metric(&m1, "tandem_bytes_sent_total") - metric(&m0, "tandem_bytes_sent_total");
    let served = fanout::served_fraction(&before, &after, published);
    let min_served = after
        .updates
        .iter()
        .zip(&before.updates)
        .map(|(a, b)| (a - b).min(published) as f64 / published.max(1) as f64)
        .fold(1.0, f64::min);

    let (sampled, sample_mismatches) = check_samples(&attendees, &node, workload, args).await;
    let failures = attendees
        .iter()
        .filter(|a| a.failure.lock().unwrap().is_some())
        .count();
    if let Some(first) = attendees
        .iter()
        .find_map(|a| a.failure.lock().unwrap().clone())
    {
        eprintln!("fanout: an attendee failed: {first}");
    }
    for a in &attendees {
        a.close();
    }
    // The node adds a connection's UDP counts when it ends.
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while metric(&metrics(&node), "tandem_connections") > 0.0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .is_ok();
    let m2 = metrics(&node);
    if !closed {
        eprintln!("fanout: some connections were still open after 10 s; datagrams per send counts the closed ones");
    }
    let datagrams_per_send = metric(&m2, "tandem_udp_tx_datagrams_total")
        / metric(&m2, "tandem_udp_tx_ios_total").max(1.0);
    drop(node);
    Row {
        workload,
        attendees: n,
        join_seconds,
        tick_at_resume,
        viewer_latency,
        window_ticks: (first_tick, last_tick),
        served,
        min_served,
        catch_ups: after.catch_ups - before.catch_ups,
        published_per_second: published as f64 / window,
        node_cpu_cores: (cpu1 - cpu0) / window,
        tool_cpu_cores: (tool1 - tool0) / window,
        egress_mbit_per_second: egress * 8.0 / window / 1e6,
        rss_mib,
        sampled,
        sample_mismatches,
        failures,
        latency_p50_ms: fanout::percentile(&mut latencies, 50.0),
        latency_p99_ms: fanout::percentile(&mut latencies, 99.0),
        latency_samples: latencies.len(),
        gso_segments: metric(&m1, "tandem_udp_max_gso_segments"),
        datagrams_per_send,
    }
}

/// Checks every sampled attendee's picture against the synthetic desktop
/// at the ticks the node captured, newest first (an attendee of an
/// overloaded step may be far behind: it is looked for back to the first
/// tick): returns (sampled, mismatches).
async fn check_samples(
    attendees: &[Attendee],
    node: &NodeProcess,
    workload: Workload,
    args: &Args,
) -> (usize, usize) {
    let captured = captured(node);
    let motion = match workload {
        Workload::Office => Motion::Desktop,
        Workload::FullMotion => Motion::Full,
    };
    let desktop = SyntheticDesktop::new(5, args.width, args.height).with_motion(motion);
    // Frames captured before the attendee's picture was taken: the picture
    // is at most this many ticks older than `captured`.
    const LAG: u64 = 120;
    let pictures: Vec<_> = attendees
        .iter()
        .filter_map(|a| a.picture.as_ref())
        .map(|p| p.lock().unwrap().frame().cloned())
        .collect();
    let sampled = pictures.len();
    let mut matched = vec![false; sampled];
    tokio::task::block_in_place(|| {
        // Newest first; an attendee far behind (an overloaded step) is
        // looked for further back, down to the first tick, rather than
        // counted as a wrong picture.
        for tick in (0..=captured + 2).rev() {
            if matched.iter().all(|m| *m) {
                break;
            }
            if tick + LAG == captured {
                let behind = matched.iter().filter(|m| !**m).count();
                if behind > 0 {
                    eprintln!("fanout: {behind} sampled pictures are more than {LAG} ticks behind; looking further back");
                }
            }
            let expected = desktop.render(tick);
            for (picture, found) in pictures.iter().zip(matched.iter_mut()) {
                if let Some(picture) = picture {
                    *found |= fanout::differing(picture, &expected) == 0;
                }
            }
        }
    });
    let mismatches = matched.iter().filter(|m| !**m).count();
    (sampled, mismatches)
}
