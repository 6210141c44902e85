//! Control-stream helpers: send and receive length-prefixed postcard
//! messages (the framing of `tandem-proto`) over quinn streams.

use serde::de::DeserializeOwned;
use serde::Serialize;
use tandem_proto::FrameDecoder;

use crate::error::TransportError;

/// Size of one read from the stream.
const READ_CHUNK: usize = 16 * 1024;

/// Encode `msg` as one control frame and write it whole to `send`.
///
/// Fails with [`TransportError::Protocol`] before writing anything if the
/// message is larger than `tandem_proto::MAX_CONTROL_MESSAGE`.
pub async fn write_message<T: Serialize>(
    send: &mut quinn::SendStream,
    msg: &T,
) -> Result<(), TransportError> {
    let bytes = tandem_proto::encode_message(msg)?;
    send.write_all(&bytes).await?;
    Ok(())
}

/// Reads control messages from a receive stream, one at a time.
///
/// After any error the stream should be considered unusable and the
/// connection closed: framing errors poison the decoder for good.
pub struct MessageReader {
    recv: quinn::RecvStream,
    decoder: FrameDecoder,
    buf: Box<[u8]>,
}

impl MessageReader {
    /// Wrap `recv`.
    pub fn new(recv: quinn::RecvStream) -> Self {
        Self {
            recv,
            decoder: FrameDecoder::new(),
            buf: vec![0; READ_CHUNK].into_boxed_slice(),
        }
    }

    /// The next message, `Ok(None)` when the peer finished the stream
    /// cleanly between messages.
    ///
    /// Errors: [`TransportError::Protocol`] for a malformed or oversized
    /// frame (an announced length above the limit is refused as soon as its
    /// header arrives), [`TransportError::Truncated`] if the stream ends
    /// inside a frame, [`TransportError::Read`] if the stream is reset or
    /// the connection lost.
    ///
    /// Cancel safe: dropping the future loses no received bytes.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>, TransportError> {
        loop {
            if let Some(msg) = self.decoder.next_message::<T>()? {
                return Ok(Some(msg));
            }
            match self.recv.read(&mut self.buf).await? {
                Some(n) => self.decoder.push(&self.buf[..n]),
                None => {
                    let buffered = self.decoder.buffered();
                    if buffered == 0 {
                        return Ok(None);
                    }
                    tracing::debug!(buffered, "control stream ended inside a message");
                    return Err(TransportError::Truncated { buffered });
                }
            }
        }
    }

    /// The underlying stream, e.g. to `stop` it with an error code.
    pub fn stream_mut(&mut self) -> &mut quinn::RecvStream {
        &mut self.recv
    }
}
