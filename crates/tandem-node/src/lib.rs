//! A Tandem node: the actors of a sharing server, wired together.
//!
//! ```text
//! CaptureActor --FrameCaptured--> EncoderActor --(latest-wins channel)--> connection tasks
//!                                      ^ CatchUp                          (TransportActor's runtime)
//! AttendeeManager <--Join/Left/FromAttendee-- connection tasks
//! SessionRegistry (sled) <--Persist/RecordEvent-- AttendeeManager
//! ```
//!
//! [`Node::start`] must run inside an actix `System`. See `ARCHITECTURE.md`
//! for the messages and invariants.

pub mod admin;
pub mod attendee_link;
pub mod attendee_manager;
pub mod browser;
pub mod capture_actor;
pub mod capture_pacing;
pub mod channel_streams;
pub mod channels;
pub mod clipboard_bridge;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod data_plane;
pub mod encoder_actor;
pub mod error;
pub mod events;
pub mod ids;
pub mod injector;
pub mod input_log;
pub mod metrics;
pub mod passwords;
pub mod registry_actor;
pub mod reverse;
pub mod senders;
pub mod transport_actor;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tandem_capture::x11::{GrabMode, X11InputSink, X11Probe, X11Source};
use tandem_capture::{CaptureSource, DesktopProbe, InputSink, NullSink, Rect, SyntheticDesktop};
use tandem_proto::{Fingerprint, NodeAddr};
use tandem_registry::{
    Registry, RegistryConfig, Retention, SessionRecord, SessionState, StoredIdentity,
};
use tandem_transport::Identity;
use tokio::sync::watch;

pub use crate::attendee_manager::{AttendeeInfo, AttendeeManager, InvitationInfo, SessionInfo};
pub use crate::config::{ControlPolicy, GrabMethod, NodeConfig, SourceKind, SyntheticMotion};
pub use crate::error::NodeError;
pub use crate::events::{EventBus, LoggedEvent, SessionEvent};
pub use crate::metrics::Metrics;

use crate::attendee_manager::{CreateInvitation, OpenSession, ShutdownAll};
use crate::capture_actor::{CaptureActor, CaptureOutputs};
use crate::clock::now_ms;
use crate::encoder_actor::EncoderActor;
use crate::ids::random_id;
use crate::registry_actor::{Flush, SessionRegistry};
use crate::transport_actor::{CloseEndpoint, TransportActor};

/// What a started node reports once, for the operator.
#[derive(Debug)]
pub struct StartupReport {
    /// Bound QUIC address.
    pub quic_addr: SocketAddr,
    /// Bound admin HTTP address.
    pub admin_addr: SocketAddr,
    /// Bound metrics-only HTTP address, when `metrics_listen` is set.
    pub metrics_addr: Option<SocketAddr>,
    /// The node's id.
    pub node_id: String,
    /// Certificate fingerprint (pinned by viewers).
    pub fingerprint: Fingerprint,
    /// The session opened (or reopened) at start.
    pub session: Option<SessionInfo>,
    /// The invitation created at start and its password (shown once).
    pub invitation: Option<(InvitationInfo, String)>,
    /// Attendees found live in the registry and recorded as disconnected.
    pub attendees_closed_at_start: usize,
    /// Bound address of the attendee web page, when `web.listen` is set.
    pub web_addr: Option<SocketAddr>,
    /// The browser link of the startup invitation (never with the password).
    pub browser_link: Option<String>,
}

/// A running node.
pub struct Node {
    /// The authority on sessions, invitations and attendees.
    pub manager: Addr<AttendeeManager>,
    /// The registry actor.
    pub registry: Addr<SessionRegistry>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Event stream.
    pub events: EventBus,
    /// Virtual channels (create, set access, send, subscribe).
    pub channels: Arc<channels::ChannelHub>,
    transport: Addr<TransportActor>,
    launcher: SessionLauncher,
    admin: admin::AdminServer,
    cluster: Option<Addr<cluster::ClusterActor>>,
    links: Option<(quinn::Endpoint, watch::Sender<bool>)>,
    relays: Option<Arc<cluster::relay::Relays>>,
    web: Option<browser::http::WebServer>,
}

