//! Control-stream helpers: send and receive length-prefixed postcard
//! messages (the framing of `tandem-proto`) over any async stream: quinn's
//! by default, or any other `AsyncRead`/`AsyncWrite` (a WebTransport
//! session's streams, which wrap quinn's).

use serde::de::DeserializeOwned;
use serde::Serialize;
use tandem_proto::FrameDecoder;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::TransportError;

/// Size of one read from the stream.
const READ_CHUNK: usize = 16 * 1024;

/// Encode `msg` as one control frame and write it whole to `send`.
///
/// Fails with [`TransportError::Protocol`] before writing anything if the
/// message is larger than `tandem_proto::MAX_CONTROL_MESSAGE`.
pub async fn write_message<W: AsyncWrite + Unpin + ?Sized, T: Serialize>(
    send: &mut W,
    msg: &T,
) -> Result<(), TransportError> {
    let bytes = tandem_proto::encode_message(msg)?;
    send.write_all(&bytes)
        .await
        .map_err(TransportError::Stream)?;
    Ok(())
}

/// Reads control messages from a receive stream, one at a time.
///
/// After any error the stream should be considered unusable and the
/// connection closed: framing errors poison the decoder for good.
pub struct MessageReader<R = quinn::RecvStream> {
    recv: R,
    decoder: FrameDecoder,
    buf: Box<[u8]>,
}

impl<R: AsyncRead + Unpin> MessageReader<R> {
    /// Wrap `recv`.
    pub fn new(recv: R) -> Self {
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
    /// inside a frame, [`TransportError::Stream`] if the stream is reset or
    /// the connection lost.
    ///
    /// Cancel safe: dropping the future loses no received bytes.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>, TransportError> {
        loop {
            if let Some(msg) = self.decoder.next_message::<T>()? {
                return Ok(Some(msg));
            }
            match self
                .recv
                .read(&mut self.buf)
                .await
                .map_err(TransportError::Stream)?
            {
                n @ 1.. => self.decoder.push(&self.buf[..n]),
                0 => {
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
    pub fn stream_mut(&mut self) -> &mut R {
        &mut self.recv
    }
}
