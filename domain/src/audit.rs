//! The audit log's hash chain.
//!
//! Every event carries the hash of the event before it and its own SHA-256 over its canonical
//! fields, so altering or deleting a row breaks the chain at that row. A separate head (the last
//! sequence number and hash, stored beside the log) catches rows cut off the end.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who did it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    /// A person signed in through the browser (or a failed attempt naming a user).
    User,
    /// An API token; the actor is the token's owner.
    Token,
    /// tierdeck itself, or its command line run on the server.
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::Token => "token",
            ActorKind::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(ActorKind::User),
            "token" => Some(ActorKind::Token),
            "system" => Some(ActorKind::System),
            _ => None,
        }
    }
}

impl fmt::Display for ActorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fields an event's hash covers, exactly as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainedEvent {
    pub seq: i64,
    /// RFC 3339, UTC, milliseconds: the stored text.
    pub at: String,
    pub actor_kind: ActorKind,
    /// A user name, or `system`.
    pub actor: String,
    /// The label of the API token used, if any.
    pub token: Option<String>,
    pub action: String,
    pub environment: Option<String>,
    pub target: Option<String>,
    /// JSON text, hashed as stored.
    pub detail: String,
    pub client_addr: Option<String>,
    pub prev_hash: String,
}

impl ChainedEvent {
    /// SHA-256 (hex) over a canonical encoding of the fields: a JSON array, which leaves no
    /// ambiguity between fields.
    pub fn compute_hash(&self) -> String {
        let canonical = serde_json::json!([
            1,
            self.seq,
            self.at,
            self.actor_kind.as_str(),
            self.actor,
            self.token,
            self.action,
            self.environment,
            self.target,
            self.detail,
            self.client_addr,
            self.prev_hash,
        ]);
        let mut hasher = Sha256::new();
        hasher.update(b"tierdeck-audit\n");
        hasher.update(canonical.to_string().as_bytes());
        hex::encode(hasher.finalize())
    }
}

/// A stored event: the chained fields and the hash stored with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub event: ChainedEvent,
    pub hash: String,
}

/// Where the chain broke, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Break {
    /// The row's fields no longer match its hash: it was altered.
    Altered { seq: i64 },
    /// The row does not point at the row before it: something between was altered or deleted.
    Unlinked { seq: i64 },
    /// Sequence numbers skip: rows were deleted.
    Missing { after_seq: i64, found_seq: i64 },
    /// The stored head names rows that are gone from the end.
    TruncatedEnd { last_seq: i64, head_seq: i64 },
    /// The stored head does not match the last row's hash.
    HeadMismatch { seq: i64 },
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Break::Altered { seq } => {
                write!(f, "row {seq} was altered: its fields do not match its hash")
            }
            Break::Unlinked { seq } => write!(
                f,
                "row {seq} does not link to the row before it: a row before it was altered or deleted"
            ),
            Break::Missing { after_seq, found_seq } => write!(
                f,
                "row {} is missing: row {after_seq} is followed by row {found_seq}",
                after_seq + 1
            ),
            Break::TruncatedEnd { last_seq, head_seq } => write!(
                f,
                "row {} is missing: the log ends at row {last_seq} but its head records row {head_seq}",
                last_seq + 1
            ),
            Break::HeadMismatch { seq } => {
                write!(f, "row {seq} does not match the hash recorded in the log's head")
            }
        }
    }
}

/// The verdict over a whole log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainReport {
    pub rows_checked: u64,
    pub broken: Option<Break>,
}

impl ChainReport {
    pub fn is_intact(&self) -> bool {
        self.broken.is_none()
    }
}

/// Checks events in sequence order, one at a time, so a caller can stream a large log through
/// it without holding it in memory.
#[derive(Debug, Default, Clone)]
pub struct ChainVerifier {
    last: Option<(i64, String)>,
    rows: u64,
    broken: Option<Break>,
}

