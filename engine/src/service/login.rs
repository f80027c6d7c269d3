//! Signing in and out, with throttling of repeated failures.

use std::time::Duration;

use serde_json::json;

use crate::auth::refusals::RefusalLog;
use crate::auth::{password, Actor, Principal, RequestMeta};
use crate::clock::Clock;
use crate::error::{ServiceError, ServiceResult};
use crate::service::identity::Identity;
use crate::service::identity::SessionAuth;
use crate::settings::EngineSettings;
use crate::store::audit::{append, NewEvent};
use crate::store::Store;
use crate::store::{login_failures, users};
use tokio::sync::Semaphore;

/// User names longer than this are cut before they are stored in the audit log.
const MAX_RECORDED_NAME: usize = 128;

fn recorded_name(raw: &str) -> String {
    raw.trim().chars().take(MAX_RECORDED_NAME).collect()
}

/// The address a failure is counted against when the edge could not tell.
const UNKNOWN_ADDR: &str = "unknown";

/// Signing in and out.
#[derive(Clone, Copy)]
pub struct Sessions<'a> {
    pub(crate) store: &'a Store,
    pub(crate) settings: &'a EngineSettings,
    pub(crate) hashing: &'a std::sync::Arc<Semaphore>,
    pub(crate) refusals: &'a RefusalLog,
    pub(crate) identity: Identity<'a>,
    pub(crate) clock: &'a dyn Clock,
}

