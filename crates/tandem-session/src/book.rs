//! [`SessionBook`]: every decision about sessions, invitations, attendees
//! and control, fed with [`Input`]s and the time, answering [`Effect`]s.
//!
//! The book holds only what the rules need (levels, pending requests,
//! limits, revocation, policies, activity times, the password throttle);
//! records, connections, capture and input sinks stay with the caller,
//! which applies the effects in the order given.

use std::collections::{BTreeMap, HashMap};
// An address is only a value here (the throttle's key): `core::net` has no sockets.
use core::net::IpAddr;
use std::time::Duration;

use tandem_proto::{ChannelAccess, ControlLevel, DisconnectReason, RejectReason, ServerMessage};

use crate::throttle::throttle_key;
use crate::{ControlPolicy, PasswordThrottle, Time};

/// An attendee's id (assigned by the caller, unique on the node).
pub type AttendeeId = u64;
/// A join under way (assigned by the caller, unique while it lasts).
pub type JoinId = u64;

/// The rules of one sharing session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionRules {
    /// Level of new attendees.
    pub default_level: ControlLevel,
    /// How control requests are answered.
    pub policy: ControlPolicy,
}

/// The rules of one invitation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvitationRules {
    /// The session it admits to.
    pub session: String,
    /// Attendees admitted through it at once (at least 1).
    pub limit: u32,
    /// Revoked: no new joins (final).
    pub revoked: bool,
    /// Its group: the authorization class of the attendees it admits
    /// ([`GroupRules`] of that name, when there are any).
    pub group: String,
}

/// Most groups with rules on a node.
pub const MAX_GROUPS: usize = 256;
/// Most channel defaults of one group.
pub const MAX_GROUP_CHANNELS: usize = 64;

/// The permissions of an invitation group, an authorization class (the
/// API's "separate attendees into groups that can be granted different
/// authorization levels"). Each rule left out falls back to the session's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupRules {
    /// Level of the group's new attendees (`None`: the session's default).
    pub default_level: Option<ControlLevel>,
    /// The highest level a request of the group's attendees is granted
    /// at once; above it the sharer decides (`None`: the session's policy).
    pub auto_grant: Option<ControlLevel>,
    /// Access the group's attendees start with on channels, by channel name
    /// (the sharer may change it per attendee; channels not named: none).
    pub channels: BTreeMap<String, ChannelAccess>,
}

/// An attendee's control level as the sharer sees it (the API's
/// `CTRL_LEVEL`): the level it has, or, while a request of it is pending,
/// the level it asked for (`CTRL_LEVEL_REQCTRL_VIEW`,
/// `CTRL_LEVEL_REQCTRL_INTERACTIVE`). Its level is unchanged meanwhile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShownLevel {
    /// Level `none`, nothing asked.
    None,
    /// Level `view`, nothing asked.
    View,
    /// Level `interactive`.
    Interactive,
    /// Asked for `view` (from `none`), not yet answered.
    ReqctrlView,
    /// Asked for `interactive`, not yet answered.
    ReqctrlInteractive,
}

impl ShownLevel {
    /// The shown level of an attendee at `level` with `pending` asked for.
    /// A request is only ever pending for more than the level (asking for
    /// less or the same is answered at once), so `pending` wins.
    pub fn of(level: ControlLevel, pending: Option<ControlLevel>) -> Self {
        match (pending, level) {
            (Some(ControlLevel::Interactive), _) => Self::ReqctrlInteractive,
            (Some(ControlLevel::View), _) => Self::ReqctrlView,
            (_, ControlLevel::None) => Self::None,
            (_, ControlLevel::View) => Self::View,
            (_, ControlLevel::Interactive) => Self::Interactive,
        }
    }

    /// Whether a request is pending.
    pub fn is_request(self) -> bool {
        matches!(self, Self::ReqctrlView | Self::ReqctrlInteractive)
    }

