//! The admin API's request and response bodies (and their OpenAPI schemas),
//! with the conversions from the manager's and the capture's types.

use serde::{Deserialize, Serialize};
use tandem_capture::WindowFilter;
use tandem_proto::ControlLevel;
use tandem_session::ControlPolicy;
use utoipa::ToSchema;

use crate::attendee_manager::{AttendeeInfo, InvitationInfo, SessionInfo};

/// `{"status": "ok"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// A control level.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Connected, no graphics, no input.
    None,
    /// Watches.
    View,
    /// Watches and drives mouse and keyboard.
    Interactive,
}

impl From<ControlLevel> for Level {
    fn from(l: ControlLevel) -> Self {
        match l {
            ControlLevel::None => Level::None,
            ControlLevel::View => Level::View,
            ControlLevel::Interactive => Level::Interactive,
        }
    }
}

impl From<Level> for ControlLevel {
    fn from(l: Level) -> Self {
        match l {
            Level::None => ControlLevel::None,
            Level::View => ControlLevel::View,
            Level::Interactive => ControlLevel::Interactive,
        }
    }
}

/// A control level as shown (`CTRL_LEVEL`): the level, or while a request
/// is pending the level asked for (`CTRL_LEVEL_REQCTRL_*`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LevelState {
    /// Level `none`.
    None,
    /// Level `view`.
    View,
    /// Level `interactive`.
    Interactive,
    /// Asked for `view`, not yet answered.
    ReqctrlView,
    /// Asked for `interactive`, not yet answered.
    ReqctrlInteractive,
}

impl From<tandem_session::ShownLevel> for LevelState {
    fn from(s: tandem_session::ShownLevel) -> Self {
        use tandem_session::ShownLevel as S;
        match s {
            S::None => Self::None,
            S::View => Self::View,
            S::Interactive => Self::Interactive,
            S::ReqctrlView => Self::ReqctrlView,
            S::ReqctrlInteractive => Self::ReqctrlInteractive,
        }
    }
}

/// A sharing session.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Session {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Capture source.
    pub source: String,
    /// `open` or `paused`.
    #[schema(value_type = String, pattern = "^(open|paused)$")]
    pub state: String,
    /// Shared rectangle: x, y, width, height.
    pub shared_rect: [u32; 4],
    /// Capture interval.
    pub frame_interval_ms: u32,
    /// Level of new attendees.
    pub default_control_level: Level,
    /// `ask`, `grant-view` or `grant-all`.
    #[schema(value_type = String, pattern = "^(ask|grant-view|grant-all)$")]
    pub control_policy: PolicyBody,
    /// Live attendees.
    pub attendees: usize,
    /// Creation time, RFC 3339.
    pub created_at: String,
}

impl From<SessionInfo> for Session {
    fn from(s: SessionInfo) -> Self {
        Self {
            id: s.id,
            name: s.name,
            source: s.source,
            state: s.state,
            shared_rect: s.shared_rect,
            frame_interval_ms: s.frame_interval_ms,
            default_control_level: s.default_control_level.into(),
            control_policy: s.control_policy.into(),
            attendees: s.attendees,
            created_at: s.created_at,
        }
    }
}

/// A new capture interval.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FrameIntervalBody {
    /// Capture interval in ms (5..60000).
    #[schema(minimum = 5, maximum = 60000)]
    pub frame_interval_ms: u32,
}

/// New shared rectangle: `{"x","y","width","height"}`, `{"full": true}` or
/// `{"monitor": "NAME"}`. Read as one struct so a wrong mix gets a message
/// naming the three forms; the OpenAPI schema states them as a `oneOf`
/// (see `openapi.rs`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SharedRectBody {
    /// Left edge.
    pub x: Option<u32>,
    /// Top edge.
    pub y: Option<u32>,
    /// Width (at least 1).
    pub width: Option<u32>,
    /// Height (at least 1).
    pub height: Option<u32>,
    /// Share the whole desktop.
    pub full: Option<bool>,
    /// Share this monitor (a name from `GET /api/v1/sessions/{id}/monitors`).
    pub monitor: Option<String>,
}

/// A top-level window of a session's desktop.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Window {
    /// X window id.
    pub id: u32,
    /// Left edge (may be negative).
    pub x: i64,
    /// Top edge (may be negative).
    pub y: i64,
    /// Width, border included.
    pub width: u32,
    /// Height, border included.
    pub height: u32,
    /// `WM_CLASS` instance name.
    pub instance: String,
    /// `WM_CLASS` class name.
    pub class: String,
    /// `_NET_WM_PID`.
    pub pid: Option<u32>,
    /// Title.
    pub title: String,
    /// Whether the current filter shares it (true when there is no filter).
    pub shared: bool,
}

