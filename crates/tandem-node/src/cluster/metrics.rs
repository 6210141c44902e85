//! The cluster's Prometheus metric families.

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};

use super::gossip;

/// The cluster's metric families (registered with the node's others).
#[derive(Clone)]
pub struct ClusterMetrics {
    /// Live members (this node included; 0 when clustering is off).
    pub members: IntGauge,
    /// Open relay links.
    pub relay_links: IntGauge,
    /// Mirrors of an origin's session this relay keeps (one per relayed
    /// session with attendees here; 0 once the last of them left).
    pub relay_mirrors: IntGauge,
    /// Graphics bytes over relay links, by direction (`sent` by an origin,
    /// `received` by a relay).
    pub relayed_bytes: IntCounterVec,
    /// From capture on the origin to receipt on a relay.
    pub relay_latency_seconds: Histogram,
    /// Gossip datagrams dropped unread, by reason (`malformed`, `stale`,
    /// `replayed`, `forged`).
    pub gossip_rejected: IntCounterVec,
}

impl ClusterMetrics {
    /// Creates the families and registers them in `registry`.
    pub fn register(registry: &Registry) -> Self {
        let members =
            IntGauge::new("tandem_cluster_members", "Live cluster members").expect("valid metric");
        let relay_links =
            IntGauge::new("tandem_relay_links", "Open relay links").expect("valid metric");
        let relay_mirrors = IntGauge::new(
            "tandem_relay_mirrors",
            "Mirrors of other members' sessions kept by this relay",
        )
        .expect("valid metric");
        let relayed_bytes = IntCounterVec::new(
            Opts::new(
                "tandem_relayed_bytes_total",
                "Graphics bytes over relay links by direction",
            ),
            &["direction"],
        )
        .expect("valid metric");
        let relay_latency_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "tandem_relay_latency_seconds",
                "From capture on the origin to receipt of the update on a relay",
            )
            .buckets(vec![
                0.001, 0.002, 0.004, 0.008, 0.016, 0.033, 0.066, 0.133, 0.25, 0.5, 1.0, 2.0,
            ]),
        )
        .expect("valid metric");
        let gossip_rejected = IntCounterVec::new(
            Opts::new(
                "tandem_cluster_gossip_rejected_total",
                "Gossip datagrams dropped without being parsed, by reason",
            ),
            &["reason"],
        )
        .expect("valid metric");
        for c in [
            Box::new(members.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(relay_links.clone()),
            Box::new(relay_mirrors.clone()),
            Box::new(relayed_bytes.clone()),
            Box::new(relay_latency_seconds.clone()),
            Box::new(gossip_rejected.clone()),
        ] {
            registry.register(c).expect("unique metric");
        }
        for direction in ["sent", "received"] {
            relayed_bytes.with_label_values(&[direction]);
        }
        for reason in gossip::REJECT_REASONS {
            gossip_rejected.with_label_values(&[reason]);
        }
        Self {
            members,
            relay_links,
            relay_mirrors,
            relayed_bytes,
            relay_latency_seconds,
            gossip_rejected,
        }
    }
}
