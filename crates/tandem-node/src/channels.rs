//! Virtual channels (the Desktop Sharing API's `IRDPSRAPIVirtualChannelManager`)
//! and the built-in clipboard channel: the [`ChannelHub`].
//!
//! The sharer (a library call here, or the admin API) creates named channels
//! in a session; attendees cannot create them, only join one by name. Each
//! attendee has an access per channel, `none` by default, changeable at any
//! time. The sharer sends to one attendee or to every reader; an attendee
//! with `read-write` sends to the sharer, whose messages are broadcast to
//! [`ChannelHub::subscribe`]rs (the admin API's stream) and logged as events.
//!
//! Delivery: each (attendee, channel) pair has a bounded queue
//! ([`CHANNEL_QUEUE`] messages) drained by a task of the attendee's
//! connection that writes the channel's own QUIC stream. A reader that does
//! not read fills only its queue: what does not fit is dropped and counted —
//! in the sender's [`SendReport`], the `tandem_channel_messages_total`
//! metric, a `ChannelOverflow` notice to the attendee and a `Dropped` marker
//! in its stream — never buffered without bound, and never in the way of
//! graphics, other channels or other attendees. Order is kept per queue.
//!
//! Logging: each message from an attendee is a `channel_data_received` (or
//! `clipboard_transferred`) event only within the attendee's
//! [`LOGGED_CHANNEL_RATE`] (a burst of 32, then 4 a second); past it the
//! messages are still delivered and counted (`tandem_channel_messages_total`,
//! `tandem_rate_limited_total{kind="channel_event_unlogged"}`), so a flood
//! neither grows the registry's mailbox nor evicts the audit events of the
//! 10,000-event log.
//!
//! The hub is a plain shared object (one mutex, held for map lookups and
//! `try_send`s only) rather than an actor: connection tasks on the data-plane
//! runtime and admin handlers call it directly.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use actix::Addr;
use serde::Serialize;
use tandem_proto::{
    check_channel_name, ChannelAccess, ChannelFlags, ChannelFrame, ChannelInfo, ChannelPriority,
    ControlLevel, ServerMessage, CLIPBOARD_CHANNEL, MAX_CHANNEL_MESSAGE,
};
use tandem_session::{Time, TokenBucket, LOGGED_CHANNEL_RATE};
use tokio::sync::{broadcast, mpsc, watch};

use crate::error::NodeError;
use crate::events::SessionEvent;
use crate::metrics::Metrics;
use crate::registry_actor::{RecordEvent, SessionRegistry};

/// Messages queued per attendee and channel; more are dropped and counted.
pub const CHANNEL_QUEUE: usize = 256;
/// Channels a session may have, the clipboard included.
pub const MAX_CHANNELS_PER_SESSION: usize = 64;
/// Channel notices queued per attendee for its control stream; a full queue
/// drops notices (the in-stream `Dropped` markers still tell the story).
pub const NOTICE_QUEUE: usize = 64;
/// Arrivals kept for a lagging subscriber before it loses the oldest.
pub const ARRIVALS_CAPACITY: usize = 1024;
/// Id of the built-in clipboard channel in every session.
pub const CLIPBOARD_CHANNEL_ID: u32 = 1;

/// A channel's priority as the API names it (the schema of
/// `tandem_proto::ChannelPriority`, which is serialised the same way).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum PriorityName {
    /// Below normal.
    Low,
    /// The default.
    Normal,
    /// Like graphics.
    High,
}

/// An attendee's access to a channel as the API names it (the schema of
/// `tandem_proto::ChannelAccess`).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "kebab-case")]
pub enum AccessName {
    /// Receives nothing, sends nothing.
    None,
    /// Receives.
    Read,
    /// Receives and sends.
    ReadWrite,
}