/// An application of a session's desktop: its windows grouped by
/// `WM_CLASS` class (else `_NET_WM_PID`, else alone).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApplicationBody {
    /// `class:NAME`, `pid:N` or `window:ID`.
    pub id: String,
    /// `WM_CLASS` class (empty when grouped by pid or window).
    pub class: String,
    /// Process ids of its windows.
    pub pids: Vec<u32>,
    /// Whether the filter shares every window of it (true when there is no filter).
    pub shared: bool,
    /// Its windows, bottom to top.
    pub windows: Vec<Window>,
}

/// Which windows a session shares: any window named by a list is shared,
/// the rest of the desktop is sent as a neutral grey.
///
/// At least one list must name something (`openapi.rs` states that as an
/// `anyOf`).
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct WindowFilterBody {
    /// `WM_CLASS` instance or class names (exact; at most 64, each 1..128 bytes).
    #[schema(max_items = 64)]
    pub classes: Vec<String>,
    /// Process ids (at most 64).
    #[schema(max_items = 64)]
    pub pids: Vec<u32>,
    /// Window ids (at most 64).
    #[schema(max_items = 64)]
    pub windows: Vec<u32>,
}

impl From<WindowFilterBody> for WindowFilter {
    fn from(b: WindowFilterBody) -> Self {
        Self {
            classes: b.classes,
            pids: b.pids,
            windows: b.windows,
        }
    }
}

impl From<WindowFilter> for WindowFilterBody {
    fn from(f: WindowFilter) -> Self {
        Self {
            classes: f.classes,
            pids: f.pids,
            windows: f.windows,
        }
    }
}

/// A monitor of a session's desktop.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MonitorBody {
    /// RandR output name (`screen` for the whole screen without RandR monitors).
    pub name: String,
    /// Whether it is the primary monitor.
    pub primary: bool,
    /// x, y, width, height on the desktop.
    pub rect: [u32; 4],
}

/// The shared rectangle in effect.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SharedRect {
    /// x, y, width, height.
    pub shared_rect: [u32; 4],
}

/// An invitation (never its password).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Invitation {
    /// Id.
    pub id: String,
    /// Session id.
    pub session: String,
    /// Authorization string.
    pub auth_string: String,
    /// Group name.
    pub group: String,
    /// Most attendees connected through it at once.
    pub attendee_limit: u32,
    /// Attendees connected through it now.
    pub attendees: u32,
    /// Revoked: no new joins.
    pub revoked: bool,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// The ticket to give attendees.
    pub connection_string: String,
    /// The link for attendees joining from a browser (when the node serves
    /// the attendee page); never carries the password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub browser_link: Option<String>,
}

impl From<InvitationInfo> for Invitation {
    fn from(i: InvitationInfo) -> Self {
        Self {
            id: i.id,
            session: i.session,
            auth_string: i.auth_string,
            group: i.group,
            attendee_limit: i.attendee_limit,
            attendees: i.attendees,
            revoked: i.revoked,
            created_at: i.created_at,
            connection_string: i.connection_string,
            browser_link: None,
        }
    }
}

/// What a new session shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NewSessionSource {
    /// The built-in synthetic desktop (`width`, `height`, `seed`).
    Synthetic,
    /// An X display (`display`, `monitor`, `filter`).
    X11,
}

/// The level of new attendees: never `interactive`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DefaultLevel {
    /// Connected, no graphics.
    None,
    /// Watches.
    View,
}

/// How control requests are answered.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyBody {
    /// The sharer grants or denies.
    Ask,
    /// View at once; interactive asks.
    GrantView,
    /// Everything at once.
    GrantAll,
}

impl From<PolicyBody> for ControlPolicy {
    fn from(p: PolicyBody) -> Self {
        match p {
            PolicyBody::Ask => ControlPolicy::Ask,
            PolicyBody::GrantView => ControlPolicy::GrantView,
            PolicyBody::GrantAll => ControlPolicy::GrantAll,
        }
    }
}

impl From<ControlPolicy> for PolicyBody {
    fn from(p: ControlPolicy) -> Self {
        match p {
            ControlPolicy::Ask => PolicyBody::Ask,
            ControlPolicy::GrantView => PolicyBody::GrantView,
            ControlPolicy::GrantAll => PolicyBody::GrantAll,
        }
    }
}

