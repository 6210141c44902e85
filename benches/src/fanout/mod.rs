//! The fan-out load tool (`make fanout`): one process holding many attendee
//! connections to one node, so that a 2-core machine measures the node and
//! not a crowd of viewer processes.
//!
//! Every attendee is real: its own QUIC connection (with the node's
//! fingerprint pinned), a `Hello` with the invitation's password, the
//! control stream read to its end, every graphics stream read whole and its
//! update header parsed (sequence numbers tell deltas from catch-ups). One
//! attendee in `sample_every` also decodes every update and, once the
//! desktop has frozen, its picture must equal the node's `framebuffer.png`
//! bit for bit.
//!
//! The node and the tool run on different cores (`taskset`), so the node's
//! CPU figure is its own: the tool's threads never share its core.
//!
//! Every attendee asks for stamped graphics (`ClientMessage::StampGraphics`)
//! and records, per update, capture to received: the node's capture stamp
//! against this machine's clock when the stream has been read whole (the
//! two processes share one clock). The figure includes the tool's own
//! scheduling delay on its core, so it is an upper bound of the node's part.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tandem_codec::{Decoder, EncodedUpdate, Frame};
use tandem_proto::{
    ClientMessage, ConnectionString, Hello, ServerMessage, MAX_UPDATE_BYTES, PROTOCOL_VERSION,
};
use tandem_transport::{write_message, MessageReader, TransportConfig};

/// What the node's synthetic desktop does while it is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Small changes at the frame interval: a clock, a scrolling terminal,
    /// a moving window.
    Office,
    /// Every pixel of the frame changes every frame.
    FullMotion,
}

impl Workload {
    /// The value of the node's `source.motion` setting.
    pub fn motion(self) -> &'static str {
        match self {
            Workload::Office => "desktop",
            Workload::FullMotion => "full",
        }
    }

    /// The name printed in the tables.
    pub fn label(self) -> &'static str {
        match self {
            Workload::Office => "office",
            Workload::FullMotion => "full-motion",
        }
    }
}

/// Counters of one attendee, updated by its tasks and read by the driver.
#[derive(Debug, Default)]
pub struct AttendeeCounters {
    /// Graphics updates received (deltas, catch-ups and key frames).
    pub updates: AtomicU64,
    /// Updates that skipped sequence numbers (the node coalesced).
    pub catch_ups: AtomicU64,
    /// Graphics bytes received.
    pub bytes: AtomicU64,
    /// Sequence number of the newest update.
    pub last_seq: AtomicU64,
    /// Capture-to-received latencies, in microseconds, while recording.
    pub latencies_us: Mutex<Vec<u32>>,
    /// Whether latencies are being recorded (the measured window).
    pub recording: std::sync::atomic::AtomicBool,
}

/// Most latency samples one attendee keeps per window (a 30 fps window of
/// an hour): the tool's memory stays bounded however long it measures.
pub const MAX_LATENCY_SAMPLES: usize = 108_000;

impl AttendeeCounters {
    /// Starts recording latencies afresh.
    pub fn start_recording(&self) {
        self.latencies_us.lock().unwrap().clear();
        self.recording.store(true, Ordering::Relaxed);
    }

    /// Stops recording; returns what was recorded.
    pub fn take_latencies(&self) -> Vec<u32> {
        self.recording.store(false, Ordering::Relaxed);
        std::mem::take(&mut *self.latencies_us.lock().unwrap())
    }
}

/// This machine's wall clock in unix microseconds.
pub fn now_unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// One connected attendee.
pub struct Attendee {
    /// Its counters.
    pub counters: Arc<AttendeeCounters>,
    /// The decoded picture, for a sampled attendee.
    pub picture: Option<Arc<Mutex<Decoder>>>,
    /// First error its tasks met, if any.
    pub failure: Arc<Mutex<Option<String>>>,
    connection: quinn::Connection,
}

impl Attendee {
    /// Closes the connection.
    pub fn close(&self) {
        self.connection.close(0u32.into(), b"load done");
    }
}

/// Transport settings of a load attendee: those of the real viewer (few open
/// graphics streams, so a slow reader pushes back on the node).
pub fn attendee_transport() -> TransportConfig {
    TransportConfig {
        max_concurrent_uni_streams: 8,
        ..TransportConfig::default()
    }
}

