//! Transport tuning shared by the server and client sides.
//!
//! The defaults are chosen for bytes on the wire as much as for speed: an
//! idle attendee costs one keep-alive round trip every 20 s, sent by the
//! attendee only (NAT bindings live on its side; one side is enough to keep
//! a QUIC connection alive), and both ends ask their peer, through the QUIC
//! ACK-frequency extension, to acknowledge in batches instead of every
//! other packet, so a typed glyph is not followed by a flurry of ACKs.

use std::sync::Arc;
use std::time::Duration;

use quinn::{IdleTimeout, VarInt};

use crate::error::TransportError;

/// QUIC transport parameters applied to both ends of every connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportConfig {
    /// Close a connection after this long without any packet from the peer.
    pub idle_timeout: Duration,
    /// Send a keep-alive after this long without traffic (must be below
    /// `idle_timeout`); `None`: this end sends none and relies on its peer's.
    pub keep_alive: Option<Duration>,
    /// Ask the peer (QUIC ACK-frequency extension) to acknowledge only every
    /// `ack_eliciting_threshold + 1` ack-eliciting packets or after
    /// `max_ack_delay`; `None` keeps QUIC's default (every other packet).
    pub ack_frequency: Option<AckFrequency>,
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

/// The acknowledgement pattern asked of the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckFrequency {
    /// Ack-eliciting packets the peer may receive without acknowledging.
    pub ack_eliciting_threshold: u32,
    /// Longest the peer may wait before acknowledging.
    pub max_ack_delay: Duration,
}

impl Default for AckFrequency {
    fn default() -> Self {
        // Updates come at most every frame interval (33 ms): acknowledging
        // within 100 ms folds two or three typed glyphs into one ACK while
        // loss recovery still reacts within a few frames.
        Self {
            ack_eliciting_threshold: 16,
            max_ack_delay: Duration::from_millis(100),
        }
    }
}

/// Idle timeout of attendee connections: a node that vanished without a
/// word is noticed within this long (one that stops says so at once).
pub const ATTENDEE_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Keep-alive interval of the attendee's side: well under the 30 s that
/// the most impatient NATs keep an idle UDP binding.
pub const ATTENDEE_KEEP_ALIVE: Duration = Duration::from_secs(20);

impl TransportConfig {
    /// The server side of attendee connections: no keep-alives of its own.
    pub fn server() -> Self {
        Self {
            keep_alive: None,
            ..Self::default()
        }
    }
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            idle_timeout: ATTENDEE_IDLE_TIMEOUT,
            keep_alive: Some(ATTENDEE_KEEP_ALIVE),
            ack_frequency: Some(AckFrequency::default()),
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
        if let Some(keep_alive) = self.keep_alive {
            if keep_alive.is_zero() || keep_alive >= self.idle_timeout {
                return Err(TransportError::Config {
                    detail: format!(
                        "keep_alive {keep_alive:?} must be above zero and below idle_timeout {:?}",
                        self.idle_timeout
                    ),
                });
            }
        }
        if self.connect_timeout.is_zero() {
            return Err(TransportError::Config {
                detail: "connect_timeout must be above zero".to_owned(),
            });
        }
        let mut t = quinn::TransportConfig::default();
        t.max_idle_timeout(Some(idle))
            .keep_alive_interval(self.keep_alive)
            .stream_receive_window(VarInt::from_u32(self.stream_receive_window))
            .receive_window(VarInt::from_u32(self.receive_window))
            .send_window(self.send_window)
            .max_concurrent_uni_streams(VarInt::from_u32(self.max_concurrent_uni_streams))
            .datagram_receive_buffer_size(Some(1 << 20))
            .datagram_send_buffer_size(1 << 20);
        if let Some(ack) = self.ack_frequency {
            let mut frequency = quinn::AckFrequencyConfig::default();
            frequency
                .ack_eliciting_threshold(VarInt::from_u32(ack.ack_eliciting_threshold))
                .max_ack_delay(Some(ack.max_ack_delay));
            t.ack_frequency_config(Some(frequency));
        }
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
            keep_alive: Some(Duration::ZERO),
            ..TransportConfig::default()
        };
        assert!(matches!(cfg.to_quinn(), Err(TransportError::Config { .. })));
    }

    #[test]
    fn keep_alive_at_or_above_the_idle_timeout_is_refused() {
        let cfg = TransportConfig {
            keep_alive: Some(ATTENDEE_IDLE_TIMEOUT),
            ..TransportConfig::default()
        };
        assert!(matches!(cfg.to_quinn(), Err(TransportError::Config { .. })));
    }

    #[test]
    fn the_server_side_sends_no_keep_alives() {
        let cfg = TransportConfig::server();
        assert_eq!(cfg.keep_alive, None);
        cfg.to_quinn().unwrap();
    }
}
