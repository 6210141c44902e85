//! The AttendeeManager actor: the thin shell around the session core.
//!
//! Every decision about sessions, invitations, attendees and control (who
//! is admitted, the password throttle, levels and the request/grant/deny
//! flow, input admission, idle time) is made by
//! [`tandem_session::SessionBook`]; this actor feeds it inputs with the time
//! and applies the [`Effect`]s it answers: persist records, emit events,
//! tell attendees, close connections, inject input, and check passwords off
//! the actor's thread, feeding the verdict back. It also owns what the book
//! does not know: records, capture and encoder actors, input sinks, gauges
//! and connection strings. Connection tasks and the admin API talk to it by
//! message only. Input is injected by each session's [`Injector`] on a
//! thread of its own: the manager only queues it, so a stalled X server
//! cannot hold up joins or the admin API.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use serde::{Deserialize, Serialize};
use tandem_capture::{DesktopProbe, InputSink, Rect, WindowFilter};
use tandem_proto::{
    ClientMessage, ConnectionString, ControlLevel, DisconnectReason, Fingerprint, Hello,
    InputEvent, NodeAddr, RejectReason, ServerMessage, Welcome,
};
use tandem_registry::{AttendeeRecord, InvitationRecord, SessionRecord, SessionState};
use tandem_session::{
    BookError, Effect, Event, Input, InvitationRules, SessionBook, SessionRules, Time, Verdict,
};
use tokio::sync::{mpsc, oneshot, watch};

use crate::capture_actor::{
    CaptureActor, CaptureNotice, CursorReceiver, SetCaptureRect, SetPaused, StopCapture,
};
use crate::clock::{now_ms, rfc3339};
use crate::config::ControlPolicy;
use crate::encoder_actor::{EncoderActor, UpdateReceiver};
use crate::error::NodeError;
use crate::events::SessionEvent;
use crate::injector::{Applied, Injector};
use crate::metrics::Metrics;
use crate::passwords;
use crate::registry_actor::{NextAttendeeId, Persist, RecordEvent, SessionRegistry};

/// Commands queued per attendee; an attendee whose control stream backs up
/// this far is not reading it and is disconnected.
pub const ATTENDEE_COMMAND_QUEUE: usize = 256;

/// The throttle's bounds live with its rule in the session core.
pub use tandem_session::{
    FAILURE_WINDOW, FIRST_FAILURE_DELAY, MAX_CONCURRENT_CHECKS, MAX_FAILURES, MAX_FAILURE_DELAY,
    MAX_TRACKED_ADDRESSES,
};

/// What the connection task is told to do.
#[derive(Debug)]
pub enum AttendeeCommand {
    /// Send a control message.
    Send(ServerMessage),
    /// Say `Bye` with this reason and close the connection.
    Close(DisconnectReason, String),
}

/// What a connection task receives when its attendee is admitted.
pub struct Admitted {
    /// The answer to send.
    pub welcome: Welcome,
    /// Newest update of the session (latest wins).
    pub updates: UpdateReceiver,
    /// The session's pointer (latest wins).
    pub cursor: CursorReceiver,
    /// For catch-ups and key frames.
    pub encoder: Addr<EncoderActor>,
    /// The attendee's control level: graphics flow unless it is `none`.
    pub level: watch::Receiver<ControlLevel>,
    /// Commands from the manager.
    pub commands: mpsc::Receiver<AttendeeCommand>,
    /// Channel access it starts with, by channel name (its group's defaults).
    pub channels: std::collections::BTreeMap<String, tandem_proto::ChannelAccess>,
    /// Fires when the manager has removed the attendee: the connection must
    /// end even if its control stream is jammed and the queued `Close`
    /// command (the `Bye`) can never be written.
    pub removed: oneshot::Receiver<DisconnectReason>,
}

/// Why a join was refused, with the line to show the user.
#[derive(Debug, Clone)]
pub struct Rejection {
    /// Machine-readable reason.
    pub reason: RejectReason,
    /// Human-readable line.
    pub message: String,
}

impl Rejection {
    fn new(reason: RejectReason) -> Self {
        Self {
            reason,
            message: reason.describe().to_owned(),
        }
    }
}

struct Session {
    record: SessionRecord,
    capture: Addr<CaptureActor>,
    encoder: Addr<EncoderActor>,
    updates: UpdateReceiver,
    cursor: CursorReceiver,
    input: Injector,
    rect: Rect,
}

/// What the shell keeps of an admitted attendee (its rules are the book's).
struct Attendee {
    record: AttendeeRecord,
    commands: mpsc::Sender<AttendeeCommand>,
    removed: oneshot::Sender<DisconnectReason>,
    level_tx: watch::Sender<ControlLevel>,
    /// Keys and buttons its input holds down on the desktop now (an open
    /// resource of the attendee, `IADsResource`).
    held: HeldInput,
}

/// Most keys (and, apart, buttons) tracked as held per attendee: a keysym
/// is any u32, so an attendee pressing without releasing cannot grow this.
pub const MAX_HELD_TRACKED: usize = 32;

/// Keys and buttons held down, in press order.
#[derive(Clone, Debug, Default)]
struct HeldInput {
    keys: Vec<u32>,
    buttons: Vec<tandem_proto::MouseButton>,
}

impl HeldInput {
    fn track(&mut self, event: &InputEvent) {
        fn set<T: PartialEq>(held: &mut Vec<T>, item: T, pressed: bool) {
            let pos = held.iter().position(|h| *h == item);
            match (pressed, pos) {
                (true, None) if held.len() < MAX_HELD_TRACKED => held.push(item),
                (false, Some(i)) => {
                    held.remove(i);
                }
                _ => {}
            }
        }
        match *event {
            InputEvent::Key { keysym, pressed } => set(&mut self.keys, keysym, pressed),
            InputEvent::MouseButton { button, pressed } => set(&mut self.buttons, button, pressed),
            InputEvent::MouseMove { .. } | InputEvent::Wheel { .. } => {}
        }
    }
}

/// A join whose password is being checked.
struct PendingJoin {
    hello: Hello,
    peer: SocketAddr,
    via_node: Option<String>,
    reply: oneshot::Sender<Result<Admitted, Rejection>>,
}

/// The actor.
pub struct AttendeeManager {
    registry: Addr<SessionRegistry>,
    metrics: Arc<Metrics>,
    fingerprint: Fingerprint,
    advertise: Vec<NodeAddr>,
    /// QUIC addresses of the other live cluster members (for connection strings).
    cluster_addrs: Vec<NodeAddr>,
    /// The decisions.
    book: SessionBook,
    /// The book's epoch: the one place this actor reads the monotonic clock.
    epoch: Instant,
    sessions: HashMap<String, Session>,
    invitations: HashMap<String, InvitationRecord>,
    attendees: HashMap<u64, Attendee>,
    joins: HashMap<u64, PendingJoin>,
    next_join: u64,
    /// Invitations being created (session, auth string, group): taken already.
    creating: Vec<(String, String, String)>,
    /// This actor, for password checks that report back (set when started).
    me: Option<Addr<AttendeeManager>>,
    /// Attendee records changed by the input being fed, written by
    /// [`Self::feed`] or [`Self::feed_durable`].
    record_writes: Vec<AttendeeRecord>,
}

