//! The admin HTTP API (actix-web): sessions, invitations, attendees, control
//! requests and events as JSON under `/api/v1`, plus `/healthz` and `/metrics`.
//!
//! Every `/api/` route needs `Authorization: Bearer TOKEN`; the token comes
//! from the config, `TANDEM_ADMIN_TOKEN`, or `<data_dir>/admin.token`
//! (generated with mode 0600 on first start) and is compared in constant
//! time. Errors are always `{"error": "..."}` with a status chosen in one
//! place ([`ApiError`]). Bodies are limited to [`MAX_BODY_BYTES`]. A method
//! a path does not have answers 405 with `Allow` ([`resource`]). The OpenAPI
//! document at `/api/v1/openapi.json` is generated from the handlers'
//! `#[utoipa::path]` attributes and the DTOs below, completed by
//! `openapi.rs` with the statuses and shapes shared code enforces.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use actix_web::body::MessageBody;
use actix_web::dev::{ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer, ResponseError};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tandem_capture::{Rect, WindowFilter};
use tandem_proto::ControlLevel;
use tandem_registry::AttendeeFilter;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::attendee_manager::{
    AnswerControlRequest, AttendeeInfo, AttendeeManager, CaptureOf, ChangeFrameInterval,
    ChangeSharedRect, CloseSession, CreateInvitation, DisconnectAttendee, GetAttendee,
    InvitationInfo, ListAttendees, ListGroups, ListInvitations, ListSessions, SessionEncoder,
    SessionInfo, SetControlLevel, SetGroup, SetSessionPaused, UpdateInvitation,
};
use crate::capture_actor::{GetWindowFilter, ListMonitors, ListWindows, SetWindowFilter};
use crate::config::NodeConfig;
use crate::encoder_actor::CurrentFrame;
use crate::error::NodeError;
use crate::events::EventBus;
use crate::metrics::Metrics;
use crate::registry_actor::{ListAttendeeRecords, Persist, RecentEvents, SessionRegistry};

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Name of the generated token file in the data directory.
pub const TOKEN_FILE: &str = "admin.token";
/// Environment variable holding the admin token.
pub const TOKEN_ENV: &str = "TANDEM_ADMIN_TOKEN";
/// Most history events an event stream may ask for.
pub const MAX_EVENT_HISTORY: usize = 10_000;
/// Attendee limit of an invitation created without one.
pub const DEFAULT_ATTENDEE_LIMIT: u32 = 16;
/// Content type of the Prometheus text exposition.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

// ---------------------------------------------------------------------------
// Errors

/// An API error: its status and its one-line message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token: send Authorization: Bearer TOKEN",
        )
    }
    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    /// An error with this status and message (for routes defined in other modules).
    pub(crate) fn with_status(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(status, message)
    }
    /// A 404 with this message (for routes defined in other modules).
    pub fn not_found_message(message: impl Into<String>) -> Self {
        Self::not_found(message)
    }
    fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }
    fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
    fn too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than {MAX_BODY_BYTES} bytes"),
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        response.json(ErrorBody {
            error: self.message.clone(),
        })
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        let status = match &e {
            NodeError::NotFound { .. } => StatusCode::NOT_FOUND,
            NodeError::Conflict(_) => StatusCode::CONFLICT,
            NodeError::Invalid(_) | NodeError::Config { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            NodeError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
            NodeError::Registry(_)
            | NodeError::Transport(_)
            | NodeError::Capture(_)
            | NodeError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::warn!(error = %e, "admin request failed");
        }
        Self::new(status, e.to_string())
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(e: actix::MailboxError) -> Self {
        NodeError::from(e).into()
    }
}

impl From<tandem_registry::RegistryError> for ApiError {
    fn from(e: tandem_registry::RegistryError) -> Self {
        NodeError::from(e).into()
    }
}