/// A channel as the sharer sees it.
#[derive(Clone, Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ChannelDesc {
    /// Id in the session.
    pub id: u32,
    /// Name.
    pub name: String,
    /// Priority.
    #[schema(value_type = PriorityName)]
    pub priority: ChannelPriority,
    /// Flag bits.
    pub flags: u32,
    /// Whether it is the built-in clipboard channel (access follows the
    /// control level and the session's clipboard switch).
    pub builtin: bool,
    /// Attendees given an access other than `none`, by attendee id.
    #[schema(value_type = std::collections::BTreeMap<String, AccessName>)]
    pub access: BTreeMap<u64, ChannelAccess>,
    /// Attendees that joined it.
    pub joined: Vec<u64>,
}

/// Data an attendee sent to the sharer.
#[derive(Clone, Debug, Serialize)]
pub struct ChannelArrival {
    /// Session id.
    pub session: String,
    /// Channel name.
    pub channel: String,
    /// Sender.
    pub attendee: u64,
    /// The message.
    pub data: Vec<u8>,
}

/// Who a sharer's message is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// One attendee (which must have read access).
    One(u64),
    /// Every attendee with read access.
    AllReaders,
}

/// What became of a sharer's message.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct SendReport {
    /// Attendees whose queue took it.
    pub queued: usize,
    /// Attendees whose queue was full: dropped for them, and counted.
    pub dropped: usize,
    /// Readers that have not joined the channel (nothing to deliver to).
    pub not_joined: usize,
}

/// A channel stream the connection task must open and feed.
pub struct OutgoingChannel {
    /// Channel id (the stream header).
    pub id: u32,
    /// Stream priority.
    pub priority: ChannelPriority,
    /// Whole encoded [`ChannelFrame::Data`] frames, in order.
    pub queue: mpsc::Receiver<Arc<Vec<u8>>>,
    /// Messages dropped since the last `Dropped` marker was written.
    pub dropped: Arc<AtomicU64>,
}

/// What a connection task receives when it attaches its attendee.
pub struct AttendeeChannels {
    /// Control messages (joined, access changed, overflow, refused).
    pub notices: mpsc::Receiver<ServerMessage>,
    /// Channels joined: one stream each.
    pub streams: mpsc::UnboundedReceiver<OutgoingChannel>,
}

struct Channel {
    name: String,
    priority: ChannelPriority,
    flags: ChannelFlags,
    clipboard: bool,
    access: HashMap<u64, ChannelAccess>,
}

struct SessionChannels {
    channels: BTreeMap<u32, Channel>,
    next_id: u32,
    clipboard: Arc<AtomicBool>,
    clipboard_max: usize,
    /// Where attendees' clipboard text goes (the desktop's clipboard owner).
    desktop_clipboard: Option<mpsc::Sender<Vec<u8>>>,
}

struct JoinedQueue {
    tx: mpsc::Sender<Arc<Vec<u8>>>,
    dropped: Arc<AtomicU64>,
}

struct Link {
    session: String,
    level: watch::Receiver<ControlLevel>,
    notices: mpsc::Sender<ServerMessage>,
    streams: mpsc::UnboundedSender<OutgoingChannel>,
    joined: HashMap<u32, JoinedQueue>,
    /// Access by channel name where the sharer set none for this attendee
    /// (its group's defaults, decided by the session core).
    defaults: BTreeMap<String, ChannelAccess>,
    /// Its messages that may still be logged one event each (the rest are
    /// delivered and counted, so a flood cannot evict the audit log).
    logged: TokenBucket,
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<String, SessionChannels>,
    attendees: HashMap<u64, Link>,
}

/// The node's virtual channels, for every session.
pub struct ChannelHub {
    inner: Mutex<Inner>,
    metrics: Arc<Metrics>,
    registry: Option<Addr<SessionRegistry>>,
    arrivals: broadcast::Sender<Arc<ChannelArrival>>,
    /// The logging budget's epoch.
    epoch: Instant,
}

