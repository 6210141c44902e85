//! Invitation routes: list, create, read, change and revoke invitations.

use actix_web::{web, HttpResponse};

use super::dto::{Invitation, InvitationPatch, NewInvitation};
use super::error::{ApiError, ApiResult, ErrorBody, JsonObject};
use super::state::AdminState;
use crate::attendee_manager::{CreateInvitation, ListInvitations, ListSessions, UpdateInvitation};

/// Attendee limit of an invitation created without one.
pub const DEFAULT_ATTENDEE_LIMIT: u32 = 16;

/// Lists invitations.
#[utoipa::path(get, path = "/api/v1/invitations", tag = "invitations",
    responses((status = 200, body = Vec<Invitation>)),
    security(("bearer" = [])))]
pub(super) async fn list_invitations(state: web::Data<AdminState>) -> ApiResult<HttpResponse> {
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
pub(super) async fn create_invitation(
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
pub(super) async fn get_invitation(
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
pub(super) async fn update_invitation(
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
pub(super) async fn revoke_invitation(
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
