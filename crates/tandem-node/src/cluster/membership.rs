//! The ClusterActor: membership by gossip (chitchat) and the directory.
//!
//! Every gossip interval the actor writes this node's keys into its chitchat
//! state (addresses, fingerprint, the sessions it originates, its load) and
//! rebuilds the [`Directory`] from every member's state. Liveness is decided
//! here rather than by chitchat's phi-accrual detector, so that the bound the
//! config sets holds exactly: a member is live while its gossiped heartbeat
//! has advanced within `dead_after_ms` (a member keeps incrementing its
//! heartbeat while it gossips; a stopped, killed or cut-off one does not).
//!
//! Gossip travels sealed ([`super::gossip`]): only secret holders take part.
//! Even so, every member's state is checked before it enters the directory
//! ([`member_from_state`]: addresses parse, the fingerprint is the cluster's,
//! session ids are well formed, lists and values bounded); a member with
//! invalid state is left out and logged once. Each session has one origin
//! ([`Origins`]): this node for the sessions it shares, otherwise the live
//! member first seen publishing it; other claimants are ignored and logged.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use chitchat::{spawn_chitchat, ChitchatConfig, ChitchatHandle, ChitchatId, FailureDetectorConfig};
use tandem_proto::{Fingerprint, NodeAddr};
use tokio::sync::watch;

use super::{ClusterSettings, Directory, MemberInfo};
use crate::attendee_manager::{AttendeeManager, ListSessions, SetClusterAddrs};
use crate::error::NodeError;
use crate::metrics::Metrics;

/// Gossip keys a member publishes.
mod keys {
    pub const QUIC: &str = "quic";
    pub const ADMIN: &str = "admin";
    pub const LINK: &str = "link";
    pub const FINGERPRINT: &str = "fp";
    pub const SESSIONS: &str = "sessions";
    pub const ATTENDEES: &str = "attendees";
    pub const RELAY_LINKS: &str = "relay_links";
}

/// Most sessions one member publishes (the gossip state stays small).
pub const MAX_PUBLISHED_SESSIONS: usize = 64;
/// Most keys a member's state may hold.
const MAX_KEYS: usize = 32;
/// Longest gossiped value (the session list: 64 ids of up to 64 bytes).
const MAX_VALUE_LEN: usize = 64 * 65;

/// What the actor needs to know about its node.
pub struct ClusterStart {
    /// Settings (`[cluster]`), validated and enabled.
    pub settings: ClusterSettings,
    /// This node's id.
    pub node_id: String,
    /// QUIC address attendees use.
    pub quic_addr: NodeAddr,
    /// Admin HTTP address.
    pub admin_addr: SocketAddr,
    /// Relay-link endpoint address, when links are served.
    pub link_addr: Option<SocketAddr>,
    /// Certificate fingerprint.
    pub fingerprint: Fingerprint,
    /// The manager (sessions, attendees; told the cluster's addresses).
    pub manager: Addr<AttendeeManager>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Attendees served here through relay links (counted by the link code).
    pub relayed_attendees: Arc<AtomicU64>,
    /// Where the directory is published (the receivers are [`ClusterView`]s).
    pub directory: watch::Sender<Arc<Directory>>,
}

/// The actor.
pub struct ClusterActor {
    handle: Option<ChitchatHandle>,
    self_id: ChitchatId,
    manager: Addr<AttendeeManager>,
    metrics: Arc<Metrics>,
    relayed_attendees: Arc<AtomicU64>,
    interval: Duration,
    dead_after: Duration,
    /// Per member: its last heartbeat and when we saw it advance.
    seen: HashMap<ChitchatId, (u64, Instant)>,
    directory: watch::Sender<Arc<Directory>>,
    /// QUIC addresses of the other live members last told to the manager.
    told_addrs: Vec<NodeAddr>,
    busy: bool,
    /// The cluster identity's fingerprint, as members must publish it.
    fingerprint: String,
    /// Members whose invalid state was logged (logged once while it lasts).
    invalid_logged: HashSet<ChitchatId>,
    /// The origin of every session in the directory.
    origins: Origins,
}