fn effective_access(
    session: &SessionChannels,
    channel: &Channel,
    link: &Link,
    attendee: u64,
) -> ChannelAccess {
    if channel.clipboard {
        // The rule is the session core's; the level is the manager's, as it
        // publishes it to the attendee's connection.
        tandem_session::clipboard_access(
            session.clipboard.load(Ordering::Relaxed),
            *link.level.borrow(),
        )
    } else {
        channel
            .access
            .get(&attendee)
            .or_else(|| link.defaults.get(&channel.name))
            .copied()
            .unwrap_or(ChannelAccess::None)
    }
}

fn not_found(what: &'static str, id: impl ToString) -> NodeError {
    NodeError::NotFound {
        what,
        id: id.to_string(),
    }
}

impl ChannelHub {
    /// A hub with no session. Events go to `registry` when given.
    pub fn new(metrics: Arc<Metrics>, registry: Option<Addr<SessionRegistry>>) -> Self {
        let (arrivals, _) = broadcast::channel(ARRIVALS_CAPACITY);
        Self {
            inner: Mutex::new(Inner::default()),
            metrics,
            registry,
            arrivals,
            epoch: Instant::now(),
        }
    }

    fn now(&self) -> Time {
        Time(self.epoch.elapsed())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records an event in the log and the event stream.
    pub fn emit_event(&self, event: SessionEvent) {
        self.emit(event);
    }

    fn emit(&self, event: SessionEvent) {
        if let Some(registry) = &self.registry {
            registry.do_send(RecordEvent(event));
        }
    }

    /// Registers a session (with its built-in clipboard channel). Returns
    /// the clipboard switch, which the desktop side reads before touching
    /// the clipboard.
    pub fn open_session(
        &self,
        session: &str,
        clipboard: bool,
        clipboard_max: usize,
    ) -> Arc<AtomicBool> {
        let mut inner = self.lock();
        let entry = inner.sessions.entry(session.to_owned()).or_insert_with(|| {
            let mut channels = BTreeMap::new();
            channels.insert(
                CLIPBOARD_CHANNEL_ID,
                Channel {
                    name: CLIPBOARD_CHANNEL.to_owned(),
                    priority: ChannelPriority::Normal,
                    flags: ChannelFlags::default(),
                    clipboard: true,
                    access: HashMap::new(),
                },
            );
            SessionChannels {
                channels,
                next_id: CLIPBOARD_CHANNEL_ID + 1,
                clipboard: Arc::new(AtomicBool::new(clipboard)),
                clipboard_max: clipboard_max.min(MAX_CHANNEL_MESSAGE),
                desktop_clipboard: None,
            }
        });
        entry.clipboard.clone()
    }

    /// Forgets a closed session's channels.
    pub fn close_session(&self, session: &str) {
        self.lock().sessions.remove(session);
    }

    /// Where attendees' clipboard text for `session` is delivered.
    pub fn set_desktop_clipboard(&self, session: &str, sink: mpsc::Sender<Vec<u8>>) {
        if let Some(s) = self.lock().sessions.get_mut(session) {
            s.desktop_clipboard = Some(sink);
        }
    }

    /// Turns clipboard sharing on or off for a session.
    pub fn set_clipboard(&self, session: &str, enabled: bool) -> Result<(), NodeError> {
        let inner = self.lock();
        let s = inner
            .sessions
            .get(session)
            .ok_or_else(|| not_found("session", session))?;
        s.clipboard.store(enabled, Ordering::Relaxed);
        tracing::info!(session, enabled, "clipboard sharing switched");
        for (&a, link) in inner.attendees.iter().filter(|(_, l)| l.session == session) {
            Self::tell_clipboard_access(s, link, a);
        }
        Ok(())
    }

    /// Tells an attendee that joined the clipboard channel its access there.
    fn tell_clipboard_access(s: &SessionChannels, link: &Link, attendee: u64) {
        let Some(c) = s.channels.get(&CLIPBOARD_CHANNEL_ID) else {
            return;
        };
        if link.joined.contains_key(&CLIPBOARD_CHANNEL_ID) {
            let _ = link.notices.try_send(ServerMessage::ChannelAccessChanged {
                channel: CLIPBOARD_CHANNEL_ID,
                access: effective_access(s, c, link, attendee),
            });
        }
    }

    /// The attendee's control level changed: its clipboard access follows.
    pub fn level_changed(&self, attendee: u64) {
        tracing::debug!(attendee, "control level changed: clipboard access");
        let inner = self.lock();
        if let Some(link) = inner.attendees.get(&attendee) {
            if let Some(s) = inner.sessions.get(&link.session) {
                Self::tell_clipboard_access(s, link, attendee);
            }
        }
    }

    /// Whether clipboard sharing is on, and its size limit.
    pub fn clipboard(&self, session: &str) -> Result<(bool, usize), NodeError> {
        let inner = self.lock();
        let s = inner
            .sessions
            .get(session)
            .ok_or_else(|| not_found("session", session))?;
        Ok((s.clipboard.load(Ordering::Relaxed), s.clipboard_max))
    }

    /// Creates a channel (sharer only: attendees have no way to call this).
    pub fn create_channel(
        &self,
        session: &str,
        name: &str,
        priority: ChannelPriority,
        flags: ChannelFlags,
    ) -> Result<ChannelDesc, NodeError> {
        check_channel_name(name).map_err(|e| NodeError::Invalid(e.to_string()))?;
        if !flags.is_valid() {
            return Err(NodeError::Invalid(
                tandem_proto::ProtoError::InvalidChannelFlags(flags.0).to_string(),
            ));
        }
        let mut inner = self.lock();
        let s = inner
            .sessions
            .get_mut(session)
            .ok_or_else(|| not_found("session", session))?;
        if s.channels.values().any(|c| c.name == name) {
            return Err(NodeError::Conflict(format!(
                "channel {name} already exists in session {session}"
            )));
        }
        if s.channels.len() >= MAX_CHANNELS_PER_SESSION {
            return Err(NodeError::Conflict(format!(
                "session {session} already has {MAX_CHANNELS_PER_SESSION} channels, the most allowed"
            )));
        }
        let id = s.next_id;
        s.next_id += 1;
        s.channels.insert(
            id,
            Channel {
                name: name.to_owned(),
                priority,
                flags,
                clipboard: false,
                access: HashMap::new(),
            },
        );
        tracing::info!(session, channel = name, id, "channel created");
        Ok(ChannelDesc {
            id,
            name: name.to_owned(),
            priority,
            flags: flags.0,
            builtin: false,
            access: BTreeMap::new(),
            joined: Vec::new(),
        })
    }

    /// The session's channels.
    pub fn list_channels(&self, session: &str) -> Result<Vec<ChannelDesc>, NodeError> {
        let inner = self.lock();
        let s = inner
            .sessions
            .get(session)
            .ok_or_else(|| not_found("session", session))?;
        Ok(s.channels
            .iter()
            .map(|(&id, c)| {
                let mut access = BTreeMap::new();
                let mut joined = Vec::new();
                for (&a, link) in &inner.attendees {
                    if link.session != session {
                        continue;
                    }
                    let acc = effective_access(s, c, link, a);
                    if acc != ChannelAccess::None {
                        access.insert(a, acc);
                    }
                    if link.joined.contains_key(&id) {
                        joined.push(a);
                    }
                }
                joined.sort_unstable();
                ChannelDesc {
                    id,
                    name: c.name.clone(),
                    priority: c.priority,
                    flags: c.flags.0,
                    builtin: c.clipboard,
                    access,
                    joined,
                }
            })
            .collect())
    }

    /// Sets an attendee's access to a channel (any time; default `none`).
    pub fn set_access(
        &self,
        session: &str,
        channel: &str,
        attendee: u64,
        access: ChannelAccess,
    ) -> Result<(), NodeError> {
        let mut inner = self.lock();
        let Inner {
            sessions,
            attendees,
        } = &mut *inner;
        let s = sessions
            .get_mut(session)
            .ok_or_else(|| not_found("session", session))?;
        let link = attendees
            .get(&attendee)
            .filter(|l| l.session == session)
            .ok_or_else(|| not_found("attendee", attendee))?;
        let (&id, c) = s
            .channels
            .iter_mut()
            .find(|(_, c)| c.name == channel)
            .ok_or_else(|| not_found("channel", channel))?;
        if c.clipboard {
            return Err(NodeError::Conflict(
                "the clipboard channel's access follows the control level (interactive) and the session's clipboard switch".into(),
            ));
        }
        // `none` is kept too: it overrides the attendee's group default.
        c.access.insert(attendee, access);
        tracing::info!(session, channel, attendee, %access, "channel access set");
        if link.joined.contains_key(&id) {
            let _ = link.notices.try_send(ServerMessage::ChannelAccessChanged {
                channel: id,
                access,
            });
        }
        Ok(())
    }

    /// Sends `data` from the sharer on a channel.
    pub fn send(
        &self,
        session: &str,
        channel: &str,
        target: Target,
        data: Vec<u8>,
    ) -> Result<SendReport, NodeError> {
        if data.len() > MAX_CHANNEL_MESSAGE {
            return Err(NodeError::Invalid(format!(
                "channel message of {} bytes exceeds the {MAX_CHANNEL_MESSAGE}-byte limit",
                data.len()
            )));
        }
        let bytes = data.len();
        let frame = Arc::new(
            ChannelFrame::Data(data)
                .encode()
                .map_err(|e| NodeError::Invalid(e.to_string()))?,
        );
        let report = {
            let inner = self.lock();
            let s = inner
                .sessions
                .get(session)
                .ok_or_else(|| not_found("session", session))?;
            let (&id, c) = s
                .channels
                .iter()
                .find(|(_, c)| c.name == channel)
                .ok_or_else(|| not_found("channel", channel))?;
            let readers: Vec<(u64, &Link)> = match target {
                Target::One(a) => {
                    let link = inner
                        .attendees
                        .get(&a)
                        .filter(|l| l.session == session)
                        .ok_or_else(|| not_found("attendee", a))?;
                    if !effective_access(s, c, link, a).can_read() {
                        return Err(NodeError::Conflict(format!(
                            "attendee {a} has no read access to channel {channel}"
                        )));
                    }
                    vec![(a, link)]
                }
                Target::AllReaders => inner
                    .attendees
                    .iter()
                    .filter(|(&a, l)| {
                        l.session == session && effective_access(s, c, l, a).can_read()
                    })
                    .map(|(&a, l)| (a, l))
                    .collect(),
            };
            let mut report = SendReport::default();
            for (a, link) in readers {
                self.deliver(id, a, link, &frame, bytes, &mut report);
            }
            report
        };
        self.emit(SessionEvent::ChannelDataSent {
            session: session.to_owned(),
            channel: channel.to_owned(),
            attendee: match target {
                Target::One(a) => Some(a),
                Target::AllReaders => None,
            },
            bytes,
            queued: report.queued,
            dropped: report.dropped,
        });
        Ok(report)
    }

    fn deliver(
        &self,
        id: u32,
        attendee: u64,
        link: &Link,
        frame: &Arc<Vec<u8>>,
        bytes: usize,
        report: &mut SendReport,
    ) {
        let Some(q) = link.joined.get(&id) else {
            report.not_joined += 1;
            return;
        };
        match q.tx.try_send(frame.clone()) {
            Ok(()) => {
                report.queued += 1;
                self.metrics
                    .channel_messages
                    .with_label_values(&["to_attendee", "queued"])
                    .inc();
                self.metrics
                    .channel_bytes
                    .with_label_values(&["to_attendee"])
                    .inc_by(bytes as u64);
            }
            Err(_) => {
                report.dropped += 1;
                self.metrics
                    .channel_messages
                    .with_label_values(&["to_attendee", "dropped"])
                    .inc();
                // One notice per run of drops: the first drop after a delivery.
                if q.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::info!(attendee, channel = id, "channel queue full; dropping");
                    let _ = link.notices.try_send(ServerMessage::ChannelOverflow {
                        channel: id,
                        dropped: 1,
                    });
                }
            }
        }
    }

