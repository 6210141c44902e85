//! The AttendeeManager actor: the authority on sharing sessions, invitations,
//! attendees and control.
//!
//! It admits joins (invitation, password, limit, revocation, slowing down
//! repeated wrong passwords), keeps every attendee's control level and the
//! request/grant/deny flow, admits input only from `interactive` attendees,
//! tracks idle time, and emits every session event. Connection tasks and the
//! admin API talk to it by message only.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde::Serialize;
use tandem_capture::{InputSink, Rect};
use tandem_proto::{
    ClientMessage, ConnectionString, ControlLevel, DisconnectReason, Fingerprint, Hello,
    InputEvent, NodeAddr, RejectReason, ServerMessage, Welcome,
};
use tandem_registry::{AttendeeRecord, InvitationRecord, SessionRecord, SessionState};
use tokio::sync::{mpsc, oneshot, watch};

use crate::capture_actor::{
    CaptureActor, CaptureNotice, CursorReceiver, SetCaptureRect, SetPaused, StopCapture,
};
use crate::config::ControlPolicy;
use crate::encoder_actor::{Barrier, EncoderActor, UpdateReceiver};
use crate::error::NodeError;
use crate::events::SessionEvent;
use crate::metrics::Metrics;
use crate::registry_actor::{NextAttendeeId, Persist, RecordEvent, SessionRegistry};
use crate::{now_ms, passwords, rfc3339};

/// Commands queued per attendee; an attendee whose control stream backs up
/// this far is not reading it and is disconnected.
pub const ATTENDEE_COMMAND_QUEUE: usize = 256;

/// A wrong password from an address delays that address's next attempts by
/// this much, doubling per failure up to [`MAX_FAILURE_DELAY`].
pub const FIRST_FAILURE_DELAY: Duration = Duration::from_millis(250);
/// Ceiling of the delay.
pub const MAX_FAILURE_DELAY: Duration = Duration::from_secs(8);
/// Failures from one address after which it is refused outright until it
/// has been quiet for [`FAILURE_WINDOW`].
pub const MAX_FAILURES: u32 = 30;
/// Failures are forgotten after this long without a new one.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(600);
/// Addresses remembered for slowing down; the oldest are forgotten first.
pub const MAX_TRACKED_ADDRESSES: usize = 10_000;
/// Password checks one address may have under way at once; more are
/// refused as too many attempts. Each check under way also counts as a
/// failure when computing the delay of the next attempt, so attempts sent all
/// at once are slowed down like attempts in a row.
pub const MAX_CONCURRENT_CHECKS: u32 = 8;

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
    input: Box<dyn InputSink>,
    rect: Rect,
    default_level: ControlLevel,
    policy: ControlPolicy,
}

struct Attendee {
    record: AttendeeRecord,
    level: ControlLevel,
    pending: Option<ControlLevel>,
    last_activity: Instant,
    commands: mpsc::Sender<AttendeeCommand>,
    removed: oneshot::Sender<DisconnectReason>,
    level_tx: watch::Sender<ControlLevel>,
    refusal_sent: bool,
}

struct Failures {
    count: u32,
    last: Instant,
}

