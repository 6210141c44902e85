//! Node configuration: one type read from TOML, overridden by the command line.
//!
//! Every key is documented in `configs/node.toml`. Unknown keys are errors, so a
//! typo in a config file is reported instead of silently ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tandem_proto::ControlLevel;

use crate::error::NodeError;

/// Config files larger than this are refused (a config is a few hundred bytes).
pub const MAX_CONFIG_BYTES: u64 = 256 * 1024;

/// The whole configuration of a node.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Where the registry, and the admin token, live.
    pub data_dir: PathBuf,
    /// UDP address of the QUIC endpoint attendees connect to.
    pub quic_listen: SocketAddr,
    /// Threads of the data plane (QUIC, graphics and cursor senders);
    /// `None`: one per available core.
    pub quic_threads: Option<usize>,
    /// Addresses put into connection strings, in order; empty means the bound QUIC address.
    pub advertise: Vec<String>,
    /// Address of the admin HTTP API (also serves `/healthz` and `/metrics`).
    pub admin_listen: SocketAddr,
    /// Bearer token of the admin API. When absent, `TANDEM_ADMIN_TOKEN` is
    /// used, else a token generated into `<data_dir>/admin.token` (mode 0600)
    /// on first start and read back on later starts.
    pub admin_token: Option<String>,
    /// Optional extra address serving only `/metrics` and `/healthz` without a
    /// token (for a Prometheus scraper on another interface); `None` (the
    /// default) serves metrics on the admin address only.
    pub metrics_listen: Option<SocketAddr>,
    /// What the node shares.
    pub source: SourceConfig,
    /// Settings of the sharing session the node opens at start.
    pub session: SessionConfig,
    /// The invitation the node creates at start.
    pub invitation: StartupInvitation,
    /// Registry (sled) settings.
    pub registry: RegistrySettings,
    /// Cluster membership and relays (off unless `cluster.listen` is set).
    pub cluster: crate::cluster::settings::ClusterSettings,
    /// Browser attendees: the attendee page and WebTransport (off unless `web.listen` is set).
    pub web: crate::browser::WebSettings,
    /// Permissions of invitation groups (`[groups.NAME]`): an invitation's
    /// group is its attendees' authorization class.
    pub groups: std::collections::BTreeMap<String, GroupConfig>,
}

/// The permissions of one invitation group; each key left out falls back
/// to the session's rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupConfig {
    /// Level of the group's new attendees: `none` or `view`.
    pub default_level: Option<ControlLevel>,
    /// Highest level a request of its attendees is granted at once
    /// (`none`, `view` or `interactive`); above it the sharer decides.
    pub auto_grant: Option<ControlLevel>,
    /// Channel access its attendees start with, by channel name
    /// (`none`, `read` or `read-write`).
    pub channels: std::collections::BTreeMap<String, tandem_proto::ChannelAccess>,
}

impl GroupConfig {
    /// The session core's rules.
    pub fn rules(&self) -> tandem_session::GroupRules {
        tandem_session::GroupRules {
            default_level: self.default_level,
            auto_grant: self.auto_grant,
            channels: self.channels.clone(),
        }
    }

    /// Checks a group's name and rules (the config's and the admin API's).
    pub fn validate(&self, name: &str) -> Result<(), String> {
        if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
            return Err(format!(
                "group name {name:?} must be 1 to 255 bytes without control characters"
            ));
        }
        if self.default_level == Some(ControlLevel::Interactive) {
            return Err(format!(
                "group {name}: default_level may be none or view, never interactive"
            ));
        }
        if self.channels.len() > tandem_session::MAX_GROUP_CHANNELS {
            return Err(format!(
                "group {name}: at most {} channels",
                tandem_session::MAX_GROUP_CHANNELS
            ));
        }
        if let Some(bad) = self
            .channels
            .keys()
            .find(|c| !tandem_proto::is_valid_channel_name(c))
        {
            return Err(format!(
                "group {name}: channel {bad:?} is not 1 to 64 characters from A-Z a-z 0-9 . _ -"
            ));
        }
        Ok(())
    }
}

