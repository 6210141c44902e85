//! Relay links between nodes: QUIC with ALPN `tandem-link/1`, authenticated
//! with an HMAC of the cluster secret over a challenge.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tandem_proto::NodeAddr;

/// Most addresses a connection string may carry.
const MAX_TICKET_ADDRS: usize = 16;

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_tag(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("hmac takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Addresses for a connection string: this node's own first, then the other
/// live members', without duplicates, at most 16.
pub fn ticket_addrs(own: &[NodeAddr], cluster: &[NodeAddr]) -> Vec<NodeAddr> {
    let mut out: Vec<NodeAddr> = Vec::new();
    for a in own.iter().chain(cluster) {
        if out.len() == MAX_TICKET_ADDRS {
            break;
        }
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    out
}