/// The actor.
pub struct AttendeeManager {
    registry: Addr<SessionRegistry>,
    metrics: Arc<Metrics>,
    fingerprint: Fingerprint,
    advertise: Vec<NodeAddr>,
    /// QUIC addresses of the other live cluster members (for connection strings).
    cluster_addrs: Vec<NodeAddr>,
    sessions: HashMap<String, Session>,
    invitations: HashMap<String, InvitationRecord>,
    attendees: HashMap<u64, Attendee>,
    failures: HashMap<IpAddr, Failures>,
    /// Password checks under way, per address (no entry when none).
    checking: HashMap<IpAddr, u32>,
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
            sessions: HashMap::new(),
            invitations: HashMap::new(),
            attendees: HashMap::new(),
            failures: HashMap::new(),
            checking: HashMap::new(),
        }
    }

    fn emit(&self, event: SessionEvent) {
        self.registry.do_send(RecordEvent(event));
    }

    fn connection_string(&self, session: &str, invitation: &str) -> String {
        ConnectionString {
            addrs: crate::cluster::link::ticket_addrs(&self.advertise, &self.cluster_addrs),
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
            attendees: self.count_on_invitation(&inv.id),
            revoked: inv.revoked,
            created_at: rfc3339(inv.created_at_ms),
            connection_string: self.connection_string(&inv.session_id, &inv.id),
        }
    }

    fn count_on_invitation(&self, invitation: &str) -> u32 {
        self.attendees
            .values()
            .filter(|a| a.record.invitation_id == invitation)
            .count() as u32
    }

    /// The delay before checking a password from `ip`: it doubles with every
    /// recent failure and every check still under way from that address (an
    /// attempt not yet answered may be one more failure; without counting it,
    /// a burst of concurrent guesses would all skip the slow-down).
    fn failure_delay(&mut self, ip: IpAddr) -> Result<Duration, Rejection> {
        let now = Instant::now();
        let checking = self.checking.get(&ip).copied().unwrap_or(0);
        if checking >= MAX_CONCURRENT_CHECKS {
            return Err(Rejection::new(RejectReason::TooManyAttempts));
        }
        let mut failures = 0;
        if let Some(f) = self.failures.get(&ip) {
            if now.duration_since(f.last) > FAILURE_WINDOW {
                self.failures.remove(&ip);
            } else {
                failures = f.count;
            }
        }
        if failures + checking >= MAX_FAILURES {
            return Err(Rejection::new(RejectReason::TooManyAttempts));
        }
        let count = failures + checking;
        if count == 0 {
            return Ok(Duration::ZERO);
        }
        let delay = FIRST_FAILURE_DELAY
            .saturating_mul(1u32 << (count - 1).min(16))
            .min(MAX_FAILURE_DELAY);
        Ok(delay)
    }

    fn start_check(&mut self, ip: IpAddr) {
        *self.checking.entry(ip).or_insert(0) += 1;
    }

    fn end_check(&mut self, ip: IpAddr) {
        if let Some(n) = self.checking.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.checking.remove(&ip);
            }
        }
    }

    fn record_failure(&mut self, ip: IpAddr) {
        let now = Instant::now();
        if self.failures.len() >= MAX_TRACKED_ADDRESSES && !self.failures.contains_key(&ip) {
            self.failures
                .retain(|_, f| now.duration_since(f.last) <= FAILURE_WINDOW);
            if self.failures.len() >= MAX_TRACKED_ADDRESSES {
                if let Some(oldest) = self
                    .failures
                    .iter()
                    .min_by_key(|(_, f)| f.last)
                    .map(|(ip, _)| *ip)
                {
                    self.failures.remove(&oldest);
                }
            }
        }
        let f = self.failures.entry(ip).or_insert(Failures {
            count: 0,
            last: now,
        });
        f.count += 1;
        f.last = now;
    }

    fn refresh_gauges(&self) {
        self.metrics.attendees.reset();
        for a in self.attendees.values() {
            self.metrics
                .attendees
                .with_label_values(&[&a.record.session_id, level_name(a.level)])
                .inc();
        }
        self.metrics.sessions_open.set(self.sessions.len() as i64);
    }

    /// Checks everything that does not need the password.
    fn precheck(
        &mut self,
        hello: &Hello,
        peer: SocketAddr,
    ) -> Result<(String, Duration), Rejection> {
        if hello.version != tandem_proto::PROTOCOL_VERSION {
            return Err(Rejection::new(RejectReason::UnsupportedVersion));
        }
        if let Err(e) = hello.validate() {
            return Err(Rejection {
                reason: RejectReason::Malformed,
                message: format!("malformed hello: {e}"),
            });
        }
        let delay = self.failure_delay(peer.ip())?;
        let session = self.sessions.get(&hello.session).ok_or_else(|| {
            if self.closed_session(&hello.session) {
                Rejection::new(RejectReason::SessionClosed)
            } else {
                Rejection::new(RejectReason::UnknownSession)
            }
        })?;
        let inv = self
            .invitations
            .get(&hello.invitation)
            .filter(|i| i.session_id == session.record.id)
            .ok_or_else(|| Rejection::new(RejectReason::UnknownInvitation))?;
        if inv.revoked {
            return Err(Rejection::new(RejectReason::InvitationRevoked));
        }
        Ok((inv.password_hash.clone(), delay))
    }

    fn closed_session(&self, id: &str) -> bool {
        // Closed sessions are dropped from `sessions`; their invitations stay.
        self.invitations.values().any(|i| i.session_id == id)
    }

    /// Admits after the password was checked: rechecks what may have changed
    /// meanwhile and reserves the slot synchronously, so a limit holds under
    /// concurrent joins.
    fn admit(
        &mut self,
        hello: Hello,
        peer: SocketAddr,
        via_node: Option<String>,
        id: u64,
    ) -> Result<Admitted, Rejection> {
        let session = self
            .sessions
            .get(&hello.session)
            .ok_or_else(|| Rejection::new(RejectReason::SessionClosed))?;
        let inv = self
            .invitations
            .get(&hello.invitation)
            .ok_or_else(|| Rejection::new(RejectReason::UnknownInvitation))?;
        if inv.revoked {
            return Err(Rejection::new(RejectReason::InvitationRevoked));
        }
        if self.count_on_invitation(&inv.id) >= inv.attendee_limit {
            return Err(Rejection {
                reason: RejectReason::AttendeeLimitReached,
                message: format!(
                    "attendee limit reached: this invitation admits {} attendee(s) at once",
                    inv.attendee_limit
                ),
            });
        }
        let level = session.default_level;
        let (commands_tx, commands_rx) = mpsc::channel(ATTENDEE_COMMAND_QUEUE);
        let (removed_tx, removed_rx) = oneshot::channel();
        let (level_tx, level_rx) = watch::channel(level);
        let record = AttendeeRecord {
            id,
            session_id: session.record.id.clone(),
            invitation_id: inv.id.clone(),
            user: hello.name.clone(),
            computer: peer.to_string(),
            via_node,
            control_level: level_name(level).to_owned(),
            connected_at_ms: now_ms(),
            disconnected_at_ms: None,
            disconnect_reason: None,
            bytes_sent: 0,
        };
        let welcome = Welcome {
            attendee_id: id,
            session: session.record.id.clone(),
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
            removed: removed_rx,
        };
        self.registry.do_send(Persist::Attendee(record.clone()));
        self.emit(SessionEvent::AttendeeConnected {
            session: record.session_id.clone(),
            attendee: id,
            user: record.user.clone(),
            computer: record.computer.clone(),
            level,
        });
        self.attendees.insert(
            id,
            Attendee {
                record,
                level,
                pending: None,
                last_activity: Instant::now(),
                commands: commands_tx,
                removed: removed_tx,
                level_tx,
                refusal_sent: false,
            },
        );
        self.refresh_gauges();
        Ok(admitted)
    }

    fn tell(&mut self, attendee: u64, msg: ServerMessage) {
        let Some(a) = self.attendees.get(&attendee) else {
            return;
        };
        if a.commands.try_send(AttendeeCommand::Send(msg)).is_err() {
            tracing::warn!(
                attendee,
                "attendee does not read its control stream; disconnecting"
            );
            self.remove_attendee(
                attendee,
                DisconnectReason::Error,
                "control stream backed up",
            );
        }
    }

    fn set_level(&mut self, attendee: u64, level: ControlLevel) -> Result<(), NodeError> {
        let a = self
            .attendees
            .get_mut(&attendee)
            .ok_or_else(|| not_found("attendee", attendee))?;
        a.pending = None;
        if a.level == level {
            return Ok(());
        }
        let was_interactive = a.level == ControlLevel::Interactive;
        a.level = level;
        a.refusal_sent = false;
        a.record.control_level = level_name(level).to_owned();
        a.level_tx.send_replace(level);
        let session = a.record.session_id.clone();
        self.registry.do_send(Persist::Attendee(a.record.clone()));
        if was_interactive {
            self.release_input(&session);
        }
        self.tell(attendee, ServerMessage::ControlLevelChanged { level });
        self.emit(SessionEvent::AttendeeUpdated {
            session,
            attendee,
            level,
        });
        self.refresh_gauges();
        Ok(())
    }

    fn release_input(&mut self, session: &str) {
        if let Some(s) = self.sessions.get_mut(session) {
            if let Err(error) = s.input.release_all() {
                tracing::warn!(session, %error, "releasing keys and buttons failed");
            }
        }
    }

    fn answer(&mut self, attendee: u64, grant: bool, by: &str) -> Result<(), NodeError> {
        let a = self
            .attendees
            .get_mut(&attendee)
            .ok_or_else(|| not_found("attendee", attendee))?;
        let requested = a.pending.take().ok_or_else(|| {
            NodeError::Conflict(format!(
                "attendee {attendee} has no pending control request"
            ))
        })?;
        let session = a.record.session_id.clone();
        let message = if grant {
            format!("granted {} by the {by}", level_name(requested))
        } else {
            format!("request for {} denied by the {by}", level_name(requested))
        };
        self.tell(
            attendee,
            ServerMessage::ControlRequestAnswered {
                requested,
                granted: grant,
                message,
            },
        );
        self.emit(SessionEvent::ControlLevelChangeAnswered {
            session,
            attendee,
            requested,
            granted: grant,
            by: by.to_owned(),
        });
        if grant {
            self.set_level(attendee, requested)?;
        }
        Ok(())
    }

    fn request_control(&mut self, attendee: u64, requested: ControlLevel) {
        let Some(a) = self.attendees.get_mut(&attendee) else {
            return;
        };
        // A control request is activity, like input (see `AttendeeInfo::idle_seconds`).
        a.last_activity = Instant::now();
        let session = a.record.session_id.clone();
        if requested == ControlLevel::None || requested == a.level {
            // Giving control back, or asking for what it has: no sharer decision needed.
            let _ = self.set_level(attendee, requested);
            return;
        }
        if requested < a.level {
            let _ = self.set_level(attendee, requested);
            return;
        }
        a.pending = Some(requested);
        self.emit(SessionEvent::ControlLevelChangeRequested {
            session: session.clone(),
            attendee,
            requested,
        });
        let policy = self
            .sessions
            .get(&session)
            .map(|s| s.policy)
            .unwrap_or(ControlPolicy::Ask);
        let auto_grant = match policy {
            ControlPolicy::GrantAll => true,
            ControlPolicy::GrantView => requested == ControlLevel::View,
            ControlPolicy::Ask => false,
        };
        if auto_grant {
            let _ = self.answer(attendee, true, "policy");
        }
    }

    fn input(&mut self, attendee: u64, event: InputEvent) {
        let Some(a) = self.attendees.get_mut(&attendee) else {
            return;
        };
        a.last_activity = Instant::now();
        if a.level != ControlLevel::Interactive {
            self.metrics
                .input_events
                .with_label_values(&["dropped"])
                .inc();
            if !std::mem::replace(&mut a.refusal_sent, true) {
                let message = format!(
                    "input ignored: your control level is {}; ask for interactive control first",
                    level_name(a.level)
                );
                self.tell(attendee, ServerMessage::InputRefused { message });
            }
            return;
        }
        let session_id = a.record.session_id.clone();
        let Some(session) = self.sessions.get_mut(&session_id) else {
            return;
        };
        let event = match event {
            InputEvent::MouseMove { x, y } => {
                if x >= session.rect.width || y >= session.rect.height {
                    self.metrics
                        .input_events
                        .with_label_values(&["dropped"])
                        .inc();
                    return;
                }
                InputEvent::MouseMove {
                    x: session.rect.x + x,
                    y: session.rect.y + y,
                }
            }
            other => other,
        };
        match session.input.inject(&event) {
            Ok(()) => self
                .metrics
                .input_events
                .with_label_values(&["accepted"])
                .inc(),
            Err(error) => {
                self.metrics
                    .input_events
                    .with_label_values(&["failed"])
                    .inc();
                tracing::warn!(attendee, %error, "input injection failed");
            }
        }
    }

    fn remove_attendee(&mut self, attendee: u64, reason: DisconnectReason, message: &str) {
        let Some(mut a) = self.attendees.remove(&attendee) else {
            return;
        };
        // The connection task may already be gone; then this is a no-op.
        let _ = a
            .commands
            .try_send(AttendeeCommand::Close(reason, message.to_owned()));
        // Ends the connection after a grace period if the `Close` cannot be
        // delivered (queue full, or the control stream jammed).
        let _ = a.removed.send(reason);
        a.record.disconnected_at_ms = Some(now_ms());
        a.record.disconnect_reason = Some(reason_name(reason).to_owned());
        let session = a.record.session_id.clone();
        self.registry.do_send(Persist::Attendee(a.record));
        if a.level == ControlLevel::Interactive {
            self.release_input(&session);
        }
        self.emit(SessionEvent::AttendeeDisconnected {
            session,
            attendee,
            reason,
        });
        self.refresh_gauges();
    }

    fn attendee_info(&self, a: &Attendee) -> AttendeeInfo {
        AttendeeInfo {
            id: a.record.id,
            user: a.record.user.clone(),
            computer: a.record.computer.clone(),
            session: a.record.session_id.clone(),
            invitation: a.record.invitation_id.clone(),
            control_level: a.level,
            pending_request: a.pending,
            connected_at: rfc3339(a.record.connected_at_ms),
            idle_seconds: a.last_activity.elapsed().as_secs(),
            via_node: a.record.via_node.clone(),
        }
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

    fn broadcast(&mut self, session: &str, msg: &ServerMessage) {
        let ids: Vec<u64> = self
            .attendees
            .values()
            .filter(|a| a.record.session_id == session)
            .map(|a| a.record.id)
            .collect();
        for id in ids {
            self.tell(id, msg.clone());
        }
    }
}

