//! The CaptureActor: grabs the shared rectangle of one sharing session's
//! source every frame interval and hands frames to the EncoderActor.
//!
//! It runs on an arbiter of its own because a grab blocks. It never has more
//! than one frame waiting in the encoder: a tick that finds the previous frame
//! still being encoded is skipped, so a slow encoder lowers the frame rate
//! instead of growing a queue. A request that changes what is shared (the
//! rectangle, the window filter, resume) grabs at once even so, and it and a
//! pause are answered only once the encoder has published every frame
//! grabbed so far: nobody who joins after the answer sees a frame of the old
//! rectangle or of a window filtered out. A tick whose source reports no
//! damage grabs nothing (an idle X display costs no grab).
//!
//! When it ticks is [`crate::capture_pacing`]'s rule. A source with a
//! [`CaptureSource::wake_fd`] (X11 with XInput 2) is not polled once it has
//! settled: after a tick that left nothing pending, the actor waits until
//! that descriptor is readable (or [`IDLE_RECHECK`] passed), then ticks after
//! [`WAKE_SETTLE`] and no sooner than one frame interval after the previous
//! tick. An idle desktop then wakes the node twice a second instead of thirty
//! times, a typed character costs one wake-up and one grab, and the first
//! change after a quiet spell is grabbed without waiting for the next tick.
//!
//! Each tick also samples the pointer and publishes it, relative to the
//! shared rectangle, on the session's cursor channel (latest wins), and
//! forwards window changes and desktop resizes to the AttendeeManager.
//!
//! Failures are events, not only log lines: the first failed grab of a run
//! is an `error` event `capture_failed` (at most one a minute), and a run of
//! failures lasting [`SOURCE_LOST_AFTER`] is `source_lost`, after which the
//! source is retried every [`SOURCE_RETRY`] instead of every frame
//! interval. Attendees keep the last picture meanwhile; the session, its
//! attendees and the admin API carry on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tandem_capture::{
    CaptureSource, CursorShape, Monitor, Rect, WindowEvent, WindowFilter, WindowInfo,
};
use tokio::io::Interest;
use tokio::net::UnixStream;
use tokio::sync::watch;

use crate::capture_pacing::{AfterTick, Next, Pacer};
use crate::encoder_actor::{Barrier, EncoderActor, EncoderBusy, FrameCaptured};
use crate::error::NodeError;
use crate::events::{ErrorCode, SessionEvent, SOURCE_LOST_AFTER};
use crate::metrics::Metrics;
use crate::registry_actor::RecordEvent;

/// How often a lost source is tried again.
pub const SOURCE_RETRY: Duration = Duration::from_secs(5);
/// Least time between two `capture_failed` events of one session (a source
/// failing every other frame must not flood the event log).
const CAPTURE_FAILED_EVERY: Duration = Duration::from_secs(60);
/// Longest an idle actor sleeps on its source's wake descriptor before it
/// ticks anyway (the pointer may have been warped, which raises no event).
pub const IDLE_RECHECK: Duration = tandem_capture::x11::POINTER_RECHECK;
/// How long a woken actor waits before it grabs: the first damage event
/// of a change is usually one of several drawn together (a typed glyph and
/// then the text cursor), and grabbing at the first would send the change
/// as two updates.
const WAKE_SETTLE: Duration = Duration::from_millis(4);

/// Frames the encoder may hold at once: the one it encodes and one grabbed
/// at once for a request that changed what is shared.
const MAX_FRAMES_IN_FLIGHT: usize = 2;

/// How a wait for the source's news ended.
enum Wait {
    /// Its descriptor turned readable.
    News,
    /// [`IDLE_RECHECK`] passed.
    Recheck,
    /// The descriptor cannot be waited on.
    Broken(std::io::Error),
}

/// The pointer as attendees see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedCursor {
    /// Hot spot, from the left edge of the shared rectangle.
    pub x: i32,
    /// Hot spot, from the top edge of the shared rectangle.
    pub y: i32,
    /// Whether it is shown.
    pub visible: bool,
    /// Its image.
    pub shape: Arc<CursorShape>,
}

/// Latest-wins channel of a session's pointer.
pub type CursorReceiver = watch::Receiver<Option<SharedCursor>>;