impl ChainVerifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next event; returns false once the chain is broken (later rows are not needed).
    pub fn push(&mut self, stored: &StoredEvent) -> bool {
        if self.broken.is_some() {
            return false;
        }
        self.rows += 1;
        let e = &stored.event;
        let (expected_seq, expected_prev) = match &self.last {
            None => (1, GENESIS_HASH),
            Some((seq, hash)) => (seq + 1, hash.as_str()),
        };
        self.broken = if e.seq != expected_seq {
            Some(Break::Missing {
                after_seq: expected_seq - 1,
                found_seq: e.seq,
            })
        } else if e.compute_hash() != stored.hash {
            Some(Break::Altered { seq: e.seq })
        } else if e.prev_hash != expected_prev {
            Some(Break::Unlinked { seq: e.seq })
        } else {
            None
        };
        self.last = Some((e.seq, stored.hash.clone()));
        self.broken.is_none()
    }

    /// The sequence number of the last event fed (0 before the first): a check resumed from a
    /// clone of this verifier goes on with the events after it.
    pub fn last_seq(&self) -> i64 {
        self.last.as_ref().map_or(0, |(seq, _)| *seq)
    }

    /// Ends the check against the stored head (`None` when the log was never written).
    pub fn finish(mut self, head: Option<(i64, &str)>) -> ChainReport {
        if self.broken.is_none() {
            self.broken = match (&self.last, head) {
                (None, None) => None,
                (None, Some((head_seq, _))) => Some(Break::TruncatedEnd {
                    last_seq: 0,
                    head_seq,
                }),
                (Some(_), None) => None,
                (Some((seq, hash)), Some((head_seq, head_hash))) => {
                    if *seq < head_seq {
                        Some(Break::TruncatedEnd {
                            last_seq: *seq,
                            head_seq,
                        })
                    } else if *seq != head_seq || hash != head_hash {
                        Some(Break::HeadMismatch { seq: *seq })
                    } else {
                        None
                    }
                }
            };
        }
        ChainReport {
            rows_checked: self.rows,
            broken: self.broken,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<StoredEvent> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let event = ChainedEvent {
                    seq,
                    at: format!("2026-11-25T10:00:{seq:02}.000Z"),
                    actor_kind: ActorKind::User,
                    actor: "alice".into(),
                    token: None,
                    action: "login.ok".into(),
                    environment: None,
                    target: Some("alice".into()),
                    detail: "{}".into(),
                    client_addr: Some("127.0.0.1".into()),
                    prev_hash: prev.clone(),
                };
                let hash = event.compute_hash();
                prev = hash.clone();
                StoredEvent { event, hash }
            })
            .collect()
    }

    fn verify(rows: &[StoredEvent], head: Option<(i64, &str)>) -> ChainReport {
        let mut v = ChainVerifier::new();
        for r in rows {
            if !v.push(r) {
                break;
            }
        }
        v.finish(head)
    }

    fn head(rows: &[StoredEvent]) -> Option<(i64, &str)> {
        rows.last().map(|r| (r.event.seq, r.hash.as_str()))
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let rows = chain(5);
        let report = verify(&rows, head(&rows));
        assert_eq!(
            report,
            ChainReport {
                rows_checked: 5,
                broken: None
            }
        );
        assert_eq!(verify(&[], None).broken, None);
    }

    #[test]
    fn an_altered_field_names_its_row() {
        let mut rows = chain(5);
        let h = head(&rows).map(|(s, h)| (s, h.to_owned()));
        rows[2].event.actor = "mallory".into();
        let report = verify(&rows, h.as_ref().map(|(s, h)| (*s, h.as_str())));
        assert_eq!(report.broken, Some(Break::Altered { seq: 3 }));
    }

    #[test]
    fn a_rehashed_altered_row_breaks_the_link_of_the_next_row() {
        let mut rows = chain(5);
        rows[2].event.detail = r#"{"x":1}"#.into();
        rows[2].hash = rows[2].event.compute_hash();
        let h = rows[4].hash.clone();
        assert_eq!(
            verify(&rows, Some((5, &h))).broken,
            Some(Break::Unlinked { seq: 4 })
        );
    }

    #[test]
    fn a_deleted_middle_row_is_named() {
        let mut rows = chain(5);
        let h = rows[4].hash.clone();
        rows.remove(1);
        let report = verify(&rows, Some((5, &h)));
        assert_eq!(
            report.broken,
            Some(Break::Missing {
                after_seq: 1,
                found_seq: 3
            })
        );
        assert_eq!(
            report.broken.unwrap().to_string(),
            "row 2 is missing: row 1 is followed by row 3"
        );
    }

    #[test]
    fn rows_cut_off_the_end_are_caught_by_the_head() {
        let mut rows = chain(5);
        let h = rows[4].hash.clone();
        rows.truncate(3);
        assert_eq!(
            verify(&rows, Some((5, &h))).broken,
            Some(Break::TruncatedEnd {
                last_seq: 3,
                head_seq: 5
            })
        );
        assert_eq!(
            verify(&[], Some((5, &h))).broken,
            Some(Break::TruncatedEnd {
                last_seq: 0,
                head_seq: 5
            })
        );
    }

    #[test]
    fn every_field_is_covered_by_the_hash() {
        let base = chain(1).remove(0).event;
        let h = base.compute_hash();
        let variants: [fn(&mut ChainedEvent); 11] = [
            |e| e.seq = 2,
            |e| e.at.push('x'),
            |e| e.actor_kind = ActorKind::Token,
            |e| e.actor.push('x'),
            |e| e.token = Some("ci".into()),
            |e| e.action.push('x'),
            |e| e.environment = Some("prod".into()),
            |e| e.target = None,
            |e| e.detail = "{ }".into(),
            |e| e.client_addr = None,
            |e| e.prev_hash = "1".repeat(64),
        ];
        for (i, change) in variants.iter().enumerate() {
            let mut e = base.clone();
            change(&mut e);
            assert_ne!(e.compute_hash(), h, "field variant {i} is not hashed");
        }
    }
}

/// An audit event as the audit page, the REST API and the exports show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: String,
    pub actor_kind: ActorKind,
    pub actor: String,
    pub token: Option<String>,
    pub action: String,
    pub environment: Option<String>,
    pub target: Option<String>,
    pub detail: serde_json::Value,
    pub client_addr: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// Filters of the audit page and `GET /api/v1/audit`; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub env: Option<String>,
    /// RFC 3339 time or a date (`2026-11-25`); inclusive.
    pub since: Option<String>,
    /// RFC 3339 time or a date; exclusive.
    pub until: Option<String>,
    /// The `seq` of the last event of the previous page: the next page holds older events.
    pub cursor: Option<i64>,
    pub limit: Option<u32>,
}

/// One page of events, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub events: Vec<AuditEntry>,
    /// Pass as `cursor` to get the next (older) page; `None` on the last page.
    pub next_cursor: Option<i64>,
}
