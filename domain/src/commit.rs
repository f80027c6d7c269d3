//! A commit as tierdeck names it: its id, its people and its message.

use serde::{Deserialize, Serialize};

/// A commit as a change names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitInfo {
    pub sha: String,
    /// Who wrote it: the same shape as a change's `authors`.
    pub author: Person,
    #[serde(with = "crate::time::stored")]
    pub committed_at: chrono::DateTime<chrono::Utc>,
    pub message: String,
}

/// A commit id as people read it: its first 10 characters (ids are hex, so any cut is safe;
/// anything else is cut at a character boundary).
pub fn short_sha(sha: &str) -> &str {
    let end = sha.char_indices().nth(10).map_or(sha.len(), |(i, _)| i);
    &sha[..end]
}

impl CommitInfo {
    pub fn short_sha(&self) -> &str {
        short_sha(&self.sha)
    }

    /// The message's first line.
    pub fn subject(&self) -> &str {
        self.message.lines().next().unwrap_or_default()
    }
}

/// Someone who wrote or committed a commit, as git records them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Person {
    pub name: String,
    /// Lower case.
    pub email: String,
}
