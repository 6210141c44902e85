//! An admitted attendee's graphics and pointer senders, latest wins: used
//! by direct attendees ([`crate::connection`]) and by a relay for its local
//! attendees of a mirrored session ([`crate::cluster::relay`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use tandem_proto::{ControlLevel, CursorPosition, CursorShape};
use tandem_session::{Pick, ShapeMemory, UpdatePicker};
use tokio::sync::watch;

use crate::attendee_link::{AttendeeLink, CloseCode, LinkSend};

use crate::capture_actor::CursorReceiver;
use crate::encoder_actor::{CatchUp, EncoderActor, PublishedUpdate, UpdateReceiver};
use crate::metrics::Metrics;

/// After the pointer stops, its last position is sent once more after this
/// long: datagrams can be lost, and the resting position is the one that
/// matters.
const CURSOR_REPEAT: Duration = Duration::from_millis(300);

/// Sends the session's pointer to one attendee: the image on the control
/// stream once per shape, positions as datagrams (latest wins, like graphics).
/// Also used by relays for their local attendees, fed from a relayed
/// session's mirror.
pub(crate) struct CursorSender<L> {
    link: L,
    cursor: CursorReceiver,
    level: watch::Receiver<ControlLevel>,
    metrics: Arc<Metrics>,
    /// The shapes this attendee has (a few: pointers cycle among a handful).
    shapes_sent: ShapeMemory,
    seq: u32,
    repeat_at: Option<tokio::time::Instant>,
    /// The position due is the repeat of the resting one.
    repeating: bool,
}

