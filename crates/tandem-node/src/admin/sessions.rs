//! Session routes: list, open and close sessions, pause and resume, the
//! shared rectangle, the frame interval and the frame-buffer snapshot.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use tandem_capture::{Rect, WindowFilter};
use tandem_proto::ControlLevel;

use super::dto::{
    DefaultLevel, FrameIntervalBody, NewSession, NewSessionSource, Session, SharedRect,
    SharedRectBody,
};
use super::error::{ApiError, ApiResult, ErrorBody, JsonObject};
use super::state::AdminState;
use crate::attendee_manager::{
    CaptureOf, ChangeFrameInterval, ChangeSharedRect, CloseSession, ListSessions, SessionEncoder,
    SetSessionPaused,
};
use crate::capture_actor::ListMonitors;
use crate::encoder_actor::CurrentFrame;
use crate::error::NodeError;

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
pub(super) async fn list_sessions(state: web::Data<AdminState>) -> ApiResult<HttpResponse> {
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
pub(super) async fn pause_session(
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
pub(super) async fn resume_session(
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
pub(super) async fn set_shared_rect(
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
pub(super) async fn set_frame_interval(
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

/// Opens a sharing session on a capture source; a source already shared is refused (409).
#[utoipa::path(post, path = "/api/v1/sessions", tag = "sessions", request_body = NewSession,
    responses((status = 201, body = Session),
        (status = 404, description = "The X display cannot be opened", body = ErrorBody),
        (status = 409, description = "The source is already shared", body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn open_session(
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
    let control_policy = body.control_policy.map(ControlPolicy::from);
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
pub(super) async fn close_session(
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
pub(super) async fn framebuffer_png(
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