impl AttendeeManager {
    /// A manager with no session yet.
    pub fn new(
        registry: Addr<SessionRegistry>,
        metrics: Arc<Metrics>,
        fingerprint: Fingerprint,
        advertise: Vec<NodeAddr>,
    ) -> Self {
        Self {
            registry,
            metrics,
            fingerprint,
            advertise,
            cluster_addrs: Vec::new(),
            book: SessionBook::new(),
            epoch: Instant::now(),
            sessions: HashMap::new(),
            invitations: HashMap::new(),
            attendees: HashMap::new(),
            joins: HashMap::new(),
            next_join: 0,
            creating: Vec::new(),
            me: None,
            record_writes: Vec::new(),
        }
    }

    fn now(&self) -> Time {
        Time(self.epoch.elapsed())
    }

    /// Feeds `input` to the book and applies its effects; `event` is the
    /// input event an [`Input::Input`] is about. The attendee records it
    /// changed are written without waiting.
    fn feed(&mut self, input: Input, event: Option<&InputEvent>) -> Result<(), BookError> {
        let fed = self.feed_effects(input, event);
        for record in std::mem::take(&mut self.record_writes) {
            self.registry.do_send(Persist::Attendee(record));
        }
        fed
    }

    /// Like [`Self::feed`] for the sharer's calls: the future answers once
    /// the attendee records the input changed are flushed (a level the API
    /// acknowledged survives a crash).
    fn feed_durable(
        &mut self,
        input: Input,
    ) -> Result<impl std::future::Future<Output = Result<(), NodeError>>, BookError> {
        let fed = self.feed_effects(input, None);
        let writes: Vec<_> = std::mem::take(&mut self.record_writes)
            .into_iter()
            .map(|record| self.registry.send(Persist::Attendee(record)))
            .collect();
        fed?;
        Ok(async move {
            for write in writes {
                write.await??;
            }
            Ok(())
        })
    }

    fn feed_effects(&mut self, input: Input, event: Option<&InputEvent>) -> Result<(), BookError> {
        let effects = self.book.handle(self.now(), input)?;
        let mut later = Vec::new();
        for effect in effects {
            self.apply(effect, event, &mut later);
        }
        self.refresh_gauges();
        // What applying found: attendees that do not read their control
        // stream, joins whose connection gave up before the welcome.
        for input in later {
            let _ = self.feed_effects(input, None);
        }
        Ok(())
    }

    fn apply(&mut self, effect: Effect, event: Option<&InputEvent>, later: &mut Vec<Input>) {
        match effect {
            Effect::CheckPassword { join, delay } => self.check_password(join, delay),
            Effect::Reject {
                join,
                reason,
                message,
            } => {
                self.metrics
                    .joins
                    .with_label_values(&[reject_label(reason)])
                    .inc();
                if let Some(pending) = self.joins.remove(&join) {
                    if reason == RejectReason::WrongPassword {
                        tracing::info!(peer = %pending.peer, user = %pending.hello.name, "wrong password");
                    }
                    let _ = pending.reply.send(Err(Rejection { reason, message }));
                }
            }
            Effect::Admit {
                join,
                attendee,
                session,
                level,
                channels,
            } => {
                if !self.admit(join, attendee, &session, level, channels) {
                    later.push(Input::Left {
                        attendee,
                        reason: DisconnectReason::Error,
                    });
                }
            }
            Effect::Level { attendee, level } => {
                if let Some(a) = self.attendees.get_mut(&attendee) {
                    a.record.control_level = level;
                    a.level_tx.send_replace(level);
                    self.record_writes.push(a.record.clone());
                }
            }
            Effect::Tell { attendee, msg } => {
                let Some(a) = self.attendees.get(&attendee) else {
                    return;
                };
                if a.commands.try_send(AttendeeCommand::Send(msg)).is_err() {
                    tracing::warn!(
                        attendee,
                        "attendee does not read its control stream; disconnecting"
                    );
                    later.push(Input::Disconnect {
                        attendee,
                        reason: DisconnectReason::Error,
                        message: "control stream backed up".into(),
                    });
                }
            }
            Effect::Emit(event) => self.emit(self.session_event(event)),
            Effect::ReleaseInput { session } => {
                if let Some(s) = self.sessions.get_mut(&session) {
                    s.input.release_all();
                }
                for a in self.attendees.values_mut() {
                    if a.record.session_id == session {
                        a.held = HeldInput::default();
                    }
                }
            }
            Effect::Inject { attendee, session } => {
                if let Some(event) = event {
                    self.inject(attendee, &session, event);
                }
            }
            Effect::DropInput { .. } => self
                .metrics
                .input_events
                .with_label_values(&["dropped"])
                .inc(),
            Effect::Remove {
                attendee,
                reason,
                message,
            } => {
                let Some(mut a) = self.attendees.remove(&attendee) else {
                    return;
                };
                // The connection task may already be gone; then this is a no-op.
                let _ = a.commands.try_send(AttendeeCommand::Close(reason, message));
                // Ends the connection after a grace period if the `Close` cannot be
                // delivered (queue full, or the control stream jammed).
                let _ = a.removed.send(reason);
                a.record.disconnected_at_ms = Some(now_ms());
                a.record.disconnect_reason = Some(reason);
                self.registry.do_send(Persist::Attendee(a.record));
            }
        }
    }

    /// A book event as the event log and stream show it (with the record's user and computer).
    fn session_event(&self, event: Event) -> SessionEvent {
        match event {
            Event::AttendeeConnected {
                session,
                attendee,
                level,
            } => {
                let (user, computer) = self
                    .attendees
                    .get(&attendee)
                    .map(|a| (a.record.user.clone(), a.record.computer.clone()))
                    .unwrap_or_default();
                SessionEvent::AttendeeConnected {
                    session,
                    attendee,
                    user,
                    computer,
                    level,
                }
            }
            Event::AttendeeUpdated {
                session,
                attendee,
                level,
                shown,
            } => SessionEvent::AttendeeUpdated {
                session,
                attendee,
                level,
                level_state: shown,
            },
            Event::ControlRequested {
                session,
                attendee,
                requested,
                shown,
            } => SessionEvent::ControlLevelChangeRequested {
                session,
                attendee,
                requested,
                level_state: shown,
            },
            Event::ControlAnswered {
                session,
                attendee,
                requested,
                granted,
                by,
                shown,
            } => SessionEvent::ControlLevelChangeAnswered {
                session,
                attendee,
                requested,
                granted,
                by: by.as_str().to_owned(),
                level_state: shown,
            },
            Event::AttendeeDisconnected {
                session,
                attendee,
                reason,
            } => SessionEvent::AttendeeDisconnected {
                session,
                attendee,
                reason,
            },
        }
    }