impl Node {
    /// Opens the registry, loads or creates the identity, starts every actor
    /// and opens the configured session. Must run inside an actix System.
    pub async fn start(mut config: NodeConfig) -> Result<(Node, StartupReport), NodeError> {
        config.validate()?;
        config
            .cluster
            .load_secret(std::env::var(cluster::SECRET_ENV).ok())
            .map_err(|detail| NodeError::Config {
                detail: format!("cluster.{detail}"),
            })?;
        std::fs::create_dir_all(&config.data_dir).map_err(|source| NodeError::Io {
            context: format!("creating data directory {}", config.data_dir.display()),
            source,
        })?;
        let registry = Registry::open(
            &config.data_dir.join("registry"),
            RegistryConfig {
                cache_bytes: config.registry.cache_mib * 1024 * 1024,
                event_retention: Retention {
                    max_events: config.registry.event_retention_count,
                    max_age_ms: Some(config.registry.event_retention_hours as i64 * 3_600_000),
                },
                attendee_retention: tandem_registry::AttendeeRetention {
                    max_records: config.registry.attendee_history_count,
                    max_age_ms: Some(i64::from(config.registry.attendee_history_days) * 86_400_000),
                },
            },
        )?;
        let node_id = registry.node_id().to_owned();
        let attendees_closed_at_start = registry
            .close_live_attendees(tandem_proto::DisconnectReason::NodeRestarted, now_ms())?;
        // The history is bounded: what the retention no longer keeps goes
        // at start (and as it grows, with every finished attendee).
        let pruned = registry.prune_attendee_history(now_ms())?;
        if pruned > 0 {
            tracing::info!(pruned, "attendee history pruned at start");
        }
        let identity = match registry.identity()? {
            Some(stored) => Identity::from_der(stored.cert_der, stored.key_der)?,
            None => {
                let identity = Identity::generate(&["tandem".to_owned(), "localhost".to_owned()])?;
                registry.put_identity(&StoredIdentity {
                    cert_der: identity.cert_der().to_vec(),
                    key_der: identity.key_der().to_vec(),
                })?;
                identity
            }
        };
        // Members of a cluster present one identity derived from the cluster
        // secret, so one fingerprint in a connection string pins every member.
        let identity = match (&config.cluster.secret, config.cluster.enabled()) {
            (Some(secret), true) => Identity::from_seed(
                &["tandem".to_owned(), "localhost".to_owned()],
                cluster::secret::hmac_tag(
                    secret.as_bytes(),
                    format!("tandem-cluster-identity/{}", config.cluster.cluster_id).as_bytes(),
                ),
            )?,
            _ => identity,
        };
        let fingerprint = identity.fingerprint();
        let stored_sessions = registry.sessions()?;
        // The window filters sharers set through the API, of the sessions a
        // restart may reopen.
        let mut stored_filters = std::collections::HashMap::new();
        for s in stored_sessions
            .iter()
            .filter(|s| s.state != SessionState::Closed)
        {
            if let Some(f) = registry.session_filter(&s.id)? {
                stored_filters.insert(s.id.clone(), f);
            }
        }
        let stored_invitations = registry.invitations(None)?;

        let metrics = Arc::new(Metrics::new());
        let events = EventBus::new();
        let registry_actor = {
            let (registry, metrics, events) = (registry.clone(), metrics.clone(), events.clone());
            SyncArbiter::start(1, move || {
                SessionRegistry::new(registry.clone(), metrics.clone(), events.clone())
            })
        };

        let channels = Arc::new(channels::ChannelHub::new(
            metrics.clone(),
            Some(registry_actor.clone()),
        ));
        // The manager needs the advertised addresses, which need the bound
        // port: create its context first, bind, then start it.
        let manager_ctx = Context::<AttendeeManager>::new();
        let manager_addr = manager_ctx.address();
        let mut cluster_channel = config
            .cluster
            .enabled()
            .then(|| cluster::ClusterView::new(node_id.clone(), config.cluster.cluster_id.clone()));
        let relayed_attendees = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let relays = cluster_channel.as_ref().map(|(_, view)| {
            Arc::new(cluster::relay::Relays::new(
                node_id.clone(),
                config.cluster.secret.clone().unwrap_or_default(),
                fingerprint,
                view.directory.clone(),
                metrics.clone(),
                relayed_attendees.clone(),
                config.cluster.upstream,
                manager_addr.clone(),
            ))
        });
        if let (Some((_, view)), Some(relays)) = (cluster_channel.as_mut(), &relays) {
            view.relays = Some(relays.clone());
        }
        let web_certs = match config.web.enabled() {
            true => Some(Arc::new(tandem_transport::WebCertificates::new(
                config.web.names(config.quic_listen),
                time::OffsetDateTime::now_utc(),
            )?)),
            false => None,
        };
        let transport = TransportActor::bind(
            &config,
            &identity,
            manager_addr.clone(),
            metrics.clone(),
            channels.clone(),
            relays.clone(),
            web_certs.clone(),
        )?;
        let quic_addr = transport.local_addr();
        let reverse = transport.reverse();
        let web = match (config.web.listen, web_certs) {
            (Some(listen), Some(certs)) => Some(browser::http::WebServer::start(
                listen,
                match config.web.tls_files()? {
                    Some((cert, key)) => Some(browser::tls::server_config(cert, key)?),
                    None => None,
                },
                certs,
                quic_addr.port(),
                transport.attendees(),
            )?),
            _ => None,
        };
        let advertise = advertised_addresses(&config, quic_addr);
        let manager = manager_ctx.run(AttendeeManager::new(
            registry_actor.clone(),
            metrics.clone(),
            fingerprint,
            advertise,
        ));
        // Group permissions from the config, before any session opens.
        for (name, group) in &config.groups {
            manager.do_send(crate::attendee_manager::SetGroup {
                name: name.clone(),
                rules: Some(group.rules()),
            });
        }
        let transport = transport.start();
        let launcher = SessionLauncher {
            manager: manager.clone(),
            registry: registry_actor.clone(),
            metrics: metrics.clone(),
            defaults: config.clone(),
            arbiters: Arc::new(std::sync::Mutex::new(Vec::new())),
            channels: channels.clone(),
        };
        let admin = admin::AdminServer::start(
            &config,
            admin::AdminState {
                launcher: launcher.clone(),
                manager: manager.clone(),
                registry: registry_actor.clone(),
                metrics: metrics.clone(),
                events: events.clone(),
                channels: channels.clone(),
                cluster: cluster_channel.as_ref().map(|(_, view)| view.clone()),
                browser_base: web.as_ref().map(|w| config.web.base(w.local_addr())),
                reverse,
            },
        )?;
        let (admin_addr, metrics_addr) = (admin.local_addr(), admin.metrics_addr());
        let (link_shutdown, link_shutdown_rx) = watch::channel(false);
        let link_addr = match &cluster_channel {
            Some(_) => {
                let listen = config
                    .cluster
                    .link_listen
                    .unwrap_or_else(|| SocketAddr::new(config.quic_listen.ip(), 0));
                let endpoint = cluster::link::start_link_server(
                    listen,
                    &identity,
                    Arc::new(cluster::link::LinkServerContext {
                        secret: config.cluster.secret.clone().unwrap_or_default(),
                        manager: manager.clone(),
                        metrics: metrics.clone(),
                        shutdown: link_shutdown_rx,
                        relays: relays.clone(),
                        channels: channels.clone(),
                    }),
                )?;
                let bound = endpoint.local_addr().map_err(|source| NodeError::Io {
                    context: "reading the relay-link address".into(),
                    source,
                })?;
                let advertised = if bound.ip().is_unspecified() {
                    SocketAddr::new(std::net::IpAddr::from([127, 0, 0, 1]), bound.port())
                } else {
                    bound
                };
                Some((endpoint, advertised))
            }
            None => None,
        };
        let cluster = match cluster_channel {
            Some((directory, _)) => Some(
                cluster::ClusterActor::start(cluster::ClusterStart {
                    settings: config.cluster.clone(),
                    node_id: node_id.clone(),
                    quic_addr: advertised_addresses(&config, quic_addr)
                        .into_iter()
                        .next()
                        .expect("at least one advertised address"),
                    admin_addr,
                    link_addr: link_addr.as_ref().map(|(_, a)| *a),
                    fingerprint,
                    manager: manager.clone(),
                    metrics: metrics.clone(),
                    relayed_attendees: relayed_attendees.clone(),
                    directory,
                })
                .await?,
            ),
            None => None,
        };

        let node = Node {
            manager,
            registry: registry_actor,
            metrics,
            events,
            channels,
            transport,
            launcher,
            admin,
            cluster,
            links: link_addr.map(|(endpoint, _)| (endpoint, link_shutdown)),
            relays,
            web,
        };

        let mut report = StartupReport {
            quic_addr,
            admin_addr,
            metrics_addr,
            node_id: node_id.clone(),
            fingerprint,
            session: None,
            invitation: None,
            attendees_closed_at_start,
            web_addr: node.web.as_ref().map(|w| w.local_addr()),
            browser_link: None,
        };
        if config.source.kind == SourceKind::None {
            return Ok((node, report));
        }
        let source_name = source_label(&config);
        // Reopen the session this source had before a restart, so its
        // invitations (and their connection strings) stay valid.
        let previous = stored_sessions
            .into_iter()
            .filter(|s| s.state != SessionState::Closed && s.source == source_name)
            .max_by_key(|s| s.created_at_ms);
        let record = match previous {
            Some(mut r) => {
                // A paused session stays paused (and its shared rectangle and
                // window filter stay as chosen): after a crash the node shares
                // no more than the sharer last chose.
                if r.state != SessionState::Paused {
                    r.state = SessionState::Open;
                }
                if let Some(f) = stored_filters.remove(&r.id) {
                    // An empty record: the sharer removed the filter.
                    let filter = tandem_capture::WindowFilter {
                        classes: f.classes,
                        pids: f.pids,
                        windows: f.windows,
                    };
                    config.source.filter = (filter != Default::default()).then_some(filter);
                }
                r.frame_interval_ms = config.session.frame_interval_ms;
                r.default_control_level = config.session.default_control_level;
                r.control_policy = config.session.control_policy;
                r
            }
            None => SessionRecord {
                id: random_id(12),
                name: config.session.name.clone(),
                source: source_name,
                state: SessionState::Open,
                created_at_ms: now_ms(),
                closed_at_ms: None,
                shared_rect: None,
                frame_interval_ms: config.session.frame_interval_ms,
                default_control_level: config.session.default_control_level,
                control_policy: config.session.control_policy,
            },
        };
        let invitations = stored_invitations
            .into_iter()
            .filter(|i| i.session_id == record.id)
            .collect();
        let source = make_source(&config)?;
        let input = make_input_sink(&config)?;
        let session = node
            .launcher
            .open(record, source, input, &config, invitations)
            .await?;
        if config.invitation.create {
            let password = config
                .invitation
                .password
                .clone()
                .unwrap_or_else(passwords::generate);
            let invitation = node
                .manager
                .send(CreateInvitation {
                    session: session.id.clone(),
                    auth_string: None,
                    group: None,
                    password: password.clone(),
                    attendee_limit: config.invitation.attendee_limit,
                })
                .await??;
            if let Some(bound) = report.web_addr {
                report.browser_link = Some(config.web.link(bound, &session.id, &invitation.id));
            }
            report.invitation = Some((invitation, password));
        }
        report.session = Some(session);
        Ok((node, report))
    }

