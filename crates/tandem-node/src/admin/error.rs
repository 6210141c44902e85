//! The admin API's one error type: every failure is `{"error": "..."}` with
//! a status chosen here, and JSON bodies are read through [`JsonObject`] so
//! a malformed body gets the same shape.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::NodeError;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// An API error: its status and its one-line message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
    pub(super) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub(super) fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token: send Authorization: Bearer TOKEN",
        )
    }
    pub(super) fn not_found(message: impl Into<String>) -> Self {
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
    pub(super) fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }
    pub(super) fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
    pub(super) fn too_large() -> Self {
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

pub(super) fn json_error(err: actix_web::error::JsonPayloadError) -> ApiError {
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

pub(super) type ApiResult<T> = Result<T, ApiError>;

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

/// The error body of every failed request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, one line.
    pub error: String,
}