impl ClusterActor {
    /// Opens the gossip socket and starts the actor on the current arbiter.
    pub async fn start(start: ClusterStart) -> Result<Addr<ClusterActor>, NodeError> {
        let s = &start.settings;
        let listen = s.listen.ok_or_else(|| NodeError::Config {
            detail: "cluster.listen is not set".into(),
        })?;
        let advertise = s.advertise.unwrap_or_else(|| {
            if listen.ip().is_unspecified() {
                SocketAddr::from(([127, 0, 0, 1], listen.port()))
            } else {
                listen
            }
        });
        let dead_after = Duration::from_millis(s.dead_after_ms);
        // A few heartbeats per detection period, so one lost datagram never
        // makes a member look dead; never slower than chitchat's usual 1 s.
        let interval = (dead_after / 8).clamp(Duration::from_millis(50), Duration::from_secs(1));
        let generation = crate::clock::now_ms().max(0) as u64;
        let self_id = ChitchatId::new(start.node_id.clone(), generation, advertise);
        let config = ChitchatConfig {
            chitchat_id: self_id.clone(),
            cluster_id: s.gossip_cluster_id(),
            gossip_interval: interval,
            listen_addr: listen,
            seed_nodes: s.seeds.clone(),
            failure_detector_config: FailureDetectorConfig {
                // Dead members' state is dropped a while after our own
                // detector has already taken them out of the directory.
                dead_node_grace_period: dead_after * 10,
                initial_interval: interval,
                ..Default::default()
            },
            marked_for_deletion_grace_period: dead_after * 20,
            catchup_callback: None,
            extra_liveness_predicate: None,
            protocol_version: chitchat::ProtocolVersion::V0,
        };
        let mut initial = vec![
            (keys::QUIC.to_owned(), start.quic_addr.to_string()),
            (keys::ADMIN.to_owned(), start.admin_addr.to_string()),
            (keys::FINGERPRINT.to_owned(), start.fingerprint.to_string()),
            (keys::SESSIONS.to_owned(), String::new()),
            (keys::ATTENDEES.to_owned(), "0".to_owned()),
            (keys::RELAY_LINKS.to_owned(), "0".to_owned()),
        ];
        if let Some(link) = start.link_addr {
            initial.push((keys::LINK.to_owned(), link.to_string()));
        }
        let transport = super::gossip::SecureTransport {
            keys: super::gossip::GossipKeys::new(
                s.secret.as_deref().unwrap_or_default().as_bytes(),
                &s.cluster_id,
            ),
            window: super::gossip::replay_window(dead_after),
            rejected: start.metrics.cluster.gossip_rejected.clone(),
        };
        let handle = spawn_chitchat(config, initial, &transport)
            .await
            .map_err(|e| NodeError::Io {
                context: format!("starting gossip on {listen}"),
                source: std::io::Error::other(e.to_string()),
            })?;
        tracing::info!(%listen, %advertise, cluster = %s.cluster_id, dead_after_ms = s.dead_after_ms, "gossip started");
        let actor = ClusterActor {
            handle: Some(handle),
            self_id,
            manager: start.manager,
            metrics: start.metrics,
            relayed_attendees: start.relayed_attendees,
            interval,
            dead_after,
            seen: HashMap::new(),
            directory: start.directory,
            told_addrs: Vec::new(),
            busy: false,
            fingerprint: start.fingerprint.to_string(),
            invalid_logged: HashSet::new(),
            origins: Origins::default(),
        };
        Ok(actor.start())
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.busy {
            return;
        }
        let Some(handle) = self.handle.as_ref() else {
            return;
        };
        self.busy = true;
        let chitchat = handle.chitchat();
        let manager = self.manager.clone();
        let relayed = self.relayed_attendees.load(Ordering::Relaxed);
        let links = self.metrics.cluster.relay_links.get().max(0) as u64;
        let work = async move {
            let sessions = manager.send(ListSessions).await.unwrap_or_default();
            let attendees: u64 = sessions.iter().map(|s| s.attendees as u64).sum::<u64>() + relayed;
            let ids: Vec<&str> = sessions
                .iter()
                .take(MAX_PUBLISHED_SESSIONS)
                .map(|s| s.id.as_str())
                .collect();
            let mut chitchat = chitchat.lock().await;
            let me = chitchat.self_node_state();
            me.set(keys::SESSIONS, ids.join(","));
            me.set(keys::ATTENDEES, attendees);
            me.set(keys::RELAY_LINKS, links);
            chitchat
                .node_states()
                .iter()
                .map(|(id, state)| {
                    let kv: HashMap<String, String> = state
                        .key_values()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect();
                    (id.clone(), u64::from(state.heartbeat()), kv)
                })
                .collect::<Vec<_>>()
        };
        ctx.spawn(work.into_actor(self).map(|states, act, _| {
            act.busy = false;
            act.rebuild(states);
        }));
    }

