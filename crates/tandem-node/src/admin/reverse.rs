//! `POST /api/v1/connect-to`: reverse connect (the Desktop Sharing API's
//! `ConnectToClient`). The dialer and its bounds are in [`crate::reverse`];
//! this is only its route.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use tandem_proto::{ReverseConnectionString, MAX_CONNECTION_STRING_LEN};
use utoipa::{OpenApi, ToSchema};

use super::error::{ApiError, ErrorBody, JsonObject};
use super::resource::resource;
use super::state::AdminState;
use crate::reverse::Connected;

/// `POST /api/v1/connect-to` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectTo {
    /// The reverse connection string a viewer started with `--listen` printed
    /// (`tandem-reverse://host:port/?fp=...`).
    #[schema(max_length = 4096)]
    pub connection_string: String,
}

/// Registers the route on the `/api/v1` scope.
pub fn routes(cfg: &mut web::ServiceConfig) {
    use actix_web::http::Method;
    cfg.service(resource(
        "/connect-to",
        vec![(Method::POST, web::route().to(connect_to))],
    ));
}

/// The OpenAPI document of the route (merged into the admin API's).
#[derive(OpenApi)]
#[openapi(paths(connect_to), components(schemas(ConnectTo, Connected)))]
pub struct ReverseApiDoc;

/// Dials a listening viewer (reverse connect) and serves the attendee that
/// joins over it; answers once it is admitted.
#[utoipa::path(post, path = "/api/v1/connect-to", tag = "attendees",
    request_body = ConnectTo,
    responses(
        (status = 200, description = "The listener dialed in and its attendee was admitted", body = Connected),
        (status = 403, description = "The listener connected but its attendee was not admitted (wrong invitation or password, limit, no hello)", body = ErrorBody),
        (status = 422, description = "Not a reverse connection string", body = ErrorBody),
        (status = 429, description = "Too many reverse connects in progress or in the last minute", body = ErrorBody),
        (status = 502, description = "The listener's certificate is not the string's, or it refused this node's", body = ErrorBody),
        (status = 504, description = "The listener is unreachable", body = ErrorBody)),
    security(("bearer" = [])))]
async fn connect_to(
    state: web::Data<AdminState>,
    body: JsonObject<ConnectTo>,
) -> Result<HttpResponse, ApiError> {
    let text = &body.connection_string;
    if text.len() > MAX_CONNECTION_STRING_LEN {
        return Err(ApiError::with_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("connection_string is longer than {MAX_CONNECTION_STRING_LEN} bytes"),
        ));
    }
    let target: ReverseConnectionString = text.parse().map_err(|e| {
        ApiError::with_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("connection_string: {e}"),
        )
    })?;
    match state.reverse.dial(target).await {
        Ok(connected) => Ok(HttpResponse::Ok().json(connected)),
        Err(e) => Err(ApiError::with_status(e.status(), e.to_string())),
    }
}
