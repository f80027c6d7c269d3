//! Scaling history as the Scaling page and `GET /api/v1/environments/{env}/scaling` show it.

use serde::{Deserialize, Serialize};

/// A group's capacity from one moment on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Unix seconds.
    pub at_unix: i64,
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    pub in_service: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupHistory {
    pub group: String,
    /// Oldest first; the first may be from before the range (the state at its start).
    pub snapshots: Vec<Snapshot>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    pub id: String,
    pub group: String,
    pub status: String,
    pub description: String,
    pub cause: String,
    pub started_at: String,
    pub ended_at: Option<String>,
}

/// One of tierdeck's applies in the range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyMark {
    pub change_id: i64,
    pub run_id: i64,
    /// Unix seconds.
    pub at_unix: i64,
    pub status: String,
}

/// A scheduled action that fired in the range (from the spec at the branch head).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledMark {
    pub group: String,
    pub action: String,
    /// Unix seconds.
    pub at_unix: i64,
    pub local: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalingHistory {
    pub environment: String,
    /// Unix seconds.
    pub since_unix: i64,
    pub until_unix: i64,
    pub groups: Vec<GroupHistory>,
    pub activities: Vec<Activity>,
    pub applies: Vec<ApplyMark>,
    pub scheduled: Vec<ScheduledMark>,
}