/// Client endpoints on distinct loopback source addresses (127.0.1.x), one
/// for every `per_endpoint` attendees, so that per-address limits of the
/// node see many hosts, as they would in a real classroom.
pub fn endpoints(
    count: usize,
    per_endpoint: usize,
    config: &TransportConfig,
) -> Result<Vec<quinn::Endpoint>, String> {
    let needed = count.div_ceil(per_endpoint.max(1)).max(1);
    (0..needed)
        .map(|i| {
            let host = [127, 0, 1 + (i / 250) as u8, 1 + (i % 250) as u8];
            tandem_transport::client_endpoint(SocketAddr::from((host, 0)), config)
                .map_err(|e| format!("client endpoint on {host:?}: {e}"))
        })
        .collect()
}

/// Connects, says hello and starts the attendee's reading tasks; returns
/// once the node welcomed it.
pub async fn join(
    endpoint: &quinn::Endpoint,
    node: SocketAddr,
    ticket: &ConnectionString,
    config: &TransportConfig,
    name: String,
    password: &str,
    decode: bool,
) -> Result<Attendee, String> {
    let connection = tandem_transport::connect_with(endpoint, node, ticket.fingerprint, config)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut control_tx, control_rx) = connection
        .open_bi()
        .await
        .map_err(|e| format!("control stream: {e}"))?;
    let mut control = MessageReader::new(control_rx);
    let hello = Hello {
        version: PROTOCOL_VERSION,
        session: ticket.session.clone(),
        invitation: ticket.invitation.clone(),
        name,
        password: password.to_owned(),
    };
    write_message(&mut control_tx, &ClientMessage::Hello(hello))
        .await
        .map_err(|e| format!("hello: {e}"))?;
    match control.next::<ServerMessage>().await {
        Ok(Some(ServerMessage::Welcome(_))) => {}
        Ok(Some(ServerMessage::Rejected { reason, message })) => {
            return Err(format!("rejected: {reason:?} {message}"))
        }
        Ok(other) => return Err(format!("expected a welcome, got {other:?}")),
        Err(e) => return Err(format!("welcome: {e}")),
    }
    write_message(&mut control_tx, &ClientMessage::StampGraphics)
        .await
        .map_err(|e| format!("stamp request: {e}"))?;
    let counters = Arc::new(AttendeeCounters::default());
    let failure = Arc::new(Mutex::new(None));
    let picture = decode.then(|| Arc::new(Mutex::new(Decoder::new())));
    // The control stream: read (and dropped) to its end; the send half is
    // kept open for as long as the attendee is.
    tokio::spawn(async move {
        let _keep_open = control_tx;
        while let Ok(Some(_)) = control.next::<ServerMessage>().await {}
    });
    let conn = connection.clone();
    tokio::spawn(async move { while conn.read_datagram().await.is_ok() {} });
    let conn = connection.clone();
    let (c, f, p) = (counters.clone(), failure.clone(), picture.clone());
    // Streams are read one after another in the order the node opened
    // them, as the viewer does: a small delta must not overtake the key
    // frame it applies to.
    tokio::spawn(async move {
        while let Ok(mut stream) = conn.accept_uni().await {
            // A reset stream is an update the node abandoned.
            let Ok(bytes) = stream.read_to_end(MAX_UPDATE_BYTES + 1).await else {
                continue;
            };
            let received_us = now_unix_us();
            if let Err(e) = receive(&bytes, received_us, &c, p.as_deref()) {
                f.lock().unwrap().get_or_insert(e);
            }
        }
    });
    Ok(Attendee {
        counters,
        picture,
        failure,
        connection,
    })
}

/// Counts one whole uni stream (and decodes it for a sampled attendee).
fn receive(
    bytes: &[u8],
    received_us: u64,
    counters: &AttendeeCounters,
    picture: Option<&Mutex<Decoder>>,
) -> Result<(), String> {
    // Only graphics streams are counted (a load attendee joins no channel).
    if !matches!(
        bytes.first(),
        Some(&(tandem_proto::STREAM_KIND_GRAPHICS | tandem_proto::STREAM_KIND_STAMPED_GRAPHICS))
    ) {
        return Ok(());
    }
    let stream = tandem_proto::parse_uni_stream(bytes).map_err(|e| e.to_string())?;
    let update = EncodedUpdate::from_bytes(stream.payload()).map_err(|e| e.to_string())?;
    if let Some(captured) = stream.captured_unix_us() {
        if counters.recording.load(Ordering::Relaxed) {
            let us = received_us
                .saturating_sub(captured)
                .min(u64::from(u32::MAX)) as u32;
            let mut samples = counters.latencies_us.lock().unwrap();
            if samples.len() < MAX_LATENCY_SAMPLES {
                samples.push(us);
            }
        }
    }
    counters.updates.fetch_add(1, Ordering::Relaxed);
    counters
        .bytes
        .fetch_add(bytes.len() as u64, Ordering::Relaxed);
    let previous = counters.last_seq.fetch_max(update.seq, Ordering::Relaxed);
    if previous != 0 && update.base_seq != previous && update.seq > previous {
        counters.catch_ups.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(decoder) = picture {
        let mut decoder = decoder.lock().unwrap();
        decoder
            .apply(&update)
            .map_err(|e| format!("update {}: {e}", update.seq))?;
    }
    Ok(())
}

/// A snapshot of every attendee's counters.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Updates per attendee.
    pub updates: Vec<u64>,
    /// Catch-ups, all attendees together.
    pub catch_ups: u64,
    /// Graphics bytes, all attendees together.
    pub bytes: u64,
}