fn json_error(err: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as E;
    match err {
        E::Overflow { .. } | E::OverflowKnownLength { .. } => ApiError::too_large(),
        E::ContentType => {
            ApiError::bad_request("the body must be JSON (Content-Type: application/json)")
        }
        E::Deserialize(e) if e.is_data() => ApiError::unprocessable(format!("invalid value: {e}")),
        E::Deserialize(e) => ApiError::bad_request(format!("malformed JSON: {e}")),
        E::Payload(actix_web::error::PayloadError::Overflow) => ApiError::too_large(),
        other => ApiError::bad_request(format!("unreadable body: {other}")),
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// A JSON request body read as `T`, like `web::Json<T>` (same limit and
/// errors) with two differences that make the body mean what its schema
/// says: only an object is accepted (serde would also read a struct from an
/// array), and a number with a zero fraction counts as the integer it is
/// (JSON Schema's `integer` includes `1.0`).
pub struct JsonObject<T>(pub T);

impl<T> JsonObject<T> {
    /// The body.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for JsonObject<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: serde::de::DeserializeOwned + 'static> actix_web::FromRequest for JsonObject<T> {
    type Error = actix_web::Error;
    type Future = futures::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let body = web::Json::<serde_json::Value>::from_request(req, payload);
        Box::pin(async move {
            let web::Json(mut value) = body.await?;
            if !value.is_object() {
                return Err(ApiError::unprocessable("the body must be a JSON object").into());
            }
            integral_floats_to_integers(&mut value);
            serde_json::from_value(value)
                .map(JsonObject)
                .map_err(|e| ApiError::unprocessable(format!("invalid value: {e}")).into())
        })
    }
}

/// Replaces every number like `3.0` by the integer `3` (when it fits a u64
/// or an i64), so integer fields accept what JSON Schema calls an integer.
fn integral_floats_to_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0) {
                // Both bounds are exact powers of two, so the casts are exact.
                if (0.0..18_446_744_073_709_551_616.0).contains(&f) {
                    *value = Value::from(f as u64);
                } else if (-9_223_372_036_854_775_808.0..0.0).contains(&f) {
                    *value = Value::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        Value::Object(map) => map.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// DTOs

/// The error body of every failed request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, one line.
    pub error: String,
}

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
    pub control_policy: String,
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
            control_policy: s.control_policy,
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

impl AdminState {
    /// An invitation as the API shows it, with its browser link when the
    /// node serves the attendee page.
    fn invitation(&self, info: InvitationInfo) -> Invitation {
        let link = self
            .browser_base
            .as_deref()
            .map(|base| crate::browser::link(base, &info.session, &info.id));
        Invitation {
            browser_link: link,
            ..Invitation::from(info)
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
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyBody {
    /// The sharer grants or denies.
    Ask,
    /// View at once; interactive asks.
    GrantView,
    /// Everything at once.
    GrantAll,
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
    #[schema(value_type = crate::admin_channels::AccessName)]
    pub access: tandem_proto::ChannelAccess,
}

/// The clipboard as one attendee has it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClipboardResource {
    /// The session's clipboard sharing switch.
    pub enabled: bool,
    /// This attendee's access (read-write only when interactive).
    #[schema(value_type = crate::admin_channels::AccessName)]
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
    #[schema(value_type = std::collections::BTreeMap<String, crate::admin_channels::AccessName>)]
    pub channels: std::collections::BTreeMap<String, tandem_proto::ChannelAccess>,
}

impl Group {
    fn new(name: String, g: &tandem_session::GroupRules) -> Self {
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
    #[schema(value_type = Option<std::collections::BTreeMap<String, crate::admin_channels::AccessName>>)]
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

// ---------------------------------------------------------------------------
// State, token, server

/// What the handlers share.
#[derive(Clone)]
pub struct AdminState {
    /// Opens sessions at run time.
    pub launcher: crate::SessionLauncher,
    /// The attendee manager.
    pub manager: Addr<AttendeeManager>,
    /// The registry actor.
    pub registry: Addr<SessionRegistry>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Event stream.
    pub events: EventBus,
    /// Virtual channels.
    pub channels: Arc<crate::channels::ChannelHub>,
    /// The cluster directory, when the node is in a cluster.
    pub cluster: Option<crate::cluster::ClusterView>,
    /// Base of browser links (`[web]`), when the node serves the attendee page.
    pub browser_base: Option<String>,
    /// Dials listening viewers (`POST /api/v1/connect-to`).
    pub reverse: Arc<crate::reverse::ReverseDialer>,
}

#[derive(Clone)]
struct Token(Arc<String>);

/// The admin token: config, else `TANDEM_ADMIN_TOKEN`, else the data
/// directory's token file (created with mode 0600 when missing).
pub fn resolve_token(config: &NodeConfig) -> Result<String, NodeError> {
    if let Some(t) = &config.admin_token {
        return Ok(t.clone());
    }
    if let Ok(t) = std::env::var(TOKEN_ENV) {
        let t = t.trim().to_owned();
        if !t.is_empty() {
            // The same rule as `admin_token` in the config: a short token
            // is guessable over the network.
            if t.len() < 16 || t.len() > 256 || !t.chars().all(|c| c.is_ascii_graphic()) {
                return Err(NodeError::Config {
                    detail: format!(
                        "{TOKEN_ENV} must be 16 to 256 printable ASCII characters (it has {})",
                        t.chars().count()
                    ),
                });
            }
            return Ok(t);
        }
    }
    token_from_file(&config.data_dir.join(TOKEN_FILE))
}

fn token_from_file(path: &Path) -> Result<String, NodeError> {
    let io = |context: String| move |source| NodeError::Io { context, source };
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
        Ok(_) => {
            return Err(NodeError::Config {
                detail: format!(
                    "{} is empty; delete it to generate a new token",
                    path.display()
                ),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(format!("reading {}", path.display()))(e)),
    }
    let token = {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        hex::encode(bytes)
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write;
    let mut file = options
        .open(path)
        .map_err(io(format!("creating {}", path.display())))?;
    file.write_all(format!("{token}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io(format!("writing {}", path.display())))?;
    tracing::info!(path = %path.display(), "generated the admin token");
    Ok(token)
}

/// The running admin (and optional metrics) HTTP servers.
pub struct AdminServer {
    local_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    handles: Vec<ServerHandle>,
}

impl AdminServer {
    /// Binds and starts the servers on the current actix System.
    pub fn start(config: &NodeConfig, state: AdminState) -> Result<Self, NodeError> {
        let token = Token(Arc::new(resolve_token(config)?));
        let bind_err = |addr: SocketAddr| {
            move |source| NodeError::Io {
                context: format!("binding the admin HTTP address {addr}"),
                source,
            }
        };
        let api_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(api_state.clone()))
                .app_data(web::Data::new(token.clone()))
                .app_data(
                    web::JsonConfig::default()
                        .limit(MAX_BODY_BYTES)
                        .error_handler(|e, _| json_error(e).into()),
                )
                .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
                .app_data(
                    web::QueryConfig::default().error_handler(|e, _| {
                        ApiError::bad_request(format!("bad query: {e}")).into()
                    }),
                )
                .app_data(
                    web::PathConfig::default()
                        .error_handler(|e, _| ApiError::not_found(format!("bad path: {e}")).into()),
                )
                .configure(open_routes)
                .service(
                    web::scope("/api")
                        .wrap(from_fn(require_token))
                        .service(api_routes())
                        .default_service(web::to(unknown_route)),
                )
                .default_service(web::to(unknown_route))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(2)
        .bind(config.admin_listen)
        .map_err(bind_err(config.admin_listen))?;
        let local_addr = server
            .addrs()
            .first()
            .copied()
            .unwrap_or(config.admin_listen);
        let server = server.run();
        let mut handles = vec![server.handle()];
        actix_rt::spawn(server);
        tracing::info!(addr = %local_addr, "admin API listening");

        let mut metrics_addr = None;
        if let Some(addr) = config.metrics_listen {
            let metrics_state = state;
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(web::Data::new(metrics_state.clone()))
                    .configure(open_routes)
                    .default_service(web::to(unknown_route))
            })
            .workers(1)
            .disable_signals()
            .shutdown_timeout(1)
            .bind(addr)
            .map_err(bind_err(addr))?;
            metrics_addr = server.addrs().first().copied();
            let server = server.run();
            handles.push(server.handle());
            actix_rt::spawn(server);
            tracing::info!(addr = ?metrics_addr, "metrics listening");
        }
        Ok(Self {
            local_addr,
            metrics_addr,
            handles,
        })
    }

    /// The bound admin address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound metrics-only address, when configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Stops accepting, finishes requests in flight (briefly) and stops.
    pub async fn stop(self) {
        for handle in self.handles {
            handle.stop(true).await;
        }
    }
}

/// One path and the methods it answers; any other method answers 405 with
/// an `Allow` header listing these (without this, actix would fall through
/// to the app's 404).
pub(crate) fn resource(path: &str, routes: Vec<(Method, actix_web::Route)>) -> actix_web::Resource {
    let allow = routes
        .iter()
        .map(|(m, _)| m.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let mut resource = web::resource(path);
    for (method, route) in routes {
        resource = resource.route(route.method(method));
    }
    resource.default_service(web::to(move |req: HttpRequest| {
        let allow = allow.clone();
        async move {
            HttpResponse::MethodNotAllowed()
                .insert_header((header::ALLOW, allow.clone()))
                .json(ErrorBody {
                    error: format!(
                        "{} is not allowed on {}; allowed: {allow}",
                        req.method(),
                        req.path()
                    ),
                })
        }
    }))
}

/// `/healthz` and `/metrics`, open (no token) on the admin and metrics addresses.
fn open_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource(
        "/healthz",
        vec![(Method::GET, web::route().to(healthz))],
    ))
    .service(resource(
        "/metrics",
        vec![(Method::GET, web::route().to(metrics))],
    ));
}

fn api_routes() -> actix_web::Scope {
    let get = |r| (Method::GET, r);
    let post = |r| (Method::POST, r);
    let put = |r| (Method::PUT, r);
    let delete = |r| (Method::DELETE, r);
    let patch = |r| (Method::PATCH, r);
    let to = web::route;
    web::scope("/v1")
        .service(resource("/openapi.json", vec![get(to().to(openapi))]))
        .service(resource(
            "/sessions",
            vec![get(to().to(list_sessions)), post(to().to(open_session))],
        ))
        .service(resource(
            "/sessions/{id}",
            vec![delete(to().to(close_session))],
        ))
        .service(resource(
            "/sessions/{id}/pause",
            vec![post(to().to(pause_session))],
        ))
        .service(resource(
            "/sessions/{id}/resume",
            vec![post(to().to(resume_session))],
        ))
        .service(resource(
            "/sessions/{id}/shared-rect",
            vec![put(to().to(set_shared_rect))],
        ))
        .service(resource(
            "/sessions/{id}/frame-interval",
            vec![put(to().to(set_frame_interval))],
        ))
        .service(resource(
            "/sessions/{id}/windows",
            vec![get(to().to(list_windows))],
        ))
        .service(resource(
            "/sessions/{id}/applications",
            vec![get(to().to(list_applications))],
        ))
        .service(resource(
            "/sessions/{id}/applications/{app}/share",
            vec![post(to().to(share_application))],
        ))
        .service(resource(
            "/sessions/{id}/applications/{app}/unshare",
            vec![post(to().to(unshare_application))],
        ))
        .service(resource(
            "/sessions/{id}/monitors",
            vec![get(to().to(list_monitors))],
        ))
        .service(resource(
            "/sessions/{id}/filter",
            vec![
                get(to().to(get_filter)),
                put(to().to(set_filter)),
                delete(to().to(clear_filter)),
            ],
        ))
        .service(resource(
            "/sessions/{id}/framebuffer.png",
            vec![get(to().to(framebuffer_png))],
        ))
        .service(resource(
            "/invitations",
            vec![
                get(to().to(list_invitations)),
                post(to().to(create_invitation)),
            ],
        ))
        .service(resource(
            "/invitations/{id}",
            vec![
                get(to().to(get_invitation)),
                patch(to().to(update_invitation)),
            ],
        ))
        .service(resource(
            "/invitations/{id}/revoke",
            vec![post(to().to(revoke_invitation))],
        ))
        .service(resource("/attendees", vec![get(to().to(list_attendees))]))
        .service(resource(
            "/attendees/{id}",
            vec![
                get(to().to(get_attendee)),
                delete(to().to(disconnect_attendee)),
            ],
        ))
        .service(resource(
            "/attendees/{id}/control-level",
            vec![put(to().to(set_control_level))],
        ))
        .service(resource(
            "/control-requests",
            vec![get(to().to(list_control_requests))],
        ))
        .service(resource(
            "/control-requests/{id}/grant",
            vec![post(to().to(grant_control))],
        ))
        .service(resource(
            "/control-requests/{id}/deny",
            vec![post(to().to(deny_control))],
        ))
        .service(resource("/groups", vec![get(to().to(list_groups))]))
        .service(resource(
            "/groups/{name}",
            vec![
                get(to().to(get_group)),
                put(to().to(set_group)),
                delete(to().to(delete_group)),
            ],
        ))
        .service(resource("/events", vec![get(to().to(events))]))
        .configure(crate::admin_channels::routes)
        .configure(crate::reverse::routes)
        .service(resource(
            "/cluster/nodes",
            vec![get(to().to(crate::cluster::admin::list_nodes))],
        ))
}

async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let expected = req
        .app_data::<web::Data<Token>>()
        .map(|t| t.0.clone())
        .ok_or_else(ApiError::unauthorized)?;
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or("");
    let ok: bool = given.as_bytes().ct_eq(expected.as_bytes()).into();
    if !ok || given.is_empty() {
        return Err(ApiError::unauthorized().into());
    }
    next.call(req).await
}

async fn unknown_route(req: HttpRequest) -> ApiResult<HttpResponse> {
    Err(ApiError::not_found(format!(
        "no route {} {}",
        req.method(),
        req.path()
    )))
}

fn parse_attendee_id(id: &str) -> ApiResult<u64> {
    id.parse()
        .map_err(|_| ApiError::not_found(format!("attendee {id} not found")))
}

// ---------------------------------------------------------------------------
// Plain routes

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The node is up", body = Health)))]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok".into(),
    })
}

/// Prometheus metrics (text exposition).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain; version=0.0.4")))]
async fn metrics(state: web::Data<AdminState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, METRICS_CONTENT_TYPE))
        .body(state.metrics.render())
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "OpenAPI 3 document", body = Object)),
    security(("bearer" = [])))]
