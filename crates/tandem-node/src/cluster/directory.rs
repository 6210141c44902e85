//! The cluster-wide directory: the live members and what each publishes.

use serde::Serialize;

/// One member as the directory shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct MemberInfo {
    /// Node id.
    pub id: String,
    /// Gossip address.
    pub gossip_addr: String,
    /// QUIC address attendees connect to.
    pub quic_addr: Option<String>,
    /// Admin HTTP address.
    pub admin_addr: Option<String>,
    /// Relay-link address.
    pub link_addr: Option<String>,
    /// Certificate fingerprint (of both QUIC endpoints).
    pub fingerprint: Option<String>,
    /// Sessions this member originates.
    pub sessions: Vec<String>,
    /// Attendees connected to this member (local and relayed through it).
    pub attendees: u64,
    /// Relay links this member has open (both directions).
    pub relay_links: u64,
    /// This member is the node answering.
    pub is_self: bool,
    /// Milliseconds since its heartbeat last advanced.
    pub heartbeat_age_ms: u64,
}

/// Live members, as this node sees them.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Directory {
    /// Live members, this node included, sorted by id.
    pub nodes: Vec<MemberInfo>,
}

impl Directory {
    /// The live member that originates `session`, when one does.
    pub fn origin_of(&self, session: &str) -> Option<&MemberInfo> {
        self.nodes
            .iter()
            .find(|n| n.sessions.iter().any(|s| s == session))
    }
}