impl Tally {
    /// Reads the counters now.
    pub fn of(attendees: &[Attendee]) -> Tally {
        Tally {
            updates: attendees
                .iter()
                .map(|a| a.counters.updates.load(Ordering::Relaxed))
                .collect(),
            catch_ups: attendees
                .iter()
                .map(|a| a.counters.catch_ups.load(Ordering::Relaxed))
                .sum(),
            bytes: attendees
                .iter()
                .map(|a| a.counters.bytes.load(Ordering::Relaxed))
                .sum(),
        }
    }
}

/// The share of the updates the node published in a window that reached
/// the attendees as updates of their own (not folded into a catch-up):
/// 1.0 when every attendee received every update.
pub fn served_fraction(before: &Tally, after: &Tally, published: u64) -> f64 {
    if published == 0 || after.updates.is_empty() {
        return 0.0;
    }
    let received: u64 = after
        .updates
        .iter()
        .zip(&before.updates)
        .map(|(a, b)| (a - b).min(published))
        .sum();
    received as f64 / (published as f64 * after.updates.len() as f64)
}

/// Pins every thread of process `pid` to `cpus` (a `taskset` list such as
/// "0" or "1-3"); threads it starts later inherit the mask.
pub fn pin(pid: u32, cpus: &str) -> Result<(), String> {
    let out = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .output()
        .map_err(|e| format!("taskset: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "taskset -a -p -c {cpus} {pid}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A percentile (0..=100) of `values`, sorted in place; 0 when empty.
pub fn percentile(values: &mut [f64], pct: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((pct / 100.0) * (values.len() - 1) as f64).round() as usize;
    values[rank.min(values.len() - 1)]
}

/// The node configuration for one measured step.
pub fn node_config(
    dir: &Path,
    token: &str,
    workload: Workload,
    width: u32,
    height: u32,
    freeze_after_frames: u64,
) -> String {
    format!(
        "data_dir = \"{}\"\nquic_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\
         admin_token = \"{token}\"\n[source]\nkind = \"synthetic\"\nwidth = {width}\n\
         height = {height}\nseed = 5\nmotion = \"{}\"\nfreeze_after_frames = {freeze_after_frames}\n\
         [session]\nframe_interval_ms = 33\n[invitation]\npassword = \"fanout-password\"\n\
         attendee_limit = 10000\n",
        dir.join("data").display(),
        workload.motion()
    )
}

/// The password of [`node_config`]'s invitation.
pub const PASSWORD: &str = "fanout-password";

/// Pixels of `picture` that differ from `expected` (all of them when the
/// sizes differ).
pub fn differing(picture: &Frame, expected: &Frame) -> usize {
    if (picture.width(), picture.height()) != (expected.width(), expected.height()) {
        return expected.pixels().len().max(picture.pixels().len());
    }
    picture
        .pixels()
        .iter()
        .zip(expected.pixels())
        .filter(|(a, b)| a != b)
        .count()
}

/// Waits until `done` holds, checking every 50 ms, for at most `limit`.
pub async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(updates: &[u64]) -> Tally {
        Tally {
            updates: updates.to_vec(),
            ..Tally::default()
        }
    }

    #[test]
    fn served_fraction_counts_each_attendees_share_of_the_published_updates() {
        let before = tally(&[10, 10]);
        assert_eq!(served_fraction(&before, &tally(&[40, 40]), 30), 1.0);
        assert_eq!(served_fraction(&before, &tally(&[40, 25]), 30), 0.75);
        // A reading taken a little late never counts more than everything.
        assert_eq!(served_fraction(&before, &tally(&[45, 40]), 30), 1.0);
        assert_eq!(served_fraction(&before, &tally(&[40, 40]), 0), 0.0);
    }

    #[test]
    fn percentiles_of_a_small_sample() {
        let mut v = vec![5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(percentile(&mut v, 50.0), 3.0);
        assert_eq!(percentile(&mut v, 100.0), 5.0);
        assert_eq!(percentile(&mut v, 0.0), 1.0);
        assert_eq!(percentile(&mut [], 99.0), 0.0);
    }
}