async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(crate::openapi::document())
}

// ---------------------------------------------------------------------------
// Sessions

async fn find_session(state: &AdminState, id: &str) -> ApiResult<Session> {
    state
        .manager
        .send(ListSessions)
        .await?
        .into_iter()
        .find(|s| s.id == id)
        .map(Session::from)
        .ok_or_else(|| ApiError::not_found(format!("session {id} not found")))
}

/// Lists open sessions.
#[utoipa::path(get, path = "/api/v1/sessions", tag = "sessions",
    responses((status = 200, body = Vec<Session>), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
async fn list_sessions(state: web::Data<AdminState>) -> ApiResult<HttpResponse> {
    let list: Vec<Session> = state
        .manager
        .send(ListSessions)
        .await?
        .into_iter()
        .map(Session::from)
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

/// Pauses a session's graphics for everyone.
#[utoipa::path(post, path = "/api/v1/sessions/{id}/pause", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = Session), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn pause_session(
    state: web::Data<AdminState>,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    set_paused(&state, id.into_inner(), true).await
}

/// Resumes a paused session.
#[utoipa::path(post, path = "/api/v1/sessions/{id}/resume", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = Session), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn resume_session(
    state: web::Data<AdminState>,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    set_paused(&state, id.into_inner(), false).await
}

async fn set_paused(state: &AdminState, session: String, paused: bool) -> ApiResult<HttpResponse> {
    state
        .manager
        .send(SetSessionPaused {
            session: session.clone(),
            paused,
        })
        .await??;
    Ok(HttpResponse::Ok().json(find_session(state, &session).await?))
}

