//! The CaptureActor: grabs the shared rectangle of one sharing session's
//! source every frame interval and hands frames to the EncoderActor.
//!
//! It runs on an arbiter of its own because a grab blocks. It never has more
//! than one frame waiting in the encoder: a tick that finds the previous frame
//! still being encoded is skipped, so a slow encoder lowers the frame rate
//! instead of growing a queue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tandem_capture::{CaptureSource, Rect};

use crate::encoder_actor::{EncoderActor, FrameCaptured};
use crate::error::NodeError;
use crate::metrics::Metrics;

/// The actor.
pub struct CaptureActor {
    session: String,
    source: Box<dyn CaptureSource>,
    encoder: Addr<EncoderActor>,
    metrics: Arc<Metrics>,
    interval: Duration,
    shared_rect: Option<Rect>,
    paused: bool,
    in_flight: bool,
    /// The next grab must ignore damage hints (after resume or a rect change).
    force_full: bool,
    timer: Option<SpawnHandle>,
    failures: u32,
}

impl CaptureActor {
    /// A capture loop over `source`, sending frames to `encoder`.
    pub fn new(
        session: String,
        source: Box<dyn CaptureSource>,
        encoder: Addr<EncoderActor>,
        metrics: Arc<Metrics>,
        interval: Duration,
        shared_rect: Option<Rect>,
    ) -> Self {
        Self {
            session,
            source,
            encoder,
            metrics,
            interval,
            shared_rect,
            paused: false,
            in_flight: false,
            force_full: true,
            timer: None,
            failures: 0,
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

    fn restart_timer(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.timer.take() {
            ctx.cancel_future(handle);
        }
        self.timer = Some(ctx.run_interval(self.interval, |act, ctx| act.tick(ctx)));
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.paused || self.in_flight {
            return;
        }
        let Some(rect) = self.effective_rect() else {
            return;
        };
        let start = Instant::now();
        let mut captured = match self.source.capture(rect) {
            Ok(c) => c,
            Err(error) => {
                self.failures += 1;
                // Log the first failure and then every hundredth: a broken source
                // must not flood the log at 30 frames a second.
                if self.failures == 1 || self.failures % 100 == 0 {
                    tracing::warn!(session = %self.session, %error, failures = self.failures, "capture failed");
                }
                return;
            }
        };
        self.failures = 0;
        if std::mem::take(&mut self.force_full) {
            captured.damage = None;
        }
        self.metrics.frames_captured.inc();
        self.metrics
            .capture_seconds
            .observe(start.elapsed().as_secs_f64());
        self.in_flight = true;
        self.encoder
            .send(FrameCaptured {
                captured,
                captured_at: start,
            })
            .into_actor(self)
            .map(|_, act, _| act.in_flight = false)
            .spawn(ctx);
    }
}

impl Actor for CaptureActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::info!(session = %self.session, source = %self.source.describe(), interval_ms = self.interval.as_millis() as u64, "capture started");
        self.tick(ctx);
        self.restart_timer(ctx);
    }
}

/// Pause (`true`) or resume (`false`) capture. Resume forces a full comparison.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct SetPaused(pub bool);

impl Handler<SetPaused> for CaptureActor {
    type Result = ();
    fn handle(&mut self, SetPaused(paused): SetPaused, ctx: &mut Self::Context) {
        if self.paused && !paused {
            self.force_full = true;
            self.paused = false;
            self.tick(ctx);
        }
        self.paused = paused;
    }
}

/// Change the shared rectangle (`None`: the whole desktop). Answers the
/// effective rectangle after clipping to the desktop; a rectangle wholly
/// outside the desktop is refused and the shared rectangle stays as it was.
#[derive(Message, Debug)]
#[rtype(result = "Result<Rect, NodeError>")]
pub struct SetCaptureRect(pub Option<Rect>);

impl Handler<SetCaptureRect> for CaptureActor {
    type Result = Result<Rect, NodeError>;
    fn handle(
        &mut self,
        SetCaptureRect(rect): SetCaptureRect,
        ctx: &mut Self::Context,
    ) -> Self::Result {
        let (w, h) = self.source.desktop_size();
        if let Some(r) = rect {
            if r.intersect(&Rect::new(0, 0, w, h)).is_none() {
                return Err(NodeError::Invalid(format!(
                    "the shared rectangle {}x{} at ({}, {}) lies outside the {w}x{h} desktop",
                    r.width, r.height, r.x, r.y
                )));
            }
        }
        let previous = std::mem::replace(&mut self.shared_rect, rect);
        let Some(effective) = self.effective_rect() else {
            self.shared_rect = previous;
            return Err(NodeError::Invalid(
                "the shared rectangle lies outside the desktop".into(),
            ));
        };
        self.force_full = true;
        if !self.paused {
            self.tick(ctx);
        }
        Ok(effective)
    }
}

/// Change the frame interval.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct SetFrameInterval(pub Duration);

impl Handler<SetFrameInterval> for CaptureActor {
    type Result = ();
    fn handle(&mut self, SetFrameInterval(interval): SetFrameInterval, ctx: &mut Self::Context) {
        self.interval = interval;
        self.restart_timer(ctx);
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