    /// The name shown in the API, events and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::View => "view",
            Self::Interactive => "interactive",
            Self::ReqctrlView => "reqctrl-view",
            Self::ReqctrlInteractive => "reqctrl-interactive",
        }
    }
}

impl From<ControlLevel> for ShownLevel {
    fn from(level: ControlLevel) -> Self {
        Self::of(level, None)
    }
}

impl std::fmt::Display for ShownLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who answered a control request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Answerer {
    /// The sharer (admin API, library).
    Sharer,
    /// The session's policy, at once.
    Policy,
    /// The attendee's group rules (`auto_grant`), at once.
    Group,
}

impl Answerer {
    /// The name shown in events and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sharer => "sharer",
            Self::Policy => "policy",
            Self::Group => "group",
        }
    }
}

/// The outcome of a password check the book asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Right; the caller allocated this id for the attendee.
    Right {
        /// The new attendee's id.
        attendee: AttendeeId,
    },
    /// Wrong password.
    Wrong,
    /// The check could not be made (the node is stopping).
    Failed,
}

/// What happens to the book.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A session opened (or reopened after a restart).
    OpenSession {
        /// Session id.
        session: String,
        /// Its rules.
        rules: SessionRules,
    },
    /// The sharer closed a session: its attendees are removed.
    CloseSession {
        /// Session id.
        session: String,
    },
    /// A group's rules were set (replacing any it had).
    PutGroup {
        /// Group name.
        name: String,
        /// Its rules.
        rules: GroupRules,
    },
    /// A group's rules were removed: its attendees follow the session's.
    RemoveGroup {
        /// Group name.
        name: String,
    },
    /// An invitation was created or changed (limit, revocation), already persisted.
    PutInvitation {
        /// Invitation id.
        id: String,
        /// Its rules.
        rules: InvitationRules,
    },
    /// A hello arrived (its version and fields already validated).
    Join {
        /// The caller's handle for this join.
        join: JoinId,
        /// Address it came from (the throttle's key).
        from: IpAddr,
        /// Session asked for.
        session: String,
        /// Invitation presented.
        invitation: String,
    },
    /// The password check asked for by [`Effect::CheckPassword`] is done.
    Checked {
        /// The join.
        join: JoinId,
        /// Its outcome.
        verdict: Verdict,
    },
    /// An admitted attendee's connection ended.
    Left {
        /// Attendee.
        attendee: AttendeeId,
        /// Why.
        reason: DisconnectReason,
    },
    /// The node removes an attendee (sharer's disconnect, a jammed control stream).
    Disconnect {
        /// Attendee.
        attendee: AttendeeId,
        /// Why.
        reason: DisconnectReason,
        /// Shown to the attendee.
        message: String,
    },
    /// Every attendee is removed (node shutdown).
    RemoveAll {
        /// Why.
        reason: DisconnectReason,
        /// Shown to the attendees.
        message: String,
    },
    /// The attendee asks for a level.
    RequestControl {
        /// Attendee.
        attendee: AttendeeId,
        /// Level asked for.
        level: ControlLevel,
    },
    /// The sharer sets a level directly (answers a pending request too).
    SetLevel {
        /// Attendee.
        attendee: AttendeeId,
        /// New level.
        level: ControlLevel,
    },
    /// The sharer grants or denies the pending request.
    Answer {
        /// Attendee.
        attendee: AttendeeId,
        /// Grant or deny.
        grant: bool,
    },
    /// The attendee sent an input event.
    Input {
        /// Attendee.
        attendee: AttendeeId,
    },
}