/// Capture source of the node's sharing session.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceConfig {
    /// `synthetic`, `x11` or `none`.
    pub kind: SourceKind,
    /// X display for `x11` (default: `$DISPLAY`).
    pub display: Option<String>,
    /// Size of the synthetic desktop.
    pub width: u32,
    /// Size of the synthetic desktop.
    pub height: u32,
    /// Seed of the synthetic desktop's content.
    pub seed: u64,
    /// Stop animating the synthetic desktop after this many captured frames.
    pub freeze_after_frames: Option<u64>,
    /// What the synthetic desktop animates: `desktop` (office changes) or
    /// `full` (every pixel, every frame: full-motion load).
    pub motion: SyntheticMotion,
    /// Append the input events that reach the session's input sink to this
    /// file as JSON lines (for the synthetic desktop, which has no real input).
    pub input_log: Option<PathBuf>,
    /// How `x11` reads pixels: `auto` (MIT-SHM, else GetImage) or `getimage`.
    pub grab: GrabMethod,
    /// Share only this RandR monitor (by output name, e.g. `HDMI-1`).
    pub monitor: Option<String>,
    /// Share only the windows this filter names (`x11` only).
    pub filter: Option<tandem_capture::WindowFilter>,
}

/// What the synthetic desktop animates (`source.motion`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyntheticMotion {
    /// A clock, a scrolling terminal and a moving window.
    #[default]
    Desktop,
    /// Every pixel changes every frame.
    Full,
}

/// How the X11 source reads pixels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrabMethod {
    /// MIT-SHM when the X server is local, else GetImage.
    #[default]
    Auto,
    /// Always GetImage.
    GetImage,
}

/// Which capture backend a session uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// The built-in deterministic desktop.
    Synthetic,
    /// A real X display.
    X11,
    /// No local session (a relay-only node).
    None,
}

impl std::str::FromStr for SourceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "synthetic" => Ok(Self::Synthetic),
            "x11" => Ok(Self::X11),
            "none" => Ok(Self::None),
            other => Err(format!(
                "unknown source {other:?}: expected synthetic, x11 or none"
            )),
        }
    }
}

/// How control requests are answered (the session core's type).
pub use tandem_session::ControlPolicy;

/// Settings of a sharing session.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// A human name for the session.
    pub name: String,
    /// Capture interval in milliseconds (the API's `FrameCaptureIntervalInMs`).
    pub frame_interval_ms: u32,
    /// Level given to new attendees: `none` or `view` (never `interactive`).
    pub default_control_level: ControlLevel,
    /// How control requests are answered.
    pub control_policy: ControlPolicy,
    /// Share the text clipboard between an X11 desktop and interactive
    /// attendees (the API's `EnableClipboardRedirect`); off by default, and
    /// switchable at run time through the admin API.
    pub clipboard: bool,
    /// Largest clipboard text carried, in bytes (at most one channel
    /// message, 65520); larger copies are refused with an event.
    pub clipboard_max_bytes: usize,
}

/// The invitation created when the node starts.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StartupInvitation {
    /// Create one at every start (old invitations stay valid).
    pub create: bool,
    /// Its password; a random one is generated and printed once when absent.
    pub password: Option<String>,
    /// Maximum number of attendees connected through it at once.
    pub attendee_limit: u32,
}

/// Registry settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrySettings {
    /// sled page cache, in MiB.
    pub cache_mib: u64,
    /// Events kept in the event log.
    pub event_retention_count: u64,
    /// Age after which events are dropped, in hours.
    pub event_retention_hours: u64,
    /// Attendee records kept (live ones always; the oldest finished ones
    /// are dropped first).
    pub attendee_history_count: u64,
    /// Age after which finished attendee records are dropped, in days.
    pub attendee_history_days: u32,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            quic_listen: SocketAddr::from(([127, 0, 0, 1], 4433)),
            quic_threads: None,
            advertise: Vec::new(),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            admin_token: None,
            metrics_listen: None,
            source: SourceConfig::default(),
            session: SessionConfig::default(),
            invitation: StartupInvitation::default(),
            registry: RegistrySettings::default(),
            cluster: crate::cluster::settings::ClusterSettings::default(),
            web: crate::browser::WebSettings::default(),
            groups: Default::default(),
        }
    }
}

impl Default for SourceConfig {
    fn default() -> Self {
        Self {
            kind: SourceKind::Synthetic,
            display: None,
            width: 1280,
            height: 720,
            seed: 1,
            freeze_after_frames: None,
            motion: SyntheticMotion::Desktop,
            input_log: None,
            grab: GrabMethod::Auto,
            monitor: None,
            filter: None,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            name: "desktop".into(),
            frame_interval_ms: 33,
            default_control_level: ControlLevel::View,
            control_policy: ControlPolicy::Ask,
            clipboard: false,
            clipboard_max_bytes: tandem_proto::MAX_CHANNEL_MESSAGE,
        }
    }
}

