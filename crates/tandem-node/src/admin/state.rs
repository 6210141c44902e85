//! What the admin handlers share ([`AdminState`]) and the bearer token that
//! guards every `/api/` route: where it comes from and how it is checked.

use std::path::Path;
use std::sync::Arc;

use actix::Addr;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web;
use subtle::ConstantTimeEq;

use super::dto::Invitation;
use super::error::ApiError;
use crate::attendee_manager::{AttendeeManager, InvitationInfo};
use crate::config::NodeConfig;
use crate::error::NodeError;
use crate::events::EventBus;
use crate::metrics::Metrics;
use crate::registry_actor::SessionRegistry;

/// Name of the generated token file in the data directory.
pub const TOKEN_FILE: &str = "admin.token";
/// Environment variable holding the admin token.
pub const TOKEN_ENV: &str = "TANDEM_ADMIN_TOKEN";

/// What the handlers share.
#[derive(Clone)]
pub struct AdminState {
    /// Opens sessions at run time.
    pub launcher: crate::SessionLauncher,
    /// The attendee manager.
    pub manager: Addr<AttendeeManager>,
    /// The registry actor.
    pub registry: Addr<SessionRegistry>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Event stream.
    pub events: EventBus,
    /// Virtual channels.
    pub channels: Arc<crate::channels::ChannelHub>,
    /// The cluster directory, when the node is in a cluster.
    pub cluster: Option<crate::cluster::ClusterView>,
    /// Base of browser links (`[web]`), when the node serves the attendee page.
    pub browser_base: Option<String>,
    /// Dials listening viewers (`POST /api/v1/connect-to`).
    pub reverse: Arc<crate::reverse::ReverseDialer>,
}

#[derive(Clone)]
pub(super) struct Token(pub(super) Arc<String>);

/// The admin token: config, else `TANDEM_ADMIN_TOKEN`, else the data
/// directory's token file (created with mode 0600 when missing).
pub fn resolve_token(config: &NodeConfig) -> Result<String, NodeError> {
    if let Some(t) = &config.admin_token {
        return Ok(t.clone());
    }
    if let Ok(t) = std::env::var(TOKEN_ENV) {
        let t = t.trim().to_owned();
        if !t.is_empty() {
            // The same rule as `admin_token` in the config: a short token
            // is guessable over the network.
            if t.len() < 16 || t.len() > 256 || !t.chars().all(|c| c.is_ascii_graphic()) {
                return Err(NodeError::Config {
                    detail: format!(
                        "{TOKEN_ENV} must be 16 to 256 printable ASCII characters (it has {})",
                        t.chars().count()
                    ),
                });
            }
            return Ok(t);
        }
    }
    token_from_file(&config.data_dir.join(TOKEN_FILE))
}

fn token_from_file(path: &Path) -> Result<String, NodeError> {
    let io = |context: String| move |source| NodeError::Io { context, source };
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
        Ok(_) => {
            return Err(NodeError::Config {
                detail: format!(
                    "{} is empty; delete it to generate a new token",
                    path.display()
                ),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(format!("reading {}", path.display()))(e)),
    }
    let token = {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        hex::encode(bytes)
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write;
    let mut file = options
        .open(path)
        .map_err(io(format!("creating {}", path.display())))?;
    file.write_all(format!("{token}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io(format!("writing {}", path.display())))?;
    tracing::info!(path = %path.display(), "generated the admin token");
    Ok(token)
}

impl AdminState {
    /// An invitation as the API shows it, with its browser link when the
    /// node serves the attendee page.
    pub(super) fn invitation(&self, info: InvitationInfo) -> Invitation {
        let link = self
            .browser_base
            .as_deref()
            .map(|base| crate::browser::link(base, &info.session, &info.id));
        Invitation {
            browser_link: link,
            ..Invitation::from(info)
        }
    }
}

pub(super) async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let expected = req
        .app_data::<web::Data<Token>>()
        .map(|t| t.0.clone())
        .ok_or_else(ApiError::unauthorized)?;
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or("");
    let ok: bool = given.as_bytes().ct_eq(expected.as_bytes()).into();
    if !ok || given.is_empty() {
        return Err(ApiError::unauthorized().into());
    }
    next.call(req).await
}
