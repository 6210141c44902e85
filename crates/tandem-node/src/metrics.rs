//! Prometheus metrics of a node, all prefixed `tandem_`.
//!
//! One `Metrics` value is shared (behind an `Arc`) by every actor; prometheus
//! collectors are thread-safe, so recording a value needs no message. Label
//! values are bounded: no attendee names or addresses are ever labels.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The node's metric families.
pub struct Metrics {
    registry: Registry,
    /// Frames grabbed from capture sources.
    pub frames_captured: IntCounter,
    /// Capture ticks that grabbed nothing because the source reported no damage.
    pub idle_ticks: IntCounter,
    /// Times the capture loop stopped its timer to wait for the source's
    /// news (an idle X display with XInput 2).
    pub capture_sleeps: IntCounter,
    /// Pointer positions sent to attendees (datagrams).
    pub cursor_positions_sent: IntCounter,
    /// Pointer images sent to attendees.
    pub cursor_shapes_sent: IntCounter,
    /// Time to grab one frame.
    pub capture_seconds: Histogram,
    /// Time to encode one frame.
    pub encode_seconds: Histogram,
    /// Bytes of pixels of changed tiles, before encoding.
    pub raw_bytes: IntCounter,
    /// Bytes of encoded updates produced by the encoder.
    pub encoded_bytes: IntCounter,
    /// Tiles found changed.
    pub tiles_changed: IntCounter,
    /// Copy-rect records sent (scrolled or moved content re-used by attendees).
    pub copy_rects: IntCounter,
    /// Pixels those copy-rects moved.
    pub moved_pixels: IntCounter,
    /// Updates published by encoders.
    pub updates_published: IntCounter,
    /// Live attendees by session and control level.
    pub attendees: IntGaugeVec,
    /// Join attempts by result.
    pub joins: IntCounterVec,
    /// Bytes of graphics sent to attendees.
    pub bytes_sent: IntCounter,
    /// Updates sent to attendees by kind (delta, catch-up, key).
    pub updates_sent: IntCounterVec,
    /// Updates an attendee skipped because it was still busy with an earlier one.
    pub updates_coalesced: IntCounter,
    /// From the capture of a frame to the end of its send to one attendee.
    pub update_latency_seconds: Histogram,
    /// Input events from attendees by result.
    pub input_events: IntCounterVec,
    /// Registry operations by kind.
    pub registry_ops: IntCounterVec,
    /// Registry operation latency by kind.
    pub registry_seconds: HistogramVec,
    /// Open QUIC connections.
    pub connections: IntGauge,
    /// UDP segments one send may carry on the QUIC socket (GSO; 1: none).
    pub udp_max_gso_segments: IntGauge,
    /// UDP datagrams sent on ended attendee connections (QUIC's own count).
    pub udp_tx_datagrams: IntCounter,
    /// Send system calls those took: fewer than the datagrams when GSO batches.
    pub udp_tx_ios: IntCounter,
    /// Sharing sessions open on this node.
    pub sessions_open: IntGauge,
    /// Events emitted by kind.
    pub events: IntCounterVec,
    /// `error` events by code (every code starts at zero, so a dashboard
    /// shows a flat line rather than no data).
    pub errors: IntCounterVec,
    /// Virtual-channel messages by direction and result.
    pub channel_messages: IntCounterVec,
    /// Virtual-channel bytes by direction (delivered to a queue or accepted).
    pub channel_bytes: IntCounterVec,
    /// Attendee messages over their rate (issue 15's per-attendee budget),
    /// by kind: `control_request` and `channel_join` dropped,
    /// `input_deferred` read later, `channel_event_unlogged` delivered but
    /// not logged one by one.
    pub rate_limited: IntCounterVec,
    /// Cluster members, relay links, relayed bytes and relay latency.
    pub cluster: crate::cluster::metrics::ClusterMetrics,
}

/// The kinds of `tandem_rate_limited_total` (each starts at zero).
pub const RATE_LIMITED_KINDS: [&str; 4] = [
    "control_request",
    "channel_join",
    "input_deferred",
    "channel_event_unlogged",
];

fn ms_buckets() -> Vec<f64> {
    vec![
        0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.033, 0.066, 0.133, 0.25, 0.5, 1.0, 2.0,
    ]
}

