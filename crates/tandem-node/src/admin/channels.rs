//! Admin routes of virtual channels and clipboard sharing, under
//! `/api/v1/sessions/{id}`:
//!
//! | Route | Does |
//! |---|---|
//! | `GET channels` | list channels, with access and joined attendees |
//! | `POST channels` `{"name", "priority"?, "flags"?}` | create a channel |
//! | `PUT channels/{name}/access/{attendee}` `{"access"}` | set an attendee's access |
//! | `POST channels/{name}/messages[?attendee=N]` raw body | send to one attendee or every reader |
//! | `GET channels/{name}/messages` | stream what attendees send (server-sent events) |
//! | `GET clipboard`, `PUT clipboard` `{"enabled"}` | clipboard sharing switch |
//!
//! Handlers only call the [`ChannelHub`](crate::channels::ChannelHub); its
//! errors map to statuses through [`ApiError`].

use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tandem_proto::{ChannelAccess, ChannelFlags, ChannelPriority, MAX_CHANNEL_MESSAGE};
use utoipa::{OpenApi, ToSchema};

use super::error::{ErrorBody, JsonObject};
use super::resource::resource;
use super::state::AdminState;
use crate::channels::{AccessName, PriorityName, Target};
use crate::error::NodeError;

use super::error::ApiResult;

/// Registers the routes on the `/api/v1` scope.
pub fn routes(cfg: &mut web::ServiceConfig) {
    use actix_web::http::Method;
    let to = web::route;
    cfg.service(resource(
        "/sessions/{id}/channels",
        vec![
            (Method::GET, to().to(list_channels)),
            (Method::POST, to().to(create_channel)),
        ],
    ))
    .service(resource(
        "/sessions/{id}/channels/{name}/access/{attendee}",
        vec![(Method::PUT, to().to(set_access))],
    ))
    .service(resource(
        "/sessions/{id}/channels/{name}/messages",
        vec![
            (Method::GET, to().to(stream_messages)),
            (Method::POST, to().to(send_message)),
        ],
    ))
    .service(resource(
        "/sessions/{id}/clipboard",
        vec![
            (Method::GET, to().to(get_clipboard)),
            (Method::PUT, to().to(set_clipboard)),
        ],
    ));
}

/// The OpenAPI document of these routes (merged into the admin API's).
#[derive(OpenApi)]
#[openapi(
    paths(
        list_channels,
        create_channel,
        set_access,
        send_message,
        stream_messages,
        get_clipboard,
        set_clipboard
    ),
    components(schemas(
        NewChannel,
        AccessBody,
        ClipboardSwitch,
        ClipboardState,
        PriorityName,
        AccessName,
        crate::channels::ChannelDesc,
        crate::channels::SendReport
    ))
)]
pub struct ChannelsApiDoc;

/// `POST channels` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChannel {
    /// 1 to 64 characters from `A-Z a-z 0-9 . _ -`.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub name: String,
    /// `low`, `normal` (default) or `high`.
    #[schema(value_type = Option<PriorityName>)]
    pub priority: Option<ChannelPriority>,
    /// Flag bits: 0 (default), or 1 (uncompressed); unknown bits are refused.
    #[schema(minimum = 0, maximum = 1)]
    pub flags: Option<u32>,
}

/// `PUT .../access/{attendee}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessBody {
    /// `none`, `read` or `read-write`.
    #[schema(value_type = AccessName)]
    pub access: ChannelAccess,
}

/// `?attendee=N`: send to that attendee only.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TargetQuery {
    /// Attendee id; absent: every attendee with read access.
    pub attendee: Option<u64>,
}

/// `PUT clipboard` body: the clipboard switch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClipboardSwitch {
    /// Whether clipboard sharing is on.
    pub enabled: bool,
}

/// Clipboard sharing of a session.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClipboardState {
    /// Whether clipboard sharing is on.
    pub enabled: bool,
    /// Largest text carried, in bytes (`clipboard_max_bytes`).
    pub max_bytes: usize,
}

fn parse_id(text: &str) -> ApiResult<u64> {
    text.parse()
        .map_err(|_| NodeError::Invalid(format!("attendee id {text:?} is not a number")).into())
}

/// The session's channels, with access per attendee and who joined.
#[utoipa::path(get, path = "/api/v1/sessions/{id}/channels", tag = "channels",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, description = "The channels", body = [crate::channels::ChannelDesc]), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn list_channels(
    state: web::Data<AdminState>,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.channels.list_channels(&id)?))
}

/// Creates a channel (attendees cannot).
#[utoipa::path(post, path = "/api/v1/sessions/{id}/channels", tag = "channels",
    params(("id" = String, Path, description = "Session id")), request_body = NewChannel,
    responses((status = 201, description = "The channel", body = crate::channels::ChannelDesc), (status = 404, body = ErrorBody),
        (status = 409, description = "A channel of that name exists, or the session has 64", body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn create_channel(
    state: web::Data<AdminState>,
    id: web::Path<String>,
    body: JsonObject<NewChannel>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let desc = state.channels.create_channel(
        &id,
        &body.name,
        body.priority.unwrap_or_default(),
        ChannelFlags(body.flags.unwrap_or(0)),
    )?;
    Ok(HttpResponse::Created().json(desc))
}

/// Sets an attendee's access to a channel.
#[utoipa::path(put, path = "/api/v1/sessions/{id}/channels/{name}/access/{attendee}", tag = "channels",
    params(("id" = String, Path, description = "Session id"), ("name" = String, Path, description = "Channel name", pattern = "^[A-Za-z0-9._-]{1,64}$"), ("attendee" = u64, Path, description = "Attendee id")), request_body = AccessBody,
    responses((status = 204, description = "Set"), (status = 404, body = ErrorBody), (status = 409, description = "The built-in clipboard's access follows the control level", body = ErrorBody)),
    security(("bearer" = [])))]