/// What the CaptureActor tells the AttendeeManager.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub enum CaptureNotice {
    /// Windows or applications opened, closed or changed.
    Windows {
        /// Session id.
        session: String,
        /// What changed, oldest first.
        events: Vec<WindowEvent>,
    },
    /// The desktop was resized and the shared rectangle with it.
    RectChanged {
        /// Session id.
        session: String,
        /// The rectangle now shared.
        rect: Rect,
    },
}

/// Where a session's capture actor sends frames, the pointer and notices.
pub struct CaptureOutputs {
    /// The session's encoder.
    pub encoder: Addr<EncoderActor>,
    /// The session's pointer channel.
    pub cursor: watch::Sender<Option<SharedCursor>>,
    /// The AttendeeManager.
    pub notices: Recipient<CaptureNotice>,
    /// Where `error` events go (the SessionRegistry).
    pub events: Recipient<RecordEvent>,
    /// The window filter in effect, for the input path (it confines keys
    /// and buttons to shared windows).
    pub filter: watch::Sender<Option<WindowFilter>>,
}

/// The actor.
pub struct CaptureActor {
    session: String,
    source: Box<dyn CaptureSource>,
    encoder: Addr<EncoderActor>,
    cursor: watch::Sender<Option<SharedCursor>>,
    notices: Recipient<CaptureNotice>,
    events: Recipient<RecordEvent>,
    metrics: Arc<Metrics>,
    pacer: Pacer,
    shared_rect: Option<Rect>,
    /// The rectangle of the last tick, to notice desktop resizes.
    last_rect: Option<Rect>,
    paused: bool,
    /// A frame is in the encoder.
    encoder_busy: EncoderBusy,
    /// The next grab must ignore damage hints (after resume or a rect change).
    force_full: bool,
    /// The pending tick or wait for news.
    next: Option<SpawnHandle>,
    /// `next` waits for the source's news.
    awaiting_news: bool,
    failures: u32,
    /// When the current run of failed grabs began.
    failing_since: Option<Instant>,
    /// When the last `capture_failed` event was sent.
    failure_reported: Option<Instant>,
    /// The source counts as lost: retried every [`SOURCE_RETRY`].
    lost: bool,
    cursor_failures: u32,
    filter: Option<WindowFilter>,
    /// Publishes `filter` to the input path.
    filter_tx: watch::Sender<Option<WindowFilter>>,
    /// Runs alone on an arbiter of its own, which ends with it.
    own_arbiter: bool,
    /// A duplicate of the source's wake descriptor, registered with this
    /// arbiter's reactor. Only its readiness is used (the source reads the
    /// socket), so the stream type does not matter: any socket works.
    wake: Option<Arc<UnixStream>>,
}

impl CaptureActor {
    /// A capture loop over `source`, sending frames to `outputs.encoder`.
    pub fn new(
        session: String,
        source: Box<dyn CaptureSource>,
        outputs: CaptureOutputs,
        metrics: Arc<Metrics>,
        interval: Duration,
        shared_rect: Option<Rect>,
    ) -> Self {
        Self {
            session,
            source,
            encoder: outputs.encoder,
            cursor: outputs.cursor,
            notices: outputs.notices,
            events: outputs.events,
            metrics,
            pacer: Pacer::new(interval, WAKE_SETTLE, SOURCE_RETRY),
            shared_rect,
            last_rect: None,
            paused: false,
            encoder_busy: EncoderBusy::default(),
            force_full: true,
            next: None,
            awaiting_news: false,
            failures: 0,
            failing_since: None,
            failure_reported: None,
            lost: false,
            cursor_failures: 0,
            filter: None,
            filter_tx: outputs.filter,
            own_arbiter: false,
            wake: None,
        }
    }

    /// Records the filter the source was opened with (for `GetWindowFilter`).
    pub fn with_filter(mut self, filter: Option<WindowFilter>) -> Self {
        self.filter_tx.send_replace(filter.clone());
        self.filter = filter;
        self
    }

    /// The actor runs alone on an arbiter started for it: when it stops
    /// (its session closed), the arbiter's thread ends too.
    pub fn with_own_arbiter(mut self) -> Self {
        self.own_arbiter = true;
        self
    }

