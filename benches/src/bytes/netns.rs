//! The private network namespace the bytes bench runs in.
//!
//! Every process of the workload runs inside it (the bench re-runs itself
//! there with `ip netns exec`, and everything it starts inherits the
//! namespace), so the namespace's `lo` carries exactly the traffic between
//! the server under test and its attendee: both directions, headers
//! included. [`Namespace`] deletes it when dropped, after stopping every
//! process still in it (`ip netns pids`), and [`cleanup`] does the same from
//! a signal handler.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A network namespace with `lo` up, removed on drop.
#[derive(Debug)]
pub struct Namespace {
    name: String,
}

/// Why the namespace could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NamespaceError(String);

fn ip(args: &[&str]) -> Result<(), NamespaceError> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| NamespaceError(format!("run ip (package iproute2): {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NamespaceError(format!(
            "ip {} failed: {} (the bytes bench runs as root)",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

impl Namespace {
    /// Creates namespace `name` and brings its loopback up.
    pub fn create(name: &str) -> Result<Namespace, NamespaceError> {
        ip(&["netns", "add", name])?;
        let ns = Namespace {
            name: name.to_owned(),
        };
        ip(&["netns", "exec", name, "ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip netns exec NAME program`: a command that runs inside.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        cleanup(&self.name);
    }
}

/// The processes living in namespace `name`.
fn pids(name: &str) -> Vec<u32> {
    Command::new("ip")
        .args(["netns", "pids", name])
        .stderr(Stdio::null())
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn signal(sig: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(sig)
        .args(pids.iter().map(u32::to_string))
        .stderr(Stdio::null())
        .status();
}

/// Stops every process in namespace `name` (SIGTERM, then SIGKILL after
/// 3 s, so X servers remove their lock files when they can) and deletes it.
/// Safe to call twice.
pub fn cleanup(name: &str) {
    signal("-TERM", &pids(name));
    let deadline = Instant::now() + Duration::from_secs(3);
    while !pids(name).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    signal("-KILL", &pids(name));
    let _ = Command::new("ip")
        .args(["netns", "del", name])
        .stderr(Stdio::null())
        .status();
}

/// Bytes sent on this network namespace's `lo` so far: on loopback every
/// packet is sent once, so this counts both directions, headers included.
/// Only meaningful inside the namespace (`ip netns exec` mounts its /sys).
pub fn lo_tx_bytes() -> Result<u64, NamespaceError> {
    lo_statistic("tx_bytes")
}

/// Packets sent on this network namespace's `lo` so far (both directions,
/// as [`lo_tx_bytes`]): what separates payload from per-packet overhead
/// and acknowledgements.
pub fn lo_tx_packets() -> Result<u64, NamespaceError> {
    lo_statistic("tx_packets")
}

fn lo_statistic(name: &str) -> Result<u64, NamespaceError> {
    let path = format!("/sys/class/net/lo/statistics/{name}");
    std::fs::read_to_string(&path)
        .map_err(|e| NamespaceError(format!("read {path}: {e}")))?
        .trim()
        .parse()
        .map_err(|e| NamespaceError(format!("parse {path}: {e}")))
}
