//! The ClusterActor: membership by gossip (chitchat) and the directory.
//!
//! Every gossip interval the actor writes this node's keys into its chitchat
//! state (addresses, fingerprint, the sessions it originates, its load) and
//! rebuilds the [`Directory`] from every member's state. Liveness is decided
//! here rather than by chitchat's phi-accrual detector, so that the bound the
//! config sets holds exactly: a member is live while its gossiped heartbeat
//! has advanced within `dead_after_ms` (a member keeps incrementing its
//! heartbeat while it gossips; a stopped, killed or cut-off one does not).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use chitchat::transport::UdpTransport;
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
        let generation = crate::now_ms().max(0) as u64;
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
        let handle = spawn_chitchat(config, initial, &UdpTransport)
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
            let info = MemberInfo {
                id: id.node_id.to_string(),
                gossip_addr: id.gossip_advertise_addr.to_string(),
                quic_addr: kv.get(keys::QUIC).cloned(),
                admin_addr: kv.get(keys::ADMIN).cloned(),
                link_addr: kv.get(keys::LINK).cloned(),
                fingerprint: kv.get(keys::FINGERPRINT).cloned(),
                sessions: kv
                    .get(keys::SESSIONS)
                    .map(|s| {
                        s.split(',')
                            .filter(|s| !s.is_empty())
                            .take(MAX_PUBLISHED_SESSIONS)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
                attendees: kv
                    .get(keys::ATTENDEES)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                relay_links: kv
                    .get(keys::RELAY_LINKS)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                is_self,
                heartbeat_age_ms: if is_self { 0 } else { age.as_millis() as u64 },
            };
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
