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
//! `#[utoipa::path]` attributes and the bodies in [`dto`], completed by
//! [`openapi`] with the statuses and shapes shared code enforces.
//!
//! The folder, by what each file holds (nothing here imports `mod.rs`):
//! [`state`] what the handlers share and the token that guards them,
//! [`error`] the one error type, [`resource`] the 405 rule, [`dto`] the
//! request and response bodies, one file of handlers per resource family
//! ([`sessions`], [`windows`], [`invitations`], [`attendees`], [`groups`],
//! [`events`], [`channels`], [`cluster`], [`reverse`]), and [`openapi`]
//! the document; this file binds the servers and mounts the routes.

pub mod attendees;
pub mod channels;
pub mod cluster;
pub mod dto;
pub mod error;
pub mod events;
pub mod groups;
pub mod invitations;
pub mod openapi;
pub mod resource;
pub mod reverse;
pub mod sessions;
pub mod state;
pub mod windows;

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use actix_web::http::{header, Method};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

use crate::config::NodeConfig;
use crate::error::NodeError;
use attendees::{
    deny_control, disconnect_attendee, get_attendee, grant_control, list_attendees,
    list_control_requests, set_control_level,
};
pub use dto::*;
use error::{json_error, ApiResult};
pub use error::{ApiError, ErrorBody, JsonObject, MAX_BODY_BYTES};
use events::events;
use groups::{delete_group, get_group, list_groups, set_group};
use invitations::{
    create_invitation, get_invitation, list_invitations, revoke_invitation, update_invitation,
};
use resource::resource;
use sessions::{
    close_session, framebuffer_png, list_sessions, open_session, pause_session, resume_session,
    set_frame_interval, set_shared_rect,
};
use state::{require_token, Token};
pub use state::{resolve_token, AdminState, TOKEN_ENV, TOKEN_FILE};
use windows::{
    clear_filter, get_filter, list_applications, list_monitors, list_windows, set_filter,
    share_application, unshare_application,
};

/// Content type of the Prometheus text exposition.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

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
        .configure(channels::routes)
        .configure(reverse::routes)
        .service(resource(
            "/cluster/nodes",
            vec![get(to().to(cluster::list_nodes))],
        ))
}

async fn unknown_route(req: HttpRequest) -> ApiResult<HttpResponse> {
    Err(ApiError::not_found(format!(
        "no route {} {}",
        req.method(),
        req.path()
    )))
}

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
    HttpResponse::Ok().json(openapi::document())
}