impl Actor for AttendeeManager {
    type Context = Context<Self>;
}

fn not_found(what: &'static str, id: impl ToString) -> NodeError {
    NodeError::NotFound {
        what,
        id: id.to_string(),
    }
}

/// Name of a control level as shown to people and stored.
pub fn level_name(level: ControlLevel) -> &'static str {
    match level {
        ControlLevel::None => "none",
        ControlLevel::View => "view",
        ControlLevel::Interactive => "interactive",
    }
}

/// Name of a disconnect reason as stored.
pub fn reason_name(reason: DisconnectReason) -> &'static str {
    match reason {
        DisconnectReason::BySharer => "by sharer",
        DisconnectReason::ByAttendee => "by attendee",
        DisconnectReason::Error => "error",
        DisconnectReason::Timeout => "timeout",
        DisconnectReason::SessionClosed => "session closed",
        DisconnectReason::NodeShutdown => "node shutdown",
        DisconnectReason::NodeRestarted => "node restarted",
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
    pub control_policy: String,
    /// Live attendees.
    pub attendees: usize,
    /// Creation time.
    pub created_at: String,
}

impl Session {
    fn info(&self, attendees: usize) -> SessionInfo {
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
            default_control_level: self.default_level,
            control_policy: self.policy.as_str().to_owned(),
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
                    for inv in msg.invitations {
                        act.invitations.insert(inv.id.clone(), inv);
                    }
                    let session = Session {
                        record: msg.record,
                        capture: msg.capture,
                        encoder: msg.encoder,
                        updates: msg.updates,
                        cursor: msg.cursor,
                        input: msg.input,
                        rect: msg.rect,
                        default_level: msg.default_level,
                        policy: msg.policy,
                    };
                    let info = session.info(0);
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
            .map(|s| {
                let n = self
                    .attendees
                    .values()
                    .filter(|a| a.record.session_id == s.record.id)
                    .count();
                s.info(n)
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
        let (capture, encoder) = (session.capture.clone(), session.encoder.clone());
        self.registry
            .do_send(Persist::Session(session.record.clone()));
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
            // Messages to one actor are handled in order: once the capture
            // answers, every frame it grabbed before the pause is queued at
            // the encoder ahead of the barrier.
            let _ = capture.send(SetPaused(paused)).await;
            if paused {
                let _ = encoder.send(Barrier).await;
            }
        };
        Box::pin(settled.into_actor(self).map(move |(), act, _| {
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
                    act.registry
                        .do_send(Persist::Session(session.record.clone()));
                    act.announce_shared_rect(&session_id, rect);
                    Ok([rect.x, rect.y, rect.width, rect.height])
                }),
        )
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
        let ids: Vec<u64> = self
            .attendees
            .values()
            .filter(|a| a.record.session_id == msg.session)
            .map(|a| a.record.id)
            .collect();
        for id in ids {
            self.remove_attendee(
                id,
                DisconnectReason::SessionClosed,
                "the sharer closed the session",
            );
        }
        session.capture.do_send(StopCapture);
        if let Err(error) = session.input.release_all() {
            tracing::warn!(session = %msg.session, %error, "releasing input failed");
        }
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
            if msg.password.is_empty() || msg.password.len() > tandem_proto::MAX_PASSWORD_LEN {
                return Err(NodeError::Invalid(format!(
                    "password must be 1 to {} bytes",
                    tandem_proto::MAX_PASSWORD_LEN
                )));
            }
            if msg.attendee_limit == 0 || msg.attendee_limit > crate::config::MAX_ATTENDEE_LIMIT {
                return Err(NodeError::Invalid(format!(
                    "attendee limit must be between 1 and {}",
                    crate::config::MAX_ATTENDEE_LIMIT
                )));
            }
            let id = crate::random_id(16);
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
            for inv in self
                .invitations
                .values()
                .filter(|i| i.session_id == msg.session)
            {
                if inv.auth_string == auth {
                    return Err(NodeError::Conflict(format!(
                        "auth string {auth:?} is already used in this session"
                    )));
                }
                if inv.group == group {
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
        Box::pin(work.into_actor(self).map(|res, act, _| {
            let record = res?;
            // Uniqueness was checked before hashing; recheck now that we are
            // back on the actor, in case a concurrent create won the race.
            let info = act.invitation_info(&record);
            act.invitations.insert(record.id.clone(), record);
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
                    let info = act.invitation_info(&updated);
                    act.invitations.insert(updated.id.clone(), updated);
                    Ok(info)
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
    type Result = ResponseActFuture<Self, Result<Admitted, Rejection>>;
    fn handle(&mut self, msg: Join, _: &mut Self::Context) -> Self::Result {
        let (hash, delay) = match self.precheck(&msg.hello, msg.peer) {
            Ok(v) => v,
            Err(r) => {
                self.metrics
                    .joins
                    .with_label_values(&[reject_label(r.reason)])
                    .inc();
                return Box::pin(fut::ready(Err(r)));
            }
        };
        self.start_check(msg.peer.ip());
        let password = msg.hello.password.clone();
        let registry = self.registry.clone();
        let check = async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let ok = tokio::task::spawn_blocking(move || passwords::verify(&hash, &password))
                .await
                .unwrap_or(false);
            if !ok {
                return Ok(None);
            }
            match registry.send(NextAttendeeId).await {
                Ok(Ok(id)) => Ok(Some(id)),
                _ => Err(()),
            }
        };
        Box::pin(check.into_actor(self).map(move |res, act, _| {
            act.end_check(msg.peer.ip());
            let result = match res {
                Ok(Some(id)) => act.admit(msg.hello, msg.peer, msg.via_node, id),
                Ok(None) => {
                    act.record_failure(msg.peer.ip());
                    tracing::info!(peer = %msg.peer, user = %msg.hello.name, "wrong password");
                    Err(Rejection::new(RejectReason::WrongPassword))
                }
                Err(()) => Err(Rejection::new(RejectReason::NodeShuttingDown)),
            };
            let label = match &result {
                Ok(_) => "admitted",
                Err(r) => reject_label(r.reason),
            };
            act.metrics.joins.with_label_values(&[label]).inc();
            result
        }))
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
        self.remove_attendee(msg.attendee, msg.reason, "");
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
            ClientMessage::RequestControl { level } => self.request_control(msg.attendee, level),
            ClientMessage::Input(event) => self.input(msg.attendee, event),
            ClientMessage::Bye { .. } => {
                self.remove_attendee(msg.attendee, DisconnectReason::ByAttendee, "")
            }
            ClientMessage::Hello(_) => {
                tracing::warn!(attendee = msg.attendee, "second hello; disconnecting");
                self.remove_attendee(
                    msg.attendee,
                    DisconnectReason::Error,
                    "protocol error: second hello",
                );
            }
            // Channels are the ChannelHub's: the connection task hands joins there.
            ClientMessage::ChannelJoin { .. } => {}
        }
    }
}

/// An attendee as the `net session` view shows it.
#[derive(Clone, Debug, Serialize)]
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
    /// Connect time, RFC 3339.
    pub connected_at: String,
    /// Seconds since its last input or control request.
    pub idle_seconds: u64,
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
            .map(|a| self.attendee_info(a))
            .collect();
        list.sort_by_key(|a| a.id);
        MessageResult(list)
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
    type Result = Result<AttendeeInfo, NodeError>;
    fn handle(&mut self, msg: SetControlLevel, _: &mut Self::Context) -> Self::Result {
        let pending = self.attendees.get(&msg.attendee).and_then(|a| a.pending);
        if let Some(requested) = pending {
            // A direct set also answers a pending request.
            let granted = msg.level >= requested;
            if let Some(a) = self.attendees.get(&msg.attendee) {
                let session = a.record.session_id.clone();
                self.emit(SessionEvent::ControlLevelChangeAnswered {
                    session,
                    attendee: msg.attendee,
                    requested,
                    granted,
                    by: "sharer".into(),
                });
            }
            self.tell(
                msg.attendee,
                ServerMessage::ControlRequestAnswered {
                    requested,
                    granted,
                    message: format!("the sharer set your level to {}", level_name(msg.level)),
                },
            );
        }
        self.set_level(msg.attendee, msg.level)?;
        let a = self
            .attendees
            .get(&msg.attendee)
            .ok_or_else(|| not_found("attendee", msg.attendee))?;
        Ok(self.attendee_info(a))
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
    type Result = Result<(), NodeError>;
    fn handle(&mut self, msg: AnswerControlRequest, _: &mut Self::Context) -> Self::Result {
        self.answer(msg.attendee, msg.grant, "sharer")
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
        if !self.attendees.contains_key(&msg.attendee) {
            return Err(not_found("attendee", msg.attendee));
        }
        self.remove_attendee(msg.attendee, DisconnectReason::BySharer, &msg.message);
        Ok(())
    }
}

/// Tells every attendee the node is stopping and records them as disconnected.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ShutdownAll;

impl Handler<ShutdownAll> for AttendeeManager {
    type Result = ();
    fn handle(&mut self, _: ShutdownAll, _: &mut Self::Context) {
        let ids: Vec<u64> = self.attendees.keys().copied().collect();
        for id in ids {
            self.remove_attendee(
                id,
                DisconnectReason::NodeShutdown,
                "the node is shutting down",
            );
        }
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