/// Changes the shared rectangle.
#[utoipa::path(put, path = "/api/v1/sessions/{id}/shared-rect", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    request_body = SharedRectBody,
    responses((status = 200, body = SharedRect), (status = 404, body = ErrorBody),
        (status = 409, description = "Outside the desktop, or no monitor of that name", body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn set_shared_rect(
    state: web::Data<AdminState>,
    id: web::Path<String>,
    body: JsonObject<SharedRectBody>,
) -> ApiResult<HttpResponse> {
    let b = body.into_inner();
    let session = id.into_inner();
    let rect = match (b.full, b.x, b.y, b.width, b.height, b.monitor) {
        (Some(true), None, None, None, None, None) => None,
        (None | Some(false), Some(x), Some(y), Some(width), Some(height), None) => {
            Some(Rect::new(x, y, width, height))
        }
        (None, None, None, None, None, Some(name)) => {
            let capture = state
                .manager
                .send(CaptureOf {
                    session: session.clone(),
                })
                .await??;
            let monitors = capture.send(ListMonitors).await??;
            // Which monitors exist is the desktop's current state: 409.
            let monitor = monitors.iter().find(|m| m.name == name).ok_or_else(|| {
                let known: Vec<&str> = monitors.iter().map(|m| m.name.as_str()).collect();
                ApiError::conflict(format!(
                    "no monitor named {name:?}; this desktop has: {}",
                    known.join(", ")
                ))
            })?;
            Some(monitor.rect)
        }
        _ => {
            return Err(ApiError::unprocessable(
                "give either x, y, width and height, or full: true alone, or monitor alone",
            ))
        }
    };
    let shared_rect = state
        .manager
        .send(ChangeSharedRect { session, rect })
        .await??;
    Ok(HttpResponse::Ok().json(SharedRect { shared_rect }))
}

/// Changes the capture interval at run time (`FrameCaptureIntervalInMs`);
/// attendees get updates at most this often from the next frame on.
#[utoipa::path(put, path = "/api/v1/sessions/{id}/frame-interval", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    request_body = FrameIntervalBody,
    responses((status = 200, body = Session), (status = 404, body = ErrorBody),
        (status = 422, description = "Outside 5..60000 ms", body = ErrorBody)),
    security(("bearer" = [])))]
async fn set_frame_interval(
    state: web::Data<AdminState>,
    id: web::Path<String>,
    body: JsonObject<FrameIntervalBody>,
) -> ApiResult<HttpResponse> {
    let info = state
        .manager
        .send(ChangeFrameInterval {
            session: id.into_inner(),
            frame_interval_ms: body.frame_interval_ms,
        })
        .await??;
    Ok(HttpResponse::Ok().json(Session::from(info)))
}

async fn capture_of(
    state: &AdminState,
    session: String,
) -> ApiResult<Addr<crate::capture_actor::CaptureActor>> {
    Ok(state.manager.send(CaptureOf { session }).await??)
}

/// The top-level windows of a session's desktop, bottom to top, and
/// whether the filter shares each.
#[utoipa::path(get, path = "/api/v1/sessions/{id}/windows", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = [Window]), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn list_windows(
    state: web::Data<AdminState>,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let capture = capture_of(&state, id.into_inner()).await?;
    let windows = capture.send(ListWindows).await??;
    let filter = capture.send(GetWindowFilter).await?;
    let body: Vec<Window> = windows
        .into_iter()
        .map(|w| Window {
            shared: filter.as_ref().is_none_or(|f| f.matches(&w)),
            id: w.id,
            x: w.x,
            y: w.y,
            width: w.width,
            height: w.height,
            instance: w.instance,
            class: w.class,
            pid: w.pid,
            title: w.title,
        })
        .collect();
    Ok(HttpResponse::Ok().json(body))
}

fn window_body(w: tandem_capture::WindowInfo, shared: bool) -> Window {
    Window {
        shared,
        id: w.id,
        x: w.x,
        y: w.y,
        width: w.width,
        height: w.height,
        instance: w.instance,
        class: w.class,
        pid: w.pid,
        title: w.title,
    }
}

/// The applications of a session's desktop (the API's application list),
/// each with its windows and whether the filter shares it.
#[utoipa::path(get, path = "/api/v1/sessions/{id}/applications", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = [ApplicationBody]), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn list_applications(
    state: web::Data<AdminState>,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let capture = capture_of(&state, id.into_inner()).await?;
    let windows = capture.send(ListWindows).await??;
    let filter = capture.send(GetWindowFilter).await?;
    let body: Vec<ApplicationBody> = tandem_capture::applications(&windows)
        .into_iter()
        .map(|app| ApplicationBody {
            shared: filter.as_ref().is_none_or(|f| f.shares_application(&app)),
            windows: app
                .windows
                .into_iter()
                .map(|w| {
                    let shared = filter.as_ref().is_none_or(|f| f.matches(&w));
                    window_body(w, shared)
                })
                .collect(),
            id: app.id,
            class: app.class,
            pids: app.pids,
        })
        .collect();
    Ok(HttpResponse::Ok().json(body))
}

/// Shares an application and every window it opens later (adds it to the
/// window filter; with no filter, the session shares only it from now on).
#[utoipa::path(post, path = "/api/v1/sessions/{id}/applications/{app}/share", tag = "sessions",
    params(("id" = String, Path, description = "Session id"),
        ("app" = String, Path, description = "Application id from the list")),
    responses((status = 200, description = "The filter now", body = WindowFilterBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The filter is full, or the source cannot filter windows", body = ErrorBody)),
    security(("bearer" = [])))]
async fn share_application(
    state: web::Data<AdminState>,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    change_application(&state, path.into_inner(), true).await
}

/// Stops sharing an application: its windows, open and future, are left
/// out. Unsharing the last shared one is refused (a filter sharing nothing;
/// `DELETE …/filter` shares everything instead).
#[utoipa::path(post, path = "/api/v1/sessions/{id}/applications/{app}/unshare", tag = "sessions",
    params(("id" = String, Path, description = "Session id"),
        ("app" = String, Path, description = "Application id from the list")),
    responses((status = 200, description = "The filter now", body = WindowFilterBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "No filter (everything is shared), or it is the last application shared", body = ErrorBody)),
    security(("bearer" = [])))]
async fn unshare_application(
    state: web::Data<AdminState>,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    change_application(&state, path.into_inner(), false).await
}

async fn change_application(
    state: &AdminState,
    (session, app_id): (String, String),
    share: bool,
) -> ApiResult<HttpResponse> {
    let capture = capture_of(state, session.clone()).await?;
    let windows = capture.send(ListWindows).await??;
    let app = tandem_capture::applications(&windows)
        .into_iter()
        .find(|a| a.id == app_id)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no application {app_id} on the desktop of session {session}"
            ))
        })?;
    let current = capture.send(GetWindowFilter).await?;
    let filter = match (current, share) {
        (current, true) => {
            let mut f = current.unwrap_or_default();
            f.share_application(&app).map_err(ApiError::conflict)?;
            f
        }
        (None, false) => {
            return Err(ApiError::conflict(
                "there is no filter: every application is shared; share the ones to keep instead",
            ))
        }
        (Some(mut f), false) => {
            f.unshare_application(&app);
            if f.validate().is_err() {
                return Err(ApiError::conflict(format!(
                    "{app_id} is the last application shared; a filter sharing nothing is refused (DELETE the filter to share everything)"
                )));
            }
            f
        }
    };
    capture
        .send(SetWindowFilter(Some(filter.clone())))
        .await??;
    tracing::info!(%session, app = %app_id, share, "application filter changed");
    Ok(HttpResponse::Ok().json(WindowFilterBody::from(filter)))
}

