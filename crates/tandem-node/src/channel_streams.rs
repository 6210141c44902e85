//! The QUIC side of virtual channels for one attendee connection: the
//! writer task of each joined channel (its own unidirectional stream, fed
//! from the channel's bounded queue) and the reader task of each channel
//! stream the attendee opens. Each task blocks only on its own stream, so a
//! channel nobody reads holds up nothing else.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tandem_proto::{channel_stream_header, parse_channel_header, ChannelFrame, ServerMessage};
use tandem_transport::MessageReader;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::attendee_link::{AttendeeLink, CloseCode, LinkRecv, LinkSend};
use crate::channels::{ChannelHub, OutgoingChannel};

/// Writes one joined channel's queue to a stream of its own until the queue
/// closes (the attendee left) or the stream fails.
pub async fn write_channel<L: AttendeeLink>(link: L, out: OutgoingChannel, attendee: u64) {
    let OutgoingChannel {
        id,
        priority,
        mut queue,
        dropped,
    } = out;
    let Some(mut stream) = link.open_uni().await else {
        return;
    };
    stream.set_priority(priority.stream_priority());
    if stream.write_all(&channel_stream_header(id)).await.is_err() {
        return;
    }
    loop {
        let frame = match queue.try_recv() {
            Ok(frame) => frame,
            Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                // Caught up: say where messages were lost before waiting.
                let lost = dropped.swap(0, Ordering::Relaxed);
                if lost > 0 {
                    let Ok(marker) = ChannelFrame::Dropped(lost).encode() else {
                        return;
                    };
                    if stream.write_all(&marker).await.is_err() {
                        return;
                    }
                    tracing::debug!(attendee, channel = id, lost, "drop marker written");
                }
                match queue.recv().await {
                    Some(frame) => frame,
                    None => break,
                }
            }
            Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => break,
        };
        if stream.write_all(&frame).await.is_err() {
            return;
        }
    }
    stream.finish();
}

/// Reads a channel stream the attendee opened: each message goes to the
/// hub, which checks the attendee's access; a refusal is told on the
/// control stream. A malformed stream is stopped, the connection lives on.
pub async fn read_channel<R: LinkRecv>(mut recv: R, hub: Arc<ChannelHub>, attendee: u64) {
    let mut header = [0u8; tandem_proto::CHANNEL_HEADER_LEN];
    if recv.read_exact(&mut header).await.is_err() {
        recv.stop(CloseCode::Protocol);
        return;
    }
    let id = match parse_channel_header(&header) {
        Ok(id) => id,
        Err(error) => {
            tracing::info!(attendee, %error, "bad stream from attendee");
            recv.stop(CloseCode::Protocol);
            return;
        }
    };
    let mut reader = MessageReader::new(recv);
    loop {
        match reader.next::<ChannelFrame>().await {
            Ok(Some(ChannelFrame::Data(data))) => {
                if let Err(message) = hub.from_attendee(attendee, id, data) {
                    hub.notify(
                        attendee,
                        ServerMessage::ChannelWriteRefused {
                            channel: id,
                            message,
                        },
                    );
                }
            }
            Ok(Some(ChannelFrame::Dropped(_))) => {}
            Ok(None) => return,
            Err(error) => {
                tracing::info!(attendee, channel = id, %error, "channel stream from attendee ended");
                reader.stream_mut().stop(CloseCode::Protocol);
                return;
            }
        }
    }
}
