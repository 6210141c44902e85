//! The EncoderActor: turns captured frames into graphics updates, once for all
//! attendees, and serves catch-ups and key frames from its kept tile state.
//!
//! An update is published once, as one shared buffer ([`Bytes`]) that every
//! attendee's graphics stream hands to QUIC by reference (no per-attendee
//! copy), with the two stream headers (plain, and stamped with the capture
//! time for viewers that asked) made once beside it.
//!
//! It runs on a thread of its own ([`EncoderActor::start_on_own_thread`], an
//! arbiter that ends with it) so that encoding never delays the arbiter that
//! drives actors or the runtime that drives QUIC. It was a one-thread
//! `SyncArbiter` before: that routes every message through a dispatcher actor
//! on the System arbiter and a channel whose receiver spins and yields, so
//! each captured frame woke the main thread as well as the encoder's.
//!
//! The codec returns no errors, so an encoder failure is a panic inside it:
//! it is caught per frame and becomes an `error` event `encoder_failed` (the
//! frame is dropped; the session and its other frames carry on) instead of
//! killing the encoder thread and, with it, the session's graphics.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use actix::prelude::*;
use bytes::Bytes;
use tandem_capture::Captured;
use tandem_codec::{CopyRect, EncodedUpdate, Encoder, EncoderConfig, Frame};
use tokio::sync::watch;

use crate::events::{ErrorCode, SessionEvent};
use crate::metrics::Metrics;
use crate::registry_actor::RecordEvent;

/// An encoded update ready to be written to any attendee's graphics stream.
#[derive(Debug)]
pub struct PublishedUpdate {
    /// Encoder state after applying it.
    pub seq: u64,
    /// State it applies to (0: a key frame).
    pub base_seq: u64,
    /// Size of the frame it produces.
    pub width: u32,
    /// Size of the frame it produces.
    pub height: u32,
    /// When the frame it carries was captured.
    pub captured_at: Instant,
    /// The same instant on the wall clock, in unix microseconds (what a
    /// stamped stream carries).
    pub captured_unix_us: u64,
    /// The encoded update, shared by every attendee's stream.
    pub payload: Bytes,
    /// The stamped stream header (kind byte and capture time), made once.
    pub stamped_header: Bytes,
}

/// The plain graphics stream header, shared by every plain stream.
static PLAIN_HEADER: [u8; 1] = [tandem_proto::STREAM_KIND_GRAPHICS];

impl PublishedUpdate {
    /// Wraps an encoded update captured at `captured_at`.
    pub(crate) fn new(update: &EncodedUpdate, captured_at: Instant) -> Self {
        let captured_unix_us = unix_micros_at(captured_at);
        Self {
            seq: update.seq,
            base_seq: update.base_seq,
            width: update.width,
            height: update.height,
            captured_at,
            captured_unix_us,
            payload: Bytes::from(update.to_bytes()),
            stamped_header: Bytes::copy_from_slice(&tandem_proto::stamped_graphics_stream_header(
                captured_unix_us,
            )),
        }
    }

    /// The chunks of this update's graphics stream, stamped or plain:
    /// the header, then the shared payload (both cheap reference-counted
    /// handles, never a copy of the update).
    pub fn stream_chunks(&self, stamped: bool) -> [Bytes; 2] {
        let header = if stamped {
            self.stamped_header.clone()
        } else {
            Bytes::from_static(&PLAIN_HEADER)
        };
        [header, self.payload.clone()]
    }

    /// Length of the stream [`stream_chunks`](Self::stream_chunks) makes.
    pub fn stream_len(&self, stamped: bool) -> usize {
        let header = if stamped {
            self.stamped_header.len()
        } else {
            PLAIN_HEADER.len()
        };
        header + self.payload.len()
    }

    /// The whole plain graphics stream in one buffer (a copy: for the
    /// cluster link, which frames it again).
    pub fn plain_stream_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.stream_len(false));
        bytes.extend_from_slice(&PLAIN_HEADER);
        bytes.extend_from_slice(&self.payload);
        bytes
    }
}

/// The wall-clock time of `at`, in unix microseconds: now on the wall clock
/// minus the time since `at` on the monotonic one (capture instants are
/// monotonic; a stamp is wall-clock so that another process can compare).
fn unix_micros_at(at: Instant) -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    since_epoch.saturating_sub(at.elapsed()).as_micros() as u64
}

/// Latest-wins channel of a session's newest update.
pub type UpdateReceiver = watch::Receiver<Option<Arc<PublishedUpdate>>>;

/// The actor.
pub struct EncoderActor {
    encoder: Encoder,
    publish: watch::Sender<Option<Arc<PublishedUpdate>>>,
    metrics: Arc<Metrics>,
    last_captured_at: Instant,
    /// The last catch-up served, reused while no newer frame exists: slow
    /// attendees at the same position cost one assembly, not one each.
    last_catch_up: Option<(u64, Arc<PublishedUpdate>)>,
    /// The session and where its `error` events go (none for a relay's mirror).
    events: Option<(String, Recipient<RecordEvent>)>,
    /// Runs alone on an arbiter started for it, which it stops when it stops.
    own_arbiter: bool,
    /// Makes the next encode panic, to test the failure path: the codec has
    /// no input that makes it fail, so only a test can.
    #[cfg(test)]
    fail_next_encode: bool,
}