/// The monitors of a session's desktop.
#[utoipa::path(get, path = "/api/v1/sessions/{id}/monitors", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = [MonitorBody]), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn list_monitors(
    state: web::Data<AdminState>,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let capture = capture_of(&state, id.into_inner()).await?;
    let monitors = capture.send(ListMonitors).await??;
    let body: Vec<MonitorBody> = monitors
        .into_iter()
        .map(|m| MonitorBody {
            name: m.name,
            primary: m.primary,
            rect: [m.rect.x, m.rect.y, m.rect.width, m.rect.height],
        })
        .collect();
    Ok(HttpResponse::Ok().json(body))
}

/// The session's window filter; 404 when it shares everything.
#[utoipa::path(get, path = "/api/v1/sessions/{id}/filter", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = WindowFilterBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn get_filter(
    state: web::Data<AdminState>,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let capture = capture_of(&state, id.into_inner()).await?;
    match capture.send(GetWindowFilter).await? {
        Some(filter) => Ok(HttpResponse::Ok().json(WindowFilterBody::from(filter))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no filter: the whole shared rectangle is shared",
        )),
    }
}

/// Shares only the windows the filter names (x11 sessions); the change
/// applies to the next frame and follows windows as they open, close and move.
#[utoipa::path(put, path = "/api/v1/sessions/{id}/filter", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    request_body = WindowFilterBody,
    responses((status = 200, body = WindowFilterBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The session's source cannot filter windows", body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn set_filter(
    state: web::Data<AdminState>,
    id: web::Path<String>,
    body: JsonObject<WindowFilterBody>,
) -> ApiResult<HttpResponse> {
    let filter = WindowFilter::from(body.into_inner());
    filter.validate().map_err(ApiError::unprocessable)?;
    let id = id.into_inner();
    let capture = capture_of(&state, id.clone()).await?;
    capture
        .send(SetWindowFilter(Some(filter.clone())))
        .await??;
    // Answered once flushed: a restart shares no more than this.
    let record = tandem_registry::SessionFilterRecord {
        classes: filter.classes.clone(),
        pids: filter.pids.clone(),
        windows: filter.windows.clone(),
    };
    state
        .registry
        .send(Persist::SessionFilter(id, Some(record)))
        .await??;
    Ok(HttpResponse::Ok().json(WindowFilterBody::from(filter)))
}

/// Removes the window filter: the whole shared rectangle is shared again.
#[utoipa::path(delete, path = "/api/v1/sessions/{id}/filter", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 204, description = "Removed"), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn clear_filter(
    state: web::Data<AdminState>,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let capture = capture_of(&state, id.clone()).await?;
    capture.send(SetWindowFilter(None)).await??;
    state
        .registry
        // An empty record: "everything", also over a filter in the config.
        .send(Persist::SessionFilter(
            id,
            Some(tandem_registry::SessionFilterRecord::default()),
        ))
        .await??;
    Ok(HttpResponse::NoContent().finish())
}

/// Opens a sharing session on a capture source; a source already shared is refused (409).
#[utoipa::path(post, path = "/api/v1/sessions", tag = "sessions", request_body = NewSession,
    responses((status = 201, body = Session),
        (status = 404, description = "The X display cannot be opened", body = ErrorBody),
        (status = 409, description = "The source is already shared", body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn open_session(
    state: web::Data<AdminState>,
    body: JsonObject<NewSession>,
) -> ApiResult<HttpResponse> {
    use crate::config::{ControlPolicy, SourceKind};
    let body = body.into_inner();
    // Each source takes its own keys only, so a key that would be ignored
    // is refused instead (the schema's oneOf says the same).
    let (kind, foreign) = match body.source {
        NewSessionSource::Synthetic => (
            SourceKind::Synthetic,
            [
                ("display", body.display.is_some()),
                ("monitor", body.monitor.is_some()),
                ("filter", body.filter.is_some()),
            ],
        ),
        NewSessionSource::X11 => (
            SourceKind::X11,
            [
                ("width", body.width.is_some()),
                ("height", body.height.is_some()),
                ("seed", body.seed.is_some()),
            ],
        ),
    };
    if let Some((key, _)) = foreign.iter().find(|(_, given)| *given) {
        let source = match body.source {
            NewSessionSource::Synthetic => "synthetic",
            NewSessionSource::X11 => "x11",
        };
        return Err(ApiError::unprocessable(format!(
            "{key} does not apply to a {source} session"
        )));
    }
    let control_policy = body.control_policy.map(|p| match p {
        PolicyBody::Ask => ControlPolicy::Ask,
        PolicyBody::GrantView => ControlPolicy::GrantView,
        PolicyBody::GrantAll => ControlPolicy::GrantAll,
    });
    let default_control_level = body.default_control_level.map(|l| match l {
        DefaultLevel::None => ControlLevel::None,
        DefaultLevel::View => ControlLevel::View,
    });
    let defaults = crate::config::SourceConfig::default();
    let spec = crate::SessionSpec {
        name: body.name,
        source: crate::config::SourceConfig {
            kind,
            display: body.display,
            width: body.width.unwrap_or(defaults.width),
            height: body.height.unwrap_or(defaults.height),
            seed: body.seed.unwrap_or(defaults.seed),
            monitor: body.monitor,
            filter: body.filter.map(WindowFilter::from),
            ..defaults
        },
        frame_interval_ms: body.frame_interval_ms,
        default_control_level,
        control_policy,
    };
    let info = match state.launcher.open_spec(spec).await {
        Ok(info) => info,
        // The display named cannot be opened: there is no such desktop here.
        Err(NodeError::Capture(e @ tandem_capture::CaptureError::Backend { .. })) => {
            return Err(ApiError::not_found(format!(
                "cannot open the capture source: {e}"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    Ok(HttpResponse::Created().json(Session::from(info)))
}

/// Closes a session for good.
#[utoipa::path(delete, path = "/api/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 204, description = "Closed"), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn close_session(
    state: web::Data<AdminState>,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    state
        .manager
        .send(CloseSession {
            session: id.clone(),
        })
        .await??;
    state.channels.close_session(&id);
    Ok(HttpResponse::NoContent().finish())
}

/// The session's current frame as a PNG.
#[utoipa::path(get, path = "/api/v1/sessions/{id}/framebuffer.png", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, description = "RGBA PNG", content_type = "image/png", body = Vec<u8>),
        (status = 404, body = ErrorBody), (status = 409, description = "No frame yet", body = ErrorBody)),
    security(("bearer" = [])))]
async fn framebuffer_png(
    state: web::Data<AdminState>,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let encoder = state
        .manager
        .send(SessionEncoder {
            session: id.into_inner(),
        })
        .await??;
    let frame = encoder
        .send(CurrentFrame)
        .await?
        .ok_or_else(|| ApiError::conflict("no frame has been captured yet; try again"))?;
    let png = web::block(move || -> Result<Vec<u8>, png::EncodingError> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, frame.width(), frame.height());
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&frame.to_rgba8())?;
        writer.finish()?;
        Ok(out)
    })
    .await
    .map_err(|_| ApiError::from(NodeError::Stopped))?
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding the PNG: {e}"),
        )
    })?;
    Ok(HttpResponse::Ok().content_type("image/png").body(png))
}