    /// Says goodbye to every attendee, closes the endpoint and flushes the registry.
    pub async fn shutdown(self) {
        tracing::info!("node shutting down");
        self.admin.stop().await;
        if let Some(web) = self.web {
            web.stop().await;
        }
        if let Some(cluster) = &self.cluster {
            let _ = cluster.send(cluster::LeaveCluster).await;
        }
        let _ = self.manager.send(ShutdownAll).await;
        if let Some(relays) = &self.relays {
            relays.close();
        }
        if let Some((endpoint, shutdown)) = &self.links {
            shutdown.send_replace(true);
            endpoint.close(
                crate::attendee_link::CloseCode::Normal.into(),
                b"node shutting down",
            );
        }
        let _ = self.transport.send(CloseEndpoint).await;
        if let Err(error) = self.registry.send(Flush).await.unwrap_or(Ok(())) {
            tracing::warn!(%error, "final registry flush failed");
        }
        let arbiters = std::mem::take(
            &mut *self
                .launcher
                .arbiters
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for (arbiter, _) in arbiters {
            arbiter.stop();
        }
    }
}

/// The arbiters of open sessions, each running its capture actor.
type SessionArbiters = Arc<std::sync::Mutex<Vec<(Arbiter, Addr<CaptureActor>)>>>;

/// Opens sharing sessions: starts a session's capture actor (on an arbiter of
/// its own) and encoder actor, and registers the session with the manager.
/// Shared by node start-up and the admin API.
#[derive(Clone)]
pub struct SessionLauncher {
    manager: Addr<AttendeeManager>,
    /// Where capture and encoder actors send `error` events.
    registry: Addr<SessionRegistry>,
    metrics: Arc<Metrics>,
    /// The node's configuration: defaults for sessions opened later.
    defaults: NodeConfig,
    /// One arbiter per open session, running its capture actor.
    arbiters: SessionArbiters,
    channels: Arc<channels::ChannelHub>,
}

/// What to share in a session opened at run time.
#[derive(Clone, Debug)]
pub struct SessionSpec {
    /// Session name.
    pub name: Option<String>,
    /// Capture source settings (kind, synthetic size and seed, display).
    pub source: config::SourceConfig,
    /// Capture interval.
    pub frame_interval_ms: Option<u32>,
    /// Level of new attendees.
    pub default_control_level: Option<tandem_proto::ControlLevel>,
    /// Control request policy.
    pub control_policy: Option<ControlPolicy>,
}

impl SessionLauncher {
    /// Opens a new session from `spec`, validated like a config file.
    pub async fn open_spec(&self, spec: SessionSpec) -> Result<SessionInfo, NodeError> {
        let mut config = self.defaults.clone();
        config.source = spec.source;
        config.source.input_log = None;
        if let Some(name) = spec.name {
            config.session.name = name;
        }
        if let Some(ms) = spec.frame_interval_ms {
            config.session.frame_interval_ms = ms;
        }
        if let Some(level) = spec.default_control_level {
            config.session.default_control_level = level;
        }
        if let Some(policy) = spec.control_policy {
            config.session.control_policy = policy;
        }
        config.validate()?;
        if config.source.kind == SourceKind::None {
            return Err(NodeError::Invalid(
                "source none has nothing to share".into(),
            ));
        }
        let record = SessionRecord {
            id: random_id(12),
            name: config.session.name.clone(),
            source: source_label(&config),
            state: SessionState::Open,
            created_at_ms: now_ms(),
            closed_at_ms: None,
            shared_rect: None,
            frame_interval_ms: config.session.frame_interval_ms,
            default_control_level: config.session.default_control_level,
            control_policy: config.session.control_policy,
        };
        let source = make_source(&config)?;
        let input = make_input_sink(&config)?;
        self.open(record, source, input, &config, Vec::new()).await
    }