    /// Starts paused (a session reopened after a restart that was paused):
    /// not one frame is captured before the sharer resumes.
    pub fn with_paused(mut self, paused: bool) -> Self {
        self.paused = paused;
        self
    }

    /// Publishes the pointer relative to `rect` when it changed.
    fn sample_cursor(&mut self, rect: Rect) {
        let state = match self.source.cursor() {
            Ok(Some(state)) => state,
            Ok(None) => return,
            Err(error) => {
                self.cursor_failures += 1;
                if self.cursor_failures == 1 || self.cursor_failures % 100 == 0 {
                    tracing::warn!(session = %self.session, %error, "reading the pointer failed");
                }
                return;
            }
        };
        self.cursor_failures = 0;
        let shared = SharedCursor {
            x: state.x - rect.x as i32,
            y: state.y - rect.y as i32,
            visible: state.visible,
            shape: state.shape,
        };
        self.cursor.send_if_modified(|current| {
            if current.as_ref() == Some(&shared) {
                return false;
            }
            *current = Some(shared);
            true
        });
    }

    fn forward_window_events(&mut self) {
        let events = self.source.take_window_events();
        if !events.is_empty() {
            self.notices.do_send(CaptureNotice::Windows {
                session: self.session.clone(),
                events,
            });
        }
    }

    /// The shared rectangle clipped to the desktop; `None` when it lies
    /// wholly outside (the desktop shrank): then nothing is captured, rather
    /// than falling back to sharing the whole desktop.
    fn effective_rect(&self) -> Option<Rect> {
        let (w, h) = self.source.desktop_size();
        let desktop = Rect::new(0, 0, w, h);
        match self.shared_rect {
            Some(r) => r.intersect(&desktop),
            None => Some(desktop),
        }
    }

    /// Replaces the pending tick or wait for news with `next`.
    fn schedule(&mut self, next: Next, ctx: &mut Context<Self>) {
        if let Some(handle) = self.next.take() {
            ctx.cancel_future(handle);
        }
        self.awaiting_news = false;
        let wake = match (next, &self.wake) {
            (Next::AwaitNews, Some(wake)) => wake.clone(),
            (Next::TickAt(at), _) => {
                let wait = at.saturating_duration_since(Instant::now());
                self.next = Some(ctx.run_later(wait, |act, ctx| {
                    act.next = None;
                    act.tick(ctx);
                }));
                return;
            }
            // The pacer awaits news only from a source that can give it.
            (Next::AwaitNews, None) => {
                let at = Instant::now() + self.pacer.interval();
                return self.schedule(Next::TickAt(at), ctx);
            }
        };
        self.awaiting_news = true;
        let news = async move {
            match tokio::time::timeout(IDLE_RECHECK, wake.readable()).await {
                Ok(Ok(())) => {
                    // Forget this readiness (the next look reads everything
                    // queued); a later arrival is a new edge.
                    let _ = wake.try_io(Interest::READABLE, || {
                        Err::<(), _>(std::io::ErrorKind::WouldBlock.into())
                    });
                    Wait::News
                }
                Ok(Err(error)) => Wait::Broken(error),
                Err(_) => Wait::Recheck,
            }
        };
        self.next = Some(ctx.spawn(news.into_actor(self).map(|wait, act, ctx| {
            act.next = None;
            act.awaiting_news = false;
            match wait {
                Wait::News => act.on_news(ctx),
                // The pointer may have been warped, which raises no event.
                Wait::Recheck => act.tick(ctx),
                Wait::Broken(error) => {
                    // A descriptor that cannot be waited on would answer
                    // at once, every time: poll at the frame interval instead.
                    tracing::warn!(session = %act.session, %error, "cannot wait on the capture source any more; polling it every frame interval");
                    act.wake = None;
                    act.tick(ctx);
                }
            }
        })));
    }

    /// The source's descriptor turned readable, or a request used the
    /// source while the actor awaited news (its replies may have queued
    /// events the descriptor will not show). Readiness left over from the
    /// last tick's own replies is not news: when the source is still
    /// settled, the actor goes on waiting without a tick.
    fn on_news(&mut self, ctx: &mut Context<Self>) {
        let settled = match self.effective_rect() {
            Some(rect) => !self.paused && matches!(self.source.settled(rect), Ok(true)),
            None => false,
        };
        let next = if settled {
            Next::AwaitNews
        } else {
            Next::TickAt(self.pacer.on_news(Instant::now()))
        };
        self.schedule(next, ctx);
    }

