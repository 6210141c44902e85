//! Session events (the `_IRDPSessionEvents` of the Desktop Sharing API) and the
//! node's one event stream.
//!
//! Every event goes to the SessionRegistry actor (`RecordEvent`): it is
//! logged with `tracing` fields, counted, appended to the registry's event log
//! and broadcast on the [`EventBus`] to subscribers (the admin API's
//! server-sent events). Failures the node survives (capture, a lost source,
//! the encoder, registry writes) are `error` events with an [`ErrorCode`].

use std::sync::Arc;

use serde::Serialize;
use tandem_capture::{WindowEvent, WindowInfo};
use tandem_proto::{ControlLevel, DisconnectReason};
use tandem_session::ShownLevel;
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
        /// The level as shown (no request pending after a change).
        level_state: ShownLevel,
    },
    /// An attendee asked for a control level (`OnControlLevelChangeRequest`).
    ControlLevelChangeRequested {
        /// Session id.
        session: String,
        /// Attendee id.
        attendee: u64,
        /// Level asked for.
        requested: ControlLevel,
        /// The level as shown while the request is pending: `reqctrl-view`
        /// or `reqctrl-interactive` (`CTRL_LEVEL_REQCTRL_*`).
        level_state: ShownLevel,
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
        /// The level as shown after the answer.
        level_state: ShownLevel,
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
    /// An application's first window appeared (`OnApplicationOpen`).
    ApplicationOpened {
        /// Session id.
        session: String,
        /// The window that revealed it.
        window: WindowSummary,
    },
    /// An application's last window went away (`OnApplicationClose`).
    ApplicationClosed {
        /// Session id.
        session: String,
        /// Its last window.
        window: WindowSummary,
    },
    /// A window was mapped (`OnWindowOpen`).
    WindowOpened {
        /// Session id.
        session: String,
        /// The window.
        window: WindowSummary,
    },
    /// A window was unmapped or destroyed (`OnWindowClose`).
    WindowClosed {
        /// Session id.
        session: String,
        /// The window.
        window: WindowSummary,
    },
    /// A window moved, was resized, restacked or retitled (`OnWindowUpdate`).
    WindowUpdated {
        /// Session id.
        session: String,
        /// The window.
        window: WindowSummary,
    },
    /// An attendee sent data on a channel (`OnChannelDataReceived`).
    ChannelDataReceived {
        /// Session id.
        session: String,
        /// Channel name.
        channel: String,
        /// Sender.
        attendee: u64,
        /// Message size in bytes.
        bytes: usize,
    },
    /// The sharer sent data on a channel (`OnChannelDataSent`).
    ChannelDataSent {
        /// Session id.
        session: String,
        /// Channel name.
        channel: String,
        /// The one attendee addressed, or none for every reader.
        attendee: Option<u64>,
        /// Message size in bytes.
        bytes: usize,
        /// Attendees whose queue took the message.
        queued: usize,
        /// Attendees whose queue was full: the message was dropped for them.
        dropped: usize,
    },
    /// Clipboard text went between the desktop and attendees.
    ClipboardTransferred {
        /// Session id.
        session: String,
        /// `to_attendees` (copied on the desktop) or `to_desktop` (pasted by an attendee).
        direction: String,
        /// The attendee that sent it (`to_desktop`).
        attendee: Option<u64>,
        /// Text size in bytes.
        bytes: usize,
        /// Whether it went through (false: refused, e.g. over the size limit).
        delivered: bool,
    },
    /// Something failed (`OnError`); also counted in `tandem_errors_total{code}`.
    Error {
        /// Session id, when the error concerns one.
        session: Option<String>,
        /// What failed, for scripts and alerts.
        code: ErrorCode,
        /// What failed, one line for people.
        message: String,
    },
}

