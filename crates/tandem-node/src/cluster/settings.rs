//! The `[cluster]` section of the node config: values, checks and loading
//! the secret. Depends on nothing else of the node, so the config can hold
//! it without importing the cluster's actors.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::secret::{check_secret, hmac_tag, read_secret_file, SECRET_ENV};

/// Largest number of seed addresses.
pub const MAX_SEEDS: usize = 64;
/// Shortest and longest failure detection time.
pub const DEAD_AFTER_MS_RANGE: std::ops::RangeInclusive<u64> = 300..=600_000;

/// The `[cluster]` section of the node config.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSettings {
    /// UDP address of the gossip socket; clustering is off when absent.
    pub listen: Option<SocketAddr>,
    /// Gossip address other members use to reach this one (default: `listen`,
    /// with an unspecified IP replaced by 127.0.0.1).
    pub advertise: Option<SocketAddr>,
    /// Gossip addresses (`host:port`) of members to join through.
    pub seeds: Vec<String>,
    /// Shared secret of the cluster (16 to 256 bytes): seals gossip and
    /// authenticates relay links. Only from the config file, `secret_file`
    /// or `TANDEM_CLUSTER_SECRET` (which wins), never the command line.
    pub secret: Option<String>,
    /// File holding the secret (trailing whitespace ignored; should be
    /// readable by the node's user only). Not together with `secret`.
    pub secret_file: Option<std::path::PathBuf>,
    /// Name of the cluster: two clusters on one network do not merge.
    pub cluster_id: String,
    /// A member whose heartbeat has not advanced for this long is dead: it
    /// leaves the member list and its sessions leave the directory.
    pub dead_after_ms: u64,
    /// UDP address of the relay-link QUIC endpoint (default: the QUIC
    /// listen IP with a port chosen by the system).
    pub link_listen: Option<SocketAddr>,
    /// Gossip address of a member to relay through instead of linking to
    /// the origin directly (a relay of a relay). Used while that member is
    /// live; a member serving a link always links to the origin itself, so
    /// chains are at most two links long and cannot loop.
    pub upstream: Option<SocketAddr>,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            listen: None,
            advertise: None,
            seeds: Vec::new(),
            secret: None,
            secret_file: None,
            cluster_id: "tandem".into(),
            dead_after_ms: 3000,
            link_listen: None,
            upstream: None,
        }
    }
}

impl ClusterSettings {
    /// Whether the node joins a cluster.
    pub fn enabled(&self) -> bool {
        self.listen.is_some()
    }