    /// After a request used the source.
    fn used_source(&mut self, ctx: &mut Context<Self>) {
        if self.awaiting_news {
            self.on_news(ctx);
        }
    }

    fn emit_error(&self, code: ErrorCode, message: String) {
        self.events.do_send(RecordEvent(SessionEvent::Error {
            session: Some(self.session.clone()),
            code,
            message,
        }));
    }

    /// A grab failed: log and report it, and declare the source lost once
    /// it has failed for [`SOURCE_LOST_AFTER`].
    fn capture_failed(&mut self, error: &tandem_capture::CaptureError) {
        let now = Instant::now();
        self.failures += 1;
        let since = *self.failing_since.get_or_insert(now);
        // Log the first failure and then every hundredth: a broken source
        // must not flood the log at 30 frames a second.
        if self.failures == 1 || self.failures % 100 == 0 {
            tracing::warn!(session = %self.session, %error, failures = self.failures, "capture failed");
        }
        if self.failures == 1
            && self
                .failure_reported
                .is_none_or(|t| now.duration_since(t) >= CAPTURE_FAILED_EVERY)
        {
            self.failure_reported = Some(now);
            self.emit_error(
                ErrorCode::CaptureFailed,
                format!("capture from {} failed: {error}", self.source.describe()),
            );
        }
        if !self.lost && now.duration_since(since) >= SOURCE_LOST_AFTER {
            self.lost = true;
            tracing::error!(session = %self.session, %error, retry_s = SOURCE_RETRY.as_secs(), "capture source lost");
            self.emit_error(
                ErrorCode::SourceLost,
                format!(
                    "the capture source {} is lost ({error}); attendees keep the last picture, retrying every {} s",
                    self.source.describe(),
                    SOURCE_RETRY.as_secs()
                ),
            );
        }
    }

    /// A grab succeeded: end a run of failures.
    fn capture_succeeded(&mut self) {
        if self.failures > 0 {
            tracing::info!(session = %self.session, failures = self.failures, "capture works again");
        }
        self.failures = 0;
        self.failing_since = None;
        self.lost = false;
    }

    /// Looks at the source, grabs what changed, and schedules the next look.
    fn tick(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        let state = self.look();
        if state == AfterTick::Settled && self.wake.is_some() {
            self.metrics.capture_sleeps.inc();
        }
        let next = self.pacer.after_tick(now, state, self.wake.is_some());
        self.schedule(next, ctx);
    }

    /// One tick's work: what it left behind.
    fn look(&mut self) -> AfterTick {
        let Some(rect) = self.effective_rect() else {
            return AfterTick::Busy;
        };
        if self.paused {
            // Keep reading the source's events (an X server queues damage
            // and window events for us): what piles up while paused is
            // folded into a bounded damage list, not an unbounded queue.
            let _ = self.source.poll_damage(rect);
            self.forward_window_events();
            return AfterTick::Settled;
        }
        // A request that changes what is shared (rectangle, filter, resume)
        // grabs at once, so that its frame is queued before the request is
        // answered; one such frame may wait behind the one in the encoder.
        let in_flight = self.encoder_busy.in_flight();
        if in_flight >= MAX_FRAMES_IN_FLIGHT || (in_flight > 0 && !self.force_full) {
            return AfterTick::Busy;
        }
        if self.last_rect.is_some_and(|last| last != rect) && self.shared_rect.is_none() {
            // The whole desktop is shared and it was resized.
            self.notices.do_send(CaptureNotice::RectChanged {
                session: self.session.clone(),
                rect,
            });
        }
        self.last_rect = Some(rect);
        self.sample_cursor(rect);
        let changed = self.force_full || self.source.poll_damage(rect).unwrap_or(true);
        self.forward_window_events();
        if changed {
            self.grab(rect);
        } else {
            self.metrics.idle_ticks.inc();
        }
        if self.lost {
            AfterTick::Lost
        } else if matches!(self.source.settled(rect), Ok(true)) {
            AfterTick::Settled
        } else {
            AfterTick::Busy
        }
    }