    fn rebuild(&mut self, states: Vec<(ChitchatId, u64, HashMap<String, String>)>) {
        let now = Instant::now();
        let mut nodes: HashMap<String, (u64, MemberInfo)> = HashMap::new();
        let present: Vec<ChitchatId> = states.iter().map(|(id, _, _)| id.clone()).collect();
        self.seen.retain(|id, _| present.contains(id));
        self.invalid_logged.retain(|id| present.contains(id));
        for (id, heartbeat, kv) in states {
            let is_self = id == self.self_id;
            let entry = self.seen.entry(id.clone()).or_insert((heartbeat, now));
            if heartbeat != entry.0 {
                *entry = (heartbeat, now);
            }
            let age = now.duration_since(entry.1);
            if !is_self && age > self.dead_after {
                continue;
            }
            let mut info = match member_from_state(&id, &kv, &self.fingerprint) {
                Ok(info) => {
                    self.invalid_logged.remove(&id);
                    info
                }
                Err(problem) => {
                    if self.invalid_logged.insert(id.clone()) {
                        tracing::warn!(member = %id.node_id, gossip = %id.gossip_advertise_addr, %problem, "member with invalid state ignored");
                    }
                    continue;
                }
            };
            info.is_self = is_self;
            info.heartbeat_age_ms = if is_self { 0 } else { age.as_millis() as u64 };
            // A restarted member appears under a new generation: keep the newest.
            match nodes.get(&info.id) {
                Some((generation, _)) if *generation > id.generation_id => {}
                _ => {
                    nodes.insert(info.id.clone(), (id.generation_id, info));
                }
            }
        }
        let mut list: Vec<MemberInfo> = nodes.into_values().map(|(_, m)| m).collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        for (member, session, origin) in self.origins.assign(&mut list) {
            tracing::warn!(%member, %session, %origin, "member claims a session another member originates; claim ignored");
        }
        self.metrics.cluster.members.set(list.len() as i64);
        let addrs: Vec<NodeAddr> = list
            .iter()
            .filter(|m| !m.is_self)
            .filter_map(|m| m.quic_addr.as_deref()?.parse().ok())
            .collect();
        if addrs != self.told_addrs {
            tracing::info!(members = list.len(), "cluster membership changed");
            self.told_addrs = addrs.clone();
            self.manager.do_send(SetClusterAddrs(addrs));
        }
        self.directory
            .send_replace(Arc::new(Directory { nodes: list }));
    }
}

/// Checks one member's gossiped state and turns it into a directory entry
/// (`is_self` false, age 0); the error says what is wrong. `fingerprint` is
/// the cluster identity's: every member presents it.
pub fn member_from_state(
    id: &ChitchatId,
    kv: &HashMap<String, String>,
    fingerprint: &str,
) -> Result<MemberInfo, String> {
    if !tandem_proto::is_valid_id(&id.node_id) {
        return Err("node id is not 1 to 64 of A-Z a-z 0-9 _ -".into());
    }
    if kv.len() > MAX_KEYS {
        return Err(format!("{} keys (at most {MAX_KEYS})", kv.len()));
    }
    if let Some((key, _)) = kv.iter().find(|(_, v)| v.len() > MAX_VALUE_LEN) {
        return Err(format!("value of {key} longer than {MAX_VALUE_LEN} bytes"));
    }
    let get = |key: &str| kv.get(key).ok_or_else(|| format!("no {key}"));
    let quic = get(keys::QUIC)?;
    quic.parse::<NodeAddr>()
        .map_err(|e| format!("quic {quic:?}: {e}"))?;
    let socket = |key: &str| -> Result<Option<String>, String> {
        match kv.get(key) {
            None => Ok(None),
            Some(v) => v
                .parse::<SocketAddr>()
                .map(|a| Some(a.to_string()))
                .map_err(|_| format!("{key} {v:?} is not a socket address")),
        }
    };
    let admin_addr = socket(keys::ADMIN)?;
    let link_addr = socket(keys::LINK)?;
    let fp = get(keys::FINGERPRINT)?;
    if fp != fingerprint {
        return Err("fingerprint is not the cluster identity's".into());
    }
    let mut sessions: Vec<String> = Vec::new();
    for s in get(keys::SESSIONS)?.split(',').filter(|s| !s.is_empty()) {
        if !tandem_proto::is_valid_id(s) {
            return Err(format!("session id {s:?} is not well formed"));
        }
        if sessions.len() == MAX_PUBLISHED_SESSIONS {
            return Err(format!("more than {MAX_PUBLISHED_SESSIONS} sessions"));
        }
        if !sessions.iter().any(|x| x == s) {
            sessions.push(s.to_owned());
        }
    }
    let count = |key: &str| -> Result<u64, String> {
        let v = get(key)?;
        v.parse().map_err(|_| format!("{key} {v:?} is not a count"))
    };
    Ok(MemberInfo {
        id: id.node_id.to_string(),
        gossip_addr: id.gossip_advertise_addr.to_string(),
        quic_addr: Some(quic.clone()),
        admin_addr,
        link_addr,
        fingerprint: Some(fp.clone()),
        sessions,
        attendees: count(keys::ATTENDEES)?,
        relay_links: count(keys::RELAY_LINKS)?,
        is_self: false,
        heartbeat_age_ms: 0,
    })
}

