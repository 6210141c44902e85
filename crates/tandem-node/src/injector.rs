//! A session's input injection, off the AttendeeManager's thread.
//!
//! Injecting into X (XTEST, and the round trips that confine keys and
//! buttons, [`tandem_capture::confine`]) blocks while the X server does not
//! answer. Done by the manager itself, a stalled X server froze every join
//! and admin call. Each session's [`Injector`] owns its sink and probe on a
//! thread of its own behind a bounded queue: the manager only enqueues.
//!
//! - At most [`INPUT_QUEUE`] events wait; past that an event is dropped and
//!   counted (`tandem_input_events_total{result="overflow"}`): input that
//!   waited seconds behind a stalled server is stale anyway. A dropped
//!   *release* queues a release of everything instead, so no key or button
//!   stays down.
//! - `release_all` is always queued, after the events before it (order is
//!   kept: one FIFO per session, so per attendee too); consecutive ones
//!   coalesce, so at most one waits per queued event.
//! - The thread judges each event with the filter in effect when it is
//!   injected and the shared rectangle of when it was queued, gathers the
//!   facts the judgement needs from the probe, injects, and counts
//!   `accepted`, `dropped` (confined) or `failed`.
//! - Keys and buttons it injected are reported back (the manager shows them
//!   as the attendee's held input); a report queued before a later
//!   `release_all` carries an older epoch and is ignored.
//! - Dropping the injector closes its queue: the thread injects what is
//!   queued and ends. A thread stuck in a stalled server stays stuck, alone.
//!   A node shutting down waits a bounded time ([`Idle::wait`]) for the
//!   releases it queued, so no key stays down on the desktop after it.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tandem_capture::confine::{self, Share, Verdict};
use tandem_capture::{DesktopProbe, InputSink, Rect, WindowFilter};
use tandem_proto::InputEvent;
use tokio::sync::watch;

use crate::metrics::Metrics;

/// Most input events waiting per session (a few seconds of pointer motion).
pub const INPUT_QUEUE: usize = 256;

/// A key or button press (or release) the injector delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    /// Whose.
    pub attendee: u64,
    /// What (keys and buttons only).
    pub event: InputEvent,
    /// The release epoch it was queued in (see [`Injector::epoch`]).
    pub epoch: u64,
}

/// Where the injector reports what it delivered.
pub type Reports = Box<dyn Fn(Applied) + Send>;

enum Job {
    Event {
        attendee: u64,
        event: InputEvent,
        rect: Rect,
        epoch: u64,
    },
    ReleaseAll,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Events among `jobs`.
    events: usize,
    /// Releases queued so far.
    epoch: u64,
    /// The thread is injecting a job it took.
    busy: bool,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when a job is queued or the queue closed.
    ready: Condvar,
    /// Signalled when the thread finished a job.
    done: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The queue is consistent after every push and pop.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the injecting thread owns.
struct Worker {
    session: String,
    sink: Box<dyn InputSink>,
    probe: Option<Box<dyn DesktopProbe>>,
    filter: watch::Receiver<Option<WindowFilter>>,
    metrics: Arc<Metrics>,
    reports: Reports,
}

/// The manager's handle on a session's injecting thread.
pub struct Injector {
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
}

impl Injector {
    /// Starts the thread for `session`: `sink` receives the input, `probe`
    /// (none for a desktop without windows of its own) answers where the
    /// pointer and focus are, `filter` is the session's window filter.
    pub fn start(
        session: &str,
        sink: Box<dyn InputSink>,
        probe: Option<Box<dyn DesktopProbe>>,
        filter: watch::Receiver<Option<WindowFilter>>,
        metrics: Arc<Metrics>,
        reports: Reports,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            done: Condvar::new(),
        });
        let mut worker = Worker {
            session: session.to_owned(),
            sink,
            probe,
            filter,
            metrics: metrics.clone(),
            reports,
        };
        let queue = shared.clone();
        std::thread::Builder::new()
            .name("tandem-input".into())
            .spawn(move || worker.run(&queue))?;
        Ok(Self { shared, metrics })
    }

    /// Queues `event` of `attendee` (positions relative to `rect`, the
    /// shared rectangle now); `false` when the queue is full and it was
    /// dropped.
    pub fn inject(&self, attendee: u64, event: InputEvent, rect: Rect) -> bool {
        let mut q = self.shared.lock();
        if q.events >= INPUT_QUEUE {
            let release = matches!(
                event,
                InputEvent::Key { pressed: false, .. }
                    | InputEvent::MouseButton { pressed: false, .. }
            );
            if release {
                // Its press may have gone in: release everything instead.
                Self::push_release(&mut q);
                self.shared.ready.notify_one();
            }
            drop(q);
            self.metrics
                .input_events
                .with_label_values(&["overflow"])
                .inc();
            return false;
        }
        let epoch = q.epoch;
        q.jobs.push_back(Job::Event {
            attendee,
            event,
            rect,
            epoch,
        });
        q.events += 1;
        self.shared.ready.notify_one();
        true
    }

    /// Queues the release of every key and button held, after what is
    /// queued already.
    pub fn release_all(&self) {
        let mut q = self.shared.lock();
        Self::push_release(&mut q);
        self.shared.ready.notify_one();
    }

    /// Releases queued so far: a report of an older epoch is of input
    /// released since.
    pub fn epoch(&self) -> u64 {
        self.shared.lock().epoch
    }

    /// Events waiting now.
    pub fn queued(&self) -> usize {
        self.shared.lock().events
    }

    /// A handle to wait, off the manager's thread, until what is queued now
    /// has been injected.
    pub fn idle(&self) -> Idle {
        Idle(self.shared.clone())
    }

    fn push_release(q: &mut Queue) {
        q.epoch += 1;
        if !matches!(q.jobs.back(), Some(Job::ReleaseAll)) {
            q.jobs.push_back(Job::ReleaseAll);
        }
    }
}