    /// Grabs `rect`'s changes and hands them to the encoder.
    fn grab(&mut self, rect: Rect) {
        if self.force_full {
            self.source.invalidate();
        }
        let start = Instant::now();
        let mut captured = match self.source.capture(rect) {
            Ok(c) => c,
            Err(error) => {
                self.capture_failed(&error);
                return;
            }
        };
        self.capture_succeeded();
        if std::mem::take(&mut self.force_full) {
            captured.damage = None;
        }
        self.metrics.frames_captured.inc();
        self.metrics
            .capture_seconds
            .observe(start.elapsed().as_secs_f64());
        self.encoder.do_send(FrameCaptured {
            captured,
            captured_at: start,
            busy: Some(self.encoder_busy.ticket()),
        });
    }
}

impl Actor for CaptureActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::info!(session = %self.session, source = %self.source.describe(), interval_ms = self.pacer.interval().as_millis() as u64, "capture started");
        if let Some(fd) = self.source.wake_fd() {
            let watched = fd
                .try_clone_to_owned()
                .map(std::os::unix::net::UnixStream::from)
                .and_then(UnixStream::from_std);
            match watched {
                Ok(stream) => self.wake = Some(Arc::new(stream)),
                Err(error) => {
                    tracing::warn!(session = %self.session, %error, "cannot watch the capture source; polling it every frame interval");
                }
            }
        }
        self.tick(ctx);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        tracing::info!(session = %self.session, "capture stopped");
        if self.own_arbiter {
            Arbiter::current().stop();
        }
    }
}

/// Pause (`true`) or resume (`false`) capture. Resume forces a full
/// comparison. Answered once the encoder has published every frame grabbed
/// before (and, on resume, the one grabbed at once).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct SetPaused(pub bool);

impl Handler<SetPaused> for CaptureActor {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, SetPaused(paused): SetPaused, ctx: &mut Self::Context) -> Self::Result {
        if self.paused && !paused {
            self.force_full = true;
            self.paused = false;
            self.tick(ctx);
        }
        self.paused = paused;
        // Paused: every frame grabbed before is published by the answer, so
        // the pause is announced after the last of them.
        self.after_published(())
    }
}

/// Change the shared rectangle (`None`: the whole desktop). Answers the
/// effective rectangle after clipping to the desktop; a rectangle wholly
/// outside the desktop is refused and the shared rectangle stays as it was.
#[derive(Message, Debug)]
#[rtype(result = "Result<Rect, NodeError>")]
pub struct SetCaptureRect(pub Option<Rect>);

impl Handler<SetCaptureRect> for CaptureActor {
    type Result = ResponseFuture<Result<Rect, NodeError>>;
    fn handle(
        &mut self,
        SetCaptureRect(rect): SetCaptureRect,
        ctx: &mut Self::Context,
    ) -> Self::Result {
        let answer = self.set_rect(rect, ctx);
        self.after_published(answer)
    }
}

impl CaptureActor {
    fn set_rect(&mut self, rect: Option<Rect>, ctx: &mut Context<Self>) -> Result<Rect, NodeError> {
        let (w, h) = self.source.desktop_size();
        if let Some(r) = rect {
            // Where the desktop ends is its current state: a conflict, not
            // a malformed request.
            if r.intersect(&Rect::new(0, 0, w, h)).is_none() {
                return Err(NodeError::Conflict(format!(
                    "the shared rectangle {}x{} at ({}, {}) lies outside the {w}x{h} desktop",
                    r.width, r.height, r.x, r.y
                )));
            }
        }
        let previous = std::mem::replace(&mut self.shared_rect, rect);
        let Some(effective) = self.effective_rect() else {
            self.shared_rect = previous;
            return Err(NodeError::Conflict(
                "the shared rectangle lies outside the desktop".into(),
            ));
        };
        self.force_full = true;
        self.last_rect = Some(effective);
        if !self.paused {
            self.tick(ctx);
        }
        Ok(effective)
    }

    /// Answers `answer` once the encoder has handled every frame queued so
    /// far (the one a request just grabbed is published).
    fn after_published<T: 'static>(&self, answer: T) -> ResponseFuture<T> {
        let encoder = self.encoder.clone();
        Box::pin(async move {
            // A stopped encoder has nothing left to publish.
            let _ = encoder.send(Barrier).await;
            answer
        })
    }
}