impl EncoderActor {
    /// An encoder publishing into `publish`.
    pub fn new(
        publish: watch::Sender<Option<Arc<PublishedUpdate>>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            encoder: Encoder::new(EncoderConfig::default()),
            publish,
            metrics,
            last_captured_at: Instant::now(),
            last_catch_up: None,
            events: None,
            own_arbiter: false,
            #[cfg(test)]
            fail_next_encode: false,
        }
    }

    /// Reports encoder failures of `session` as `error` events to `events`.
    pub fn with_events(mut self, session: String, events: Recipient<RecordEvent>) -> Self {
        self.events = Some((session, events));
        self
    }

    /// Starts the actor on a new arbiter, its thread alone; the arbiter
    /// stops when the actor does (every address of it dropped).
    pub fn start_on_own_thread(mut self) -> Addr<Self> {
        self.own_arbiter = true;
        let arbiter = Arbiter::new();
        EncoderActor::start_in_arbiter(&arbiter.handle(), move |_| self)
    }
}

impl Actor for EncoderActor {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Self::Context) {
        if self.own_arbiter {
            Arbiter::current().stop();
        }
    }
}

/// Whether a frame is in the encoder: the CaptureActor grabs the next one
/// only when none is (a request that changes what is shared grabs at once
/// regardless). It is a count of the frames' [`BusyTicket`]s, each released
/// when its message is dropped (encoded, failed, or never delivered), rather
/// than the message's reply, so that finishing a frame does not wake the
/// capture thread: on a typing desktop that wake-up was one in six of its own.
#[derive(Debug, Default)]
pub struct EncoderBusy(Arc<AtomicUsize>);

impl EncoderBusy {
    /// How many frames handed over with [`EncoderBusy::ticket`] are still
    /// held by the encoder.
    pub fn in_flight(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }

    /// Marks the encoder busy until the returned ticket is dropped.
    pub fn ticket(&self) -> BusyTicket {
        self.0.fetch_add(1, Ordering::AcqRel);
        BusyTicket(self.0.clone())
    }
}

/// Travels with a frame; dropping it releases its hold on the encoder.
#[derive(Debug)]
pub struct BusyTicket(Arc<AtomicUsize>);

impl Drop for BusyTicket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A frame from the CaptureActor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FrameCaptured {
    /// The frame and its damage hints.
    pub captured: Captured,
    /// When it was grabbed.
    pub captured_at: Instant,
    /// Marks the sender's [`EncoderBusy`] until the frame is published
    /// (`None`: the sender does not wait for the encoder, as a cluster
    /// mirror's latest-wins feed).
    pub busy: Option<BusyTicket>,
}

impl Handler<FrameCaptured> for EncoderActor {
    type Result = ();
    fn handle(&mut self, msg: FrameCaptured, _: &mut Self::Context) {
        // Held to the end of the handler: the encoder is free once the
        // update is published.
        let _busy = msg.busy;
        let start = Instant::now();
        let Captured {
            frame,
            damage,
            moves,
        } = msg.captured;
        let hints: Vec<CopyRect> = moves
            .iter()
            .map(|m| CopyRect {
                src: m.src,
                dst_x: m.dst_x,
                dst_y: m.dst_y,
            })
            .collect();
        #[cfg(test)]
        let fail = std::mem::take(&mut self.fail_next_encode);
        let encoder = &mut self.encoder;
        let encoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            #[cfg(test)]
            if fail {
                panic!("injected encoder fault");
            }
            encoder.encode_with_moves(frame, damage.as_deref(), &hints)
        }));
        let update = match encoded {
            Ok(update) => update,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                tracing::error!(error = %what, "encoding a frame failed; the frame is dropped");
                if let Some((session, events)) = &self.events {
                    events.do_send(RecordEvent(SessionEvent::Error {
                        session: Some(session.clone()),
                        code: ErrorCode::EncoderFailed,
                        message: format!("encoding a frame failed ({what}); the frame was dropped"),
                    }));
                }
                return;
            }
        };
        self.metrics
            .encode_seconds
            .observe(start.elapsed().as_secs_f64());
        let Some(update) = update else { return };
        let stats = self.encoder.last_stats();
        self.metrics
            .tiles_changed
            .inc_by(u64::from(stats.tiles_changed));
        self.metrics.raw_bytes.inc_by(stats.raw_bytes);
        self.metrics.copy_rects.inc_by(u64::from(stats.moves));
        self.metrics.moved_pixels.inc_by(stats.moved_pixels);
        self.metrics.encoded_bytes.inc_by(stats.encoded_bytes);
        self.metrics.updates_published.inc();
        self.last_captured_at = msg.captured_at;
        self.last_catch_up = None;
        let published = Arc::new(PublishedUpdate::new(&update, msg.captured_at));
        tracing::trace!(
            seq = published.seq,
            bytes = published.stream_len(false),
            "update published"
        );
        self.publish.send_replace(Some(published));
    }
}

