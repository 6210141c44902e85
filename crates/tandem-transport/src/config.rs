//! Transport tuning shared by the server and client sides.

use std::sync::Arc;
use std::time::Duration;

use quinn::{IdleTimeout, VarInt};

use crate::error::TransportError;

/// QUIC transport parameters applied to both ends of every connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportConfig {
    /// Close a connection after this long without any packet from the peer.
    pub idle_timeout: Duration,
    /// Send a keep-alive after this long without traffic (must be below `idle_timeout`).
    pub keep_alive: Duration,
    /// Per-stream receive window in bytes.
    pub stream_receive_window: u32,
    /// Connection-wide receive window in bytes.
    pub receive_window: u32,
    /// Connection-wide send window in bytes.
    pub send_window: u64,
    /// Unidirectional streams the peer may have open at once (graphics updates).
    pub max_concurrent_uni_streams: u32,
    /// Give up on a connection attempt after this long (client side).
    pub connect_timeout: Duration,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(5),
            stream_receive_window: 4 << 20,
            receive_window: 16 << 20,
            send_window: 16 << 20,
            max_concurrent_uni_streams: 256,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl TransportConfig {
    /// The quinn transport configuration these settings describe.
    pub(crate) fn to_quinn(&self) -> Result<Arc<quinn::TransportConfig>, TransportError> {
        let idle =
            IdleTimeout::try_from(self.idle_timeout).map_err(|_| TransportError::Config {
                detail: format!("idle_timeout {:?} is too large", self.idle_timeout),
            })?;
        if self.keep_alive.is_zero() {
            return Err(TransportError::Config {
                detail: "keep_alive must be above zero".to_owned(),
            });
        }
        if self.connect_timeout.is_zero() {
            return Err(TransportError::Config {
                detail: "connect_timeout must be above zero".to_owned(),
            });
        }
        let mut t = quinn::TransportConfig::default();
        t.max_idle_timeout(Some(idle))
            .keep_alive_interval(Some(self.keep_alive))
            .stream_receive_window(VarInt::from_u32(self.stream_receive_window))
            .receive_window(VarInt::from_u32(self.receive_window))
            .send_window(self.send_window)
            .max_concurrent_uni_streams(VarInt::from_u32(self.max_concurrent_uni_streams))
            .datagram_receive_buffer_size(Some(1 << 20))
            .datagram_send_buffer_size(1 << 20);
        Ok(Arc::new(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_converts() {
        TransportConfig::default().to_quinn().unwrap();
    }

    #[test]
    fn zero_keep_alive_is_refused() {
        let cfg = TransportConfig {
            keep_alive: Duration::ZERO,
            ..TransportConfig::default()
        };
        assert!(matches!(cfg.to_quinn(), Err(TransportError::Config { .. })));
    }
}