/// Who originates each session: this node for the sessions it lists
/// itself, otherwise the live member first seen listing it, for as long as
/// it is live and lists it. Claims by other members are removed from their
/// entries.
#[derive(Default)]
pub struct Origins {
    owner: HashMap<String, String>,
    /// (member, session) claims already reported.
    reported: HashSet<(String, String)>,
}

impl Origins {
    /// Assigns origins in `members` (live, sorted by id) and removes the
    /// claims that lose; returns the newly seen losing claims as
    /// `(member, session, origin)`.
    pub fn assign(&mut self, members: &mut [MemberInfo]) -> Vec<(String, String, String)> {
        let lists = |m: &MemberInfo, s: &str| m.sessions.iter().any(|x| x == s);
        // Owners that left or stopped listing a session give it up.
        self.owner
            .retain(|session, owner| members.iter().any(|m| &m.id == owner && lists(m, session)));
        // This node's own sessions are its own, whoever claimed them first.
        if let Some(me) = members.iter().find(|m| m.is_self) {
            for s in &me.sessions {
                self.owner.insert(s.clone(), me.id.clone());
            }
        }
        for m in members.iter() {
            for s in &m.sessions {
                self.owner.entry(s.clone()).or_insert_with(|| m.id.clone());
            }
        }
        let mut conflicts = Vec::new();
        let mut still: HashSet<(String, String)> = HashSet::new();
        for m in members.iter_mut() {
            let id = m.id.clone();
            m.sessions.retain(|s| {
                let origin = &self.owner[s];
                if *origin == id {
                    return true;
                }
                let key = (id.clone(), s.clone());
                if !self.reported.contains(&key) {
                    conflicts.push((id.clone(), s.clone(), origin.clone()));
                }
                still.insert(key);
                false
            });
        }
        self.reported = still;
        conflicts
    }
}

impl Actor for ClusterActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.tick(ctx);
        ctx.run_interval(self.interval, |act, ctx| act.tick(ctx));
    }
}

/// The live members as this node sees them.
#[derive(Message)]
#[rtype(result = "Arc<Directory>")]
pub struct ListMembers;

impl Handler<ListMembers> for ClusterActor {
    type Result = MessageResult<ListMembers>;
    fn handle(&mut self, _: ListMembers, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.directory.borrow().clone())
    }
}

/// Stops gossiping (node shutdown); the others see this member die after
/// their `dead_after_ms`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LeaveCluster;