impl Sessions<'_> {
    /// Checks a name and password. On success returns the principal and what the session must
    /// store; every outcome is audited (throttled ones once per address per minute, whatever
    /// the names tried: one address cycling through names must not write a row each).
    ///
    /// The attempt is counted before its password is hashed, in one write transaction with the
    /// throttle's check, so parallel guesses count one by one; at most [`crate::MAX_HASHES`]
    /// hashes run at once. Failures count per (name, address), and per address with a higher
    /// ceiling: one person's typos do not lock out teammates behind the same proxy, and nobody
    /// can lock a name out from elsewhere.
    pub async fn login(
        &self,
        name: &str,
        password_text: &str,
        meta: &RequestMeta,
    ) -> ServiceResult<(Principal, SessionAuth)> {
        let name = recorded_name(name);
        let addr = meta
            .client_addr
            .clone()
            .unwrap_or_else(|| UNKNOWN_ADDR.into());
        let now_ms = self.clock.now().timestamp_millis();
        let window = self.settings.throttle_window;
        let since_ms = now_ms - window.as_millis() as i64;

        let mut tx = self.store.begin_write().await?;
        if let Some(retry_after) = self
            .throttled_for(&mut tx, &name, &addr, since_ms, now_ms)
            .await?
        {
            // Counted per address alone: names cost an attacker nothing to vary.
            let source = format!("login {addr}");
            if let Some(count) = self.refusals.count(&source, std::time::Instant::now()) {
                append(
                    &mut tx,
                    NewEvent {
                        actor: Actor::user(&name),
                        action: "login.throttled",
                        environment: None,
                        target: Some(&name),
                        detail: json!({
                            "retry_after_secs": retry_after.as_secs(),
                            "refusals": count,
                        }),
                        meta,
                    },
                )
                .await?;
                tx.commit().await?;
            }
            return Err(ServiceError::Throttled {
                retry_after_secs: retry_after.as_secs().max(1),
            });
        }
        login_failures::record(&mut tx, now_ms, &name, &addr).await?;
        login_failures::prune(&mut tx, since_ms).await?;
        tx.commit().await?;

        let Ok(_permit) =
            tokio::time::timeout(crate::HASH_WAIT, self.hashing.clone().acquire_owned()).await
        else {
            return Err(ServiceError::Unavailable(
                "too many sign-ins at once; try again in a moment".into(),
            ));
        };
        let row = {
            let mut conn = self.store.pool().acquire().await?;
            users::by_name(&mut conn, &name).await?
        };
        let password_ok =
            password::verify(password_text, row.as_ref().map(|r| r.password_hash.clone())).await?;
        let outcome = match row {
            Some(row) if password_ok && row.disabled_at.is_none() => Ok(row),
            Some(_) if password_ok => Err("disabled"),
            Some(_) => Err("wrong password"),
            None => Err("no such user"),
        };

        let mut tx = self.store.begin_write().await?;
        match outcome {
            Ok(row) => {
                login_failures::forget_pair(&mut tx, &name, &addr).await?;
                append(
                    &mut tx,
                    NewEvent {
                        actor: Actor::user(&name),
                        action: "login.ok",
                        environment: None,
                        target: Some(&name),
                        detail: json!({}),
                        meta,
                    },
                )
                .await?;
                tx.commit().await?;
                let auth = SessionAuth {
                    user_id: row.id,
                    epoch: row.auth_epoch,
                    signed_in_at: now_ms / 1000,
                };
                let principal = self
                    .identity
                    .session_principal(auth)
                    .await?
                    .ok_or_else(|| {
                        ServiceError::Unauthenticated("the account changed while signing in".into())
                    })?;
                Ok((principal, auth))
            }
            Err(reason) => {
                // The attempt was counted as a failure already.
                append(
                    &mut tx,
                    NewEvent {
                        actor: Actor::user(&name),
                        action: "login.failed",
                        environment: None,
                        target: Some(&name),
                        detail: json!({ "reason": reason }),
                        meta,
                    },
                )
                .await?;
                tx.commit().await?;
                // One message for every reason: a stranger learns nothing about which names exist.
                Err(ServiceError::Unauthenticated(
                    "user name or password is wrong".into(),
                ))
            }
        }
    }

    /// How long until attempts for this name from this address (or from this address at all)
    /// are allowed again, if they are not now.
    async fn throttled_for(
        &self,
        conn: &mut crate::store::Conn,
        name: &str,
        addr: &str,
        since_ms: i64,
        now_ms: i64,
    ) -> ServiceResult<Option<Duration>> {
        let (by_pair, by_addr) = login_failures::recent(conn, since_ms, name, addr).await?;
        let limits = [
            (by_pair, Some(name), self.settings.throttle_max_failures),
            (by_addr, None, self.settings.throttle_max_per_address),
        ];
        let mut lifts_at: Option<i64> = None;
        for (count, user, max) in limits {
            let max = i64::from(max.max(1));
            if count >= max {
                // The throttle lifts when the max-th newest failure leaves the window.
                if let Some(t) = login_failures::nth_newest(conn, since_ms, user, addr, max).await?
                {
                    let at = t + (now_ms - since_ms);
                    lifts_at = Some(lifts_at.map_or(at, |l| l.max(at)));
                }
            }
        }
        Ok(lifts_at.map(|at| Duration::from_millis((at - now_ms).max(1000) as u64)))
    }

    /// Records a sign-out.
    pub async fn logout(&self, principal: &Principal, meta: &RequestMeta) -> ServiceResult<()> {
        let mut tx = self.store.begin_write().await?;
        append(
            &mut tx,
            NewEvent {
                actor: Actor::of(principal),
                action: "logout",
                environment: None,
                target: Some(principal.name.as_str()),
                detail: json!({}),
                meta,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 120 refused sign-ins with 120 names from one address write one audit row, not 120: the
    /// log is append-only and its chain is walked every minute.
    #[tokio::test]
    async fn refused_sign_ins_are_audited_once_per_address_per_minute_whatever_the_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(&dir.path().join("t.db")).await.unwrap();
        store.migrate().await.unwrap();
        let settings = crate::EngineSettings {
            throttle_max_per_address: 1,
            ..Default::default()
        };
        let engine = crate::Engine::new(store, settings);
        let meta = RequestMeta::from_addr("203.0.113.9");
        // One failure throttles the address.
        let first = engine.sessions().login("n0", "guess", &meta).await;
        assert!(
            matches!(first, Err(ServiceError::Unauthenticated(_))),
            "{first:?}"
        );
        for i in 1..=120 {
            let refused = engine
                .sessions()
                .login(&format!("n{i}"), "guess", &meta)
                .await;
            assert!(
                matches!(refused, Err(ServiceError::Throttled { .. })),
                "{i}: {refused:?}"
            );
        }
        let mut conn = engine.store.pool().acquire().await.unwrap();
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT target, detail FROM audit_events WHERE action = 'login.throttled'",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].0, "n1", "the first refusal writes the event");
        // Another address is another source.
        let elsewhere = RequestMeta::from_addr("198.51.100.7");
        engine
            .sessions()
            .login("n0", "guess", &elsewhere)
            .await
            .unwrap_err();
        engine
            .sessions()
            .login("n1", "guess", &elsewhere)
            .await
            .unwrap_err();
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM audit_events WHERE action = 'login.throttled'")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        assert_eq!(n, 2);
    }

    #[tokio::test]
    async fn a_sign_in_waits_for_a_free_hash_and_is_refused_when_none_frees() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(&dir.path().join("t.db")).await.unwrap();
        store.migrate().await.unwrap();
        let engine = crate::Engine::new(store, crate::EngineSettings::default());
        // Every hash slot is taken (a flood of sign-ins in progress).
        let held = engine
            .hashing
            .clone()
            .acquire_many_owned(crate::MAX_HASHES as u32)
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let refused = engine
            .sessions()
            .login("alice", "wrong", &RequestMeta::default())
            .await
            .unwrap_err();
        assert!(
            matches!(refused, ServiceError::Unavailable(_)),
            "{refused:?}"
        );
        assert!(started.elapsed() >= crate::HASH_WAIT);
        drop(held);
        // With a slot free the attempt is checked (and fails: there is no alice).
        let failed = engine
            .sessions()
            .login("alice", "wrong", &RequestMeta::default())
            .await
            .unwrap_err();
        assert!(
            matches!(failed, ServiceError::Unauthenticated(_)),
            "{failed:?}"
        );
    }
}