// ---------------------------------------------------------------------------
// Invitations

/// Lists invitations.
#[utoipa::path(get, path = "/api/v1/invitations", tag = "invitations",
    responses((status = 200, body = Vec<Invitation>)),
    security(("bearer" = [])))]
async fn list_invitations(state: web::Data<AdminState>) -> ApiResult<HttpResponse> {
    let list: Vec<Invitation> = state
        .manager
        .send(ListInvitations { session: None })
        .await?
        .into_iter()
        .map(|i| state.invitation(i))
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

/// Creates an invitation.
#[utoipa::path(post, path = "/api/v1/invitations", tag = "invitations",
    request_body = NewInvitation,
    responses((status = 201, body = Invitation), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn create_invitation(
    state: web::Data<AdminState>,
    body: JsonObject<NewInvitation>,
) -> ApiResult<HttpResponse> {
    let b = body.into_inner();
    let session = match b.session {
        Some(s) => s,
        None => {
            let open = state.manager.send(ListSessions).await?;
            match open.as_slice() {
                [only] => only.id.clone(),
                [] => return Err(ApiError::conflict("no session is open")),
                _ => {
                    return Err(ApiError::conflict(
                        "several sessions are open; name one with \"session\"",
                    ))
                }
            }
        }
    };
    let info = state
        .manager
        .send(CreateInvitation {
            session,
            auth_string: b.auth_string,
            group: b.group,
            password: b.password,
            attendee_limit: b.attendee_limit.unwrap_or(DEFAULT_ATTENDEE_LIMIT),
        })
        .await??;
    Ok(HttpResponse::Created().json(state.invitation(info)))
}

/// One invitation (never its password).
#[utoipa::path(get, path = "/api/v1/invitations/{id}", tag = "invitations",
    params(("id" = String, Path, description = "Invitation id")),
    responses((status = 200, body = Invitation), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn get_invitation(
    state: web::Data<AdminState>,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let info = state
        .manager
        .send(ListInvitations { session: None })
        .await?
        .into_iter()
        .find(|i| i.id == id)
        .ok_or_else(|| ApiError::not_found(format!("invitation {id} not found")))?;
    Ok(HttpResponse::Ok().json(state.invitation(info)))
}

/// Changes an invitation's attendee limit or revokes it.
#[utoipa::path(patch, path = "/api/v1/invitations/{id}", tag = "invitations",
    params(("id" = String, Path, description = "Invitation id")),
    request_body = InvitationPatch,
    responses((status = 200, body = Invitation), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn update_invitation(
    state: web::Data<AdminState>,
    id: web::Path<String>,
    body: JsonObject<InvitationPatch>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let b = body.into_inner();
    if b.revoked == Some(false) {
        let current = state
            .manager
            .send(ListInvitations { session: None })
            .await?
            .into_iter()
            .find(|i| i.id == id)
            .ok_or_else(|| ApiError::not_found(format!("invitation {id} not found")))?;
        if current.revoked {
            return Err(ApiError::conflict(format!(
                "invitation {id} is revoked; revocation is final"
            )));
        }
    }
    let info = state
        .manager
        .send(UpdateInvitation {
            id,
            attendee_limit: b.attendee_limit,
            revoke: b.revoked == Some(true),
        })
        .await??;
    Ok(HttpResponse::Ok().json(Invitation::from(info)))
}

/// Revokes an invitation: no new joins (attendees already in stay).
#[utoipa::path(post, path = "/api/v1/invitations/{id}/revoke", tag = "invitations",
    params(("id" = String, Path, description = "Invitation id")),
    responses((status = 200, body = Invitation), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn revoke_invitation(
    state: web::Data<AdminState>,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let info = state
        .manager
        .send(UpdateInvitation {
            id: id.into_inner(),
            attendee_limit: None,
            revoke: true,
        })
        .await??;
    Ok(HttpResponse::Ok().json(Invitation::from(info)))
}

// ---------------------------------------------------------------------------
// Attendees and control requests

/// Lists live attendees (the `net session` view); `?state=all` adds history.
#[utoipa::path(get, path = "/api/v1/attendees", tag = "attendees",
    params(AttendeeQuery),
    responses((status = 200, body = Vec<Attendee>), (status = 400, body = ErrorBody)),
    security(("bearer" = [])))]
async fn list_attendees(
    state: web::Data<AdminState>,
    query: web::Query<AttendeeQuery>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    if query.scope.unwrap_or_default() == AttendeeScope::Cluster {
        return crate::cluster::admin::cluster_attendees(state, req).await;
    }
    let all = query.state.unwrap_or_default() == AttendeeState::All;
    let mut list: Vec<Attendee> = state
        .manager
        .send(ListAttendees { session: None })
        .await?
        .into_iter()
        .map(Attendee::from)
        .collect();
    if all {
        let records = state
            .registry
            .send(ListAttendeeRecords(AttendeeFilter::All))
            .await??;
        for r in records {
            if list.iter().any(|a| a.id == r.id) {
                continue;
            }
            list.extend(history_attendee(r));
        }
        list.sort_by_key(|a| a.id);
    }
    Ok(HttpResponse::Ok().json(list))
}

/// An attendee of the history as the API shows it (`None`: still connected).
fn history_attendee(r: tandem_registry::AttendeeRecord) -> Option<Attendee> {
    let at = r.disconnected_at_ms?;
    let level = r.control_level.parse().unwrap_or(ControlLevel::None);
    Some(Attendee {
        id: r.id,
        user: r.user,
        computer: r.computer,
        session: r.session_id,
        invitation: r.invitation_id,
        state: "disconnected".into(),
        control_level: level.into(),
        pending_request: None,
        level_state: tandem_session::ShownLevel::from(level).into(),
        connected_at: crate::clock::rfc3339(r.connected_at_ms),
        idle_seconds: None,
        // Wall-clock times of the record: a clock step may skew it, never below zero.
        connected_seconds: u64::try_from(at.saturating_sub(r.connected_at_ms)).unwrap_or(0) / 1000,
        via_node: r.via_node,
        disconnected_at: Some(crate::clock::rfc3339(at)),
        reason: r.disconnect_reason,
    })
}

/// One attendee and what it holds open (`IADsSession.Resources`, `net
/// session \\computer`); an attendee of the history has no resources.
#[utoipa::path(get, path = "/api/v1/attendees/{id}", tag = "attendees",
    params(("id" = u64, Path, description = "Attendee id")),
    responses((status = 200, body = AttendeeDetail), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn get_attendee(
    state: web::Data<AdminState>,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let attendee = parse_attendee_id(&id)?;
    match state.manager.send(GetAttendee { attendee }).await? {
        Ok(details) => {
            let resources = resources(&state, &details)?;
            return Ok(HttpResponse::Ok().json(AttendeeDetail {
                attendee: Attendee::from(details.info),
                resources: Some(resources),
            }));
        }
        Err(NodeError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let record = state
        .registry
        .send(ListAttendeeRecords(AttendeeFilter::All))
        .await??
        .into_iter()
        .find(|r| r.id == attendee)
        .and_then(history_attendee)
        .ok_or_else(|| ApiError::not_found(format!("attendee {attendee} not found")))?;
    Ok(HttpResponse::Ok().json(AttendeeDetail {
        attendee: record,
        resources: None,
    }))
}

/// What a live attendee holds open: the manager's part and the channel hub's.
fn resources(
    state: &AdminState,
    d: &crate::attendee_manager::AttendeeDetails,
) -> ApiResult<Resources> {
    use tandem_proto::ChannelAccess;
    let a = &d.info;
    let graphics = if a.control_level == ControlLevel::None {
        "off"
    } else if d.paused {
        "paused"
    } else {
        "streaming"
    };
    let (clipboard_on, _) = state.channels.clipboard(&a.session)?;
    let channels = state
        .channels
        .list_channels(&a.session)?
        .into_iter()
        .filter_map(|c| {
            let access = c.access.get(&a.id).copied().unwrap_or(ChannelAccess::None);
            let joined = c.joined.contains(&a.id);
            (joined || access != ChannelAccess::None).then_some(ChannelResource {
                id: c.id,
                name: c.name,
                builtin: c.builtin,
                joined,
                access,
            })
        })
        .collect();
    Ok(Resources {
        graphics: GraphicsResource {
            state: graphics.into(),
        },
        channels,
        clipboard: ClipboardResource {
            enabled: clipboard_on,
            access: tandem_session::clipboard_access(clipboard_on, a.control_level),
        },
        pending_request: a.pending_request.map(Into::into),
        held_keys: d.held_keys.clone(),
        held_buttons: d
            .held_buttons
            .iter()
            .map(|b| {
                serde_json::to_value(b)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            })
            .collect(),
    })
}

/// Sets an attendee's control level (also answers a pending request).
#[utoipa::path(put, path = "/api/v1/attendees/{id}/control-level", tag = "attendees",
    params(("id" = u64, Path, description = "Attendee id")),
    request_body = ControlLevelBody,
    responses((status = 200, body = Attendee), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn set_control_level(
    state: web::Data<AdminState>,
    id: web::Path<String>,
    body: JsonObject<ControlLevelBody>,
) -> ApiResult<HttpResponse> {
    let attendee = parse_attendee_id(&id)?;
    let info = state
        .manager
        .send(SetControlLevel {
            attendee,
            level: body.level.into(),
        })
        .await??;
    Ok(HttpResponse::Ok().json(Attendee::from(info)))
}

/// Disconnects an attendee; the reason (body `{"reason"}` or `?reason=`) is shown to it.
#[utoipa::path(delete, path = "/api/v1/attendees/{id}", tag = "attendees",
    params(("id" = u64, Path, description = "Attendee id"), ReasonQuery),
    request_body(content = Option<DisconnectBody>, description = "Optional reason"),
    responses((status = 204, description = "Disconnected"), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn disconnect_attendee(
    state: web::Data<AdminState>,
    id: web::Path<String>,
    query: web::Query<ReasonQuery>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let attendee = parse_attendee_id(&id)?;
    let bytes = body.to_bytes_limited(MAX_BODY_BYTES).await;
    let bytes = match bytes {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return Err(ApiError::bad_request(format!("unreadable body: {e}"))),
        Err(_) => return Err(ApiError::too_large()),
    };
    // No body, `null` or an object.
    let from_body = if bytes.iter().all(u8::is_ascii_whitespace) {
        DisconnectBody::default()
    } else {
        match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Err(e) => return Err(ApiError::bad_request(format!("malformed JSON: {e}"))),
            Ok(serde_json::Value::Null) => DisconnectBody::default(),
            Ok(v) if v.is_object() => serde_json::from_value::<DisconnectBody>(v)
                .map_err(|e| ApiError::unprocessable(format!("invalid value: {e}")))?,
            Ok(_) => return Err(ApiError::unprocessable("the body must be a JSON object")),
        }
    };
    let message = from_body
        .reason
        .or_else(|| query.into_inner().reason)
        .unwrap_or_else(|| "disconnected by the sharer".into());
    if message.len() > 1024 {
        return Err(ApiError::unprocessable("reason may be at most 1024 bytes"));
    }
    state
        .manager
        .send(DisconnectAttendee { attendee, message })
        .await??;
    Ok(HttpResponse::NoContent().finish())
}

/// Attendees with a pending control request.
#[utoipa::path(get, path = "/api/v1/control-requests", tag = "control requests",
    responses((status = 200, body = Vec<Attendee>)),
    security(("bearer" = [])))]
async fn list_control_requests(state: web::Data<AdminState>) -> ApiResult<HttpResponse> {
    let list: Vec<Attendee> = state
        .manager
        .send(ListAttendees { session: None })
        .await?
        .into_iter()
        .filter(|a| a.pending_request.is_some())
        .map(Attendee::from)
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

/// Grants an attendee's pending control request.
#[utoipa::path(post, path = "/api/v1/control-requests/{id}/grant", tag = "control requests",
    params(("id" = u64, Path, description = "Attendee id")),
    responses((status = 204, description = "Granted"), (status = 404, body = ErrorBody),
        (status = 409, description = "No pending request", body = ErrorBody)),
    security(("bearer" = [])))]
async fn grant_control(
    state: web::Data<AdminState>,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    answer(&state, &id, true).await
}

/// Denies an attendee's pending control request.
#[utoipa::path(post, path = "/api/v1/control-requests/{id}/deny", tag = "control requests",
    params(("id" = u64, Path, description = "Attendee id")),
    responses((status = 204, description = "Denied"), (status = 404, body = ErrorBody),
        (status = 409, description = "No pending request", body = ErrorBody)),
    security(("bearer" = [])))]
async fn deny_control(
    state: web::Data<AdminState>,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    answer(&state, &id, false).await
}

async fn answer(state: &AdminState, id: &str, grant: bool) -> ApiResult<HttpResponse> {
    let attendee = parse_attendee_id(id)?;
    state
        .manager
        .send(AnswerControlRequest { attendee, grant })
        .await??;
    Ok(HttpResponse::NoContent().finish())
}

// ---------------------------------------------------------------------------
// Groups

/// Every group with permissions.
#[utoipa::path(get, path = "/api/v1/groups", tag = "groups",
    responses((status = 200, body = Vec<Group>)),
    security(("bearer" = [])))]