/// A new sharing session. Keys of the other source are refused (the
/// OpenAPI schema is a `oneOf` by `source`, see `openapi.rs`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSession {
    /// A human name (1..128 bytes).
    #[schema(min_length = 1, max_length = 128)]
    pub name: Option<String>,
    /// Capture source.
    pub source: NewSessionSource,
    /// `synthetic`: desktop width (1..8192, default 1280).
    #[schema(minimum = 1, maximum = 8192)]
    pub width: Option<u32>,
    /// `synthetic`: desktop height (1..8192, default 720).
    #[schema(minimum = 1, maximum = 8192)]
    pub height: Option<u32>,
    /// `synthetic`: seed (default 1).
    pub seed: Option<u64>,
    /// `x11`: X display (1..256 bytes, default the node's).
    #[schema(min_length = 1, max_length = 256)]
    pub display: Option<String>,
    /// Capture interval in ms (5..60000, default 33).
    #[schema(minimum = 5, maximum = 60000)]
    pub frame_interval_ms: Option<u32>,
    /// Level of new attendees.
    pub default_control_level: Option<DefaultLevel>,
    /// Control request policy.
    pub control_policy: Option<PolicyBody>,
    /// `x11`: share only this monitor (1..64 bytes).
    #[schema(min_length = 1, max_length = 64)]
    pub monitor: Option<String>,
    /// `x11`: share only the windows this filter names.
    pub filter: Option<WindowFilterBody>,
}

/// A new invitation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvitation {
    /// Session id; default: the only open session.
    pub session: Option<String>,
    /// Password attendees must give (1..255 bytes).
    #[schema(min_length = 1, max_length = 255)]
    pub password: String,
    /// Most attendees connected through it at once (1..10000, default 16).
    #[schema(minimum = 1, maximum = 10000)]
    pub attendee_limit: Option<u32>,
    /// Authorization string, unique per session (1..255 bytes, no control
    /// characters); generated when absent.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub auth_string: Option<String>,
    /// Group name, unique per session (1..255 bytes, no control
    /// characters); generated when absent.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub group: Option<String>,
}

/// A change to an invitation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationPatch {
    /// New attendee limit (1..10000).
    #[schema(minimum = 1, maximum = 10000)]
    pub attendee_limit: Option<u32>,
    /// `true` revokes it (final: `false` on a revoked invitation is a conflict).
    pub revoked: Option<bool>,
}

/// An attendee: live (`state` = `connected`) or from the history.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Attendee {
    /// Id.
    pub id: u64,
    /// Remote name.
    pub user: String,
    /// Computer (peer address).
    pub computer: String,
    /// Session id.
    pub session: String,
    /// Invitation id.
    pub invitation: String,
    /// `connected` or `disconnected`.
    pub state: String,
    /// Control level.
    pub control_level: Level,
    /// Level asked for and not yet answered.
    pub pending_request: Option<Level>,
    /// The level as shown: `reqctrl-view` or `reqctrl-interactive` while a
    /// request is pending, else the control level.
    pub level_state: LevelState,
    /// Connect time, RFC 3339.
    pub connected_at: String,
    /// Seconds since its last input (live attendees only).
    pub idle_seconds: Option<u64>,
    /// Seconds connected (`ConnectTime`): until now for a live attendee,
    /// until it left for one from the history.
    pub connected_seconds: u64,
    /// Relay node it came through.
    pub via_node: Option<String>,
    /// Disconnect time, RFC 3339 (history only).
    pub disconnected_at: Option<String>,
    /// Why it left (history only).
    pub reason: Option<String>,
}

impl From<AttendeeInfo> for Attendee {
    fn from(a: AttendeeInfo) -> Self {
        Self {
            id: a.id,
            user: a.user,
            computer: a.computer,
            session: a.session,
            invitation: a.invitation,
            state: "connected".into(),
            control_level: a.control_level.into(),
            pending_request: a.pending_request.map(Into::into),
            level_state: a.level_state.into(),
            connected_at: a.connected_at,
            idle_seconds: Some(a.idle_seconds),
            connected_seconds: a.connected_seconds,
            via_node: a.via_node,
            disconnected_at: None,
            reason: None,
        }
    }
}

/// One attendee and what it holds open.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AttendeeDetail {
    /// The attendee, as the list shows it.
    pub attendee: Attendee,
    /// What it holds open (live attendees only).
    pub resources: Option<Resources>,
}