/// A session event the caller records and streams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// An attendee was admitted.
    AttendeeConnected {
        /// Session.
        session: String,
        /// Attendee.
        attendee: AttendeeId,
        /// Its level.
        level: ControlLevel,
    },
    /// An attendee's level changed.
    AttendeeUpdated {
        /// Session.
        session: String,
        /// Attendee.
        attendee: AttendeeId,
        /// New level.
        level: ControlLevel,
        /// Its shown level now (the level: nothing is pending).
        shown: ShownLevel,
    },
    /// An attendee asked for a level.
    ControlRequested {
        /// Session.
        session: String,
        /// Attendee.
        attendee: AttendeeId,
        /// Level asked for.
        requested: ControlLevel,
        /// Its shown level now: `reqctrl-*`.
        shown: ShownLevel,
    },
    /// A request was answered.
    ControlAnswered {
        /// Session.
        session: String,
        /// Attendee.
        attendee: AttendeeId,
        /// Level asked for.
        requested: ControlLevel,
        /// Granted or denied.
        granted: bool,
        /// By whom.
        by: Answerer,
        /// Its shown level after the answer (no longer a request).
        shown: ShownLevel,
    },
    /// An attendee left or was removed.
    AttendeeDisconnected {
        /// Session.
        session: String,
        /// Attendee.
        attendee: AttendeeId,
        /// Why.
        reason: DisconnectReason,
    },
}

/// What the caller must do, in order. The vocabulary of the shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Check the join's password against its invitation after `delay`
    /// (off the caller's thread), allocate an attendee id if it is right,
    /// and feed back [`Input::Checked`].
    CheckPassword {
        /// The join.
        join: JoinId,
        /// Wait this long first (the throttle).
        delay: Duration,
    },
    /// Refuse the join with this reason and line.
    Reject {
        /// The join.
        join: JoinId,
        /// Machine-readable reason.
        reason: RejectReason,
        /// The line to show.
        message: String,
    },
    /// Admit the join as `attendee` at `level`: create its record and
    /// connection state, persist the record, welcome it.
    Admit {
        /// The join.
        join: JoinId,
        /// The new attendee.
        attendee: AttendeeId,
        /// Its session.
        session: String,
        /// Its level.
        level: ControlLevel,
        /// Channel access it starts with, by channel name (its group's).
        channels: BTreeMap<String, ChannelAccess>,
    },
    /// The attendee's level is now `level`: persist its record and publish
    /// the level to its connection (graphics stop at `none`, the clipboard
    /// follows).
    Level {
        /// Attendee.
        attendee: AttendeeId,
        /// New level.
        level: ControlLevel,
    },
    /// Send a control message to the attendee. If its queue is full, the
    /// caller feeds back [`Input::Disconnect`] (it does not read).
    Tell {
        /// Attendee.
        attendee: AttendeeId,
        /// The message.
        msg: ServerMessage,
    },
    /// Record and stream a session event.
    Emit(Event),
    /// Release every key and button held on the session's desktop (an
    /// interactive attendee lost control or left).
    ReleaseInput {
        /// Session.
        session: String,
    },
    /// Inject the attendee's input event into the session's desktop.
    Inject {
        /// Attendee.
        attendee: AttendeeId,
        /// Session.
        session: String,
    },
    /// The attendee's input event is dropped (not interactive).
    DropInput {
        /// Attendee.
        attendee: AttendeeId,
    },
    /// The attendee is gone from the book: say `Bye` with this reason and
    /// close its connection (if it still has one), record the disconnect.
    Remove {
        /// Attendee.
        attendee: AttendeeId,
        /// Why.
        reason: DisconnectReason,
        /// Shown to the attendee.
        message: String,
    },
}

/// Why the book refused an operation of the sharer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    /// No such attendee (it left, or never was).
    #[error("attendee {0} not found")]
    UnknownAttendee(AttendeeId),
    /// No such session.
    #[error("session {0} not found")]
    UnknownSession(String),
    /// The attendee asked for nothing.
    #[error("attendee {0} has no pending control request")]
    NoPendingRequest(AttendeeId),
    /// A `Checked` for a join the book does not know.
    #[error("join {0} is not under way")]
    UnknownJoin(JoinId),
    /// An attendee limit of zero.
    #[error("an invitation admits at least one attendee")]
    ZeroLimit,
    /// No rules for this group.
    #[error("group {0} has no rules")]
    UnknownGroup(String),
    /// A new group beyond [`MAX_GROUPS`].
    #[error("at most {MAX_GROUPS} groups may have rules")]
    TooManyGroups,
    /// More than [`MAX_GROUP_CHANNELS`] channel defaults.
    #[error("a group names at most {MAX_GROUP_CHANNELS} channels")]
    TooManyGroupChannels,
}

