//! The panel's replicas on one database, and the one that leads the periodic work, as the
//! Admin page and `GET /api/v1/cluster` show them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterView {
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// The replica that answered.
    pub this_replica: String,
    /// The lease as it stands (its holder may have died: see `lease_until`).
    pub leader: Option<LeaderView>,
    /// Every replica seen lately, oldest first.
    pub replicas: Vec<ReplicaView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaderView {
    pub replica_id: String,
    /// Grows with each new leader: the fencing token of the periodic work.
    pub term: i64,
    #[serde(with = "crate::time::stored")]
    pub since: DateTime<Utc>,
    #[serde(with = "crate::time::stored")]
    pub lease_until: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaView {
    pub id: String,
    pub host: String,
    pub pid: i64,
    pub version: String,
    #[serde(with = "crate::time::stored")]
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat (every third of the lease).
    #[serde(with = "crate::time::stored")]
    pub seen_at: DateTime<Utc>,
    /// Whether it holds a lease that has not run out.
    pub leading: bool,
}