impl Default for StartupInvitation {
    fn default() -> Self {
        Self {
            create: true,
            password: None,
            attendee_limit: 16,
        }
    }
}

impl Default for RegistrySettings {
    fn default() -> Self {
        Self {
            cache_mib: 64,
            event_retention_count: 10_000,
            event_retention_hours: 24 * 7,
            attendee_history_count: 10_000,
            attendee_history_days: 90,
        }
    }
}

/// Bounds that configuration values must respect.
pub const MIN_FRAME_INTERVAL_MS: u32 = 5;
/// Bounds that configuration values must respect.
pub const MAX_FRAME_INTERVAL_MS: u32 = 60_000;
/// Largest synthetic desktop side.
pub const MAX_SYNTHETIC_SIDE: u32 = 8192;
/// Largest attendee limit of one invitation.
pub const MAX_ATTENDEE_LIMIT: u32 = 10_000;

/// Most data-plane threads `quic_threads` may ask for.
pub const MAX_QUIC_THREADS: usize = 256;

impl NodeConfig {
    /// Threads of the data-plane runtime: `quic_threads`, else one per
    /// available core.
    pub fn data_plane_threads(&self) -> usize {
        self.quic_threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }

    /// Reads a TOML file (bounded in size) and validates it.
    pub fn load(path: &Path) -> Result<Self, NodeError> {
        let meta = std::fs::metadata(path).map_err(|e| NodeError::Config {
            detail: format!("cannot read {}: {e}", path.display()),
        })?;
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(NodeError::Config {
                detail: format!(
                    "{} is {} bytes; a config file may be at most {MAX_CONFIG_BYTES}",
                    path.display(),
                    meta.len()
                ),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| NodeError::Config {
            detail: format!("cannot read {}: {e}", path.display()),
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            NodeError::Config { detail } => NodeError::Config {
                detail: format!("{}: {detail}", path.display()),
            },
            other => other,
        })
    }

    /// Parses TOML text and validates it.
    pub fn from_toml(text: &str) -> Result<Self, NodeError> {
        let config: NodeConfig = toml::from_str(text).map_err(|e| NodeError::Config {
            detail: e.to_string().trim().replace('\n', " "),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges and combinations that serde cannot.
    pub fn validate(&self) -> Result<(), NodeError> {
        let bad = |detail: String| Err(NodeError::Config { detail });
        if self
            .quic_threads
            .is_some_and(|n| !(1..=MAX_QUIC_THREADS).contains(&n))
        {
            return bad(format!(
                "quic_threads must be between 1 and {MAX_QUIC_THREADS} (absent: one per core)"
            ));
        }
        if self.groups.len() > tandem_session::MAX_GROUPS {
            return bad(format!(
                "at most {} [groups.NAME] tables",
                tandem_session::MAX_GROUPS
            ));
        }
        for (name, group) in &self.groups {
            group.validate(name).map_err(|detail| NodeError::Config {
                detail: format!("groups: {detail}"),
            })?;
        }
        let s = &self.session;
        if !(MIN_FRAME_INTERVAL_MS..=MAX_FRAME_INTERVAL_MS).contains(&s.frame_interval_ms) {
            return bad(format!(
                "session.frame_interval_ms must be between {MIN_FRAME_INTERVAL_MS} and {MAX_FRAME_INTERVAL_MS}"
            ));
        }
        if s.default_control_level == ControlLevel::Interactive {
            return bad(
                "session.default_control_level may be none or view, never interactive".into(),
            );
        }
        if s.clipboard_max_bytes == 0 || s.clipboard_max_bytes > tandem_proto::MAX_CHANNEL_MESSAGE {
            return bad(format!(
                "session.clipboard_max_bytes must be between 1 and {}",
                tandem_proto::MAX_CHANNEL_MESSAGE
            ));
        }
        if s.name.is_empty() || s.name.len() > 128 {
            return bad("session.name must be 1 to 128 bytes".into());
        }
        let src = &self.source;
        if src.width == 0
            || src.height == 0
            || src.width > MAX_SYNTHETIC_SIDE
            || src.height > MAX_SYNTHETIC_SIDE
        {
            return bad(format!(
                "source.width and source.height must be between 1 and {MAX_SYNTHETIC_SIDE}"
            ));
        }
        if let Some(filter) = &src.filter {
            if src.kind != SourceKind::X11 {
                return bad("source.filter needs source.kind = \"x11\"".into());
            }
            filter
                .validate()
                .or_else(|e| bad(format!("source.filter: {e}")))?;
        }
        if let Some(display) = &src.display {
            if display.is_empty() || display.len() > 256 {
                return bad("source.display must be 1 to 256 bytes".into());
            }
        }
        if src
            .monitor
            .as_ref()
            .is_some_and(|m| m.is_empty() || m.len() > 64)
        {
            return bad("source.monitor must be 1 to 64 bytes".into());
        }
        let inv = &self.invitation;
        if inv.attendee_limit == 0 || inv.attendee_limit > MAX_ATTENDEE_LIMIT {
            return bad(format!(
                "invitation.attendee_limit must be between 1 and {MAX_ATTENDEE_LIMIT}"
            ));
        }
        if let Some(p) = &inv.password {
            crate::passwords::check_new_password("invitation.password", p).or_else(bad)?;
        }
        if self.advertise.len() > 16 {
            return bad("advertise may list at most 16 addresses".into());
        }
        for (i, a) in self.advertise.iter().enumerate() {
            if a.parse::<tandem_proto::NodeAddr>().is_err() {
                return bad(format!("advertise[{i}] {a:?} is not host:port"));
            }
        }
        if let Some(t) = &self.admin_token {
            if t.len() < 16 || t.len() > 256 || !t.chars().all(|c| c.is_ascii_graphic()) {
                return bad("admin_token must be 16 to 256 printable ASCII characters".into());
            }
        }
        if self.registry.attendee_history_count == 0
            || self.registry.attendee_history_count > 10_000_000
        {
            return bad("registry.attendee_history_count must be between 1 and 10000000".into());
        }
        if self.registry.attendee_history_days == 0 || self.registry.attendee_history_days > 3650 {
            return bad("registry.attendee_history_days must be between 1 and 3650".into());
        }
        if self.registry.cache_mib == 0 || self.registry.cache_mib > 64 * 1024 {
            return bad("registry.cache_mib must be between 1 and 65536".into());
        }
        self.cluster
            .validate()
            .or_else(|detail| bad(format!("cluster.{detail}")))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        NodeConfig::default().validate().unwrap();
        NodeConfig::from_toml("").unwrap();
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = NodeConfig::from_toml("quic_listn = \"127.0.0.1:1\"").unwrap_err();
        assert!(err.to_string().contains("quic_listn"), "{err}");
    }

    #[test]
    fn interactive_default_level_is_refused() {
        let err = NodeConfig::from_toml("[session]\ndefault_control_level = \"interactive\"")
            .unwrap_err();
        assert!(err.to_string().contains("never interactive"), "{err}");
    }

    #[test]
    fn values_parse() {
        let c = NodeConfig::from_toml(
            "quic_listen = \"127.0.0.1:5000\"\n[source]\nkind = \"synthetic\"\nwidth = 320\nheight = 200\n[session]\ncontrol_policy = \"grant-all\"\ndefault_control_level = \"none\"",
        )
        .unwrap();
        assert_eq!(c.source.width, 320);
        assert_eq!(c.session.control_policy, ControlPolicy::GrantAll);
        assert_eq!(c.session.default_control_level, ControlLevel::None);
    }

    #[test]
    fn quic_threads_default_to_the_cores_and_are_bounded() {
        let c = NodeConfig::from_toml("quic_threads = 4").unwrap();
        assert_eq!(c.quic_threads, Some(4));
        assert!(c.data_plane_threads() == 4);
        assert!(NodeConfig::default().data_plane_threads() >= 1);
        for bad in ["quic_threads = 0", "quic_threads = 257"] {
            let err = NodeConfig::from_toml(bad).unwrap_err();
            assert!(err.to_string().contains("quic_threads"), "{err}");
        }
    }

    #[test]
    fn synthetic_motion_parses_and_unknown_motions_are_refused() {
        let c = NodeConfig::from_toml("[source]\nmotion = \"full\"").unwrap();
        assert_eq!(c.source.motion, SyntheticMotion::Full);
        assert_eq!(
            NodeConfig::default().source.motion,
            SyntheticMotion::Desktop
        );
        let err = NodeConfig::from_toml("[source]\nmotion = \"wobble\"").unwrap_err();
        assert!(err.to_string().contains("wobble"), "{err}");
    }
}