    /// Checks a join's password after the throttle's delay, off this
    /// thread, allocates the attendee's id, and feeds the verdict back.
    fn check_password(&mut self, join: u64, delay: std::time::Duration) {
        let (Some(pending), Some(me)) = (self.joins.get(&join), self.me.clone()) else {
            return;
        };
        let hash = self
            .invitations
            .get(&pending.hello.invitation)
            .map(|i| i.password_hash.clone())
            .unwrap_or_default();
        let password = pending.hello.password.clone();
        let registry = self.registry.clone();
        let check = async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let ok = tokio::task::spawn_blocking(move || passwords::verify(&hash, &password))
                .await
                .unwrap_or(false);
            if !ok {
                return Verdict::Wrong;
            }
            match registry.send(NextAttendeeId).await {
                Ok(Ok(attendee)) => Verdict::Right { attendee },
                _ => Verdict::Failed,
            }
        };
        actix::spawn(async move {
            me.do_send(PasswordChecked {
                join,
                verdict: check.await,
            });
        });
    }

    /// Creates an admitted attendee's record and connection state and
    /// answers its join; `false` if nobody waits for the answer any more.
    fn admit(
        &mut self,
        join: u64,
        id: u64,
        session_id: &str,
        level: ControlLevel,
        channels: std::collections::BTreeMap<String, tandem_proto::ChannelAccess>,
    ) -> bool {
        let (Some(pending), Some(session)) =
            (self.joins.remove(&join), self.sessions.get(session_id))
        else {
            return false;
        };
        let (commands_tx, commands_rx) = mpsc::channel(ATTENDEE_COMMAND_QUEUE);
        let (removed_tx, removed_rx) = oneshot::channel();
        let (level_tx, level_rx) = watch::channel(level);
        let record = AttendeeRecord {
            id,
            session_id: session_id.to_owned(),
            invitation_id: pending.hello.invitation.clone(),
            user: pending.hello.name.clone(),
            computer: pending.peer.to_string(),
            via_node: pending.via_node,
            control_level: level,
            connected_at_ms: now_ms(),
            disconnected_at_ms: None,
            disconnect_reason: None,
            bytes_sent: 0,
        };
        let welcome = Welcome {
            attendee_id: id,
            session: session_id.to_owned(),
            control_level: level,
            width: session.rect.width,
            height: session.rect.height,
            paused: session.record.state == SessionState::Paused,
        };
        let admitted = Admitted {
            welcome,
            updates: session.updates.clone(),
            cursor: session.cursor.clone(),
            encoder: session.encoder.clone(),
            level: level_rx,
            commands: commands_rx,
            channels,
            removed: removed_rx,
        };
        // The welcome waits for the record's flush (an admission the
        // attendee was told of is in the registry after a crash).
        let written = self.registry.send(Persist::Attendee(record.clone()));
        self.attendees.insert(
            id,
            Attendee {
                record,
                commands: commands_tx,
                removed: removed_tx,
                level_tx,
                held: HeldInput::default(),
            },
        );
        self.metrics.joins.with_label_values(&["admitted"]).inc();
        let (me, reply) = (self.me.clone(), pending.reply);
        actix::spawn(async move {
            let answer = match written.await {
                Ok(Ok(())) => Ok(admitted),
                // Reported as an error event by the registry.
                _ => Err(Rejection {
                    reason: RejectReason::NodeShuttingDown,
                    message: "the node could not record the admission; try again".into(),
                }),
            };
            let failed = answer.is_err();
            // A join whose connection gave up meanwhile leaves at once.
            if reply.send(answer).is_err() || failed {
                if let Some(me) = me {
                    me.do_send(Left {
                        attendee: id,
                        reason: DisconnectReason::Error,
                        bytes_sent: 0,
                    });
                }
            }
        });
        true
    }

    /// Queues an interactive attendee's input for its session's desktop
    /// (pointer positions are relative to the shared rectangle); the
    /// injector confines, injects and counts it.
    fn inject(&mut self, attendee: u64, session: &str, event: &InputEvent) {
        if let Some(session) = self.sessions.get(session) {
            session.input.inject(attendee, *event, session.rect);
        }
    }

    fn emit(&self, event: SessionEvent) {
        self.registry.do_send(RecordEvent(event));
    }

    fn connection_string(&self, session: &str, invitation: &str) -> String {
        ConnectionString {
            addrs: tandem_proto::ticket_addrs(&self.advertise, &self.cluster_addrs),
            session: session.to_owned(),
            invitation: invitation.to_owned(),
            fingerprint: self.fingerprint,
        }
        .to_string()
    }

    fn invitation_info(&self, inv: &InvitationRecord) -> InvitationInfo {
        InvitationInfo {
            id: inv.id.clone(),
            session: inv.session_id.clone(),
            auth_string: inv.auth_string.clone(),
            group: inv.group.clone(),
            attendee_limit: inv.attendee_limit,
            attendees: self.book.count_on_invitation(&inv.id),
            revoked: inv.revoked,
            created_at: rfc3339(inv.created_at_ms),
            connection_string: self.connection_string(&inv.session_id, &inv.id),
        }
    }

    /// Records an invitation and gives its rules to the book.
    fn put_invitation(&mut self, record: InvitationRecord) {
        let rules = InvitationRules {
            session: record.session_id.clone(),
            limit: record.attendee_limit,
            revoked: record.revoked,
            group: record.group.clone(),
        };
        let id = record.id.clone();
        self.invitations.insert(id.clone(), record);
        if let Err(error) = self
            .book
            .handle(self.now(), Input::PutInvitation { id, rules })
        {
            tracing::warn!(%error, "invitation not taken by the session book");
        }
    }

    fn refresh_gauges(&self) {
        self.metrics.attendees.reset();
        let now = self.now();
        for id in self.book.attendee_ids() {
            if let Some(a) = self.book.attendee(now, id) {
                self.metrics
                    .attendees
                    .with_label_values(&[&a.session, a.level.as_str()])
                    .inc();
            }
        }
        self.metrics.sessions_open.set(self.sessions.len() as i64);
    }

    fn attendee_info(&self, a: &Attendee) -> Option<AttendeeInfo> {
        let view = self.book.attendee(self.now(), a.record.id)?;
        Some(AttendeeInfo {
            id: a.record.id,
            user: a.record.user.clone(),
            computer: a.record.computer.clone(),
            session: a.record.session_id.clone(),
            invitation: a.record.invitation_id.clone(),
            control_level: view.level,
            pending_request: view.pending,
            level_state: view.shown,
            connected_at: rfc3339(a.record.connected_at_ms),
            idle_seconds: view.idle.as_secs(),
            connected_seconds: view.connected.as_secs(),
            via_node: a.record.via_node.clone(),
        })
    }

    fn session_mut(&mut self, id: &str) -> Result<&mut Session, NodeError> {
        self.sessions
            .get_mut(id)
            .ok_or_else(|| not_found("session", id))
    }

    /// Tells the session's attendees and the event stream the shared
    /// rectangle is now `rect`.
    fn announce_shared_rect(&mut self, session: &str, rect: Rect) {
        self.broadcast(
            session,
            &ServerMessage::SharedRectChanged {
                width: rect.width,
                height: rect.height,
            },
        );
        self.emit(SessionEvent::SharedRectChanged {
            session: session.to_owned(),
            x: rect.x,
            y: rect.y,
            width: rect.width,
            height: rect.height,
        });
    }

    /// Sends `msg` to every attendee of `session`; one that does not read
    /// its control stream is disconnected.
    fn broadcast(&mut self, session: &str, msg: &ServerMessage) {
        let jammed: Vec<u64> = self
            .attendees
            .values()
            .filter(|a| a.record.session_id == session)
            .filter(|a| {
                a.commands
                    .try_send(AttendeeCommand::Send(msg.clone()))
                    .is_err()
            })
            .map(|a| a.record.id)
            .collect();
        for attendee in jammed {
            tracing::warn!(
                attendee,
                "attendee does not read its control stream; disconnecting"
            );
            let _ = self.feed(
                Input::Disconnect {
                    attendee,
                    reason: DisconnectReason::Error,
                    message: "control stream backed up".into(),
                },
                None,
            );
        }
    }
}

impl Actor for AttendeeManager {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Self::Context) {
        self.me = Some(ctx.address());
    }
}

/// The verdict of a password check, fed back into the book.
#[derive(Message)]
#[rtype(result = "()")]
struct PasswordChecked {
    join: u64,
    verdict: Verdict,
}

