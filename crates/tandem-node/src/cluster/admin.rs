//! Admin routes of the cluster: `GET /api/v1/cluster/nodes`.
//!
//! Kept apart from `admin.rs` so the cluster's API lives with the cluster;
//! `admin.rs` only mounts these handlers.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::{Directory, MemberInfo};
use crate::admin::{AdminState, ApiError};

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
