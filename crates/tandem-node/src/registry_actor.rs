//! The SessionRegistry actor: the only actor that touches the sled registry.
//!
//! It runs on a one-thread `SyncArbiter` because sled flushes block. Writes
//! that must survive a crash are flushed by `tandem-registry` before the
//! reply is sent, so a caller that got `Ok` may acknowledge to its own caller.
//! Events are appended to the log (not flushed one by one), then broadcast.
//! A failed write is reported here, in one place, as an `error` event
//! (`registry_write_failed`) besides the error returned to the caller.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use tandem_registry::{
    AttendeeFilter, AttendeeRecord, EventRecord, InvitationRecord, NewEvent, Registry,
    RegistryError, SessionFilterRecord, SessionRecord,
};

use crate::clock::now_ms;
use crate::events::{ErrorCode, EventBus, LoggedEvent, SessionEvent};
use crate::metrics::Metrics;

/// The actor.
pub struct SessionRegistry {
    registry: Registry,
    metrics: Arc<Metrics>,
    bus: EventBus,
}

impl SessionRegistry {
    /// Wraps an opened registry.
    pub fn new(registry: Registry, metrics: Arc<Metrics>, bus: EventBus) -> Self {
        Self {
            registry,
            metrics,
            bus,
        }
    }

    fn timed<R>(&self, op: &'static str, f: impl FnOnce(&Registry) -> R) -> R {
        let start = Instant::now();
        let result = f(&self.registry);
        self.metrics.registry_ops.with_label_values(&[op]).inc();
        self.metrics
            .registry_seconds
            .with_label_values(&[op])
            .observe(start.elapsed().as_secs_f64());
        result
    }

    /// Logs and counts an event (the metrics of every event, and of errors
    /// by code).
    fn observe(&self, event: &SessionEvent) {
        let kind = event.kind();
        tracing::info!(
            kind,
            session = event.session().unwrap_or(""),
            attendee = event.attendee(),
            detail = ?event,
            "session event"
        );
        self.metrics.events.with_label_values(&[kind]).inc();
        if let SessionEvent::Error { code, .. } = event {
            self.metrics
                .errors
                .with_label_values(&[code.as_str()])
                .inc();
        }
    }

    /// A write that failed becomes an `error` event. It is streamed and
    /// counted but not appended: the store just failed, and appending could
    /// fail again and report itself without end.
    fn write_failed(&self, what: &str, session: Option<&str>, error: &RegistryError) {
        tracing::warn!(%error, what, "registry write failed");
        let event = SessionEvent::Error {
            session: session.map(str::to_owned),
            code: ErrorCode::RegistryWriteFailed,
            message: format!("writing {what} to the registry failed: {error}"),
        };
        self.observe(&event);
        self.bus.publish(LoggedEvent {
            seq: 0,
            at_ms: now_ms(),
            event,
        });
    }
}

impl Actor for SessionRegistry {
    type Context = SyncContext<Self>;
}

/// A durable write: answered only once it is flushed.
#[derive(Message, Debug)]
#[rtype(result = "Result<(), RegistryError>")]
pub enum Persist {
    /// A sharing session's record.
    Session(SessionRecord),
    /// An invitation's record.
    Invitation(InvitationRecord),
    /// An attendee's record (live or history).
    Attendee(AttendeeRecord),
    /// A session's window filter as the sharer set it (`None`: cleared).
    SessionFilter(String, Option<SessionFilterRecord>),
}

impl Handler<Persist> for SessionRegistry {
    type Result = Result<(), RegistryError>;
    fn handle(&mut self, msg: Persist, _: &mut Self::Context) -> Self::Result {
        let (what, session, result) = match &msg {
            Persist::Session(s) => (
                "a session record",
                &s.id,
                self.timed("put_session", |r| r.put_session(s)),
            ),
            Persist::Invitation(i) => (
                "an invitation record",
                &i.session_id,
                self.timed("put_invitation", |r| r.put_invitation(i)),
            ),
            Persist::Attendee(a) => (
                "an attendee record",
                &a.session_id,
                self.timed("put_attendee", |r| r.put_attendee(a)),
            ),
            Persist::SessionFilter(id, f) => (
                "a session's window filter",
                id,
                self.timed("put_session_filter", |r| {
                    r.put_session_filter(id, f.as_ref())
                }),
            ),
        };
        if let Err(error) = &result {
            self.write_failed(what, Some(session), error);
        }
        result
    }
}

/// Logs, stores and broadcasts one event.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct RecordEvent(pub SessionEvent);

impl Handler<RecordEvent> for SessionRegistry {
    type Result = ();
    fn handle(&mut self, RecordEvent(event): RecordEvent, _: &mut Self::Context) {
        let at_ms = now_ms();
        let kind = event.kind();
        self.observe(&event);
        let detail = serde_json::to_string(&event).unwrap_or_default();
        let new = NewEvent {
            at_ms,
            session_id: event.session().map(str::to_owned),
            attendee_id: event.attendee(),
            kind: kind.to_owned(),
            detail,
        };
        let seq = match self.timed("append_event", |r| r.append_event(&new, false)) {
            Ok(seq) => seq,
            Err(error) => {
                self.write_failed(&format!("a {kind} event"), event.session(), &error);
                0
            }
        };
        self.bus.publish(LoggedEvent { seq, at_ms, event });
    }
}

/// Attendee records.
#[derive(Message, Debug)]
#[rtype(result = "Result<Vec<AttendeeRecord>, RegistryError>")]
pub struct ListAttendeeRecords(pub AttendeeFilter);

impl Handler<ListAttendeeRecords> for SessionRegistry {
    type Result = Result<Vec<AttendeeRecord>, RegistryError>;
    fn handle(&mut self, msg: ListAttendeeRecords, _: &mut Self::Context) -> Self::Result {
        self.timed("list_attendees", |r| r.attendees(msg.0))
    }
}

/// The most recent events, oldest first.
#[derive(Message, Debug)]
#[rtype(result = "Result<Vec<EventRecord>, RegistryError>")]
pub struct RecentEvents {
    /// At most this many.
    pub limit: usize,
}

impl Handler<RecentEvents> for SessionRegistry {
    type Result = Result<Vec<EventRecord>, RegistryError>;
    fn handle(&mut self, msg: RecentEvents, _: &mut Self::Context) -> Self::Result {
        self.timed("recent_events", |r| r.recent_events(msg.limit))
    }
}

/// A fresh attendee id, never reused across restarts.
#[derive(Message, Debug)]
#[rtype(result = "Result<u64, RegistryError>")]
pub struct NextAttendeeId;

impl Handler<NextAttendeeId> for SessionRegistry {
    type Result = Result<u64, RegistryError>;
    fn handle(&mut self, _: NextAttendeeId, _: &mut Self::Context) -> Self::Result {
        self.timed("next_attendee_id", |r| r.next_attendee_id())
    }
}

/// Flushes everything (at shutdown).
#[derive(Message, Debug)]
#[rtype(result = "Result<(), RegistryError>")]
pub struct Flush;

impl Handler<Flush> for SessionRegistry {
    type Result = Result<(), RegistryError>;
    fn handle(&mut self, _: Flush, _: &mut Self::Context) -> Self::Result {
        self.timed("flush", |r| r.flush())
    }
}