async fn set_access(
    state: web::Data<AdminState>,
    path: web::Path<(String, String, String)>,
    body: JsonObject<AccessBody>,
) -> ApiResult<HttpResponse> {
    let (session, name, attendee) = path.into_inner();
    let attendee = parse_id(&attendee)?;
    state
        .channels
        .set_access(&session, &name, attendee, body.access)?;
    Ok(HttpResponse::NoContent().finish())
}

/// Sends the raw body (at most 65520 bytes) to one attendee or every reader.
#[utoipa::path(post, path = "/api/v1/sessions/{id}/channels/{name}/messages", tag = "channels",
    params(("id" = String, Path, description = "Session id"), ("name" = String, Path, description = "Channel name", pattern = "^[A-Za-z0-9._-]{1,64}$"), TargetQuery), request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The message: any bytes, at most 65520"),
    responses((status = 200, description = "What became of it", body = crate::channels::SendReport), (status = 404, body = ErrorBody),
        (status = 409, description = "The attendee named cannot read the channel", body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
async fn send_message(
    state: web::Data<AdminState>,
    path: web::Path<(String, String)>,
    query: web::Query<TargetQuery>,
    body: Bytes,
) -> ApiResult<HttpResponse> {
    let (session, name) = path.into_inner();
    if body.len() > MAX_CHANNEL_MESSAGE {
        return Err(NodeError::Invalid(format!(
            "channel message of {} bytes exceeds the {MAX_CHANNEL_MESSAGE}-byte limit",
            body.len()
        ))
        .into());
    }
    let target = query.attendee.map_or(Target::AllReaders, Target::One);
    let report = state
        .channels
        .send(&session, &name, target, body.to_vec())?;
    Ok(HttpResponse::Ok().json(report))
}

/// One arrival as a server-sent event: `text` when the bytes are UTF-8,
/// else `hex`.
fn arrival_json(a: &crate::channels::ChannelArrival) -> serde_json::Value {
    let mut v = serde_json::json!({
        "session": a.session,
        "channel": a.channel,
        "attendee": a.attendee,
        "bytes": a.data.len(),
    });
    match std::str::from_utf8(&a.data) {
        Ok(text) => v["text"] = text.into(),
        Err(_) => v["hex"] = hex::encode(&a.data).into(),
    }
    v
}

/// Server-sent events of what attendees send on the channel, live (no
/// history): each `data: {"session","channel","attendee","bytes","text"}`
/// (`hex` instead of `text` when not UTF-8); `event: lagged` with
/// `data: {"missed": N}` when this client fell behind; a `: keep-alive`
/// comment every 15 s of silence. The stream does not end by itself.
#[utoipa::path(get, path = "/api/v1/sessions/{id}/channels/{name}/messages", tag = "channels",
    params(("id" = String, Path, description = "Session id"), ("name" = String, Path, description = "Channel name", pattern = "^[A-Za-z0-9._-]{1,64}$")),
    responses((status = 200, description = "A server-sent event stream (text/event-stream) of arrivals", content_type = "text/event-stream", body = String), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn stream_messages(
    state: web::Data<AdminState>,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (session, name) = path.into_inner();
    // Fail early on an unknown session or channel.
    let channels = state.channels.list_channels(&session)?;
    if !channels.iter().any(|c| c.name == name) {
        return Err(NodeError::NotFound {
            what: "channel",
            id: name,
        }
        .into());
    }
    let rx = state.channels.subscribe();
    let live = futures::stream::unfold(rx, move |mut rx| {
        let (session, name) = (session.clone(), name.clone());
        async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match tokio::time::timeout(Duration::from_secs(15), rx.recv()).await {
                    Err(_) => {
                        return Some((
                            Ok::<_, actix_web::Error>(Bytes::from_static(b": keep-alive\n\n")),
                            rx,
                        ))
                    }
                    Ok(Ok(a)) => {
                        if a.session != session || a.channel != name {
                            continue;
                        }
                        let line = format!("data: {}\n\n", arrival_json(&a));
                        return Some((Ok(Bytes::from(line)), rx));
                    }
                    Ok(Err(RecvError::Lagged(n))) => {
                        // Not hidden: the stream says how many it lost.
                        let line = format!("event: lagged\ndata: {{\"missed\": {n}}}\n\n");
                        return Some((Ok(Bytes::from(line)), rx));
                    }
                    Ok(Err(RecvError::Closed)) => return None,
                }
            }
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .streaming(live))
}

/// Whether clipboard sharing is on.
#[utoipa::path(get, path = "/api/v1/sessions/{id}/clipboard", tag = "channels",
    params(("id" = String, Path, description = "Session id")), responses((status = 200, body = ClipboardState), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn get_clipboard(
    state: web::Data<AdminState>,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (enabled, max_bytes) = state.channels.clipboard(&id)?;
    Ok(HttpResponse::Ok().json(ClipboardState { enabled, max_bytes }))
}

/// Turns clipboard sharing on or off.
#[utoipa::path(put, path = "/api/v1/sessions/{id}/clipboard", tag = "channels",
    params(("id" = String, Path, description = "Session id")), request_body = ClipboardSwitch, responses((status = 200, body = ClipboardState), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn set_clipboard(
    state: web::Data<AdminState>,
    id: web::Path<String>,
    body: JsonObject<ClipboardSwitch>,
) -> ApiResult<HttpResponse> {
    state.channels.set_clipboard(&id, body.enabled)?;
    let (enabled, max_bytes) = state.channels.clipboard(&id)?;
    Ok(HttpResponse::Ok().json(ClipboardState { enabled, max_bytes }))
}
