//! Cluster: membership by gossip, the cluster-wide directory, and relays.
//!
//! - [`membership`]: the [`ClusterActor`] runs chitchat (gossip over UDP,
//!   scuttlebutt reconciliation) and publishes this node's id, addresses,
//!   the sessions it originates and its load; it turns the gossiped state
//!   into a [`Directory`] of live members, shared through a watch channel.
//! - [`gossip`]: the transport under chitchat: every datagram sealed
//!   (ChaCha20-Poly1305, keys derived from the secret, replays refused).
//! - [`wire`]: the relay link protocol (messages, framing, the handshake).
//! - [`link`]: node-to-node relay links over QUIC (ALPN `tandem-link/1`),
//!   authenticated with an HMAC of the cluster secret over a challenge; also
//!   carries cluster-wide admin queries (the admin token never leaves a node).
//! - the admin routes `GET /api/v1/cluster/nodes` and `GET /api/v1/attendees?scope=cluster`
//!   are in [`crate::admin::cluster`].
//!
//! Trust: only holders of the secret can read or write gossip, open links or
//! answer on them (members pin the identity derived from the secret).
//!
//! Settings are the `[cluster]` section of the node config; clustering is
//! off unless `cluster.listen` is set.

pub mod directory;
pub mod gossip;
pub mod link;
pub mod membership;
pub mod metrics;
pub mod relay;
pub mod secret;
pub mod settings;
pub mod wire;

use std::sync::Arc;

use tokio::sync::watch;

pub use directory::{Directory, MemberInfo};
pub use membership::{ClusterActor, ClusterStart, LeaveCluster, ListMembers};
pub use metrics::ClusterMetrics;
pub use secret::SECRET_ENV;
pub use settings::{ClusterSettings, DEAD_AFTER_MS_RANGE, MAX_SEEDS};

impl ClusterView {
    /// A view and the sender that publishes into it.
    pub fn new(node_id: String, cluster_id: String) -> (watch::Sender<Arc<Directory>>, Self) {
        let (tx, directory) = watch::channel(Arc::new(Directory::default()));
        (
            tx,
            Self {
                node_id,
                cluster_id,
                directory,
                relays: None,
            },
        )
    }
}

/// What the rest of the node sees of the cluster.
#[derive(Clone)]
pub struct ClusterView {
    /// This node's id.
    pub node_id: String,
    /// The cluster's name.
    pub cluster_id: String,
    /// The newest directory.
    pub directory: watch::Receiver<Arc<Directory>>,
    /// This node's links to other members (cluster-wide admin queries).
    pub relays: Option<Arc<relay::Relays>>,
}