impl<L: AttendeeLink> CursorSender<L> {
    /// A sender of `cursor` to the attendee on `link`, silent while `level` is `none`.
    pub(crate) fn new(
        link: L,
        cursor: CursorReceiver,
        level: watch::Receiver<ControlLevel>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            link,
            cursor,
            level,
            metrics,
            shapes_sent: ShapeMemory::new(),
            seq: 0,
            repeat_at: None,
            repeating: false,
        }
    }

    /// Waits until a position is due; returns the shape to send first when
    /// the attendee does not have it yet.
    pub(crate) async fn next(&mut self) -> Option<CursorShape> {
        loop {
            let repeat = self.repeat_at;
            tokio::select! {
                changed = self.cursor.changed() => {
                    if changed.is_err() {
                        // The capture actor is gone: no more pointer.
                        return std::future::pending().await;
                    }
                }
                () = async {
                    match repeat {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {
                    self.repeat_at = None;
                    self.repeating = true;
                }
            }
            if *self.level.borrow() == ControlLevel::None {
                // No graphics, no pointer.
                continue;
            }
            let current = self.cursor.borrow().clone()?;
            if !self.shapes_sent.remember(current.shape.id) {
                return None;
            }
            self.metrics.cursor_shapes_sent.inc();
            return Some((*current.shape).clone());
        }
    }

    /// Sends the current position as a datagram (dropped if the peer takes none).
    pub(crate) fn send_position(&mut self) {
        let Some(current) = self.cursor.borrow().clone() else {
            return;
        };
        self.seq = self.seq.wrapping_add(1);
        let position = CursorPosition {
            seq: self.seq,
            x: current.x,
            y: current.y,
            shape: current.shape.id,
            visible: current.visible,
        };
        if self.link.send_datagram(position.to_datagram().into()) {
            self.metrics.cursor_positions_sent.inc();
        }
        // A repeat itself schedules no further repeat.
        if !std::mem::take(&mut self.repeating) {
            self.repeat_at = Some(tokio::time::Instant::now() + CURSOR_REPEAT);
        }
    }
}

/// Resets the stream it holds when dropped.
struct ResetOnDrop<S: LinkSend>(Option<S>);

impl<S: LinkSend> Drop for ResetOnDrop<S> {
    fn drop(&mut self) {
        if let Some(stream) = self.0.as_mut() {
            stream.reset(CloseCode::Normal);
        }
    }
}

/// The latest-wins graphics sender of one attendee (also used by relays for
/// their local attendees, fed from a relayed session's mirror).
pub(crate) struct GraphicsSender<L> {
    link: L,
    updates: UpdateReceiver,
    level: watch::Receiver<ControlLevel>,
    encoder: Addr<EncoderActor>,
    metrics: Arc<Metrics>,
    /// Where this attendee is in the session's updates.
    picker: UpdatePicker,
    bytes_sent: u64,
    /// The attendee asked for stamped graphics streams (capture time).
    stamped: Arc<AtomicBool>,
}

impl<L: AttendeeLink> GraphicsSender<L> {
    /// A sender of `updates` to the attendee on `link`, silent while `level` is `none`.
    pub(crate) fn new(
        link: L,
        updates: UpdateReceiver,
        level: watch::Receiver<ControlLevel>,
        encoder: Addr<EncoderActor>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            link,
            updates,
            level,
            encoder,
            metrics,
            picker: UpdatePicker::new(),
            bytes_sent: 0,
            stamped: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The switch to stamped streams: set it when the attendee asks
    /// (`ClientMessage::StampGraphics`); later updates carry the capture time.
    pub(crate) fn stamps(&self) -> Arc<AtomicBool> {
        self.stamped.clone()
    }

    /// Sends until the connection fails. Returns only on error: when the
    /// manager removes the attendee (its level sender is dropped) or the
    /// session's encoder is gone, it stops sending and waits for the control
    /// side to say goodbye and end the connection; returning then would race
    /// with the `Bye` and could end the connection without it.
    pub(crate) async fn run(mut self, bytes: watch::Sender<u64>) {
        self.updates.mark_changed();
        loop {
            if self.level.has_changed().is_err() {
                // The manager removed the attendee: no more graphics.
                return std::future::pending().await;
            }
            if *self.level.borrow_and_update() == ControlLevel::None {
                // An attendee at `none` receives no graphics until its level changes.
                let _ = self.level.changed().await;
                continue;
            }
            let newest = self.updates.borrow_and_update().clone();
            if let Some(newest) = newest {
                if newest.seq != self.picker.delivered() {
                    let Some(update) = self.choose(newest).await else {
                        return;
                    };
                    if self.send(&update).await.is_err() {
                        return;
                    }
                    bytes.send_replace(self.bytes_sent);
                    continue;
                }
            }
            tokio::select! {
                r = self.updates.changed() => if r.is_err() {
                    // The session's encoder is gone: nothing more to send.
                    return std::future::pending().await;
                },
                // An error here (the attendee removed) is seen at the top of the loop.
                _ = self.level.changed() => {},
            }
        }
    }

    /// The newest update if it applies to what the attendee has; else a catch-up.
    async fn choose(&mut self, newest: Arc<PublishedUpdate>) -> Option<Arc<PublishedUpdate>> {
        let (since, coalesced) = match self.picker.pick(newest.seq, newest.base_seq) {
            Pick::Nothing => return None,
            Pick::Newest(kind) => {
                self.metrics
                    .updates_sent
                    .with_label_values(&[kind.label()])
                    .inc();
                return Some(newest);
            }
            Pick::CatchUp { since, coalesced } => (since, coalesced),
        };
        // Updates between `delivered` and `newest` were folded into this catch-up.
        self.metrics.updates_coalesced.inc_by(coalesced);
        let update = self.encoder.send(CatchUp { since }).await.ok()??;
        let kind = if update.base_seq == 0 {
            "key"
        } else {
            "catch_up"
        };
        self.metrics.updates_sent.with_label_values(&[kind]).inc();
        Some(update)
    }

    async fn send(&mut self, update: &PublishedUpdate) -> Result<(), ()> {
        let stream = self.link.open_uni().await.ok_or(())?;
        // If this send is abandoned half way (the connection is ending), the
        // stream is reset, not finished: a finished stream would hand the
        // attendee a truncated update.
        let mut guard = ResetOnDrop(Some(stream));
        let stream = guard.0.as_mut().ok_or(())?;
        let stamped = self.stamped.load(Ordering::Relaxed);
        // The header and the update's shared payload: no copy per attendee.
        let mut chunks = update.stream_chunks(stamped);
        stream.write_shared(&mut chunks).await.map_err(|_| ())?;
        let mut stream = guard.0.take().ok_or(())?;
        stream.finish();
        self.picker.sent(update.seq);
        let len = update.stream_len(stamped) as u64;
        self.bytes_sent += len;
        self.metrics.bytes_sent.inc_by(len);
        self.metrics
            .update_latency_seconds
            .observe(update.captured_at.elapsed().as_secs_f64());
        Ok(())
    }
}
