//! The attendee page's HTTP listener: the embedded page and
//! `GET /api/web/v1/transport`, answering where the page's WebTransport
//! goes (the QUIC port and path) and the SHA-256 of the certificate the
//! node presents there now, so the page pins it with
//! `serverCertificateHashes` (fetched over the page's own origin, so no
//! one who cannot tamper with the page can swap it).
//!
//! Plain HTTP: fine on loopback (browsers treat it as a secure context);
//! for remote attendees the operator either configures a certificate and
//! key (the [`super::tls`] front then takes the address and this server
//! listens on loopback behind it) or puts a TLS-terminating proxy in front
//! (see the README). Only GET and HEAD are answered; requests carry no body.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::{header, Method};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde::Serialize;
use tandem_transport::WebCertificates;

use super::{assets, WEB_PATH};
use crate::error::NodeError;

/// How often the certificate's age is checked against its rotation time.
const ROTATION_CHECK: Duration = Duration::from_secs(600);

/// What `GET /api/web/v1/transport` answers.
#[derive(Debug, Serialize)]
pub struct TransportInfo {
    /// UDP port of the node's QUIC endpoint (same host as the page).
    pub port: u16,
    /// Path of the WebTransport endpoint.
    pub path: &'static str,
    /// Hex SHA-256 of the certificate presented to browsers now.
    pub certificate_hashes: Vec<String>,
}

/// Where WebSocket attendees are served: the QUIC data plane and the
/// serving path's context (the same as for QUIC connections).
#[derive(Clone)]
pub struct AttendeeEntry {
    /// The data plane.
    pub data_plane: Arc<crate::data_plane::DataPlane>,
    /// The serving path's context.
    pub ctx: Arc<crate::connection::ConnectionContext>,
}

#[derive(Clone)]
struct PageState {
    certs: Arc<WebCertificates>,
    quic_port: u16,
    attendees: AttendeeEntry,
    websockets: Arc<tokio::sync::Semaphore>,
}

/// The running page listener.
pub struct WebServer {
    local_addr: SocketAddr,
    tls: Option<super::tls::TlsFront>,
    handle: ServerHandle,
    rotation: actix_rt::task::JoinHandle<()>,
}

impl WebServer {
    /// Binds `listen` and serves the page on the current actix System (over
    /// HTTPS when `tls` is set); also starts the certificate rotation check.
    pub fn start(
        listen: SocketAddr,
        tls: Option<Arc<rustls::ServerConfig>>,
        certs: Arc<WebCertificates>,
        quic_port: u16,
        attendees: AttendeeEntry,
    ) -> Result<Self, NodeError> {
        // Behind the TLS front, plaintext only on loopback.
        let http_listen = match tls {
            Some(_) => SocketAddr::from(([127, 0, 0, 1], 0)),
            None => listen,
        };
        let state = PageState {
            certs: certs.clone(),
            quic_port,
            attendees,
            websockets: Arc::new(tokio::sync::Semaphore::new(super::ws::MAX_WEBSOCKETS)),
        };
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(state.clone()))
                .route("/api/web/v1/transport", web::get().to(transport))
                .route(super::ws::WS_PATH, web::get().to(websocket))
                .default_service(web::to(asset))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .bind(http_listen)
        .map_err(|source| NodeError::Io {
            context: format!("binding the web page address {http_listen}"),
            source,
        })?;
        let http_addr = server.addrs().first().copied().unwrap_or(http_listen);
        let tls = match tls {
            Some(config) => Some(super::tls::TlsFront::start(listen, config, http_addr)?),
            None => None,
        };
        let local_addr = tls.as_ref().map_or(http_addr, |t| t.local_addr());
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        let rotation = actix_rt::spawn(async move {
            let mut tick = actix_rt::time::interval(ROTATION_CHECK);
            loop {
                tick.tick().await;
                if let Err(error) = certs.rotate_if_due(time::OffsetDateTime::now_utc()) {
                    tracing::warn!(%error, "web certificate rotation failed; keeping the current one");
                }
            }
        });
        tracing::info!(addr = %http_addr, "attendee web page listening");
        Ok(WebServer {
            local_addr,
            tls,
            handle,
            rotation,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops serving.
    pub async fn stop(self) {
        self.rotation.abort();
        if let Some(tls) = self.tls {
            tls.stop();
        }
        self.handle.stop(true).await;
    }
}

async fn transport(state: web::Data<PageState>) -> HttpResponse {
    let info = TransportInfo {
        port: state.quic_port,
        path: WEB_PATH,
        certificate_hashes: vec![state.certs.current().sha256().to_string()],
    };
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(info)
}

fn header(req: &HttpRequest, name: header::HeaderName) -> &str {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The WebSocket fallback (`super::ws`): the RFC 6455 handshake, then the
/// attendee on the serving path like any other connection.
async fn websocket(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<PageState>,
) -> HttpResponse {
    let has = |name, token: &str| {
        header(&req, name)
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    let key = header(&req, header::SEC_WEBSOCKET_KEY);
    if !has(header::UPGRADE, "websocket")
        || !has(header::CONNECTION, "upgrade")
        || header(&req, header::SEC_WEBSOCKET_VERSION) != "13"
        || key.len() != 24
    {
        return HttpResponse::BadRequest()
            .content_type("text/plain; charset=utf-8")
            .body("a WebSocket upgrade (version 13) is expected here\n");
    }
    // Only the page's own origin (a browser always sends Origin).
    let origin = header(&req, header::ORIGIN);
    let host = header(&req, header::HOST);
    let same = origin
        .split_once("://")
        .is_some_and(|(_, h)| !host.is_empty() && h.eq_ignore_ascii_case(host));
    if !same {
        return HttpResponse::Forbidden()
            .content_type("text/plain; charset=utf-8")
            .body("WebSocket from another origin\n");
    }
    let Ok(slot) = state.websockets.clone().try_acquire_owned() else {
        return HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body("too many WebSocket attendees\n");
    };
    let peer = req
        .peer_addr()
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let (link, ends) = super::ws::WsLink::new(peer);
    tracing::debug!(%peer, "websocket attendee connected");
    actix_rt::spawn(super::ws::incoming(payload, link.clone(), ends.control));
    let ctx = state.attendees.ctx.clone();
    let serve_link = link.clone();
    state.attendees.data_plane.spawn_balanced(async move {
        crate::connection::serve_attendee(serve_link, ctx, None).await;
        drop(slot);
    });
    HttpResponse::SwitchingProtocols()
        .insert_header((header::UPGRADE, "websocket"))
        .insert_header((header::CONNECTION, "upgrade"))
        .insert_header((header::SEC_WEBSOCKET_ACCEPT, super::ws::accept_key(key)))
        .streaming(super::ws::outgoing(link, ends.out))
}

/// The page's policy: its own scripts and worker, zstd's wasm (a data:
/// URL inside the worker), WebTransport to any https origin (the QUIC port).
const CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; \
    connect-src 'self' data: https:; style-src 'unsafe-inline'; img-src 'self' data:; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

async fn asset(req: HttpRequest) -> HttpResponse {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return HttpResponse::MethodNotAllowed()
            .insert_header((header::ALLOW, "GET, HEAD"))
            .finish();
    }
    match assets::find(req.path()) {
        Some(a) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, a.content_type))
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header((header::REFERRER_POLICY, "no-referrer"))
            .body(a.body),
        None => HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("not found\n"),
    }
}
