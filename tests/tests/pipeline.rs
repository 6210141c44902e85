//! The capture → encode → QUIC → viewer pipeline, end to end, with real
//! `tandem` processes on loopback.

use std::time::{Duration, Instant};

use tandem_capture::SyntheticDesktop;
use tandem_tests::{differing_pixels, read_png, spawn_view, summary, text, view, NodeProcess};

fn config(
    dir: &std::path::Path,
    width: u32,
    height: u32,
    seed: u64,
    freeze: u64,
    port: u16,
) -> String {
    format!(
        r#"data_dir = "{data}"
quic_listen = "127.0.0.1:{port}"
admin_listen = "127.0.0.1:0"
[source]
kind = "synthetic"
width = {width}
height = {height}
seed = {seed}
freeze_after_frames = {freeze}
[invitation]
attendee_limit = 8
"#,
        data = dir.join("data").display()
    )
}

#[test]
fn two_viewers_see_the_source_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    // Odd size: edge tiles are partial. The desktop animates for 60 frames
    // (about two seconds), so viewers receive deltas before it goes still.
    let (w, h, seed, freeze) = (333, 201, 7, 60);
    let node = NodeProcess::start(dir.path(), &config(dir.path(), w, h, seed, freeze, 0));
    let snaps: Vec<_> = ["alice", "bob"]
        .iter()
        .map(|n| dir.path().join(format!("{n}.png")))
        .collect();
    let viewers: Vec<_> = ["alice", "bob"]
        .iter()
        .zip(&snaps)
        .map(|(name, snap)| {
            spawn_view(&[
                &node.ticket,
                "--name",
                name,
                "--password",
                &node.password,
                "--headless",
                "--seconds",
                "5",
                "--snapshot",
                snap.to_str().unwrap(),
            ])
        })
        .collect();
    let expected = SyntheticDesktop::new(seed, w, h).render(freeze);
    for (viewer, snap) in viewers.into_iter().zip(&snaps) {
        let out = viewer.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let s = summary(&String::from_utf8_lossy(&out.stdout));
        assert!(s.updates >= 2, "expected a key frame and deltas: {s:?}");
        assert_eq!(s.last_seq, s.last_seq.max(1));
        let got = read_png(snap);
        assert_eq!(
            differing_pixels(&got, &expected),
            0,
            "viewer frame differs from the source"
        );
    }
    drop(node);
}

#[test]
fn a_stalled_viewer_neither_slows_others_nor_grows_the_node() {
    let dir = tempfile::tempdir().unwrap();
    // A large desktop that changes every frame for about eight seconds.
    let (w, h, seed, freeze) = (1280, 720, 11, 240);
    let node = NodeProcess::start(dir.path(), &config(dir.path(), w, h, seed, freeze, 0));
    let fast_snap = dir.path().join("fast.png");
    let slow_snap = dir.path().join("slow.png");
    let common = |name: &'static str| {
        vec![
            node.ticket.clone(),
            "--name".into(),
            name.into(),
            "--password".into(),
            node.password.clone(),
            "--headless".into(),
            "--seconds".into(),
            "13".into(),
        ]
    };
    let mut fast_args = common("fast");
    fast_args.extend(["--snapshot".into(), fast_snap.display().to_string()]);
    let mut slow_args = common("slow");
    slow_args.extend([
        "--snapshot".into(),
        slow_snap.display().to_string(),
        "--stall-after".into(),
        "3".into(),
        "--stall-seconds".into(),
        "5".into(),
    ]);
    fn as_refs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let rss_before = node.rss_kib();
    let fast = spawn_view(&as_refs(&fast_args));
    let slow = spawn_view(&as_refs(&slow_args));

    // Watch the node's memory while the slow viewer is stalled.
    let mut rss_max = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(8) {
        rss_max = rss_max.max(node.rss_kib());
        std::thread::sleep(Duration::from_millis(200));
    }
    let fast_out = fast.wait_with_output().unwrap();
    let slow_out = slow.wait_with_output().unwrap();
    assert!(fast_out.status.success(), "{}", text(&fast_out));
    assert!(slow_out.status.success(), "{}", text(&slow_out));
    let fast_sum = summary(&String::from_utf8_lossy(&fast_out.stdout));
    let slow_sum = summary(&String::from_utf8_lossy(&slow_out.stdout));

    // The fast viewer got the stream as it was produced: it applied most
    // sequence numbers one by one (each delta counts one update) …
    assert!(
        fast_sum.updates * 10 >= fast_sum.last_seq * 7,
        "fast viewer missed too much while the other was stalled: {fast_sum:?}"
    );
    // … while the stalled one had its missed updates folded into catch-ups.
    assert!(
        slow_sum.catch_ups >= 1,
        "stalled viewer got no catch-up: {}",
        text(&slow_out)
    );
    assert!(
        slow_sum.updates < fast_sum.updates,
        "{slow_sum:?} vs {fast_sum:?}"
    );
    // Bounded memory: a stalled attendee costs at most a few updates in flight.
    assert!(
        rss_max < rss_before + 200 * 1024,
        "node memory grew from {rss_before} KiB to {rss_max} KiB during the stall"
    );
    // Both end on the current frame, bit for bit.
    let expected = SyntheticDesktop::new(seed, w, h).render(freeze);
    assert_eq!(differing_pixels(&read_png(&fast_snap), &expected), 0);
    assert_eq!(differing_pixels(&read_png(&slow_snap), &expected), 0);
}

