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

use crate::admin::{AdminState, ApiError};
use crate::channels::Target;
use crate::error::NodeError;

type ApiResult<T> = Result<T, ApiError>;

/// Registers the routes on the `/api/v1` scope.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/sessions/{id}/channels", web::get().to(list_channels))
        .route("/sessions/{id}/channels", web::post().to(create_channel))
        .route(
            "/sessions/{id}/channels/{name}/access/{attendee}",
            web::put().to(set_access),
        )
        .route(
            "/sessions/{id}/channels/{name}/messages",
            web::post().to(send_message),
        )
        .route(
            "/sessions/{id}/channels/{name}/messages",
            web::get().to(stream_messages),
        )
        .route("/sessions/{id}/clipboard", web::get().to(get_clipboard))
        .route("/sessions/{id}/clipboard", web::put().to(set_clipboard));
}

/// `POST channels` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewChannel {
    /// 1 to 64 characters from `A-Z a-z 0-9 . _ -`.
    pub name: String,
    /// `low`, `normal` (default) or `high`.
    #[serde(default)]
    pub priority: ChannelPriority,
    /// Flag bits (1: uncompressed).
    #[serde(default)]
    pub flags: u32,
}

/// `PUT .../access/{attendee}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessBody {
    /// `none`, `read` or `read-write`.
    pub access: ChannelAccess,
}

/// `?attendee=N`: send to that attendee only.
#[derive(Debug, Deserialize)]
pub struct TargetQuery {
    /// Attendee id; absent: every attendee with read access.
    pub attendee: Option<u64>,
}

/// The clipboard switch.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClipboardBody {
    /// Whether clipboard sharing is on.
    pub enabled: bool,
    /// Largest text carried, in bytes (read only).
    #[serde(default, skip_deserializing)]
    pub max_bytes: usize,
}

fn parse_id(text: &str) -> ApiResult<u64> {
    text.parse()
        .map_err(|_| NodeError::Invalid(format!("attendee id {text:?} is not a number")).into())
}

async fn list_channels(
    state: web::Data<AdminState>,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.channels.list_channels(&id)?))
}

async fn create_channel(
    state: web::Data<AdminState>,
    id: web::Path<String>,
    body: web::Json<NewChannel>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let desc =
        state
            .channels
            .create_channel(&id, &body.name, body.priority, ChannelFlags(body.flags))?;
    Ok(HttpResponse::Created().json(desc))
}

async fn set_access(
    state: web::Data<AdminState>,
    path: web::Path<(String, String, String)>,
    body: web::Json<AccessBody>,
) -> ApiResult<HttpResponse> {
    let (session, name, attendee) = path.into_inner();
    let attendee = parse_id(&attendee)?;
    state
        .channels
        .set_access(&session, &name, attendee, body.access)?;
    Ok(HttpResponse::NoContent().finish())
}

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

async fn get_clipboard(
    state: web::Data<AdminState>,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (enabled, max_bytes) = state.channels.clipboard(&id)?;
    Ok(HttpResponse::Ok().json(ClipboardBody { enabled, max_bytes }))
}

async fn set_clipboard(
    state: web::Data<AdminState>,
    id: web::Path<String>,
    body: web::Json<ClipboardBody>,
) -> ApiResult<HttpResponse> {
    state.channels.set_clipboard(&id, body.enabled)?;
    let (enabled, max_bytes) = state.channels.clipboard(&id)?;
    Ok(HttpResponse::Ok().json(ClipboardBody { enabled, max_bytes }))
}