impl Handler<PasswordChecked> for AttendeeManager {
    type Result = ();
    fn handle(&mut self, msg: PasswordChecked, _: &mut Self::Context) {
        let _ = self.feed(
            Input::Checked {
                join: msg.join,
                verdict: msg.verdict,
            },
            None,
        );
    }
}

/// A key or button the session's injector delivered: held input of its
/// attendee (the `GetAttendee` resources).
#[derive(Message)]
#[rtype(result = "()")]
struct InputApplied {
    session: String,
    applied: Applied,
}

impl Handler<InputApplied> for AttendeeManager {
    type Result = ();
    fn handle(&mut self, msg: InputApplied, _: &mut Self::Context) {
        let Some(session) = self.sessions.get(&msg.session) else {
            return;
        };
        // Released since it was queued: not held any more.
        if msg.applied.epoch != session.input.epoch() {
            return;
        }
        if let Some(a) = self.attendees.get_mut(&msg.applied.attendee) {
            if a.record.session_id == msg.session {
                a.held.track(&msg.applied.event);
            }
        }
    }
}

fn not_found(what: &'static str, id: impl ToString) -> NodeError {
    NodeError::NotFound {
        what,
        id: id.to_string(),
    }
}

/// A book error as the admin API reports it.
fn book_error(error: BookError) -> NodeError {
    match error {
        BookError::UnknownAttendee(id) => not_found("attendee", id),
        BookError::UnknownSession(id) => not_found("session", id),
        BookError::NoPendingRequest(_) => NodeError::Conflict(error.to_string()),
        BookError::UnknownGroup(name) => not_found("group", name),
        BookError::TooManyGroups => NodeError::Conflict(error.to_string()),
        BookError::UnknownJoin(_) | BookError::ZeroLimit | BookError::TooManyGroupChannels => {
            NodeError::Invalid(error.to_string())
        }
    }
}

// ---------------------------------------------------------------------------
// Messages: sessions

/// Registers a sharing session whose capture and encoder actors are running.
#[derive(Message)]
#[rtype(result = "Result<SessionInfo, NodeError>")]
pub struct OpenSession {
    /// Its record (persisted before the reply).
    pub record: SessionRecord,
    /// Capture actor.
    pub capture: Addr<CaptureActor>,
    /// Encoder actor.
    pub encoder: Addr<EncoderActor>,
    /// Newest update.
    pub updates: UpdateReceiver,
    /// The session's pointer.
    pub cursor: CursorReceiver,
    /// Where interactive attendees' input goes.
    pub input: Box<dyn InputSink>,
    /// Where the pointer and focus are read, to confine keys and buttons
    /// (`None`: a desktop without windows of its own).
    pub probe: Option<Box<dyn DesktopProbe>>,
    /// The session's window filter, as the capture actor publishes it.
    pub filter: watch::Receiver<Option<WindowFilter>>,
    /// Shared rectangle in effect.
    pub rect: Rect,
    /// Level of new attendees.
    pub default_level: ControlLevel,
    /// Control request policy.
    pub policy: ControlPolicy,
    /// Invitations of this session already in the registry (after a restart).
    pub invitations: Vec<InvitationRecord>,
}

/// A session as the admin API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct SessionInfo {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Capture source.
    pub source: String,
    /// open or paused.
    pub state: String,
    /// Shared rectangle.
    pub shared_rect: [u32; 4],
    /// Frame interval.
    pub frame_interval_ms: u32,
    /// Level of new attendees.
    pub default_control_level: ControlLevel,
    /// Control policy.
    pub control_policy: tandem_session::ControlPolicy,
    /// Live attendees.
    pub attendees: usize,
    /// Creation time.
    pub created_at: String,
}

impl Session {
    fn info(&self, rules: SessionRules, attendees: usize) -> SessionInfo {
        SessionInfo {
            id: self.record.id.clone(),
            name: self.record.name.clone(),
            source: self.record.source.clone(),
            state: match self.record.state {
                SessionState::Open => "open",
                SessionState::Paused => "paused",
                SessionState::Closed => "closed",
            }
            .to_owned(),
            shared_rect: [self.rect.x, self.rect.y, self.rect.width, self.rect.height],
            frame_interval_ms: self.record.frame_interval_ms,
            default_control_level: rules.default_level,
            control_policy: rules.policy,
            attendees,
            created_at: rfc3339(self.record.created_at_ms),
        }
    }
}

impl Handler<OpenSession> for AttendeeManager {
    type Result = ResponseActFuture<Self, Result<SessionInfo, NodeError>>;
    fn handle(&mut self, msg: OpenSession, _: &mut Self::Context) -> Self::Result {
        // Like the API's one session per Winlogon session: one per source.
        if let Some(other) = self
            .sessions
            .values()
            .find(|s| s.record.source == msg.record.source)
        {
            msg.capture.do_send(StopCapture);
            return Box::pin(fut::ready(Err(NodeError::Conflict(format!(
                "source {} is already shared by session {}",
                msg.record.source, other.record.id
            )))));
        }
        let record = msg.record.clone();
        Box::pin(
            self.registry
                .send(Persist::Session(record))
                .into_actor(self)
                .map(move |res, act, _| {
                    res??;
                    let rules = SessionRules {
                        default_level: msg.default_level,
                        policy: msg.policy,
                    };
                    let id = msg.record.id.clone();
                    let reports = act.me.clone().map(|me| me.recipient::<InputApplied>());
                    let input = Injector::start(
                        &id,
                        msg.input,
                        msg.probe,
                        msg.filter,
                        act.metrics.clone(),
                        Box::new({
                            let session = id.clone();
                            move |applied| {
                                if let Some(reports) = &reports {
                                    reports.do_send(InputApplied {
                                        session: session.clone(),
                                        applied,
                                    });
                                }
                            }
                        }),
                    )
                    .map_err(|source| NodeError::Io {
                        context: "starting the input thread".into(),
                        source,
                    })?;
                    let _ = act.feed(Input::OpenSession { session: id, rules }, None);
                    for inv in msg.invitations {
                        act.put_invitation(inv);
                    }
                    let session = Session {
                        record: msg.record,
                        capture: msg.capture,
                        encoder: msg.encoder,
                        updates: msg.updates,
                        cursor: msg.cursor,
                        input,
                        rect: msg.rect,
                    };
                    let info = session.info(rules, 0);
                    act.emit(SessionEvent::SessionOpened {
                        session: info.id.clone(),
                    });
                    act.sessions.insert(info.id.clone(), session);
                    act.refresh_gauges();
                    Ok(info)
                }),
        )
    }
}

impl Handler<CaptureNotice> for AttendeeManager {
    type Result = ();
    fn handle(&mut self, notice: CaptureNotice, _: &mut Self::Context) {
        match notice {
            CaptureNotice::Windows { session, events } => {
                for event in events {
                    self.emit(SessionEvent::from_window_event(&session, event));
                }
            }
            CaptureNotice::RectChanged { session, rect } => {
                let Some(s) = self.sessions.get_mut(&session) else {
                    return;
                };
                if s.rect == rect {
                    return;
                }
                s.rect = rect;
                tracing::info!(%session, width = rect.width, height = rect.height, "desktop resized");
                self.announce_shared_rect(&session, rect);
            }
        }
    }
}

/// The capture actor of a session, for requests about its desktop
/// (windows, monitors, filter).
#[derive(Message)]
#[rtype(result = "Result<Addr<CaptureActor>, NodeError>")]
pub struct CaptureOf {
    /// Session id.
    pub session: String,
}

