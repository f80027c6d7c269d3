//! Outgoing notifications as the admins' delivery log shows them.

use serde::{Deserialize, Serialize};

/// Events that notify: `approval_needed`, `approved`, `rejected`, `applied`, `failed`,
/// `drift_detected`, `emergency_apply`, `degraded` (the watch after an apply saw a page-level
/// SLO alert).
pub const EVENTS: [&str; 8] = [
    "approval_needed",
    "approved",
    "rejected",
    "applied",
    "failed",
    "drift_detected",
    "emergency_apply",
    "degraded",
];

/// One notification to one receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: i64,
    pub event: String,
    pub environment: Option<String>,
    pub change_id: Option<i64>,
    /// `slack` or `webhook`.
    pub receiver: String,
    pub text: String,
    /// `pending`, `delivered` or `failed` (given up).
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    #[serde(with = "crate::time::stored")]
    pub next_attempt_at: chrono::DateTime<chrono::Utc>,
    #[serde(with = "crate::time::stored")]
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(with = "crate::time::stored::option", default)]
    pub delivered_at: Option<chrono::DateTime<chrono::Utc>>,
}