/// An attendee as the book sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttendeeView {
    /// Session.
    pub session: String,
    /// Invitation.
    pub invitation: String,
    /// Level.
    pub level: ControlLevel,
    /// Level asked for and not yet answered.
    pub pending: Option<ControlLevel>,
    /// Its level as shown: `reqctrl-*` while `pending`.
    pub shown: ShownLevel,
    /// Time since its last input or control request (or its join).
    pub idle: Duration,
    /// Time since it was admitted (`ConnectTime`).
    pub connected: Duration,
}

#[derive(Clone, Debug)]
struct Attendee {
    session: String,
    invitation: String,
    level: ControlLevel,
    pending: Option<ControlLevel>,
    last_activity: Time,
    /// When it was admitted.
    admitted_at: Time,
    /// An `InputRefused` was sent since the last level change.
    refusal_sent: bool,
}

#[derive(Clone, Debug)]
struct PendingJoin {
    from: IpAddr,
    session: String,
    invitation: String,
}

/// The book. Ordered maps, so iteration (and so the order of effects) is
/// the same for the same inputs.
#[derive(Clone, Debug, Default)]
pub struct SessionBook {
    sessions: BTreeMap<String, SessionRules>,
    invitations: BTreeMap<String, InvitationRules>,
    groups: BTreeMap<String, GroupRules>,
    attendees: BTreeMap<AttendeeId, Attendee>,
    joins: HashMap<JoinId, PendingJoin>,
    throttle: PasswordThrottle<IpAddr>,
}