impl Metrics {
    /// Creates and registers every family, plus the process collector.
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let histogram = |name: &str, help: &str| {
            let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(ms_buckets()))
                .expect("valid metric");
            registry
                .register(Box::new(h.clone()))
                .expect("unique metric");
            h
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let attendees = IntGaugeVec::new(
            Opts::new(
                "tandem_attendees",
                "Live attendees by session and control level",
            ),
            &["session", "level"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(attendees.clone()))
            .expect("unique metric");
        let registry_seconds = HistogramVec::new(
            HistogramOpts::new(
                "tandem_registry_operation_duration_seconds",
                "Registry operation latency",
            )
            .buckets(ms_buckets()),
            &["op"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(registry_seconds.clone()))
            .expect("unique metric");
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("unique metric");
        Self {
            frames_captured: counter("tandem_frames_captured_total", "Frames captured"),
            idle_ticks: counter(
                "tandem_capture_idle_ticks_total",
                "Capture ticks skipped because nothing was damaged",
            ),
            capture_sleeps: counter(
                "tandem_capture_sleeps_total",
                "Times the capture loop stopped polling an idle source and waited for its events",
            ),
            cursor_positions_sent: counter(
                "tandem_cursor_positions_sent_total",
                "Pointer positions sent to attendees",
            ),
            cursor_shapes_sent: counter(
                "tandem_cursor_shapes_sent_total",
                "Pointer images sent to attendees",
            ),
            capture_seconds: histogram(
                "tandem_capture_duration_seconds",
                "Time to capture one frame",
            ),
            encode_seconds: histogram("tandem_encode_duration_seconds", "Time to encode one frame"),
            raw_bytes: counter(
                "tandem_raw_bytes_total",
                "Bytes of pixels in changed tiles before encoding",
            ),
            encoded_bytes: counter("tandem_encoded_bytes_total", "Bytes of encoded updates"),
            tiles_changed: counter("tandem_tiles_changed_total", "Tiles found changed"),
            copy_rects: counter(
                "tandem_copy_rects_total",
                "Copy-rect records sent: scrolled or moved content attendees re-use",
            ),
            moved_pixels: counter(
                "tandem_moved_pixels_total",
                "Pixels moved by copy-rect records instead of being sent",
            ),
            updates_published: counter(
                "tandem_updates_published_total",
                "Updates published by encoders",
            ),
            attendees,
            joins: counter_vec("tandem_joins_total", "Join attempts by result", &["result"]),
            bytes_sent: counter(
                "tandem_bytes_sent_total",
                "Bytes of graphics updates sent to attendees",
            ),
            updates_sent: counter_vec(
                "tandem_updates_sent_total",
                "Updates sent to attendees by kind",
                &["kind"],
            ),
            updates_coalesced: counter(
                "tandem_updates_coalesced_total",
                "Updates skipped for a busy attendee and folded into a later catch-up",
            ),
            update_latency_seconds: histogram(
                "tandem_update_latency_seconds",
                "From frame capture to the end of its send to an attendee",
            ),
            input_events: counter_vec(
                "tandem_input_events_total",
                "Input events from attendees by result",
                &["result"],
            ),
            registry_ops: counter_vec(
                "tandem_registry_operations_total",
                "Registry operations by kind",
                &["op"],
            ),
            registry_seconds,
            connections: gauge("tandem_connections", "Open QUIC connections"),
            udp_max_gso_segments: gauge(
                "tandem_udp_max_gso_segments",
                "UDP segments one send may carry on the QUIC socket (GSO; 1 means none)",
            ),
            udp_tx_datagrams: counter(
                "tandem_udp_tx_datagrams_total",
                "UDP datagrams sent on ended attendee connections",
            ),
            udp_tx_ios: counter(
                "tandem_udp_tx_ios_total",
                "Send system calls of those datagrams (fewer when GSO batches them)",
            ),
            sessions_open: gauge("tandem_sessions_open", "Sharing sessions open on this node"),
            events: counter_vec("tandem_events_total", "Session events by kind", &["kind"]),
            errors: {
                let errors = counter_vec(
                    "tandem_errors_total",
                    "Error events by code (capture_failed, source_lost, encoder_failed, registry_write_failed)",
                    &["code"],
                );
                for code in crate::events::ErrorCode::ALL {
                    errors.with_label_values(&[code.as_str()]);
                }
                errors
            },
            channel_messages: counter_vec(
                "tandem_channel_messages_total",
                "Virtual-channel messages by direction (to_attendee, from_attendee) and result (queued, dropped, refused, accepted)",
                &["direction", "result"],
            ),
            channel_bytes: counter_vec(
                "tandem_channel_bytes_total",
                "Virtual-channel bytes queued to attendees or accepted from them",
                &["direction"],
            ),
            rate_limited: {
                let limited = counter_vec(
                    "tandem_rate_limited_total",
                    "Attendee messages over their rate by kind (control_request, channel_join, input_deferred, channel_event_unlogged)",
                    &["kind"],
                );
                for kind in RATE_LIMITED_KINDS {
                    limited.with_label_values(&[kind]);
                }
                limited
            },
            cluster: {
                let cluster = crate::cluster::metrics::ClusterMetrics::register(&registry);
                // Both directions exist from the start, so the dashboard's
                // relay traffic reads 0 on a node that relays nothing.
                for direction in ["sent", "received"] {
                    cluster.relayed_bytes.with_label_values(&[direction]);
                }
                cluster
            },
            registry,
        }
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding never fails");
        String::from_utf8(out).expect("exposition is utf-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