/// Change the frame interval.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct SetFrameInterval(pub Duration);

impl Handler<SetFrameInterval> for CaptureActor {
    type Result = ();
    fn handle(&mut self, SetFrameInterval(interval): SetFrameInterval, ctx: &mut Self::Context) {
        self.pacer.set_interval(interval);
        if !self.awaiting_news {
            self.schedule(Next::TickAt(Instant::now() + interval), ctx);
        }
    }
}

/// The rectangle currently shared (`None`: it lies outside the desktop, so
/// nothing is captured).
#[derive(Message, Debug)]
#[rtype(result = "Option<Rect>")]
pub struct GetSharedRect;

impl Handler<GetSharedRect> for CaptureActor {
    type Result = MessageResult<GetSharedRect>;
    fn handle(&mut self, _: GetSharedRect, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.effective_rect())
    }
}

/// Stop capturing for good (the session closed).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct StopCapture;

impl Handler<StopCapture> for CaptureActor {
    type Result = ();
    fn handle(&mut self, _: StopCapture, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

/// The desktop's top-level windows.
#[derive(Message, Debug)]
#[rtype(result = "Result<Vec<WindowInfo>, NodeError>")]
pub struct ListWindows;

impl Handler<ListWindows> for CaptureActor {
    type Result = Result<Vec<WindowInfo>, NodeError>;
    fn handle(&mut self, _: ListWindows, ctx: &mut Self::Context) -> Self::Result {
        let windows = self.source.windows().map_err(request_error);
        self.forward_window_events();
        self.used_source(ctx);
        windows
    }
}

/// The desktop's monitors.
#[derive(Message, Debug)]
#[rtype(result = "Result<Vec<Monitor>, NodeError>")]
pub struct ListMonitors;

impl Handler<ListMonitors> for CaptureActor {
    type Result = Result<Vec<Monitor>, NodeError>;
    fn handle(&mut self, _: ListMonitors, ctx: &mut Self::Context) -> Self::Result {
        let monitors = self.source.monitors().map_err(request_error);
        self.used_source(ctx);
        monitors
    }
}

/// Share only what the filter names (`None`: everything). The next frame
/// is compared in full.
#[derive(Message, Debug)]
#[rtype(result = "Result<(), NodeError>")]
pub struct SetWindowFilter(pub Option<WindowFilter>);

impl Handler<SetWindowFilter> for CaptureActor {
    type Result = ResponseFuture<Result<(), NodeError>>;
    fn handle(
        &mut self,
        SetWindowFilter(filter): SetWindowFilter,
        ctx: &mut Self::Context,
    ) -> Self::Result {
        let answer = self.set_filter(filter, ctx);
        self.after_published(answer)
    }
}

impl CaptureActor {
    fn set_filter(
        &mut self,
        filter: Option<WindowFilter>,
        ctx: &mut Context<Self>,
    ) -> Result<(), NodeError> {
        self.source
            .set_filter(filter.clone())
            .map_err(request_error)?;
        // Published before the answer: a click right after the call is
        // judged with the new filter.
        self.filter_tx.send_replace(filter.clone());
        self.filter = filter;
        self.force_full = true;
        if !self.paused {
            self.tick(ctx);
        }
        Ok(())
    }
}

/// A source's refusal of a request is the caller's error, not the node's:
/// malformed (422), or asking what this kind of source cannot do (409).
fn request_error(error: tandem_capture::CaptureError) -> NodeError {
    use tandem_capture::CaptureError;
    match error {
        CaptureError::Invalid { detail } => NodeError::Invalid(detail),
        e @ CaptureError::Unsupported { .. } => NodeError::Conflict(e.to_string()),
        other => NodeError::Capture(other),
    }
}

/// The window filter in effect (`None`: everything is shared).
#[derive(Message, Debug)]
#[rtype(result = "Option<WindowFilter>")]
pub struct GetWindowFilter;

impl Handler<GetWindowFilter> for CaptureActor {
    type Result = Option<WindowFilter>;
    fn handle(&mut self, _: GetWindowFilter, _: &mut Self::Context) -> Self::Result {
        self.filter.clone()
    }
}
