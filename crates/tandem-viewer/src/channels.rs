//! The attendee side of a virtual channel: join one channel by name, send
//! what the caller gives on a stream of our own, and hand what the sharer
//! sends to the caller. `tandem view --channel NAME` bridges this to
//! stdin/stdout; the clipboard is the channel named `clipboard`.

use tandem_proto::{channel_stream_header, ChannelFrame, MAX_CHANNEL_MESSAGE};
use tandem_transport::MessageReader;
use tokio::sync::mpsc;

use crate::ViewerError;

/// Messages waiting for the caller; past this, the reader waits (the node's
/// queue then fills and the node counts what it drops).
pub const INCOMING_QUEUE: usize = 256;

/// What arrives on the joined channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelIncoming {
    /// One message from the sharer.
    Data(Vec<u8>),
    /// The node dropped this many messages for us here (our queue was full).
    Dropped(u64),
}

/// A channel to join and the two ends of its data.
pub struct ChannelLink {
    /// Channel name.
    pub name: String,
    /// Messages to send to the sharer (each at most [`MAX_CHANNEL_MESSAGE`]
    /// bytes; held until the channel is joined).
    pub outgoing: mpsc::Receiver<Vec<u8>>,
    /// Where the sharer's messages go.
    pub incoming: mpsc::Sender<ChannelIncoming>,
}

/// Reads one channel stream from the node (its header already read) and
/// forwards its messages in order.
pub(crate) async fn forward_incoming(
    stream: quinn::RecvStream,
    incoming: mpsc::Sender<ChannelIncoming>,
) {
    let mut reader = MessageReader::new(stream);
    loop {
        let item = match reader.next::<ChannelFrame>().await {
            Ok(Some(ChannelFrame::Data(d))) => ChannelIncoming::Data(d),
            Ok(Some(ChannelFrame::Dropped(n))) => ChannelIncoming::Dropped(n),
            Ok(None) => return,
            Err(error) => {
                tracing::info!(%error, "channel stream ended");
                return;
            }
        };
        if incoming.send(item).await.is_err() {
            return;
        }
    }
}

/// Our stream to the sharer on channel `id`, opened on first use.
pub(crate) struct Outgoing {
    pub id: u32,
    stream: Option<quinn::SendStream>,
}

impl Outgoing {
    pub fn new(id: u32) -> Self {
        Self { id, stream: None }
    }

    /// Sends one message.
    pub async fn send(
        &mut self,
        conn: &quinn::Connection,
        data: Vec<u8>,
    ) -> Result<(), ViewerError> {
        if data.len() > MAX_CHANNEL_MESSAGE {
            return Err(ViewerError::Protocol(format!(
                "channel message of {} bytes exceeds the {MAX_CHANNEL_MESSAGE}-byte limit",
                data.len()
            )));
        }
        let frame = ChannelFrame::Data(data)
            .encode()
            .map_err(|e| ViewerError::Protocol(e.to_string()))?;
        let stream = match &mut self.stream {
            Some(s) => s,
            None => {
                let mut s = conn.open_uni().await.map_err(crate::connection::lost)?;
                s.write_all(&channel_stream_header(self.id))
                    .await
                    .map_err(crate::connection::lost)?;
                self.stream.insert(s)
            }
        };
        stream
            .write_all(&frame)
            .await
            .map_err(crate::connection::lost)
    }
}