async fn list_groups(state: web::Data<AdminState>) -> ApiResult<HttpResponse> {
    let list: Vec<Group> = state
        .manager
        .send(ListGroups)
        .await?
        .into_iter()
        .map(|(n, g)| Group::new(n, &g))
        .collect();
    Ok(HttpResponse::Ok().json(list))
}

/// One group's permissions.
#[utoipa::path(get, path = "/api/v1/groups/{name}", tag = "groups",
    params(("name" = String, Path, description = "Group name")),
    responses((status = 200, body = Group), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn get_group(
    state: web::Data<AdminState>,
    name: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let name = name.into_inner();
    let group = state
        .manager
        .send(ListGroups)
        .await?
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(n, g)| Group::new(n, &g))
        .ok_or_else(|| ApiError::not_found(format!("group {name} has no permissions set")))?;
    Ok(HttpResponse::Ok().json(group))
}

/// Sets a group's permissions, replacing what it had: they apply to its
/// attendees' next requests and to its next joins (the level and channel
/// access of attendees already in stay). Kept until the node restarts;
/// `[groups.NAME]` in the config sets them at start.
#[utoipa::path(put, path = "/api/v1/groups/{name}", tag = "groups",
    params(("name" = String, Path, description = "Group name")),
    request_body = GroupBody,
    responses((status = 200, body = Group),
        (status = 409, description = "Already as many groups as allowed (256)", body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn set_group(
    state: web::Data<AdminState>,
    name: web::Path<String>,
    body: JsonObject<GroupBody>,
) -> ApiResult<HttpResponse> {
    let name = name.into_inner();
    let b = body.into_inner();
    let config = crate::config::GroupConfig {
        default_level: b.default_level.map(|l| match l {
            DefaultLevel::None => ControlLevel::None,
            DefaultLevel::View => ControlLevel::View,
        }),
        auto_grant: b.auto_grant.map(ControlLevel::from),
        channels: b.channels.unwrap_or_default(),
    };
    config.validate(&name).map_err(ApiError::unprocessable)?;
    let rules = config.rules();
    state
        .manager
        .send(SetGroup {
            name: name.clone(),
            rules: Some(rules.clone()),
        })
        .await??;
    Ok(HttpResponse::Ok().json(Group::new(name, &rules)))
}

/// Removes a group's permissions: its attendees follow the session's rules.
#[utoipa::path(delete, path = "/api/v1/groups/{name}", tag = "groups",
    params(("name" = String, Path, description = "Group name")),
    responses((status = 204, description = "Removed"), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn delete_group(
    state: web::Data<AdminState>,
    name: web::Path<String>,
) -> ApiResult<HttpResponse> {
    state
        .manager
        .send(SetGroup {
            name: name.into_inner(),
            rules: None,
        })
        .await??;
    Ok(HttpResponse::NoContent().finish())
}

// ---------------------------------------------------------------------------
// Events

fn sse_frame(seq: u64, data: &serde_json::Value) -> Bytes {
    Bytes::from(format!("id: {seq}\ndata: {data}\n\n"))
}

/// Server-sent events: recent history first, then live events, each
/// `id: <seq>` and `data: <json>` (`seq`, `at_ms`, `kind` and its fields;
/// `error` events carry `code` and `message`). A `: keep-alive` comment
/// comes after 15 s of silence and `: lagged, N events missed` when this
/// client fell behind. The stream does not end by itself.
#[utoipa::path(get, path = "/api/v1/events", tag = "events",
    params(EventsQuery),
    responses((status = 200, description = "A server-sent event stream (text/event-stream) of session events", content_type = "text/event-stream", body = String)),
    security(("bearer" = [])))]
async fn events(
    state: web::Data<AdminState>,
    query: web::Query<EventsQuery>,
) -> ApiResult<HttpResponse> {
    let limit = query.history.unwrap_or(100);
    if limit > MAX_EVENT_HISTORY {
        return Err(ApiError::bad_request(format!(
            "history may be at most {MAX_EVENT_HISTORY}"
        )));
    }
    // Subscribe first so nothing falls between the history and the live part.
    let live = state.events.subscribe();
    let history = if limit == 0 {
        Vec::new()
    } else {
        state.registry.send(RecentEvents { limit }).await??
    };
    let mut last_seq = 0;
    let mut first = Vec::with_capacity(history.len());
    for e in history {
        let mut data = serde_json::from_str::<serde_json::Value>(&e.detail)
            .ok()
            .filter(serde_json::Value::is_object)
            .unwrap_or_else(|| serde_json::json!({ "kind": e.kind, "detail": e.detail }));
        if let Some(obj) = data.as_object_mut() {
            obj.insert("seq".into(), e.seq.into());
            obj.insert("at_ms".into(), e.at_ms.into());
        }
        last_seq = last_seq.max(e.seq);
        first.push(Ok::<_, actix_web::Error>(sse_frame(e.seq, &data)));
    }
    let history = futures::stream::iter(first);
    let live = futures::stream::unfold((live, last_seq), |(mut rx, last)| async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match tokio::time::timeout(Duration::from_secs(15), rx.recv()).await {
                Err(_) => return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), (rx, last))),
                Ok(Ok(event)) => {
                    if event.seq != 0 && event.seq <= last {
                        continue;
                    }
                    let data = serde_json::to_value(&*event).unwrap_or_default();
                    let last = last.max(event.seq);
                    return Some((Ok(sse_frame(event.seq, &data)), (rx, last)));
                }
                Ok(Err(RecvError::Lagged(n))) => {
                    let line = format!(": lagged, {n} events missed\n\n");
                    return Some((Ok(Bytes::from(line)), (rx, last)));
                }
                Ok(Err(RecvError::Closed)) => return None,
            }
        }
    });
    use futures::StreamExt;
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .streaming(history.chain(live)))
}