/// What an [`SessionEvent::Error`] is about: a bounded label value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A grab from the capture source failed; attendees keep the last
    /// picture and capture is retried every frame interval.
    CaptureFailed,
    /// The capture source is gone (its X server exited or the connection
    /// broke): capture failed for [`SOURCE_LOST_AFTER`] without a success.
    /// Attendees keep the last picture; the node retries slowly.
    SourceLost,
    /// The encoder failed on a frame: the frame is dropped, the next one is
    /// encoded as usual.
    EncoderFailed,
    /// A registry write failed: the change is not durable (the API call that
    /// asked for it fails; an event not stored is still streamed, seq 0).
    RegistryWriteFailed,
}

/// How long capture must keep failing, without one success, before the
/// source counts as lost.
pub const SOURCE_LOST_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

impl ErrorCode {
    /// Every code, for metrics initialised at zero.
    pub const ALL: [ErrorCode; 4] = [
        ErrorCode::CaptureFailed,
        ErrorCode::SourceLost,
        ErrorCode::EncoderFailed,
        ErrorCode::RegistryWriteFailed,
    ];

    /// The code as written in events and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CaptureFailed => "capture_failed",
            Self::SourceLost => "source_lost",
            Self::EncoderFailed => "encoder_failed",
            Self::RegistryWriteFailed => "registry_write_failed",
        }
    }
}

/// A window as events describe it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WindowSummary {
    /// X window id.
    pub id: u32,
    /// Application key: `pid:N`, or `class:NAME` without a pid.
    pub application: String,
    /// `WM_CLASS` class name.
    pub class: String,
    /// Title.
    pub title: String,
    /// Position and size: x, y, width, height.
    pub rect: [i64; 4],
}

impl From<WindowInfo> for WindowSummary {
    fn from(w: WindowInfo) -> Self {
        Self {
            id: w.id,
            application: w.application(),
            rect: [w.x, w.y, i64::from(w.width), i64::from(w.height)],
            class: w.class,
            title: w.title,
        }
    }
}

impl SessionEvent {
    /// The event for a window change on `session`'s desktop.
    pub fn from_window_event(session: &str, event: WindowEvent) -> Self {
        let session = session.to_owned();
        match event {
            WindowEvent::ApplicationOpened(w) => Self::ApplicationOpened {
                session,
                window: w.into(),
            },
            WindowEvent::ApplicationClosed(w) => Self::ApplicationClosed {
                session,
                window: w.into(),
            },
            WindowEvent::WindowOpened(w) => Self::WindowOpened {
                session,
                window: w.into(),
            },
            WindowEvent::WindowClosed(w) => Self::WindowClosed {
                session,
                window: w.into(),
            },
            WindowEvent::WindowUpdated(w) => Self::WindowUpdated {
                session,
                window: w.into(),
            },
        }
    }

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
            Self::ApplicationOpened { .. } => "application_opened",
            Self::ApplicationClosed { .. } => "application_closed",
            Self::WindowOpened { .. } => "window_opened",
            Self::WindowClosed { .. } => "window_closed",
            Self::WindowUpdated { .. } => "window_updated",
            Self::ChannelDataReceived { .. } => "channel_data_received",
            Self::ChannelDataSent { .. } => "channel_data_sent",
            Self::ClipboardTransferred { .. } => "clipboard_transferred",
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
            | Self::SharedRectChanged { session, .. }
            | Self::ApplicationOpened { session, .. }
            | Self::ApplicationClosed { session, .. }
            | Self::WindowOpened { session, .. }
            | Self::WindowClosed { session, .. }
            | Self::WindowUpdated { session, .. }
            | Self::ChannelDataReceived { session, .. }
            | Self::ChannelDataSent { session, .. }
            | Self::ClipboardTransferred { session, .. } => Some(session),
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
            | Self::ControlLevelChangeAnswered { attendee, .. }
            | Self::ChannelDataReceived { attendee, .. } => Some(*attendee),
            Self::ChannelDataSent { attendee, .. }
            | Self::ClipboardTransferred { attendee, .. } => *attendee,
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
