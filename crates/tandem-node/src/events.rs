//! Session events (the `_IRDPSessionEvents` of the Desktop Sharing API) and the
//! node's one event stream.
//!
//! Every event goes through [`EventBus::emit`]: it is logged with `tracing`
//! fields, counted, appended to the registry's event log and broadcast to
//! subscribers (the admin API's server-sent events).

use std::sync::Arc;

use serde::Serialize;
use tandem_proto::{ControlLevel, DisconnectReason};
use tokio::sync::broadcast;

/// One thing that happened in a sharing session.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SessionEvent {
    /// A sharing session was opened.
    SessionOpened {
        /// Session id.
        session: String,
    },
    /// A sharing session was closed; it cannot be reopened.
    SessionClosed {
        /// Session id.
        session: String,
    },
    /// An attendee joined (`OnAttendeeConnected`).
    AttendeeConnected {
        /// Session id.
        session: String,
        /// Attendee id.
        attendee: u64,
        /// Remote name.
        user: String,
        /// Peer address.
        computer: String,
        /// Level it starts at.
        level: ControlLevel,
    },
    /// An attendee left (`OnAttendeeDisconnected`).
    AttendeeDisconnected {
        /// Session id.
        session: String,
        /// Attendee id.
        attendee: u64,
        /// Why.
        reason: DisconnectReason,
    },
    /// An attendee's properties changed (`OnAttendeeUpdate`): its control level.
    AttendeeUpdated {
        /// Session id.
        session: String,
        /// Attendee id.
        attendee: u64,
        /// New level.
        level: ControlLevel,
    },
    /// An attendee asked for a control level (`OnControlLevelChangeRequest`).
    ControlLevelChangeRequested {
        /// Session id.
        session: String,
        /// Attendee id.
        attendee: u64,
        /// Level asked for.
        requested: ControlLevel,
    },
    /// A control request was answered (`OnControlLevelChangeResponse`).
    ControlLevelChangeAnswered {
        /// Session id.
        session: String,
        /// Attendee id.
        attendee: u64,
        /// Level asked for.
        requested: ControlLevel,
        /// Whether it was granted.
        granted: bool,
        /// Who answered: the policy or the sharer.
        by: String,
    },
    /// Graphics paused for everyone (`OnGraphicsStreamPaused`).
    GraphicsPaused {
        /// Session id.
        session: String,
    },
    /// Graphics resumed (`OnGraphicsStreamResumed`).
    GraphicsResumed {
        /// Session id.
        session: String,
    },
    /// The shared rectangle changed (`OnSharedRectChanged`).
    SharedRectChanged {
        /// Session id.
        session: String,
        /// Left edge.
        x: u32,
        /// Top edge.
        y: u32,
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
    /// Something failed (`OnError`).
    Error {
        /// Session id, when the error concerns one.
        session: Option<String>,
        /// What failed.
        message: String,
    },
}

impl SessionEvent {
    /// The event's kind, as a bounded label value.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SessionOpened { .. } => "session_opened",
            Self::SessionClosed { .. } => "session_closed",
            Self::AttendeeConnected { .. } => "attendee_connected",
            Self::AttendeeDisconnected { .. } => "attendee_disconnected",
            Self::AttendeeUpdated { .. } => "attendee_updated",
            Self::ControlLevelChangeRequested { .. } => "control_level_change_requested",
            Self::ControlLevelChangeAnswered { .. } => "control_level_change_answered",
            Self::GraphicsPaused { .. } => "graphics_paused",
            Self::GraphicsResumed { .. } => "graphics_resumed",
            Self::SharedRectChanged { .. } => "shared_rect_changed",
            Self::Error { .. } => "error",
        }
    }

    /// The session the event concerns.
    pub fn session(&self) -> Option<&str> {
        match self {
            Self::SessionOpened { session }
            | Self::SessionClosed { session }
            | Self::AttendeeConnected { session, .. }
            | Self::AttendeeDisconnected { session, .. }
            | Self::AttendeeUpdated { session, .. }
            | Self::ControlLevelChangeRequested { session, .. }
            | Self::ControlLevelChangeAnswered { session, .. }
            | Self::GraphicsPaused { session }
            | Self::GraphicsResumed { session }
            | Self::SharedRectChanged { session, .. } => Some(session),
            Self::Error { session, .. } => session.as_deref(),
        }
    }

    /// The attendee the event concerns.
    pub fn attendee(&self) -> Option<u64> {
        match self {
            Self::AttendeeConnected { attendee, .. }
            | Self::AttendeeDisconnected { attendee, .. }
            | Self::AttendeeUpdated { attendee, .. }
            | Self::ControlLevelChangeRequested { attendee, .. }
            | Self::ControlLevelChangeAnswered { attendee, .. } => Some(*attendee),
            _ => None,
        }
    }
}

/// An event with its sequence number in the registry's log and its time.
#[derive(Clone, Debug, Serialize)]
pub struct LoggedEvent {
    /// Sequence number in the event log (0 when it could not be stored).
    pub seq: u64,
    /// Unix milliseconds.
    pub at_ms: i64,
    /// The event.
    #[serde(flatten)]
    pub event: SessionEvent,
}

/// Capacity of the broadcast channel; a subscriber that lags further loses
/// the oldest events and is told how many it missed.
pub const EVENT_CHANNEL_CAPACITY: usize = 1024;

/// The node's event stream.
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<LoggedEvent>>,
}

impl EventBus {
    /// A bus with no subscribers yet.
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(EVENT_CHANNEL_CAPACITY);
        Self { sender }
    }

    /// Subscribes to events emitted from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LoggedEvent>> {
        self.sender.subscribe()
    }

    /// Broadcasts an already logged event.
    pub fn publish(&self, event: LoggedEvent) {
        // No subscriber is not an error.
        let _ = self.sender.send(Arc::new(event));
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}
