//! Admin routes of the cluster: `GET /api/v1/cluster/nodes` and
//! `GET /api/v1/attendees?scope=cluster`.
//!
//! Members are asked over the cluster's authenticated links; nothing of
//! the caller's request (its token) leaves this node.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::dto::Attendee;
use super::error::ApiError;
use super::state::AdminState;
use crate::attendee_manager::ListAttendees;
use crate::cluster::{Directory, MemberInfo};

/// How long a member has to answer a cluster-wide query.
pub const MEMBER_TIMEOUT: Duration = Duration::from_secs(3);

/// The answer of `GET /api/v1/cluster/nodes`.
#[derive(Debug, Serialize)]
pub struct ClusterNodes {
    /// The cluster's name.
    pub cluster_id: String,
    /// The node answering.
    pub self_id: String,
    /// Live members, this node included.
    pub nodes: Vec<MemberInfo>,
}

/// Lists the live members as this node sees them.
pub async fn list_nodes(state: web::Data<AdminState>) -> Result<HttpResponse, ApiError> {
    let view = state.cluster.as_ref().ok_or_else(not_clustered)?;
    let directory: std::sync::Arc<Directory> = view.directory.borrow().clone();
    Ok(HttpResponse::Ok().json(ClusterNodes {
        cluster_id: view.cluster_id.clone(),
        self_id: view.node_id.clone(),
        nodes: directory.nodes.clone(),
    }))
}

/// The error of a cluster route on a node that is in no cluster.
pub fn not_clustered() -> ApiError {
    ApiError::not_found_message(
        "this node is not in a cluster: set cluster.listen (or --cluster-listen)",
    )
}

/// Live attendees of every live member, each with the `node` it is attached
/// to (its session's origin; relayed attendees also name their `via_node`).
/// Members are asked concurrently over authenticated links (never with the
/// caller's token, which stays on this node), each within
/// [`MEMBER_TIMEOUT`]; a member that does not answer is named in the
/// `X-Tandem-Unreachable` header and left out. The request is taken only
/// to show that nothing of it (its `Authorization` header) is passed on.
pub async fn cluster_attendees(
    state: web::Data<AdminState>,
    _request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let view = state.cluster.as_ref().ok_or_else(not_clustered)?;
    let directory: std::sync::Arc<Directory> = view.directory.borrow().clone();
    let asks = directory.nodes.iter().map(|member| {
        let state = state.clone();
        let relays = view.relays.clone();
        async move {
            let list = if member.is_self {
                state
                    .manager
                    .send(ListAttendees { session: None })
                    .await
                    .map_err(|e| e.to_string())
            } else {
                match relays {
                    Some(relays) => {
                        tokio::time::timeout(MEMBER_TIMEOUT, relays.member_attendees(member))
                            .await
                            .unwrap_or_else(|_| {
                                Err(format!("no answer within {} s", MEMBER_TIMEOUT.as_secs()))
                            })
                    }
                    None => Err("no links on this node".to_owned()),
                }
            };
            (member, list)
        }
    });
    let mut all: Vec<serde_json::Value> = Vec::new();
    let mut unreachable: Vec<String> = Vec::new();
    for (member, list) in futures::future::join_all(asks).await {
        match list {
            Ok(list) => {
                for a in list {
                    let mut a = serde_json::to_value(Attendee::from(a)).unwrap_or_default();
                    if let Some(obj) = a.as_object_mut() {
                        obj.insert("node".into(), member.id.clone().into());
                    }
                    all.push(a);
                }
            }
            Err(error) => {
                tracing::warn!(member = %member.id, %error, "member did not list its attendees");
                unreachable.push(member.id.clone());
            }
        }
    }
    let mut response = HttpResponse::Ok();
    if !unreachable.is_empty() {
        response.insert_header(("X-Tandem-Unreachable", unreachable.join(",")));
    }
    Ok(response.json(all))
}