impl Handler<CaptureOf> for AttendeeManager {
    type Result = Result<Addr<CaptureActor>, NodeError>;
    fn handle(&mut self, msg: CaptureOf, _: &mut Self::Context) -> Self::Result {
        Ok(self.session_mut(&msg.session)?.capture.clone())
    }
}

/// Lists open sessions.
#[derive(Message)]
#[rtype(result = "Vec<SessionInfo>")]
pub struct ListSessions;

impl Handler<ListSessions> for AttendeeManager {
    type Result = MessageResult<ListSessions>;
    fn handle(&mut self, _: ListSessions, _: &mut Self::Context) -> Self::Result {
        let mut list: Vec<SessionInfo> = self
            .sessions
            .values()
            .filter_map(|s| {
                let rules = self.book.session_rules(&s.record.id)?;
                Some(s.info(rules, self.book.count_in_session(&s.record.id)))
            })
            .collect();
        list.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        MessageResult(list)
    }
}

/// Pauses (`true`) or resumes (`false`) a session's graphics for everyone.
#[derive(Message)]
#[rtype(result = "Result<(), NodeError>")]
pub struct SetSessionPaused {
    /// Session id.
    pub session: String,
    /// Pause or resume.
    pub paused: bool,
}

/// A pause is answered, announced and emitted once the capture has stopped
/// and the encoder has published the last frame captured before it: from
/// then on no new graphics update exists until the resume.
impl Handler<SetSessionPaused> for AttendeeManager {
    type Result = ResponseActFuture<Self, Result<(), NodeError>>;
    fn handle(&mut self, msg: SetSessionPaused, _: &mut Self::Context) -> Self::Result {
        let Some(session) = self.sessions.get_mut(&msg.session) else {
            return Box::pin(fut::ready(Err(not_found("session", &msg.session))));
        };
        let was_paused = session.record.state == SessionState::Paused;
        if was_paused == msg.paused {
            return Box::pin(fut::ready(Ok(())));
        }
        session.record.state = if msg.paused {
            SessionState::Paused
        } else {
            SessionState::Open
        };
        let capture = session.capture.clone();
        // Answered only once the new state is flushed (a restart keeps it).
        let written = self.registry.send(Persist::Session(session.record.clone()));
        let (notice, event) = if msg.paused {
            (
                ServerMessage::GraphicsPaused,
                SessionEvent::GraphicsPaused {
                    session: msg.session.clone(),
                },
            )
        } else {
            (
                ServerMessage::GraphicsResumed,
                SessionEvent::GraphicsResumed {
                    session: msg.session.clone(),
                },
            )
        };
        let paused = msg.paused;
        let settled = async move {
            let written = written.await;
            // Answered once every frame grabbed before the pause is published.
            let _ = capture.send(SetPaused(paused)).await;
            written
        };
        Box::pin(settled.into_actor(self).map(move |written, act, _| {
            written??;
            let current = act
                .sessions
                .get(&msg.session)
                .map(|s| s.record.state == SessionState::Paused);
            if current != Some(paused) {
                // Closed, or toggled again meanwhile: the later call announces its own state.
                return Ok(());
            }
            act.broadcast(&msg.session, &notice);
            act.emit(event);
            Ok(())
        }))
    }
}

/// Changes the shared rectangle (`None`: the whole desktop).
#[derive(Message)]
#[rtype(result = "Result<[u32; 4], NodeError>")]
pub struct ChangeSharedRect {
    /// Session id.
    pub session: String,
    /// New rectangle.
    pub rect: Option<Rect>,
}

impl Handler<ChangeSharedRect> for AttendeeManager {
    type Result = ResponseActFuture<Self, Result<[u32; 4], NodeError>>;
    fn handle(&mut self, msg: ChangeSharedRect, _: &mut Self::Context) -> Self::Result {
        let capture = match self.session_mut(&msg.session) {
            Ok(s) => s.capture.clone(),
            Err(e) => return Box::pin(fut::ready(Err(e))),
        };
        if let Some(r) = msg.rect {
            if r.width == 0 || r.height == 0 {
                return Box::pin(fut::ready(Err(NodeError::Invalid(
                    "the shared rectangle must have a non-zero width and height".into(),
                ))));
            }
        }
        let session_id = msg.session.clone();
        Box::pin(
            capture
                .send(SetCaptureRect(msg.rect))
                .into_actor(self)
                .map(move |res, act, _| {
                    let rect = res??;
                    let session = act
                        .sessions
                        .get_mut(&session_id)
                        .ok_or_else(|| not_found("session", &session_id))?;
                    session.rect = rect;
                    session.record.shared_rect =
                        msg.rect.map(|_| [rect.x, rect.y, rect.width, rect.height]);
                    let written = act.registry.send(Persist::Session(session.record.clone()));
                    act.announce_shared_rect(&session_id, rect);
                    Ok((written, [rect.x, rect.y, rect.width, rect.height]))
                })
                .then(|res: Result<_, NodeError>, act, _| {
                    // Answered only once the rectangle is flushed.
                    let fut = async move {
                        let (written, rect) = res?;
                        written.await??;
                        Ok(rect)
                    };
                    fut.into_actor(act)
                }),
        )
    }
}

/// Changes a session's capture interval at run time (`FrameCaptureIntervalInMs`):
/// the capture actor restarts its timer, the record keeps the new value.
#[derive(Message)]
#[rtype(result = "Result<SessionInfo, NodeError>")]
pub struct ChangeFrameInterval {
    /// Session id.
    pub session: String,
    /// New interval in ms (bounded by the caller's check of the config bounds).
    pub frame_interval_ms: u32,
}

impl Handler<ChangeFrameInterval> for AttendeeManager {
    type Result = Result<SessionInfo, NodeError>;
    fn handle(&mut self, msg: ChangeFrameInterval, _: &mut Self::Context) -> Self::Result {
        use crate::config::{MAX_FRAME_INTERVAL_MS, MIN_FRAME_INTERVAL_MS};
        let ms = msg.frame_interval_ms;
        if !(MIN_FRAME_INTERVAL_MS..=MAX_FRAME_INTERVAL_MS).contains(&ms) {
            return Err(NodeError::Invalid(format!(
                "frame_interval_ms must be between {MIN_FRAME_INTERVAL_MS} and {MAX_FRAME_INTERVAL_MS}, not {ms}"
            )));
        }
        let rules = self
            .book
            .session_rules(&msg.session)
            .ok_or_else(|| not_found("session", &msg.session))?;
        let attendees = self.book.count_in_session(&msg.session);
        let session = self.session_mut(&msg.session)?;
        session
            .capture
            .do_send(crate::capture_actor::SetFrameInterval(
                std::time::Duration::from_millis(u64::from(ms)),
            ));
        session.record.frame_interval_ms = ms;
        let record = session.record.clone();
        let info = session.info(rules, attendees);
        tracing::info!(session = %msg.session, interval_ms = ms, "frame interval changed");
        self.registry.do_send(Persist::Session(record));
        Ok(info)
    }
}

/// Closes a session for good: every attendee is told "session closed".
#[derive(Message)]
#[rtype(result = "Result<(), NodeError>")]
pub struct CloseSession {
    /// Session id.
    pub session: String,
}

