//! Attendee routes (the `net session` view, live and past), control levels,
//! disconnection, and the control requests waiting for the sharer.

use actix_web::{web, HttpRequest, HttpResponse};
use tandem_proto::ControlLevel;
use tandem_registry::AttendeeFilter;

use super::dto::{
    Attendee, AttendeeDetail, AttendeeQuery, AttendeeScope, AttendeeState, ChannelResource,
    ClipboardResource, ControlLevelBody, DisconnectBody, GraphicsResource, ReasonQuery, Resources,
};
use super::error::{ApiError, ApiResult, ErrorBody, JsonObject, MAX_BODY_BYTES};
use super::state::AdminState;
use crate::attendee_manager::{
    AnswerControlRequest, DisconnectAttendee, GetAttendee, ListAttendees, SetControlLevel,
};
use crate::error::NodeError;
use crate::registry_actor::ListAttendeeRecords;

/// Lists live attendees (the `net session` view); `?state=all` adds history.
#[utoipa::path(get, path = "/api/v1/attendees", tag = "attendees",
    params(AttendeeQuery),
    responses((status = 200, body = Vec<Attendee>), (status = 400, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn list_attendees(
    state: web::Data<AdminState>,
    query: web::Query<AttendeeQuery>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    if query.scope.unwrap_or_default() == AttendeeScope::Cluster {
        return super::cluster::cluster_attendees(state, req).await;
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
    let level = r.control_level;
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
        reason: r.disconnect_reason.map(|r| r.as_str().to_owned()),
    })
}

/// One attendee and what it holds open (`IADsSession.Resources`, `net
/// session \\computer`); an attendee of the history has no resources.
#[utoipa::path(get, path = "/api/v1/attendees/{id}", tag = "attendees",
    params(("id" = u64, Path, description = "Attendee id")),
    responses((status = 200, body = AttendeeDetail), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn get_attendee(
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
pub(super) async fn set_control_level(
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
pub(super) async fn disconnect_attendee(
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
pub(super) async fn list_control_requests(state: web::Data<AdminState>) -> ApiResult<HttpResponse> {
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
pub(super) async fn grant_control(
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
pub(super) async fn deny_control(
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

fn parse_attendee_id(id: &str) -> ApiResult<u64> {
    id.parse()
        .map_err(|_| ApiError::not_found(format!("attendee {id} not found")))
}