impl Handler<LeaveCluster> for ClusterActor {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, _: LeaveCluster, ctx: &mut Self::Context) -> Self::Result {
        let handle = self.handle.take();
        ctx.stop();
        Box::pin(async move {
            if let Some(handle) = handle {
                let _ = handle.shutdown().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "ab";

    fn state(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn good() -> HashMap<String, String> {
        state(&[
            (keys::QUIC, "127.0.0.1:4433"),
            (keys::ADMIN, "127.0.0.1:7070"),
            (keys::LINK, "127.0.0.1:5000"),
            (keys::FINGERPRINT, FP),
            (keys::SESSIONS, "s1,s2"),
            (keys::ATTENDEES, "3"),
            (keys::RELAY_LINKS, "1"),
        ])
    }

    fn id(name: &str) -> ChitchatId {
        ChitchatId::new(name, 1, "127.0.0.1:7946".parse().unwrap())
    }

    #[test]
    fn valid_state_becomes_a_member() {
        let m = member_from_state(&id("n1"), &good(), FP).unwrap();
        assert_eq!(m.sessions, ["s1", "s2"]);
        assert_eq!(m.link_addr.as_deref(), Some("127.0.0.1:5000"));
        assert_eq!((m.attendees, m.relay_links), (3, 1));
    }

    #[test]
    fn every_invalid_value_is_refused() {
        let cases: Vec<(&str, &str, &str)> = vec![
            (keys::QUIC, "nowhere", "quic"),
            (keys::ADMIN, "example.org:80", "admin"),
            (keys::LINK, "127.0.0.1", "link"),
            (keys::FINGERPRINT, "cd", "fingerprint"),
            (keys::SESSIONS, "s1,../x", "session id"),
            (keys::ATTENDEES, "-1", "attendees"),
            (keys::RELAY_LINKS, "many", "relay_links"),
        ];
        for (key, value, problem) in cases {
            let mut kv = good();
            kv.insert(key.into(), value.into());
            let err = member_from_state(&id("n1"), &kv, FP).unwrap_err();
            assert!(err.contains(problem), "{key}={value}: {err}");
        }
        for key in [
            keys::QUIC,
            keys::FINGERPRINT,
            keys::SESSIONS,
            keys::ATTENDEES,
        ] {
            let mut kv = good();
            kv.remove(key);
            assert!(
                member_from_state(&id("n1"), &kv, FP).is_err(),
                "without {key}"
            );
        }
        let many: Vec<String> = (0..=MAX_PUBLISHED_SESSIONS)
            .map(|i| format!("s{i}"))
            .collect();
        let mut kv = good();
        kv.insert(keys::SESSIONS.into(), many.join(","));
        assert!(member_from_state(&id("n1"), &kv, FP).is_err());
        let mut kv = good();
        for i in 0..MAX_KEYS {
            kv.insert(format!("extra{i}"), String::new());
        }
        assert!(member_from_state(&id("n1"), &kv, FP).is_err());
        let mut kv = good();
        kv.insert("extra".into(), "x".repeat(MAX_VALUE_LEN + 1));
        assert!(member_from_state(&id("n1"), &kv, FP).is_err());
        assert!(member_from_state(&id("bad id!"), &good(), FP).is_err());
    }

    fn member(name: &str, sessions: &[&str], is_self: bool) -> MemberInfo {
        let mut m = member_from_state(&id(name), &good(), FP).unwrap();
        m.sessions = sessions.iter().map(|s| (*s).to_owned()).collect();
        m.is_self = is_self;
        m
    }

    #[test]
    fn the_first_claimant_keeps_a_session_and_later_claims_are_ignored() {
        let mut origins = Origins::default();
        let mut list = vec![member("b-origin", &["s1"], false), member("me", &[], true)];
        assert!(origins.assign(&mut list).is_empty());
        // A member sorting first claims s1 later: ignored, reported once.
        let mut list = vec![
            member("000-rogue", &["s1", "s9"], false),
            member("b-origin", &["s1"], false),
            member("me", &[], true),
        ];
        let conflicts = origins.assign(&mut list);
        assert_eq!(
            conflicts,
            [(
                "000-rogue".to_owned(),
                "s1".to_owned(),
                "b-origin".to_owned()
            )]
        );
        assert_eq!(list[0].sessions, ["s9"]);
        assert_eq!(list[1].sessions, ["s1"]);
        let mut again = vec![
            member("000-rogue", &["s1"], false),
            member("b-origin", &["s1"], false),
        ];
        assert!(origins.assign(&mut again).is_empty(), "reported once");
        assert!(again[0].sessions.is_empty());
        // The origin gone, the remaining claimant takes over.
        let mut list = vec![member("000-rogue", &["s1"], false)];
        assert!(origins.assign(&mut list).is_empty());
        assert_eq!(list[0].sessions, ["s1"]);
    }

    #[test]
    fn this_nodes_own_sessions_are_always_its_own() {
        let mut origins = Origins::default();
        let mut list = vec![
            member("000-rogue", &["mine"], false),
            member("me", &[], true),
        ];
        origins.assign(&mut list);
        let mut list = vec![
            member("000-rogue", &["mine"], false),
            member("me", &["mine"], true),
        ];
        let conflicts = origins.assign(&mut list);
        assert_eq!(conflicts.len(), 1);
        assert!(list[0].sessions.is_empty());
        let dir = Directory { nodes: list };
        assert!(dir.origin_of("mine").unwrap().is_self);
    }
}