impl Handler<CloseSession> for AttendeeManager {
    type Result = ResponseActFuture<Self, Result<(), NodeError>>;
    fn handle(&mut self, msg: CloseSession, _: &mut Self::Context) -> Self::Result {
        let Some(mut session) = self.sessions.remove(&msg.session) else {
            return Box::pin(fut::ready(Err(not_found("session", &msg.session))));
        };
        let _ = self.feed(
            Input::CloseSession {
                session: msg.session.clone(),
            },
            None,
        );
        session.capture.do_send(StopCapture);
        // Queued after the session's last input; dropping the session then
        // closes the queue and ends the input thread.
        session.input.release_all();
        session.record.state = SessionState::Closed;
        session.record.closed_at_ms = Some(now_ms());
        self.emit(SessionEvent::SessionClosed {
            session: msg.session.clone(),
        });
        self.refresh_gauges();
        Box::pin(
            self.registry
                .send(Persist::Session(session.record))
                .into_actor(self)
                .map(|res, _, _| Ok(res??)),
        )
    }
}

/// The encoder of a session, for frame-buffer snapshots.
#[derive(Message)]
#[rtype(result = "Result<Addr<EncoderActor>, NodeError>")]
pub struct SessionEncoder {
    /// Session id.
    pub session: String,
}

impl Handler<SessionEncoder> for AttendeeManager {
    type Result = Result<Addr<EncoderActor>, NodeError>;
    fn handle(&mut self, msg: SessionEncoder, _: &mut Self::Context) -> Self::Result {
        Ok(self.session_mut(&msg.session)?.encoder.clone())
    }
}

// ---------------------------------------------------------------------------
// Messages: invitations

/// Creates an invitation (`CreateInvitation`).
#[derive(Message)]
#[rtype(result = "Result<InvitationInfo, NodeError>")]
pub struct CreateInvitation {
    /// Session id.
    pub session: String,
    /// Authorization string, unique per session; generated when `None`.
    pub auth_string: Option<String>,
    /// Group name, unique per session; generated when `None`.
    pub group: Option<String>,
    /// Password (hashed before storage).
    pub password: String,
    /// Maximum attendees connected through it at once.
    pub attendee_limit: u32,
}

/// An invitation as the admin API shows it (never the password).
#[derive(Clone, Debug, Serialize)]
pub struct InvitationInfo {
    /// Id (carried in the connection string).
    pub id: String,
    /// Session id.
    pub session: String,
    /// Authorization string.
    pub auth_string: String,
    /// Group name.
    pub group: String,
    /// Attendee limit.
    pub attendee_limit: u32,
    /// Attendees connected through it now.
    pub attendees: u32,
    /// Revoked: no new joins.
    pub revoked: bool,
    /// Creation time.
    pub created_at: String,
    /// The ticket to give attendees (with the password, out of band).
    pub connection_string: String,
}

/// Longest auth string and group name.
pub const MAX_AUTH_STRING_LEN: usize = 255;

impl Handler<CreateInvitation> for AttendeeManager {
    type Result = ResponseActFuture<Self, Result<InvitationInfo, NodeError>>;
    fn handle(&mut self, msg: CreateInvitation, _: &mut Self::Context) -> Self::Result {
        let check = || -> Result<(String, String, String), NodeError> {
            if !self.sessions.contains_key(&msg.session) {
                return Err(not_found("session", &msg.session));
            }
            passwords::check_new_password("password", &msg.password).map_err(NodeError::Invalid)?;
            if msg.attendee_limit == 0 || msg.attendee_limit > crate::config::MAX_ATTENDEE_LIMIT {
                return Err(NodeError::Invalid(format!(
                    "attendee limit must be between 1 and {}",
                    crate::config::MAX_ATTENDEE_LIMIT
                )));
            }
            let id = crate::ids::random_id(16);
            let auth = msg.auth_string.clone().unwrap_or_else(|| id.clone());
            let group = msg.group.clone().unwrap_or_else(|| format!("group-{id}"));
            for (what, value) in [("auth string", &auth), ("group", &group)] {
                if value.is_empty()
                    || value.len() > MAX_AUTH_STRING_LEN
                    || value.chars().any(char::is_control)
                {
                    return Err(NodeError::Invalid(format!(
                        "{what} must be 1 to {MAX_AUTH_STRING_LEN} bytes without control characters"
                    )));
                }
            }
            // Invitations being created count too (their password is being
            // hashed): two concurrent creates with one auth string cannot both win.
            let taken = self
                .invitations
                .values()
                .map(|i| (&i.session_id, &i.auth_string, &i.group))
                .chain(self.creating.iter().map(|(s, a, g)| (s, a, g)));
            for (session, auth_string, inv_group) in taken {
                if *session != msg.session {
                    continue;
                }
                if *auth_string == auth {
                    return Err(NodeError::Conflict(format!(
                        "auth string {auth:?} is already used in this session"
                    )));
                }
                if *inv_group == group {
                    return Err(NodeError::Conflict(format!(
                        "group {group:?} is already used in this session"
                    )));
                }
            }
            Ok((id, auth, group))
        };
        let (id, auth, group) = match check() {
            Ok(v) => v,
            Err(e) => return Box::pin(fut::ready(Err(e))),
        };
        let reserved = (msg.session.clone(), auth.clone(), group.clone());
        self.creating.push(reserved.clone());
        let password = msg.password;
        let registry = self.registry.clone();
        let record_base = InvitationRecord {
            id,
            session_id: msg.session,
            auth_string: auth,
            group,
            password_hash: String::new(),
            attendee_limit: msg.attendee_limit,
            revoked: false,
            created_at_ms: now_ms(),
        };
        let work = async move {
            let hash = tokio::task::spawn_blocking(move || passwords::hash(&password))
                .await
                .map_err(|_| NodeError::Stopped)??;
            let record = InvitationRecord {
                password_hash: hash,
                ..record_base
            };
            registry.send(Persist::Invitation(record.clone())).await??;
            Ok::<_, NodeError>(record)
        };
        Box::pin(work.into_actor(self).map(move |res, act, _| {
            act.creating.retain(|r| *r != reserved);
            let record = res?;
            let info = act.invitation_info(&record);
            act.put_invitation(record);
            Ok(info)
        }))
    }
}

/// Lists invitations (of one session, or all).
#[derive(Message)]
#[rtype(result = "Vec<InvitationInfo>")]
pub struct ListInvitations {
    /// Only this session's.
    pub session: Option<String>,
}

impl Handler<ListInvitations> for AttendeeManager {
    type Result = MessageResult<ListInvitations>;
    fn handle(&mut self, msg: ListInvitations, _: &mut Self::Context) -> Self::Result {
        let mut list: Vec<InvitationInfo> = self
            .invitations
            .values()
            .filter(|i| msg.session.as_deref().is_none_or(|s| s == i.session_id))
            .map(|i| self.invitation_info(i))
            .collect();
        list.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        MessageResult(list)
    }
}

/// Changes an invitation's limit or revokes it (revocation is final).
#[derive(Message)]
#[rtype(result = "Result<InvitationInfo, NodeError>")]
pub struct UpdateInvitation {
    /// Invitation id.
    pub id: String,
    /// New attendee limit.
    pub attendee_limit: Option<u32>,
    /// Revoke it.
    pub revoke: bool,
}

impl Handler<UpdateInvitation> for AttendeeManager {
    type Result = ResponseActFuture<Self, Result<InvitationInfo, NodeError>>;
    fn handle(&mut self, msg: UpdateInvitation, _: &mut Self::Context) -> Self::Result {
        let Some(current) = self.invitations.get(&msg.id) else {
            return Box::pin(fut::ready(Err(not_found("invitation", &msg.id))));
        };
        let mut updated = current.clone();
        if let Some(limit) = msg.attendee_limit {
            if limit == 0 || limit > crate::config::MAX_ATTENDEE_LIMIT {
                return Box::pin(fut::ready(Err(NodeError::Invalid(format!(
                    "attendee limit must be between 1 and {}",
                    crate::config::MAX_ATTENDEE_LIMIT
                )))));
            }
            updated.attendee_limit = limit;
        }
        updated.revoked |= msg.revoke;
        Box::pin(
            self.registry
                .send(Persist::Invitation(updated.clone()))
                .into_actor(self)
                .map(move |res, act, _| {
                    res??;
                    act.put_invitation(updated.clone());
                    Ok(act.invitation_info(&updated))
                }),
        )
    }
}

