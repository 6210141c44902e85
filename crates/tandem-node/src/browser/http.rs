//! The attendee page's HTTP listener: the embedded page and
//! `GET /api/web/v1/transport`, answering where the page's WebTransport
//! goes (the QUIC port and path) and the SHA-256 of the certificate the
//! node presents there now, so the page pins it with
//! `serverCertificateHashes` (fetched over the page's own origin, so no
//! one who cannot tamper with the page can swap it).
//!
//! Plain HTTP: fine on loopback (browsers treat it as a secure context);
//! for remote attendees the operator puts a TLS-terminating proxy in front
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

#[derive(Clone)]
struct PageState {
    certs: Arc<WebCertificates>,
    quic_port: u16,
}

/// The running page listener.
pub struct WebServer {
    local_addr: SocketAddr,
    handle: ServerHandle,
    rotation: actix_rt::task::JoinHandle<()>,
}

impl WebServer {
    /// Binds `listen` and serves the page on the current actix System; also
    /// starts the certificate rotation check.
    pub fn start(
        listen: SocketAddr,
        certs: Arc<WebCertificates>,
        quic_port: u16,
    ) -> Result<Self, NodeError> {
        let state = PageState {
            certs: certs.clone(),
            quic_port,
        };
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(state.clone()))
                .route("/api/web/v1/transport", web::get().to(transport))
                .default_service(web::to(asset))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .bind(listen)
        .map_err(|source| NodeError::Io {
            context: format!("binding the web page address {listen}"),
            source,
        })?;
        let local_addr = server.addrs().first().copied().unwrap_or(listen);
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
        tracing::info!(addr = %local_addr, "attendee web page listening");
        Ok(WebServer {
            local_addr,
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