#[test]
fn wrong_password_fingerprint_and_address_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &config(dir.path(), 64, 64, 1, 5, 0));

    let out = view(&[
        &node.ticket,
        "--name",
        "eve",
        "--password",
        "not-it",
        "--headless",
        "--seconds",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wrong password"), "{}", text(&out));
    assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");

    // Same node, another fingerprint in the ticket.
    let fp_at = node.ticket.find("fp=").unwrap() + 3;
    let mut forged = node.ticket.clone();
    let flipped = if &forged[fp_at..fp_at + 1] == "0" {
        "1"
    } else {
        "0"
    };
    forged.replace_range(fp_at..fp_at + 1, flipped);
    let out = view(&[
        &forged,
        "--name",
        "eve",
        "--password",
        &node.password,
        "--headless",
        "--seconds",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("fingerprint"),
        "{}",
        text(&out)
    );

    // A session this node does not have.
    let s_at = node.ticket.find("/s/").unwrap() + 3;
    let s_end = node.ticket.find("?inv=").unwrap();
    let mut unknown = node.ticket.clone();
    unknown.replace_range(s_at..s_end, "nosuchsession");
    let out = view(&[
        &unknown,
        "--name",
        "eve",
        "--password",
        &node.password,
        "--headless",
        "--seconds",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("session"),
        "{}",
        text(&out)
    );

    // Nobody listening.
    let port = tandem_tests::free_udp_port();
    let dead = node
        .ticket
        .replacen(&node.quic_addr, &format!("127.0.0.1:{port}"), 1);
    let out = view(&[
        &dead,
        "--name",
        "eve",
        "--password",
        &node.password,
        "--headless",
        "--seconds",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach"),
        "{}",
        text(&out)
    );

    // Malformed ticket: a usage error.
    let out = view(&[
        "tandem://nowhere",
        "--name",
        "eve",
        "--headless",
        "--seconds",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn invitations_survive_a_kill_9_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = tandem_tests::free_udp_port();
    let cfg = config(dir.path(), 96, 64, 3, 5, port);
    let first = NodeProcess::start(dir.path(), &cfg);
    let (ticket, password) = (first.ticket.clone(), first.password.clone());
    first.kill9();

    let second = NodeProcess::start(dir.path(), &cfg);
    assert_ne!(
        second.ticket, ticket,
        "a restart creates a fresh startup invitation"
    );
    let snap = dir.path().join("after.png");
    let out = view(&[
        &ticket,
        "--name",
        "carol",
        "--password",
        &password,
        "--headless",
        "--seconds",
        "2",
        "--snapshot",
        snap.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "old invitation no longer works after restart: {}",
        text(&out)
    );
    let expected = SyntheticDesktop::new(3, 96, 64).render(5);
    assert_eq!(differing_pixels(&read_png(&snap), &expected), 0);
    assert!(second.terminate(), "node did not exit cleanly on SIGTERM");
}