impl SessionBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// The one entry point: applies `input` at `now`, returns what to do.
    pub fn handle(&mut self, now: Time, input: Input) -> Result<Vec<Effect>, BookError> {
        let mut out = Vec::new();
        match input {
            Input::OpenSession { session, rules } => {
                self.sessions.insert(session, rules);
            }
            Input::CloseSession { session } => {
                if self.sessions.remove(&session).is_none() {
                    return Err(BookError::UnknownSession(session));
                }
                for id in self.attendees_of(&session) {
                    self.remove(
                        id,
                        DisconnectReason::SessionClosed,
                        "the sharer closed the session",
                        &mut out,
                    );
                }
            }
            Input::PutGroup { name, rules } => {
                if rules.channels.len() > MAX_GROUP_CHANNELS {
                    return Err(BookError::TooManyGroupChannels);
                }
                if !self.groups.contains_key(&name) && self.groups.len() >= MAX_GROUPS {
                    return Err(BookError::TooManyGroups);
                }
                self.groups.insert(name, rules);
            }
            Input::RemoveGroup { name } => {
                if self.groups.remove(&name).is_none() {
                    return Err(BookError::UnknownGroup(name));
                }
            }
            Input::PutInvitation { id, rules } => {
                if rules.limit == 0 {
                    return Err(BookError::ZeroLimit);
                }
                let revoked = self.invitations.get(&id).is_some_and(|i| i.revoked);
                let rules = InvitationRules {
                    // Revocation is final.
                    revoked: rules.revoked || revoked,
                    ..rules
                };
                self.invitations.insert(id, rules);
            }
            Input::Join {
                join,
                from,
                session,
                invitation,
            } => match self.precheck(now, from, &session, &invitation) {
                Ok(delay) => {
                    self.throttle.start_check(throttle_key(from), &invitation);
                    self.joins.insert(
                        join,
                        PendingJoin {
                            from,
                            session,
                            invitation,
                        },
                    );
                    out.push(Effect::CheckPassword { join, delay });
                }
                Err(reason) => out.push(reject(join, reason)),
            },
            Input::Checked { join, verdict } => {
                let pending = self
                    .joins
                    .remove(&join)
                    .ok_or(BookError::UnknownJoin(join))?;
                self.throttle
                    .end_check(throttle_key(pending.from), &pending.invitation);
                match verdict {
                    Verdict::Right { attendee } => {
                        self.admit(now, join, attendee, pending, &mut out)
                    }
                    Verdict::Wrong => {
                        self.throttle.record_failure(
                            now,
                            throttle_key(pending.from),
                            &pending.invitation,
                        );
                        out.push(reject(join, RejectReason::WrongPassword));
                    }
                    Verdict::Failed => out.push(reject(join, RejectReason::NodeShuttingDown)),
                }
            }
            Input::Left { attendee, reason } => self.remove(attendee, reason, "", &mut out),
            Input::Disconnect {
                attendee,
                reason,
                message,
            } => {
                if !self.attendees.contains_key(&attendee) {
                    return Err(BookError::UnknownAttendee(attendee));
                }
                self.remove(attendee, reason, &message, &mut out);
            }
            Input::RemoveAll { reason, message } => {
                let ids: Vec<AttendeeId> = self.attendees.keys().copied().collect();
                for id in ids {
                    self.remove(id, reason, &message, &mut out);
                }
            }
            Input::RequestControl { attendee, level } => {
                self.request(now, attendee, level, &mut out)
            }
            Input::SetLevel { attendee, level } => {
                let a = self
                    .attendees
                    .get(&attendee)
                    .ok_or(BookError::UnknownAttendee(attendee))?;
                if let Some(requested) = a.pending {
                    let granted = level >= requested;
                    out.push(Effect::Emit(Event::ControlAnswered {
                        session: a.session.clone(),
                        attendee,
                        requested,
                        granted,
                        by: Answerer::Sharer,
                        shown: level.into(),
                    }));
                    out.push(Effect::Tell {
                        attendee,
                        msg: ServerMessage::ControlRequestAnswered {
                            requested,
                            granted,
                            message: format!("the sharer set your level to {level}"),
                        },
                    });
                }
                self.set_level(attendee, level, &mut out);
            }
            Input::Answer { attendee, grant } => {
                self.answer(attendee, grant, Answerer::Sharer, &mut out)?
            }
            Input::Input { attendee } => {
                let Some(a) = self.attendees.get_mut(&attendee) else {
                    return Ok(out);
                };
                a.last_activity = now;
                if a.level.can_input() {
                    out.push(Effect::Inject {
                        attendee,
                        session: a.session.clone(),
                    });
                } else {
                    out.push(Effect::DropInput { attendee });
                    if !std::mem::replace(&mut a.refusal_sent, true) {
                        let message = format!(
                            "input ignored: your control level is {}; ask for interactive control first",
                            a.level
                        );
                        out.push(Effect::Tell {
                            attendee,
                            msg: ServerMessage::InputRefused { message },
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    /// An attendee as the book sees it at `now`.
    pub fn attendee(&self, now: Time, id: AttendeeId) -> Option<AttendeeView> {
        self.attendees.get(&id).map(|a| AttendeeView {
            session: a.session.clone(),
            invitation: a.invitation.clone(),
            level: a.level,
            pending: a.pending,
            shown: ShownLevel::of(a.level, a.pending),
            idle: now.since(a.last_activity),
            connected: now.since(a.admitted_at),
        })
    }

    /// Attendee ids, in order.
    pub fn attendee_ids(&self) -> impl Iterator<Item = AttendeeId> + '_ {
        self.attendees.keys().copied()
    }

    /// Attendees admitted through `invitation` now.
    pub fn count_on_invitation(&self, invitation: &str) -> u32 {
        self.attendees
            .values()
            .filter(|a| a.invitation == invitation)
            .count() as u32
    }

    /// Attendees of `session` now.
    pub fn count_in_session(&self, session: &str) -> usize {
        self.attendees
            .values()
            .filter(|a| a.session == session)
            .count()
    }

    /// Whether `session` is open here.
    pub fn has_session(&self, session: &str) -> bool {
        self.sessions.contains_key(session)
    }

    /// The rules of an open session.
    pub fn session_rules(&self, session: &str) -> Option<SessionRules> {
        self.sessions.get(session).copied()
    }

    /// A group's rules.
    pub fn group(&self, name: &str) -> Option<&GroupRules> {
        self.groups.get(name)
    }

    /// Every group with rules, by name.
    pub fn groups(&self) -> impl Iterator<Item = (&str, &GroupRules)> + '_ {
        self.groups.iter().map(|(n, g)| (n.as_str(), g))
    }

    /// Joins waiting for their password check.
    pub fn joins_under_way(&self) -> usize {
        self.joins.len()
    }

    fn attendees_of(&self, session: &str) -> Vec<AttendeeId> {
        self.attendees
            .iter()
            .filter(|(_, a)| a.session == session)
            .map(|(id, _)| *id)
            .collect()
    }

    /// A session that was closed: dropped from `sessions`, its invitations stay.
    fn is_closed(&self, session: &str) -> bool {
        self.invitations.values().any(|i| i.session == session)
    }

    /// Everything a join needs checked before its password is.
    fn precheck(
        &mut self,
        now: Time,
        from: IpAddr,
        session: &str,
        invitation: &str,
    ) -> Result<Duration, RejectReason> {
        let delay = self.throttle.delay(now, throttle_key(from), invitation)?;
        if !self.sessions.contains_key(session) {
            return Err(if self.is_closed(session) {
                RejectReason::SessionClosed
            } else {
                RejectReason::UnknownSession
            });
        }
        let inv = self
            .invitations
            .get(invitation)
            .filter(|i| i.session == session)
            .ok_or(RejectReason::UnknownInvitation)?;
        if inv.revoked {
            return Err(RejectReason::InvitationRevoked);
        }
        Ok(delay)
    }

    /// Admits after a right password: rechecks what may have changed while
    /// the password was checked, and takes the slot at once, so a limit
    /// holds under concurrent joins.
    fn admit(
        &mut self,
        now: Time,
        join: JoinId,
        attendee: AttendeeId,
        pending: PendingJoin,
        out: &mut Vec<Effect>,
    ) {
        let Some(rules) = self.sessions.get(&pending.session).copied() else {
            out.push(reject(join, RejectReason::SessionClosed));
            return;
        };
        let Some(inv) = self
            .invitations
            .get(&pending.invitation)
            .filter(|i| i.session == pending.session)
        else {
            out.push(reject(join, RejectReason::UnknownInvitation));
            return;
        };
        if inv.revoked {
            out.push(reject(join, RejectReason::InvitationRevoked));
            return;
        }
        let limit = inv.limit;
        let group = self.groups.get(&inv.group).cloned().unwrap_or_default();
        if self.count_on_invitation(&pending.invitation) >= limit {
            out.push(Effect::Reject {
                join,
                reason: RejectReason::AttendeeLimitReached,
                message: format!(
                    "attendee limit reached: this invitation admits {limit} attendee(s) at once"
                ),
            });
            return;
        }
        let level = group.default_level.unwrap_or(rules.default_level);
        self.attendees.insert(
            attendee,
            Attendee {
                session: pending.session.clone(),
                invitation: pending.invitation,
                level,
                pending: None,
                last_activity: now,
                admitted_at: now,
                refusal_sent: false,
            },
        );
        out.push(Effect::Admit {
            join,
            attendee,
            session: pending.session.clone(),
            level,
            channels: group.channels,
        });
        out.push(Effect::Emit(Event::AttendeeConnected {
            session: pending.session,
            attendee,
            level,
        }));
    }

    fn remove(
        &mut self,
        attendee: AttendeeId,
        reason: DisconnectReason,
        message: &str,
        out: &mut Vec<Effect>,
    ) {
        let Some(a) = self.attendees.remove(&attendee) else {
            return;
        };
        out.push(Effect::Remove {
            attendee,
            reason,
            message: message.to_owned(),
        });
        if a.level.can_input() {
            out.push(Effect::ReleaseInput {
                session: a.session.clone(),
            });
        }
        out.push(Effect::Emit(Event::AttendeeDisconnected {
            session: a.session,
            attendee,
            reason,
        }));
    }

    fn set_level(&mut self, attendee: AttendeeId, level: ControlLevel, out: &mut Vec<Effect>) {
        let Some(a) = self.attendees.get_mut(&attendee) else {
            return;
        };
        a.pending = None;
        if a.level == level {
            return;
        }
        let was_interactive = a.level.can_input();
        a.level = level;
        a.refusal_sent = false;
        let session = a.session.clone();
        out.push(Effect::Level { attendee, level });
        if was_interactive {
            out.push(Effect::ReleaseInput {
                session: session.clone(),
            });
        }
        out.push(Effect::Tell {
            attendee,
            msg: ServerMessage::ControlLevelChanged { level },
        });
        out.push(Effect::Emit(Event::AttendeeUpdated {
            session,
            attendee,
            level,
            shown: level.into(),
        }));
    }

    fn answer(
        &mut self,
        attendee: AttendeeId,
        grant: bool,
        by: Answerer,
        out: &mut Vec<Effect>,
    ) -> Result<(), BookError> {
        let a = self
            .attendees
            .get_mut(&attendee)
            .ok_or(BookError::UnknownAttendee(attendee))?;
        let requested = a
            .pending
            .take()
            .ok_or(BookError::NoPendingRequest(attendee))?;
        let by_name = by.as_str();
        let message = if grant {
            format!("granted {requested} by the {by_name}")
        } else {
            format!("request for {requested} denied by the {by_name}")
        };
        let session = a.session.clone();
        let shown = if grant { requested } else { a.level };
        out.push(Effect::Tell {
            attendee,
            msg: ServerMessage::ControlRequestAnswered {
                requested,
                granted: grant,
                message,
            },
        });
        out.push(Effect::Emit(Event::ControlAnswered {
            session,
            attendee,
            requested,
            granted: grant,
            by,
            shown: shown.into(),
        }));
        if grant {
            self.set_level(attendee, requested, out);
        }
        Ok(())
    }

    fn request(
        &mut self,
        now: Time,
        attendee: AttendeeId,
        requested: ControlLevel,
        out: &mut Vec<Effect>,
    ) {
        let Some(a) = self.attendees.get_mut(&attendee) else {
            return;
        };
        // A control request is activity, like input.
        a.last_activity = now;
        if requested <= a.level {
            // Giving control back, or asking for what it has: no sharer decision needed.
            self.set_level(attendee, requested, out);
            return;
        }
        if a.pending == Some(requested) {
            // A repeat of the request waiting for the sharer: coalesced (no
            // new event, no new notice), so a flood of repeats costs nothing.
            return;
        }
        a.pending = Some(requested);
        let session = a.session.clone();
        let invitation = a.invitation.clone();
        out.push(Effect::Emit(Event::ControlRequested {
            session: session.clone(),
            attendee,
            requested,
            shown: ShownLevel::of(a.level, Some(requested)),
        }));
        // The group's ceiling, when it has one, decides instead of the policy.
        let auto_grant = self
            .invitations
            .get(&invitation)
            .and_then(|i| self.groups.get(&i.group))
            .and_then(|g| g.auto_grant);
        let by = match auto_grant {
            Some(ceiling) => (requested <= ceiling).then_some(Answerer::Group),
            None => {
                let policy = self
                    .sessions
                    .get(&session)
                    .map_or(ControlPolicy::Ask, |s| s.policy);
                policy.grants(requested).then_some(Answerer::Policy)
            }
        };
        if let Some(by) = by {
            // Cannot fail: the request was just recorded.
            let _ = self.answer(attendee, true, by, out);
        }
    }
}

fn reject(join: JoinId, reason: RejectReason) -> Effect {
    Effect::Reject {
        join,
        reason,
        message: reason.describe().to_owned(),
    }
}