// ---------------------------------------------------------------------------
// OpenAPI

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The generated OpenAPI document of the admin API.
#[derive(OpenApi)]
#[openapi(
    info(title = "Tandem admin API", description = "Administration of a Tandem node: sessions, invitations, attendees, control requests, events."),
    paths(
        healthz, metrics, openapi,
        list_sessions, open_session, pause_session, resume_session, set_shared_rect, set_frame_interval, close_session, framebuffer_png,
        list_windows, list_applications, share_application, unshare_application, list_monitors, get_filter, set_filter, clear_filter,
        list_invitations, create_invitation, get_invitation, update_invitation, revoke_invitation,
        list_attendees, get_attendee, set_control_level, disconnect_attendee,
        list_control_requests, grant_control, deny_control,
        list_groups, get_group, set_group, delete_group,
        events,
    ),
    components(schemas(ErrorBody, Health, Level, LevelState, Session, NewSession, NewSessionSource, DefaultLevel, PolicyBody,
        SharedRectBody, SharedRect, FrameIntervalBody, Invitation, Window, ApplicationBody, WindowFilterBody, MonitorBody,
        NewInvitation, InvitationPatch, Attendee, AttendeeDetail, Resources, GraphicsResource, ChannelResource, ClipboardResource,
        AttendeeState, AttendeeScope, ControlLevelBody, DisconnectBody, Group, GroupBody)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;