// ---------------------------------------------------------------------------
// Messages: attendees

/// A hello from a new connection.
#[derive(Message)]
#[rtype(result = "Result<Admitted, Rejection>")]
pub struct Join {
    /// The hello.
    pub hello: Hello,
    /// Where it came from.
    pub peer: SocketAddr,
    /// The cluster node it came through, when relayed.
    pub via_node: Option<String>,
}

impl Handler<Join> for AttendeeManager {
    type Result = ResponseFuture<Result<Admitted, Rejection>>;
    fn handle(&mut self, msg: Join, _: &mut Self::Context) -> Self::Result {
        // The wire checks first; then the book decides (throttle, session,
        // invitation), and answers once the password is checked.
        let refused = if msg.hello.version != tandem_proto::PROTOCOL_VERSION {
            Some(Rejection::new(RejectReason::UnsupportedVersion))
        } else if let Err(e) = msg.hello.validate() {
            Some(Rejection {
                reason: RejectReason::Malformed,
                message: format!("malformed hello: {e}"),
            })
        } else {
            None
        };
        if let Some(r) = refused {
            self.metrics
                .joins
                .with_label_values(&[reject_label(r.reason)])
                .inc();
            return Box::pin(async move { Err(r) });
        }
        let join = self.next_join;
        self.next_join += 1;
        let (reply, answer) = oneshot::channel();
        let input = Input::Join {
            join,
            from: msg.peer.ip(),
            session: msg.hello.session.clone(),
            invitation: msg.hello.invitation.clone(),
        };
        self.joins.insert(
            join,
            PendingJoin {
                hello: msg.hello,
                peer: msg.peer,
                via_node: msg.via_node,
                reply,
            },
        );
        let _ = self.feed(input, None);
        Box::pin(async move {
            answer
                .await
                .unwrap_or_else(|_| Err(Rejection::new(RejectReason::NodeShuttingDown)))
        })
    }
}

fn reject_label(reason: RejectReason) -> &'static str {
    match reason {
        RejectReason::UnsupportedVersion => "unsupported_version",
        RejectReason::UnknownSession => "unknown_session",
        RejectReason::UnknownInvitation => "unknown_invitation",
        RejectReason::WrongPassword => "wrong_password",
        RejectReason::InvitationRevoked => "revoked",
        RejectReason::AttendeeLimitReached => "limit_reached",
        RejectReason::SessionClosed => "session_closed",
        RejectReason::TooManyAttempts => "too_many_attempts",
        RejectReason::Malformed => "malformed",
        RejectReason::NodeShuttingDown => "shutting_down",
    }
}

/// A connection of an admitted attendee ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Left {
    /// Attendee id.
    pub attendee: u64,
    /// Why.
    pub reason: DisconnectReason,
    /// Graphics bytes sent to it.
    pub bytes_sent: u64,
}

impl Handler<Left> for AttendeeManager {
    type Result = ();
    fn handle(&mut self, msg: Left, _: &mut Self::Context) {
        if let Some(a) = self.attendees.get_mut(&msg.attendee) {
            a.record.bytes_sent = msg.bytes_sent;
        }
        let _ = self.feed(
            Input::Left {
                attendee: msg.attendee,
                reason: msg.reason,
            },
            None,
        );
    }
}

/// A control message from an admitted attendee.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FromAttendee {
    /// Attendee id.
    pub attendee: u64,
    /// The message.
    pub msg: ClientMessage,
}

impl Handler<FromAttendee> for AttendeeManager {
    type Result = ();
    fn handle(&mut self, msg: FromAttendee, _: &mut Self::Context) {
        match msg.msg {
            ClientMessage::RequestControl { level } => {
                let _ = self.feed(
                    Input::RequestControl {
                        attendee: msg.attendee,
                        level,
                    },
                    None,
                );
            }
            ClientMessage::Input(event) => {
                let input = Input::Input {
                    attendee: msg.attendee,
                };
                let _ = self.feed(input, Some(&event));
            }
            ClientMessage::Bye { .. } => {
                let _ = self.feed(
                    Input::Left {
                        attendee: msg.attendee,
                        reason: DisconnectReason::ByAttendee,
                    },
                    None,
                );
            }
            ClientMessage::Hello(_) => {
                tracing::warn!(attendee = msg.attendee, "second hello; disconnecting");
                let _ = self.feed(
                    Input::Disconnect {
                        attendee: msg.attendee,
                        reason: DisconnectReason::Error,
                        message: "protocol error: second hello".into(),
                    },
                    None,
                );
            }
            // Channels are the ChannelHub's: the connection task hands joins
            // there; stamps are the graphics sender's, set there too.
            ClientMessage::ChannelJoin { .. } | ClientMessage::StampGraphics => {}
        }
    }
}

/// An attendee as the `net session` view shows it (also what a member
/// answers a cluster-wide listing with, over its link).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AttendeeInfo {
    /// Id.
    pub id: u64,
    /// Remote name.
    pub user: String,
    /// Peer address.
    pub computer: String,
    /// Session id.
    pub session: String,
    /// Invitation id.
    pub invitation: String,
    /// Control level.
    pub control_level: ControlLevel,
    /// Level asked for and not yet answered.
    pub pending_request: Option<ControlLevel>,
    /// The level as shown: `reqctrl-*` while a request is pending.
    pub level_state: tandem_session::ShownLevel,
    /// Connect time, RFC 3339.
    pub connected_at: String,
    /// Seconds since its last input or control request.
    pub idle_seconds: u64,
    /// Seconds since it was admitted (`ConnectTime`).
    pub connected_seconds: u64,
    /// Node it came through, when relayed.
    pub via_node: Option<String>,
}

/// Lists live attendees.
#[derive(Message)]
#[rtype(result = "Vec<AttendeeInfo>")]
pub struct ListAttendees {
    /// Only this session's.
    pub session: Option<String>,
}

impl Handler<ListAttendees> for AttendeeManager {
    type Result = MessageResult<ListAttendees>;
    fn handle(&mut self, msg: ListAttendees, _: &mut Self::Context) -> Self::Result {
        let mut list: Vec<AttendeeInfo> = self
            .attendees
            .values()
            .filter(|a| {
                msg.session
                    .as_deref()
                    .is_none_or(|s| s == a.record.session_id)
            })
            .filter_map(|a| self.attendee_info(a))
            .collect();
        list.sort_by_key(|a| a.id);
        MessageResult(list)
    }
}

/// One live attendee with what it holds open that the manager knows
/// (`IADsSession.Resources`): the graphics stream's state and held input.
#[derive(Clone, Debug)]
pub struct AttendeeDetails {
    /// The attendee.
    pub info: AttendeeInfo,
    /// Its session's graphics are paused for everyone.
    pub paused: bool,
    /// Keysyms its input holds down, in press order.
    pub held_keys: Vec<u32>,
    /// Buttons its input holds down, in press order.
    pub held_buttons: Vec<tandem_proto::MouseButton>,
}

/// One live attendee's details.
#[derive(Message)]
#[rtype(result = "Result<AttendeeDetails, NodeError>")]
pub struct GetAttendee {
    /// Attendee id.
    pub attendee: u64,
}