/// What a live attendee holds open (`IADsResource`s).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Resources {
    /// Its graphics stream.
    pub graphics: GraphicsResource,
    /// Channels it joined or may use, with its access.
    pub channels: Vec<ChannelResource>,
    /// The clipboard: the session's switch and this attendee's access.
    pub clipboard: ClipboardResource,
    /// Level asked for and not yet answered.
    pub pending_request: Option<Level>,
    /// Keysyms its input holds down on the desktop, in press order.
    pub held_keys: Vec<u32>,
    /// Mouse buttons its input holds down, in press order.
    pub held_buttons: Vec<String>,
}

/// An attendee's graphics stream.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GraphicsResource {
    /// `streaming`, `paused` (the session is) or `off` (level `none`).
    #[schema(value_type = String, pattern = "^(streaming|paused|off)$")]
    pub state: String,
}

/// A channel an attendee joined or may use.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChannelResource {
    /// Id in the session.
    pub id: u32,
    /// Name.
    pub name: String,
    /// The built-in clipboard channel.
    pub builtin: bool,
    /// Whether the attendee joined it (opened its stream).
    pub joined: bool,
    /// The attendee's access.
    #[schema(value_type = crate::channels::AccessName)]
    pub access: tandem_proto::ChannelAccess,
}

/// The clipboard as one attendee has it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClipboardResource {
    /// The session's clipboard sharing switch.
    pub enabled: bool,
    /// This attendee's access (read-write only when interactive).
    #[schema(value_type = crate::channels::AccessName)]
    pub access: tandem_proto::ChannelAccess,
}

/// An invitation group's permissions (an authorization class): what its
/// attendees start with and how far their requests are granted at once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Group {
    /// Group name (an invitation's `group`).
    pub name: String,
    /// Level of its new attendees; absent: the session's default.
    pub default_level: Option<DefaultLevel>,
    /// Highest level a request is granted at once; above it the sharer
    /// decides. Absent: the session's control policy.
    pub auto_grant: Option<Level>,
    /// Channel access its attendees start with, by channel name.
    #[schema(value_type = std::collections::BTreeMap<String, crate::channels::AccessName>)]
    pub channels: std::collections::BTreeMap<String, tandem_proto::ChannelAccess>,
}

impl Group {
    pub(super) fn new(name: String, g: &tandem_session::GroupRules) -> Self {
        Self {
            name,
            default_level: g.default_level.map(|l| match l {
                ControlLevel::None => DefaultLevel::None,
                // Never interactive (checked when set).
                _ => DefaultLevel::View,
            }),
            auto_grant: g.auto_grant.map(Level::from),
            channels: g.channels.clone(),
        }
    }
}

/// A group's new permissions (replacing what it had).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupBody {
    /// Level of its new attendees: `none` or `view`; absent: the session's default.
    pub default_level: Option<DefaultLevel>,
    /// Highest level a request is granted at once; absent: the session's policy.
    pub auto_grant: Option<Level>,
    /// Channel access its attendees start with, by channel name (at most 64
    /// channels, names 1..64 characters from `A-Z a-z 0-9 . _ -`).
    #[schema(value_type = Option<std::collections::BTreeMap<String, crate::channels::AccessName>>)]
    pub channels: Option<std::collections::BTreeMap<String, tandem_proto::ChannelAccess>>,
}

/// A new control level.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlLevelBody {
    /// The level.
    pub level: Level,
}

/// Optional body of a disconnect.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisconnectBody {
    /// Shown to the attendee (at most 1024 bytes).
    #[schema(max_length = 1024)]
    pub reason: Option<String>,
}

/// Which attendees `GET /api/v1/attendees` lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AttendeeState {
    /// Connected now.
    #[default]
    Live,
    /// Connected now and the history.
    All,
}

/// Whose attendees `GET /api/v1/attendees` lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AttendeeScope {
    /// This node's.
    #[default]
    Node,
    /// Every cluster member's live attendees.
    Cluster,
}

/// `?state=all` adds disconnected attendees.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttendeeQuery {
    /// `live` (default) or `all`.
    pub state: Option<AttendeeState>,
    /// `node` (default) or `cluster`: live attendees of every cluster member.
    pub scope: Option<AttendeeScope>,
}

/// `?reason=...` for a disconnect.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReasonQuery {
    /// Shown to the attendee (at most 1024 bytes).
    #[param(max_length = 1024)]
    pub reason: Option<String>,
}

/// `?history=N` recent events before the live ones.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// How many past events to replay first (0..10000, default 100).
    #[param(minimum = 0, maximum = 10000)]
    pub history: Option<usize>,
}