    /// Starts the capture and encoder actors of a session and registers it.
    async fn open(
        &self,
        record: SessionRecord,
        source: Box<dyn CaptureSource>,
        input: Box<dyn InputSink>,
        config: &NodeConfig,
        invitations: Vec<tandem_registry::InvitationRecord>,
    ) -> Result<SessionInfo, NodeError> {
        let (w, h) = source.desktop_size();
        let desktop = Rect::new(0, 0, w, h);
        let shared = record
            .shared_rect
            .map(|[x, y, width, height]| Rect::new(x, y, width, height));
        let mut source = source;
        let shared = match (&config.source.monitor, shared) {
            (Some(name), None) => Some(monitor_rect(&mut source, name)?),
            (_, shared) => shared,
        };
        let rect = shared
            .and_then(|r| r.intersect(&desktop))
            .unwrap_or(desktop);
        let (publish, updates) = watch::channel(None);
        let (cursor_tx, cursor) = watch::channel(None);
        // The filter the input path confines keys and buttons to.
        let (filter_tx, filter_rx) = watch::channel(config.source.filter.clone());
        let probe = make_probe(config)?;
        let encoder = {
            let metrics = self.metrics.clone();
            let (session, events) = (record.id.clone(), self.registry.clone().recipient());
            EncoderActor::new(publish.clone(), metrics)
                .with_events(session, events)
                .start_on_own_thread()
        };
        let arbiter = Arbiter::new();
        let capture = {
            let (session, metrics) = (record.id.clone(), self.metrics.clone());
            let outputs = CaptureOutputs {
                encoder: encoder.clone(),
                cursor: cursor_tx,
                notices: self.manager.clone().recipient(),
                events: self.registry.clone().recipient(),
                filter: filter_tx,
            };
            let interval = Duration::from_millis(u64::from(record.frame_interval_ms));
            let filter = config.source.filter.clone();
            let paused = record.state == SessionState::Paused;
            CaptureActor::start_in_arbiter(&arbiter.handle(), move |_| {
                CaptureActor::new(session, source, outputs, metrics, interval, shared)
                    .with_filter(filter)
                    .with_paused(paused)
                    .with_own_arbiter()
            })
        };
        {
            let mut arbiters = self
                .arbiters
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Those of closed sessions are gone (their thread ended with
            // their capture actor): forget their handles.
            arbiters.retain(|(_, capture)| capture.connected());
            arbiters.push((arbiter, capture.clone()));
        }
        let info = self
            .manager
            .send(OpenSession {
                record,
                capture,
                encoder,
                updates,
                cursor,
                input,
                probe,
                filter: filter_rx,
                rect,
                default_level: config.session.default_control_level,
                policy: config.session.control_policy,
                invitations,
            })
            .await??;
        let clipboard = self.channels.open_session(
            &info.id,
            config.session.clipboard,
            config.session.clipboard_max_bytes,
        );
        if config.source.kind == SourceKind::X11 {
            clipboard_bridge::start(
                self.channels.clone(),
                &info.id,
                config.source.display.clone(),
                clipboard,
                config.session.clipboard_max_bytes,
            );
        }
        Ok(info)
    }
}

fn source_label(config: &NodeConfig) -> String {
    match config.source.kind {
        SourceKind::Synthetic => format!(
            "synthetic:{}x{}:{}",
            config.source.width, config.source.height, config.source.seed
        ),
        SourceKind::X11 => format!("x11:{}", config.source.display.clone().unwrap_or_default()),
        SourceKind::None => "none".to_owned(),
    }
}

fn make_source(config: &NodeConfig) -> Result<Box<dyn CaptureSource>, NodeError> {
    match config.source.kind {
        SourceKind::Synthetic => {
            let mut desktop = SyntheticDesktop::new(
                config.source.seed,
                config.source.width,
                config.source.height,
            );
            if let Some(n) = config.source.freeze_after_frames {
                desktop = desktop.with_freeze_at(n);
            }
            if config.source.motion == SyntheticMotion::Full {
                desktop = desktop.with_motion(tandem_capture::Motion::Full);
            }
            Ok(Box::new(desktop))
        }
        SourceKind::X11 => {
            let mode = match config.source.grab {
                GrabMethod::Auto => GrabMode::Auto,
                GrabMethod::GetImage => GrabMode::GetImage,
            };
            let mut source = X11Source::connect(config.source.display.as_deref(), mode)?;
            if let Some(filter) = &config.source.filter {
                source.set_filter(Some(filter.clone()))?;
            }
            Ok(Box::new(source))
        }
        SourceKind::None => Err(NodeError::Config {
            detail: "source none has no capture".into(),
        }),
    }
}

/// The area of the monitor named `name` (RandR output name, or `screen`).
fn monitor_rect(source: &mut Box<dyn CaptureSource>, name: &str) -> Result<Rect, NodeError> {
    let monitors = source.monitors()?;
    monitors
        .iter()
        .find(|m| m.name == name)
        .map(|m| m.rect)
        .ok_or_else(|| {
            let known: Vec<&str> = monitors.iter().map(|m| m.name.as_str()).collect();
            NodeError::Invalid(format!(
                "no monitor named {name:?}; this desktop has: {}",
                known.join(", ")
            ))
        })
}

fn make_input_sink(config: &NodeConfig) -> Result<Box<dyn InputSink>, NodeError> {
    if config.source.kind == SourceKind::X11 && config.source.input_log.is_none() {
        return Ok(Box::new(X11InputSink::connect(
            config.source.display.as_deref(),
        )?));
    }
    match &config.source.input_log {
        Some(path) => Ok(Box::new(input_log::InputLogSink::open(path).map_err(
            |source| NodeError::Io {
                context: format!("opening input log {}", path.display()),
                source,
            },
        )?)),
        None => Ok(Box::new(NullSink)),
    }
}

/// Where the input path reads the pointer and focus: the X display
/// itself, whatever the sink (an input log included); none for a desktop
/// without windows of its own.
fn make_probe(config: &NodeConfig) -> Result<Option<Box<dyn DesktopProbe>>, NodeError> {
    if config.source.kind != SourceKind::X11 {
        return Ok(None);
    }
    Ok(Some(Box::new(X11Probe::connect(
        config.source.display.as_deref(),
    )?)))
}

fn advertised_addresses(config: &NodeConfig, bound: SocketAddr) -> Vec<NodeAddr> {
    let parsed: Vec<NodeAddr> = config
        .advertise
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect();
    if !parsed.is_empty() {
        return parsed;
    }
    let ip = if bound.ip().is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        bound.ip()
    };
    vec![NodeAddr {
        host: ip.to_string(),
        port: bound.port(),
    }]
}