    /// Clipboard text copied on the session's desktop: to every interactive
    /// attendee that joined the clipboard channel, when sharing is on.
    pub fn clipboard_from_desktop(&self, session: &str, text: Vec<u8>) {
        let bytes = text.len();
        let (enabled, max) = match self.clipboard(session) {
            Ok(v) => v,
            Err(_) => return,
        };
        if !enabled {
            return;
        }
        let delivered = bytes <= max;
        if delivered {
            let _ = self.send(session, CLIPBOARD_CHANNEL, Target::AllReaders, text);
        }
        self.emit(SessionEvent::ClipboardTransferred {
            session: session.to_owned(),
            direction: "to_attendees".into(),
            attendee: None,
            bytes,
            delivered,
        });
    }

    /// Queues a control message for an attendee (dropped if its notice queue is full).
    pub fn notify(&self, attendee: u64, msg: ServerMessage) {
        if let Some(link) = self.lock().attendees.get(&attendee) {
            let _ = link.notices.try_send(msg);
        }
    }

    /// Subscribes to what attendees send (sessions and channels mixed).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ChannelArrival>> {
        self.arrivals.subscribe()
    }

    /// Registers an admitted attendee's connection.
    pub fn attach(
        &self,
        session: &str,
        attendee: u64,
        level: watch::Receiver<ControlLevel>,
        defaults: BTreeMap<String, ChannelAccess>,
    ) -> AttendeeChannels {
        let (notices_tx, notices) = mpsc::channel(NOTICE_QUEUE);
        let (streams_tx, streams) = mpsc::unbounded_channel();
        self.lock().attendees.insert(
            attendee,
            Link {
                session: session.to_owned(),
                level,
                notices: notices_tx,
                streams: streams_tx,
                joined: HashMap::new(),
                defaults,
                logged: TokenBucket::new(LOGGED_CHANNEL_RATE, self.now()),
            },
        );
        AttendeeChannels { notices, streams }
    }

    /// Forgets a departed attendee (its queues close, ending its channel writers).
    pub fn detach(&self, attendee: u64) {
        let mut inner = self.lock();
        if let Some(link) = inner.attendees.remove(&attendee) {
            if let Some(s) = inner.sessions.get_mut(&link.session) {
                for c in s.channels.values_mut() {
                    c.access.remove(&attendee);
                }
            }
        }
    }

    /// An attendee asks to join a channel by name; answered on its control stream.
    pub fn join(&self, attendee: u64, name: &str) {
        let mut inner = self.lock();
        let Inner {
            sessions,
            attendees,
        } = &mut *inner;
        let Some(link) = attendees.get_mut(&attendee) else {
            return;
        };
        let refuse = |link: &Link, message: String| {
            let _ = link.notices.try_send(ServerMessage::ChannelJoinRefused {
                name: name
                    .chars()
                    .take(tandem_proto::MAX_CHANNEL_NAME_LEN)
                    .collect(),
                message,
            });
        };
        if check_channel_name(name).is_err() {
            return refuse(link, "invalid channel name".into());
        }
        let Some(s) = sessions.get(&link.session) else {
            return refuse(link, "the session has no channels".into());
        };
        let Some((&id, c)) = s.channels.iter().find(|(_, c)| c.name == name) else {
            return refuse(
                link,
                format!("no channel named {name}: the sharer has not created it"),
            );
        };
        let access = effective_access(s, c, link, attendee);
        if let std::collections::hash_map::Entry::Vacant(slot) = link.joined.entry(id) {
            let (tx, queue) = mpsc::channel(CHANNEL_QUEUE);
            let dropped = Arc::new(AtomicU64::new(0));
            slot.insert(JoinedQueue {
                tx,
                dropped: dropped.clone(),
            });
            let _ = link.streams.send(OutgoingChannel {
                id,
                priority: c.priority,
                queue,
                dropped,
            });
        }
        tracing::info!(attendee, channel = name, id, %access, "channel joined");
        let _ = link
            .notices
            .try_send(ServerMessage::ChannelJoined(ChannelInfo {
                id,
                name: name.to_owned(),
                priority: c.priority,
                flags: c.flags,
                access,
            }));
    }

    /// A message from an attendee on channel `id`. `Err` is the line to
    /// send back in a `ChannelWriteRefused`.
    pub fn from_attendee(&self, attendee: u64, id: u32, data: Vec<u8>) -> Result<(), String> {
        let refused = |m: &Metrics| {
            m.channel_messages
                .with_label_values(&["from_attendee", "refused"])
                .inc();
        };
        let now = self.now();
        let (session, name, clipboard_sink, log) = {
            let mut inner = self.lock();
            let Inner {
                sessions,
                attendees,
            } = &mut *inner;
            let link = attendees.get_mut(&attendee).ok_or("not attached")?;
            let s = sessions
                .get(&link.session)
                .ok_or("the session has no channels")?;
            let Some(c) = s
                .channels
                .get(&id)
                .filter(|_| link.joined.contains_key(&id))
            else {
                refused(&self.metrics);
                return Err(format!("channel {id} was not joined"));
            };
            if !effective_access(s, c, link, attendee).can_write() {
                refused(&self.metrics);
                let why = if c.clipboard {
                    "clipboard refused: it is shared only with interactive attendees, when the sharer has turned it on".to_owned()
                } else {
                    format!("no write access to channel {}", c.name)
                };
                return Err(why);
            }
            if c.clipboard && data.len() > s.clipboard_max {
                refused(&self.metrics);
                return Err(format!(
                    "clipboard text too large: {} bytes, at most {} allowed",
                    data.len(),
                    s.clipboard_max
                ));
            }
            let sink = if c.clipboard {
                Some(s.desktop_clipboard.clone())
            } else {
                None
            };
            let log = link.logged.try_take(now);
            (link.session.clone(), c.name.clone(), sink, log)
        };
        if !log {
            self.metrics
                .rate_limited
                .with_label_values(&["channel_event_unlogged"])
                .inc();
        }
        let bytes = data.len();
        self.metrics
            .channel_messages
            .with_label_values(&["from_attendee", "accepted"])
            .inc();
        self.metrics
            .channel_bytes
            .with_label_values(&["from_attendee"])
            .inc_by(bytes as u64);
        if let Some(sink) = clipboard_sink {
            let delivered = sink.is_some_and(|tx| tx.try_send(data).is_ok());
            if log {
                self.emit(SessionEvent::ClipboardTransferred {
                    session,
                    direction: "to_desktop".into(),
                    attendee: Some(attendee),
                    bytes,
                    delivered,
                });
            }
            return if delivered {
                Ok(())
            } else {
                Err("clipboard refused: this session's desktop has no clipboard".into())
            };
        }
        if log {
            self.emit(SessionEvent::ChannelDataReceived {
                session: session.clone(),
                channel: name.clone(),
                attendee,
                bytes,
            });
        }
        let _ = self.arrivals.send(Arc::new(ChannelArrival {
            session,
            channel: name,
            attendee,
            data,
        }));
        Ok(())
    }
}