/// Waits for an injector's queue to drain (see [`Injector::idle`]).
pub struct Idle(Arc<Shared>);

impl Idle {
    /// Blocks until nothing is queued or being injected, or `deadline`;
    /// whether the queue drained.
    pub fn wait(&self, deadline: Instant) -> bool {
        let mut q = self.0.lock();
        while q.busy || !q.jobs.is_empty() {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            q = self
                .0
                .done
                .wait_timeout(q, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

impl Drop for Injector {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_one();
    }
}

impl Worker {
    fn run(&mut self, shared: &Shared) {
        loop {
            let job = {
                let mut q = shared.lock();
                loop {
                    if let Some(job) = q.jobs.pop_front() {
                        if matches!(job, Job::Event { .. }) {
                            q.events -= 1;
                        }
                        q.busy = true;
                        break job;
                    }
                    if q.closed {
                        tracing::debug!(session = %self.session, "input thread ends");
                        return;
                    }
                    q = shared.ready.wait(q).unwrap_or_else(PoisonError::into_inner);
                }
            };
            match job {
                Job::Event {
                    attendee,
                    event,
                    rect,
                    epoch,
                } => self.inject(attendee, &event, rect, epoch),
                Job::ReleaseAll => {
                    if let Err(error) = self.sink.release_all() {
                        tracing::warn!(session = %self.session, %error, "releasing keys and buttons failed");
                    }
                }
            }
            shared.lock().busy = false;
            shared.done.notify_all();
        }
    }

    fn count(&self, result: &str) {
        self.metrics.input_events.with_label_values(&[result]).inc();
    }

    fn inject(&mut self, attendee: u64, event: &InputEvent, rect: Rect, epoch: u64) {
        // A clone: the capture actor must never wait on this thread's X calls.
        let filter = self.filter.borrow().clone();
        let share = Share {
            rect,
            filter: filter.as_ref(),
        };
        let facts = match self.probe.as_mut() {
            None => None,
            Some(probe) => match confine::gather(probe.as_mut(), event, &share) {
                Ok(facts) => Some(facts),
                Err(error) => {
                    // Not knowing where the pointer is, the event is not let through.
                    self.count("failed");
                    tracing::warn!(attendee, %error, "reading the pointer and focus failed");
                    return;
                }
            },
        };
        let event = match confine::judge(event, &share, facts.as_ref()) {
            Verdict::Deliver(event) => event,
            Verdict::Drop(why) => {
                self.count("dropped");
                tracing::debug!(attendee, ?event, why = why.as_str(), "input dropped");
                return;
            }
        };
        match self.sink.inject(&event) {
            Ok(()) => {
                self.count("accepted");
                if matches!(
                    event,
                    InputEvent::Key { .. } | InputEvent::MouseButton { .. }
                ) {
                    (self.reports)(Applied {
                        attendee,
                        event,
                        epoch,
                    });
                }
            }
            Err(error) => {
                self.count("failed");
                tracing::warn!(attendee, %error, "input injection failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use tandem_capture::confine::{Focus, PointerFacts, Under};
    use tandem_capture::{CaptureError, MouseButton, RecordingSink};

    use super::*;

    /// Records like a [`RecordingSink`], but the first injection waits
    /// until the test opens the gate (an X server that stopped answering).
    struct Stalled {
        inner: RecordingSink,
        entered: mpsc::Sender<()>,
        gate: Option<mpsc::Receiver<()>>,
    }

    impl InputSink for Stalled {
        fn inject(&mut self, event: &InputEvent) -> Result<(), CaptureError> {
            if let Some(gate) = self.gate.take() {
                let _ = self.entered.send(());
                let _ = gate.recv();
            }
            self.inner.inject(event)
        }

        fn release_all(&mut self) -> Result<(), CaptureError> {
            self.inner.release_all()
        }
    }

    fn key(keysym: u32, pressed: bool) -> InputEvent {
        InputEvent::Key { keysym, pressed }
    }

    fn counted(metrics: &Metrics, result: &str) -> u64 {
        metrics.input_events.with_label_values(&[result]).get()
    }

    const RECT: Rect = Rect {
        x: 10,
        y: 20,
        width: 100,
        height: 100,
    };

    #[test]
    fn a_stalled_sink_fills_the_queue_then_drops_and_releases_come_last_in_order() {
        let recorder = RecordingSink::new();
        let (entered_tx, entered) = mpsc::channel();
        let (open, gate) = mpsc::channel();
        let metrics = Arc::new(Metrics::new());
        let reported = Arc::new(Mutex::new(Vec::new()));
        let (_filter_tx, filter) = watch::channel(None);
        let injector = Injector::start(
            "s",
            Box::new(Stalled {
                inner: recorder.clone(),
                entered: entered_tx,
                gate: Some(gate),
            }),
            None,
            filter,
            metrics.clone(),
            Box::new({
                let reported = reported.clone();
                move |a| reported.lock().unwrap().push(a)
            }),
        )
        .unwrap();

        // The first press reaches the sink and stalls there.
        assert!(injector.inject(1, key(0xffe1, true), RECT));
        entered.recv().unwrap();
        // The queue takes INPUT_QUEUE events behind it, then refuses.
        let script: Vec<InputEvent> = (0..INPUT_QUEUE as u32)
            .map(|i| InputEvent::MouseMove { x: i % 100, y: 1 })
            .collect();
        for e in &script {
            assert!(injector.inject(2, *e, RECT));
        }
        assert_eq!(injector.queued(), INPUT_QUEUE);
        assert!(!injector.inject(2, key(0x61, true), RECT), "full: dropped");
        assert_eq!(counted(&metrics, "overflow"), 1);
        // A release always goes in, after what is queued.
        injector.release_all();
        injector.release_all();
        assert_eq!(injector.epoch(), 2);

        // Stalled: a shutdown's wait gives up at its deadline.
        assert!(!injector.idle().wait(Instant::now()));
        open.send(()).unwrap();
        // The thread injects what is queued, the release last.
        assert!(injector
            .idle()
            .wait(Instant::now() + std::time::Duration::from_secs(30)));
        let events = recorder.events();
        assert_eq!(events[0], key(0xffe1, true));
        let moved: Vec<InputEvent> = script
            .iter()
            .map(|e| match *e {
                InputEvent::MouseMove { x, y } => InputEvent::MouseMove {
                    x: x + RECT.x,
                    y: y + RECT.y,
                },
                other => other,
            })
            .collect();
        assert_eq!(&events[1..=INPUT_QUEUE], &moved[..], "in order, offset");
        assert_eq!(
            &events[INPUT_QUEUE + 1..],
            &[key(0xffe1, false)],
            "one release of what was held"
        );
        assert_eq!(counted(&metrics, "accepted"), 1 + INPUT_QUEUE as u64);
        assert_eq!(
            *reported.lock().unwrap(),
            [Applied {
                attendee: 1,
                event: key(0xffe1, true),
                epoch: 0
            }]
        );
    }

    #[test]
    fn a_release_that_does_not_fit_releases_everything() {
        let recorder = RecordingSink::new();
        let (entered_tx, entered) = mpsc::channel();
        let (open, gate) = mpsc::channel();
        let metrics = Arc::new(Metrics::new());
        let (_filter_tx, filter) = watch::channel(None);
        let injector = Injector::start(
            "s",
            Box::new(Stalled {
                inner: recorder.clone(),
                entered: entered_tx,
                gate: Some(gate),
            }),
            None,
            filter,
            metrics.clone(),
            Box::new(|_| {}),
        )
        .unwrap();
        assert!(injector.inject(1, key(0x62, true), RECT));
        entered.recv().unwrap();
        for _ in 0..INPUT_QUEUE {
            assert!(injector.inject(1, InputEvent::MouseMove { x: 1, y: 1 }, RECT));
        }
        assert!(!injector.inject(1, key(0x62, false), RECT));
        assert_eq!(injector.epoch(), 1, "a release of everything is queued");
        open.send(()).unwrap();
        let idle = injector.idle();
        // Closed: the thread still injects what is queued, then ends.
        drop(injector);
        assert!(idle.wait(Instant::now() + std::time::Duration::from_secs(30)));
        assert_eq!(recorder.events().len(), 1 + INPUT_QUEUE + 1);
        assert_eq!(recorder.events().last(), Some(&key(0x62, false)));
        assert!(recorder.pressed_keys().is_empty());
    }

    /// A desktop whose pointer and focus the test sets.
    #[derive(Clone)]
    struct Desk(Arc<Mutex<(PointerFacts, Focus)>>);

    impl DesktopProbe for Desk {
        fn pointer(&mut self, window: bool) -> Result<PointerFacts, CaptureError> {
            let mut p = self.0.lock().unwrap().0.clone();
            if !window {
                p.under = Under::Unknown;
            }
            Ok(p)
        }

        fn focus(&mut self) -> Result<Focus, CaptureError> {
            Ok(self.0.lock().unwrap().1.clone())
        }
    }

    #[test]
    fn presses_are_judged_with_the_filter_in_effect_and_counted_when_dropped() {
        let recorder = RecordingSink::new();
        let metrics = Arc::new(Metrics::new());
        let shown = tandem_capture::WindowInfo {
            id: 7,
            x: 0,
            y: 0,
            width: 50,
            height: 50,
            instance: "a".into(),
            class: "A".into(),
            pid: None,
            title: String::new(),
            override_redirect: false,
        };
        let hidden = tandem_capture::WindowInfo {
            id: 8,
            ..shown.clone()
        };
        let desk = Desk(Arc::new(Mutex::new((
            PointerFacts {
                position: Some((30, 30)),
                under: Under::Window(hidden.clone()),
            },
            Focus::Window(hidden.clone()),
        ))));
        let (filter_tx, filter) = watch::channel(None);
        let injector = Injector::start(
            "s",
            Box::new(recorder.clone()),
            Some(Box::new(desk.clone())),
            filter,
            metrics.clone(),
            Box::new(|_| {}),
        )
        .unwrap();
        let click = InputEvent::MouseButton {
            button: MouseButton::Left,
            pressed: true,
        };
        // No filter: over any window inside the rectangle.
        injector.inject(1, click, RECT);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while counted(&metrics, "accepted") < 1 {
            assert!(std::time::Instant::now() < deadline);
            std::thread::yield_now();
        }
        filter_tx.send_replace(Some(WindowFilter {
            windows: vec![7],
            ..Default::default()
        }));
        injector.inject(1, click, RECT); // over the hidden window
        injector.inject(1, key(0x61, true), RECT); // focus on it
        while counted(&metrics, "accepted") + counted(&metrics, "dropped") < 3 {
            assert!(std::time::Instant::now() < deadline);
            std::thread::yield_now();
        }
        {
            let mut d = desk.0.lock().unwrap();
            d.0.under = Under::Window(shown.clone());
            d.1 = Focus::Window(shown);
        }
        injector.inject(1, key(0x63, true), RECT);
        drop(injector);
        while counted(&metrics, "accepted") + counted(&metrics, "dropped") < 4 {
            assert!(std::time::Instant::now() < deadline);
            std::thread::yield_now();
        }
        assert_eq!(recorder.events(), [click, key(0x63, true)]);
        assert_eq!(counted(&metrics, "dropped"), 2);
    }
}