impl Handler<GetAttendee> for AttendeeManager {
    type Result = Result<AttendeeDetails, NodeError>;
    fn handle(&mut self, msg: GetAttendee, _: &mut Self::Context) -> Self::Result {
        let a = self
            .attendees
            .get(&msg.attendee)
            .ok_or_else(|| not_found("attendee", msg.attendee))?;
        let info = self
            .attendee_info(a)
            .ok_or_else(|| not_found("attendee", msg.attendee))?;
        let paused = self
            .sessions
            .get(&a.record.session_id)
            .is_some_and(|s| s.record.state == SessionState::Paused);
        Ok(AttendeeDetails {
            info,
            paused,
            held_keys: a.held.keys.clone(),
            held_buttons: a.held.buttons.clone(),
        })
    }
}

/// Sets (`Some`) or removes (`None`) an invitation group's rules; the
/// session core decides with them from the next admission or request on.
#[derive(Message)]
#[rtype(result = "Result<(), NodeError>")]
pub struct SetGroup {
    /// Group name.
    pub name: String,
    /// Its rules.
    pub rules: Option<tandem_session::GroupRules>,
}

impl Handler<SetGroup> for AttendeeManager {
    type Result = Result<(), NodeError>;
    fn handle(&mut self, msg: SetGroup, _: &mut Self::Context) -> Self::Result {
        let input = match msg.rules {
            Some(rules) => Input::PutGroup {
                name: msg.name.clone(),
                rules,
            },
            None => Input::RemoveGroup {
                name: msg.name.clone(),
            },
        };
        self.feed(input, None).map_err(book_error)?;
        tracing::info!(group = %msg.name, "group rules changed");
        Ok(())
    }
}

/// Every group with rules, by name.
#[derive(Message)]
#[rtype(result = "Vec<(String, tandem_session::GroupRules)>")]
pub struct ListGroups;

impl Handler<ListGroups> for AttendeeManager {
    type Result = MessageResult<ListGroups>;
    fn handle(&mut self, _: ListGroups, _: &mut Self::Context) -> Self::Result {
        MessageResult(
            self.book
                .groups()
                .map(|(n, g)| (n.to_owned(), g.clone()))
                .collect(),
        )
    }
}

/// Sets an attendee's control level directly (the sharer's `ControlLevel` put).
#[derive(Message)]
#[rtype(result = "Result<AttendeeInfo, NodeError>")]
pub struct SetControlLevel {
    /// Attendee id.
    pub attendee: u64,
    /// New level.
    pub level: ControlLevel,
}

impl Handler<SetControlLevel> for AttendeeManager {
    type Result = ResponseFuture<Result<AttendeeInfo, NodeError>>;
    fn handle(&mut self, msg: SetControlLevel, _: &mut Self::Context) -> Self::Result {
        let answer = self
            .feed_durable(Input::SetLevel {
                attendee: msg.attendee,
                level: msg.level,
            })
            .map_err(book_error)
            .and_then(|written| {
                let info = self
                    .attendees
                    .get(&msg.attendee)
                    .and_then(|a| self.attendee_info(a))
                    .ok_or_else(|| not_found("attendee", msg.attendee))?;
                Ok((written, info))
            });
        Box::pin(async move {
            let (written, info) = answer?;
            written.await?;
            Ok(info)
        })
    }
}

/// Grants or denies a pending control request (`SendControlLevelChangeResponse`).
#[derive(Message)]
#[rtype(result = "Result<(), NodeError>")]
pub struct AnswerControlRequest {
    /// Attendee id.
    pub attendee: u64,
    /// Grant or deny.
    pub grant: bool,
}

impl Handler<AnswerControlRequest> for AttendeeManager {
    type Result = ResponseFuture<Result<(), NodeError>>;
    fn handle(&mut self, msg: AnswerControlRequest, _: &mut Self::Context) -> Self::Result {
        let written = self
            .feed_durable(Input::Answer {
                attendee: msg.attendee,
                grant: msg.grant,
            })
            .map_err(book_error);
        Box::pin(async move { written?.await })
    }
}

/// Disconnects an attendee (`TerminateConnection`).
#[derive(Message)]
#[rtype(result = "Result<(), NodeError>")]
pub struct DisconnectAttendee {
    /// Attendee id.
    pub attendee: u64,
    /// Shown to the attendee.
    pub message: String,
}

impl Handler<DisconnectAttendee> for AttendeeManager {
    type Result = Result<(), NodeError>;
    fn handle(&mut self, msg: DisconnectAttendee, _: &mut Self::Context) -> Self::Result {
        self.feed(
            Input::Disconnect {
                attendee: msg.attendee,
                reason: DisconnectReason::BySharer,
                message: msg.message,
            },
            None,
        )
        .map_err(book_error)
    }
}

/// Tells every attendee the node is stopping and records them as disconnected.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ShutdownAll;

/// How long a node shutting down waits for its sessions' input threads to
/// inject the releases it queued (a stalled X server gets no longer).
pub const SHUTDOWN_INPUT_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

impl Handler<ShutdownAll> for AttendeeManager {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, _: ShutdownAll, _: &mut Self::Context) -> Self::Result {
        let _ = self.feed(
            Input::RemoveAll {
                reason: DisconnectReason::NodeShutdown,
                message: "the node is shutting down".into(),
            },
            None,
        );
        // Answered once the releases are on the desktop (no key stays down
        // after the node), waiting off this thread.
        let idle: Vec<_> = self.sessions.values().map(|s| s.input.idle()).collect();
        let deadline = Instant::now() + SHUTDOWN_INPUT_GRACE;
        Box::pin(async move {
            let _ = tokio::task::spawn_blocking(move || {
                for session in idle {
                    if !session.wait(deadline) {
                        tracing::warn!(
                            "input not released before shutdown: the desktop does not answer"
                        );
                    }
                }
            })
            .await;
        })
    }
}

/// The QUIC addresses of the other live cluster members changed: new
/// connection strings list them after this node's own (a viewer fails over
/// to them when this node dies).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetClusterAddrs(pub Vec<NodeAddr>);

impl Handler<SetClusterAddrs> for AttendeeManager {
    type Result = ();
    fn handle(&mut self, msg: SetClusterAddrs, _: &mut Self::Context) {
        self.cluster_addrs = msg.0;
    }
}

/// What a relay link needs to carry a session's graphics: its newest update
/// (latest wins), its encoder (catch-ups, key frames) and its state.
#[derive(Message)]
#[rtype(result = "Result<SessionFeed, NodeError>")]
pub struct FeedOf {
    /// Session id.
    pub session: String,
}

/// The answer to [`FeedOf`].
pub struct SessionFeed {
    /// Newest update.
    pub updates: UpdateReceiver,
    /// For catch-ups.
    pub encoder: Addr<EncoderActor>,
    /// The session's pointer.
    pub cursor: CursorReceiver,
    /// Shared rectangle size.
    pub width: u32,
    /// Shared rectangle size.
    pub height: u32,
}

impl Handler<FeedOf> for AttendeeManager {
    type Result = Result<SessionFeed, NodeError>;
    fn handle(&mut self, msg: FeedOf, _: &mut Self::Context) -> Self::Result {
        let s = self.session_mut(&msg.session)?;
        Ok(SessionFeed {
            updates: s.updates.clone(),
            encoder: s.encoder.clone(),
            cursor: s.cursor.clone(),
            width: s.rect.width,
            height: s.rect.height,
        })
    }
}
