//! Group routes: the permissions attendees of an invitation group get.

use actix_web::{web, HttpResponse};
use tandem_proto::ControlLevel;

use super::dto::{DefaultLevel, Group, GroupBody};
use super::error::{ApiError, ApiResult, ErrorBody, JsonObject};
use super::state::AdminState;
use crate::attendee_manager::{ListGroups, SetGroup};

/// Every group with permissions.
#[utoipa::path(get, path = "/api/v1/groups", tag = "groups",
    responses((status = 200, body = Vec<Group>)),
    security(("bearer" = [])))]
pub(super) async fn list_groups(state: web::Data<AdminState>) -> ApiResult<HttpResponse> {
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
pub(super) async fn get_group(
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
pub(super) async fn set_group(
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
pub(super) async fn delete_group(
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
