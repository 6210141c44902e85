//! Plain record types stored in the registry, and the filters and settings
//! that go with them.

use serde::{Deserialize, Serialize};
use tandem_proto::{ControlLevel, DisconnectReason};
use tandem_session::ControlPolicy;

/// The node's TLS identity: DER certificate and DER private key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredIdentity {
    /// DER-encoded certificate.
    pub cert_der: Vec<u8>,
    /// DER-encoded private key (PKCS#8).
    pub key_der: Vec<u8>,
}

/// Life-cycle state of a sharing session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionState {
    /// Sharing and accepting attendees.
    Open,
    /// Temporarily not sending frames.
    Paused,
    /// Ended; kept for history.
    Closed,
}

/// A sharing session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Unique id (the key).
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Capture source, e.g. `synthetic` or `x11::0`.
    pub source: String,
    /// Current state.
    pub state: SessionState,
    /// Creation time, unix milliseconds.
    pub created_at_ms: i64,
    /// Closing time, unix milliseconds.
    pub closed_at_ms: Option<i64>,
    /// Shared rectangle `[x, y, w, h]`, or the whole source.
    pub shared_rect: Option<[u32; 4]>,
    /// Target interval between frames.
    pub frame_interval_ms: u32,
    /// Control level granted to new attendees.
    pub default_control_level: ControlLevel,
    /// How control requests are arbitrated.
    pub control_policy: ControlPolicy,
}

/// The windows a session shares, as the sharer last chose them through the
/// admin API (tree `session_filters`, keyed by session id): kept apart from
/// [`SessionRecord`] so records written before it still decode.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionFilterRecord {
    /// `WM_CLASS` instance or class names.
    pub classes: Vec<String>,
    /// Process ids.
    pub pids: Vec<u32>,
    /// Window ids.
    pub windows: Vec<u32>,
}

/// An invitation to a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationRecord {
    /// Unique id (the key).
    pub id: String,
    /// Session the invitation admits to.
    pub session_id: String,
    /// Connection string handed to attendees.
    pub auth_string: String,
    /// Group name.
    pub group: String,
    /// PHC hash string of the password, never the password itself.
    pub password_hash: String,
    /// Maximum number of concurrent attendees.
    pub attendee_limit: u32,
    /// Whether the invitation was revoked.
    pub revoked: bool,
    /// Creation time, unix milliseconds.
    pub created_at_ms: i64,
}

/// One attendee connection, live or past.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttendeeRecord {
    /// Unique id from [`crate::Registry::next_attendee_id`] (the key).
    pub id: u64,
    /// Session attended.
    pub session_id: String,
    /// Invitation used.
    pub invitation_id: String,
    /// User name the attendee gave.
    pub user: String,
    /// Computer name the attendee gave.
    pub computer: String,
    /// Relay node the attendee came through, if any.
    pub via_node: Option<String>,
    /// Current control level.
    pub control_level: ControlLevel,
    /// Connection time, unix milliseconds.
    pub connected_at_ms: i64,
    /// Disconnection time, unix milliseconds; `None` while live.
    pub disconnected_at_ms: Option<i64>,
    /// Why the attendee left.
    pub disconnect_reason: Option<DisconnectReason>,
    /// Bytes sent to this attendee.
    pub bytes_sent: u64,
}

impl AttendeeRecord {
    /// Whether the attendee is still recorded as connected.
    pub fn is_live(&self) -> bool {
        self.disconnected_at_ms.is_none()
    }
}

/// An event to append to the log; the registry assigns its sequence number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent {
    /// When it happened, unix milliseconds.
    pub at_ms: i64,
    /// Session concerned, if any.
    pub session_id: Option<String>,
    /// Attendee concerned, if any.
    pub attendee_id: Option<u64>,
    /// Short machine-readable kind, e.g. `attendee.connected`.
    pub kind: String,
    /// JSON text or plain text.
    pub detail: String,
}

/// A stored event with its sequence number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Sequence number: increasing, never reused, possibly with gaps after a restart.
    pub seq: u64,
    /// When it happened, unix milliseconds.
    pub at_ms: i64,
    /// Session concerned, if any.
    pub session_id: Option<String>,
    /// Attendee concerned, if any.
    pub attendee_id: Option<u64>,
    /// Short machine-readable kind.
    pub kind: String,
    /// JSON text or plain text.
    pub detail: String,
}

impl EventRecord {
    pub(crate) fn from_new(seq: u64, e: NewEvent) -> Self {
        EventRecord {
            seq,
            at_ms: e.at_ms,
            session_id: e.session_id,
            attendee_id: e.attendee_id,
            kind: e.kind,
            detail: e.detail,
        }
    }
}

/// Which attendees [`crate::Registry::attendees`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttendeeFilter {
    /// Only attendees without a disconnection time.
    Live,
    /// Every attendee ever recorded.
    All,
}

/// How many events the log keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many events (0 keeps none).
    pub max_events: u64,
    /// Drop events older than this, measured from the timestamp of the event
    /// being appended; `None` keeps events of any age.
    pub max_age_ms: Option<i64>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_events: 10_000,
            max_age_ms: Some(7 * 24 * 60 * 60 * 1000),
        }
    }
}

/// How much finished attendee history is kept (live attendees always are).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttendeeRetention {
    /// Keep at most this many attendee records; the oldest finished ones go first.
    pub max_records: u64,
    /// Drop finished records disconnected longer ago than this; `None`
    /// keeps them whatever their age.
    pub max_age_ms: Option<i64>,
}

impl Default for AttendeeRetention {
    fn default() -> Self {
        AttendeeRetention {
            max_records: 10_000,
            max_age_ms: Some(90 * 24 * 60 * 60 * 1000),
        }
    }
}

/// Settings of [`crate::Registry::open`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistryConfig {
    /// sled page cache size in bytes (sled's own default is 1 GiB).
    pub cache_bytes: u64,
    /// Event log retention.
    pub event_retention: Retention,
    /// Attendee history retention.
    pub attendee_retention: AttendeeRetention,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            cache_bytes: 64 * 1024 * 1024,
            event_retention: Retention::default(),
            attendee_retention: AttendeeRetention::default(),
        }
    }
}

/// Counts of what the registry holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistryStats {
    /// Sessions recorded.
    pub sessions: usize,
    /// Invitations recorded.
    pub invitations: usize,
    /// Attendees recorded, live or past.
    pub attendees: usize,
    /// Events currently kept.
    pub events: u64,
    /// Sequence number of the newest event, if any was appended since the store was created.
    pub last_event_seq: Option<u64>,
    /// Size of the store's files, if sled could tell.
    pub size_on_disk_bytes: Option<u64>,
}
