//! The application and window filter of a session's desktop: its windows,
//! applications and monitors, and the filter that chooses what is shared
//! (persisted, so a restart shares no more than the sharer last chose).

use actix::Addr;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use tandem_capture::WindowFilter;

use super::dto::{ApplicationBody, MonitorBody, Window, WindowFilterBody};
use super::error::{ApiError, ApiResult, ErrorBody, JsonObject};
use super::state::AdminState;
use crate::attendee_manager::CaptureOf;
use crate::capture_actor::{GetWindowFilter, ListMonitors, ListWindows, SetWindowFilter};
use crate::registry_actor::Persist;

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
pub(super) async fn list_windows(
    state: web::Data<AdminState>,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let capture = capture_of(&state, id.into_inner()).await?;
    let windows = capture.send(ListWindows).await??;
    let filter = capture.send(GetWindowFilter).await?;
    let body: Vec<Window> = windows
        .into_iter()
        .map(|w| {
            let shared = filter.as_ref().is_none_or(|f| f.matches(&w));
            window_body(w, shared)
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
pub(super) async fn list_applications(
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
pub(super) async fn share_application(
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
pub(super) async fn unshare_application(
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
pub(super) async fn list_monitors(
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
pub(super) async fn get_filter(
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
pub(super) async fn set_filter(
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
pub(super) async fn clear_filter(
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
