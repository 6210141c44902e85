//! Transport tuning shared by the server and client sides.
//!
//! The defaults are chosen for bytes on the wire as much as for speed: an
//! idle attendee costs one keep-alive round trip every 20 s, sent by the
//! attendee only (NAT bindings live on its side; one side is enough to keep
//! a QUIC connection alive), and both ends ask their peer, through the QUIC
//! ACK-frequency extension, to acknowledge in batches instead of every
//! other packet, so a typed glyph is not followed by its own ACK (see
//! [`AckFrequency`] and vendor/quinn-proto/TANDEM-PATCH.md).

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
    /// Bidirectional streams the peer may have open at once (control streams).
    pub max_concurrent_bidi_streams: u32,
    /// Bytes of received datagrams buffered until read. `Some(0)`: the peer
    /// may send none, and this end can still send; `None` disables datagrams
    /// both ways (quinn then refuses to send any).
    pub datagram_receive_buffer: Option<usize>,
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
        // Typing sends one small update about every 100 ms (10 keys/s);
        // acknowledging within 200 ms folds two or three of them into one
        // ACK packet instead of one ACK each. The delay is requested as is
        // only thanks to the vendored quinn-proto patch (upstream caps it at
        // max(RTT, 25 ms): an ACK per update on a LAN). Bulk traffic (scroll,
        // full motion) is acknowledged every 17 packets by the threshold, and
        // a gap (loss), a probe or the packet that fills the sender's
        // congestion window (IMMEDIATE_ACK, the vendored patch's second
        // change) is acknowledged at once, so neither slow start, nor loss
        // recovery, nor a small window waits for the timer; a lost last
        // packet is probed after RTT + 200 ms.
        Self {
            ack_eliciting_threshold: 16,
            max_ack_delay: Duration::from_millis(200),
        }
    }
}

/// Idle timeout of attendee connections: a node that vanished without a
/// word is noticed within this long (one that stops says so at once).
pub const ATTENDEE_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Keep-alive interval of the attendee's side: well under the 30 s that
/// the most impatient NATs keep an idle UDP binding.
pub const ATTENDEE_KEEP_ALIVE: Duration = Duration::from_secs(20);

/// What a connection that has not been admitted may make the node buffer
/// (the window it starts with): 128 KiB over all its streams, no datagrams.
/// [`crate::admit`] raises it once the attendee is welcomed.
pub const PREAUTH_RECEIVE_WINDOW: u32 = 128 << 10;
/// Per-stream receive window of the node's attendee connections: one whole
/// control or channel frame (64 KiB and its prefix) and some room; it never
/// grows, since nothing an attendee sends needs more.
pub const SERVER_STREAM_RECEIVE_WINDOW: u32 = 80 << 10;
/// Streams a connection may open before admission.
pub const PREAUTH_UNI_STREAMS: u32 = 8;
/// Bidirectional streams (the control stream, and one being replaced).
pub const PREAUTH_BIDI_STREAMS: u32 = 2;

impl TransportConfig {
    /// The server side of attendee connections: no keep-alives of its own,
    /// and the small windows of a connection not yet admitted (at most
    /// 128 KiB of buffered data and a zero-byte datagram buffer: the node
    /// reads no datagrams, it only sends them).
    pub fn server() -> Self {
        Self {
            keep_alive: None,
            stream_receive_window: SERVER_STREAM_RECEIVE_WINDOW,
            receive_window: PREAUTH_RECEIVE_WINDOW,
            max_concurrent_uni_streams: PREAUTH_UNI_STREAMS,
            max_concurrent_bidi_streams: PREAUTH_BIDI_STREAMS,
            // Zero, not None: quinn refuses to *send* datagrams (the
            // attendees' cursor positions) when the receive buffer is None;
            // zero tells the peer the node takes no datagram of any size.
            datagram_receive_buffer: Some(0),
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
            max_concurrent_bidi_streams: 100,
            // Cursor datagrams are under 64 bytes and read as they come.
            datagram_receive_buffer: Some(64 << 10),
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
            .max_concurrent_bidi_streams(VarInt::from_u32(self.max_concurrent_bidi_streams))
            .datagram_receive_buffer_size(self.datagram_receive_buffer)
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
    fn the_server_side_starts_with_pre_auth_windows() {
        let cfg = TransportConfig::server();
        assert_eq!(cfg.receive_window, PREAUTH_RECEIVE_WINDOW);
        assert_eq!(cfg.max_concurrent_bidi_streams, PREAUTH_BIDI_STREAMS);
        assert_eq!(cfg.max_concurrent_uni_streams, PREAUTH_UNI_STREAMS);
        assert_eq!(cfg.datagram_receive_buffer, Some(0));
        // A whole control frame fits one stream's window.
        assert!(
            SERVER_STREAM_RECEIVE_WINDOW as usize >= tandem_proto::MAX_FRAME_LEN,
            "{SERVER_STREAM_RECEIVE_WINDOW}"
        );
    }

    #[test]
    fn the_server_side_sends_no_keep_alives() {
        let cfg = TransportConfig::server();
        assert_eq!(cfg.keep_alive, None);
        cfg.to_quinn().unwrap();
    }
}