/// Everything changed since `since`, self-contained (a key frame when `since` is 0 or too old).
#[derive(Message)]
#[rtype(result = "Option<Arc<PublishedUpdate>>")]
pub struct CatchUp {
    /// The attendee's last delivered sequence number.
    pub since: u64,
}

impl Handler<CatchUp> for EncoderActor {
    type Result = Option<Arc<PublishedUpdate>>;
    fn handle(&mut self, msg: CatchUp, _: &mut Self::Context) -> Self::Result {
        if let Some((since, cached)) = &self.last_catch_up {
            if *since == msg.since && cached.seq == self.encoder.seq() {
                return Some(cached.clone());
            }
        }
        let update = self.encoder.catch_up(msg.since)?;
        let published = Arc::new(PublishedUpdate::new(&update, self.last_captured_at));
        self.last_catch_up = Some((msg.since, published.clone()));
        Some(published)
    }
}

/// Answered once every message queued before it has been handled (a frame
/// sent before it has been published).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Barrier;

impl Handler<Barrier> for EncoderActor {
    type Result = ();
    fn handle(&mut self, _: Barrier, _: &mut Self::Context) {}
}

/// The current frame, for snapshots.
#[derive(Message)]
#[rtype(result = "Option<Frame>")]
pub struct CurrentFrame;

impl Handler<CurrentFrame> for EncoderActor {
    type Result = Option<Frame>;
    fn handle(&mut self, _: CurrentFrame, _: &mut Self::Context) -> Self::Result {
        self.encoder.current_frame().cloned()
    }
}

#[cfg(test)]
mod tests {
    //! The failure path: a panicking encode becomes an `encoder_failed`
    //! event, the frame is dropped and the next frame is published as usual.

    use super::*;
    use crate::events::SessionEvent;
    use tandem_capture::Captured;
    use tandem_codec::Frame;

    /// Makes the next [`FrameCaptured`] panic inside the encode.
    #[derive(Message)]
    #[rtype(result = "()")]
    struct FailNextEncode;

    impl Handler<FailNextEncode> for EncoderActor {
        type Result = ();
        fn handle(&mut self, _: FailNextEncode, _: &mut Self::Context) {
            self.fail_next_encode = true;
        }
    }

    /// Keeps every event it is sent.
    struct Collector(Vec<SessionEvent>);

    /// The events so far; handled after every event queued before it.
    #[derive(Message)]
    #[rtype(result = "Vec<SessionEvent>")]
    struct Collected;

    impl Handler<Collected> for Collector {
        type Result = MessageResult<Collected>;
        fn handle(&mut self, _: Collected, _: &mut Self::Context) -> Self::Result {
            MessageResult(self.0.clone())
        }
    }

    impl Actor for Collector {
        type Context = Context<Self>;
    }

    impl Handler<RecordEvent> for Collector {
        type Result = ();
        fn handle(&mut self, RecordEvent(event): RecordEvent, _: &mut Self::Context) {
            self.0.push(event);
        }
    }

    fn frame(color: u32) -> FrameCaptured {
        FrameCaptured {
            captured: Captured {
                frame: Frame::filled(64, 48, color),
                damage: None,
                moves: Vec::new(),
            },
            captured_at: Instant::now(),
            busy: None,
        }
    }

    #[actix::test]
    async fn a_failed_encode_is_an_error_event_and_the_next_frame_is_published() {
        let collector = Collector(Vec::new()).start();
        let events_to = collector.clone();
        let (publish, mut updates) = watch::channel(None);
        let metrics = Arc::new(Metrics::new());
        let encoder = EncoderActor::new(publish, metrics)
            .with_events("s1".into(), events_to.recipient())
            .start_on_own_thread();

        encoder.send(FailNextEncode).await.unwrap();
        encoder.send(frame(0x0011_2233)).await.unwrap();
        encoder.send(Barrier).await.unwrap();
        assert!(
            updates.borrow_and_update().is_none(),
            "the failed frame was dropped"
        );

        encoder.send(frame(0x0044_5566)).await.unwrap();
        encoder.send(Barrier).await.unwrap();
        let published = updates
            .borrow_and_update()
            .clone()
            .expect("the next frame is published");
        assert_eq!((published.width, published.height), (64, 48));
        let current = encoder.send(CurrentFrame).await.unwrap().unwrap();
        assert_eq!(current.pixels()[0], 0x0044_5566);

        // The event was queued before the barrier answered, so before this.
        let events = collector.send(Collected).await.unwrap();
        assert_eq!(events.len(), 1, "one event: {events:?}");
        match &events[0] {
            SessionEvent::Error {
                session,
                code,
                message,
            } => {
                assert_eq!(session.as_deref(), Some("s1"));
                assert_eq!(*code, ErrorCode::EncoderFailed);
                assert!(message.contains("injected encoder fault"), "{message}");
            }
            other => panic!("expected an error event, got {other:?}"),
        }
    }
}