    /// Checks values; the error names the key (without the `cluster.` prefix).
    pub fn validate(&self) -> Result<(), String> {
        if !DEAD_AFTER_MS_RANGE.contains(&self.dead_after_ms) {
            return Err(format!(
                "dead_after_ms must be between {} and {}",
                DEAD_AFTER_MS_RANGE.start(),
                DEAD_AFTER_MS_RANGE.end()
            ));
        }
        if self.cluster_id.is_empty()
            || self.cluster_id.len() > 64
            || !self
                .cluster_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err("cluster_id must be 1 to 64 letters, digits, '-', '_' or '.'".into());
        }
        if self.seeds.len() > MAX_SEEDS {
            return Err(format!("seeds may list at most {MAX_SEEDS} addresses"));
        }
        for (i, seed) in self.seeds.iter().enumerate() {
            if seed.len() > 255
                || seed
                    .rsplit_once(':')
                    .is_none_or(|(_, p)| p.parse::<u16>().is_err())
            {
                return Err(format!("seeds[{i}] {seed:?} is not host:port"));
            }
        }
        if self.secret.is_some() && self.secret_file.is_some() {
            return Err("secret and secret_file are both set: keep one".into());
        }
        if let Some(secret) = &self.secret {
            check_secret(secret)?;
        }
        Ok(())
    }

    /// Puts the secret in place: `TANDEM_CLUSTER_SECRET` (given as `env`)
    /// when set, else the contents of `secret_file`, else `secret`; a
    /// clustered node without one is an error. The error names the key
    /// (without the `cluster.` prefix).
    pub fn load_secret(&mut self, env: Option<String>) -> Result<(), String> {
        if let Some(secret) = env.filter(|s| !s.is_empty()) {
            check_secret(&secret).map_err(|e| format!("{e} (from {SECRET_ENV})"))?;
            self.secret = Some(secret);
            self.secret_file = None;
        } else if let Some(path) = self.secret_file.take() {
            let secret = read_secret_file(&path)?;
            check_secret(&secret).map_err(|e| format!("{e} (in {})", path.display()))?;
            self.secret = Some(secret);
        }
        if self.enabled() && self.secret.is_none() {
            return Err(format!(
                "secret is required when cluster.listen is set: set cluster.secret_file \
                 (or cluster.secret) in the config, or {SECRET_ENV}"
            ));
        }
        Ok(())
    }

    /// The chitchat cluster id: the configured name plus a tag derived from
    /// the secret. It travels inside sealed datagrams ([`super::gossip`]), which
    /// already keep other secrets out; the tag keeps two clusters apart
    /// even if one day gossip were opened with a shared key.
    pub fn gossip_cluster_id(&self) -> String {
        let secret = self.secret.as_deref().unwrap_or_default();
        let tag = hmac_tag(secret.as_bytes(), b"tandem-gossip-cluster-id");
        format!("{}/{}", self.cluster_id, &hex::encode(tag)[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::secret::SECRET_ENV;

    #[test]
    fn settings_are_checked() {
        let mut s = ClusterSettings::default();
        s.validate().unwrap();
        s.listen = Some("127.0.0.1:7000".parse().unwrap());
        assert!(s
            .clone()
            .load_secret(None)
            .unwrap_err()
            .contains("secret_file"));
        s.secret = Some("short".into());
        assert!(s.validate().unwrap_err().contains("16 to 256"));
        s.secret = Some("0123456789abcdef".into());
        s.validate().unwrap();
        s.clone().load_secret(None).unwrap();
        s.seeds = vec!["nohost".into()];
        assert!(s.validate().unwrap_err().contains("seeds[0]"));
        s.seeds = vec!["localhost:7001".into()];
        s.dead_after_ms = 10;
        assert!(s.validate().unwrap_err().contains("dead_after_ms"));
    }

    #[test]
    fn the_secret_comes_from_the_environment_a_file_or_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "from-the-file-0123456789\n").unwrap();
        let mut s = ClusterSettings {
            listen: Some("127.0.0.1:7000".parse().unwrap()),
            secret_file: Some(file.clone()),
            ..Default::default()
        };
        s.validate().unwrap();
        let mut from_file = s.clone();
        from_file.load_secret(None).unwrap();
        assert_eq!(
            from_file.secret.as_deref(),
            Some("from-the-file-0123456789")
        );
        let mut from_env = s.clone();
        from_env
            .load_secret(Some("from-the-environment-0123".into()))
            .unwrap();
        assert_eq!(
            from_env.secret.as_deref(),
            Some("from-the-environment-0123")
        );
        let mut short = s.clone();
        assert!(short
            .load_secret(Some("short".into()))
            .unwrap_err()
            .contains(SECRET_ENV));
        s.secret = Some("in-the-config-0123456789".into());
        assert!(s.validate().unwrap_err().contains("both"));
        std::fs::write(&file, "tiny\n").unwrap();
        let mut tiny = ClusterSettings {
            secret_file: Some(file.clone()),
            ..Default::default()
        };
        assert!(tiny.load_secret(None).unwrap_err().contains("16 to 256"));
        let mut missing = ClusterSettings {
            secret_file: Some(dir.path().join("nope")),
            ..Default::default()
        };
        assert!(missing
            .load_secret(None)
            .unwrap_err()
            .contains("secret_file"));
    }

    #[test]
    fn another_secret_gives_another_gossip_cluster_id() {
        let mut a = ClusterSettings {
            secret: Some("0123456789abcdef".into()),
            ..Default::default()
        };
        let first = a.gossip_cluster_id();
        assert!(first.starts_with("tandem/"));
        a.secret = Some("0123456789abcdeX".into());
        assert_ne!(first, a.gossip_cluster_id());
    }
}
