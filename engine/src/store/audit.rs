//! The append-only `audit_events` table and its head.
//!
//! [`append`] must run inside a write transaction (see [`super::Store::begin_write`]): it reads
//! the head and writes the next link, and the caller's own change commits with it or not at all.

use super::Conn;
use domain::audit::{ActorKind, AuditEntry, ChainedEvent, StoredEvent, GENESIS_HASH};

use crate::auth::{Actor, RequestMeta};

/// An event to record.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub actor: Actor,
    pub action: &'a str,
    pub environment: Option<&'a str>,
    pub target: Option<&'a str>,
    pub detail: serde_json::Value,
    pub meta: &'a RequestMeta,
}

/// Appends one event to the chain; returns its sequence number.
pub async fn append(conn: &mut Conn, ev: NewEvent<'_>) -> Result<i64, sqlx::Error> {
    let head: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await?;
    let (seq, prev_hash) = match head {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS_HASH.to_owned()),
    };
    let event = ChainedEvent {
        seq,
        at: super::now_text(),
        actor_kind: ev.actor.kind,
        actor: ev.actor.name,
        token: ev.actor.token,
        action: ev.action.to_owned(),
        environment: ev.environment.map(str::to_owned),
        target: ev.target.map(str::to_owned),
        detail: ev.detail.to_string(),
        client_addr: ev.meta.client_addr.clone(),
        prev_hash,
    };
    let hash = event.compute_hash();
    sqlx::query(
        "INSERT INTO audit_events (seq, at, actor_kind, actor, token, action, environment, target,
            detail, client_addr, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(event.seq)
    .bind(&event.at)
    .bind(event.actor_kind.as_str())
    .bind(&event.actor)
    .bind(&event.token)
    .bind(&event.action)
    .bind(&event.environment)
    .bind(&event.target)
    .bind(&event.detail)
    .bind(&event.client_addr)
    .bind(&event.prev_hash)
    .bind(&hash)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, $1, $2)
         ON CONFLICT (id) DO UPDATE SET seq = $1, hash = $2",
    )
    .bind(seq)
    .bind(&hash)
    .execute(conn)
    .await?;
    Ok(seq)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub seq: i64,
    pub at: String,
    pub actor_kind: String,
    pub actor: String,
    pub token: Option<String>,
    pub action: String,
    pub environment: Option<String>,
    pub target: Option<String>,
    pub detail: String,
    pub client_addr: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

impl EventRow {
    /// The chained fields as stored. An unknown actor kind can only come from tampering with the
    /// table; it is read as `system` and the hash check then names the row.
    pub fn into_stored(self) -> StoredEvent {
        StoredEvent {
            event: ChainedEvent {
                seq: self.seq,
                at: self.at,
                actor_kind: ActorKind::parse(&self.actor_kind).unwrap_or(ActorKind::System),
                actor: self.actor,
                token: self.token,
                action: self.action,
                environment: self.environment,
                target: self.target,
                detail: self.detail,
                client_addr: self.client_addr,
                prev_hash: self.prev_hash,
            },
            hash: self.hash,
        }
    }

    pub fn into_entry(self) -> AuditEntry {
        let detail = serde_json::from_str(&self.detail)
            .unwrap_or_else(|_| serde_json::Value::String(self.detail.clone()));
        AuditEntry {
            seq: self.seq,
            at: self.at,
            actor_kind: ActorKind::parse(&self.actor_kind).unwrap_or(ActorKind::System),
            actor: self.actor,
            token: self.token,
            action: self.action,
            environment: self.environment,
            target: self.target,
            detail,
            client_addr: self.client_addr,
            prev_hash: self.prev_hash,
            hash: self.hash,
        }
    }
}

const SELECT: &str = "SELECT seq, at, actor_kind, actor, token, action, environment, target,
    detail, client_addr, prev_hash, hash FROM audit_events";

/// Filters already checked by the service: times are normalised stored text.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub environment: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

/// Events matching `filter` older than `before_seq`, newest first.
pub async fn page(
    conn: &mut Conn,
    filter: &Filter,
    before_seq: Option<i64>,
    limit: u32,
) -> Result<Vec<EventRow>, sqlx::Error> {
    let mut q = super::Sql::new(SELECT);
    q.push(" WHERE 1 = 1");
    if let Some(a) = &filter.actor {
        q.push(" AND actor = ").push_bind(a.clone());
    }
    if let Some(a) = &filter.action {
        // `login` matches `login.ok`, `login.failed`, …; `login.ok` matches itself.
        q.push(" AND (action = ")
            .push_bind(a.clone())
            .push(" OR action LIKE ")
            .push_bind(format!("{}.%", escape_like(a)))
            .push(" ESCAPE '\\')");
    }
    if let Some(e) = &filter.environment {
        q.push(" AND environment = ").push_bind(e.clone());
    }
    if let Some(s) = &filter.since {
        q.push(" AND at >= ").push_bind(s.clone());
    }
    if let Some(u) = &filter.until {
        q.push(" AND at < ").push_bind(u.clone());
    }
    if let Some(b) = before_seq {
        q.push(" AND seq < ").push_bind(b);
    }
    q.push(" ORDER BY seq DESC LIMIT ")
        .push_bind(i64::from(limit));
    q.fetch_all(conn).await
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Events in chain order, after `after_seq`, at most `limit`.
pub async fn chain_batch(
    conn: &mut Conn,
    after_seq: i64,
    limit: u32,
) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE seq > $1 ORDER BY seq LIMIT $2"))
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await
}

pub async fn head(conn: &mut Conn) -> Result<Option<(i64, String)>, sqlx::Error> {
    sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_optional(conn)
        .await
}
